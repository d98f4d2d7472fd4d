/*
 * npy.c — a strict reader of NumPy .npy files (npy.h; docs/data.md, "NumPy arrays").
 *
 * The whole file is read into one malloc'd buffer (msci_file_read_all, msci_npy_open) or
 * copied (msci_npy_open_memory), then validated in place; no allocation depends on a
 * header value. Validation, in this order, every failure MSC_E_BAD_FORMAT naming the
 * input and the fault:
 *   - the magic "\x93NUMPY"; the version 1.0, 2.0 or 3.0 (any other minor or major is
 *     refused); the header length (u16 LE for 1.0, u32 LE otherwise) not past the end
 *     and not 0;
 *   - the header's last byte is '\n'; every other byte is printable ASCII or a tab for
 *     1.0 and 2.0; for 3.0 it is well-formed UTF-8 (no overlong forms, surrogates or
 *     code points past U+10FFFF) without control bytes;
 *   - the header is one Python dict literal, followed only by spaces or tabs, with
 *     exactly the keys 'descr', 'fortran_order' and 'shape', each once (unknown keys are
 *     refused, as numpy.load refuses them; a duplicate is refused though Python would
 *     keep the last), in any order, with an optional trailing comma. Strings are quoted
 *     with ' or "; escapes (a backslash) and the other quote character inside a string
 *     are refused rather than interpreted;
 *   - 'descr' is a string naming a supported dtype: '<' or '>' and i2, u2, i4, u4, i8,
 *     f2, f4, f8, or '|', '<' or '>' and u1. '=' (native order), a list (a structured
 *     dtype), objects ('O'), strings, void and other kinds are refused by name;
 *   - 'fortran_order' is True or False (nothing else: not 1, not 'True');
 *   - 'shape' is a tuple of at most MSCI_NPY_MAX_DIMS decimal integers: '()' for a
 *     scalar, '(n,)' for one dimension ('(n)' is an int, refused), no sign, no leading
 *     zero, each at most INT64_MAX; their product times the item size must not overflow
 *     (a product with a 0 dimension is 0 whatever the others are);
 *   - the data after the header is exactly count × itemsize bytes: fewer is a truncated
 *     file, more is refused too (a file written by numpy holds exactly one array; extra
 *     bytes mean a concatenation or a corrupt header).
 * The data need not be aligned (elements are loaded byte by byte), and the header's
 * padding to 64 bytes is not required.
 *
 * The file reader (msci_npy_file, at the end) runs the same checks on the preamble and
 * header read with pread, takes the file's size for the input's, and converts boxes of
 * the array with the same convert_run; box_plan there says how a box is split in reads.
 */
#include "data/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/file_read.h"
#include "common/internal.h"

/* What a validated header says; shared by the in-memory reader (msci_npy) and the file
 * reader (msci_npy_file, at the end of this file). */
typedef struct npy_header {
  int64_t dims[MSCI_NPY_MAX_DIMS];
  int32_t ndim;
  int32_t dtype;
  int32_t itemsize;
  int32_t big;
  int32_t fortran;
  int32_t version;
  uint64_t count;    /* elements (fits in size_t once the data size is checked) */
  uint64_t nbytes;   /* count × itemsize, overflow-checked */
  uint64_t data_off; /* preamble + header: where the array's bytes start */
} npy_header;

struct msci_npy {
  char *label;          /* the path, or "<memory>", for messages */
  unsigned char *bytes; /* the whole file */
  size_t len;
  const unsigned char *data; /* the array's bytes inside bytes */
  size_t data_len;
  size_t count;
  npy_header h;
};

/* ------------------------------------------------------------------------------ */
/* Dtypes                                                                          */
/* ------------------------------------------------------------------------------ */

static const struct {
  int32_t dtype;
  char kind, size;
  const char *name;
} k_dtypes[] = {
    {MSCI_NPY_U8, 'u', '1', "uint8"},    {MSCI_NPY_I16, 'i', '2', "int16"},
    {MSCI_NPY_U16, 'u', '2', "uint16"},  {MSCI_NPY_I32, 'i', '4', "int32"},
    {MSCI_NPY_U32, 'u', '4', "uint32"},  {MSCI_NPY_I64, 'i', '8', "int64"},
    {MSCI_NPY_F16, 'f', '2', "float16"}, {MSCI_NPY_F32, 'f', '4', "float32"},
    {MSCI_NPY_F64, 'f', '8', "float64"},
};
#define N_DTYPES (sizeof k_dtypes / sizeof k_dtypes[0])

const char *msci_npy_dtype_name(int32_t dtype) {
  for (size_t i = 0; i < N_DTYPES; i++)
    if (k_dtypes[i].dtype == dtype) return k_dtypes[i].name;
  return "unknown";
}

/* ------------------------------------------------------------------------------ */
/* Element conversion                                                              */
/* ------------------------------------------------------------------------------ */

static uint16_t load16(const unsigned char *p, int big) {
  return big ? (uint16_t)((p[0] << 8) | p[1]) : (uint16_t)((p[1] << 8) | p[0]);
}

static uint32_t load32(const unsigned char *p, int big) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | p[big ? i : 3 - i];
  return v;
}

static uint64_t load64(const unsigned char *p, int big) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[big ? i : 7 - i];
  return v;
}

static float f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static double f64_from_bits(uint64_t u) {
  double d;
  memcpy(&d, &u, sizeof d);
  return d;
}

/* Two's complement bits -> signed value, without implementation-defined casts. */
static int64_t i64_from_bits(uint64_t u) {
  return u >> 63 ? -(int64_t)(~u) - 1 : (int64_t)u;
}

