/*
 * cmd_info.c — `mosaic info MODEL`: what a model file holds.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic info MODEL [--json PATH] [--backend NAME]\n"
    "\n"
    "Shows a model file: the library version that wrote it, training steps, the backend\n"
    "it loads on, its modalities (bands, patch size, encoder, feature size) with their\n"
    "expected inputs (per band in order: name, raw -> physical scale and offset,\n"
    "normalisation mean and std), projection and fused sizes, classes, parameter count, "
    "training preset and the full\n"
    "configuration (--json: also the training options and, for a checkpoint of `mosaic "
    "train`, the run's configuration as --config reads it: run_configuration).\n"
    "\n"
    "Options:\n"
    "  --json PATH         also write the information as JSON ('-': standard output only)\n"
    "  --backend NAME      load on this backend (default auto)\n"
    "  --threads N\n";

/* What each band of modality i expects, in order: its name (null when the model has
 * none), raw -> physical as raw * scale + offset, and the normalisation mean and std. */
static json_t *inputs_of(const msc_model *model, int32_t i, int64_t bands) {
  json_t *a = json_array();
  for (int64_t b = 0; b < bands; ++b) {
    double scale = 1, offset = 0, mean = 0, sd = 1;
    const char *name = msc_model_band_name(model, i, b);
    msc_model_band_info(model, i, b, &scale, &offset, &mean, &sd);
    json_t *e = json_object();
    json_object_set_new(e, "band", json_integer(b));
    json_object_set_new(e, "name", name ? json_string(name) : json_null());
    json_object_set_new(e, "scale", json_real(scale));
    json_object_set_new(e, "offset", json_real(offset));
    json_object_set_new(e, "mean", json_real(mean));
    json_object_set_new(e, "std", json_real(sd));
    json_array_append_new(a, e);
  }
  return a;
}

/* The table of a modality's inputs (the "inputs" of inputs_of). */
static void print_inputs(const json_t *inputs, int64_t size) {
  printf(
      "    inputs %lld×%lld, raw: physical = raw × scale + offset, normalised (raw − mean) / "
      "std\n",
      (long long)size, (long long)size);
  printf("    %4s  %-8s  %-12s  %-12s  %-12s  %s\n", "band", "name", "scale", "offset", "mean",
         "std");
  for (size_t b = 0; b < json_array_size(inputs); ++b) {
    const json_t *e = json_array_get(inputs, b);
    const char *name = json_string_value(json_object_get(e, "name"));
    printf("    %4lld  %-8s  %-12.6g  %-12.6g  %-12.6g  %.6g\n",
           (long long)json_integer_value(json_object_get(e, "band")), name ? name : "-",
           json_real_value(json_object_get(e, "scale")),
           json_real_value(json_object_get(e, "offset")),
           json_real_value(json_object_get(e, "mean")),
           json_real_value(json_object_get(e, "std")));
  }
}

static const char *const allowed[] = {"json", "backend", "threads", "model", NULL};

