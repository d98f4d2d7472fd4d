/*
 * options_keys.c — the schema seen from the store: finding a key's entry in the table
 * of options_schema.c (patterns with '#'), the rule of every value (ranges, choices and
 * the ready-made string rules the table uses), and the accessors behind `mosaic --help`
 * and docs/options.md.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "mosaic/mosaic.h"
#include "options.h"
#include "options_impl.h"

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
  if (!msci_opt_parse_list(v, 0, vals, NULL, 256, &n, why, cap))
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
  int ok = msci_opt_parse_list(v, 1, NULL, vals, MSCI_LIST_CHECK_CAP, &n, why, cap);
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
  return msci_opt_rule_text(d, buf, cap);
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
    msci_opt_rule_text(d, rule, sizeof rule);
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

/* The schema entry of key, or MSC_E_NOT_FOUND. */
msc_status msci_opt_lookup(const char *key, const msci_opt_def **d, int32_t *index) {
  *d = find_def(key, index);
  if (*d == NULL)
    return msci_fail(MSC_E_NOT_FOUND, "unknown option '%s'", key);
  return MSC_OK;
}
