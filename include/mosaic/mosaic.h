/*
 * mosaic.h — the public interface of libmosaic.
 *
 * libmosaic trains and runs multi-modal contrastive models (MoSAiC) for satellite
 * imagery. This header is the only one a user includes and it is the reference
 * documentation: every function says what it does, what each parameter may be,
 * which status codes it returns, whether it is thread-safe and since which version
 * it exists.
 *
 * Conventions (docs/conventions.md has the full text):
 *  - Every function that can fail returns an msc_status: MSC_OK (0) or a negative
 *    MSC_E_* code. msc_last_error() then holds a message for the calling thread.
 *  - Inputs come first, out-parameters last; out-parameters are left untouched on
 *    error. Destructors (msc_*_free) accept NULL.
 *  - Counts and dimensions are int64_t; buffer capacities are size_t element counts.
 *    Arrays are row-major float32 (images NCHW) and only borrowed for the call.
 *  - Strings are UTF-8 and NUL-terminated. Strings returned by the library are owned
 *    by it and stay valid as documented per function.
 *  - The library never prints, never calls exit() or abort(); diagnostics go to the
 *    callback installed with msc_set_log_callback().
 *
 * ABI: the shared library's SONAME is libmosaic.so.<MSC_VERSION_MAJOR>. Within one
 * major version functions are only added, never removed or changed; status codes and
 * other constants are never renumbered and never reused (docs/abi.md).
 */
#ifndef MOSAIC_MOSAIC_H
#define MOSAIC_MOSAIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* MSC_API marks the exported functions. Users never define MSC_BUILDING_LIBRARY. */
#if defined(MSC_BUILDING_LIBRARY) && defined(__GNUC__)
#define MSC_API __attribute__((visibility("default")))
#else
#define MSC_API
#endif

/* ------------------------------------------------------------------------------ */
/* Versions                                                                        */
/* ------------------------------------------------------------------------------ */

/** Version of the header the program was compiled against. Since 0.1.0. */
#define MSC_VERSION_MAJOR 0
#define MSC_VERSION_MINOR 5
#define MSC_VERSION_PATCH 0
/** One number for comparisons: MAJOR*10000 + MINOR*100 + PATCH. Since 0.1.0. */
#define MSC_VERSION_NUMBER                                                                     \
  (MSC_VERSION_MAJOR * 10000 + MSC_VERSION_MINOR * 100 + MSC_VERSION_PATCH)

/**
 * Version of the library loaded at run time, encoded like MSC_VERSION_NUMBER.
 * Compare with MSC_VERSION_NUMBER to detect a header/library mismatch.
 * Thread-safe. Cannot fail. Since 0.1.0.
 */
MSC_API uint32_t msc_version(void);

/**
 * Version of the library loaded at run time as "MAJOR.MINOR.PATCH" (static storage).
 * Thread-safe. Cannot fail. Since 0.1.0.
 */
MSC_API const char *msc_version_string(void);

/* ------------------------------------------------------------------------------ */
/* Status codes and errors                                                         */
/* ------------------------------------------------------------------------------ */

/** Result of every fallible call: MSC_OK or a negative MSC_E_* code. Since 0.1.0. */
typedef int32_t msc_status;

/* Values are part of the ABI: never renumbered, never reused. New codes are appended. */
#define MSC_OK                    0    /**< Success. */
#define MSC_E_INVALID_ARGUMENT    (-1) /**< A NULL pointer, bad value or bad option. */
#define MSC_E_OUT_OF_MEMORY       (-2) /**< An allocation failed. */
#define MSC_E_IO                  (-3) /**< A file could not be opened, read or written. */
#define MSC_E_BAD_FORMAT          (-4) /**< A file or buffer is corrupt or not of the expected format. */
#define MSC_E_UNSUPPORTED         (-5) /**< Valid, but not supported by this build or backend. */
#define MSC_E_BACKEND_UNAVAILABLE (-6) /**< The requested backend cannot be used here. */
#define MSC_E_DEVICE              (-7) /**< The compute device or its runtime reported an error. */
#define MSC_E_NUMERICAL           (-8) /**< A NaN or infinity appeared in a result. */
#define MSC_E_SHAPE               (-9) /**< Array dimensions do not match what is expected. */
#define MSC_E_NOT_FOUND           (-10) /**< A named item (key, modality, file) does not exist. */
#define MSC_E_BUFFER_TOO_SMALL    (-11) /**< An output buffer is smaller than required. */
#define MSC_E_VERSION             (-12) /**< A file or module was made for an incompatible version. */
#define MSC_E_INTERNAL            (-13) /**< A bug in libmosaic: please report it. */
#define MSC_E_CANCELLED           (-14) /**< The operation was stopped on request. */
#define MSC_E_COMM                                                                             \
  (-15) /**< Another process of a distributed run failed, or a collective timed out (0.5.0). */

/**
 * A short, static English description of a status code ("invalid argument").
 * Unknown codes give "unknown status". Never returns NULL.
 * Thread-safe. Since 0.1.0.
 */
MSC_API const char *msc_status_string(msc_status status);

/**
 * The message of the last error raised on the calling thread, naming what went wrong
 * (file, shape, value). "" when no call on this thread has failed yet.
 * The pointer stays valid until the next libmosaic call on the same thread.
 * Each thread has its own message. Since 0.1.0.
 */
MSC_API const char *msc_last_error(void);

/**
 * Clears the calling thread's last error message (msc_last_error() returns "").
 * Thread-safe (affects only the calling thread). Since 0.1.0.
 */
MSC_API void msc_clear_error(void);

/* ------------------------------------------------------------------------------ */
/* Logging                                                                         */
/* ------------------------------------------------------------------------------ */

/* Log levels: a message is delivered when its level <= the threshold given. */
#define MSC_LOG_ERROR   0
#define MSC_LOG_WARNING 1
#define MSC_LOG_INFO    2
#define MSC_LOG_DEBUG   3

/**
 * A log callback: level is one of MSC_LOG_*, message is a NUL-terminated line without
 * a trailing newline, valid only during the call; user is the pointer given to
 * msc_set_log_callback. It may be called from any thread, including threads the
 * library starts, and must not call back into libmosaic.
 */
typedef void (*msc_log_fn)(int32_t level, const char *message, void *user);

/**
 * Installs (or, with fn == NULL, removes) the process-wide log callback. Messages of a
 * level above max_level are dropped. Without a callback nothing is ever printed.
 * Returns MSC_OK, or MSC_E_INVALID_ARGUMENT if max_level is not an MSC_LOG_* value.
 * Thread-safe; a callback running concurrently may still see the previous setting.
 * Since 0.1.0.
 */
MSC_API msc_status msc_set_log_callback(msc_log_fn fn, void *user, int32_t max_level);

/* ------------------------------------------------------------------------------ */
/* Backends                                                                        */
/* ------------------------------------------------------------------------------ */

/*
 * A backend runs the numerical work: "cpu" (oneDNN, always built in) or a module
 * loaded at run time such as "cuda" (libmosaic-cuda.so). Modules are looked for in
 * the directories of the MSC_BACKEND_PATH environment variable (':'-separated, first
 * match wins) and then next to libmosaic.so itself; they are discovered once, on the
 * first call of any msc_backend_* function (or of a function that uses a backend).
 * A module that fails to load is listed, reported through the log callback and
 * marked unavailable with the reason; it never stops the library from working.
 *
 * The "cpu" backend runs oneDNN's kernels, except for a few float32 convolution shapes
 * that run on kernels of libmosaic's own (docs/performance.md): 3x3, stride 1, padding
 * 1, 8 output channels (the "tiny" encoder's full-resolution layers) where the CPU has
 * AVX2 or AVX-512, and 16 output channels from 8 (3x3 stride 2, 1x1 stride 2) or 16
 * (3x3 stride 1; its second stage) where it has AVX-512, as are the training batch
 * norms of 8 and 16 channels there. The environment variable MSC_CPU_OWN_KERNELS=0,
 * read when a model's ops are created (by a batch norm at each training forward), hands
 * those to oneDNN as well (for comparisons and diagnosis; results agree to float32
 * rounding). ONEDNN_MAX_CPU_ISA limits both.
 */

/**
 * Number of known backends, available or not (at least 1: "cpu").
 * Thread-safe. Cannot fail. Since 0.1.0.
 */
MSC_API int32_t msc_backend_count(void);

/**
 * Name of backend i (0 <= i < msc_backend_count()), or NULL when i is out of range.
 * Index 0 is always "cpu". The string lives as long as the process.
 * Thread-safe. Since 0.1.0.
 */
MSC_API const char *msc_backend_name(int32_t i);

/**
 * Whether the backend called name can be used on this machine.
 * Returns MSC_OK if it can; MSC_E_BACKEND_UNAVAILABLE with the reason in
 * msc_last_error() (module missing, failed to load, wrong API version, no device)
 * if it is known but unusable; MSC_E_NOT_FOUND for an unknown name;
 * MSC_E_INVALID_ARGUMENT for NULL.
 * Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_backend_available(const char *name);

/**
 * Resolves a backend request as model creation does: "auto" picks "cuda" when it is
 * available and "cpu" otherwise; any other name must be available itself — an
 * explicit request never falls back silently.
 * On success *chosen points to the chosen backend's name (lives as long as the
 * process). Returns MSC_OK; MSC_E_BACKEND_UNAVAILABLE (with the reason) when an
 * explicitly named backend is unusable; MSC_E_NOT_FOUND for an unknown name;
 * MSC_E_INVALID_ARGUMENT if request or chosen is NULL. *chosen is untouched on error.
 * Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_backend_select(const char *request, const char **chosen);

/* ------------------------------------------------------------------------------ */
/* Options                                                                         */
/* ------------------------------------------------------------------------------ */

/*
 * An msc_options handle holds typed key/value settings: the model configuration for
 * msc_model_create, run-time settings for msc_model_load. New keys never change the
 * ABI. Every key has a type (int, float, string, or floats: a list of floats), a
 * default, and a rule for valid values; setting an unknown key, a value of the wrong
 * type or an invalid value is an error whose message names the key. docs/options.md
 * lists every key; the main ones:
 *
 *  run time
 *   backend            string  "auto"   "auto", "cpu", "cuda" or a module's name
 *   threads            int     0        CPU threads per call (0: the OpenMP default)
 *   seed               int     42       initialisation and sampling seed (>= 0)
 *  modalities (i = 0 .. modality.count-1)
 *   modality.count     int     2        number of modalities, 1..8
 *   modality.i.name    string  s1, s2   unique, [a-z0-9_]+, at most 31 characters
 *   modality.i.bands   int     2, 12    input channels, 1..64
 *   modality.i.size    int     120      patch height = width in pixels, 8..4096
 *   modality.i.encoder string  resnet18 "resnet18", "resnet34", "resnet50", "tiny"
 *   modality.i.mean    floats  none     per-band means (none: 0), one per band
 *   modality.i.std     floats  none     per-band standard deviations > 0 (none: 1)
 *   modality.i.band_names string ""     the input bands by name, in order, joined with ','
 *                                       (none: unnamed); one per band. Since 0.4.0.
 *   modality.i.scale   floats  none     per band, raw -> physical = raw * scale + offset
 *   modality.i.offset  floats  none     (none: 1 and 0; scale != 0). Recorded, not applied:
 *                                       the model reads raw values, as it was trained
 *                                       (docs/model.md, "Inputs"). Since 0.4.0.
 *   modality.i.stem_width, .stem_kernel, .stem_stride, .maxpool (0/1),
 *   modality.i.block ("basic"/"bottleneck"), .widths ("64,128,256,512"),
 *   modality.i.depths ("2,2,2,2"): override the encoder preset's architecture.
 *  heads
 *   classes            int     19       number of classes C, 1..4096
 *   class_names        string  BigEarthNet's 19 names when classes = 19, else
 *                              "class0;class1;..."; names joined with ';'
 *   proj.hidden        int     0        hidden width H of each projection head (0: D_m)
 *   proj.dim           int     128      projection size P
 *   proj.bn            int     0        BatchNorm between the head's Linear and ReLU
 *   fused.hidden       int     0        hidden width of the fused head (0: D_f)
 *   bn.momentum        float   0.1      BatchNorm running-statistics momentum, (0, 1]
 *   bn.eps             float   1e-5     BatchNorm epsilon
 *  dense prediction (docs/segmentation.md; since 0.3.0)
 *   task               string  contrastive "contrastive" or "segmentation" (adds a U-Net
 *                              decoder with per-pixel logits: msc_predict_mask)
 *   seg.decoder        string  unet     the decoder's architecture
 *   seg.upsample       string  bilinear "bilinear" or "deconv" (ConvTranspose2d 2x2/2)
 *   seg.convs          int     2        conv3x3+BN+ReLU layers per decoder level, 1..2
 *
 * Handles are not thread-safe: one thread at a time per handle (distinct handles are
 * independent). The library copies what it needs from options; they can be freed
 * right after the call that used them.
 */
typedef struct msc_options msc_options;

/**
 * Creates an empty options handle (every key at its default).
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT (out is NULL) or MSC_E_OUT_OF_MEMORY.
 * Since 0.1.0.
 */
MSC_API msc_status msc_options_create(msc_options **out);

/** Frees an options handle; NULL is accepted. Since 0.1.0. */
MSC_API void msc_options_free(msc_options *opts);

/**
 * Creates *out, a deep copy of src: every key that is set, with its type and exact value
 * (a floats key keeps its float values bit for bit and its text form as given); keys not
 * set read their defaults, as in src. The copy is independent: setting keys in or freeing
 * either handle leaves the other intact. Free the copy with msc_options_free.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (src or out is NULL, with a message naming it);
 * MSC_E_OUT_OF_MEMORY. *out is untouched on error. Reads src only; as for every call on a
 * handle, no other thread may change src during the call. Since 0.2.0.
 */
MSC_API msc_status msc_options_copy(const msc_options *src, msc_options **out);

/**
 * Sets an integer, floating-point or string key (see the list above). A string value
 * is copied. An int value is accepted for a float key. A floats key also takes its
 * text form with msc_options_set_string: numbers separated by ',' ("1.5, -2e3"; ""
 * for none), each read in the C locale and rounded to float, the text kept as given.
 * Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for NULL
 * arguments, a key of another type, or a value outside the key's valid range (the
 * message names the key and the rule). The handle is unchanged on error.
 * Since 0.1.0.
 */
MSC_API msc_status msc_options_set_int(msc_options *opts, const char *key, int64_t value);
MSC_API msc_status msc_options_set_float(msc_options *opts, const char *key, double value);
MSC_API msc_status msc_options_set_string(msc_options *opts, const char *key,
                                          const char *value);

/**
 * Sets a floats key (a list of floats, e.g. "modality.0.mean") to values[0..n); n = 0
 * (values may then be NULL) sets the empty list, which stands for the default. The
 * values are copied. msc_options_get_string and msc_options_to_json then give the text
 * form, each value written with "%.9g" (which reads back as the same float).
 * Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for NULL
 * opts or key, NULL values with n > 0, a key of another type, more than 1024 values,
 * a NaN or infinite value, or one outside the key's rule (std: > 0); the message names
 * the key and the value. The handle is unchanged on error. Since 0.2.0.
 */
MSC_API msc_status msc_options_set_floats(msc_options *opts, const char *key,
                                          const float *values, size_t n);

/**
 * Reads a key: the value set, else its default. For strings, buf receives up to cap-1
 * bytes and a NUL; *len (if not NULL) receives the full length without the NUL, so a
 * call with cap = 0 (buf may then be NULL) asks for the size.
 * Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for a key
 * of another type or NULL arguments; MSC_E_BUFFER_TOO_SMALL when cap <= the length
 * (buf then holds the truncated, NUL-terminated prefix if cap > 0).
 * Since 0.1.0.
 */
