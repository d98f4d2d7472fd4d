/*
 * options_json.c — options as JSON: the keys set as one compact object
 * (msc_options_to_json), and documents applied to a handle (msc_options_from_json:
 * nested objects, arrays of objects for indexed keys, arrays of numbers or strings for
 * list values). A document is applied to a copy that replaces the handle's contents only
 * when every member was accepted.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"
#include "options/options.h"
#include "options/options_impl.h"

/* A growable text buffer; on allocation failure `failed` is set and appends stop. */
typedef struct strbuf {
  char *p;
  size_t len, cap;
  int failed;
} strbuf;

static void sb_append(strbuf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (b->len + n + 1 > cap) cap *= 2;
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

static void sb_puts(strbuf *b, const char *s) {
  sb_append(b, s, strlen(s));
}

msc_status msci_options_to_json_alloc(const msc_options *o, char **out) {
  if (o == NULL || out == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msci_options_to_json_alloc: %s is NULL",
                     o == NULL ? "opts" : "out");
  json_t *obj = json_object();
  if (obj == NULL) return msci_opt_oom(64);
  for (int32_t i = 0; i < o->count; i++) {
    const opt_entry *e = &o->items[i];
    json_t *v;
    switch (e->def->type) {
    case MSCI_OPT_INT: v = json_integer((json_int_t)e->i); break;
    case MSCI_OPT_FLOAT: v = json_real(e->f); break;
    default: v = json_string(e->s); break;
    }
    if (v == NULL || json_object_set_new(obj, e->key, v) != 0) {
      json_decref(obj);
      return msci_opt_oom(strlen(e->key) + 64);
    }
  }
  char *text = json_dumps(obj, JSON_SORT_KEYS | JSON_COMPACT);
  json_decref(obj);
  if (text == NULL) return msci_opt_oom(64);
  /* json_dumps allocates with jansson's allocator (malloc unless the program changed
   * it with json_set_alloc_funcs): hand back a copy made with our own malloc. */
  char *p = msci_opt_strdup(text);
  size_t n = strlen(text) + 1;
  free(text);
  if (p == NULL) return msci_opt_oom(n);
  *out = p;
  return MSC_OK;
}

msc_status msc_options_to_json(const msc_options *opts, char *buf, size_t cap, size_t *len) {
  static const char fn[] = "msc_options_to_json";
  if (opts == NULL) return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: opts is NULL", fn);
  if (buf == NULL && cap > 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "%s: buf is NULL but cap is %zu", fn, cap);
  char *text = NULL;
  msc_status rc = msci_options_to_json_alloc(opts, &text);
  if (rc != MSC_OK) return rc;
  rc = msci_opt_copy_out(fn, text, buf, cap, len);
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
  msc_status rc = msci_opt_set_value(a->scratch, "msc_options_from_json", key, t, iv, fv, sv);
  if (rc != MSC_OK) return rc;
  if (a->nseen == a->capseen) {
    int32_t cap = a->capseen ? a->capseen * 2 : 16;
    char **p = realloc(a->seen, (size_t)cap * sizeof *p);
    if (p == NULL) return msci_opt_oom((size_t)cap * sizeof *p);
    a->seen = p;
    a->capseen = cap;
  }
  if ((a->seen[a->nseen] = msci_opt_strdup(key)) == NULL) return msci_opt_oom(strlen(key) + 1);
  a->nseen++;
  return MSC_OK;
}

/* prefix + "." + name (or name alone when prefix is empty), malloc'd. */
static char *join_key(const char *prefix, const char *name) {
  size_t lp = strlen(prefix), ln = strlen(name);
  char *k = malloc(lp + ln + 2);
  if (k == NULL) return NULL;
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
    if (key == NULL) return msci_opt_oom(strlen(prefix) + strlen(name) + 2);
    msc_status rc = apply_value(a, key, member);
    free(key);
    if (rc != MSC_OK) return rc;
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
    if (count_key == NULL) return msci_opt_oom(strlen(key) + 7);
    msc_status rc = apply_set(a, count_key, MSCI_OPT_INT, (int64_t)n, 0.0, NULL);
    free(count_key);
    for (size_t i = 0; rc == MSC_OK && i < n; i++) {
      char idx[24];
      snprintf(idx, sizeof idx, "%zu", i);
      char *prefix = join_key(key, idx);
      if (prefix == NULL) return msci_opt_oom(strlen(key) + sizeof idx);
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
      if (i > 0) sb_puts(&b, nnum == n ? "," : ";");
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
                           "option '%s': item %zu ('%.100s') contains ';', the separator", key,
                           i + 1, s);
        }
        sb_append(&b, s, json_string_length(x));
      }
    }
    if (b.failed) {
      free(b.p);
      return msci_opt_oom(b.len);
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
  case JSON_OBJECT: return apply_object(a, key, v);
  case JSON_ARRAY: return apply_array(a, key, v);
  case JSON_STRING: return apply_set(a, key, MSCI_OPT_STRING, 0, 0.0, json_string_value(v));
  case JSON_INTEGER:
    return apply_set(a, key, MSCI_OPT_INT, (int64_t)json_integer_value(v), 0.0, NULL);
  case JSON_REAL: return apply_set(a, key, MSCI_OPT_FLOAT, 0, json_real_value(v), NULL);
  case JSON_TRUE: return apply_set(a, key, MSCI_OPT_INT, 1, 0.0, NULL);
  case JSON_FALSE: return apply_set(a, key, MSCI_OPT_INT, 0, 0.0, NULL);
  default: return msci_fail(MSC_E_INVALID_ARGUMENT, "option '%s': null is not a value", key);
  }
}

msc_status msc_options_from_json(msc_options *opts, const char *json) {
  if (opts == NULL || json == NULL)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_from_json: %s is NULL",
                     opts == NULL ? "opts" : "json");
  json_error_t err;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &err);
  if (root == NULL) {
    if (json_error_code(&err) == json_error_out_of_memory) return msci_opt_oom(strlen(json));
    return msci_fail(MSC_E_BAD_FORMAT, "options JSON, line %d, column %d: %s", err.line,
                     err.column, err.text);
  }
  if (!json_is_object(root)) {
    json_decref(root);
    return msci_fail(MSC_E_BAD_FORMAT, "options JSON: the document must be an object");
  }
  json_apply a = {0};
  msc_status rc = msci_options_copy(opts, &a.scratch);
  if (rc == MSC_OK) rc = apply_object(&a, "", root);
  json_decref(root);
  for (int32_t i = 0; i < a.nseen; i++) free(a.seen[i]);
  free(a.seen);
  if (rc != MSC_OK) {
    msc_options_free(a.scratch);
    return rc;
  }
  msci_opt_replace(opts, a.scratch);
  return MSC_OK;
}
