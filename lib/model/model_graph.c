/*
 * model_graph.c — builds the model's graph from its configuration.
 *
 * Parameter names follow PyTorch's state_dict of torchvision's ResNet under a prefix
 * per modality ("enc.s2.layer1.0.conv1.weight", "enc.s2.bn1.running_var", ...), and
 * those of facebookresearch/ConvNeXt-V2's models/convnextv2.py for ConvNeXt encoders
 * ("enc.s2.downsample_layers.0.0.weight", "enc.s2.stages.1.0.grn.gamma", ...), so a
 * model file lines up with the weights users know (docs/model.md, "Parameter names of ConvNeXt encoders").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/internal.h"
#include "model/model.h"

typedef struct builder {
  msci_graph *g;
  const msci_model_cfg *cfg;
  msc_status st; /* first error; later calls do nothing */
} builder;

static int grow(void **ptr, int32_t *cap, int32_t need, size_t elem) {
  if (need <= *cap) return 1;
  int32_t ncap = *cap ? *cap * 2 : 64;
  while (ncap < need) ncap *= 2;
  void *n = realloc(*ptr, (size_t)ncap * elem);
  if (!n) return 0;
  memset((char *)n + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
  *ptr = n;
  *cap = ncap;
  return 1;
}

static int32_t add_param(builder *b, const char *prefix, const char *name, int32_t kind,
                         int32_t ndim, const int64_t *dims, int64_t fan_in, int64_t fan_out) {
  if (b->st != MSC_OK) return -1;
  msci_graph *g = b->g;
  if (!grow((void **)&g->params, &g->cap_params, g->n_params + 1, sizeof(msci_param))) {
    b->st = msci_fail(MSC_E_OUT_OF_MEMORY, "model parameters");
    return -1;
  }
  msci_param *p = &g->params[g->n_params];
  memset(p, 0, sizeof *p);
  if ((size_t)snprintf(p->name, sizeof p->name, "%s.%s", prefix, name) >= sizeof p->name) {
    b->st = msci_fail(MSC_E_INVALID_ARGUMENT, "parameter name %s.%s is too long", prefix, name);
    return -1;
  }
  p->kind = kind;
  p->ndim = ndim;
  memcpy(p->dims, dims, (size_t)ndim * sizeof(int64_t));
  p->fan_in = fan_in;
  p->fan_out = fan_out;
  return g->n_params++;
}

/* Shape (without batch) of a value: channels, height, width (h = w = 1 for 2-D). */
static int32_t value_shape(const builder *b, int32_t v, int64_t *dims) {
  if (v < 0) {
    const msci_modality_cfg *m = &b->cfg->mod[-1 - v];
    dims[0] = m->bands;
    dims[1] = dims[2] = m->size;
    return 3;
  }
  const msci_node *nd = &b->g->nodes[v];
  for (int32_t i = 1; i < nd->ndim; ++i) dims[i - 1] = nd->out[i];
  return nd->ndim - 1;
}

/* Adds a node whose input shape is taken from in[0]; returns its value index. */
static int32_t add_node(builder *b, mbk_op_desc d, const int32_t *in, int32_t n_in,
                        const int32_t *params, int32_t n_param) {
  if (b->st != MSC_OK) return -1;
  msci_graph *g = b->g;
  int64_t s[3] = {0, 0, 0};
  int32_t sd = value_shape(b, in[0], s);
  d.n = 1;
  if (d.type != MBK_OP_CONCAT) d.c = s[0];
  d.ndim = sd == 3 ? 4 : 2;
  d.h = sd == 3 ? s[1] : 1;
  d.w = sd == 3 ? s[2] : 1;
  char why[256];
  msc_status st = mbk_op_desc_validate(&d, why, sizeof why);
  if (st != MSC_OK) {
    b->st = msci_fail(st, "model configuration gives an impossible layer: %s", why);
    return -1;
  }
  if (!grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(msci_node))) {
    b->st = msci_fail(MSC_E_OUT_OF_MEMORY, "model graph");
    return -1;
  }
  msci_node *nd = &g->nodes[g->n_nodes];
  memset(nd, 0, sizeof *nd);
  nd->desc = d;
  nd->n_in = n_in;
  memcpy(nd->in, in, (size_t)n_in * sizeof(int32_t));
  nd->n_param = n_param;
  /* A parameter-free node (ReLU, pool, add) passes params = NULL: memcpy's pointers must
   * be valid even for 0 bytes (C11 7.24.1). */
  if (n_param > 0) memcpy(nd->param, params, (size_t)n_param * sizeof(int32_t));
  nd->ndim = mbk_op_out_dims(&d, nd->out);
  return g->n_nodes++;
}

