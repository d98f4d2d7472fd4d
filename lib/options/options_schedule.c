/*
 * options_schedule.c — msc_options_default_schedule: the learning-rate schedule a run
 * gets when the caller sets none, in one place for the tool (`mosaic train`,
 * tools/train.c) and the Python Model.fit (bindings/python/mosaic/_core.py).
 *
 * Without optim.total_steps the learning rate stays constant (docs/training.md): a run of
 * known length should decay it. The default is the cosine decay over the whole run with a
 * linear warm-up over its first 5 % (none for runs under 20 steps).
 */
#include "common/internal.h"
#include "mosaic/mosaic.h"

MSC_API msc_status msc_options_default_schedule(msc_options *opts, int64_t total_steps) {
  if (!opts)
    return msci_fail(MSC_E_INVALID_ARGUMENT, "msc_options_default_schedule: opts is NULL");
  if (total_steps < 1)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "msc_options_default_schedule: total_steps = %lld must be at least 1",
                     (long long)total_steps);
  int32_t total_set = 0, warmup_set = 0;
  MSCI_TRY(msc_options_is_set(opts, "optim.total_steps", &total_set));
  MSCI_TRY(msc_options_is_set(opts, "optim.warmup_steps", &warmup_set));
  /* (both checked before either is written: a failure leaves opts as it was) */
  if (!total_set) MSCI_TRY(msc_options_set_int(opts, "optim.total_steps", total_steps));
  if (!warmup_set) {
    msc_status st = msc_options_set_int(opts, "optim.warmup_steps",
                                        total_steps >= 20 ? total_steps / 20 : 0);
    if (st != MSC_OK) return st;
  }
  return MSC_OK;
}
