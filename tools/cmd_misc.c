/*
 * cmd_misc.c — `mosaic version` and `mosaic backends`.
 */
#include <string.h>

#include "cli.h"

static const char version_help[] =
    "usage: mosaic version\n\nPrints the version of libmosaic (and of the header the tool\n"
    "was built with, when they differ).\n";
static const char backends_help[] =
    "usage: mosaic backends\n\nLists the compute backends, whether each is usable here and\n"
    "why not, and what 'auto' selects. Backend modules are looked for in MSC_BACKEND_PATH\n"
    "(':'-separated directories), then next to libmosaic.so.\n";
static const char *const none[] = {NULL};

int cmd_version(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "version", version_help, none, 0, argc, argv, verbosity);
  cli_ctx_free(&ctx);
  (void)verbosity;
  if (rc >= 0) return rc;
  printf("libmosaic %s\n", msc_version_string());
  if (msc_version() != (uint32_t)MSC_VERSION_NUMBER)
    printf("(mosaic was compiled against libmosaic %d.%d.%d)\n", MSC_VERSION_MAJOR,
           MSC_VERSION_MINOR, MSC_VERSION_PATCH);
  return cli_finish_output();
}

int cmd_backends(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "backends", backends_help, none, 0, argc, argv, verbosity);
  cli_ctx_free(&ctx);
  (void)verbosity;
  if (rc >= 0) return rc;
  int32_t n = msc_backend_count();
  int name_width = (int)strlen("NAME");
  for (int32_t i = 0; i < n; i++) {
    const char *name = msc_backend_name(i);
    if (name != NULL && (int)strlen(name) > name_width) name_width = (int)strlen(name);
  }
  printf("%-*s  %-9s  %s\n", name_width, "NAME", "AVAILABLE", "REASON");
  for (int32_t i = 0; i < n; i++) {
    const char *name = msc_backend_name(i);
    if (name == NULL) continue;
    msc_status st = msc_backend_available(name);
    if (st == MSC_OK) {
      printf("%-*s  %-9s  %s\n", name_width, name, "yes", "-");
    } else {
      /* The message repeats the name ("backend 'cuda' is unavailable: why"); the table
       * already has it, so only the reason is shown. */
      const char *reason = msc_last_error();
      char lead[128];
      int len = snprintf(lead, sizeof lead, "backend '%s' is unavailable: ", name);
      if (len > 0 && (size_t)len < sizeof lead && strncmp(reason, lead, (size_t)len) == 0)
        reason += len;
      printf("%-*s  %-9s  %s\n", name_width, name, "no", reason[0] ? reason : "-");
    }
  }
  const char *chosen = NULL;
  if (msc_backend_select("auto", &chosen) == MSC_OK)
    printf("\nauto selects: %s\n", chosen);
  else
    printf("\nauto selects: nothing (%s)\n", msc_last_error());
  return cli_finish_output();
}
