/*
 * safetensors.c — safetensors files: an atomic F32 writer and a hostile-input reader.
 *
 * Reading. The whole file is read into one malloc'd buffer with read(2), after fstat
 * has given its size, rather than mmap'd: a mapping of a file that another process
 * truncates turns every later access into SIGBUS, and the library must never crash
 * on a file; a private copy is also a consistent snapshot (a size change during the
 * read is reported as MSC_E_IO), and it lets msci_st_open and msci_st_open_memory
 * share one validator. The price is one copy of the model in memory while loading.
 * The buffer is sized by the file itself (st_size), never by a header value; the
 * JSON tree and the tensor table grow only with header bytes actually present.
 *
 * Validation, in this order, every failure MSC_E_BAD_FORMAT naming the file and the
 * tensor or field:
 *   - at least 8 bytes; header length N: 0 < N <= MSCI_ST_MAX_HEADER, N <= size - 8;
 *   - the header starts with '{' and is one JSON object (jansson, duplicate keys
 *     rejected, UTF-8 checked, NUL bytes rejected) followed only by whitespace;
 *   - "__metadata__", if present, is an object whose values are all strings;
 *   - every other key is a tensor name of 1..MSCI_ST_MAX_NAME bytes whose value is an
 *     object with exactly the members dtype, shape and data_offsets; dtype is a known
 *     safetensors dtype; shape is an array of at most MSCI_ST_MAX_DIMS non-negative
 *     integers whose product does not overflow; data_offsets is two non-negative
 *     integers begin <= end <= buffer size with end - begin the exact byte size of
 *     count elements of dtype (sub-byte dtypes: a whole number of bytes);
 *   - sorted by offsets, the ranges tile the buffer: each begins where the previous
 *     one ended (otherwise an overlap or a hole), the first at 0, the last at its end.
 * Zero-sized tensors ([k, k]) are allowed anywhere that keeps the tiling, as in the
 * reference implementation.
 *
 * Writing: see msci_st_write in safetensors.h. Inputs are validated completely before
 * the temporary file is created, so an invalid call leaves no trace on disk.
 */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/file_read.h"
#include "common/internal.h"

#define META_KEY "__metadata__"

/* ------------------------------------------------------------------------------ */
/* Dtypes                                                                          */
/* ------------------------------------------------------------------------------ */

enum st_dtype {
  DT_BOOL,
  DT_U8,
  DT_I8,
  DT_F8_E5M2,
  DT_F8_E4M3,
  DT_F8_E8M0,
  DT_I16,
  DT_U16,
  DT_F16,
  DT_BF16,
  DT_I32,
  DT_U32,
  DT_F32,
  DT_I64,
  DT_U64,
  DT_F64,
  DT_C64,
  DT_F4,
  DT_F6_E2M3,
  DT_F6_E3M2,
  DT_COUNT
};

static const struct {
  const char *name;
  unsigned bits; /* size of one element in bits */
} k_dtypes[DT_COUNT] = {
    [DT_BOOL] = {"BOOL", 8},       [DT_U8] = {"U8", 8},           [DT_I8] = {"I8", 8},
    [DT_F8_E5M2] = {"F8_E5M2", 8}, [DT_F8_E4M3] = {"F8_E4M3", 8}, [DT_F8_E8M0] = {"F8_E8M0", 8},
    [DT_I16] = {"I16", 16},        [DT_U16] = {"U16", 16},        [DT_F16] = {"F16", 16},
    [DT_BF16] = {"BF16", 16},      [DT_I32] = {"I32", 32},        [DT_U32] = {"U32", 32},
    [DT_F32] = {"F32", 32},        [DT_I64] = {"I64", 64},        [DT_U64] = {"U64", 64},
    [DT_F64] = {"F64", 64},        [DT_C64] = {"C64", 64},        [DT_F4] = {"F4", 4},
    [DT_F6_E2M3] = {"F6_E2M3", 6}, [DT_F6_E3M2] = {"F6_E3M2", 6},
};

static int dtype_lookup(const char *s) {
  for (int i = 0; i < DT_COUNT; i++)
    if (strcmp(s, k_dtypes[i].name) == 0) return i;
  return -1;
}

/* ------------------------------------------------------------------------------ */
/* Little-endian helpers (unaligned-safe, host-order independent)                   */
/* ------------------------------------------------------------------------------ */

static uint64_t load_le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

static void store_le64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static float f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

