/*
 * compare_seg.c — `mosaic compare --task segmentation`: the dual-encoder paper's
 * experiment on a dataset with masks (docs/segmentation.md, "Comparing pre-training").
 *
 * Every arm is a pre-training preset (dual, simclr, ...) or `scratch`. A preset arm
 * pre-trains a contrastive model (task contrastive) on the whole training split (with
 * --fraction: that share; the masks are not used), then a segmentation model (encoders
 * copied from it by name, "enc.", decoder fresh) fine-tunes on the labelled share
 * (--labeled-fraction: a draw of that share of the training split, the same chips for
 * every arm) and is scored per pixel on --split with cli_eval_segmentation, the code of
 * `mosaic eval`. `scratch` skips the pre-training. Every arm has the same seed (so the
 * same decoder initialisation, batches and chips), the same pre-training budget (preset
 * arms) and the same fine-tuning budget.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#define MAX_ARMS 16

/* Steps of a run over n samples: epochs × steps per epoch, at most max_steps (> 0). */
static int64_t run_steps(int64_t n, int64_t batch, int64_t epochs, int64_t max_steps) {
  int64_t bsz = cli_train_batch(n, batch);
  int64_t total = epochs * (bsz > 0 ? n / bsz : 0);
  return max_steps > 0 && max_steps < total ? max_steps : total;
}

typedef struct {
  const char *name;
  int pretrained;
  double pretrain_s, finetune_s, eval_s;
  cli_seg_result r;
} arm;

/* Pre-trains the contrastive model of a preset arm; *out gets it. */
static int pretrain(cli_ctx *ctx, const char *preset, msc_dataset *train, int64_t total,
                    const char *path, cli_progress *pg, msc_model **out) {
  msc_options *o = cli_opts_copy(ctx->opts);
  msc_status st = o ? msc_options_set_string(o, "task", "contrastive") : MSC_E_OUT_OF_MEMORY;
  if (st == MSC_OK) st = msc_options_set_string(o, "train.preset", preset);
  if (st == MSC_OK) st = cli_default_schedule(o, total);
  if (st != MSC_OK) {
    msc_options_free(o);
    return cli_lib_error(st, "%s: pre-training options", preset);
  }
  int rc = cli_check_labels(o, train);
  if (rc == EXIT_OK && (st = msc_model_create(o, out)) != MSC_OK)
    rc = cli_lib_error(st, "%s: cannot create the pre-training model", preset);
  msc_options_free(o);
  if (rc != EXIT_OK) return rc;
  char title[64];
  snprintf(title, sizeof title, "%s pre-train", preset);
  cli_train_job job = {
      .model = *out,
      .train = train,
      .epochs = cli_int(ctx, "epochs", 1),
      .batch = cli_int(ctx, "batch", 32),
      .max_steps = cli_int(ctx, "max_steps", 0),
      .workers = (int32_t)cli_int(ctx, "workers", 1),
      .seed = (uint64_t)cli_opt_int(ctx->opts, "seed", 42),
      .save_path = path,
      .title = title,
      .progress = pg,
      .print_epochs = 1,
  };
  return cli_train_run(&job);
}

/* Creates the segmentation model of an arm, copies the encoders of src (when not NULL)
 * and fine-tunes it on the labelled chips. */
static int finetune(cli_ctx *ctx, const char *name, msc_model *src, msc_dataset *labelled,
                    int64_t total, const char *path, cli_progress *pg, msc_model **out) {
  msc_options *o = cli_opts_copy(ctx->opts);
  msc_status st = o ? msc_options_set_string(o, "task", "segmentation") : MSC_E_OUT_OF_MEMORY;
  if (st == MSC_OK && cli_has(ctx, "probe_lr"))
    st = msc_options_set_float(o, "optim.lr", cli_float(ctx, "probe_lr", 0.001));
  if (st == MSC_OK) st = cli_default_schedule(o, total);
  if (st == MSC_OK) st = msc_model_create(o, out);
  msc_options_free(o);
  if (st != MSC_OK) return cli_lib_error(st, "%s: cannot create the segmentation model", name);
  int64_t copied = 0;
  if (src && (st = msc_model_copy_weights(*out, src, "enc.", &copied)) != MSC_OK)
    return cli_lib_error(st, "%s: copying the encoders", name);
  if (src)
    printf("  %s: %lld encoder tensors copied into the segmentation model\n", name,
           (long long)copied);
  char title[64];
  snprintf(title, sizeof title, "%s fine-tune", name);
  cli_train_job job = {
      .model = *out,
      .train = labelled,
      .epochs = cli_int(ctx, "probe_epochs", 5),
      .batch = cli_int(ctx, "batch", 32),
      .max_steps = cli_int(ctx, "max_steps", 0),
      .workers = (int32_t)cli_int(ctx, "workers", 1),
      .seed = (uint64_t)cli_opt_int(ctx->opts, "seed", 42),
      .save_path = path,
      .title = title,
      .progress = pg,
      .print_epochs = 1,
  };
  return cli_train_run(&job);
}

