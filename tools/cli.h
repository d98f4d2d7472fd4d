/*
 * cli.h — what the files of the `mosaic` tool share: the command table, the effective
 * configuration (tool keys and library options), error reporting, progress display,
 * and the data helpers (predictions, embeddings, training loop) that several commands
 * use. The tool links libmosaic like any user program (only the public header).
 */
#ifndef MOSAIC_TOOLS_CLI_H
#define MOSAIC_TOOLS_CLI_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <mosaic/mosaic.h>

/* Exit status: 0 success, 1 a runtime error, 2 bad usage, 130 interrupted (SIGINT or
 * SIGTERM; a resumable checkpoint was saved where training was running). */
#define EXIT_OK          0
#define EXIT_ERROR       1
#define EXIT_USAGE       2
#define EXIT_INTERRUPTED 130

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* ---- errors (args.c) ------------------------------------------------------------------ */

/* "mosaic: error: <message>" on stderr; returns EXIT_ERROR. */
int cli_error(const char *fmt, ...) CLI_PRINTF(1, 2);
/* "mosaic: error: <what>: <msc_last_error()>" (or the status string when the message
 * is empty); returns EXIT_ERROR. */
int cli_lib_error(msc_status st, const char *fmt, ...) CLI_PRINTF(2, 3);
/* The message of the last cli_error or cli_lib_error (without "mosaic: error: "; "" if
 * none) and into *status (if not NULL) its library status: cli_lib_error's, MSC_E_IO for
 * cli_error's. For telling the other ranks of a distributed run (train.c). */
const char *cli_last_error(msc_status *status);
/* "mosaic: error: <command>: <message> (see 'mosaic <command> --help')"; returns
 * EXIT_USAGE. command NULL: the command being run (the last one cli_parse parsed), else
 * "mosaic: error: <message> (see 'mosaic --help')". */
int cli_usage(const char *command, const char *fmt, ...) CLI_PRINTF(2, 3);
/* A warning or note on stderr: "mosaic: <message>". Silent on the ranks other than 0
 * of a distributed run. */
void cli_note(const char *fmt, ...) CLI_PRINTF(1, 2);
/* This process's rank in a distributed `mosaic train` (cmd_train.c), else 0: the errors
 * of the other ranks start with "[rank N] ", and their notes are not printed. */
extern int cli_rank;

/* ---- "did you mean" (suggest.c) ----------------------------------------------------------- */

/* Damerau-Levenshtein distance (optimal string alignment, ASCII case ignored) of a[0..la)
 * and b[0..lb). */
int cli_edit_distance(const char *a, size_t la, const char *b, size_t lb);

#define CLI_SUGGEST_MAX 3

/* The valid names closest to a mistyped word: init with the word, add every valid name,
 * then cli_suggest_text gives "; did you mean '--epochs'?" (each name after prefix) or
 * "" when none is close (distance at most 2 and at most half the word's length). */
typedef struct cli_suggest {
  const char *word;
  int best, n;
  char names[CLI_SUGGEST_MAX][96];
  char text[400];
} cli_suggest;

void cli_suggest_init(cli_suggest *s, const char *word);
void cli_suggest_add(cli_suggest *s, const char *name);
void cli_suggest_addn(cli_suggest *s, const char *name, size_t len);
/* Adds every item of a list separated by any of seps ("a|b|c", "a, b, c"). */
void cli_suggest_add_list(cli_suggest *s, const char *list, const char *seps);
const char *cli_suggest_text(cli_suggest *s, const char *prefix);

/* Set by the SIGINT/SIGTERM handler (which does nothing else). */
extern volatile sig_atomic_t cli_interrupted;
void cli_catch_signals(void);

/* ---- configuration (args.c, config.c) ----------------------------------------------------- */

/* Tool keys: their JSON type. */
enum { KEY_STRING, KEY_INT, KEY_FLOAT };

typedef struct cli_ctx {
  const char *command; /* "train", "eval", ... */
  json_t *tool;        /* effective tool keys (name → value), owned */
  msc_options *opts;   /* effective library options, owned */
  json_t *positional;  /* array of the positional arguments */
  int verbosity;
} cli_ctx;

