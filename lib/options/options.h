/*
 * options.h — the msc_options handle inside the library: the schema of every key, and
 * Layer: options (lib/options/README.md says what it owns and may include).
 * helpers for the code that reads options (model creation, training, the tool).
 *
 * The schema is one table (lib/options/options_schema.c). A key pattern may contain one '#',
 * which stands for a modality index written in decimal without leading zeros,
 * 0 .. MSCI_OPT_MAX_INDEX-1 ("modality.#.bands" matches "modality.7.bands" but not
 * "modality.8.bands", "modality.x.bands" or "modality.01.bands"). Every key has a
 * type, a default (a text, or a function of the other keys), a rule for valid values
 * and a one-line description. Adding a key is one line of the table.
 *
 * The setters check each value on its own. Rules that tie several keys together
 * (mean/std lengths vs bands, class_names vs classes, unique modality names, ...)
 * are checked by msci_options_check_model, which model creation calls.
 *
 * Who owns what (options_impl.h is what these files share, nobody else includes it):
 *   options_schema.c   the table: every key's type, default, rule and help line, and
 *                      the computed defaults (encoder presets, class names)
 *   options_keys.c     finding a key in the table, the rules of values (ranges,
 *                      choices, msci_check_*), the accessors for --help and the docs
 *   options_parse.c    value texts: C-locale numbers, ','-separated lists, names
 *                      lists, UTF-8 validation
 *   options_store.c    the handle: create/copy/free, typed setters and getters,
 *                      defaults, the msci_options_get_*f helpers
 *   options_json.c     msc_options_to_json / msc_options_from_json
 *   options_check.c    msci_options_check_model, the cross-key rules
 */
#ifndef MOSAIC_LIB_OPTIONS_H
#define MOSAIC_LIB_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include "common/internal.h"
#include "mosaic/mosaic.h"

/* '#' in a key pattern: a modality index 0 .. MSCI_OPT_MAX_INDEX-1. */
#define MSCI_OPT_MAX_INDEX 8
/* Most modalities a model has (modality.count). */
#define MSCI_MAX_MODALITIES 8
/* Longest modality (or backend) name, without the NUL. */
#define MSCI_NAME_MAX 31
/* Most stages an encoder has (length of modality.#.widths / .depths). */
#define MSCI_MAX_STAGES 8

/* MSCI_OPT_FLOATS: a list of floats (modality.#.mean), set with msc_options_set_floats
 * or as text ("1.5,-2", msc_options_set_string); reads as both. */
typedef enum { MSCI_OPT_INT, MSCI_OPT_FLOAT, MSCI_OPT_STRING, MSCI_OPT_FLOATS } msci_opt_type;

/* Most values a float-list key holds. */
#define MSCI_OPT_MAX_FLOATS 1024

/* ---------------------------------------------------------------------------------- */
/* Schema                                                                              */
/* ---------------------------------------------------------------------------------- */

/* Computes a default from the other keys (o is never NULL; index is the value that
 * '#' stood for, -1 for a pattern without '#'). *out receives a malloc'd text: the
 * value itself for a string key, its decimal form for an int or float key. Returns
 * MSC_OK or an error through msci_fail (MSC_E_OUT_OF_MEMORY). */
typedef msc_status (*msci_opt_default_fn)(const msc_options *o, int32_t index, char **out);

/* A custom rule for string values: returns 1 when value is valid; otherwise 0, with
 * the reason (without the key's name) written into why[0..cap). */
typedef struct msci_opt_check {
  int (*fn)(const char *value, char *why, size_t cap);
  const char *what; /* the rule in a few words, for help: "positive integers, ','-separated" */
} msci_opt_check;

typedef struct msci_opt_def {
  const char *pattern; /* "classes", "modality.#.bands" */
  msci_opt_type type;
  const char *def;             /* the default as text; with def_fn, how it is computed */
  msci_opt_default_fn def_fn;  /* NULL: def is the default */
  int64_t imin, imax;          /* int: valid range, inclusive */
  double fmin, fmax;           /* float: valid range (always finite); floats: fmin is
                                   each value's lower bound (-FLT_MAX: none), fmax unused */
  int fmin_open;               /* float, floats: fmin itself excluded */
  const char *choices;         /* string: '|'-separated allowed values, or NULL */
  const msci_opt_check *check; /* string: custom rule, or NULL (choices and check
                                   may not both be set; neither: any UTF-8 text) */
  const char *help;            /* one line */
} msci_opt_def;

/* The table (options_schema.c), in the order of `mosaic --help` and docs/options.md. */
extern const msci_opt_def msci_opt_table[];
extern const int32_t msci_opt_table_count;

/* Ready-made string rules for the table. */
extern const msci_opt_check msci_check_name;       /* [a-z0-9_]+, <= 31 characters */
extern const msci_opt_check msci_check_pos_ints;   /* "64,128": integers 1..65536 */
extern const msci_opt_check msci_check_names_list; /* non-empty names, ';'-sep */

/* Accessors for `mosaic --help` and docs/options.md; i in 0 .. count-1, otherwise
 * NULL / MSCI_OPT_INT / 0. */
