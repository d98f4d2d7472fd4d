/*
 * cmd_rplot.c — `mosaic rplot`: the recurrence plots of chosen time-series samples as PNG
 * files (docs/pimc.md, "Looking at plots"). The plots are computed from the sample's
 * series (msc_dataset_series) with msc_recurrence_plots and the dataset's data.sits.*
 * options, so they are the values of the dataset's "rp" modality. Each plot is scaled to
 * 0–255 by its own range, v = round(255 · (x − min) / (max − min)) (0 for a constant
 * plot), then enlarged by pixel replication. Needs libpng (MOSAIC_TOOL_PNG).
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

#ifdef MOSAIC_TOOL_PNG
#include <png.h>
#endif

static const char help[] =
    "usage: mosaic rplot --data DIR [options]\n"
    "\n"
    "Writes the recurrence plots of time-series samples (format pastis) as PNG files,\n"
    "one per sample and index (DIR/<id>_<index>.png; ':' in an id becomes '_'), or one\n"
    "per sample with the K plots side by side (--panels, DIR/<id>.png). The plots are\n"
    "those of the dataset's \"rp\" modality, computed with the data.sits.* options\n"
    "(--set data.sits.indices=..., plot, eps, plot_size, history, length). Each plot is\n"
    "scaled to 0-255 by its own range: v = round(255 (x - min) / (max - min)), 0 for a\n"
    "constant plot (a continuous plot's diagonal, |x_i - x_i| = 0, is its minimum).\n"
    "\n"
    "Options:\n"
    "  --data DIR          dataset root (required)\n"
    "  --format NAME       dataset format (default pastis)\n"
    "  --split NAME        the split: train (default), validation, test, all\n"
    "  --sample ID         a sample id (e.g. 10000:3:7), or else its index in the split;\n"
    "                      repeatable, or ','-separated\n"
    "  --first N           the first N samples (default 1 without --sample)\n"
    "  --out DIR           where the files go (default '.'; made when missing)\n"
    "  --upscale N         each plot pixel becomes N x N pixels (default 1, at most 64)\n"
    "  --colormap NAME     grey (default: 8-bit grey) or viridis (RGB)\n"
    "  --panels            one file per sample with the plots side by side\n"
    "  --config FILE, --set KEY=VALUE    as for 'mosaic train'\n"
    "\n"
    "Prints the path of each file written. Exit status: 0 done, 1 error, 2 bad usage.\n";

static const char *const allowed[] = {"data", "format",  "split",    "sample", "first",
                                      "out",  "upscale", "colormap", "panels", NULL};

#ifdef MOSAIC_TOOL_PNG

/* A 9-stop piecewise-linear approximation of matplotlib's viridis (stops at i/8). */
static const unsigned char k_viridis[9][3] = {{68, 1, 84},    {71, 44, 122},  {59, 81, 139},
                                              {44, 113, 142}, {33, 144, 141}, {39, 173, 129},
                                              {92, 200, 99},  {170, 220, 50}, {253, 231, 37}};

static void viridis(unsigned v, unsigned char *rgb) {
  double p = v / 255.0 * 8.0;
  int i = (int)p;
  if (i >= 8) i = 7;
  double f = p - i;
  for (int c = 0; c < 3; ++c)
    rgb[c] = (unsigned char)floor(k_viridis[i][c] +
                                  f * (k_viridis[i + 1][c] - k_viridis[i][c]) + 0.5);
}

/* The plot's values scaled to 0–255 (the help's rule). */
static void to_bytes(const float *x, int64_t m, unsigned char *out) {
  double lo = INFINITY, hi = -INFINITY;
  for (int64_t i = 0; i < m; ++i) lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
  for (int64_t i = 0; i < m; ++i)
    out[i] = hi > lo ? (unsigned char)floor(255.0 * ((double)x[i] - lo) / (hi - lo) + 0.5) : 0;
}

typedef struct png_mem {
  unsigned char *data;
  size_t len, cap;
  int failed;
} png_mem;

static void mem_write(png_structp png, png_bytep data, png_size_t len) {
  png_mem *m = png_get_io_ptr(png);
  if (m->failed) return;
  if (m->len + len > m->cap) {
    size_t cap = m->cap ? m->cap : 4096;
    while (cap < m->len + len) cap *= 2;
    unsigned char *p = realloc(m->data, cap);
    if (!p) {
      m->failed = 1;
      return;
    }
    m->data = p, m->cap = cap;
  }
  memcpy(m->data + m->len, data, len);
  m->len += len;
}

static void mem_flush(png_structp png) {
  (void)png;
}