#if !(defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
static uint32_t bits_from_f32(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
#endif

/* IEEE binary16 -> binary32, exact for every input (subnormals, infinities, NaN
 * payloads kept in the high mantissa bits). */
static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) {
    bits = sign | 0x7F800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {
    /* subnormal: normalise the mantissa */
    uint32_t e = 113u; /* exponent of 2^-14 in float bias, before shifting */
    while ((man & 0x400u) == 0) {
      man <<= 1;
      e--;
    }
    man &= 0x3FFu;
    bits = sign | (e << 23) | (man << 13);
  }
  return f32_from_bits(bits);
}

/* ------------------------------------------------------------------------------ */
/* The open file                                                                   */
/* ------------------------------------------------------------------------------ */

typedef struct st_tensor {
  const char *name;    /* key string owned by the JSON tree */
  const json_t *shape; /* validated array, read on demand (keeps this entry small) */
  uint64_t count;      /* element count */
  size_t begin, end;   /* byte range in the data buffer */
  unsigned char dtype; /* enum st_dtype */
  unsigned char ndim;
} st_tensor;

struct msci_st_file {
  char *label;          /* the path, or "<memory>", for messages */
  unsigned char *bytes; /* the whole file */
  size_t len;
  const unsigned char *data; /* start of the data buffer inside bytes */
  size_t data_len;
  json_t *root;           /* parsed header; owns names and metadata strings */
  const char **meta_keys; /* sorted */
  size_t n_meta;
  json_t *meta;       /* borrowed from root, or NULL */
  st_tensor *tensors; /* sorted by name */
  size_t n;
};

static char *dup_string(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d != NULL) memcpy(d, s, n);
  return d;
}

void msci_st_close(msci_st_file *f) {
  if (f == NULL) return;
  free(f->tensors);
  free(f->meta_keys);
  json_decref(f->root);
  free(f->bytes);
  free(f->label);
  free(f);
}

