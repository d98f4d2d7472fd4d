/*
 * cluster.c — `mosaic eval --protocol cluster` (docs/metrics.md, "Cluster coherence"):
 * embeds a split (tool.which, default the fused features), groups the samples by class
 * (single-label: the class; multi-label: the rarest positive label,
 * msc_metrics_group_by_label), and scores how well the embeddings cluster by it:
 * silhouette (cosine) and kNN purity. With --projection PATH it also writes a 2-D
 * projection (t-SNE, or PCA with --method pca or above MSC_TSNE_MAX_SAMPLES samples) as
 * a TSV and draws it as an SVG scatter plot beside it (PATH with .svg), coloured by group;
 * both files are written atomically (cli_write_file). `mosaic report` keeps the projection
 * in memory instead (cli_cluster_projection) and draws it inline.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "report.h"

/* The text of a file built in memory, then written atomically by cli_write_file (no
 * half-written file is left where a reader, or the next run, would look). */
typedef struct mem_file {
  FILE *f;
  char *text;
  size_t len;
} mem_file;

static int mem_open(mem_file *m) {
  memset(m, 0, sizeof *m);
  m->f = open_memstream(&m->text, &m->len);
  return m->f ? EXIT_OK : cli_error("out of memory");
}

static int mem_write(mem_file *m, const char *path) {
  int rc =
      fclose(m->f) == 0 ? cli_write_file(path, m->text, m->len) : cli_error("out of memory");
  free(m->text);
  return rc;
}

/* Writes the projection as TSV: index, sample id, group, group name, x, y. */
static int write_tsv(const char *path, const msc_dataset *ds, const int32_t *group,
                     const float *xy, int64_t n, char *const *names) {
  mem_file m;
  if (mem_open(&m) != EXIT_OK) return EXIT_ERROR;
  fputs("index\tsample\tgroup\tclass\tx\ty\n", m.f);
  for (int64_t i = 0; i < n; ++i) {
    char id[256] = "";
    msc_dataset_sample_id(ds, i, id, sizeof id, NULL);
    const char *name = group[i] >= 0 ? names[group[i]] : "";
    fprintf(m.f, "%lld\t%s\t%d\t%s\t%.6g\t%.6g\n", (long long)i, id, (int)group[i],
            name ? name : "", (double)xy[i * 2], (double)xy[i * 2 + 1]);
  }
  return mem_write(&m, path);
}

/* The scatter plot (rep_scatter) as a file of its own. */
static int write_svg(const char *path, const cli_projection *p) {
  mem_file m;
  if (mem_open(&m) != EXIT_OK) return EXIT_ERROR;
  cli_projection_svg(m.f, "projection", p);
  return mem_write(&m, path);
}

void cli_projection_svg(FILE *f, const char *id, const cli_projection *p) {
  rep_scatter(f, id, p->title, p->xy, p->group, p->n, (const char *const *)p->names,
              p->classes);
}

void cli_projection_free(cli_projection *p) {
  for (int64_t k = 0; p->names && k < p->classes; ++k) free(p->names[k]);
  free(p->names), free(p->xy), free(p->group);
  memset(p, 0, sizeof *p);
}

/* cli_eval_cluster and cli_cluster_projection: the projection goes to files at path (TSV
 * and SVG), into *keep, both or neither. */
static int cluster_run(cli_ctx *ctx, msc_model *model, const char *split, const char *path,
                       cli_projection *keep, int lenient, cli_progress *pg,
                       cli_cluster_result *r) {
  memset(r, 0, sizeof *r);
  if (keep) memset(keep, 0, sizeof *keep);
  int project = path || keep;
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
      project = 0;
    } else if (st != MSC_OK) {
      rc = cli_lib_error(st, "cluster metrics of the %s split", split);
    }
  }
  cli_projection p;
  memset(&p, 0, sizeof p);
  if (rc == EXIT_OK && project) {
    const char *method = cli_str(ctx, "method", "tsne");
    if (strcmp(method, "tsne") != 0 && strcmp(method, "pca") != 0)
      rc = cli_usage(NULL, "--method must be tsne or pca, not '%s'", method);
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
    snprintf(r->method, sizeof r->method, "%s", method);
    p.n = n, p.classes = c, p.xy = xy, p.group = group;
    xy = NULL, group = NULL; /* p owns them now */
    if (rc == EXIT_OK && !(p.names = calloc((size_t)(c > 0 ? c : 1), sizeof *p.names)))
      rc = cli_error("out of memory");
    for (int64_t k = 0; rc == EXIT_OK && k < c; ++k) {
      const char *name = msc_dataset_class_name(ds, k);
      if (!(p.names[k] = strdup(name ? name : "?"))) rc = cli_error("out of memory");
    }
    snprintf(p.title, sizeof p.title, "%s of the %s split (%lld samples), by %s",
             strcmp(method, "tsne") == 0 ? "t-SNE" : "PCA", split, (long long)n,
             r->single ? "class" : "rarest label");
  }
  if (rc == EXIT_OK && project && path) {
    rc = write_tsv(path, ds, p.group, p.xy, n, p.names);
    char *svg = rc == EXIT_OK ? cli_sibling(path, ".svg") : NULL;
    if (rc == EXIT_OK) rc = svg ? write_svg(svg, &p) : cli_error("out of memory");
    if (rc == EXIT_OK) snprintf(r->svg, sizeof r->svg, "%s", svg);
    free(svg);
  }
  if (rc == EXIT_OK && project && keep)
    *keep = p;
  else
    cli_projection_free(&p);
  free(e), free(y), free(group), free(xy);
  msc_dataset_free(ds);
  return rc;
}

int cli_eval_cluster(cli_ctx *ctx, msc_model *model, const char *split, const char *projection,
                     int lenient, cli_progress *pg, cli_cluster_result *r) {
  return cluster_run(ctx, model, split, projection, NULL, lenient, pg, r);
}

int cli_cluster_projection(cli_ctx *ctx, msc_model *model, const char *split, int lenient,
                           cli_progress *pg, cli_cluster_result *r, cli_projection *out) {
  return cluster_run(ctx, model, split, NULL, out, lenient, pg, r);
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
