/*
 * test_augment.c — the augmentations (lib/train/augment.h): exact transforms with explicit
 * parameters on hand-written images, the random draws (torchvision's
 * RandomResizedCrop rules, flips, quarter turns), determinism independent of order and
 * threads, shared geometry, which kinds get speckle and jitter, and the statistics of
 * the noises.
 *
 * Expected images are written out by hand (rotation as torch.rot90(x, k, dims=(-2,-1)),
 * i.e. counter-clockwise; bilinear resampling with align_corners = False).
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/augment.h"
#include "common/rng.h"
#include "mosaic/mosaic.h"
#include "options/options.h"

/* Every option off; kinds SAR, optical, other for modalities 0, 1, 2. */
static msci_aug_cfg cfg_off(void) {
  msci_aug_cfg c;
  memset(&c, 0, sizeof c);
  c.crop_scale_min = c.crop_scale_max = 1.0;
  c.crop_ratio_min = c.crop_ratio_max = 1.0;
  c.kind[0] = MSCI_KIND_SAR;
  c.kind[1] = MSCI_KIND_OPTICAL;
  c.kind[2] = MSCI_KIND_OTHER;
  return c;
}

/* The library's defaults (every key unset). */
static msci_aug_cfg cfg_default(void) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  msci_aug_cfg c;
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_OK);
  msc_options_free(o);
  return c;
}

/* A deterministic non-trivial image of n floats. */
static float *pattern(size_t n, unsigned salt) {
  float *x = malloc(n * sizeof(float));
  ck_assert_ptr_nonnull(x);
  for (size_t i = 0; i < n; ++i)
    x[i] = (float)sin(0.37 * (double)i + 0.11 * salt) + 0.01f * (float)(i % 7);
  return x;
}

static float *buf(size_t n) {
  float *x = calloc(n, sizeof(float));
  ck_assert_ptr_nonnull(x);
  return x;
}

/* ---- identity ------------------------------------------------------------------------ */

START_TEST(identity_when_off) {
  enum { C = 3, H = 5, W = 7 };
  size_t n = (size_t)C * H * W;
  float *src = pattern(n, 1), *dst = buf(n), *scratch = buf(n);
  msci_aug_cfg c = cfg_off();
  for (int32_t k = 0; k < 3; ++k) {
    memset(dst, 0xff, n * sizeof(float));
    ck_assert_int_eq(msci_augment_view(&c, 42, 3, 1, k, c.kind[k], src, C, H, W, dst, scratch),
                     MSC_OK);
    ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  }
  /* the same through the options: every aug.* key off */
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *flags[] = {"aug.crop", "aug.hflip", "aug.vflip", "aug.rot90"};
  for (int i = 0; i < 4; ++i) ck_assert_int_eq(msc_options_set_int(o, flags[i], 0), MSC_OK);
  const char *amounts[] = {"aug.noise_std", "aug.jitter_brightness", "aug.jitter_contrast",
                           "aug.speckle"};
  for (int i = 0; i < 4; ++i)
    ck_assert_int_eq(msc_options_set_float(o, amounts[i], 0.0), MSC_OK);
  msci_aug_cfg p;
  ck_assert_int_eq(msci_aug_cfg_parse(o, &p), MSC_OK);
  msc_options_free(o);
  for (int32_t k = 0; k < 3; ++k) {
    ck_assert_int_eq(msci_augment_view(&p, 7, 0, 0, k, p.kind[k], src, C, H, W, dst, scratch),
                     MSC_OK);
    ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  }
  /* in place */
  float *copy = buf(n);
  memcpy(copy, src, n * sizeof(float));
  ck_assert_int_eq(
      msci_augment_view(&p, 7, 0, 0, 0, MSCI_KIND_SAR, copy, C, H, W, copy, scratch), MSC_OK);
  ck_assert(memcmp(src, copy, n * sizeof(float)) == 0);
  free(copy);
  free(src);
  free(dst);
  free(scratch);
}
END_TEST

/* ---- exact geometry ------------------------------------------------------------------ */

/* Applies p to the 3x3 image 1..9 (band 0) and 11..19 (band 1) and compares both bands
 * with want (band 1 = want + 10). */
static void check_3x3(const msci_aug_params *p, const float want[9]) {
  float src[18], dst[18], scratch[18];
  for (int i = 0; i < 9; ++i) {
    src[i] = (float)(i + 1);
    src[9 + i] = (float)(i + 11);
  }
  ck_assert_int_eq(msci_augment_apply(p, src, 2, 3, 3, dst, scratch), MSC_OK);
  for (int i = 0; i < 9; ++i) {
    ck_assert_msg(dst[i] == want[i], "pixel %d: %g, expected %g", i, (double)dst[i],
                  (double)want[i]);
    ck_assert_msg(dst[9 + i] == want[i] + 10, "band 1 pixel %d: %g", i, (double)dst[9 + i]);
  }
}