static int cmp_tensor_name(const void *a, const void *b) {
  return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int cmp_tensor_range(const void *a, const void *b) {
  const st_tensor *x = *(const st_tensor *const *)a;
  const st_tensor *y = *(const st_tensor *const *)b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

static int cmp_cstr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A JSON integer >= 0 (jansson rejects integers beyond long long while parsing). */
static int json_nonneg_int(const json_t *v, uint64_t *out) {
  if (!json_is_integer(v)) return 0;
  json_int_t i = json_integer_value(v);
  if (i < 0) return 0;
  *out = (uint64_t)i;
  return 1;
}

static msc_status parse_metadata(msci_st_file *f, json_t *meta) {
  const char *label = f->label;
  if (!json_is_object(meta))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: \"" META_KEY "\" is not a JSON object", label);
  const char *key;
  json_t *value;
  size_t n = 0;
  json_object_foreach(meta, key, value) {
    if (!json_is_string(value))
      return msci_fail(MSC_E_BAD_FORMAT, "%s: \"" META_KEY "\" entry \"%s\" is not a string",
                       label, key);
    n++;
  }
  if (n > 0) {
    f->meta_keys = malloc(n * sizeof *f->meta_keys);
    if (f->meta_keys == NULL)
      return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for metadata", label);
    size_t i = 0;
    json_object_foreach(meta, key, value) f->meta_keys[i++] = key;
    qsort(f->meta_keys, n, sizeof *f->meta_keys, cmp_cstr);
  }
  f->meta = meta;
  f->n_meta = n;
  return MSC_OK;
}

static msc_status parse_tensor(const msci_st_file *f, const char *name, const json_t *v,
                               st_tensor *t) {
  const char *label = f->label;
  size_t name_len = strlen(name);
  if (name_len == 0)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: a tensor has an empty name", label);
  if (name_len > MSCI_ST_MAX_NAME)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor name \"%.40s...\" is %zu bytes (at most %d)",
                     label, name, name_len, MSCI_ST_MAX_NAME);
  if (!json_is_object(v))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": entry is not a JSON object", label,
                     name);
  const json_t *jdtype = json_object_get(v, "dtype");
  const json_t *jshape = json_object_get(v, "shape");
  const json_t *joffs = json_object_get(v, "data_offsets");
  if (jdtype == NULL || jshape == NULL || joffs == NULL)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": missing \"%s\"", label, name,
                     jdtype == NULL   ? "dtype"
                     : jshape == NULL ? "shape"
                                      : "data_offsets");
  if (json_object_size(v) != 3) {
    const char *k;
    const json_t *unused;
    const char *extra = "?";
    json_object_foreach((json_t *)v, k, unused) {
      if (strcmp(k, "dtype") != 0 && strcmp(k, "shape") != 0 &&
          strcmp(k, "data_offsets") != 0) {
        extra = k;
        break;
      }
    }
    (void)unused;
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": unexpected member \"%s\"", label,
                     name, extra);
  }

  if (!json_is_string(jdtype))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": dtype is not a string", label, name);
  int dt = dtype_lookup(json_string_value(jdtype));
  if (dt < 0)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": unknown dtype \"%.32s\"", label,
                     name, json_string_value(jdtype));

  if (!json_is_array(jshape))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": shape is not an array", label, name);
  size_t ndim = json_array_size(jshape);
  if (ndim > MSCI_ST_MAX_DIMS)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": shape has %zu dimensions (at most %d)", label, name,
                     ndim, MSCI_ST_MAX_DIMS);
  uint64_t count = 1;
  int overflow = 0;
  for (size_t i = 0; i < ndim; i++) {
    uint64_t d;
    if (!json_nonneg_int(json_array_get(jshape, i), &d))
      return msci_fail(MSC_E_BAD_FORMAT,
                       "%s: tensor \"%s\": shape[%zu] is not a non-negative integer", label,
                       name, i);
    if (__builtin_mul_overflow(count, d, &count))
      overflow = 1; /* keep checking the types of the other dims first */
  }
  /* A zero dimension makes the count 0 whatever the others are; only an overflow of a
   * product that is not zero is an error. */
  for (size_t i = 0; overflow && i < ndim; i++)
    if (json_integer_value(json_array_get(jshape, i)) == 0) {
      overflow = 0;
      count = 0;
    }
  if (overflow)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": element count overflows", label,
                     name);
  uint64_t bits;
  if (__builtin_mul_overflow(count, (uint64_t)k_dtypes[dt].bits, &bits))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: tensor \"%s\": byte size overflows", label, name);
  if (bits % 8 != 0)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": %llu elements of %s are not a whole number of bytes",
                     label, name, (unsigned long long)count, k_dtypes[dt].name);
  uint64_t nbytes = bits / 8;

  if (!json_is_array(joffs) || json_array_size(joffs) != 2)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": data_offsets is not an array of two integers", label,
                     name);
  uint64_t begin, end;
  if (!json_nonneg_int(json_array_get(joffs, 0), &begin) ||
      !json_nonneg_int(json_array_get(joffs, 1), &end))
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": data_offsets are not non-negative integers", label,
                     name);
  if (begin > end)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": data_offsets [%llu, %llu] are reversed", label, name,
                     (unsigned long long)begin, (unsigned long long)end);
  if (end - begin != nbytes)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes but %s "
                     "shape needs %llu",
                     label, name, (unsigned long long)begin, (unsigned long long)end,
                     (unsigned long long)(end - begin), k_dtypes[dt].name,
                     (unsigned long long)nbytes);
  if (end > (uint64_t)f->data_len)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\": data_offsets end %llu is beyond the data buffer "
                     "(%zu bytes)",
                     label, name, (unsigned long long)end, f->data_len);
  t->name = name;
  t->shape = jshape;
  t->count = count;
  t->begin = (size_t)begin;
  t->end = (size_t)end;
  t->dtype = (unsigned char)dt;
  t->ndim = (unsigned char)ndim;
  return MSC_OK;
}

/* Checks that the ranges tile [0, data_len) exactly. */
static msc_status check_tiling(const msci_st_file *f) {
  if (f->n == 0) {
    if (f->data_len != 0)
      return msci_fail(MSC_E_BAD_FORMAT,
                       "%s: %zu data bytes follow the header but no tensor indexes them",
                       f->label, f->data_len);
    return MSC_OK;
  }
  const st_tensor **order = malloc(f->n * sizeof *order);
  if (order == NULL) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", f->label);
  for (size_t i = 0; i < f->n; i++) order[i] = &f->tensors[i];
  qsort(order, f->n, sizeof *order, cmp_tensor_range);
  msc_status rc = MSC_OK;
  size_t expected = 0;
  const char *prev = NULL;
  for (size_t i = 0; i < f->n && rc == MSC_OK; i++) {
    const st_tensor *t = order[i];
    if (t->begin < expected)
      rc = msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\" (bytes %zu..%zu) overlaps tensor \"%s\"", f->label,
                     t->name, t->begin, t->end, prev);
    else if (t->begin > expected)
      rc = msci_fail(MSC_E_BAD_FORMAT,
                     "%s: tensor \"%s\" starts at byte %zu, leaving bytes %zu..%zu of the "
                     "data buffer unindexed (a hole)",
                     f->label, t->name, t->begin, expected, t->begin);
    expected = t->end;
    prev = t->name;
  }
  if (rc == MSC_OK && expected != f->data_len)
    rc = msci_fail(MSC_E_BAD_FORMAT,
                   "%s: data buffer is %zu bytes but the tensors end at byte %zu (bytes "
                   "after it are unindexed)",
                   f->label, f->data_len, expected);
  free(order);
  return rc;
}

