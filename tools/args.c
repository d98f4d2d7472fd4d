/*
 * args.c — command lines and configuration files of the `mosaic` tool.
 *
 * Every setting is a key: a library option (msc_options: "optim.lr", "data.fraction",
 * "train.preset", ...) or a tool key ("epochs", "batch", "out", ...; "tool.<name>" in a
 * configuration file). Command-line options are short names for keys (--lr is
 * optim.lr, --epochs is tool.epochs); --set KEY=VALUE sets any key; --config FILE reads
 * a JSON file of keys first, so the command line overrides it:
 *
 *   {"tool": {"epochs": 3, "batch": 32}, "train": {"preset": "mosaic2"},
 *    "optim.lr": 0.003, "modality": [{"encoder": "tiny"}, {"encoder": "tiny"}]}
 *
 * Everything but "tool" goes to msc_options_from_json, so nested and flat keys both
 * work. Library options of the command line are applied after the file with the typed
 * setters (--lr 0.003 is msc_options_set_float("optim.lr", 0.003)); only a --set value
 * written as a JSON array goes through msc_options_from_json. The tool writes the
 * effective configuration in the same form next to its outputs (cli_write_config), so
 * `--config that.json` repeats a run.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"

/* ---- errors ------------------------------------------------------------------------------- */

int cli_rank = 0;

/* The last error printed, for cli_last_error (without "mosaic: error: "). */
static char g_last_error[2 * 1024 + 8]; /* (cli_lib_error: what, ": ", message) */
static msc_status g_last_status = MSC_OK;

const char *cli_last_error(msc_status *status) {
  if (status) *status = g_last_status;
  return g_last_error;
}

/* One line on stderr in one write: under mpirun each rank's stdout and stderr are separate
 * pipes merged as they are read, so a line written in pieces could have another stream's
 * lines land inside it (tests/dist/tool.sh saw a rank-0 banner split an error line). */
static void put_line(const char *lead, const char *text) {
  char line[4 * 1024];
  if (cli_rank > 0)
    snprintf(line, sizeof line, "[rank %d] %s%s\n", cli_rank, lead, text);
  else
    snprintf(line, sizeof line, "%s%s\n", lead, text);
  fflush(stdout);      /* (what was printed before comes before; its error shows at exit) */
  fputs(line, stderr); /* (stderr is unbuffered: one write) */
  fflush(stderr);
}

static void vline(const char *lead, const char *fmt, va_list ap) {
  char text[3 * 1024];
  vsnprintf(text, sizeof text, fmt, ap);
  put_line(lead, text);
}

int cli_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(g_last_error, sizeof g_last_error, fmt, ap);
  va_end(ap);
  va_start(ap, fmt);
  vline("mosaic: error: ", fmt, ap);
  va_end(ap);
  g_last_status = MSC_E_IO; /* (the tool's own errors are about its files and data) */
  return EXIT_ERROR;
}

int cli_lib_error(msc_status st, const char *fmt, ...) {
  /* Copy the library's message first: formatting may not call the library, but be safe. */
  char msg[1024];
  snprintf(msg, sizeof msg, "%s", msc_last_error());
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  /* Keep it on one line. */
  for (char *p = msg; *p; ++p)
    if (*p == '\n' || *p == '\r') *p = ' ';
  snprintf(g_last_error, sizeof g_last_error, "%s: %s", what,
           msg[0] ? msg : msc_status_string(st));
  put_line("mosaic: error: ", g_last_error);
  g_last_status = st;
  return EXIT_ERROR;
}

/* The command cli_parse last parsed: a usage error found later (cli_usage(NULL, ...), e.g.
 * by cli_parse_which) points at that command's help. */
static const char *g_command;

int cli_usage(const char *command, const char *fmt, ...) {
  if (!command) command = g_command;
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (command)
    fprintf(stderr, "mosaic: error: %s: %s (see 'mosaic %s --help')\n", command, what, command);
  else
    fprintf(stderr, "mosaic: error: %s (see 'mosaic --help')\n", what);
  fflush(stderr);
  return EXIT_USAGE;
}

void cli_note(const char *fmt, ...) {
  if (cli_rank > 0) return; /* rank 0 speaks for a distributed run */
  va_list ap;
  va_start(ap, fmt);
  vline("mosaic: ", fmt, ap);
  va_end(ap);
}

void cli_help_footer(void) {
  printf("\nManual: 'man mosaic'. The documents named (tool.md, options.md, ...) are\n"
         "installed in %s.\n",
         MOSAIC_DOCDIR);
}

int cli_finish_output(void) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "mosaic: error: writing to standard output failed\n");
    return EXIT_ERROR;
  }
  return EXIT_OK;
}

/* ---- signals ---------------------------------------------------------------------------------- */

volatile sig_atomic_t cli_interrupted = 0;

