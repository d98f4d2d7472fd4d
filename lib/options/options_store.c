/*
 * options_store.c — the msc_options handle: create, copy and free, the typed setters
 * and getters (the value set, else the schema's default), and the getters of the
 * library's own code (malloc'd strings, printf-formatted keys).
 *
 * A handle is a small array of the keys set explicitly (key text, schema entry,
 * value); everything else reads its default. Every setter checks the key, the type
 * and the value's rule before it touches the handle, and allocates before it commits,
 * so a handle is unchanged by a failing call.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"
#include "options/options_impl.h"

/* ---------------------------------------------------------------------------------- */
/* Small helpers                                                                       */
/* ---------------------------------------------------------------------------------- */

msc_status msci_opt_oom(size_t bytes) {
  return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", bytes);
}

char *msci_opt_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL) memcpy(p, s, n);
  return p;
}

const char *msci_opt_type_noun(msci_opt_type t) {
  switch (t) {
  case MSCI_OPT_INT: return "an integer";
  case MSCI_OPT_FLOAT: return "a number";
  case MSCI_OPT_FLOATS: return "a list of numbers";
  default: return "a string";
  }
}

opt_entry *msci_opt_find_entry(const msc_options *o, const char *key) {
  for (int32_t i = 0; i < o->count; i++)
    if (strcmp(o->items[i].key, key) == 0) return &o->items[i];
  return NULL;
}

/* The first steps of every accessor: NULL checks (out, named out_name in the message,
 * is the value or out-parameter), then the key's schema entry. */
static msc_status resolve(const msc_options *o, const char *fn, const char *key,
                          const void *out, const char *out_name, const msci_opt_def **d,
                          int32_t *index) {
  if (o == NULL || key == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                     o == NULL     ? "opts"
                     : key == NULL ? "key"
                                   : out_name);
  return msci_opt_lookup(key, d, index);
}

/* Copies n floats into a new block (at least one element, so that NULL means failure). */
static float *dup_floats(const float *v, size_t n) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  if (p != NULL && n > 0) memcpy(p, v, n * sizeof *p);
  return p;
}

/* Adds the entry of key (schema d) if it is not set yet: the handle grows, the entry
 * holds no value. NULL when out of memory (the handle is unchanged). */
static opt_entry *entry_for(msc_options *o, const char *key, const msci_opt_def *d) {
  opt_entry *e = msci_opt_find_entry(o, key);
  if (e != NULL) return e;
  char *kcopy = msci_opt_strdup(key);
  if (kcopy == NULL) return NULL;
  if (o->count == o->cap) {
    int32_t cap = o->cap ? o->cap * 2 : 16;
    opt_entry *items = realloc(o->items, (size_t)cap * sizeof *items);
    if (items == NULL) {
      free(kcopy);
      return NULL;
    }
    o->items = items;
    o->cap = cap;
  }
  e = &o->items[o->count++];
  memset(e, 0, sizeof *e);
  e->key = kcopy;
  e->def = d;
  return e;
}

/* The value a setter was given: its C type and the value. */
typedef struct set_arg {
  msci_opt_type type; /* MSCI_OPT_FLOATS: a float array */
  int64_t i;
  double f;
  const char *s;
  const float *fl;
  size_t nfl;
} set_arg;

/* The common path of the setters. Checks the key, the type and the value's rule, then
 * allocates everything, then commits: the handle is unchanged on failure. */
