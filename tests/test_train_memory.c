/*
 * test_train_memory.c — the training step's memory plan (docs/memory.md):
 *  - the CPU backend's shared conversion buffers (cpu_view_shared, cpu_buf_shared): a
 *    plain tensor converted to a blocked layout holds, at each blocked offset computed
 *    here by hand, the value of its plain element; two tensors converted in turn through
 *    one buffer each come back right (no stale copy), and so does a tensor rewritten
 *    with new values (its version changes);
 *  - the training executor's slots (assign_train_slots), checked against the graph
 *    itself after a step of the tiny model: no two outputs a backward reads share a
 *    tensor, a tensor is reused only after every forward reader of its previous value
 *    ran (or, in place, by a ReLU or a residual sum that reads it last), and fewer
 *    tensors are used than there are nodes (what the plan is for).
 *  - the narrow layouts of convolutions (backends/cpu/cpu_conv.c, act_md): a float32
 *    conv2d from 24 to 8 channels gives its output and its input gradient in the
 *    8-channel blocked layout, with no padding (their sizes are exactly N·C·H·W floats,
 *    where the 16-channel layout would pad 24 and 8 channels to 32 and 16); their
 *    values are checked against plain references in test_cpu_ops (8- and 24-channel
 *    cases).
 *  - the project's own 3x3 8-channel kernels (backends/cpu/cpu_conv_k8.c): a float32
 *    conv2d of their shape takes them exactly where the CPU has AVX2 or AVX-512 as
 *    oneDNN reports it (the 16-channel ones of the second stage, cpu_conv_c16.c: AVX-512
 *    only) (so not under ONEDNN_MAX_CPU_ISA=SSE41: test_train_memory_sse41,
 *    which runs this case only: oneDNN has no narrow layouts there either)
 *    and not with MSC_CPU_OWN_KERNELS=0, and agrees with the oneDNN op of that switch
 *    on every output, training and fused inference, at the tiny encoder's widths (their
 *    values against plain references: test_cpu_ops).
 *  - large scratchpads (Winograd's) in the shared input buffer (cpu_backend.c): the
 *    conversion held there is forgotten and made again by the op that needs it next.
 * That the values survive where they must is also what test_train's finite-difference
 * and resume tests check end to end.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mosaic/mosaic.h"
#include "backend/registry.h"
#include "common/internal.h"
#include "model/model.h"
#include "train/train.h"
#include "cpu/cpu_internal.h"
#include "cpu/cpu_weighted.h"

/* ---- the backend's shared conversion buffers ----------------------------------------- */

enum { N = 2, C = 16, H = 3, W = 5, COUNT = N * C * H * W };

static void fill(float *x, float base) {
  for (int i = 0; i < COUNT; ++i) x[i] = base + (float)i;
}

/* Checks that mem holds plain (nchw) x in layout nChw16c: element (n,c,h,w) at
 * ((n·(C/16) + c/16)·H + h)·W·16 + w·16 + c%16. */
static void expect_blocked(dnnl_memory_t mem, const float *x) {
  void *h = NULL;
  ck_assert_int_eq(dnnl_memory_get_data_handle(mem, &h), dnnl_success);
  const float *b = h;
  for (int n = 0; n < N; ++n)
    for (int c = 0; c < C; ++c)
      for (int y = 0; y < H; ++y)
        for (int w = 0; w < W; ++w) {
          size_t at = (((size_t)n * (C / 16) + (size_t)c / 16) * H + (size_t)y) * W * 16 +
                      (size_t)w * 16 + (size_t)c % 16;
          float want = x[((n * C + c) * H + y) * W + w];
          ck_assert_msg(b[at] == want, "(%d,%d,%d,%d): %g, want %g", n, c, y, w, b[at], want);
        }
}

/* The CPU backend and a float32 context of it with the given thread count. */
static mbk_ctx *cpu_ctx(const mbk_iface **be, int32_t threads) {
  ck_assert_int_eq(mbk_cpu_init(msci_host(), be), MSC_OK);
  mbk_ctx_params p = {sizeof p, threads, 0, MBK_PRECISION_F32, MBK_CONV_ALGO_AUTO};
  mbk_ctx *ctx = NULL;
  ck_assert_int_eq((*be)->ctx_create(&p, &ctx), MSC_OK);
  return ctx;
}