static void on_signal(int sig) {
  cli_interrupted = sig;
}

void cli_catch_signals(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

/* ---- keys ------------------------------------------------------------------------------------- */

typedef struct {
  const char *option; /* command-line name without "--", or NULL (config only) */
  const char *key;    /* tool key, or a library option key when lib */
  int type;
  int lib;
  const char *flag; /* for options without a value: the JSON value they set */
} key_def;

static const key_def k_keys[] = {
    {"data", "data", KEY_STRING, 0, NULL},
    {"format", "format", KEY_STRING, 0, NULL},
    {"split", "split", KEY_STRING, 0, NULL},
    {"preset", "train.preset", KEY_STRING, 1, NULL},
    {"encoder", "encoder", KEY_STRING, 0, NULL},
    {"fusion", "fusion", KEY_STRING, 1, NULL},
    {"task", "task", KEY_STRING, 1, NULL},
    {"fraction", "data.fraction", KEY_FLOAT, 1, NULL},
    {"labeled-fraction", "data.labeled_fraction", KEY_FLOAT, 1, NULL},
    {"epochs", "epochs", KEY_INT, 0, NULL},
    {"batch", "batch", KEY_INT, 0, NULL},
    {"lr", "optim.lr", KEY_FLOAT, 1, NULL},
    {"seed", "seed", KEY_INT, 1, NULL},
    {"threads", "threads", KEY_INT, 1, NULL},
    {"backend", "backend", KEY_STRING, 1, NULL},
    {"precision", "precision", KEY_STRING, 1, NULL},
    {"sync-bn", "train.sync_bn", KEY_INT, 1, "1"},
    {"calibrate", "calibrate", KEY_INT, 0, NULL},
    {"workers", "workers", KEY_INT, 0, NULL},
    {"out", "out", KEY_STRING, 0, NULL},
    {"resume", "resume", KEY_STRING, 0, NULL},
    {"init", "init", KEY_STRING, 0, NULL},
    {"init-prefix", "init_prefix", KEY_STRING, 0, NULL},
    {"max-steps", "max_steps", KEY_INT, 0, NULL},
    {"model", "model", KEY_STRING, 0, NULL},
    {"protocol", "protocol", KEY_STRING, 0, NULL},
    {"k", "k", KEY_INT, 0, NULL},
    {"projection", "projection", KEY_STRING, 0, NULL},
    {"method", "method", KEY_STRING, 0, NULL},
    {"perplexity", "perplexity", KEY_FLOAT, 0, NULL},
    {"threshold", "threshold", KEY_FLOAT, 0, NULL},
    {"probe-epochs", "probe_epochs", KEY_INT, 0, NULL},
    {"probe-lr", "probe_lr", KEY_FLOAT, 0, NULL},
    {"json", "json", KEY_STRING, 0, NULL},
    {"which", "which", KEY_STRING, 0, NULL},
    {"modalities", "modalities", KEY_STRING, 0, NULL},
    {"n", "n", KEY_INT, 0, NULL},
    {"presets", "presets", KEY_STRING, 0, NULL},
    {"out-dir", "out_dir", KEY_STRING, 0, NULL},
    {"progress", "progress", KEY_STRING, 0, NULL},
    {"dist", "dist", KEY_STRING, 0, NULL},
    {"dist-timeout", "dist_timeout", KEY_FLOAT, 0, NULL},
    {"stats", "stats", KEY_STRING, 0, NULL},
    {"no-validate", "validate", KEY_INT, 0, "0"},
    {"val-fraction", "val_fraction", KEY_FLOAT, 0, NULL},
    {"keep-classifier", "keep_classifier", KEY_INT, 0, "1"},
    {"horizon", "horizon", KEY_INT, 0, NULL},
    {"index", "index", KEY_STRING, 0, NULL},
    {"lambda", "lambda", KEY_FLOAT, 0, NULL},
    {"sample", "sample", KEY_STRING, 0, NULL},
    {"first", "first", KEY_INT, 0, NULL},
    {"upscale", "upscale", KEY_INT, 0, NULL},
    {"colormap", "colormap", KEY_STRING, 0, NULL},
    {"panels", "panels", KEY_INT, 0, "1"},
    {"input", "input", KEY_STRING, 0, NULL},
    {"s1", "s1", KEY_STRING, 0, NULL},
    {"s2", "s2", KEY_STRING, 0, NULL},
    {"probs", "probs", KEY_STRING, 0, NULL},
    {"stride", "stride", KEY_INT, 0, NULL},
    {"blend", "blend", KEY_STRING, 0, NULL},
    {"resample", "resample", KEY_STRING, 0, NULL},
    {"what", "what", KEY_STRING, 0, NULL},
    {"mask", "scene.mask", KEY_STRING, 1, NULL},
    {"max-masked", "scene.max_masked", KEY_FLOAT, 1, NULL},
    {"overviews", "scene.overviews", KEY_INT, 1, NULL},
    {"embedding-type", "scene.embedding_type", KEY_STRING, 1, NULL},
    {"quicklook", "quicklook", KEY_STRING, 0, NULL},
    {"quicklook-size", "quicklook_size", KEY_INT, 0, NULL},
    {NULL, "stats_samples", KEY_INT, 0, NULL},
    {NULL, "progress_interval", KEY_FLOAT, 0, NULL},
};
#define N_KEYS (sizeof k_keys / sizeof k_keys[0])

static const key_def *find_option(const char *name) {
  for (size_t i = 0; i < N_KEYS; ++i)
    if (k_keys[i].option && strcmp(k_keys[i].option, name) == 0) return &k_keys[i];
  return NULL;
}

static const key_def *find_tool_key(const char *key) {
  for (size_t i = 0; i < N_KEYS; ++i)
    if (!k_keys[i].lib && strcmp(k_keys[i].key, key) == 0) return &k_keys[i];
  return NULL;
}

/* Ranges of the numeric tool keys and the values of the enumerated ones. */
typedef struct {
  const char *key;
  double lo, hi;
  const char *choices; /* '|'-separated, for strings */
} key_rule;

static const key_rule k_rules[] = {
    {"epochs", 0, 1e6, NULL},
    {"batch", 1, 65536, NULL},
    {"workers", 0, 64, NULL},
    {"max_steps", 0, 1e15, NULL},
    {"k", 1, 1e9, NULL},
    {"threshold", -1e30, 1e30, NULL},
    {"probe_epochs", 0, 1e6, NULL},
    {"probe_lr", 1e-12, 1000, NULL},
    {"n", 1, 1000000, NULL},
    {"val_fraction", 1e-9, 1, NULL},
    {"stats_samples", 0, 1e15, NULL},
    {"progress_interval", 0.01, 1e6, NULL},
    {"validate", 0, 1, NULL},
    {"keep_classifier", 0, 1, NULL},
    {"progress", 0, 0, "auto|bar|lines|none"},
    {"dist", 0, 0, "auto|mpi|nccl|none"},
    {"dist_timeout", 0, 1e9, NULL},
    {"stats", 0, 0, "auto|published|computed"},
    {"protocol", 0, 0, "model|linear|finetune|knn|forecast|cluster"},
    {"method", 0, 0, "tsne|pca"},
    {"perplexity", 1e-3, 1e6, NULL},
    {"horizon", 1, 4095, NULL},
    {"lambda", 0, 1e300, NULL},
    {"first", 1, 1e9, NULL},
    {"upscale", 1, 64, NULL},
    {"panels", 0, 1, NULL},
    {"index", 0, 0, "ndvi|evi|savi|ndwi|nbr"},
    {"colormap", 0, 0, "grey|viridis"},
    {"what", 0, 0, "classes|probabilities|embeddings"},
    {"quicklook_size", 16, 65536, NULL},
};

static int in_choices(const char *v, const char *choices) {
  size_t len = strlen(v);
  const char *p = choices;
  while (*p) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (n == len && strncmp(p, v, n) == 0) return 1;
    if (!bar) break;
    p = bar + 1;
  }
  return 0;
}

