/*
 * test_real_embed.c — a model created in C, saved, then loaded in a new process,
 * embeds the real BigEarthNet v2 samples (examples/data/bigearthnet-v2) with output
 * identical bit for bit to the creating process's.
 *
 * The same executable is the child: `test_real_embed --child MODEL OUT` loads MODEL,
 * embeds the samples and writes the raw floats to OUT.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mosaic/mosaic.h"
#include "data/raster.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif

#define ROOT MSC_TEST_DATA "/bigearthnet-v2"
#define MAXN 8
static const char *const S2_BANDS[12] = {"B01", "B02", "B03", "B04", "B05", "B06",
                                         "B07", "B08", "B8A", "B09", "B11", "B12"};
static const char *const S1_BANDS[2] = {"VV", "VH"};

/* name without its last k '_'-separated parts (a patch's product folder). */
static void drop_parts(char *dst, size_t n, const char *name, int k) {
  snprintf(dst, n, "%s", name);
  for (int i = 0; i < k; ++i) {
    char *u = strrchr(dst, '_');
    if (u) *u = '\0';
  }
}

static int read_band(const char *path, float *dst) {
  msci_raster r;
  if (msci_raster_read(path, &r) != MSC_OK) {
    fprintf(stderr, "%s\n", msc_last_error());
    return 0;
  }
  if (r.width == 120)
    memcpy(dst, r.data, 120 * 120 * sizeof(float));
  else
    msci_resample(r.data, r.height, r.width, dst, 120, 120, MSCI_RESAMPLE_BILINEAR);
  msci_raster_free(&r);
  return 1;
}

/* Fills a batch with every patch listed in metadata.tsv; returns N (0 on error). */
static int64_t load_samples(msc_batch *b) {
  FILE *f = fopen(ROOT "/metadata.tsv", "r");
  if (!f) return 0;
  static float s1[MAXN * 2 * 120 * 120], s2[MAXN * 12 * 120 * 120];
  char line[4096];
  int64_t n = 0;
  int ok = fgets(line, sizeof line, f) != NULL; /* header */
  while (ok && n < MAXN && fgets(line, sizeof line, f)) {
    char *save = NULL, *patch = strtok_r(line, "\t", &save),
         *s1name = strtok_r(NULL, "\t", &save);
    if (!patch || !s1name) break;
    char prod[256], path[1024];
    drop_parts(prod, sizeof prod, patch, 2);
    for (int k = 0; ok && k < 12; ++k) {
      snprintf(path, sizeof path, ROOT "/BigEarthNet-S2/%s/%s/%s_%s.tif", prod, patch, patch,
               S2_BANDS[k]);
      ok = read_band(path, s2 + (n * 12 + k) * 120 * 120);
    }
    drop_parts(prod, sizeof prod, s1name, 3);
    for (int k = 0; ok && k < 2; ++k) {
      snprintf(path, sizeof path, ROOT "/BigEarthNet-S1/%s/%s/%s_%s.tif", prod, s1name, s1name,
               S1_BANDS[k]);
      ok = read_band(path, s1 + (n * 2 + k) * 120 * 120);
    }
    n++;
  }
  fclose(f);
  if (!ok || n == 0) return 0;
  if (msc_batch_set_modality(b, "s1", s1, n, 2, 120, 120) != MSC_OK ||
      msc_batch_set_modality(b, "s2", s2, n, 12, 120, 120) != MSC_OK)
    return 0;
  return n;
}

static int child(const char *model_path, const char *out_path) {
  msc_model *m = NULL;
  msc_batch *b = NULL;
  if (msc_model_load(model_path, NULL, &m) != MSC_OK || msc_batch_create(&b) != MSC_OK) {
    fprintf(stderr, "child: %s\n", msc_last_error());
    return 1;
  }
  int64_t n = load_samples(b), dim = 0;
  msc_model_embedding_size(m, MSC_EMBED_FUSED, &dim);
  float *e = malloc((size_t)(n * dim) * sizeof(float));
  int rc = 1;
  if (n > 0 && e && msc_embed(m, b, MSC_EMBED_FUSED, e, (size_t)(n * dim)) == MSC_OK) {
    FILE *f = fopen(out_path, "wb");
    rc = !(f && fwrite(e, sizeof(float), (size_t)(n * dim), f) == (size_t)(n * dim));
    if (f) fclose(f);
  } else {
    fprintf(stderr, "child: %s\n", msc_last_error());
  }
  free(e);
  msc_batch_free(b);
  msc_model_free(m);
  return rc;
}

static const char *self_exe;

START_TEST(test_new_process_identical) {
  /* ResNet-18 encoders with BigEarthNet v2's S1 statistics; S2 scaled to reflectance. */
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "-12.620,-19.290"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "5.116,5.464"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.std",
                                          "1e4,1e4,1e4,1e4,1e4,1e4,1e4,1e4,1e4,1e4,1e4,1e4"),
                   MSC_OK);
  ck_assert_int_eq(msc_options_set_int(o, "seed", 2024), MSC_OK);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  char dir[] = "/tmp/msc_real_XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char model_path[256], out_path[256];
  snprintf(model_path, sizeof model_path, "%s/model.safetensors", dir);
  snprintf(out_path, sizeof out_path, "%s/child.f32", dir);
  ck_assert_int_eq(msc_model_save(m, model_path), MSC_OK);

  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  int64_t n = load_samples(b), dim = 0;
  ck_assert_int_eq(n, 3);
  ck_assert_int_eq(msc_model_embedding_size(m, MSC_EMBED_FUSED, &dim), MSC_OK);
  float *mine = malloc((size_t)(n * dim) * sizeof(float));
  ck_assert_int_eq(msc_embed(m, b, MSC_EMBED_FUSED, mine, (size_t)(n * dim)), MSC_OK);
  double norm = 0;
  for (int64_t i = 0; i < n * dim; ++i) {
    ck_assert(isfinite(mine[i]));
    norm += fabs(mine[i]);
  }
  ck_assert(norm > 0);
  /* The samples differ, so their embeddings must too. */
  ck_assert(memcmp(mine, mine + dim, (size_t)dim * sizeof(float)) != 0);

  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    execl(self_exe, self_exe, "--child", model_path, out_path, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
  float *theirs = malloc((size_t)(n * dim) * sizeof(float));
  FILE *f = fopen(out_path, "rb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fread(theirs, sizeof(float), (size_t)(n * dim), f), (size_t)(n * dim));
  fclose(f);
  ck_assert_mem_eq(mine, theirs, (size_t)(n * dim) * sizeof(float));
  free(mine);
  free(theirs);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
  unlink(model_path);
  unlink(out_path);
  rmdir(dir);
}
END_TEST

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "--child") == 0) return child(argv[2], argv[3]);
  self_exe = "/proc/self/exe";
  static char exe[4096];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = '\0';
    self_exe = exe;
  }
  Suite *s = suite_create("real_embed");
  TCase *tc = tcase_create("real_embed");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_new_process_identical);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
