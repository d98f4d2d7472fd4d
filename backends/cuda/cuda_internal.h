/*
 * cuda_internal.h — shared pieces of the CUDA backend module (libmosaic-cuda.so; layer:
 * CUDA backend, which includes only the backend contract of the core: backend.h,
 * backend_op.h, loss_core.h, optim_core.h, upsample_core.h). Every CUDA, cuBLAS and
 * cuDNN call of the project lives in this folder.
 *
 * Layout policy: unlike the oneDNN backend, tensors are always plain row-major (NCHW),
 * which is what cuDNN's NCHW descriptors, cuBLAS (through transposition) and the own
 * kernels read. So upload and download are straight copies and no op ever reorders.
 *
 * Ordering: all work of a context runs on its one stream, asynchronously. Functions that
 * give data to the host (tensor_download, loss's value) wait for the stream; upload and
 * tensor_zero are complete when they return. An op that writes a tensor owned by another
 * context (the running statistics of a batch norm, which the model's context owns)
 * records an event on the tensor, and any later use from a third stream waits on it.
 * Work of a context on its own tensors is otherwise ordered only by its stream: the core
 * always reads a value back (loss, gradients) before another context reads what a
 * training step wrote.
 *
 * Memory: every device buffer comes from the context's caching allocator (cuda_alloc.cu),
 * so a steady training loop never calls cudaMalloc.
 */
#ifndef MOSAIC_BACKENDS_CUDA_INTERNAL_H
#define MOSAIC_BACKENDS_CUDA_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "backend.h"
#include "backend_op.h"

/* The host services given at init (error messages, logging). */
extern const mbk_host *cuda_host;

#define CU_FAIL(code, ...) (cuda_host->fail((code), __VA_ARGS__))

/* ---- errors -------------------------------------------------------------------------- */
/* Each turns a library status into an msc_status with the library's own error text. */
msc_status cu_rt_fail(cudaError_t e, const char *what);
msc_status cu_blas_fail(cublasStatus_t s, const char *what);
msc_status cu_dnn_fail(cudnnStatus_t s, const char *what);

#define CU_CHECK(expr) MBK_TRY(expr)
#define CU_RT(call, what)                                                                      \
  do {                                                                                         \
    cudaError_t e_ = (call);                                                                   \
    if (e_ != cudaSuccess) return cu_rt_fail(e_, (what));                                      \
  } while (0)
#define CU_BLAS(call, what)                                                                    \
  do {                                                                                         \
    cublasStatus_t s_ = (call);                                                                \
    if (s_ != CUBLAS_STATUS_SUCCESS) return cu_blas_fail(s_, (what));                          \
  } while (0)
#define CU_DNN(call, what)                                                                     \
  do {                                                                                         \
    cudnnStatus_t s_ = (call);                                                                 \
    if (s_ != CUDNN_STATUS_SUCCESS) return cu_dnn_fail(s_, (what));                            \
  } while (0)
/* After a kernel launch: a bad configuration shows up here, not at the launch. */
#define CU_LAUNCHED(what) CU_RT(cudaGetLastError(), (what))

/* ---- caching allocator (cuda_alloc.cu) ------------------------------------------------- */
typedef struct cu_block cu_block; /* a cached free block (host-side record) */

typedef struct cu_alloc {
  pthread_mutex_t lock; /* tensors of a context may be freed from another thread */
  cu_block **bins;      /* free lists by size class */
  int32_t n_bins;
  size_t cached;           /* bytes held in the free lists */
  size_t in_use;           /* bytes handed out */
  uint64_t device_mallocs; /* cudaMalloc calls so far (tests check the steady state) */
} cu_alloc;

msc_status cu_alloc_init(cu_alloc *a);
/* Frees every cached block; in-use blocks must have been returned first. */
void cu_alloc_destroy(cu_alloc *a);
/* A block of at least bytes (rounded up to its size class, written to *got). */
msc_status cu_alloc_get(cu_alloc *a, size_t bytes, void **ptr, size_t *got);
/* Returns a block obtained from cu_alloc_get with its class size. NULL is ignored. The
 * caller guarantees that no other stream still uses it (same-stream reuse is ordered). */
void cu_alloc_put(cu_alloc *a, void *ptr, size_t got);

/* ---- contexts ----------------------------------------------------------------------------- */
/* A device buffer from a context's allocator (ops' saved state, scratch). */
typedef struct cu_buf {
  void *p;
  size_t cap; /* the allocator's class size */
} cu_buf;

struct mbk_ctx {
  int32_t device;
  cudaStream_t stream;
  cublasHandle_t blas;
  cudnnHandle_t dnn;
  cu_alloc alloc;
  cu_buf work; /* cuDNN workspace, grow-only */
  cu_buf flag; /* device, 64 bytes: the flags and value of a loss call */
};

/* Makes ctx's device current for the calling thread (each entry point calls it). */
msc_status cu_enter(mbk_ctx *ctx);
/* Makes ctx->work hold at least bytes (reallocated only when it grows). */
msc_status cu_work_ensure(mbk_ctx *ctx, size_t bytes);
/* Copies n bytes of a host array to device memory on ctx's stream. */
msc_status cu_upload_small(mbk_ctx *ctx, void *dev, const void *host, size_t n);
msc_status cu_sync(mbk_ctx *ctx, const char *what);

/* Makes b hold at least bytes; the old contents are lost when it grows. */
msc_status cu_buf_ensure(mbk_ctx *ctx, cu_buf *b, size_t bytes);
void cu_buf_release(mbk_ctx *ctx, cu_buf *b);