/* Checks one tool key's value; returns NULL or a message (static). */
static const char *check_tool_value(const char *key, json_t *v) {
  static char msg[256];
  const key_def *d = find_tool_key(key);
  if (!d) {
    cli_suggest sg;
    cli_suggest_init(&sg, key);
    for (size_t i = 0; i < N_KEYS; ++i)
      if (!k_keys[i].lib) cli_suggest_add(&sg, k_keys[i].key);
    snprintf(msg, sizeof msg, "unknown tool key 'tool.%s'%s", key,
             cli_suggest_text(&sg, "tool."));
    return msg;
  }
  int ok = d->type == KEY_STRING ? json_is_string(v)
           : d->type == KEY_INT  ? json_is_integer(v) || json_is_boolean(v)
                                 : json_is_number(v);
  if (!ok) {
    snprintf(msg, sizeof msg, "tool.%s must be %s", key,
             d->type == KEY_STRING ? "a string"
             : d->type == KEY_INT  ? "an integer"
                                   : "a number");
    return msg;
  }
  for (size_t i = 0; i < sizeof k_rules / sizeof k_rules[0]; ++i) {
    const key_rule *r = &k_rules[i];
    if (strcmp(r->key, key) != 0) continue;
    if (r->choices) {
      if (!in_choices(json_string_value(v), r->choices)) {
        cli_suggest sg;
        cli_suggest_init(&sg, json_string_value(v));
        cli_suggest_add_list(&sg, r->choices, "|");
        snprintf(msg, sizeof msg, "tool.%s is '%s', must be one of %s%s", key,
                 json_string_value(v), r->choices, cli_suggest_text(&sg, NULL));
        return msg;
      }
    } else {
      double x = json_is_boolean(v) ? (json_is_true(v) ? 1 : 0) : json_number_value(v);
      if (!(x >= r->lo && x <= r->hi)) {
        snprintf(msg, sizeof msg, "tool.%s = %g is out of range [%g, %g]", key, x, r->lo,
                 r->hi);
        return msg;
      }
    }
  }
  return NULL;
}

