/*
 * backend.h — the contract between the core and a backend (layer: backend contract).
 *
 * The core owns the model graph; a backend owns memory and arithmetic. The built-in
 * CPU backend (backends/cpu) and every loadable module (backends/cuda) implement the
 * same table, mbk_iface. A module exports one symbol, MBK_MODULE_INIT_SYMBOL, of type
 * mbk_module_init_fn; the core passes it an mbk_host (services the module may call)
 * and gets back the table. Both sides check MBK_API_VERSION: any change to the layout
 * or meaning of anything in this file bumps it (2: optim_update; 3: grad_stats, and the
 * core trains only through optim_update and grad_stats; 4: softmax CE; 5: UPSAMPLE and
 * DECONV2D; 6: UPSAMPLE to an output size instead of by integer factors; 7:
 * mbk_ctx_params.precision; 8: CONV2D's inference fusions fold_bn, residual and relu,
 * and mbk_iface.caps to announce them; 9: MBK_PRECISION_INT8 and the calibrated input
 * range q_max / q_signed of CONV2D and LINEAR; 10: CONV2D's groups, LAYERNORM, GELU and
 * GRN, the building blocks of ConvNeXt-V2; 11: ATTN, multi-head attention for the
 * cross-attention fusion; 12: ADD's per-sample scale
 * u.add.row_scale, for stochastic depth; 13: BATCHNORM's synchronised statistics,
 * u.bn.reduce; 14: ops in place, which the training step's memory plan uses: BATCHNORM,
 * RELU and GELU backward with dx = dy, ADD backward with da = dy, RELU forward with y =
 * x, ADD forward with y = a; and the optional tensor_host_data; 15:
 * mbk_ctx_params.conv_algo).
 *
 * The contract is this header plus the files it names: backend_op.h/.c (the op frame a
 * backend builds its ops on), loss_core.h, loss_rows.h/.c, optim_core.h and
 * upsample_core.h (shared arithmetic), op_desc.c (description and argument checks).
 * They include only mosaic/mosaic.h, the C library and each other; a backend includes
 * nothing else of the core (tests/check_layering.sh checks it).
 *
 * Objects:
 *  - mbk_ctx: one backend instance (engine, stream, scratch memory). A context and
 *    everything created from it is used by one thread at a time; concurrency comes
 *    from several contexts.
 *  - mbk_tensor: float32 storage with a logical shape (1-D C, 2-D N×C or 4-D NCHW) and
 *    a layout the backend chooses. A tensor starts empty; upload or an op's output sets
 *    its shape and layout. Storage is reused when a later write fits, so a steady
 *    training loop does not allocate: neither does the backend's other per-call host
 *    memory (the CPU context keeps its loss scratch), nor the core's (the executor
 *    keeps staging, marks and workspaces; tests/test_alloc.c checks the whole process).
 *    Upload/download always speak plain row-major.
 *  - mbk_op: an operation prepared for one shape (mbk_op_desc), with whatever the
 *    backend caches for it (primitives, reorders, workspaces). Backward uses what the
 *    latest training forward of the same op saved.
 *
 * Who checks what: the core reaches a table only through its frame (lib/backend/backend_call.c),
 * which validates the description at op_create (mbk_op_desc_validate), the argument
 * counts of every op_forward / op_backward (mbk_op_arity), the entries that must not be
 * NULL (mbk_op_arg_optional) and the arguments of loss (mbk_loss_desc_validate). A
 * backend's op functions may rely on all of that; they check only what depends on the
 * tensors (shapes, saved state).
 *
 * Arguments of op_forward / op_backward, per op type ("in" then "out"; an entry marked
 * optional may be NULL, which skips that input or output):
 *
 *  CONV2D     fwd in  {x[N,C,H,W], w[OC,C/G,KH,KW], b[OC] (optional, only if desc bias)}
 *                 out {y[N,OC,OH,OW]}
 *             bwd in  {x, w, dy}          out {dx (opt), dw (opt), db (opt)}
 *             Groups (API 10): G = u.conv.groups (0 or 1: one group) splits the input
 *             and output channels into G groups; output channel o reads only the C/G
 *             input channels of its group g = o / (OC/G): y[n,o] = Σ_{c<C/G} x[n,
 *             g·C/G + c] ⊛ w[o,c] (PyTorch's Conv2d(groups=G), weights in its layout).
 *             G = C = OC is a depthwise convolution. G > 1 excludes the inference
 *             fusions and int8 (op_desc.c refuses the combination).
 *             Inference fusions (API 8; only for a backend whose caps has
 *             MBK_CAP_CONV_FUSED, and only in inference: training = 0, no backward):
 *             with u.conv.fold_bn the inputs go on {.., gamma, beta, running_mean,
 *             running_var} of an inference BATCHNORM with eps u.conv.bn_eps applied to
 *             the convolution (no bias then); with u.conv.residual one more input r
 *             (y's shape) is added; with u.conv.relu the result goes through ReLU:
 *             y = relu?(BN(conv(x, w)) + r). A backend may fold the normalisation into
 *             the weights (w·γ/√(σ²+ε), bias β − μ·γ/√(σ²+ε)): it must notice when any of
 *             those five tensors is written again.
 *             Quantised inference (API 9; contexts of precision INT8 only, inference
 *             only): u.conv.q_max > 0 is the calibrated max |x| of the input; the backend
 *             may then compute in 8-bit integers (see mbk_precision). 0 = float32.
 *  BATCHNORM  fwd in  {x, gamma[C], beta[C], running_mean[C], running_var[C]}
 *                 out {y}
 *             (x is [N,C,H,W] or [N,C]; statistics per channel over all other dims)
 *             training: normalises with the batch statistics, saves them, and updates
 *             running_mean/running_var in place: r = (1-m) r + m s, with the unbiased
 *             batch variance for running_var (PyTorch's rule). Inference: uses the
 *             running statistics. With desc.u.bn.relu the output is ReLU(BN(x)).
 *             bwd in  {x, gamma, dy}      out {dx, dgamma (opt), dbeta (opt)}
 *             In place (API 14): dx may be the same tensor as dy (the core's training
 *             step passes it so: dy is used up and dx has its shape). A backend must
 *             then read every value of dy it needs before writing dx over it.
 *             Synchronised statistics (API 13; data-parallel training, PyTorch's
 *             SyncBatchNorm): when u.bn.reduce is not NULL, a training forward and its
 *             backward compute their per-channel sums over the batches of every process
 *             of a group, through u.bn.reduce (an in-place sum of doubles over the
 *             group, supplied by the core; it fails with MSC_E_COMM). Forward: with the
 *             shift K[c] = running_mean[c] as read on entry (the same on every process,
 *             it keeps the sums small), buf = {m, Σ(x − K)[0..C), Σ(x − K)²[0..C)}, m the
 *             local count N·H·W, 2C + 1 doubles, is reduced; the global count M = buf[0],
 *             mean = K + s1/M and the biased variance s2/M − (s1/M)² (clamped at 0)
 *             normalise, and running_var takes the unbiased global variance (M/(M − 1);
 *             M < 2 fails). Backward: with dy' = dy masked by y > 0 under the fused ReLU
 *             and x̂ = (x − mean)/√(var + eps), buf = {Σdy'[0..C), Σdy'·x̂[0..C)} (2C
 *             doubles) gives dbeta and dgamma before the reduction (local: the core sums
 *             parameter gradients over the group itself) and, reduced, dx = gamma/√(var +
 *             eps)·(dy' − Σ_g dy'/M − x̂·Σ_g dy'·x̂/M). A backend calls reduce exactly
 *             once per training forward and once per backward, unless it fails before
 *             (the core keeps the group's collectives aligned when one does). A backend
 *             that cannot do this refuses op_create with MSC_E_UNSUPPORTED. Inference
 *             ignores reduce.
 *  RELU       fwd in  {x}                 out {y}
 *             bwd in  {x, dy}             out {dx}    (dx = dy where x > 0, else 0; the
 *             core's training step passes the forward's y for x, which is > 0 exactly
 *             where x is: docs/memory.md)
 *             In place (API 14): y may be x's tensor, and dx dy's (GELU's dx too).
 *  MAXPOOL    fwd in  {x}                 out {y}     (padding never wins the max)
 *             bwd in  {dy}                out {dx}    (after a training forward)
 *  GAVGPOOL   fwd in  {x[N,C,H,W]}        out {y[N,C]}   (mean over H×W)
 *             bwd in  {dy[N,C]}           out {dx[N,C,H,W]}
 *  LINEAR     fwd in  {x[N,K], w[O,K], b[O] (optional, only if desc bias)}
 *                 out {y[N,O]}            (y = x·wᵀ + b)
 *             u.linear.q_max / q_signed: as CONV2D's (API 9)
 *             bwd in  {x, w, dy}          out {dx (opt), dw (opt), db (opt)}
 *  ADD        fwd in  {a, b}              out {y}     (same shape; y = a + b)
 *             bwd in  {dy}                out {da (opt), db (opt)}
 *             In place (API 14): y may be the same tensor as a, with or without a
 *             per-sample scale (the core sums a second gradient into the first so), and
 *             da may be dy's tensor (then it holds da already).
 *             Per-sample scale (API 12; u.add.row_scale = 1): one more input s[N], a 1-D
 *             tensor of the batch size (optional: NULL reads as all ones):
 *             fwd in  {a, b, s}           out {y}     (y[n,...] = a[n,...] + s[n]·b[n,...])
 *             bwd in  {dy, s}             out {da (opt), db (opt)}
 *             (da = dy, db[n,...] = s[n]·dy[n,...]). Stochastic depth (drop path) of a
 *             residual block: a is the shortcut, b the branch, s[n] = 0 or 1/keep per
 *             sample in training, NULL at inference.
 *  CONCAT     fwd in  {x_1..x_k}          out {y}     (along dimension 1, channels)
 *             bwd in  {dy}                out {dx_1..dx_k} (each optional)
 *  UPSAMPLE   fwd in  {x[N,C,H,W]}        out {y[N,C,OH,OW]}  (OH >= H, OW >= W)
 *             bwd in  {dy}                out {dx}    (needs no training forward)
 *             PyTorch's F.interpolate(x, size=(OH, OW), mode=...), whose scale per
 *             axis is H/OH (float): nearest: y[i,j] = x[⌊i·H/OH⌋, ⌊j·W/OW⌋] (OH and OW
 *             multiples of H and W: see op_desc.c). bilinear (align_corners=False,
 *             oneDNN's resampling_linear): the source coordinate of output row i is
 *             (i + 0.5)·H/OH − 0.5, clamped below at 0; the two neighbouring rows (the
 *             upper one clamped to H − 1) are weighted linearly; columns alike.
 *  DECONV2D   fwd in  {x[N,C,H,W], w[C,OC,KH,KW], b[OC] (optional, only if desc bias)}
 *                 out {y[N,OC,OH,OW]}     (OH = (H−1)·sh − 2·ph + KH + oph)
 *             bwd in  {x, w, dy}          out {dx (opt), dw (opt), db (opt)}
 *             PyTorch's ConvTranspose2d (dilation 1, groups 1), weights in its layout
 *             [in_channels, out_channels, KH, KW]: y[n,o,i·sh − ph + a, j·sw − pw + b]
 *             += x[n,c,i,j] · w[c,o,a,b], plus b[o]; oph/opw (output_padding) add
 *             rows/columns at the bottom/right. It is the adjoint of CONV2D with the
 *             same geometry and the weights read as [OC_conv = C, C_conv = OC, KH, KW].
 *  LAYERNORM  fwd in  {x, gamma[C], beta[C]}   out {y}       (API 10)
 *             bwd in  {x, gamma, dy}      out {dx (opt), dgamma (opt), dbeta (opt)}
 *             (x is [N,C,H,W] or [N,C]) normalises over the channels at every
 *             position (n, h, w): y = (x − μ)/√(σ² + eps)·gamma[c] + beta[c], μ and the
 *             biased σ² over c. On NCHW that is ConvNeXt's channels_first LayerNorm, on
 *             N×C PyTorch's nn.LayerNorm(C). Backward recomputes μ and σ² from x: it
 *             needs no training forward.
 *  GELU       fwd in  {x}                 out {y}       (API 10; 2-D or 4-D)
 *             bwd in  {x, dy}             out {dx}
 *             the exact form, PyTorch's nn.GELU(): y = x·Φ(x) = x/2·(1 + erf(x/√2)).
 *  GRN        fwd in  {x[N,C,H,W], gamma[C], beta[C]}   out {y}       (API 10)
 *             bwd in  {x, gamma, dy}      out {dx (opt), dgamma (opt), dbeta (opt)}
 *             ConvNeXt-V2's Global Response Normalisation on NCHW: G[n,c] = ‖x[n,c,:,:]‖₂
 *             (over H×W), N[n,c] = G[n,c]/(mean_c G[n,c] + eps), y = gamma[c]·x·N[n,c] +
 *             beta[c] + x (ConvNeXt-V2 eps 1e-6; its gamma and beta of shape (1,1,1,C)
 *             load as [C]). Where G[n,c] = 0 its gradient is taken as 0. Backward needs
 *             no training forward.
 *  ATTN       fwd in  {q[N,C,H,W], k_1, v_1, ..., k_S, v_S}   out {y[N,C,H,W]}  (API 11)
 *             bwd in  {q, k_1, v_1, ..., k_S, v_S, dy}
 *                       out {dq, dk_1, dv_1, ..., dk_S, dv_S} (each opt)
 *             multi-head scaled dot-product attention of the H·W query tokens of q over
 *             the keys of S = u.attn.sources sources (1..MBK_MAX_ATTN_SOURCES), k_j and
 *             v_j of shape [N,C,src_h[j],src_w[j]]: a token is the C channels at one
 *             position, split into u.attn.heads heads of C/heads channels. For head h,
 *             query token i and the keys of every source taken together (source order,
 *             then row-major positions): y_h[i] = Σ_κ softmax_κ(q_h[i]·k_h[κ]/√(C/heads))
 *             v_h[κ] — PyTorch's F.scaled_dot_product_attention on the tokens, without
 *             projections (the model applies those as 1×1 convolutions). Backward
 *             recomputes the attention weights from q and k: it needs no training forward.
 * mbk_op_arity and mbk_op_arg_optional below are this table in code.
 *
 * Every function returns MSC_OK or an msc_status, after setting the thread's error
 * message through mbk_host.fail (which names the op and the shape).
 */
