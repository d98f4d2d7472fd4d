/*
 * cmd_report.c — `mosaic report`: one self-contained HTML file about a model (no network,
 * no JavaScript, no external CSS or fonts; charts as inline SVG from report_svg.c):
 * training curves from MODEL.steps.jsonl and MODEL.history.json when they lie beside the
 * model, per-class AP and F1 bars, precision-recall curves, a confusion matrix, the
 * split's embeddings projected to 2-D and coloured by group with their cluster coherence
 * (cluster.c, as `mosaic eval --protocol cluster`) and PNG quicklooks of the first samples
 * as data: URIs (with libpng). docs/tool.md, "report".
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

static const char help[] =
    "usage: mosaic report --model MODEL --data DIR [options]\n"
    "\n"
    "Writes one self-contained HTML file (inline SVG charts, PNG quicklooks as data:\n"
    "URIs; no scripts, nothing fetched): training curves from MODEL's .steps.jsonl and\n"
    ".history.json when they exist, per-class AP and F1 bars, precision-recall curves,\n"
    "a confusion matrix, the embeddings (a t-SNE or PCA projection of the split's fused\n"
    "features coloured by class, with silhouette and kNN purity as 'mosaic eval --protocol\n"
    "cluster') and quicklooks of the split's first samples. Prints its path.\n"
    "\n"
    "Options:\n"
    "  --model PATH        the model file (required)\n"
    "  --data DIR          dataset root (required)\n"
    "  --format NAME       dataset format (default bigearthnet-v2)\n"
    "  --split NAME        the split scored: test (default), validation, train, all\n"
    "  --out PATH          the HTML file (default report.html)\n"
    "  --first N           quicklooks of the split's first N samples (default 4)\n"
    "  --threshold T       F1 threshold on the scores (default 0.5)\n"
    "  --k N               neighbours of the embeddings' kNN purity (default 10)\n"
    "  --method NAME       projection of the embeddings: tsne (default; PCA above 5000\n"
    "                      samples) or pca\n"
    "  --seed N, --threads N, --backend NAME, --workers N, --progress MODE,\n"
    "  --precision P, --config FILE, --set KEY=VALUE    as for 'mosaic eval'\n"
    "\n"
    "Exit status: 0 done, 1 error, 2 bad usage, 130 interrupted.\n";

static const char *const allowed[] = {
    "model",   "data",    "format",  "split",    "out",       "first", "threshold", "seed",
    "threads", "backend", "workers", "progress", "precision", "k",     "method",    NULL};

/* ---- training curves ------------------------------------------------------------------- */

/* Appends v to a growing array. */
static int push(double **a, int64_t *n, int64_t *cap, double v) {
  if (*n == *cap) {
    int64_t c = *cap ? *cap * 2 : 256;
    double *p = realloc(*a, (size_t)c * sizeof(double));
    if (!p) return -1;
    *a = p, *cap = c;
  }
  (*a)[(*n)++] = v;
  return 0;
}

