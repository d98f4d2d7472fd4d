/*
 * options.c — the msc_options handle: typed key/value settings checked against the
 * schema of options_schema.c, JSON in and out, and the cross-key checks of a model
 * configuration.
 *
 * A handle is a small array of the keys set explicitly (key text, schema entry,
 * value); everything else reads its default. Every setter checks the key, the type
 * and the value's rule before it touches the handle, and allocates before it commits,
 * so a handle is unchanged by a failing call. msc_options_from_json applies the whole
 * document to a copy and swaps it in only when every member was accepted.
 *
 * Numbers in option texts ("0.5,1e-3") are read and written in the C locale, whatever
 * locale the host program has set: an option file must mean the same everywhere.
 */
#include <errno.h>
#include <jansson.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mosaic/mosaic.h"
#include "options.h"

typedef struct opt_entry {
  char *key;           /* canonical key text ("modality.1.bands") */
  const msci_opt_def *def;
  int64_t i;           /* MSCI_OPT_INT */
  double f;            /* MSCI_OPT_FLOAT */
  char *s;             /* MSCI_OPT_STRING (owned) */
} opt_entry;

struct msc_options {
  opt_entry *items;
  int32_t count;
  int32_t cap;
};

/* ---------------------------------------------------------------------------------- */
/* Small helpers                                                                       */
/* ---------------------------------------------------------------------------------- */

static msc_status oom(size_t bytes) {
  return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", bytes);
}

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

static const char *type_noun(msci_opt_type t) {
  switch (t) {
  case MSCI_OPT_INT:
    return "an integer";
  case MSCI_OPT_FLOAT:
    return "a number";
  default:
    return "a string";
  }
}

/* A growable text buffer; on allocation failure `failed` is set and appends stop. */
typedef struct strbuf {
  char *p;
  size_t len, cap;
  int failed;
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (b->len + n + 1 > cap)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(strbuf *b, const char *s) { sb_append(b, s, strlen(s)); }

/* ---------------------------------------------------------------------------------- */
/* Locale-independent numbers                                                          */
/* ---------------------------------------------------------------------------------- */

static pthread_once_t g_c_locale_once = PTHREAD_ONCE_INIT;
static locale_t g_c_locale = (locale_t)0;

static void make_c_locale(void) { g_c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0); }

static locale_t c_locale(void) {
  pthread_once(&g_c_locale_once, make_c_locale);
  return g_c_locale;
}

double msci_strtod(const char *s, char **end) {
  locale_t c = c_locale();
  if (c != (locale_t)0)
    return strtod_l(s, end, c);
  return strtod(s, end); /* no C locale object: the process locale's rules */
}

int msci_format_double(char *buf, size_t cap, int precision, double v) {
  locale_t c = c_locale();
  locale_t old = (locale_t)0;
  if (c != (locale_t)0)
    old = uselocale(c);
  int n = snprintf(buf, cap, "%.*g", precision, v);
  if (c != (locale_t)0)
    uselocale(old);
  return n;
}

/* ---------------------------------------------------------------------------------- */
/* Lists                                                                               */
/* ---------------------------------------------------------------------------------- */

/* Cuts the next ','-separated item out of *s: [*b, *e) without surrounding blanks;
 * *s moves past the separator. Returns 0 at the end of the text. */
static int next_item(const char **s, const char **b, const char **e, int *last) {
  if (*last)
    return 0;
  const char *p = *s;
  const char *q = strchr(p, ',');
  const char *end = q ? q : p + strlen(p);
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  const char *t = end;
  while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
    t--;
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

/* The core of the list parsers: why[] receives the reason of a failure. Returns 1 on
 * success (count in *n, the first min(count, cap) values in out), 0 on a bad item. */
static int parse_list(const char *s, int is_float, int64_t *iout, double *fout, int32_t cap,
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
        snprintf(why, why_cap, "item %d ('%s') is not a finite number", (int)count + 1,
                 item);
        return 0;
      }
      if (count < cap && fout != NULL)
        fout[count] = v;
    } else {
      long long v = strtoll(item, &end, 10);
      if (end == item || *end != '\0' || errno == ERANGE) {
        snprintf(why, why_cap, "item %d ('%s') is not an integer", (int)count + 1, item);
        return 0;
      }
      if (count < cap && iout != NULL)
        iout[count] = (int64_t)v;
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
  if (!parse_list(s, is_float, iout, fout, cap, &count, why, sizeof why))
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
    for (size_t i = 0; i < len; i++)
      count += s[i] == sep;
  }
  if (count > INT32_MAX)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_split_list: too many items");
  size_t bytes = (count + 1) * sizeof(char *) + len + 1;
  char **ptrs = malloc(bytes);
  if (ptrs == NULL)
    return oom(bytes);
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

/* ---------------------------------------------------------------------------------- */
/* String rules of the schema                                                          */
/* ---------------------------------------------------------------------------------- */

static int check_name(const char *v, char *why, size_t cap) {
  size_t len = strlen(v);
  if (len == 0) {
    snprintf(why, cap, "the name is empty");
    return 0;
  }
  if (len > MSCI_NAME_MAX) {
    snprintf(why, cap, "the name has %zu characters, more than %d", len, MSCI_NAME_MAX);
    return 0;
  }
  for (size_t i = 0; i < len; i++) {
    char c = v[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
      snprintf(why, cap, "'%s' has a character outside [a-z0-9_]", v);
      return 0;
    }
  }
  return 1;
}

#define MSCI_LIST_CHECK_CAP 1024 /* values a list rule looks at */
#define MSCI_POS_INT_MAX 65536

