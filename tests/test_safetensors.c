/*
 * test_safetensors.c — the safetensors writer and reader (lib/model/safetensors.c).
 *
 *  - round trips: names, shapes, metadata and bit-identical values; deterministic bytes;
 *  - the bytes of a written file checked by hand against the format specification;
 *  - a file built by hand (not by msci_st_write): other key order, whitespace, padding,
 *    unaligned data, F16/BF16/F64/I32 tensors, a scalar and an empty tensor;
 *  - atomic saving: failed saves leave an existing file byte-identical and no temporary;
 *  - hostile input: every truncation, byte flips in the header, and a catalogue of
 *    malformed headers, each refused with MSC_E_BAD_FORMAT and a message naming it.
 *
 * Runs in Check's fork mode and with CK_FORK=no (valgrind): each test makes and removes
 * its own temporary directory.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "model/safetensors.h"

/* ------------------------------------------------------------------------------ */
/* Helpers                                                                         */
/* ------------------------------------------------------------------------------ */

static void make_dir(char *dir, size_t cap) {
  const char *base = getenv("TMPDIR");
  if (base == NULL || base[0] == '\0') base = "/tmp";
  snprintf(dir, cap, "%s/msc_st_XXXXXX", base);
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* Number of entries in dir other than . and .. */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

static void remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d == NULL) return;
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    if (unlink(p) != 0) rmdir(p);
  }
  closedir(d);
  rmdir(dir);
}

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

static void write_raw(const char *path, const void *buf, size_t len) {
  FILE *fp = fopen(path, "wb");
  ck_assert_ptr_nonnull(fp);
  if (len > 0) ck_assert_uint_eq(fwrite(buf, 1, len, fp), len);
  ck_assert_int_eq(fclose(fp), 0);
}

static void put_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* A safetensors image made by hand: length field, header text of hlen bytes (which may
 * contain NULs), data. */
static unsigned char *build_n(const char *header, size_t hlen, const void *data, size_t dlen,
                              size_t *len) {
  unsigned char *buf = malloc(8 + hlen + dlen + 1);
  ck_assert_ptr_nonnull(buf);
  put_le64(buf, hlen);
  memcpy(buf + 8, header, hlen);
  if (dlen > 0) memcpy(buf + 8 + hlen, data, dlen);
  *len = 8 + hlen + dlen;
  return buf;
}

