/*
 * model.h — the model inside libmosaic: configuration, graph, parameters, executors.
 * Layer: model (lib/model/README.md says what it owns and may include).
 *
 * A model is a fixed graph of backend ops (mbk_op_desc without the batch size) built
 * once from its configuration: one encoder per modality (a ResNet or a ConvNeXt-V2),
 * global average pooling to the feature h_m (then LayerNorm for ConvNeXt), a projection head per modality, the concatenation h_f, the fused
 * head and the classifier (docs/model.md). Parameters are backend tensors owned
 * by the model. Running the graph needs an executor: ops prepared for one batch size
 * plus activation tensors, on a backend context of its own. Executors are pooled, so
 * concurrent msc_embed calls each take one and the steady state allocates nothing.
 */
#ifndef MOSAIC_LIB_MODEL_H
#define MOSAIC_LIB_MODEL_H

#include <pthread.h>
#include <stdint.h>

#include "backend/backend_call.h"
#include "common/internal.h"
#include "mosaic/mosaic.h"

#define MSCI_MAX_STAGES     8
#define MSCI_PARAM_NAME_LEN 96

/* ---- configuration ------------------------------------------------------------------ */

typedef enum {
  MSCI_BLOCK_BASIC = 0,
  MSCI_BLOCK_BOTTLENECK = 1,
  MSCI_BLOCK_CONVNEXT = 2 /* ConvNeXt-V2: its own stem, downsampling and final norm */
} msci_block_kind;

typedef struct msci_encoder_cfg {
  int64_t stem_width, stem_kernel, stem_stride;
  int32_t maxpool;
  int32_t block; /* msci_block_kind */
  int32_t n_stages;
  int64_t widths[MSCI_MAX_STAGES], depths[MSCI_MAX_STAGES];
} msci_encoder_cfg;

typedef struct msci_modality_cfg {
  char name[MSCI_NAME_LEN];
  int64_t bands, size;
  float mean[MSCI_MAX_BANDS], std[MSCI_MAX_BANDS];
  /* The inputs' description (docs/model.md, "Inputs"): band names (bands entries, one
   * malloc'd block, or NULL: unnamed) and raw -> physical as raw * scale + offset. Only
   * recorded: the graph reads the raw values (mean/std were computed on them). */
  char **band_names;
  float scale[MSCI_MAX_BANDS], offset[MSCI_MAX_BANDS];
  int32_t has_scale, has_offset; /* the keys were given (resolve_options stores them) */
  msci_encoder_cfg enc;
} msci_modality_cfg;

typedef struct msci_model_cfg {
  int32_t n_mod;
  msci_modality_cfg mod[MSCI_MAX_MODALITIES];
  int64_t classes;
  char **class_names;                          /* classes entries, owned */
  int64_t proj_hidden, proj_dim, fused_hidden; /* 0 hidden = input width */
  int32_t proj_bn;
  int32_t single_label; /* option 'labels': 1 = single (softmax outputs), 0 = multi */
  float bn_momentum, bn_eps;
  uint64_t seed;
  int32_t segmentation; /* option 'task': 1 = segmentation (a U-Net decoder too) */
  int32_t seg_deconv;   /* option 'seg.upsample': 1 = deconv, 0 = bilinear */
  int32_t seg_convs;    /* option 'seg.convs': conv3x3+BN+ReLU per decoder level */
  int32_t seg_n_mod;    /* option 'seg.modalities': the decoder's modalities, */
  int32_t seg_mod[MSCI_MAX_MODALITIES]; /* indices into mod, in model order */
  int32_t fusion_xattn; /* option 'fusion': 1 = cross-attention, 0 = concatenation */
  int64_t fusion_dim;   /* option 'fusion.dim': xattn's token width d */
  int32_t fusion_heads; /* option 'fusion.heads' */
} msci_model_cfg;

/* Reads and cross-checks the model keys of opts (errors name the key). */
msc_status msci_model_cfg_parse(const msc_options *opts, msci_model_cfg *cfg);
void msci_model_cfg_clear(msci_model_cfg *cfg);

/* ---- graph -------------------------------------------------------------------------- */

typedef enum {
  MSCI_PARAM_WEIGHT = 0, /* decayed by the optimiser */
  MSCI_PARAM_BIAS = 1,
  MSCI_PARAM_BN_SCALE = 2, /* a normalisation's scale (BatchNorm, LayerNorm): starts at 1 */
  MSCI_PARAM_BN_SHIFT = 3, /* its shift, and GRN's gamma and beta: start at 0 */
  MSCI_PARAM_BN_MEAN = 4,  /* running statistics: saved, never trained */
  MSCI_PARAM_BN_VAR = 5
} msci_param_kind;

