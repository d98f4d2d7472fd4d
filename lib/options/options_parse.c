/*
 * options_parse.c — the text of option values: numbers in the C locale, ','-separated
 * lists of integers or numbers, sep-separated lists of names, and UTF-8 validation.
 * Nothing here knows the schema or the handle.
 *
 * Numbers in option texts ("0.5,1e-3") are read and written in the C locale, whatever
 * locale the host program has set: an option file must mean the same everywhere.
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"
#include "options/options_impl.h"

/* ---------------------------------------------------------------------------------- */
/* Locale-independent numbers                                                          */
/* ---------------------------------------------------------------------------------- */

static pthread_once_t g_c_locale_once = PTHREAD_ONCE_INIT;
static locale_t g_c_locale = (locale_t)0;

static void make_c_locale(void) {
  g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static locale_t c_locale(void) {
  pthread_once(&g_c_locale_once, make_c_locale);
  return g_c_locale;
}

double msci_strtod(const char *s, char **end) {
  locale_t c = c_locale();
  if (c != (locale_t)0) return strtod_l(s, end, c);
  return strtod(s, end); /* no C locale object: the process locale's rules */
}

int msci_format_double(char *buf, size_t cap, int precision, double v) {
  locale_t c = c_locale();
  locale_t old = (locale_t)0;
  if (c != (locale_t)0) old = uselocale(c);
  int n = snprintf(buf, cap, "%.*g", precision, v);
  if (c != (locale_t)0) uselocale(old);
  return n;
}

/* ---------------------------------------------------------------------------------- */
/* Lists                                                                               */
/* ---------------------------------------------------------------------------------- */

/* Cuts the next ','-separated item out of *s: [*b, *e) without surrounding blanks;
 * *s moves past the separator. Returns 0 at the end of the text. */
static int next_item(const char **s, const char **b, const char **e, int *last) {
  if (*last) return 0;
  const char *p = *s;
  const char *q = strchr(p, ',');
  const char *end = q ? q : p + strlen(p);
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  const char *t = end;
  while (t > p && (t[-1] == ' ' || t[-1] == '\t')) t--;
  *b = p;
  *e = t;
  if (q) {
    *s = q + 1;
  } else {
    *s = end;
    *last = 1;
  }
  return 1;
}

int msci_opt_parse_list(const char *s, int is_float, int64_t *iout, double *fout, int32_t cap,
                        int32_t *n, char *why, size_t why_cap) {
  int32_t count = 0;
  if (s[0] == '\0') {
    *n = 0;
    return 1;
  }
  const char *b, *e;
  int last = 0;
  while (next_item(&s, &b, &e, &last)) {
    char item[64];
    size_t len = (size_t)(e - b);
    if (len == 0) {
      snprintf(why, why_cap, "item %d is empty", (int)count + 1);
      return 0;
    }
    if (len >= sizeof item) {
      snprintf(why, why_cap, "item %d ('%.20s...') is too long", (int)count + 1, b);
      return 0;
    }
    memcpy(item, b, len);
    item[len] = '\0';
    char *end = NULL;
    errno = 0;
    if (is_float) {
      double v = msci_strtod(item, &end);
      if (end == item || *end != '\0' || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0)) {
        snprintf(why, why_cap, "item %d ('%s') is not a finite number", (int)count + 1, item);
        return 0;
      }
      if (count < cap && fout != NULL) fout[count] = v;
    } else {
      long long v = strtoll(item, &end, 10);
      if (end == item || *end != '\0' || errno == ERANGE) {
        snprintf(why, why_cap, "item %d ('%s') is not an integer", (int)count + 1, item);
        return 0;
      }
      if (count < cap && iout != NULL) iout[count] = (int64_t)v;
    }
    if (count == INT32_MAX) {
      snprintf(why, why_cap, "too many items");
      return 0;
    }
    count++;
  }
  *n = count;
  return 1;
}

static msc_status parse_list_api(const char *fn, const char *s, int is_float, int64_t *iout,
                                 double *fout, int32_t cap, int32_t *n) {
  if (s == NULL || n == NULL || cap < 0 || (cap > 0 && iout == NULL && fout == NULL))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: NULL argument or negative capacity", fn);
  char why[160];
  int32_t count = 0;
  if (!msci_opt_parse_list(s, is_float, iout, fout, cap, &count, why, sizeof why))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: '%.200s': %s", fn, s, why);
  *n = count;
  if (count > cap)
    return msci_fail(MSC_E_BUFFER_TOO_SMALL, "%s: %d values, room for %d", fn, (int)count,
                     (int)cap);
  return MSC_OK;
}

