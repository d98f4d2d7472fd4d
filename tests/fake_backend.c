/*
 * fake_backend.c — backend modules for the registry tests, one source built five ways:
 *
 *   FAKE_VARIANT_GOOD        libmosaic-fakegood.so: a complete, working table (tensors
 *                            keep plain row-major data; ADD ops can be made, but running
 *                            one, like making any other op, is unsupported: the core's
 *                            frame tests see which calls reach the module)
 *   FAKE_VARIANT_BADVERSION  libmosaic-fakebadversion.so: api_version 99
 *   FAKE_VARIANT_NOSYMBOL    libmosaic-fakenosymbol.so: no MBK_MODULE_INIT_SYMBOL
 *   FAKE_VARIANT_INITFAIL    libmosaic-fakeinitfail.so: init fails ("no device found")
 *   FAKE_VARIANT_NODEVICE    libmosaic-fakenodevice.so: a sound module whose probe finds
 *                            no device (a GPU module on a machine without one)
 *
 * The module links nothing of libmosaic: it reaches the core only through the host
 * table it is given, as a real module does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#if !defined(FAKE_VARIANT_GOOD) && !defined(FAKE_VARIANT_BADVERSION) &&                        \
    !defined(FAKE_VARIANT_NOSYMBOL) && !defined(FAKE_VARIANT_INITFAIL) &&                      \
    !defined(FAKE_VARIANT_NODEVICE)
#error "define one of FAKE_VARIANT_GOOD, _BADVERSION, _NOSYMBOL, _INITFAIL, _NODEVICE"
#endif

#define FAKE_EXPORT __attribute__((visibility("default")))

#if defined(FAKE_VARIANT_NOSYMBOL)

/* Some exported function, but not the init symbol. */
FAKE_EXPORT int fake_backend_something_else(void);
FAKE_EXPORT int fake_backend_something_else(void) {
  return 42;
}

#else

#if defined(FAKE_VARIANT_GOOD)
#define FAKE_NAME        "fakegood"
#define FAKE_API_VERSION MBK_API_VERSION
#elif defined(FAKE_VARIANT_BADVERSION)
#define FAKE_NAME        "fakebadversion"
#define FAKE_API_VERSION 99u
#elif defined(FAKE_VARIANT_NODEVICE)
#define FAKE_NAME        "fakenodevice"
#define FAKE_API_VERSION MBK_API_VERSION
#else
#define FAKE_NAME        "fakeinitfail"
#define FAKE_API_VERSION MBK_API_VERSION
#endif

static const mbk_host *g_host;

struct mbk_ctx {
  int32_t threads;
};

struct mbk_op {
  int32_t type;
};

struct mbk_tensor {
  int32_t ndim;
  int64_t dims[MBK_MAX_DIMS];
  float *data;
  size_t count;
};

static msc_status fake_probe(char *why, size_t why_len) {
#if defined(FAKE_VARIANT_NODEVICE)
  if (why && why_len) {
    strncpy(why, "no fake device present", why_len - 1);
    why[why_len - 1] = '\0';
  }
  return MSC_E_BACKEND_UNAVAILABLE;
#else
  (void)why;
  (void)why_len;
  return MSC_OK;
#endif
}

static msc_status fake_ctx_create(const mbk_ctx_params *params, mbk_ctx **out) {
  if (out == NULL)
    return g_host->fail(MSC_E_INVALID_ARGUMENT, FAKE_NAME ": ctx_create: out is NULL");
  if (params && params->precision != MBK_PRECISION_F32)
    return g_host->fail(MSC_E_UNSUPPORTED, FAKE_NAME ": ctx_create: float32 only");
  mbk_ctx *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return g_host->fail(MSC_E_OUT_OF_MEMORY, FAKE_NAME ": ctx_create: out of memory");
  ctx->threads = params ? params->threads : 0;
  *out = ctx;
  return MSC_OK;
}

static void fake_ctx_free(mbk_ctx *ctx) {
  free(ctx);
}

static msc_status fake_tensor_create(mbk_ctx *ctx, mbk_tensor **out) {
  if (ctx == NULL || out == NULL)
    return g_host->fail(MSC_E_INVALID_ARGUMENT, FAKE_NAME ": tensor_create: NULL argument");
  mbk_tensor *t = calloc(1, sizeof *t);
  if (t == NULL)
    return g_host->fail(MSC_E_OUT_OF_MEMORY, FAKE_NAME ": tensor_create: out of memory");
  *out = t;
  return MSC_OK;
}

static void fake_tensor_free(mbk_tensor *t) {
  if (t == NULL) return;
  free(t->data);
  free(t);
}

static msc_status fake_tensor_upload(mbk_tensor *t, int32_t ndim, const int64_t *dims,
                                     const float *src) {
  if (t == NULL || dims == NULL || src == NULL)
    return g_host->fail(MSC_E_INVALID_ARGUMENT, FAKE_NAME ": tensor_upload: NULL argument");
  if (ndim != 1 && ndim != 2 && ndim != 4)
    return g_host->fail(MSC_E_SHAPE, FAKE_NAME ": tensor_upload: ndim %d", (int)ndim);
  size_t count = 1;
  for (int32_t i = 0; i < ndim; i++) {
    if (dims[i] <= 0)
      return g_host->fail(MSC_E_SHAPE, FAKE_NAME ": tensor_upload: dims[%d] = %lld", (int)i,
                          (long long)dims[i]);
    count *= (size_t)dims[i];
  }
  if (count > t->count) {
    float *data = realloc(t->data, count * sizeof *data);
    if (data == NULL)
      return g_host->fail(MSC_E_OUT_OF_MEMORY, FAKE_NAME ": tensor_upload: out of memory");
    t->data = data;
    t->count = count;
  }
  memcpy(t->data, src, count * sizeof *src);
  t->ndim = ndim;
  for (int32_t i = 0; i < MBK_MAX_DIMS; i++) t->dims[i] = i < ndim ? dims[i] : 0;
  return MSC_OK;
}