START_TEST(test_shared_conversions) {
  const mbk_iface *be = NULL;
  mbk_ctx *ctx = cpu_ctx(&be, 1);
  mbk_tensor *a = NULL, *b = NULL;
  ck_assert_int_eq(be->tensor_create(ctx, &a), MSC_OK);
  ck_assert_int_eq(be->tensor_create(ctx, &b), MSC_OK);
  const int64_t dims[4] = {N, C, H, W};
  float xa[COUNT], xb[COUNT];
  fill(xa, 0.f);
  fill(xb, 1000.f);
  ck_assert_int_eq(be->tensor_upload(a, 4, dims, xa), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(b, 4, dims, xb), MSC_OK);
  dnnl_memory_desc_t blocked;
  dnnl_dims_t d = {N, C, H, W};
  ck_assert_int_eq(dnnl_memory_desc_init_by_tag(&blocked, 4, d, dnnl_f32, dnnl_aBcd16b),
                   dnnl_success);
  cpu_reorder ra, rb;
  memset(&ra, 0, sizeof ra);
  memset(&rb, 0, sizeof rb);
  dnnl_memory_t m = NULL;
  /* a, then b through the same buffer, then a again: each time its own values. */
  ck_assert_int_eq(cpu_view_shared(ctx, a, &blocked, CPU_SHARED_X, &ra, &m), MSC_OK);
  expect_blocked(m, xa);
  ck_assert_int_eq(cpu_view_shared(ctx, b, &blocked, CPU_SHARED_X, &rb, &m), MSC_OK);
  expect_blocked(m, xb);
  ck_assert_int_eq(cpu_view_shared(ctx, a, &blocked, CPU_SHARED_X, &ra, &m), MSC_OK);
  expect_blocked(m, xa);
  /* The same conversion twice in a row (another op's reorder): one buffer, a's values. */
  ck_assert_int_eq(cpu_view_shared(ctx, a, &blocked, CPU_SHARED_X, &rb, &m), MSC_OK);
  expect_blocked(m, xa);
  /* New values in a: the held conversion is stale and is redone. */
  fill(xa, -500.f);
  ck_assert_int_eq(be->tensor_upload(a, 4, dims, xa), MSC_OK);
  ck_assert_int_eq(cpu_view_shared(ctx, a, &blocked, CPU_SHARED_X, &ra, &m), MSC_OK);
  expect_blocked(m, xa);
  /* Another role is another buffer: b in DY leaves a's conversion in X valid. */
  dnnl_memory_t mb = NULL;
  ck_assert_int_eq(cpu_view_shared(ctx, b, &blocked, CPU_SHARED_DY, &rb, &mb), MSC_OK);
  ck_assert_int_eq(cpu_view_shared(ctx, a, &blocked, CPU_SHARED_X, &ra, &m), MSC_OK);
  expect_blocked(mb, xb);
  expect_blocked(m, xa);
  /* A buffer written through cpu_buf_shared forgets the conversion it held. */
  cpu_buf buf;
  memset(&buf, 0, sizeof buf);
  ck_assert_int_eq(cpu_buf_shared(ctx, &buf, &blocked, CPU_SHARED_X), MSC_OK);
  ck_assert_ptr_null(buf.data); /* not owned */
  void *h = NULL;
  ck_assert_int_eq(dnnl_memory_get_data_handle(buf.mem, &h), dnnl_success);
  memset(h, 0, (size_t)COUNT * sizeof(float));
  ck_assert_int_eq(cpu_view_shared(ctx, a, &blocked, CPU_SHARED_X, &ra, &m), MSC_OK);
  expect_blocked(m, xa);
  cpu_buf_destroy(&buf);
  cpu_reorder_destroy(&ra);
  cpu_reorder_destroy(&rb);
  be->tensor_free(a);
  be->tensor_free(b);
  be->ctx_free(ctx);
}
END_TEST

/* ---- the training executor's slots ----------------------------------------------------- */

static int reads(const msci_node *nd, int32_t v) {
  for (int32_t k = 0; k < nd->n_in; ++k)
    if (nd->in[k] == v) return 1;
  return 0;
}

/* Whether some backward reads v's output: the x of conv2d, deconv2d, linear and batch
 * norm, a ReLU's own output, the loss terms' inputs (written from the contract, not
 * from the executor's code). */
static int backward_reads(const msc_model *m, const uint8_t *need, int32_t v) {
  const msci_graph *g = &m->graph;
  if (g->nodes[v].desc.type == MBK_OP_RELU) return 1;
  if (v == g->fused_proj || v == g->logits || v == g->seg_logits) return 1;
  for (int32_t k = 0; k < m->cfg.n_mod; ++k)
    if (v == g->proj[k]) return 1;
  for (int32_t r = v + 1; r < g->n_nodes; ++r) {
    if (!need[r]) continue;
    int32_t t = g->nodes[r].desc.type;
    if ((t == MBK_OP_CONV2D || t == MBK_OP_DECONV2D || t == MBK_OP_LINEAR ||
         t == MBK_OP_BATCHNORM) &&
        g->nodes[r].in[0] == v)
      return 1;
  }
  return 0;
}