int32_t msci_options_key_count(void);
const char *msci_options_key_pattern(int32_t i);
const char *msci_options_key_help(int32_t i);
msci_opt_type msci_options_key_type(int32_t i);
const char *msci_options_key_type_name(int32_t i); /* "int", "float", "string", "floats" */
/* The default as text ("120", "resnet18"), or how it is computed ("s1, s2, m<i>"). */
const char *msci_options_key_default(int32_t i);
/* Writes the rule ("1..64", "one of resnet18, resnet34, resnet50, tiny", "(0, 10]")
 * into buf (always NUL-terminated when cap > 0); returns the full length. */
size_t msci_options_key_rule(int32_t i, char *buf, size_t cap);

/* ---------------------------------------------------------------------------------- */
/* Handles                                                                             */
/* ---------------------------------------------------------------------------------- */

/* A deep copy of src (set keys only; defaults stay computed). *out untouched on error.
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT (NULL) or MSC_E_OUT_OF_MEMORY. msc_options_copy
 * is its public form (the same, with messages naming msc_options_copy). */
msc_status msci_options_copy(const msc_options *src, msc_options **out);

/* The set keys as one compact JSON object sorted by key, malloc'd (caller frees).
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT or MSC_E_OUT_OF_MEMORY. */
msc_status msci_options_to_json_alloc(const msc_options *o, char **out);

/* The value (or default) of a string key as a malloc'd copy (caller frees); same
 * statuses as msc_options_get_string, without the size ones. */
msc_status msci_options_get_string_alloc(const msc_options *o, const char *key, char **out);

/* Getters whose key is a printf format: msci_options_get_intf(o, &v,
 * "modality.%d.bands", i). Same statuses as the public getters. */
msc_status msci_options_get_intf(const msc_options *o, int64_t *out, const char *fmt, ...)
    MSCI_PRINTF(3, 4);
msc_status msci_options_get_floatf(const msc_options *o, double *out, const char *fmt, ...)
    MSCI_PRINTF(3, 4);
msc_status msci_options_get_string_allocf(const msc_options *o, char **out, const char *fmt,
                                          ...) MSCI_PRINTF(3, 4);
msc_status msci_options_get_floatsf(const msc_options *o, float *out, size_t cap, size_t *n,
                                    const char *fmt, ...) MSCI_PRINTF(5, 6);

/* Cross-key checks for model creation: modality.count 1..8; per modality a known
 * encoder and block, mean/std with 0 or `bands` values, std > 0, widths and depths of
 * equal length 1..8 with positive entries; unique modality names; class_names with
 * exactly `classes` non-empty, distinct names. Returns MSC_OK or
 * MSC_E_INVALID_ARGUMENT with a message naming the keys (MSC_E_OUT_OF_MEMORY). */
msc_status msci_options_check_model(const msc_options *o);

/* ---------------------------------------------------------------------------------- */
/* Parsing list values                                                                 */
/* ---------------------------------------------------------------------------------- */

/* Parses a ','-separated list of decimal integers ("64,128,256"; blanks around items
 * are allowed; "" is the empty list). Writes the first min(count, cap) values to out
 * (out may be NULL when cap is 0) and the count to *n. Returns MSC_OK;
 * MSC_E_BUFFER_TOO_SMALL when count > cap (*n still set); MSC_E_INVALID_ARGUMENT for
 * NULL s or n, an empty item, a non-number or a value outside int64. */
msc_status msci_parse_int_list(const char *s, int64_t *out, int32_t cap, int32_t *n);

/* The same for finite numbers ("-12.62,5.116", "1e-3"), read in the C locale whatever
 * the process locale is. NaN and infinities are refused. */
msc_status msci_parse_float_list(const char *s, double *out, int32_t cap, int32_t *n);

/* Splits a sep-separated list ("Urban fabric;Arable land") into *n items, kept exactly
 * (no trimming; empty items kept; "" gives 0 items). *out is one malloc'd block: the
 * array of *n pointers followed by the text; free(*out) frees everything. *out and *n
 * are untouched on error. Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_OUT_OF_MEMORY. */
msc_status msci_split_list(const char *s, char sep, char ***out, int32_t *n);
/* msci_split_list with ';', the separator of class_names. */
msc_status msci_split_names(const char *s, char ***out, int32_t *n);
/* Option key's ','-list of names (spaces around each trimmed), each one of names[0..n)
 * at most once, into out (indices into names, in list order; *count of them; out holds
 * n). Errors name the key and the bad entry (data.sits.modalities, seg.modalities). */
msc_status msci_parse_name_list(const char *key, const char *text, const char *const *names,
                                int32_t n, int32_t *out, int32_t *count);

/* Locale-independent number text: strtod in the C locale, and "%.*g" with '.' as the
 * decimal point (buf NUL-terminated when cap > 0; returns snprintf's length). */
double msci_strtod(const char *s, char **end);
int msci_format_double(char *buf, size_t cap, int precision, double v);

#endif /* MOSAIC_LIB_OPTIONS_H */
