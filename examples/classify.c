/* classify.c — land-cover probabilities of every sample of a BigEarthNet v2 folder.
 *   cc classify.c $(pkg-config --cflags --libs mosaic) -o classify
 *   ./classify main-out/model.safetensors examples/data/bigearthnet-v2          */
#include <stdio.h>
#include <stdlib.h>
#include <mosaic/mosaic.h>

int main(int argc, char **argv) {
  msc_model *model = NULL;
  msc_dataset *ds = NULL;
  msc_batch *batch = NULL;
  msc_options *o = NULL;
  int64_t idx[16], n = 0, c = 0;
  float *p = NULL;
  msc_status st = argc == 3 ? MSC_OK : MSC_E_INVALID_ARGUMENT;
  if (!st) st = msc_model_load(argv[1], NULL, &model); /* weights + configuration */
  if (!st) st = msc_options_create(&o);
  if (!st) st = msc_options_set_string(o, "data.split", "all"); /* every sample, any split */
  if (!st) st = msc_dataset_open(argv[2], "bigearthnet-v2", o, &ds);
  if (!st)
    n = msc_dataset_size(ds) < 16 ? msc_dataset_size(ds) : 16, c = msc_model_class_count(model);
  for (int64_t i = 0; i < n; i++) idx[i] = i;
  if (!st && !(p = malloc((size_t)(n * c) * sizeof *p))) st = MSC_E_OUT_OF_MEMORY;
  if (!st) st = msc_batch_create(&batch);
  if (!st) st = msc_dataset_fill_batch(ds, idx, n, batch);     /* reads the GeoTIFFs */
  if (!st) st = msc_predict(model, batch, p, (size_t)(n * c)); /* n × c probabilities */
  for (int64_t i = 0; !st && i < n; i++) {
    int64_t best = 0;
    for (int64_t k = 1; k < c; k++) best = p[i * c + k] > p[i * c + best] ? k : best;
    printf("sample %lld: %s (%.2f)\n", (long long)i, msc_model_class_name(model, best),
           p[i * c + best]);
  }
  if (st)
    fprintf(stderr, "classify: %s: %s\n", msc_status_string(st),
            argc == 3 ? msc_last_error() : "usage: classify MODEL DATASET_DIR");
  free(p), msc_batch_free(batch), msc_dataset_free(ds), msc_options_free(o),
      msc_model_free(model);
  return st ? 1 : 0;
}
