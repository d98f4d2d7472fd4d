/*
 * cmd_compare.c — `mosaic compare`: trains several arms (a loss preset, with the run's
 * encoders or one of its own, compare_arms.c) on the same data, fraction and schedule,
 * scores each with the same protocol, and prints one table (the paper's comparison of
 * MoSAiC with its baselines, docs/compare.md). Arms the data does not allow are skipped
 * with their reason.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic compare --data DIR [options]\n"
    "\n"
    "Trains one model per arm on the same training data (and --fraction), epochs,\n"
    "batch, fusion and seed, scores every model on the same split with the same\n"
    "protocol and prints one table; models and compare.json go to --out-dir. An arm is\n"
    "a preset with --encoder (PRESET) or with its own encoder (PRESET@ENCODER). Arms\n"
    "the data does not allow are skipped, saying why (compare.md): iai, dual, mosaic1\n"
    "and mosaic2 on one modality, ConvNeXt on patches under its total stride. With\n"
    "--backend auto, ConvNeXt and xattn arms run on the CPU (cuda.md).\n"
    "\n"
    "Options:\n"
    "  --data DIR          dataset root (required)\n"
    "  --format NAME       dataset format (default bigearthnet-v2)\n"
    "  --presets LIST      ','-separated arms, PRESET or PRESET@ENCODER (default\n"
    "                      supervised,supervised@convnextv2_atto,simclr,iai,dual,\n"
    "                      mosaic1,mosaic2: the paper's rows)\n"
    "  --task NAME         contrastive (default) or segmentation (below)\n"
    "  --fraction F        stratified share of the training split; the rest is dropped\n"
    "  --labeled-fraction F  every training sample kept, a stratified share F labelled:\n"
    "                      the self-supervised terms see all, the supervised ones the\n"
    "                      labelled share (MoSAiC's experiment); linear and fine-tune\n"
    "                      probes train on the labelled share\n"
    "  --epochs N          training epochs per preset (default 1)\n"
    "  --batch N           samples per step (default 32)\n"
    "  --max-steps N       at most N training steps per preset\n"
    "  --encoder NAME      encoder of every modality of the arms without @ENCODER\n"
    "                      (default resnet18)\n"
    "  --fusion NAME       how every arm fuses the modalities: concat (default) or xattn\n"
    "                      (cross-attention; fusion.dim, fusion.heads)\n"
    "  --lr F              peak learning rate (default 0.001)\n"
    "  --protocol NAME     linear (default: classifier on frozen encoders, fair to the\n"
    "                      self-supervised presets), knn, finetune or model\n"
    "  --probe-epochs N    linear/finetune epochs (default 5); --probe-lr F\n"
    "  --k N, --which NAME knn settings (as for 'mosaic eval')\n"
    "  --split NAME        the split scored (default test)\n"
    "  --threshold T       F1 threshold (default 0.5)\n"
    "  --out-dir DIR       where models and results go (default compare)\n"
    "  --json PATH         results as JSON (default DIR/compare.json)\n"
    "  --precision f32|bf16  compute precision (bf16: AVX-512/AMX CPUs, precision.md)\n"
    "  --seed N, --threads N, --backend NAME, --workers N, --stats MODE, --progress MODE,\n"
    "  --config FILE, --set KEY=VALUE    as for 'mosaic train'\n"
    "\n"
    "With --task segmentation (a dataset with masks, e.g. --format sen1floods11; the\n"
    "dual-encoder paper's experiment, segmentation.md \"Comparing pre-training\"),\n"
    "every arm of --presets (default dual,simclr,scratch) is a contrastive pre-training\n"
    "preset, or scratch for none:\n"
    "  pre-training        a contrastive model of the preset on every training chip\n"
    "                      (--fraction: that share; masks unused), --epochs, --lr,\n"
    "                      saved as DIR/ARM.pretrain.safetensors\n"
    "  fine-tuning         a segmentation model (encoders copied from the pre-trained\n"
    "                      model, decoder fresh) on the labelled share: a draw of\n"
    "                      --labeled-fraction of the training split, the same chips for\n"
    "                      every arm; --probe-epochs (default 5), --probe-lr (default\n"
    "                      --lr), warm-up and cosine as 'mosaic train'; DIR/ARM.safetensors\n"
    "  scoring             per pixel on --split as 'mosaic eval': pixel accuracy, mIoU,\n"
    "                      per-class IoU and F1\n"
    "  --max-steps N caps each phase. Every arm has the same seed, so the same decoder\n"
    "  initialisation, chips and batches.\n";

static const char *const allowed[] = {
    "data",         "format",    "presets", "fraction", "epochs",
    "batch",        "max-steps", "encoder", "lr",       "protocol",
    "probe-epochs", "probe-lr",  "k",       "which",    "split",
    "threshold",    "out-dir",   "json",    "seed",     "threads",
    "backend",      "workers",   "stats",   "progress", "labeled-fraction",
    "task",         "precision", "fusion",  NULL};

/* The paper's rows (docs/compare.md, "The rows"). */
static const char k_default_arms[] =
    "supervised,supervised@convnextv2_atto,simclr,iai,dual,mosaic1,mosaic2";

