/*
 * sits_api.c — the public msc_vegetation_index and msc_recurrence_plots: thin wrappers
 * over sits.c (sits.h) that translate the public band table and parameters into the
 * internal ones. Everything is validated before any output is written (the internal
 * functions validate the rest the same way).
 */
#include <string.h>

#include "common/internal.h"
#include "data/sits.h"
#include "mosaic/mosaic.h"

_Static_assert(MSC_VI_NDVI == MSCI_VI_NDVI && MSC_VI_EVI == MSCI_VI_EVI &&
                   MSC_VI_SAVI == MSCI_VI_SAVI && MSC_VI_NDWI == MSCI_VI_NDWI &&
                   MSC_VI_NBR == MSCI_VI_NBR && MSC_VI_COUNT == MSCI_VI_COUNT,
               "public and internal index kinds differ");

/* The public table (NULL: PASTIS) as the internal one. */
static msc_status bands_in(const msc_vi_bands *pub, msci_vi_bands *b, const char *who) {
  if (!pub) {
    *b = msci_vi_bands_pastis();
    return MSC_OK;
  }
  if (pub->struct_size < sizeof(msc_vi_bands))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: bands->struct_size is %u, this library needs at least %zu", who,
                     (unsigned)pub->struct_size, sizeof(msc_vi_bands));
  b->b2 = pub->b2, b->b3 = pub->b3, b->b4 = pub->b4, b->b8 = pub->b8, b->b12 = pub->b12;
  b->scale = pub->scale, b->offset = pub->offset;
  return MSC_OK;
}

MSC_API msc_status msc_vegetation_index(int32_t kind, const float *x, int64_t t, int64_t c,
                                        int64_t p, const msc_vi_bands *bands, float *out,
                                        uint8_t *valid) {
  static const char W[] = "msc_vegetation_index";
  if (!x) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: x is NULL", W);
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", W);
  if (kind < 0 || kind >= MSC_VI_COUNT)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: unknown index kind %d (0..%d)", W, (int)kind,
                     MSC_VI_COUNT - 1);
  if (t < 1 || c < 1 || p < 1 || t > INT64_MAX / c || t * c > INT64_MAX / p)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: bad shape t %lld, c %lld, p %lld", W,
                     (long long)t, (long long)c, (long long)p);
  msci_vi_bands b;
  MSCI_TRY(bands_in(bands, &b, W));
  return msci_vi_compute((msci_vi)kind, &b, x, t, c, p, out, valid);
}

MSC_API msc_status msc_recurrence_plots(const float *x, int64_t t, int64_t c, int64_t h,
                                        int64_t w, const msc_vi_bands *bands,
                                        const msc_rp_params *params, const int64_t *yx,
                                        int64_t n, float *out, uint8_t *valid) {
  static const char W[] = "msc_recurrence_plots";
  if (!x) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: x is NULL", W);
  if (!params) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: params is NULL", W);
  if (!out) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", W);
  if (n < 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: n is %lld", W, (long long)n);
  if (n > 0 && !yx) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: yx is NULL", W);
  if (params->struct_size < sizeof(msc_rp_params))
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: params->struct_size is %u, this library needs at least %zu", W,
                     (unsigned)params->struct_size, sizeof(msc_rp_params));
  if (params->n_indices < 1 || params->n_indices > MSC_VI_COUNT)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: params->n_indices is %d, expected 1..%d", W,
                     (int)params->n_indices, MSC_VI_COUNT);
  if (!params->indices)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: params->indices is NULL", W);
  if (params->eps_is_percentile != 0 && params->eps_is_percentile != 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: params->eps_is_percentile is %d, expected 0 or 1", W,
                     (int)params->eps_is_percentile);
  msci_rp_cfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.channels = params->n_indices;
  for (int32_t k = 0; k < params->n_indices; ++k) cfg.index[k] = params->indices[k];
  cfg.binary = params->binary;
  cfg.eps_is_percentile = params->eps_is_percentile;
  cfg.eps = params->eps;
  cfg.size = params->size;
  cfg.days = params->days;
  msci_vi_bands b;
  MSCI_TRY(bands_in(bands, &b, W));
  /* scratch NULL: msci_rp_pixels allocates one block per thread and frees it. */
  return msci_rp_pixels(x, t, c, h, w, &b, &cfg, yx, n, out, valid, NULL, 0);
}