static int64_t channels(const builder *b, int32_t v) {
  int64_t s[3] = {0, 0, 0};
  value_shape(b, v, s);
  return s[0];
}

static int32_t conv(builder *b, int32_t x, const char *prefix, const char *name, int64_t out_c,
                    int64_t k, int64_t stride) {
  int64_t in_c = channels(b, x);
  int64_t dims[4] = {out_c, in_c, k, k};
  char pname[MSCI_PARAM_NAME_LEN];
  snprintf(pname, sizeof pname, "%s.weight", name);
  int32_t w =
      add_param(b, prefix, pname, MSCI_PARAM_WEIGHT, 4, dims, in_c * k * k, out_c * k * k);
  mbk_op_desc d = {.type = MBK_OP_CONV2D};
  d.u.conv.out_c = out_c;
  d.u.conv.kh = d.u.conv.kw = k;
  d.u.conv.sh = d.u.conv.sw = stride;
  d.u.conv.ph = d.u.conv.pw = k / 2;
  return add_node(b, d, &x, 1, &w, 1);
}

static int32_t bnorm(builder *b, int32_t x, const char *prefix, const char *name, int relu) {
  int64_t c = channels(b, x);
  static const char *const suffix[4] = {"weight", "bias", "running_mean", "running_var"};
  static const int32_t kinds[4] = {MSCI_PARAM_BN_SCALE, MSCI_PARAM_BN_SHIFT, MSCI_PARAM_BN_MEAN,
                                   MSCI_PARAM_BN_VAR};
  int32_t p[4];
  for (int i = 0; i < 4; ++i) {
    char pname[MSCI_PARAM_NAME_LEN];
    snprintf(pname, sizeof pname, "%s.%s", name, suffix[i]);
    p[i] = add_param(b, prefix, pname, kinds[i], 1, &c, c, c);
  }
  mbk_op_desc d = {.type = MBK_OP_BATCHNORM};
  d.u.bn.eps = b->cfg->bn_eps;
  d.u.bn.momentum = b->cfg->bn_momentum;
  d.u.bn.relu = relu;
  return add_node(b, d, &x, 1, p, 4);
}

static int32_t simple(builder *b, int32_t type, int32_t a, int32_t second) {
  mbk_op_desc d = {.type = type};
  int32_t in[2] = {a, second};
  return add_node(b, d, in, second == INT32_MIN ? 1 : 2, NULL, 0);
}

static int32_t linear(builder *b, int32_t x, const char *prefix, const char *name,
                      int64_t out_f) {
  int64_t in_f = channels(b, x);
  int64_t wd[2] = {out_f, in_f};
  char pname[MSCI_PARAM_NAME_LEN];
  snprintf(pname, sizeof pname, "%s.weight", name);
  int32_t p[2];
  p[0] = add_param(b, prefix, pname, MSCI_PARAM_WEIGHT, 2, wd, in_f, out_f);
  snprintf(pname, sizeof pname, "%s.bias", name);
  p[1] = add_param(b, prefix, pname, MSCI_PARAM_BIAS, 1, &out_f, in_f, out_f);
  mbk_op_desc d = {.type = MBK_OP_LINEAR};
  d.u.linear.out_f = out_f;
  d.u.linear.bias = 1;
  return add_node(b, d, &x, 1, p, 2);
}

/* torchvision's BasicBlock / Bottleneck, stride on the 3×3 convolution. */
static int32_t block(builder *b, int32_t x, const char *prefix, const char *name,
                     const msci_encoder_cfg *e, int64_t width, int64_t stride) {
  char n1[96], n2[96];
  int64_t expansion = e->block == MSCI_BLOCK_BOTTLENECK ? 4 : 1;
  int64_t out_c = width * expansion;
  int32_t y;
  if (e->block == MSCI_BLOCK_BOTTLENECK) {
    snprintf(n1, sizeof n1, "%s.conv1", name), snprintf(n2, sizeof n2, "%s.bn1", name);
    y = bnorm(b, conv(b, x, prefix, n1, width, 1, 1), prefix, n2, 1);
    snprintf(n1, sizeof n1, "%s.conv2", name), snprintf(n2, sizeof n2, "%s.bn2", name);
    y = bnorm(b, conv(b, y, prefix, n1, width, 3, stride), prefix, n2, 1);
    snprintf(n1, sizeof n1, "%s.conv3", name), snprintf(n2, sizeof n2, "%s.bn3", name);
    y = bnorm(b, conv(b, y, prefix, n1, out_c, 1, 1), prefix, n2, 0);
  } else {
    snprintf(n1, sizeof n1, "%s.conv1", name), snprintf(n2, sizeof n2, "%s.bn1", name);
    y = bnorm(b, conv(b, x, prefix, n1, width, 3, stride), prefix, n2, 1);
    snprintf(n1, sizeof n1, "%s.conv2", name), snprintf(n2, sizeof n2, "%s.bn2", name);
    y = bnorm(b, conv(b, y, prefix, n1, out_c, 3, 1), prefix, n2, 0);
  }
  int32_t shortcut = x;
  if (b->st == MSC_OK && (stride != 1 || channels(b, x) != out_c)) {
    snprintf(n1, sizeof n1, "%s.downsample.0", name);
    snprintf(n2, sizeof n2, "%s.downsample.1", name);
    shortcut = bnorm(b, conv(b, x, prefix, n1, out_c, 1, stride), prefix, n2, 0);
  }
  return simple(b, MBK_OP_RELU, simple(b, MBK_OP_ADD, y, shortcut), INT32_MIN);
}