START_TEST(test_train_slots) {
  msc_options *o = NULL;
  ck_assert_int_eq(msc_options_create(&o), MSC_OK);
  const char *json = "{\"modality.0.encoder\":\"tiny\",\"modality.1.encoder\":\"tiny\","
                     "\"modality.0.size\":16,\"modality.1.size\":16,\"modality.1.bands\":4,"
                     "\"classes\":4,\"class_names\":\"a;b;c;d\",\"proj.dim\":16,\"seed\":7,"
                     "\"train.preset\":\"mosaic2\",\"lambda.intra\":0.5}";
  ck_assert_int_eq(msc_options_from_json(o, json), MSC_OK);
  msc_model *m = NULL;
  ck_assert_int_eq(msc_model_create(o, &m), MSC_OK);
  const int64_t n = 4, bands[2] = {2, 4};
  const char *names[2] = {"s1", "s2"};
  msc_batch *b = NULL;
  ck_assert_int_eq(msc_batch_create(&b), MSC_OK);
  for (int k = 0; k < 2; ++k) {
    int64_t count = n * bands[k] * 16 * 16;
    float *x = malloc((size_t)count * sizeof(float));
    for (int64_t i = 0; i < count; ++i) x[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    ck_assert_int_eq(msc_batch_set_modality(b, names[k], x, n, bands[k], 16, 16), MSC_OK);
    free(x);
  }
  uint8_t y[4 * 4] = {1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0};
  ck_assert_int_eq(msc_batch_set_labels(b, y, n, 4), MSC_OK);
  msc_step_result r;
  memset(&r, 0, sizeof r);
  r.struct_size = sizeof r;
  ck_assert_int_eq(msc_train_step(m, b, &r), MSC_OK);
  const msci_exec *e = m->train->exec;
  const msci_graph *g = &m->graph;
  const uint8_t *need = e->need;
  int32_t n_need = 0, in_place = 0;
  for (int32_t v = 0; v < g->n_nodes; ++v) {
    if (!need[v]) continue;
    n_need++;
    ck_assert_ptr_eq(e->act[v], e->slot[e->owner[v]]);
    for (int32_t k = v + 1; k < g->n_nodes; ++k) {
      if (!need[k] || e->owner[k] != e->owner[v]) continue;
      /* k took v's tensor: v must be dead by then, every reader of v before k. */
      ck_assert_msg(!backward_reads(m, need, v),
                    "node %d (read by a backward) shares its "
                    "tensor with node %d",
                    (int)v, (int)k);
      /* In place (API 14): a ReLU's or an ADD's output over its first input, which
       * that node reads last. */
      const msci_node *nk = &g->nodes[k];
      int inplace = (nk->desc.type == MBK_OP_RELU || nk->desc.type == MBK_OP_ADD) &&
                    nk->in[0] == v && !(nk->n_in > 1 && nk->in[1] == v);
      in_place += inplace;
      for (int32_t q = inplace ? k + 1 : k; q < g->n_nodes; ++q)
        ck_assert_msg(!(need[q] && reads(&g->nodes[q], v)),
                      "node %d reads node %d after node %d took its tensor", (int)q, (int)v,
                      (int)k);
    }
  }
  /* The tiny encoders' residual sums and ReLUs run in place. */
  ck_assert_int_gt(in_place, 0);
  ck_assert_msg(e->n_slots < n_need, "%d tensors for %d outputs", (int)e->n_slots, (int)n_need);
  /* A second step reuses the same assignment (the tensors keep their storage). */
  int32_t slots = e->n_slots;
  ck_assert_int_eq(msc_train_step(m, b, &r), MSC_OK);
  ck_assert_int_eq(m->train->exec->n_slots, slots);
  msc_batch_free(b);
  msc_model_free(m);
  msc_options_free(o);
}
END_TEST

/* ---- narrow layouts: 8-channel activations unpadded ------------------------------------ */

/* t is in the 8-channel blocked layout (aBcd8b) and holds no padding. */
static void expect_narrow(const mbk_tensor *t, const int64_t *dims, const char *what) {
  const dnnl_memory_desc_t *md = &t->md;
  ck_assert_msg(md->format_kind == dnnl_blocked, "%s: not blocked", what);
  ck_assert_msg(md->format_desc.blocking.inner_nblks == 1 &&
                    md->format_desc.blocking.inner_blks[0] == 8 &&
                    md->format_desc.blocking.inner_idxs[0] == 1,
                "%s: not blocked by 8 channels", what);
  size_t want = (size_t)(dims[0] * dims[1] * dims[2] * dims[3]) * sizeof(float);
  ck_assert_msg(dnnl_memory_desc_get_size(md) == want, "%s: %zu bytes, want %zu", what,
                (size_t)dnnl_memory_desc_get_size(md), want);
}

START_TEST(test_narrow_layouts) {
  const mbk_iface *be = NULL;
  mbk_ctx *ctx = cpu_ctx(&be, 1);
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OP_CONV2D;
  d.ndim = 4;
  d.n = 2, d.c = 24, d.h = 6, d.w = 5;
  d.u.conv.out_c = 8, d.u.conv.kh = d.u.conv.kw = 3, d.u.conv.sh = d.u.conv.sw = 1;
  d.u.conv.ph = d.u.conv.pw = 1;
  mbk_op *op = NULL;
  ck_assert_int_eq(be->op_create(ctx, &d, &op), MSC_OK);
  const int64_t xd[4] = {2, 24, 6, 5}, wd[4] = {8, 24, 3, 3}, yd[4] = {2, 8, 6, 5};
  float x[2 * 24 * 6 * 5], w[8 * 24 * 3 * 3], dy[2 * 8 * 6 * 5];
  for (size_t i = 0; i < sizeof x / sizeof x[0]; ++i) x[i] = (float)(i % 7) - 3.f;
  for (size_t i = 0; i < sizeof w / sizeof w[0]; ++i) w[i] = (float)(i % 5) - 2.f;
  for (size_t i = 0; i < sizeof dy / sizeof dy[0]; ++i) dy[i] = (float)(i % 3) - 1.f;
  mbk_tensor *tx = NULL, *tw = NULL, *ty = NULL, *tdy = NULL, *tdx = NULL, *tdw = NULL;
  mbk_tensor **ts[] = {&tx, &tw, &ty, &tdy, &tdx, &tdw};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; ++i)
    ck_assert_int_eq(be->tensor_create(ctx, ts[i]), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(tx, 4, xd, x), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(tw, 4, wd, w), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(tdy, 4, yd, dy), MSC_OK);
  mbk_tensor *in[3] = {tx, tw, NULL}, *out[1] = {ty};
  ck_assert_int_eq(be->op_forward(op, 1, in, 3, out, 1), MSC_OK);
  expect_narrow(ty, yd, "y");
  mbk_tensor *bin[3] = {tx, tw, tdy}, *bout[3] = {tdx, tdw, NULL};
  ck_assert_int_eq(be->op_backward(op, bin, 3, bout, 3), MSC_OK);
  expect_narrow(tdx, xd, "dx");
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; ++i) be->tensor_free(*ts[i]);
  be->op_free(op);
  be->ctx_free(ctx);
}
END_TEST

