/*
 * bench_scene.c — a whole scene mapped with msc_scene_write (docs/scenes.md): a synthetic,
 * georeferenced Sentinel-2 tile (12 bands, uint16) and optionally its Sentinel-1 pair
 * (2 bands, float32 dB) on the same 10 m grid, written once as tiled GeoTIFFs with libtiff
 * (as a real tile would be stored), then mapped with a freshly initialised model; reports
 * km² per second at 10 m, tiles per second and the peak RSS before and after the map.
 *
 *   bench_scene [--size 10980 | --width W --height H] [--modalities s1s2|s2]
 *               [--encoder tiny|resnet18] [--task segmentation|classification]
 *               [--tile 256] [--stride 0] [--batch 8] [--classes 2] [--threads 2]
 *               [--conv-algorithm auto|direct]
 *               [--compress none|deflate] [--dir DIR] [--regen 1] [--npy 1]
 *               [--probs 1] [--save MODEL.safetensors] [--compare MAP.npy] [--gen-only 1]
 *
 * The inputs go to DIR (default $TMPDIR or /tmp, + "/bench_scene"), named after their
 * size and compression, and are reused by later runs (--regen 1 rewrites them): a
 * 10980² S1 + S2 pair is 3.9 GB uncompressed. They are written by a child process, so
 * that the generation's buffers do not count in this process's peak RSS. --gen-only 1
 * writes the inputs and stops. --npy 1 also writes the same pixels as NumPy arrays
 * (s2_*.npy: uint16 12 × H × W, s1_*.npy: float32 2 × H × W) for a reader without GDAL
 * (the PyTorch sliding-window comparison).
 *
 * Pixels (deterministic: another program can rebuild them from this formula): S2
 * band b at (x, y): 300 + ((x/32)·37 + (y/32)·91 + 53b) mod 4000 + (hash mod 512); S1:
 * −20 + ((x/64) + (y/64)) mod 10 + (hash mod 1024)/256, with hash the low 32 bits of
 * MurmurHash3's 64-bit finaliser of (y·W + x)·16 + b. Georeferencing: EPSG:32633 (UTM
 * 33N), upper-left corner (399960, 5000040), 10 m pixels, as a Sentinel-2 tile's grid.
 *
 * The model: task segmentation (U-Net, docs/segmentation.md) or classification, every
 * modality's encoder --encoder at patch size --tile, normalised with mean 1500, std 1000
 * (S2) and mean −12, std 5 (S1); random weights (--save writes them, so that another
 * implementation can load the same). The map writes the class map (and with --probs 1
 * the probabilities) next to the inputs. --compare MAP.npy reads the class map back and
 * counts the pixels where it equals MAP.npy (uint8 H × W: another implementation's map).
 *
 * One JSON line: the scene, the model, gen_s (0 when the inputs were reused), open_s,
 * map_s, km2_per_s (pixels × 100 m² / 10⁶ / map_s), tiles_per_s, rss_before_mib (this
 * process's peak RSS when the map starts: the model and the opened scene) and
 * peak_rss_mib (after it), and the current RSS before the map.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <tiffio.h>
#include <unistd.h>

#include "bench_util.h"
#include "mosaic/mosaic.h"

#define TILE_W 256 /* the inputs' TIFF tiles (a GDAL-converted Sentinel-2 tile: 256 or 512) */

typedef struct {
  const char *name;
  int bands;
  int is_float; /* float32 dB (S1) or uint16 reflectance (S2) */
} modality;

static const modality S1 = {"s1", 2, 1}, S2 = {"s2", 12, 0};

