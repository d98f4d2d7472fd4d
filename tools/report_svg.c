/*
 * report_svg.c — the charts of `mosaic report` as inline SVG text (report.h). Every
 * chart is one <svg> element with a viewBox, so the page scales it; numbers are written
 * with a few significant digits to keep the file small.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

static const char *const k_palette[20] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5"};

const char *rep_colour(int i) {
  return k_palette[(i % 20 + 20) % 20];
}

void rep_escape(FILE *f, const char *s) {
  for (; s && *s; ++s) switch (*s) {
    case '&': fputs("&amp;", f); break;
    case '<': fputs("&lt;", f); break;
    case '>': fputs("&gt;", f); break;
    case '"': fputs("&quot;", f); break;
    default: fputc(*s, f);
    }
}

static void svg_open(FILE *f, const char *id, int w, int h, const char *title) {
  fprintf(f,
          "<svg id=\"%s\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" "
          "viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" "
          "font-size=\"11\">\n<text x=\"%d\" y=\"16\" text-anchor=\"middle\" "
          "font-size=\"13\" font-weight=\"bold\">",
          id, w, h, w, h, w / 2);
  rep_escape(f, title);
  fputs("</text>\n", f);
}

/* A "nice" tick step (1, 2 or 5 × 10^k) for about `want` ticks over span. */
static double nice_step(double span, int want) {
  double raw = span / want, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

void rep_lines(FILE *f, const char *id, const char *title, const char *xlabel,
               const char *ylabel, const rep_series *s, int ns, double ylo, double yhi) {
  const int L = 62, R = 190, T = 28, B = 42, pw = 520, ph = 260;
  int h = T + ph + B, need = T + 16 * ns + 10;
  if (need > h) h = need;
  const int w = L + pw + R;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int j = 0; j < ns; ++j)
    for (int64_t i = 0; i < s[j].n; ++i) {
      if (!isfinite(s[j].x[i]) || !isfinite(s[j].y[i])) continue;
      x0 = fmin(x0, s[j].x[i]), x1 = fmax(x1, s[j].x[i]);
      y0 = fmin(y0, s[j].y[i]), y1 = fmax(y1, s[j].y[i]);
    }
  if (ylo < yhi) y0 = ylo, y1 = yhi;
  svg_open(f, id, w, h, title);
  if (!(x0 <= x1)) { /* no finite point */
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no data</text>\n</svg>\n", w / 2,
            T + ph / 2);
    return;
  }
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0)
    y0 -= fabs(y0) > 0 ? fabs(y0) * 0.1 : 0.5, y1 += fabs(y1) > 0 ? fabs(y1) * 0.1 : 0.5;
  if (!(ylo < yhi)) { /* a margin above and below the data */
    double m = (y1 - y0) * 0.05;
    y0 -= m, y1 += m;
  }