START_TEST(flips_and_rotations_3x3) {
  /* src = [[1,2,3],[4,5,6],[7,8,9]] */
  msci_aug_params p;
  memset(&p, 0, sizeof p);
  static const float ident[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  check_3x3(&p, ident);
  p.hflip = 1; /* mirror left-right */
  static const float hf[9] = {3, 2, 1, 6, 5, 4, 9, 8, 7};
  check_3x3(&p, hf);
  p.hflip = 0;
  p.vflip = 1; /* mirror top-bottom */
  static const float vf[9] = {7, 8, 9, 4, 5, 6, 1, 2, 3};
  check_3x3(&p, vf);
  p.vflip = 0;
  /* one counter-clockwise quarter turn: out[i][j] = in[j][2-i] (numpy/torch rot90) */
  p.rot = 1;
  static const float r1[9] = {3, 6, 9, 2, 5, 8, 1, 4, 7};
  check_3x3(&p, r1);
  p.rot = 2;
  static const float r2[9] = {9, 8, 7, 6, 5, 4, 3, 2, 1};
  check_3x3(&p, r2);
  p.rot = 3; /* out[i][j] = in[2-j][i] */
  static const float r3[9] = {7, 4, 1, 8, 5, 2, 9, 6, 3};
  check_3x3(&p, r3);
  /* flips come first: hflip then a quarter turn of [[3,2,1],[6,5,4],[9,8,7]] is the
   * transpose of the source */
  p.hflip = 1;
  p.rot = 1;
  static const float hr1[9] = {1, 4, 7, 2, 5, 8, 3, 6, 9};
  check_3x3(&p, hr1);
  /* both flips = a half turn */
  p.rot = 0;
  p.vflip = 1;
  check_3x3(&p, r2);
  /* hflip, vflip and a half turn: back to the source */
  p.rot = 2;
  check_3x3(&p, ident);
}
END_TEST

START_TEST(non_square_skips_rotation) {
  /* 2x3: [[1,2,3],[4,5,6]] */
  float src[6] = {1, 2, 3, 4, 5, 6}, dst[6], scratch[6];
  msci_aug_params p;
  memset(&p, 0, sizeof p);
  p.rot = 1;
  ck_assert_int_eq(msci_augment_apply(&p, src, 1, 2, 3, dst, scratch), MSC_OK);
  ck_assert(memcmp(src, dst, sizeof src) == 0);
  p.hflip = 1;
  p.vflip = 1;
  ck_assert_int_eq(msci_augment_apply(&p, src, 1, 2, 3, dst, scratch), MSC_OK);
  static const float want[6] = {6, 5, 4, 3, 2, 1};
  for (int i = 0; i < 6; ++i) ck_assert(dst[i] == want[i]);
  /* the draw never rotates a non-square image */
  msci_aug_cfg c = cfg_off();
  c.rot90 = 1;
  for (int64_t s = 0; s < 64; ++s) {
    msci_aug_draw_geometry(&c, 1, s, 0, 0, 4, 6, &p);
    ck_assert_int_eq(p.rot, 0);
  }
}
END_TEST

/* A 2x2 window of a 4x4 image resampled back to 4x4. Image value 10·y + x. With
 * crop_w = crop_h = 0.5 the window is 2x2; crop_x = 0.7 gives the column
 * floor(0.7·(4 − 2 + 1)) = 2, crop_y = 0.4 the row floor(0.4·3) = 1: the window is
 * [[12, 13], [22, 23]]. Upsampling 2 → 4 with align_corners = False samples source
 * coordinates (i + 0.5)/2 − 0.5 = -0.25 (clamped to 0), 0.25, 0.75, 1.25 (the last
 * pixel), i.e. fractions f = (0, 0.25, 0.75, 1) of the way from the first to the
 * second pixel: out[y][x] = 12 + 10·f[y] + f[x]. */
START_TEST(crop_by_hand) {
  float src[16], dst[16], scratch[16];
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) src[y * 4 + x] = (float)(10 * y + x);
  msci_aug_params p;
  memset(&p, 0, sizeof p);
  p.crop = 1;
  p.crop_w = p.crop_h = 0.5;
  p.crop_x = 0.7;
  p.crop_y = 0.4;
  int64_t y0, x0, ch, cw;
  msci_aug_crop_window(&p, 4, 4, &y0, &x0, &ch, &cw);
  ck_assert(y0 == 1 && x0 == 2 && ch == 2 && cw == 2);
  ck_assert_int_eq(msci_augment_apply(&p, src, 1, 4, 4, dst, scratch), MSC_OK);
  static const double f[4] = {0, 0.25, 0.75, 1};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      ck_assert_msg(fabs(dst[y * 4 + x] - (12 + 10 * f[y] + f[x])) < 1e-6, "(%d,%d): %g", y, x,
                    (double)dst[y * 4 + x]);
  /* then a horizontal flip of the result */
  p.hflip = 1;
  ck_assert_int_eq(msci_augment_apply(&p, src, 1, 4, 4, dst, scratch), MSC_OK);
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x)
      ck_assert(fabs(dst[y * 4 + x] - (12 + 10 * f[y] + f[3 - x])) < 1e-6);
  /* positions: crop_x just below 1 is the last column, 0 the first */
  p.crop_x = 0.999999;
  p.crop_y = 0.0;
  msci_aug_crop_window(&p, 4, 4, &y0, &x0, &ch, &cw);
  ck_assert(y0 == 0 && x0 == 2);
  /* centred: 0.5 of 5 rounds to 3 pixels, (5 − 3)/2 = 1 */
  p.crop_centre = 1;
  msci_aug_crop_window(&p, 5, 5, &y0, &x0, &ch, &cw);
  ck_assert(y0 == 1 && x0 == 1 && ch == 3 && cw == 3);
  /* centred, odd difference: 2 of 5 → (5 − 2)/2 = 1 (rounded down) */
  p.crop_w = p.crop_h = 0.4;
  msci_aug_crop_window(&p, 5, 5, &y0, &x0, &ch, &cw);
  ck_assert(y0 == 1 && x0 == 1 && ch == 2 && cw == 2);
  /* a tiny window is at least one pixel */
  p.crop_w = p.crop_h = 1e-9;
  msci_aug_crop_window(&p, 5, 5, &y0, &x0, &ch, &cw);
  ck_assert(ch == 1 && cw == 1);
}
END_TEST

/* Scale 1 and ratio 1 on a square image: the window is the whole image, and the
 * result is exactly the input (no resampling). */
