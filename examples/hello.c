/*
 * hello.c — a first libmosaic program.
 *
 * It shows the three things every program using libmosaic starts with:
 *   1. checking that the library loaded at run time matches the header it was
 *      compiled against;
 *   2. installing a log callback (the library itself never prints anything);
 *   3. looking at the compute backends and choosing one.
 *
 * Build against an installed libmosaic:
 *   cc hello.c $(pkg-config --cflags --libs mosaic) -o hello
 * or with CMake: find_package(mosaic CONFIG REQUIRED) and link mosaic::mosaic
 * (examples/cmake-consumer).
 */
#include <stdio.h>

#include <mosaic/mosaic.h>

/* Receives the library's diagnostics. It may be called from any thread, so it only
 * writes one line to stderr; it must not call back into libmosaic. */
static void print_log(int32_t level, const char *message, void *user) {
  static const char *const names[] = {"error", "warning", "info", "debug"};
  const char *prefix = (const char *)user;
  const char *name = (level >= 0 && level <= MSC_LOG_DEBUG) ? names[level] : "?";
  fprintf(stderr, "%s[%s] %s\n", prefix, name, message);
}

int main(void) {
  /* 1. Versions: MSC_VERSION_* describe the header, msc_version() the library. */
  printf("libmosaic %s (compiled against %d.%d.%d)\n", msc_version_string(), MSC_VERSION_MAJOR,
         MSC_VERSION_MINOR, MSC_VERSION_PATCH);
  if (msc_version() / 10000 != MSC_VERSION_MAJOR) {
    fprintf(stderr, "hello: library major version differs from the header's\n");
    return 1;
  }

  /* 2. Logging: messages up to MSC_LOG_INFO go to print_log; the last argument of
   *    msc_set_log_callback is the threshold, the "user" pointer comes back to us. */
  static char log_prefix[] = "libmosaic";
  msc_status st = msc_set_log_callback(print_log, log_prefix, MSC_LOG_INFO);
  if (st != MSC_OK) {
    fprintf(stderr, "hello: msc_set_log_callback: %s: %s\n", msc_status_string(st),
            msc_last_error());
    return 1;
  }

  /* 3. Backends: every known backend is listed, usable or not. When one is not,
   *    msc_backend_available says why in the thread's last error message. */
  int32_t n = msc_backend_count();
  printf("backends (%d):\n", (int)n);
  for (int32_t i = 0; i < n; i++) {
    const char *name = msc_backend_name(i);
    st = msc_backend_available(name);
    if (st == MSC_OK)
      printf("  %-6s available\n", name);
    else
      printf("  %-6s unavailable: %s\n", name, msc_last_error());
  }

  /* "auto" takes CUDA when it works and the CPU otherwise; an explicit name such as
   * "cuda" would fail instead of falling back. */
  const char *chosen = NULL;
  st = msc_backend_select("auto", &chosen);
  if (st != MSC_OK) {
    fprintf(stderr, "hello: msc_backend_select: %s: %s\n", msc_status_string(st),
            msc_last_error());
    return 1;
  }
  printf("backend \"auto\" selects: %s\n", chosen);

  msc_set_log_callback(NULL, NULL, MSC_LOG_ERROR); /* remove the callback */
  return 0;
}