static int check_pos_ints(const char *v, char *why, size_t cap) {
  int64_t vals[256];
  int32_t n = 0;
  if (!parse_list(v, 0, vals, NULL, 256, &n, why, cap))
    return 0;
  if (n == 0) {
    snprintf(why, cap, "the list is empty");
    return 0;
  }
  if (n > 256) {
    snprintf(why, cap, "the list has %d values, more than 256", (int)n);
    return 0;
  }
  for (int32_t i = 0; i < n; i++) {
    if (vals[i] < 1 || vals[i] > MSCI_POS_INT_MAX) {
      snprintf(why, cap, "item %d (%lld) is out of range 1..%d", (int)i + 1,
               (long long)vals[i], MSCI_POS_INT_MAX);
      return 0;
    }
  }
  return 1;
}

static int check_floats_impl(const char *v, int positive, char *why, size_t cap) {
  double *vals = malloc(MSCI_LIST_CHECK_CAP * sizeof *vals);
  if (vals == NULL) {
    snprintf(why, cap, "out of memory");
    return 0;
  }
  int32_t n = 0;
  int ok = parse_list(v, 1, NULL, vals, MSCI_LIST_CHECK_CAP, &n, why, cap);
  if (ok && n > MSCI_LIST_CHECK_CAP) {
    snprintf(why, cap, "the list has %d values, more than %d", (int)n, MSCI_LIST_CHECK_CAP);
    ok = 0;
  }
  for (int32_t i = 0; ok && positive && i < n; i++) {
    if (!(vals[i] > 0.0)) {
      char num[32];
      msci_format_double(num, sizeof num, 9, vals[i]);
      snprintf(why, cap, "item %d (%s) is not > 0", (int)i + 1, num);
      ok = 0;
    }
  }
  free(vals);
  return ok;
}

static int check_floats(const char *v, char *why, size_t cap) {
  return check_floats_impl(v, 0, why, cap);
}

static int check_pos_floats(const char *v, char *why, size_t cap) {
  return check_floats_impl(v, 1, why, cap);
}

static int check_names_list(const char *v, char *why, size_t cap) {
  if (v[0] == '\0') {
    snprintf(why, cap, "the list is empty");
    return 0;
  }
  int item = 1;
  const char *start = v;
  for (const char *p = v;; p++) {
    if (*p == ';' || *p == '\0') {
      if (p == start) {
        snprintf(why, cap, "name %d is empty", item);
        return 0;
      }
      if (*p == '\0')
        break;
      item++;
      start = p + 1;
    } else if ((unsigned char)*p < 0x20u || *p == 0x7f) {
      snprintf(why, cap, "name %d contains a control character", item);
      return 0;
    }
  }
  return 1;
}

const msci_opt_check msci_check_name = {check_name, "a name: [a-z0-9_]+, at most 31 characters"};
const msci_opt_check msci_check_pos_ints = {check_pos_ints,
                                            "integers 1..65536, ','-separated (at least one)"};
const msci_opt_check msci_check_floats = {check_floats,
                                          "finite numbers, ','-separated (or empty)"};
const msci_opt_check msci_check_pos_floats = {check_pos_floats,
                                              "numbers > 0, ','-separated (or empty)"};
const msci_opt_check msci_check_names_list = {
    check_names_list, "non-empty names without control characters, ';'-separated"};

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF): JSON output needs it. */
static int utf8_valid(const char *str) {
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
      if ((*s & 0xC0u) != 0x80u)
        return 0; /* also stops at the NUL */
      c = (c << 6) | (*s & 0x3Fu);
    }
    if (c < min || c > 0x10FFFFu || (c >= 0xD800u && c <= 0xDFFFu))
      return 0;
  }
  return 1;
}

/* ---------------------------------------------------------------------------------- */
/* Schema lookup and accessors                                                         */
/* ---------------------------------------------------------------------------------- */

/* Whether key matches pattern; *index receives what '#' stood for (-1 without '#'). */
static int match_pattern(const char *pat, const char *key, int32_t *index) {
  *index = -1;
  while (*pat != '\0') {
    if (*pat == '#') {
      if (*key < '0' || *key > '9')
        return 0;
      if (key[0] == '0' && key[1] >= '0' && key[1] <= '9')
        return 0; /* leading zero */
      int32_t v = 0;
      int digits = 0;
      while (*key >= '0' && *key <= '9') {
        if (++digits > 4)
          return 0;
        v = v * 10 + (*key - '0');
        key++;
      }
      if (v >= MSCI_OPT_MAX_INDEX)
        return 0;
      *index = v;
      pat++;
    } else {
      if (*pat != *key)
        return 0;
      pat++;
      key++;
    }
  }
  return *key == '\0';
}

static const msci_opt_def *find_def(const char *key, int32_t *index) {
  for (int32_t i = 0; i < msci_opt_table_count; i++)
    if (match_pattern(msci_opt_table[i].pattern, key, index))
      return &msci_opt_table[i];
  return NULL;
}

int32_t msci_options_key_count(void) { return msci_opt_table_count; }

static const msci_opt_def *def_at(int32_t i) {
  return (i >= 0 && i < msci_opt_table_count) ? &msci_opt_table[i] : NULL;
}

const char *msci_options_key_pattern(int32_t i) {
  const msci_opt_def *d = def_at(i);
  return d ? d->pattern : NULL;
}

const char *msci_options_key_help(int32_t i) {
  const msci_opt_def *d = def_at(i);
  return d ? d->help : NULL;
}

msci_opt_type msci_options_key_type(int32_t i) {
  const msci_opt_def *d = def_at(i);
  return d ? d->type : MSCI_OPT_INT;
}