/* Validates f->bytes[0..len) and fills the rest of f. */
static msc_status parse(msci_st_file *f) {
  const char *label = f->label;
  if (f->len < 8)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: %zu bytes, too short for the 8-byte header length of a "
                     "safetensors file",
                     label, f->len);
  uint64_t hlen = load_le64(f->bytes);
  if (hlen == 0) return msci_fail(MSC_E_BAD_FORMAT, "%s: header length is 0", label);
  if (hlen > MSCI_ST_MAX_HEADER)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: header length %llu exceeds the limit of %llu bytes",
                     label, (unsigned long long)hlen, (unsigned long long)MSCI_ST_MAX_HEADER);
  if (hlen > (uint64_t)(f->len - 8))
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: header length %llu exceeds the %zu bytes after the length field",
                     label, (unsigned long long)hlen, f->len - 8);
  const char *header = (const char *)f->bytes + 8;
  size_t n = (size_t)hlen;
  if (header[0] != '{')
    return msci_fail(MSC_E_BAD_FORMAT, "%s: header does not start with '{'", label);

  json_error_t err;
  f->root = json_loadb(header, n, JSON_REJECT_DUPLICATES, &err);
  if (f->root == NULL && json_error_code(&err) == json_error_out_of_memory)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory parsing the %zu-byte header",
                     label, n);
  if (f->root == NULL)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: header is not valid JSON: %s (at byte %d)", label,
                     err.text, err.position);
  if (!json_is_object(f->root))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: header is not a JSON object", label);
  f->data = f->bytes + 8 + n;
  f->data_len = f->len - 8 - n;

  size_t entries = json_object_size(f->root);
  json_t *meta = json_object_get(f->root, META_KEY);
  size_t nt = entries - (meta != NULL ? 1 : 0);
  if (meta != NULL) {
    msc_status rc = parse_metadata(f, meta);
    if (rc != MSC_OK) return rc;
  }
  if (nt > 0) {
    /* nt is bounded by the header bytes actually present: every entry takes more
     * characters than sizeof(st_tensor). */
    f->tensors = calloc(nt, sizeof *f->tensors);
    if (f->tensors == NULL)
      return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for %zu tensors", label, nt);
  }
  const char *key;
  json_t *value;
  size_t i = 0;
  json_object_foreach(f->root, key, value) {
    if (strcmp(key, META_KEY) == 0) continue;
    if (i >= nt) /* cannot happen: json_object_size counts every key */
      return msci_fail(MSC_E_INTERNAL, "%s: header changed while being read", label);
    msc_status rc = parse_tensor(f, key, value, &f->tensors[i]);
    if (rc != MSC_OK) return rc;
    i++;
  }
  f->n = i;
  msc_status rc = check_tiling(f);
  if (rc != MSC_OK) return rc;
  if (f->n > 1) qsort(f->tensors, f->n, sizeof *f->tensors, cmp_tensor_name);
  return MSC_OK;
}

static msc_status finish_open(msci_st_file *f, msci_st_file **out) {
  msc_status rc = parse(f);
  if (rc != MSC_OK) {
    msci_st_close(f);
    return rc;
  }
  *out = f;
  return MSC_OK;
}