START_TEST(crop_full_is_identity) {
  enum { C = 2, S = 9 };
  size_t n = (size_t)C * S * S;
  float *src = pattern(n, 3), *dst = buf(n), *scratch = buf(n);
  msci_aug_cfg c = cfg_off();
  c.crop = 1;
  for (int64_t s = 0; s < 20; ++s) {
    msci_aug_params p;
    msci_aug_draw_geometry(&c, 5, s, 0, 0, S, S, &p);
    ck_assert(p.crop == 1 && p.crop_w == 1.0 && p.crop_h == 1.0);
    ck_assert_int_eq(
        msci_augment_view(&c, 5, s, 0, 0, MSCI_KIND_SAR, src, C, S, S, dst, scratch), MSC_OK);
    ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  }
  /* a full window given explicitly also copies exactly */
  msci_aug_params p;
  memset(&p, 0, sizeof p);
  p.crop = 1;
  p.crop_w = p.crop_h = 1.0;
  p.crop_x = 0.3;
  ck_assert_int_eq(msci_augment_apply(&p, src, C, S, S, dst, scratch), MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  free(src);
  free(dst);
  free(scratch);
}
END_TEST

/* Ratio 1 on a 4x6 image never fits with scale 1 (width fraction √(4/6) < 1 but height
 * fraction √(6/4) > 1): every try fails and torchvision's fallback takes the central
 * crop of ratio_max = 1, height 4 and width 4, columns 1..4. */
START_TEST(crop_fallback) {
  msci_aug_cfg c = cfg_off();
  c.crop = 1;
  msci_aug_params p;
  msci_aug_draw_geometry(&c, 9, 0, 0, 0, 4, 6, &p);
  ck_assert(p.crop == 1 && p.crop_centre == 1);
  int64_t y0, x0, ch, cw;
  msci_aug_crop_window(&p, 4, 6, &y0, &x0, &ch, &cw);
  ck_assert(y0 == 0 && x0 == 1 && ch == 4 && cw == 4);
  /* tall image 6x4, ratio in [2, 3]: in_ratio 2/3 < 2, width 4, height 4/2 = 2, rows 2..3
   */
  c.crop_ratio_min = 2.0;
  c.crop_ratio_max = 3.0;
  msci_aug_draw_geometry(&c, 9, 0, 0, 0, 6, 4, &p);
  ck_assert(p.crop_centre == 1);
  msci_aug_crop_window(&p, 6, 4, &y0, &x0, &ch, &cw);
  ck_assert(y0 == 2 && x0 == 0 && ch == 2 && cw == 4);
}
END_TEST

/* Random windows stay inside the image with area and aspect in the configured ranges
 * (up to rounding to whole pixels), and cover the positions. */
START_TEST(crop_ranges) {
  msci_aug_cfg c = cfg_off();
  c.crop = 1;
  c.crop_scale_min = 0.2;
  c.crop_scale_max = 0.6;
  c.crop_ratio_min = 0.75;
  c.crop_ratio_max = 1.3333;
  enum { S = 120 };
  int hit_left = 0, hit_right = 0;
  for (int64_t s = 0; s < 2000; ++s) {
    msci_aug_params p;
    msci_aug_draw_geometry(&c, 11, s, s & 1, 0, S, S, &p);
    ck_assert(p.crop == 1 && p.crop_centre == 0);
    double area = p.crop_w * p.crop_h, ratio = p.crop_w / p.crop_h;
    ck_assert_msg(area >= 0.2 - 1e-12 && area <= 0.6 + 1e-12, "area %g", area);
    ck_assert_msg(ratio >= 0.75 - 1e-12 && ratio <= 1.3333 + 1e-12, "ratio %g", ratio);
    int64_t y0, x0, ch, cw;
    msci_aug_crop_window(&p, S, S, &y0, &x0, &ch, &cw);
    ck_assert(y0 >= 0 && x0 >= 0 && y0 + ch <= S && x0 + cw <= S);
    double pa = (double)(ch * cw) / (S * S);
    ck_assert_msg(pa > 0.2 - 0.02 && pa < 0.6 + 0.02, "pixel area %g", pa);
    hit_left += x0 == 0;
    hit_right += x0 + cw == S;
  }
  ck_assert(hit_left > 0 && hit_right > 0);
}
END_TEST

/* Flips with probability 1/2, each quarter turn with 1/4. */
START_TEST(flip_rotation_frequencies) {
  msci_aug_cfg c = cfg_default();
  int hf = 0, vf = 0, rot[4] = {0};
  enum { N = 8000 };
  for (int64_t s = 0; s < N; ++s) {
    msci_aug_params p;
    msci_aug_draw_geometry(&c, 3, s, 0, 0, 16, 16, &p);
    hf += p.hflip;
    vf += p.vflip;
    ck_assert(p.rot >= 0 && p.rot <= 3);
    rot[p.rot]++;
  }
  /* binomial: std √(N/4) ≈ 45 for 1/2, √(N·3/16) ≈ 39 for 1/4; 5 sigmas */
  ck_assert_msg(abs(hf - N / 2) < 225 && abs(vf - N / 2) < 225, "%d %d", hf, vf);
  for (int k = 0; k < 4; ++k) ck_assert_msg(abs(rot[k] - N / 4) < 195, "rot %d: %d", k, rot[k]);
}
END_TEST

/* ---- determinism -----------------------------------------------------------------------
 */

enum { DC = 2, DH = 16, DW = 16, DN = 12, DV = 2 };
#define DPLANE ((size_t)DC * DH * DW)

static msci_aug_cfg det_cfg(void) {
  msci_aug_cfg c = cfg_default();
  c.noise_std = 0.1;
  return c;
}

/* View v of sample i (modality 1, optical) into out. */
static void det_view(const msci_aug_cfg *c, const float *src, int64_t i, int32_t v,
                     float *out) {
  float scratch[DPLANE];
  ck_assert_int_eq(msci_augment_view(c, 1234, i, v, 1, MSCI_KIND_OPTICAL, src + i * DPLANE, DC,
                                     DH, DW, out, scratch),
                   MSC_OK);
}

START_TEST(same_arguments_same_bytes) {
  msci_aug_cfg c = det_cfg();
  float *src = pattern(DPLANE, 5);
  float a[DPLANE], b[DPLANE];
  ck_assert_int_eq(msci_augment_view(&c, 99, 7, 0, 0, MSCI_KIND_SAR, src, DC, DH, DW, a, b),
                   MSC_OK);
  float scratch[DPLANE];
  ck_assert_int_eq(
      msci_augment_view(&c, 99, 7, 0, 0, MSCI_KIND_SAR, src, DC, DH, DW, b, scratch), MSC_OK);
  ck_assert(memcmp(a, b, sizeof a) == 0);
  ck_assert(memcmp(a, src, sizeof a) != 0);
  /* another view, sample or seed: other bytes */
  ck_assert_int_eq(
      msci_augment_view(&c, 99, 7, 1, 0, MSCI_KIND_SAR, src, DC, DH, DW, b, scratch), MSC_OK);
  ck_assert(memcmp(a, b, sizeof a) != 0);
  ck_assert_int_eq(
      msci_augment_view(&c, 99, 8, 0, 0, MSCI_KIND_SAR, src, DC, DH, DW, b, scratch), MSC_OK);
  ck_assert(memcmp(a, b, sizeof a) != 0);
  ck_assert_int_eq(
      msci_augment_view(&c, 100, 7, 0, 0, MSCI_KIND_SAR, src, DC, DH, DW, b, scratch), MSC_OK);
  ck_assert(memcmp(a, b, sizeof a) != 0);
  free(src);
}
END_TEST

typedef struct worker {
  const msci_aug_cfg *c;
  const float *src;
  float *out;
  int first, step;
} worker;

static void *run_worker(void *arg) {
  worker *w = arg;
  for (int i = w->first; i < DN; i += w->step)
    for (int32_t v = 0; v < DV; ++v)
      det_view(w->c, w->src, i, v, w->out + (v * DN + i) * DPLANE);
  return NULL;
}

START_TEST(order_and_threads) {
  msci_aug_cfg c = det_cfg();
  float *src = pattern(DN * DPLANE, 6);
  size_t total = (size_t)DV * DN * DPLANE;
  float *fwd = buf(total), *rev = buf(total), *thr = buf(total);
  for (int i = 0; i < DN; ++i)
    for (int32_t v = 0; v < DV; ++v) det_view(&c, src, i, v, fwd + (v * DN + i) * DPLANE);
  for (int i = DN - 1; i >= 0; --i)
    for (int32_t v = DV - 1; v >= 0; --v) det_view(&c, src, i, v, rev + (v * DN + i) * DPLANE);
  ck_assert(memcmp(fwd, rev, total * sizeof(float)) == 0);
  /* two threads at once, interleaved samples */
  worker w[2] = {{&c, src, thr, 0, 2}, {&c, src, thr, 1, 2}};
  pthread_t t[2];
  for (int k = 0; k < 2; ++k)
    ck_assert_int_eq(pthread_create(&t[k], NULL, run_worker, &w[k]), 0);
  for (int k = 0; k < 2; ++k) ck_assert_int_eq(pthread_join(t[k], NULL), 0);
  ck_assert(memcmp(fwd, thr, total * sizeof(float)) == 0);
  /* and views differ from each other */
  ck_assert(memcmp(fwd, fwd + DN * DPLANE, DPLANE * sizeof(float)) != 0);
  free(src);
  free(fwd);
  free(rev);
  free(thr);
}
END_TEST

/* ---- shared geometry --------------------------------------------------------------------
 */

/* Two modalities with identical bands and photometric transforms off: with shared
 * geometry their views are identical; drawn independently, some differ. */
START_TEST(shared_geometry) {
  msci_aug_cfg c = cfg_default();
  c.noise_std = c.jitter_brightness = c.jitter_contrast = c.speckle = 0;
  float *src = pattern(DPLANE, 8);
  float a[DPLANE], b[DPLANE], scratch[DPLANE];
  int differ = 0, changed = 0;
  for (int64_t s = 0; s < 32; ++s) {
    ck_assert_int_eq(
        msci_augment_view(&c, 5, s, 1, 0, MSCI_KIND_SAR, src, DC, DH, DW, a, scratch), MSC_OK);
    ck_assert_int_eq(
        msci_augment_view(&c, 5, s, 1, 1, MSCI_KIND_OPTICAL, src, DC, DH, DW, b, scratch),
        MSC_OK);
    ck_assert(memcmp(a, b, sizeof a) == 0);
    changed += memcmp(a, src, sizeof a) != 0;
    /* every band got the same geometry: band 1 of a copy with equal bands equals band 0 */
  }
  ck_assert(changed > 0);
  /* modalities of other sizes share the parameters */
  msci_aug_params p8, p16;
  msci_aug_draw_geometry(&c, 5, 3, 0, 0, 8, 8, &p8);
  msci_aug_draw_geometry(&c, 5, 3, 0, 1, 16, 16, &p16);
  ck_assert(memcmp(&p8, &p16, sizeof p8) == 0);
  c.shared_geometry = 0;
  for (int64_t s = 0; s < 32; ++s) {
    ck_assert_int_eq(
        msci_augment_view(&c, 5, s, 1, 0, MSCI_KIND_SAR, src, DC, DH, DW, a, scratch), MSC_OK);
    ck_assert_int_eq(
        msci_augment_view(&c, 5, s, 1, 1, MSCI_KIND_OPTICAL, src, DC, DH, DW, b, scratch),
        MSC_OK);
    differ += memcmp(a, b, sizeof a) != 0;
  }
  ck_assert(differ > 16);
  free(src);
}
END_TEST

/* Geometry is the same for every band: an image whose bands are equal keeps them equal. */
START_TEST(same_geometry_all_bands) {
  msci_aug_cfg c = cfg_default();
  c.jitter_brightness = c.jitter_contrast = c.speckle = 0;
  enum { C = 4, S = 12 };
  float src[C * S * S], dst[C * S * S], scratch[C * S * S];
  float *band = pattern(S * S, 9);
  for (int b = 0; b < C; ++b) memcpy(src + b * S * S, band, sizeof(float) * S * S);
  for (int64_t s = 0; s < 16; ++s) {
    ck_assert_int_eq(
        msci_augment_view(&c, 1, s, 0, 2, MSCI_KIND_OTHER, src, C, S, S, dst, scratch), MSC_OK);
    for (int b = 1; b < C; ++b)
      ck_assert(memcmp(dst, dst + b * S * S, sizeof(float) * S * S) == 0);
  }
  free(band);
}
END_TEST

/* ---- photometric ------------------------------------------------------------------------
 */

START_TEST(speckle_sar_jitter_optical) {
  enum { C = 3, S = 8 };
  size_t n = (size_t)C * S * S;
  float *src = pattern(n, 10), *dst = buf(n), *scratch = buf(n);
  msci_aug_cfg c = cfg_off();
  c.speckle = 0.2;
  /* speckle: SAR only */
  ck_assert_int_eq(msci_augment_view(&c, 1, 0, 0, 0, MSCI_KIND_SAR, src, C, S, S, dst, scratch),
                   MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) != 0);
  ck_assert_int_eq(
      msci_augment_view(&c, 1, 0, 0, 1, MSCI_KIND_OPTICAL, src, C, S, S, dst, scratch), MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  ck_assert_int_eq(
      msci_augment_view(&c, 1, 0, 0, 2, MSCI_KIND_OTHER, src, C, S, S, dst, scratch), MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  /* jitter: optical only */
  c.speckle = 0;
  c.jitter_brightness = 0.1;
  c.jitter_contrast = 0.1;
  ck_assert_int_eq(
      msci_augment_view(&c, 1, 0, 0, 1, MSCI_KIND_OPTICAL, src, C, S, S, dst, scratch), MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) != 0);
  ck_assert_int_eq(msci_augment_view(&c, 1, 0, 0, 0, MSCI_KIND_SAR, src, C, S, S, dst, scratch),
                   MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  ck_assert_int_eq(
      msci_augment_view(&c, 1, 0, 0, 2, MSCI_KIND_OTHER, src, C, S, S, dst, scratch), MSC_OK);
  ck_assert(memcmp(src, dst, n * sizeof(float)) == 0);
  free(src);
  free(dst);
  free(scratch);
}
END_TEST

/* Brightness alone adds one offset per band in [-b, b]; contrast alone scales around
 * the band mean (which it keeps) by a gain in [1 − c, 1 + c]; the bands differ. */
START_TEST(jitter_shape) {
  enum { C = 3, S = 10 };
  size_t plane = S * S, n = C * plane;
  float *src = pattern(n, 11), *dst = buf(n), *scratch = buf(n);
  msci_aug_cfg c = cfg_off();
  c.jitter_brightness = 0.3;
  ck_assert_int_eq(
      msci_augment_view(&c, 2, 4, 1, 1, MSCI_KIND_OPTICAL, src, C, S, S, dst, scratch), MSC_OK);
  double offs[C];
  for (int b = 0; b < C; ++b) {
    offs[b] = dst[b * plane] - src[b * plane];
    ck_assert(fabs(offs[b]) <= 0.3 + 1e-6);
    for (size_t i = 0; i < plane; ++i)
      ck_assert(fabs((dst[b * plane + i] - src[b * plane + i]) - offs[b]) < 1e-5);
  }
  ck_assert(offs[0] != offs[1] && offs[1] != offs[2]);
  c.jitter_brightness = 0;
  c.jitter_contrast = 0.4;
  ck_assert_int_eq(
      msci_augment_view(&c, 2, 4, 1, 1, MSCI_KIND_OPTICAL, src, C, S, S, dst, scratch), MSC_OK);
  for (int b = 0; b < C; ++b) {
    double ms = 0, md = 0;
    for (size_t i = 0; i < plane; ++i) {
      ms += src[b * plane + i];
      md += dst[b * plane + i];
    }
    ms /= (double)plane;
    md /= (double)plane;
    ck_assert(fabs(ms - md) < 1e-5);
    /* gain from two pixels far from the mean */
    size_t i = 0;
    for (size_t k = 1; k < plane; ++k)
      if (fabs(src[b * plane + k] - ms) > fabs(src[b * plane + i] - ms)) i = k;
    double gain = (dst[b * plane + i] - ms) / (src[b * plane + i] - ms);
    ck_assert_msg(gain >= 0.6 - 1e-4 && gain <= 1.4 + 1e-4, "gain %g", gain);
    for (size_t k = 0; k < plane; ++k)
      ck_assert(fabs((dst[b * plane + k] - ms) - gain * (src[b * plane + k] - ms)) < 1e-4);
  }
  free(src);
  free(dst);
  free(scratch);
}
END_TEST

static void mean_std(const float *x, size_t n, double *mean, double *sd) {
  double s = 0, s2 = 0;
  for (size_t i = 0; i < n; ++i) s += x[i];
  *mean = s / (double)n;
  for (size_t i = 0; i < n; ++i) s2 += (x[i] - *mean) * (x[i] - *mean);
  *sd = sqrt(s2 / (double)n);
}

/* Gaussian noise on a zero image: measured std within 5% of the configured one. */
START_TEST(noise_statistics) {
  enum { S = 256 };
  size_t n = S * S;
  float *src = buf(n), *dst = buf(n), *scratch = buf(n);
  msci_aug_cfg c = cfg_off();
  c.noise_std = 0.3;
  for (int32_t k = 0; k < 3; ++k) { /* every kind gets it */
    ck_assert_int_eq(msci_augment_view(&c, 77, 1, 0, k, c.kind[k], src, 1, S, S, dst, scratch),
                     MSC_OK);
    double m, sd;
    mean_std(dst, n, &m, &sd);
    ck_assert_msg(fabs(sd - 0.3) < 0.05 * 0.3, "std %g", sd);
    ck_assert_msg(fabs(m) < 0.01, "mean %g", m);
  }
  free(src);
  free(dst);
  free(scratch);
}
END_TEST

/* Speckle is multiplicative in input units: with mean 10 and std 2, a normalised 0 is
 * x = 10, and x(1 + s·n) normalised is 5·s·n: std 5·s. Without a normalisation the
 * normalised 0 is x = 0 and stays 0. A normalised 1 (x = 1, mean 0, std 1) gets std s. */
START_TEST(speckle_input_units) {
  enum { S = 256 };
  size_t n = S * S;
  float *src = buf(2 * n), *dst = buf(2 * n), *scratch = buf(2 * n);
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.mean", "10,0"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.std", "2,1"), MSC_OK);
  msci_aug_cfg c;
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_OK);
  msc_options_free(o);
  ck_assert_int_eq(c.norm_bands[0], 2);
  ck_assert_int_eq(c.norm_bands[1], 0);
  c.crop = c.hflip = c.vflip = c.rot90 = 0;
  c.speckle = 0.2;
  for (size_t i = 0; i < n; ++i) src[n + i] = 1.0f; /* band 1: normalised 1 */
  ck_assert_int_eq(msci_augment_view(&c, 8, 0, 0, 0, MSCI_KIND_SAR, src, 2, S, S, dst, scratch),
                   MSC_OK);
  double m, sd;
  mean_std(dst, n, &m, &sd);
  ck_assert_msg(fabs(sd - 1.0) < 0.05, "band 0 std %g, expected 5·0.2 = 1", sd);
  mean_std(dst + n, n, &m, &sd);
  ck_assert_msg(fabs(sd - 0.2) < 0.05 * 0.2, "band 1 std %g, expected 0.2", sd);
  ck_assert(fabs(m - 1.0) < 0.01);
  /* modality 2 has no normalisation: a zero image stays zero */
  ck_assert_int_eq(msci_augment_view(&c, 8, 0, 0, 2, MSCI_KIND_SAR, src, 1, S, S, dst, scratch),
                   MSC_OK);
  for (size_t i = 0; i < n; ++i) ck_assert(dst[i] == 0.0f);
  /* set_norm replaces it (mean 4, std 4: std of the result 1·0.2) */
  float mean1[1] = {4.0f}, std1[1] = {4.0f};
  ck_assert_int_eq(msci_aug_cfg_set_norm(&c, 2, 1, mean1, std1), MSC_OK);
  ck_assert_int_eq(msci_augment_view(&c, 8, 0, 0, 2, MSCI_KIND_SAR, src, 1, S, S, dst, scratch),
                   MSC_OK);
  mean_std(dst, n, &m, &sd);
  ck_assert_msg(fabs(sd - 0.2) < 0.05 * 0.2, "std %g", sd);
  /* a normalisation of 2 bands for a 1-band image is a shape error */
  ck_assert_int_eq(msci_augment_view(&c, 8, 0, 0, 0, MSCI_KIND_SAR, src, 1, S, S, dst, scratch),
                   MSC_E_SHAPE);
  float bad[1] = {0.0f};
  ck_assert_int_eq(msci_aug_cfg_set_norm(&c, 2, 1, mean1, bad), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_aug_cfg_set_norm(&c, 8, 0, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_aug_cfg_set_norm(&c, 2, 0, NULL, NULL), MSC_OK);
  ck_assert_int_eq(c.norm_bands[2], 0);
  free(src);
  free(dst);
  free(scratch);
}
END_TEST

