/*
 * registry.h — the backend registry (layer: backend): the services the core hands to
 * backends, resolving a backend request to a table, and the built-in CPU backend's
 * entry point. Defined in registry.c (and backends/cpu/cpu_backend.c).
 */
#ifndef MOSAIC_LIB_REGISTRY_H
#define MOSAIC_LIB_REGISTRY_H

#include "contract/backend.h"
#include "mosaic/mosaic.h"

/* The services the core offers to every backend (built-in or module). */
const mbk_host *msci_host(void);

/* The absolute directory holding libmosaic (for the static test archive: the program),
 * where modules are looked for. Returns 1 and fills out, or 0 when it is unknown. */
int msci_library_directory(char *out, size_t cap);

/* Resolves a backend request ("auto", "cpu", "cuda", ...) to a usable backend table,
 * with the rules of msc_backend_select. *out and *name are untouched on error. */
msc_status msci_backend_resolve(const char *request, const mbk_iface **out, const char **name);

/* Entry point of the built-in CPU backend; same contract as a module's init. */
msc_status mbk_cpu_init(const mbk_host *host, const mbk_iface **out);

#endif /* MOSAIC_LIB_REGISTRY_H */
