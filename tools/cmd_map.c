/*
 * cmd_map.c — `mosaic map`: a whole scene mapped with a model (msc_scene_*,
 * docs/scenes.md): one GeoTIFF per modality in, a georeferenced class map (and the class
 * probabilities), the probabilities alone, or an embedding map out; optionally a cloud
 * mask in and a PNG quicklook out.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char help[] =
    "usage: mosaic map --model MODEL --input NAME=FILE... --out MASK.tif [options]\n"
    "\n"
    "Maps a whole scene: the model's patch size is the tile, tiles are inferred in batches\n"
    "and stitched into a class map written as a tiled, compressed GeoTIFF with the\n"
    "inputs' georeferencing (uint8, nodata 255, a colour table, class names). One raster\n"
    "per modality of the model, on one grid (a coarser one by an integer factor is\n"
    "resampled). Pixels with a NaN or nodata input are nodata in the outputs.\n"
    "\n"
    "Options:\n"
    "  --model PATH        the model file (required)\n"
    "  --input NAME=FILE   the raster of modality NAME (repeat for each modality)\n"
    "  --s1 FILE, --s2 FILE  the same for modalities named s1 and s2\n"
    "  --what KIND         what --out holds: classes (default), probabilities (float32, one\n"
    "                      band per class) or embeddings (one pixel per tile, --which)\n"
    "  --out FILE          the output of --what (required unless --probs)\n"
    "  --probs FILE        also the class probabilities (with --what classes)\n"
    "  --which KIND        embeddings: fused (default), fused_projection, a modality NAME,\n"
    "                      NAME_projection\n"
    "  --embedding-type T  embeddings: float32 (default) or float16\n"
    "  --mask FILE         cloud / no-data mask (one band, nonzero = masked) on the grid\n"
    "  --max-masked F      tiles more masked than this share are not run (default 0.5)\n"
    "  --overviews 0|1     reduced-resolution overviews in the outputs (default 1)\n"
    "  --quicklook FILE    a PNG preview of --out (from an overview of at most\n"
    "                      --quicklook-size pixels a side, default 1024)\n"
    "  --stride N          pixels between tiles (default: the patch size; smaller overlaps)\n"
    "  --blend MODE        overlaps: centre (the nearest tile's centre, default) or mean\n"
    "  --resample MODE     coarser modalities: bilinear (default) or nearest\n"
    "  --batch N           tiles per inference call (default 8)\n"
    "  --precision f32|bf16  compute precision (bf16: AVX-512/AMX CPUs, precision.md)\n"
    "  --threads N, --backend NAME, --progress MODE, --config FILE, --set KEY=VALUE\n";

static const char *const allowed[] = {"model",
                                      "input",
                                      "s1",
                                      "s2",
                                      "out",
                                      "probs",
                                      "stride",
                                      "blend",
                                      "resample",
                                      "batch",
                                      "threads",
                                      "backend",
                                      "progress",
                                      "what",
                                      "which",
                                      "mask",
                                      "max-masked",
                                      "overviews",
                                      "embedding-type",
                                      "quicklook",
                                      "quicklook-size",
                                      "precision",
                                      NULL};

/* The file of modality name: from --input NAME=FILE (a ','-joined list) or --NAME. */
static char *modality_path(const cli_ctx *ctx, const char *name) {
  const char *list = cli_str(ctx, "input", NULL);
  size_t nl = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
      char *out = malloc(len - nl);
      if (out) memcpy(out, p + nl + 1, len - nl - 1), out[len - nl - 1] = 0;
      return out;
    }
    p = end ? end + 1 : p + len;
  }
  const char *direct =
      (strcmp(name, "s1") == 0 || strcmp(name, "s2") == 0) ? cli_str(ctx, name, NULL) : NULL;
  return direct ? strdup(direct) : NULL;
}

typedef struct {
  cli_progress *pg;
} map_progress;

static int32_t on_progress(int64_t done, int64_t total, void *user) {
  map_progress *mp = user;
  (void)total;
  cli_progress_update(mp->pg, done, NULL);
  return cli_interrupted ? 1 : 0;
}