/* ---- library options of the command line ---------------------------------------------- */

/* The library options given on the command line (--lr, --set optim.lr=...), typed, in
 * the order each key was first given; a key given again replaces its value in place.
 * Applied with the typed setters once the configuration file has been. */
enum { LIB_INT, LIB_FLOAT, LIB_STRING, LIB_JSON };

typedef struct lib_value {
  char *key;
  int type; /* LIB_*; LIB_JSON: text is a JSON array given with --set */
  int64_t i;
  double f;
  char *text; /* LIB_STRING, LIB_JSON */
} lib_value;

typedef struct lib_values {
  lib_value *v;
  size_t n, cap;
} lib_values;

static void lib_values_free(lib_values *l) {
  for (size_t k = 0; k < l->n; ++k) free(l->v[k].key), free(l->v[k].text);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* Records key = value (text copied for LIB_STRING / LIB_JSON). Returns 0 when out of
 * memory. */
static int lib_values_put(lib_values *l, const char *key, int type, int64_t i, double f,
                          const char *text) {
  char *t = text ? strdup(text) : NULL;
  if (text && !t) return 0;
  lib_value *e = NULL;
  for (size_t k = 0; k < l->n && !e; ++k)
    if (strcmp(l->v[k].key, key) == 0) e = &l->v[k];
  if (!e) {
    if (l->n == l->cap) {
      size_t cap = l->cap ? 2 * l->cap : 8;
      lib_value *v = realloc(l->v, cap * sizeof *v);
      if (!v) return free(t), 0;
      l->v = v, l->cap = cap;
    }
    e = &l->v[l->n];
    memset(e, 0, sizeof *e);
    if (!(e->key = strdup(key))) return free(t), 0;
    l->n++;
  }
  free(e->text);
  e->type = type, e->i = i, e->f = f, e->text = t;
  return 1;
}

/* A --set value for a library key, by its JSON type (parse_set_value): numbers and
 * true/false as such, an array as JSON (msc_options_from_json turns it into a list),
 * anything else a string. Returns 0 when out of memory. */
static int lib_values_put_json(lib_values *l, const char *key, json_t *v) {
  if (json_is_integer(v))
    return lib_values_put(l, key, LIB_INT, json_integer_value(v), 0, NULL);
  if (json_is_real(v)) return lib_values_put(l, key, LIB_FLOAT, 0, json_real_value(v), NULL);
  if (json_is_boolean(v)) return lib_values_put(l, key, LIB_INT, json_is_true(v), 0, NULL);
  if (json_is_string(v)) return lib_values_put(l, key, LIB_STRING, 0, 0, json_string_value(v));
  json_t *doc = json_object();
  char *text = NULL;
  if (doc && json_object_set(doc, key, v) == 0) text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  int ok = text && lib_values_put(l, key, LIB_JSON, 0, 0, text);
  free(text);
  return ok;
}

/* Applies the values to opts in order; a refused value is a usage error naming it. */
static int apply_lib_values(const char *command, msc_options *opts, const lib_values *l) {
  for (size_t k = 0; k < l->n; ++k) {
    const lib_value *e = &l->v[k];
    msc_status st = e->type == LIB_INT     ? msc_options_set_int(opts, e->key, e->i)
                    : e->type == LIB_FLOAT ? msc_options_set_float(opts, e->key, e->f)
                    : e->type == LIB_JSON  ? msc_options_from_json(opts, e->text)
                                           : msc_options_set_string(opts, e->key, e->text);
    if (st != MSC_OK) {
      char msg[1024];
      snprintf(msg, sizeof msg, "%s", msc_last_error());
      /* The library suggests among its own keys; a tool key set without its "tool."
       * prefix (--set epochs=3) is the tool's to point out. */
      const char *hint = "";
      cli_suggest sg;
      if (st == MSC_E_NOT_FOUND && !strstr(msg, "did you mean")) {
        cli_suggest_init(&sg, e->key);
        if (find_tool_key(e->key)) {
          snprintf(sg.names[0], sizeof sg.names[0], "%s", e->key);
          sg.n = 1;
        } else {
          for (size_t i = 0; i < N_KEYS; ++i)
            if (!k_keys[i].lib) cli_suggest_add(&sg, k_keys[i].key);
        }
        hint = cli_suggest_text(&sg, "tool.");
      }
      return cli_usage(command, "command line: %s%s", msg[0] ? msg : msc_status_string(st),
                       hint);
    }
  }
  return -1;
}

/* A command-line number of the key's type (KEY_INT or KEY_FLOAT) into *i or *f; 0 when
 * it does not parse. */
static int parse_number(const char *text, int type, int64_t *i, double *f) {
  char *end = NULL;
  errno = 0;
  if (type == KEY_INT) {
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end) return 0;
    *i = v;
    return 1;
  }
  double v = strtod(text, &end);
  if (errno || end == text || *end || !isfinite(v)) return 0;
  *f = v;
  return 1;
}