static unsigned char *build(const char *header, const void *data, size_t dlen, size_t *len) {
  return build_n(header, strlen(header), data, dlen, len);
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Opens a buffer that must be refused with MSC_E_BAD_FORMAT; returns nothing, checks
 * that the out-parameter stays untouched, that the message names the buffer and, when
 * want is not NULL, that it contains want. */
static void expect_bad_buf(const unsigned char *buf, size_t len, const char *want,
                           const char *what) {
  msci_st_file *sentinel = (msci_st_file *)(uintptr_t)0x1;
  msci_st_file *f = sentinel;
  msc_clear_error();
  msc_status rc = msci_st_open_memory(buf, len, &f);
  ck_assert_msg(rc == MSC_E_BAD_FORMAT, "%s: status %d (%s), expected bad format", what,
                (int)rc, msc_last_error());
  ck_assert_msg(f == sentinel, "%s: out-parameter changed on error", what);
  ck_assert_msg(strstr(msc_last_error(), "<memory>") != NULL, "%s: message \"%s\"", what,
                msc_last_error());
  if (want != NULL)
    ck_assert_msg(strstr(msc_last_error(), want) != NULL, "%s: message \"%s\" lacks \"%s\"",
                  what, msc_last_error(), want);
}

static void expect_bad(const char *header, const void *data, size_t dlen, const char *want) {
  size_t len;
  unsigned char *buf = build(header, data, dlen, &len);
  expect_bad_buf(buf, len, want, header);
  free(buf);
}

static msci_st_file *expect_ok(const char *header, const void *data, size_t dlen) {
  size_t len;
  unsigned char *buf = build(header, data, dlen, &len);
  msci_st_file *f = NULL;
  msc_status rc = msci_st_open_memory(buf, len, &f);
  ck_assert_msg(rc == MSC_OK, "%s: status %d (%s)", header, (int)rc, msc_last_error());
  free(buf);
  return f;
}

/* Bits of one element of a safetensors dtype, 0 if unknown. */
static unsigned dtype_bits(const char *d) {
  static const struct {
    const char *n;
    unsigned bits;
  } t[] = {{"BOOL", 8},    {"U8", 8},   {"I8", 8},   {"F8_E5M2", 8}, {"F8_E4M3", 8},
           {"F8_E8M0", 8}, {"I16", 16}, {"U16", 16}, {"F16", 16},    {"BF16", 16},
           {"I32", 32},    {"U32", 32}, {"F32", 32}, {"I64", 64},    {"U64", 64},
           {"F64", 64},    {"C64", 64}, {"F4", 4},   {"F6_E2M3", 6}, {"F6_E3M2", 6}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    if (strcmp(d, t[i].n) == 0) return t[i].bits;
  return 0;
}

typedef struct raw_range {
  const unsigned char *p;
  size_t n;
} raw_range;

static int cmp_range(const void *a, const void *b) {
  const raw_range *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? -1 : 1;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* Everything an opened file promises: each tensor's byte size matches its shape and
 * dtype, the ranges tile data_len bytes exactly, every float-readable tensor reads. */
static void check_consistent(const msci_st_file *f, size_t data_len, const char *what) {
  size_t n = msci_st_count(f);
  raw_range *r = calloc(n + 1, sizeof *r);
  ck_assert_ptr_nonnull(r);
  for (size_t i = 0; i < n; i++) {
    const char *name = msci_st_name(f, i);
    ck_assert_ptr_nonnull(name);
    if (i > 0)
      ck_assert_msg(strcmp(msci_st_name(f, i - 1), name) < 0, "%s: names not sorted", what);
    int32_t ndim = -1;
    int64_t dims[MSCI_ST_MAX_DIMS];
    ck_assert_int_eq(msci_st_shape(f, name, &ndim, dims), MSC_OK);
    ck_assert(ndim >= 0 && ndim <= MSCI_ST_MAX_DIMS);
    uint64_t count = 1;
    for (int32_t d = 0; d < ndim; d++) {
      ck_assert(dims[d] >= 0);
      count *= (uint64_t)dims[d];
    }
    const char *dt = msci_st_dtype(f, name);
    ck_assert_ptr_nonnull(dt);
    unsigned bits = dtype_bits(dt);
    ck_assert_msg(bits > 0, "%s: unknown dtype %s accepted", what, dt);
    ck_assert_int_eq(msci_st_raw(f, name, (const void **)&r[i].p, &r[i].n), MSC_OK);
    ck_assert_msg((uint64_t)r[i].n * 8 == count * bits, "%s: %s size %zu", what, name, r[i].n);
    float *buf = malloc((size_t)count * sizeof *buf + 1);
    ck_assert_ptr_nonnull(buf);
    msc_status rc = msci_st_read_f32(f, name, buf, (size_t)count);
    ck_assert_msg(rc == MSC_OK || rc == MSC_E_UNSUPPORTED, "%s: read %s: %d", what, name,
                  (int)rc);
    free(buf);
  }
  qsort(r, n, sizeof *r, cmp_range);
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (i > 0) ck_assert_msg(r[i - 1].p + r[i - 1].n == r[i].p, "%s: ranges do not tile", what);
    total += r[i].n;
  }
  ck_assert_msg(total == data_len, "%s: tensors cover %zu of %zu bytes", what, total, data_len);
  free(r);
}

/* A small valid file written by msci_st_write, returned as bytes. */
static unsigned char *small_file(const char *dir, size_t *len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/small.safetensors", dir);
  const float w[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.0f, 1e-3f};
  const float b[2] = {0.125f, -7.0f};
  const float s[1] = {42.0f};
  const int64_t dw[2] = {2, 3}, db[1] = {2}, de[2] = {0, 4};
  const msci_st_tensor_in t[] = {
      {"weight", 2, dw, w}, {"bias", 1, db, b}, {"scalar", 0, NULL, s}, {"empty", 2, de, NULL}};
  const msci_st_meta m[] = {{"format", "mosaic"}, {"step", "17"}};
  ck_assert_int_eq(msci_st_write(path, m, 2, t, 4), MSC_OK);
  unsigned char *buf = read_all(path, len);
  unlink(path);
  return buf;
}

/* ------------------------------------------------------------------------------ */
/* Round trips                                                                     */
/* ------------------------------------------------------------------------------ */

START_TEST(roundtrip_values_shapes_metadata) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);

  float conv[4 * 3 * 3 * 3];
  uint32_t state = 12345u;
  for (size_t i = 0; i < sizeof conv / sizeof conv[0]; i++) {
    state = state * 1664525u + 1013904223u;
    conv[i] = (float)((int32_t)state) / 2147483648.0f;
  }
  /* special values must survive bit for bit */
  uint32_t nan_payload = 0x7FC12345u, denorm = 0x00000001u;
  memcpy(&conv[0], &nan_payload, 4);
  conv[1] = -0.0f;
  conv[2] = INFINITY;
  conv[3] = -INFINITY;
  memcpy(&conv[4], &denorm, 4);
  conv[5] = 3.4028235e38f;
  float bias[4] = {0.1f, 0.2f, 0.3f, 0.4f};
  float scalar = 2.5f;
  float deep[4] = {1, 2, 3, 4};
  const int64_t d_conv[4] = {4, 3, 3, 3}, d_bias[1] = {4}, d_empty[2] = {0, 5},
                d_deep[8] = {2, 1, 1, 1, 1, 1, 1, 2};
  const msci_st_tensor_in t[] = {
      {"conv1.weight", 4, d_conv, conv}, {"conv1.bias", 1, d_bias, bias},
      {"step_scale", 0, NULL, &scalar},  {"empty", 2, d_empty, NULL},
      {"z.deep", 8, d_deep, deep},
  };
  const msci_st_meta m[] = {{"config", "{\"dim\": 128, \"name\": \"tiny\"}"},
                            {"unicode", "\xC3\xA9t\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC"},
                            {"empty", ""}};
  ck_assert_int_eq(msci_st_write(path, m, 3, t, 5), MSC_OK);

  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_eq(st.st_mode & 0777, 0644);
  ck_assert_int_eq(dir_entries(dir), 1); /* no temporary left behind */

  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open(path, &f), MSC_OK);
  ck_assert_uint_eq(msci_st_count(f), 5);
  const char *sorted[] = {"conv1.bias", "conv1.weight", "empty", "step_scale", "z.deep"};
  for (size_t i = 0; i < 5; i++) ck_assert_str_eq(msci_st_name(f, i), sorted[i]);
  ck_assert_ptr_null(msci_st_name(f, 5));

  for (size_t i = 0; i < 5; i++) {
    int32_t ndim = -1;
    int64_t dims[MSCI_ST_MAX_DIMS];
    ck_assert_int_eq(msci_st_shape(f, t[i].name, &ndim, dims), MSC_OK);
    ck_assert_int_eq(ndim, t[i].ndim);
    size_t count = 1;
    for (int32_t d = 0; d < ndim; d++) {
      ck_assert_int_eq(dims[d], t[i].dims[d]);
      count *= (size_t)dims[d];
    }
    ck_assert_str_eq(msci_st_dtype(f, t[i].name), "F32");
    float *back = malloc(count * sizeof *back + 1);
    ck_assert_int_eq(msci_st_read_f32(f, t[i].name, back, count), MSC_OK);
    if (count > 0)
      ck_assert_msg(memcmp(back, t[i].data, count * sizeof *back) == 0, "%s not bit-identical",
                    t[i].name);
    free(back);
  }
  ck_assert_uint_eq(msci_st_meta_count(f), 3);
  ck_assert_str_eq(msci_st_meta_key(f, 0), "config");
  ck_assert_str_eq(msci_st_meta_key(f, 1), "empty");
  ck_assert_str_eq(msci_st_meta_key(f, 2), "unicode");
  ck_assert_ptr_null(msci_st_meta_key(f, 3));
  for (size_t i = 0; i < 3; i++) ck_assert_str_eq(msci_st_meta_get(f, m[i].key), m[i].value);
  ck_assert_ptr_null(msci_st_meta_get(f, "absent"));
  ck_assert_ptr_null(msci_st_meta_get(f, NULL));

  /* lookups that fail */
  int32_t nd = 77;
  int64_t dd[MSCI_ST_MAX_DIMS] = {77};
  ck_assert_int_eq(msci_st_shape(f, "missing", &nd, dd), MSC_E_NOT_FOUND);
  ck_assert_int_eq(nd, 77);
  ck_assert_int_eq(dd[0], 77);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "missing"));
  float one;
  ck_assert_int_eq(msci_st_read_f32(f, "missing", &one, 1), MSC_E_NOT_FOUND);
  ck_assert_ptr_null(msci_st_dtype(f, "missing"));
  float few[3];
  ck_assert_int_eq(msci_st_read_f32(f, "conv1.bias", few, 3), MSC_E_SHAPE);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "conv1.bias"));
  ck_assert_int_eq(msci_st_read_f32(f, "conv1.bias", NULL, 4), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_read_f32(f, "empty", NULL, 0), MSC_OK);
  ck_assert_int_eq(msci_st_read_f32(NULL, "empty", NULL, 0), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_shape(f, NULL, &nd, dd), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_shape(f, "empty", NULL, dd), MSC_E_INVALID_ARGUMENT);
  msci_st_close(f);
  msci_st_close(NULL);
  ck_assert_uint_eq(msci_st_count(NULL), 0);
  ck_assert_ptr_null(msci_st_name(NULL, 0));
  remove_dir(dir);
}
END_TEST