/* Parses argv of one command (after the command's name) into ctx: options of the
 * command's list, --config FILE (applied first), --set KEY=VALUE, --help, -v (adds to
 * verbosity, which starts at the value given). Returns -1 to
 * go on, or an exit status (help printed: EXIT_OK; bad usage: EXIT_USAGE after a
 * message). allowed: the command's option names, NULL-terminated; max_pos: how many
 * positional arguments it takes. */
int cli_parse(cli_ctx *ctx, const char *command, const char *help, const char *const *allowed,
              int max_pos, int argc, char **argv, int verbosity);
void cli_ctx_free(cli_ctx *ctx);

/* Tool keys with their defaults. */
const char *cli_str(const cli_ctx *ctx, const char *key, const char *def);
int64_t cli_int(const cli_ctx *ctx, const char *key, int64_t def);
double cli_float(const cli_ctx *ctx, const char *key, double def);
int cli_has(const cli_ctx *ctx, const char *key);
void cli_set_str(cli_ctx *ctx, const char *key, const char *value);
void cli_set_int(cli_ctx *ctx, const char *key, int64_t value);

/* Library option helpers: a deep copy of opts (msc_options_copy; NULL on failure), and
 * getters that fall back to def. */
msc_options *cli_opts_copy(const msc_options *opts);
int64_t cli_opt_int(const msc_options *opts, const char *key, int64_t def);
double cli_opt_float(const msc_options *opts, const char *key, double def);
/* The string value (static buffer of the call's thread; copy it to keep it). */
const char *cli_opt_str(const msc_options *opts, const char *key);

/* Writes {"tool": {...}, <option keys>...} to path (atomically). Keys named in skip
 * (NULL-terminated) are left out of "tool". Returns EXIT_OK or EXIT_ERROR. */
/* The effective configuration as the JSON text cli_write_config writes (library options
 * and "tool" keys, newline-terminated), malloc'd; NULL after printing an error. */
char *cli_config_text(const cli_ctx *ctx, const msc_options *opts);
int cli_write_config(const cli_ctx *ctx, const msc_options *opts, const char *path);
/* The run configuration a checkpoint of `mosaic train` carries (option train.run_config in
 * its 'mosaic.train' metadata), parsed; NULL if it has none or cannot be read (quietly). */
json_t *cli_checkpoint_config(const char *path);
/* path with its extension (after the last '.' of the last component) replaced by
 * suffix, e.g. ("m.safetensors", ".config.json") → "m.config.json". malloc'd. */
char *cli_sibling(const char *path, const char *suffix);
/* Writes data to path through a temporary file and rename. */
int cli_write_file(const char *path, const void *data, size_t len);

#ifdef MOSAIC_TOOL_PNG
/* Writes an image (rows × cols, channels 1 or 3, row-major bytes) as PNG to path and
 * prints the path (cmd_rplot.c). */
int cli_write_png(const char *path, const unsigned char *img, int64_t rows, int64_t cols,
                  int channels);
/* The same image encoded as PNG into *out (malloc'd, *out_len bytes); EXIT_*. */
int cli_png_encode(const unsigned char *img, int64_t rows, int64_t cols, int channels,
                   unsigned char **out, size_t *out_len);
#endif

/* `mosaic map --quicklook`: a PNG of a written scene output (tools/quicklook.c). */
int cli_quicklook(const char *tif, const char *png, int64_t max_side);

/* ---- progress (progress.c) ------------------------------------------------------------------- */

typedef struct cli_progress {
  int mode;            /* 0 none, 1 bar (terminal), 2 periodic lines */
  double interval;     /* seconds between lines in mode 2 */
  double t0, t_draw;   /* phase start, last output */
  int64_t total, done; /* units (samples) of the phase */
  char label[64];
  int on_screen; /* a bar is drawn and not yet cleared */
  int width;     /* terminal columns */
} cli_progress;

/* mode: "auto" (bar when stderr is a terminal, else lines), "bar", "lines", "none". */
int cli_progress_init(cli_progress *p, const char *mode, double interval);
void cli_progress_begin(cli_progress *p, const char *label, int64_t total);
/* done units so far; extra: appended text (rate and ETA are added before it). */
void cli_progress_update(cli_progress *p, int64_t done, const char *extra);
/* Ends the phase: clears the bar (mode 1) or prints a last line (mode 2). */
void cli_progress_end(cli_progress *p, const char *extra);
/* Clears a bar before other output goes to the terminal. */
void cli_progress_clear(cli_progress *p);
double cli_now(void);
/* "1:02:03" or "2:03" into buf. */
void cli_format_duration(double seconds, char *buf, size_t cap);

