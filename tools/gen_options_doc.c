/*
 * gen_options_doc.c — prints docs/options.md from the option schema (lib/options/options_schema.c).
 *
 *   gen_options_doc > docs/options.md
 *
 * An internal program, linked against the static archive mosaic_internal (it reads the
 * schema through the msci_options_key_* accessors of lib/options/options.h) and never installed.
 * tests/check_options_doc.sh runs it and fails when docs/options.md differs from its
 * output, so the reference can never drift from the table.
 *
 * Keys are grouped by the first dotted component of their pattern ("modality.#.bands":
 * "modality"; "seed": "seed"). Known components map to the named groups below; any
 * other component becomes a group of its own (keys without a dot go to "Other keys"),
 * so a new key appears in the document without touching this program. Groups come in
 * the order of k_groups, then unknown ones in the order they first appear in the table;
 * keys keep the table's order within a group. The output depends only on the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options/options.h"

/* Known first components and the group each belongs to. */
typedef struct group_map {
  const char *component;
  const char *group;
} group_map;

static const group_map k_map[] = {
    {"backend", "Run time"},
    {"threads", "Run time"},
    {"seed", "Run time"},
    {"precision", "Run time"},
    {"conv_algorithm", "Run time"},
    {"modality", "Modalities"},
    {"classes", "Heads"},
    {"class_names", "Heads"},
    {"labels", "Heads"},
    {"proj", "Heads"},
    {"fused", "Heads"},
    {"bn", "BatchNorm"},
    {"train", "Training"},
    {"lambda", "Training"},
    {"tau", "Training"},
    {"mulsupcon", "Training"},
    {"optim", "Optimiser"},
    {"aug", "Augmentation"},
};

/* The named groups, in document order, with the sentence that opens each. */
typedef struct group_info {
  const char *title;
  const char *intro; /* NULL: none */
} group_info;

static const group_info k_groups[] = {
    {"Run time",
     "Where and how a model runs. `msc_model_create` reads `backend`, `threads`,\n"
     "`precision` and `conv_algorithm` from its options and `msc_model_load` from its\n"
     "`runtime` argument; they are not part of the model's configuration. `seed` is: it is\n"
     "stored with the model."},
    {"Modalities",
     "One set of keys per modality `i` = 0 .. `modality.count`-1 (`#` in the key). The\n"
     "architecture keys `stem_width` .. `depths` default to the preset named by\n"
     "`modality.#.encoder`; setting one overrides that part of the preset only\n"
     "([model.md](model.md) describes the encoders)."},
    {"Heads",
     "The projection heads (one per modality and one over the fused features) and the\n"
     "linear classifier."},
    {"BatchNorm", "Settings shared by every BatchNorm layer of the model."},
    {"Training",
     "The training objective: the loss preset and, overriding it, the weights (λ) and\n"
     "temperatures (τ) of the loss terms. `msc_model_create` applies the training keys of\n"
     "its options; `msc_train_configure` changes them."},
    {"Optimiser", "The optimiser and its learning-rate schedule, set like the training keys."},
    {"Augmentation", "The augmentations of the training views, set like the training keys."},
};

#define N_GROUPS_MAX 64

/* The first dotted component of pattern into buf ("" never: patterns are non-empty). */
static void first_component(const char *pattern, char *buf, size_t cap) {
  size_t n = strcspn(pattern, ".");
  if (n >= cap) n = cap - 1;
  memcpy(buf, pattern, n);
  buf[n] = '\0';
}

/* The title of the group of key i, in static storage or in buf. */
static const char *group_of(int32_t i, char *buf, size_t cap) {
  const char *pattern = msci_options_key_pattern(i);
  char comp[64];
  first_component(pattern, comp, sizeof comp);
  for (size_t k = 0; k < sizeof k_map / sizeof k_map[0]; k++)
    if (strcmp(comp, k_map[k].component) == 0) return k_map[k].group;
  if (strchr(pattern, '.') == NULL) return "Other keys";
  snprintf(buf, cap, "`%s.*`", comp);
  return buf;
}

/* Text for a Markdown table cell: characters with a meaning in Markdown or HTML are
 * escaped, so a help text shows as written. */
static void put_text(FILE *out, const char *s) {
  for (; *s; s++) {
    switch (*s) {
    case '|': fputs("\\|", out); break;
    case '\\': fputs("\\\\", out); break;
    case '`': fputs("\\`", out); break;
    case '*': fputs("\\*", out); break;
    case '<': fputs("&lt;", out); break;
    case '>': fputs("&gt;", out); break;
    case '&': fputs("&amp;", out); break;
    case '\n': fputc(' ', out); break;
    default: fputc(*s, out); break;
    }
  }
}

/* A value as inline code in a table cell (only '|' needs escaping there); text that
 * holds a backtick is written as plain text instead. */