START_TEST(roundtrip_deterministic_and_overwrite) {
  char dir[4096], p1[4200], p2[4200];
  make_dir(dir, sizeof dir);
  snprintf(p1, sizeof p1, "%s/a.safetensors", dir);
  snprintf(p2, sizeof p2, "%s/b.safetensors", dir);
  const float x[3] = {1, 2, 3}, y[2] = {4, 5};
  const int64_t dx[1] = {3}, dy[1] = {2};
  const msci_st_tensor_in t1[] = {{"x", 1, dx, x}, {"y", 1, dy, y}};
  const msci_st_tensor_in t2[] = {{"y", 1, dy, y}, {"x", 1, dx, x}};
  const msci_st_meta m1[] = {{"a", "1"}, {"b", "2"}};
  const msci_st_meta m2[] = {{"b", "2"}, {"a", "1"}};
  ck_assert_int_eq(msci_st_write(p1, m1, 2, t1, 2), MSC_OK);
  ck_assert_int_eq(msci_st_write(p2, m2, 2, t2, 2), MSC_OK);
  size_t l1, l2;
  unsigned char *b1 = read_all(p1, &l1), *b2 = read_all(p2, &l2);
  ck_assert_uint_eq(l1, l2);
  ck_assert(memcmp(b1, b2, l1) == 0);
  free(b2);

  /* overwrite an existing file: replaced completely, still one entry per file */
  ck_assert_int_eq(msci_st_write(p2, NULL, 0, t1, 1), MSC_OK);
  b2 = read_all(p2, &l2);
  ck_assert_uint_lt(l2, l1);
  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open(p2, &f), MSC_OK);
  ck_assert_uint_eq(msci_st_count(f), 1);
  ck_assert_uint_eq(msci_st_meta_count(f), 0);
  ck_assert_ptr_null(msci_st_meta_get(f, "a"));
  msci_st_close(f);
  ck_assert_int_eq(dir_entries(dir), 2);

  /* an empty file: no tensors, no metadata */
  ck_assert_int_eq(msci_st_write(p2, NULL, 0, NULL, 0), MSC_OK);
  free(b2);
  b2 = read_all(p2, &l2);
  ck_assert_uint_eq(l2, 16);
  ck_assert(memcmp(b2 + 8, "{}      ", 8) == 0);
  ck_assert_int_eq(msci_st_open(p2, &f), MSC_OK);
  ck_assert_uint_eq(msci_st_count(f), 0);
  msci_st_close(f);

  /* a relative path (directory ".") works too */
  char cwd[4096];
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  ck_assert_int_eq(chdir(dir), 0);
  ck_assert_int_eq(msci_st_write("rel.safetensors", NULL, 0, t1, 2), MSC_OK);
  ck_assert_int_eq(msci_st_open("rel.safetensors", &f), MSC_OK);
  msci_st_close(f);
  ck_assert_int_eq(chdir(cwd), 0);
  ck_assert_int_eq(dir_entries(dir), 3);
  free(b1);
  free(b2);
  remove_dir(dir);
}
END_TEST

START_TEST(roundtrip_large_tensor) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/big.safetensors", dir);
  size_t n = (size_t)1 << 20;
  float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
  ck_assert(x != NULL && y != NULL);
  for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.5f - 1000.0f;
  const int64_t d[2] = {1024, 1024};
  const msci_st_tensor_in t = {"big", 2, d, x};
  ck_assert_int_eq(msci_st_write(path, NULL, 0, &t, 1), MSC_OK);
  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open(path, &f), MSC_OK);
  ck_assert_int_eq(msci_st_read_f32(f, "big", y, n), MSC_OK);
  ck_assert(memcmp(x, y, n * sizeof *x) == 0);
  msci_st_close(f);
  free(x);
  free(y);
  remove_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* The bytes on disk against the specification                                     */
/* ------------------------------------------------------------------------------ */