/* ---- data (data.c) ----------------------------------------------------------------------- */

/* Opens root as format with a copy of opts whose data.split is split (NULL: keep) and,
 * when full is non-zero, data.fraction = 1. Prints the error; returns EXIT_*. */
int cli_open_dataset(const cli_ctx *ctx, const msc_options *opts, const char *split, int full,
                     msc_dataset **out);
/* -1 when format is a dataset format the library knows; otherwise a usage error naming
 * the closest formats (EXIT_USAGE). cli_parse checks --format with it before anything
 * runs. */
int cli_check_format(const char *command, const char *format);
/* Sets the model keys of opts from the dataset (msc_options_from_dataset: modalities,
 * classes and class names and, unless set, the normalisation as tool.stats says: auto,
 * published, computed over tool.stats_samples samples) and the encoder (tool.encoder). */
int cli_model_keys_from_dataset(const cli_ctx *ctx, msc_options *opts, const msc_dataset *ds);
/* Loads a model with the run-time keys of ctx->opts. */
/* A supervised term (lambda.fused, lambda.views, lambda.bce > 0) on a dataset without
 * labels is refused with a message naming the term. */
int cli_check_labels(const msc_options *o, const msc_dataset *ds);
int cli_load_model(const cli_ctx *ctx, const char *path, msc_model **out);
/* Reads mosaic.* entries of a model file's safetensors header: a new JSON object of the
 * __metadata__ (NULL with a message on error). */
json_t *cli_model_metadata(const char *path);
/* The same without an error message: NULL when it cannot be read. */
json_t *cli_model_metadata_quiet(const char *path);

/* --precision int8 (docs/precision.md, "int8"): calibrates model on --calibrate N
 * batches (default 4) of --batch samples spread evenly over the dataset's split `split`
 * (NULL: the split asked for). Does nothing for other precisions. Returns EXIT_*. */
int cli_calibrate(const cli_ctx *ctx, msc_model *model, const char *split);
/* 1 when the effective options ask for precision int8 (commands without calibration
 * data refuse it: map, compare). */
int cli_wants_int8(const cli_ctx *ctx);

/* Batches of a dataset in order, for inference: n samples of ds in batches of `batch`;
 * probs (n × C) and/or labels (n × C) and/or embeddings (n × dim for `which`), any may
 * be NULL. Shows progress. Returns EXIT_*. */
int cli_infer(msc_model *model, const msc_dataset *ds, int64_t batch, cli_progress *pg,
              const char *label, float **probs, uint8_t **labels, int32_t which, float **emb,
              int64_t *dim);
/* --modalities LIST for cli_infer: the comma-separated dataset modalities its batches
 * keep (the others are removed from every batch, msc_batch_remove_modality), NULL for
 * all. Checks the names against ds; prints the error and returns EXIT_* otherwise. */
int cli_infer_modalities(const char *list, const msc_dataset *ds);
/* Parses --which: the kinds of Python's Model.embed ("fused", "fused_projection", a
 * modality NAME, "NAME_projection", "features" / "projection" for a model of one
 * modality) and "features:NAME", "projection:NAME"; the older "fused-projection",
 * "modality:NAME", "modality-projection:NAME" too. Unknown: EXIT_USAGE with a message. */
int cli_parse_which(const msc_model *model, const char *text, int32_t *which);

/* ---- training and evaluation (train.c, evaluate.c) ---------------------------------------- */

/* A segmentation model scored per pixel (segscore.c). */
typedef struct cli_seg_result {
  int64_t n, c;              /* samples, classes */
  msc_class_metrics metrics; /* pixel accuracy, mIoU, macro F1, pixels counted */
  int64_t *confusion;        /* c × c, row = true class */
  double *iou, *f1;          /* c each (NaN: class absent from truth and predictions) */
} cli_seg_result;