static void put_code(FILE *out, const char *s) {
  if (strchr(s, '`') != NULL) {
    put_text(out, s);
    return;
  }
  fputc('`', out);
  for (; *s; s++) {
    if (*s == '|')
      fputs("\\|", out);
    else
      fputc(*s == '\n' ? ' ' : *s, out);
  }
  fputc('`', out);
}

static void put_default(FILE *out, int32_t i) {
  const char *def = msci_options_key_default(i);
  if (msci_opt_table[i].def_fn != NULL) {
    put_text(out, def); /* a description of how it is computed */
  } else if (def[0] == '\0' && msci_options_key_type(i) == MSCI_OPT_FLOATS) {
    fputs("none", out);
  } else if (def[0] == '\0') {
    fputs("`\"\"` (empty)", out);
  } else {
    put_code(out, def);
  }
}

static void put_rule(FILE *out, int32_t i) {
  size_t len = msci_options_key_rule(i, NULL, 0);
  char *rule = malloc(len + 1);
  if (rule == NULL) {
    fputs("?", out);
    return;
  }
  msci_options_key_rule(i, rule, len + 1);
  /* An int range without an upper bound reads better as ">= min". */
  static const char no_max[] = "..9223372036854775807";
  size_t nm = sizeof no_max - 1;
  if (msci_options_key_type(i) == MSCI_OPT_INT && len > nm &&
      strcmp(rule + len - nm, no_max) == 0) {
    rule[len - nm] = '\0';
    fputs("&ge; ", out);
    put_text(out, rule);
  } else {
    put_text(out, rule);
  }
  free(rule);
}

static void put_table(FILE *out, const char *title) {
  fputs("| key | type | default | valid values | description |\n", out);
  fputs("|---|---|---|---|---|\n", out);
  for (int32_t i = 0; i < msci_options_key_count(); i++) {
    char buf[80];
    if (strcmp(group_of(i, buf, sizeof buf), title) != 0) continue;
    fputs("| ", out);
    put_code(out, msci_options_key_pattern(i));
    fputs(" | ", out);
    put_text(out, msci_options_key_type_name(i));
    fputs(" | ", out);
    put_default(out, i);
    fputs(" | ", out);
    put_rule(out, i);
    fputs(" | ", out);
    put_text(out, msci_options_key_help(i));
    fputs(" |\n", out);
  }
}

static const char k_intro[] =
    "# Options\n"
    "\n"
    "<!-- Generated by tools/gen_options_doc.c from lib/options/options_schema.c: do not "
    "edit.\n"
    "     Regenerate with: build/tools/gen_options_doc > docs/options.md\n"
    "     (the test test_options_doc fails when this file is out of date). -->\n"
    "\n"
    "An `msc_options` handle holds typed key/value settings: the model configuration for\n"
    "`msc_model_create`, the run-time settings (`backend`, `threads`) for `msc_model_load`, "
    "and\n"
    "training. This page lists every key the library knows; each has a type (int, float,\n"
    "string, or floats: a list of floats), a default and a rule for valid values, and a key\n"
    "that is not set holds its default.\n"
    "\n"
    "## Setting options\n"
    "\n"
    "- `msc_options_set_int`, `msc_options_set_float` and `msc_options_set_string` set one\n"
    "  key; an int value is accepted for a float key. An unknown key is `MSC_E_NOT_FOUND`; a\n"
    "  value of another type or outside the key's rule is `MSC_E_INVALID_ARGUMENT`, with a\n"
    "  message naming the key and the rule. The handle is unchanged on error.\n"
    "- `msc_options_set_floats` sets a floats key (`modality.#.mean`, `modality.#.std`) to an\n"
    "  array of floats; NaN, infinities and values outside the key's rule are refused. A\n"
    "  floats key also takes its text form with `msc_options_set_string`: numbers separated\n"
    "  by `,` (`\"1.5, -2e3\"`, `\"\"` for none), each read in the C locale and rounded to\n"
    "  float. `msc_options_get_floats` reads the values, `msc_options_get_string` the text\n"
    "  (values set as floats are written with `%.9g`, which reads back as the same float).\n"
    "- `msc_options_get_*` read a key (its value, else its default); `msc_options_is_set`\n"
    "  says whether it was set explicitly.\n"
    "- `msc_options_from_dataset` sets the keys a dataset determines: the modalities (count,\n"
    "  names, bands, size), `classes`, `class_names` and, unless set already, the label\n"
    "  mode `labels` (`single` for a single-label dataset such as EuroSAT) and the\n"
    "  normalisation (`modality.#.mean`/`std`, published or computed statistics).\n"
    "- `msc_options_from_json` applies a JSON object. Nested objects join keys with `.`\n"
    "  (`{\"proj\": {\"dim\": 64}}` sets `proj.dim`); an array of objects sets `<key>.count`\n"
    "  and `<key>.<i>.*` (`{\"modality\": [{\"name\": \"s2\", \"bands\": 12}]}` sets\n"
    "  `modality.count` = 1, `modality.0.name` and `modality.0.bands`); an array of numbers\n"
    "  becomes a `,`-separated string (`\"widths\": [64, 128]` is `\"64,128\"`) and an array "
    "of\n"
    "  strings a `;`-separated one (`class_names`). JSON integers are ints, numbers with a\n"
    "  fraction or exponent are floats, `true`/`false` are the ints 1/0, `null` is an error, "
    "and\n"
    "  a key given twice is an error. The whole document is checked before anything is\n"
    "  applied: on error the handle is unchanged and the message names the key (or the line\n"
    "  and column of a syntax error).\n"
    "- `msc_options_to_json` writes the keys that are set as one flat JSON object with "
    "dotted,\n"
    "  sorted keys; `msc_options_from_json` reads that form too.\n"
    "- `msc_options_copy` makes an independent deep copy of a handle: every key that is set,\n"
    "  with its type and exact value (a floats key keeps its values bit for bit and its text\n"
    "  form).\n"
    "\n";

