/*
 * op_desc.c — validation of op descriptions and loss arguments (layer: backend
 * contract, compiled into the core and into every backend module). The core's frame
 * (backend_call.c) runs it before a call reaches a backend, so that a bad description
 * fails the same way (and with the same message) on every backend.
 */
#include <stdio.h>

#include "backend.h"

static msc_status bad(char *why, size_t n, const char *msg, const mbk_op_desc *d) {
  if (why && n)
    snprintf(why, n, "op type %d: %s (n=%lld c=%lld h=%lld w=%lld)", (int)d->type, msg,
             (long long)d->n, (long long)d->c, (long long)d->h, (long long)d->w);
  return MSC_E_INVALID_ARGUMENT;
}

/* A window of size k, stride s, padding p must fit the padded extent and give >= 1. */
static int window_ok(int64_t extent, int64_t k, int64_t s, int64_t p) {
  return k > 0 && s > 0 && p >= 0 && p < k && extent + 2 * p >= k;
}

/* A transposed window (PyTorch's ConvTranspose2d): kernel k, stride s, padding p and
 * output padding op. p < k as for CONV2D (cuDNN and oneDNN need it); op < s as in
 * PyTorch (a larger one would add rows no input reaches). */
/* A calibrated input range (API 9): 0 (none) or a positive finite float. */
static int q_max_ok(float q) {
  return q == 0.0f || (q > 0.0f && q <= 3.4e38f);
}

static int deconv_ok(int64_t k, int64_t s, int64_t p, int64_t op) {
  return k > 0 && s > 0 && p >= 0 && p < k && op >= 0 && op < s;
}

msc_status mbk_op_desc_validate(const mbk_op_desc *d, char *why, size_t n) {
  if (!d) {
    if (why && n) snprintf(why, n, "op description is NULL");
    return MSC_E_INVALID_ARGUMENT;
  }
  if (d->type < MBK_OP_CONV2D || d->type >= MBK_OP_COUNT_)
    return bad(why, n, "unknown op type", d);
  if (d->ndim != 2 && d->ndim != 4) return bad(why, n, "ndim must be 2 or 4", d);
  if (d->n <= 0 || d->c <= 0) return bad(why, n, "n and c must be positive", d);
  if (d->ndim == 4 && (d->h <= 0 || d->w <= 0))
    return bad(why, n, "h and w must be positive", d);
  int needs4 = d->type == MBK_OP_CONV2D || d->type == MBK_OP_MAXPOOL ||
               d->type == MBK_OP_GAVGPOOL || d->type == MBK_OP_UPSAMPLE ||
               d->type == MBK_OP_DECONV2D || d->type == MBK_OP_GRN || d->type == MBK_OP_ATTN;
  if (needs4 && d->ndim != 4) return bad(why, n, "this op works on 4-D NCHW tensors", d);
  if (d->type == MBK_OP_LINEAR && d->ndim != 2)
    return bad(why, n, "linear works on 2-D tensors", d);
  switch (d->type) {
  case MBK_OP_CONV2D:
    if (d->u.conv.out_c <= 0) return bad(why, n, "conv2d: out_c must be positive", d);
    if (!window_ok(d->h, d->u.conv.kh, d->u.conv.sh, d->u.conv.ph) ||
        !window_ok(d->w, d->u.conv.kw, d->u.conv.sw, d->u.conv.pw))
      return bad(why, n, "conv2d: kernel, stride or padding do not fit the input", d);
    if (d->u.conv.fold_bn && (d->u.conv.bias || !(d->u.conv.bn_eps > 0.f)))
      return bad(why, n, "conv2d: fold_bn needs no bias and bn_eps > 0", d);
    if (!q_max_ok(d->u.conv.q_max))
      return bad(why, n, "conv2d: q_max must be finite and >= 0", d);
    if (d->u.conv.groups < 0) return bad(why, n, "conv2d: groups must be >= 0", d);
    if (mbk_conv_groups(d) > 1) {
      const int64_t g = mbk_conv_groups(d);
      if (d->c % g != 0 || d->u.conv.out_c % g != 0)
        return bad(why, n, "conv2d: groups must divide both c and out_c", d);
      /* The fused and int8 paths fold per-output-channel scales into one weight layout
       * of one group; nothing needs them grouped yet. */
      if (mbk_conv_fused(d) || d->u.conv.q_max > 0.0f)
        return bad(why, n,
                   "conv2d: groups > 1 do not combine with the inference fusions or int8 "
                   "(q_max)",
                   d);
    }
    break;
  case MBK_OP_MAXPOOL:
    if (!window_ok(d->h, d->u.pool.kh, d->u.pool.sh, d->u.pool.ph) ||
        !window_ok(d->w, d->u.pool.kw, d->u.pool.sw, d->u.pool.pw))
      return bad(why, n, "maxpool: kernel, stride or padding do not fit the input", d);
    break;
  case MBK_OP_BATCHNORM:
    if (!(d->u.bn.eps > 0.f) || !(d->u.bn.momentum >= 0.f && d->u.bn.momentum <= 1.f))
      return bad(why, n, "batchnorm: eps must be > 0 and momentum in [0, 1]", d);
    break;
  case MBK_OP_LAYERNORM:
    if (!(d->u.ln.eps > 0.f) || !(d->u.ln.eps < 1.f))
      return bad(why, n, "layernorm: eps must be in (0, 1)", d);
    break;
  case MBK_OP_GRN:
    if (!(d->u.grn.eps > 0.f) || !(d->u.grn.eps < 1.f))
      return bad(why, n, "grn: eps must be in (0, 1)", d);
    break;
  case MBK_OP_ATTN:
    if (d->u.attn.heads <= 0 || d->c % d->u.attn.heads != 0)
      return bad(why, n, "attn: heads must be positive and divide c", d);
    if (d->u.attn.sources < 1 || d->u.attn.sources > MBK_MAX_ATTN_SOURCES)
      return bad(why, n, "attn: sources must be in 1..MBK_MAX_ATTN_SOURCES (7)", d);
    for (int32_t j = 0; j < d->u.attn.sources; ++j)
      if (d->u.attn.src_h[j] <= 0 || d->u.attn.src_w[j] <= 0)
        return bad(why, n, "attn: every source needs a positive src_h and src_w", d);
    break;
  case MBK_OP_ADD:
    if (d->u.add.row_scale != 0 && d->u.add.row_scale != 1)
      return bad(why, n, "add: row_scale must be 0 or 1", d);
    break;
  case MBK_OP_LINEAR:
    if (d->u.linear.out_f <= 0) return bad(why, n, "linear: out_f must be positive", d);
    if (!q_max_ok(d->u.linear.q_max))
      return bad(why, n, "linear: q_max must be finite and >= 0", d);
    break;
  case MBK_OP_UPSAMPLE:
    if (d->u.upsample.mode != MBK_UPSAMPLE_NEAREST &&
        d->u.upsample.mode != MBK_UPSAMPLE_BILINEAR)
      return bad(why, n, "upsample: mode must be nearest (1) or bilinear (2)", d);
    if (d->u.upsample.oh < d->h || d->u.upsample.oh > d->h * MBK_MAX_UPSAMPLE ||
        d->u.upsample.ow < d->w || d->u.upsample.ow > d->w * MBK_MAX_UPSAMPLE)
      return bad(why, n, "upsample: the output size must be 1..1024 times the input's", d);
    /* oneDNN's nearest rounds the half-pixel coordinate, PyTorch's floors i·H/OH: the two
     * agree only when the ratio is an integer, so that is all the contract promises. */
    if (d->u.upsample.mode == MBK_UPSAMPLE_NEAREST &&
        (d->u.upsample.oh % d->h != 0 || d->u.upsample.ow % d->w != 0))
      return bad(why, n,
                 "upsample: nearest needs an output size that is a multiple of the input's", d);
    break;
  case MBK_OP_DECONV2D: {
    if (d->u.deconv.out_c <= 0) return bad(why, n, "deconv2d: out_c must be positive", d);
    if (!deconv_ok(d->u.deconv.kh, d->u.deconv.sh, d->u.deconv.ph, d->u.deconv.oph) ||
        !deconv_ok(d->u.deconv.kw, d->u.deconv.sw, d->u.deconv.pw, d->u.deconv.opw))
      return bad(why, n,
                 "deconv2d: needs k >= 1, stride >= 1, 0 <= padding < k and "
                 "0 <= output padding < stride",
                 d);
    int64_t od[MBK_MAX_DIMS];
    mbk_op_out_dims(d, od);
    if (od[2] < 1 || od[3] < 1) return bad(why, n, "deconv2d: the output would be empty", d);
    break;
  }
  case MBK_OP_CONCAT: {
    if (d->u.concat.count < 1 || d->u.concat.count > MBK_MAX_CONCAT)
      return bad(why, n, "concat: count must be 1..16", d);
    int64_t sum = 0;
    for (int32_t i = 0; i < d->u.concat.count; ++i) {
      if (d->u.concat.c[i] <= 0) return bad(why, n, "concat: every part needs channels", d);
      sum += d->u.concat.c[i];
    }
    if (sum != d->c) return bad(why, n, "concat: parts do not sum to c", d);
    break;
  }
  default: break;
  }
  return MSC_OK;
}