/* ---- tensors (cuda_tensor.cu) ----------------------------------------------------------- */
struct mbk_tensor {
  mbk_ctx *ctx; /* owner: its allocator holds the storage */
  int32_t ndim; /* 0 = empty */
  int64_t dims[MBK_MAX_DIMS];
  float *data;            /* plain row-major, device memory */
  size_t cap;             /* bytes at data (the allocator's class size) */
  cudaEvent_t ev;         /* recorded after a write by another context's op */
  cudaStream_t ev_stream; /* the stream ev was recorded on; NULL: nothing pending */
};

int64_t cu_numel(int32_t ndim, const int64_t *dims);
/* Before ctx reads or writes t: waits (on ctx's stream) for a pending foreign write. */
msc_status cu_tensor_use(mbk_ctx *ctx, const mbk_tensor *t);
/* After ctx wrote t: makes the write visible to other streams when ctx is not t's owner. */
msc_status cu_tensor_wrote(mbk_ctx *ctx, mbk_tensor *t);
/* Gives t the shape (ndim, dims), growing its storage if needed, for ctx to write. */
msc_status cu_tensor_set(mbk_ctx *ctx, mbk_tensor *t, int32_t ndim, const int64_t *dims);
/* Checks t's logical shape; names the op and the argument in the error. */
msc_status cu_tensor_expect(const mbk_tensor *t, int32_t ndim, const int64_t *dims,
                            const char *op, const char *arg);
msc_status cu_tensor_zero(mbk_tensor *t, int32_t ndim, const int64_t *dims);

/* ---- ops ------------------------------------------------------------------------------- */
/* Every op starts with struct mbk_op and has an mbk_op_vt (backend_op.h); they are made
 * with mbk_op_alloc(cuda_host, "cuda", ...) and find their input shape with
 * mbk_op_in_dims (backend.h). Their arguments were checked by the core's frame. */
/* cu_conv_create, cu_bnorm_create, ... cu_deconv_create (cuda_conv.cu, cuda_bnorm.cu,
 * cuda_eltwise.cu, cuda_pool.cu, cuda_linear.cu, cuda_concat.cu, cuda_upsample.cu,
 * cuda_deconv.cu); cu_layernorm_create (cuda_lnorm.cu), cu_gelu_create (cuda_eltwise.cu),
 * cu_grn_create (cuda_grn.cu), cu_attn_create (cuda_attn.cu). */
#define CU_DECLARE_CREATE(kind) MBK_OP_DECLARE_CREATE(cu, kind)
MBK_OP_KINDS(CU_DECLARE_CREATE)
MBK_OP_KINDS_10(CU_DECLARE_CREATE)
MBK_OP_KINDS_11(CU_DECLARE_CREATE)

/* ---- shared kernels (cuda_eltwise.cu) ------------------------------------------------------ */
/* Threads per block of the element-wise kernels, and the grid for count elements. */
#define CU_THREADS 256
unsigned cu_grid(int64_t count);
/* out[c] = Σ over n and s of x[(n·C + c)·S + s] for x of shape [N, C, S]; deterministic
 * (fixed reduction order). Used for bias gradients. */
msc_status cu_channel_sum(mbk_ctx *ctx, const float *x, int64_t n, int64_t c, int64_t s,
                          float *out);
/* y[(n·C + c)·S + s] += b[c] (bias of conv and linear). */
msc_status cu_add_bias(mbk_ctx *ctx, float *y, const float *b, int64_t n, int64_t c, int64_t s);
/* Σ a and Σ b over the CU_THREADS threads of a block, in double and in a fixed tree (the
 * same bits on every run), for thread 0; every thread of the block must call it. Static:
 * each .cu file has its own copy (no relocatable device code). */
static __device__ __forceinline__ void cu_block_sum2(double a, double b, double *out_a,
                                                     double *out_b) {
  __shared__ double sa[CU_THREADS], sb[CU_THREADS];
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int w = CU_THREADS / 2; w > 0; w >>= 1) {
    if ((int)threadIdx.x < w) {
      sa[threadIdx.x] += sa[threadIdx.x + w];
      sb[threadIdx.x] += sb[threadIdx.x + w];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    *out_a = sa[0];
    *out_b = sb[0];
  }
}
/* Device-to-device copy on ctx's stream. */
msc_status cu_copy(mbk_ctx *ctx, void *dst, const void *src, size_t bytes);

/* ---- loss terms and the optimiser --------------------------------------------------------- */
msc_status cu_loss(mbk_ctx *ctx, const mbk_loss_desc *d, const mbk_tensor *x,
                   const mbk_tensor *x2, double *value, mbk_tensor *grad, mbk_tensor *grad2);
msc_status cu_optim_update(mbk_ctx *ctx, const mbk_optim_desc *d, mbk_tensor *param,
                           const mbk_tensor *grad, mbk_tensor *m1, mbk_tensor *m2);
msc_status cu_grad_stats(mbk_ctx *ctx, const mbk_tensor *const *t, int32_t n,
                         int32_t *first_bad, double *sumsq);

/* Row-major products on ctx's cuBLAS handle (double, for the loss terms):
 *   C[m×n] = alpha · A[m×p] · B[n×p]ᵀ   (cu_dgemm_abt)
 *   C[m×n] = alpha · A[m×p] · B[p×n]    (cu_dgemm_ab) */
msc_status cu_dgemm_abt(mbk_ctx *ctx, int64_t m, int64_t n, int64_t p, double alpha,
                        const double *a, const double *b, double *c);
msc_status cu_dgemm_ab(mbk_ctx *ctx, int64_t m, int64_t n, int64_t p, double alpha,
                       const double *a, const double *b, double *c);

/* The kernel probe launches to check that this build runs on the device. */
msc_status cu_kernel_image_check(char *why, size_t why_len);

#endif /* MOSAIC_BACKENDS_CUDA_INTERNAL_H */