/* ---- ConvNeXt-V2 (docs/model.md, "ConvNeXt-V2 encoders") ------------------------------- */

#define CONVNEXT_EPS 1e-6f /* of every LayerNorm and GRN in ConvNeXt-V2 */

static void mark_convnext_init(builder *b, int32_t p) {
  if (p >= 0) b->g->params[p].convnext_init = 1;
}

/* Conv2d(in, out_c, k, stride, padding = pad, groups, bias = True), ConvNeXt's init. */
static int32_t conv_bias(builder *b, int32_t x, const char *prefix, const char *name,
                         int64_t out_c, int64_t k, int64_t stride, int64_t pad,
                         int64_t groups) {
  if (b->st != MSC_OK) return -1;
  int64_t in_c = channels(b, x);
  int64_t dims[4] = {out_c, in_c / groups, k, k};
  char pname[MSCI_PARAM_NAME_LEN];
  int32_t p[2];
  snprintf(pname, sizeof pname, "%s.weight", name);
  p[0] = add_param(b, prefix, pname, MSCI_PARAM_WEIGHT, 4, dims, in_c / groups * k * k,
                   out_c / groups * k * k);
  snprintf(pname, sizeof pname, "%s.bias", name);
  p[1] = add_param(b, prefix, pname, MSCI_PARAM_BIAS, 1, &out_c, in_c / groups * k * k,
                   out_c / groups * k * k);
  mark_convnext_init(b, p[0]);
  mark_convnext_init(b, p[1]);
  mbk_op_desc d = {.type = MBK_OP_CONV2D};
  d.u.conv.out_c = out_c;
  d.u.conv.kh = d.u.conv.kw = k;
  d.u.conv.sh = d.u.conv.sw = stride;
  d.u.conv.ph = d.u.conv.pw = pad;
  d.u.conv.bias = 1;
  d.u.conv.groups = groups > 1 ? (int32_t)groups : 0;
  return add_node(b, d, &x, 1, p, 2);
}

/* A normalisation over the channels with two [C] parameters named <name>.<names[0..1]>:
 * LayerNorm (channels_first on NCHW, nn.LayerNorm on N×C; weight 1, bias 0) or GRN
 * (gamma 0, beta 0: ConvNeXt-V2 starts every GRN as the identity). */
static int32_t channel_norm(builder *b, int32_t x, const char *prefix, const char *name,
                            int32_t type) {
  int64_t c = channels(b, x);
  const int grn = type == MBK_OP_GRN;
  const char *const suffix[2] = {grn ? "gamma" : "weight", grn ? "beta" : "bias"};
  int32_t p[2];
  for (int i = 0; i < 2; ++i) {
    char pname[MSCI_PARAM_NAME_LEN];
    snprintf(pname, sizeof pname, "%s.%s", name, suffix[i]);
    int32_t kind = (i == 0 && !grn) ? MSCI_PARAM_BN_SCALE : MSCI_PARAM_BN_SHIFT;
    p[i] = add_param(b, prefix, pname, kind, 1, &c, c, c);
  }
  mbk_op_desc d = {.type = type};
  if (grn)
    d.u.grn.eps = CONVNEXT_EPS;
  else
    d.u.ln.eps = CONVNEXT_EPS;
  return add_node(b, d, &x, 1, p, 2);
}

/* ConvNeXt-V2's Block: dwconv 7×7 → LN → pwconv1 (C → 4C) → GELU → GRN → pwconv2 (4C → C),
 * then x + drop_path(branch): an ADD with a per-sample scale (API 12) whose share of the
 * stochastic-depth rate is drop_frac. The pointwise layers are nn.Linear on channels-last
 * in PyTorch; a 1×1 convolution on NCHW is the same map (weights [4C, C, 1, 1]). */
