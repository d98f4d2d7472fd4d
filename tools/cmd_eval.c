/*
 * cmd_eval.c — `mosaic eval`: scores a model on a split with one of the evaluation
 * protocols (evaluate.c), prints a table and optionally writes JSON.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic eval --model MODEL --data DIR [options]\n"
    "\n"
    "Scores a model on a dataset split: macro/micro average precision, macro/micro F1,\n"
    "Hamming loss, Brier score, and the same per class (scikit-learn's definitions).\n"
    "A segmentation model (task segmentation) is scored per pixel against the dataset's\n"
    "masks instead: pixel accuracy, per-class IoU and F1, mIoU (segmentation.md).\n"
    "\n"
    "Options:\n"
    "  --model PATH        the model file (required)\n"
    "  --data DIR          dataset root (required)\n"
    "  --format NAME       dataset format (default bigearthnet-v2)\n"
    "  --split NAME        the split scored: test (default), validation, train, all\n"
    "  --protocol NAME     model (default): the model's classifier as it is;\n"
    "                      linear: train the classifier on frozen encoders first;\n"
    "                      finetune: train every weight (supervised) first;\n"
    "                      knn: k nearest neighbours on embeddings, cosine similarity;\n"
    "                      forecast: predict the last --horizon values of a vegetation\n"
    "                      index from the rp embedding (ridge regression fitted on the\n"
    "                      training split), beside persistence (pimc.md);\n"
    "                      cluster: how well the split's embeddings (--which) cluster\n"
    "                      by class (multi-label: by rarest label): silhouette and kNN\n"
    "                      purity, cosine (metrics.md)\n"
    "  --fraction F        linear/finetune/knn: use a stratified share F of the training\n"
    "                      split (low-label protocol, fixed by --seed)\n"
    "  --labeled-fraction F  linear/finetune: train the probe on a stratified share F of\n"
    "                      the training split's labels (the others unlabelled)\n"
    "  --probe-epochs N    linear/finetune: epochs (default 5)\n"
    "  --probe-lr F        linear/finetune: constant learning rate (0.01 linear, 0.001 "
    "finetune)\n"
    "  --batch N           linear/finetune: samples per step (default 32)\n"
    "  --keep-classifier   linear/finetune: start from the saved classifier instead of a\n"
    "                      fresh one seeded by --seed (the default: a head trained on\n"
    "                      every label would leak them into a low-label evaluation)\n"
    "  --k N               knn, cluster: neighbours (default 10)\n"
    "  --which NAME        knn, cluster: fused (default), fused_projection, a modality\n"
    "                      NAME, NAME_projection\n"
    "  --projection PATH   cluster: also write a 2-D projection of the embeddings as TSV\n"
    "                      to PATH and draw it as SVG beside it (PATH with .svg)\n"
    "  --method tsne|pca   cluster: the projection (default tsne, exact; PCA above 5000\n"
    "                      samples)\n"
    "  --perplexity F      cluster: t-SNE perplexity (default 30)\n"
    "  --horizon K         forecast: dates forecast, left out of the plots (default 1)\n"
    "  --index NAME        forecast: ndvi (default), evi, savi, ndwi, nbr\n"
    "  --lambda F          forecast: ridge penalty (default 1e-3 x trace(X'X) / features)\n"
    "  --threshold T       F1 and Hamming threshold on the scores (default 0.5)\n"
    "  --json PATH         also write the results as JSON ('-': standard output)\n"
    "  --out PATH          linear/finetune: save the trained model there\n"
    "  --precision f32|bf16|int8  compute precision (bf16: AVX-512/AMX CPUs; int8: AVX2\n"
    "                      CPUs, calibrated first; precision.md)\n"
    "  --calibrate N       int8: calibrate on N batches of the data (default 4)\n"
    "  --seed N, --threads N, --backend NAME, --workers N, --progress MODE,\n"
    "  --config FILE, --set KEY=VALUE    as for 'mosaic train'\n"
    "\n"
    "Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted.\n";

static const char *const allowed[] = {"model",
                                      "data",
                                      "format",
                                      "split",
                                      "protocol",
                                      "fraction",
                                      "probe-epochs",
                                      "probe-lr",
                                      "batch",
                                      "keep-classifier",
                                      "k",
                                      "which",
                                      "threshold",
                                      "json",
                                      "out",
                                      "seed",
                                      "threads",
                                      "backend",
                                      "workers",
                                      "progress",
                                      "horizon",
                                      "index",
                                      "lambda",
                                      "labeled-fraction",
                                      "precision",
                                      "calibrate",
                                      "projection",
                                      "method",
                                      "perplexity",
                                      NULL};

/* Writes a JSON document to path ('-': standard output) and the configuration beside it. */
static int write_json(cli_ctx *ctx, json_t *doc, const char *json_path) {
  char *text = json_dumps(doc, JSON_INDENT(2));
  int rc = EXIT_OK;
  if (!text) {
    rc = cli_error("out of memory");
  } else if (strcmp(json_path, "-") == 0) {
    printf("%s\n", text);
  } else {
    rc = cli_write_file(json_path, text, strlen(text));
    if (rc == EXIT_OK) {
      char *cfg = cli_sibling(json_path, ".config.json");
      rc = cfg ? cli_write_config(ctx, ctx->opts, cfg) : cli_error("out of memory");
      free(cfg);
    }
  }
  free(text);
  return rc;
}