/* ---- the project's own 8-channel kernels against oneDNN ------------------------------ */

/* Whether the own kernels should run here: oneDNN's ISA (which ONEDNN_MAX_CPU_ISA
 * limits) and the CPU's both from AVX2 with FMA (the 8-channel ones), or from AVX-512
 * (avx512: the 16-channel ones). */
static int own_kernels_expected(int avx512) {
  const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  __builtin_cpu_init();
  if (avx512)
    return (isa & (unsigned)dnnl_cpu_isa_avx512_core) == (unsigned)dnnl_cpu_isa_avx512_core &&
           __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("fma");
  return (isa & (unsigned)dnnl_cpu_isa_avx2) == (unsigned)dnnl_cpu_isa_avx2 &&
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static void expect_agree(const float *a, const float *b, size_t n, const char *what) {
  float scale = 1.0f, worst = 0.0f;
  for (size_t i = 0; i < n; ++i) scale = fmaxf(scale, fabsf(b[i]));
  for (size_t i = 0; i < n; ++i) worst = fmaxf(worst, fabsf(a[i] - b[i]));
  ck_assert_msg(worst <= 1e-5f * scale, "%s: own kernels and oneDNN differ by %g (scale %g)",
                what, (double)worst, (double)scale);
}

/* Runs the same op description (c -> oc channels, k×k kernel, stride st, padding k/2)
 * with and without the own kernels and compares. */
static void own_vs_onednn(const mbk_iface *be, mbk_ctx *ctx, int64_t c, int64_t oc, int k,
                          int st, int64_t h, int64_t w, int fused) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OP_CONV2D;
  d.ndim = 4;
  d.n = 3, d.c = c, d.h = h, d.w = w;
  d.u.conv.out_c = oc, d.u.conv.kh = d.u.conv.kw = k, d.u.conv.sh = d.u.conv.sw = st;
  d.u.conv.ph = d.u.conv.pw = k / 2;
  if (fused) d.u.conv.fold_bn = 1, d.u.conv.bn_eps = 1e-5f, d.u.conv.residual = 1;
  if (fused) d.u.conv.relu = 1;
  mbk_op *own = NULL, *dnn = NULL;
  ck_assert_int_eq(be->op_create(ctx, &d, &own), MSC_OK);
  ck_assert_int_eq(setenv("MSC_CPU_OWN_KERNELS", "0", 1), 0);
  ck_assert_int_eq(be->op_create(ctx, &d, &dnn), MSC_OK);
  ck_assert_int_eq(unsetenv("MSC_CPU_OWN_KERNELS"), 0);
  /* 8 outputs: cpu_conv_k8.c; 16: cpu_conv_c16.c (AVX-512 only) */
  const cpu_weighted *ow = (const cpu_weighted *)own, *dw = (const cpu_weighted *)dnn;
  const int ran = oc == 8 ? ow->k8 != NULL : ow->c16 != NULL,
            want = own_kernels_expected(oc == 16);
  ck_assert_msg(ran == want, "own kernels %s where they should%s run (%lld -> %lld, k%d s%d)",
                ran ? "ran" : "did not", want ? "" : " not", (long long)c, (long long)oc, k,
                st);
  ck_assert(ow->k8 == NULL || ow->c16 == NULL);
  ck_assert_ptr_null(dw->k8);
  ck_assert_ptr_null(dw->c16);

  const int64_t oh = (h + 2 * (k / 2) - k) / st + 1, owd = (w + 2 * (k / 2) - k) / st + 1;
  const int64_t xd[4] = {3, c, h, w}, wd[4] = {oc, c, k, k}, yd[4] = {3, oc, oh, owd},
                vd[1] = {oc};
  const size_t nx = (size_t)(3 * c * h * w), nw = (size_t)(oc * c * k * k),
               ny = (size_t)(3 * oc * oh * owd);
  float *buf = malloc((3 * nx + 3 * nw + 5 * ny + 80) * sizeof *buf);
  ck_assert_ptr_nonnull(buf);
  float *x = buf, *wt = x + nx, *dy = wt + nw, *r = dy + ny, *bn = r + ny;
  float *ya = bn + 80, *yb = ya + ny, *dxa = yb + ny, *dxb = dxa + nx, *dwa = dxb + nx;
  float *dwb = dwa + nw;
  uint32_t s = 12345;
  for (size_t i = 0; i < nx + nw + 2 * ny + 80; ++i) {
    s = s * 1664525u + 1013904223u;
    x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
  }
  for (int64_t i = 0; i < oc; ++i) bn[3 * oc + i] += 1.0f; /* running variance > 0 */
  mbk_tensor *t[12];
  for (int i = 0; i < 12; ++i) ck_assert_int_eq(be->tensor_create(ctx, &t[i]), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(t[0], 4, xd, x), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(t[1], 4, wd, wt), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(t[2], 4, yd, dy), MSC_OK);
  for (int i = 0; i < 4; ++i)
    ck_assert_int_eq(be->tensor_upload(t[3 + i], 1, vd, bn + oc * i), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(t[7], 4, yd, r), MSC_OK);
  mbk_tensor *ta = t[8], *tb = t[9], *tdxa = t[10], *tdxb = t[11];
  if (fused) {
    mbk_tensor *in[8] = {t[0], t[1], NULL, t[3], t[4], t[5], t[6], t[7]};
    ck_assert_int_eq(be->op_forward(own, 0, in, 8, &ta, 1), MSC_OK);
    ck_assert_int_eq(be->op_forward(dnn, 0, in, 8, &tb, 1), MSC_OK);
  } else {
    mbk_tensor *in[3] = {t[0], t[1], NULL};
    ck_assert_int_eq(be->op_forward(own, 1, in, 3, &ta, 1), MSC_OK);
    ck_assert_int_eq(be->op_forward(dnn, 1, in, 3, &tb, 1), MSC_OK);
  }
  ck_assert_int_eq(be->tensor_download(ta, ya, ny), MSC_OK);
  ck_assert_int_eq(be->tensor_download(tb, yb, ny), MSC_OK);
  expect_agree(ya, yb, ny, fused ? "fused forward" : "forward");
  if (!fused) {
    mbk_tensor *dwt_a = NULL, *dwt_b = NULL;
    ck_assert_int_eq(be->tensor_create(ctx, &dwt_a), MSC_OK);
    ck_assert_int_eq(be->tensor_create(ctx, &dwt_b), MSC_OK);
    mbk_tensor *bin[3] = {t[0], t[1], t[2]};
    mbk_tensor *oa[3] = {tdxa, dwt_a, NULL}, *ob[3] = {tdxb, dwt_b, NULL};
    ck_assert_int_eq(be->op_backward(own, bin, 3, oa, 3), MSC_OK);
    ck_assert_int_eq(be->op_backward(dnn, bin, 3, ob, 3), MSC_OK);
    ck_assert_int_eq(be->tensor_download(tdxa, dxa, nx), MSC_OK);
    ck_assert_int_eq(be->tensor_download(tdxb, dxb, nx), MSC_OK);
    ck_assert_int_eq(be->tensor_download(dwt_a, dwa, nw), MSC_OK);
    ck_assert_int_eq(be->tensor_download(dwt_b, dwb, nw), MSC_OK);
    expect_agree(dxa, dxb, nx, "backward-data");
    expect_agree(dwa, dwb, nw, "backward-weights");
    be->tensor_free(dwt_a);
    be->tensor_free(dwt_b);
  }
  for (int i = 0; i < 12; ++i) be->tensor_free(t[i]);
  be->op_free(own);
  be->op_free(dnn);
  free(buf);
}