typedef struct msci_param {
  char name[MSCI_PARAM_NAME_LEN];
  int32_t kind;
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS];
  int64_t fan_in, fan_out; /* for initialisation */
  int32_t convnext_init;   /* ConvNeXt's: weights N(0, 0.02²) clipped to ±2, biases 0 */
  mbk_tensor *t;
} msci_param;

/* A value is a node's output (index >= 0) or a model input (MSCI_INPUT(m) < 0). */
#define MSCI_INPUT(m)        (-1 - (m))
#define MSCI_MAX_NODE_PARAMS 4

typedef struct msci_node {
  mbk_op_desc desc; /* desc.n is set per executor */
  int32_t n_in;
  int32_t in[MBK_MAX_CONCAT];
  int32_t n_param;
  int32_t param[MSCI_MAX_NODE_PARAMS];
  int32_t ndim; /* output shape without the batch dimension */
  int64_t out[MBK_MAX_DIMS];
  /* A residual ADD with a per-sample scale (u.add.row_scale): its block's share of the
   * stochastic-depth rate, k / (K − 1) for block k of the encoder's K (docs/model.md). */
  float drop_frac;
} msci_node;

typedef struct msci_graph {
  msci_node *nodes;
  int32_t n_nodes, cap_nodes;
  msci_param *params;
  int32_t n_params, cap_params;
  int32_t feat[MSCI_MAX_MODALITIES]; /* h_m */
  int32_t proj[MSCI_MAX_MODALITIES]; /* z_m (unnormalised) */
  int32_t fused, fused_proj, logits; /* h_f, z_f, classifier logits */
  int32_t seg_logits;                /* segmentation: N×C×H×W per-pixel logits, else -1 */
  int32_t last_encoder_node;         /* nodes 0..this belong to the encoders */
  int64_t feat_dim[MSCI_MAX_MODALITIES], fused_dim, proj_dim, classes;
  /* The width of modality m's block of h_f: feat_dim[m] (concatenation) or fusion.dim
   * (cross-attention, whose blocks are the pooled attended tokens). */
  int64_t fused_part_dim[MSCI_MAX_MODALITIES];
} msci_graph;

msc_status msci_graph_build(const msci_model_cfg *cfg, msci_graph *g);
void msci_graph_clear(msci_graph *g);
/* Marks in need[] (n_nodes bytes) every node that output node `target` depends on,
 * and in need_input[] the model inputs it reads. */
void msci_graph_mark(const msci_graph *g, int32_t target, uint8_t *need, uint8_t *need_input);
/* As msci_graph_mark, except that the concatenation h_f does not depend on the features
 * of the modalities with absent[m] set: their encoders are not marked (unless another
 * marked node reads them) and their inputs are not needed. */
void msci_graph_mark_present(const msci_graph *g, int32_t target, const uint8_t *absent,
                             uint8_t *need, uint8_t *need_input);

/* ---- model ---------------------------------------------------------------------------- */

typedef struct msci_exec msci_exec;

/* int8 calibration (model_int8.c; docs/precision.md, "int8"): per node, for the
 * conv2d and linear nodes, the largest |x| their input held over the calibrated batches
 * and whether any of it was negative. */
typedef struct msci_calib {
  float *max;      /* n_nodes; 0 = never seen */
  uint8_t *neg;    /* n_nodes */
  int64_t batches; /* batches accumulated; 0 = not calibrated */
  int32_t active;  /* a calibration forward is running: ops compute in float32 */
  uint64_t gen;    /* bumps whenever the ranges or active change: executors remake ops */
  float *buf;      /* host copy of the input being measured */
  size_t cap;      /* floats at buf */
} msci_calib;

struct msc_model {
  msci_model_cfg cfg;
  msc_options *opts; /* resolved model configuration, as saved in files */
  msci_graph graph;
  const mbk_iface *be;
  const char *backend_name;
  int32_t threads;
  int32_t precision; /* mbk_precision of every context (the "precision" option) */
  int32_t conv_algo; /* mbk_conv_algo of every context (the "conv_algorithm" option) */
  mbk_ctx *ctx;      /* owns the parameter tensors */
  pthread_mutex_t pool_lock;
  msci_exec *pool;          /* idle executors */
  struct msci_train *train; /* training state (train.h) */
  msc_dist *dist;           /* data-parallel training (train/dist.h), borrowed; or NULL */
  int32_t fuse_off;         /* no inference fusions in executors made from now on (tests
                               compare the fused forward with the plain one) */
  msci_calib calib;         /* precision int8: the calibrated input ranges */
};