static msc_status set_checked(msc_options *o, const char *fn, const char *key, set_arg v) {
  const msci_opt_def *d;
  int32_t index;
  const void *given = v.type == MSCI_OPT_STRING                ? (const void *)v.s
                      : v.type == MSCI_OPT_FLOATS && v.nfl > 0 ? (const void *)v.fl
                                                               : (const void *)fn;
  msc_status rc =
      resolve(o, fn, key, given, v.type == MSCI_OPT_FLOATS ? "values" : "value", &d, &index);
  if (rc != MSC_OK) return rc;
  int type_ok = v.type == d->type || (d->type == MSCI_OPT_FLOAT && v.type == MSCI_OPT_INT) ||
                (d->type == MSCI_OPT_FLOATS && v.type == MSCI_OPT_STRING);
  if (!type_ok)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' takes %s, not %s", key,
                     msci_opt_type_noun(d->type), msci_opt_type_noun(v.type));
  if (d->type == MSCI_OPT_FLOAT && v.type == MSCI_OPT_INT) v.f = (double)v.i;
  char *scopy = NULL;   /* STRING and FLOATS: the text */
  float *flcopy = NULL; /* FLOATS: the values */
  int32_t nfl = 0;
  switch (d->type) {
  case MSCI_OPT_INT: rc = msci_opt_check_int(d, key, v.i); break;
  case MSCI_OPT_FLOAT: rc = msci_opt_check_float(d, key, v.f); break;
  case MSCI_OPT_FLOATS:
    if (v.type == MSCI_OPT_STRING) { /* the text form: kept as given */
      rc = msci_opt_floats_from_text(d, key, v.s, &flcopy, &nfl);
      if (rc == MSC_OK && (scopy = msci_opt_strdup(v.s)) == NULL)
        rc = msci_opt_oom(strlen(v.s) + 1);
    } else {
      rc = msci_opt_check_floats(d, key, v.fl, v.nfl);
      if (rc == MSC_OK) {
        nfl = (int32_t)v.nfl;
        flcopy = dup_floats(v.fl, v.nfl);
        scopy = msci_opt_floats_text(v.fl, v.nfl);
        if (flcopy == NULL || scopy == NULL) rc = msci_opt_oom(v.nfl * 24 + 1);
      }
    }
    break;
  default:
    rc = msci_opt_check_string(d, key, v.s);
    if (rc == MSC_OK && (scopy = msci_opt_strdup(v.s)) == NULL)
      rc = msci_opt_oom(strlen(v.s) + 1);
    break;
  }
  opt_entry *e = NULL;
  if (rc == MSC_OK && (e = entry_for(o, key, d)) == NULL)
    rc = msci_opt_oom(strlen(key) + sizeof *e);
  if (rc != MSC_OK) {
    free(scopy);
    free(flcopy);
    return rc;
  }
  switch (d->type) {
  case MSCI_OPT_INT: e->i = v.i; break;
  case MSCI_OPT_FLOAT: e->f = v.f; break;
  default:
    free(e->s);
    e->s = scopy;
    free(e->fl);
    e->fl = flcopy;
    e->nfl = nfl;
    break;
  }
  return MSC_OK;
}

msc_status msci_opt_set_value(msc_options *o, const char *fn, const char *key,
                              msci_opt_type vtype, int64_t iv, double fv, const char *sv) {
  set_arg v = {.type = vtype, .i = iv, .f = fv, .s = sv};
  return set_checked(o, fn, key, v);
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
  if (rc != MSC_OK) return rc;
  *text = *heap;
  return MSC_OK;
}

/* Finds key for a getter wanting type want: schema entry, set entry (or NULL). */
static msc_status get_prepare(const msc_options *o, const char *fn, const char *key,
                              const void *out, msci_opt_type want, const msci_opt_def **d,
                              int32_t *index, const opt_entry **e) {
  msc_status rc = resolve(o, fn, key, out, "out", d, index);
  if (rc != MSC_OK) return rc;
  /* A float list reads as a string too: its text form. */
  int as_text = want == MSCI_OPT_STRING && (*d)->type == MSCI_OPT_FLOATS;
  if ((*d)->type != want && !as_text)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' holds %s, not %s", key,
                     msci_opt_type_noun((*d)->type), msci_opt_type_noun(want));
  *e = msci_opt_find_entry(o, key);
  return MSC_OK;
}

/* The value of an int or float key (want): the value set, else the default parsed. */
static msc_status get_number(const msc_options *o, const char *fn, const char *key,
                             msci_opt_type want, int64_t *iout, double *fout) {
  const msci_opt_def *d;
  int32_t index;
  const opt_entry *e;
  const void *out = want == MSCI_OPT_INT ? (const void *)iout : (const void *)fout;
  msc_status rc = get_prepare(o, fn, key, out, want, &d, &index, &e);
  if (rc != MSC_OK) return rc;
  if (e != NULL) {
    if (want == MSCI_OPT_INT)
      *iout = e->i;
    else
      *fout = e->f;
    return MSC_OK;
  }
  const char *text;
  char *heap;
  rc = default_text(o, d, index, &text, &heap);
  if (rc != MSC_OK) return rc;
  char *end = NULL;
  int ok;
  long long iv = 0;
  double fv = 0.0;
  errno = 0;
  if (want == MSCI_OPT_INT) {
    iv = strtoll(text, &end, 10);
    ok = end != text && *end == '\0' && errno == 0;
  } else {
    fv = msci_strtod(text, &end);
    ok = end != text && *end == '\0' && isfinite(fv);
  }
  free(heap);
  if (!ok) return msci_fail(MSC_E_INTERNAL, "option '%s': bad default", key);
  if (want == MSCI_OPT_INT)
    *iout = (int64_t)iv;
  else
    *fout = fv;
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
  if (rc != MSC_OK) return rc;
  if (e != NULL) {
    *text = e->s;
    return MSC_OK;
  }
  return default_text(o, d, index, text, heap);
}