/* IEEE binary16 -> binary32, exact for every input: a half's 11-bit significand and
 * exponent range fit in a float. Infinities stay infinities, a NaN stays a NaN with its
 * payload in the high significand bits, and a subnormal half (exponent field 0: value
 * man × 2^-24) becomes a normal float after shifting its leading 1 into place. */
static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu;
  uint32_t man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1Fu) { /* infinity (man 0) or NaN */
    bits = sign | 0x7F800000u | (man << 13);
  } else if (exp != 0) { /* normal: rebias 15 -> 127 */
    bits = sign | ((exp + 127u - 15u) << 23) | (man << 13);
  } else if (man == 0) { /* signed zero */
    bits = sign;
  } else {
    /* subnormal: man × 2^-24 with man < 2^10. Shift until bit 10 is set; each shift
     * lowers the exponent by one from that of 2^-14 (the smallest normal half). */
    uint32_t e = 127u - 14u;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      e--;
    }
    bits = sign | (e << 23) | ((man & 0x3FFu) << 13);
  }
  return f32_from_bits(bits);
}

/* Converts n elements starting at src, stride bytes apart, to dst[0], dst[ds], ...,
 * dst[(n-1) ds]. Integer and float64 conversions round to nearest (C's conversions, in
 * the default rounding mode). Shared by both readers: one conversion for every path. */
static void convert_run(const npy_header *a, const unsigned char *src, size_t stride, size_t n,
                        float *dst, size_t ds) {
  int big = a->big;
  switch (a->dtype) {
  case MSCI_NPY_U8:
    for (size_t i = 0; i < n; i++) dst[i * ds] = (float)src[i * stride];
    break;
  case MSCI_NPY_I16:
    for (size_t i = 0; i < n; i++) {
      uint16_t u = load16(src + i * stride, big);
      dst[i * ds] = (float)(u >= 0x8000u ? (int32_t)u - 65536 : (int32_t)u);
    }
    break;
  case MSCI_NPY_U16:
    for (size_t i = 0; i < n; i++) dst[i * ds] = (float)load16(src + i * stride, big);
    break;
  case MSCI_NPY_I32:
    for (size_t i = 0; i < n; i++) {
      uint32_t u = load32(src + i * stride, big);
      dst[i * ds] = (float)(u >> 31 ? -(int64_t)(~u) - 1 : (int64_t)u);
    }
    break;
  case MSCI_NPY_U32:
    for (size_t i = 0; i < n; i++) dst[i * ds] = (float)load32(src + i * stride, big);
    break;
  case MSCI_NPY_I64:
    for (size_t i = 0; i < n; i++)
      dst[i * ds] = (float)i64_from_bits(load64(src + i * stride, big));
    break;
  case MSCI_NPY_F16:
    for (size_t i = 0; i < n; i++) dst[i * ds] = f16_to_f32(load16(src + i * stride, big));
    break;
  case MSCI_NPY_F32:
    for (size_t i = 0; i < n; i++) dst[i * ds] = f32_from_bits(load32(src + i * stride, big));
    break;
  case MSCI_NPY_F64:
    for (size_t i = 0; i < n; i++)
      dst[i * ds] = (float)f64_from_bits(load64(src + i * stride, big));
    break;
  default: break; /* unreachable: the dtype was validated at open */
  }
}

/* ------------------------------------------------------------------------------ */
/* Header parsing                                                                  */
/* ------------------------------------------------------------------------------ */

typedef struct parser {
  const char *label;
  const char *p, *end; /* the dict and its padding, the final '\n' excluded */
  const char *start;   /* start of the header, for offsets in messages */
} parser;

static void skip_ws(parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t')) ps->p++;
}

/* Describes the next character for a message: "'x'" or "the end of the header". */
static const char *next_desc(const parser *ps, char *buf, size_t cap) {
  if (ps->p >= ps->end) return "the end of the header";
  unsigned char c = (unsigned char)*ps->p;
  if (c >= 0x20 && c < 0x7F)
    snprintf(buf, cap, "'%c' at header offset %zu", (char)c, (size_t)(ps->p - ps->start));
  else
    snprintf(buf, cap, "byte 0x%02x at header offset %zu", c, (size_t)(ps->p - ps->start));
  return buf;
}

/* A quoted string without escapes: on success *s and *n give its contents. */
static msc_status parse_string(parser *ps, const char *what, const char **s, size_t *n) {
  char buf[64];
  if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"'))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %s is not a quoted string (found %s)", ps->label,
                     what, next_desc(ps, buf, sizeof buf));
  char q = *ps->p++;
  const char *b = ps->p;
  while (ps->p < ps->end && *ps->p != q) {
    if (*ps->p == '\\')
      return msci_fail(MSC_E_BAD_FORMAT,
                       "%s: %s: escape sequences in strings are not supported (header "
                       "offset %zu)",
                       ps->label, what, (size_t)(ps->p - ps->start));
    if (*ps->p == '\'' || *ps->p == '"')
      return msci_fail(MSC_E_BAD_FORMAT, "%s: %s: nested quote in a string (header offset %zu)",
                       ps->label, what, (size_t)(ps->p - ps->start));
    ps->p++;
  }
  if (ps->p >= ps->end)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %s: unterminated string", ps->label, what);
  *s = b;
  *n = (size_t)(ps->p - b);
  ps->p++;
  return MSC_OK;
}

/* How many bytes of a header string a message shows: at most 32, never cutting a UTF-8
 * sequence (version 3.0 strings may hold any code point). */
static int shown_len(const char *s, size_t n) {
  if (n <= 32) return (int)n;
  n = 32;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--;
  return (int)n;
}