/* Allocates the backend tensors of every parameter (uninitialised). */
msc_status msci_model_alloc(const msc_options *opts, const msc_options *runtime,
                            msc_model **out);
/* Seeded initialisation (Kaiming fan-out for convolutions, PyTorch's default for
 * linear layers, BatchNorm 1/0 with running statistics 0/1). */
msc_status msci_model_init_params(msc_model *m);

/* ---- executors ---------------------------------------------------------------------------- */

/* Roles of the executor's host workspaces (msci_exec_host). */
enum {
  MSCI_EXEC_HOST_AUG,       /* training: augmentation scratch, per OpenMP thread */
  MSCI_EXEC_HOST_OBJECTIVE, /* training: the objective's label arrays */
  MSCI_EXEC_HOST_OPTIM,     /* training: the optimiser's gradient lists */
  MSCI_EXEC_HOST_FUSE,      /* absent or dropped modalities: per-row scales and h_f */
  MSCI_EXEC_HOST_DROP,      /* training: stochastic depth's per-row scales */
  MSCI_EXEC_HOST_SLOTS
};

struct msci_exec {
  int64_t n;
  int32_t training;
  mbk_ctx *ctx;
  msci_be_op **ops;  /* per node, made on first use */
  mbk_tensor **act;  /* per node output, borrowed from the slots */
  mbk_tensor **slot; /* tensors shared by nodes whose lifetimes do not overlap, so memory
                         is the widest cut of the graph, not its sum. Training keeps a
                         value to the end of the step only where a backward reads it
                         (docs/memory.md) */
  int32_t n_slots;
  int32_t *last_use;   /* scratch: last node reading each node's output, */
  int32_t *free_slots; /* the stack of free slots, */
  int32_t *owner;      /* and the slot holding each node's output */
  int32_t *slot_node;  /* training: the node whose output each slot holds (its shape) */
  uint8_t *saved;      /* training scratch: outputs a backward reads */
  int32_t n_free;      /* training: free slots left on the stack by the forward pass,
                          which the backward pass's gradients take (same shape) */
  int32_t *rel_head;   /* training: per node i, the first saved value whose last backward
                          reader is i (its slot is free once i's backward ran), */
  int32_t *rel_next;   /* and the next such value after each one; -1 ends a list */
  /* training only: gradients of node outputs and parameters */
  mbk_tensor **grad;  /* per node output: borrowed from the gradient pool while live */
  uint8_t *has_grad;  /* grad[i] holds a gradient in this backward pass */
  mbk_tensor **gpool; /* every gradient tensor made (a gradient lives from its first
                            consumer's backward to its own node's: the pool keeps memory
                            at the widest cut of the backward pass, not its sum) */
  mbk_tensor **gfree; /* the free ones, a stack */
  int32_t n_gpool, n_gfree, cap_gpool;
  msci_be_op **acc_ops;    /* per node: the ADD op that sums a second gradient in */
  mbk_tensor **pgrad;      /* per parameter */
  uint8_t *pgrad_valid;    /* pgrad[p] was written in this backward pass */
  int32_t frozen_encoders; /* encoders run in inference mode and get no gradient */
  /* Synchronised BatchNorm (train.sync_bn, lib/train/dist_bn.c): the reduction the
   * training-mode BATCHNORM ops are made with (u.bn.reduce, API 13), NULL for local
   * statistics; set by the training step. bn_made / bn_made_user: what the existing ops
   * were made with (a change remakes them). */
  mbk_reduce_fn bn_reduce, bn_made;
  void *bn_reduce_user, *bn_made_user;
  /* Called by msci_exec_backward after each node's backward, with the node (its
   * parameters' gradients are then complete); an error stops the pass. NULL: none. The
   * data-parallel step starts its gradient all-reduces there (lib/train/dist_grad.c). */
  msc_status (*backward_hook)(void *user, int32_t node);
  void *backward_hook_user;
  mbk_tensor *input[MSCI_MAX_MODALITIES];
  /* Absent or dropped modalities (docs/model.md, "Missing modalities"). When fuse_scale
   * is set (rows × n_mod floats in the host workspace MSCI_EXEC_HOST_FUSE), the forward
   * pass multiplies block m of row r of h_f by fuse_scale[r · n_mod + m] right after the
   * concatenation, and the backward pass multiplies the gradient of h_f the same way
   * before the concatenation's backward. absent[m] (inference): the concatenation reads
   * zero_feat[m], zeros, instead of modality m's encoder, which does not run. */
  const float *fuse_scale;
  /* Stochastic depth (training, set by the step; docs/model.md): rate drop_path, draws
   * from drop_seed for row r = view v·drop_samples + sample i, the sample's stream being
   * that of global sample drop_sample0 + i. drop_path = 0: every row-scaled ADD gets no
   * scale (the plain sum). drop_scale[i]: the scale tensor of ADD node i, made on use. */
  double drop_path;
  uint64_t drop_seed;
  int64_t drop_samples, drop_sample0;
  mbk_tensor **drop_scale;
  uint8_t absent[MSCI_MAX_MODALITIES];
  mbk_tensor *zero_feat[MSCI_MAX_MODALITIES];
  /* Inference fusions (model_fuse.c; NULL when the executor has none): per node. */
  int32_t *fz_conv;   /* at the last node of a fused step: the step's conv2d node, else -1 */
  int32_t *fz_res;    /* there: the value added as the residual, or MSCI_FZ_NONE */
  uint8_t *fz_skip;   /* 1: the node runs inside a later fused step */
  uint64_t calib_gen; /* int8: the m->calib.gen its ops were made for */
  float *stage;       /* host staging for normalised inputs */
  size_t stage_cap;
  /* Host memory of a call, made with the executor or grown on first use and kept, so
   * that steady calls on one executor do not allocate (lib/contract/backend.h's promise). */
  uint8_t *need, *mark;             /* per node: what a call runs; marking scratch */
  void *host[MSCI_EXEC_HOST_SLOTS]; /* workspaces by role (MSCI_EXEC_HOST_*) */
  size_t host_cap[MSCI_EXEC_HOST_SLOTS];
  msci_exec *next;
};

