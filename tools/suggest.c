/*
 * suggest.c — "did you mean" for mistyped names: the closest valid names to what was
 * typed, by Damerau-Levenshtein distance (the optimal-string-alignment form: insertions,
 * deletions, substitutions and swaps of two neighbours, each 1).
 *
 * A name is suggested when its distance d to the typed word is at most 2 and at most
 * half the word's length (so "k" suggests nothing, "epoch" suggests "epochs"); every
 * name at the smallest such distance is offered, up to CLI_SUGGEST_MAX of them, in the
 * order they were added. The library does the same for its option keys and values
 * (lib/options/options_keys.c) — the tool cannot see the library's tables, only its
 * messages.
 */
#include <string.h>

#include "cli.h"

/* Longest name compared; longer ones are never suggested. */
#define NAME_MAX_LEN 96

static int lower(int c) {
  return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

int cli_edit_distance(const char *a, size_t la, const char *b, size_t lb) {
  if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN) return 1 << 20;
  /* Three rows of the dynamic programme: i-2, i-1, i. */
  int rows[3][NAME_MAX_LEN + 1];
  for (size_t j = 0; j <= lb; ++j) rows[1][j] = (int)j;
  for (size_t i = 1; i <= la; ++i) {
    int *cur = rows[(i + 1) % 3], *prev = rows[i % 3], *prev2 = rows[(i + 2) % 3];
    cur[0] = (int)i;
    for (size_t j = 1; j <= lb; ++j) {
      int cost = lower(a[i - 1]) != lower(b[j - 1]);
      int d = prev[j] + 1;
      if (cur[j - 1] + 1 < d) d = cur[j - 1] + 1;
      if (prev[j - 1] + cost < d) d = prev[j - 1] + cost;
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1]) && prev2[j - 2] + 1 < d)
        d = prev2[j - 2] + 1;
      cur[j] = d;
    }
  }
  return rows[(la + 1) % 3][lb];
}

void cli_suggest_init(cli_suggest *s, const char *word) {
  memset(s, 0, sizeof *s);
  s->word = word;
  s->best = 3; /* above the largest distance ever accepted */
}

void cli_suggest_addn(cli_suggest *s, const char *name, size_t len) {
  size_t lw = strlen(s->word);
  if (len == 0 || len >= sizeof s->names[0]) return;
  int d = cli_edit_distance(s->word, lw, name, len);
  if (d == 0 || d > 2 || 2 * (size_t)d > lw || d > s->best) return;
  if (d < s->best) s->best = d, s->n = 0;
  for (int k = 0; k < s->n; ++k)
    if (strlen(s->names[k]) == len && strncmp(s->names[k], name, len) == 0) return;
  if (s->n == CLI_SUGGEST_MAX) return;
  memcpy(s->names[s->n], name, len);
  s->names[s->n][len] = 0;
  s->n++;
}

void cli_suggest_add(cli_suggest *s, const char *name) {
  cli_suggest_addn(s, name, strlen(name));
}

void cli_suggest_add_list(cli_suggest *s, const char *list, const char *seps) {
  for (const char *p = list; *p;) {
    p += strspn(p, seps);
    size_t n = strcspn(p, seps);
    /* Items of a printed list may carry spaces around them ("a, b"). */
    size_t a = 0, b = n;
    while (a < b && p[a] == ' ') a++;
    while (b > a && p[b - 1] == ' ') b--;
    if (b > a) cli_suggest_addn(s, p + a, b - a);
    p += n;
  }
}

const char *cli_suggest_text(cli_suggest *s, const char *prefix) {
  if (s->n == 0) return "";
  size_t o = (size_t)snprintf(s->text, sizeof s->text, "; did you mean ");
  for (int k = 0; k < s->n && o < sizeof s->text; ++k)
    o += (size_t)snprintf(s->text + o, sizeof s->text - o, "%s'%s%s'",
                          k == 0          ? ""
                          : k == s->n - 1 ? " or "
                                          : ", ",
                          prefix ? prefix : "", s->names[k]);
  if (o < sizeof s->text) snprintf(s->text + o, sizeof s->text - o, "?");
  return s->text;
}