/* The PNG encoding of an image into a malloc'd buffer (cli.h). */
int cli_png_encode(const unsigned char *img, int64_t rows, int64_t cols, int channels,
                   unsigned char **out, size_t *out_len) {
  png_mem mem = {0};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  if (!png || !info) {
    png_destroy_write_struct(&png, &info);
    return cli_error("cannot create a PNG writer");
  }
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    free(mem.data);
    return cli_error("libpng failed");
  }
  png_set_write_fn(png, &mem, mem_write, mem_flush);
  png_set_IHDR(png, info, (png_uint_32)cols, (png_uint_32)rows, 8,
               channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (int64_t r = 0; r < rows; ++r) png_write_row(png, img + r * cols * channels);
  png_write_end(png, NULL);
  png_destroy_write_struct(&png, &info);
  if (mem.failed) {
    free(mem.data);
    return cli_error("out of memory");
  }
  *out = mem.data, *out_len = mem.len;
  return EXIT_OK;
}

/* Writes the image (rows × cols, channels 1 or 3, row-major bytes) to path (cli.h). */
int cli_write_png(const char *path, const unsigned char *img, int64_t rows, int64_t cols,
                  int channels) {
  unsigned char *data = NULL;
  size_t len = 0;
  int rc = cli_png_encode(img, rows, cols, channels, &data, &len);
  if (rc != EXIT_OK) return cli_error("%s: cannot encode the PNG", path);
  rc = cli_write_file(path, data, len);
  free(data);
  if (rc == EXIT_OK) printf("%s\n", path);
  return rc;
}

/* Renders plots p0..p0+np-1 of the K × S × S block side by side, upscaled. */
static int render(const char *path, const float *plots, int64_t s, int64_t p0, int64_t np,
                  int64_t up, int rgb) {
  const int64_t side = s * up, cols = np * side, ch = rgb ? 3 : 1;
  unsigned char *bytes = malloc((size_t)(s * s));
  unsigned char *img = malloc((size_t)(side * cols * ch));
  if (!bytes || !img) {
    free(bytes), free(img);
    return cli_error("out of memory");
  }
  for (int64_t p = 0; p < np; ++p) {
    to_bytes(plots + (p0 + p) * s * s, s * s, bytes);
    for (int64_t y = 0; y < side; ++y)
      for (int64_t x = 0; x < side; ++x) {
        unsigned v = bytes[(y / up) * s + x / up];
        unsigned char *px = img + (y * cols + p * side + x) * ch;
        if (rgb)
          viridis(v, px);
        else
          px[0] = (unsigned char)v;
      }
  }
  int rc = cli_write_png(path, img, side, cols, rgb ? 3 : 1);
  free(bytes), free(img);
  return rc;
}

/* Parses data.sits.indices ("ndvi,evi,savi") into kinds; returns K or -1. */
static int parse_indices(const char *text, int32_t kinds[MSC_VI_COUNT], char names[][16]) {
  int k = 0;
  const char *p = text;
  while (*p) {
    const char *comma = strchr(p, ',');
    size_t n = comma ? (size_t)(comma - p) : strlen(p);
    char name[16];
    if (n == 0 || n >= sizeof name || k == MSC_VI_COUNT) return -1;
    memcpy(name, p, n);
    name[n] = 0;
    if (cli_vi_kind(name, &kinds[k]) != EXIT_OK) return -1;
    snprintf(names[k], 16, "%s", name);
    k++;
    if (!comma) break;
    p = comma + 1;
  }
  return k;
}

/* The sample of one --sample value: an id, else an index. */
static int find_sample(const msc_dataset *ds, const char *text, int64_t *out) {
  int64_t n = msc_dataset_size(ds);
  char buf[256];
  for (int64_t i = 0; i < n; ++i)
    if (msc_dataset_sample_id(ds, i, buf, sizeof buf, NULL) == MSC_OK &&
        strcmp(buf, text) == 0) {
      *out = i;
      return EXIT_OK;
    }
  char *end = NULL;
  long long v = strtoll(text, &end, 10);
  if (end != text && *end == 0 && v >= 0 && v < n) {
    *out = v;
    return EXIT_OK;
  }
  return cli_error("--sample %s: no sample has that id, and it is no index below %lld", text,
                   (long long)n);
}