static double num(json_t *o, const char *key) {
  json_t *v = json_object_get(o, key);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *const k_terms[] = {"loss",       "loss_intra", "loss_inter", "loss_fused",
                                      "loss_views", "loss_bce",   "loss_seg",   "loss_dice"};
enum { N_TERMS = 8 };

/* The loss terms that are not all zero or null: series over x. */
static int term_series(double *const *v, const double *x, int64_t n, rep_series *s) {
  int ns = 0;
  for (int t = 0; t < N_TERMS; ++t) {
    int used = 0;
    for (int64_t i = 0; i < n && !used; ++i) used = isfinite(v[t][i]) && v[t][i] != 0;
    if (used) s[ns++] = (rep_series){k_terms[t], x, v[t], n};
  }
  return ns;
}

/* Loss and learning rate per step from PATH.steps.jsonl (means over buckets of steps
 * above 2,000 lines, so that the chart stays small). */
static void steps_charts(FILE *f, const char *path) {
  FILE *in = fopen(path, "r");
  if (!in) {
    fputs("<p class=\"note\">No per-step log (", f);
    rep_escape(f, path);
    fputs(") beside the model.</p>\n", f);
    return;
  }
  double *v[N_TERMS + 2] = {0}; /* terms, lr, step */
  int64_t n[N_TERMS + 2] = {0}, cap[N_TERMS + 2] = {0};
  char *line = NULL;
  size_t lcap = 0;
  int failed = 0;
  while (!failed && getline(&line, &lcap, in) > 0) {
    json_t *o = json_loads(line, 0, NULL);
    if (!json_is_object(o)) {
      json_decref(o);
      continue;
    }
    for (int t = 0; t < N_TERMS && !failed; ++t)
      failed = push(&v[t], &n[t], &cap[t], num(o, k_terms[t]));
    if (!failed) failed = push(&v[N_TERMS], &n[N_TERMS], &cap[N_TERMS], num(o, "lr"));
    if (!failed)
      failed = push(&v[N_TERMS + 1], &n[N_TERMS + 1], &cap[N_TERMS + 1], num(o, "step"));
    json_decref(o);
  }
  free(line);
  fclose(in);
  int64_t m = n[N_TERMS + 1];
  if (!failed && m > 2000) { /* bucket means: ceil(m / 2000) steps each */
    int64_t k = (m + 1999) / 2000, out = 0;
    for (int64_t i = 0; i < m; i += k, ++out)
      for (int t = 0; t < N_TERMS + 2; ++t) {
        double s = 0;
        int64_t c = 0;
        for (int64_t j = i; j < i + k && j < m; ++j)
          if (isfinite(v[t][j])) s += v[t][j], c++;
        v[t][out] = c ? s / (double)c : NAN;
      }
    m = out;
  }
  if (failed) {
    fputs("<p class=\"note\">The per-step log could not be read (out of memory).</p>\n", f);
  } else {
    fprintf(f, "<p>%lld steps from <code>", (long long)n[N_TERMS + 1]);
    rep_escape(f, path);
    fputs("</code>.</p>\n", f);
    rep_series s[N_TERMS];
    int ns = term_series(v, v[N_TERMS + 1], m, s);
    rep_lines(f, "loss-steps", "Loss per step", "step", "loss", s, ns, 0, 0);
    rep_series lr = {"lr", v[N_TERMS + 1], v[N_TERMS], m};
    rep_lines(f, "lr-steps", "Learning rate per step", "step", "learning rate", &lr, 1, 0, 0);
  }
  for (int t = 0; t < N_TERMS + 2; ++t) free(v[t]);
}

/* Losses and validation metrics per epoch from PATH.history.json. */
static void history_charts(FILE *f, const char *path) {
  json_t *h = json_load_file(path, 0, NULL);
  size_t m = json_is_array(h) ? json_array_size(h) : 0;
  if (m == 0) {
    fputs("<p class=\"note\">No training history (", f);
    rep_escape(f, path);
    fputs(") beside the model.</p>\n", f);
    json_decref(h);
    return;
  }
  static const char *const vkeys[] = {"macro_ap", "micro_ap", "macro_f1",
                                      "micro_f1", "miou",     "pixel_accuracy"};
  double *buf = calloc(m * (N_TERMS + 7), sizeof(double));
  if (!buf) {
    json_decref(h);
    return;
  }
  double *x = buf, *t[N_TERMS], *val[6];
  for (int k = 0; k < N_TERMS; ++k) t[k] = buf + m * (size_t)(1 + k);
  for (int k = 0; k < 6; ++k) val[k] = buf + m * (size_t)(1 + N_TERMS + k);
  for (size_t i = 0; i < m; ++i) {
    json_t *e = json_array_get(h, i), *vo = json_object_get(e, "validation");
    x[i] = num(e, "epoch");
    for (int k = 0; k < N_TERMS; ++k) t[k][i] = num(e, k_terms[k]);
    for (int k = 0; k < 6; ++k) val[k][i] = num(vo, vkeys[k]);
  }
  rep_series s[N_TERMS];
  int ns = term_series(t, x, (int64_t)m, s);
  rep_lines(f, "history-loss", "Mean loss per epoch", "epoch", "loss", s, ns, 0, 0);
  rep_series vs[6];
  int nv = 0;
  for (int k = 0; k < 6; ++k) {
    int used = 0;
    for (size_t i = 0; i < m; ++i) used |= isfinite(val[k][i]);
    if (used) vs[nv++] = (rep_series){vkeys[k], x, val[k], (int64_t)m};
  }
  if (nv)
    rep_lines(f, "history-val", "Validation metrics per epoch", "epoch", "score", vs, nv, 0, 1);
  else
    fputs("<p class=\"note\">The history has no validation metrics (trained with "
          "--no-validate, or no validation split).</p>\n",
          f);
  free(buf);
  json_decref(h);
}

/* ---- precision-recall ---------------------------------------------------------------- */

typedef struct {
  float score;
  uint8_t label;
} scored;

static int by_score_desc(const void *a, const void *b) {
  float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
  return (x < y) - (x > y);
}

/* The PR curve of one class as steps: for each threshold group k (equal scores form one
 * group, as the AP of docs/metrics.md) where recall grows, the points (R_{k-1}, P_k) and
 * (R_k, P_k), so the area under the drawn curve is the class's AP. Points closer than
 * 0.002 in recall are merged (the last one is kept). Returns the number of points in
 * x, y (room for 2n + 2), 0 for a class without positives. */
static int64_t pr_curve(const float *probs, const uint8_t *labels, int64_t n, int64_t c,
                        int64_t k, scored *tmp, double *x, double *y) {
  int64_t pos = 0;
  for (int64_t i = 0; i < n; ++i) {
    tmp[i].score = probs[i * c + k] == 0 ? 0.0f : probs[i * c + k]; /* -0 == +0 */
    tmp[i].label = labels[i * c + k];
    pos += tmp[i].label != 0;
  }
  if (pos == 0) return 0;
  qsort(tmp, (size_t)n, sizeof *tmp, by_score_desc);
  int64_t m = 0, tp = 0;
  double r_prev = 0, r_drawn = -1;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    while (j < n && tmp[j].score == tmp[i].score) tp += tmp[j++].label != 0;
    double r = (double)tp / (double)pos, p = (double)tp / (double)j;
    if (r > r_prev && (r - r_drawn >= 0.002 || tp == pos)) {
      x[m] = r_drawn < 0 ? 0 : r_drawn, y[m++] = p;
      x[m] = r, y[m++] = p;
      r_drawn = r;
    }
    r_prev = r;
    if (tp == pos) break;
    i = j;
  }
  return m;
}

