/*
 * test_npy.c — the NumPy .npy reader (lib/data/npy.c).
 *
 *  - fixtures written by NumPy (tests/data/npy, made by tests/data/npy/make.py): every
 *    dtype, both byte orders, C and Fortran order, versions 1.0, 2.0 and 3.0, a scalar
 *    and an empty array; values checked exactly against make.py's formulas, whole and
 *    one axis-0 index at a time, from the path and from memory;
 *  - float16 special values (subnormals, infinities, NaN, signed zeros) and int64
 *    values that round when converted to float32;
 *  - hostile input built here as bytes, each refused with MSC_E_BAD_FORMAT, the output
 *    untouched and a message naming the fault; every truncation and byte flips of a
 *    valid file; argument and I/O errors.
 *
 * Runs in Check's fork mode and with CK_FORK=no (valgrind).
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/internal.h"
#include "data/npy.h"
#include "mosaic/mosaic.h"

#define FIXTURES MSC_SHARED_DATA "/npy"

/* ------------------------------------------------------------------------------ */
/* Helpers                                                                         */
/* ------------------------------------------------------------------------------ */

static unsigned char *read_all(const char *path, size_t *len) {
  FILE *fp = fopen(path, "rb");
  ck_assert_msg(fp != NULL, "cannot open %s: %s", path, strerror(errno));
  ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
  long sz = ftell(fp);
  ck_assert_int_ge(sz, 0);
  rewind(fp);
  unsigned char *buf = malloc((size_t)sz + 1);
  ck_assert_ptr_nonnull(buf);
  ck_assert_uint_eq(fread(buf, 1, (size_t)sz, fp), (size_t)sz);
  fclose(fp);
  *len = (size_t)sz;
  return buf;
}

/* A .npy image made by hand: magic, version major.0, header length field (2 bytes for
 * version 1, 4 otherwise), the header's hlen bytes as given, then dlen data bytes
 * (counting up from 0). */
static unsigned char *build_n(int major, const char *header, size_t hlen, size_t dlen,
                              size_t *len) {
  size_t pre = major == 1 ? 10 : 12;
  unsigned char *buf = malloc(pre + hlen + dlen + 1);
  ck_assert_ptr_nonnull(buf);
  memcpy(buf, "\x93NUMPY", 6);
  buf[6] = (unsigned char)major;
  buf[7] = 0;
  for (size_t i = 0; i < pre - 8; i++) buf[8 + i] = (unsigned char)(hlen >> (8 * i));
  memcpy(buf + pre, header, hlen);
  for (size_t i = 0; i < dlen; i++) buf[pre + hlen + i] = (unsigned char)i;
  *len = pre + hlen + dlen;
  return buf;
}

static unsigned char *build(int major, const char *header, size_t dlen, size_t *len) {
  return build_n(major, header, strlen(header), dlen, len);
}

/* Opens len bytes, expecting rc; on MSC_E_BAD_FORMAT the output stays untouched and
 * the message holds want. */
static void expect_refused(const unsigned char *buf, size_t len, const char *want,
                           const char *what) {
  msci_npy *sentinel = (msci_npy *)&sentinel;
  msci_npy *a = sentinel;
  msc_status rc = msci_npy_open_memory(buf, len, &a);
  ck_assert_msg(rc == MSC_E_BAD_FORMAT, "%s: status %d, expected MSC_E_BAD_FORMAT", what, rc);
  ck_assert_msg(a == sentinel, "%s: output written on error", what);
  ck_assert_msg(strstr(msc_last_error(), want) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
                msc_last_error(), want);
  ck_assert_msg(strstr(msc_last_error(), "<memory>") != NULL,
                "%s: message \"%s\" names no input", what, msc_last_error());
}