static int32_t convnext_block(builder *b, int32_t x, const char *prefix, const char *name,
                              float drop_frac) {
  const int64_t c = channels(b, x);
  char n[96];
  snprintf(n, sizeof n, "%s.dwconv", name);
  int32_t y = conv_bias(b, x, prefix, n, c, 7, 1, 3, c);
  snprintf(n, sizeof n, "%s.norm", name);
  y = channel_norm(b, y, prefix, n, MBK_OP_LAYERNORM);
  snprintf(n, sizeof n, "%s.pwconv1", name);
  y = conv_bias(b, y, prefix, n, 4 * c, 1, 1, 0, 1);
  y = simple(b, MBK_OP_GELU, y, INT32_MIN);
  snprintf(n, sizeof n, "%s.grn", name);
  y = channel_norm(b, y, prefix, n, MBK_OP_GRN);
  snprintf(n, sizeof n, "%s.pwconv2", name);
  y = conv_bias(b, y, prefix, n, c, 1, 1, 0, 1);
  mbk_op_desc d = {.type = MBK_OP_ADD};
  d.u.add.row_scale = 1;
  int32_t in[2] = {x, y};
  int32_t out = add_node(b, d, in, 2, NULL, 0);
  if (out >= 0) b->g->nodes[out].drop_frac = drop_frac;
  return out;
}

/* Levels of an encoder the decoder reads: the stem's output before the max-pool (only
 * when there is one, since otherwise it has stage 1's resolution) and each stage's. */
typedef struct skips {
  int32_t n;                          /* levels, shallowest first */
  int32_t node[MSCI_MAX_STAGES + 1];  /* their values */
  int64_t width[MSCI_MAX_STAGES + 1]; /* the decoder's channels at that level */
  char name[MSCI_MAX_STAGES + 1][16]; /* "stem", "layer1", ... */
} skips;

/* facebookresearch/ConvNeXt-V2's ConvNeXtV2 without its head: downsample_layers.0 (the
 * stem: conv k × k stride s with bias, padding (k − s)/2, i.e. 0 for the 4×4 stride-4
 * stem, then LayerNorm), stages.0; downsample_layers.i (LayerNorm, conv 2×2 stride 2),
 * stages.i; ...; global average pooling and the final LayerNorm `norm` give h_m. Block k
 * of the K blocks gets k / (K − 1) of the stochastic-depth rate (torch.linspace(0, rate,
 * K) in the reference). The decoder reads each stage's output. */
static int32_t convnext_encoder(builder *b, int32_t m, skips *sk) {
  const msci_modality_cfg *mc = &b->cfg->mod[m];
  const msci_encoder_cfg *e = &mc->enc;
  char prefix[64], name[48];
  snprintf(prefix, sizeof prefix, "enc.%s", mc->name);
  int64_t pad = (e->stem_kernel - e->stem_stride) / 2;
  int32_t x = conv_bias(b, MSCI_INPUT(m), prefix, "downsample_layers.0.0", e->widths[0],
                        e->stem_kernel, e->stem_stride, pad > 0 ? pad : 0, 1);
  x = channel_norm(b, x, prefix, "downsample_layers.0.1", MBK_OP_LAYERNORM);
  int64_t total = 0, k = 0;
  for (int32_t s = 0; s < e->n_stages; ++s) total += e->depths[s];
  sk->n = 0;
  for (int32_t s = 0; s < e->n_stages; ++s) {
    if (s > 0) {
      snprintf(name, sizeof name, "downsample_layers.%d.0", (int)s);
      x = channel_norm(b, x, prefix, name, MBK_OP_LAYERNORM);
      snprintf(name, sizeof name, "downsample_layers.%d.1", (int)s);
      x = conv_bias(b, x, prefix, name, e->widths[s], 2, 2, 0, 1);
    }
    for (int64_t j = 0; j < e->depths[s]; ++j, ++k) {
      snprintf(name, sizeof name, "stages.%d.%lld", (int)s, (long long)j);
      x = convnext_block(b, x, prefix, name, total > 1 ? (float)k / (float)(total - 1) : 0.f);
    }
    sk->node[sk->n] = x, sk->width[sk->n] = e->widths[s];
    snprintf(sk->name[sk->n++], sizeof sk->name[0], "stage%d", (int)s + 1);
  }
  x = simple(b, MBK_OP_GAVGPOOL, x, INT32_MIN);
  return channel_norm(b, x, prefix, "norm", MBK_OP_LAYERNORM);
}