/* ---- quicklooks ---------------------------------------------------------------------- */

#ifdef MOSAIC_TOOL_PNG
static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* One channel (hw values) stretched from its 2nd to its 98th percentile onto 0–255. */
static void stretch(const float *v, int64_t hw, float *tmp, unsigned char *out, int stride) {
  int64_t m = 0;
  for (int64_t i = 0; i < hw; ++i)
    if (isfinite(v[i])) tmp[m++] = v[i];
  double lo = 0, hi = 0;
  if (m > 0) {
    qsort(tmp, (size_t)m, sizeof *tmp, cmp_float);
    lo = tmp[(int64_t)(0.02 * (double)(m - 1))], hi = tmp[(int64_t)(0.98 * (double)(m - 1))];
  }
  for (int64_t i = 0; i < hw; ++i) {
    double t = hi > lo && isfinite(v[i]) ? (v[i] - lo) / (hi - lo) : 0;
    out[i * stride] = (unsigned char)(255 * fmax(0, fmin(1, t)) + 0.5);
  }
}

static int64_t band_index(const msc_dataset *ds, int32_t mod, int64_t bands, const char *name) {
  for (int64_t b = 0; b < bands; ++b) {
    const char *s = msc_dataset_band_name(ds, mod, b);
    if (s && strcmp(s, name) == 0) return b;
  }
  return -1;
}

static void base64(FILE *f, const unsigned char *d, size_t n) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) |
                 (i + 2 < n ? d[i + 2] : 0);
    fputc(t[v >> 18 & 63], f), fputc(t[v >> 12 & 63], f);
    fputc(i + 1 < n ? t[v >> 6 & 63] : '=', f), fputc(i + 2 < n ? t[v & 63] : '=', f);
  }
}

/* Modality mod of sample s (x: the batch's C × H × W values of it) as an <img>: S2 RGB
 * (B04, B03, B02), S1 false colour (VV, VH, VV − VH), else the first band in grey; each
 * channel stretched on its own; enlarged by pixel replication to at least 96 pixels. */