/* msc_predict_mask over every sample of ds in order, batches of `batch`, one confusion
 * matrix of the counted pixels against the masks (the dataset's ignore index), then
 * msc_metrics_from_confusion; the arrays of *r are allocated (cli_seg_free; freed on
 * error). Shows progress. Returns EXIT_* (EXIT_INTERRUPTED on Ctrl-C). */
int cli_seg_score(msc_model *model, const msc_dataset *ds, int64_t batch, cli_progress *pg,
                  const char *label, cli_seg_result *r);
void cli_seg_free(cli_seg_result *r);

/* --protocol cluster (cluster.c): cluster coherence of a split's embeddings. */
typedef struct cli_cluster_result {
  int64_t n, groups, k;          /* samples grouped, groups, neighbours */
  int single;                    /* grouped by class (single-label), else by rarest label */
  double silhouette, knn_purity; /* cosine */
  char method[8], svg[4096];     /* the projection drawn (tsne|pca) and where; "" if none */
} cli_cluster_result;

/* Embeds `split` (tool.which), groups the samples, computes silhouette and kNN purity
 * (tool.k), and with a projection path writes the projection (tool.method,
 * tool.perplexity) as TSV and SVG beside it. lenient: a split with too few samples or
 * groups gives NaN metrics and no projection instead of an error (compare). Returns
 * EXIT_*. */
int cli_eval_cluster(cli_ctx *ctx, msc_model *model, const char *split, const char *projection,
                     int lenient, cli_progress *pg, cli_cluster_result *r);
/* A 2-D projection of a split's embeddings kept in memory (`mosaic report`). */
typedef struct cli_projection {
  int64_t n, classes; /* samples, classes of the dataset */
  float *xy;          /* n × 2 */
  int32_t *group;     /* n: the sample's group (class), -1 for none */
  char **names;       /* classes: the class names */
  char title[192];    /* "t-SNE of the test split (40 samples), by class" */
} cli_projection;

/* cli_eval_cluster, with the projection kept in *out (n = 0 when lenient gave none)
 * instead of files; free it with cli_projection_free. Returns EXIT_*. */
int cli_cluster_projection(cli_ctx *ctx, msc_model *model, const char *split, int lenient,
                           cli_progress *pg, cli_cluster_result *r, cli_projection *out);
/* The projection drawn as an <svg id="id"> scatter plot coloured by group (rep_scatter). */
void cli_projection_svg(FILE *f, const char *id, const cli_projection *p);
void cli_projection_free(cli_projection *p);
void cli_cluster_print(const cli_cluster_result *r, FILE *f);
json_t *cli_cluster_json(const cli_cluster_result *r);

typedef struct cli_train_job {
  msc_model *model;
  msc_dataset *train, *val;         /* val may be NULL */
  int64_t epochs, batch, max_steps; /* max_steps 0: no limit */
  int64_t done_steps;               /* steps of this run already done (resume) */
  int32_t workers;
  uint64_t seed;
  float threshold;
  const char *save_path; /* checkpoint after each epoch and on interrupt; or NULL */
  const char *title;     /* "train", "linear probe", ... */
  cli_progress *progress;
  int print_epochs; /* epoch summaries on stdout */
  json_t *history;  /* if not NULL: one object per epoch is appended */
  int segmentation; /* val is scored per pixel (cli_seg_score) */
  int64_t saves;    /* out: checkpoints written to save_path */
  /* If not NULL: the per-step log (JSON Lines, one object per optimiser step, flushed as
   * it goes; train.c). On resume (done_steps > 0) its lines up to step done_steps are
   * kept and later ones dropped; otherwise it starts empty. */
  const char *steps_path;
  /* Data-parallel training (docs/distributed.md), or NULL: the model is attached to it;
   * this rank reads its share of every global batch (msc_loader_create_shard). Only rank
   * 0 should have save_path, steps_path, val and history. The ranks agree
   * (msc_dist_agree) on whether rank 0 opened its step log, and at the end of each epoch
   * on whether its validation and checkpoint succeeded, the others waiting for it without
   * a timeout: a failure of rank 0 there becomes every rank's error at once. */
  msc_dist *dist;
  double dist_timeout; /* the collectives' timeout, restored after each agreement */
  /* out: the run failed and every rank knows it (an agreement reported the failure), so
   * finalising MPI (msc_dist_free) will not wait for a rank still training */
  int failed_together;
} cli_train_job;