MSC_API msc_status msc_options_get_int(const msc_options *opts, const char *key, int64_t *out);
MSC_API msc_status msc_options_get_float(const msc_options *opts, const char *key, double *out);
MSC_API msc_status msc_options_get_string(const msc_options *opts, const char *key, char *buf,
                                          size_t cap, size_t *len);

/**
 * Reads a floats key: the values set (or parsed from the text set), else its default.
 * *n receives the number of values; when it is at most cap they are written to
 * out[0..*n), so a call with cap = 0 (out may then be NULL) asks for the count.
 * Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for a key
 * of another type, NULL opts, key or n, or NULL out with cap > 0;
 * MSC_E_BUFFER_TOO_SMALL when cap < *n (*n is set, out is untouched). Since 0.2.0.
 */
MSC_API msc_status msc_options_get_floats(const msc_options *opts, const char *key, float *out,
                                          size_t cap, size_t *n);

/**
 * Whether key has been set explicitly: *out = 1 if so, 0 if it holds its default.
 * Returns MSC_OK, MSC_E_NOT_FOUND or MSC_E_INVALID_ARGUMENT. Since 0.1.0.
 */
MSC_API msc_status msc_options_is_set(const msc_options *opts, const char *key, int32_t *out);

/**
 * Applies a JSON document (UTF-8, NUL-terminated) to opts: every member is set as by
 * the setters. Nested objects join keys with '.' ({"proj": {"dim": 64}} sets
 * "proj.dim"); an array of objects sets "<key>.count" and "<key>.<i>.*"
 * ({"modality": [{"name": "s2", "bands": 12}]}); an array of numbers becomes a
 * comma-separated string (integers as such, other numbers with "%.9g": the text form
 * of a floats key) and an array of strings a ';'-separated one.
 * The whole document is checked before anything is applied: on error opts is
 * unchanged and the message names the key (or the line and column of a syntax error).
 * Returns MSC_OK, MSC_E_BAD_FORMAT (not JSON), MSC_E_NOT_FOUND (unknown key),
 * MSC_E_INVALID_ARGUMENT (bad value, NULL arguments). Since 0.1.0.
 */
MSC_API msc_status msc_options_from_json(msc_options *opts, const char *json);

/**
 * Writes every key that is set as one JSON object (flat dotted keys, sorted) into
 * buf, with the same size protocol as msc_options_get_string.
 * Returns MSC_OK, MSC_E_BUFFER_TOO_SMALL, MSC_E_INVALID_ARGUMENT. Since 0.1.0.
 */
MSC_API msc_status msc_options_to_json(const msc_options *opts, char *buf, size_t cap,
                                       size_t *len);

/* ------------------------------------------------------------------------------ */
/* Models                                                                          */
/* ------------------------------------------------------------------------------ */

/*
 * An msc_model holds one ResNet encoder per modality, a projection head per modality,
 * the fused head over the concatenated features and a linear classifier (the model of
 * MoSAiC; see docs/model.md). It is configured by msc_options (keys above) and stored
 * as a safetensors file whose __metadata__ holds the configuration, so the weights
 * open in the Python ecosystem too.
 *
 * Thread safety: msc_embed and msc_predict may be called concurrently from any number
 * of threads on one model (each call uses an executor of its own from a pool). Every
 * other function that takes a non-const model needs exclusive access; const getters
 * may run concurrently with each other and with msc_embed / msc_predict.
 */
typedef struct msc_model msc_model;

/**
 * Creates a model from a configuration (NULL: every default, i.e. S1 2 bands + S2 12
 * bands, 120×120, ResNet-18 encoders, 19 classes) with seeded initialisation: the same
 * options give bit-identical weights. The run-time keys "backend" and "threads" choose
 * where it runs; an explicitly requested backend that is unusable is an error, never a
 * silent fallback (msc_model_backend says which one was chosen). "precision" and
 * "conv_algorithm" choose how it computes (docs/options.md): with "auto" (the default
 * since 0.5.0) the cpu backend runs float32 3×3 stride-1 convolutions of 64 channels and
 * more (in calls of 32 output tiles of 4×4 or more) as Winograd F(4×4, 3×3) where the
 * CPU has AVX-512, which rounds differently from the direct sum (differences of the
 * order of 1e-6 relative); "direct" keeps the direct sum of earlier versions.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (out is NULL, an inconsistent configuration:
 * the message names the key); MSC_E_BACKEND_UNAVAILABLE; MSC_E_NOT_FOUND (unknown
 * backend); MSC_E_OUT_OF_MEMORY. *out is untouched on error. Since 0.1.0.
 */
MSC_API msc_status msc_model_create(const msc_options *opts, msc_model **out);

/** Frees a model and everything it holds; NULL is accepted. Since 0.1.0. */
MSC_API void msc_model_free(msc_model *model);

/**
 * Saves the model (configuration, weights, BatchNorm running statistics) to path as
 * safetensors (float32). The save is atomic: the data goes to a temporary file in the
 * same directory, which is flushed to disk and renamed over path; if anything fails,
 * a file already at path is left as it was. A save never writes a file that
 * msc_model_load would refuse: a NaN or infinity in any tensor it would write (weights,
 * running statistics, a checkpoint's optimiser moments), or a negative variance, is
 * refused before anything is written (since 0.5.0; docs/model.md, "What saving checks").
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_IO (with the OS reason),
 * MSC_E_NUMERICAL (a tensor holds a NaN or infinity, or a negative variance: the
 * message names it and the index), MSC_E_OUT_OF_MEMORY. Not concurrent with training the same model. Since 0.1.0.
 */
MSC_API msc_status msc_model_save(const msc_model *model, const char *path);

/**
 * Loads a model saved by msc_model_save (or any safetensors file with the same tensor
 * names and a 'mosaic.config' entry in __metadata__; F32, F16, BF16 and F64 tensors
 * are accepted). runtime may be NULL or hold "backend", "threads", "precision" and
 * "conv_algorithm" (as for msc_model_create); other keys in it are ignored. Every length, offset, dtype and shape is validated before any data
 * is used; a truncated, corrupt or hostile file is refused with a message naming the
 * file and the problem, never a crash. Every value of every tensor it reads must be
 * finite: weights, running statistics and (since 0.5.0) a checkpoint's optimiser
 * moments optim.m1.* and optim.m2.*; a variance (BatchNorm's *.running_var, Adam's
 * optim.m2.*) must also not be negative (since 0.5.0).
 * Returns MSC_OK; MSC_E_IO (cannot read); MSC_E_BAD_FORMAT (corrupt or not a model, a
 * NaN or infinity in a tensor, a negative variance: the message names the tensor and
 * the index);
 * MSC_E_VERSION (a newer model format); MSC_E_UNSUPPORTED (a dtype it cannot read);
 * MSC_E_BACKEND_UNAVAILABLE; MSC_E_INVALID_ARGUMENT; MSC_E_OUT_OF_MEMORY.
 * *out is untouched on error. Since 0.1.0.
 */
MSC_API msc_status msc_model_load(const char *path, const msc_options *runtime,
                                  msc_model **out);

/**
 * A copy of the model's full configuration (every model key explicitly set, as stored
 * in its file); free it with msc_options_free. Use msc_options_to_json to print it.
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_OUT_OF_MEMORY. Since 0.1.0.
 */
MSC_API msc_status msc_model_options(const msc_model *model, msc_options **out);

/** Name of the backend the model runs on ("cpu", "cuda"); NULL for NULL. Since 0.1.0. */
MSC_API const char *msc_model_backend(const msc_model *model);

/** Number of modalities (0 for NULL). Since 0.1.0. */
MSC_API int32_t msc_model_modality_count(const msc_model *model);

/** Name of modality i, or NULL when out of range. Lives as long as the model. Since 0.1.0. */
MSC_API const char *msc_model_modality_name(const msc_model *model, int32_t i);

/**
 * Input shape of modality i: bands (channels) and patch size (height = width).
 * Returns MSC_OK, MSC_E_NOT_FOUND (i out of range), MSC_E_INVALID_ARGUMENT.
 * Since 0.1.0.
 */
MSC_API msc_status msc_model_modality_shape(const msc_model *model, int32_t i, int64_t *bands,
                                            int64_t *size);

/**
 * Name of band b of modality i as the model expects it ("B04", "VV"; option
 * modality.i.band_names, filled by msc_options_from_dataset), or NULL when the model has
 * no band names (made without a dataset, or from a file before 0.4.0), or for NULL or i
 * or b out of range. Lives as long as the model. Thread-safe. Since 0.4.0.
 */
MSC_API const char *msc_model_band_name(const msc_model *model, int32_t i, int64_t b);

/**
 * What band b of modality i expects: the raw value's conversion to the physical quantity,
 * physical = raw × *scale + *offset (options modality.i.scale / .offset; 1 and 0 when
 * not recorded), and the normalisation the model applies to the raw value,
 * (raw − *mean) / *std (modality.i.mean / .std). The model reads raw values: an input
 * given in physical units p converts back as raw = (p − offset) / scale (docs/model.md,
 * "Inputs"). All four outputs are required and written only on success.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i or b out of range).
 * Thread-safe. Since 0.4.0.
 */
MSC_API msc_status msc_model_band_info(const msc_model *model, int32_t i, int64_t b,
                                       double *scale, double *offset, double *mean,
                                       double *std);

/** Number of classes C (0 for NULL). Since 0.1.0. */
MSC_API int64_t msc_model_class_count(const msc_model *model);

/** Name of class i, or NULL when out of range. Lives as long as the model. Since 0.1.0. */
MSC_API const char *msc_model_class_name(const msc_model *model, int64_t i);

/**
 * Number of trainable values (weights, biases, BatchNorm scales and shifts; not the
 * running statistics), as PyTorch's sum(p.numel() for p in parameters()). 0 for NULL.
 * Since 0.1.0.
 */
MSC_API int64_t msc_model_parameter_count(const msc_model *model);

/**
 * Copies into dst every weight of src that dst has under the same name and with the same
 * shape — all of them, or those whose name starts with prefix (e.g. "enc." for the
 * encoders, "enc.s2." for one modality's encoder; NULL or "" for every tensor) — and sets
 * *copied to their number. Tensor names say where a weight sits
 * ("enc.<modality>.layer1.0.conv1.weight", docs/model.md), so an encoder moves to any
 * model with a modality of the same name and architecture, whatever its other
 * modalities, patch size or classes: a PIMC-pretrained "s2" encoder under a fresh EuroSAT
 * classifier, for instance. BatchNorm running statistics are copied with their layer.
 * Call it before training dst (optimiser moments are not touched).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, dst == src); MSC_E_SHAPE (a tensor of the
 * same name has another shape, named in the message: nothing is copied);
 * MSC_E_NOT_FOUND (no tensor matches); errors of the backends. dst and src may be on
 * different backends. Since 0.3.0.
 */
MSC_API msc_status msc_model_copy_weights(msc_model *dst, const msc_model *src,
                                          const char *prefix, int64_t *copied);

/**
 * Optimiser steps taken by the model: those of msc_train_step since it was created,
 * plus those recorded in the checkpoint it was loaded from. 0 for NULL and for a model
 * that was never trained. Since 0.1.0.
 */
MSC_API int64_t msc_model_step(const msc_model *model);

/* ------------------------------------------------------------------------------ */
/* Batches                                                                         */
/* ------------------------------------------------------------------------------ */

/*
 * An msc_batch holds the N samples of one call: one NCHW float32 array per modality
 * (raw values: the model applies its normalisation statistics), optional multi-hot
 * labels and per-sample "labelled" flags for training. The arrays are copied, so the
 * caller's buffers may be reused at once. A batch is not thread-safe, but once filled
 * it may be read by several concurrent msc_embed calls.
 */
typedef struct msc_batch msc_batch;

/** Creates an empty batch. Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_OUT_OF_MEMORY. Since 0.1.0. */
MSC_API msc_status msc_batch_create(msc_batch **out);

/** Frees a batch; NULL is accepted. Since 0.1.0. */
MSC_API void msc_batch_free(msc_batch *batch);

/** Number of samples N (0 while empty or for NULL). Since 0.1.0. */
MSC_API int64_t msc_batch_size(const msc_batch *batch);

/**
 * Sets (or replaces) the patches of the modality called name: n×c×h×w floats in NCHW
 * order, copied into the batch (the caller may reuse nchw at once). Every array of a
 * batch must have the same n. Whether c, h and w fit the model is checked by the call
 * that uses the batch (the error names the modality and the expected shape). The batch
 * keeps its storage: setting an array no larger than the one it held allocates nothing.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, an empty or too long name, more than 8
 * modalities); MSC_E_SHAPE (a non-positive size, or n differs from the batch's);
 * MSC_E_OUT_OF_MEMORY. Since 0.1.0.
 */
MSC_API msc_status msc_batch_set_modality(msc_batch *batch, const char *name, const float *nchw,
                                          int64_t n, int64_t c, int64_t h, int64_t w);

/**
 * Removes the patches of the modality called name from the batch (its storage is kept
 * for a later msc_batch_set_modality), e.g. to run a fused model without one modality
 * (docs/model.md, "Missing modalities"). Labels, flags and mask stay. Returns MSC_OK;
 * MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (the batch has no such modality).
 * Since 0.4.0.
 */
MSC_API msc_status msc_batch_remove_modality(msc_batch *batch, const char *name);

/** Number of modalities the batch holds (0 for NULL). Since 0.5.0. */
MSC_API int32_t msc_batch_modality_count(const msc_batch *batch);

/**
 * Name of the batch's modality i, 0 <= i < msc_batch_modality_count (in the order they
 * were set, or the dataset's order for a batch a dataset or loader filled), or NULL for
 * NULL or an index out of range. The string belongs to the batch and lives until the
 * batch's modalities change. Since 0.5.0.
 */
MSC_API const char *msc_batch_modality_name(const msc_batch *batch, int32_t i);

/**
 * Copies the patches of the modality called name (N×C×H×W float32 values, NCHW, sample
 * by sample: the raw values that were set, or that msc_dataset_fill_batch and
 * msc_loader_next read, before any normalisation) into out, and their C, H and W into
 * *c, *h and *w (each may be NULL). out may be NULL to ask for the shape only; then
 * out_len (a count of floats) is ignored. For plots, checks and augmentation of one's own.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (batch or name NULL); MSC_E_NOT_FOUND (no such
 * modality); MSC_E_BUFFER_TOO_SMALL (out_len < N×C×H×W; the shape is still set). out is
 * untouched on error. Since 0.5.0.
 */
MSC_API msc_status msc_batch_modality(const msc_batch *batch, const char *name, float *out,
                                      size_t out_len, int64_t *c, int64_t *h, int64_t *w);

/**
 * Sets multi-hot labels: n×c bytes, each 0 or 1 (row-major, sample by sample).
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT (NULL, a value other than 0/1), MSC_E_SHAPE,
 * MSC_E_OUT_OF_MEMORY. Since 0.1.0.
 */
MSC_API msc_status msc_batch_set_labels(msc_batch *batch, const uint8_t *multi_hot, int64_t n,
                                        int64_t c);

/**
 * Sets per-sample flags: non-zero = the sample's labels are known. Without flags every
 * sample of a batch with labels counts as labelled. Unlabelled samples feed only the
 * self-supervised loss terms.
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_SHAPE, MSC_E_OUT_OF_MEMORY. Since 0.1.0.
 */
MSC_API msc_status msc_batch_set_labeled(msc_batch *batch, const uint8_t *flags, int64_t n);

/**
 * Copies the batch's multi-hot labels (N×C bytes, sample by sample) into out and their
 * class count C into *classes (may be NULL). out may be NULL to ask for C only; then
 * out_len is ignored.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (batch NULL); MSC_E_NOT_FOUND (the batch has
 * no labels); MSC_E_BUFFER_TOO_SMALL (out_len < N×C; *classes is still set). out is
 * untouched on error. Since 0.1.0.
 */