/* BATCHNORM of c channels over [3, c, h, w] in the channel-blocked layout (as the tiny
 * encoder's convolutions write it): the project's own kernels (cpu_bnorm_c16.c, taken
 * where the CPU has AVX-512) against oneDNN's (MSC_CPU_OWN_KERNELS=0) on the output, the
 * running statistics, dx (in place over dy's tensor when inplace), dgamma and dbeta. */
static void bn_own_vs_onednn(const mbk_iface *be, mbk_ctx *ctx, int64_t c, int64_t h, int64_t w,
                             int relu, int inplace) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OP_BATCHNORM;
  d.ndim = 4;
  d.n = 3, d.c = c, d.h = h, d.w = w;
  d.u.bn.eps = 1e-5f, d.u.bn.momentum = 0.1f, d.u.bn.relu = relu;
  const int64_t dims[4] = {3, c, h, w}, cd[1] = {c};
  const size_t n = (size_t)(3 * c * h * w);
  dnnl_memory_desc_t md;
  dnnl_dims_t dd = {3, c, h, w};
  ck_assert_int_eq(
      dnnl_memory_desc_init_by_tag(&md, 4, dd, dnnl_f32, c == 8 ? dnnl_aBcd8b : dnnl_aBcd16b),
      dnnl_success);
  float *buf = malloc((7 * n + 8 * 16) * sizeof *buf);
  ck_assert_ptr_nonnull(buf);
  float *x = buf, *dy = x + n, *ya = dy + n, *yb = ya + n, *dxa = yb + n, *dxb = dxa + n;
  float *par = dxb + n; /* gamma, beta, running mean, running var; then 4 × 16 results */
  uint32_t s = 777u + (uint32_t)c;
  for (size_t i = 0; i < 2 * n + 64; ++i) {
    s = s * 1664525u + 1013904223u;
    const float u = (float)(s >> 8) / 16777216.0f - 0.5f;
    if (i < n)
      x[i] = 0.7f + 2.0f * u; /* a mean away from 0 */
    else if (i < 2 * n)
      dy[i - n] = u;
    else
      par[i - 2 * n] = u;
  }
  for (int64_t i = 0; i < c; ++i)
    par[i] += 1.0f, par[3 * 16 + i] = 1.0f + 0.5f * par[3 * 16 + i];
  mbk_op *op[2] = {NULL, NULL};
  float *out[2][4] = {{ya, dxa, par + 4 * 16, par + 5 * 16},
                      {yb, dxb, par + 6 * 16, par + 7 * 16}};
  float rs[2][2][16];
  for (int k = 0; k < 2; ++k) {
    if (k == 1) ck_assert_int_eq(setenv("MSC_CPU_OWN_KERNELS", "0", 1), 0);
    ck_assert_int_eq(be->op_create(ctx, &d, &op[k]), MSC_OK);
    mbk_tensor *t[9];
    for (int i = 0; i < 9; ++i) ck_assert_int_eq(be->tensor_create(ctx, &t[i]), MSC_OK);
    ck_assert_int_eq(cpu_tensor_set(t[0], 4, dims, &md), MSC_OK); /* x, blocked: [n][h][w][c] */
    memcpy(t[0]->data, x, n * sizeof *x);
    for (int i = 0; i < 4; ++i)
      ck_assert_int_eq(be->tensor_upload(t[1 + i], 1, cd, par + 16 * i), MSC_OK);
    mbk_tensor *in[5] = {t[0], t[1], t[2], t[3], t[4]}, *y = t[5];
    ck_assert_int_eq(be->op_forward(op[k], 1, in, 5, &y, 1), MSC_OK);
    ck_assert_int_eq(cpu_bnorm_own(op[k]), k == 0 && own_kernels_expected(1));
    ck_assert_int_eq(cpu_tensor_set(t[6], 4, dims, &md), MSC_OK); /* dy, blocked */
    memcpy(t[6]->data, dy, n * sizeof *dy);
    mbk_tensor *bin[3] = {t[0], t[1], t[6]}, *bout[3] = {inplace ? t[6] : t[7], t[8], NULL};
    mbk_tensor *db = NULL;
    ck_assert_int_eq(be->tensor_create(ctx, &db), MSC_OK);
    bout[2] = db;
    ck_assert_int_eq(be->op_backward(op[k], bin, 3, bout, 3), MSC_OK);
    if (k == 1) ck_assert_int_eq(unsetenv("MSC_CPU_OWN_KERNELS"), 0);
    ck_assert_int_eq(be->tensor_download(y, out[k][0], n), MSC_OK);
    ck_assert_int_eq(be->tensor_download(bout[0], out[k][1], n), MSC_OK);
    ck_assert_int_eq(be->tensor_download(t[8], out[k][2], (size_t)c), MSC_OK);
    ck_assert_int_eq(be->tensor_download(db, out[k][3], (size_t)c), MSC_OK);
    ck_assert_int_eq(be->tensor_download(t[3], rs[k][0], (size_t)c), MSC_OK);
    ck_assert_int_eq(be->tensor_download(t[4], rs[k][1], (size_t)c), MSC_OK);
    for (int i = 0; i < 9; ++i) be->tensor_free(t[i]);
    be->tensor_free(db);
    be->op_free(op[k]);
  }
  expect_agree(ya, yb, n, "batchnorm forward");
  expect_agree(rs[0][0], rs[1][0], (size_t)c, "batchnorm running mean");
  expect_agree(rs[0][1], rs[1][1], (size_t)c, "batchnorm running variance");
  expect_agree(dxa, dxb, n, "batchnorm dx");
  expect_agree(out[0][2], out[1][2], (size_t)c, "batchnorm dgamma");
  expect_agree(out[0][3], out[1][3], (size_t)c, "batchnorm dbeta");
  free(buf);
}