static int str_is(const char *s, size_t n, const char *lit) {
  return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

static msc_status parse_descr(parser *ps, npy_header *a) {
  const char *label = ps->label;
  if (ps->p < ps->end && (*ps->p == '[' || *ps->p == '{'))
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: 'descr' is a %s: structured dtypes are not supported", label,
                     *ps->p == '[' ? "list" : "dict");
  const char *s;
  size_t n;
  MSCI_TRY(parse_string(ps, "'descr'", &s, &n));
  int shown = shown_len(s, n);
  if (n == 3) {
    for (size_t i = 0; i < N_DTYPES; i++) {
      if (s[1] != k_dtypes[i].kind || s[2] != k_dtypes[i].size) continue;
      int single = k_dtypes[i].size == '1';
      if (s[0] == '<' || s[0] == '>' || (single && s[0] == '|')) {
        a->dtype = k_dtypes[i].dtype;
        a->itemsize = k_dtypes[i].size - '0';
        a->big = (s[0] == '>' && !single);
        return MSC_OK;
      }
      if (s[0] == '=')
        return msci_fail(MSC_E_BAD_FORMAT,
                         "%s: 'descr' '%.3s' has native byte order '=', which a file cannot "
                         "have (numpy writes '<' or '>')",
                         label, s);
      return msci_fail(MSC_E_BAD_FORMAT, "%s: 'descr' '%.3s' has no valid byte order", label,
                       s);
    }
  }
  /* (no byte of a string is NUL: control bytes were refused, so strchr is safe) */
  const char *kind = n > 0 && strchr("<>|=", s[0]) != NULL ? s + 1 : s;
  if (kind < s + n && *kind == 'O')
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: 'descr' '%.*s' is an object array (pickled Python objects), which is "
                     "not supported",
                     label, shown, s);
  if (kind < s + n && strchr("SUaVc", *kind) != NULL)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: 'descr' '%.*s' (%s) is not supported", label, shown,
                     s,
                     *kind == 'c'   ? "complex"
                     : *kind == 'V' ? "void"
                                    : "strings");
  return msci_fail(MSC_E_BAD_FORMAT,
                   "%s: unsupported dtype '%.*s' (supported: u1, i2, u2, i4, u4, i8, f2, f4, "
                   "f8, each '<' or '>')",
                   label, shown, s);
}

static msc_status parse_fortran(parser *ps, npy_header *a) {
  const char *b = ps->p;
  while (ps->p < ps->end &&
         (*ps->p == '_' || (*ps->p >= 'a' && *ps->p <= 'z') ||
          (*ps->p >= 'A' && *ps->p <= 'Z') || (*ps->p >= '0' && *ps->p <= '9')))
    ps->p++;
  size_t n = (size_t)(ps->p - b);
  if (str_is(b, n, "True")) {
    a->fortran = 1;
    return MSC_OK;
  }
  if (str_is(b, n, "False")) {
    a->fortran = 0;
    return MSC_OK;
  }
  char buf[64];
  if (n == 0)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: 'fortran_order' is not True or False (found %s)",
                     ps->label, next_desc(ps, buf, sizeof buf));
  return msci_fail(MSC_E_BAD_FORMAT, "%s: 'fortran_order' is '%.*s', not True or False",
                   ps->label, n > 32 ? 32 : (int)n, b);
}

static msc_status parse_shape(parser *ps, npy_header *a) {
  const char *label = ps->label;
  char buf[64];
  if (ps->p >= ps->end || *ps->p != '(')
    return msci_fail(MSC_E_BAD_FORMAT, "%s: 'shape' is not a tuple (found %s)", label,
                     next_desc(ps, buf, sizeof buf));
  ps->p++;
  int32_t nd = 0;
  int comma = 0; /* a comma followed the last dimension */
  for (;;) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ')') {
      if (nd == 1 && !comma)
        return msci_fail(MSC_E_BAD_FORMAT,
                         "%s: 'shape' (%lld) is an int, not a tuple (one dimension is "
                         "written (n,))",
                         label, (long long)a->dims[0]);
      ps->p++;
      break;
    }
    if (nd > 0 && !comma)
      return msci_fail(MSC_E_BAD_FORMAT, "%s: 'shape': expected ',' or ')', found %s", label,
                       next_desc(ps, buf, sizeof buf));
    if (ps->p < ps->end && *ps->p == '-')
      return msci_fail(MSC_E_BAD_FORMAT, "%s: 'shape' dimension %d is negative", label, nd);
    if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
      return msci_fail(MSC_E_BAD_FORMAT,
                       "%s: 'shape' dimension %d is not an integer (found %s)", label, nd,
                       next_desc(ps, buf, sizeof buf));
    if (nd == MSCI_NPY_MAX_DIMS)
      return msci_fail(MSC_E_BAD_FORMAT, "%s: 'shape' has more than %d dimensions", label,
                       MSCI_NPY_MAX_DIMS);
    if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
      return msci_fail(MSC_E_BAD_FORMAT, "%s: 'shape' dimension %d has a leading zero", label,
                       nd);
    uint64_t v = 0;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
      uint64_t digit = (uint64_t)(*ps->p - '0');
      if (v > ((uint64_t)INT64_MAX - digit) / 10)
        return msci_fail(MSC_E_BAD_FORMAT, "%s: 'shape' dimension %d is absurd (beyond %lld)",
                         label, nd, (long long)INT64_MAX);
      v = v * 10 + digit;
      ps->p++;
    }
    a->dims[nd++] = (int64_t)v;
    skip_ws(ps);
    comma = 0;
    if (ps->p < ps->end && *ps->p == ',') {
      comma = 1;
      ps->p++;
    }
  }
  a->ndim = nd;
  return MSC_OK;
}

enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, N_KEYS };
static const char *const k_keys[N_KEYS] = {"descr", "fortran_order", "shape"};

static msc_status parse_dict(parser *ps, npy_header *a) {
  const char *label = ps->label;
  char buf[64];
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '{')
    return msci_fail(MSC_E_BAD_FORMAT, "%s: the header is not a dict (found %s)", label,
                     next_desc(ps, buf, sizeof buf));
  ps->p++;
  int seen[N_KEYS] = {0};
  int need_sep = 0;
  for (;;) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
      ps->p++;
      break;
    }
    if (need_sep)
      return msci_fail(MSC_E_BAD_FORMAT, "%s: header dict: expected ',' or '}', found %s",
                       label, next_desc(ps, buf, sizeof buf));
    const char *k;
    size_t kn;
    MSCI_TRY(parse_string(ps, "a header dict key", &k, &kn));
    int key = -1;
    for (int i = 0; i < N_KEYS; i++)
      if (str_is(k, kn, k_keys[i])) key = i;
    if (key < 0)
      return msci_fail(MSC_E_BAD_FORMAT,
                       "%s: unknown header key '%.*s' (a header has exactly 'descr', "
                       "'fortran_order' and 'shape')",
                       label, shown_len(k, kn), k);
    if (seen[key])
      return msci_fail(MSC_E_BAD_FORMAT, "%s: duplicate header key '%s'", label, k_keys[key]);
    seen[key] = 1;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
      return msci_fail(MSC_E_BAD_FORMAT, "%s: header dict: expected ':' after '%s', found %s",
                       label, k_keys[key], next_desc(ps, buf, sizeof buf));
    ps->p++;
    skip_ws(ps);
    if (key == KEY_DESCR)
      MSCI_TRY(parse_descr(ps, a));
    else if (key == KEY_FORTRAN)
      MSCI_TRY(parse_fortran(ps, a));
    else
      MSCI_TRY(parse_shape(ps, a));
    skip_ws(ps);
    need_sep = 1;
    if (ps->p < ps->end && *ps->p == ',') {
      ps->p++;
      need_sep = 0;
    }
  }
  skip_ws(ps);
  if (ps->p < ps->end)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %s follows the header dict (only spaces may)",
                     label, next_desc(ps, buf, sizeof buf));
  for (int i = 0; i < N_KEYS; i++)
    if (!seen[i])
      return msci_fail(MSC_E_BAD_FORMAT, "%s: the header has no '%s' key", label, k_keys[i]);
  return MSC_OK;
}

/* Checks the header's bytes (the final '\n' excluded): ASCII for versions 1 and 2,
 * UTF-8 for 3; no control byte other than a tab either way. */
static msc_status check_header_bytes(const char *label, const unsigned char *h, size_t n,
                                     int version) {
  for (size_t i = 0; i < n;) {
    unsigned char c = h[i];
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7F)
        return msci_fail(MSC_E_BAD_FORMAT, "%s: control byte 0x%02x at header offset %zu",
                         label, c, i);
      i++;
      continue;
    }
    if (version < 3)
      return msci_fail(MSC_E_BAD_FORMAT,
                       "%s: non-ASCII byte 0x%02x at header offset %zu (a version %d.0 header "
                       "is ASCII)",
                       label, c, i, version);
    /* UTF-8: length from the lead byte, then the continuation bytes, then the range. */
    size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    int ok = len > 0 && c <= 0xF4 && i + len <= n;
    uint32_t cp = ok ? (uint32_t)(c & (0x7F >> len)) : 0;
    for (size_t k = 1; ok && k < len; k++) {
      if ((h[i + k] & 0xC0) != 0x80) ok = 0;
      cp = (cp << 6) | (h[i + k] & 0x3Fu);
    }
    static const uint32_t k_min[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (ok && (cp < k_min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))) ok = 0;
    if (!ok)
      return msci_fail(MSC_E_BAD_FORMAT, "%s: invalid UTF-8 at header offset %zu", label, i);
    i += len;
  }
  return MSC_OK;
}

/* Writes "(d0, d1, ...)" into buf, cut short with "..." when it does not fit. */
static const char *shape_text(const npy_header *a, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(buf, cap, "(");
  for (int32_t i = 0; i < a->ndim && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)a->dims[i]);
  if (o < cap) snprintf(buf + o, cap - o, a->ndim == 1 ? ",)" : ")");
  if (o >= cap - 2 && cap > 4) strcpy(buf + cap - 4, "...");
  return buf;
}

/* Validates the preamble: b holds the file's first avail bytes (at least min(total, 12))
 * of total. Gives the version, the preamble's size and the header's length, which is
 * known to fit in the file. */
static msc_status parse_preamble(const char *label, const unsigned char *b, uint64_t total,
                                 int *major_out, size_t *pre_out, size_t *hlen_out) {
  if (total < 8 || memcmp(b, "\x93NUMPY", 6) != 0)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", label);
  int major = b[6], minor = b[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: unknown .npy format version %d.%d (1.0, 2.0 and 3.0 are known)",
                     label, major, minor);
  size_t pre = major == 1 ? 10 : 12;
  if (total < pre)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %llu bytes, too short for a version %d.0 preamble",
                     label, (unsigned long long)total, major);
  size_t hlen = major == 1 ? (size_t)load16(b + 8, 0) : (size_t)load32(b + 8, 0);
  if (hlen > total - pre)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: header length %zu is past the end (%llu bytes follow the preamble)",
                     label, hlen, (unsigned long long)(total - pre));
  if (hlen == 0) return msci_fail(MSC_E_BAD_FORMAT, "%s: the header is empty", label);
  *major_out = major;
  *pre_out = pre;
  *hlen_out = hlen;
  return MSC_OK;
}