MSC_API msc_status msc_batch_labels(const msc_batch *batch, uint8_t *out, size_t out_len,
                                    int64_t *classes);

/**
 * Copies the batch's labelled flags into out (N bytes): 1 for a sample whose labels the
 * supervised terms use, 0 for an unlabelled one (msc_batch_set_labeled, or a dataset
 * opened with data.labeled_fraction < 1); every sample is 0 when the batch has no labels.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_BUFFER_TOO_SMALL (out_len < N).
 * Since 0.3.0.
 */
MSC_API msc_status msc_batch_labeled(const msc_batch *batch, uint8_t *out, size_t out_len);

/**
 * Sets the batch's per-pixel label map (the target of segmentation): n×h×w int32 values,
 * row-major sample by sample, each a class index 0..K−1 or an ignore value for pixels
 * without a class. The batch stores the values as given; which value means "ignore" is
 * the convention of whoever uses the mask (a dataset declares its own: msc_dataset_mask_info,
 * −1 for every built-in format). A batch holds at most one mask, replaced by the next
 * call; its n must equal the batch's (its h and w need not match the patches'). The
 * storage is kept as for msc_batch_set_modality: a mask no larger than the last one
 * allocates nothing.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_SHAPE (a non-positive size, or n
 * differs from the batch's); MSC_E_OUT_OF_MEMORY. Since 0.3.0.
 */
MSC_API msc_status msc_batch_set_mask(msc_batch *batch, const int32_t *mask, int64_t n,
                                      int64_t h, int64_t w);

/**
 * Copies the batch's mask (N×H×W int32 values, sample by sample) into out and its height
 * and width into *h and *w (each may be NULL). out may be NULL to ask for the shape only;
 * then out_len is ignored. A batch filled by msc_dataset_fill_batch or msc_loader_next
 * has a mask when its dataset does (msc_dataset_mask_info), of mask_size × mask_size.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (batch NULL); MSC_E_NOT_FOUND (the batch has
 * no mask); MSC_E_BUFFER_TOO_SMALL (out_len < N×H×W; *h and *w are still set). out is
 * untouched on error. Since 0.3.0.
 */
MSC_API msc_status msc_batch_mask(const msc_batch *batch, int32_t *out, size_t out_len,
                                  int64_t *h, int64_t *w);

/* ------------------------------------------------------------------------------ */
/* Datasets                                                                        */
/* ------------------------------------------------------------------------------ */

/*
 * An msc_dataset is the list of samples of one dataset on disk — BigEarthNet v2
 * ("bigearthnet-v2"), BigEarthNet v1 with S1 ("bigearthnet-v1"), SEN12MS ("sen12ms"),
 * EuroSAT multispectral ("eurosat"), a TSV manifest of the user's own patches
 * ("manifest"), PASTIS Sentinel-2 time series ("pastis", since 0.3.0) or the user's own
 * time series of GeoTIFFs listed by date in a TSV ("series", since 0.3.0), Sen1Floods11
 * hand-labelled flood chips with per-pixel masks ("sen1floods11", since 0.3.0); docs/data.md
 * gives each layout — with its labels, read into batches on demand. Opening reads the metadata only (and checks that every file exists); pixels
 * are read by msc_dataset_fill_batch. Values are raw (reflectance, dB): the model
 * applies its normalisation statistics (modality.#.mean / .std), for which
 * msc_dataset_stats and msc_dataset_compute_stats give the numbers.
 *
 * Options (keys "data.*", see docs/options.md): data.split (train, validation, test or
 * all), data.fraction with seed (a stratified subset: the rest of the split is dropped),
 * data.labeled_fraction with seed (every sample kept, a stratified share labelled: the
 * low-label regime of MoSAiC, where the self-supervised terms see every sample and the
 * supervised ones the labelled share only), data.resample
 * (bilinear or nearest, for bands below the patch size), data.on_missing (fail or skip
 * patches with missing files), data.include_snow_cloud, data.metadata, data.s1_bands /
 * data.s2_bands (band selection and order), data.masks (the optional per-pixel masks:
 * BigEarthNet v2 reference maps, SEN12MS land cover; since 0.3.0).
 *
 * Time series (formats "pastis" and "series", docs/pimc.md): a sample is a pixel (data.sits.sample =
 * "pixel": data.sits.pixels drawn per patch, seeded, never a void pixel; labelled with
 * its one class) or a whole patch ("patch"). Its modalities are computed when it is read:
 * "rp", K × S × S recurrence plots of the vegetation indices data.sits.indices of the
 * pixel's series (the patch's mean series), and "s2", the C × P × P image around the
 * pixel (a composite or one date, data.sits.image). Every series is put on one time axis
 * of data.sits.length dates first (data.sits.time: "resample" onto a regular grid of
 * days by linear interpolation, or "pad" with missing dates); msc_dataset_series gives
 * it. The official folds map to splits by data.pastis.folds; the series manifest names
 * its bands with data.series.bands and its target classes with data.series.classes and
 * data.series.ignore.
 *
 * Thread safety: an open dataset is read-only; every function may be called
 * concurrently from any number of threads on the same dataset (each filling its own
 * batch). msc_dataset_free needs exclusive access.
 */
typedef struct msc_dataset msc_dataset;

/**
 * Opens the dataset of the given format under the directory root.
 * opts may be NULL (every default: BigEarthNet's train split, all bands, bilinear).
 * The samples are those of data.split (formats without splits need "all"), without the
 * excluded ones (BigEarthNet v2: seasonal snow, cloud or shadow unless
 * data.include_snow_cloud = 1), then, when data.fraction < 1, a subset of
 * round(fraction · n) samples drawn by iterative stratification (Sechidis et al. 2011)
 * seeded by "seed", so every class keeps its share: the same options give the same
 * samples in the same order.
 * A patch with a missing file fails the open (data.on_missing = "fail", the message
 * names the patch and the file) or is left out and counted (data.on_missing = "skip",
 * see msc_dataset_skipped); it is never zero-filled.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL root, format or out; an option of the
 * wrong type; a format without splits and data.split other than "all");
 * MSC_E_NOT_FOUND (an unknown format: the message lists them; a missing file with
 * on_missing = "fail"); MSC_E_IO (root or the metadata cannot be read: the message has
 * the path and the reason); MSC_E_BAD_FORMAT (malformed metadata: the message names the
 * line or the patch, e.g. an unknown class name); MSC_E_OUT_OF_MEMORY. *out is
 * untouched on error. Since 0.1.0.
 */
MSC_API msc_status msc_dataset_open(const char *root, const char *format,
                                    const msc_options *opts, msc_dataset **out);

/** Frees a dataset; NULL is accepted. Since 0.1.0. */
MSC_API void msc_dataset_free(msc_dataset *ds);

/** Number of samples (0 for NULL). Thread-safe. Since 0.1.0. */
MSC_API int64_t msc_dataset_size(const msc_dataset *ds);

/**
 * Number of patches left out at open because a file was missing (data.on_missing =
 * "skip"); 0 for NULL. Their ids go to the log callback at debug level. Since 0.1.0.
 */
MSC_API int64_t msc_dataset_skipped(const msc_dataset *ds);

/**
 * Number of samples whose labels the supervised terms see: all of them, unless the
 * dataset was opened with data.labeled_fraction < 1 (then a stratified share, the others
 * being marked unlabelled in every batch: msc_batch_labeled); 0 for a dataset without
 * labels and for NULL. Since 0.3.0.
 */
MSC_API int64_t msc_dataset_labeled_count(const msc_dataset *ds);

/** Number of classes C of the labels (0 for NULL). Since 0.1.0. */
MSC_API int64_t msc_dataset_class_count(const msc_dataset *ds);

/**
 * 1 when the dataset is single-label: every sample has exactly one class (EuroSAT; the
 * pixel samples of PASTIS and of a series manifest with targets), and models for it
 * should be trained with softmax cross-entropy and scored by accuracy
 * (msc_options_from_dataset sets the option labels = single). 0 for a multi-label
 * dataset (BigEarthNet, SEN12MS, patch samples of a time series, manifests: a manifest
 * whose rows happen to carry one label each is still 0; set labels = single yourself)
 * and for NULL.
 * Thread-safe. Since 0.3.0.
 */
MSC_API int32_t msc_dataset_single_label(const msc_dataset *ds);

/**
 * Name of class i (0 ≤ i < C), owned by the dataset and valid until msc_dataset_free;
 * NULL for NULL or i out of range. Since 0.1.0.
 */
MSC_API const char *msc_dataset_class_name(const msc_dataset *ds, int64_t i);

/**
 * Whether the dataset's samples carry a per-pixel label map (a mask, docs/data.md
 * "Masks"): Sen1Floods11 ("sen1floods11": not water / water); with the option
 * data.masks = 1, BigEarthNet v2 (the 19 classes from the CORINE reference maps) and
 * SEN12MS (the 10 simplified IGBP classes from the land-cover rasters). When they do,
 * msc_dataset_fill_batch and the loader put each sample's mask into the batch
 * (msc_batch_mask): size × size int32 values, each a class 0..classes−1 or ignore_index
 * for a pixel without a class (no data, a code outside the nomenclature, a NaN input
 * pixel where the format says so). ignore_index is −1 for every built-in format. The
 * mask's classes are their own list (msc_dataset_mask_class_name), which may differ from
 * the patch labels (msc_dataset_class_name): Sen1Floods11 has masks and no patch labels.
 * Any of classes, ignore_index and size may be NULL.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (ds NULL); MSC_E_NOT_FOUND (the samples have no
 * mask; outputs untouched). Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_dataset_mask_info(const msc_dataset *ds, int64_t *classes,
                                         int32_t *ignore_index, int64_t *size);

/**
 * Name of mask class i (0 ≤ i < the classes of msc_dataset_mask_info), owned by the
 * dataset and valid until msc_dataset_free; NULL for NULL, a dataset without masks or i
 * out of range. Thread-safe. Since 0.3.0.
 */
MSC_API const char *msc_dataset_mask_class_name(const msc_dataset *ds, int64_t i);

/** Number of modalities of each sample (0 for NULL). Since 0.1.0. */
MSC_API int32_t msc_dataset_modality_count(const msc_dataset *ds);

/**
 * Name of modality i ("s1", "s2", ...), the name its patches get in a batch; owned by
 * the dataset. NULL for NULL or i out of range. Since 0.1.0.
 */
MSC_API const char *msc_dataset_modality_name(const msc_dataset *ds, int32_t i);

/**
 * Bands and patch size (height = width, after resampling) of modality i.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i out of range).
 * Since 0.1.0.
 */
MSC_API msc_status msc_dataset_modality_shape(const msc_dataset *ds, int32_t i, int64_t *bands,
                                              int64_t *size);

/**
 * Name of band b of modality i ("B02", "VV", "NDVI"; the selection of data.s1_bands /
 * data.s2_bands in its order), owned by the dataset; NULL for a format without band
 * names (manifest), for NULL, or i or b out of range. Since 0.4.0.
 */
MSC_API const char *msc_dataset_band_name(const msc_dataset *ds, int32_t i, int64_t b);

/**
 * The unit of the values the dataset gives for band b of modality i: physical = value ×
 * *scale + *offset. Sentinel-2 digital numbers (BigEarthNet, EuroSAT, SEN12MS,
 * Sen1Floods11): scale 1e-4, offset 0 (reflectance); Sentinel-1 in dB: 1 and 0; series
 * and PASTIS: 1 / data.sits.scale and data.sits.offset / data.sits.scale (recurrence
 * plots: 1 and 0); manifest: 1 and 0 (unknown). Sentinel-2 dates of processing baseline
 * 04.00 or later are shifted back to the earlier convention when read (docs/data.md,
 * "Processing baselines"), so one scale and offset hold for every date.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i or b out of range).
 * Since 0.4.0.
 */
MSC_API msc_status msc_dataset_band_scale(const msc_dataset *ds, int32_t i, int64_t b,
                                          double *scale, double *offset);

/**
 * Writes the id of sample i (e.g. the BigEarthNet patch name) into buf with the size
 * protocol of msc_options_get_string: up to cap-1 bytes and a NUL; *len (if not NULL)
 * receives the full length, so cap = 0 (buf may then be NULL) asks for the size.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL ds, NULL buf with cap > 0, i out of
 * range); MSC_E_BUFFER_TOO_SMALL (cap ≤ the length; buf holds the truncated prefix).
 * Since 0.1.0.
 */
MSC_API msc_status msc_dataset_sample_id(const msc_dataset *ds, int64_t i, char *buf,
                                         size_t cap, size_t *len);

/**
 * The time series behind sample i of a time-series dataset ("pastis", "series"), on the
 * dataset's time axis (data.sits.time, data.sits.length): *t dates × *c bands into out
 * (row-major, date-major), in the files' units (PASTIS: L2A digital numbers). A pixel
 * sample gives its pixel's series, a patch sample the mean over the patch's pixels that
 * are not missing. NaN marks a missing value: a date masked as cloudy
 * (data.sits.cloud_blue), a padded date, a pixel with no valid date. days (NULL, or room
 * for *t values) receives each date as days since 1970-01-01 (the resampling grid; the
 * padded series' own dates, NaN for padding).
 * Call with out NULL and cap 0 to learn *t and *c.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL ds, t or c; out NULL with cap > 0; i out of
 * range); MSC_E_UNSUPPORTED (a format without time series); MSC_E_BUFFER_TOO_SMALL (cap
 * < t·c; nothing written); MSC_E_IO / MSC_E_BAD_FORMAT (the file, named). Thread-safe.
 * Since 0.3.0.
 */
MSC_API msc_status msc_dataset_series(const msc_dataset *ds, int64_t i, float *out, size_t cap,
                                      double *days, int64_t *t, int64_t *c);

/**
 * Reads samples indices[0..n) into batch: one n×bands×size×size float32 array per
 * modality, under the dataset's modality names (msc_batch_set_modality), and the n×C
 * multi-hot labels; the batch's "labelled" flags are cleared (every sample has labels).
 * Since 0.3.0 also the samples' masks when the dataset has them (msc_dataset_mask_info),
 * read into the batch's own storage; otherwise the batch is left without a mask.
 * A batch that held another number of samples is emptied first, so one batch can be
 * reused for every step. Samples are read on OpenMP threads; the result does not depend
 * on their number. Bands below the patch size are resampled (data.resample).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n ≤ 0, an index outside 0..size-1);
 * MSC_E_IO, MSC_E_BAD_FORMAT, MSC_E_UNSUPPORTED (a file cannot be read or decoded) and
 * MSC_E_NUMERICAL (a NaN or infinite pixel where the format allows none), each with a
 * message naming the sample and the file; MSC_E_OUT_OF_MEMORY. On error the batch is
 * left empty. Pixels are read straight into the batch's own arrays, reused from call to
 * call when the shapes fit. Thread-safe for distinct batches. Since 0.1.0.
 */
MSC_API msc_status msc_dataset_fill_batch(const msc_dataset *ds, const int64_t *indices,
                                          int64_t n, msc_batch *batch);

/**
 * The published per-band mean and standard deviation of modality i for the selected
 * bands in their order (BigEarthNet v2, SEN12MS: docs/data.md), written to mean[0..bands)
 * and std[0..bands).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i out of range, or no
 * published statistics for one of the selected bands, e.g. BigEarthNet's B01 and B09:
 * use msc_dataset_compute_stats); MSC_E_BUFFER_TOO_SMALL (cap < bands). Since 0.1.0.
 */
MSC_API msc_status msc_dataset_stats(const msc_dataset *ds, int32_t i, float *mean, float *std,
                                     size_t cap);