/* --protocol forecast (forecast.c): its own table and JSON. */
static int eval_forecast(cli_ctx *ctx, msc_model *model, const char *model_path,
                         const char *split, const char *json_path, cli_progress *pg) {
  cli_forecast_result f;
  int rc = cli_forecast(ctx, model, split, pg, &f);
  if (rc != EXIT_OK) return rc;
  if (!(json_path && strcmp(json_path, "-") == 0)) {
    printf("eval %s on %s (%s, split %s), protocol forecast\n", model_path,
           cli_str(ctx, "data", "?"), cli_str(ctx, "format", "bigearthnet-v2"), split);
    cli_forecast_print(&f, stdout);
  }
  if (json_path) {
    json_t *doc = cli_forecast_json(&f);
    json_object_set_new(doc, "model", json_string(model_path));
    json_object_set_new(doc, "data", json_string(cli_str(ctx, "data", "")));
    json_object_set_new(doc, "format", json_string(cli_str(ctx, "format", "bigearthnet-v2")));
    json_object_set_new(doc, "split", json_string(split));
    json_object_set_new(doc, "protocol", json_string("forecast"));
    rc = write_json(ctx, doc, json_path);
    json_decref(doc);
  }
  cli_forecast_free(&f);
  return rc;
}

/* --protocol cluster (cluster.c): its own lines and JSON. */
static int eval_cluster(cli_ctx *ctx, msc_model *model, const char *model_path,
                        const char *split, const char *json_path, cli_progress *pg) {
  cli_cluster_result r;
  int rc = cli_eval_cluster(ctx, model, split, cli_str(ctx, "projection", NULL), 0, pg, &r);
  if (rc != EXIT_OK) return rc;
  if (!(json_path && strcmp(json_path, "-") == 0)) {
    printf("eval %s on %s (%s, split %s), protocol cluster\n", model_path,
           cli_str(ctx, "data", "?"), cli_str(ctx, "format", "bigearthnet-v2"), split);
    cli_cluster_print(&r, stdout);
  }
  if (json_path) {
    json_t *doc = cli_cluster_json(&r);
    json_object_set_new(doc, "model", json_string(model_path));
    json_object_set_new(doc, "data", json_string(cli_str(ctx, "data", "")));
    json_object_set_new(doc, "format", json_string(cli_str(ctx, "format", "bigearthnet-v2")));
    json_object_set_new(doc, "split", json_string(split));
    json_object_set_new(doc, "protocol", json_string("cluster"));
    rc = write_json(ctx, doc, json_path);
    json_decref(doc);
  }
  return rc;
}

/* A segmentation model (docs/segmentation.md): cli_eval_segmentation's per-pixel scores,
 * printed and written as JSON. */
static int eval_segmentation(cli_ctx *ctx, msc_model *model, const char *model_path,
                             const char *split, const char *json_path, cli_progress *pg) {
  cli_seg_result r;
  int rc = cli_eval_segmentation(ctx, model, split, pg, &r);
  if (rc != EXIT_OK) return rc;
  if (!(json_path && strcmp(json_path, "-") == 0)) {
    printf("eval %s on %s (%s, split %s), segmentation: %lld samples, %lld pixels counted\n",
           model_path, cli_str(ctx, "data", "?"), cli_str(ctx, "format", "bigearthnet-v2"),
           split, (long long)r.n, (long long)r.metrics.counted);
    cli_seg_print(&r, model, stdout);
  }
  if (json_path) {
    json_t *doc = json_object();
    json_object_set_new(doc, "model", json_string(model_path));
    json_object_set_new(doc, "data", json_string(cli_str(ctx, "data", "")));
    json_object_set_new(doc, "split", json_string(split));
    json_object_set_new(doc, "protocol", json_string("segmentation"));
    json_t *scores = cli_seg_json(&r, model);
    json_object_update(doc, scores);
    json_decref(scores);
    rc = write_json(ctx, doc, json_path);
    json_decref(doc);
  }
  cli_seg_free(&r);
  return rc;
}