static int quicklook(FILE *f, const msc_dataset *ds, int32_t mod, const float *x, int64_t c,
                     int64_t hgt, int64_t wid, char *what, size_t what_cap) {
  int64_t hw = hgt * wid, ch[3] = {-1, -1, -1};
  int rgb = 0;
  int64_t r = band_index(ds, mod, c, "B04"), g = band_index(ds, mod, c, "B03"),
          b = band_index(ds, mod, c, "B02"), vv = band_index(ds, mod, c, "VV"),
          vh = band_index(ds, mod, c, "VH");
  float *diff = NULL;
  if (r >= 0 && g >= 0 && b >= 0) {
    ch[0] = r, ch[1] = g, ch[2] = b, rgb = 1;
    snprintf(what, what_cap, "RGB (B04, B03, B02)");
  } else if (vv >= 0 && vh >= 0) {
    ch[0] = vv, ch[1] = vh, rgb = 2;
    snprintf(what, what_cap, "false colour (VV, VH, VV−VH)");
  } else {
    ch[0] = 0;
    const char *nm = msc_dataset_band_name(ds, mod, 0);
    snprintf(what, what_cap, "band %s, grey", nm ? nm : "0");
  }
  int nc = rgb ? 3 : 1;
  int64_t up = (96 + hgt - 1) / hgt;
  if (up < 1) up = 1;
  if (up > 8) up = 8;
  unsigned char *img = malloc((size_t)(hw * nc));
  unsigned char *big = malloc((size_t)(hw * up * up * nc));
  float *tmp = malloc((size_t)hw * sizeof(float));
  if (rgb == 2) diff = malloc((size_t)hw * sizeof(float));
  int rc = img && big && tmp && (rgb != 2 || diff) ? EXIT_OK : cli_error("out of memory");
  if (rc == EXIT_OK) {
    for (int k = 0; k < nc; ++k) {
      const float *src = x + (rgb == 2 && k == 2 ? 0 : ch[k]) * hw;
      if (rgb == 2 && k == 2) {
        for (int64_t i = 0; i < hw; ++i) diff[i] = x[vv * hw + i] - x[vh * hw + i];
        src = diff;
      }
      stretch(src, hw, tmp, img + k, nc);
    }
    for (int64_t yy = 0; yy < hgt * up; ++yy)
      for (int64_t xx = 0; xx < wid * up; ++xx)
        memcpy(big + (yy * wid * up + xx) * nc, img + ((yy / up) * wid + xx / up) * nc,
               (size_t)nc);
    unsigned char *png = NULL;
    size_t len = 0;
    rc = cli_png_encode(big, hgt * up, wid * up, nc, &png, &len);
    if (rc == EXIT_OK) {
      fprintf(
          f,
          "<img alt=\"quicklook\" width=\"%lld\" height=\"%lld\" src=\"data:image/png;base64,",
          (long long)(wid * up), (long long)(hgt * up));
      base64(f, png, len);
      fputs("\"/>", f);
    }
    free(png);
  }
  free(img), free(big), free(tmp), free(diff);
  return rc;
}
#endif

