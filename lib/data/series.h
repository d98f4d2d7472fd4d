/* TEMPORARY STUB (helper writes the real one) */
#ifndef MOSAIC_LIB_SERIES_H
#define MOSAIC_LIB_SERIES_H
#include <stddef.h>
#include <stdint.h>
#include "mosaic/mosaic.h"
msc_status msci_date_days(int64_t yyyymmdd, int64_t *days);
int32_t msci_days_doy(int64_t days);
void msci_series_grid(double first, double last, int64_t L, double *grid);
msc_status msci_series_resample(const float *x, int64_t T, int64_t P, const double *days,
                                const double *grid, int64_t L, float *out);
void msci_series_pad(const float *x, int64_t T, int64_t P, int64_t L, float *out, uint8_t *mask);

typedef struct msci_npy_file msci_npy_file;
msc_status msci_npy_file_open(const char *path, msci_npy_file **out);
void msci_npy_file_close(msci_npy_file *f);
int32_t msci_npy_file_ndim(const msci_npy_file *f);
const int64_t *msci_npy_file_dims(const msci_npy_file *f);
int32_t msci_npy_file_dtype(const msci_npy_file *f);
msc_status msci_npy_file_read_box(const msci_npy_file *f, const int64_t *lo, const int64_t *cnt,
                                  float *out, void *scratch, size_t scratch_size);
size_t msci_npy_file_box_scratch(const msci_npy_file *f, const int64_t *cnt);
#endif