static int32_t encoder(builder *b, int32_t m, skips *sk) {
  const msci_modality_cfg *mc = &b->cfg->mod[m];
  const msci_encoder_cfg *e = &mc->enc;
  if (e->block == MSCI_BLOCK_CONVNEXT) return convnext_encoder(b, m, sk);
  char prefix[64];
  snprintf(prefix, sizeof prefix, "enc.%s", mc->name);
  int32_t x =
      conv(b, MSCI_INPUT(m), prefix, "conv1", e->stem_width, e->stem_kernel, e->stem_stride);
  x = bnorm(b, x, prefix, "bn1", 1);
  sk->n = 0;
  if (e->maxpool) {
    sk->node[sk->n] = x, sk->width[sk->n] = e->stem_width;
    snprintf(sk->name[sk->n++], sizeof sk->name[0], "stem");
    mbk_op_desc d = {.type = MBK_OP_MAXPOOL};
    d.u.pool.kh = d.u.pool.kw = 3;
    d.u.pool.sh = d.u.pool.sw = 2;
    d.u.pool.ph = d.u.pool.pw = 1;
    x = add_node(b, d, &x, 1, NULL, 0);
  }
  for (int32_t s = 0; s < e->n_stages; ++s)
    for (int64_t k = 0; k < e->depths[s]; ++k) {
      char name[48];
      snprintf(name, sizeof name, "layer%d.%lld", (int)s + 1, (long long)k);
      x = block(b, x, prefix, name, e, e->widths[s], (s > 0 && k == 0) ? 2 : 1);
      if (k + 1 == e->depths[s]) {
        sk->node[sk->n] = x, sk->width[sk->n] = e->widths[s];
        snprintf(sk->name[sk->n++], sizeof sk->name[0], "layer%d", (int)s + 1);
      }
    }
  return simple(b, MBK_OP_GAVGPOOL, x, INT32_MIN);
}

/* Linear(in→hidden) [→ BatchNorm] → ReLU → Linear(hidden→out). */
static int32_t head(builder *b, int32_t x, const char *prefix, int64_t hidden, int64_t out,
                    int with_bn) {
  if (hidden == 0) hidden = channels(b, x);
  int32_t y = linear(b, x, prefix, "fc1", hidden);
  y = with_bn ? bnorm(b, y, prefix, "bn", 1) : simple(b, MBK_OP_RELU, y, INT32_MIN);
  return linear(b, y, prefix, "fc2", out);
}

static int32_t concat(builder *b, const int32_t *in, int32_t n) {
  mbk_op_desc cat = {.type = MBK_OP_CONCAT};
  cat.u.concat.count = n;
  for (int32_t i = 0; i < n; ++i) {
    cat.u.concat.c[i] = b->st == MSC_OK ? channels(b, in[i]) : 0;
    cat.c += cat.u.concat.c[i];
  }
  return add_node(b, cat, in, n, NULL, 0);
}

/* Bilinear upsampling to exactly oh × ow: PyTorch's F.interpolate(x, size=(oh, ow),
 * mode="bilinear", align_corners=False), whose scale per axis is in/out. */
static int32_t upsample(builder *b, int32_t x, int64_t oh, int64_t ow) {
  mbk_op_desc d = {.type = MBK_OP_UPSAMPLE};
  d.u.upsample.oh = oh, d.u.upsample.ow = ow;
  d.u.upsample.mode = MBK_UPSAMPLE_BILINEAR;
  return add_node(b, d, &x, 1, NULL, 0);
}

/* PyTorch's ConvTranspose2d(in, out_c, 2, stride=2) with bias: exactly ×2. */
static int32_t deconv2x(builder *b, int32_t x, const char *prefix, const char *name,
                        int64_t out_c) {
  int64_t in_c = channels(b, x);
  int64_t dims[4] = {in_c, out_c, 2, 2};
  char pname[MSCI_PARAM_NAME_LEN];
  int32_t p[2];
  snprintf(pname, sizeof pname, "%s.weight", name);
  p[0] = add_param(b, prefix, pname, MSCI_PARAM_WEIGHT, 4, dims, in_c * 4, out_c * 4);
  snprintf(pname, sizeof pname, "%s.bias", name);
  p[1] = add_param(b, prefix, pname, MSCI_PARAM_BIAS, 1, &out_c, in_c * 4, out_c * 4);
  mbk_op_desc d = {.type = MBK_OP_DECONV2D};
  d.u.deconv.out_c = out_c;
  d.u.deconv.kh = d.u.deconv.kw = 2;
  d.u.deconv.sh = d.u.deconv.sw = 2;
  d.u.deconv.bias = 1;
  return add_node(b, d, &x, 1, p, 2);
}

static void hw_of(const builder *b, int32_t v, int64_t *h, int64_t *w) {
  int64_t s[3] = {0, 0, 0};
  value_shape(b, v, s);
  *h = s[1], *w = s[2];
}