/* The first n samples: their quicklooks, true labels and the top-3 predicted classes. */
static int quicklooks(FILE *f, const msc_dataset *ds, const msc_model *model,
                      const float *probs, const uint8_t *labels, int64_t n, int64_t c) {
  fputs("<h2>Samples</h2>\n", f);
#ifndef MOSAIC_TOOL_PNG
  (void)ds, (void)model, (void)probs, (void)labels, (void)n, (void)c;
  fputs("<p class=\"note\">This build of mosaic has no libpng: no quicklooks (install "
        "libpng-dev and rebuild).</p>\n",
        f);
  return EXIT_OK;
#else
  if (n <= 0) return EXIT_OK;
  int64_t *idx = malloc((size_t)n * sizeof(int64_t));
  msc_batch *b = NULL;
  if (!idx || msc_batch_create(&b) != MSC_OK) {
    free(idx);
    return cli_error("out of memory");
  }
  for (int64_t i = 0; i < n; ++i) idx[i] = i;
  msc_status st = msc_dataset_fill_batch(ds, idx, n, b);
  free(idx);
  if (st != MSC_OK) {
    msc_batch_free(b);
    return cli_lib_error(st, "reading the quicklook samples");
  }
  int rc = EXIT_OK;
  fputs("<div class=\"samples\">\n", f);
  for (int64_t s = 0; s < n && rc == EXIT_OK; ++s) {
    char id[256] = "";
    msc_dataset_sample_id(ds, s, id, sizeof id, NULL);
    fputs("<figure class=\"sample\">", f);
    for (int32_t mod = 0; mod < msc_dataset_modality_count(ds) && rc == EXIT_OK; ++mod) {
      const char *name = msc_dataset_modality_name(ds, mod);
      int64_t ch = 0, h = 0, w = 0;
      if (msc_batch_modality(b, name, NULL, 0, &ch, &h, &w) != MSC_OK || ch <= 0) continue;
      size_t len = (size_t)(n * ch * h * w);
      float *x = malloc(len * sizeof(float));
      if (!x) {
        rc = cli_error("out of memory");
        break;
      }
      st = msc_batch_modality(b, name, x, len, NULL, NULL, NULL);
      char what[64];
      if (st == MSC_OK)
        rc = quicklook(f, ds, mod, x + s * ch * h * w, ch, h, w, what, sizeof what);
      else
        rc = cli_lib_error(st, "modality %s", name);
      free(x);
      if (rc == EXIT_OK) {
        fputs("<span class=\"cap\">", f);
        rep_escape(f, name);
        fputs(": ", f);
        rep_escape(f, what);
        fputs("</span>", f);
      }
    }
    fputs("<figcaption><b>", f);
    rep_escape(f, id);
    fputs("</b><br/>labels: ", f);
    int any = 0;
    for (int64_t k = 0; k < c; ++k)
      if (labels[s * c + k]) {
        fputs(any++ ? ", " : "", f);
        rep_escape(f, msc_model_class_name(model, k) ? msc_model_class_name(model, k) : "?");
      }
    fputs("<br/>predicted:", f);
    int used[3] = {-1, -1, -1};
    for (int r = 0; r < 3 && r < c; ++r) {
      int best = -1;
      for (int64_t k = 0; k < c; ++k)
        if (k != used[0] && k != used[1] &&
            (best < 0 || probs[s * c + k] > probs[s * c + best]))
          best = (int)k;
      used[r] = best;
      fputs(" ", f);
      rep_escape(f,
                 msc_model_class_name(model, best) ? msc_model_class_name(model, best) : "?");
      fprintf(f, " %.2f%s", (double)probs[s * c + best], r < 2 && r + 1 < c ? ";" : "");
    }
    fputs("</figcaption></figure>\n", f);
  }
  fputs("</div>\n", f);
  msc_batch_free(b);
  return rc;
#endif
}

/* ---- embeddings ---------------------------------------------------------------------------- */

/* The split's fused features h_f (tool.which) projected to 2-D and drawn coloured by group,
 * with the silhouette and kNN purity: the numbers of `mosaic eval --protocol cluster` on
 * the same model and split (cluster.c computes both). */