/* Runs the job; returns EXIT_OK, EXIT_ERROR or EXIT_INTERRUPTED (after saving). */
int cli_train_run(cli_train_job *job);
/* Steps per epoch for n samples (drop_last) and the effective batch. */
int64_t cli_train_batch(int64_t n, int64_t batch);
/* The tool's learning-rate schedule for a run of `total` steps: optim.total_steps = total
 * and optim.warmup_steps = total / 20 (0 below 20 steps), each unless o sets it. */
msc_status cli_default_schedule(msc_options *o, int64_t total);
/* A JSON number, or null for NaN and infinities (JSON has neither). */
json_t *cli_json_num(double v);

typedef struct cli_eval_result {
  int64_t n, c;
  double m[MSC_METRIC_COUNT];
  double *ap, *f1, *hamming, *brier; /* c each */
  int64_t *support;
  char **class_names; /* c */
  float threshold;
  /* Single-label scoring (single = 1): the arg max of each row against the sample's one
   * class (samples without exactly one label left out, `unlabelled` of them). */
  int single;
  msc_class_metrics cm;
  int64_t top_k; /* single-label: k of the top-k accuracy, min(5, classes) */
  double top_k_acc;
  double *argmax_f1, *iou; /* c each (NaN: class absent from truth and predictions) */
  int64_t *confusion;      /* c × c, row = true class */
  int64_t unlabelled;
} cli_eval_result;

/* 1 when the model is single-label (option labels = single): softmax outputs. */
int cli_model_single_label(const msc_model *model);

/* Metrics of probs against labels into r (allocated; free with cli_eval_free); with
 * single, the single-label metrics too. */
int cli_eval_metrics(const float *probs, const uint8_t *labels, int64_t n, int64_t c,
                     float threshold, int single, const msc_model *model, cli_eval_result *r);
void cli_eval_free(cli_eval_result *r);
void cli_eval_print(const cli_eval_result *r, FILE *f, int per_class);
json_t *cli_eval_json(const cli_eval_result *r);

/* kNN scores: for every query (nq × d), the mean labels of its k nearest references
 * (nr × d, labels nr × c) by cosine similarity; ties by the smaller index. */
int cli_knn_scores(const float *ref, const uint8_t *ref_labels, int64_t nr, const float *q,
                   int64_t nq, int64_t d, int64_t c, int64_t k, float *scores);

/* The evaluation protocols on an opened model: "model", "linear", "finetune", "knn".
 * Trains what the protocol needs on the training split of ctx (data.fraction), then
 * scores the split `split`. r receives the metrics. */
int cli_evaluate(cli_ctx *ctx, msc_model *model, const char *protocol, const char *split,
                 cli_progress *pg, cli_eval_result *r);

/* 1 when the model has a segmentation decoder (its option task = segmentation). */
int cli_model_segmentation(const msc_model *model);

/* cli_seg_score over the whole split `split` of ctx's dataset (batch: option --batch).
 * What `mosaic eval` and `mosaic compare --task segmentation` report. */
int cli_eval_segmentation(cli_ctx *ctx, msc_model *model, const char *split, cli_progress *pg,
                          cli_seg_result *r);
/* "pixel accuracy ... mIoU ..." and one line per class (names from the model). */
void cli_seg_print(const cli_seg_result *r, const msc_model *model, FILE *f);
/* {"pixels", "pixel_accuracy", "miou", "macro_f1", "classes": [{"name", "iou", "f1"}]} */
json_t *cli_seg_json(const cli_seg_result *r, const msc_model *model);

/* ---- forecasting (forecast.c) -------------------------------------------------------------- */

typedef struct cli_forecast_result {
  int64_t horizon, train_samples, test_samples, skipped_train, skipped_test, features;
  char index[16];
  double *lambda; /* horizon: the ridge λ of each step */
  int64_t *count; /* horizon + 1: finite targets of each step, then of all */
  /* 2 × (horizon + 1): [0] the model, [1] persistence; per step, then over all steps */
  double *mae, *rmse;
} cli_forecast_result;

/* The forecasting protocol (forecast.c's comment): tool keys horizon, index, lambda; fits
 * on the training split of ctx, scores `split`. */