msc_status msci_st_open_memory(const void *bytes, size_t len, msci_st_file **out) {
  if (out == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: out is NULL");
  if (bytes == NULL && len != 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: bytes is NULL");
  msci_st_file *f = calloc(1, sizeof *f);
  if (f == NULL) return msci_fail(MSC_E_OUT_OF_MEMORY, "safetensors: out of memory");
  f->label = dup_string("<memory>");
  f->bytes = malloc(len > 0 ? len : 1);
  if (f->label == NULL || f->bytes == NULL) {
    msci_st_close(f);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "safetensors: out of memory for %zu bytes", len);
  }
  if (len > 0) memcpy(f->bytes, bytes, len);
  f->len = len;
  return finish_open(f, out);
}

msc_status msci_st_open(const char *path, msci_st_file **out) {
  if (path == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: %s is NULL",
                     path == NULL ? "path" : "out");
  unsigned char *bytes;
  size_t size;
  MSCI_TRY(msci_file_read_all(path, &bytes, &size));
  msci_st_file *f = calloc(1, sizeof *f);
  if (f != NULL) f->label = dup_string(path);
  if (f == NULL || f->label == NULL) {
    free(bytes);
    msci_st_close(f);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, size);
  }
  f->bytes = bytes;
  f->len = size;
  return finish_open(f, out);
}

/* ------------------------------------------------------------------------------ */
/* Getters                                                                         */
/* ------------------------------------------------------------------------------ */

static const st_tensor *find(const msci_st_file *f, const char *name) {
  if (f == NULL || name == NULL || f->n == 0) return NULL;
  st_tensor key;
  key.name = name;
  return bsearch(&key, f->tensors, f->n, sizeof *f->tensors, cmp_tensor_name);
}

const char *msci_st_meta_get(const msci_st_file *f, const char *key) {
  if (f == NULL || key == NULL || f->meta == NULL) return NULL;
  return json_string_value(json_object_get(f->meta, key));
}

size_t msci_st_meta_count(const msci_st_file *f) {
  return f == NULL ? 0 : f->n_meta;
}

const char *msci_st_meta_key(const msci_st_file *f, size_t i) {
  return f == NULL || i >= f->n_meta ? NULL : f->meta_keys[i];
}

size_t msci_st_count(const msci_st_file *f) {
  return f == NULL ? 0 : f->n;
}

const char *msci_st_name(const msci_st_file *f, size_t i) {
  return f == NULL || i >= f->n ? NULL : f->tensors[i].name;
}

const char *msci_st_dtype(const msci_st_file *f, const char *name) {
  const st_tensor *t = find(f, name);
  return t == NULL ? NULL : k_dtypes[t->dtype].name;
}

static msc_status lookup(const msci_st_file *f, const char *name, const st_tensor **t) {
  if (f == NULL || name == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: %s is NULL",
                     f == NULL ? "file" : "tensor name");
  *t = find(f, name);
  if (*t == NULL) return msci_fail(MSC_E_NOT_FOUND, "%s: no tensor \"%s\"", f->label, name);
  return MSC_OK;
}

msc_status msci_st_shape(const msci_st_file *f, const char *name, int32_t *ndim,
                         int64_t *dims) {
  if (ndim == NULL || dims == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: %s is NULL",
                     ndim == NULL ? "ndim" : "dims");
  const st_tensor *t;
  msc_status rc = lookup(f, name, &t);
  if (rc != MSC_OK) return rc;
  for (size_t i = 0; i < t->ndim; i++)
    dims[i] = (int64_t)json_integer_value(json_array_get(t->shape, i));
  *ndim = t->ndim;
  return MSC_OK;
}

msc_status msci_st_raw(const msci_st_file *f, const char *name, const void **bytes,
                       size_t *nbytes) {
  if (bytes == NULL || nbytes == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: %s is NULL",
                     bytes == NULL ? "bytes" : "nbytes");
  const st_tensor *t;
  msc_status rc = lookup(f, name, &t);
  if (rc != MSC_OK) return rc;
  *bytes = f->data + t->begin;
  *nbytes = t->end - t->begin;
  return MSC_OK;
}