/* A command-line value as JSON of the key's type; NULL when it does not parse. */
static json_t *parse_value(const char *text, int type) {
  if (type == KEY_STRING) return json_string(text);
  int64_t i = 0;
  double f = 0;
  if (!parse_number(text, type, &i, &f)) return NULL;
  return type == KEY_INT ? json_integer(i) : json_real(f);
}

/* --set values: a JSON number, true/false or array as such, anything else a string. */
static json_t *parse_set_value(const char *text) {
  json_error_t err;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
  if (v && (json_is_number(v) || json_is_boolean(v) || json_is_array(v) || json_is_string(v)))
    return v;
  json_decref(v);
  return json_string(text);
}

/* Splits a configuration document into tool keys (into tool) and library options (the
 * rest, returned). */
static int split_config(const char *command, const char *path, json_t *doc, json_t *tool,
                        json_t **rest) {
  if (!json_is_object(doc))
    return cli_usage(command, "config %s: the document must be a JSON object", path);
  json_t *r = json_object();
  const char *key;
  json_t *v;
  json_object_foreach(doc, key, v) {
    if (strcmp(key, "tool") == 0) {
      if (!json_is_object(v)) {
        json_decref(r);
        return cli_usage(command, "config %s: \"tool\" must be an object", path);
      }
      const char *k2;
      json_t *v2;
      json_object_foreach(v, k2, v2) json_object_set(tool, k2, v2);
    } else if (strncmp(key, "tool.", 5) == 0) {
      json_object_set(tool, key + 5, v);
    } else {
      json_object_set(r, key, v);
    }
  }
  *rest = r;
  return -1;
}

static int load_config(const char *command, const char *path, json_t *tool, json_t **rest) {
  json_error_t err;
  json_t *doc = json_load_file(path, 0, &err);
  if (!doc) {
    if (access(path, R_OK) != 0)
      return cli_usage(command, "config %s: %s", path, strerror(errno));
    return cli_usage(command, "config %s: line %d, column %d: %s", path, err.line, err.column,
                     err.text);
  }
  int rc = split_config(command, path, doc, tool, rest);
  json_decref(doc);
  return rc;
}

static int apply_options(const char *command, const char *what, msc_options *opts,
                         json_t *obj) {
  if (!obj || json_object_size(obj) == 0) return -1;
  char *text = json_dumps(obj, JSON_COMPACT);
  if (!text) return cli_error("out of memory");
  msc_status st = msc_options_from_json(opts, text);
  free(text);
  if (st != MSC_OK) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", msc_last_error());
    return cli_usage(command, "%s: %s", what, msg[0] ? msg : msc_status_string(st));
  }
  return -1;
}

/* "unknown option '--epoch'; did you mean '--epochs'?" among the options of the command
 * (and those every command takes); an option of another command says so. */
static int unknown_option(const char *command, const char *arg, const char *const *allowed) {
  static const char *const common[] = {"config", "set", "help", "verbose", NULL};
  const char *word = arg;
  while (*word == '-') word++;
  size_t wl = strcspn(word, "=");
  char name[64];
  snprintf(name, sizeof name, "%.*s", (int)(wl < sizeof name ? wl : sizeof name - 1), word);
  cli_suggest sg;
  cli_suggest_init(&sg, name);
  for (const char *const *p = allowed; *p; ++p) cli_suggest_add(&sg, *p);
  for (const char *const *p = common; *p; ++p) cli_suggest_add(&sg, *p);
  /* "-epochs" or "--Epochs" for "--epochs": the very name, written otherwise. */
  for (const char *const *p = allowed; *p && name[0]; ++p)
    if (strcasecmp(*p, name) == 0) {
      snprintf(sg.names[0], sizeof sg.names[0], "%s", *p);
      sg.n = 1;
    }
  const char *hint = cli_suggest_text(&sg, "--");
  if (!hint[0] && find_option(name) && strncmp(arg, "--", 2) == 0)
    return cli_usage(command, "option '%s' is not an option of 'mosaic %s'", arg, command);
  return cli_usage(command, "unknown option '%s'%s", arg, hint);
}

