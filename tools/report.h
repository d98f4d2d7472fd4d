/*
 * report.h — the inline SVG charts of `mosaic report` (report_svg.c): line charts, bars
 * and a confusion matrix, written as text into an HTML stream. No scripts, no external
 * references: the only URL is the SVG namespace.
 */
#ifndef MOSAIC_TOOLS_REPORT_H
#define MOSAIC_TOOLS_REPORT_H

#include <stdint.h>
#include <stdio.h>

/* One line of a line chart: n points (x[i], y[i]); a non-finite y breaks the line. */
typedef struct rep_series {
  const char *name;
  const double *x, *y;
  int64_t n;
} rep_series;

/* A line chart with axes, ticks and a legend, as <svg id="id">. ylo < yhi fixes the y
 * range (e.g. 0..1), otherwise it follows the data. */
void rep_lines(FILE *f, const char *id, const char *title, const char *xlabel,
               const char *ylabel, const rep_series *s, int ns, double ylo, double yhi);

/* Horizontal bars: for each of c classes, a bar of a[k] and one of b[k] (values in
 * 0..1; NaN: no bar, "–"). */
void rep_bars(FILE *f, const char *id, const char *title, char *const *names, int64_t c,
              const double *a, const char *aname, const double *b, const char *bname);

/* A c × c matrix of counts (row = true class), each cell shaded by its share of its row. */
void rep_confusion(FILE *f, const char *id, const char *title, char *const *names, int64_t c,
                   const int64_t *cm, const char *col_label);

/* A scatter plot of n points (xy: x0, y0, x1, y1, ...; a 2-D projection of embeddings),
 * each a circle coloured by its group (rep_colour; black for a group < 0), and a legend
 * of the groups present among classes, named by names[group] with their counts. */
void rep_scatter(FILE *f, const char *id, const char *title, const float *xy,
                 const int32_t *group, int64_t n, const char *const *names, int64_t classes);

/* s with &, <, >, " escaped. */
void rep_escape(FILE *f, const char *s);

/* The colour of series i (a 20-colour qualitative palette), "#rrggbb". */
const char *rep_colour(int i);

#endif