static uint32_t bits_f32(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* ------------------------------------------------------------------------------ */
/* Fixtures made by NumPy                                                          */
/* ------------------------------------------------------------------------------ */

typedef struct fixture {
  const char *file;
  int32_t dtype, big, fortran, version, ndim;
  int64_t dims[4];
} fixture;

static const fixture k_fixtures[] = {
    {"u1_le_c_v1.npy", MSCI_NPY_U8, 0, 0, 1, 3, {2, 3, 4}},
    {"u1_le_f_v1.npy", MSCI_NPY_U8, 0, 1, 1, 3, {2, 3, 4}},
    {"i2_le_c_v1.npy", MSCI_NPY_I16, 0, 0, 1, 3, {2, 3, 4}},
    {"i2_be_f_v1.npy", MSCI_NPY_I16, 1, 1, 1, 3, {2, 3, 4}},
    {"i2_le_f_v2.npy", MSCI_NPY_I16, 0, 1, 2, 4, {3, 2, 4, 5}},
    {"u2_le_c_v1.npy", MSCI_NPY_U16, 0, 0, 1, 2, {5, 6}},
    {"u2_be_c_v3.npy", MSCI_NPY_U16, 1, 0, 3, 2, {5, 6}},
    {"u2_le_f_v1.npy", MSCI_NPY_U16, 0, 1, 1, 2, {5, 6}},
    {"i4_be_c_v1.npy", MSCI_NPY_I32, 1, 0, 1, 3, {2, 3, 4}},
    {"u4_le_f_v2.npy", MSCI_NPY_U32, 0, 1, 2, 3, {2, 3, 4}},
    {"i8_le_c_v1.npy", MSCI_NPY_I64, 0, 0, 1, 3, {2, 3, 4}},
    {"i8_be_f_v1.npy", MSCI_NPY_I64, 1, 1, 1, 3, {2, 3, 4}},
    {"f2_le_c_v1.npy", MSCI_NPY_F16, 0, 0, 1, 3, {2, 3, 4}},
    {"f2_be_f_v2.npy", MSCI_NPY_F16, 1, 1, 2, 3, {2, 3, 4}},
    {"f4_le_c_v1.npy", MSCI_NPY_F32, 0, 0, 1, 3, {2, 3, 4}},
    {"f4_be_c_v2.npy", MSCI_NPY_F32, 1, 0, 2, 3, {2, 3, 4}},
    {"f4_le_f_v3.npy", MSCI_NPY_F32, 0, 1, 3, 4, {3, 2, 2, 3}},
    {"f4_le_c_v1_scalar.npy", MSCI_NPY_F32, 0, 0, 1, 0, {0}},
    {"f8_le_c_v1.npy", MSCI_NPY_F64, 0, 0, 1, 1, {7}},
    {"f8_be_f_v1.npy", MSCI_NPY_F64, 1, 1, 1, 3, {2, 3, 4}},
    {"f8_le_c_v3.npy", MSCI_NPY_F64, 0, 0, 3, 3, {2, 3, 4}},
    {"i2_le_c_v1_empty.npy", MSCI_NPY_I16, 0, 0, 1, 2, {0, 3}},
};
#define N_FIXTURES (sizeof k_fixtures / sizeof k_fixtures[0])

/* make.py's value of element i (C order) for a dtype. */
static float expected(int32_t dtype, int64_t i) {
  switch (dtype) {
  case MSCI_NPY_U8: return (float)((i * 7 + 3) % 256);
  case MSCI_NPY_U16:
  case MSCI_NPY_U32: return (float)(i * 1000 + 5);
  case MSCI_NPY_F32:
  case MSCI_NPY_F64: return (float)((double)(i * 3 - 7) * 0.1);
  default: return (float)(i * 3 - 7);
  }
}

static size_t itemsize_of(int32_t dtype) {
  switch (dtype) {
  case MSCI_NPY_U8: return 1;
  case MSCI_NPY_I16:
  case MSCI_NPY_U16:
  case MSCI_NPY_F16: return 2;
  case MSCI_NPY_I32:
  case MSCI_NPY_U32:
  case MSCI_NPY_F32: return 4;
  default: return 8;
  }
}

static void check_fixture(const fixture *fx, msci_npy *a) {
  const char *f = fx->file;
  int32_t ndim = -1;
  int64_t dims[MSCI_NPY_MAX_DIMS];
  ck_assert_int_eq(msci_npy_shape(a, &ndim, dims), MSC_OK);
  ck_assert_int_eq(ndim, fx->ndim);
  size_t count = 1;
  for (int32_t d = 0; d < ndim; d++) {
    ck_assert_int_eq(dims[d], fx->dims[d]);
    count *= (size_t)dims[d];
  }
  ck_assert_uint_eq(msci_npy_count(a), count);
  ck_assert_int_eq(msci_npy_dtype(a), fx->dtype);
  ck_assert_uint_eq(msci_npy_itemsize(a), itemsize_of(fx->dtype));
  ck_assert_int_eq(msci_npy_big_endian(a), fx->big);
  ck_assert_int_eq(msci_npy_fortran_order(a), fx->fortran);
  ck_assert_int_eq(msci_npy_version(a), fx->version);
  const void *raw = NULL;
  size_t nbytes = 0;
  ck_assert_int_eq(msci_npy_raw(a, &raw, &nbytes), MSC_OK);
  ck_assert_uint_eq(nbytes, count * itemsize_of(fx->dtype));

  float *all = malloc((count + 1) * sizeof *all);
  ck_assert_ptr_nonnull(all);
  /* one element short: refused, dst untouched */
  if (count > 0) {
    all[0] = 12345.0f;
    ck_assert_int_eq(msci_npy_read_f32(a, all, count - 1), MSC_E_BUFFER_TOO_SMALL);
    ck_assert_float_eq(all[0], 12345.0f);
    ck_assert_ptr_nonnull(strstr(msc_last_error(), "buffer"));
  }
  all[count] = -999.0f;
  ck_assert_int_eq(msci_npy_read_f32(a, all, count + 1), MSC_OK);
  ck_assert_float_eq(all[count], -999.0f); /* nothing written past count */
  for (size_t i = 0; i < count; i++)
    ck_assert_msg(all[i] == expected(fx->dtype, (int64_t)i),
                  "%s: element %zu is %.9g, not %.9g", f, i, (double)all[i],
                  (double)expected(fx->dtype, (int64_t)i));

  /* one index of axis 0 at a time: the matching slab of the whole */
  if (ndim == 0) {
    ck_assert_int_eq(msci_npy_read_index_f32(a, 0, all, count), MSC_E_SHAPE);
  } else {
    size_t inner = dims[0] > 0 ? count / (size_t)dims[0] : 0;
    float *one = malloc((inner + 1) * sizeof *one);
    ck_assert_ptr_nonnull(one);
    for (int64_t t = 0; t < dims[0]; t++) {
      if (inner > 0)
        ck_assert_int_eq(msci_npy_read_index_f32(a, t, one, inner - 1), MSC_E_BUFFER_TOO_SMALL);
      ck_assert_int_eq(msci_npy_read_index_f32(a, t, one, inner), MSC_OK);
      for (size_t j = 0; j < inner; j++)
        ck_assert_msg(one[j] == all[(size_t)t * inner + j], "%s: index %lld element %zu", f,
                      (long long)t, j);
    }
    ck_assert_int_eq(msci_npy_read_index_f32(a, -1, one, inner), MSC_E_INVALID_ARGUMENT);
    ck_assert_int_eq(msci_npy_read_index_f32(a, dims[0], one, inner), MSC_E_INVALID_ARGUMENT);
    free(one);
  }
  free(all);
}

START_TEST(fixtures_from_path_and_memory) {
  for (size_t k = 0; k < N_FIXTURES; k++) {
    const fixture *fx = &k_fixtures[k];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", FIXTURES, fx->file);
    msci_npy *a = NULL;
    ck_assert_msg(msci_npy_open(path, &a) == MSC_OK, "%s: %s", path, msc_last_error());
    check_fixture(fx, a);
    msci_npy_close(a);

    size_t len;
    unsigned char *buf = read_all(path, &len);
    a = NULL;
    ck_assert_msg(msci_npy_open_memory(buf, len, &a) == MSC_OK, "%s: %s", fx->file,
                  msc_last_error());
    memset(buf, 0xAB, len); /* the handle keeps its own copy */
    free(buf);
    check_fixture(fx, a);
    msci_npy_close(a);
  }
}
END_TEST

START_TEST(fixture_pastis_like_date) {
  /* (3, 2, 4, 5) int16 in Fortran order, read as T × C × H × W: date t = 1 is the C-order
   * elements 40..79, so its (c, h, w) element is value(40 + c*20 + h*5 + w). */
  msci_npy *a = NULL;
  ck_assert_int_eq(msci_npy_open(FIXTURES "/i2_le_f_v2.npy", &a), MSC_OK);
  float date[40];
  ck_assert_int_eq(msci_npy_read_index_f32(a, 1, date, 40), MSC_OK);
  for (int c = 0; c < 2; c++)
    for (int h = 0; h < 4; h++)
      for (int w = 0; w < 5; w++)
        ck_assert_float_eq(date[c * 20 + h * 5 + w],
                           (float)((40 + c * 20 + h * 5 + w) * 3 - 7));
  msci_npy_close(a);
}
END_TEST

START_TEST(float16_special_values) {
  static const uint16_t half[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x03FF,
                                  0x0400, 0x3C00, 0xC000, 0x7BFF, 0x7C00,
                                  0xFC00, 0x7E00, 0x7C01, 0x3555, 0x0200};
  const float want[] = {0.0f,
                        -0.0f,
                        ldexpf(1.0f, -24),
                        -ldexpf(1.0f, -24),
                        ldexpf(1023.0f, -24),
                        ldexpf(1.0f, -14),
                        1.0f,
                        -2.0f,
                        65504.0f,
                        INFINITY,
                        -INFINITY,
                        NAN,
                        NAN,
                        0.333251953125f,
                        ldexpf(1.0f, -15)};
  msci_npy *a = NULL;
  ck_assert_int_eq(msci_npy_open(FIXTURES "/f2_special.npy", &a), MSC_OK);
  ck_assert_uint_eq(msci_npy_count(a), 15);
  float got[15];
  ck_assert_int_eq(msci_npy_read_f32(a, got, 15), MSC_OK);
  for (int i = 0; i < 15; i++) {
    if (isnan(want[i])) {
      ck_assert_msg(isnan(got[i]), "half 0x%04x: %g is not NaN", half[i], (double)got[i]);
      ck_assert_uint_eq(bits_f32(got[i]) >> 31, 0); /* positive NaN */
    } else {
      ck_assert_msg(bits_f32(got[i]) == bits_f32(want[i]),
                    "half 0x%04x: %.9g (0x%08x), not %.9g", half[i], (double)got[i],
                    bits_f32(got[i]), (double)want[i]);
    }
  }
  /* the NaN payload lands in the high mantissa bits (0x7E00 is the quiet NaN) */
  ck_assert_uint_eq(bits_f32(got[11]), 0x7FC00000u);
  msci_npy_close(a);
  /* every finite half: the float value is man × 2^(exp-25) or (1024 + man) × ... */
  for (uint32_t h = 0; h < 0x10000u; h++) {
    unsigned char file[128];
    size_t len;
    unsigned char *buf =
        build(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }\n", 2, &len);
    buf[len - 2] = (unsigned char)(h & 0xFF);
    buf[len - 1] = (unsigned char)(h >> 8);
    memcpy(file, buf, len);
    free(buf);
    a = NULL;
    ck_assert_int_eq(msci_npy_open_memory(file, len, &a), MSC_OK);
    float v;
    ck_assert_int_eq(msci_npy_read_f32(a, &v, 1), MSC_OK);
    msci_npy_close(a);
    uint32_t e = (h >> 10) & 0x1F, m = h & 0x3FF;
    float mag = e == 0x1F ? (m ? NAN : INFINITY)
                : e == 0  ? ldexpf((float)m, -24)
                          : ldexpf((float)(1024 + m), (int)e - 25);
    float w = (h & 0x8000) ? -mag : mag;
    if (isnan(w))
      ck_assert(isnan(v));
    else
      ck_assert_msg(bits_f32(v) == bits_f32(w), "half 0x%04x", h);
  }
}
END_TEST

START_TEST(int64_rounds_to_nearest) {
  /* make.py's I8_ROUND, big-endian */
  const float want[] = {16777216.0f,
                        16777216.0f, /* 2^24 + 1: a tie, to even */
                        16777218.0f,
                        16777220.0f, /* 2^24 + 3: a tie, to even */
                        -16777220.0f,
                        9007199254740992.0f, /* 2^53 + 1 */
                        9223372036854775808.0f,
                        -9223372036854775808.0f,
                        0.0f,
                        -1.0f,
                        123456792.0f,
                        2147483648.0f};
  msci_npy *a = NULL;
  ck_assert_int_eq(msci_npy_open(FIXTURES "/i8_round.npy", &a), MSC_OK);
  ck_assert_int_eq(msci_npy_dtype(a), MSCI_NPY_I64);
  ck_assert_int_eq(msci_npy_big_endian(a), 1);
  float got[12];
  ck_assert_int_eq(msci_npy_read_f32(a, got, 12), MSC_OK);
  for (int i = 0; i < 12; i++)
    ck_assert_msg(got[i] == want[i], "element %d: %.9g, not %.9g", i, (double)got[i],
                  (double)want[i]);
  msci_npy_close(a);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Hand-built headers that are accepted                                            */
/* ------------------------------------------------------------------------------ */

START_TEST(hand_built_accepted) {
  static const struct {
    int major;
    const char *header;
    size_t dlen;
    int32_t dtype, ndim;
    size_t count;
  } ok[] = {
      {1, "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}\n", 8, MSCI_NPY_F32,
       1, 2},
      {1, "{'descr':'<u1','fortran_order':True,'shape':(2,3)}\n", 6, MSCI_NPY_U8, 2, 6},
      {1, "{'descr': '>u1', 'fortran_order': False, 'shape': (3, ), }  \t \n", 3, MSCI_NPY_U8,
       1, 3},
      {2, "\t{ 'descr' : '>f8' , 'fortran_order' : False , 'shape' : ( 1 , 1 , ) , } \n", 8,
       MSCI_NPY_F64, 2, 1},
      {3, "{'descr': '<i8', 'fortran_order': False, 'shape': ()}\n", 8, MSCI_NPY_I64, 0, 1},
      {1, "{'descr': '<i2', 'fortran_order': True, 'shape': (0, 9223372036854775807)}\n", 0,
       MSCI_NPY_I16, 2, 0},
      {1,
       "{'descr': '<f2', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
       "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}\n",
       2, MSCI_NPY_F16, 32, 1},
  };
  for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
    size_t len;
    unsigned char *buf = build(ok[k].major, ok[k].header, ok[k].dlen, &len);
    msci_npy *a = NULL;
    ck_assert_msg(msci_npy_open_memory(buf, len, &a) == MSC_OK, "case %zu: %s", k,
                  msc_last_error());
    int32_t nd = -1;
    ck_assert_int_eq(msci_npy_shape(a, &nd, NULL), MSC_OK);
    ck_assert_int_eq(nd, ok[k].ndim);
    ck_assert_int_eq(msci_npy_dtype(a), ok[k].dtype);
    ck_assert_uint_eq(msci_npy_count(a), ok[k].count);
    float v[8];
    ck_assert_int_eq(msci_npy_read_f32(a, ok[k].count ? v : NULL, ok[k].count), MSC_OK);
    msci_npy_close(a);
    free(buf);
  }
  /* the data need not be aligned */
  size_t len;
  unsigned char *buf =
      build(1, "{'descr':'<f4','fortran_order':False,'shape':(1,)}\n", 0, &len);
  ck_assert_uint_ne(len % 4, 0);
  unsigned char *odd = malloc(len + 4);
  memcpy(odd, buf, len);
  float one = 1.5f;
  memcpy(odd + len, &one, 4); /* host order: the tests run on little-endian machines */
  msci_npy *a = NULL;
  ck_assert_int_eq(msci_npy_open_memory(odd, len + 4, &a), MSC_OK);
  float v = 0;
  ck_assert_int_eq(msci_npy_read_f32(a, &v, 1), MSC_OK);
  ck_assert_float_eq(v, 1.5f);
  msci_npy_close(a);
  free(odd);
  free(buf);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Hostile input                                                                   */
/* ------------------------------------------------------------------------------ */

#define TAIL_OK "'fortran_order': False, 'shape': (1,), }\n"

static const struct {
  int major;
  const char *header;
  size_t dlen;
  const char *want;
} k_bad[] = {
    /* the dict */
    {1, "\n", 0, "not a dict"},
    {1, "['descr', '<f4']\n", 4, "not a dict"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)\n", 4, "expected ',' or '}'"},
    {1, "{'descr': '<f4', 'fortran_order': False}\n", 4, "no 'shape' key"},
    {1, "{'descr': '<f4', 'shape': (1,)}\n", 4, "no 'fortran_order' key"},
    {1, "{'fortran_order': False, 'shape': (1,)}\n", 4, "no 'descr' key"},
    {1, "{}\n", 0, "no 'descr' key"},
    {1, "{'descr': '<f4', 'descr': '<f4', " TAIL_OK, 4, "duplicate header key 'descr'"},
    {1, "{'descr': '<f4', 'extra': 1, " TAIL_OK, 4, "unknown header key 'extra'"},
    {1, "{'descr' '<f4', " TAIL_OK, 4, "expected ':'"},
    {1, "{'descr': '<f4' 'fortran_order': False, 'shape': (1,)}\n", 4, "expected ',' or '}'"},
    {1, "{'descr': '<f4', " TAIL_OK "x", 4, "newline"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} x\n", 4, "follows the header"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)}\n\n", 4, "control byte 0x0a"},
    {1, "{descr: '<f4', " TAIL_OK, 4, "not a quoted string"},
    {1, "{'descr': '<f4\\'', " TAIL_OK, 4, "escape"},
    {1, "{'descr': '<f\"4', " TAIL_OK, 4, "nested quote"},
    {1, "{'descr': \"'<f4'\", " TAIL_OK, 4, "nested quote"},
    {1, "{'descr: '<f4', " TAIL_OK, 4, "unknown header key 'descr: '"},
    {1, "{'descr': '<f4\n", 4, "unterminated"},
    /* non-ASCII, control bytes, UTF-8 */
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } \xc3\xa9\n", 4, "non-ASCII"},
    {2, "{'d\xc3\xa9scr': '<f4', " TAIL_OK, 4, "non-ASCII byte 0xc3 at header offset 3"},
    {3, "{'d\xc3\xa9scr': '<f4', " TAIL_OK, 4, "unknown header key 'd\xc3\xa9scr'"},
    {3, "{'descr': '<f4', " TAIL_OK "\xc3", 4, "newline"},
    {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\xc3(\n", 4, "invalid UTF-8"},
    {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\xc0\xaf\n", 4,
     "invalid UTF-8"},
    {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\xed\xa0\x80\n", 4,
     "invalid UTF-8"},
    {3, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\xf4\x90\x80\x80\n", 4,
     "invalid UTF-8"},
    {1, "{'descr': '<f4',\r 'fortran_order': False, 'shape': (1,), }\n", 4,
     "control byte 0x0d"},
    /* descr */
    {1, "{'descr': '|O', " TAIL_OK, 8, "object array"},
    {1, "{'descr': [('a', '<f4')], " TAIL_OK, 4, "structured"},
    {1, "{'descr': {'names': ['a']}, " TAIL_OK, 4, "structured"},
    {1, "{'descr': '<U3', " TAIL_OK, 12, "strings"},
    {1, "{'descr': '|S4', " TAIL_OK, 4, "strings"},
    {1, "{'descr': '|V4', " TAIL_OK, 4, "void"},
    {1, "{'descr': '<c8', " TAIL_OK, 8, "complex"},
    {1, "{'descr': '<f16', " TAIL_OK, 16, "unsupported dtype '<f16'"},
    {1, "{'descr': '|b1', " TAIL_OK, 1, "unsupported dtype '|b1'"},
    {1, "{'descr': '<i1', " TAIL_OK, 1, "unsupported dtype '<i1'"},
    {1, "{'descr': 'f4', " TAIL_OK, 4, "unsupported dtype 'f4'"},
    {1, "{'descr': '', " TAIL_OK, 4, "unsupported dtype ''"},
    {1, "{'descr': '=f4', " TAIL_OK, 4, "native byte order"},
    {1, "{'descr': '|i2', " TAIL_OK, 2, "no valid byte order"},
    {1, "{'descr': 5, " TAIL_OK, 4, "'descr' is not a quoted string"},
    /* fortran_order */
    {1, "{'descr': '<f4', 'fortran_order': true, 'shape': (1,)}\n", 4,
     "'fortran_order' is 'true'"},
    {1, "{'descr': '<f4', 'fortran_order': 1, 'shape': (1,)}\n", 4, "'fortran_order' is '1'"},
    {1, "{'descr': '<f4', 'fortran_order': 'True', 'shape': (1,)}\n", 4, "not True or False"},
    {1, "{'descr': '<f4', 'fortran_order': Truest, 'shape': (1,)}\n", 4, "'Truest'"},
    /* shape */
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': [1]}\n", 4, "not a tuple"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1)}\n", 4, "is an int"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}\n", 4, "negative"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}\n", 4,
     "dimension 1 is negative"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (,)}\n", 4, "not an integer"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,,)}\n", 4, "not an integer"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}\n", 4,
     "expected ',' or ')'"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1 1)}\n", 4, "expected ',' or ')'"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1L,)}\n", 4, "expected ',' or ')'"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (01,)}\n", 4, "leading zero"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,\n", 4, "not an integer"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,)}\n", 4,
     "absurd"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}\n", 4,
     "absurd"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}\n", 4,
     "overflows"},
    {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}\n", 4,
     "overflows"},
    {1,
     "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
     "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1)}\n",
     4, "more than 32 dimensions"},
    /* data size */
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}\n", 12, "truncated"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,)}\n", 12,
     "truncated"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}\n", 17, "extra data"},
    {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,)}\n", 1, "extra data"},
    {2, "{'descr': '<i8', 'fortran_order': True, 'shape': (2, 3)}\n", 47, "truncated"},
};

