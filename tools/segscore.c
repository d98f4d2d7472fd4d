/*
 * segscore.c — a segmentation model scored per pixel on a dataset's masks: the one
 * computation behind `mosaic eval` of a segmentation model and the validation pass of
 * `mosaic train --task segmentation`, so that both report the same numbers for the same
 * model and split (docs/segmentation.md).
 */
#include <stdlib.h>

#include "cli.h"

int cli_seg_score(msc_model *model, const msc_dataset *ds, int64_t batch, cli_progress *pg,
                  const char *label, cli_seg_result *r) {
  const int64_t c = msc_model_class_count(model), n = msc_dataset_size(ds);
  int64_t mc = 0, size = 0;
  int32_t ignore = -1;
  msc_status st = msc_dataset_mask_info(ds, &mc, &ignore, &size);
  if (st != MSC_OK) return cli_lib_error(st, "the dataset has no masks to score against");
  if (mc != c)
    return cli_error("the dataset's masks have %lld classes, the model %lld", (long long)mc,
                     (long long)c);
  const int64_t bs = batch > 0 ? batch : 32;
  r->n = n;
  r->c = c;
  r->metrics = (msc_class_metrics){.struct_size = sizeof r->metrics};
  r->confusion = calloc((size_t)(c * c), sizeof *r->confusion);
  r->iou = calloc((size_t)c, sizeof *r->iou);
  r->f1 = calloc((size_t)c, sizeof *r->f1);
  int64_t *cm = calloc((size_t)(c * c), sizeof *cm), *idx = malloc((size_t)bs * sizeof *idx);
  size_t px = (size_t)bs * (size_t)size * (size_t)size;
  int32_t *pred = malloc(px * sizeof *pred), *truth = malloc(px * sizeof *truth);
  msc_batch *b = NULL;
  int rc = EXIT_OK;
  if (!r->confusion || !r->iou || !r->f1 || !cm || !idx || !pred || !truth ||
      msc_batch_create(&b) != MSC_OK)
    rc = cli_error("out of memory");
  cli_progress_begin(pg, label, n);
  for (int64_t from = 0; rc == EXIT_OK && from < n && !cli_interrupted; from += bs) {
    int64_t k = n - from < bs ? n - from : bs, h = 0, w = 0;
    for (int64_t i = 0; i < k; ++i) idx[i] = from + i;
    st = msc_dataset_fill_batch(ds, idx, k, b);
    if (st == MSC_OK) st = msc_batch_mask(b, truth, px, &h, &w);
    if (st == MSC_OK) st = msc_predict_mask(model, b, pred, px, NULL, 0);
    if (st == MSC_OK) st = msc_metrics_confusion(pred, truth, k * h * w, c, ignore, cm);
    if (st != MSC_OK) {
      rc = cli_lib_error(st, "samples %lld..%lld", (long long)from, (long long)(from + k - 1));
      break;
    }
    for (int64_t i = 0; i < c * c; ++i) r->confusion[i] += cm[i];
    cli_progress_update(pg, from + k, "");
  }
  cli_progress_end(pg, NULL);
  if (rc == EXIT_OK && cli_interrupted) rc = EXIT_INTERRUPTED;
  if (rc == EXIT_OK &&
      (st = msc_metrics_from_confusion(r->confusion, c, &r->metrics, r->f1, r->iou)) != MSC_OK)
    rc = cli_lib_error(st, "metrics");
  free(cm), free(idx), free(pred), free(truth);
  msc_batch_free(b);
  if (rc != EXIT_OK) cli_seg_free(r);
  return rc;
}

void cli_seg_free(cli_seg_result *r) {
  free(r->confusion), free(r->iou), free(r->f1);
  r->confusion = NULL;
  r->iou = r->f1 = NULL;
}
