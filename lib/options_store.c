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

#include "internal.h"
#include "mosaic/mosaic.h"
#include "options.h"
#include "options_impl.h"

/* ---------------------------------------------------------------------------------- */
/* Small helpers                                                                       */
/* ---------------------------------------------------------------------------------- */

msc_status msci_opt_oom(size_t bytes) {
  return msci_fail(MSC_E_OUT_OF_MEMORY, "options: out of memory (%zu bytes)", bytes);
}

char *msci_opt_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

const char *msci_opt_type_noun(msci_opt_type t) {
  switch (t) {
  case MSCI_OPT_INT:
    return "an integer";
  case MSCI_OPT_FLOAT:
    return "a number";
  default:
    return "a string";
  }
}


opt_entry *msci_opt_find_entry(const msc_options *o, const char *key) {
  for (int32_t i = 0; i < o->count; i++)
    if (strcmp(o->items[i].key, key) == 0)
      return &o->items[i];
  return NULL;
}


/* The first steps of every accessor: NULL checks (out, named out_name in the message,
 * is the value or out-parameter), then the key's schema entry. */
static msc_status resolve(const msc_options *o, const char *fn, const char *key,
                          const void *out, const char *out_name, const msci_opt_def **d,
                          int32_t *index) {
  if (o == NULL || key == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                     o == NULL ? "opts" : key == NULL ? "key" : out_name);
  return msci_opt_lookup(key, d, index);
}

/* The common path of the setters: vtype is the C type given (int, float or string). */
msc_status msci_opt_set_value(msc_options *o, const char *fn, const char *key,
                            msci_opt_type vtype, int64_t iv, double fv, const char *sv) {
  const msci_opt_def *d;
  int32_t index;
  msc_status rc = resolve(o, fn, key, vtype == MSCI_OPT_STRING ? (const void *)sv : fn,
                          "value", &d, &index);
  if (rc != MSC_OK)
    return rc;
  int type_ok = vtype == d->type || (d->type == MSCI_OPT_FLOAT && vtype == MSCI_OPT_INT);
  if (!type_ok)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s' takes %s, not %s", key,
                     msci_opt_type_noun(d->type), msci_opt_type_noun(vtype));
  if (d->type == MSCI_OPT_FLOAT && vtype == MSCI_OPT_INT)
    fv = (double)iv;
  switch (d->type) {
  case MSCI_OPT_INT:
    rc = msci_opt_check_int(d, key, iv);
    break;
  case MSCI_OPT_FLOAT:
    rc = msci_opt_check_float(d, key, fv);
    break;
  default:
    rc = msci_opt_check_string(d, key, sv);
    break;
  }
  if (rc != MSC_OK)
    return rc;

  /* Allocate everything first, then commit: the handle is unchanged on failure. */
  char *scopy = NULL;
  if (d->type == MSCI_OPT_STRING && (scopy = msci_opt_strdup(sv)) == NULL)
    return msci_opt_oom(strlen(sv) + 1);
  opt_entry *e = msci_opt_find_entry(o, key);
  if (e == NULL) {
    char *kcopy = msci_opt_strdup(key);
    if (kcopy == NULL) {
      free(scopy);
      return msci_opt_oom(strlen(key) + 1);
    }
    if (o->count == o->cap) {
      int32_t cap = o->cap ? o->cap * 2 : 16;
      opt_entry *items = realloc(o->items, (size_t)cap * sizeof *items);
      if (items == NULL) {
        free(scopy);
        free(kcopy);
        return msci_opt_oom((size_t)cap * sizeof *items);
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
  msc_status rc = resolve(o, fn, key, out, "out", d, index);
  if (rc != MSC_OK)
    return rc;
  if ((*d)->type != want)
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
  if (rc != MSC_OK)
    return rc;
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
  if (rc != MSC_OK)
    return rc;
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
  if (!ok)
    return msci_fail(MSC_E_INTERNAL, "option '%s': bad default", key);
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
  if (rc != MSC_OK)
    return rc;
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
    return msci_opt_oom(sizeof *o);
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
  return msci_opt_set_value(opts, "msc_options_set_int", key, MSCI_OPT_INT, value, 0.0, NULL);
}

msc_status msc_options_set_float(msc_options *opts, const char *key, double value) {
  return msci_opt_set_value(opts, "msc_options_set_float", key, MSCI_OPT_FLOAT, 0, value, NULL);
}

msc_status msc_options_set_string(msc_options *opts, const char *key, const char *value) {
  return msci_opt_set_value(opts, "msc_options_set_string", key, MSCI_OPT_STRING, 0, 0.0, value);
}

msc_status msc_options_get_int(const msc_options *opts, const char *key, int64_t *out) {
  int64_t v = 0;
  msc_status rc =
      get_number(opts, "msc_options_get_int", key, MSCI_OPT_INT, out ? &v : NULL, NULL);
  if (rc == MSC_OK)
    *out = v;
  return rc;
}

msc_status msc_options_get_float(const msc_options *opts, const char *key, double *out) {
  double v = 0;
  msc_status rc =
      get_number(opts, "msc_options_get_float", key, MSCI_OPT_FLOAT, NULL, out ? &v : NULL);
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
  rc = msci_opt_copy_out(fn, text, buf, cap, len);
  free(heap);
  return rc;
}

msc_status msc_options_is_set(const msc_options *opts, const char *key, int32_t *out) {
  const msci_opt_def *d;
  int32_t index;
  msc_status rc = resolve(opts, "msc_options_is_set", key, out, "out", &d, &index);
  if (rc != MSC_OK)
    return rc;
  *out = msci_opt_find_entry(opts, key) != NULL;
  return MSC_OK;
}

msc_status msci_options_copy(const msc_options *src, msc_options **out) {
  if (src == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_copy: %s is NULL",
                     src == NULL ? "src" : "out");
  msc_options *o = calloc(1, sizeof *o);
  if (o == NULL)
    return msci_opt_oom(sizeof *o);
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
    o->count = i + 1;
    if (d->key == NULL || (s->s != NULL && d->s == NULL)) {
      msc_options_free(o);
      return msci_opt_oom(strlen(s->key) + (s->s ? strlen(s->s) : 0) + 2);
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
  char *p = msci_opt_strdup(text);
  if (p == NULL)
    return msci_opt_oom(strlen(text) + 1);
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

/* The body of the getters whose key is a printf format: formats fmt's arguments into
 * key, or returns the error. */
#define WITH_FORMATTED_KEY(fn)                                                              \
  char key[MSCI_KEY_CAP];                                                                  \
  va_list ap;                                                                              \
  va_start(ap, fmt);                                                                       \
  msc_status rc = format_key(key, fn, fmt, ap);                                            \
  va_end(ap);                                                                              \
  if (rc != MSC_OK)                                                                        \
  return rc

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
