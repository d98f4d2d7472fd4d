/*
 * ridge.h — ridge regression in closed form, for the forecasting protocol (forecast.c):
 * the features are standardised with the fitting rows' mean and standard deviation, the
 * target is centred, and (XᵀX + λI) w = Xᵀy is solved by a Cholesky factorisation in
 * double precision. Plain C without the tool's other headers, so a test can link it.
 */
#ifndef MOSAIC_TOOLS_RIDGE_H
#define MOSAIC_TOOLS_RIDGE_H

#include <stdint.h>

/* Results of the ridge functions. */
#define RIDGE_OK         0
#define RIDGE_NO_ROWS    (-1) /* no row with a finite target */
#define RIDGE_NOT_PD     (-2) /* the system is not positive definite (λ = 0, collinear) */
#define RIDGE_NO_MEMORY  (-3)
#define RIDGE_NOT_FINITE (-4) /* a feature of a fitting row is NaN or infinite */

/* Solves (A + λI) W = B for W: A d × d symmetric (row-major; its lower triangle is read),
 * B and W d × k row-major (W may not alias B). RIDGE_OK or RIDGE_NOT_PD / RIDGE_NO_MEMORY. */
int ridge_solve(const double *a, const double *b, int64_t d, int64_t k, double lambda,
                double *w);

typedef struct ridge_model {
  int64_t d;
  double *mean, *scale; /* d each: x̃_j = (x_j − mean_j) / scale_j */
  double *w;            /* d weights on the standardised features */
  double bias;          /* the mean of the fitting targets */
  double lambda;        /* the λ used */
  int64_t rows;         /* rows fitted (those with a finite target) */
} ridge_model;

/* Fits y ≈ bias + w · x̃ on the rows i of x (n × d, row-major) whose y[i] is finite.
 * scale_j is the (population) standard deviation of feature j over those rows, 1 where it
 * is below 1e-12. lambda < 0 asks for the default 1e-3 · trace(X̃ᵀX̃) / d (1e-3 when the
 * trace is 0). On success m owns its arrays (ridge_free). */
int ridge_fit(const double *x, const double *y, int64_t n, int64_t d, double lambda,
              ridge_model *m);

/* The prediction of one row x (d values). */
double ridge_predict(const ridge_model *m, const double *x);

void ridge_free(ridge_model *m);

#endif /* MOSAIC_TOOLS_RIDGE_H */