msc_status msci_st_read_f32(const msci_st_file *f, const char *name, float *dst, size_t n) {
  const st_tensor *t;
  msc_status rc = lookup(f, name, &t);
  if (rc != MSC_OK) return rc;
  enum st_dtype dt = (enum st_dtype)t->dtype;
  if (dt != DT_F32 && dt != DT_F16 && dt != DT_BF16 && dt != DT_F64)
    return msci_fail(MSC_E_UNSUPPORTED,
                     "%s: tensor \"%s\" has dtype %s, which cannot be read as float32 "
                     "(F32, F16, BF16 and F64 can)",
                     f->label, name, k_dtypes[dt].name);
  if ((uint64_t)n != t->count)
    return msci_fail(MSC_E_SHAPE, "%s: tensor \"%s\" has %llu elements, not %zu", f->label,
                     name, (unsigned long long)t->count, n);
  if (n == 0) return MSC_OK;
  if (dst == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: dst is NULL");
  const unsigned char *p = f->data + t->begin;
  switch (dt) {
  case DT_F32:
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, p, n * sizeof *dst);
#else
    for (size_t i = 0; i < n; i++, p += 4)
      dst[i] = f32_from_bits((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
#endif
    break;
  case DT_F16:
    for (size_t i = 0; i < n; i++, p += 2) dst[i] = f16_to_f32((uint16_t)(p[0] | p[1] << 8));
    break;
  case DT_BF16:
    for (size_t i = 0; i < n; i++, p += 2)
      dst[i] = f32_from_bits((uint32_t)p[0] << 16 | (uint32_t)p[1] << 24);
    break;
  case DT_F64:
    for (size_t i = 0; i < n; i++, p += 8) {
      uint64_t u = load_le64(p);
      double d;
      memcpy(&d, &u, sizeof d);
      dst[i] = (float)d;
    }
    break;
  default: break;
  }
  return MSC_OK;
}

/* ------------------------------------------------------------------------------ */
/* Writing                                                                         */
/* ------------------------------------------------------------------------------ */

static int cmp_tensor_in_ptr(const void *a, const void *b) {
  return strcmp((*(const msci_st_tensor_in *const *)a)->name,
                (*(const msci_st_tensor_in *const *)b)->name);
}

static int write_floats_le(int fd, const float *data, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  return msci_file_write_all(fd, data, n * sizeof *data);
#else
  unsigned char buf[4096];
  while (n > 0) {
    size_t k = n < sizeof buf / 4 ? n : sizeof buf / 4;
    for (size_t i = 0; i < k; i++) {
      uint32_t u = bits_from_f32(data[i]);
      for (int b = 0; b < 4; b++) buf[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
    int e = msci_file_write_all(fd, buf, 4 * k);
    if (e != 0) return e;
    data += k;
    n -= k;
  }
  return 0;
#endif
}

/* Validates the inputs and builds the padded header (8-byte length included).
 * *order receives the tensors sorted by name; *counts their element counts. */
static msc_status build_header(const char *path, const msci_st_meta *meta, size_t n_meta,
                               const msci_st_tensor_in *tensors, size_t n_tensors,
                               const msci_st_tensor_in ***order_out, uint64_t **counts_out,
                               unsigned char **header_out, size_t *header_len_out) {
  msc_status rc = MSC_OK;
  const msci_st_tensor_in **order = NULL;
  uint64_t *counts = NULL;
  json_t *root = json_object();
  char *text = NULL;
  unsigned char *header = NULL;
  if (root == NULL) return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);

  if (n_meta > 0) {
    json_t *jm = json_object();
    if (jm == NULL || json_object_set_new(root, META_KEY, jm) != 0) {
      rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);
      goto done;
    }
    for (size_t i = 0; i < n_meta; i++) {
      if (meta[i].key == NULL || meta[i].value == NULL) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: metadata entry %zu has a NULL %s", path, i,
                       meta[i].key == NULL ? "key" : "value");
        goto done;
      }
      if (json_object_get(jm, meta[i].key) != NULL) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: metadata key \"%s\" appears twice", path,
                       meta[i].key);
        goto done;
      }
      json_t *s = json_string(meta[i].value);
      if (s == NULL) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "%s: metadata value of \"%s\" is not valid UTF-8", path, meta[i].key);
        goto done;
      }
      if (json_object_set_new(jm, meta[i].key, s) != 0) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "%s: metadata key %zu is not valid UTF-8 (or out of memory)", path, i);
        goto done;
      }
    }
  }

  if (n_tensors > 0) {
    order = malloc(n_tensors * sizeof *order);
    counts = malloc(n_tensors * sizeof *counts);
    if (order == NULL || counts == NULL) {
      rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);
      goto done;
    }
  }
  for (size_t i = 0; i < n_tensors; i++) {
    const msci_st_tensor_in *t = &tensors[i];
    if (t->name == NULL) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: tensor %zu has a NULL name", path, i);
      goto done;
    }
    size_t len = strlen(t->name);
    if (len == 0 || len > MSCI_ST_MAX_NAME || strcmp(t->name, META_KEY) == 0) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: tensor %zu: name \"%.40s\" is empty, longer than %d bytes or "
                     "reserved",
                     path, i, t->name, MSCI_ST_MAX_NAME);
      goto done;
    }
    if (t->ndim < 0 || t->ndim > MSCI_ST_MAX_DIMS || (t->ndim > 0 && t->dims == NULL)) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: tensor \"%s\": ndim %d is not in 0..%d (or dims is NULL)", path,
                     t->name, (int)t->ndim, MSCI_ST_MAX_DIMS);
      goto done;
    }
    uint64_t count = 1;
    int overflow = 0, zero = 0;
    for (int32_t d = 0; d < t->ndim; d++) {
      if (t->dims[d] < 0) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: tensor \"%s\": dims[%d] = %lld < 0", path,
                       t->name, (int)d, (long long)t->dims[d]);
        goto done;
      }
      zero |= t->dims[d] == 0;
      if (__builtin_mul_overflow(count, (uint64_t)t->dims[d], &count) ||
          count > (uint64_t)INT64_MAX / 4)
        overflow = 1;
    }
    if (zero)
      count = 0;
    else if (overflow) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: tensor \"%s\": element count overflows", path,
                     t->name);
      goto done;
    }
    if (count > 0 && t->data == NULL) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: tensor \"%s\": data is NULL", path, t->name);
      goto done;
    }
    order[i] = t;
    counts[i] = count; /* by input index for now; reordered below */
  }
  if (n_tensors > 1) {
    qsort(order, n_tensors, sizeof *order, cmp_tensor_in_ptr);
    for (size_t i = 1; i < n_tensors; i++)
      if (strcmp(order[i - 1]->name, order[i]->name) == 0) {
        rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: tensor name \"%s\" appears twice", path,
                       order[i]->name);
        goto done;
      }
  }
  uint64_t offset = 0;
  for (size_t i = 0; i < n_tensors; i++) {
    const msci_st_tensor_in *t = order[i];
    uint64_t count = counts[t - tensors];
    uint64_t nbytes = count * 4; /* cannot overflow: count <= INT64_MAX / 4 */
    if (__builtin_add_overflow(offset, nbytes, &offset) || offset > (uint64_t)INT64_MAX) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: total data size overflows", path);
      goto done;
    }
    json_t *jshape = json_array();
    json_t *joffs = json_pack("[II]", (json_int_t)(offset - nbytes), (json_int_t)offset);
    json_t *entry = json_object();
    int bad = jshape == NULL || joffs == NULL || entry == NULL;
    for (int32_t d = 0; !bad && d < t->ndim; d++)
      bad = json_array_append_new(jshape, json_integer((json_int_t)t->dims[d])) != 0;
    if (!bad) bad = json_object_set_new(entry, "dtype", json_string("F32")) != 0;
    if (!bad) {
      bad = json_object_set_new(entry, "shape", jshape) != 0;
      jshape = NULL;
    }
    if (!bad) {
      bad = json_object_set_new(entry, "data_offsets", joffs) != 0;
      joffs = NULL;
    }
    if (bad) {
      json_decref(jshape);
      json_decref(joffs);
      json_decref(entry);
      rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory building the header", path);
      goto done;
    }
    if (json_object_set_new(root, t->name, entry) != 0) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "%s: tensor name \"%.40s\" is not valid UTF-8 (or out of memory)", path,
                     t->name);
      goto done;
    }
  }
  /* counts[] back in sorted order for the caller. */
  if (n_tensors > 0) {
    uint64_t *sorted = malloc(n_tensors * sizeof *sorted);
    if (sorted == NULL) {
      rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);
      goto done;
    }
    for (size_t i = 0; i < n_tensors; i++) sorted[i] = counts[order[i] - tensors];
    free(counts);
    counts = sorted;
  }

  text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
  if (text == NULL) {
    rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory serialising the header", path);
    goto done;
  }
  size_t tlen = strlen(text);
  size_t padded = (tlen + 7) & ~(size_t)7;
  if ((uint64_t)padded > MSCI_ST_MAX_HEADER) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: header of %zu bytes exceeds the limit of %llu",
                   path, padded, (unsigned long long)MSCI_ST_MAX_HEADER);
    goto done;
  }
  header = malloc(8 + padded);
  if (header == NULL) {
    rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);
    goto done;
  }
  store_le64(header, (uint64_t)padded);
  memcpy(header + 8, text, tlen);
  memset(header + 8 + tlen, ' ', padded - tlen);
  *header_len_out = 8 + padded;
  *header_out = header;
  *order_out = order;
  *counts_out = counts;
  header = NULL;
  order = NULL;
  counts = NULL;