/* ---- options and errors -----------------------------------------------------------------
 */

START_TEST(cfg_defaults_and_kinds) {
  msci_aug_cfg c = cfg_default();
  ck_assert(c.crop == 1 && c.hflip == 1 && c.vflip == 1 && c.rot90 == 1);
  ck_assert(c.crop_scale_min == 0.5 && c.crop_scale_max == 1.0);
  ck_assert(c.crop_ratio_min == 0.75 && c.crop_ratio_max == 1.3333);
  ck_assert(c.noise_std == 0.0 && c.jitter_brightness == 0.1 && c.jitter_contrast == 0.1);
  ck_assert(c.speckle == 0.1 && c.shared_geometry == 1);
  ck_assert_int_eq(c.kind[0], MSCI_KIND_SAR);     /* s1 */
  ck_assert_int_eq(c.kind[1], MSCI_KIND_OPTICAL); /* s2 */
  for (int k = 2; k < MSCI_MAX_MODALITIES; ++k) ck_assert_int_eq(c.kind[k], MSCI_KIND_OTHER);
  for (int k = 0; k < MSCI_MAX_MODALITIES; ++k) ck_assert_int_eq(c.norm_bands[k], 0);

  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  char text[32];
  size_t len = 0;
  ck_assert_int_eq(msc_options_get_string(o, "modality.0.kind", text, sizeof text, &len),
                   MSC_OK);
  ck_assert_str_eq(text, "sar");
  ck_assert_int_eq(msc_options_get_string(o, "modality.1.kind", text, sizeof text, &len),
                   MSC_OK);
  ck_assert_str_eq(text, "optical");
  ck_assert_int_eq(msc_options_get_string(o, "modality.5.kind", text, sizeof text, &len),
                   MSC_OK);
  ck_assert_str_eq(text, "other");
  /* the default follows the name */
  ck_assert_int_eq(msc_options_set_string(o, "modality.0.name", "s2"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.1.name", "dem"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.3.name", "s1"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.2.kind", "sar"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.2.kind", "radar"),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_OK);
  ck_assert_int_eq(c.kind[0], MSCI_KIND_OPTICAL);
  ck_assert_int_eq(c.kind[1], MSCI_KIND_OTHER);
  ck_assert_int_eq(c.kind[2], MSCI_KIND_SAR);
  ck_assert_int_eq(c.kind[3], MSCI_KIND_SAR);
  /* the setters' rules */
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_scale_min", 0.0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_scale_max", 1.5), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_float(o, "aug.noise_std", -0.1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msc_options_set_int(o, "aug.hflip", 2), MSC_E_INVALID_ARGUMENT);
  /* cross-key rules, cfg untouched on error */
  msci_aug_cfg before = c;
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_scale_min", 0.9), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_scale_max", 0.8), MSC_OK);
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "aug.crop_scale_min"));
  ck_assert(memcmp(&before, &c, sizeof c) == 0);
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_scale_max", 1.0), MSC_OK);
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_ratio_min", 2.0), MSC_OK);
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "aug.crop_ratio_min"));
  ck_assert_int_eq(msc_options_set_float(o, "aug.crop_ratio_min", 0.5), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.4.mean", "1,2"), MSC_OK);
  ck_assert_int_eq(msc_options_set_string(o, "modality.4.std", "1,2,3"), MSC_OK);
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "modality.4.mean"));
  ck_assert_int_eq(msc_options_set_string(o, "modality.4.std", ""), MSC_OK);
  ck_assert_int_eq(msci_aug_cfg_parse(o, &c), MSC_OK);
  ck_assert_int_eq(c.norm_bands[4], 2);
  ck_assert(c.norm_mean[4][1] == 2.0f && c.norm_std[4][1] == 1.0f);
  ck_assert_int_eq(msci_aug_cfg_parse(NULL, &c), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_aug_cfg_parse(o, NULL), MSC_E_INVALID_ARGUMENT);
  msc_options_free(o);
  ck_assert_int_eq(msci_aug_kind_from_name("sar"), MSCI_KIND_SAR);
  ck_assert_int_eq(msci_aug_kind_from_name("optical"), MSCI_KIND_OPTICAL);
  ck_assert_int_eq(msci_aug_kind_from_name("other"), MSCI_KIND_OTHER);
  ck_assert_int_eq(msci_aug_kind_from_name("SAR"), -1);
  ck_assert_int_eq(msci_aug_kind_from_name(NULL), -1);
}
END_TEST