static void die(const char *what, const char *path) {
  fprintf(stderr, "bench_scene: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

static uint32_t mix(uint64_t v) {
  v ^= v >> 33, v *= 0xff51afd7ed558ccdULL, v ^= v >> 33, v *= 0xc4ceb9fe1a85ec53ULL;
  return (uint32_t)(v ^ (v >> 33));
}

/* The value of band b at (x, y) (the header comment's formula). */
static float pixel(const modality *m, int64_t W, int64_t x, int64_t y, int b) {
  uint32_t h = mix((uint64_t)(y * W + x) * 16u + (uint64_t)b);
  if (m->is_float) return -20.f + (float)((x / 64 + y / 64) % 10) + (float)(h % 1024u) / 256.f;
  return (float)(300 + ((x / 32) * 37 + (y / 32) * 91 + 53 * b) % 4000 + h % 512u);
}

/* GeoTIFF tags on this handle only (libtiff does not know them). */
static const TIFFFieldInfo geo_fields[] = {
    {33550, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, "ModelPixelScale"},
    {33922, -1, -1, TIFF_DOUBLE, FIELD_CUSTOM, 1, 1, "ModelTiepoint"},
    {34735, -1, -1, TIFF_SHORT, FIELD_CUSTOM, 1, 1, "GeoKeyDirectory"},
};

/* Writes a .npy (version 1.0) header; returns its length (a multiple of 64). */
static int64_t write_npy_header(int fd, const char *descr, int bands, int64_t H, int64_t W,
                                const char *path) {
  char h[128];
  int n = snprintf(h, sizeof h,
                   "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %lld, %lld), }",
                   descr, bands, (long long)H, (long long)W);
  while ((10 + n + 1) % 64) h[n++] = ' ';
  h[n++] = '\n';
  unsigned char pre[10] = {
      0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(n & 255), (unsigned char)(n >> 8)};
  if (write(fd, pre, 10) != 10 || write(fd, h, (size_t)n) != n) die("cannot write", path);
  return 10 + n;
}

/* Writes modality m as a tiled GeoTIFF (and a .npy when npy_path is given). */
static void generate(const modality *m, int64_t W, int64_t H, int compress, const char *path,
                     const char *npy_path) {
  const int bps = m->is_float ? 4 : 2, nb = m->bands;
  const double bytes = (double)W * (double)H * nb * bps;
  TIFF *t = TIFFOpen(path, bytes > 2e9 ? "w8" : "w");
  if (!t) die("cannot create", path);
  TIFFMergeFieldInfo(t, geo_fields, 3);
  TIFFSetField(t, TIFFTAG_IMAGEWIDTH, (uint32_t)W);
  TIFFSetField(t, TIFFTAG_IMAGELENGTH, (uint32_t)H);
  TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)nb);
  TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, (uint16_t)(8 * bps));
  TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, m->is_float ? SAMPLEFORMAT_IEEEFP : SAMPLEFORMAT_UINT);
  TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
  TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  uint16_t extra[64] = {0};
  TIFFSetField(t, TIFFTAG_EXTRASAMPLES, (uint16_t)(nb - 1), extra);
  TIFFSetField(t, TIFFTAG_COMPRESSION, compress ? COMPRESSION_ADOBE_DEFLATE : COMPRESSION_NONE);
  TIFFSetField(t, TIFFTAG_TILEWIDTH, (uint32_t)TILE_W);
  TIFFSetField(t, TIFFTAG_TILELENGTH, (uint32_t)TILE_W);
  const double scale[3] = {10, 10, 0}, tie[6] = {0, 0, 0, 399960, 5000040, 0};
  /* Version 1.1.0, 3 keys: projected, PixelIsArea, EPSG:32633. */
  const uint16_t keys[16] = {1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32633};
  TIFFSetField(t, 33550, 3, scale);
  TIFFSetField(t, 33922, 6, tie);
  TIFFSetField(t, 34735, 16, keys);
  int npy = -1;
  int64_t hdr = 0;
  if (npy_path) {
    npy = open(npy_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (npy < 0) die("cannot create", npy_path);
    hdr = write_npy_header(npy, m->is_float ? "<f4" : "<u2", nb, H, W, npy_path);
  }
  const size_t row_px = (size_t)(W * TILE_W);
  unsigned char *rows = malloc(row_px * (size_t)(nb * bps)); /* interleaved, TILE_W rows */
  unsigned char *tile = malloc((size_t)(TILE_W * TILE_W * nb * bps));
  unsigned char *plane = malloc(row_px * (size_t)bps); /* one band's rows (.npy) */
  if (!rows || !tile || !plane) die("out of memory for", path);
  for (int64_t y0 = 0; y0 < H; y0 += TILE_W) {
    const int64_t nr = H - y0 < TILE_W ? H - y0 : TILE_W;
    for (int64_t yy = 0; yy < nr; ++yy)
      for (int64_t x = 0; x < W; ++x)
        for (int b = 0; b < nb; ++b) {
          float v = pixel(m, W, x, y0 + yy, b);
          size_t i = ((size_t)(yy * W + x) * (size_t)nb + (size_t)b);
          if (m->is_float)
            memcpy(rows + 4 * i, &v, 4);
          else {
            uint16_t u = (uint16_t)v;
            memcpy(rows + 2 * i, &u, 2);
          }
        }
    for (int64_t x0 = 0; x0 < W; x0 += TILE_W) {
      memset(tile, 0, (size_t)(TILE_W * TILE_W * nb * bps));
      const int64_t nc = W - x0 < TILE_W ? W - x0 : TILE_W;
      for (int64_t yy = 0; yy < nr; ++yy)
        memcpy(tile + (size_t)(yy * TILE_W * nb * bps),
               rows + (size_t)((yy * W + x0) * nb * bps), (size_t)(nc * nb * bps));
      if (TIFFWriteEncodedTile(t, TIFFComputeTile(t, (uint32_t)x0, (uint32_t)y0, 0, 0), tile,
                               (tmsize_t)(TILE_W * TILE_W * nb * bps)) < 0)
        die("cannot write a tile of", path);
    }
    if (npy >= 0)
      for (int b = 0; b < nb; ++b) {
        for (size_t i = 0; i < (size_t)(nr * W); ++i)
          memcpy(plane + i * (size_t)bps, rows + (i * (size_t)nb + (size_t)b) * (size_t)bps,
                 (size_t)bps);
        /* Band-major: band b, rows y0 .. y0 + nr at b·H·W + y0·W samples after the header. */
        off_t at = (off_t)(hdr + ((int64_t)b * H + y0) * W * bps);
        size_t len = (size_t)(nr * W) * (size_t)bps;
        if (pwrite(npy, plane, len, at) != (ssize_t)len) die("cannot write", npy_path);
      }
  }
  free(rows), free(tile), free(plane);
  if (!TIFFWriteDirectory(t)) die("cannot finish", path);
  TIFFClose(t);
  if (npy >= 0 && close(npy) != 0) die("cannot close", npy_path);
}