/* ---- inputs (model_input.c) ------------------------------------------------------------ */

struct msci_batch_modality;
/* The batch's array for modality k, checked against the model: present and of the
 * model's shape (errors name the modality and the expected shape). */
msc_status msci_model_input(const msc_model *m, int32_t k, const msc_batch *b,
                            const struct msci_batch_modality **out);
/* Normalises sample i of bm (bands × plane floats) with modality k's mean and std into
 * dst, checking the input in the same pass: returns -1, or the offset within the sample
 * (band × plane + pixel) of its first non-finite value (dst is then partly written).
 * Sets no error, so it may run on any thread. */
int64_t msci_model_normalise(const msc_model *m, int32_t k,
                             const struct msci_batch_modality *bm, int64_t i, float *dst);
/* MSC_E_NUMERICAL with the message naming the modality, sample, band and pixel of the
 * non-finite value msci_model_normalise found at offset `at` of sample i. */
msc_status msci_model_nonfinite(const msc_model *m, int32_t k,
                                const struct msci_batch_modality *bm, int64_t i, int64_t at);
/* Grows the executor's host staging buffer to at least count floats. */
msc_status msci_exec_stage(msci_exec *e, size_t count);
/* Where input k's plain contents of shape dims[4] are to be written: the input tensor's
 * own memory where the backend keeps it on the host (tensor_host_data, API 14), else the
 * executor's staging buffer; msci_exec_input_done uploads the latter. */
msc_status msci_exec_input_at(msc_model *m, msci_exec *e, int32_t k, const int64_t *dims,
                              float **dst);
msc_status msci_exec_input_done(msc_model *m, msci_exec *e, int32_t k, const int64_t *dims,
                                const float *dst);
/* The executor's host workspace `slot` (MSCI_EXEC_HOST_*), grown to at least bytes
 * (contents not kept when it grows; 64-byte aligned); NULL with the error set when out
 * of memory. */
void *msci_exec_host(msci_exec *e, int32_t slot, size_t bytes);