static int plot_sample(const cli_ctx *ctx, const msc_dataset *ds, int64_t i,
                       const msc_rp_params *params, const msc_vi_bands *bands, int64_t history,
                       char names[][16]) {
  int64_t t = 0, c = 0;
  msc_status st = msc_dataset_series(ds, i, NULL, 0, NULL, &t, &c);
  if (st != MSC_OK) return cli_lib_error(st, "the series of sample %lld", (long long)i);
  const int64_t th = t - history, k = params->n_indices;
  if (th < 2) return cli_error("data.sits.history leaves fewer than 2 dates to plot");
  const int64_t s = params->size > 0 ? params->size : th;
  float *series = malloc((size_t)(t * c) * sizeof(float));
  float *plots = malloc((size_t)(k * s * s) * sizeof(float));
  int rc = EXIT_OK;
  if (!series || !plots) rc = cli_error("out of memory");
  if (rc == EXIT_OK) {
    msc_rp_params p = *params;
    p.size = s;
    const int64_t yx[2] = {0, 0};
    st = msc_dataset_series(ds, i, series, (size_t)(t * c), NULL, &t, &c);
    /* The history dates come first: a T' × C × 1 × 1 series of one pixel. */
    if (st == MSC_OK)
      st = msc_recurrence_plots(series, th, c, 1, 1, bands, &p, yx, 1, plots, NULL);
    if (st != MSC_OK) rc = cli_lib_error(st, "the plots of sample %lld", (long long)i);
  }
  char id[200], path[4096];
  if (rc == EXIT_OK && msc_dataset_sample_id(ds, i, id, sizeof id, NULL) != MSC_OK)
    snprintf(id, sizeof id, "%lld", (long long)i);
  for (char *q = id; *q; ++q)
    if (!((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
          *q == '-' || *q == '.'))
      *q = '_';
  const char *dir = cli_str(ctx, "out", ".");
  const int64_t up = cli_int(ctx, "upscale", 1);
  const int rgb = strcmp(cli_str(ctx, "colormap", "grey"), "viridis") == 0;
  if (rc == EXIT_OK && cli_int(ctx, "panels", 0)) {
    snprintf(path, sizeof path, "%s/%s.png", dir, id);
    rc = render(path, plots, s, 0, k, up, rgb);
  } else {
    for (int64_t j = 0; rc == EXIT_OK && j < k; ++j) {
      snprintf(path, sizeof path, "%s/%s_%s.png", dir, id, names[j]);
      rc = render(path, plots, s, j, 1, up, rgb);
    }
  }
  free(series), free(plots);
  return rc;
}

static int run(cli_ctx *ctx) {
  if (!cli_has(ctx, "format")) cli_set_str(ctx, "format", "pastis");
  msc_dataset *ds = NULL;
  int rc = cli_open_dataset(ctx, ctx->opts,
                            cli_has(ctx, "split") ? cli_str(ctx, "split", "") : NULL, 1, &ds);
  if (rc != EXIT_OK) return rc;
  const msc_options *o = ctx->opts;
  int32_t kinds[MSC_VI_COUNT];
  char names[MSC_VI_COUNT][16];
  char *indices = strdup(cli_opt_str(o, "data.sits.indices"));
  int k = indices ? parse_indices(indices, kinds, names) : -1;
  free(indices);
  if (k < 1) {
    msc_dataset_free(ds);
    return cli_error("data.sits.indices: cannot read the list of indices");
  }
  double pct = cli_opt_float(o, "data.sits.eps_percentile", 0);
  msc_rp_params params = {
      .struct_size = sizeof params,
      .n_indices = k,
      .indices = kinds,
      .binary = strcmp(cli_opt_str(o, "data.sits.plot"), "binary") == 0,
      .eps_is_percentile = pct > 0,
      .eps = pct > 0 ? pct : cli_opt_float(o, "data.sits.eps", 0.1),
      .size = cli_opt_int(o, "data.sits.plot_size", 0),
      .days = NULL, /* as the dataset: dates equally spaced for the gap filling */
  };
  msc_vi_bands bands;
  cli_vi_bands(o, &bands);
  const int64_t history = cli_opt_int(o, "data.sits.history", 0);
  const char *list = cli_str(ctx, "sample", NULL);
  if (list) {
    char *copy = strdup(list);
    if (!copy) rc = cli_error("out of memory");
    for (char *save = NULL, *tok = copy ? strtok_r(copy, ",", &save) : NULL;
         rc == EXIT_OK && tok; tok = strtok_r(NULL, ",", &save)) {
      int64_t i = 0;
      rc = find_sample(ds, tok, &i);
      if (rc == EXIT_OK) rc = plot_sample(ctx, ds, i, &params, &bands, history, names);
    }
    free(copy);
  } else {
    int64_t n = cli_int(ctx, "first", 1), size = msc_dataset_size(ds);
    if (n > size) n = size;
    for (int64_t i = 0; rc == EXIT_OK && i < n; ++i)
      rc = plot_sample(ctx, ds, i, &params, &bands, history, names);
  }
  msc_dataset_free(ds);
  return rc;
}

#endif /* MOSAIC_TOOL_PNG */

int cmd_rplot(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "rplot", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  if (!cli_has(&ctx, "data")) {
    rc = cli_usage("rplot", "--data DIR is required");
  } else if (cli_has(&ctx, "sample") && cli_has(&ctx, "first")) {
    rc = cli_usage("rplot", "--sample and --first exclude each other");
  } else {
#ifdef MOSAIC_TOOL_PNG
    /* The output folder is made when missing (its parent must exist). */
    const char *dir = cli_str(&ctx, "out", ".");
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
      rc = cli_error("cannot make the folder %s: %s", dir, strerror(errno));
    else
      rc = run(&ctx);
#else
    rc = cli_error("rplot: this mosaic was built without libpng (install libpng-dev and "
                   "configure again)");
#endif
  }
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