START_TEST(test_own_batchnorm) {
  const mbk_iface *be = NULL;
  mbk_ctx *ctx = cpu_ctx(&be, 2);
  /* 8 channels over an odd pixel count (a last half vector), with and without the fused
   * ReLU, dx over dy's tensor; 16 channels with the ReLU */
  bn_own_vs_onednn(be, ctx, 8, 9, 7, 1, 0);
  bn_own_vs_onednn(be, ctx, 8, 9, 7, 0, 1);
  bn_own_vs_onednn(be, ctx, 8, 30, 61, 1, 1);
  bn_own_vs_onednn(be, ctx, 16, 6, 5, 1, 0);
  bn_own_vs_onednn(be, ctx, 16, 12, 11, 0, 1);
  be->ctx_free(ctx);
}
END_TEST

START_TEST(test_own_kernels) {
  const mbk_iface *be = NULL;
  mbk_ctx *ctx = cpu_ctx(&be, 2);
  /* the tiny encoder's 8 -> 8 layer and its S2 stem, 120 px rows cut to 41 (two blocks
   * of 16 and a tail) and 35; its second stage's 8 -> 16 3x3 and 1x1 stride 2 and
   * 16 -> 16 layers at 60 px (blocks of 24 and tails: 59 and 58 columns inside) */
  for (int fused = 0; fused < 2; ++fused) {
    own_vs_onednn(be, ctx, 8, 8, 3, 1, 13, 41, fused);
    own_vs_onednn(be, ctx, 12, 8, 3, 1, 9, 35, fused);
    own_vs_onednn(be, ctx, 8, 16, 3, 2, 9, 120, fused);
    own_vs_onednn(be, ctx, 8, 16, 1, 2, 7, 120, fused);
    own_vs_onednn(be, ctx, 16, 16, 3, 1, 6, 60, fused);
  }
  be->ctx_free(ctx);
}
END_TEST