START_TEST(hostile_headers) {
  for (size_t k = 0; k < sizeof k_bad / sizeof k_bad[0]; k++) {
    size_t len;
    unsigned char *buf = build(k_bad[k].major, k_bad[k].header, k_bad[k].dlen, &len);
    char what[64];
    snprintf(what, sizeof what, "bad case %zu", k);
    expect_refused(buf, len, k_bad[k].want, what);
    free(buf);
  }
}
END_TEST

START_TEST(hostile_preamble) {
  const char *h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }\n";
  size_t len;
  unsigned char *buf = build(1, h, 4, &len);
  /* the magic */
  expect_refused(NULL, 0, "magic", "empty");
  expect_refused(buf, 5, "magic", "5 bytes");
  buf[5] = 'Z';
  expect_refused(buf, len, "magic", "NUMPZ");
  buf[5] = 'Y';
  buf[0] = 0x92;
  expect_refused(buf, len, "magic", "0x92");
  buf[0] = 0x93;
  /* versions */
  static const unsigned char versions[][2] = {{0, 0}, {4, 0}, {1, 1}, {2, 1}, {3, 1}, {255, 0}};
  for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
    unsigned char save6 = buf[6], save7 = buf[7];
    buf[6] = versions[i][0];
    buf[7] = versions[i][1];
    char want[64];
    snprintf(want, sizeof want, "unknown .npy format version %d.%d", versions[i][0],
             versions[i][1]);
    expect_refused(buf, len, want, want);
    buf[6] = save6;
    buf[7] = save7;
  }
  /* header lengths */
  expect_refused(buf, 9, "too short", "9 bytes");
  unsigned char save8 = buf[8], save9 = buf[9];
  buf[8] = 0xFF;
  buf[9] = 0xFF;
  expect_refused(buf, len, "header length 65535 is past the end", "u16 length");
  buf[8] = 0;
  buf[9] = 0;
  expect_refused(buf, len, "empty", "length 0");
  buf[8] = save8;
  buf[9] = save9;
  free(buf);
  buf = build(2, h, 4, &len);
  expect_refused(buf, 11, "too short", "11 bytes, v2");
  memset(buf + 8, 0xFF, 4);
  expect_refused(buf, len, "header length 4294967295 is past the end", "u32 length");
  free(buf);
  /* a version 2 preamble read as version 1 (length field 2 bytes short) */
  buf = build(2, h, 4, &len);
  buf[6] = 1;
  expect_refused(buf, len, "newline", "v2 as v1");
  free(buf);
}
END_TEST