/**
 * Computes the per-band mean and (population) standard deviation of modality i over
 * max_samples samples spread evenly over the dataset (all of them when max_samples ≤ 0
 * or ≥ its size), after resampling, accumulated in double precision in sample order:
 * the result is the same for any thread count.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, an empty dataset); MSC_E_NOT_FOUND (i
 * out of range); MSC_E_BUFFER_TOO_SMALL (cap < bands); the errors of
 * msc_dataset_fill_batch for an unreadable file. Since 0.1.0.
 */
MSC_API msc_status msc_dataset_compute_stats(const msc_dataset *ds, int32_t i,
                                             int64_t max_samples, float *mean, float *std,
                                             size_t cap);

/* Where msc_options_from_dataset takes the normalisation statistics from (the stats
 * argument). Values are part of the ABI. Since 0.2.0. */
#define MSC_STATS_AUTO      0 /**< the published ones where the dataset has them, else computed */
#define MSC_STATS_PUBLISHED 1 /**< only the published ones (msc_dataset_stats) */
#define MSC_STATS_COMPUTED  2 /**< always computed (msc_dataset_compute_stats) */

/**
 * Sets the model keys that the dataset ds determines in opts, so that msc_model_create
 * builds a model for it: "modality.count"; per modality i "modality.i.name", ".bands"
 * and ".size"; "classes" and "class_names" (since 0.3.0, of a dataset without patch
 * labels but with masks, such as Sen1Floods11, the mask's classes:
 * msc_dataset_mask_info); since 0.3.0 the label mode "labels"
 * ("single" when msc_dataset_single_label(ds), else "multi") unless opts holds it
 * already; and the normalisation "modality.i.mean" and ".std" (as floats) unless opts
 * holds them already; since 0.4.0 the inputs' description: "modality.i.band_names"
 * (msc_dataset_band_name, left unset for a dataset without names) and ".scale" /
 * ".offset" (msc_dataset_band_scale). The statistics are the
 * published ones (stats = MSC_STATS_PUBLISHED), computed by msc_dataset_compute_stats
 * over stats_samples samples (0: all; MSC_STATS_COMPUTED), or the published ones where
 * the dataset has them and computed ones elsewhere (MSC_STATS_AUTO). A computed band
 * whose standard deviation is at most 1e-6 (a constant band) gets std 1. Other keys
 * (encoder, heads, training) are left as they are.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL opts or ds, an unknown stats value,
 * stats_samples < 0, a dataset value the options refuse); with MSC_STATS_PUBLISHED,
 * MSC_E_NOT_FOUND when a modality has no published statistics; the errors of
 * msc_dataset_compute_stats (reading the samples), each with a message naming the
 * modality; MSC_E_OUT_OF_MEMORY. opts is unchanged on error. Reads samples only to
 * compute statistics. Not thread-safe for opts (one thread per handle); ds may be used
 * by other threads. Since 0.2.0.
 */
MSC_API msc_status msc_options_from_dataset(msc_options *opts, const msc_dataset *ds,
                                            int32_t stats, int64_t stats_samples);

/**
 * Sets the learning-rate schedule of a training run of total_steps optimiser steps, for
 * the keys opts does not hold yet: "optim.total_steps" = total_steps (the length of the
 * cosine decay; without it the learning rate stays constant) and "optim.warmup_steps" =
 * total_steps / 20 when total_steps >= 20, else 0. A key already set is left as it is.
 * The tool's `mosaic train` (epochs × batches per epoch) and the Python Model.fit use
 * it, so both train with the same defaults (docs/training.md).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (opts NULL, total_steps < 1). opts is unchanged
 * on error. Since 0.5.0.
 */
MSC_API msc_status msc_options_default_schedule(msc_options *opts, int64_t total_steps);

/* ------------------------------------------------------------------------------ */
/* Data loader                                                                     */
/* ------------------------------------------------------------------------------ */

/*
 * An msc_loader hands out the batches of a dataset for training, epoch after epoch,
 * while background threads read, decode and resample the batches that come next, so
 * that reading overlaps training: msc_loader_next blocks only when the next batch is
 * not ready yet.
 *
 * Order. Epoch e visits every sample of the dataset once, in the order of a seeded
 * permutation (Fisher–Yates driven by the library's generator on the stream
 * "loader/epoch/<e>"): batch j of epoch e holds the samples at positions
 * j·batch_size … (j+1)·batch_size − 1 of that permutation. The sequence of batches
 * depends only on the dataset, batch_size, seed and drop_last — never on the number of
 * worker threads or on timing. Epochs go on forever (the caller decides when to stop).
 *
 * Threads. `workers` threads fill up to 2·workers batches ahead with
 * msc_dataset_fill_batch. They start in msc_loader_create and stop in msc_loader_free.
 * They block every signal, so the program's signal handlers run on its own threads.
 * Memory: the 2·workers batches read ahead, each as large as the caller's batch.
 *
 * Thread safety: a loader is used by one thread at a time (msc_loader_next is not
 * reentrant); distinct loaders are independent, even over one dataset. The dataset must
 * outlive the loader and must not be changed while it exists.
 */
typedef struct msc_loader msc_loader;

/**
 * Creates a loader over the samples of ds and starts its worker threads, which begin
 * reading the first batches at once.
 * ds: an open dataset (required); it must outlive the loader.
 * batch_size: samples per batch, >= 1.
 * seed: seeds the per-epoch permutations (any value).
 * workers: background threads, 0..64 (0 means 1).
 * drop_last: non-zero drops the last, smaller batch of every epoch, so that every
 *   batch has exactly batch_size samples (then the dataset needs at least batch_size
 *   samples); zero keeps it (an epoch has ceil(size / batch_size) batches).
 * out: receives the loader (required).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, batch_size < 1, workers out of range, an
 * empty dataset, or drop_last with fewer samples than batch_size); MSC_E_OUT_OF_MEMORY;
 * MSC_E_INTERNAL (a thread could not be started). *out is untouched on error.
 * Since 0.1.0.
 */
MSC_API msc_status msc_loader_create(msc_dataset *ds, int64_t batch_size, uint64_t seed,
                                     int32_t workers, int32_t drop_last, msc_loader **out);

/**
 * Creates a loader that hands out one rank's share of every batch of the loader
 * msc_loader_create(ds, batch_size, seed, workers, drop_last) would make, for
 * data-parallel training (msc_train_set_dist): the same global order, and of every
 * global batch of batch_size samples, rows floor(rank·batch_size/ranks) …
 * floor((rank+1)·batch_size/ranks) − 1 (batch_size/ranks rows each when it divides).
 * The ranks' shares concatenated in rank order are the global batch, so R ranks
 * reading with the same arguments train on what one process reads with ranks = 1.
 * Each rank reads only its own samples. msc_loader_batches_per_epoch counts global
 * batches.
 * rank, ranks: this process's share, 0 <= rank < ranks (msc_dist_rank, msc_dist_size);
 *   ranks = 1 is msc_loader_create.
 * drop_last: required (non-zero) when ranks > 1, so that every batch is full and
 *   every share has samples; batch_size >= ranks.
 * Returns what msc_loader_create returns, and MSC_E_INVALID_ARGUMENT for a rank out of
 * range, ranks > 1 without drop_last or batch_size < ranks. Since 0.5.0.
 */
MSC_API msc_status msc_loader_create_shard(msc_dataset *ds, int64_t batch_size, uint64_t seed,
                                           int32_t workers, int32_t drop_last, int32_t rank,
                                           int32_t ranks, msc_loader **out);

/**
 * Fills batch with the next batch: every modality of the dataset (bands × size × size
 * float32 per sample, raw values) and the multi-hot labels, as msc_dataset_fill_batch
 * does; whatever batch held before is replaced. Blocks until that batch is ready.
 * batch: a batch from msc_batch_create (required).
 * epoch: receives the epoch (0, 1, ...) the batch belongs to, or NULL.
 * Returns MSC_OK, or the error a worker met while reading this batch (MSC_E_IO,
 * MSC_E_BAD_FORMAT, ...: msc_last_error() holds the worker's message, naming the
 * sample and the file); MSC_E_INVALID_ARGUMENT (NULL). After an error, batch and *epoch
 * are untouched and the failed batch is skipped: the next call returns the batch after
 * it. Not thread-safe: one thread per loader. Since 0.1.0.
 */
MSC_API msc_status msc_loader_next(msc_loader *loader, msc_batch *batch, int64_t *epoch);

/**
 * Number of batches in one epoch of the loader: ceil(size / batch_size), or
 * floor(size / batch_size) with drop_last; 0 for NULL. Since 0.5.0.
 */
MSC_API int64_t msc_loader_batches_per_epoch(const msc_loader *loader);

/**
 * Stops the worker threads, waits for them (a batch being read is finished first, then
 * discarded) and frees the loader with every batch read ahead. NULL is accepted. May be
 * called at any point, mid-epoch with batches in flight. Since 0.1.0.
 */
MSC_API void msc_loader_free(msc_loader *loader);

/* ------------------------------------------------------------------------------ */
/* Synthetic datasets                                                              */
/* ------------------------------------------------------------------------------ */

/**
 * Writes a synthetic dataset of n patches in the on-disk layout of a real format, for
 * tests, benchmarks and demos, readable like the real thing (msc_dataset_open(dir,
 * "bigearthnet-v2", ...); NumPy or a PASTIS loader for "pastis"). Supported formats:
 * - "bigearthnet-v2" (docs/data.md): per patch the 12 Sentinel-2 bands as uint16 GeoTIFFs
 *   at their native sizes (120, 60 and 20 pixels), Sentinel-1 VV and VH as float32 dB
 *   120×120, and metadata.tsv (splits train/validation/test about 70/15/15 %, no snow or
 *   cloud). Each patch carries 1 to 3 of the 19 classes, each drawn as a region with a
 *   class-specific spectral signature, texture and backscatter, so that the labels can be
 *   learnt from the pixels.
 * - "pastis" (docs/pimc.md, "Synthetic time series"): satellite image time series in the
 *   PASTIS layout, patch id = 0..n−1: DATA_S2/S2_<id>.npy (int16 T × 10 × 32 × 32, bands
 *   B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 as L2A digital numbers, reflectance × 10000;
 *   T = 20..28 dates of 2019, varying by patch), ANNOTATIONS/TARGET_<id>.npy (uint8
 *   3 × 32 × 32: channel 0 the class, 0 background, 1..18 crops, 19 void; channels 1 and 2
 *   copies of it), INSTANCE_ANNOTATIONS/INSTANCES_<id>.npy (int64 32 × 32: parcel id, 0 for
 *   background) and metadata.geojson (a FeatureCollection, per patch ID_PATCH, Fold 1..5,
 *   TILE, N_Parcel, Parcel_Cover, dates-S2 {"0": YYYYMMDD, ...}, synth-cloudy-S2 the
 *   indices of the cloudy dates). A patch holds rectangular parcels of at least two crop
 *   classes whose NDVI follows a class-specific double-logistic curve, plus noise and a
 *   10–25 % share of cloudy dates (bright in every band).
 * - "sen1floods11" (docs/data.md, "Sen1Floods11"): hand-labelled flood chips, id
 *   <region>_<number>: S1Hand/<id>_S1Hand.tif (float32 VV, VH in dB, NaN where missing),
 *   S2Hand/<id>_S2Hand.tif (13 bands uint16, B1..B8, B8A, B9..B12),
 *   LabelHand/<id>_LabelHand.tif (int16: −1 no data, 0 not water, 1 water) and the split
 *   lists flood_train_data.csv, flood_valid_data.csv, flood_test_data.csv (about
 *   60/20/20 %). Rivers and flooded areas are dark in S1 (VV ≈ −20 dB) and have a high
 *   NDWI in S2; clouds (labelled −1) and NaN S1 pixels occur as in the real data. Chips
 *   are 512 × 512 like the real ones, or synth.size × synth.size (16..512) from opts.
 *   Since 0.4.0 every file is georeferenced like the real chips (EPSG:4326, a tie point
 *   and a 10 m pixel scale; the three files of a chip share one grid).
 * dir: the directory to write to, created if missing. It must be empty, or hold a
 *   dataset of the same format already (metadata.tsv, metadata.geojson: files of the same
 *   names are replaced); any other non-empty directory is refused, so user data is never
 *   overwritten.
 * format: "bigearthnet-v2", "pastis" or "sen1floods11". n: number of patches,
 *   1..1000000. seed: any value; the same seed and n give byte-identical files (whatever
 *   the number of threads). opts: NULL, or options of which "synth.size" is read
 *   (sen1floods11 only; other keys are ignored).
 * Every file is written under a temporary name and then renamed, and the metadata file
 * comes last: an interrupted call never leaves a truncated file under a final name.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n out of range, a non-empty directory
 * without the format's metadata file); MSC_E_UNSUPPORTED (another format); MSC_E_IO (the
 * message names the file); MSC_E_OUT_OF_MEMORY.
 * Thread-safe (calls writing to distinct directories are independent). Since 0.1.0;
 * "pastis" since 0.2.0; "sen1floods11" since 0.3.0.
 */
MSC_API msc_status msc_synth_write(const char *dir, const char *format, int64_t n,
                                   uint64_t seed, const msc_options *opts);

/* ------------------------------------------------------------------------------ */
/* Inference                                                                       */
/* ------------------------------------------------------------------------------ */

/* What msc_embed returns (the `which` argument). Values are part of the ABI. */
#define MSC_EMBED_FUSED            0 /**< h_f: concatenated encoder features (D_f) */
#define MSC_EMBED_FUSED_PROJECTION 1 /**< ẑ_f: unit-norm fused projection (P) */
/** h_i: encoder features of modality i (D_i). */
#define MSC_EMBED_MODALITY(i) (0x100 + (i))
/** ẑ_i: unit-norm projection of modality i (P). */
#define MSC_EMBED_MODALITY_PROJECTION(i) (0x200 + (i))

/**
 * Size of one sample's embedding for `which`.
 * Returns MSC_OK or MSC_E_INVALID_ARGUMENT (NULL, or `which` not valid for the model).
 * Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_model_embedding_size(const msc_model *model, int32_t which,
                                            int64_t *size);

/**
 * Computes embeddings of the batch's samples in inference mode (BatchNorm running
 * statistics) into out, N × size row-major (size from msc_model_embedding_size).
 * Only the modalities the chosen output needs must be in the batch: a single modality's
 * features need only that modality. The fused kinds take any non-empty subset of the
 * model's modalities (since 0.4.0; before, all of them): an absent modality's features
 * are zeros and the present ones are scaled by n_mod / n_present (docs/model.md,
 * "Missing modalities"), and the absent encoders do not run.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, empty batch, bad `which`);
 * MSC_E_NOT_FOUND (a needed modality is missing; for the fused kinds, none of the
 * model's modalities is in the batch); MSC_E_SHAPE (an array does not fit the
 * model: the message gives the expected shape); MSC_E_NUMERICAL (a NaN or infinite
 * pixel: the message says where; or, since 0.5.0, an output that is not finite because
 * finite inputs are so large, e.g. ±3e38, that the activations overflow float32: the
 * message names the function, the sample and the value; never MSC_OK with a NaN or an
 * infinity in out); MSC_E_BUFFER_TOO_SMALL (out_len < N × size);
 * MSC_E_OUT_OF_MEMORY; a backend error. out may be partly written on error.
 * Thread-safe: concurrent calls on one model are allowed and give the same results as
 * serial calls. Since 0.1.0.
 */
MSC_API msc_status msc_embed(msc_model *model, const msc_batch *batch, int32_t which,
                             float *out, size_t out_len);

