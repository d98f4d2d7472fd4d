/*
 * options_keys.c — the schema seen from the store: finding a key's entry in the table
 * of options_schema.c (patterns with '#'), the rule of every value (ranges, choices and
 * the ready-made string rules the table uses), the "did you mean" of the messages for an
 * unknown key or a value outside a key's choices, and the accessors behind
 * `mosaic --help` and docs/options.md.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"
#include "options/options_impl.h"

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

#define MSCI_POS_INT_MAX 65536

static int check_pos_ints(const char *v, char *why, size_t cap) {
  int64_t vals[256];
  int32_t n = 0;
  if (!msci_opt_parse_list(v, 0, vals, NULL, 256, &n, why, cap)) return 0;
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
      snprintf(why, cap, "item %d (%lld) is out of range 1..%d", (int)i + 1, (long long)vals[i],
               MSCI_POS_INT_MAX);
      return 0;
    }
  }
  return 1;
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
      if (*p == '\0') break;
      item++;
      start = p + 1;
    } else if ((unsigned char)*p < 0x20u || *p == 0x7f) {
      snprintf(why, cap, "name %d contains a control character", item);
      return 0;
    }
  }
  return 1;
}

const msci_opt_check msci_check_name = {check_name,
                                        "a name: [a-z0-9_]+, at most 31 characters"};
const msci_opt_check msci_check_pos_ints = {check_pos_ints,
                                            "integers 1..65536, ','-separated (at least one)"};
const msci_opt_check msci_check_names_list = {
    check_names_list, "non-empty names without control characters, ';'-separated"};

/* ---------------------------------------------------------------------------------- */
/* Schema lookup and accessors                                                         */
/* ---------------------------------------------------------------------------------- */

/* Whether key matches pattern; *index receives what '#' stood for (-1 without '#'). */
static int match_pattern(const char *pat, const char *key, int32_t *index) {
  *index = -1;
  while (*pat != '\0') {
    if (*pat == '#') {
      if (*key < '0' || *key > '9') return 0;
      if (key[0] == '0' && key[1] >= '0' && key[1] <= '9') return 0; /* leading zero */
      int32_t v = 0;
      int digits = 0;
      while (*key >= '0' && *key <= '9') {
        if (++digits > 4) return 0;
        v = v * 10 + (*key - '0');
        key++;
      }
      if (v >= MSCI_OPT_MAX_INDEX) return 0;
      *index = v;
      pat++;
    } else {
      if (*pat != *key) return 0;
      pat++;
      key++;
    }
  }
  return *key == '\0';
}

static const msci_opt_def *find_def(const char *key, int32_t *index) {
  for (int32_t i = 0; i < msci_opt_table_count; i++)
    if (match_pattern(msci_opt_table[i].pattern, key, index)) return &msci_opt_table[i];
  return NULL;
}

int32_t msci_options_key_count(void) {
  return msci_opt_table_count;
}

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
  if (d == NULL) return NULL;
  switch (d->type) {
  case MSCI_OPT_INT: return "int";
  case MSCI_OPT_FLOAT: return "float";
  case MSCI_OPT_FLOATS: return "floats";
  default: return "string";
  }
}

const char *msci_options_key_default(int32_t i) {
  const msci_opt_def *d = def_at(i);
  return d ? d->def : NULL;
}

/* The rule of each value of a float-list key: "finite numbers", "numbers > 0". */
static void floats_rule(const msci_opt_def *d, char *buf, size_t cap) {
  if (d->fmin <= -FLT_MAX) {
    snprintf(buf, cap, "finite numbers");
    return;
  }
  char lo[32];
  msci_format_double(lo, sizeof lo, 9, d->fmin);
  snprintf(buf, cap, "numbers %s %s", d->fmin_open ? ">" : ">=", lo);
}

/* The rule of d as text ("1..64"). */
size_t msci_opt_rule_text(const msci_opt_def *d, char *buf, size_t cap) {
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
  case MSCI_OPT_FLOATS: {
    char each[64];
    floats_rule(d, each, sizeof each);
    snprintf(tmp, sizeof tmp, "%s, ','-separated (or empty)", each);
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
    if (buf != NULL && cap > 0) buf[0] = '\0';
    return 0;
  }
  return msci_opt_rule_text(d, buf, cap);
}