START_TEST(every_truncation_and_extension_refused) {
  size_t len;
  unsigned char *buf = read_all(FIXTURES "/f8_be_f_v1.npy", &len);
  for (size_t n = 0; n < len; n++) {
    msci_npy *a = NULL;
    ck_assert_msg(msci_npy_open_memory(buf, n, &a) == MSC_E_BAD_FORMAT, "prefix of %zu bytes",
                  n);
    ck_assert_ptr_null(a);
  }
  unsigned char *longer = malloc(len + 8);
  memcpy(longer, buf, len);
  memset(longer + len, 0, 8);
  for (size_t n = len + 1; n <= len + 8; n++) expect_refused(longer, n, "extra data", "longer");
  free(longer);
  free(buf);
}
END_TEST

START_TEST(header_byte_flips_never_crash) {
  /* every header byte set to every value: accepted or MSC_E_BAD_FORMAT, never more */
  size_t len;
  unsigned char *buf = read_all(FIXTURES "/i2_le_f_v2.npy", &len);
  size_t hend = 12 + (size_t)(buf[8] | buf[9] << 8);
  for (size_t i = 6; i < hend; i++) {
    unsigned char save = buf[i];
    for (int v = 0; v < 256; v++) {
      buf[i] = (unsigned char)v;
      msci_npy *a = NULL;
      msc_status rc = msci_npy_open_memory(buf, len, &a);
      ck_assert_msg(rc == MSC_OK || rc == MSC_E_BAD_FORMAT, "byte %zu = 0x%02x: status %d", i,
                    v, rc);
      if (rc == MSC_OK) {
        size_t n = msci_npy_count(a);
        float *dst = malloc((n + 1) * sizeof *dst);
        ck_assert_int_eq(msci_npy_read_f32(a, dst, n), MSC_OK);
        free(dst);
        msci_npy_close(a);
      }
    }
    buf[i] = save;
  }
  free(buf);
}
END_TEST