done:
  free(header);
  free(text);
  json_decref(root);
  free(order);
  free(counts);
  return rc;
}

static int fsync_retry(int fd) {
  int r;
  do r = fsync(fd);
  while (r != 0 && errno == EINTR);
  return r == 0 ? 0 : errno;
}

msc_status msci_st_write(const char *path, const msci_st_meta *meta, size_t n_meta,
                         const msci_st_tensor_in *tensors, size_t n_tensors) {
  if (path == NULL || path[0] == '\0')
    return msci_fail(MSC_E_INVALID_ARGUMENT, "safetensors: path is NULL or empty");
  if ((meta == NULL && n_meta > 0) || (tensors == NULL && n_tensors > 0))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", path,
                     meta == NULL && n_meta > 0 ? "meta" : "tensors");
  const msci_st_tensor_in **order = NULL;
  uint64_t *counts = NULL;
  unsigned char *header = NULL;
  size_t header_len = 0;
  msc_status rc = build_header(path, meta, n_meta, tensors, n_tensors, &order, &counts, &header,
                               &header_len);
  if (rc != MSC_OK) return rc;

  /* "<dir>/.<base>.tmpXXXXXX" next to path, so the rename stays on one file system. */
  const char *slash = strrchr(path, '/');
  size_t dir_len = slash == NULL ? 0 : (size_t)(slash - path);
  const char *base = slash == NULL ? path : slash + 1;
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  char *dir = malloc(dir_len + 2);
  int fd = -1;
  if (tmp == NULL || dir == NULL) {
    rc = msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);
    goto done;
  }
  if (base[0] == '\0') {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT, "%s: path names a directory", path);
    goto done;
  }
  if (slash == NULL)
    memcpy(dir, ".", 2);
  else if (dir_len == 0)
    memcpy(dir, "/", 2);
  else {
    memcpy(dir, path, dir_len);
    dir[dir_len] = '\0';
  }
  snprintf(tmp, plen + 16, "%.*s%s.%s.tmpXXXXXX", (int)dir_len, path, slash == NULL ? "" : "/",
           base);