/* --encoder NAME is checked before anything is opened, by the library's own rule for
 * modality.#.encoder (so a typo is a usage error, with its suggestion). */
static int check_encoder(const char *command, const json_t *tool) {
  const char *encoder = json_string_value(json_object_get(tool, "encoder"));
  if (!encoder) return -1;
  msc_options *o = NULL;
  if (msc_options_create(&o) != MSC_OK) return cli_error("out of memory");
  msc_status st = msc_options_set_string(o, "modality.0.encoder", encoder);
  msc_options_free(o);
  if (st == MSC_OK) return -1;
  return cli_usage(command, "--encoder: %s", msc_last_error());
}

int cli_parse(cli_ctx *ctx, const char *command, const char *help, const char *const *allowed,
              int max_pos, int argc, char **argv, int verbosity) {
  memset(ctx, 0, sizeof *ctx);
  ctx->command = command;
  g_command = command;
  ctx->verbosity = verbosity;
  ctx->tool = json_object();
  ctx->positional = json_array();
  json_t *cli_tool = json_object(), *base_opts = NULL;
  lib_values cli_opts = {0};
  const char *config = NULL;
  int rc = -1;
  int only_positional = 0;

  for (int i = 0; i < argc && rc < 0; ++i) {
    const char *a = argv[i];
    if (only_positional || a[0] != '-' || strcmp(a, "-") == 0) {
      if ((int)json_array_size(ctx->positional) >= max_pos) {
        rc = cli_usage(command, "unexpected argument '%s'", a);
        break;
      }
      json_array_append_new(ctx->positional, json_string(a));
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_positional = 1;
      continue;
    }
    if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0 || strcmp(a, "-vv") == 0) {
      ctx->verbosity += strcmp(a, "-vv") == 0 ? 2 : 1;
      cli_set_verbosity(ctx->verbosity);
      continue;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(help, stdout);
      cli_help_footer();
      rc = cli_finish_output();
      break;
    }
    if (strncmp(a, "--", 2) != 0) {
      rc = unknown_option(command, a, allowed);
      break;
    }
    /* --name VALUE or --name=VALUE */
    char name[64];
    const char *eq = strchr(a + 2, '=');
    size_t len = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
    if (len == 0 || len >= sizeof name) {
      rc = unknown_option(command, a, allowed);
      break;
    }
    memcpy(name, a + 2, len);
    name[len] = 0;
    int is_config = strcmp(name, "config") == 0, is_set = strcmp(name, "set") == 0;
    const key_def *d = (is_config || is_set) ? NULL : find_option(name);
    int ok = is_config || is_set;
    if (d)
      for (const char *const *p = allowed; *p; ++p)
        if (strcmp(*p, name) == 0) ok = 1;
    if (!ok) {
      char dashed[80];
      snprintf(dashed, sizeof dashed, "--%s", name);
      rc = unknown_option(command, dashed, allowed);
      break;
    }
    const char *value = NULL;
    if (d && d->flag) {
      if (eq) {
        rc = cli_usage(command, "option '--%s' takes no value", name);
        break;
      }
    } else if (eq) {
      value = eq + 1;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      rc = cli_usage(command, "option '--%s' needs a value", name);
      break;
    }
    if (is_config) {
      config = value;
    } else if (is_set) {
      const char *e = strchr(value, '=');
      if (!e || e == value) {
        rc = cli_usage(command, "--set needs KEY=VALUE, got '%s'", value);
        break;
      }
      char key[256];
      size_t kl = (size_t)(e - value);
      if (kl >= sizeof key) {
        rc = cli_usage(command, "--set: key too long");
        break;
      }
      memcpy(key, value, kl);
      key[kl] = 0;
      json_t *v = parse_set_value(e + 1);
      if (strncmp(key, "tool.", 5) == 0) {
        const key_def *td = find_tool_key(key + 5);
        if (td && td->type == KEY_STRING && !json_is_string(v)) {
          json_decref(v);
          v = json_string(e + 1);
        } else if (td && td->type != KEY_STRING && json_is_string(v)) {
          json_decref(v);
          v = parse_value(e + 1, td->type);
          if (!v) {
            rc = cli_usage(command, "--set %s: '%s' is not a number", key, e + 1);
            break;
          }
        }
        json_object_set_new(cli_tool, key + 5, v);
      } else {
        int put = lib_values_put_json(&cli_opts, key, v);
        json_decref(v);
        if (!put) {
          rc = cli_error("out of memory");
          break;
        }
      }
    } else if (d->lib) { /* a library option: typed, no JSON (a flag: its value) */
      if (d->flag) value = d->flag;
      int64_t iv = 0;
      double fv = 0;
      if (d->type != KEY_STRING && !parse_number(value, d->type, &iv, &fv)) {
        rc = cli_usage(command, "--%s: '%s' is not %s", name, value,
                       d->type == KEY_INT ? "an integer" : "a number");
        break;
      }
      int type = d->type == KEY_INT ? LIB_INT : d->type == KEY_FLOAT ? LIB_FLOAT : LIB_STRING;
      if (!lib_values_put(&cli_opts, d->key, type, iv, fv, type == LIB_STRING ? value : NULL)) {
        rc = cli_error("out of memory");
        break;
      }
    } else {
      json_t *v =
          d->flag ? json_loads(d->flag, JSON_DECODE_ANY, NULL) : parse_value(value, d->type);
      if (!v) {
        rc = cli_usage(command, "--%s: '%s' is not %s", name, value,
                       d->type == KEY_INT ? "an integer" : "a number");
        break;
      }
      /* --sample and --input may be repeated: the values are joined with ','. */
      json_t *prev = json_object_get(cli_tool, d->key);
      if ((strcmp(d->key, "sample") == 0 || strcmp(d->key, "input") == 0) &&
          json_is_string(prev)) {
        size_t la = strlen(json_string_value(prev)), lb = strlen(json_string_value(v));
        char *joined = malloc(la + lb + 2);
        if (!joined) {
          json_decref(v);
          rc = cli_error("out of memory");
          break;
        }
        memcpy(joined, json_string_value(prev), la);
        joined[la] = ',';
        memcpy(joined + la + 1, json_string_value(v), lb + 1);
        json_decref(v);
        v = json_string(joined);
        free(joined);
      }
      json_object_set_new(cli_tool, d->key, v);
    }
  }

  /* The base: --config, or for a resumed training the configuration saved in the
   * checkpoint itself (option train.run_config, written atomically with the weights), so
   * that a checkpoint is never paired with another run's configuration. A checkpoint
   * written before the tool stored it there (0.4 and earlier) falls back to the
   * configuration file next to it, as those versions did. */
  if (rc < 0 && !config && strcmp(command, "train") == 0 &&
      json_is_string(json_object_get(cli_tool, "resume"))) {
    const char *ckpt = json_string_value(json_object_get(cli_tool, "resume"));
    json_t *saved = cli_checkpoint_config(ckpt);
    if (saved) {
      rc = split_config(command, ckpt, saved, ctx->tool, &base_opts);
      json_decref(saved);
      if (rc < 0 && ctx->verbosity >= 0)
        cli_note("resuming with the configuration saved in %s", ckpt);
    } else {
      char *side = cli_sibling(ckpt, ".config.json");
      if (side && access(side, R_OK) == 0) {
        rc = load_config(command, side, ctx->tool, &base_opts);
        if (rc < 0 && ctx->verbosity >= 0)
          cli_note("resuming with the configuration in %s (%s holds none of its own)", side,
                   ckpt);
      }
      free(side);
    }
    /* --out defaults to the checkpoint itself, not to where the run first saved it (a
     * copied or moved checkpoint must not overwrite the original). */
    json_object_del(ctx->tool, "out");
  }
  if (rc < 0 && config) rc = load_config(command, config, ctx->tool, &base_opts);
  if (rc < 0) {
    json_object_del(ctx->tool, "resume"); /* never inherited from a file */
    json_object_update(ctx->tool, cli_tool);
    const char *key;
    json_t *v;
    json_object_foreach(ctx->tool, key, v) {
      const char *msg = check_tool_value(key, v);
      if (msg) {
        rc = cli_usage(command, "%s", msg);
        break;
      }
    }
  }
  if (rc < 0) rc = check_encoder(command, ctx->tool);
  /* (synth writes formats of its own: msc_synth_write checks them) */
  if (rc < 0 && strcmp(command, "synth") != 0 &&
      json_is_string(json_object_get(ctx->tool, "format")))
    rc = cli_check_format(command, json_string_value(json_object_get(ctx->tool, "format")));
  if (rc < 0 && msc_options_create(&ctx->opts) != MSC_OK) rc = cli_error("out of memory");
  if (rc < 0)
    rc = apply_options(command, config ? config : "configuration", ctx->opts, base_opts);
  if (rc < 0) rc = apply_lib_values(command, ctx->opts, &cli_opts);
  json_decref(cli_tool);
  lib_values_free(&cli_opts);
  json_decref(base_opts);
  return rc;
}