START_TEST(arguments_and_io) {
  msci_npy *sentinel = (msci_npy *)&sentinel;
  msci_npy *a = sentinel;
  ck_assert_int_eq(msci_npy_open(NULL, &a), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_open(FIXTURES "/f4_le_c_v1.npy", NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_open_memory(NULL, 4, &a), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_open_memory("x", 1, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_open(FIXTURES "/no-such-file.npy", &a), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "no-such-file.npy"));
  ck_assert_int_eq(msci_npy_open(FIXTURES, &a), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "not a regular file"));
  ck_assert_ptr_eq(a, sentinel);
  /* a refused file on disk: the message names the path */
  ck_assert_int_eq(msci_npy_open(FIXTURES "/make.py", &a), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "make.py"));
  ck_assert_ptr_eq(a, sentinel);

  /* getters on NULL */
  ck_assert_uint_eq(msci_npy_count(NULL), 0);
  ck_assert_int_eq(msci_npy_dtype(NULL), 0);
  ck_assert_uint_eq(msci_npy_itemsize(NULL), 0);
  ck_assert_int_eq(msci_npy_big_endian(NULL), 0);
  ck_assert_int_eq(msci_npy_fortran_order(NULL), 0);
  ck_assert_int_eq(msci_npy_version(NULL), 0);
  ck_assert_str_eq(msci_npy_dtype_name(MSCI_NPY_I16), "int16");
  ck_assert_str_eq(msci_npy_dtype_name(MSCI_NPY_F16), "float16");
  ck_assert_str_eq(msci_npy_dtype_name(0), "unknown");
  int32_t nd = 7;
  ck_assert_int_eq(msci_npy_shape(NULL, &nd, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(nd, 7);
  const void *raw;
  size_t nb;
  ck_assert_int_eq(msci_npy_raw(NULL, &raw, &nb), MSC_E_INVALID_ARGUMENT);
  float f;
  ck_assert_int_eq(msci_npy_read_f32(NULL, &f, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_read_index_f32(NULL, 0, &f, 1), MSC_E_INVALID_ARGUMENT);
  msci_npy_close(NULL);

  ck_assert_int_eq(msci_npy_open(FIXTURES "/f4_le_c_v1.npy", &a), MSC_OK);
  ck_assert_int_eq(msci_npy_shape(a, NULL, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_raw(a, NULL, &nb), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_read_f32(a, NULL, 24), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_npy_read_index_f32(a, 0, NULL, 12), MSC_E_INVALID_ARGUMENT);
  msci_npy_close(a);
  /* the empty array: dst may be NULL */
  ck_assert_int_eq(msci_npy_open(FIXTURES "/i2_le_c_v1_empty.npy", &a), MSC_OK);
  ck_assert_int_eq(msci_npy_read_f32(a, NULL, 0), MSC_OK);
  ck_assert_int_eq(msci_npy_read_index_f32(a, 0, NULL, 0), MSC_E_INVALID_ARGUMENT);
  msci_npy_close(a);
}
END_TEST

static Suite *npy_suite(void) {
  Suite *s = suite_create("npy");
  TCase *tc = tcase_create("fixtures");
  tcase_add_test(tc, fixtures_from_path_and_memory);
  tcase_add_test(tc, fixture_pastis_like_date);
  tcase_add_test(tc, float16_special_values);
  tcase_add_test(tc, int64_rounds_to_nearest);
  tcase_add_test(tc, hand_built_accepted);
  suite_add_tcase(s, tc);

  tc = tcase_create("hostile input");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, hostile_headers);
  tcase_add_test(tc, hostile_preamble);
  tcase_add_test(tc, every_truncation_and_extension_refused);
  tcase_add_test(tc, header_byte_flips_never_crash);
  tcase_add_test(tc, arguments_and_io);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(npy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