#if defined(_GNU_SOURCE)
  fd = mkostemp(tmp, O_CLOEXEC); /* mkstemp, closed on exec from the start */
#else
  fd = mkstemp(tmp);
  if (fd >= 0) (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
#endif
  if (fd < 0) {
    rc = msci_fail(MSC_E_IO, "%s: cannot create a temporary file in %s: %s", path, dir,
                   strerror(errno));
    goto done;
  }
  int e = 0;
  const char *what = "write";
  if (fchmod(fd, 0644) != 0) {
    e = errno;
    what = "chmod";
  }
  if (e == 0) e = msci_file_write_all(fd, header, header_len);
  for (size_t i = 0; e == 0 && i < n_tensors; i++)
    if (counts[i] > 0) e = write_floats_le(fd, order[i]->data, (size_t)counts[i]);
  if (e == 0 && (e = fsync_retry(fd)) != 0) what = "fsync";
  int c = close(fd);
  fd = -1;
  if (e == 0 && c != 0) {
    e = errno;
    what = "close";
  }
  if (e == 0 && rename(tmp, path) != 0) {
    e = errno;
    what = "rename";
  }
  if (e != 0) {
    unlink(tmp);
    rc = msci_fail(MSC_E_IO,
                   "%s: %s of temporary file %s failed: %s (the file was not "
                   "changed)",
                   path, what, tmp, strerror(e));
    goto done;
  }
  /* Make the rename itself durable. Some file systems refuse fsync on a directory
   * (EINVAL): nothing more can be done there, and that is not an error. */
  int dfd;
  do dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  while (dfd < 0 && errno == EINTR);
  if (dfd < 0) {
    rc = msci_fail(MSC_E_IO, "%s: written, but its directory %s cannot be opened to sync: %s",
                   path, dir, strerror(errno));
    goto done;
  }
  e = fsync_retry(dfd);
  close(dfd);
  if (e != 0 && e != EINVAL && e != ENOTSUP && e != EROFS)
    rc = msci_fail(MSC_E_IO, "%s: written, but fsync of its directory %s failed: %s", path, dir,
                   strerror(e));
done:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  free(tmp);
  free(dir);
  free(header);
  free(order);
  free(counts);
  return rc;
}
