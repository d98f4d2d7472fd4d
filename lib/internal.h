/*
 * internal.h — helpers shared by the core's source files. Nothing here is exported:
 * internal names start with msci_ (core) or mbk_ (backend interface), never msc_.
 */
#ifndef MOSAIC_LIB_INTERNAL_H
#define MOSAIC_LIB_INTERNAL_H

#include <stdarg.h>

#include "backend.h"
#include "mosaic/mosaic.h"

#if defined(__GNUC__)
#define MSCI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MSCI_PRINTF(f, a)
#endif

/* Returns the status of expr from the calling function when it is not MSC_OK. */
#define MSCI_TRY(expr) MBK_TRY(expr)

/* Sets the calling thread's msc_last_error() message and returns code, so that an
 * error path reads `return msci_fail(MSC_E_SHAPE, "conv2d: x is %dx%d", h, w);`. */
msc_status msci_fail(msc_status code, const char *fmt, ...) MSCI_PRINTF(2, 3);

/* Sends one formatted line to the user's log callback; a no-op without one. */
void msci_log(int32_t level, const char *fmt, ...) MSCI_PRINTF(2, 3);

/* The services the core offers to every backend (built-in or module). */
const mbk_host *msci_host(void);

/* Resolves a backend request ("auto", "cpu", "cuda", ...) to a usable backend table,
 * with the rules of msc_backend_select. *out and *name are untouched on error. */
msc_status msci_backend_resolve(const char *request, const mbk_iface **out,
                                const char **name);

/* Entry point of the built-in CPU backend; same contract as a module's init. */
msc_status mbk_cpu_init(const mbk_host *host, const mbk_iface **out);

#endif /* MOSAIC_LIB_INTERNAL_H */