/* ---- large scratchpads in the shared input buffer (cpu_backend.c, scratch_for) -------- */

static mbk_op *conv_op(const mbk_iface *be, mbk_ctx *ctx, int64_t n, int64_t c, int64_t hw,
                       int64_t oc, int64_t k, int64_t st) {
  mbk_op_desc d;
  memset(&d, 0, sizeof d);
  d.type = MBK_OP_CONV2D;
  d.ndim = 4;
  d.n = n, d.c = c, d.h = d.w = hw;
  d.u.conv.out_c = oc, d.u.conv.kh = d.u.conv.kw = k, d.u.conv.sh = d.u.conv.sw = st;
  d.u.conv.ph = d.u.conv.pw = k / 2;
  mbk_op *op = NULL;
  ck_assert_int_eq(be->op_create(ctx, &d, &op), MSC_OK);
  return op;
}

static mbk_tensor *tensor_of(const mbk_iface *be, mbk_ctx *ctx, const int64_t *dims,
                             float base) {
  size_t n = (size_t)(dims[0] * dims[1] * dims[2] * dims[3]);
  float *v = malloc(n * sizeof *v);
  for (size_t i = 0; i < n; ++i) v[i] = base + (float)((i * 2654435761u) % 1000) / 1000.f;
  mbk_tensor *t = NULL;
  ck_assert_int_eq(be->tensor_create(ctx, &t), MSC_OK);
  ck_assert_int_eq(be->tensor_upload(t, 4, dims, v), MSC_OK);
  free(v);
  return t;
}

/* The S2-like stem (12 -> 64, 7x7 stride 2) keeps its channels-last x in the shared
 * input buffer from its training forward to its backward-weights; a Winograd layer
 * between them puts its scratchpad (over a MiB) in that buffer, over that x. The stem's weight
 * gradient must come out as in a context where nothing ran between (bit for bit: same
 * kernels, same threads), so the conversion the scratchpad overwrote was made again;
 * and the scratchpad did take the shared buffer (not a private one). Needs Winograd
 * (AVX-512): elsewhere no scratchpad is that large and the case says so and returns. */
