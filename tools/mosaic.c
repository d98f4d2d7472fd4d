/*
 * mosaic.c — the `mosaic` command-line tool: dispatch and global options.
 *
 *   mosaic [-v|--verbose]... COMMAND [OPTIONS]
 *
 * Every command lives in its own file (cmd_*.c); args.c parses options and configuration
 * files, progress.c draws progress, data.c / train.c / evaluate.c hold what several
 * commands share. docs/tool.md documents every command.
 *
 * Exit status, the same in every command: 0 success, 1 a runtime error (I/O, bad data, a
 * numerical failure), 2 bad usage (an unknown command, option or key, any mistyped name
 * — preset, format, encoder, --which kind —, bad syntax, a bad value, a missing required
 * option), 130 interrupted. Errors are one line on stderr, "mosaic: error: ...", with
 * the library's message; a mistyped name gets "did you mean ..." (suggest.c).
 *
 * Library diagnostics go to stderr through a log callback: warnings and errors by
 * default, informational messages with -v, debugging messages with -vv.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char usage_text[] =
    "usage: mosaic [-v|--verbose]... COMMAND [OPTIONS]\n"
    "\n"
    "Multi-modal contrastive learning for satellite imagery (libmosaic).\n"
    "\n"
    "Commands:\n"
    "  train       train a model on a dataset (progress, validation, checkpoints, resume)\n"
    "  eval        score a model: macro/micro AP and F1, Hamming, Brier, per class;\n"
    "              protocols: the model's classifier, linear probe, fine-tune, kNN;\n"
    "              forecasting of a vegetation index (PIMC models)\n"
    "  embed       write the embeddings of a dataset's samples as .npy (+ ids)\n"
    "  predict     write per-class probabilities of a dataset's samples as TSV\n"
    "  map         map a whole scene (one GeoTIFF per modality) into a GeoTIFF class map\n"
    "  compare     train and score several loss presets on the same data, one table\n"
    "  rplot       write the recurrence plots of time-series samples as PNG\n"
    "  report      write one self-contained HTML report: training curves, per-class\n"
    "              AP/F1, precision-recall, confusion, quicklooks\n"
    "  info        show what a model file holds\n"
    "  synth       write a synthetic dataset in the BigEarthNet v2 layout\n"
    "  backends    list the compute backends, whether each is usable and why not\n"
    "  version     print the version of libmosaic\n"
    "  help        print this help (also -h, --help); 'mosaic COMMAND --help' for a command\n"
    "\n"
    "Options:\n"
    "  -v, --verbose   show the library's informational messages (twice: debug)\n"
    "\n"
    "Every command also takes --config FILE (JSON: library options and \"tool\" keys)\n"
    "and --set KEY=VALUE; see tool.md and options.md.\n"
    "\n"
    "Exit status: 0 success, 1 a runtime error (I/O, bad data, numerical), 2 bad usage\n"
    "(an unknown or mistyped name, bad syntax, a missing argument), 130 interrupted.\n"
    "\n"
    "Environment:\n"
    "  MSC_BACKEND_PATH   ':'-separated directories searched for backend modules\n"
    "                     (libmosaic-cuda.so) before the directory of libmosaic.so\n";

static void log_to_stderr(int32_t level, const char *message, void *user) {
  static const char *const names[] = {"error", "warning", "info", "debug"};
  (void)user;
  fprintf(stderr, "mosaic: %s: %s\n",
          (level >= MSC_LOG_ERROR && level <= MSC_LOG_DEBUG) ? names[level] : "log", message);
}

void cli_set_verbosity(int verbosity) {
  int32_t level = verbosity >= 2   ? MSC_LOG_DEBUG
                  : verbosity == 1 ? MSC_LOG_INFO
                                   : MSC_LOG_WARNING;
  msc_set_log_callback(log_to_stderr, NULL, level);
}

typedef int (*command_fn)(int argc, char **argv, int verbosity);

static const struct {
  const char *name;
  command_fn fn;
} k_commands[] = {
    {"train", cmd_train},     {"eval", cmd_eval},         {"embed", cmd_embed},
    {"predict", cmd_predict}, {"compare", cmd_compare},   {"info", cmd_info},
    {"synth", cmd_synth},     {"backends", cmd_backends}, {"version", cmd_version},
    {"rplot", cmd_rplot},     {"map", cmd_map},           {"report", cmd_report},
};

/* "unknown command 'trian'; did you mean 'train'?" */
static int unknown_command(const char *name) {
  cli_suggest sg;
  cli_suggest_init(&sg, name);
  for (size_t k = 0; k < sizeof k_commands / sizeof k_commands[0]; ++k)
    cli_suggest_add(&sg, k_commands[k].name);
  cli_suggest_add(&sg, "help");
  return cli_usage(NULL, "unknown command '%s'%s", name, cli_suggest_text(&sg, NULL));
}

int main(int argc, char **argv) {
  int verbosity = 0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++) {
    const char *opt = argv[i];
    if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
      fputs(usage_text, stdout);
      cli_help_footer();
      return cli_finish_output();
    } else if (strcmp(opt, "-v") == 0 || strcmp(opt, "--verbose") == 0) {
      verbosity++;
    } else if (strcmp(opt, "-vv") == 0) {
      verbosity += 2;
    } else if (strcmp(opt, "--version") == 0) {
      return cmd_version(0, NULL, 0);
    } else {
      cli_suggest sg;
      cli_suggest_init(&sg, opt + strspn(opt, "-"));
      cli_suggest_add_list(&sg, "help|verbose|version", "|");
      return cli_usage(NULL, "unknown option '%s'%s", opt, cli_suggest_text(&sg, "--"));
    }
  }
  if (i >= argc) {
    fputs(usage_text, stderr);
    return EXIT_USAGE;
  }

  cli_set_verbosity(verbosity);

  const char *command = argv[i];
  int sub_argc = argc - i - 1;
  char **sub_argv = argv + i + 1;
  for (size_t k = 0; k < sizeof k_commands / sizeof k_commands[0]; ++k)
    if (strcmp(command, k_commands[k].name) == 0)
      return k_commands[k].fn(sub_argc, sub_argv, verbosity);
  if (strcmp(command, "help") == 0) {
    if (sub_argc > 0) {
      /* "mosaic help train" is "mosaic train --help". */
      for (size_t k = 0; k < sizeof k_commands / sizeof k_commands[0]; ++k)
        if (strcmp(sub_argv[0], k_commands[k].name) == 0) {
          char *h[] = {"--help"};
          return k_commands[k].fn(1, h, verbosity);
        }
      return unknown_command(sub_argv[0]);
    }
    fputs(usage_text, stdout);
    cli_help_footer();
    return cli_finish_output();
  }
  return unknown_command(command);
}