int cmd_info(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "info", help, allowed, 1, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *path = json_array_size(ctx.positional)
                         ? json_string_value(json_array_get(ctx.positional, 0))
                         : cli_str(&ctx, "model", NULL);
  if (!path) {
    rc = cli_usage("info", "which model? (mosaic info MODEL)");
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *json_path = cli_str(&ctx, "json", NULL);
  msc_model *model = NULL;
  msc_options *cfg = NULL;
  json_t *meta = NULL, *doc = json_object(), *train = NULL;
  rc = cli_load_model(&ctx, path, &model);
  if (rc == EXIT_OK && !(meta = cli_model_metadata(path))) rc = EXIT_ERROR;
  if (rc == EXIT_OK && msc_model_options(model, &cfg) != MSC_OK)
    rc = cli_lib_error(MSC_E_INTERNAL, "model options");
  if (rc == EXIT_OK) {
    struct stat sb;
    const char *ver = json_string_value(json_object_get(meta, "mosaic.version"));
    const char *step = json_string_value(json_object_get(meta, "mosaic.step"));
    const char *tr = json_string_value(json_object_get(meta, "mosaic.train"));
    train = tr ? json_loads(tr, 0, NULL) : NULL;
    /* The configuration of the `mosaic train` run that wrote a checkpoint (the tool's
     * keys too): shown as an object of its own, not as one long training option. */
    const char *run = json_string_value(json_object_get(train, "train.run_config"));
    json_t *run_doc = run && run[0] ? json_loads(run, 0, NULL) : NULL;
    json_object_set_new(doc, "run_configuration", run_doc ? run_doc : json_null());
    json_object_del(train, "train.run_config");
    json_object_set_new(doc, "file", json_string(path));
    if (stat(path, &sb) == 0)
      json_object_set_new(doc, "bytes", json_integer((json_int_t)sb.st_size));
    json_object_set_new(doc, "written_by", json_string(ver ? ver : "?"));
    json_object_set_new(
        doc, "format",
        json_string(json_string_value(json_object_get(meta, "mosaic.format"))
                        ? json_string_value(json_object_get(meta, "mosaic.format"))
                        : "?"));
    json_object_set_new(doc, "steps", json_integer(step ? strtoll(step, NULL, 10) : 0));
    json_object_set_new(doc, "backend", json_string(msc_model_backend(model)));
    json_object_set_new(doc, "parameters", json_integer(msc_model_parameter_count(model)));
    json_t *mods = json_array();
    for (int32_t i = 0; i < msc_model_modality_count(model); ++i) {
      int64_t bands = 0, size = 0, d = 0, p = 0;
      msc_model_modality_shape(model, i, &bands, &size);
      msc_model_embedding_size(model, MSC_EMBED_MODALITY(i), &d);
      msc_model_embedding_size(model, MSC_EMBED_MODALITY_PROJECTION(i), &p);
      /* The file stores the resolved architecture (the preset's keys), not the preset's
       * name: describe it. */
      char key[64], arch[512], widths[96], depths[96], block[32];
      int32_t named = 0;
      snprintf(key, sizeof key, "modality.%d.encoder", (int)i);
      msc_options_is_set(cfg, key, &named);
      if (named) {
        snprintf(arch, sizeof arch, "%s", cli_opt_str(cfg, key));
      } else {
        char k2[64];
        snprintf(k2, sizeof k2, "modality.%d.widths", (int)i);
        snprintf(widths, sizeof widths, "%s", cli_opt_str(cfg, k2));
        snprintf(k2, sizeof k2, "modality.%d.depths", (int)i);
        snprintf(depths, sizeof depths, "%s", cli_opt_str(cfg, k2));
        snprintf(k2, sizeof k2, "modality.%d.block", (int)i);
        snprintf(block, sizeof block, "%s", cli_opt_str(cfg, k2));
        int64_t sw, sk, ss, mp;
        snprintf(k2, sizeof k2, "modality.%d.stem_width", (int)i);
        sw = cli_opt_int(cfg, k2, 0);
        snprintf(k2, sizeof k2, "modality.%d.stem_kernel", (int)i);
        sk = cli_opt_int(cfg, k2, 0);
        snprintf(k2, sizeof k2, "modality.%d.stem_stride", (int)i);
        ss = cli_opt_int(cfg, k2, 0);
        snprintf(k2, sizeof k2, "modality.%d.maxpool", (int)i);
        mp = cli_opt_int(cfg, k2, 0);
        snprintf(arch, sizeof arch,
                 "ResNet %s widths %s depths %s, stem %lld ch %lldx%lld/%lld%s", block, widths,
                 depths, (long long)sw, (long long)sk, (long long)sk, (long long)ss,
                 mp ? " + max-pool" : "");
      }
      json_t *m = json_object();
      json_object_set_new(m, "name", json_string(msc_model_modality_name(model, i)));
      json_object_set_new(m, "bands", json_integer(bands));
      json_object_set_new(m, "size", json_integer(size));
      json_object_set_new(m, "encoder", json_string(arch));
      json_object_set_new(m, "features", json_integer(d));
      json_object_set_new(m, "projection", json_integer(p));
      json_object_set_new(m, "inputs", inputs_of(model, i, bands));
      json_array_append_new(mods, m);
    }
    json_object_set_new(doc, "modalities", mods);
    int64_t df = 0, pf = 0;
    msc_model_embedding_size(model, MSC_EMBED_FUSED, &df);
    msc_model_embedding_size(model, MSC_EMBED_FUSED_PROJECTION, &pf);
    json_object_set_new(doc, "fused_features", json_integer(df));
    json_object_set_new(doc, "fused_projection", json_integer(pf));
    json_t *classes = json_array();
    for (int64_t k = 0; k < msc_model_class_count(model); ++k)
      json_array_append_new(classes, json_string(msc_model_class_name(model, k)));
    json_object_set_new(doc, "classes", classes);
    size_t len = 0;
    msc_options_to_json(cfg, NULL, 0, &len);
    char *text = malloc(len + 1);
    if (text && msc_options_to_json(cfg, text, len + 1, NULL) == MSC_OK)
      json_object_set_new(doc, "configuration", json_loads(text, 0, NULL));
    free(text);
    json_object_set_new(doc, "training", train ? train : json_object());
    train = NULL;
  }
  if (rc == EXIT_OK && !(json_path && strcmp(json_path, "-") == 0)) {
    json_t *t = json_object_get(doc, "training");
    const char *preset = json_string_value(json_object_get(t, "train.preset"));
    printf("model         %s (%lld bytes)\n", path,
           (long long)json_integer_value(json_object_get(doc, "bytes")));
    printf("written by    libmosaic %s, model format %s\n",
           json_string_value(json_object_get(doc, "written_by")),
           json_string_value(json_object_get(doc, "format")));
    printf("trained       %lld steps%s%s\n",
           (long long)json_integer_value(json_object_get(doc, "steps")),
           preset ? ", preset " : "", preset ? preset : "");
    printf("backend       %s\n", msc_model_backend(model));
    printf("parameters    %lld\n", (long long)msc_model_parameter_count(model));
    printf("modalities    %d\n", (int)msc_model_modality_count(model));
    json_t *mods = json_object_get(doc, "modalities");
    for (size_t i = 0; i < json_array_size(mods); ++i) {
      json_t *m = json_array_get(mods, i);
      printf("  %-8s %3lld bands  %lld×%lld  features %lld  projection %lld  encoder: %s\n",
             json_string_value(json_object_get(m, "name")),
             (long long)json_integer_value(json_object_get(m, "bands")),
             (long long)json_integer_value(json_object_get(m, "size")),
             (long long)json_integer_value(json_object_get(m, "size")),
             (long long)json_integer_value(json_object_get(m, "features")),
             (long long)json_integer_value(json_object_get(m, "projection")),
             json_string_value(json_object_get(m, "encoder")));
      print_inputs(json_object_get(m, "inputs"),
                   json_integer_value(json_object_get(m, "size")));
    }
    printf("fused         features %lld, projection %lld\n",
           (long long)json_integer_value(json_object_get(doc, "fused_features")),
           (long long)json_integer_value(json_object_get(doc, "fused_projection")));
    printf("classes       %lld\n", (long long)msc_model_class_count(model));
    for (int64_t k = 0; k < msc_model_class_count(model); ++k)
      printf("  %3lld  %s\n", (long long)k, msc_model_class_name(model, k));
    char *conf =
        json_dumps(json_object_get(doc, "configuration"), JSON_INDENT(2) | JSON_SORT_KEYS);
    if (conf) printf("configuration\n%s\n", conf);
    free(conf);
  }
  if (rc == EXIT_OK && json_path) {
    char *text = json_dumps(doc, JSON_INDENT(2));
    if (!text)
      rc = cli_error("out of memory");
    else if (strcmp(json_path, "-") == 0)
      printf("%s\n", text);
    else
      rc = cli_write_file(json_path, text, strlen(text));
    free(text);
  }
  json_decref(train);
  json_decref(doc);
  json_decref(meta);
  msc_options_free(cfg);
  msc_model_free(model);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