START_TEST(bad_arguments) {
  msci_aug_cfg c = cfg_default();
  float x[4] = {0}, y[4], s[4];
  ck_assert_int_eq(msci_augment_view(NULL, 0, 0, 0, 0, 0, x, 1, 2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, NULL, 1, 2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, x, 1, 2, 2, NULL, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, x, 1, 2, 2, y, NULL),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, x, 0, 2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, x, 1, -2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, -1, 0, x, 1, 2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, MSCI_MAX_MODALITIES, 0, x, 1, 2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 4, x, 1, 2, 2, y, s),
                   MSC_E_INVALID_ARGUMENT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "kind 4"));
  /* kind 3 (plot): recurrence plots pass through untouched, whatever the settings. */
  float px[4] = {0.5f, 1.5f, 2.5f, 3.5f}, py[4] = {0};
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, MSCI_KIND_PLOT, px, 1, 2, 2, py, s),
                   MSC_OK);
  for (int i = 0; i < 4; ++i) ck_assert_float_eq(py[i], px[i]);
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, x, 1, 2, 2, y, s), MSC_OK);
  /* a 1x1 image with every transform on */
  ck_assert_int_eq(msci_augment_view(&c, 0, 0, 0, 0, 0, x, 1, 1, 1, y, s), MSC_OK);
}
END_TEST