msc_status msci_parse_int_list(const char *s, int64_t *out, int32_t cap, int32_t *n) {
  return parse_list_api("msci_parse_int_list", s, 0, out, NULL, cap, n);
}

msc_status msci_parse_float_list(const char *s, double *out, int32_t cap, int32_t *n) {
  return parse_list_api("msci_parse_float_list", s, 1, NULL, out, cap, n);
}

msc_status msci_split_list(const char *s, char sep, char ***out, int32_t *n) {
  if (s == NULL || out == NULL || n == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_split_list: NULL argument");
  size_t len = strlen(s);
  size_t count = 0;
  if (len > 0) {
    count = 1;
    for (size_t i = 0; i < len; i++) count += s[i] == sep;
  }
  if (count > INT32_MAX)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_split_list: too many items");
  size_t bytes = (count + 1) * sizeof(char *) + len + 1;
  char **ptrs = malloc(bytes);
  if (ptrs == NULL) return msci_opt_oom(bytes);
  char *text = (char *)(ptrs + count + 1);
  memcpy(text, s, len + 1);
  size_t k = 0;
  if (count > 0) {
    ptrs[k++] = text;
    for (size_t i = 0; i < len; i++) {
      if (text[i] == sep) {
        text[i] = '\0';
        ptrs[k++] = text + i + 1;
      }
    }
  }
  ptrs[k] = NULL;
  *out = ptrs;
  *n = (int32_t)count;
  return MSC_OK;
}

msc_status msci_split_names(const char *s, char ***out, int32_t *n) {
  return msci_split_list(s, ';', out, n);
}

msc_status msci_parse_name_list(const char *key, const char *text, const char *const *names,
                                int32_t n, int32_t *out, int32_t *count) {
  char all[256] = "";
  for (int32_t j = 0, w = 0; j < n && (size_t)w < sizeof all; ++j) /* truncated if long */
    w += snprintf(all + w, sizeof all - (size_t)w, "%s%s", j ? ", " : "", names[j]);
  *count = 0;
  const char *p = text;
  for (;;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    while (len > 0 && *p == ' ') p++, len--;
    while (len > 0 && p[len - 1] == ' ') len--;
    int32_t j = 0;
    while (j < n && !(strlen(names[j]) == len && strncmp(names[j], p, len) == 0)) j++;
    if (j == n)
      return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: '%.*s' is not one of %s", key, (int)len, p,
                       all);
    for (int32_t k = 0; k < *count; ++k)
      if (out[k] == j)
        return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s listed twice", key, names[j]);
    out[(*count)++] = j;
    if (!e) break;
    p = e + 1;
  }
  return MSC_OK;
}

char *msci_opt_floats_text(const float *v, size_t n) {
  char *s = malloc(n * 24 + 1); /* "-1.17549435e-38," is 16 bytes */
  if (s == NULL) return NULL;
  size_t len = 0;
  s[0] = '\0';
  for (size_t i = 0; i < n; i++) {
    if (i > 0) s[len++] = ',';
    len += (size_t)msci_format_double(s + len, 24, 9, (double)v[i]);
  }
  return s;
}

/* ---------------------------------------------------------------------------------- */
/* UTF-8                                                                               */
/* ---------------------------------------------------------------------------------- */

int msci_opt_utf8_valid(const char *str) {
  const unsigned char *s = (const unsigned char *)str;
  while (*s) {
    unsigned c = *s;
    size_t need;
    unsigned min;
    if (c < 0x80u) {
      s++;
      continue;
    } else if ((c & 0xE0u) == 0xC0u) {
      need = 1;
      min = 0x80u;
      c &= 0x1Fu;
    } else if ((c & 0xF0u) == 0xE0u) {
      need = 2;
      min = 0x800u;
      c &= 0x0Fu;
    } else if ((c & 0xF8u) == 0xF0u) {
      need = 3;
      min = 0x10000u;
      c &= 0x07u;
    } else {
      return 0;
    }
    s++;
    for (size_t k = 0; k < need; k++, s++) {
      if ((*s & 0xC0u) != 0x80u) return 0; /* also stops at the NUL */
      c = (c << 6) | (*s & 0x3Fu);
    }
    if (c < min || c > 0x10FFFFu || (c >= 0xD800u && c <= 0xDFFFu)) return 0;
  }
  return 1;
}