/* The size protocol of msc_options_get_string and msc_options_to_json. */
msc_status msci_opt_copy_out(const char *fn, const char *s, char *buf, size_t cap,
                             size_t *len) {
  size_t n = strlen(s);
  if (len != NULL) *len = n;
  if (cap > n) {
    memcpy(buf, s, n + 1);
    return MSC_OK;
  }
  if (cap > 0) {
    memcpy(buf, s, cap - 1);
    buf[cap - 1] = '\0';
  }
  return msci_fail(MSC_E_BUFFER_TOO_SMALL, "%s: the text has %zu bytes, the buffer %zu", fn,
                   n + 1, cap);
}

/* ---------------------------------------------------------------------------------- */
/* Public API                                                                          */
/* ---------------------------------------------------------------------------------- */

msc_status msc_options_create(msc_options **out) {
  if (out == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_create: out is NULL");
  msc_options *o = calloc(1, sizeof *o);
  if (o == NULL) return msci_opt_oom(sizeof *o);
  *out = o;
  return MSC_OK;
}

static void clear_items(msc_options *o) {
  for (int32_t i = 0; i < o->count; i++) {
    free(o->items[i].key);
    free(o->items[i].s);
    free(o->items[i].fl);
  }
  free(o->items);
  o->items = NULL;
  o->count = o->cap = 0;
}

void msc_options_free(msc_options *opts) {
  if (opts == NULL) return;
  clear_items(opts);
  free(opts);
}

void msci_opt_replace(msc_options *dst, msc_options *src) {
  /* Swap the contents: dst keeps its address, its old entries go with src. */
  msc_options old = *dst;
  *dst = *src;
  *src = old;
  msc_options_free(src);
}

msc_status msc_options_set_int(msc_options *opts, const char *key, int64_t value) {
  return msci_opt_set_value(opts, "msc_options_set_int", key, MSCI_OPT_INT, value, 0.0, NULL);
}

msc_status msc_options_set_float(msc_options *opts, const char *key, double value) {
  return msci_opt_set_value(opts, "msc_options_set_float", key, MSCI_OPT_FLOAT, 0, value, NULL);
}

msc_status msc_options_set_string(msc_options *opts, const char *key, const char *value) {
  return msci_opt_set_value(opts, "msc_options_set_string", key, MSCI_OPT_STRING, 0, 0.0,
                            value);
}

msc_status msc_options_set_floats(msc_options *opts, const char *key, const float *values,
                                  size_t n) {
  set_arg v = {.type = MSCI_OPT_FLOATS, .fl = values, .nfl = n};
  return set_checked(opts, "msc_options_set_floats", key, v);
}

/* The values of a float-list key: *vals points into the handle, or to *heap (malloc'd,
 * the caller frees it) for a default. */
static msc_status get_floats_ref(const msc_options *o, const char *fn, const char *key,
                                 const void *out, const float **vals, int32_t *n,
                                 float **heap) {
  const msci_opt_def *d;
  int32_t index;
  *heap = NULL;
  msc_status rc = resolve(o, fn, key, out, "n", &d, &index);
  if (rc != MSC_OK) return rc;
  if (d->type != MSCI_OPT_FLOATS)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' holds %s, not %s", key,
                     msci_opt_type_noun(d->type), msci_opt_type_noun(MSCI_OPT_FLOATS));
  const opt_entry *e = msci_opt_find_entry(o, key);
  if (e != NULL) {
    *vals = e->fl;
    *n = e->nfl;
    return MSC_OK;
  }
  const char *text;
  char *text_heap;
  rc = default_text(o, d, index, &text, &text_heap);
  if (rc == MSC_OK) rc = msci_opt_floats_from_text(d, key, text, heap, n);
  free(text_heap);
  *vals = *heap;
  return rc;
}

