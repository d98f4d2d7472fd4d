/*
 * internal.h — helpers shared by every layer of the core (layer: common). Nothing here
 * is exported: internal names start with msci_ (core) or mbk_ (backend interface),
 * never msc_.
 */
#ifndef MOSAIC_LIB_INTERNAL_H
#define MOSAIC_LIB_INTERNAL_H

#include <stdarg.h>

#include "mosaic/mosaic.h"

/* Limits shared by every layer (a batch, a dataset and a model agree on them). */
#define MSCI_MAX_MODALITIES 8
#define MSCI_MAX_BANDS      64
#define MSCI_NAME_LEN       32

#if defined(__GNUC__)
#define MSCI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MSCI_PRINTF(f, a)
#endif

/* Returns the status of expr from the calling function when it is not MSC_OK. */
#define MSCI_TRY(expr)                                                                         \
  do {                                                                                         \
    msc_status msci_st_ = (expr);                                                              \
    if (msci_st_ != MSC_OK) return msci_st_;                                                   \
  } while (0)

/* Sets the calling thread's msc_last_error() message and returns code, so that an
 * error path reads `return msci_fail(MSC_E_SHAPE, "conv2d: x is %dx%d", h, w);`. */
msc_status msci_fail(msc_status code, const char *fmt, ...) MSCI_PRINTF(2, 3);

/* The lowest status code of this version (mosaic.h appends new codes below it: move this
 * with it). A status s of this library is MSCI_STATUS_LOWEST <= s <= MSC_OK. */
#define MSCI_STATUS_LOWEST MSC_E_COMM

/* Length of the longest prefix of s[0..len) that does not end inside a UTF-8
 * multi-byte sequence: where a message cut at len bytes should end. */
size_t msci_utf8_prefix(const char *s, size_t len);

/* Sends one formatted line to the user's log callback; a no-op without one. */
void msci_log(int32_t level, const char *fmt, ...) MSCI_PRINTF(2, 3);

#endif /* MOSAIC_LIB_INTERNAL_H */