/* ---- masks ---------------------------------------------------------------------------- */

/* The forward transforms, one after the other, on an n × n int map: a plain reference
 * for msci_augment_mask (which maps every output pixel back to its source instead). */
static void ref_dihedral(const int32_t *src, int64_t n, int hflip, int vflip, int rot,
                         int32_t *dst) {
  int32_t a[64], b[64];
  memcpy(a, src, (size_t)(n * n) * sizeof *a);
  if (hflip)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) b[i * n + j] = a[i * n + (n - 1 - j)];
  if (hflip) memcpy(a, b, sizeof b);
  if (vflip)
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) b[i * n + j] = a[(n - 1 - i) * n + j];
  if (vflip) memcpy(a, b, sizeof b);
  for (int r = 0; r < rot; ++r) { /* one counter-clockwise quarter turn: in[j][n-1-i] */
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j) b[i * n + j] = a[j * n + (n - 1 - i)];
    memcpy(a, b, sizeof b);
  }
  memcpy(dst, a, (size_t)(n * n) * sizeof *dst);
}

/* A mask derived from band 0 of an image: 1 above 0, 0 below, -1 (ignored) near 0. */
static int32_t threshold(float v) {
  return fabsf(v) < 0.2f ? -1 : v > 0;
}

/* Every flip and rotation: the mask moves as the reference says, and stays the threshold
 * of the moved pixels (msci_augment_apply), so pixels and mask stay aligned. */
START_TEST(mask_follows_flips_and_rotations) {
  enum { N = 6, P = N * N };
  float *x = pattern(2 * P, 5), moved[2 * P], scratch[2 * P];
  int32_t mask[P], got[P], want[P];
  int ignored = 0;
  for (int i = 0; i < P; ++i) ignored += (mask[i] = threshold(x[i])) < 0;
  ck_assert(ignored > 0 && ignored < P / 2);
  for (int combo = 0; combo < 16; ++combo) {
    msci_aug_params p;
    memset(&p, 0, sizeof p);
    p.hflip = combo & 1;
    p.vflip = (combo >> 1) & 1;
    p.rot = combo >> 2;
    ck_assert_int_eq(msci_augment_mask(&p, mask, N, N, got), MSC_OK);
    ref_dihedral(mask, N, p.hflip, p.vflip, p.rot, want);
    ck_assert_mem_eq(got, want, sizeof got);
    ck_assert_int_eq(msci_augment_apply(&p, x, 2, N, N, moved, scratch), MSC_OK);
    for (int i = 0; i < P; ++i)
      ck_assert_msg(got[i] == threshold(moved[i]), "combo %d pixel %d: mask %d, pixel %g",
                    combo, i, (int)got[i], (double)moved[i]);
  }
  /* A non-square map is not rotated (as the pixels). */
  msci_aug_params p;
  memset(&p, 0, sizeof p);
  p.rot = 1;
  int32_t m23[6] = {1, 2, 3, 4, 5, 6}, o23[6];
  ck_assert_int_eq(msci_augment_mask(&p, m23, 2, 3, o23), MSC_OK);
  ck_assert_mem_eq(o23, m23, sizeof m23);
  ck_assert_int_eq(msci_augment_mask(&p, m23, 2, 3, m23), MSC_E_INVALID_ARGUMENT);
  free(x);
}
END_TEST

/* A crop: the window's classes, each repeated by nearest neighbour (never blended). */
START_TEST(mask_crop_nearest_by_hand) {
  int32_t src[16], got[16];
  for (int i = 0; i < 16; ++i) src[i] = i; /* [[0..3],[4..7],[8..11],[12..15]] */
  msci_aug_params p;
  memset(&p, 0, sizeof p);
  p.crop = 1;
  p.crop_centre = 1;
  p.crop_w = p.crop_h = 0.5; /* the central 2 × 2 window [[5,6],[9,10]] */
  static const int32_t want[16] = {5, 5, 6, 6, 5, 5, 6, 6, 9, 9, 10, 10, 9, 9, 10, 10};
  ck_assert_int_eq(msci_augment_mask(&p, src, 4, 4, got), MSC_OK);
  ck_assert_mem_eq(got, want, sizeof want);
  /* A 3 × 2 window at the top left (crop_x = crop_y = 0), then a horizontal flip:
   * rows floor(y·3/4) = 0,0,1,2 and columns floor(x·2/4) = 0,0,1,1, mirrored. */
  p.crop_centre = 0;
  p.crop_h = 0.75;
  p.hflip = 1;
  static const int32_t want2[16] = {1, 1, 0, 0, 1, 1, 0, 0, 5, 5, 4, 4, 9, 9, 8, 8};
  ck_assert_int_eq(msci_augment_mask(&p, src, 4, 4, got), MSC_OK);
  ck_assert_mem_eq(got, want2, sizeof want2);
}
END_TEST

/* ---- against a plain reference -------------------------------------------------------
 *
 * The documented view written out the slow, obvious way: the crop window resampled back
 * with a per-pixel bilinear rule (align_corners = False), each flip and each
 * counter-clockwise quarter turn (torch.rot90: out[i][j] = in[j][n-1-i]) as a copy into a
 * new image, then speckle (z + (z + mean/std)·s·n, a band's normals n from ref_normals),
 * jitter (gain then offset per band, around the band's mean) and noise (ref_normals over
 * all bands), from the streams that augment.h names. The library's view must give the
 * same bytes. */

/* n normals by Marsaglia's polar method written out one pair at a time (rng.h's
 * definition): u, v = 2·uniform − 1 until 0 < s = u² + v² < 1, then u·f and v·f with
 * f = √((−2 ln s) / s), the last v·f dropped when n is odd. */