static int exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && st.st_size > 0;
}

/* --compare: the class map read back (libtiff), the fraction of pixels equal to npy's. */
static double compare(const char *map, const char *npy_path, int64_t W, int64_t H) {
  TIFFSetWarningHandler(NULL); /* GDAL_NODATA: a tag this libtiff does not know */
  TIFF *t = TIFFOpen(map, "r");
  FILE *f = fopen(npy_path, "rb");
  if (!t) die("cannot open", map);
  if (!f) die("cannot open", npy_path);
  unsigned char pre[10];
  if (fread(pre, 1, 10, f) != 10) die("cannot read", npy_path);
  long hdr = 10 + (long)(pre[8] | pre[9] << 8);
  uint32_t tw = 0, th = 0;
  TIFFGetField(t, TIFFTAG_TILEWIDTH, &tw);
  TIFFGetField(t, TIFFTAG_TILELENGTH, &th);
  uint8_t *tile = malloc((size_t)TIFFTileSize(t)), *row = malloc((size_t)W);
  if (!tile || !row) die("out of memory for", map);
  int64_t same = 0;
  for (int64_t y0 = 0; y0 < H; y0 += th)
    for (int64_t x0 = 0; x0 < W; x0 += tw) {
      if (TIFFReadEncodedTile(t, TIFFComputeTile(t, (uint32_t)x0, (uint32_t)y0, 0, 0), tile,
                              -1) < 0)
        die("cannot read a tile of", map);
      for (int64_t y = y0; y < y0 + th && y < H; ++y) {
        const int64_t n = W - x0 < tw ? W - x0 : tw;
        if (fseek(f, hdr + (long)(y * W + x0), SEEK_SET) != 0 ||
            fread(row, 1, (size_t)n, f) != (size_t)n)
          die("cannot read", npy_path);
        for (int64_t x = 0; x < n; ++x) same += tile[(y - y0) * tw + x] == row[x];
      }
    }
  free(tile), free(row);
  TIFFClose(t);
  fclose(f);
  return (double)same / ((double)W * (double)H);
}

static int32_t on_row(int64_t done, int64_t total, void *user) {
  double *t_first = user; /* the time the first row of tiles finished */
  if (*t_first == 0) *t_first = bench_now();
  (void)done, (void)total;
  return 0;
}