/* Which samples each non-zero term of a preset sees: the self-supervised terms every
 * training sample, the supervised ones the labelled share (--labeled-fraction). */
static void print_term_shares(const msc_options *o, const char *preset, int64_t n,
                              int64_t labeled) {
  static const char *const terms[5] = {"intra", "inter", "fused", "views", "bce"};
  printf("  %s: terms see", preset);
  for (int t = 0; t < 5; ++t) {
    char key[32];
    snprintf(key, sizeof key, "lambda.%s", terms[t]);
    if (cli_opt_float(o, key, 0) <= 0) continue;
    const int64_t k = t < 2 ? n : labeled;
    printf(" %s %.0f%%", terms[t], n > 0 ? 100.0 * (double)k / (double)n : 0.0);
  }
  printf(" of %lld samples\n", (long long)n);
}

int cmd_compare(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "compare", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  if (!cli_has(&ctx, "data")) {
    rc = cli_usage("compare", "--data DIR is required");
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *presets = cli_str(&ctx, "presets", k_default_arms);
  const char *protocol = cli_str(&ctx, "protocol", "linear");
  const char *split = cli_str(&ctx, "split", "test");
  const char *dir = cli_str(&ctx, "out_dir", "compare");
  int64_t epochs = cli_int(&ctx, "epochs", 1), batch = cli_int(&ctx, "batch", 32);
  if (cli_wants_int8(&ctx)) { /* compare trains its arms: int8 is inference only */
    rc = cli_usage("compare", "--precision int8 is for inference only (embed, eval, "
                              "predict): compare trains, use f32 or bf16");
    cli_ctx_free(&ctx);
    return rc;
  }
  if (batch < 2) {
    rc = cli_usage("compare", "--batch must be at least 2");
    cli_ctx_free(&ctx);
    return rc;
  }
  if (strcmp(cli_opt_str(ctx.opts, "task"), "segmentation") == 0) {
    cli_progress pg;
    cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                      cli_float(&ctx, "progress_interval", 10));
    cli_catch_signals();
    rc = cli_compare_segmentation(&ctx, &pg);
    cli_ctx_free(&ctx);
    if (rc == EXIT_OK) rc = cli_finish_output();
    return rc;
  }
  /* Check every arm before anything long starts. */
  cli_arm arms[16];
  int np = 0;
  rc = cli_arms_parse(presets, arms, 16, &np);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  cli_progress pg;
  cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals();
  msc_dataset *train = NULL;
  rc = cli_open_dataset(&ctx, ctx.opts, NULL, 0, &train);
  int64_t n = train ? msc_dataset_size(train) : 0;
  if (rc == EXIT_OK && n < 2)
    rc = cli_error("the training split has %lld sample(s); training needs at least 2",
                   (long long)n);
  if (rc == EXIT_OK) rc = cli_model_keys_from_dataset(&ctx, ctx.opts, train);
  if (rc == EXIT_OK && mkdir(dir, 0777) != 0 && errno != EEXIST)
    rc = cli_error("cannot create %s: %s", dir, strerror(errno));
  size_t dl = strlen(dir) + sizeof arms[0].spec + 64;
  char *path = malloc(dl);
  if (rc == EXIT_OK && !path) rc = cli_error("out of memory");
  if (rc == EXIT_OK) {
    snprintf(path, dl, "%s/compare.config.json", dir);
    rc = cli_write_config(&ctx, ctx.opts, path);
  }
  int64_t bsz = cli_train_batch(n, batch), spe = n / (bsz > 0 ? bsz : 1);
  int64_t total = epochs * spe, max_steps = cli_int(&ctx, "max_steps", 0);
  if (max_steps > 0 && max_steps < total) total = max_steps;
  if (rc == EXIT_OK)
    printf("compare %d arms on %lld training samples of %s (fraction %g, %lld labelled), "
           "%lld steps each (batch %lld), fusion %s, protocol %s on the %s split\n",
           np, (long long)n, cli_str(&ctx, "data", "?"),
           cli_opt_float(ctx.opts, "data.fraction", 1),
           (long long)msc_dataset_labeled_count(train), (long long)total, (long long)bsz,
           cli_opt_str(ctx.opts, "fusion"), protocol, split);
  json_t *results = json_array(), *skipped = json_array();
  char(*labels)[sizeof(((cli_arm_info *)0)->label)] = calloc((size_t)np, sizeof *labels);
  double(*rows)[MSC_METRIC_COUNT + 2] = calloc((size_t)np, sizeof *rows);
  double(*acc)[2] = calloc((size_t)np, sizeof *acc); /* single-label accuracy, macro F1 */
  double(*coh)[2] = calloc((size_t)np, sizeof *coh); /* silhouette, kNN purity */
  int any_single = 0;
  int done = 0;
  if (rc == EXIT_OK && (!rows || !acc || !coh || !labels || !results || !skipped))
    rc = cli_error("out of memory");
  for (int i = 0; rc == EXIT_OK && i < np; ++i) {
    const char *preset = arms[i].preset, *spec = arms[i].spec;
    msc_options *o = NULL;
    cli_arm_info info;
    rc = cli_arm_options(&arms[i], ctx.opts, train, &o, &info);
    if (rc != EXIT_OK) break;
    if (!o) { /* the data does not allow this arm: a row fewer, not a failure */
      printf("  %s: skipped: %s\n", info.label, info.why);
      json_t *e = json_object();
      json_object_set_new(e, "arm", json_string(spec));
      json_object_set_new(e, "preset", json_string(preset));
      json_object_set_new(e, "encoder", json_string(info.encoder));
      json_object_set_new(e, "reason", json_string(info.why));
      json_array_append_new(skipped, e);
      continue;
    }
    if (info.note[0]) printf("  %s: %s\n", info.label, info.note);
    msc_model *model = NULL;
    msc_status st = cli_default_schedule(o, total);
    if (st == MSC_OK && cli_check_labels(o, train) != EXIT_OK) {
      msc_options_free(o);
      rc = EXIT_ERROR;
      break;
    }
    if (st == MSC_OK) st = msc_model_create(o, &model);
    if (st == MSC_OK) print_term_shares(o, info.label, n, msc_dataset_labeled_count(train));
    char backend[32];
    snprintf(backend, sizeof backend, "%s", model ? msc_model_backend(model) : "");
    msc_options_free(o);
    if (st != MSC_OK) {
      rc = cli_lib_error(st, "%s: cannot create the model", spec);
      break;
    }
    snprintf(path, dl, "%s/%s.safetensors", dir, spec);
    cli_train_job job = {
        .model = model,
        .train = train,
        .epochs = epochs,
        .batch = batch,
        .max_steps = max_steps,
        .workers = (int32_t)cli_int(&ctx, "workers", 1),
        .seed = (uint64_t)cli_opt_int(ctx.opts, "seed", 42),
        .threshold = (float)cli_float(&ctx, "threshold", 0.5),
        .save_path = path,
        .title = spec,
        .progress = &pg,
        .print_epochs = 1,
    };
    double t0 = cli_now();
    rc = cli_train_run(&job);
    double train_s = cli_now() - t0;
    cli_eval_result r;
    memset(&r, 0, sizeof r);
    if (rc == EXIT_OK) rc = cli_evaluate(&ctx, model, protocol, split, &pg, &r);
    /* cluster coherence of the arm's embeddings and their projection, beside the model */
    cli_cluster_result cr;
    memset(&cr, 0, sizeof cr);
    size_t pl = strlen(dir) + strlen(spec) + 32;
    char *proj = rc == EXIT_OK ? malloc(pl) : NULL;
    if (rc == EXIT_OK && !proj) rc = cli_error("out of memory");
    if (rc == EXIT_OK) {
      snprintf(proj, pl, "%s/%s.projection.tsv", dir, spec);
      rc = cli_eval_cluster(&ctx, model, split, proj, 1, &pg, &cr);
      coh[done][0] = cr.silhouette;
      coh[done][1] = cr.knn_purity;
    }
    free(proj);
    if (rc == EXIT_OK) {
      memcpy(rows[done], r.m, sizeof r.m);
      rows[done][MSC_METRIC_COUNT] = train_s;
      rows[done][MSC_METRIC_COUNT + 1] = cli_now() - t0 - train_s;
      snprintf(labels[done], sizeof labels[done], "%s", info.label);
      printf("  %s: macro AP %.4f  micro AP %.4f  macro F1 %.4f", info.label,
             r.m[MSC_METRIC_MACRO_AP], r.m[MSC_METRIC_MICRO_AP], r.m[MSC_METRIC_MACRO_F1]);
      if (r.single) {
        printf("  accuracy %.4f  macro F1 (arg max) %.4f", r.cm.accuracy, r.cm.macro_f1);
        acc[done][0] = r.cm.accuracy;
        acc[done][1] = r.cm.macro_f1;
        any_single = 1;
      }
      printf("  silhouette %.4f  kNN purity %.4f", cr.silhouette, cr.knn_purity);
      printf(" (%s)\n", protocol);
      fflush(stdout);
      json_t *e = cli_eval_json(&r);
      json_object_set_new(e, "cluster", cli_cluster_json(&cr));
      json_object_set_new(e, "arm", json_string(spec));
      json_object_set_new(e, "preset", json_string(preset));
      json_object_set_new(e, "encoder", json_string(info.encoder));
      json_object_set_new(e, "row", json_string(info.label));
      json_object_set_new(e, "backend", json_string(backend));
      json_object_set_new(e, "model", json_string(path));
      json_object_set_new(e, "train_seconds", cli_json_num(train_s));
      json_object_set_new(e, "eval_seconds", cli_json_num(rows[done][MSC_METRIC_COUNT + 1]));
      json_array_append_new(results, e);
      done++;
    }
    cli_eval_free(&r);
    msc_model_free(model);
  }
  if (rc == EXIT_OK && done == 0)
    rc = cli_error("no arm of --presets can run on this data (the reasons are above)");
  int width = 12;
  for (int i = 0; i < done; ++i)
    if ((int)strlen(labels[i]) > width) width = (int)strlen(labels[i]);
  if (done > 0) {
    printf("\n%-*s", width, "arm");
    if (any_single) printf(" %9s %9s", "accuracy", "F1 argmax");
    printf(" %9s %9s %9s %9s %9s %9s %10s %10s %10s\n", "macro AP", "micro AP", "macro F1",
           "micro F1", "Hamming", "Brier", "silhouette", "kNN purity", "train");
    for (int i = 0; i < done; ++i) {
      char dur[32];
      cli_format_duration(rows[i][MSC_METRIC_COUNT], dur, sizeof dur);
      printf("%-*s", width, labels[i]);
      if (any_single) printf(" %9.4f %9.4f", acc[i][0], acc[i][1]);
      printf(" %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f %10.4f %10.4f %10s\n",
             rows[i][MSC_METRIC_MACRO_AP], rows[i][MSC_METRIC_MICRO_AP],
             rows[i][MSC_METRIC_MACRO_F1], rows[i][MSC_METRIC_MICRO_F1],
             rows[i][MSC_METRIC_HAMMING], rows[i][MSC_METRIC_BRIER], coh[i][0], coh[i][1], dur);
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "data", json_string(cli_str(&ctx, "data", "")));
    json_object_set_new(doc, "format", json_string(cli_str(&ctx, "format", "bigearthnet-v2")));
    json_object_set_new(doc, "fraction",
                        json_real(cli_opt_float(ctx.opts, "data.fraction", 1)));
    json_object_set_new(doc, "labeled_fraction",
                        json_real(cli_opt_float(ctx.opts, "data.labeled_fraction", 1)));
    json_object_set_new(doc, "labeled_samples", json_integer(msc_dataset_labeled_count(train)));
    json_object_set_new(doc, "protocol", json_string(protocol));
    json_object_set_new(doc, "split", json_string(split));
    json_object_set_new(doc, "steps", json_integer(total));
    json_object_set_new(doc, "fusion", json_string(cli_opt_str(ctx.opts, "fusion")));
    json_object_set_new(doc, "results", results);
    json_object_set_new(doc, "skipped", skipped);
    results = skipped = NULL;
    const char *jp = cli_str(&ctx, "json", NULL);
    if (!jp) snprintf(path, dl, "%s/compare.json", dir), jp = path;
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    int wrc = text ? cli_write_file(jp, text, strlen(text)) : cli_error("out of memory");
    free(text);
    if (wrc == EXIT_OK) printf("\nmodels and results in %s (%s)\n", dir, jp);
    if (rc == EXIT_OK) rc = wrc;
  }
  json_decref(results);
  json_decref(skipped);
  free(labels);
  free(rows);
  free(acc);
  free(coh);
  free(path);
  msc_dataset_free(train);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
