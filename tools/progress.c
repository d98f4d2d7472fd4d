/*
 * progress.c — progress display on stderr. On a terminal: one line redrawn in place
 * (at most 10 times a second), "label [#####.....] 45% 120/256  31.2/s  ETA 0:42  extra",
 * within the terminal's width. Elsewhere (a log file, a pipe, CI): a plain line every
 * `interval` seconds and one at the end of each phase, within 80 columns, so logs stay
 * readable. The fields of extra that do not fit are left out, the last first.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

double cli_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_format_duration(double s, char *buf, size_t cap) {
  if (!(s >= 0) || s > 1e8) {
    snprintf(buf, cap, "?");
    return;
  }
  long t = (long)(s + 0.5);
  if (t >= 3600)
    snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else
    snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

int cli_progress_init(cli_progress *p, const char *mode, double interval) {
  memset(p, 0, sizeof *p);
  p->interval = interval > 0 ? interval : 10.0;
  if (!mode || strcmp(mode, "auto") == 0)
    p->mode = isatty(STDERR_FILENO) ? 1 : 2;
  else if (strcmp(mode, "bar") == 0)
    p->mode = 1;
  else if (strcmp(mode, "lines") == 0)
    p->mode = 2;
  else
    p->mode = 0;
  /* Lines fit 80 columns (a log, a pipe); a bar fits the terminal. */
  p->width = 80;
  struct winsize ws;
  if (p->mode == 1 && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
    p->width = ws.ws_col;
  return 0;
}

void cli_progress_begin(cli_progress *p, const char *label, int64_t total) {
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->done = 0;
  p->t0 = p->t_draw = cli_now();
}

/* The line of the phase: "label [bar] pct done/total rate ETA", then the fields of extra
 * (separated by two spaces) as long as the line stays within p->width - 1 columns: a
 * field that does not fit is left out with all after it, so extra lists the most
 * important first. Only a label too long for the width is cut. */
static void compose(const cli_progress *p, char *line, size_t cap, const char *extra, int bar) {
  double el = cli_now() - p->t0;
  double rate = el > 0 ? (double)p->done / el : 0;
  char eta[32] = "?", elapsed[32];
  if (p->done > 0 && p->total > 0)
    cli_format_duration(el / (double)p->done * (double)(p->total - p->done), eta, sizeof eta);
  cli_format_duration(el, elapsed, sizeof elapsed);
  int pct = p->total > 0 ? (int)(100.0 * (double)p->done / (double)p->total) : 0;
  size_t o = (size_t)snprintf(line, cap, "%s ", p->label);
  if (bar && o < cap) {
    /* A narrow terminal gets a short bar, so the loss still fits. */
    const int w = p->width >= 120 ? 24 : 10;
    int fill = p->total > 0 ? (int)((double)w * (double)p->done / (double)p->total) : 0;
    line[o++] = '[';
    for (int i = 0; i < w && o + 2 < cap; ++i) line[o++] = i < fill ? '#' : '.';
    if (o < cap) line[o++] = ']';
    line[o] = 0;
  }
  if (o < cap)
    o += (size_t)snprintf(line + o, cap - o, " %3d%% %lld/%lld  %.1f/s  %s %s", pct,
                          (long long)p->done, (long long)p->total, rate,
                          p->done >= p->total ? "in" : "ETA",
                          p->done >= p->total ? elapsed : eta);
  size_t limit = p->width > 1 ? (size_t)p->width - 1 : 0;
  for (const char *f = extra; f && *f && o < cap;) {
    while (*f == ' ') f++;
    const char *end = strstr(f, "  ");
    size_t n = end ? (size_t)(end - f) : strlen(f);
    if (n == 0 || o + 2 + n > limit || o + 2 + n >= cap) break;
    o += (size_t)snprintf(line + o, cap - o, "  %.*s", (int)n, f);
    f += n;
  }
  if (o > limit && limit < cap) line[limit] = 0;
}

void cli_progress_update(cli_progress *p, int64_t done, const char *extra) {
  p->done = done;
  if (p->mode == 0) return;
  double t = cli_now();
  char line[1024];
  if (p->mode == 1) {
    if (t - p->t_draw < 0.1 && done < p->total && p->on_screen) return;
    compose(p, line, sizeof line, extra, 1);
    fprintf(stderr, "\r%s\033[K", line);
    fflush(stderr);
    p->on_screen = 1;
    p->t_draw = t;
  } else if (t - p->t_draw >= p->interval) {
    compose(p, line, sizeof line, extra, 0);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    p->t_draw = t;
  }
}

void cli_progress_clear(cli_progress *p) {
  if (p->mode == 1 && p->on_screen) {
    fputs("\r\033[K", stderr);
    fflush(stderr);
    p->on_screen = 0;
  }
}

void cli_progress_end(cli_progress *p, const char *extra) {
  if (p->mode == 0) return;
  char line[1024];
  if (p->mode == 1) {
    cli_progress_clear(p);
    return;
  }
  compose(p, line, sizeof line, extra, 0);
  fprintf(stderr, "%s\n", line);
  fflush(stderr);
}