static void ref_normals(msci_rng *r, double *out, size_t n) {
  for (size_t i = 0; i < n; i += 2) {
    double u, v, s;
    do {
      u = 2.0 * msci_rng_uniform(r) - 1.0;
      v = 2.0 * msci_rng_uniform(r) - 1.0;
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = sqrt(-2.0 * log(s) / s);
    out[i] = u * f;
    if (i + 1 < n) out[i + 1] = v * f;
  }
}

static double ref_coord(int64_t i, int64_t src, int64_t dst) {
  double c = ((double)i + 0.5) * (double)src / (double)dst - 0.5;
  return c < 0 ? 0 : c;
}

static void ref_bilinear(const float *src, int64_t sh, int64_t sw, float *dst, int64_t dh,
                         int64_t dw) {
  for (int64_t y = 0; y < dh; ++y)
    for (int64_t x = 0; x < dw; ++x) {
      double fy = ref_coord(y, sh, dh), fx = ref_coord(x, sw, dw);
      int64_t y0 = (int64_t)fy, x0 = (int64_t)fx;
      int64_t y1 = y0 + 1 < sh ? y0 + 1 : y0, x1 = x0 + 1 < sw ? x0 + 1 : x0;
      double wy = fy - (double)y0, wx = fx - (double)x0;
      double top = (1 - wx) * src[y0 * sw + x0] + wx * src[y0 * sw + x1];
      double bottom = (1 - wx) * src[y1 * sw + x0] + wx * src[y1 * sw + x1];
      dst[y * dw + x] = (float)((1 - wy) * top + wy * bottom);
    }
}

static void ref_stream(msci_rng *r, uint64_t seed, int64_t i, int32_t v, int32_t k,
                       const char *what) {
  char label[96];
  snprintf(label, sizeof label, "aug/%lld/%d/m%d/%s", (long long)i, (int)v, (int)k, what);
  msci_rng_seed(r, seed, label);
}

static void ref_view(const msci_aug_cfg *cfg, uint64_t seed, int64_t i, int32_t v, int32_t k,
                     const float *src, int64_t c, int64_t h, int64_t w, float *out) {
  msci_aug_params p;
  msci_aug_draw_geometry(cfg, seed, i, v, k, h, w, &p);
  int64_t y0, x0, ch, cw;
  msci_aug_crop_window(&p, h, w, &y0, &x0, &ch, &cw);
  const size_t plane = (size_t)(h * w);
  float *a = buf(plane), *t = buf(plane);
  for (int64_t b = 0; b < c; ++b) {
    const float *s = src + (size_t)b * plane;
    for (int64_t y = 0; y < ch; ++y)
      for (int64_t x = 0; x < cw; ++x) t[y * cw + x] = s[(y0 + y) * w + x0 + x];
    if (ch == h && cw == w)
      memcpy(a, s, plane * sizeof(float));
    else
      ref_bilinear(t, ch, cw, a, h, w);
    if (p.hflip) {
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) t[y * w + x] = a[y * w + (w - 1 - x)];
      memcpy(a, t, plane * sizeof(float));
    }
    if (p.vflip) {
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) t[y * w + x] = a[(h - 1 - y) * w + x];
      memcpy(a, t, plane * sizeof(float));
    }
    for (int32_t q = 0; h == w && q < (p.rot & 3); ++q) {
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) t[y * w + x] = a[x * w + (w - 1 - y)];
      memcpy(a, t, plane * sizeof(float));
    }
    memcpy(out + (size_t)b * plane, a, plane * sizeof(float));
  }
  free(a), free(t);
  msci_rng r;
  const int32_t kind = cfg->kind[k];
  if (kind == MSCI_KIND_SAR && cfg->speckle > 0) {
    ref_stream(&r, seed, i, v, k, "speckle");
    double *nb = malloc(plane * sizeof *nb);
    ck_assert_ptr_nonnull(nb);
    for (int64_t b = 0; b < c; ++b) {
      double off =
          cfg->norm_bands[k] ? (double)cfg->norm_mean[k][b] / (double)cfg->norm_std[k][b] : 0.0;
      ref_normals(&r, nb, plane);
      for (size_t q = 0; q < plane; ++q) {
        double z = out[(size_t)b * plane + q];
        out[(size_t)b * plane + q] = (float)(z + (z + off) * cfg->speckle * nb[q]);
      }
    }
    free(nb);
  }
  if (kind == MSCI_KIND_OPTICAL && (cfg->jitter_brightness > 0 || cfg->jitter_contrast > 0)) {
    ref_stream(&r, seed, i, v, k, "jitter");
    for (int64_t b = 0; b < c; ++b) {
      double gain =
          1.0 - cfg->jitter_contrast + 2.0 * cfg->jitter_contrast * msci_rng_uniform(&r);
      double offset =
          -cfg->jitter_brightness + 2.0 * cfg->jitter_brightness * msci_rng_uniform(&r);
      float *x = out + (size_t)b * plane;
      double mean = 0;
      for (size_t q = 0; q < plane; ++q) mean += (double)x[q];
      mean /= (double)plane;
      for (size_t q = 0; q < plane; ++q)
        x[q] = cfg->jitter_contrast > 0 ? (float)(mean + gain * ((double)x[q] - mean) + offset)
                                        : (float)((double)x[q] + offset);
    }
  }
  if (cfg->noise_std > 0) {
    ref_stream(&r, seed, i, v, k, "noise");
    double *nz = malloc((size_t)c * plane * sizeof *nz);
    ck_assert_ptr_nonnull(nz);
    ref_normals(&r, nz, (size_t)c * plane);
    for (size_t q = 0; q < (size_t)c * plane; ++q)
      out[q] = (float)((double)out[q] + cfg->noise_std * nz[q]);
    free(nz);
  }
}

/* Every option on (the defaults plus noise, independent geometry per modality so k
 * changes the draws), the three kinds, square and non-square images, many samples so
 * that every flip/turn/crop combination and the crop fallback occur; out of place and
 * in place (dst == src). */
START_TEST(view_matches_reference) {
  msci_aug_cfg c = cfg_default();
  c.noise_std = 0.05;
  c.shared_geometry = 0;
  c.kind[0] = MSCI_KIND_SAR;
  c.kind[1] = MSCI_KIND_OPTICAL;
  c.kind[2] = MSCI_KIND_OTHER;
  /* Six bands: the band means are summed four bands at a time, then two. */
  const float mean[6] = {-12.6f, -19.3f, 3.0f, 0.5f, -1.0f, 7.0f},
              std[6] = {5.1f, 5.5f, 2.0f, 1.0f, 0.25f, 3.0f};
  ck_assert_int_eq(msci_aug_cfg_set_norm(&c, 0, 6, mean, std), MSC_OK);
  static const int64_t shapes[][2] = {{24, 24}, {17, 23}, {5, 5}, {1, 9}};
  int turned = 0, cropped = 0;
  for (size_t sh = 0; sh < sizeof shapes / sizeof *shapes; ++sh) {
    const int64_t h = shapes[sh][0], w = shapes[sh][1], C = 6;
    const size_t n = (size_t)(C * h * w);
    float *src = pattern(n, (unsigned)sh), *got = buf(n), *want = buf(n), *scratch = buf(n);
    float *inplace = buf(n);
    if (sh == 1) { /* the crop fallback: ratios no window of this image can have */
      c.crop_ratio_min = 5.0;
      c.crop_ratio_max = 6.0;
    } else {
      c.crop_ratio_min = 0.75;
      c.crop_ratio_max = 1.3333;
    }
    for (int64_t i = 0; i < 24; ++i)
      for (int32_t k = 0; k < 3; ++k)
        for (int32_t v = 0; v < 2; ++v) {
          msci_aug_params p;
          msci_aug_draw_geometry(&c, 11, i, v, k, h, w, &p);
          turned |= 1 << (p.rot & 3);
          cropped += p.crop && !p.crop_centre;
          ref_view(&c, 11, i, v, k, src, C, h, w, want);
          ck_assert_int_eq(
              msci_augment_view(&c, 11, i, v, k, c.kind[k], src, C, h, w, got, scratch),
              MSC_OK);
          ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0,
                        "%lldx%lld sample %lld view %d modality %d differs", (long long)h,
                        (long long)w, (long long)i, (int)v, (int)k);
          memcpy(inplace, src, n * sizeof(float));
          ck_assert_int_eq(
              msci_augment_view(&c, 11, i, v, k, c.kind[k], inplace, C, h, w, inplace, scratch),
              MSC_OK);
          ck_assert(memcmp(inplace, want, n * sizeof(float)) == 0);
        }
    free(src), free(got), free(want), free(scratch), free(inplace);
  }
  ck_assert_int_eq(turned, 15); /* every quarter turn was drawn */
  ck_assert_int_gt(cropped, 0);
}
END_TEST

/* msci_augment_apply with explicit parameters: every flip/turn combination, with and
 * without a crop, in place and not, and without scratch when there is no crop. */