void cli_ctx_free(cli_ctx *ctx) {
  json_decref(ctx->tool);
  json_decref(ctx->positional);
  msc_options_free(ctx->opts);
  memset(ctx, 0, sizeof *ctx);
}

/* ---- accessors -------------------------------------------------------------------------------- */

const char *cli_str(const cli_ctx *ctx, const char *key, const char *def) {
  json_t *v = json_object_get(ctx->tool, key);
  return json_is_string(v) ? json_string_value(v) : def;
}

int64_t cli_int(const cli_ctx *ctx, const char *key, int64_t def) {
  json_t *v = json_object_get(ctx->tool, key);
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  if (json_is_boolean(v)) return json_is_true(v);
  return def;
}

double cli_float(const cli_ctx *ctx, const char *key, double def) {
  json_t *v = json_object_get(ctx->tool, key);
  return json_is_number(v) ? json_number_value(v) : def;
}

int cli_has(const cli_ctx *ctx, const char *key) {
  return json_object_get(ctx->tool, key) != NULL;
}

void cli_set_str(cli_ctx *ctx, const char *key, const char *value) {
  json_object_set_new(ctx->tool, key, json_string(value));
}

void cli_set_int(cli_ctx *ctx, const char *key, int64_t value) {
  json_object_set_new(ctx->tool, key, json_integer(value));
}