START_TEST(test_scratch_in_shared_buffer) {
  /* x's channels-last copy (3.7 MiB) covers the Winograd scratchpad's used part */
  const int64_t xd[4] = {2, 12, 200, 200}, yd[4] = {2, 64, 100, 100}, wd[4] = {64, 12, 7, 7};
  const int64_t zd[4] = {2, 64, 28, 28}, vd[4] = {64, 64, 3, 3};
  float *dw[2];
  for (int k = 0; k < 2; ++k) {
    const mbk_iface *be = NULL;
    mbk_ctx *ctx = cpu_ctx(&be, 1);
    mbk_op *stem = conv_op(be, ctx, 2, 12, 200, 64, 7, 2);
    mbk_op *wino = conv_op(be, ctx, 2, 64, 28, 64, 3, 1);
    mbk_tensor *x = tensor_of(be, ctx, xd, -0.5f), *w = tensor_of(be, ctx, wd, -0.5f);
    mbk_tensor *dy = tensor_of(be, ctx, yd, -0.5f), *z = NULL;
    /* z in the 16-channel blocked layout a previous layer leaves (no conversion of its own) */
    dnnl_memory_desc_t zmd;
    dnnl_dims_t zdd = {zd[0], zd[1], zd[2], zd[3]};
    ck_assert_int_eq(dnnl_memory_desc_init_by_tag(&zmd, 4, zdd, dnnl_f32, dnnl_aBcd16b),
                     dnnl_success);
    ck_assert_int_eq(be->tensor_create(ctx, &z), MSC_OK);
    ck_assert_int_eq(cpu_tensor_set(z, 4, zd, &zmd), MSC_OK);
    for (size_t i = 0; i < (size_t)(zd[0] * zd[1] * zd[2] * zd[3]); ++i)
      ((float *)z->data)[i] = (float)((i * 40503u) % 997) / 997.f - 0.5f;
    mbk_tensor *v = tensor_of(be, ctx, vd, -0.5f), *y = NULL, *u = NULL, *g = NULL;
    ck_assert_int_eq(be->tensor_create(ctx, &y), MSC_OK);
    ck_assert_int_eq(be->tensor_create(ctx, &u), MSC_OK);
    ck_assert_int_eq(be->tensor_create(ctx, &g), MSC_OK);
    mbk_tensor *in[3] = {x, w, NULL}, *win[3] = {z, v, NULL};
    /* Winograd first: the shared buffer grows to its scratchpad, so that the stem's
     * conversion lands in memory the next scratchpad overwrites without moving it. */
    if (k == 0) ck_assert_int_eq(be->op_forward(wino, 1, win, 3, &u, 1), MSC_OK);
    ck_assert_int_eq(be->op_forward(stem, 1, in, 3, &y, 1), MSC_OK);
    if (k == 0) {
      ck_assert_uint_ne(ctx->shared[CPU_SHARED_X].src_id, 0); /* the stem's x, held */
      ck_assert_int_eq(be->op_forward(wino, 1, win, 3, &u, 1), MSC_OK);
      const size_t scratch = ((cpu_weighted *)wino)->fwd.scratch_size;
      if (scratch < ((size_t)1 << 20)) {
        fprintf(stderr, "SKIPPED %s: no scratchpad of a MiB here (%zu bytes: no Winograd)\n",
                __func__, scratch);
        be->ctx_free(ctx); /* (the rest is freed with the process) */
        return;
      }
      ck_assert_uint_eq(ctx->shared[CPU_SHARED_X].src_id, 0);    /* forgotten */
      ck_assert_uint_ge(ctx->shared[CPU_SHARED_X].cap, scratch); /* taken there */
      ck_assert_uint_lt(ctx->scratch_cap, scratch);              /* not privately */
    }
    mbk_tensor *bin[3] = {x, w, dy}, *bout[3] = {NULL, g, NULL};
    ck_assert_int_eq(be->op_backward(stem, bin, 3, bout, 3), MSC_OK);
    dw[k] = malloc(64 * 12 * 49 * sizeof(float));
    ck_assert_int_eq(be->tensor_download(g, dw[k], 64 * 12 * 49), MSC_OK);
    mbk_tensor *all[8] = {x, w, dy, z, v, y, u, g};
    for (int i = 0; i < 8; ++i) be->tensor_free(all[i]);
    be->op_free(stem);
    be->op_free(wino);
    be->ctx_free(ctx);
  }
  ck_assert(memcmp(dw[0], dw[1], 64 * 12 * 49 * sizeof(float)) == 0);
  free(dw[0]);
  free(dw[1]);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train_memory");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_shared_conversions);
  tcase_add_test(tc, test_train_slots);
  tcase_add_test(tc, test_narrow_layouts);
  tcase_add_test(tc, test_scratch_in_shared_buffer);
  suite_add_tcase(s, tc);
  TCase *own = tcase_create("own_kernels");
  tcase_set_timeout(own, 120);
  tcase_add_test(own, test_own_kernels);
  tcase_add_test(own, test_own_batchnorm);
  suite_add_tcase(s, own);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
