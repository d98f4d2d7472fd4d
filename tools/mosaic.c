/*
 * mosaic.c — the `mosaic` command-line tool.
 *
 *   mosaic [-v|--verbose]... COMMAND [ARGS]
 *
 * Commands of this first version:
 *   version    the library's version (and the header's, if they differ)
 *   backends   every known compute backend, whether it is usable here, and why not
 *   help       the usage text (also -h, --help)
 *
 * Training, evaluation and embedding commands come with the issues that add them to
 * the library. Exit status: 0 success, 1 failure, 2 bad usage (unknown command or
 * option, unexpected argument).
 *
 * Library diagnostics go to stderr through a log callback: warnings and errors by
 * default, informational messages with -v, debugging messages with -vv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosaic/mosaic.h>

#define EXIT_USAGE 2 /* bad command line; EXIT_FAILURE (1) for errors */

static const char usage_text[] =
    "usage: mosaic [-v|--verbose]... COMMAND [ARGS]\n"
    "\n"
    "Multi-modal contrastive learning for satellite imagery (libmosaic).\n"
    "\n"
    "Commands:\n"
    "  version     print the version of libmosaic\n"
    "  backends    list the compute backends, whether each is usable and why not\n"
    "  help        print this help (also -h, --help)\n"
    "\n"
    "Options:\n"
    "  -v, --verbose   show the library's informational messages (twice: debug)\n"
    "\n"
    "Environment:\n"
    "  MSC_BACKEND_PATH   ':'-separated directories searched for backend modules\n"
    "                     (libmosaic-cuda.so) before the directory of libmosaic.so\n";

static void log_to_stderr(int32_t level, const char *message, void *user) {
  static const char *const names[] = {"error", "warning", "info", "debug"};
  (void)user;
  fprintf(stderr, "mosaic: %s: %s\n",
          (level >= MSC_LOG_ERROR && level <= MSC_LOG_DEBUG) ? names[level] : "log",
          message);
}

/* Flushes stdout and reports a write error (a full disk, a closed pipe). */
static int finish_output(const char *command) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "mosaic %s: error writing to standard output\n", command);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

static int no_arguments(const char *command, int argc, char **argv) {
  if (argc > 0) {
    fprintf(stderr, "mosaic %s: unexpected argument '%s' (see 'mosaic help')\n", command,
            argv[0]);
    return 0;
  }
  return 1;
}

static int cmd_version(int argc, char **argv) {
  if (!no_arguments("version", argc, argv))
    return EXIT_USAGE;
  printf("libmosaic %s\n", msc_version_string());
  if (msc_version() != (uint32_t)MSC_VERSION_NUMBER)
    printf("(mosaic was compiled against libmosaic %d.%d.%d)\n", MSC_VERSION_MAJOR,
           MSC_VERSION_MINOR, MSC_VERSION_PATCH);
  return finish_output("version");
}

static int cmd_backends(int argc, char **argv) {
  if (!no_arguments("backends", argc, argv))
    return EXIT_USAGE;
  int32_t n = msc_backend_count();
  int name_width = (int)strlen("NAME");
  for (int32_t i = 0; i < n; i++) {
    const char *name = msc_backend_name(i);
    if (name != NULL && (int)strlen(name) > name_width)
      name_width = (int)strlen(name);
  }
  printf("%-*s  %-9s  %s\n", name_width, "NAME", "AVAILABLE", "REASON");
  for (int32_t i = 0; i < n; i++) {
    const char *name = msc_backend_name(i);
    if (name == NULL)
      continue;
    msc_status st = msc_backend_available(name);
    if (st == MSC_OK) {
      printf("%-*s  %-9s  %s\n", name_width, name, "yes", "-");
    } else {
      /* The message repeats the name ("backend 'cuda' is unavailable: why"); the
       * table already has it, so only the reason is shown. */
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
  return finish_output("backends");
}

int main(int argc, char **argv) {
  int verbosity = 0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
      fputs(usage_text, stdout);
      return finish_output("help");
    } else if (strcmp(opt, "-v") == 0 || strcmp(opt, "--verbose") == 0) {
      verbosity++;
    } else if (strcmp(opt, "-vv") == 0) {
      verbosity += 2;
    } else if (strcmp(opt, "--version") == 0) {
      return cmd_version(0, NULL);
    } else {
      fprintf(stderr, "mosaic: unknown option '%s' (see 'mosaic help')\n", opt);
      return EXIT_USAGE;
    }
  }
  if (i >= argc) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }

  int32_t level = verbosity >= 2 ? MSC_LOG_DEBUG
                  : verbosity == 1 ? MSC_LOG_INFO
                                   : MSC_LOG_WARNING;
  msc_set_log_callback(log_to_stderr, NULL, level);

  const char *command = argv[i];
  int sub_argc = argc - i - 1;
  char **sub_argv = argv + i + 1;
  if (strcmp(command, "version") == 0)
    return cmd_version(sub_argc, sub_argv);
  if (strcmp(command, "backends") == 0)
    return cmd_backends(sub_argc, sub_argv);
  if (strcmp(command, "help") == 0) {
    if (!no_arguments("help", sub_argc, sub_argv))
      return EXIT_USAGE;
    fputs(usage_text, stdout);
    return finish_output("help");
  }
  fprintf(stderr, "mosaic: unknown command '%s' (see 'mosaic help')\n", command);
  return EXIT_USAGE;
}