msc_status msc_options_get_floats(const msc_options *opts, const char *key, float *out,
                                  size_t cap, size_t *n) {
  static const char fn[] = "msc_options_get_floats";
  if (out == NULL && cap > 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: out is NULL but cap is %zu", fn, cap);
  const float *vals = NULL;
  float *heap = NULL;
  int32_t count = 0;
  msc_status rc = get_floats_ref(opts, fn, key, n, &vals, &count, &heap);
  if (rc == MSC_OK) {
    *n = (size_t)count;
    if ((size_t)count > cap)
      rc = msci_fail(MSC_E_BUFFER_TOO_SMALL, "%s: option '%s' has %d values, room for %zu", fn,
                     key, (int)count, cap);
    else if (count > 0)
      memcpy(out, vals, (size_t)count * sizeof *out);
  }
  free(heap);
  return rc;
}

msc_status msc_options_get_int(const msc_options *opts, const char *key, int64_t *out) {
  int64_t v = 0;
  msc_status rc =
      get_number(opts, "msc_options_get_int", key, MSCI_OPT_INT, out ? &v : NULL, NULL);
  if (rc == MSC_OK) *out = v;
  return rc;
}

msc_status msc_options_get_float(const msc_options *opts, const char *key, double *out) {
  double v = 0;
  msc_status rc =
      get_number(opts, "msc_options_get_float", key, MSCI_OPT_FLOAT, NULL, out ? &v : NULL);
  if (rc == MSC_OK) *out = v;
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
  if (rc != MSC_OK) return rc;
  rc = msci_opt_copy_out(fn, text, buf, cap, len);
  free(heap);
  return rc;
}

msc_status msc_options_is_set(const msc_options *opts, const char *key, int32_t *out) {
  const msci_opt_def *d;
  int32_t index;
  msc_status rc = resolve(opts, "msc_options_is_set", key, out, "out", &d, &index);
  if (rc != MSC_OK) return rc;
  *out = msci_opt_find_entry(opts, key) != NULL;
  return MSC_OK;
}

msc_status msci_options_copy(const msc_options *src, msc_options **out) {
  if (src == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_copy: %s is NULL",
                     src == NULL ? "src" : "out");
  msc_options *o = calloc(1, sizeof *o);
  if (o == NULL) return msci_opt_oom(sizeof *o);
  if (src->count > 0) {
    o->items = calloc((size_t)src->count, sizeof *o->items);
    if (o->items == NULL) {
      free(o);
      return msci_opt_oom((size_t)src->count * sizeof *o->items);
    }
    o->cap = src->count;
  }
  for (int32_t i = 0; i < src->count; i++) {
    const opt_entry *s = &src->items[i];
    opt_entry *d = &o->items[i];
    *d = *s;
    d->key = msci_opt_strdup(s->key);
    d->s = s->s ? msci_opt_strdup(s->s) : NULL;
    d->fl = s->fl ? dup_floats(s->fl, (size_t)s->nfl) : NULL;
    o->count = i + 1;
    if (d->key == NULL || (s->s != NULL && d->s == NULL) || (s->fl != NULL && d->fl == NULL)) {
      msc_options_free(o);
      return msci_opt_oom(strlen(s->key) + (s->s ? strlen(s->s) : 0) + 2);
    }
  }
  *out = o;
  return MSC_OK;
}

msc_status msc_options_copy(const msc_options *src, msc_options **out) {
  if (src == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_copy: %s is NULL",
                     src == NULL ? "src" : "out");
  return msci_options_copy(src, out);
}

msc_status msci_options_get_string_alloc(const msc_options *o, const char *key, char **out) {
  static const char fn[] = "msci_options_get_string_alloc";
  const char *text;
  char *heap;
  msc_status rc = get_string_ref(o, fn, key, out, &text, &heap);
  if (rc != MSC_OK) return rc;
  if (heap != NULL) {
    *out = heap;
    return MSC_OK;
  }
  char *p = msci_opt_strdup(text);
  if (p == NULL) return msci_opt_oom(strlen(text) + 1);
  *out = p;
  return MSC_OK;
}

#define MSCI_KEY_CAP 256

static msc_status format_key(char *key, const char *fn, const char *fmt, va_list ap) {
  if (fmt == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: fmt is NULL", fn);
  int n = vsnprintf(key, MSCI_KEY_CAP, fmt, ap);
  if (n < 0 || n >= MSCI_KEY_CAP)
    return msci_fail(MSC_E_NOT_FOUND, "%s: option key too long", fn);
  return MSC_OK;
}

/* The body of the getters whose key is a printf format: formats fmt's arguments into
 * key, or returns the error. */
#define WITH_FORMATTED_KEY(fn)                                                                 \
  char key[MSCI_KEY_CAP];                                                                      \
  va_list ap;                                                                                  \
  va_start(ap, fmt);                                                                           \
  msc_status rc = format_key(key, fn, fmt, ap);                                                \
  va_end(ap);                                                                                  \
  if (rc != MSC_OK) return rc

msc_status msci_options_get_intf(const msc_options *o, int64_t *out, const char *fmt, ...) {
  WITH_FORMATTED_KEY("msci_options_get_intf");
  return msc_options_get_int(o, key, out);
}

msc_status msci_options_get_floatf(const msc_options *o, double *out, const char *fmt, ...) {
  WITH_FORMATTED_KEY("msci_options_get_floatf");
  return msc_options_get_float(o, key, out);
}

msc_status msci_options_get_string_allocf(const msc_options *o, char **out, const char *fmt,
                                          ...) {
  WITH_FORMATTED_KEY("msci_options_get_string_allocf");
  return msci_options_get_string_alloc(o, key, out);
}

msc_status msci_options_get_floatsf(const msc_options *o, float *out, size_t cap, size_t *n,
                                    const char *fmt, ...) {
  WITH_FORMATTED_KEY("msci_options_get_floatsf");
  return msc_options_get_floats(o, key, out, cap, n);
}