/* The U-Net decoder (docs/segmentation.md) over the modalities of seg.modalities
 * (cfg->seg_mod, in model order; "the selection" below): from the concatenated deepest
 * stage outputs of the selection up, level by level: up to the exact size of the next
 * level (bilinear, or a ×2 deconv that must land on it), concatenation with the
 * selection's outputs at that level, seg.convs × (conv3×3 → BN → ReLU) of the level's
 * width; then a 1×1 convolution with bias to the classes, and a bilinear upsampling to
 * the patch size when the shallowest level is smaller (it commutes with the 1×1
 * convolution, whose weights see the same values either way, and costs C channels
 * instead of the level's). Exact sizes rather than ×2 make any patch size work: a
 * stride-2 layer halves rounding up (120 → 60 → 30 → 15 → 8 → 4), and the way back
 * interpolates 4 → 8 → 15 → 30 → 60 → 120. */
static int32_t decoder(builder *b, const skips *sk) {
  const msci_model_cfg *cfg = b->cfg;
  const int32_t ns = cfg->seg_n_mod, *sel = cfg->seg_mod, m0 = sel[0];
  int32_t in[MBK_MAX_CONCAT];
  for (int32_t k = 1; k < ns; ++k)
    if (sk[sel[k]].n != sk[m0].n ||
        cfg->mod[sel[k]].enc.stem_stride != cfg->mod[m0].enc.stem_stride) {
      b->st = msci_fail(MSC_E_INVALID_ARGUMENT,
                        "task segmentation needs decoder modalities (seg.modalities) of the "
                        "same strides: %s and %s differ in stages, stem_stride or maxpool",
                        cfg->mod[m0].name, cfg->mod[sel[k]].name);
      return -1;
    }
  int32_t top = sk[m0].n - 1;
  for (int32_t k = 0; k < ns; ++k) in[k] = sk[sel[k]].node[top];
  int32_t x = ns > 1 ? concat(b, in, ns) : in[0];
  for (int32_t l = top - 1; l >= 0 && b->st == MSC_OK; --l) {
    char prefix[48], name[32];
    int64_t th, tw, h, w;
    snprintf(prefix, sizeof prefix, "dec.%s", sk[m0].name[l]);
    hw_of(b, sk[m0].node[l], &th, &tw);
    if (cfg->seg_deconv) {
      hw_of(b, x, &h, &w);
      x = deconv2x(b, x, prefix, "up", sk[m0].width[l + 1]);
      if (b->st == MSC_OK && (2 * h != th || 2 * w != tw)) {
        b->st = msci_fail(MSC_E_INVALID_ARGUMENT,
                          "task segmentation: seg.upsample = deconv doubles %s's %s output "
                          "(%lldx%lld) to %lldx%lld, but level %s is %lldx%lld; a patch size "
                          "(modality.#.size = %lld) not divisible by the encoder's total "
                          "stride needs seg.upsample = bilinear",
                          cfg->mod[m0].name, sk[m0].name[l + 1], (long long)h, (long long)w,
                          (long long)(2 * h), (long long)(2 * w), sk[m0].name[l], (long long)th,
                          (long long)tw, (long long)cfg->mod[m0].size);
        return -1;
      }
    } else {
      x = upsample(b, x, th, tw);
    }
    in[0] = x;
    for (int32_t k = 0; k < ns && b->st == MSC_OK; ++k) {
      in[1 + k] = sk[sel[k]].node[l];
      hw_of(b, in[1 + k], &h, &w);
      if (h != th || w != tw) { /* same patch size and strides: cannot happen */
        b->st = msci_fail(MSC_E_INVALID_ARGUMENT,
                          "task segmentation: %s's %s output is %lldx%lld, %s's %lldx%lld",
                          cfg->mod[sel[k]].name, sk[m0].name[l], (long long)h, (long long)w,
                          cfg->mod[m0].name, (long long)th, (long long)tw);
        return -1;
      }
    }
    x = concat(b, in, ns + 1);
    for (int32_t k = 0; k < cfg->seg_convs; ++k) {
      char bn[32];
      snprintf(name, sizeof name, "conv%d", (int)k + 1);
      snprintf(bn, sizeof bn, "bn%d", (int)k + 1);
      x = bnorm(b, conv(b, x, prefix, name, sk[m0].width[l], 3, 1), prefix, bn, 1);
    }
  }
  /* seg_head: 1×1 convolution with bias to C classes. */
  int64_t in_c = channels(b, x), out_c = cfg->classes, dims[4] = {out_c, in_c, 1, 1};
  int32_t p[2];
  p[0] = add_param(b, "seg_head", "conv.weight", MSCI_PARAM_WEIGHT, 4, dims, in_c, out_c);
  p[1] = add_param(b, "seg_head", "conv.bias", MSCI_PARAM_BIAS, 1, &out_c, in_c, out_c);
  mbk_op_desc d = {.type = MBK_OP_CONV2D};
  d.u.conv.out_c = out_c;
  d.u.conv.kh = d.u.conv.kw = d.u.conv.sh = d.u.conv.sw = 1;
  d.u.conv.bias = 1;
  x = add_node(b, d, &x, 1, p, 2);
  const int64_t size = cfg->mod[m0].size;
  int64_t h = 0, w = 0;
  if (b->st == MSC_OK) hw_of(b, x, &h, &w);
  if (b->st == MSC_OK && (h != size || w != size)) x = upsample(b, x, size, size);
  return x;
}