msc_options *cli_opts_copy(const msc_options *opts) {
  msc_options *out = NULL;
  if (msc_options_copy(opts, &out) != MSC_OK) return NULL;
  return out;
}

int64_t cli_opt_int(const msc_options *opts, const char *key, int64_t def) {
  int64_t v;
  return msc_options_get_int(opts, key, &v) == MSC_OK ? v : def;
}

double cli_opt_float(const msc_options *opts, const char *key, double def) {
  double v;
  return msc_options_get_float(opts, key, &v) == MSC_OK ? v : def;
}

const char *cli_opt_str(const msc_options *opts, const char *key) {
  static _Thread_local char buf[4096];
  if (msc_options_get_string(opts, key, buf, sizeof buf, NULL) != MSC_OK) buf[0] = 0;
  return buf;
}

/* ---- files ------------------------------------------------------------------------------------ */

char *cli_sibling(const char *path, const char *suffix) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  size_t keep = (dot && dot != base) ? (size_t)(dot - path) : strlen(path);
  char *out = malloc(keep + strlen(suffix) + 1);
  if (!out) return NULL;
  memcpy(out, path, keep);
  strcpy(out + keep, suffix);
  return out;
}

int cli_write_file(const char *path, const void *data, size_t len) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp) return cli_error("out of memory");
  snprintf(tmp, plen + 16, "%s.tmp%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    int e = errno;
    free(tmp);
    return cli_error("cannot write %s: %s", path, strerror(e));
  }
  int ok = fwrite(data, 1, len, f) == len;
  ok &= fflush(f) == 0;
  int e = errno;
  ok &= fclose(f) == 0;
  if (ok && rename(tmp, path) != 0) ok = 0, e = errno;
  if (!ok) {
    remove(tmp);
    free(tmp);
    return cli_error("cannot write %s: %s", path, strerror(e));
  }
  free(tmp);
  return EXIT_OK;
}

char *cli_config_text(const cli_ctx *ctx, const msc_options *opts) {
  size_t len = 0;
  msc_options_to_json(opts, NULL, 0, &len);
  char *buf = malloc(len + 1);
  if (!buf) {
    cli_error("out of memory");
    return NULL;
  }
  json_t *doc = NULL;
  if (msc_options_to_json(opts, buf, len + 1, NULL) == MSC_OK) doc = json_loads(buf, 0, NULL);
  free(buf);
  if (!doc) {
    cli_error("cannot serialise the configuration");
    return NULL;
  }
  /* A checkpoint's copy of the configuration is never part of the configuration. */
  json_object_del(doc, "train.run_config");
  json_t *tool = json_deep_copy(ctx->tool);
  json_object_del(tool, "resume");
  json_object_set_new(doc, "tool", tool);
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_SORT_KEYS);
  json_decref(doc);
  if (!text) {
    cli_error("out of memory");
    return NULL;
  }
  size_t n = strlen(text);
  char *with_nl = realloc(text, n + 2);
  if (!with_nl) {
    free(text);
    cli_error("out of memory");
    return NULL;
  }
  with_nl[n] = '\n';
  with_nl[n + 1] = 0;
  return with_nl;
}

int cli_write_config(const cli_ctx *ctx, const msc_options *opts, const char *path) {
  char *text = cli_config_text(ctx, opts);
  if (!text) return EXIT_ERROR;
  int rc = cli_write_file(path, text, strlen(text));
  free(text);
  return rc;
}

json_t *cli_checkpoint_config(const char *path) {
  json_t *meta = cli_model_metadata_quiet(path);
  const char *train = json_string_value(json_object_get(meta, "mosaic.train"));
  json_t *opts = train ? json_loads(train, 0, NULL) : NULL;
  const char *text = json_string_value(json_object_get(opts, "train.run_config"));
  json_t *doc = text && text[0] ? json_loads(text, 0, NULL) : NULL;
  json_decref(opts);
  json_decref(meta);
  if (doc && !json_is_object(doc)) {
    json_decref(doc);
    doc = NULL;
  }
  return doc;
}