static void print_table(const arm *arms, int done, const msc_model *model, int64_t c) {
  printf("\n%-12s %8s %9s %9s", "arm", "pretrain", "pixel acc", "mIoU");
  for (int64_t k = 0; k < c; ++k) {
    char head[24];
    snprintf(head, sizeof head, "IoU %.12s", msc_model_class_name(model, k));
    printf(" %16s", head);
  }
  printf(" %10s\n", "time");
  for (int i = 0; i < done; ++i) {
    char dur[32];
    cli_format_duration(arms[i].pretrain_s + arms[i].finetune_s, dur, sizeof dur);
    printf("%-12s %8s %9.4f %9.4f", arms[i].name, arms[i].pretrained ? "yes" : "no",
           arms[i].r.metrics.accuracy, arms[i].r.metrics.miou);
    for (int64_t k = 0; k < c; ++k) printf(" %16.4f", arms[i].r.iou[k]);
    printf(" %10s\n", dur);
  }
}

int cli_compare_segmentation(cli_ctx *ctx, cli_progress *pg) {
  const char *list_text = cli_str(ctx, "presets", "dual,simclr,scratch");
  const char *split = cli_str(ctx, "split", "test");
  const char *dir = cli_str(ctx, "out_dir", "compare");
  const double lf = cli_opt_float(ctx->opts, "data.labeled_fraction", 1);
  int rc = -1;
  /* Every arm name is checked before anything long starts. */
  char *list = strdup(list_text);
  arm arms[MAX_ARMS];
  memset(arms, 0, sizeof arms);
  int na = 0;
  for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t;
       t = strtok_r(NULL, ",", &save)) {
    msc_status st = MSC_OK;
    if (strcmp(t, "scratch") != 0) {
      msc_options *o = NULL;
      msc_options_create(&o);
      st = msc_options_set_string(o, "train.preset", t);
      msc_options_free(o);
    }
    if (st != MSC_OK || na == MAX_ARMS) {
      rc = cli_usage("compare", "--presets: '%s' is not a preset or scratch (%s)", t,
                     na == MAX_ARMS ? "at most 16"
                                    : "dual, simclr, mosaic1, mosaic2, supervised, scratch");
      break;
    }
    arms[na].name = t;
    arms[na++].pretrained = strcmp(t, "scratch") != 0;
  }
  if (rc < 0 && na == 0) rc = cli_usage("compare", "--presets is empty");
  if (rc < 0)
    rc = EXIT_OK;
  else {
    free(list);
    return rc;
  }
  /* Pre-training: the training split (--fraction), every chip, masks unused. The
   * labelled chips: a draw of --labeled-fraction of the training split, with masks. */
  msc_dataset *train = NULL, *labelled = NULL;
  msc_options *lo = cli_opts_copy(ctx->opts);
  if (!lo) rc = cli_error("out of memory");
  if (rc == EXIT_OK) {
    msc_status st = msc_options_set_float(lo, "data.labeled_fraction", 1);
    if (st == MSC_OK) st = msc_options_set_float(lo, "data.fraction", lf);
    if (st != MSC_OK) rc = cli_lib_error(st, "--labeled-fraction");
  }
  if (rc == EXIT_OK) rc = cli_open_dataset(ctx, ctx->opts, NULL, 0, &train);
  if (rc == EXIT_OK) rc = cli_open_dataset(ctx, lo, NULL, 0, &labelled);
  int64_t n = train ? msc_dataset_size(train) : 0,
          nl = labelled ? msc_dataset_size(labelled) : 0;
  if (rc == EXIT_OK && (n < 2 || nl < 2))
    rc = cli_error("%s has %lld sample(s); training needs at least 2",
                   n < 2 ? "the training split" : "the labelled share (--labeled-fraction)",
                   (long long)(n < 2 ? n : nl));
  int64_t mc = 0, msize = 0;
  int32_t ignore = -1;
  if (rc == EXIT_OK && msc_dataset_mask_info(train, &mc, &ignore, &msize) != MSC_OK)
    rc = cli_error("--task segmentation: %s (format %s) has no masks",
                   cli_str(ctx, "data", "?"), cli_str(ctx, "format", "bigearthnet-v2"));
  if (rc == EXIT_OK) rc = cli_model_keys_from_dataset(ctx, ctx->opts, train);
  if (rc == EXIT_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
    rc = cli_error("cannot create %s: %s", dir, strerror(errno));
  size_t dl = strlen(dir) + 64;
  char *path = malloc(dl), *pre_path = malloc(dl);
  if (rc == EXIT_OK && (!path || !pre_path)) rc = cli_error("out of memory");
  if (rc == EXIT_OK) {
    snprintf(path, dl, "%s/compare.config.json", dir);
    rc = cli_write_config(ctx, ctx->opts, path);
  }
  const int64_t batch = cli_int(ctx, "batch", 32), max_steps = cli_int(ctx, "max_steps", 0);
  const int64_t pre_total = run_steps(n, batch, cli_int(ctx, "epochs", 1), max_steps);
  const int64_t ft_total = run_steps(nl, batch, cli_int(ctx, "probe_epochs", 5), max_steps);
  if (rc == EXIT_OK)
    printf("compare %d arms for segmentation on %s: pre-training on %lld training chips "
           "(fraction %g, %lld steps, batch %lld), fine-tuning on %lld labelled chips "
           "(labelled fraction %g, %lld steps), scored per pixel on the %s split\n",
           na, cli_str(ctx, "data", "?"), (long long)n,
           cli_opt_float(ctx->opts, "data.fraction", 1), (long long)pre_total,
           (long long)cli_train_batch(n, batch), (long long)nl, lf, (long long)ft_total, split);
  fflush(stdout);
  msc_model *last = NULL; /* for the class names of the table */
  int done = 0;
  for (int i = 0; rc == EXIT_OK && i < na; ++i) {
    arm *a = &arms[i];
    msc_model *pre = NULL, *seg = NULL;
    double t0 = cli_now();
    if (a->pretrained) {
      snprintf(pre_path, dl, "%s/%s.pretrain.safetensors", dir, a->name);
      rc = pretrain(ctx, a->name, train, pre_total, pre_path, pg, &pre);
    }
    double t1 = cli_now();
    snprintf(path, dl, "%s/%s.safetensors", dir, a->name);
    if (rc == EXIT_OK) rc = finetune(ctx, a->name, pre, labelled, ft_total, path, pg, &seg);
    msc_model_free(pre);
    double t2 = cli_now();
    if (rc == EXIT_OK) rc = cli_eval_segmentation(ctx, seg, split, pg, &a->r);
    a->pretrain_s = t1 - t0, a->finetune_s = t2 - t1, a->eval_s = cli_now() - t2;
    if (rc == EXIT_OK) {
      printf("  %s: pixel accuracy %.4f  mIoU %.4f  macro F1 %.4f\n", a->name,
             a->r.metrics.accuracy, a->r.metrics.miou, a->r.metrics.macro_f1);
      fflush(stdout);
      done++;
      msc_model_free(last);
      last = seg;
    } else {
      msc_model_free(seg);
    }
  }
  if (done > 0) {
    print_table(arms, done, last, arms[0].r.c);
    json_t *doc = json_object(), *results = json_array();
    json_object_set_new(doc, "data", json_string(cli_str(ctx, "data", "")));
    json_object_set_new(doc, "format", json_string(cli_str(ctx, "format", "bigearthnet-v2")));
    json_object_set_new(doc, "task", json_string("segmentation"));
    json_object_set_new(doc, "fraction",
                        json_real(cli_opt_float(ctx->opts, "data.fraction", 1)));
    json_object_set_new(doc, "labeled_fraction", json_real(lf));
    json_object_set_new(doc, "pretrain_samples", json_integer(n));
    json_object_set_new(doc, "labeled_samples", json_integer(nl));
    json_object_set_new(doc, "pretrain_steps", json_integer(pre_total));
    json_object_set_new(doc, "finetune_steps", json_integer(ft_total));
    json_object_set_new(doc, "protocol", json_string("segmentation"));
    json_object_set_new(doc, "split", json_string(split));
    for (int i = 0; i < done; ++i) {
      json_t *e = cli_seg_json(&arms[i].r, last);
      json_object_set_new(e, "preset", json_string(arms[i].name));
      json_object_set_new(e, "pretrained", json_boolean(arms[i].pretrained));
      snprintf(path, dl, "%s/%s.safetensors", dir, arms[i].name);
      json_object_set_new(e, "model", json_string(path));
      if (arms[i].pretrained) {
        snprintf(path, dl, "%s/%s.pretrain.safetensors", dir, arms[i].name);
        json_object_set_new(e, "pretrain_model", json_string(path));
      }
      json_object_set_new(e, "pretrain_seconds", cli_json_num(arms[i].pretrain_s));
      json_object_set_new(e, "finetune_seconds", cli_json_num(arms[i].finetune_s));
      json_object_set_new(e, "train_seconds",
                          cli_json_num(arms[i].pretrain_s + arms[i].finetune_s));
      json_object_set_new(e, "eval_seconds", cli_json_num(arms[i].eval_s));
      json_array_append_new(results, e);
    }
    json_object_set_new(doc, "results", results);
    const char *jp = cli_str(ctx, "json", NULL);
    if (!jp) snprintf(path, dl, "%s/compare.json", dir), jp = path;
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    int wrc = text ? cli_write_file(jp, text, strlen(text)) : cli_error("out of memory");
    free(text);
    if (wrc == EXIT_OK) printf("\nmodels and results in %s (%s)\n", dir, jp);
    if (rc == EXIT_OK) rc = wrc;
  }
  for (int i = 0; i < na; ++i) cli_seg_free(&arms[i].r);
  msc_model_free(last);
  msc_dataset_free(train);
  msc_dataset_free(labelled);
  msc_options_free(lo);
  free(path);
  free(pre_path);
  free(list);
  return rc;
}