static int embeddings(FILE *f, cli_ctx *ctx, msc_model *model, const char *split,
                      cli_progress *pg) {
  cli_cluster_result cr;
  cli_projection p;
  int rc = cli_cluster_projection(ctx, model, split, 1, pg, &cr, &p);
  if (rc != EXIT_OK) return rc;
  const char *which = cli_str(ctx, "which", "fused");
  fputs("<h2>Embeddings</h2>\n<p>The encoder features <code>", f);
  rep_escape(f, which);
  fprintf(f,
          "</code> (h_f, the fused features, unless tool.which says otherwise) of the "
          "samples of the %s split, each grouped %s; cosine distances (docs/metrics.md, "
          "\"Cluster coherence\"). Silhouette: mean over the samples of (b − a) / max(a, b), "
          "a the mean distance to its own group, b to the nearest other group. kNN purity: "
          "the mean share of a sample's k nearest neighbours in its group.</p>\n",
          split,
          cr.single ? "by its class"
                    : "by its rarest positive label (the label with the fewest samples in the "
                      "split; samples without labels are left out)");
  fputs("<table id=\"cluster\"><tr><th class=\"name\">measure</th><th>value</th></tr>\n", f);
  fprintf(f, "<tr><td class=\"name\">samples grouped</td><td>%lld</td></tr>\n",
          (long long)cr.n);
  fprintf(f, "<tr><td class=\"name\">groups</td><td>%lld</td></tr>\n", (long long)cr.groups);
  if (isfinite(cr.silhouette))
    fprintf(
        f,
        "<tr><td class=\"name\">silhouette (cosine)</td><td id=\"silhouette\">%.4f</td></tr>\n",
        cr.silhouette);
  if (isfinite(cr.knn_purity))
    fprintf(f,
            "<tr><td class=\"name\">kNN purity (k = %lld, cosine)</td><td "
            "id=\"knn-purity\">%.4f</td></tr>\n",
            (long long)cr.k, cr.knn_purity);
  fputs("</table>\n", f);
  if (p.n > 0) {
    fprintf(f,
            "<p>The %s projection to two dimensions (%s), one point per sample coloured by "
            "its group; the legend counts each group's samples.</p>\n",
            strcmp(cr.method, "pca") == 0 ? "PCA" : "t-SNE",
            strcmp(cr.method, "pca") == 0
                ? "the first two principal components"
                : "exact t-SNE, perplexity 30 or (samples − 1) / 3, 1000 iterations; distances "
                  "between far clusters mean little");
    cli_projection_svg(f, "embeddings", &p);
  } else {
    fprintf(f,
            "<p class=\"note\">No cluster coherence and no projection: %lld samples in %lld "
            "groups are too few (the silhouette needs at least two groups and fewer groups "
            "than samples).</p>\n",
            (long long)cr.n, (long long)cr.groups);
  }
  cli_projection_free(&p);
  return EXIT_OK;
}

/* ---- the page --------------------------------------------------------------------------- */

static const char k_style[] =
    "body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
    "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #eee;"
    "text-align:right}td.name,th.name{text-align:left}.note{color:#a50}"
    "svg.chart{display:block;margin:1em 0;max-width:100%;height:auto}"
    ".samples{display:flex;flex-wrap:wrap;gap:1em}figure.sample{margin:0;padding:.5em;"
    "border:1px solid #ddd;max-width:340px}figure img{image-rendering:pixelated;"
    "margin-right:4px}.cap{display:block;font-size:.8em;color:#555}"
    "figcaption{font-size:.85em}";