#define PX(v) (L + ((v)-x0) / (x1 - x0) * pw)
#define PY(v) (T + ph - ((v)-y0) / (y1 - y0) * ph)
  fprintf(f,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" "
          "stroke=\"#888\"/>\n",
          L, T, pw, ph);
  double sx = nice_step(x1 - x0, 6), sy = nice_step(y1 - y0, 5);
  int whole = 1; /* steps and epochs: no tick between two whole numbers */
  for (int j = 0; j < ns && whole; ++j)
    for (int64_t i = 0; i < s[j].n && whole; ++i) whole = s[j].x[i] == floor(s[j].x[i]);
  if (whole && x1 > 1 && sx < 1) sx = 1; /* (recall, at most 1, keeps its ticks) */
  for (double v = ceil(x0 / sx) * sx; v <= x1 + sx * 1e-9; v += sx)
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/><text "
            "x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
            PX(v), T, PX(v), T + ph, PX(v), T + ph + 14, fabs(v) < sx * 1e-9 ? 0.0 : v);
  for (double v = ceil(y0 / sy) * sy; v <= y1 + sy * 1e-9; v += sy)
    fprintf(f,
            "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/><text "
            "x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%.3g</text>\n",
            L, PY(v), L + pw, PY(v), L - 4, PY(v) + 4, fabs(v) < sy * 1e-9 ? 0.0 : v);
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", L + pw / 2, T + ph + 32);
  rep_escape(f, xlabel);
  fprintf(f,
          "</text>\n<text transform=\"translate(14,%d) rotate(-90)\" text-anchor=\"middle\">",
          T + ph / 2);
  rep_escape(f, ylabel);
  fputs("</text>\n", f);
  for (int j = 0; j < ns; ++j) {
    const char *col = rep_colour(j);
    int open = 0;
    for (int64_t i = 0; i < s[j].n; ++i) {
      int ok = isfinite(s[j].x[i]) && isfinite(s[j].y[i]);
      if (ok && !open)
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col),
            open = 1;
      if (ok) fprintf(f, "%.1f,%.1f ", PX(s[j].x[i]), PY(s[j].y[i]));
      if (!ok && open) fputs("\"/>\n", f), open = 0;
    }
    if (open) fputs("\"/>\n", f);
    if (s[j].n == 1 && isfinite(s[j].y[0])) /* one point: a dot */
      fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", PX(s[j].x[0]),
              PY(s[j].y[0]), col);
    int ly = T + 8 + 16 * j;
    fprintf(f,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
            "<text x=\"%d\" y=\"%d\">",
            L + pw + 10, ly, L + pw + 28, ly, col, L + pw + 32, ly + 4);
    rep_escape(f, s[j].name);
    fputs("</text>\n", f);
  }
#undef PX
#undef PY
  fputs("</svg>\n", f);
}

void rep_bars(FILE *f, const char *id, const char *title, char *const *names, int64_t c,
              const double *a, const char *aname, const double *b, const char *bname) {
  const int L = 200, pw = 400, row = 22, T = 44;
  const int w = L + pw + 60, h = T + (int)c * row + 30;
  svg_open(f, id, w, h, title);
  const char *col[2] = {rep_colour(0), rep_colour(1)};
  const char *lab[2] = {aname, bname};
  for (int j = 0; j < 2; ++j) {
    fprintf(f,
            "<rect x=\"%d\" y=\"24\" width=\"12\" height=\"10\" fill=\"%s\"/><text x=\"%d\" "
            "y=\"33\">",
            L + j * 120, col[j], L + j * 120 + 16);
    rep_escape(f, lab[j]);
    fputs("</text>\n", f);
  }
  for (int t = 0; t <= 10; t += 2)
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/><text "
            "x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n",
            L + pw * t / 10.0, T - 2, L + pw * t / 10.0, T + (int)c * row, L + pw * t / 10.0,
            T + (int)c * row + 14, t / 10.0);
  for (int64_t k = 0; k < c; ++k) {
    int y = T + (int)k * row;
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", L - 6, y + 15);
    char name[32]; /* about what fits left of the bars */
    snprintf(name, sizeof name, "%s", names[k]);
    if (strlen(names[k]) >= sizeof name) strcpy(name + sizeof name - 4, "...");
    rep_escape(f, name);
    fputs("</text>\n", f);
    const double v[2] = {a[k], b[k]};
    for (int j = 0; j < 2; ++j) {
      int yy = y + 2 + j * 9;
      if (isfinite(v[j]))
        fprintf(f,
                "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"8\" fill=\"%s\"/><text "
                "x=\"%.1f\" y=\"%d\" font-size=\"8\">%.3f</text>\n",
                L, yy, fmax(0, fmin(1, v[j])) * pw, col[j], L + fmax(0, fmin(1, v[j])) * pw + 3,
                yy + 7, v[j]);
      else
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"8\">&#8211;</text>\n", L + 3, yy + 7);
    }
  }
  fputs("</svg>\n", f);
}