/* The rest of the introduction (a second array: each stays below the 4095 characters a
 * C compiler must support in one string literal). */
static const char k_intro_keys[] =
    "A `#` in a key stands for a modality index written in decimal without leading zeros,\n"
    "0 .. 7: `modality.#.bands` is `modality.0.bands`, `modality.1.bands`, ... Only the "
    "indices\n"
    "below `modality.count` are used by a model.\n"
    "\n"
    "For example, two modalities with the small `tiny` encoder and 10 classes:\n"
    "\n"
    "```json\n"
    "{\n"
    "  \"modality\": [\n"
    "    {\"name\": \"s1\", \"bands\": 2, \"encoder\": \"tiny\"},\n"
    "    {\"name\": \"s2\", \"bands\": 12, \"encoder\": \"tiny\", \"size\": 64}\n"
    "  ],\n"
    "  \"classes\": 10,\n"
    "  \"proj\": {\"dim\": 64, \"bn\": true}\n"
    "}\n"
    "```\n"
    "\n"
    "## Rules across keys\n"
    "\n"
    "Each setter checks its value alone. `msc_model_create` then checks the keys together and\n"
    "refuses an inconsistent configuration with `MSC_E_INVALID_ARGUMENT` naming the keys:\n"
    "\n"
    "- `modality.#.mean` and `modality.#.std` hold either no value or exactly\n"
    "  `modality.#.bands` values;\n"
    "- `modality.#.widths` and `modality.#.depths` have the same number of stages, 1 .. 8;\n"
    "- the names `modality.#.name` of the modalities in use are distinct;\n"
    "- `class_names` holds exactly `classes` names, non-empty and distinct.\n"
    "\n"
    "A model stores every model key with its effective value (defaults resolved) in its file;\n"
    "`msc_model_options` returns them. [model.md](model.md) describes the model these keys\n"
    "build.\n";

/* The intro names these limits in words. */
_Static_assert(MSCI_OPT_MAX_INDEX == 8, "update '0 .. 7' in k_intro_keys");
_Static_assert(MSCI_MAX_STAGES == 8, "update '1 .. 8' in k_intro_keys");

int main(void) {
  FILE *out = stdout;
  int32_t count = msci_options_key_count();
  const char *extra[N_GROUPS_MAX]; /* unknown groups, in order of first appearance */
  char extra_buf[N_GROUPS_MAX][80];
  int n_extra = 0;
  for (int32_t i = 0; i < count; i++) {
    char buf[80];
    const char *g = group_of(i, buf, sizeof buf);
    int known = 0;
    for (size_t k = 0; k < sizeof k_groups / sizeof k_groups[0]; k++)
      known |= strcmp(g, k_groups[k].title) == 0;
    for (int k = 0; k < n_extra; k++) known |= strcmp(g, extra[k]) == 0;
    if (known) continue;
    if (n_extra == N_GROUPS_MAX) {
      fprintf(stderr, "gen_options_doc: more than %d groups of keys\n", N_GROUPS_MAX);
      return 1;
    }
    snprintf(extra_buf[n_extra], sizeof extra_buf[n_extra], "%s", g);
    extra[n_extra] = extra_buf[n_extra];
    n_extra++;
  }

  fputs(k_intro, out);
  fputs(k_intro_keys, out);
  for (size_t k = 0; k < sizeof k_groups / sizeof k_groups[0]; k++) {
    int any = 0;
    for (int32_t i = 0; i < count && !any; i++) {
      char buf[80];
      any = strcmp(group_of(i, buf, sizeof buf), k_groups[k].title) == 0;
    }
    if (!any) continue;
    fprintf(out, "\n## %s\n\n", k_groups[k].title);
    if (k_groups[k].intro != NULL) fprintf(out, "%s\n\n", k_groups[k].intro);
    put_table(out, k_groups[k].title);
  }
  for (int k = 0; k < n_extra; k++) {
    fprintf(out, "\n## %s\n\n", extra[k]);
    put_table(out, extra[k]);
  }
  if (fflush(out) != 0 || ferror(out)) {
    perror("gen_options_doc: writing the output");
    return 1;
  }
  return 0;
}
