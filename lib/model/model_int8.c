/*
 * model_int8.c — the model's side of int8 inference (docs/precision.md, "int8"):
 * calibration ranges, the descriptions that carry them to the backend (backend.h,
 * API 9: u.conv.q_max / u.linear.q_max), and the refusal of an uncalibrated model.
 *
 * msc_model_calibrate (embed.c) runs ordinary float32 forwards with m->calib.active
 * set: the executors' ops are then made without q_max (float32 even on an int8
 * context) and, before each conv2d and linear node (a fused step's conv included),
 * msci_int8_observe downloads its input and folds max |x| and "x < 0 seen" into
 * m->calib. Every change of the ranges or of active bumps m->calib.gen, and an
 * executor whose ops were made for another generation drops them before its next
 * forward, so the ops of a calibrated model carry the latest ranges.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "model/model.h"

msc_status msci_int8_prepare(msc_model *m, msci_exec *e) {
  if (m->precision != MBK_PRECISION_INT8 || e->training) return MSC_OK;
  if (!m->calib.active && m->calib.batches == 0)
    return msci_fail(MSC_E_INVALID_ARGUMENT,
                     "the model runs in precision int8 but has not been calibrated: calibrate "
                     "first (msc_model_calibrate on a few representative batches; "
                     "docs/precision.md)");
  if (e->calib_gen == m->calib.gen) return MSC_OK;
  for (int32_t i = 0; i < m->graph.n_nodes; ++i) {
    msci_be_op_free(e->ops[i]);
    e->ops[i] = NULL;
  }
  e->calib_gen = m->calib.gen;
  return MSC_OK;
}

void msci_int8_desc(const msc_model *m, const msci_exec *e, int32_t c, mbk_op_desc *d) {
  if (m->precision != MBK_PRECISION_INT8 || e->training || m->calib.active || !m->calib.max)
    return;
  const float mx = m->calib.max[c];
  /* A node calibration never reached, or whose input was all zeros, stays float32. */
  if (!(mx > 0.0f) || !isfinite(mx)) return;
  /* Grouped (ConvNeXt's depthwise) convolutions have no int8 path: float32 (op_desc.c). */
  if (d->type == MBK_OP_CONV2D && mbk_conv_groups(d) == 1) {
    d->u.conv.q_max = mx;
    d->u.conv.q_signed = m->calib.neg[c];
  } else if (d->type == MBK_OP_LINEAR) {
    d->u.linear.q_max = mx;
    d->u.linear.q_signed = m->calib.neg[c];
  }
}

msc_status msci_int8_observe(msc_model *m, int32_t c, const mbk_tensor *x) {
  int64_t dims[MBK_MAX_DIMS];
  int32_t nd = msci_be_tensor_shape(m->be, x, dims);
  size_t count = 1;
  for (int32_t k = 0; k < nd; ++k) count *= (size_t)dims[k];
  if (count > m->calib.cap) {
    float *nb = realloc(m->calib.buf, count * sizeof *nb);
    if (!nb) return msci_fail(MSC_E_OUT_OF_MEMORY, "calibration: %zu floats", count);
    m->calib.buf = nb;
    m->calib.cap = count;
  }
  MSCI_TRY(msci_be_tensor_download(m->be, x, m->calib.buf, count));
  float mx = m->calib.max[c];
  uint8_t neg = m->calib.neg[c];
  for (size_t i = 0; i < count; ++i) {
    const float v = m->calib.buf[i];
    mx = fmaxf(mx, fabsf(v));
    neg |= v < 0.0f;
  }
  m->calib.max[c] = mx;
  m->calib.neg[c] = neg;
  return MSC_OK;
}

void msci_int8_free(msc_model *m) {
  /* gen keeps counting: an executor whose ops carry forgotten ranges must not find its
   * generation again after a new calibration. */
  const uint64_t gen = m->calib.gen + 1;
  free(m->calib.max);
  free(m->calib.neg);
  free(m->calib.buf);
  memset(&m->calib, 0, sizeof m->calib);
  m->calib.gen = gen;
}