static double current_rss_mib(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

int main(int argc, char **argv) {
  const int64_t size = atoll(bench_arg(argc, argv, "--size", "10980"));
  const int64_t w_arg = atoll(bench_arg(argc, argv, "--width", "0"));
  const int64_t h_arg = atoll(bench_arg(argc, argv, "--height", "0"));
  const int64_t W = w_arg > 0 ? w_arg : size, H = h_arg > 0 ? h_arg : size;
  const char *mods = bench_arg(argc, argv, "--modalities", "s1s2");
  const char *encoder = bench_arg(argc, argv, "--encoder", "tiny");
  const char *task = bench_arg(argc, argv, "--task", "segmentation");
  const char *compress = bench_arg(argc, argv, "--compress", "none");
  const int64_t P = atoll(bench_arg(argc, argv, "--tile", "256"));
  const int64_t stride = atoll(bench_arg(argc, argv, "--stride", "0"));
  const int64_t batch = atoll(bench_arg(argc, argv, "--batch", "8"));
  const int64_t classes = atoll(bench_arg(argc, argv, "--classes", "2"));
  const int64_t threads = atoll(bench_arg(argc, argv, "--threads", "2"));
  const int regen = atoi(bench_arg(argc, argv, "--regen", "0"));
  const int npy = atoi(bench_arg(argc, argv, "--npy", "0"));
  const int probs = atoi(bench_arg(argc, argv, "--probs", "0"));
  const int gen_only = atoi(bench_arg(argc, argv, "--gen-only", "0"));
  const char *save = bench_arg(argc, argv, "--save", NULL);
  const char *cmp = bench_arg(argc, argv, "--compare", NULL);
  const int seg = strcmp(task, "segmentation") == 0, deflate = strcmp(compress, "deflate") == 0;
  const int with_s1 = strcmp(mods, "s1s2") == 0;
  if (W < P || H < P || P < 8 || (!with_s1 && strcmp(mods, "s2") != 0) ||
      (!seg && strcmp(task, "classification") != 0) ||
      (!deflate && strcmp(compress, "none") != 0)) {
    fprintf(stderr, "bench_scene: bad --size/--width/--height (>= --tile), --tile, "
                    "--modalities, --task or --compress\n");
    return 2;
  }
  char dir[3000], path[2][4096], npy_path[2][4096], out[4096], pout[4096];
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s",
           bench_arg(argc, argv, "--dir", NULL) ? bench_arg(argc, argv, "--dir", NULL) : "");
  if (!dir[0]) snprintf(dir, sizeof dir, "%s/bench_scene", tmp && *tmp ? tmp : "/tmp");
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) die("cannot create", dir);

  /* The inputs, in the model's modality order (s1, s2). */
  const modality *mod[2];
  int n = 0;
  if (with_s1) mod[n++] = &S1;
  mod[n++] = &S2;
  double gen_s = 0;
  for (int k = 0; k < n; ++k) {
    snprintf(path[k], sizeof path[k], "%s/%s_%lldx%lld_%s.tif", dir, mod[k]->name, (long long)W,
             (long long)H, compress);
    snprintf(npy_path[k], sizeof npy_path[k], "%s/%s_%lldx%lld.npy", dir, mod[k]->name,
             (long long)W, (long long)H);
    if (!regen && exists(path[k]) && (!npy || exists(npy_path[k]))) continue;
    double t0 = bench_now();
    pid_t pid = fork(); /* the child's buffers stay out of this process's peak RSS */
    if (pid < 0) die("cannot fork for", path[k]);
    if (pid == 0) {
      generate(mod[k], W, H, deflate, path[k], npy ? npy_path[k] : NULL);
      _exit(0);
    }
    int ws = 0;
    if (waitpid(pid, &ws, 0) < 0 || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0) {
      fprintf(stderr, "bench_scene: generating %s failed\n", path[k]);
      return 1;
    }
    gen_s += bench_now() - t0;
  }

  if (gen_only) {
    printf("{\"workload\":\"scene-gen\",\"width\":%lld,\"height\":%lld,\"gen_s\":%.1f}\n",
           (long long)W, (long long)H, gen_s);
    return 0;
  }
  msc_options *o = NULL;
  CHECK(msc_options_create(&o));
  if (seg) CHECK(msc_options_set_string(o, "task", "segmentation"));
  CHECK(msc_options_set_string(o, "labels", "single"));
  CHECK(msc_options_set_int(o, "classes", classes));
  CHECK(msc_options_set_int(o, "modality.count", n));
  for (int k = 0; k < n; ++k) {
    char key[64];
    float mean[12], sd[12];
    for (int b = 0; b < mod[k]->bands; ++b)
      mean[b] = mod[k]->is_float ? -12.f : 1500.f, sd[b] = mod[k]->is_float ? 5.f : 1000.f;
    snprintf(key, sizeof key, "modality.%d.name", k);
    CHECK(msc_options_set_string(o, key, mod[k]->name));
    snprintf(key, sizeof key, "modality.%d.bands", k);
    CHECK(msc_options_set_int(o, key, mod[k]->bands));
    snprintf(key, sizeof key, "modality.%d.encoder", k);
    CHECK(msc_options_set_string(o, key, encoder));
    snprintf(key, sizeof key, "modality.%d.size", k);
    CHECK(msc_options_set_int(o, key, P));
    snprintf(key, sizeof key, "modality.%d.mean", k);
    CHECK(msc_options_set_floats(o, key, mean, mod[k]->bands));
    snprintf(key, sizeof key, "modality.%d.std", k);
    CHECK(msc_options_set_floats(o, key, sd, mod[k]->bands));
  }
  CHECK(msc_options_set_string(o, "backend", "cpu"));
  CHECK(msc_options_set_int(o, "threads", threads));
  CHECK(msc_options_set_string(o, "conv_algorithm",
                               bench_arg(argc, argv, "--conv-algorithm", "auto")));
  CHECK(msc_options_set_int(o, "scene.stride", stride));
  CHECK(msc_options_set_int(o, "scene.batch", batch));
  msc_model *m = NULL;
  CHECK(msc_model_create(o, &m));
  if (save) CHECK(msc_model_save(m, save));

  const char *paths[2] = {path[0], path[1]};
  msc_scene *scene = NULL;
  double t0 = bench_now();
  CHECK(msc_scene_open(paths, n, m, o, &scene));
  const double open_s = bench_now() - t0;
  int64_t sw = 0, sh = 0, tiles = 0;
  CHECK(msc_scene_size(scene, &sw, &sh, &tiles));
  snprintf(out, sizeof out, "%s/map_%lldx%lld.tif", dir, (long long)W, (long long)H);
  snprintf(pout, sizeof pout, "%s/probs_%lldx%lld.tif", dir, (long long)W, (long long)H);
  const double rss_before = bench_peak_rss_mib(), cur_before = current_rss_mib();
  double t_first = 0;
  t0 = bench_now();
  CHECK(msc_scene_write(scene, out, probs ? pout : NULL, on_row, &t_first));
  const double map_s = bench_now() - t0;
  const double peak = bench_peak_rss_mib();
  const double km2 = (double)sw * (double)sh * 100.0 / 1e6;
  printf("{\"workload\":\"scene-map\",\"width\":%lld,\"height\":%lld,\"modalities\":\"%s\","
         "\"compress\":\"%s\",\"encoder\":\"%s\",\"task\":\"%s\",\"tile\":%lld,"
         "\"stride\":%lld,\"batch\":%lld,\"classes\":%lld,\"threads\":%lld,\"probs\":%d,"
         "\"tiles\":%lld,\"gen_s\":%.1f,\"open_s\":%.3f,\"first_row_s\":%.2f,\"map_s\":%.2f,"
         "\"km2\":%.1f,\"km2_per_s\":%.3f,\"tiles_per_s\":%.2f,\"rss_before_mib\":%.1f,"
         "\"current_rss_before_mib\":%.1f,\"peak_rss_mib\":%.1f",
         (long long)sw, (long long)sh, mods, compress, encoder, task, (long long)P,
         (long long)(stride ? stride : P), (long long)batch, (long long)classes,
         (long long)threads, probs, (long long)tiles, gen_s, open_s, t_first - t0, map_s, km2,
         km2 / map_s, (double)tiles / map_s, rss_before, cur_before, peak);
  if (cmp) printf(",\"agree_with\":\"%s\",\"agreement\":%.6f", cmp, compare(out, cmp, sw, sh));
  printf("}\n");
  msc_scene_free(scene);
  msc_model_free(m);
  msc_options_free(o);
  return 0;
}
