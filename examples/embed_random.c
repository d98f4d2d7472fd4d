#include <stdio.h>
#include <stdlib.h>
#include <mosaic/mosaic.h>
#define CHECK(call)                                                                            \
  do {                                                                                         \
    if ((st = (call)) != MSC_OK) goto done;                                                    \
  } while (0)
int main(void) {
  enum { N = 2, P = 120 * 120 };
  static float s1[N * 2 * P], s2[N * 12 * P], h[N * 32];
  for (int i = 0; i < N * 12 * P; i++) s2[i] = rand() % 3000, s1[i / 6] = -(rand() % 25);
  msc_options *opts = NULL;
  msc_model *model = NULL, *loaded = NULL;
  msc_batch *batch = NULL;
  msc_status st;
  CHECK(msc_options_create(&opts));
  CHECK(msc_options_set_string(opts, "modality.0.encoder", "tiny")); /* S1, 2 bands */
  CHECK(msc_options_set_string(opts, "modality.1.encoder", "tiny")); /* S2, 12 bands */
  CHECK(msc_model_create(opts, &model));
  CHECK(msc_batch_create(&batch)); /* N samples of 120×120 pixels, raw values */
  CHECK(msc_batch_set_modality(batch, "s1", s1, N, 2, 120, 120));
  CHECK(msc_batch_set_modality(batch, "s2", s2, N, 12, 120, 120));
  CHECK(msc_embed(model, batch, MSC_EMBED_FUSED, h, N * 32)); /* h_f: D_f = 16 + 16 */
  CHECK(msc_model_save(model, "tiny.safetensors"));
  CHECK(msc_model_load("tiny.safetensors", NULL, &loaded));
  printf("h_f[0][0..2] = %g %g %g; saved and loaded tiny.safetensors\n", h[0], h[1], h[2]);
done:
  if (st != MSC_OK) fprintf(stderr, "%s: %s\n", msc_status_string(st), msc_last_error());
  msc_model_free(loaded), msc_model_free(model), msc_batch_free(batch), msc_options_free(opts);
  return st == MSC_OK ? 0 : 1;
}