static int write_page(FILE *f, cli_ctx *ctx, const char *model_path, const char *split,
                      msc_model *model, const msc_dataset *ds, const float *probs,
                      const uint8_t *labels, const cli_eval_result *r, cli_progress *pg) {
  int64_t n = r->n, c = r->c;
  fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\n<title>mosaic "
        "report: ",
        f);
  rep_escape(f, model_path);
  fprintf(f, "</title>\n<style>%s</style></head><body>\n<h1>mosaic report: ", k_style);
  rep_escape(f, model_path);
  fputs("</h1>\n<p>data <code>", f);
  rep_escape(f, cli_str(ctx, "data", ""));
  fputs("</code> (", f);
  rep_escape(f, cli_str(ctx, "format", "bigearthnet-v2"));
  fputs(", split ", f);
  rep_escape(f, split);
  fprintf(f, "): %lld samples, %lld classes; libmosaic %s.</p>\n", (long long)n, (long long)c,
          msc_version_string());

  /* (a) training curves */
  fputs("<h2>Training</h2>\n", f);
  char *steps = cli_sibling(model_path, ".steps.jsonl");
  char *hist = cli_sibling(model_path, ".history.json");
  if (!steps || !hist) {
    free(steps), free(hist);
    return cli_error("out of memory");
  }
  steps_charts(f, steps);
  history_charts(f, hist);
  free(steps), free(hist);

  /* (b) summary and per-class scores */
  const double *m = r->m;
  fprintf(f,
          "<h2>Scores on the %s split</h2>\n<table id=\"summary\"><tr><th class=\"name\">"
          "metric</th><th>value</th></tr>\n",
          split);
  const char *mn[] = {"macro AP", "micro AP",     "macro F1",
                      "micro F1", "Hamming loss", "Brier score"};
  const int mi[] = {MSC_METRIC_MACRO_AP, MSC_METRIC_MICRO_AP, MSC_METRIC_MACRO_F1,
                    MSC_METRIC_MICRO_F1, MSC_METRIC_HAMMING,  MSC_METRIC_BRIER};
  for (int k = 0; k < 6; ++k)
    fprintf(f, "<tr><td class=\"name\">%s</td><td>%.4f</td></tr>\n", mn[k], m[mi[k]]);
  if (r->single)
    fprintf(f,
            "<tr><td class=\"name\">accuracy (arg max)</td><td>%.4f</td></tr>\n"
            "<tr><td class=\"name\">top-%lld accuracy</td><td>%.4f</td></tr>\n",
            r->cm.accuracy, (long long)r->top_k, r->top_k_acc);
  fprintf(f,
          "</table>\n<p>F1 at threshold %g. AP without interpolation, as "
          "scikit-learn (docs/metrics.md); – for a class without positives.</p>\n",
          (double)r->threshold);
  rep_bars(f, "class-bars", "Per-class AP and F1", r->class_names, c, r->ap, "AP", r->f1, "F1");
  fputs("<table id=\"per-class\"><tr><th class=\"name\">class</th><th>support</th><th>AP</th>"
        "<th>F1</th></tr>\n",
        f);
  for (int64_t k = 0; k < c; ++k) {
    fputs("<tr><td class=\"name\">", f);
    rep_escape(f, r->class_names[k]);
    fprintf(f, "</td><td>%lld</td>", (long long)r->support[k]);
    if (isfinite(r->ap[k]))
      fprintf(f, "<td class=\"ap\">%.4f</td>", r->ap[k]);
    else
      fputs("<td class=\"ap\">–</td>", f);
    fprintf(f, "<td class=\"f1\">%.4f</td></tr>\n", r->f1[k]);
  }
  fputs("</table>\n", f);

  /* (c) precision-recall curves */
  fputs("<h2>Precision-recall</h2>\n<p>One curve per class from the predicted "
        "probabilities: samples sorted by decreasing score, equal scores taken as one "
        "threshold; drawn as steps whose area is the class's AP.</p>\n",
        f);
  scored *tmp = malloc((size_t)n * sizeof *tmp);
  double *xy = malloc((size_t)(c * 2 * (2 * n + 2)) * sizeof(double));
  rep_series *ser = calloc((size_t)c, sizeof *ser);
  char **names = calloc((size_t)c, sizeof *names);
  int rc = tmp && xy && ser && names ? EXIT_OK : cli_error("out of memory");
  int ns = 0;
  for (int64_t k = 0; rc == EXIT_OK && k < c; ++k) {
    double *x = xy + k * 2 * (2 * n + 2), *y = x + (2 * n + 2);
    int64_t np = pr_curve(probs, labels, n, c, k, tmp, x, y);
    if (np == 0) continue;
    size_t len = strlen(r->class_names[k]) + 32;
    if (!(names[ns] = malloc(len))) {
      rc = cli_error("out of memory");
      break;
    }
    snprintf(names[ns], len, "%.22s (AP %.3f)", r->class_names[k], r->ap[k]);
    ser[ns] = (rep_series){names[ns], x, y, np};
    ns++;
  }
  if (rc == EXIT_OK) {
    char title[96];
    snprintf(title, sizeof title, "Precision-recall per class, macro AP %.4f",
             m[MSC_METRIC_MACRO_AP]);
    rep_lines(f, "pr-curves", title, "recall", "precision", ser, ns, 0, 1);
  }
  for (int k = 0; k < ns; ++k) free(names[k]);
  free(names), free(ser), free(xy), free(tmp);
  if (rc != EXIT_OK) return rc;

  /* (d) confusion */
  fputs("<h2>Confusion</h2>\n", f);
  int64_t *cm = r->single ? NULL : calloc((size_t)(c * c), sizeof(int64_t));
  if (!r->single && !cm) return cli_error("out of memory");
  if (!r->single) {
    /* Multi-label: each (sample, true class) pair counts once, in the column of the
     * sample's top-1 predicted class (the first of equal maxima). */
    for (int64_t i = 0; i < n; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < c; ++k)
        if (probs[i * c + k] > probs[i * c + best]) best = k;
      for (int64_t t = 0; t < c; ++t)
        if (labels[i * c + t]) cm[t * c + best]++;
    }
    fputs("<p>Multi-label: each (sample, true class) pair counts once in the row of the "
          "true class and the column of the sample's top-1 predicted class. Cells are "
          "shaded by their share of the row.</p>\n",
          f);
  } else {
    fputs("<p>Single-label: row = true class, column = arg max of the scores; shaded by "
          "share of the row.</p>\n",
          f);
  }
  rep_confusion(f, "confusion",
                r->single ? "Confusion matrix" : "True class vs top-1 predicted class",
                r->class_names, c, r->single ? r->confusion : cm,
                r->single ? "predicted class" : "top-1 predicted class");
  free(cm);

  /* (e) embeddings */
  int rc2 = embeddings(f, ctx, model, split, pg);
  if (rc2 != EXIT_OK) return rc2;

  /* (f) quicklooks */
  int64_t first = cli_int(ctx, "first", 4);
  if (first > n) first = n;
  rc = quicklooks(f, ds, model, probs, labels, first, c);
  fputs("</body></html>\n", f);
  return rc;
}