/* Validates the header's hlen bytes at h (version major, after a pre-byte preamble) and
 * fills a, the element count and byte size included (overflow-checked). */
static msc_status parse_header(const char *label, const unsigned char *h, size_t hlen,
                               int major, size_t pre, npy_header *a) {
  if (h[hlen - 1] != '\n')
    return msci_fail(MSC_E_BAD_FORMAT, "%s: the header does not end with a newline", label);
  MSCI_TRY(check_header_bytes(label, h, hlen - 1, major));
  a->version = major;

  parser ps = {label, (const char *)h, (const char *)h + hlen - 1, (const char *)h};
  MSCI_TRY(parse_dict(&ps, a));

  /* Element count and byte size, overflow-checked (a 0 dimension makes both 0). */
  uint64_t count = 1;
  int overflow = 0, zero = 0;
  for (int32_t i = 0; i < a->ndim; i++) {
    if (a->dims[i] == 0) zero = 1;
    if (__builtin_mul_overflow(count, (uint64_t)a->dims[i], &count)) overflow = 1;
  }
  if (zero) count = 0;
  uint64_t nbytes = 0;
  char sbuf[96];
  if (overflow || __builtin_mul_overflow(count, (uint64_t)a->itemsize, &nbytes))
    return msci_fail(MSC_E_BAD_FORMAT, "%s: shape %s of %s: the byte size overflows", label,
                     shape_text(a, sbuf, sizeof sbuf), msci_npy_dtype_name(a->dtype));
  a->count = count;
  a->nbytes = nbytes;
  a->data_off = (uint64_t)pre + hlen;
  return MSC_OK;
}

/* Checks that a total-byte input holds exactly the header and the array's bytes. */
static msc_status check_data_size(const char *label, const npy_header *a, uint64_t total) {
  uint64_t have = total - a->data_off;
  char sbuf[96];
  if (a->nbytes > have)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: truncated: shape %s of %s needs %llu data bytes but %llu follow the "
                     "header (%llu bytes, %llu expected)",
                     label, shape_text(a, sbuf, sizeof sbuf), msci_npy_dtype_name(a->dtype),
                     (unsigned long long)a->nbytes, (unsigned long long)have,
                     (unsigned long long)total, (unsigned long long)(a->data_off + a->nbytes));
  if (a->nbytes < have)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: %llu bytes follow the header but shape %s of %s needs %llu (extra "
                     "data after the array; %llu bytes, %llu expected)",
                     label, (unsigned long long)have, shape_text(a, sbuf, sizeof sbuf),
                     msci_npy_dtype_name(a->dtype), (unsigned long long)a->nbytes,
                     (unsigned long long)total, (unsigned long long)(a->data_off + a->nbytes));
  return MSC_OK;
}

/* Validates a->bytes[0..len) and fills the rest of a. */
static msc_status parse(msci_npy *a) {
  int major = 0;
  size_t pre = 0, hlen = 0;
  MSCI_TRY(parse_preamble(a->label, a->bytes, a->len, &major, &pre, &hlen));
  MSCI_TRY(parse_header(a->label, a->bytes + pre, hlen, major, pre, &a->h));
  MSCI_TRY(check_data_size(a->label, &a->h, a->len));
  a->count = (size_t)a->h.count; /* at most nbytes <= len */
  a->data = a->bytes + a->h.data_off;
  a->data_len = (size_t)a->h.nbytes;
  return MSC_OK;
}

/* ------------------------------------------------------------------------------ */
/* Opening                                                                         */
/* ------------------------------------------------------------------------------ */

void msci_npy_close(msci_npy *npy) {
  if (npy == NULL) return;
  free(npy->bytes);
  free(npy->label);
  free(npy);
}

/* A new array that owns bytes (NULL: size bytes are allocated for it; a non-NULL buffer
 * is freed on failure too). */
static msci_npy *alloc_npy(const char *label, unsigned char *bytes, size_t size) {
  msci_npy *a = calloc(1, sizeof *a);
  if (a == NULL) {
    free(bytes);
    return NULL;
  }
  size_t n = strlen(label) + 1;
  a->label = malloc(n);
  a->bytes = bytes != NULL ? bytes : malloc(size > 0 ? size : 1);
  if (a->label == NULL || a->bytes == NULL) {
    msci_npy_close(a);
    return NULL;
  }
  memcpy(a->label, label, n);
  return a;
}

static msc_status finish_open(msci_npy *a, msci_npy **out) {
  msc_status rc = parse(a);
  if (rc != MSC_OK) {
    msci_npy_close(a);
    return rc;
  }
  *out = a;
  return MSC_OK;
}