int cmd_eval(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "eval", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *model_path = cli_str(&ctx, "model", NULL);
  const char *protocol = cli_str(&ctx, "protocol", "model");
  const char *split = cli_str(&ctx, "split", "test");
  const char *json_path = cli_str(&ctx, "json", NULL);
  const char *out = cli_str(&ctx, "out", NULL);
  if (!model_path)
    rc = cli_usage("eval", "--model PATH is required");
  else if (!cli_has(&ctx, "data"))
    rc = cli_usage("eval", "--data DIR is required");
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  cli_progress pg;
  cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals();
  msc_model *model = NULL;
  cli_eval_result r;
  memset(&r, 0, sizeof r);
  rc = cli_load_model(&ctx, model_path, &model);
  /* int8: calibrated on the training split, not on the samples it is scored on. */
  if (rc == EXIT_OK) rc = cli_calibrate(&ctx, model, "train");
  const int seg = rc == EXIT_OK && cli_model_segmentation(model);
  if (rc == EXIT_OK && strcmp(protocol, "cluster") == 0 && !seg) {
    rc = eval_cluster(&ctx, model, model_path, split, json_path, &pg);
    msc_model_free(model);
    cli_ctx_free(&ctx);
    if (rc == EXIT_OK) rc = cli_finish_output();
    return rc;
  }
  if (rc == EXIT_OK && (strcmp(protocol, "forecast") == 0 || seg)) {
    if (seg && strcmp(protocol, "model") != 0)
      cli_note("a segmentation model is scored per pixel as it is; --protocol %s not used",
               protocol);
    rc = seg ? eval_segmentation(&ctx, model, model_path, split, json_path, &pg)
             : eval_forecast(&ctx, model, model_path, split, json_path, &pg);
    msc_model_free(model);
    cli_ctx_free(&ctx);
    if (rc == EXIT_OK) rc = cli_finish_output();
    return rc;
  }
  if (rc == EXIT_OK) rc = cli_evaluate(&ctx, model, protocol, split, &pg, &r);
  if (rc == EXIT_OK && out && strcmp(protocol, "linear") != 0 &&
      strcmp(protocol, "finetune") != 0)
    cli_note("--out is only used by the linear and finetune protocols");
  else if (rc == EXIT_OK && out) {
    msc_status st = msc_model_save(model, out);
    if (st != MSC_OK) rc = cli_lib_error(st, "cannot save %s", out);
  }
  if (rc == EXIT_OK && !(json_path && strcmp(json_path, "-") == 0)) {
    printf("eval %s on %s (%s, split %s), protocol %s\n", model_path,
           cli_str(&ctx, "data", "?"), cli_str(&ctx, "format", "bigearthnet-v2"), split,
           protocol);
    cli_eval_print(&r, stdout, 1);
  }
  if (rc == EXIT_OK && json_path) {
    json_t *doc = cli_eval_json(&r);
    json_object_set_new(doc, "model", json_string(model_path));
    json_object_set_new(doc, "data", json_string(cli_str(&ctx, "data", "")));
    json_object_set_new(doc, "format", json_string(cli_str(&ctx, "format", "bigearthnet-v2")));
    json_object_set_new(doc, "split", json_string(split));
    json_object_set_new(doc, "protocol", json_string(protocol));
    char *text = json_dumps(doc, JSON_INDENT(2));
    json_decref(doc);
    if (!text) {
      rc = cli_error("out of memory");
    } else if (strcmp(json_path, "-") == 0) {
      printf("%s\n", text);
    } else {
      size_t len = strlen(text);
      rc = cli_write_file(json_path, text, len);
      if (rc == EXIT_OK) {
        char *cfg = cli_sibling(json_path, ".config.json");
        rc = cfg ? cli_write_config(&ctx, ctx.opts, cfg) : cli_error("out of memory");
        free(cfg);
      }
    }
    free(text);
  }
  cli_eval_free(&r);
  msc_model_free(model);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