msc_status mbk_loss_desc_validate(const mbk_loss_desc *d, const mbk_tensor *x,
                                  const mbk_tensor *x2, const double *value,
                                  const mbk_tensor *grad, const mbk_tensor *grad2, char *why,
                                  size_t n) {
  const char *msg = NULL;
  if (!d)
    msg = "loss: the description is NULL";
  else if (d->type < MBK_LOSS_NTXENT || d->type > MBK_LOSS_DICE)
    msg = "loss: unknown loss type";
  else if (!x || !value || !grad || (d->type == MBK_LOSS_INFONCE && (!x2 || !grad2)))
    msg = "loss: NULL argument";
  else if (d->n <= 0 || d->row0 < 0 || (d->type <= MBK_LOSS_SOFTMAX_CE && d->d <= 0) ||
           (d->type >= MBK_LOSS_MULSUPCON && d->c <= 0) ||
           (d->type >= MBK_LOSS_PIXEL_CE && (d->h <= 0 || d->w <= 0)))
    msg = "loss: bad sizes";
  else if (d->type == MBK_LOSS_MULSUPCON && (!d->rows || !d->labels))
    msg = "mulsupcon: rows and labels are required";
  else if (d->type == MBK_LOSS_BCE && !d->labels)
    msg = "bce: labels are required";
  else if (d->type == MBK_LOSS_SOFTMAX_CE && !d->labels)
    msg = "softmax CE: labels are required";
  else if ((d->type == MBK_LOSS_PIXEL_CE || d->type == MBK_LOSS_DICE) && !d->targets)
    msg = "pixel loss: targets are required";
  else if (d->type == MBK_LOSS_PIXEL_BCE && !d->soft_targets)
    msg = "pixel BCE: soft_targets are required";
  if (!msg) return MSC_OK;
  if (why && n) {
    if (d)
      snprintf(why, n, "%s (type %d, n=%lld d=%lld c=%lld row0=%lld)", msg, (int)d->type,
               (long long)d->n, (long long)d->d, (long long)d->c, (long long)d->row0);
    else
      snprintf(why, n, "%s", msg);
  }
  return MSC_E_INVALID_ARGUMENT;
}