msc_status msci_npy_open_memory(const void *data, size_t size, msci_npy **out) {
  if (out == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: out is NULL");
  if (data == NULL && size != 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: data is NULL");
  msci_npy *a = alloc_npy("<memory>", NULL, size);
  if (a == NULL)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "npy: out of memory for %zu bytes", size);
  if (size > 0) memcpy(a->bytes, data, size);
  a->len = size;
  return finish_open(a, out);
}

msc_status msci_npy_open(const char *path, msci_npy **out) {
  if (path == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: %s is NULL", path == NULL ? "path" : "out");
  unsigned char *bytes;
  size_t size;
  MSCI_TRY(msci_file_read_all(path, &bytes, &size));
  msci_npy *a = alloc_npy(path, bytes, size);
  if (a == NULL)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for %zu bytes", path, size);
  a->len = size;
  return finish_open(a, out);
}

/* ------------------------------------------------------------------------------ */
/* Getters                                                                         */
/* ------------------------------------------------------------------------------ */

msc_status msci_npy_shape(const msci_npy *npy, int32_t *ndim, int64_t *dims) {
  if (npy == NULL || ndim == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: %s is NULL", npy == NULL ? "npy" : "ndim");
  if (dims != NULL && npy->h.ndim > 0)
    memcpy(dims, npy->h.dims, (size_t)npy->h.ndim * sizeof *dims);
  *ndim = npy->h.ndim;
  return MSC_OK;
}

size_t msci_npy_count(const msci_npy *npy) {
  return npy ? npy->count : 0;
}
int32_t msci_npy_dtype(const msci_npy *npy) {
  return npy ? npy->h.dtype : 0;
}
size_t msci_npy_itemsize(const msci_npy *npy) {
  return npy ? (size_t)npy->h.itemsize : 0;
}
int32_t msci_npy_big_endian(const msci_npy *npy) {
  return npy ? npy->h.big : 0;
}
int32_t msci_npy_fortran_order(const msci_npy *npy) {
  return npy ? npy->h.fortran : 0;
}
int32_t msci_npy_version(const msci_npy *npy) {
  return npy ? npy->h.version : 0;
}

msc_status msci_npy_raw(const msci_npy *npy, const void **bytes, size_t *nbytes) {
  if (npy == NULL || bytes == NULL || nbytes == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: %s is NULL",
                     npy == NULL     ? "npy"
                     : bytes == NULL ? "bytes"
                                     : "nbytes");
  *bytes = npy->data;
  *nbytes = npy->data_len;
  return MSC_OK;
}

/* ------------------------------------------------------------------------------ */
/* Reading                                                                         */
/* ------------------------------------------------------------------------------ */

/* Converts indices [first, first + n) of axis 0 (the whole array when ndim is 0) into
 * dst in C order. The caller has checked the range and dst's size. */
static void read_rows(const msci_npy *npy, int64_t first, int64_t n, float *dst) {
  const npy_header *a = &npy->h;
  size_t isz = (size_t)a->itemsize;
  if (a->ndim == 0) {
    convert_run(a, npy->data, isz, npy->count, dst, 1);
    return;
  }
  size_t inner = a->dims[0] > 0 ? npy->count / (size_t)a->dims[0] : 0; /* per index */
  size_t total = (size_t)n * inner;
  if (total == 0) return;
  if (!a->fortran || a->ndim == 1) {
    convert_run(a, npy->data + (size_t)first * inner * isz, isz, total, dst, 1);
    return;
  }
  /* Fortran order: element (i0, ..., i{d-1}) lies at sum_k ik * fs[k], fs[0] = 1 and
   * fs[k] = fs[k-1] * dims[k-1]. Walk the C-order outer indices; each run is the last
   * axis, fs[d-1] elements apart. Every offset is below count, so nothing overflows. */
  int32_t d = a->ndim;
  size_t fs[MSCI_NPY_MAX_DIMS];
  size_t idx[MSCI_NPY_MAX_DIMS];
  fs[0] = 1;
  for (int32_t k = 1; k < d; k++) fs[k] = fs[k - 1] * (size_t)a->dims[k - 1];
  for (int32_t k = 0; k < d; k++) idx[k] = 0;
  idx[0] = (size_t)first;
  size_t last = (size_t)a->dims[d - 1];
  size_t runs = total / last;
  for (size_t r = 0; r < runs; r++) {
    size_t off = 0;
    for (int32_t k = 0; k < d - 1; k++) off += idx[k] * fs[k];
    convert_run(a, npy->data + off * isz, fs[d - 1] * isz, last, dst + r * last, 1);
    /* next outer index in C order (axis 0 stays within [first, first + n)) */
    for (int32_t k = d - 2; k >= 0; k--) {
      if (++idx[k] < (size_t)a->dims[k] || k == 0) break;
      idx[k] = 0;
    }
  }
}

msc_status msci_npy_read_f32(const msci_npy *npy, float *dst, size_t cap) {
  if (npy == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: npy is NULL");
  if (cap < npy->count)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "%s: the array has %zu elements but the buffer holds %zu", npy->label,
                     npy->count, cap);
  if (dst == NULL && npy->count > 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: dst is NULL");
  if (npy->count == 0) return MSC_OK;
  read_rows(npy, 0, npy->h.ndim > 0 ? npy->h.dims[0] : 1, dst);
  return MSC_OK;
}

msc_status msci_npy_read_index_f32(const msci_npy *npy, int64_t index, float *dst, size_t cap) {
  if (npy == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: npy is NULL");
  if (npy->h.ndim == 0)
    return msci_fail(MSC_E_SHAPE, "%s: the array is a scalar: it has no axis 0 to index",
                     npy->label);
  if (index < 0 || index >= npy->h.dims[0])
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: index %lld is outside axis 0 [0, %lld)",
                     npy->label, (long long)index, (long long)npy->h.dims[0]);
  size_t inner = npy->count / (size_t)npy->h.dims[0];
  if (cap < inner)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "%s: index %lld of axis 0 has %zu elements but the buffer holds %zu",
                     npy->label, (long long)index, inner, cap);
  if (dst == NULL && inner > 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: dst is NULL");
  read_rows(npy, index, 1, dst);
  return MSC_OK;
}

/* ------------------------------------------------------------------------------ */
/* The file reader: windowed reads with pread                                      */
/* ------------------------------------------------------------------------------ */

struct msci_npy_file {
  char *label; /* the path, for messages */
  int fd;
  uint64_t size;
  npy_header h;
};

void msci_npy_file_close(msci_npy_file *f) {
  if (f == NULL) return;
  if (f->fd >= 0) close(f->fd);
  free(f->label);
  free(f);
}

/* Reads and validates the header of the open file fd of size bytes into h. */
static msc_status file_header(int fd, const char *path, uint64_t size, npy_header *h) {
  unsigned char pre_buf[12] = {0};
  MSCI_TRY(msci_file_pread(fd, path, pre_buf, size < 12 ? (size_t)size : 12, 0));
  int major = 0;
  size_t pre = 0, hlen = 0;
  MSCI_TRY(parse_preamble(path, pre_buf, size, &major, &pre, &hlen));
  /* hlen <= size - pre: sized by bytes present, not by the claim alone */
  unsigned char *hbuf = malloc(hlen);
  if (hbuf == NULL)
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for a %zu-byte header", path,
                     hlen);
  msc_status rc = msci_file_pread(fd, path, hbuf, hlen, pre);
  if (rc == MSC_OK) rc = parse_header(path, hbuf, hlen, major, pre, h);
  free(hbuf);
  if (rc == MSC_OK) rc = check_data_size(path, h, size);
  return rc;
}

msc_status msci_npy_file_open(const char *path, msci_npy_file **out) {
  if (path == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: %s is NULL", path == NULL ? "path" : "out");
  int fd;
  uint64_t size;
  MSCI_TRY(msci_file_open_regular(path, &fd, &size));
  msci_npy_file *f = calloc(1, sizeof *f);
  size_t n = strlen(path) + 1;
  if (f == NULL || (f->label = malloc(n)) == NULL) {
    free(f);
    close(fd);
    return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory", path);
  }
  memcpy(f->label, path, n);
  f->fd = fd;
  f->size = size;
  msc_status rc = file_header(fd, path, size, &f->h);
  if (rc != MSC_OK) {
    msci_npy_file_close(f);
    return rc;
  }
  *out = f;
  return MSC_OK;
}

int32_t msci_npy_file_ndim(const msci_npy_file *f) {
  return f ? f->h.ndim : -1;
}
const int64_t *msci_npy_file_dims(const msci_npy_file *f) {
  return f ? f->h.dims : NULL;
}
int32_t msci_npy_file_dtype(const msci_npy_file *f) {
  return f ? f->h.dtype : 0;
}

/* The largest pread of a box read, in bytes (at least one element): it bounds the
 * scratch. A T×C×H×W plane of PASTIS (128 × 128 int16, 32 KiB) fits many times. */
#define BOX_CHUNK ((uint64_t)1 << 20)

/* How a box is read (box_plan), worked out the same way by msci_npy_file_box_scratch and
 * msci_npy_file_read_box, so the scratch size always matches the reads.
 *   - segments (C order; and a scalar or one dimension): the box's trailing axes after
 *     seg_axis are whole, so for each index of the axes before seg_axis the box's
 *     elements are one contiguous run of seg_len elements, converted in order into out;
 *   - rows (C order with a partial last axis; every Fortran file with 2 or more
 *     dimensions): a run is cnt[fast] contiguous elements along the fastest file axis
 *     (last in C, first in Fortran); per_group runs along grp (the next slowest file
 *     axis, row_stride elements apart) are read in one pread covering their span, the
 *     gaps included, then each run converted to its place in out.
 * A single run longer than the chunk is read in chunk-sized pieces. */
typedef struct box_plan {
  int rows;
  int32_t seg_axis;
  uint64_t seg_len;
  int32_t fast, grp;
  uint64_t row_stride, per_group;
  uint64_t chunk; /* elements per pread of a contiguous run */
  size_t scratch; /* bytes */
} box_plan;

/* cnt is within the dims and no count is 0. */
static void plan_box(const npy_header *h, const int64_t *cnt, box_plan *p) {
  uint64_t isz = (uint64_t)h->itemsize;
  int32_t d = h->ndim;
  memset(p, 0, sizeof *p);
  p->chunk = BOX_CHUNK / isz;
  if (d >= 2 && (h->fortran || cnt[d - 1] < h->dims[d - 1])) {
    p->rows = 1;
    p->fast = h->fortran ? 0 : d - 1;
    p->grp = h->fortran ? 1 : d - 2;
    p->row_stride = (uint64_t)h->dims[p->fast];
    uint64_t rlen = (uint64_t)cnt[p->fast], nrows = (uint64_t)cnt[p->grp];
    if (rlen > p->chunk) {
      p->per_group = 1;
      p->scratch = (size_t)(p->chunk * isz);
    } else {
      p->per_group = 1 + (p->chunk - rlen) / p->row_stride;
      if (p->per_group > nrows) p->per_group = nrows;
      p->scratch = (size_t)(((p->per_group - 1) * p->row_stride + rlen) * isz);
    }
    return;
  }
  int32_t s = d > 0 ? d - 1 : 0;
  while (s > 0 && cnt[s] == h->dims[s]) s--;
  uint64_t len = d > 0 ? (uint64_t)cnt[s] : 1;
  for (int32_t k = s + 1; k < d; k++) len *= (uint64_t)h->dims[k];
  p->seg_axis = s;
  p->seg_len = len;
  p->scratch = (size_t)((len < p->chunk ? len : p->chunk) * isz);
}

/* 1 when cnt (ndim values) fits the dims; *empty when a count is 0. */
static int box_counts_ok(const npy_header *h, const int64_t *cnt, int *empty) {
  *empty = 0;
  for (int32_t k = 0; k < h->ndim; k++) {
    if (cnt[k] < 0 || cnt[k] > h->dims[k]) return 0;
    if (cnt[k] == 0) *empty = 1;
  }
  return 1;
}

size_t msci_npy_file_box_scratch(const msci_npy_file *f, const int64_t *cnt) {
  if (f == NULL || (cnt == NULL && f->h.ndim > 0)) return 0;
  int empty;
  if (!box_counts_ok(&f->h, cnt, &empty) || empty) return 0;
  box_plan p;
  plan_box(&f->h, cnt, &p);
  return p.scratch;
}

/* Reads the n contiguous elements from element index off of the file into out[0], out[ds],
 * ..., in preads of at most p->chunk elements through scratch. */
static msc_status read_run(const msci_npy_file *f, const box_plan *p, uint64_t off, uint64_t n,
                           unsigned char *scratch, float *out, size_t ds) {
  const npy_header *h = &f->h;
  uint64_t isz = (uint64_t)h->itemsize;
  for (uint64_t pos = 0; pos < n; pos += p->chunk) {
    uint64_t m = n - pos < p->chunk ? n - pos : p->chunk;
    MSCI_TRY(msci_file_pread(f->fd, f->label, scratch, (size_t)(m * isz),
                             h->data_off + (off + pos) * isz));
    convert_run(h, scratch, (size_t)isz, (size_t)m, out + pos * ds, ds);
  }
  return MSC_OK;
}

msc_status msci_npy_file_read_box(const msci_npy_file *f, const int64_t *lo, const int64_t *cnt,
                                  float *out, void *scratch, size_t scratch_size) {
  if (f == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: f is NULL");
  const npy_header *h = &f->h;
  int32_t d = h->ndim;
  if (d > 0 && (lo == NULL || cnt == NULL))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", f->label,
                     lo == NULL ? "lo" : "cnt");
  for (int32_t k = 0; k < d; k++)
    if (lo[k] < 0 || cnt[k] < 0 || lo[k] > h->dims[k] || cnt[k] > h->dims[k] - lo[k])
      return msci_fail(MSC_E_INVALID_ARGUMENT,
                       "%s: box axis %d: lo %lld, cnt %lld is outside [0, %lld)", f->label, k,
                       (long long)lo[k], (long long)cnt[k], (long long)h->dims[k]);
  int empty;
  box_counts_ok(h, cnt, &empty);
  if (empty) return MSC_OK;
  if (out == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL", f->label);
  box_plan p;
  plan_box(h, cnt, &p);
  unsigned char *buf = scratch;
  if (buf == NULL) {
    buf = malloc(p.scratch);
    if (buf == NULL)
      return msci_fail(MSC_E_OUT_OF_MEMORY, "%s: out of memory for %zu bytes of scratch",
                       f->label, p.scratch);
  } else if (scratch_size < p.scratch) {
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "%s: the box needs %zu bytes of scratch but %zu were given", f->label,
                     p.scratch, scratch_size);
  }

  /* File strides (elements) in the file's order, out strides in C order of the box. */
  uint64_t fs[MSCI_NPY_MAX_DIMS], os[MSCI_NPY_MAX_DIMS];
  int64_t idx[MSCI_NPY_MAX_DIMS];
  int inner[MSCI_NPY_MAX_DIMS];
  for (int32_t k = 0; k < d; k++) {
    int32_t kc = d - 1 - k; /* C strides from the last axis, Fortran from the first */
    int32_t kf = k;
    if (h->fortran)
      fs[kf] = kf == 0 ? 1 : fs[kf - 1] * (uint64_t)h->dims[kf - 1];
    else
      fs[kc] = kc == d - 1 ? 1 : fs[kc + 1] * (uint64_t)h->dims[kc + 1];
    os[kc] = kc == d - 1 ? 1 : os[kc + 1] * (uint64_t)cnt[kc + 1];
    idx[k] = 0;
    inner[k] = p.rows ? (k == p.fast || k == p.grp) : k >= p.seg_axis;
  }
  uint64_t isz = (uint64_t)h->itemsize;
  msc_status rc = MSC_OK;
  for (;;) {
    uint64_t foff = 0, ooff = 0;
    for (int32_t k = 0; k < d; k++) {
      foff += (uint64_t)(lo[k] + idx[k]) * fs[k];
      ooff += (uint64_t)idx[k] * os[k];
    }
    if (!p.rows) {
      rc = read_run(f, &p, foff, p.seg_len, buf, out + ooff, 1);
    } else {
      uint64_t rlen = (uint64_t)cnt[p.fast], nrows = (uint64_t)cnt[p.grp];
      for (uint64_t g = 0; g < nrows && rc == MSC_OK; g += p.per_group) {
        uint64_t n = nrows - g < p.per_group ? nrows - g : p.per_group;
        float *o = out + ooff + g * os[p.grp];
        uint64_t at = foff + g * p.row_stride;
        if (rlen > p.chunk) {
          rc = read_run(f, &p, at, rlen, buf, o, (size_t)os[p.fast]);
          continue;
        }
        rc = msci_file_pread(f->fd, f->label, buf,
                             (size_t)(((n - 1) * p.row_stride + rlen) * isz),
                             h->data_off + at * isz);
        for (uint64_t j = 0; j < n && rc == MSC_OK; j++)
          convert_run(h, buf + j * p.row_stride * isz, (size_t)isz, (size_t)rlen,
                      o + j * os[p.grp], (size_t)os[p.fast]);
      }
    }
    if (rc != MSC_OK) break;
    int32_t k = d - 1;
    for (; k >= 0; k--) {
      if (inner[k]) continue;
      if (++idx[k] < cnt[k]) break;
      idx[k] = 0;
    }
    if (k < 0) break;
  }
  if (scratch == NULL) free(buf);
  return rc;
}