START_TEST(written_bytes_match_spec) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/spec.safetensors", dir);
  const float a[3] = {1.0f, -2.0f, 0.5f};
  const float b[2] = {3.0f, 0.1f};
  const int64_t da[2] = {1, 3}, db[1] = {2};
  /* given out of order: the file holds them sorted by name */
  const msci_st_tensor_in t[] = {{"b", 1, db, b}, {"a", 2, da, a}};
  const msci_st_meta m[] = {{"k", "v"}};
  ck_assert_int_eq(msci_st_write(path, m, 1, t, 2), MSC_OK);
  size_t len;
  unsigned char *buf = read_all(path, &len);

  ck_assert_uint_ge(len, 8);
  uint64_t n = (uint64_t)buf[0] | (uint64_t)buf[1] << 8 | (uint64_t)buf[2] << 16 |
               (uint64_t)buf[3] << 24 | (uint64_t)buf[4] << 32 | (uint64_t)buf[5] << 40 |
               (uint64_t)buf[6] << 48 | (uint64_t)buf[7] << 56;
  ck_assert_uint_eq(n % 8, 0);
  ck_assert_uint_eq(len, 8 + n + 20);
  ck_assert_int_eq(buf[8], '{');

  const char *expected = "{\"__metadata__\":{\"k\":\"v\"},"
                         "\"a\":{\"data_offsets\":[0,12],\"dtype\":\"F32\",\"shape\":[1,3]},"
                         "\"b\":{\"data_offsets\":[12,20],\"dtype\":\"F32\",\"shape\":[2]}}";
  size_t elen = strlen(expected);
  ck_assert_uint_ge(n, elen);
  ck_assert_uint_lt(n, elen + 8);
  ck_assert(memcmp(buf + 8, expected, elen) == 0);
  for (size_t i = 8 + elen; i < 8 + n; i++) ck_assert_int_eq(buf[i], ' ');

  /* any JSON parser reads the header */
  json_error_t err;
  json_t *root = json_loadb((const char *)buf + 8, (size_t)n, 0, &err);
  ck_assert_msg(root != NULL, "%s", err.text);
  ck_assert_str_eq(
      json_string_value(json_object_get(json_object_get(root, "__metadata__"), "k")), "v");
  json_t *ja = json_object_get(root, "a");
  ck_assert_str_eq(json_string_value(json_object_get(ja, "dtype")), "F32");
  ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(ja, "shape"), 1)), 3);
  ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(ja, "data_offsets"), 1)),
                   12);
  json_decref(root);

  /* the data: little-endian IEEE floats at the declared offsets */
  const unsigned char *data = buf + 8 + n;
  const unsigned char want[20] = {
      0x00, 0x00, 0x80, 0x3F, /* a[0] =  1.0  */
      0x00, 0x00, 0x00, 0xC0, /* a[1] = -2.0  */
      0x00, 0x00, 0x00, 0x3F, /* a[2] =  0.5  */
      0x00, 0x00, 0x40, 0x40, /* b[0] =  3.0  */
      0xCD, 0xCC, 0xCC, 0x3D, /* b[1] =  0.1f */
  };
  ck_assert(memcmp(data, want, 20) == 0);
  free(buf);
  remove_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* A file made by hand                                                             */
/* ------------------------------------------------------------------------------ */

static void put_u16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static void put_f64(unsigned char *p, double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  put_le64(p, u);
}

START_TEST(hand_built_file) {
  /* data layout: dbl F64[4] 0..32, half F16[2,4] 32..48, brain BF16[3] 48..54,
   * s F32[] 54..58, nothing F32[0] 58..58, ints I32[2] 58..66 */
  unsigned char data[66];
  memset(data, 0xEE, sizeof data);
  put_f64(data + 0, 1.0);
  put_f64(data + 8, -2.5);
  put_f64(data + 16, 0.333);
  put_f64(data + 24, 1e300);
  const uint16_t half[8] = {0x3C00, 0xC100, 0x3555, 0x7BFF, 0x0001, 0xFC00, 0x8000, 0x03FF};
  for (int i = 0; i < 8; i++) put_u16(data + 32 + 2 * i, half[i]);
  put_u16(data + 48, 0x3F80);
  put_u16(data + 50, 0xC020);
  put_u16(data + 52, 0x3EAA);
  uint32_t s = f32_bits(42.0f);
  for (int i = 0; i < 4; i++) data[54 + i] = (unsigned char)(s >> (8 * i));
  for (int i = 0; i < 8; i++) data[58 + i] = (unsigned char)(i == 0 ? 7 : i == 4 ? 0xFF : 0);

  /* keys in no particular order, members in another order, whitespace and newlines,
   * metadata in the middle, then spaces so that the data is not 8-byte aligned */
  char header[1024];
  snprintf(header, sizeof header, "%s%*s",
           "{\n"
           "  \"s\": {\"shape\": [], \"dtype\": \"F32\", \"data_offsets\": [54, 58]},\n"
           "  \"half\": {\"data_offsets\": [32, 48], \"shape\": [2, 4], \"dtype\": \"F16\"},\n"
           "  \"__metadata__\": {\"origin\": \"hand\", \"note\": \"tab\\there\"},\n"
           "  \"ints\": {\"dtype\": \"I32\", \"data_offsets\": [58, 66], \"shape\": [2]},\n"
           "  \"dbl\": {\"dtype\": \"F64\", \"shape\": [4], \"data_offsets\": [0, 32]},\n"
           "  \"nothing\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [58, 58]},\n"
           "  \"brain\": {\"dtype\": \"BF16\", \"shape\": [3], \"data_offsets\": [48, 54]}\n"
           "}",
           13, "");
  ck_assert_uint_ne(strlen(header) % 8, 0);
  size_t len;
  unsigned char *buf = build(header, data, sizeof data, &len);
  msci_st_file *f = NULL;
  ck_assert_msg(msci_st_open_memory(buf, len, &f) == MSC_OK, "%s", msc_last_error());
  free(buf); /* the file keeps its own copy */

  ck_assert_uint_eq(msci_st_count(f), 6);
  const char *names[] = {"brain", "dbl", "half", "ints", "nothing", "s"};
  for (size_t i = 0; i < 6; i++) ck_assert_str_eq(msci_st_name(f, i), names[i]);
  ck_assert_str_eq(msci_st_meta_get(f, "origin"), "hand");
  ck_assert_str_eq(msci_st_meta_get(f, "note"), "tab\there");

  float h[8];
  ck_assert_int_eq(msci_st_read_f32(f, "half", h, 8), MSC_OK);
  ck_assert_uint_eq(f32_bits(h[0]), f32_bits(1.0f));
  ck_assert_uint_eq(f32_bits(h[1]), f32_bits(-2.5f));
  ck_assert_uint_eq(f32_bits(h[2]), f32_bits(0.333251953125f)); /* nearest half to 0.333 */
  ck_assert_uint_eq(f32_bits(h[3]), f32_bits(65504.0f));
  ck_assert_uint_eq(f32_bits(h[4]), f32_bits(0x1p-24f)); /* smallest subnormal */
  ck_assert_uint_eq(f32_bits(h[5]), f32_bits(-INFINITY));
  ck_assert_uint_eq(f32_bits(h[6]), 0x80000000u);               /* -0 */
  ck_assert_uint_eq(f32_bits(h[7]), f32_bits(1023 * 0x1p-24f)); /* largest subnormal */

  float b[3];
  ck_assert_int_eq(msci_st_read_f32(f, "brain", b, 3), MSC_OK);
  ck_assert_uint_eq(f32_bits(b[0]), f32_bits(1.0f));
  ck_assert_uint_eq(f32_bits(b[1]), f32_bits(-2.5f));
  ck_assert_uint_eq(f32_bits(b[2]), 0x3EAA0000u);
  ck_assert_uint_eq(f32_bits(b[2]), f32_bits(0.33203125f));

  float d[4];
  ck_assert_int_eq(msci_st_read_f32(f, "dbl", d, 4), MSC_OK);
  ck_assert_uint_eq(f32_bits(d[0]), f32_bits(1.0f));
  ck_assert_uint_eq(f32_bits(d[1]), f32_bits(-2.5f));
  ck_assert_uint_eq(f32_bits(d[2]), f32_bits(0.333f));
  ck_assert(isinf(d[3]) && d[3] > 0);

  int32_t ndim = -1;
  int64_t dims[MSCI_ST_MAX_DIMS];
  float sv = 0;
  ck_assert_int_eq(msci_st_shape(f, "s", &ndim, dims), MSC_OK);
  ck_assert_int_eq(ndim, 0);
  ck_assert_int_eq(msci_st_read_f32(f, "s", &sv, 1), MSC_OK);
  ck_assert(sv == 42.0f);
  ck_assert_int_eq(msci_st_read_f32(f, "s", &sv, 0), MSC_E_SHAPE);

  ck_assert_int_eq(msci_st_shape(f, "nothing", &ndim, dims), MSC_OK);
  ck_assert_int_eq(ndim, 1);
  ck_assert_int_eq(dims[0], 0);
  ck_assert_int_eq(msci_st_read_f32(f, "nothing", NULL, 0), MSC_OK);

  ck_assert_int_eq(msci_st_shape(f, "half", &ndim, dims), MSC_OK);
  ck_assert_int_eq(ndim, 2);
  ck_assert_int_eq(dims[0], 2);
  ck_assert_int_eq(dims[1], 4);

  /* an integer tensor is listed and shaped, but not read as float */
  ck_assert_str_eq(msci_st_dtype(f, "ints"), "I32");
  float iv[2] = {-1, -1};
  ck_assert_int_eq(msci_st_read_f32(f, "ints", iv, 2), MSC_E_UNSUPPORTED);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "ints"));
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "I32"));
  ck_assert(iv[0] == -1 && iv[1] == -1);
  const void *raw;
  size_t nraw;
  ck_assert_int_eq(msci_st_raw(f, "ints", &raw, &nraw), MSC_OK);
  ck_assert_uint_eq(nraw, 8);
  ck_assert(memcmp(raw, data + 58, 8) == 0);

  check_consistent(f, sizeof data, "hand-built");
  msci_st_close(f);
}
END_TEST

