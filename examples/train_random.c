/*
 * train_random.c — a few MoSAiC training steps on random data, then a checkpoint.
 * Shows the training loop of the C API: options, a batch with labels, msc_train_step,
 * msc_model_save (which also saves the optimiser state, so training can resume).
 *
 *   cc train_random.c $(pkg-config --cflags --libs mosaic) && ./a.out model.safetensors
 */
#include <stdio.h>
#include <stdlib.h>
#include <mosaic/mosaic.h>

#define N    8
#define SIZE 32
#define CHECK(call)                                                                            \
  do {                                                                                         \
    if ((st = (call)) != MSC_OK) goto done;                                                    \
  } while (0)

int main(int argc, char **argv) {
  msc_status st = MSC_OK;
  msc_options *opts = NULL;
  msc_model *model = NULL;
  msc_batch *batch = NULL;
  static float s1[N * 2 * SIZE * SIZE], s2[N * 12 * SIZE * SIZE];
  static uint8_t labels[N * 19];
  for (size_t i = 0; i < sizeof s1 / sizeof s1[0]; ++i)
    s1[i] = -20.0f + (float)(rand() % 1000) / 100;
  for (size_t i = 0; i < sizeof s2 / sizeof s2[0]; ++i) s2[i] = (float)(rand() % 3000);
  for (int i = 0; i < N; ++i) labels[i * 19 + i % 19] = labels[i * 19 + (i + 4) % 19] = 1;

  CHECK(msc_options_create(&opts));
  CHECK(msc_options_from_json(
      opts,
      "{\"modality\": [{\"name\": \"s1\", \"bands\": 2, \"size\": 32, \"encoder\": \"tiny\"},"
      "                {\"name\": \"s2\", \"bands\": 12, \"size\": 32, \"encoder\": \"tiny\"}],"
      " \"train\": {\"preset\": \"mosaic1\"}, \"optim\": {\"lr\": 0.001, \"warmup_steps\": "
      "2}}"));
  CHECK(msc_model_create(opts, &model));
  CHECK(msc_batch_create(&batch));
  CHECK(msc_batch_set_modality(batch, "s1", s1, N, 2, SIZE, SIZE));
  CHECK(msc_batch_set_modality(batch, "s2", s2, N, 12, SIZE, SIZE));
  CHECK(msc_batch_set_labels(batch, labels, N, 19));
  for (int i = 0; i < 5; ++i) {
    msc_step_result r = {.struct_size = sizeof r};
    CHECK(msc_train_step(model, batch, &r));
    printf("step %lld  loss %.4f  (intra %.3f inter %.3f fused %.3f bce %.3f)  lr %.2e\n",
           (long long)r.step, r.loss, r.loss_intra, r.loss_inter, r.loss_fused, r.loss_bce,
           r.lr);
  }
  CHECK(msc_model_save(model, argc > 1 ? argv[1] : "model.safetensors"));
done:
  if (st != MSC_OK)
    fprintf(stderr, "error: %s (%s)\n", msc_status_string(st), msc_last_error());
  msc_batch_free(batch);
  msc_model_free(model);
  msc_options_free(opts);
  return st == MSC_OK ? 0 : 1;
}