START_TEST(apply_matches_reference_all_combinations) {
  const int64_t h = 13, w = 13, C = 2;
  const size_t n = (size_t)(C * h * w);
  float *src = pattern(n, 9), *got = buf(n), *want = buf(n), *scratch = buf(n), *ip = buf(n);
  for (int crop = 0; crop < 2; ++crop)
    for (int hf = 0; hf < 2; ++hf)
      for (int vf = 0; vf < 2; ++vf)
        for (int rot = 0; rot < 4; ++rot) {
          msci_aug_params p;
          memset(&p, 0, sizeof p);
          p.crop = crop;
          p.crop_w = 0.6, p.crop_h = 0.7, p.crop_x = 0.3, p.crop_y = 0.8;
          p.hflip = hf, p.vflip = vf, p.rot = rot;
          /* The reference through its own geometry: a configuration that draws p is not
           * at hand, so apply the documented steps to p directly. */
          int64_t y0, x0, ch, cw;
          msci_aug_crop_window(&p, h, w, &y0, &x0, &ch, &cw);
          float *a = buf((size_t)(h * w)), *t = buf((size_t)(h * w));
          for (int64_t b = 0; b < C; ++b) {
            const float *s = src + b * h * w;
            for (int64_t y = 0; y < ch; ++y)
              for (int64_t x = 0; x < cw; ++x) t[y * cw + x] = s[(y0 + y) * w + x0 + x];
            if (crop)
              ref_bilinear(t, ch, cw, a, h, w);
            else
              memcpy(a, s, (size_t)(h * w) * sizeof(float));
            if (hf) {
              for (int64_t y = 0; y < h; ++y)
                for (int64_t x = 0; x < w; ++x) t[y * w + x] = a[y * w + (w - 1 - x)];
              memcpy(a, t, (size_t)(h * w) * sizeof(float));
            }
            if (vf) {
              for (int64_t y = 0; y < h; ++y)
                for (int64_t x = 0; x < w; ++x) t[y * w + x] = a[(h - 1 - y) * w + x];
              memcpy(a, t, (size_t)(h * w) * sizeof(float));
            }
            for (int q = 0; q < rot; ++q) {
              for (int64_t y = 0; y < h; ++y)
                for (int64_t x = 0; x < w; ++x) t[y * w + x] = a[x * w + (w - 1 - y)];
              memcpy(a, t, (size_t)(h * w) * sizeof(float));
            }
            memcpy(want + b * h * w, a, (size_t)(h * w) * sizeof(float));
          }
          free(a), free(t);
          ck_assert_int_eq(msci_augment_apply(&p, src, C, h, w, got, scratch), MSC_OK);
          ck_assert_msg(memcmp(got, want, n * sizeof(float)) == 0, "crop %d h %d v %d rot %d",
                        crop, hf, vf, rot);
          memcpy(ip, src, n * sizeof(float));
          ck_assert_int_eq(msci_augment_apply(&p, ip, C, h, w, ip, scratch), MSC_OK);
          ck_assert(memcmp(ip, want, n * sizeof(float)) == 0);
          if (!crop) {
            memcpy(ip, src, n * sizeof(float));
            ck_assert_int_eq(msci_augment_apply(&p, ip, C, h, w, ip, NULL), MSC_OK);
            ck_assert(memcmp(ip, want, n * sizeof(float)) == 0);
            ck_assert_int_eq(msci_augment_apply(&p, src, C, h, w, got, NULL), MSC_OK);
            ck_assert(memcmp(got, want, n * sizeof(float)) == 0);
          }
        }
  free(src), free(got), free(want), free(scratch), free(ip);
}
END_TEST

/* msci_rng_normals, which speckle and noise draw from: the numbers of the polar method
 * written out (ref_normals) across its block boundaries (256 pairs) and for odd counts,
 * calls of even counts the numbers of one call of their total, and the generator left
 * in the same state. */
START_TEST(normals_block_equals_reference) {
  static const size_t counts[] = {0, 1, 2, 511, 512, 513, 1000};
  double *got = malloc(1000 * sizeof(double)), *want = malloc(1000 * sizeof(double));
  ck_assert_ptr_nonnull(got);
  ck_assert_ptr_nonnull(want);
  for (size_t t = 0; t < sizeof counts / sizeof *counts; ++t) {
    msci_rng a, b;
    msci_rng_seed(&a, 77 + t, "normals");
    msci_rng_seed(&b, 77 + t, "normals");
    ref_normals(&a, want, counts[t]);
    msci_rng_normals(&b, got, counts[t]);
    ck_assert(memcmp(got, want, counts[t] * sizeof(double)) == 0);
    ck_assert(msci_rng_next(&a) == msci_rng_next(&b));
  }
  msci_rng a, b;
  msci_rng_seed(&a, 5, "split");
  msci_rng_seed(&b, 5, "split");
  msci_rng_normals(&a, want, 1000);
  msci_rng_normals(&b, got, 258);
  msci_rng_normals(&b, got + 258, 742);
  ck_assert(memcmp(got, want, 1000 * sizeof(double)) == 0);
  free(got), free(want);
}
END_TEST

/* The polar method's numbers are standard normal: over 2^21 draws the mean, variance,
 * fourth moment and the shares within 1 and 2 of zero (Φ: 0.682689, 0.954500) against
 * the normal distribution's, to about five standard errors of each estimate. */
START_TEST(normals_are_standard) {
  const size_t n = (size_t)1 << 21;
  double *z = malloc(n * sizeof *z);
  ck_assert_ptr_nonnull(z);
  msci_rng r;
  msci_rng_seed(&r, 2026, "moments");
  msci_rng_normals(&r, z, n);
  double m1 = 0, m2 = 0, m4 = 0, in1 = 0, in2 = 0;
  for (size_t i = 0; i < n; ++i) {
    m1 += z[i];
    m2 += z[i] * z[i];
    m4 += z[i] * z[i] * z[i] * z[i];
    in1 += fabs(z[i]) < 1.0;
    in2 += fabs(z[i]) < 2.0;
  }
  m1 /= (double)n, m2 /= (double)n, m4 /= (double)n, in1 /= (double)n, in2 /= (double)n;
  ck_assert_msg(fabs(m1) < 0.0035, "mean %g", m1);
  ck_assert_msg(fabs(m2 - 1.0) < 0.005, "variance %g", m2);
  ck_assert_msg(fabs(m4 - 3.0) < 0.035, "fourth moment %g", m4);
  ck_assert_msg(fabs(in1 - 0.682689) < 0.0017, "share within 1: %g", in1);
  ck_assert_msg(fabs(in2 - 0.954500) < 0.0008, "share within 2: %g", in2);
  free(z);
}
END_TEST

static Suite *augment_suite(void) {
  Suite *s = suite_create("augment");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, identity_when_off);
  tcase_add_test(tc, flips_and_rotations_3x3);
  tcase_add_test(tc, non_square_skips_rotation);
  tcase_add_test(tc, crop_by_hand);
  tcase_add_test(tc, crop_full_is_identity);
  tcase_add_test(tc, crop_fallback);
  tcase_add_test(tc, crop_ranges);
  tcase_add_test(tc, flip_rotation_frequencies);
  tcase_add_test(tc, same_arguments_same_bytes);
  tcase_add_test(tc, order_and_threads);
  tcase_add_test(tc, shared_geometry);
  tcase_add_test(tc, same_geometry_all_bands);
  tcase_add_test(tc, speckle_sar_jitter_optical);
  tcase_add_test(tc, jitter_shape);
  tcase_add_test(tc, noise_statistics);
  tcase_add_test(tc, speckle_input_units);
  tcase_add_test(tc, cfg_defaults_and_kinds);
  tcase_add_test(tc, bad_arguments);
  tcase_add_test(tc, mask_follows_flips_and_rotations);
  tcase_add_test(tc, mask_crop_nearest_by_hand);
  tcase_add_test(tc, view_matches_reference);
  tcase_add_test(tc, normals_block_equals_reference);
  tcase_add_test(tc, normals_are_standard);
  tcase_add_test(tc, apply_matches_reference_all_combinations);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(augment_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