START_TEST(hand_built_edge_cases_accepted) {
  /* an empty object, with or without padding */
  msci_st_file *f = expect_ok("{}", NULL, 0);
  ck_assert_uint_eq(msci_st_count(f), 0);
  msci_st_close(f);
  f = expect_ok("{}      \t\n", NULL, 0);
  msci_st_close(f);
  /* only metadata */
  f = expect_ok("{\"__metadata__\":{}}", NULL, 0);
  ck_assert_uint_eq(msci_st_meta_count(f), 0);
  msci_st_close(f);
  /* several zero-sized tensors at the same offset, between two others */
  const unsigned char d8[8] = {0};
  f = expect_ok("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"e1\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[4,4]},"
                "\"e2\":{\"dtype\":\"F64\",\"shape\":[3,0],\"data_offsets\":[4,4]},"
                "\"z\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
                d8, 8);
  ck_assert_uint_eq(msci_st_count(f), 4);
  check_consistent(f, 8, "zero-sized");
  msci_st_close(f);
  /* a huge dimension is fine when another one is 0 */
  f = expect_ok("{\"e\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,0],"
                "\"data_offsets\":[0,0]}}",
                NULL, 0);
  msci_st_close(f);
  /* sub-byte dtype with a whole number of bytes; other known dtypes */
  const unsigned char d12[12] = {0};
  f = expect_ok("{\"q\":{\"dtype\":\"F4\",\"shape\":[4],\"data_offsets\":[0,2]},"
                "\"b\":{\"dtype\":\"BOOL\",\"shape\":[2],\"data_offsets\":[2,4]},"
                "\"c\":{\"dtype\":\"C64\",\"shape\":[],\"data_offsets\":[4,12]}}",
                d12, 12);
  check_consistent(f, 12, "other dtypes");
  ck_assert_int_eq(msci_st_read_f32(f, "q", NULL, 0), MSC_E_UNSUPPORTED);
  msci_st_close(f);
  /* a 255-byte name and 8 dimensions are the limits */
  char hdr[1024], name[256];
  memset(name, 'n', 255);
  name[255] = '\0';
  snprintf(hdr, sizeof hdr,
           "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,2],\"data_offsets\":[0,2]}}",
           name);
  f = expect_ok(hdr, d8, 2);
  ck_assert_str_eq(msci_st_name(f, 0), name);
  msci_st_close(f);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Atomic saving                                                                   */
/* ------------------------------------------------------------------------------ */

static void write_valid(const char *path, float v) {
  const float x[2] = {v, v + 1};
  const int64_t d[1] = {2};
  const msci_st_tensor_in t = {"x", 1, d, x};
  const msci_st_meta m = {"k", "v"};
  ck_assert_int_eq(msci_st_write(path, &m, 1, &t, 1), MSC_OK);
}

START_TEST(atomic_missing_directory) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/no/such/dir/model.safetensors", dir);
  const float x = 1;
  const msci_st_tensor_in t = {"x", 0, NULL, &x};
  msc_clear_error();
  ck_assert_int_eq(msci_st_write(path, NULL, 0, &t, 1), MSC_E_IO);
  ck_assert_msg(strstr(msc_last_error(), path) != NULL, "%s", msc_last_error());
  ck_assert_msg(strstr(msc_last_error(), strerror(ENOENT)) != NULL, "%s", msc_last_error());
  ck_assert_int_eq(dir_entries(dir), 0);
  remove_dir(dir);
}
END_TEST

