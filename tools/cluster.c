/*
 * cluster.c — `mosaic eval --protocol cluster` (docs/metrics.md, "Cluster coherence"):
 * embeds a split (tool.which, default the fused features), groups the samples by class
 * (single-label: the class; multi-label: the rarest positive label,
 * msc_metrics_group_by_label), and scores how well the embeddings cluster by it:
 * silhouette (cosine) and kNN purity. With --projection PATH it also writes a 2-D
 * projection (t-SNE, or PCA with --method pca or above MSC_TSNE_MAX_SAMPLES samples) as
 * a TSV and draws it as an SVG scatter plot beside it (PATH with .svg), coloured by group.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

/* Writes the projection as TSV: index, sample id, group, group name, x, y. */
static int write_tsv(const char *path, const msc_dataset *ds, const int32_t *group,
                     const float *xy, int64_t n) {
  char *tmp = cli_sibling(path, ".tmp");
  FILE *f = tmp ? fopen(tmp, "w") : NULL;
  if (!f) {
    free(tmp);
    return cli_error("cannot write %s", path);
  }
  fputs("index\tsample\tgroup\tclass\tx\ty\n", f);
  for (int64_t i = 0; i < n; ++i) {
    char id[256] = "";
    msc_dataset_sample_id(ds, i, id, sizeof id, NULL);
    const char *name = group[i] >= 0 ? msc_dataset_class_name(ds, group[i]) : "";
    fprintf(f, "%lld\t%s\t%d\t%s\t%.6g\t%.6g\n", (long long)i, id, (int)group[i],
            name ? name : "", (double)xy[i * 2], (double)xy[i * 2 + 1]);
  }
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  int rc = bad ? cli_error("cannot write %s", path) : EXIT_OK;
  if (rc == EXIT_OK && rename(tmp, path) != 0) rc = cli_error("cannot rename onto %s", path);
  if (rc != EXIT_OK) remove(tmp);
  free(tmp);
  return rc;
}

/* The scatter plot: one circle per sample, coloured by group, and a legend. */
static int write_svg(const char *path, const msc_dataset *ds, const int32_t *group,
                     const float *xy, int64_t n, int64_t classes, const char *title) {
  FILE *f = fopen(path, "w");
  if (!f) return cli_error("cannot write %s", path);
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
  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
          "height=\"%d\" font-family=\"sans-serif\" font-size=\"11\">\n"
          "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
          "<text x=\"%d\" y=\"18\" font-size=\"13\" font-weight=\"bold\">",
          L + P + R, h, L + P + R, h, L);
  rep_escape(f, title);
  fputs("</text>\n", f);
  fprintf(
      f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#ccc\"/>\n",
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
    rep_escape(f, msc_dataset_class_name(ds, k));
    fprintf(f, " (%lld)</text>\n", (long long)count);
  }
  fputs("</svg>\n", f);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  return bad ? cli_error("cannot write %s", path) : EXIT_OK;
}