/**
 * Calibrates a model of precision int8 (the runtime option precision = int8;
 * docs/precision.md, "int8"): runs the whole graph in float32 on batch (every modality
 * of the model present, N >= 1) and records, for the input of every convolution and
 * linear layer, the largest absolute value seen and whether any value was negative.
 * Calls accumulate (the ranges are maxima over every calibrated batch): a few
 * representative batches (e.g. 4 × 32 samples) are enough. Afterwards msc_embed,
 * msc_predict and msc_predict_mask compute those layers in 8-bit integers: input
 * quantised per tensor with the recorded range (u8 where no negative value was seen,
 * s8 otherwise; values beyond the range saturate), weights per output channel, batch
 * norm folded first. Before any calibration they return MSC_E_INVALID_ARGUMENT
 * ("calibrate first"). batch = NULL forgets every range: the model is uncalibrated
 * again. The ranges live in the model only: msc_model_save does not store them and a
 * copy or a reload needs its own calibration. Not thread-safe against other calls on
 * the same model (like msc_train_step). Returns MSC_OK; MSC_E_INVALID_ARGUMENT (model
 * NULL; the model's precision is not int8; an empty batch); the errors of msc_embed for
 * the batch (missing modality, shape, non-finite pixel); a failed call leaves the
 * ranges as they were. Since 0.5.0.
 */
MSC_API msc_status msc_model_calibrate(msc_model *model, const msc_batch *batch);

/**
 * Per-class probabilities of the classifier's logits on the fused features, N × C
 * row-major into probs (len >= N × C): for a multi-label model (option labels = multi,
 * the default) the sigmoid of every logit; for a single-label model (labels = single,
 * since 0.3.0) the softmax of each row, so that a row sums to 1 and its arg max is the
 * predicted class. The batch holds any non-empty subset of the model's modalities, the
 * fused features computed as msc_embed's (since 0.4.0; before, every modality).
 * Returns and thread safety as msc_embed: a logit that is not finite is MSC_E_NUMERICAL
 * (since 0.5.0), never MSC_OK with NaN probabilities. Since 0.1.0.
 */
MSC_API msc_status msc_predict(msc_model *model, const msc_batch *batch, float *probs,
                               size_t len);

/**
 * Per-pixel classes of a segmentation model (option task = segmentation;
 * docs/segmentation.md): runs the encoders and the U-Net decoder and writes the arg max
 * over the C classes of each pixel's logits into classes, N × H × W int32 values sample
 * by sample (H = W = the patch size; classes_len >= N × H × W; of equal maxima the
 * lowest class). With probs non-NULL (probs_len >= N × C × H × W) also the softmax over
 * the classes of every pixel, N × C × H × W (NCHW: a pixel's C values sum to 1); with
 * probs NULL, probs_len is not read. Every modality must be in the batch.
 * Returns MSC_E_INVALID_ARGUMENT (a NULL model, batch or classes; an empty batch; a
 * model without a decoder); MSC_E_BUFFER_TOO_SMALL; otherwise as msc_embed (a logit
 * that is not finite is MSC_E_NUMERICAL, since 0.5.0: classes is then untouched, probs
 * may be partly written). The outputs may be partly written on error. Thread safety as
 * msc_embed. Since 0.3.0.
 */
MSC_API msc_status msc_predict_mask(msc_model *model, const msc_batch *batch, int32_t *classes,
                                    size_t classes_len, float *probs, size_t probs_len);

/* ------------------------------------------------------------------------------ */
/* Scenes                                                                          */
/* ------------------------------------------------------------------------------ */

/*
 * An msc_scene maps a whole scene, any number of pixels, with a model trained on patches
 * (docs/scenes.md): one GeoTIFF per modality of the model, cut into tiles of the model's
 * patch size P, inferred in batches and stitched into a class map (and optionally the
 * class probabilities) written as tiled, compressed GeoTIFFs with the input's
 * georeferencing.
 *
 * Grid. The scene's grid is that of the finest raster (the widest). Every other raster
 * must cover the same extent at a resolution coarser by an integer factor f (its width
 * and height are the scene's divided by f); it is resampled to the scene's grid
 * (option scene.resample: "bilinear", the default, or "nearest"; pixel centres aligned
 * as in msc_dataset_fill_batch). When two files are georeferenced, their tie points must
 * agree and their pixel scales must differ by f, and their EPSG codes must match; any
 * other mismatch is refused. Every modality of the model needs the same patch size P.
 *
 * Tiles. Tiles of P × P pixels start every scene.stride pixels (0, the default: P, no
 * overlap; a smaller stride makes them overlap) in both directions; the last tile of a
 * row or column is shifted inward so that it ends at the raster's edge (a scene smaller
 * than P in either direction is refused). Overlaps are resolved by scene.blend:
 * "centre" (the default) takes each output pixel from the tile whose centre is nearest
 * to it (ties: the tile above or to the left), so that pixels near a tile's border,
 * which see less context, are used only where no other tile sees them better; "mean"
 * averages the class probabilities of every tile covering the pixel and takes the arg
 * max of the average. scene.batch tiles (default 8) go through the model at once.
 *
 * Models. A segmentation model (task = segmentation) gives per-pixel classes and
 * probabilities (msc_predict_mask). A classification model gives one probability vector
 * per tile (msc_predict): every pixel a tile provides (by the blend rule above) gets
 * that tile's probabilities and its arg max, a map at tile resolution drawn on the
 * pixel grid.
 *
 * Missing pixels. A pixel is missing when any band of any modality is NaN or equals its
 * file's GDAL nodata value (after resampling: a coarse pixel's neighbours count). Missing
 * pixels are given the band's normalisation mean (modality.i.mean, 0 without one) before
 * inference, so that a tile with some of them still runs, and are nodata in every output;
 * a tile with no valid pixel is not run at all.
 *
 * Memory is bounded by one row of tiles: per modality bands × P × width floats of input
 * (and the coarse rows it is resampled from), the batch, and one row of output tiles per
 * output; never the scene's size. Every input raster is read in windows (only the
 * strips or tiles the window crosses are decoded).
 *
 * Thread safety: a scene is used by one thread at a time; it borrows its model, which
 * must outlive it (other threads may run inference on the model meanwhile).
 */
typedef struct msc_scene msc_scene;

/**
 * Progress of a long call: done of total units (tiles) finished. Returning non-zero
 * cancels the call, which then returns MSC_E_CANCELLED. Called on the caller's thread.
 * Since 0.4.0.
 */
typedef int32_t (*msc_progress_fn)(int64_t done, int64_t total, void *user);

/**
 * Opens a scene: reads the layout and georeferencing of every raster (no pixels) and
 * checks that they fit the model and each other (above).
 * paths: n GeoTIFF paths, one per modality of the model, in the model's modality order
 *   (msc_model_modality_name); each raster's band count must be the modality's bands.
 *   A NULL path (at least one must not be) makes that modality absent: it is neither
 *   read nor put into the batches, and the outputs are what the model computes without
 *   it (fused embeddings and msc_predict accept any non-empty subset of modalities; a
 *   decoder or a per-modality embedding needing the absent one fails in msc_scene_write
 *   with that call's error).
 * n: msc_model_modality_count(model).
 * model: the model to map with (required); borrowed, it must outlive the scene.
 * opts: NULL (defaults) or options of which "scene.stride" (0: P; 1..P), "scene.batch"
 *   (1..1024), "scene.resample", "scene.blend", "scene.mask", "scene.max_masked",
 *   "scene.overviews", "scene.embedding_type" and "scene.harmonize" are read (other keys
 *   are ignored).
 *   scene.mask (since 0.4.0): a one-band GeoTIFF cloud / no-data mask on the scene's
 *   grid or coarser by an integer factor (nearest-neighbour upsampled), georeferenced
 *   like the rasters (checked as they are); a nonzero (or NaN) value masks the pixel.
 *   A tile whose masked share exceeds scene.max_masked (default 0.5) is not run (its
 *   pixels are nodata); in the other tiles masked pixels are treated as missing pixels
 *   (filled with the band means, nodata in the outputs). scene.overviews (default 1):
 *   the outputs get reduced-resolution overviews (nearest for the class map, average
 *   for probabilities and embeddings). scene.harmonize (since 0.5.0, default 1): a
 *   modality whose name starts with "s2" (any case) and whose raster is of Sentinel-2
 *   processing baseline 04.00 or later (PROCESSING_BASELINE in a metadata.json beside
 *   it, else the N<xxyy> field of a product name in its path, as the series reader
 *   decides) has 1000 subtracted from every value read, putting it in the convention of
 *   earlier baselines; 0 reads values as they are.
 * out: receives the scene (required).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, every path NULL, n other than the model's
 * modality count, a stride above P); MSC_E_IO / MSC_E_BAD_FORMAT (a raster cannot be read: the message
 * names it); MSC_E_SHAPE (a raster with the wrong band count, smaller than a tile, or
 * not on the scene's grid: named; a mask with more than one band or off the grid);
 * MSC_E_UNSUPPORTED (modalities with different patch sizes; georeferencing that cannot
 * be carried over, such as ground control points); MSC_E_OUT_OF_MEMORY. *out is
 * untouched on error. Since 0.4.0.
 */
MSC_API msc_status msc_scene_open(const char *const *paths, int32_t n, msc_model *model,
                                  const msc_options *opts, msc_scene **out);

/** Frees a scene (not its model); NULL is accepted. Since 0.4.0. */
MSC_API void msc_scene_free(msc_scene *scene);

/**
 * The scene's grid: width and height in pixels of the finest raster, which the outputs
 * have too, and the number of tiles the model will see (any of the outputs may be NULL).
 * Returns MSC_OK or MSC_E_INVALID_ARGUMENT (scene NULL). Since 0.4.0.
 */
MSC_API msc_status msc_scene_size(const msc_scene *scene, int64_t *width, int64_t *height,
                                  int64_t *tiles);

/**
 * Runs the model over the scene and writes the outputs, in one pass over the tiles:
 * mask_path (or NULL): the class map, one band, uint8 when the model has at most 255
 *   classes (nodata 255, a colour table), else uint16 (nodata 65535);
 * probs_path (or NULL): the class probabilities, C float32 bands (nodata NaN), band i
 *   described by class i's name.
 * At least one must be given. Both are GeoTIFFs of the scene's size, tiled 256 × 256,
 * DEFLATE-compressed, with the finest raster's georeferencing (GeoKeys copied, tie point
 * and pixel scale or transformation), the class names in GDAL metadata
 * (CLASS_<i> items) and band descriptions, and (scene.overviews, the default) overviews:
 * nearest for the class map, averaged for the probabilities. Since 0.5.0 each is a
 * Cloud-Optimised GeoTIFF (GDAL reports LAYOUT=COG: every IFD before the data, the
 * smallest overview's tiles first; docs/scenes.md), also without overviews. Each is
 * written through temporary files next to it and renamed into place only when complete:
 * an error or a cancellation leaves no file and an older file at the path untouched.
 * progress (or NULL) is called after every row of tiles with (tiles done, total);
 * returning non-zero cancels.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (scene NULL, both paths NULL or the same);
 * MSC_E_CANCELLED; MSC_E_IO (an output cannot be written, an input cannot be read: the
 * message names the file); MSC_E_BAD_FORMAT; the errors of msc_predict_mask /
 * msc_predict (among them MSC_E_NUMERICAL when finite but huge pixels overflow the
 * model's activations, since 0.5.0: no output is written rather than NaN probabilities
 * for pixels that are not missing); MSC_E_OUT_OF_MEMORY. Since 0.4.0.
 */
MSC_API msc_status msc_scene_write(msc_scene *scene, const char *mask_path,
                                   const char *probs_path, msc_progress_fn progress,
                                   void *user);

/**
 * Writes an embedding map: the model's embedding `which` (MSC_EMBED_FUSED, ...; as
 * msc_embed) of every tile, one output pixel per tile, at tile resolution. The tiles are
 * those at (i·S, j·S), S = scene.stride, for every i, j with the tile inside the scene
 * (no tile is shifted inward: (width − P) / S + 1 by (height − P) / S + 1 pixels, any
 * remainder narrower than S at the right and bottom edges is left out). Output pixel
 * (i, j) stands for the S × S centre block of its tile: its pixel size is S times the
 * scene's, its origin (P − S) / 2 scene pixels in from the scene's (msci_georef_window;
 * with the default stride the pixel is the tile's footprint). Its value is exactly what
 * msc_embed gives for that tile's window with missing pixels given the band means (as
 * msc_scene_write); a tile that does not run (no valid pixel, or a masked share above
 * scene.max_masked) is NaN in every band.
 * The file: size-of-embedding bands, float32 (or IEEE float16 with option
 * scene.embedding_type = float16, read by GDAL as Float32), nodata NaN, tiled 256 × 256,
 * DEFLATE, the scene's georeferencing moved to the tile grid, averaged overviews unless
 * scene.overviews = 0; written atomically as msc_scene_write's outputs. Progress counts
 * tiles of the map after each row.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (scene or path NULL, `which` not valid for the
 * model); MSC_E_CANCELLED; MSC_E_IO; the errors of msc_embed; MSC_E_OUT_OF_MEMORY.
 * Since 0.4.0.
 */
MSC_API msc_status msc_scene_write_embeddings(msc_scene *scene, const char *path, int32_t which,
                                              msc_progress_fn progress, void *user);

/* ------------------------------------------------------------------------------ */
/* Training                                                                        */
/* ------------------------------------------------------------------------------ */

/*
 * Training runs the MoSAiC objective (docs/training.md; the exact definitions are in
 * docs/losses.md): per modality, two augmented views of every sample pass through the
 * encoder as one batch; the loss terms NT-Xent (within a modality), InfoNCE (between
 * modalities), MulSupCon (multi-label supervised, on the fused or per-modality
 * projections) and BCE (classifier; softmax cross-entropy instead for single-label
 * training, option train.labels) are weighted by the preset's λ; then backward and
 * one AdamW (or SGD) update. The training keys of msc_options (docs/options.md):
 *   train.preset          "mosaic1" | "mosaic2" | "dual" | "simclr" | "iai" (since 0.5.0) |
 *                         "supervised" | "pimc"
 *   train.views           1 or 2 (the preset's)        train.freeze_encoders  0/1
 *   lambda.intra/.inter/.fused/.views/.bce   term weights (the preset's)
 *   tau.intra/.inter/.fused/.views           temperatures (0.1)
 *   mulsupcon.per_anchor  0/1                aug.*  augmentations
 *   train.modality_dropout  p in [0, 1] (0): per sample, each modality left out of the
 *                         fused features with probability p, never all (since 0.4.0)
 *   optim.kind ("adamw"/"sgd"), optim.lr, optim.weight_decay, optim.warmup_steps,
 *   optim.total_steps, optim.clip_norm, ...  the optimiser and its schedule
 * Unlabelled samples (no labels in the batch, or a 0 flag) feed only the
 * self-supervised terms. Augmentations are seeded by (seed, step, sample, view): the
 * same seed, data and thread count give bit-identical weights, and a checkpoint saved
 * with msc_model_save resumes exactly.
 */

/**
 * What one training step did. Set struct_size = sizeof(msc_step_result) before the call.
 * How the struct grows: new fields are only ever appended at the end, and
 * msc_train_step accepts any struct_size from the 0.1.0 size (offsetof(msc_step_result,
 * loss_seg), up to and including lr) on, writing only the fields that lie entirely
 * within struct_size bytes; nothing past struct_size is written. A caller built
 * against an older header so gets the fields it knows, one built against a newer
 * header gets the newer ones too. Since 0.1.0 (loss_seg, loss_dice since 0.4.0).
 */