START_TEST(atomic_invalid_input_keeps_old_file) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  write_valid(path, 1.5f);
  size_t l0;
  unsigned char *before = read_all(path, &l0);

  const float x[4] = {1, 2, 3, 4};
  const int64_t neg[2] = {2, -2}, ok[1] = {4};
  char longname[300];
  memset(longname, 'a', 299);
  longname[299] = '\0';
  const msci_st_tensor_in bad[][2] = {
      {{"good", 1, ok, x}, {"neg", 2, neg, x}},         /* negative dim */
      {{"good", 1, ok, x}, {"nodata", 1, ok, NULL}},    /* NULL data */
      {{"dup", 1, ok, x}, {"dup", 1, ok, x}},           /* duplicate name */
      {{"good", 1, ok, x}, {"", 1, ok, x}},             /* empty name */
      {{"good", 1, ok, x}, {longname, 1, ok, x}},       /* name too long */
      {{"good", 1, ok, x}, {"__metadata__", 1, ok, x}}, /* reserved name */
      {{"good", 1, ok, x}, {"bad\xFFutf8", 1, ok, x}},  /* not UTF-8 */
      {{"good", 1, ok, x}, {"nine", 9, ok, x}},         /* too many dims */
      {{"good", 1, ok, x}, {"nodims", 1, NULL, x}},     /* NULL dims */
      {{"good", 1, ok, x}, {NULL, 1, ok, x}},           /* NULL name */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    msc_clear_error();
    ck_assert_msg(msci_st_write(path, NULL, 0, bad[i], 2) == MSC_E_INVALID_ARGUMENT, "case %zu",
                  i);
    ck_assert_msg(msc_last_error()[0] != '\0', "case %zu: no message", i);
  }
  const msci_st_meta dupmeta[2] = {{"k", "1"}, {"k", "2"}};
  const msci_st_meta nullval[1] = {{"k", NULL}};
  const msci_st_meta badutf[1] = {{"k", "\xC3"}};
  const msci_st_tensor_in one = {"x", 1, ok, x};
  ck_assert_int_eq(msci_st_write(path, dupmeta, 2, &one, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_write(path, nullval, 1, &one, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_write(path, badutf, 1, &one, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_write(path, NULL, 1, &one, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_write(path, NULL, 0, NULL, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_write(NULL, NULL, 0, &one, 1), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_write("", NULL, 0, &one, 1), MSC_E_INVALID_ARGUMENT);

  size_t l1;
  unsigned char *after = read_all(path, &l1);
  ck_assert_uint_eq(l0, l1);
  ck_assert(memcmp(before, after, l0) == 0);
  ck_assert_int_eq(dir_entries(dir), 1); /* no temporary left */
  free(before);
  free(after);
  remove_dir(dir);
}
END_TEST

START_TEST(atomic_rename_failure_removes_temporary) {
  /* path is an existing non-empty directory: rename(2) fails after the temporary was
   * fully written and synced; the temporary must go and the directory stay. */
  char dir[4096], path[4200], inner[4300];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  ck_assert_int_eq(mkdir(path, 0755), 0);
  snprintf(inner, sizeof inner, "%s/keep", path);
  write_raw(inner, "x", 1);
  const float x = 1;
  const msci_st_tensor_in t = {"x", 0, NULL, &x};
  msc_clear_error();
  ck_assert_int_eq(msci_st_write(path, NULL, 0, &t, 1), MSC_E_IO);
  ck_assert_msg(strstr(msc_last_error(), "rename") != NULL, "%s", msc_last_error());
  ck_assert_int_eq(dir_entries(dir), 1);
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert(S_ISDIR(st.st_mode));
  unlink(inner);
  remove_dir(dir);
}
END_TEST

START_TEST(atomic_readonly_directory) {
  if (geteuid() == 0) return; /* root ignores directory permissions: nothing to test */
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/model.safetensors", dir);
  write_valid(path, 1.5f);
  size_t l0;
  unsigned char *before = read_all(path, &l0);
  ck_assert_int_eq(chmod(dir, 0555), 0);
  const float x = 9;
  const msci_st_tensor_in t = {"other", 0, NULL, &x};
  msc_status rc = msci_st_write(path, NULL, 0, &t, 1);
  ck_assert_int_eq(chmod(dir, 0755), 0);
  ck_assert_int_eq(rc, MSC_E_IO);
  ck_assert_msg(strstr(msc_last_error(), path) != NULL, "%s", msc_last_error());
  size_t l1;
  unsigned char *after = read_all(path, &l1);
  ck_assert_uint_eq(l0, l1);
  ck_assert(memcmp(before, after, l0) == 0);
  ck_assert_int_eq(dir_entries(dir), 1);
  free(before);
  free(after);
  remove_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Opening files: I/O errors                                                       */
/* ------------------------------------------------------------------------------ */

START_TEST(open_io_errors) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/absent.safetensors", dir);
  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open(path, &f), MSC_E_IO);
  ck_assert_ptr_null(f);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), path));
  ck_assert_ptr_nonnull(strstr(msc_last_error(), strerror(ENOENT)));
  ck_assert_int_eq(msci_st_open(dir, &f), MSC_E_IO); /* a directory */
  ck_assert_ptr_nonnull(strstr(msc_last_error(), dir));
  /* a FIFO without a writer: refused at once, not waited on */
  char fifo[4200];
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_int_eq(msci_st_open(fifo, &f), MSC_E_IO);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), "not a regular file"));
  ck_assert_ptr_null(f);
  unlink(fifo);
  ck_assert_int_eq(msci_st_open(NULL, &f), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_open(path, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_open_memory(NULL, 3, &f), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_open_memory("abc", 3, NULL), MSC_E_INVALID_ARGUMENT);
  ck_assert_int_eq(msci_st_open_memory(NULL, 0, &f), MSC_E_BAD_FORMAT);
  ck_assert_ptr_null(f);

  /* a corrupt file on disk is named in the message */
  snprintf(path, sizeof path, "%s/junk.safetensors", dir);
  write_raw(path, "\x05\0\0\0\0\0\0\0[1,2]", 13);
  ck_assert_int_eq(msci_st_open(path, &f), MSC_E_BAD_FORMAT);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), path));
  ck_assert_ptr_null(f);
  remove_dir(dir);
}
END_TEST

/* ------------------------------------------------------------------------------ */
/* Corrupted files                                                                 */
/* ------------------------------------------------------------------------------ */

START_TEST(corrupt_every_truncation) {
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  size_t len;
  unsigned char *full = small_file(dir, &len);
  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open_memory(full, len, &f), MSC_OK);
  msci_st_close(f);
  snprintf(path, sizeof path, "%s/cut.safetensors", dir);
  for (size_t cut = 0; cut < len; cut++) {
    char what[64];
    snprintf(what, sizeof what, "truncated to %zu of %zu", cut, len);
    expect_bad_buf(full, cut, NULL, what);
    /* and the same through a file on disk */
    write_raw(path, full, cut);
    f = NULL;
    ck_assert_msg(msci_st_open(path, &f) == MSC_E_BAD_FORMAT, "%s: %s", what, msc_last_error());
    ck_assert_ptr_null(f);
  }
  /* one byte too many is also refused (an unindexed byte) */
  unsigned char *longer = malloc(len + 1);
  memcpy(longer, full, len);
  longer[len] = 0;
  expect_bad_buf(longer, len + 1, "unindexed", "one extra byte");
  free(longer);
  free(full);
  remove_dir(dir);
}
END_TEST