void rep_confusion(FILE *f, const char *id, const char *title, char *const *names, int64_t c,
                   const int64_t *cm, const char *col_label) {
  int cell = c > 0 ? (int)(520 / c) : 20;
  if (cell > 36) cell = 36;
  if (cell < 8) cell = 8;
  const int L = 200, T = 40, w = L + cell * (int)c + 30, h = T + cell * (int)c + 50;
  svg_open(f, id, w, h, title);
  for (int64_t t = 0; t < c; ++t) {
    int64_t sum = 0;
    for (int64_t p = 0; p < c; ++p) sum += cm[t * c + p];
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", L - 6,
            T + (int)t * cell + cell / 2 + 4);
    char name[32]; /* about what fits left of the matrix */
    snprintf(name, sizeof name, "%lld %s", (long long)t, names[t]);
    if (strlen(name) >= sizeof name - 1) strcpy(name + sizeof name - 4, "...");
    rep_escape(f, name);
    fputs("</text>\n", f);
    for (int64_t p = 0; p < c; ++p) {
      int64_t v = cm[t * c + p];
      double share = sum > 0 ? (double)v / (double)sum : 0;
      fprintf(f,
              "<rect class=\"cell\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
              "fill=\"#08519c\" fill-opacity=\"%.3f\" stroke=\"#eee\"/>\n",
              L + (int)p * cell, T + (int)t * cell, cell, cell, share);
      if (cell >= 18 && v > 0)
        fprintf(f,
                "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\" "
                "fill=\"%s\">%lld</text>\n",
                L + (int)p * cell + cell / 2, T + (int)t * cell + cell / 2 + 3,
                share > 0.5 ? "#fff" : "#000", (long long)v);
    }
  }
  for (int64_t p = 0; p < c; ++p)
    fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" font-size=\"9\">%lld</text>\n",
            L + (int)p * cell + cell / 2, T + (int)c * cell + 12, (long long)p);
  fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">", L + cell * (int)c / 2,
          T + (int)c * cell + 30);
  rep_escape(f, col_label);
  fputs("</text>\n</svg>\n", f);
}

void rep_scatter(FILE *f, const char *id, const char *title, const float *xy,
                 const int32_t *group, int64_t n, const char *const *names, int64_t classes) {
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (int64_t i = 0; i < n; ++i) {
    x0 = fmin(x0, xy[i * 2]), x1 = fmax(x1, xy[i * 2]);
    y0 = fmin(y0, xy[i * 2 + 1]), y1 = fmax(y1, xy[i * 2 + 1]);
  }
  if (!(x1 > x0)) x0 -= 1, x1 += 1;
  if (!(y1 > y0)) y0 -= 1, y1 += 1;
  const int L = 20, T = 30, P = 480, R = 260;
  int used = 0;
  for (int64_t k = 0; k < classes; ++k)
    for (int64_t i = 0; i < n; ++i)
      if (group[i] == k) {
        used++;
        break;
      }
  int h = T + P + 20, need = T + 16 * used + 20;
  if (need > h) h = need;
  svg_open(f, id, L + P + R, h, title);
  fprintf(f,
          "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"white\" "
          "stroke=\"#ccc\"/>\n",
          L, T, P, P);
  for (int64_t i = 0; i < n; ++i) {
    double px = L + 6 + (P - 12) * (xy[i * 2] - x0) / (x1 - x0);
    double py = T + 6 + (P - 12) * (1 - (xy[i * 2 + 1] - y0) / (y1 - y0));
    fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\" fill-opacity=\"0.8\"/>\n",
            px, py, group[i] >= 0 ? rep_colour(group[i]) : "#000");
  }
  int row = 0;
  for (int64_t k = 0; k < classes; ++k) {
    int64_t count = 0;
    for (int64_t i = 0; i < n; ++i) count += group[i] == k;
    if (!count) continue;
    int y = T + 10 + 16 * row++;
    fprintf(f, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/><text x=\"%d\" y=\"%d\">",
            L + P + 16, y, rep_colour((int)k), L + P + 26, y + 4);
    rep_escape(f, names && names[k] ? names[k] : "?");
    fprintf(f, " (%lld)</text>\n", (long long)count);
  }
  fputs("</svg>\n", f);
}