typedef struct msc_step_result {
  uint32_t struct_size; /**< in: sizeof(msc_step_result) as the caller knows it */
  int32_t skipped;      /**< 1 when a non-finite loss, gradient or running statistic
                             skipped the update (running statistics since 0.5.0) */
  int64_t step;         /**< optimiser steps taken so far, after this call */
  double loss;          /**< the weighted total L */
  double loss_intra;    /**< L_intra (unweighted); 0 when its λ is 0 */
  double loss_inter;    /**< L_inter */
  double loss_fused;    /**< L_msc_fused */
  double loss_views;    /**< L_msc_views */
  double loss_bce;      /**< L_bce (softmax CE when training single-label) */
  double lr;            /**< learning rate used by this step */
  /** Per-pixel softmax cross-entropy of a segmentation model (unweighted); 0 when
   * lambda.seg is 0 or the model has no decoder. Since 0.4.0. */
  double loss_seg;
  /** Soft multi-class Dice loss of a segmentation model (unweighted, msc_loss_dice of the
   * decoder's probabilities); 0 when lambda.dice is 0. Since 0.4.0. */
  double loss_dice;
} msc_step_result;

/**
 * Sets the training configuration of a model from the training keys of opts (NULL:
 * defaults, i.e. preset mosaic1 with AdamW). msc_model_create already applies those of
 * its options, and msc_model_load those saved in a checkpoint; call this to change
 * them (fine-tuning, a linear probe). The step count and optimiser state are kept.
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT (a bad combination: the message names the
 * key), MSC_E_OUT_OF_MEMORY. Needs exclusive access to the model. Since 0.1.0.
 */
MSC_API msc_status msc_train_configure(msc_model *model, const msc_options *opts);

/**
 * Reinitialises the classification head (the parameters named "classifier.*") from
 * seed, exactly as msc_model_create would with options seed = seed, and restarts its
 * optimiser moments at zero; the encoders, projection heads and the step count are
 * untouched. This is the start of a linear probe or fine-tuning protocol: the head a
 * pre-training run learnt on all labels must not leak into a low-label evaluation.
 * Returns MSC_OK, MSC_E_INVALID_ARGUMENT (model NULL), MSC_E_OUT_OF_MEMORY, a backend
 * error. Needs exclusive access to the model. Since 0.1.0.
 */
MSC_API msc_status msc_model_reset_classifier(msc_model *model, uint64_t seed);

/**
 * One training step on a batch of N >= 2 samples with every modality of the model (and
 * labels for the supervised terms). On MSC_OK, *out holds the step's losses, learning
 * rate and step count.
 * Returns MSC_OK; MSC_E_NUMERICAL when the loss, a gradient or (since 0.5.0) a BatchNorm
 * running statistic the forward pass updated is not finite (finite pixels of 1e20 can
 * overflow a batch's variance while loss and gradients stay finite): the update
 * is skipped, the weights and running statistics are left exactly as they were, *out
 * is filled with skipped = 1, and training may go on with the next batch (a non-finite
 * input pixel also gives MSC_E_NUMERICAL, before anything runs, with *out untouched);
 * MSC_E_INVALID_ARGUMENT (NULL, struct_size below the 0.1.0 size, N < 2); MSC_E_NOT_FOUND (a
 * modality missing); MSC_E_SHAPE (arrays or labels that do not fit the model);
 * MSC_E_OUT_OF_MEMORY; a backend error. On errors other than a skipped step *out is
 * untouched. Needs exclusive access to the model (no concurrent msc_embed).
 * Since 0.1.0.
 */
MSC_API msc_status msc_train_step(msc_model *model, const msc_batch *batch,
                                  msc_step_result *out);

/* ------------------------------------------------------------------------------ */
/* Distributed (data-parallel) training                                            */
/* ------------------------------------------------------------------------------ */

/*
 * Data-parallel training over several processes (docs/distributed.md). Each process
 * ("rank") holds the same model, reads its own part of the global batch and calls
 * msc_train_step with it; the step then trains on the global batch, the
 * concatenation of the ranks' batches in rank order, as one process would:
 *  - the projections, fused projections, logits (and a segmentation model's logits
 *    and masks) of every rank are all-gathered, every rank evaluates every loss term
 *    on the global batch (global negatives; means over the global batch and over its
 *    labelled samples) and keeps the gradient rows of its own samples;
 *  - the parameters' gradients are summed over the ranks (all-reduce in buckets of
 *    4 Mi values, after the backward pass: not overlapped with it);
 *  - augmentations and modality dropout draw from the sample's index in the global
 *    batch, so the views do not depend on how the batch is split;
 *  - BatchNorm is local: each rank normalises with its own batch's statistics, and the
 *    running statistics are averaged over the ranks after every step (they stay
 *    identical everywhere). Only this differs from a single process on the global
 *    batch.
 * Every rank takes the same optimiser step, so the weights stay identical.
 *
 * The communicator is a module loaded at run time: "mpi" is libmosaic_mpi.so (built
 * where MPI is found), "nccl" libmosaic_nccl.so (built where NCCL, the CUDA runtime and
 * MPI are found), looked for in the directories of MSC_BACKEND_PATH and then next to
 * libmosaic; libmosaic itself never links MPI, NCCL or CUDA.
 *
 * Failures. Every collective waits at most the timeout (msc_dist_set_timeout; default
 * 300 s): a rank that died or stopped calling msc_train_step makes the others' calls
 * return MSC_E_COMM within that bound, naming the collective. The communicator is then
 * unusable (every later call returns MSC_E_COMM) and the program should exit with an
 * error; the library never aborts the job (no MPI_Abort). A failure of one rank
 * outside the library's collectives (its own files, say) reaches the others through
 * msc_dist_agree. A rank whose step fails
 * before the first gradient is exchanged (bad input) makes every rank's step fail with
 * MSC_E_COMM, its own with its own error.
 *
 * Thread safety: a communicator is used by one thread at a time, and every rank must
 * make the same sequence of calls (msc_train_set_dist, msc_train_step, msc_dist_barrier).
 */
typedef struct msc_dist msc_dist;

/**
 * Opens a communicator over the processes of a distributed run.
 * engine: "mpi" (required): the MPI module, libmosaic_mpi.so. MPI is initialised
 *   (MPI_Init_thread, MPI_THREAD_FUNNELED) unless the program already did, and
 *   finalised by msc_dist_free in that case. "nccl": the NCCL module,
 *   libmosaic_nccl.so, one GPU per rank (local rank modulo the visible devices); MPI
 *   starts it as for "mpi" (comm alike), the collectives are NCCL's, staged through
 *   device memory (docs/distributed.md, "GPU with NCCL"). Without a CUDA device it
 *   returns MSC_E_BACKEND_UNAVAILABLE before touching MPI.
 * comm: NULL for every process of the job (MPI_COMM_WORLD), or the address of an
 *   MPI_Comm of the program (a communicator it created), which is duplicated: the
 *   program keeps and frees its own.
 * out: receives the communicator (required).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (an unknown engine);
 * MSC_E_BACKEND_UNAVAILABLE (the module is missing or unusable: the message says where
 * it was looked for and why); MSC_E_COMM (MPI failed to start); MSC_E_OUT_OF_MEMORY.
 * *out is untouched on error. Not thread-safe (MPI initialisation). Since 0.5.0.
 */
MSC_API msc_status msc_dist_create(const char *engine, void *comm, msc_dist **out);

/** This process's rank, 0..size-1; 0 for NULL. Thread-safe. Since 0.5.0. */
MSC_API int32_t msc_dist_rank(const msc_dist *dist);

/** The number of processes; 1 for NULL. Thread-safe. Since 0.5.0. */
MSC_API int32_t msc_dist_size(const msc_dist *dist);

/**
 * Sets how long any collective may wait for the other ranks, in seconds (0: forever;
 * default 300). Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, negative or not finite).
 * Since 0.5.0.
 */
MSC_API msc_status msc_dist_set_timeout(msc_dist *dist, double seconds);

/**
 * Waits until every rank has called it (within the timeout). Returns MSC_OK;
 * MSC_E_INVALID_ARGUMENT (NULL); MSC_E_COMM. Since 0.5.0.
 */
MSC_API msc_status msc_dist_barrier(msc_dist *dist);

/**
 * Tells every rank whether every rank is fit to go on: a collective (every rank calls it
 * at the same point, within the timeout) for work that ranks do apart from the library's
 * collectives, such as rank 0 writing a log or a checkpoint. Without it, a rank that
 * fails there and ends its program leaves the others waiting in their next collective
 * until the timeout, and finalising MPI (msc_dist_free) on the failed rank waits for
 * them as well; with it, every rank learns of the failure at once and may then free the
 * communicator and exit (docs/distributed.md, "Failures").
 * mine: this rank's outcome, MSC_OK or the error it met. why: what went wrong, in a
 *   few words (NULL or "": the thread's msc_last_error() when mine is an error); only
 *   its first 255 bytes are sent.
 * failed: if not NULL, receives how many ranks passed an error once the agreement is
 *   made (0 with MSC_OK), or -1 when it could not be made (a collective failed).
 * Returns MSC_OK when every rank passed MSC_OK. Otherwise a rank that passed an error
 * gets it back (message: why); the others get MSC_E_COMM with a message naming the
 * lowest failed rank, its status and its why (and how many ranks failed). The
 * communicator stays usable after an agreement, whatever it says. MSC_E_INVALID_ARGUMENT
 * (dist NULL, or mine not a status of this library; nothing is sent); MSC_E_OUT_OF_MEMORY
 * (nothing is sent: the others time out); MSC_E_COMM with *failed = -1 (the collective
 * failed or timed out, or an earlier one did: the communicator is unusable). Since 0.5.0.
 */
MSC_API msc_status msc_dist_agree(msc_dist *dist, msc_status mine, const char *why,
                                  int32_t *failed);

/**
 * Seconds this process has spent in the communicator's collectives (waiting included)
 * since it was created: the communication share of training. 0 for NULL. Since 0.5.0.
 */
MSC_API double msc_dist_comm_seconds(const msc_dist *dist);

/**
 * Makes model's training data-parallel over dist (every rank calls it), or single-
 * process again with dist NULL. The parameters and running statistics of rank 0 are
 * broadcast to the others, so every rank starts from the same weights; every rank must
 * have a model of the same architecture (checked: MSC_E_SHAPE) and should configure
 * training identically (the seed and the step are checked by every msc_train_step:
 * MSC_E_INVALID_ARGUMENT). dist is borrowed: it must outlive the attachment (detach or
 * free the model first). msc_train_configure keeps the attachment.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (model NULL); MSC_E_SHAPE; MSC_E_COMM;
 * MSC_E_OUT_OF_MEMORY; a backend error. Since 0.5.0.
 */
MSC_API msc_status msc_train_set_dist(msc_model *model, msc_dist *dist);

/**
 * Closes the communicator (finalising MPI when msc_dist_create initialised it and no
 * collective failed; after a failure MPI is left as it is, since finalising would wait
 * for the lost ranks). NULL is accepted. Since 0.5.0.
 */
MSC_API void msc_dist_free(msc_dist *dist);

/* ------------------------------------------------------------------------------ */
/* Metrics                                                                         */
/* ------------------------------------------------------------------------------ */

/*
 * Multi-label evaluation metrics of N samples × C classes with scikit-learn's
 * definitions (docs/metrics.md), so that results compare with published numbers.
 * scores: N × C row-major, e.g. the probabilities of msc_predict (any finite value is
 * accepted; the Brier score assumes probabilities in [0, 1]). labels: N × C multi-hot
 * bytes, each 0 or 1. Predictions at a threshold t are ŷ = 1 where score ≥ t.
 *  - Average precision of a class: AP = Σ_k (R_k − R_{k−1}) P_k over the distinct score
 *    thresholds in decreasing order (tied scores form one threshold; no interpolation),
 *    as sklearn.metrics.average_precision_score. A class without any positive has no AP
 *    (NaN in msc_metrics_per_class).
 *  - F1 of a class: 2TP / (2TP + FP + FN), 0 when the denominator is 0 (a class with no
 *    positive and no predicted positive).
 *  - Hamming loss: the share of the N·C entries where ŷ ≠ y. Brier score: the mean of
 *    (score − y)² over the N·C entries.
 * Both functions validate every input before writing anything, run classes on OpenMP
 * threads and give bit-identical results for any thread count. They are thread-safe and
 * reentrant: concurrent calls are independent. Memory: N·C·8 bytes of scratch.
 */

/*
 * Indices into the array filled by msc_metrics_compute. Values are part of the ABI:
 * never renumbered or reused; new metrics are appended and MSC_METRIC_COUNT grows.
 */
#define MSC_METRIC_MACRO_AP 0 /**< mean AP over the classes with at least one positive */
#define MSC_METRIC_MICRO_AP 1 /**< AP of the flattened N·C problem; NaN without positives */
#define MSC_METRIC_MACRO_F1 2 /**< mean F1 over all C classes */
#define MSC_METRIC_MICRO_F1 3 /**< 2ΣTP / (2ΣTP + ΣFP + ΣFN) over all classes; 0 for 0/0 */
#define MSC_METRIC_HAMMING  4 /**< Hamming loss */
#define MSC_METRIC_BRIER    5 /**< Brier score */
/** Macro AP counting a class without positives as AP 0, over all C classes: the number
 *  sklearn's average_precision_score(average="macro") reports. */
#define MSC_METRIC_MACRO_AP_ZERO 6
/** Number of classes without any positive (left out of MSC_METRIC_MACRO_AP), as a
 *  double holding an integer. */
#define MSC_METRIC_SKIPPED_CLASSES 7
/** Number of metrics this header knows. Since 0.1.0. */
#define MSC_METRIC_COUNT 8

/**
 * Computes the summary metrics of scores against labels into out[0..out_len), indexed
 * by the MSC_METRIC_* values.
 * scores: N × C scores (required, finite). labels: N × C bytes, each 0 or 1 (required).
 * n: N >= 1. c: C >= 1. threshold: t for F1 and the Hamming loss (not NaN; 0.5 for
 *   probabilities).
 * out: receives the metrics (required unless out_len is 0). out_len: its length. With
 *   out_len < MSC_METRIC_COUNT only the first out_len metrics are written (a program
 *   built against an older header gets the metrics it knows); entries from the
 *   library's own count on, i.e. metrics of a newer header, are set to NaN. With
 *   out_len = 0 the inputs are only validated.
 * MSC_METRIC_MACRO_AP is NaN when no class has a positive; MSC_METRIC_MICRO_AP is NaN
 * when no entry is positive; MSC_METRIC_SKIPPED_CLASSES says how many classes the macro
 * AP left out (msc_metrics_per_class gives which: support 0).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL scores, labels or out; n or c <= 0, or
 * N·C too large; a NaN threshold; out_len < 0; a label other than 0 or 1: the message
 * names the index); MSC_E_NUMERICAL (a NaN or infinite score: the message names the
 * sample and the class); MSC_E_OUT_OF_MEMORY. out is untouched on error.
 * Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_metrics_compute(const float *scores, const uint8_t *labels, int64_t n,
                                       int64_t c, float threshold, double *out,
                                       int32_t out_len);

/**
 * Per-class metrics: for every class k = 0 .. C−1, ap[k] (NaN for a class without any
 * positive), f1[k], hamming[k] (the share of the N samples where ŷ ≠ y for class k),
 * brier[k] (the mean of (score − y)² over the N samples) and support[k] (the number of
 * positive samples).
 * scores, labels, n, c, threshold: as msc_metrics_compute.
 * ap, f1, hamming, brier, support: arrays of cap elements, each may be NULL (that
 *   metric is not computed; with ap NULL nothing is sorted); C values are written to
 *   each non-NULL one.
 * cap: the capacity of every non-NULL array, >= C.
 * Returns MSC_OK; MSC_E_BUFFER_TOO_SMALL (cap < C while an array is given);
 * MSC_E_INVALID_ARGUMENT, MSC_E_NUMERICAL and MSC_E_OUT_OF_MEMORY as
 * msc_metrics_compute. The arrays are untouched on error.
 * Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_metrics_per_class(const float *scores, const uint8_t *labels, int64_t n,
                                         int64_t c, float threshold, double *ap, double *f1,
                                         double *hamming, double *brier, int64_t *support,
                                         size_t cap);

/*
 * Single-label (multi-class) metrics: every sample (an image, a pixel) has one true
 * class and one predicted class, integers in [0, C). A confusion matrix is counted
 * first (msc_metrics_confusion: row = true class, column = predicted class, optionally
 * skipping an ignored "void" truth), and the summary metrics are derived from it
 * (msc_metrics_from_confusion), so matrices of several batches can be added before the
 * metrics are taken. With TP_k = M[k][k], FP_k = Σ_{i≠k} M[i][k], FN_k = Σ_{j≠k} M[k][j]:
 *  - accuracy = Σ_k M[k][k] / Σ M (sklearn.metrics.accuracy_score);
 *  - F1_k = 2TP_k / (2TP_k + FP_k + FN_k), IoU_k = TP_k / (TP_k + FP_k + FN_k);
 *  - macro F1 and mIoU are the means of F1_k and IoU_k over the classes PRESENT, i.e.
 *    occurring in the truth or in the predictions (TP_k + FP_k + FN_k > 0). This is
 *    scikit-learn's default label set of f1_score(average="macro") and
 *    jaccard_score(average="macro") (the sorted union of y_true and y_pred); a class
 *    absent from both has no F1 or IoU (NaN in the per-class arrays) and is left out.
 *    A class that is predicted but never true has F1 = IoU = 0 and counts.
 * docs/metrics.md ("Single-label metrics") has the details. Thread-safe, reentrant.
 */