const char *msci_options_key_type_name(int32_t i) {
  const msci_opt_def *d = def_at(i);
  if (d == NULL)
    return NULL;
  return d->type == MSCI_OPT_INT ? "int" : d->type == MSCI_OPT_FLOAT ? "float" : "string";
}

const char *msci_options_key_default(int32_t i) {
  const msci_opt_def *d = def_at(i);
  return d ? d->def : NULL;
}

/* The rule of d as text ("1..64"). */
static size_t rule_text(const msci_opt_def *d, char *buf, size_t cap) {
  char tmp[512];
  switch (d->type) {
  case MSCI_OPT_INT:
    snprintf(tmp, sizeof tmp, "%lld..%lld", (long long)d->imin, (long long)d->imax);
    break;
  case MSCI_OPT_FLOAT: {
    char lo[32], hi[32];
    msci_format_double(lo, sizeof lo, 9, d->fmin);
    msci_format_double(hi, sizeof hi, 9, d->fmax);
    snprintf(tmp, sizeof tmp, "%s%s, %s]", d->fmin_open ? "(" : "[", lo, hi);
    break;
  }
  default:
    if (d->choices != NULL) {
      size_t k = (size_t)snprintf(tmp, sizeof tmp, "one of ");
      for (const char *p = d->choices; *p && k + 3 < sizeof tmp; p++) {
        if (*p == '|') {
          tmp[k++] = ',';
          tmp[k++] = ' ';
        } else {
          tmp[k++] = *p;
        }
      }
      tmp[k] = '\0';
    } else if (d->check != NULL) {
      snprintf(tmp, sizeof tmp, "%s", d->check->what);
    } else {
      snprintf(tmp, sizeof tmp, "any text");
    }
    break;
  }
  size_t len = strlen(tmp);
  if (cap > 0) {
    size_t k = len < cap - 1 ? len : cap - 1;
    memcpy(buf, tmp, k);
    buf[k] = '\0';
  }
  return len;
}

size_t msci_options_key_rule(int32_t i, char *buf, size_t cap) {
  const msci_opt_def *d = def_at(i);
  if (d == NULL || (buf == NULL && cap > 0)) {
    if (buf != NULL && cap > 0)
      buf[0] = '\0';
    return 0;
  }
  return rule_text(d, buf, cap);
}

/* ---------------------------------------------------------------------------------- */
/* Values                                                                              */
/* ---------------------------------------------------------------------------------- */

/* Checks value v of key (schema d) against d's rule. */
static msc_status check_int(const msci_opt_def *d, const char *key, int64_t v) {
  if (v < d->imin || v > d->imax)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %lld is out of range %lld..%lld",
                     key, (long long)v, (long long)d->imin, (long long)d->imax);
  return MSC_OK;
}

static msc_status check_float(const msci_opt_def *d, const char *key, double v) {
  int ok = isfinite(v) && (d->fmin_open ? v > d->fmin : v >= d->fmin) && v <= d->fmax;
  if (!ok) {
    char num[32], rule[96];
    msci_format_double(num, sizeof num, 9, v);
    rule_text(d, rule, sizeof rule);
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %s is out of range %s", key, num,
                     rule);
  }
  return MSC_OK;
}

static msc_status check_string(const msci_opt_def *d, const char *key, const char *v) {
  if (!utf8_valid(v))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': the value is not valid UTF-8",
                     key);
  if (d->choices != NULL) {
    size_t vlen = strlen(v);
    for (const char *p = d->choices; *p;) {
      const char *bar = strchr(p, '|');
      size_t n = bar ? (size_t)(bar - p) : strlen(p);
      if (n == vlen && memcmp(p, v, n) == 0)
        return MSC_OK;
      p += n + (bar ? 1 : 0);
    }
    char rule[256];
    rule_text(d, rule, sizeof rule);
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': '%.200s' is not %s", key, v,
                     rule);
  }
  if (d->check != NULL) {
    char why[256];
    why[0] = '\0';
    if (!d->check->fn(v, why, sizeof why))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %s (expected %s)", key, why,
                       d->check->what);
  }
  return MSC_OK;
}

static opt_entry *find_entry(const msc_options *o, const char *key) {
  for (int32_t i = 0; i < o->count; i++)
    if (strcmp(o->items[i].key, key) == 0)
      return &o->items[i];
  return NULL;
}

/* The schema entry of key, or MSC_E_NOT_FOUND. */
static msc_status lookup(const char *key, const msci_opt_def **d, int32_t *index) {
  *d = find_def(key, index);
  if (*d == NULL)
    return msci_fail(MSC_E_NOT_FOUND, "unknown option '%s'", key);
  return MSC_OK;
}