int cli_forecast(cli_ctx *ctx, msc_model *model, const char *split, cli_progress *pg,
                 cli_forecast_result *r);
void cli_forecast_print(const cli_forecast_result *r, FILE *f);
json_t *cli_forecast_json(const cli_forecast_result *r);
void cli_forecast_free(cli_forecast_result *r);
/* MSC_VI_* of an index name ("ndvi", ...). */
int cli_vi_kind(const char *name, int32_t *kind);
/* The PASTIS band table with data.sits.scale / data.sits.offset of opts. */
int cli_vi_bands(const msc_options *opts, msc_vi_bands *b);
/* The model's "rp" modality and its plot size. */
int cli_model_rp(const msc_model *model, int32_t *modality, int64_t *size);

/* ---- commands ------------------------------------------------------------------------------- */

int cmd_train(int argc, char **argv, int verbosity);
int cmd_eval(int argc, char **argv, int verbosity);
int cmd_embed(int argc, char **argv, int verbosity);
int cmd_predict(int argc, char **argv, int verbosity);
int cmd_map(int argc, char **argv, int verbosity);
int cmd_info(int argc, char **argv, int verbosity);
int cmd_synth(int argc, char **argv, int verbosity);
int cmd_compare(int argc, char **argv, int verbosity);
/* An arm of `mosaic compare` (compare_arms.c): a loss preset with the run's encoders
 * ("supervised") or with an encoder of its own ("supervised@convnextv2_atto"). */
typedef struct cli_arm {
  char spec[112];    /* as given; also the name of its files in --out-dir */
  char preset[112];  /* train.preset */
  char encoder[112]; /* modality.#.encoder of every modality, or "" for the run's */
} cli_arm;

/* Parses --presets LIST (','-separated PRESET or PRESET@ENCODER) into arms[0..*n), at
 * most cap. Returns -1 when every arm is well formed, names a known preset and encoder
 * and is given once; otherwise a usage error (EXIT_USAGE, message printed). */
int cli_arms_parse(const char *list, cli_arm *arms, int cap, int *n);

typedef struct cli_arm_info {
  char encoder[112]; /* the arm's encoders: "resnet18", or "a/b" when modalities differ */
  char label[240];   /* its table row: "supervised (convnextv2_atto)" */
  char why[256];     /* "" when it runs, else why it is skipped */
  char note[192];    /* "" or how it runs otherwise than asked ("on the CPU: ...") */
} cli_arm_info;

/* The options of an arm: a copy of base (the run's, model keys set from ds) with the
 * arm's preset and encoder in *out, or *out NULL and info->why when the arm cannot run on
 * this data (a preset aligning two modalities on a dataset of one; a ConvNeXt encoder
 * whose stages do not fit the patches; the cuda backend asked for a ConvNeXt encoder or
 * cross-attention fusion, whose ops it lacks; with backend auto such an arm is set to
 * the CPU instead, said in info->note). Returns EXIT_OK, or EXIT_ERROR with a message. */
int cli_arm_options(const cli_arm *arm, const msc_options *base, const msc_dataset *ds,
                    msc_options **out, cli_arm_info *info);

/* `mosaic compare --task segmentation` (compare_seg.c), after cmd_compare parsed ctx. */
int cli_compare_segmentation(cli_ctx *ctx, cli_progress *pg);
int cmd_rplot(int argc, char **argv, int verbosity);
int cmd_report(int argc, char **argv, int verbosity);
int cmd_version(int argc, char **argv, int verbosity);
int cmd_backends(int argc, char **argv, int verbosity);

/* Sets the level of library messages shown on stderr (mosaic.c): 0 warnings, 1 info,
 * 2 debug. */
void cli_set_verbosity(int verbosity);

/* Where `cmake --install` puts the documentation (<prefix>/share/doc/mosaic; set by
 * tools/CMakeLists.txt), and the lines every --help ends with: the man page and that
 * folder. */
#ifndef MOSAIC_DOCDIR
#define MOSAIC_DOCDIR "/usr/local/share/doc/mosaic"
#endif
void cli_help_footer(void);

/* Flushes stdout; an error writing it is EXIT_ERROR with a message. */
int cli_finish_output(void);

#endif
