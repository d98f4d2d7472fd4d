/*
 * test_raster.c — GeoTIFF reading and resampling.
 *
 * Golden pixel values were read from the real BigEarthNet files with tools independent
 * of libtiff's decoding path: `tiffdump` gave the strip offsets and `od` the raw
 * little-endian samples at those offsets (uint16 for B01, float32 bit patterns for VV).
 * Resampling expectations are worked out by hand for align_corners = False.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raster.h"

#ifndef MSC_TEST_DATA
#error "MSC_TEST_DATA must name examples/data"
#endif

#define V2 MSC_TEST_DATA "/bigearthnet-v2/"
#define B01 V2 "BigEarthNet-S2/S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP/" \
  "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48/" \
  "S2A_MSIL2A_20170613T101031_N9999_R022_T33UUP_87_48_B01.tif"
#define VV V2 "BigEarthNet-S1/S1A_IW_GRDH_1SDV_20170613T165043/" \
  "S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48/S1A_IW_GRDH_1SDV_20170613T165043_33UUP_87_48_VV.tif"

static uint32_t bits_of(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

START_TEST(test_golden_uint16) {
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(B01, &r), MSC_OK);
  ck_assert_int_eq(r.width, 20);
  ck_assert_int_eq(r.height, 20);
  ck_assert_int_eq(r.bands, 1);
  ck_assert_float_eq(r.data[0], 610.f);
  ck_assert_float_eq(r.data[1], 390.f);
  ck_assert_float_eq(r.data[2], 553.f);
  ck_assert_float_eq(r.data[3], 612.f);
  msci_raster_free(&r);
}
END_TEST

START_TEST(test_golden_float32_strips) {
  msci_raster r;
  ck_assert_int_eq(msci_raster_read(VV, &r), MSC_OK);
  ck_assert_int_eq(r.width, 120);
  ck_assert_int_eq(r.height, 120);
  /* (0,0), (0,1) and (17,0): the first pixel of the second strip (17 rows each). */
  ck_assert_uint_eq(bits_of(r.data[0]), 0xc12d9d2fu);
  ck_assert_float_eq_tol(r.data[1], -12.670076f, 1e-6f);
  ck_assert_uint_eq(bits_of(r.data[17 * 120]), 0xc15b0a4fu);
  msci_raster_free(&r);
}
END_TEST

/* Runs a read with stderr redirected, checking that nothing was printed. */
static msc_status read_quietly(const char *path) {
  char log[] = "/tmp/msc_raster_stderr_XXXXXX";
  int fd = mkstemp(log);
  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  msci_raster r = {0};
  msc_status st = msci_raster_read(path, &r);
  msci_raster_free(&r);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  off_t printed = lseek(fd, 0, SEEK_END);
  close(fd);
  unlink(log);
  ck_assert_msg(printed == 0, "libtiff printed %lld bytes on stderr", (long long)printed);
  return st;
}

START_TEST(test_corrupt_files) {
  FILE *f = fopen(VV, "rb");
  ck_assert_ptr_nonnull(f);
  unsigned char buf[70000];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  char path[] = "/tmp/msc_raster_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  close(fd);
  size_t cuts[] = {0, 4, 8, 100, 423, 424, 9000, len / 2, len - 1};
  for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; ++i) {
    f = fopen(path, "wb");
    fwrite(buf, 1, cuts[i], f);
    fclose(f);
    msc_status st = read_quietly(path);
    ck_assert_msg(st == MSC_E_BAD_FORMAT, "cut at %zu: %d %s", cuts[i], st, msc_last_error());
    ck_assert_ptr_nonnull(strstr(msc_last_error(), path));
  }
  f = fopen(path, "wb");
  fputs("definitely not a tiff", f);
  fclose(f);
  ck_assert_int_eq(read_quietly(path), MSC_E_BAD_FORMAT);
  unlink(path);
  ck_assert_int_eq(read_quietly("/nonexistent/x.tif"), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "/nonexistent/x.tif"));
}
END_TEST

START_TEST(test_resample) {
  /* 2×2 → 4×4, align_corners = False: source coordinate of i is (i + 0.5)/2 - 0.5,
   * clamped at 0: 0, 0.25, 0.75, 1.25 → clamped to the last pixel beyond 1. */
  const float src[4] = {0, 4, 8, 12};
  float dst[16];
  msci_resample(src, 2, 2, dst, 4, 4, MSCI_RESAMPLE_BILINEAR);
  const float row_w[4] = {0, 1, 3, 4}; /* x weights times 4 along a row of 0..4 */
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) ck_assert_float_eq_tol(dst[y * 4 + x], row_w[x] + 2 * row_w[y], 1e-6f);
  msci_resample(src, 2, 2, dst, 4, 4, MSCI_RESAMPLE_NEAREST);
  const float want[16] = {0, 0, 4, 4, 0, 0, 4, 4, 8, 8, 12, 12, 8, 8, 12, 12};
  for (int i = 0; i < 16; ++i) ck_assert_float_eq(dst[i], want[i]);
  /* Same size: the identity. */
  float same[4];
  msci_resample(src, 2, 2, same, 2, 2, MSCI_RESAMPLE_BILINEAR);
  for (int i = 0; i < 4; ++i) ck_assert_float_eq(same[i], src[i]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("raster");
  TCase *tc = tcase_create("raster");
  tcase_add_test(tc, test_golden_uint16);
  tcase_add_test(tc, test_golden_float32_strips);
  tcase_add_test(tc, test_corrupt_files);
  tcase_add_test(tc, test_resample);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