int cli_eval_cluster(cli_ctx *ctx, msc_model *model, const char *split, const char *projection,
                     int lenient, cli_progress *pg, cli_cluster_result *r) {
  memset(r, 0, sizeof *r);
  int32_t which = MSC_EMBED_FUSED;
  int rc = cli_parse_which(model, cli_str(ctx, "which", "fused"), &which);
  msc_dataset *ds = NULL;
  if (rc == EXIT_OK) rc = cli_open_dataset(ctx, ctx->opts, split, 1, &ds);
  if (rc != EXIT_OK) return rc;
  const int64_t n = msc_dataset_size(ds), c = msc_dataset_class_count(ds);
  float *e = NULL, *xy = NULL;
  uint8_t *y = NULL;
  int32_t *group = malloc((size_t)(n > 0 ? n : 1) * sizeof *group);
  int64_t d = 0;
  if (!group) rc = cli_error("out of memory");
  if (rc == EXIT_OK) rc = cli_infer(model, ds, 64, pg, "embed", NULL, &y, which, &e, &d);
  msc_status st = MSC_OK;
  r->single = msc_dataset_single_label(ds);
  if (rc == EXIT_OK && r->single) {
    for (int64_t i = 0; i < n; ++i) {
      group[i] = -1;
      for (int64_t k = 0; k < c; ++k)
        if (y[i * c + k]) group[i] = (int32_t)k;
    }
  } else if (rc == EXIT_OK && (st = msc_metrics_group_by_label(y, n, c, group)) != MSC_OK) {
    rc = cli_lib_error(st, "grouping the samples");
  }
  if (rc == EXIT_OK) {
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) kept += group[i] >= 0;
    r->n = kept;
    for (int64_t k = 0; k < c; ++k)
      for (int64_t i = 0; i < n; ++i)
        if (group[i] == k) {
          r->groups++;
          break;
        }
    r->k = cli_int(ctx, "k", 10);
    if (r->k > kept - 1) r->k = kept - 1;
    r->silhouette = r->knn_purity = NAN;
    st = msc_metrics_silhouette(e, n, d, group, MSC_DISTANCE_COSINE, &r->silhouette);
    if (st == MSC_OK)
      st = msc_metrics_knn_purity(e, n, d, group, r->k, MSC_DISTANCE_COSINE, &r->knn_purity);
    if (st == MSC_E_INVALID_ARGUMENT && lenient) { /* too few samples or groups: NaN */
      cli_note("no cluster coherence on the %s split: %s", split, msc_last_error());
      r->silhouette = r->knn_purity = NAN;
      projection = NULL;
    } else if (st != MSC_OK) {
      rc = cli_lib_error(st, "cluster metrics of the %s split", split);
    }
  }
  const char *proj = projection;
  if (rc == EXIT_OK && proj) {
    const char *method = cli_str(ctx, "method", "tsne");
    if (strcmp(method, "tsne") != 0 && strcmp(method, "pca") != 0)
      rc = cli_usage("eval", "--method must be tsne or pca, not '%s'", method);
    else if (strcmp(method, "tsne") == 0 && n > MSC_TSNE_MAX_SAMPLES) {
      cli_note("%lld samples are more than exact t-SNE takes (%d): projecting with PCA",
               (long long)n, MSC_TSNE_MAX_SAMPLES);
      method = "pca";
    }
    if (rc == EXIT_OK && !(xy = malloc((size_t)(n * 2) * sizeof *xy)))
      rc = cli_error("out of memory");
    if (rc == EXIT_OK) {
      double perplexity = cli_float(ctx, "perplexity", 30.0);
      if (strcmp(method, "tsne") == 0 && perplexity >= (double)n)
        perplexity = (double)(n - 1) / 3;
      st = strcmp(method, "tsne") == 0 ? msc_project_tsne(e, n, d, perplexity, 1000, xy)
                                       : msc_project_pca(e, n, d, 2, xy, NULL);
      if (st != MSC_OK) rc = cli_lib_error(st, "%s projection", method);
    }
    if (rc == EXIT_OK) rc = write_tsv(proj, ds, group, xy, n);
    if (rc == EXIT_OK) {
      char *svg = cli_sibling(proj, ".svg");
      char title[160];
      snprintf(title, sizeof title, "%s of the %s split (%lld samples), by %s",
               strcmp(method, "tsne") == 0 ? "t-SNE" : "PCA", split, (long long)n,
               r->single ? "class" : "rarest label");
      rc = svg ? write_svg(svg, ds, group, xy, n, c, title) : cli_error("out of memory");
      if (rc == EXIT_OK) snprintf(r->svg, sizeof r->svg, "%s", svg);
      free(svg);
    }
    snprintf(r->method, sizeof r->method, "%s", method);
  }
  free(e), free(y), free(group), free(xy);
  msc_dataset_free(ds);
  return rc;
}

void cli_cluster_print(const cli_cluster_result *r, FILE *f) {
  fprintf(f, "  %lld samples in %lld groups (%s)\n", (long long)r->n, (long long)r->groups,
          r->single ? "by class" : "by their rarest label");
  fprintf(f, "  silhouette (cosine) %.4f  kNN purity (k = %lld, cosine) %.4f\n", r->silhouette,
          (long long)r->k, r->knn_purity);
  if (r->svg[0]) fprintf(f, "  projection (%s) drawn in %s\n", r->method, r->svg);
}

json_t *cli_cluster_json(const cli_cluster_result *r) {
  json_t *doc = json_object();
  json_object_set_new(doc, "samples", json_integer(r->n));
  json_object_set_new(doc, "groups", json_integer(r->groups));
  json_object_set_new(doc, "grouping", json_string(r->single ? "class" : "rarest_label"));
  json_object_set_new(doc, "silhouette_cosine", cli_json_num(r->silhouette));
  json_object_set_new(doc, "knn_purity", cli_json_num(r->knn_purity));
  json_object_set_new(doc, "knn_k", json_integer(r->k));
  if (r->svg[0]) {
    json_object_set_new(doc, "projection_method", json_string(r->method));
    json_object_set_new(doc, "projection_svg", json_string(r->svg));
  }
  return doc;
}