/* The common path of the setters: vtype is the C type given (int, float or string). */
static msc_status set_value(msc_options *o, const char *fn, const char *key,
                            msci_opt_type vtype, int64_t iv, double fv, const char *sv) {
  if (o == NULL || key == NULL || (vtype == MSCI_OPT_STRING && sv == NULL))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                     o == NULL ? "opts" : key == NULL ? "key" : "value");
  const msci_opt_def *d;
  int32_t index;
  msc_status rc = lookup(key, &d, &index);
  if (rc != MSC_OK)
    return rc;
  int type_ok = vtype == d->type || (d->type == MSCI_OPT_FLOAT && vtype == MSCI_OPT_INT);
  if (!type_ok)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' takes %s, not %s", key,
                     type_noun(d->type), type_noun(vtype));
  if (d->type == MSCI_OPT_FLOAT && vtype == MSCI_OPT_INT)
    fv = (double)iv;
  switch (d->type) {
  case MSCI_OPT_INT:
    rc = check_int(d, key, iv);
    break;
  case MSCI_OPT_FLOAT:
    rc = check_float(d, key, fv);
    break;
  default:
    rc = check_string(d, key, sv);
    break;
  }
  if (rc != MSC_OK)
    return rc;

  /* Allocate everything first, then commit: the handle is unchanged on failure. */
  char *scopy = NULL;
  if (d->type == MSCI_OPT_STRING && (scopy = dup_str(sv)) == NULL)
    return oom(strlen(sv) + 1);
  opt_entry *e = find_entry(o, key);
  if (e == NULL) {
    char *kcopy = dup_str(key);
    if (kcopy == NULL) {
      free(scopy);
      return oom(strlen(key) + 1);
    }
    if (o->count == o->cap) {
      int32_t cap = o->cap ? o->cap * 2 : 16;
      opt_entry *items = realloc(o->items, (size_t)cap * sizeof *items);
      if (items == NULL) {
        free(scopy);
        free(kcopy);
        return oom((size_t)cap * sizeof *items);
      }
      o->items = items;
      o->cap = cap;
    }
    e = &o->items[o->count++];
    memset(e, 0, sizeof *e);
    e->key = kcopy;
    e->def = d;
  }
  switch (d->type) {
  case MSCI_OPT_INT:
    e->i = iv;
    break;
  case MSCI_OPT_FLOAT:
    e->f = fv;
    break;
  default:
    free(e->s);
    e->s = scopy;
    break;
  }
  return MSC_OK;
}

/* The default of d for index as text: static (*heap NULL) or malloc'd (*heap = it). */
static msc_status default_text(const msc_options *o, const msci_opt_def *d, int32_t index,
                               const char **text, char **heap) {
  *heap = NULL;
  if (d->def_fn == NULL) {
    *text = d->def;
    return MSC_OK;
  }
  msc_status rc = d->def_fn(o, index, heap);
  if (rc != MSC_OK)
    return rc;
  *text = *heap;
  return MSC_OK;
}

/* Finds key for a getter wanting type want: schema entry, set entry (or NULL). */
static msc_status get_prepare(const msc_options *o, const char *fn, const char *key,
                              const void *out, msci_opt_type want, const msci_opt_def **d,
                              int32_t *index, const opt_entry **e) {
  if (o == NULL || key == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                     o == NULL ? "opts" : key == NULL ? "key" : "out");
  msc_status rc = lookup(key, d, index);
  if (rc != MSC_OK)
    return rc;
  if ((*d)->type != want)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' holds %s, not %s", key,
                     type_noun((*d)->type), type_noun(want));
  *e = find_entry(o, key);
  return MSC_OK;
}

static msc_status get_int_impl(const msc_options *o, const char *fn, const char *key,
                               int64_t *out) {
  const msci_opt_def *d;
  int32_t index;
  const opt_entry *e;
  msc_status rc = get_prepare(o, fn, key, out, MSCI_OPT_INT, &d, &index, &e);
  if (rc != MSC_OK)
    return rc;
  if (e != NULL) {
    *out = e->i;
    return MSC_OK;
  }
  const char *text;
  char *heap;
  rc = default_text(o, d, index, &text, &heap);
  if (rc != MSC_OK)
    return rc;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  int ok = end != text && *end == '\0' && errno == 0;
  free(heap);
  if (!ok)
    return msci_fail(MSC_E_INTERNAL, "option '%s': bad default", key);
  *out = (int64_t)v;
  return MSC_OK;
}

static msc_status get_float_impl(const msc_options *o, const char *fn, const char *key,
                                 double *out) {
  const msci_opt_def *d;
  int32_t index;
  const opt_entry *e;
  msc_status rc = get_prepare(o, fn, key, out, MSCI_OPT_FLOAT, &d, &index, &e);
  if (rc != MSC_OK)
    return rc;
  if (e != NULL) {
    *out = e->f;
    return MSC_OK;
  }
  const char *text;
  char *heap;
  rc = default_text(o, d, index, &text, &heap);
  if (rc != MSC_OK)
    return rc;
  char *end = NULL;
  double v = msci_strtod(text, &end);
  int ok = end != text && *end == '\0' && isfinite(v);
  free(heap);
  if (!ok)
    return msci_fail(MSC_E_INTERNAL, "option '%s': bad default", key);
  *out = v;
  return MSC_OK;
}

/* The value of a string key: *text points into the handle or the schema, or to *heap
 * (malloc'd, the caller frees it). */
static msc_status get_string_ref(const msc_options *o, const char *fn, const char *key,
                                 const void *out, const char **text, char **heap) {
  const msci_opt_def *d;
  int32_t index;
  const opt_entry *e;
  *heap = NULL;
  msc_status rc = get_prepare(o, fn, key, out, MSCI_OPT_STRING, &d, &index, &e);
  if (rc != MSC_OK)
    return rc;
  if (e != NULL) {
    *text = e->s;
    return MSC_OK;
  }
  return default_text(o, d, index, text, heap);
}

/* The size protocol of msc_options_get_string and msc_options_to_json. */
static msc_status copy_out(const char *fn, const char *s, char *buf, size_t cap,
                           size_t *len) {
  size_t n = strlen(s);
  if (len != NULL)
    *len = n;
  if (cap > n) {
    memcpy(buf, s, n + 1);
    return MSC_OK;
  }
  if (cap > 0) {
    memcpy(buf, s, cap - 1);
    buf[cap - 1] = '\0';
  }
  return msci_fail(MSC_E_BUFFER_TOO_SMALL, "%s: the text has %zu bytes, the buffer %zu",
                   fn, n + 1, cap);
}

/* ---------------------------------------------------------------------------------- */
/* Public API                                                                          */
/* ---------------------------------------------------------------------------------- */