/* A 1×1 convolution with bias: a Linear layer applied to every token of a map. */
static int32_t pointwise(builder *b, int32_t x, const char *prefix, const char *name,
                         int64_t out_c) {
  int64_t in_c = channels(b, x), dims[4] = {out_c, in_c, 1, 1};
  char pname[MSCI_PARAM_NAME_LEN];
  int32_t p[2];
  snprintf(pname, sizeof pname, "%s.weight", name);
  p[0] = add_param(b, prefix, pname, MSCI_PARAM_WEIGHT, 4, dims, in_c, out_c);
  snprintf(pname, sizeof pname, "%s.bias", name);
  p[1] = add_param(b, prefix, pname, MSCI_PARAM_BIAS, 1, &out_c, in_c, out_c);
  mbk_op_desc d = {.type = MBK_OP_CONV2D};
  d.u.conv.out_c = out_c;
  d.u.conv.kh = d.u.conv.kw = d.u.conv.sh = d.u.conv.sw = 1;
  d.u.conv.bias = 1;
  return add_node(b, d, &x, 1, p, 2);
}

/* LayerNorm over the channels of every token (ConvNeXt's channels_first LayerNorm),
 * scale 1 and shift 0 at start, not decayed (the BatchNorm kinds say both). */
static int32_t layernorm(builder *b, int32_t x, const char *prefix, const char *name) {
  int64_t c = channels(b, x);
  char pname[MSCI_PARAM_NAME_LEN];
  int32_t p[2];
  snprintf(pname, sizeof pname, "%s.weight", name);
  p[0] = add_param(b, prefix, pname, MSCI_PARAM_BN_SCALE, 1, &c, c, c);
  snprintf(pname, sizeof pname, "%s.bias", name);
  p[1] = add_param(b, prefix, pname, MSCI_PARAM_BN_SHIFT, 1, &c, c, c);
  mbk_op_desc d = {.type = MBK_OP_LAYERNORM};
  d.u.ln.eps = 1e-6f;
  return add_node(b, d, &x, 1, p, 2);
}

/* The token map an encoder pools into its feature h_m: the input of the global average
 * pooling its feature node comes from. */
static int32_t token_map(const builder *b, int32_t feat) {
  int32_t v = feat;
  while (v >= 0 && b->g->nodes[v].desc.type != MBK_OP_GAVGPOOL) v = b->g->nodes[v].in[0];
  return v >= 0 ? b->g->nodes[v].in[0] : v;
}

/* Cross-attention fusion (option fusion = xattn; docs/model.md, "Fusion"). Every
 * modality's token map T_m (its encoder's last stage, before pooling) is projected to d
 * channels, X_m = proj(T_m), and layer-normalised, N_m = LN(X_m). Modality m's tokens
 * then attend to the tokens of every other modality k taken together (to its own when it
 * is the only one): queries q(N_m), keys k_k(N_k) and values v_k(N_k) with projections of
 * m's own per source, multi-head attention, an output projection and the residual
 * Y_m = X_m + out(attn); the pooled f_m = mean over the tokens of Y_m. Returns the
 * concatenation of every f_m (d per modality), which is h_f. */
