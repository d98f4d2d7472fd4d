/*
 * header_only.c — the public header compiles on its own (nothing included before it)
 * as strict C99 and C11 with -Wall -Wextra -pedantic -Werror, and the program links
 * against the shared library. Exit status 0 when the library's run-time version is
 * the header's version.
 */
#include <mosaic/mosaic.h>

/* The header must not depend on anything it does not include itself; this file
 * includes nothing else, so every type used below comes from mosaic.h. */

static void on_log(int32_t level, const char *message, void *user) {
  (void)level;
  (void)message;
  (void)user;
}

int main(void) {
  msc_status st = MSC_OK;
  msc_log_fn fn = on_log;
  const char *chosen = NULL;
  size_t n = sizeof(msc_status);
  int64_t number = MSC_VERSION_NUMBER;
  int codes_ok =
      MSC_E_INVALID_ARGUMENT < 0 && MSC_E_CANCELLED < 0 && MSC_LOG_ERROR < MSC_LOG_DEBUG;

  (void)fn;
  (void)chosen;
  if (n != 4 || !codes_ok ||
      number != MSC_VERSION_MAJOR * 10000 + MSC_VERSION_MINOR * 100 + MSC_VERSION_PATCH)
    return 1;
  if (msc_status_string(st) == NULL) return 1;
  return msc_version() == (uint32_t)MSC_VERSION_NUMBER ? 0 : 1;
}