msc_status msc_options_create(msc_options **out) {
  if (out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_create: out is NULL");
  msc_options *o = calloc(1, sizeof *o);
  if (o == NULL)
    return oom(sizeof *o);
  *out = o;
  return MSC_OK;
}

static void clear_items(msc_options *o) {
  for (int32_t i = 0; i < o->count; i++) {
    free(o->items[i].key);
    free(o->items[i].s);
  }
  free(o->items);
  o->items = NULL;
  o->count = o->cap = 0;
}

void msc_options_free(msc_options *opts) {
  if (opts == NULL)
    return;
  clear_items(opts);
  free(opts);
}

msc_status msc_options_set_int(msc_options *opts, const char *key, int64_t value) {
  return set_value(opts, "msc_options_set_int", key, MSCI_OPT_INT, value, 0.0, NULL);
}

msc_status msc_options_set_float(msc_options *opts, const char *key, double value) {
  return set_value(opts, "msc_options_set_float", key, MSCI_OPT_FLOAT, 0, value, NULL);
}

msc_status msc_options_set_string(msc_options *opts, const char *key, const char *value) {
  return set_value(opts, "msc_options_set_string", key, MSCI_OPT_STRING, 0, 0.0, value);
}

msc_status msc_options_get_int(const msc_options *opts, const char *key, int64_t *out) {
  int64_t v = 0;
  msc_status rc = get_int_impl(opts, "msc_options_get_int", key, out ? &v : NULL);
  if (rc == MSC_OK)
    *out = v;
  return rc;
}

msc_status msc_options_get_float(const msc_options *opts, const char *key, double *out) {
  double v = 0;
  msc_status rc = get_float_impl(opts, "msc_options_get_float", key, out ? &v : NULL);
  if (rc == MSC_OK)
    *out = v;
  return rc;
}

msc_status msc_options_get_string(const msc_options *opts, const char *key, char *buf,
                                  size_t cap, size_t *len) {
  static const char fn[] = "msc_options_get_string";
  if (buf == NULL && cap > 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: buf is NULL but cap is %zu", fn, cap);
  const char *text;
  char *heap;
  /* out is checked for NULL by get_prepare: pass something non-NULL. */
  msc_status rc = get_string_ref(opts, fn, key, fn, &text, &heap);
  if (rc != MSC_OK)
    return rc;
  rc = copy_out(fn, text, buf, cap, len);
  free(heap);
  return rc;
}

msc_status msc_options_is_set(const msc_options *opts, const char *key, int32_t *out) {
  if (opts == NULL || key == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_is_set: %s is NULL",
                     opts == NULL ? "opts" : key == NULL ? "key" : "out");
  const msci_opt_def *d;
  int32_t index;
  msc_status rc = lookup(key, &d, &index);
  if (rc != MSC_OK)
    return rc;
  *out = find_entry(opts, key) != NULL;
  return MSC_OK;
}

msc_status msci_options_copy(const msc_options *src, msc_options **out) {
  if (src == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_copy: %s is NULL",
                     src == NULL ? "src" : "out");
  msc_options *o = calloc(1, sizeof *o);
  if (o == NULL)
    return oom(sizeof *o);
  if (src->count > 0) {
    o->items = calloc((size_t)src->count, sizeof *o->items);
    if (o->items == NULL) {
      free(o);
      return oom((size_t)src->count * sizeof *o->items);
    }
    o->cap = src->count;
  }
  for (int32_t i = 0; i < src->count; i++) {
    const opt_entry *s = &src->items[i];
    opt_entry *d = &o->items[i];
    *d = *s;
    d->key = dup_str(s->key);
    d->s = s->s ? dup_str(s->s) : NULL;
    o->count = i + 1;
    if (d->key == NULL || (s->s != NULL && d->s == NULL)) {
      msc_options_free(o);
      return oom(strlen(s->key) + (s->s ? strlen(s->s) : 0) + 2);
    }
  }
  *out = o;
  return MSC_OK;
}

msc_status msci_options_get_string_alloc(const msc_options *o, const char *key, char **out) {
  static const char fn[] = "msci_options_get_string_alloc";
  const char *text;
  char *heap;
  msc_status rc = get_string_ref(o, fn, key, out, &text, &heap);
  if (rc != MSC_OK)
    return rc;
  if (heap != NULL) {
    *out = heap;
    return MSC_OK;
  }
  char *p = dup_str(text);
  if (p == NULL)
    return oom(strlen(text) + 1);
  *out = p;
  return MSC_OK;
}

#define MSCI_KEY_CAP 256

static msc_status format_key(char *key, const char *fn, const char *fmt, va_list ap) {
  if (fmt == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: fmt is NULL", fn);
  int n = vsnprintf(key, MSCI_KEY_CAP, fmt, ap);
  if (n < 0 || n >= MSCI_KEY_CAP)
    return msci_fail(MSC_E_NOT_FOUND, "%s: option key too long", fn);
  return MSC_OK;
}

msc_status msci_options_get_intf(const msc_options *o, int64_t *out, const char *fmt, ...) {
  char key[MSCI_KEY_CAP];
  va_list ap;
  va_start(ap, fmt);
  msc_status rc = format_key(key, "msci_options_get_intf", fmt, ap);
  va_end(ap);
  return rc != MSC_OK ? rc : msc_options_get_int(o, key, out);
}

msc_status msci_options_get_floatf(const msc_options *o, double *out, const char *fmt, ...) {
  char key[MSCI_KEY_CAP];
  va_list ap;
  va_start(ap, fmt);
  msc_status rc = format_key(key, "msci_options_get_floatf", fmt, ap);
  va_end(ap);
  return rc != MSC_OK ? rc : msc_options_get_float(o, key, out);
}

msc_status msci_options_get_string_allocf(const msc_options *o, char **out, const char *fmt,
                                          ...) {
  char key[MSCI_KEY_CAP];
  va_list ap;
  va_start(ap, fmt);
  msc_status rc = format_key(key, "msci_options_get_string_allocf", fmt, ap);
  va_end(ap);
  return rc != MSC_OK ? rc : msci_options_get_string_alloc(o, key, out);
}

/* ---------------------------------------------------------------------------------- */
/* JSON                                                                                */
/* ---------------------------------------------------------------------------------- */

msc_status msci_options_to_json_alloc(const msc_options *o, char **out) {
  if (o == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_to_json_alloc: %s is NULL",
                     o == NULL ? "opts" : "out");
  json_t *obj = json_object();
  if (obj == NULL)
    return oom(64);
  for (int32_t i = 0; i < o->count; i++) {
    const opt_entry *e = &o->items[i];
    json_t *v;
    switch (e->def->type) {
    case MSCI_OPT_INT:
      v = json_integer((json_int_t)e->i);
      break;
    case MSCI_OPT_FLOAT:
      v = json_real(e->f);
      break;
    default:
      v = json_string(e->s);
      break;
    }
    if (v == NULL || json_object_set_new(obj, e->key, v) != 0) {
      json_decref(obj);
      return oom(strlen(e->key) + 64);
    }
  }
  char *text = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(obj);
  if (text == NULL)
    return oom(64);
  /* json_dumps allocates with jansson's allocator (malloc unless the program changed
   * it with json_set_alloc_funcs): hand back a copy made with our own malloc. */
  char *p = dup_str(text);
  size_t n = strlen(text) + 1;
  free(text);
  if (p == NULL)
    return oom(n);
  *out = p;
  return MSC_OK;
}

msc_status msc_options_to_json(const msc_options *opts, char *buf, size_t cap, size_t *len) {
  static const char fn[] = "msc_options_to_json";
  if (opts == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: opts is NULL", fn);
  if (buf == NULL && cap > 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: buf is NULL but cap is %zu", fn, cap);
  char *text = NULL;
  msc_status rc = msci_options_to_json_alloc(opts, &text);
  if (rc != MSC_OK)
    return rc;
  rc = copy_out(fn, text, buf, cap, len);
  free(text);
  return rc;
}

/* The state of one msc_options_from_json call: the copy being changed and the keys
 * set so far (a key given twice, e.g. as {"proj": {"dim": 1}, "proj.dim": 2}, is an
 * error). */
typedef struct json_apply {
  msc_options *scratch;
  char **seen;
  int32_t nseen, capseen;
} json_apply;

static msc_status apply_set(json_apply *a, const char *key, msci_opt_type t, int64_t iv,
                            double fv, const char *sv) {
  for (int32_t i = 0; i < a->nseen; i++)
    if (strcmp(a->seen[i], key) == 0)
      return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' is given more than once", key);
  msc_status rc = set_value(a->scratch, "msc_options_from_json", key, t, iv, fv, sv);
  if (rc != MSC_OK)
    return rc;
  if (a->nseen == a->capseen) {
    int32_t cap = a->capseen ? a->capseen * 2 : 16;
    char **p = realloc(a->seen, (size_t)cap * sizeof *p);
    if (p == NULL)
      return oom((size_t)cap * sizeof *p);
    a->seen = p;
    a->capseen = cap;
  }
  if ((a->seen[a->nseen] = dup_str(key)) == NULL)
    return oom(strlen(key) + 1);
  a->nseen++;
  return MSC_OK;
}

/* prefix + "." + name (or name alone when prefix is empty), malloc'd. */
static char *join_key(const char *prefix, const char *name) {
  size_t lp = strlen(prefix), ln = strlen(name);
  char *k = malloc(lp + ln + 2);
  if (k == NULL)
    return NULL;
  if (lp > 0) {
    memcpy(k, prefix, lp);
    k[lp] = '.';
    memcpy(k + lp + 1, name, ln + 1);
  } else {
    memcpy(k, name, ln + 1);
  }
  return k;
}

static msc_status apply_value(json_apply *a, const char *key, json_t *v);

static msc_status apply_object(json_apply *a, const char *prefix, json_t *obj) {
  const char *name;
  json_t *member;
  json_object_foreach(obj, name, member) {
    char *key = join_key(prefix, name);
    if (key == NULL)
      return oom(strlen(prefix) + strlen(name) + 2);
    msc_status rc = apply_value(a, key, member);
    free(key);
    if (rc != MSC_OK)
      return rc;
  }
  return MSC_OK;
}

static msc_status apply_array(json_apply *a, const char *key, json_t *arr) {
  size_t n = json_array_size(arr);
  size_t nobj = 0, nnum = 0, nstr = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *x = json_array_get(arr, i);
    nobj += json_is_object(x);
    nnum += json_is_number(x);
    nstr += json_is_string(x);
  }
  if (n > 0 && nobj == n) { /* [{...}, {...}]: key.count and key.<i>.* */
    char *count_key = join_key(key, "count");
    if (count_key == NULL)
      return oom(strlen(key) + 7);
    msc_status rc = apply_set(a, count_key, MSCI_OPT_INT, (int64_t)n, 0.0, NULL);
    free(count_key);
    for (size_t i = 0; rc == MSC_OK && i < n; i++) {
      char idx[24];
      snprintf(idx, sizeof idx, "%zu", i);
      char *prefix = join_key(key, idx);
      if (prefix == NULL)
        return oom(strlen(key) + sizeof idx);
      rc = apply_object(a, prefix, json_array_get(arr, i));
      free(prefix);
    }
    return rc;
  }
  if (nobj == 0 && (nnum == n || nstr == n)) {
    strbuf b = {0};
    sb_puts(&b, "");
    for (size_t i = 0; i < n; i++) {
      json_t *x = json_array_get(arr, i);
      if (i > 0)
        sb_puts(&b, nnum == n ? "," : ";");
      if (json_is_integer(x)) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(x));
        sb_puts(&b, num);
      } else if (json_is_real(x)) {
        char num[40];
        msci_format_double(num, sizeof num, 9, json_real_value(x));
        sb_puts(&b, num);
      } else {
        const char *s = json_string_value(x);
        if (strchr(s, ';') != NULL) {
          free(b.p);
          return msci_fail(MSC_E_INVALID_ARGUMENT,
                           "option '%s': item %zu ('%.100s') contains ';', the separator",
                           key, i + 1, s);
        }
        sb_append(&b, s, json_string_length(x));
      }
    }
    if (b.failed) {
      free(b.p);
      return oom(b.len);
    }
    msc_status rc = apply_set(a, key, MSCI_OPT_STRING, 0, 0.0, b.p);
    free(b.p);
    return rc;
  }
  return msci_fail(MSC_E_INVALID_ARGUMENT,
                   "option '%s': an array must hold only objects, only numbers or only "
                   "strings",
                   key);
}

static msc_status apply_value(json_apply *a, const char *key, json_t *v) {
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    return apply_object(a, key, v);
  case JSON_ARRAY:
    return apply_array(a, key, v);
  case JSON_STRING:
    return apply_set(a, key, MSCI_OPT_STRING, 0, 0.0, json_string_value(v));
  case JSON_INTEGER:
    return apply_set(a, key, MSCI_OPT_INT, (int64_t)json_integer_value(v), 0.0, NULL);
  case JSON_REAL:
    return apply_set(a, key, MSCI_OPT_FLOAT, 0, json_real_value(v), NULL);
  case JSON_TRUE:
    return apply_set(a, key, MSCI_OPT_INT, 1, 0.0, NULL);
  case JSON_FALSE:
    return apply_set(a, key, MSCI_OPT_INT, 0, 0.0, NULL);
  default:
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': null is not a value", key);
  }
}

msc_status msc_options_from_json(msc_options *opts, const char *json) {
  if (opts == NULL || json == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_from_json: %s is NULL",
                     opts == NULL ? "opts" : "json");
  json_error_t err;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
  if (root == NULL) {
    if (json_error_code(&err) == json_error_out_of_memory)
      return oom(strlen(json));
    return msci_fail(MSC_E_BAD_FORMAT, "options JSON, line %d, column %d: %s", err.line,
                     err.column, err.text);
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return msci_fail(MSC_E_BAD_FORMAT, "options JSON: the document must be an object");
  }
  json_apply a = {0};
  msc_status rc = msci_options_copy(opts, &a.scratch);
  if (rc == MSC_OK)
    rc = apply_object(&a, "", root);
  json_decref(root);
  for (int32_t i = 0; i < a.nseen; i++)
    free(a.seen[i]);
  free(a.seen);
  if (rc != MSC_OK) {
    msc_options_free(a.scratch);
    return rc;
  }
  /* Swap the contents: opts keeps its address, the old entries go with scratch. */
  msc_options old = *opts;
  *opts = *a.scratch;
  *a.scratch = old;
  msc_options_free(a.scratch);
  return MSC_OK;
}

/* ---------------------------------------------------------------------------------- */
/* Cross-key checks of a model configuration                                           */
/* ---------------------------------------------------------------------------------- */

/* Checks the lengths and values of modality i's lists; *bands_out etc. not needed by
 * the caller, everything is reported through msci_fail. */
static msc_status check_modality(const msc_options *o, int32_t i) {
  static const char *const encoders[] = {"resnet18", "resnet34", "resnet50", "tiny"};
  int64_t bands = 0;
  char *enc = NULL, *block = NULL, *mean = NULL, *stdv = NULL, *widths = NULL,
       *depths = NULL;
  double *vals = NULL;
  msc_status rc = msci_options_get_intf(o, &bands, "modality.%d.bands", (int)i);
  if (rc == MSC_OK)
    rc = msci_options_get_string_allocf(o, &enc, "modality.%d.encoder", (int)i);
  if (rc == MSC_OK)
    rc = msci_options_get_string_allocf(o, &block, "modality.%d.block", (int)i);
  if (rc == MSC_OK)
    rc = msci_options_get_string_allocf(o, &mean, "modality.%d.mean", (int)i);
  if (rc == MSC_OK)
    rc = msci_options_get_string_allocf(o, &stdv, "modality.%d.std", (int)i);
  if (rc == MSC_OK)
    rc = msci_options_get_string_allocf(o, &widths, "modality.%d.widths", (int)i);
  if (rc == MSC_OK)
    rc = msci_options_get_string_allocf(o, &depths, "modality.%d.depths", (int)i);
  if (rc != MSC_OK)
    goto done;

  int known = 0;
  for (size_t k = 0; k < sizeof encoders / sizeof encoders[0]; k++)
    known |= strcmp(enc, encoders[k]) == 0;
  if (!known) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.encoder '%s' is not one of resnet18, resnet34, "
                   "resnet50, tiny",
                   (int)i, enc);
    goto done;
  }
  if (strcmp(block, "basic") != 0 && strcmp(block, "bottleneck") != 0) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.block '%s' is not one of basic, bottleneck", (int)i,
                   block);
    goto done;
  }

  /* mean and std: empty, or exactly `bands` values (std > 0). */
  vals = malloc(64 * sizeof *vals);
  if (vals == NULL) {
    rc = oom(64 * sizeof *vals);
    goto done;
  }
  const char *names[2] = {"mean", "std"};
  const char *texts[2] = {mean, stdv};
  for (int k = 0; k < 2; k++) {
    int32_t n = 0;
    rc = msci_parse_float_list(texts[k], vals, 64, &n);
    if (rc != MSC_OK && rc != MSC_E_BUFFER_TOO_SMALL) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "options: modality.%d.%s: %s", (int)i, names[k],
                     msc_last_error());
      goto done;
    }
    rc = MSC_OK;
    if (n != 0 && n != bands) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: modality.%d.%s has %d values but modality.%d.bands is %lld "
                     "(give one per band, or none)",
                     (int)i, names[k], (int)n, (int)i, (long long)bands);
      goto done;
    }
    for (int32_t j = 0; k == 1 && j < n; j++) {
      if (!(vals[j] > 0.0) || !isfinite(vals[j])) {
        char num[32];
        msci_format_double(num, sizeof num, 9, vals[j]);
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "options: modality.%d.std value %d is %s; standard deviations must "
                       "be > 0",
                       (int)i, (int)j + 1, num);
        goto done;
      }
    }
  }

  /* widths and depths: the same number of stages, 1..8, positive entries. */
  int64_t w[MSCI_MAX_STAGES], d[MSCI_MAX_STAGES];
  int32_t nw = 0, nd = 0;
  msc_status rw = msci_parse_int_list(widths, w, MSCI_MAX_STAGES, &nw);
  if (rw != MSC_OK && rw != MSC_E_BUFFER_TOO_SMALL) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT, "options: modality.%d.widths: %s", (int)i,
                   msc_last_error());
    goto done;
  }
  msc_status rd = msci_parse_int_list(depths, d, MSCI_MAX_STAGES, &nd);
  if (rd != MSC_OK && rd != MSC_E_BUFFER_TOO_SMALL) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT, "options: modality.%d.depths: %s", (int)i,
                   msc_last_error());
    goto done;
  }
  if (nw < 1 || nw > MSCI_MAX_STAGES) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.widths has %d stages, expected 1..%d", (int)i,
                   (int)nw, MSCI_MAX_STAGES);
    goto done;
  }
  if (nd != nw) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: modality.%d.widths has %d stages but modality.%d.depths has %d",
                   (int)i, (int)nw, (int)i, (int)nd);
    goto done;
  }
  for (int32_t j = 0; j < nw; j++) {
    if (w[j] < 1 || d[j] < 1) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: modality.%d: stage %d has width %lld and depth %lld; both "
                     "must be positive",
                     (int)i, (int)j + 1, (long long)w[j], (long long)d[j]);
      goto done;
    }
  }