/* Returns 1 when the altered file still opened (and was consistent), 0 when refused. */
static int flip_one(const unsigned char *full, size_t len, unsigned char *work, size_t pos,
                    unsigned char value) {
  memcpy(work, full, len);
  work[pos] = value;
  msci_st_file *f = NULL;
  msc_status rc = msci_st_open_memory(work, len, &f);
  ck_assert_msg(rc == MSC_OK || rc == MSC_E_BAD_FORMAT, "byte %zu = 0x%02x: status %d (%s)",
                pos, value, (int)rc, msc_last_error());
  if (rc == MSC_OK) {
    uint64_t n = get_le64(work);
    ck_assert(n <= len - 8);
    char what[64];
    snprintf(what, sizeof what, "byte %zu = 0x%02x", pos, value);
    check_consistent(f, len - 8 - (size_t)n, what);
    msci_st_close(f);
    return 1;
  }
  ck_assert_ptr_null(f);
  return 0;
}

START_TEST(corrupt_header_byte_flips) {
  char dir[4096];
  make_dir(dir, sizeof dir);
  size_t len;
  unsigned char *full = small_file(dir, &len);
  uint64_t n = get_le64(full);
  unsigned char *work = malloc(len);
  static const unsigned char xors[] = {0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0xFF};
  static const char repl[] = "0019-\"{}[],: \\eE.";
  int opened = 0, refused = 0;
  for (size_t pos = 0; pos < 8 + (size_t)n; pos++) {
    int o = 0, tries = 0;
    for (size_t k = 0; k < sizeof xors; k++, tries++)
      o += flip_one(full, len, work, pos, (unsigned char)(full[pos] ^ xors[k]));
    for (size_t k = 0; k < sizeof repl - 1; k++, tries++)
      o += flip_one(full, len, work, pos, (unsigned char)repl[k]);
    o += flip_one(full, len, work, pos, 0);
    tries++;
    opened += o;
    refused += tries - o;
  }
  /* both outcomes occur: changing a metadata letter or the padding keeps the file
   * valid, changing the structure does not */
  ck_assert_int_gt(opened, 0);
  ck_assert_int_gt(refused, 0);
  free(work);
  free(full);
  remove_dir(dir);
}
END_TEST

START_TEST(corrupt_header_length) {
  const char *hdr = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
  const unsigned char four[4] = {0, 0, 128, 63};
  size_t len;
  unsigned char *buf = build(hdr, four, 4, &len);
  const uint64_t bad[] = {
      0,
      (uint64_t)1 << 63,
      UINT64_MAX,
      MSCI_ST_MAX_HEADER + 1,
      (uint64_t)(len - 8) + 1, /* one beyond the file */
      (uint64_t)(len - 8) - 3, /* cuts the data: JSON followed by raw bytes */
      strlen(hdr) - 1,         /* cuts the JSON */
  };
  const char *want[] = {"length is 0", "limit", "limit", "limit", "exceeds", NULL, NULL};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    put_le64(buf, bad[i]);
    char what[64];
    snprintf(what, sizeof what, "header length %llu", (unsigned long long)bad[i]);
    expect_bad_buf(buf, len, want[i], what);
  }
  free(buf);
  /* files shorter than the length field */
  expect_bad_buf((const unsigned char *)"\x02\0\0\0", 4, "too short", "4 bytes");
  expect_bad_buf((const unsigned char *)"", 0, "too short", "0 bytes");
}
END_TEST

START_TEST(corrupt_header_at_limit_real_size) {
  /* A real header of exactly 100 MiB + 8 bytes is refused by the cap, not the file
   * size: the file is long enough to hold it. */
  size_t hlen = (size_t)MSCI_ST_MAX_HEADER + 8;
  unsigned char *buf = malloc(8 + hlen);
  ck_assert_ptr_nonnull(buf);
  put_le64(buf, hlen);
  memset(buf + 8, ' ', hlen);
  memcpy(buf + 8, "{}", 2);
  expect_bad_buf(buf, 8 + hlen, "limit", "100 MiB + 8 header");
  free(buf);
}
END_TEST