/** ignore_index of msc_metrics_confusion that ignores no pair (INT32_MIN). Since 0.3.0. */
#define MSC_IGNORE_NONE (-2147483647 - 1)

/**
 * Counts the confusion matrix of n (prediction, truth) pairs.
 * pred, truth: n class indices each (required).
 * n: the number of pairs, >= 0. classes: C >= 1 (C·C must fit in memory).
 * ignore_index: pairs whose truth equals it are skipped (a void class: PASTIS's 19, 255,
 *   or Sen1Floods11's −1 no data — the same convention as the per-pixel losses);
 *   MSC_IGNORE_NONE ignores nothing. It may lie inside [0, C): the row of that
 *   class then stays 0, while predictions of it still count in its column (the metrics
 *   are then those of scikit-learn on the pairs kept).
 * confusion: C × C int64, row-major, row = true class, column = predicted class
 *   (required); overwritten (not accumulated into).
 * Every pair not skipped must have truth and prediction in [0, C).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (a NULL pointer, n < 0, C < 1 or too large, or
 *   a truth or prediction outside [0, C): the message names the row and the value).
 * confusion is untouched on error. Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_metrics_confusion(const int32_t *pred, const int32_t *truth, int64_t n,
                                         int64_t classes, int32_t ignore_index,
                                         int64_t *confusion);

/** Summary of a confusion matrix (msc_metrics_from_confusion). Set struct_size =
 *  sizeof(msc_class_metrics) before the call. Since 0.3.0. */
typedef struct msc_class_metrics {
  uint32_t struct_size; /**< in: sizeof(msc_class_metrics) as the caller knows it */
  int32_t present;      /**< classes occurring in the truth or the predictions */
  int64_t counted;      /**< pairs in the matrix (Σ M) */
  double accuracy;      /**< Σ_k M[k][k] / counted; NaN when counted = 0 */
  double macro_f1;      /**< mean F1 over the present classes; NaN when none */
  double miou;          /**< mean IoU over the present classes; NaN when none */
} msc_class_metrics;

/**
 * Accuracy, macro F1 and mean IoU of a C × C confusion matrix (row = true class, column
 * = predicted class, as msc_metrics_confusion writes it), with the conventions above.
 * confusion: C × C counts, each >= 0 (required). classes: C >= 1.
 * out: receives the summary (required; out->struct_size must be set by the caller).
 * per_class_f1, per_class_iou: C doubles each, or NULL: F1_k and IoU_k of every class,
 *   NaN for a class absent from both the truth and the predictions.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (a NULL confusion or out, C < 1 or too large,
 *   out->struct_size smaller than the 0.3 struct, a negative count or a total that
 *   overflows int64: the message names the entry). Outputs are untouched on error.
 * Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_metrics_from_confusion(const int64_t *confusion, int64_t classes,
                                              msc_class_metrics *out, double *per_class_f1,
                                              double *per_class_iou);

/**
 * Top-k accuracy of n rows of class scores (N × C, any monotone score: logits or
 * probabilities) against true class indices, as scikit-learn's top_k_accuracy_score: a
 * row counts as right when its true class is among the k highest-ranked classes, the
 * classes ranked by score with ties broken towards the larger class index (scikit-learn's
 * stable sort, reversed). k ≥ C gives 1. Rows whose truth is ignore_index are skipped
 * (MSC_IGNORE_NONE: none); *counted (may be NULL) receives the rows counted, and
 * *accuracy is NaN when none is.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n < 0, C < 1, k < 1, a truth outside
 * [0, C) that is not ignored, a NaN score: the message names the row). Outputs are
 * untouched on error. Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_metrics_top_k(const float *scores, const int32_t *truth, int64_t n,
                                     int64_t classes, int64_t k, int32_t ignore_index,
                                     double *accuracy, int64_t *counted);

/**
 * Regression errors of n predictions against n targets, over the m pairs whose truth
 * is finite (a NaN or infinite truth marks a missing target: the pair is skipped):
 *   MAE = (1/m) Σ |pred − truth|,   RMSE = sqrt((1/m) Σ (pred − truth)²),
 * accumulated in double. When no pair is counted (n = 0 or every truth non-finite),
 * both are NaN and the call succeeds.
 * pred, truth: n floats each (required). n >= 0.
 * mae, rmse: receive the values (each may be NULL, not both).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL pred or truth, both outputs NULL,
 *   n < 0); MSC_E_NUMERICAL (a NaN or infinite prediction where the truth is finite:
 *   the message names the row). Outputs are untouched on error.
 * Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_metrics_regression(const float *pred, const float *truth, int64_t n,
                                          double *mae, double *rmse);

/*
 * Cluster coherence of embeddings (docs/metrics.md, "Cluster coherence"): how well the
 * rows of an N × D float32 matrix x (one embedding per sample) group by class. group[i]
 * is sample i's class, any int32 ≥ 0 (not necessarily contiguous); a sample with a
 * negative group is left out entirely (neither scored nor a neighbour). Multi-label
 * samples are grouped first, e.g. with msc_metrics_group_by_label. Distances: the
 * MSC_DISTANCE_* values, in double, exactly 0 from a row to itself. O(N² D) time,
 * O(N) memory; rows run on OpenMP threads and the result does not depend on their
 * number. x must be finite (MSC_E_NUMERICAL names the first non-finite entry).
 */

#define MSC_DISTANCE_EUCLIDEAN 0 /**< ‖a − b‖₂ */
#define MSC_DISTANCE_COSINE    1 /**< 1 − a·b / (‖a‖‖b‖), clipped to [0, 2]; a zero row is at 1 */

/**
 * The mean silhouette coefficient, equal to scikit-learn's silhouette_score(x, group,
 * metric="euclidean" | "cosine") over the samples kept: for sample i, a = its mean
 * distance to the other members of its group, b = the smallest mean distance to the
 * members of another group, s = (b − a) / max(a, b) (0 when both are 0, and 0 for a
 * sample alone in its group); *score = the mean of s, in [−1, 1].
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x, group or score; n or d < 1; an
 * unknown metric; fewer than 2 groups, or as many groups as samples kept);
 * MSC_E_NUMERICAL; MSC_E_OUT_OF_MEMORY. *score is untouched on error. Thread-safe.
 * Since 0.5.0.
 */
MSC_API msc_status msc_metrics_silhouette(const float *x, int64_t n, int64_t d,
                                          const int32_t *group, int32_t metric, double *score);

/**
 * The kNN label purity: for every sample kept, the share of its k nearest other samples
 * (by the metric; ties towards the lower index) that are in its group; *purity = the
 * mean over the samples, in [0, 1] (chance level: Σ_g (n_g / N)², roughly).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x, group or purity; n or d < 1; an
 * unknown metric; k outside 1 .. samples kept − 1); MSC_E_NUMERICAL;
 * MSC_E_OUT_OF_MEMORY. *purity is untouched on error. Thread-safe. Since 0.5.0.
 */
MSC_API msc_status msc_metrics_knn_purity(const float *x, int64_t n, int64_t d,
                                          const int32_t *group, int64_t k, int32_t metric,
                                          double *purity);

/**
 * Groups multi-label samples for the cluster metrics: group[i] = the most specific of
 * sample i's labels, i.e. its positive class with the fewest positives among the n
 * samples (ties towards the lower class index), or −1 when it has none. (The frequent
 * classes of BigEarthNet co-occur with nearly everything; the rarest label is the one
 * that tells a sample apart.) labels: N × C multi-hot bytes, each 0 or 1.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n < 0, c < 1, a label other than 0 or
 * 1: the message names it); MSC_E_OUT_OF_MEMORY. Thread-safe. Since 0.5.0.
 */
MSC_API msc_status msc_metrics_group_by_label(const uint8_t *labels, int64_t n, int64_t c,
                                              int32_t *group);

/*
 * Projections of embeddings for pictures (docs/metrics.md, "Projections"): the rows of
 * an N × D float32 matrix x to N × k (PCA) or N × 2 (t-SNE) float32, row-major.
 * Deterministic: the same input gives the same bits.
 */

/** The largest N msc_project_tsne accepts (exact t-SNE keeps N² affinities). */
#define MSC_TSNE_MAX_SAMPLES 5000

/**
 * Principal component analysis: out = (x − mean) V, V the k leading eigenvectors of the
 * covariance (the principal axes, as scikit-learn's PCA(k).fit_transform(x) up to the
 * sign of each axis: here the largest-magnitude coordinate of each axis is positive).
 * variance: k doubles, or NULL: the variance along each axis (scikit-learn's
 * explained_variance_, divisor N − 1), in decreasing order.
 * k: 1 .. min(n, d, 56); min(n, d) ≤ 8192 (the dense min(n, d)² matrix it works on).
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x or out, n < 2, d < 1, k or min(n, d)
 * out of range); MSC_E_NUMERICAL (a non-finite entry); MSC_E_OUT_OF_MEMORY. Outputs
 * are untouched on error. Thread-safe. Since 0.5.0.
 */
MSC_API msc_status msc_project_pca(const float *x, int64_t n, int64_t d, int64_t k, float *out,
                                   double *variance);

/**
 * Exact t-SNE to 2-D, as scikit-learn's TSNE(perplexity, n_iter=iterations,
 * method="exact", init="pca", learning_rate="auto") computes it on squared Euclidean
 * distances (for cosine geometry, give unit-norm rows, e.g. MSC_EMBED_FUSED_PROJECTION),
 * without its early stop: every iteration runs. out: N × 2 floats.
 * perplexity: in (0, n) (scikit-learn's default: 30; 5–50 usual). iterations: ≥ 250
 * (the early exaggeration phase; 1000 is scikit-learn's default).
 * O(N²) memory and O(N²) time per iteration: n ≤ MSC_TSNE_MAX_SAMPLES.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x or out, n < 2, d < 1, n above the cap,
 * perplexity or iterations out of range); MSC_E_NUMERICAL (a non-finite entry, or a
 * diverged optimisation); MSC_E_OUT_OF_MEMORY. Thread-safe. Since 0.5.0.
 */
MSC_API msc_status msc_project_tsne(const float *x, int64_t n, int64_t d, double perplexity,
                                    int64_t iterations, float *out);

/* ------------------------------------------------------------------------------ */
/* Loss functions                                                                  */
/* ------------------------------------------------------------------------------ */

/*
 * The terms of the MoSAiC objective as plain functions of host arrays, with the exact
 * gradient, for use outside msc_train_step (custom training loops, tests, checks of
 * other implementations). They compute exactly what msc_train_step uses (docs/losses.md).
 *
 * Common rules:
 *  - Embeddings are given UNNORMALISED, row-major float32. Each function normalises
 *    every row, ẑ = z / max(‖z‖₂, 1e-12), with similarities s(u,v) = û·v̂ / τ, and the
 *    gradients are with respect to the unnormalised inputs (through the normalisation
 *    Jacobian (I − ẑẑᵀ)/‖z‖; below the 1e-12 floor, I/1e-12).
 *  - Labels are multi-hot bytes, row-major, each 0 or 1.
 *  - *loss is required. A gradient pointer may be NULL (that gradient is not
 *    computed); a non-NULL one receives as many floats as its input array, is
 *    overwritten (not accumulated into) and must not overlap any input or the other
 *    gradient.
 *  - Log-sum-exp with the row maximum subtracted throughout, in double precision:
 *    finite inputs give finite results, even with τ = 0.01 and identical embeddings.
 *  - Common statuses: MSC_E_INVALID_ARGUMENT (a NULL required pointer, a size <= 0 or
 *    too large, τ not finite or <= 0, a label other than 0 or 1: the message names the
 *    argument); MSC_E_NUMERICAL (a NaN or infinite input: the message names the array
 *    and the index; or a loss or gradient too large for float, possible only for
 *    extremely small τ and norms); MSC_E_OUT_OF_MEMORY (O(K²) doubles of scratch).
 *    On error *loss and the gradients are untouched.
 *  - Thread-safe and reentrant: concurrent calls are independent. Work is spread over
 *    OpenMP threads; results are bit-identical for any number of threads.
 */

/**
 * NT-Xent (SimCLR) loss over the 2N views u_1..u_2N = (rows of za, then rows of zb),
 * each of za and zb N × D; the positive of u_i is pos(i) = i ± N (the other view of the
 * same sample):
 *   l_i = −s(u_i, u_pos(i)) + log Σ_{k≠i} exp s(u_i, u_k),   *loss = (1/2N) Σ_i l_i.
 * za, zb: N × D unnormalised embeddings of view a and view b (required).
 * n: N >= 1. d: D >= 1. tau: temperature τ > 0 (finite).
 * loss: receives the value (required). grad_a, grad_b: N × D each, ∂loss/∂za and
 * ∂loss/∂zb, or NULL.
 * Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_loss_ntxent(const float *za, const float *zb, int64_t n, int64_t d,
                                   float tau, float *loss, float *grad_a, float *grad_b);

/**
 * Symmetric InfoNCE (CLIP-style) loss between two sets of N paired embeddings:
 *   S_ij = s(p_i, q_j) (an N × N matrix),
 *   CE(S) = (1/N) Σ_i [ −S_ii + log Σ_j exp S_ij ],   *loss = ½ [CE(S) + CE(Sᵀ)].
 * zp, zq: N × D unnormalised embeddings; row i of zp and row i of zq are the pair
 * (required). n: N >= 1. d: D >= 1. tau: temperature τ > 0 (finite).
 * loss: receives the value (required). grad_p, grad_q: N × D each, or NULL.
 * Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_loss_infonce(const float *zp, const float *zq, int64_t n, int64_t d,
                                    float tau, float *loss, float *grad_p, float *grad_q);

/**
 * MulSupCon (multi-label supervised contrastive) loss over K embeddings e_1..e_K with
 * multi-hot labels y. Every anchor i and every class c with y_ic = 1 make one row
 * r = (i, c) with positives P_r = { j ≠ i : y_jc = 1 }; rows with P_r empty are skipped:
 *   loss_r = −(1/|P_r|) Σ_{p∈P_r} [ s(e_i, e_p) − log Σ_{j≠i} exp s(e_i, e_j) ],
 *   *loss = (1/R) Σ_r loss_r over the R rows kept.
 * A key sharing several labels with the anchor counts once per shared label. A sample
 * without any label is a key (in every denominator) but never an anchor. With
 * per_anchor_weight != 0, rows are weighted per anchor instead:
 *   *loss = Σ_r loss_r / (|y_i|·K_a),
 * |y_i| = Σ_c y_ic (every label of the anchor, even those whose row is skipped),
 * K_a = the number of anchors with at least one row. When R = 0, *loss = 0 and the
 * gradient is zero.
 * e: K × D unnormalised embeddings (required). y: K × C labels, each 0 or 1 (required).
 * k: K >= 1. d: D >= 1. c: C >= 1. tau: temperature τ > 0 (finite).
 * per_anchor_weight: 0 for the mean over rows, non-zero for per-anchor weights.
 * loss: receives the value (required). grad: K × D, ∂loss/∂e, or NULL.
 * Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_loss_mulsupcon(const float *e, const uint8_t *y, int64_t k, int64_t d,
                                      int64_t c, float tau, int32_t per_anchor_weight,
                                      float *loss, float *grad);

/**
 * Binary cross-entropy with logits, averaged over all N × C entries:
 *   *loss = (1/(N·C)) Σ_ij [ max(x_ij, 0) − x_ij·y_ij + log(1 + e^{−|x_ij|}) ],
 *   grad_ij = (σ(x_ij) − y_ij) / (N·C),   σ(x) = 1/(1 + e^{−x}).
 * Exact for any finite logit (no overflow for large |x|).
 * logits: N × C (required). y: N × C targets, each 0 or 1 (required).
 * n: N >= 1. c: C >= 1. loss: receives the value (required).
 * grad: N × C, ∂loss/∂logits, or NULL.
 * Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
 */
