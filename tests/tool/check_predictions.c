/*
 * check_predictions.c — reads the TSV of `mosaic predict` (id, one column per class,
 * labels joined with ';') and prints the macro AP, micro AP and macro F1 that
 * msc_metrics_compute gives for it (%.17g), one per line, so that the test can compare
 * them with what `mosaic eval --json` reported for the same model and split.
 *
 *   check_predictions PREDICTIONS.tsv
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosaic/mosaic.h>

#define MAX_CLASSES 256
#define MAX_LINE    (1 << 20)

/* Splits line at tabs in place; returns the number of fields. */
static int split(char *line, char **fields, int max) {
  int n = 0;
  char *p = line;
  while (n < max) {
    fields[n++] = p;
    char *t = strchr(p, '\t');
    if (!t) break;
    *t = 0;
    p = t + 1;
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: check_predictions PREDICTIONS.tsv\n");
    return 2;
  }
  FILE *f = fopen(argv[1], "r");
  if (!f) {
    perror(argv[1]);
    return 1;
  }
  char *line = malloc(MAX_LINE);
  char *fields[MAX_CLASSES + 2];
  char *names[MAX_CLASSES];
  if (!fgets(line, MAX_LINE, f)) return 1;
  line[strcspn(line, "\n")] = 0;
  int nf = split(line, fields, MAX_CLASSES + 2);
  int c = nf - 2;
  if (c < 1 || strcmp(fields[0], "id") != 0 || strcmp(fields[nf - 1], "labels") != 0) {
    fprintf(stderr, "check_predictions: bad header\n");
    return 1;
  }
  for (int k = 0; k < c; ++k) names[k] = strdup(fields[k + 1]);
  size_t cap = 64, n = 0;
  float *p = malloc(cap * (size_t)c * sizeof(float));
  uint8_t *y = malloc(cap * (size_t)c);
  while (fgets(line, MAX_LINE, f)) {
    line[strcspn(line, "\n")] = 0;
    if (!line[0]) continue;
    if (split(line, fields, MAX_CLASSES + 2) != c + 2) {
      fprintf(stderr, "check_predictions: row %zu has the wrong number of fields\n", n + 1);
      return 1;
    }
    if (n == cap) {
      cap *= 2;
      p = realloc(p, cap * (size_t)c * sizeof(float));
      y = realloc(y, cap * (size_t)c);
    }
    for (int k = 0; k < c; ++k) {
      p[n * (size_t)c + (size_t)k] = strtof(fields[k + 1], NULL);
      y[n * (size_t)c + (size_t)k] = 0;
    }
    /* Labels: class names joined with ';' (names may contain ',' and spaces). */
    char *lab = fields[c + 1];
    while (*lab) {
      char *semi = strchr(lab, ';');
      size_t len = semi ? (size_t)(semi - lab) : strlen(lab);
      int found = 0;
      for (int k = 0; k < c; ++k)
        if (strlen(names[k]) == len && strncmp(names[k], lab, len) == 0) {
          y[n * (size_t)c + (size_t)k] = 1;
          found = 1;
        }
      if (!found) {
        fprintf(stderr, "check_predictions: unknown label in row %zu\n", n + 1);
        return 1;
      }
      lab += len + (semi ? 1 : 0);
    }
    n++;
  }
  fclose(f);
  double m[MSC_METRIC_COUNT];
  msc_status st = msc_metrics_compute(p, y, (int64_t)n, c, 0.5f, m, MSC_METRIC_COUNT);
  if (st != MSC_OK) {
    fprintf(stderr, "check_predictions: %s\n", msc_last_error());
    return 1;
  }
  printf("%.17g\n%.17g\n%.17g\n", m[MSC_METRIC_MACRO_AP], m[MSC_METRIC_MICRO_AP],
         m[MSC_METRIC_MACRO_F1]);
  for (int k = 0; k < c; ++k) free(names[k]);
  free(p);
  free(y);
  free(line);
  return 0;
}