done:
  free(vals);
  free(enc);
  free(block);
  free(mean);
  free(stdv);
  free(widths);
  free(depths);
  return rc;
}

static msc_status check_names_unique(const msc_options *o, int64_t count) {
  char *names[MSCI_MAX_MODALITIES] = {0};
  msc_status rc = MSC_OK;
  for (int32_t i = 0; rc == MSC_OK && i < count; i++) {
    rc = msci_options_get_string_allocf(o, &names[i], "modality.%d.name", (int)i);
    for (int32_t j = 0; rc == MSC_OK && j < i; j++)
      if (strcmp(names[i], names[j]) == 0)
        rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                       "options: modality.%d.name and modality.%d.name are both '%s'; "
                       "modality names must be unique",
                       (int)j, (int)i, names[i]);
  }
  for (int32_t i = 0; i < MSCI_MAX_MODALITIES; i++)
    free(names[i]);
  return rc;
}

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static msc_status check_class_names(const msc_options *o) {
  int64_t classes = 0;
  msc_status rc = msc_options_get_int(o, "classes", &classes);
  if (rc != MSC_OK)
    return rc;
  char *text = NULL;
  rc = msci_options_get_string_alloc(o, "class_names", &text);
  if (rc != MSC_OK)
    return rc;
  char **names = NULL;
  int32_t n = 0;
  rc = msci_split_names(text, &names, &n);
  free(text);
  if (rc != MSC_OK)
    return rc;
  if (n != classes) {
    rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                   "options: class_names has %d names but classes is %lld", (int)n,
                   (long long)classes);
    goto done;
  }
  for (int32_t i = 0; i < n; i++) {
    if (names[i][0] == '\0') {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT, "options: class_names: name %d is empty",
                     (int)i + 1);
      goto done;
    }
  }
  /* Duplicates: sort a copy of the pointers (the block's array is ours to reorder). */
  qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
  for (int32_t i = 1; i < n; i++) {
    if (strcmp(names[i - 1], names[i]) == 0) {
      rc = msci_fail(MSC_E_INVALID_ARGUMENT,
                     "options: class_names: '%.200s' appears more than once", names[i]);
      goto done;
    }
  }
done:
  free(names);
  return rc;
}

msc_status msci_options_check_model(const msc_options *o) {
  if (o == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_check_model: opts is NULL");
  int64_t count = 0;
  msc_status rc = msc_options_get_int(o, "modality.count", &count);
  if (rc != MSC_OK)
    return rc;
  if (count < 1 || count > MSCI_MAX_MODALITIES)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "options: modality.count is %lld, expected 1..%d",
                     (long long)count, MSCI_MAX_MODALITIES);
  for (int32_t i = 0; i < count; i++) {
    rc = check_modality(o, i);
    if (rc != MSC_OK)
      return rc;
  }
  rc = check_names_unique(o, count);
  if (rc != MSC_OK)
    return rc;
  return check_class_names(o);
}