#ifndef MOSAIC_LIB_BACKEND_H
#define MOSAIC_LIB_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "mosaic/mosaic.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MBK_API_VERSION        15u
#define MBK_MODULE_INIT_SYMBOL "msc_backend_module_init"
#define MBK_MAX_DIMS           4
#define MBK_MAX_CONCAT         16
/* The most key/value sources of an ATTN (its 1 + 2·S inputs fit MBK_MAX_CONCAT). */
#define MBK_MAX_ATTN_SOURCES 7

typedef struct mbk_ctx mbk_ctx;
typedef struct mbk_tensor mbk_tensor;
typedef struct mbk_op mbk_op;

/* The signature of mbk_host.fail: sets the calling thread's msc_last_error() message and
 * returns code. Shared code of the contract (loss_rows.c) reports errors through one. */
typedef msc_status (*mbk_fail_fn)(msc_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Returns the status of expr from the calling function when it is not MSC_OK. */
#define MBK_TRY(expr)                                                                          \
  do {                                                                                         \
    msc_status mbk_st_ = (expr);                                                               \
    if (mbk_st_ != MSC_OK) return mbk_st_;                                                     \
  } while (0)

/* Services of the core a backend may use; passed to the module's init function. */
typedef struct mbk_host {
  uint32_t api_version; /* MBK_API_VERSION of the core */
  uint32_t struct_size; /* sizeof(mbk_host) of the core */
  /* Sends one line to the user's log callback (no-op without one). */
  void (*log)(int32_t level, const char *fmt, ...)
#if defined(__GNUC__)
      __attribute__((format(printf, 2, 3)))
#endif
      ;
  /* Sets the calling thread's msc_last_error() message and returns code. */
  mbk_fail_fn fail;
} mbk_host;

/* BATCHNORM's synchronised statistics (API 13, u.bn.reduce): sums buf[0..n) element-wise
 * over every process of the group, in place; MSC_E_COMM (message set) on failure. */
typedef msc_status (*mbk_reduce_fn)(void *user, double *buf, int64_t n);

typedef enum mbk_op_type {
  MBK_OP_CONV2D = 1,
  MBK_OP_BATCHNORM = 2,
  MBK_OP_RELU = 3,
  MBK_OP_MAXPOOL = 4,
  MBK_OP_GAVGPOOL = 5,
  MBK_OP_LINEAR = 6,
  MBK_OP_ADD = 7,
  MBK_OP_CONCAT = 8,
  MBK_OP_UPSAMPLE = 9,   /* API 5 */
  MBK_OP_DECONV2D = 10,  /* API 5 */
  MBK_OP_LAYERNORM = 11, /* API 10 */
  MBK_OP_GELU = 12,      /* API 10 */
  MBK_OP_GRN = 13,       /* API 10 */
  MBK_OP_ATTN = 14,      /* API 11 */
  MBK_OP_COUNT_          /* one past the last; not an op */
} mbk_op_type;

/* UPSAMPLE's interpolation (u.upsample.mode; 0 is invalid). */
typedef enum mbk_upsample_mode {
  MBK_UPSAMPLE_NEAREST = 1,
  MBK_UPSAMPLE_BILINEAR = 2 /* align_corners = False */
} mbk_upsample_mode;

/* The largest UPSAMPLE ratio OH/H, OW/W (keeps the output far from any overflow). */
#define MBK_MAX_UPSAMPLE 1024

/*
 * What an op computes and on which input shape. ndim is 4 (NCHW) or 2 (N×C, h = w = 1)
 * for RELU, ADD, CONCAT, BATCHNORM, LAYERNORM and GELU; 4 for CONV2D, MAXPOOL, GAVGPOOL,
 * UPSAMPLE, DECONV2D, GRN and ATTN; 2 for LINEAR (c = in features). For CONCAT, c is the
 * output's channel count and u.concat.c[i] the channels of input i (they sum to c).
 */
typedef struct mbk_op_desc {
  int32_t type; /* mbk_op_type */
  int32_t ndim; /* 2 or 4 */
  int64_t n, c, h, w;
  union {
    struct {
      int64_t out_c, kh, kw, sh, sw, ph, pw; /* symmetric zero padding */
      int32_t bias;
      /* Inference fusions (API 8; see the table at the top; all 0 = a plain conv2d): */
      int32_t fold_bn;  /* a batch norm (4 more inputs) applied to the output; no bias */
      float bn_eps;     /* its eps */
      int32_t residual; /* one more input added to the output (after the batch norm) */
      int32_t relu;     /* ReLU last */
      /* Quantised inference (API 9; INT8 contexts, inference): the calibrated max |x| of
       * the input (0 = compute in float32) and whether negative inputs were seen. */
      float q_max;
      int32_t q_signed;
      /* Groups (API 10): 0 or 1 = an ordinary convolution; G > 1 divides c and out_c;
       * weights [out_c, c/G, kh, kw]. */
      int32_t groups;
    } conv;
    struct {
      float eps;      /* 1e-5 in torchvision */
      float momentum; /* 0.1 in torchvision */
      int32_t relu;   /* fuse a ReLU after the normalisation */
      /* API 13: NULL = statistics of this batch; else those of the group's batches,
       * summed through reduce(reduce_user, ...) (see the table at the top). */
      mbk_reduce_fn reduce;
      void *reduce_user;
    } bn;
    struct {
      int64_t kh, kw, sh, sw, ph, pw;
    } pool;
    struct {
      int64_t out_f;
      int32_t bias;
      float q_max;      /* as u.conv.q_max (API 9) */
      int32_t q_signed; /* as u.conv.q_signed (API 9) */
    } linear;
    struct {
      int32_t count;
      int64_t c[MBK_MAX_CONCAT];
    } concat;
    struct {
      int64_t oh, ow; /* output size (API 6): h <= oh <= h·MBK_MAX_UPSAMPLE, w alike */
      int32_t mode;   /* mbk_upsample_mode */
    } upsample;
    struct {
      int64_t out_c, kh, kw, sh, sw;
      int64_t ph, pw;   /* PyTorch's padding: 0 <= p < k */
      int64_t oph, opw; /* PyTorch's output_padding: 0 <= op < stride */
      int32_t bias;
    } deconv;
    struct {
      float eps; /* API 10; in (0, 1): 1e-6 in ConvNeXt, 1e-5 PyTorch's default */
    } ln;
    struct {
      float eps; /* API 10; in (0, 1): 1e-6 in ConvNeXt-V2 */
    } grn;
    struct {           /* API 11 */
      int32_t heads;   /* divides c */
      int32_t sources; /* 1 .. MBK_MAX_ATTN_SOURCES */
      int64_t src_h[MBK_MAX_ATTN_SOURCES], src_w[MBK_MAX_ATTN_SOURCES];
    } attn;
    struct {
      int32_t row_scale; /* API 12: 1 = b scaled per sample by a third input s[N] */
    } add;
  } u;
} mbk_op_desc;

/*
 * Loss terms (docs/losses.md) on backend tensors, so the projections never leave the device.
 * Every embedding/logit tensor is 2-D, rows × d (rows × c for BCE). Labels, row masks and
 * row lists are host arrays (small). A call adds weight × (the term's gradient) into
 * grad (which has the input's shape and must hold a gradient or zeros: tensor_zero),
 * and returns the term's value. Rows used:
 *   NTXENT     x: the 2·n rows [row0, row0 + 2n): view a then view b
 *   INFONCE    x, x2: rows [row0, row0 + n) of each; grad and grad2 receive theirs
 *   MULSUPCON  x: the k rows listed in rows[] (labels: k × c, in the same order)
 *   BCE        x: logits, n rows from row0 (labels: n × c); row_mask (n, may be NULL)
 *              drops unlabelled rows from the mean
 *   SOFTMAX_CE as BCE, single-label: every kept row of labels is one-hot (API 4)
 * Per-pixel terms (API 5; MBK_API_VERSION must be 5 or more for them): x is a 4-D
 * N×C×H×W logit tensor, the n images [row0, row0 + n) of it are used, c is C (K, the
 * channels, for PIXEL_BCE), h × w the image size; d is not used. Host arrays:
 *   PIXEL_CE   targets (n×h×w class indices; ignore_index not counted), class_weight
 *              (c, may be NULL: all 1); mean = Σ w_t·l / Σ w_t over counted pixels
 *   PIXEL_BCE  soft_targets (n×c×h×w in [0, 1]), pixel_mask (n×c×h×w, may be NULL;
 *              0 = not counted), pos_weight (c, may be NULL: all 1)
 *   DICE       targets and ignore_index as PIXEL_CE; soft Dice on the softmax
 */
typedef enum mbk_loss_type {
  MBK_LOSS_NTXENT = 1,
  MBK_LOSS_INFONCE = 2,
  MBK_LOSS_MULSUPCON = 3,
  MBK_LOSS_BCE = 4,
  MBK_LOSS_SOFTMAX_CE = 5,
  MBK_LOSS_PIXEL_CE = 6,
  MBK_LOSS_PIXEL_BCE = 7,
  MBK_LOSS_DICE = 8
} mbk_loss_type;

typedef struct mbk_loss_desc {
  int32_t type; /* mbk_loss_type */
  int64_t n;    /* pairs (NT-Xent, InfoNCE), rows (BCE, softmax CE) or keys k (MulSupCon) */
  int64_t row0; /* first row used (NT-Xent, InfoNCE, BCE, softmax CE) */
  int64_t d, c; /* embedding size; classes */
  float tau;
  int32_t per_anchor;      /* MulSupCon weighting */
  double weight;           /* scale of the gradient added into grad */
  const int32_t *rows;     /* MulSupCon: the rows of x to use */
  const uint8_t *labels;   /* MulSupCon, BCE, softmax CE */
  const uint8_t *row_mask; /* BCE, softmax CE: 1 = labelled row */
  /* Per-pixel terms (API 5), appended: */
  int64_t h, w;              /* image height and width */
  const int32_t *targets;    /* PIXEL_CE, DICE: n×h×w class indices */
  int32_t ignore_index;      /* PIXEL_CE, DICE: the target value of pixels not counted */
  const float *class_weight; /* PIXEL_CE: c class weights (NULL: all 1) */
  const float *soft_targets; /* PIXEL_BCE: n×c×h×w targets in [0, 1] */
  const uint8_t *pixel_mask; /* PIXEL_BCE: n×c×h×w, 0 = not counted (NULL: all) */
  const float *pos_weight;   /* PIXEL_BCE: c positive weights (NULL: all 1) */
} mbk_loss_desc;

/*
 * One optimiser step on one parameter tensor (docs/losses.md, "Optimiser"), with the
 * per-element arithmetic of optim_core.h, for backends that keep parameters on a
 * device (optim_update below). Every tensor holds n floats (any shape); param, m1 and m2
 * are updated in place, grad is only read. The scalars are those of msci_optim_update:
 *   ADAMW  msci_adamw_coefs(lr, beta1, beta2, eps, weight_decay, step), then
 *          msci_adamw_elem per element; m1 = first moment, m2 = second moment.
 *   SGD    msci_sgd_elem(p, m1, g, (float)lr, (float)weight_decay, (float)momentum,
 *          nesterov); m1 = momentum buffer (NULL when momentum is 0), m2 unused.
 * Before the update the gradient is multiplied by grad_scale in float (g·(float)scale,
 * PyTorch's mul_ of clip_grad_norm_; exactly 1 leaves it alone) without changing grad
 * itself. The moments start as zeros (tensor_zero) before step 0. param, grad, m1 and m2
 * must hold the same logical shape; a backend whose tensors have layouts (the CPU's
 * oneDNN formats) updates param in its own layout and may convert grad and the moments
 * to it (the moments keep the converted layout; padding stays zero).
 */
typedef enum mbk_optim_type { MBK_OPTIM_ADAMW = 1, MBK_OPTIM_SGD = 2 } mbk_optim_type;

typedef struct mbk_optim_desc {
  int32_t type;             /* mbk_optim_type */
  int32_t nesterov;         /* SGD */
  int64_t n;                /* elements of param, grad, m1, m2 */
  int64_t step;             /* 0-based step; AdamW's bias correction uses step + 1 */
  double lr;                /* learning rate of this step (schedule applied) */
  double weight_decay;      /* 0 for tensors without decay (biases, norm parameters) */
  double beta1, beta2, eps; /* AdamW */
  double momentum;          /* SGD */
  double grad_scale;        /* gradient multiplier (clipping); 1 = none */
} mbk_optim_desc;

/* The arithmetic a context computes in (API 7; the "precision" option, docs/precision.md).
 * F32: everything in float32. BF16: the compute-heavy ops (convolutions, linear) take
 * bfloat16 inputs and weights and may keep activations in bfloat16 between ops, while
 * everything a host reads (downloads, loss inputs) and every parameter, gradient and
 * statistic stays float32; tensor_upload/download still speak float32. A backend that
 * cannot compute in a precision here refuses ctx_create with MSC_E_UNSUPPORTED and says
 * why; it never silently computes in another one.
 * INT8 (API 9): inference only. A CONV2D or LINEAR whose description carries a
 * calibrated input range (q_max > 0) may quantise its input per tensor (u8 when
 * q_signed is 0, values below 0 then clamp to 0; s8 otherwise; values beyond q_max
 * saturate) and its weights per output channel (s8), accumulate in 32-bit integers and
 * write float32; every other op, and those without q_max, compute in float32. An op
 * with q_max > 0 refuses training = 1 and backward (the core never trains a model of
 * precision int8). */
typedef enum mbk_precision {
  MBK_PRECISION_F32 = 0,
  MBK_PRECISION_BF16 = 1,
  MBK_PRECISION_INT8 = 2 /* API 9 */
} mbk_precision;

/* How CONV2D computes (API 15). AUTO: the backend picks per layer, and may use a fast
 * algorithm whose float32 rounding differs from the direct sum's (the CPU backend's
 * Winograd F(4×4, 3×3), backends/cpu/cpu_conv.c); DIRECT: the direct sum only, for
 * callers that compare numbers across versions. Every algorithm computes the same
 * convolution: they differ in rounding only. A backend that does not choose itself
 * ignores the field (CUDA: cuDNN picks its algorithms); a value other than these two is
 * refused by ctx_create (MSC_E_INVALID_ARGUMENT). */
typedef enum mbk_conv_algo { MBK_CONV_ALGO_AUTO = 0, MBK_CONV_ALGO_DIRECT = 1 } mbk_conv_algo;

typedef struct mbk_ctx_params {
  uint32_t struct_size; /* sizeof(mbk_ctx_params) */
  int32_t threads;      /* 0 = backend default */
  int32_t device;       /* device index for GPU backends */
  int32_t precision;    /* mbk_precision (API 7); 0 = F32 */
  int32_t conv_algo;    /* mbk_conv_algo (API 15); 0 = AUTO */
} mbk_ctx_params;

/* Bits of mbk_iface.caps: what a backend does beyond the required ops. */
#define MBK_CAP_CONV_FUSED 1u /* CONV2D's fold_bn, residual and relu (API 8) */

typedef struct mbk_iface {
  uint32_t api_version; /* MBK_API_VERSION the backend was built with */
  uint32_t struct_size; /* sizeof(mbk_iface) the backend was built with */
  const char *name;     /* "cpu", "cuda", ... (static storage) */

  /* MSC_OK if the backend can run here; otherwise writes the reason into why. */
  msc_status (*probe)(char *why, size_t why_len);

  msc_status (*ctx_create)(const mbk_ctx_params *params, mbk_ctx **out);
  void (*ctx_free)(mbk_ctx *ctx); /* accepts NULL */

  msc_status (*tensor_create)(mbk_ctx *ctx, mbk_tensor **out);
  void (*tensor_free)(mbk_tensor *t); /* accepts NULL */
  /* Sets shape (ndim 1, 2 or 4) and contents from a plain row-major array. */
  msc_status (*tensor_upload)(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                              const float *src);
  /* Copies the contents out in plain row-major order; n is dst's capacity. */
  msc_status (*tensor_download)(const mbk_tensor *t, float *dst, size_t n);
  /* Writes the logical shape into dims[MBK_MAX_DIMS]; returns ndim (0 when empty). */
  int32_t (*tensor_shape)(const mbk_tensor *t, int64_t *dims);

  msc_status (*op_create)(mbk_ctx *ctx, const mbk_op_desc *desc, mbk_op **out);
  void (*op_free)(mbk_op *op); /* accepts NULL */
  msc_status (*op_forward)(mbk_op *op, int32_t training, mbk_tensor *const *in, int32_t n_in,
                           mbk_tensor *const *out, int32_t n_out);
  msc_status (*op_backward)(mbk_op *op, mbk_tensor *const *in, int32_t n_in,
                            mbk_tensor *const *out, int32_t n_out);

  /* Sets t's shape (ndim 1, 2 or 4) with every element 0. */
  msc_status (*tensor_zero)(mbk_tensor *t, int32_t ndim, const int64_t *dims);
  /* One loss term (see mbk_loss_desc): *value = the term, grad (grad2) += weight × ∂/∂x. */
  msc_status (*loss)(mbk_ctx *ctx, const mbk_loss_desc *desc, const mbk_tensor *x,
                     const mbk_tensor *x2, double *value, mbk_tensor *grad, mbk_tensor *grad2);

  /* Optional (API 2): one optimiser step on a parameter tensor where it lives (see
   * mbk_optim_desc). Training needs it (and grad_stats): the core updates parameters
   * only through it; a backend without it can run inference only. */
  msc_status (*optim_update)(mbk_ctx *ctx, const mbk_optim_desc *desc, mbk_tensor *param,
                             const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2);

  /* Optional (API 3; training needs it): what the core needs to know about a step's
   * parameter gradients t[0..n), without them leaving the backend.
   *   *first_bad: the index in t of the first tensor holding a NaN or an infinity, or -1
   *               when every element is finite (n = 0: -1).
   *   *sumsq:     when sumsq is not NULL and *first_bad is -1, Σ g² over all elements of
   *               all tensors, each square and the sum in double: the clipping norm's
   *               square. Undefined when *first_bad >= 0. NULL: not wanted (no
   *               clipping), and a backend may check finiteness only.
   * The sum's order: the CPU backend adds the squares one by one in t's order and each
   * tensor's plain row-major order, the order of the host sum the core used before API 3
   * (the same bits; tests/test_train.c keeps it as a reference). A device backend may use any fixed order (same bits from run to
   * run); the double sum then differs from the host's only in its last bits. No tensor
   * is modified; the tensors may belong to other contexts of the backend. The core also
   * calls it with sumsq NULL on the BatchNorm running statistics after a training
   * forward (any float tensors: nothing here is specific to gradients). */
  msc_status (*grad_stats)(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                           int32_t *first_bad, double *sumsq);

  /* API 8: MBK_CAP_* bits; the core asks only for what a backend announces here. */
  uint32_t caps;

  /* Optional (API 14): sets t's shape (ndim 1, 2 or 4) and returns in *data the host
   * memory of its contents in plain row-major order, which the caller fills before the
   * next call of the backend on t or its context: tensor_upload without a copy (the
   * training step augments its views straight into the input tensors). A backend whose
   * tensors are not in host memory leaves it NULL; the core then uploads. */
  msc_status (*tensor_host_data)(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                                 float **data);
} mbk_iface;

/* The one symbol a backend module exports (see MBK_MODULE_INIT_SYMBOL). */
typedef msc_status (*mbk_module_init_fn)(const mbk_host *host, const mbk_iface **out);

/* Checks that a description makes sense (positive sizes, a kernel that fits the padded
 * input, concat parts that sum to c, ...). MSC_OK, or an error code with the reason in
 * why. Defined in lib/contract/op_desc.c, which every backend module compiles in as well. */
msc_status mbk_op_desc_validate(const mbk_op_desc *d, char *why, size_t why_len);

/* Checks the arguments of a loss call (see mbk_loss_desc): the pointers a term needs
 * (x, value, grad; x2 and grad2 for InfoNCE; rows and labels for MulSupCon, labels for
 * BCE), a known type and positive sizes. MSC_OK, or MSC_E_INVALID_ARGUMENT with the
 * reason in why. Shapes of the tensors are the backend's to check. In op_desc.c. */
msc_status mbk_loss_desc_validate(const mbk_loss_desc *d, const mbk_tensor *x,
                                  const mbk_tensor *x2, const double *value,
                                  const mbk_tensor *grad, const mbk_tensor *grad2, char *why,
                                  size_t why_len);

/* Name of an op type in messages ("conv2d", "batchnorm", ...; "op" when unknown). */
static inline const char *mbk_op_name(int32_t type) {
  switch (type) {
  case MBK_OP_CONV2D: return "conv2d";
  case MBK_OP_BATCHNORM: return "batchnorm";
  case MBK_OP_RELU: return "relu";
  case MBK_OP_MAXPOOL: return "maxpool";
  case MBK_OP_GAVGPOOL: return "gavgpool";
  case MBK_OP_LINEAR: return "linear";
  case MBK_OP_ADD: return "add";
  case MBK_OP_CONCAT: return "concat";
  case MBK_OP_UPSAMPLE: return "upsample";
  case MBK_OP_DECONV2D: return "deconv2d";
  case MBK_OP_LAYERNORM: return "layernorm";
  case MBK_OP_GELU: return "gelu";
  case MBK_OP_GRN: return "grn";
  case MBK_OP_ATTN: return "attn";
  default: return "op";
  }
}

/* Argument counts of op_forward (backward = 0) or op_backward (backward = 1) for a valid
 * description: the table at the top of this file. Returns 0 for an unknown type. */
static inline int32_t mbk_op_arity(const mbk_op_desc *d, int32_t backward, int32_t *n_in,
                                   int32_t *n_out) {
  int32_t fi, fo, bi, bo; /* forward in/out, backward in/out */
  switch (d->type) {
  case MBK_OP_CONV2D:
    fi = 3 + (d->u.conv.fold_bn ? 4 : 0) + (d->u.conv.residual ? 1 : 0);
    fo = 1, bi = 3, bo = 3;
    break;
  case MBK_OP_BATCHNORM: fi = 5, fo = 1, bi = 3, bo = 3; break;
  case MBK_OP_RELU: fi = 1, fo = 1, bi = 2, bo = 1; break;
  case MBK_OP_MAXPOOL: fi = 1, fo = 1, bi = 1, bo = 1; break;
  case MBK_OP_GAVGPOOL: fi = 1, fo = 1, bi = 1, bo = 1; break;
  case MBK_OP_LINEAR: fi = 3, fo = 1, bi = 3, bo = 3; break;
  case MBK_OP_ADD:
    fi = d->u.add.row_scale ? 3 : 2, fo = 1, bi = d->u.add.row_scale ? 2 : 1, bo = 2;
    break;
  case MBK_OP_CONCAT: fi = d->u.concat.count, fo = 1, bi = 1, bo = d->u.concat.count; break;
  case MBK_OP_UPSAMPLE: fi = 1, fo = 1, bi = 1, bo = 1; break;
  case MBK_OP_DECONV2D: fi = 3, fo = 1, bi = 3, bo = 3; break;
  case MBK_OP_LAYERNORM: fi = 3, fo = 1, bi = 3, bo = 3; break;
  case MBK_OP_GELU: fi = 1, fo = 1, bi = 2, bo = 1; break;
  case MBK_OP_GRN: fi = 3, fo = 1, bi = 3, bo = 3; break;
  case MBK_OP_ATTN: fi = 1 + 2 * d->u.attn.sources, fo = 1, bi = fi + 1, bo = fi; break;
  default: return 0;
  }
  *n_in = backward ? bi : fi;
  *n_out = backward ? bo : fo;
  return 1;
}

/* The groups of a CONV2D (API 10): u.conv.groups, with 0 read as 1. */
static inline int64_t mbk_conv_groups(const mbk_op_desc *d) {
  return d->u.conv.groups > 1 ? d->u.conv.groups : 1;
}

/* 1 when d is a CONV2D with any of the inference fusions of API 8. */
static inline int32_t mbk_conv_fused(const mbk_op_desc *d) {
  return d->type == MBK_OP_CONV2D &&
         (d->u.conv.fold_bn || d->u.conv.residual || d->u.conv.relu);
}

/* 1 when entry i of the inputs (is_out = 0) or outputs (is_out = 1) of a pass may be
 * NULL: a bias without desc bias; ADD's per-sample scale (API 12); the parameter and
 * input gradients marked (opt). */
static inline int32_t mbk_op_arg_optional(const mbk_op_desc *d, int32_t backward,
                                          int32_t is_out, int32_t i) {
  if (d->type == MBK_OP_ADD && d->u.add.row_scale && !is_out) return i == (backward ? 1 : 2);
  if (!backward) {
    if (is_out) return 0;
    if (d->type == MBK_OP_CONV2D) return i == 2 && !d->u.conv.bias;
    if (d->type == MBK_OP_LINEAR) return i == 2 && !d->u.linear.bias;
    if (d->type == MBK_OP_DECONV2D) return i == 2 && !d->u.deconv.bias;
    return 0;
  }
  if (!is_out) return 0;
  switch (d->type) {
  case MBK_OP_CONV2D:
  case MBK_OP_DECONV2D:
  case MBK_OP_LINEAR:
  case MBK_OP_ADD:
  case MBK_OP_CONCAT:
  case MBK_OP_LAYERNORM:
  case MBK_OP_GRN:
  case MBK_OP_ATTN: return 1;
  case MBK_OP_BATCHNORM: return i > 0;
  default: return 0;
  }
}

/* Logical shape of an op's (first) input from its description: fills dims, returns
 * ndim. For CONCAT, channel count c is the output's; u.concat.c[i] those of input i. */
static inline int32_t mbk_op_in_dims(const mbk_op_desc *d, int64_t *dims) {
  dims[0] = d->n;
  dims[1] = d->c;
  if (d->ndim == 4) {
    dims[2] = d->h;
    dims[3] = d->w;
  }
  return d->ndim;
}

/* Output shape of an op from its description: fills dims, returns ndim (0 if the
 * description is invalid). Shared by the core, the backends and the tests. */
static inline int32_t mbk_op_out_dims(const mbk_op_desc *d, int64_t *dims) {
  switch (d->type) {
  case MBK_OP_CONV2D:
    dims[0] = d->n;
    dims[1] = d->u.conv.out_c;
    dims[2] = (d->h + 2 * d->u.conv.ph - d->u.conv.kh) / d->u.conv.sh + 1;
    dims[3] = (d->w + 2 * d->u.conv.pw - d->u.conv.kw) / d->u.conv.sw + 1;
    return 4;
  case MBK_OP_MAXPOOL:
    dims[0] = d->n;
    dims[1] = d->c;
    dims[2] = (d->h + 2 * d->u.pool.ph - d->u.pool.kh) / d->u.pool.sh + 1;
    dims[3] = (d->w + 2 * d->u.pool.pw - d->u.pool.kw) / d->u.pool.sw + 1;
    return 4;
  case MBK_OP_GAVGPOOL:
    dims[0] = d->n;
    dims[1] = d->c;
    return 2;
  case MBK_OP_UPSAMPLE:
    dims[0] = d->n;
    dims[1] = d->c;
    dims[2] = d->u.upsample.oh;
    dims[3] = d->u.upsample.ow;
    return 4;
  case MBK_OP_DECONV2D:
    dims[0] = d->n;
    dims[1] = d->u.deconv.out_c;
    dims[2] =
        (d->h - 1) * d->u.deconv.sh - 2 * d->u.deconv.ph + d->u.deconv.kh + d->u.deconv.oph;
    dims[3] =
        (d->w - 1) * d->u.deconv.sw - 2 * d->u.deconv.pw + d->u.deconv.kw + d->u.deconv.opw;
    return 4;
  case MBK_OP_LINEAR:
    dims[0] = d->n;
    dims[1] = d->u.linear.out_f;
    return 2;
  case MBK_OP_BATCHNORM:
  case MBK_OP_RELU:
  case MBK_OP_ADD:
  case MBK_OP_CONCAT:
  case MBK_OP_LAYERNORM:
  case MBK_OP_GELU:
  case MBK_OP_GRN:
  case MBK_OP_ATTN: return mbk_op_in_dims(d, dims);
  default: return 0;
  }
}

#ifdef __cplusplus
}
#endif

#endif /* MOSAIC_LIB_BACKEND_H */
