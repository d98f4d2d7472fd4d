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
 */
#include "data/npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file_read.h"
#include "common/internal.h"

struct msci_npy {
  char *label;          /* the path, or "<memory>", for messages */
  unsigned char *bytes; /* the whole file */
  size_t len;
  const unsigned char *data; /* the array's bytes inside bytes */
  size_t data_len;
  size_t count;
  int64_t dims[MSCI_NPY_MAX_DIMS];
  int32_t ndim;
  int32_t dtype;
  int32_t itemsize;
  int32_t big;
  int32_t fortran;
  int32_t version;
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

/* Converts n elements starting at src, stride bytes apart, to dst[0..n). Integer and
 * float64 conversions round to nearest (C's conversions, in the default rounding mode). */
static void convert_run(const msci_npy *a, const unsigned char *src, size_t stride, size_t n,
                        float *dst) {
  int big = a->big;
  switch (a->dtype) {
  case MSCI_NPY_U8:
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i * stride];
    break;
  case MSCI_NPY_I16:
    for (size_t i = 0; i < n; i++) {
      uint16_t u = load16(src + i * stride, big);
      dst[i] = (float)(u >= 0x8000u ? (int32_t)u - 65536 : (int32_t)u);
    }
    break;
  case MSCI_NPY_U16:
    for (size_t i = 0; i < n; i++) dst[i] = (float)load16(src + i * stride, big);
    break;
  case MSCI_NPY_I32:
    for (size_t i = 0; i < n; i++) {
      uint32_t u = load32(src + i * stride, big);
      dst[i] = (float)(u >> 31 ? -(int64_t)(~u) - 1 : (int64_t)u);
    }
    break;
  case MSCI_NPY_U32:
    for (size_t i = 0; i < n; i++) dst[i] = (float)load32(src + i * stride, big);
    break;
  case MSCI_NPY_I64:
    for (size_t i = 0; i < n; i++) dst[i] = (float)i64_from_bits(load64(src + i * stride, big));
    break;
  case MSCI_NPY_F16:
    for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(load16(src + i * stride, big));
    break;
  case MSCI_NPY_F32:
    for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits(load32(src + i * stride, big));
    break;
  case MSCI_NPY_F64:
    for (size_t i = 0; i < n; i++) dst[i] = (float)f64_from_bits(load64(src + i * stride, big));
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

static msc_status parse_descr(parser *ps, msci_npy *a) {
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

static msc_status parse_fortran(parser *ps, msci_npy *a) {
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

static msc_status parse_shape(parser *ps, msci_npy *a) {
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

static msc_status parse_dict(parser *ps, msci_npy *a) {
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
static const char *shape_text(const msci_npy *a, char *buf, size_t cap) {
  size_t o = (size_t)snprintf(buf, cap, "(");
  for (int32_t i = 0; i < a->ndim && o < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)a->dims[i]);
  if (o < cap) snprintf(buf + o, cap - o, a->ndim == 1 ? ",)" : ")");
  if (o >= cap - 2 && cap > 4) strcpy(buf + cap - 4, "...");
  return buf;
}

/* Validates a->bytes[0..len) and fills the rest of a. */
static msc_status parse(msci_npy *a) {
  const char *label = a->label;
  const unsigned char *b = a->bytes;
  if (a->len < 8 || memcmp(b, "\x93NUMPY", 6) != 0)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", label);
  int major = b[6], minor = b[7];
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: unknown .npy format version %d.%d (1.0, 2.0 and 3.0 are known)",
                     label, major, minor);
  size_t pre = major == 1 ? 10 : 12;
  if (a->len < pre)
    return msci_fail(MSC_E_BAD_FORMAT, "%s: %zu bytes, too short for a version %d.0 preamble",
                     label, a->len, major);
  size_t hlen = major == 1 ? (size_t)load16(b + 8, 0) : (size_t)load32(b + 8, 0);
  if (hlen > a->len - pre)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: header length %zu is past the end (%zu bytes follow the preamble)",
                     label, hlen, a->len - pre);
  if (hlen == 0) return msci_fail(MSC_E_BAD_FORMAT, "%s: the header is empty", label);
  const unsigned char *h = b + pre;
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
  size_t have = a->len - pre - hlen;
  if (nbytes > (uint64_t)have)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: truncated: shape %s of %s needs %llu data bytes but %zu follow the "
                     "header",
                     label, shape_text(a, sbuf, sizeof sbuf), msci_npy_dtype_name(a->dtype),
                     (unsigned long long)nbytes, have);
  if (nbytes < (uint64_t)have)
    return msci_fail(MSC_E_BAD_FORMAT,
                     "%s: %zu bytes follow the header but shape %s of %s needs %llu (extra "
                     "data after the array)",
                     label, have, shape_text(a, sbuf, sizeof sbuf),
                     msci_npy_dtype_name(a->dtype), (unsigned long long)nbytes);
  a->count = (size_t)count;
  a->data = h + hlen;
  a->data_len = have;
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
  if (dims != NULL && npy->ndim > 0) memcpy(dims, npy->dims, (size_t)npy->ndim * sizeof *dims);
  *ndim = npy->ndim;
  return MSC_OK;
}

size_t msci_npy_count(const msci_npy *npy) {
  return npy ? npy->count : 0;
}
int32_t msci_npy_dtype(const msci_npy *npy) {
  return npy ? npy->dtype : 0;
}
size_t msci_npy_itemsize(const msci_npy *npy) {
  return npy ? (size_t)npy->itemsize : 0;
}
int32_t msci_npy_big_endian(const msci_npy *npy) {
  return npy ? npy->big : 0;
}
int32_t msci_npy_fortran_order(const msci_npy *npy) {
  return npy ? npy->fortran : 0;
}
int32_t msci_npy_version(const msci_npy *npy) {
  return npy ? npy->version : 0;
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
static void read_rows(const msci_npy *a, int64_t first, int64_t n, float *dst) {
  size_t isz = (size_t)a->itemsize;
  if (a->ndim == 0) {
    convert_run(a, a->data, isz, a->count, dst);
    return;
  }
  size_t inner = a->dims[0] > 0 ? a->count / (size_t)a->dims[0] : 0; /* per index */
  size_t total = (size_t)n * inner;
  if (total == 0) return;
  if (!a->fortran || a->ndim == 1) {
    convert_run(a, a->data + (size_t)first * inner * isz, isz, total, dst);
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
    convert_run(a, a->data + off * isz, fs[d - 1] * isz, last, dst + r * last);
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
  read_rows(npy, 0, npy->ndim > 0 ? npy->dims[0] : 1, dst);
  return MSC_OK;
}

msc_status msci_npy_read_index_f32(const msci_npy *npy, int64_t index, float *dst, size_t cap) {
  if (npy == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: npy is NULL");
  if (npy->ndim == 0)
    return msci_fail(MSC_E_SHAPE, "%s: the array is a scalar: it has no axis 0 to index",
                     npy->label);
  if (index < 0 || index >= npy->dims[0])
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: index %lld is outside axis 0 [0, %lld)",
                     npy->label, (long long)index, (long long)npy->dims[0]);
  size_t inner = npy->count / (size_t)npy->dims[0];
  if (cap < inner)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL,
                     "%s: index %lld of axis 0 has %zu elements but the buffer holds %zu",
                     npy->label, (long long)index, inner, cap);
  if (dst == NULL && inner > 0) return msci_fail(MSC_E_INVALID_ARGUMENT, "npy: dst is NULL");
  read_rows(npy, index, 1, dst);
  return MSC_OK;
}