START_TEST(corrupt_header_catalogue) {
  unsigned char d[64];
  for (size_t i = 0; i < sizeof d; i++) d[i] = (unsigned char)i;
  /* 2^40 elements claimed: never allocated, refused because the data is not there */
  expect_bad("{\"huge\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],"
             "\"data_offsets\":[0,4398046511104]}}",
             d, 8, "huge");
  expect_bad("{\"huge\":{\"dtype\":\"F32\",\"shape\":[1048576,1048576],"
             "\"data_offsets\":[0,8]}}",
             d, 8, "huge");
  /* element count overflow */
  expect_bad("{\"ovf\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
             "\"data_offsets\":[0,8]}}",
             d, 8, "overflow");
  expect_bad("{\"ovf\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],"
             "\"data_offsets\":[0,8]}}",
             d, 8, "overflow");
  /* overlap, hole, unindexed tail, data without tensors */
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
             d, 12, "overlaps");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
             d, 8, "overlaps");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
             d, 8, "overlaps");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
             d, 12, "hole");
  expect_bad("{\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d, 8, "hole");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 8,
             "unindexed");
  expect_bad("{}", d, 4, "no tensor");
  expect_bad("{\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", d, 4, "hole");
  /* duplicate names (and duplicate members) */
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
             d, 8, "duplicate");
  expect_bad("{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],"
             "\"data_offsets\":[0,4]}}",
             d, 4, NULL);
  /* shapes */
  expect_bad("{\"neg\":{\"dtype\":\"F32\",\"shape\":[-1,2],\"data_offsets\":[0,8]}}", d, 8,
             "neg");
  expect_bad("{\"real\":{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}}", d, 8,
             "real");
  expect_bad("{\"str\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", d, 8,
             "str");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,4]}}", d, 4,
             "shape");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[null],\"data_offsets\":[0,4]}}", d, 4,
             "shape");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":[[1]],\"data_offsets\":[0,4]}}", d, 4,
             "shape");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", d, 16, "shape");
  expect_bad("{\"t\":{\"dtype\":\"F32\",\"shape\":{},\"data_offsets\":[0,4]}}", d, 4, "shape");
  expect_bad("{\"nine\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
             "\"data_offsets\":[0,1]}}",
             d, 1, "nine");
  expect_bad("{\"big\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999],"
             "\"data_offsets\":[0,1]}}",
             d, 1, "JSON");
  /* data_offsets */
  expect_bad("{\"rev\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", d, 4,
             "reversed");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", d, 8,
             "data_offsets");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", d, 4,
             "data_offsets");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", d, 4,
             "data_offsets");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0.0,4.0]}}", d, 4,
             "data_offsets");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0,4\"}}", d, 4,
             "data_offsets");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", d, 8,
             "needs 4");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":"
             "[9223372036854775800,9223372036854775804]}}",
             d, 4, "beyond");
  expect_bad("{\"o\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":"
             "[0,18446744073709551616]}}",
             d, 4, "JSON");
  /* dtypes */
  expect_bad("{\"f8\":{\"dtype\":\"F8\",\"shape\":[1],\"data_offsets\":[0,1]}}", d, 1, "F8");
  expect_bad("{\"lc\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
             "unknown dtype");
  expect_bad("{\"num\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4, "dtype");
  expect_bad("{\"odd\":{\"dtype\":\"F4\",\"shape\":[3],\"data_offsets\":[0,2]}}", d, 2,
             "whole number");
  /* entry members */
  expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", d,
             4, "extra");
  expect_bad("{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", d, 0, "data_offsets");
  expect_bad("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4, "dtype");
  expect_bad("{\"x\":[1,2]}", d, 0, "not a JSON object");
  expect_bad("{\"x\":null}", d, 0, "x");
  /* names */
  expect_bad("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4,
             "empty name");
  char hdr[1024], name[257];
  memset(name, 'n', 256);
  name[256] = '\0';
  snprintf(hdr, sizeof hdr, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
           name);
  expect_bad(hdr, d, 1, "256 bytes");
  expect_bad("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", d, 1,
             "JSON");
  expect_bad("{\"\xFF\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", d, 1,
             "JSON");
  /* metadata */
  expect_bad("{\"__metadata__\":{\"n\":1}}", NULL, 0, "\"n\"");
  expect_bad("{\"__metadata__\":{\"n\":null}}", NULL, 0, "not a string");
  expect_bad("{\"__metadata__\":{\"n\":{\"deep\":\"x\"}}}", NULL, 0, "not a string");
  expect_bad("{\"__metadata__\":[\"a\",\"b\"]}", NULL, 0, "__metadata__");
  expect_bad("{\"__metadata__\":\"text\"}", NULL, 0, "__metadata__");
  expect_bad("{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", NULL, 0, "duplicate");
  /* not a JSON object, or not only one */
  expect_bad("[1,2]", NULL, 0, "'{'");
  expect_bad("\"str\"", NULL, 0, "'{'");
  expect_bad(" {}", NULL, 0, "'{'");
  expect_bad("{", NULL, 0, "JSON");
  expect_bad("{}x", NULL, 0, "JSON");
  expect_bad("{}}", NULL, 0, "JSON");
  expect_bad("{} {}", NULL, 0, "JSON");
  expect_bad("{}  ,  ", NULL, 0, "JSON");
  expect_bad_buf((const unsigned char *)"\x04\0\0\0\0\0\0\0{}\0\0", 12, "JSON", "NUL padding");
  expect_bad_buf((const unsigned char *)"\x04\0\0\0\0\0\0\0{\0}\0", 12, "JSON", "NUL inside");
  /* deeply nested JSON: jansson's depth limit, no stack overflow */
  size_t depth = 100000;
  char *deep = malloc(2 * depth + 64);
  size_t k = 0;
  k += (size_t)sprintf(deep, "{\"__metadata__\":{\"a\":");
  for (size_t i = 0; i < depth; i++) deep[k++] = '[';
  for (size_t i = 0; i < depth; i++) deep[k++] = ']';
  deep[k++] = '}';
  deep[k++] = '}';
  deep[k] = '\0';
  expect_bad(deep, NULL, 0, "JSON");
  free(deep);
}
END_TEST

START_TEST(corrupt_file_on_disk_not_half_read) {
  /* A refused file leaves nothing behind: run a few through the path interface. */
  char dir[4096], path[4200];
  make_dir(dir, sizeof dir);
  snprintf(path, sizeof path, "%s/bad.safetensors", dir);
  size_t len;
  unsigned char *buf = build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                             "\0\0\0\0\0\0\0\0", 8, &len);
  write_raw(path, buf, len);
  msci_st_file *f = NULL;
  ck_assert_int_eq(msci_st_open(path, &f), MSC_E_BAD_FORMAT);
  ck_assert_ptr_null(f);
  ck_assert_ptr_nonnull(strstr(msc_last_error(), path));
  write_raw(path, buf, len - 4);
  ck_assert_int_eq(msci_st_open(path, &f), MSC_OK);
  msci_st_close(f);
  free(buf);
  remove_dir(dir);
}
END_TEST

static Suite *safetensors_suite(void) {
  Suite *s = suite_create("safetensors");

  TCase *tc = tcase_create("round trip");
  tcase_add_test(tc, roundtrip_values_shapes_metadata);
  tcase_add_test(tc, roundtrip_deterministic_and_overwrite);
  tcase_add_test(tc, roundtrip_large_tensor);
  tcase_add_test(tc, written_bytes_match_spec);
  suite_add_tcase(s, tc);

  tc = tcase_create("hand-built files");
  tcase_add_test(tc, hand_built_file);
  tcase_add_test(tc, hand_built_edge_cases_accepted);
  suite_add_tcase(s, tc);

  tc = tcase_create("atomic save");
  tcase_add_test(tc, atomic_missing_directory);
  tcase_add_test(tc, atomic_invalid_input_keeps_old_file);
  tcase_add_test(tc, atomic_rename_failure_removes_temporary);
  tcase_add_test(tc, atomic_readonly_directory);
  suite_add_tcase(s, tc);

  tc = tcase_create("hostile input");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, open_io_errors);
  tcase_add_test(tc, corrupt_every_truncation);
  tcase_add_test(tc, corrupt_header_byte_flips);
  tcase_add_test(tc, corrupt_header_length);
  tcase_add_test(tc, corrupt_header_at_limit_real_size);
  tcase_add_test(tc, corrupt_header_catalogue);
  tcase_add_test(tc, corrupt_file_on_disk_not_half_read);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(safetensors_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