MSC_API msc_status msc_loss_bce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                                float *loss, float *grad);

/**
 * Single-label softmax cross-entropy over the logits of N samples × C classes, each row
 * of y one-hot (exactly one 1, at the true class t_i), averaged over the N rows:
 *   *loss = (1/N) Σ_i [ −x_{i,t_i} + log Σ_j exp x_ij ],
 *   grad_ij = (p_ij − [j = t_i]) / N,   p_i = softmax(x_i).
 * Log-sum-exp with the row maximum subtracted, in double: exact for any finite logit.
 * This is the classification term of single-label training (train.labels = single,
 * docs/losses.md).
 * logits: N × C (required). y: N × C one-hot targets (required). n: N >= 1. c: C >= 1.
 * loss: receives the value (required). grad: N × C, ∂loss/∂logits, or NULL.
 * Returns MSC_OK or a common status (above); a row of y without exactly one 1 is
 * MSC_E_INVALID_ARGUMENT naming the row. Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_loss_softmax_ce(const float *logits, const uint8_t *y, int64_t n,
                                       int64_t c, float *loss, float *grad);

/*
 * Per-pixel losses (segmentation; docs/losses.md, "Per-pixel losses"). Logits are
 * N × C × H × W float32 in NCHW order (C classes or K channels per pixel), grad has the
 * same shape and is 0 at every pixel not counted. All sums are in double, log-sum-exp
 * stable; the value is a mean over the pixels counted, and when none is counted *loss is
 * 0 and the gradient is zero (not NaN, unlike PyTorch's mean over nothing).
 */

/**
 * Per-pixel softmax cross-entropy against class indices, PyTorch's
 * F.cross_entropy(logits, target, weight=class_weight, ignore_index=ignore_index,
 * reduction="mean"): at pixel p with target t_p,
 *   l_p = −x_{t_p,p} + log Σ_j exp x_{j,p},
 *   *loss = Σ_p w_{t_p} l_p / Σ_p w_{t_p}   over the counted pixels (t_p ≠ ignore_index),
 *   grad_{j,p} = w_{t_p} (softmax_j(x_p) − [j = t_p]) / Σ_p w_{t_p},
 * with w = class_weight (all 1 when NULL: then the plain mean over counted pixels).
 * Σ w = 0 (no counted pixel, or only classes of weight 0): *loss = 0, zero gradient.
 * logits: N × C × H × W (required). target: N × H × W class indices (required), each in
 * [0, C) or equal to ignore_index (−1 is the usual choice; a value in [0, C) ignores that
 * class). n, c, h, w: N, C, H, W >= 1. class_weight: C weights, finite and >= 0, or NULL.
 * loss: receives the value (required). grad: N × C × H × W, ∂loss/∂logits, or NULL.
 * Returns MSC_OK or a common status (above); a target outside [0, C) other than
 * ignore_index is MSC_E_INVALID_ARGUMENT naming the image, y and x. Thread-safe.
 * Since 0.3.0.
 */
MSC_API msc_status msc_loss_pixel_ce(const float *logits, const int32_t *target, int64_t n,
                                     int64_t c, int64_t h, int64_t w, int32_t ignore_index,
                                     const float *class_weight, float *loss, float *grad);

/**
 * Per-pixel binary cross-entropy with logits against soft targets, PyTorch's
 * BCEWithLogitsLoss(pos_weight=pos_weight, reduction="mean") over the counted elements:
 *   l = −pw_k·y·log σ(x) − (1 − y)·log(1 − σ(x))   (stable for any finite x),
 *   *loss = mean of l over the counted elements (mask ≠ 0),
 *   grad = ((1 + (pw_k − 1)·y)·σ(x) − pw_k·y) / counted,
 * pw_k the positive weight of channel k (1 when pos_weight is NULL). One channel (K = 1)
 * is a binary map (water / no water); K > 1 is multi-label per pixel.
 * logits: N × K × H × W (required). target: N × K × H × W, each in [0, 1] where counted
 * (required). mask: N × K × H × W bytes, 0 = not counted (its target is not read), or NULL
 * (all counted). n, k, h, w: N, K, H, W >= 1. pos_weight: K weights, finite and >= 0, or
 * NULL. loss: receives the value (required). grad: N × K × H × W, or NULL.
 * Returns MSC_OK or a common status (above); a target outside [0, 1] is
 * MSC_E_INVALID_ARGUMENT naming the element. Thread-safe. Since 0.3.0.
 */
MSC_API msc_status msc_loss_pixel_bce(const float *logits, const float *target,
                                      const uint8_t *mask, int64_t n, int64_t k, int64_t h,
                                      int64_t w, const float *pos_weight, float *loss,
                                      float *grad);

/**
 * Soft Dice loss on the per-pixel softmax p = softmax over C of the logits, against
 * class indices. Over the counted pixels (target ≠ ignore_index) of the whole batch, for
 * each class j: I_j = Σ p_j·[t = j], P_j = Σ p_j, G_j = Σ [t = j], and
 *   *loss = 1 − (1/|S|) Σ_{j∈S} (2 I_j + ε) / (P_j + G_j + ε),   ε = 1,
 * averaged over S, the classes present in the counted targets (G_j > 0): a class absent
 * from the batch is not averaged (its ratio would be ε/(P_j + ε), rewarding it for
 * predicting nothing). grad: ∂loss/∂logits through the softmax; 0 at ignored pixels.
 * No counted pixel: *loss = 0, zero gradient. Arguments as msc_loss_pixel_ce (without
 * class weights); C = 1 gives loss 0 (p = 1, D = 1) and a zero gradient.
 * Returns MSC_OK or a common status (above); errors as msc_loss_pixel_ce. Thread-safe.
 * Since 0.3.0.
 */
MSC_API msc_status msc_loss_dice(const float *logits, const int32_t *target, int64_t n,
                                 int64_t c, int64_t h, int64_t w, int32_t ignore_index,
                                 float *loss, float *grad);

/* ------------------------------------------------------------------------------ */
/* Satellite image time series: vegetation indices, recurrence plots               */
/* ------------------------------------------------------------------------------ */

/*
 * Vegetation and water indices of Sentinel-2 images, and recurrence plots of a pixel's
 * index series (the inputs of PIMC's pixel encoder), as plain functions of host arrays
 * (docs/pimc.md has the formulas, the policies and the percentile definition).
 *
 * Arrays are float32, row-major. A series is T × C × P: T dates, C bands, P pixels per
 * band (a T × C × H × W array such as PASTIS's DATA_S2 is the case P = H·W; a single
 * image is T = 1). Values are digital numbers; a band table (msc_vi_bands) says which
 * channel holds which band and how they become reflectances ρ:
 *   ρ = (DN + offset) / scale      (scale 10000, offset 0 for PASTIS; offset −1000 for
 *                                   products of processing baseline 04.00 or later).
 * Indices, computed in double and rounded to float once:
 *   NDVI = (ρ8 − ρ4) / (ρ8 + ρ4)
 *   EVI  = 2.5 (ρ8 − ρ4) / (ρ8 + 6 ρ4 − 7.5 ρ2 + 1)
 *   SAVI = 1.5 (ρ8 − ρ4) / (ρ8 + ρ4 + 0.5)
 *   NDWI = (ρ3 − ρ8) / (ρ3 + ρ8)          (McFeeters: green / NIR)
 *   NBR  = (ρ8 − ρ12) / (ρ8 + ρ12)
 * Invalid values: an index is NaN, and its valid flag 0, where a band it uses is not
 * finite, where its denominator's magnitude is below 1e-12, or where the value does not
 * fit a float; otherwise it is finite and its flag 1. No clamp is applied.
 * Both functions validate every input before writing anything (outputs are untouched on
 * error; the message names the argument), keep no state, and are thread-safe and
 * reentrant. Results are bit-identical for any number of threads.
 */

/*
 * Index kinds. Values are part of the ABI: never renumbered or reused; new kinds are
 * appended and MSC_VI_COUNT grows. Since 0.2.0.
 */
#define MSC_VI_NDVI 0 /**< normalised difference vegetation index (B8, B4) */
#define MSC_VI_EVI  1 /**< enhanced vegetation index (B8, B4, B2) */
#define MSC_VI_SAVI 2 /**< soil-adjusted vegetation index, L = 0.5 (B8, B4) */
#define MSC_VI_NDWI 3 /**< normalised difference water index, McFeeters (B3, B8) */
#define MSC_VI_NBR  4 /**< normalised burn ratio (B8, B12) */
/** Number of index kinds this header knows. Since 0.2.0. */
#define MSC_VI_COUNT 5

/**
 * A band table: the channel of each band an index may need (−1: absent; only the bands
 * the index uses must be present, in [0, C)), and the reflectance scale and offset.
 * Set struct_size = sizeof(msc_vi_bands). The PASTIS DATA_S2 table (bands B2, B3, B4,
 * B5, B6, B7, B8, B8A, B11, B12 as channels 0..9) is b2 0, b3 1, b4 2, b8 6, b12 9,
 * scale 10000, offset 0; passing NULL for a table means that one. Since 0.2.0.
 */
typedef struct msc_vi_bands {
  uint32_t struct_size; /**< in: sizeof(msc_vi_bands) as the caller knows it */
  int32_t b2;           /**< channel of B2 (blue), or −1 */
  int32_t b3;           /**< channel of B3 (green), or −1 */
  int32_t b4;           /**< channel of B4 (red), or −1 */
  int32_t b8;           /**< channel of B8 (near infrared), or −1 */
  int32_t b12;          /**< channel of B12 (short-wave infrared), or −1 */
  double scale;         /**< ρ = (DN + offset) / scale; finite and > 0 */
  double offset;        /**< finite; 0, or −1000 for processing baseline >= 04.00 */
} msc_vi_bands;

/**
 * Computes index kind over a T × C × P series x: out[t·P + p] for every date t and
 * pixel p (T × P floats), NaN where invalid (above).
 * kind: an MSC_VI_* value. x: T × C × P digital numbers (required; any value, a NaN or
 * infinite one makes the indices using it invalid). t: T >= 1. c: C >= 1. p: P >= 1
 * (T·C·P must fit int64_t). bands: the band table, or NULL for the PASTIS one.
 * out: T × P floats (required). valid: T × P bytes, 1 where out is finite and 0 where it
 * is NaN, or NULL.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x or out; a size < 1 or too large; an
 * unknown kind; bands->struct_size too small; a band the index needs absent or out of
 * range; a scale not finite or <= 0, an offset not finite). out and valid are untouched
 * on error. Thread-safe. Since 0.2.0.
 */
MSC_API msc_status msc_vegetation_index(int32_t kind, const float *x, int64_t t, int64_t c,
                                        int64_t p, const msc_vi_bands *bands, float *out,
                                        uint8_t *valid);

/**
 * Parameters of recurrence plots. Set struct_size = sizeof(msc_rp_params).
 * A plot of a series x_1..x_T is the T × T matrix R_ij = |x_i − x_j| (continuous), or
 * R_ij = Θ(ε − |x_i − x_j|) with Θ(0) = 1 (binary), where ε is eps itself or, with
 * eps_is_percentile, the eps-th percentile (numpy's linear definition) of the T(T−1)/2
 * off-diagonal distances of that series; then resized to S × S (bilinear,
 * align_corners = False, no antialiasing) unless size is 0. Before the plot a NaN or
 * infinite date is filled by linear interpolation in time between the nearest finite
 * dates (the nearest finite value before the first or after the last); a series with
 * no finite date gives a plot of zeros and the valid flag 0. Since 0.2.0.
 */
typedef struct msc_rp_params {
  uint32_t struct_size;      /**< in: sizeof(msc_rp_params) as the caller knows it */
  int32_t n_indices;         /**< K, the plots per pixel: 1..MSC_VI_COUNT */
  const int32_t *indices;    /**< K MSC_VI_* values: the index of plot k (required) */
  int32_t binary;            /**< 0: continuous; 1: binary */
  int32_t eps_is_percentile; /**< binary only: 0: ε = eps; 1: eps is a percentile */
  double eps;                /**< binary only: ε >= 0 finite, or a percentile in [0, 100] */
  int64_t size;              /**< S, 1..4096, or 0 to keep S = T */
  const double *days;        /**< NULL (dates 0, 1, ..., T−1) or T strictly increasing
                                  finite times (e.g. days of year) for the filling */
} msc_rp_params;

/**
 * The recurrence plots of n pixels of a T × C × H × W series x: for pixel i at row
 * yx[2i] and column yx[2i+1], the K index series of that pixel (as msc_vegetation_index)
 * give out[(i·K + k)·S·S ...], the S × S plot of index params->indices[k], and
 * valid[i·K + k] (0 for a series without any finite date, whose plot is zeros).
 * x: T × C × H × W digital numbers (required). t: T, 1..4096. c, h, w: >= 1.
 * bands: the band table, or NULL for the PASTIS one. params: required.
 * yx: n (row, column) pairs inside the image (required unless n is 0). n: >= 0.
 * out: n·K·S·S floats (required). valid: n·K bytes, or NULL.
 * This is a convenience function: each call allocates its own scratch and frees it
 * before returning, K·T floats (plus K·T² + 3S when S ≠ T, and T(T−1)/2 for a
 * percentile ε) for each of up to omp_get_max_threads() threads (at most n). Pixels are shared among OpenMP threads,
 * each computed by one thread alone: the result does not depend on the thread count.
 * Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x, params, params->indices, out or yx;
 * params->struct_size or bands->struct_size too small; a size out of range; an unknown
 * index; binary or eps_is_percentile other than 0 or 1; a bad eps; days not finite or
 * not increasing; a band an index needs absent; a bad scale or offset; a pixel outside
 * the image: the message names it); MSC_E_OUT_OF_MEMORY. out and valid are untouched on
 * error. Thread-safe. Since 0.2.0.
 */
MSC_API msc_status msc_recurrence_plots(const float *x, int64_t t, int64_t c, int64_t h,
                                        int64_t w, const msc_vi_bands *bands,
                                        const msc_rp_params *params, const int64_t *yx,
                                        int64_t n, float *out, uint8_t *valid);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MOSAIC_MOSAIC_H */