static size_t fake_elements(const mbk_tensor *t) {
  size_t count = t->ndim > 0 ? 1 : 0;
  for (int32_t i = 0; i < t->ndim; i++) count *= (size_t)t->dims[i];
  return count;
}

static msc_status fake_tensor_download(const mbk_tensor *t, float *dst, size_t n) {
  if (t == NULL || dst == NULL)
    return g_host->fail(MSC_E_INVALID_ARGUMENT, FAKE_NAME ": tensor_download: NULL argument");
  size_t count = fake_elements(t);
  if (n < count)
    return g_host->fail(MSC_E_BUFFER_TOO_SMALL,
                        FAKE_NAME ": tensor_download: %zu elements, room for %zu", count, n);
  if (count > 0) memcpy(dst, t->data, count * sizeof *dst);
  return MSC_OK;
}

static int32_t fake_tensor_shape(const mbk_tensor *t, int64_t *dims) {
  if (t == NULL || dims == NULL) return 0;
  for (int32_t i = 0; i < MBK_MAX_DIMS; i++) dims[i] = t->dims[i];
  return t->ndim;
}

static msc_status fake_op_create(mbk_ctx *ctx, const mbk_op_desc *desc, mbk_op **out) {
  (void)ctx;
  if (desc != NULL && desc->type == MBK_OP_ADD && out != NULL) {
    mbk_op *op = calloc(1, sizeof *op);
    if (op == NULL)
      return g_host->fail(MSC_E_OUT_OF_MEMORY, FAKE_NAME ": op_create: out of memory");
    op->type = desc->type;
    *out = op;
    return MSC_OK;
  }
  return g_host->fail(MSC_E_UNSUPPORTED, FAKE_NAME ": op type %d is not supported",
                      desc ? (int)desc->type : -1);
}

static void fake_op_free(mbk_op *op) {
  free(op);
}

static msc_status fake_op_forward(mbk_op *op, int32_t training, mbk_tensor *const *in,
                                  int32_t n_in, mbk_tensor *const *out, int32_t n_out) {
  (void)op, (void)training, (void)in, (void)n_in, (void)out, (void)n_out;
  return g_host->fail(MSC_E_UNSUPPORTED, FAKE_NAME ": op_forward is not supported");
}

static msc_status fake_op_backward(mbk_op *op, mbk_tensor *const *in, int32_t n_in,
                                   mbk_tensor *const *out, int32_t n_out) {
  (void)op, (void)in, (void)n_in, (void)out, (void)n_out;
  return g_host->fail(MSC_E_UNSUPPORTED, FAKE_NAME ": op_backward is not supported");
}

static msc_status fake_tensor_zero(mbk_tensor *t, int32_t ndim, const int64_t *dims) {
  (void)t, (void)ndim, (void)dims;
  return g_host->fail(MSC_E_UNSUPPORTED, FAKE_NAME ": tensor_zero is not supported");
}

static msc_status fake_loss(mbk_ctx *ctx, const mbk_loss_desc *desc, const mbk_tensor *x,
                            const mbk_tensor *x2, double *value, mbk_tensor *grad,
                            mbk_tensor *grad2) {
  (void)ctx, (void)desc, (void)x, (void)x2, (void)value, (void)grad, (void)grad2;
  return g_host->fail(MSC_E_UNSUPPORTED, FAKE_NAME ": loss is not supported");
}

static const mbk_iface g_iface = {
    .api_version = FAKE_API_VERSION,
    .struct_size = (uint32_t)sizeof(mbk_iface),
    .name = FAKE_NAME,
    .probe = fake_probe,
    .ctx_create = fake_ctx_create,
    .ctx_free = fake_ctx_free,
    .tensor_create = fake_tensor_create,
    .tensor_free = fake_tensor_free,
    .tensor_upload = fake_tensor_upload,
    .tensor_download = fake_tensor_download,
    .tensor_shape = fake_tensor_shape,
    .op_create = fake_op_create,
    .op_free = fake_op_free,
    .op_forward = fake_op_forward,
    .op_backward = fake_op_backward,
    .tensor_zero = fake_tensor_zero,
    .loss = fake_loss,
};

FAKE_EXPORT msc_status msc_backend_module_init(const mbk_host *host, const mbk_iface **out);

FAKE_EXPORT msc_status msc_backend_module_init(const mbk_host *host, const mbk_iface **out) {
  /* A real module checks the host before using it, as the core checks the module. */
  if (host == NULL || out == NULL) return MSC_E_INVALID_ARGUMENT;
  if (host->api_version != MBK_API_VERSION || host->struct_size < sizeof(mbk_host))
    return MSC_E_VERSION;
  g_host = host;
#if defined(FAKE_VARIANT_INITFAIL)
  (void)g_iface; /* built like the others, never handed out */
  host->log(MSC_LOG_DEBUG, FAKE_NAME ": looking for a device");
  return host->fail(MSC_E_DEVICE, "no device found");
#else
  host->log(MSC_LOG_DEBUG, FAKE_NAME ": initialised");
  *out = &g_iface;
  return MSC_OK;
#endif
}

#endif /* !FAKE_VARIANT_NOSYMBOL */