int cmd_report(int argc, char **argv, int verbosity) {
  cli_ctx ctx;
  int rc = cli_parse(&ctx, "report", help, allowed, 0, argc, argv, verbosity);
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  const char *model_path = cli_str(&ctx, "model", NULL);
  const char *split = cli_str(&ctx, "split", "test");
  const char *out = cli_str(&ctx, "out", "report.html");
  if (!model_path)
    rc = cli_usage("report", "--model PATH is required");
  else if (!cli_has(&ctx, "data"))
    rc = cli_usage("report", "--data DIR is required");
  if (rc >= 0) {
    cli_ctx_free(&ctx);
    return rc;
  }
  cli_progress pg;
  cli_progress_init(&pg, cli_str(&ctx, "progress", "auto"),
                    cli_float(&ctx, "progress_interval", 10));
  cli_catch_signals();
  msc_model *model = NULL;
  msc_dataset *ds = NULL;
  float *probs = NULL;
  uint8_t *labels = NULL;
  cli_eval_result r;
  memset(&r, 0, sizeof r);
  rc = cli_load_model(&ctx, model_path, &model);
  if (rc == EXIT_OK && cli_model_segmentation(model))
    rc = cli_error("report: segmentation models are not covered yet (use mosaic eval)");
  if (rc == EXIT_OK) rc = cli_open_dataset(&ctx, ctx.opts, split, 1, &ds);
  int64_t n = ds ? msc_dataset_size(ds) : 0, c = ds ? msc_dataset_class_count(ds) : 0;
  if (rc == EXIT_OK && n == 0)
    rc = cli_error("the %s split of %s has no samples", split, cli_str(&ctx, "data", "?"));
  if (rc == EXIT_OK)
    rc = cli_infer(model, ds, 64, &pg, "predict", &probs, &labels, 0, NULL, NULL);
  int single = rc == EXIT_OK && (cli_model_single_label(model) || msc_dataset_single_label(ds));
  if (rc == EXIT_OK)
    rc = cli_eval_metrics(probs, labels, n, c, (float)cli_float(&ctx, "threshold", 0.5), single,
                          model, &r);
  char *html = NULL;
  size_t len = 0;
  if (rc == EXIT_OK) {
    FILE *f = open_memstream(&html, &len);
    if (!f) {
      rc = cli_error("out of memory");
    } else {
      rc = write_page(f, &ctx, model_path, split, model, ds, probs, labels, &r, &pg);
      if (fclose(f) != 0 && rc == EXIT_OK) rc = cli_error("out of memory");
    }
  }
  if (rc == EXIT_OK) rc = cli_write_file(out, html, len);
  if (rc == EXIT_OK) printf("%s\n", out);
  free(html);
  cli_eval_free(&r);
  free(probs), free(labels);
  msc_dataset_free(ds);
  msc_model_free(model);
  cli_ctx_free(&ctx);
  if (rc == EXIT_OK) rc = cli_finish_output();
  return rc;
}