/* ---------------------------------------------------------------------------------- */
/* "Did you mean": the closest valid name to a mistyped key or value                   */
/* ---------------------------------------------------------------------------------- */

/* The same rule as the tool's (tools/suggest.c): Damerau-Levenshtein distance (optimal
 * string alignment), a name suggested when its distance d is at most 2 and at most half
 * the typed word's length; the first name at the smallest distance wins. */
#define SUGGEST_MAX_LEN 96

static int suggest_distance(const char *a, size_t la, const char *b, size_t lb) {
  if (la > SUGGEST_MAX_LEN || lb > SUGGEST_MAX_LEN) return 1 << 20;
  int rows[3][SUGGEST_MAX_LEN + 1];
  for (size_t j = 0; j <= lb; j++) rows[1][j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int *cur = rows[(i + 1) % 3], *prev = rows[i % 3], *prev2 = rows[(i + 2) % 3];
    cur[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int d = prev[j] + 1;
      if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
      if (prev[j - 1] + (a[i - 1] != b[j - 1]) < d) d = prev[j - 1] + (a[i - 1] != b[j - 1]);
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
          prev2[j - 2] + 1 < d)
        d = prev2[j - 2] + 1;
      cur[j] = d;
    }
  }
  return rows[(la + 1) % 3][lb];
}

typedef struct suggestion {
  const char *word;
  int best;
  char name[SUGGEST_MAX_LEN + 1];
} suggestion;

static void suggest_consider(suggestion *s, const char *name, size_t len) {
  size_t lw = strlen(s->word);
  int d = suggest_distance(s->word, lw, name, len);
  if (d == 0 || d > 2 || 2 * (size_t)d > lw || d >= s->best) return;
  s->best = d;
  memcpy(s->name, name, len);
  s->name[len] = '\0';
}

/* "; did you mean 'optim.lr'?" for an unknown key, or "". A pattern's '#' is compared
 * as the first number of the key (or 0), so "modality.1.encodr" suggests
 * "modality.1.encoder". */
static void suggest_key(const char *key, char *out, size_t cap) {
  char num[8] = "0";
  const char *digits = strpbrk(key, "0123456789");
  if (digits != NULL) {
    size_t n = strspn(digits, "0123456789");
    if (n < sizeof num) snprintf(num, sizeof num, "%.*s", (int)n, digits);
  }
  suggestion s = {key, 3, ""};
  for (int32_t i = 0; i < msci_opt_table_count; i++) {
    char cand[SUGGEST_MAX_LEN + 1];
    size_t k = 0;
    for (const char *p = msci_opt_table[i].pattern; *p && k < SUGGEST_MAX_LEN; p++) {
      if (*p == '#')
        for (const char *q = num; *q && k < SUGGEST_MAX_LEN; q++) cand[k++] = *q;
      else
        cand[k++] = *p;
    }
    suggest_consider(&s, cand, k);
  }
  if (s.name[0] != '\0')
    snprintf(out, cap, "; did you mean '%s'?", s.name);
  else if (cap > 0)
    out[0] = '\0';
}

/* The same for a value that is not one of a '|'-separated list of choices. */
static void suggest_choice(const char *choices, const char *v, char *out, size_t cap) {
  suggestion s = {v, 3, ""};
  for (const char *p = choices; *p;) {
    size_t n = strcspn(p, "|");
    if (n <= SUGGEST_MAX_LEN) suggest_consider(&s, p, n);
    p += n + (p[n] == '|' ? 1 : 0);
  }
  if (s.name[0] != '\0')
    snprintf(out, cap, "; did you mean '%s'?", s.name);
  else if (cap > 0)
    out[0] = '\0';
}

/* ---------------------------------------------------------------------------------- */
/* Values                                                                              */
/* ---------------------------------------------------------------------------------- */

msc_status msci_opt_check_int(const msci_opt_def *d, const char *key, int64_t v) {
  if (v < d->imin || v > d->imax)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %lld is out of range %lld..%lld",
                     key, (long long)v, (long long)d->imin, (long long)d->imax);
  return MSC_OK;
}

msc_status msci_opt_check_float(const msci_opt_def *d, const char *key, double v) {
  int ok = isfinite(v) && (d->fmin_open ? v > d->fmin : v >= d->fmin) && v <= d->fmax;
  if (!ok) {
    char num[32], rule[96];
    msci_format_double(num, sizeof num, 9, v);
    msci_opt_rule_text(d, rule, sizeof rule);
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %s is out of range %s", key, num,
                     rule);
  }
  return MSC_OK;
}