static int32_t xattn_fusion(builder *b, const int32_t *feats, int64_t *part_dim) {
  const msci_model_cfg *cfg = b->cfg;
  const int32_t nm = cfg->n_mod;
  const int64_t dim = cfg->fusion_dim;
  int32_t x[MSCI_MAX_MODALITIES], nx[MSCI_MAX_MODALITIES], pooled[MBK_MAX_CONCAT];
  for (int32_t m = 0; m < nm && b->st == MSC_OK; ++m) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "fusion.%s", cfg->mod[m].name);
    x[m] = pointwise(b, token_map(b, feats[m]), prefix, "proj", dim);
    nx[m] = layernorm(b, x[m], prefix, "norm");
  }
  for (int32_t m = 0; m < nm && b->st == MSC_OK; ++m) {
    char prefix[64], name[64];
    snprintf(prefix, sizeof prefix, "fusion.%s", cfg->mod[m].name);
    int32_t in[MBK_MAX_CONCAT];
    int32_t n_in = 0;
    in[n_in++] = pointwise(b, nx[m], prefix, "q", dim);
    mbk_op_desc d = {.type = MBK_OP_ATTN};
    d.u.attn.heads = cfg->fusion_heads;
    for (int32_t k = 0; k < nm && b->st == MSC_OK; ++k) {
      if (k == m && nm > 1) continue;
      snprintf(name, sizeof name, "k.%s", cfg->mod[k].name);
      in[n_in++] = pointwise(b, nx[k], prefix, name, dim);
      snprintf(name, sizeof name, "v.%s", cfg->mod[k].name);
      in[n_in++] = pointwise(b, nx[k], prefix, name, dim);
      if (b->st == MSC_OK) {
        int64_t h, w;
        hw_of(b, nx[k], &h, &w);
        d.u.attn.src_h[d.u.attn.sources] = h, d.u.attn.src_w[d.u.attn.sources] = w;
        d.u.attn.sources++;
      }
    }
    int32_t a = add_node(b, d, in, n_in, NULL, 0);
    int32_t y = simple(b, MBK_OP_ADD, x[m], pointwise(b, a, prefix, "out", dim));
    pooled[m] = simple(b, MBK_OP_GAVGPOOL, y, INT32_MIN);
    part_dim[m] = dim;
  }
  return b->st == MSC_OK ? concat(b, pooled, nm) : -1;
}

msc_status msci_graph_build(const msci_model_cfg *cfg, msci_graph *g) {
  memset(g, 0, sizeof *g);
  builder b = {g, cfg, MSC_OK};
  int32_t feats[MBK_MAX_CONCAT];
  mbk_op_desc cat = {.type = MBK_OP_CONCAT};
  skips sk[MSCI_MAX_MODALITIES];
  for (int32_t m = 0; m < cfg->n_mod; ++m) {
    g->feat[m] = feats[m] = encoder(&b, m, &sk[m]);
    g->feat_dim[m] = b.st == MSC_OK ? channels(&b, feats[m]) : 0;
    cat.u.concat.c[m] = g->feat_dim[m];
    cat.c += g->feat_dim[m];
  }
  g->last_encoder_node = g->n_nodes - 1;
  for (int32_t m = 0; m < cfg->n_mod; ++m) {
    char prefix[64];
    snprintf(prefix, sizeof prefix, "proj.%s", cfg->mod[m].name);
    g->proj[m] = head(&b, feats[m], prefix, cfg->proj_hidden, cfg->proj_dim, cfg->proj_bn);
  }
  cat.u.concat.count = cfg->n_mod;
  if (cfg->fusion_xattn) {
    g->fused = xattn_fusion(&b, feats, g->fused_part_dim);
    cat.c = b.st == MSC_OK ? channels(&b, g->fused) : 0;
  } else {
    g->fused = add_node(&b, cat, feats, cfg->n_mod, NULL, 0);
    for (int32_t m = 0; m < cfg->n_mod; ++m) g->fused_part_dim[m] = g->feat_dim[m];
  }
  g->fused_proj = head(&b, g->fused, "proj_fused", cfg->fused_hidden, cfg->proj_dim, 0);
  g->logits = linear(&b, g->fused, "classifier", "fc", cfg->classes);
  /* The decoder comes after the heads: nodes 0..last_encoder_node stay the encoders'. */
  g->seg_logits = cfg->segmentation ? decoder(&b, sk) : -1;
  g->fused_dim = cat.c;
  g->proj_dim = cfg->proj_dim;
  g->classes = cfg->classes;
  if (b.st != MSC_OK) msci_graph_clear(g);
  return b.st;
}

void msci_graph_clear(msci_graph *g) {
  free(g->nodes);
  free(g->params);
  memset(g, 0, sizeof *g);
}

void msci_graph_mark(const msci_graph *g, int32_t target, uint8_t *need, uint8_t *need_input) {
  msci_graph_mark_present(g, target, NULL, need, need_input);
}

void msci_graph_mark_present(const msci_graph *g, int32_t target, const uint8_t *absent,
                             uint8_t *need, uint8_t *need_input) {
  memset(need, 0, (size_t)g->n_nodes);
  memset(need_input, 0, MSCI_MAX_MODALITIES);
  need[target] = 1;
  /* Nodes only read earlier nodes, so one backward sweep finds every dependency. */
  for (int32_t i = target; i >= 0; --i) {
    if (!need[i]) continue;
    for (int32_t k = 0; k < g->nodes[i].n_in; ++k) {
      int32_t v = g->nodes[i].in[k];
      /* h_f's input k is modality k's features: an absent one is read as zeros. */
      if (absent && i == g->fused && absent[k]) continue;
      if (v >= 0)
        need[v] = 1;
      else
        need_input[-1 - v] = 1;
    }
  }
}
