/* embed_ref — the C side of every language binding's parity test (docs/bindings.md).
 *
 *   embed_ref make-model MODEL DATA   a tiny two-encoder model for the dataset at DATA
 *                                     (BigEarthNet v2 layout), saved to MODEL
 *   embed_ref embed MODEL DATA OUT    the fused embeddings (MSC_EMBED_FUSED) of every
 *                                     sample of DATA, in dataset order, written to OUT
 *                                     as raw little-endian float32, N × D row-major
 *
 * Each binding's example does what `embed` does through its own language; the test
 * compares the two files byte for byte (the same library computes both). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosaic/mosaic.h>

static int fail(msc_status st, const char *what) {
  fprintf(stderr, "embed_ref: %s: %s: %s\n", what, msc_status_string(st), msc_last_error());
  return 1;
}

static int make_model(const char *model_path, const char *data) {
  msc_dataset *ds = NULL;
  msc_options *opts = NULL;
  msc_model *model = NULL;
  msc_status st = msc_dataset_open(data, "bigearthnet-v2", NULL, &ds);
  if (st != MSC_OK) return fail(st, "msc_dataset_open");
  int rc = 1;
  if ((st = msc_options_create(&opts)) != MSC_OK) goto out;
  if ((st = msc_options_set_string(opts, "modality.0.encoder", "tiny")) != MSC_OK) goto out;
  if ((st = msc_options_set_string(opts, "modality.1.encoder", "tiny")) != MSC_OK) goto out;
  if ((st = msc_options_set_int(opts, "seed", 7)) != MSC_OK) goto out;
  if ((st = msc_options_from_dataset(opts, ds, MSC_STATS_AUTO, 0)) != MSC_OK) goto out;
  if ((st = msc_model_create(opts, &model)) != MSC_OK) goto out;
  if ((st = msc_model_save(model, model_path)) != MSC_OK) goto out;
  rc = 0;
out:
  if (rc) fail(st, "making the model");
  msc_model_free(model);
  msc_options_free(opts);
  msc_dataset_free(ds);
  return rc;
}

static int embed(const char *model_path, const char *data, const char *out_path) {
  msc_model *model = NULL;
  msc_dataset *ds = NULL;
  msc_batch *batch = NULL;
  int64_t *idx = NULL;
  float *h = NULL;
  int rc = 1;
  msc_status st = msc_model_load(model_path, NULL, &model);
  if (st != MSC_OK) return fail(st, "msc_model_load");
  if ((st = msc_dataset_open(data, "bigearthnet-v2", NULL, &ds)) != MSC_OK) goto out;
  int64_t n = msc_dataset_size(ds), d = 0;
  if ((st = msc_model_embedding_size(model, MSC_EMBED_FUSED, &d)) != MSC_OK) goto out;
  idx = malloc((size_t)n * sizeof *idx);
  h = malloc((size_t)(n * d) * sizeof *h);
  if (!idx || !h) {
    st = MSC_E_OUT_OF_MEMORY;
    goto out;
  }
  for (int64_t i = 0; i < n; i++) idx[i] = i;
  if ((st = msc_batch_create(&batch)) != MSC_OK) goto out;
  if ((st = msc_dataset_fill_batch(ds, idx, n, batch)) != MSC_OK) goto out;
  if ((st = msc_embed(model, batch, MSC_EMBED_FUSED, h, (size_t)(n * d))) != MSC_OK) goto out;
  FILE *f = fopen(out_path, "wb");
  if (!f || fwrite(h, sizeof *h, (size_t)(n * d), f) != (size_t)(n * d) || fclose(f) != 0) {
    fprintf(stderr, "embed_ref: cannot write %s\n", out_path);
    goto out;
  }
  printf("embed_ref: %lld samples x %lld floats -> %s\n", (long long)n, (long long)d, out_path);
  rc = 0;
  st = MSC_OK;
out:
  if (rc && st != MSC_OK) fail(st, "embedding");
  free(idx);
  free(h);
  msc_batch_free(batch);
  msc_dataset_free(ds);
  msc_model_free(model);
  return rc;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "make-model") == 0) return make_model(argv[2], argv[3]);
  if (argc == 5 && strcmp(argv[1], "embed") == 0) return embed(argv[2], argv[3], argv[4]);
  fprintf(stderr, "usage: embed_ref make-model MODEL DATA | embed_ref embed MODEL DATA OUT\n");
  return 2;
}
