/*
 * options_impl.h — what the options_*.c files share among themselves and nobody else
 * Layer: options (lib/options/README.md says what it owns and may include).
 * sees: the layout of the handle and the entry points of the store, the schema lookup
 * and the list parser. The rest of the library includes options.h only.
 */
#ifndef MOSAIC_LIB_OPTIONS_IMPL_H
#define MOSAIC_LIB_OPTIONS_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"
#include "options/options.h"

/* One key set explicitly. */
typedef struct opt_entry {
  char *key; /* canonical key text ("modality.1.bands") */
  const msci_opt_def *def;
  int64_t i; /* MSCI_OPT_INT */
  double f;  /* MSCI_OPT_FLOAT */
  char *s;   /* MSCI_OPT_STRING; MSCI_OPT_FLOATS: the text form (owned) */
  float *fl; /* MSCI_OPT_FLOATS: the values (owned, never NULL when set) */
  int32_t nfl;
} opt_entry;

struct msc_options {
  opt_entry *items; /* in the order they were first set */
  int32_t count;
  int32_t cap;
};

/* ---- options_store.c ------------------------------------------------------------- */

/* MSC_E_OUT_OF_MEMORY with "options: out of memory (<bytes> bytes)". */
msc_status msci_opt_oom(size_t bytes);
/* A malloc'd copy of s, or NULL. */
char *msci_opt_strdup(const char *s);
/* "an integer", "a number", "a string": for messages. */
const char *msci_opt_type_noun(msci_opt_type t);
/* The entry of key when it is set, else NULL. */
opt_entry *msci_opt_find_entry(const msc_options *o, const char *key);
/* The common path of the setters (fn names the caller in messages): vtype is the C type
 * given; iv, fv or sv the value. Checks key, type and rule; the handle is unchanged on
 * error. */
msc_status msci_opt_set_value(msc_options *o, const char *fn, const char *key,
                              msci_opt_type vtype, int64_t iv, double fv, const char *sv);
/* Moves the contents of src into dst (dst keeps its address; its old entries are
 * freed) and frees src: how a call that worked on a copy commits it. */
void msci_opt_replace(msc_options *dst, msc_options *src);
/* The size protocol of msc_options_get_string and msc_options_to_json: s into
 * buf[0..cap), *len (if not NULL) = strlen(s); MSC_E_BUFFER_TOO_SMALL when cap <= it. */
msc_status msci_opt_copy_out(const char *fn, const char *s, char *buf, size_t cap, size_t *len);

/* ---- options_keys.c ---------------------------------------------------------------- */

/* The schema entry of key and what its '#' stood for, or MSC_E_NOT_FOUND. */
msc_status msci_opt_lookup(const char *key, const msci_opt_def **d, int32_t *index);
/* The rule of d as text ("1..64"), with the size protocol of msci_options_key_rule. */
size_t msci_opt_rule_text(const msci_opt_def *d, char *buf, size_t cap);
/* Checks value v of key (schema d) against d's rule: MSC_OK or MSC_E_INVALID_ARGUMENT
 * with a message naming the key and the rule. */
msc_status msci_opt_check_int(const msci_opt_def *d, const char *key, int64_t v);
msc_status msci_opt_check_float(const msci_opt_def *d, const char *key, double v);
msc_status msci_opt_check_string(const msci_opt_def *d, const char *key, const char *v);
/* The same for the values of a float-list key: at most MSCI_OPT_MAX_FLOATS, finite (as
 * floats) and within d's lower bound. */
msc_status msci_opt_check_floats(const msci_opt_def *d, const char *key, const float *v,
                                 size_t n);
/* Parses and checks the text form of a float-list key ("1.5, -2": each item read as a
 * double in the C locale and rounded to float): *out receives the values (malloc'd,
 * never NULL on success), *n their count. Messages name the key, the item and the rule
 * ("finite numbers, ','-separated (or empty)"). */
msc_status msci_opt_floats_from_text(const msci_opt_def *d, const char *key, const char *text,
                                     float **out, int32_t *n);

/* ---- options_parse.c --------------------------------------------------------------- */

/* The core of the list parsers: a ','-separated list of integers (is_float 0, into
 * iout) or finite numbers (into fout). Returns 1 with the count in *n and the first
 * min(count, cap) values in the output (which may be NULL), or 0 with the reason of
 * the failure ("item 2 ('x') is not a finite number") in why[0..why_cap). */
int msci_opt_parse_list(const char *s, int is_float, int64_t *iout, double *fout, int32_t cap,
                        int32_t *n, char *why, size_t why_cap);
/* "1.5,-2,0.100000001": values with "%.9g" in the C locale (which gives every float
 * back exactly), ','-separated; malloc'd, NULL when out of memory. */
char *msci_opt_floats_text(const float *v, size_t n);
/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points above
 * U+10FFFF): JSON output needs it. */
int msci_opt_utf8_valid(const char *s);

#endif /* MOSAIC_LIB_OPTIONS_IMPL_H */