msc_status msci_opt_check_string(const msci_opt_def *d, const char *key, const char *v) {
  if (!msci_opt_utf8_valid(v))
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': the value is not valid UTF-8", key);
  if (d->choices != NULL) {
    size_t vlen = strlen(v);
    for (const char *p = d->choices; *p;) {
      const char *bar = strchr(p, '|');
      size_t n = bar ? (size_t)(bar - p) : strlen(p);
      if (n == vlen && memcmp(p, v, n) == 0) return MSC_OK;
      p += n + (bar ? 1 : 0);
    }
    char rule[256], hint[160];
    msci_opt_rule_text(d, rule, sizeof rule);
    suggest_choice(d->choices, v, hint, sizeof hint);
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': '%.200s' is not %s%s", key, v, rule,
                     hint);
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

/* The schema entry of key, or MSC_E_NOT_FOUND. */
msc_status msci_opt_lookup(const char *key, const msci_opt_def **d, int32_t *index) {
  *d = find_def(key, index);
  if (*d == NULL) {
    char hint[160];
    suggest_key(key, hint, sizeof hint);
    return msci_fail(MSC_E_NOT_FOUND, "unknown option '%s'%s", key, hint);
  }
  return MSC_OK;
}

/* Whether v may be value number `item` (1-based) of float-list key d; otherwise the
 * reason in why ("item 2 (0) is not > 0"; noun: "item" for text, "value" for arrays). */
static int float_value_ok(const msci_opt_def *d, double v, const char *noun, size_t item,
                          char *why, size_t cap) {
  char num[32];
  msci_format_double(num, sizeof num, 9, v);
  if (!isfinite(v)) {
    snprintf(why, cap, "%s %zu (%s) is not a finite number", noun, item, num);
    return 0;
  }
  if (!isfinite((float)v)) {
    snprintf(why, cap, "%s %zu (%s) is outside the range of float", noun, item, num);
    return 0;
  }
  if (d->fmin > -FLT_MAX && !(d->fmin_open ? v > d->fmin : v >= d->fmin)) {
    char lo[32];
    msci_format_double(lo, sizeof lo, 9, d->fmin);
    snprintf(why, cap, "%s %zu (%s) is not %s %s", noun, item, num,
             d->fmin_open ? ">" : ">=", lo);
    return 0;
  }
  return 1;
}

msc_status msci_opt_check_floats(const msci_opt_def *d, const char *key, const float *v,
                                 size_t n) {
  if (n > MSCI_OPT_MAX_FLOATS)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %zu values, more than %d", key, n,
                     MSCI_OPT_MAX_FLOATS);
  char why[160];
  for (size_t j = 0; j < n; j++)
    if (!float_value_ok(d, v[j], "value", j + 1, why, sizeof why))
      return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %s", key, why);
  return MSC_OK;
}

msc_status msci_opt_floats_from_text(const msci_opt_def *d, const char *key, const char *text,
                                     float **out, int32_t *n) {
  double *vals = malloc(MSCI_OPT_MAX_FLOATS * sizeof *vals);
  float *fl = malloc(MSCI_OPT_MAX_FLOATS * sizeof *fl);
  if (vals == NULL || fl == NULL) {
    free(vals);
    free(fl);
    return msci_opt_oom(MSCI_OPT_MAX_FLOATS * (sizeof *vals + sizeof *fl));
  }
  char why[256];
  int32_t count = 0;
  int ok =
      msci_opt_parse_list(text, 1, NULL, vals, MSCI_OPT_MAX_FLOATS, &count, why, sizeof why);
  if (ok && count > MSCI_OPT_MAX_FLOATS) {
    snprintf(why, sizeof why, "the list has %d values, more than %d", (int)count,
             MSCI_OPT_MAX_FLOATS);
    ok = 0;
  }
  for (int32_t j = 0; ok && j < count; j++) {
    ok = float_value_ok(d, vals[j], "item", (size_t)j + 1, why, sizeof why);
    fl[j] = (float)vals[j];
  }
  free(vals);
  if (!ok) {
    free(fl);
    char rule[128];
    msci_opt_rule_text(d, rule, sizeof rule);
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': %s (expected %s)", key, why, rule);
  }
  *out = fl;
  *n = count;
  return MSC_OK;
}