/* Takes an idle executor for batch size n from the pool, or makes one. */
msc_status msci_exec_acquire(msc_model *m, int64_t n, int32_t training, msci_exec **out);
void msci_exec_release(msc_model *m, msci_exec *e);
void msci_exec_free(const msc_model *m, msci_exec *e);
/* Runs the nodes marked in need (inputs already uploaded). */
msc_status msci_exec_forward(msc_model *m, msci_exec *e, const uint8_t *need);
/* 1 when node i of e runs in training mode (a training executor, not in a frozen
 * encoder): its batch norm uses and updates batch statistics, and gets a backward. */
int msci_exec_node_trains(const msc_model *m, const msci_exec *e, int32_t i);

/* ---- int8 inference (model_int8.c) ----------------------------------------------------- */

/* Before an inference forward of a model of precision int8: refuses an uncalibrated
 * model (outside calibration) and drops e's ops when the calibration changed since they
 * were made. No-op for other precisions and for training executors. */
msc_status msci_int8_prepare(msc_model *m, msci_exec *e);
/* Sets the calibrated input range of conv2d or linear node c on d (a copy of its
 * description about to become an op of e); leaves d alone when nothing applies. */
void msci_int8_desc(const msc_model *m, const msci_exec *e, int32_t c, mbk_op_desc *d);
/* During calibration, before node c (conv2d or linear) runs: folds the range of its
 * input tensor x into m->calib. */
msc_status msci_int8_observe(msc_model *m, int32_t c, const mbk_tensor *x);
void msci_int8_free(msc_model *m);

/* ---- inference fusions (model_fuse.c) ------------------------------------------------- */

#define MSCI_FZ_NONE INT32_MIN
/* Plans e's fused steps (an inference executor of a backend with MBK_CAP_CONV_FUSED and
 * a model without fuse_off; otherwise leaves the fz_ arrays NULL): conv2d → batchnorm
 * (→ ReLU), and conv2d → batchnorm → add → ReLU with the add's other input as residual,
 * where every node but the last has no other reader and is no output of the graph. */
msc_status msci_fuse_plan(const msc_model *m, msci_exec *e);
/* The values node i reads when e runs it (a fused step reads its conv's input and its
 * residual); writes at most MBK_MAX_CONCAT entries into v, returns the count. */
int32_t msci_fuse_reads(const msc_model *m, const msci_exec *e, int32_t i, int32_t *v);
/* Runs the fused step ending at node i into e->act[i] (its op made on first use). */
msc_status msci_fuse_forward(msc_model *m, msci_exec *e, int32_t i);
/* Training executors: back-propagates from the gradients already placed in grad[]
 * (has_grad set) through the nodes marked in need, filling pgrad[] / pgrad_valid[]. */
msc_status msci_exec_backward(msc_model *m, msci_exec *e, const uint8_t *need);
/* The order in which msci_exec_backward(m, e, need) completes the trainable parameters'
 * gradients, predicted without running it: the pass starting from gradients on the nodes
 * seeds[0..n_seeds) (those the objective writes). order[j] (n_params room) is the j-th
 * parameter completed, node_of[j] (as much room) the node whose backward completes it.
 * scratch: n_nodes + n_params bytes. Returns the count, or -1 when a parameter would be
 * written by two nodes (the graph never makes one). */
int32_t msci_exec_backward_order(const msc_model *m, const msci_exec *e, const uint8_t *need,
                                 const int32_t *seeds, int32_t n_seeds, uint8_t *scratch,
                                 int32_t *order, int32_t *node_of);
/* Clears the gradient marks before a backward pass. */
void msci_exec_zero_grad(const msc_model *m, msci_exec *e);
/* Scales h_f (forward) or its gradient (backward) in tensor t by e->fuse_scale, row by
 * row and modality block by block, through the host workspace MSCI_EXEC_HOST_FUSE. */
msc_status msci_exec_scale_fused(msc_model *m, msci_exec *e, mbk_tensor *t);
/* Sets e->fuse_scale for the modality mask keep[r · n_mod + m] (1 = present) of each of
 * the rows: block m of row r gets n_mod / n_present(r) when kept, 0 otherwise; NULL (no
 * scaling) when every row keeps every modality. Refuses a row that keeps none. */
msc_status msci_exec_set_fuse_mask(msc_model *m, msci_exec *e, int64_t rows,
                                   const uint8_t *keep);
/* The tensor that receives the gradient of node's output (to seed backward). */
msc_status msci_exec_grad_for(msc_model *m, msci_exec *e, int32_t node, mbk_tensor **out);

#endif /* MOSAIC_LIB_MODEL_H */