int cmd_map(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "map", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *model_path = cli_str(&ctx, "model", NULL), *out = cli_str(&ctx, "out", NULL),
             *probs = cli_str(&ctx, "probs", NULL), *what = cli_str(&ctx, "what", "classes"),
             *quicklook = cli_str(&ctx, "quicklook", NULL);
  const int embeddings = strcmp(what, "embeddings") == 0;
  if (strcmp(what, "probabilities") == 0 && out) { /* --out holds the probabilities */
    if (probs) rc = cli_usage("map", "--what probabilities writes --out; drop --probs");
    probs = out, out = NULL;
  }
  if (rc >= 0) {
  } else if (!model_path) {
    rc = cli_usage("map", "--model PATH is required");
  } else if (!out && !probs) {
    rc = cli_usage("map", "--out FILE (or --probs FILE) is required");
  } else if (embeddings && probs) {
    rc = cli_usage("map", "--what embeddings writes --out only; drop --probs");
  } else if (cli_wants_int8(&ctx)) {
    rc = cli_usage("map", "--precision int8 needs calibration data, which map does not have: "
                          "use f32 or bf16 here, int8 with embed, eval or predict "
                          "(docs/precision.md)");
  }
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  cli_progress pg;
  cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals();
  msc_model *model = NULL;
  msc_scene *scene = NULL;
  char *paths[8] = {0};
  int32_t n = 0;
  rc = cli_load_model(&ctx, model_path, &model);
  if (rc == EXIT_OK) {
    n = msc_model_modality_count(model);
    /* A modality without a raster is absent: the model maps without it if it can
     * (docs/scenes.md, "Missing modalities"). */
    int32_t given = 0;
    for (int32_t i = 0; i < n && i < 8; ++i)
      given += (paths[i] = modality_path(&ctx, msc_model_modality_name(model, i))) != NULL;
    if (given == 0)
      rc = cli_usage("map", "no raster for any of the model's modalities (--input NAME=FILE)");
  }
  msc_options *o = NULL;
  if (rc == EXIT_OK) {
    o = cli_opts_copy(ctx.opts);
    if (!o) rc = cli_error("out of memory");
  }
  if (rc == EXIT_OK) {
    msc_status st = msc_options_set_int(o, "scene.batch", cli_int(&ctx, "batch", 8));
    if (st == MSC_OK && cli_has(&ctx, "stride"))
      st = msc_options_set_int(o, "scene.stride", cli_int(&ctx, "stride", 0));
    if (st == MSC_OK && cli_has(&ctx, "blend"))
      st = msc_options_set_string(o, "scene.blend", cli_str(&ctx, "blend", "centre"));
    if (st == MSC_OK && cli_has(&ctx, "resample"))
      st = msc_options_set_string(o, "scene.resample", cli_str(&ctx, "resample", "bilinear"));
    if (st != MSC_OK) rc = cli_lib_error(st, "map options");
  }
  if (rc == EXIT_OK) {
    msc_status st = msc_scene_open((const char *const *)paths, n, model, o, &scene);
    if (st != MSC_OK) rc = cli_lib_error(st, "map");
  }
  int64_t w = 0, h = 0, tiles = 0;
  int32_t which = MSC_EMBED_FUSED;
  if (rc == EXIT_OK && embeddings)
    rc = cli_parse_which(model, cli_str(&ctx, "which", "fused"), &which);
  if (rc == EXIT_OK) {
    msc_scene_size(scene, &w, &h, &tiles);
    if (embeddings) { /* the embedding map's tiles: those inside the scene at the stride */
      int64_t P = 0, S = 0, bands = 0;
      msc_model_modality_shape(model, 0, &bands, &P);
      msc_options_get_int(o, "scene.stride", &S);
      S = S ? S : P;
      tiles = ((w - P) / S + 1) * ((h - P) / S + 1);
    }
    cli_progress_begin(&pg, embeddings ? "embed" : "map", tiles);
    map_progress mp = {&pg};
    msc_status st = embeddings ? msc_scene_write_embeddings(scene, out, which, on_progress, &mp)
                               : msc_scene_write(scene, out, probs, on_progress, &mp);
    cli_progress_end(&pg, NULL);
    if (st == MSC_E_CANCELLED && cli_interrupted)
      rc = EXIT_INTERRUPTED;
    else if (st != MSC_OK)
      rc = cli_lib_error(st, "map");
  }
  if (rc == EXIT_OK) {
    printf("scene of %lld x %lld pixels mapped in %lld tiles:", (long long)w, (long long)h,
           (long long)tiles);
    if (out) printf(" %s in %s", embeddings ? "embeddings" : "classes", out);
    if (probs) printf("%s probabilities in %s", out ? ";" : "", probs);
    printf("\n");
  }
  if (rc == EXIT_OK && quicklook)
    rc = cli_quicklook(out ? out : probs, quicklook, cli_int(&ctx, "quicklook_size", 1024));
  for (int32_t i = 0; i < 8; ++i) free(paths[i]);
  msc_options_free(o);
  msc_scene_free(scene);
  msc_model_free(model);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
