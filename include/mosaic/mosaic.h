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
#define MSC_VERSION_MINOR 1
#define MSC_VERSION_PATCH 0
/** One number for comparisons: MAJOR*10000 + MINOR*100 + PATCH. Since 0.1.0. */
#define MSC_VERSION_NUMBER \
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
#define MSC_OK 0                         /**< Success. */
#define MSC_E_INVALID_ARGUMENT (-1)      /**< A NULL pointer, bad value or bad option. */
#define MSC_E_OUT_OF_MEMORY (-2)         /**< An allocation failed. */
#define MSC_E_IO (-3)                    /**< A file could not be opened, read or written. */
#define MSC_E_BAD_FORMAT (-4)            /**< A file or buffer is corrupt or not of the expected format. */
#define MSC_E_UNSUPPORTED (-5)           /**< Valid, but not supported by this build or backend. */
#define MSC_E_BACKEND_UNAVAILABLE (-6)   /**< The requested backend cannot be used here. */
#define MSC_E_DEVICE (-7)                /**< The compute device or its runtime reported an error. */
#define MSC_E_NUMERICAL (-8)             /**< A NaN or infinity appeared in a result. */
#define MSC_E_SHAPE (-9)                 /**< Array dimensions do not match what is expected. */
#define MSC_E_NOT_FOUND (-10)            /**< A named item (key, modality, file) does not exist. */
#define MSC_E_BUFFER_TOO_SMALL (-11)     /**< An output buffer is smaller than required. */
#define MSC_E_VERSION (-12)              /**< A file or module was made for an incompatible version. */
#define MSC_E_INTERNAL (-13)             /**< A bug in libmosaic: please report it. */
#define MSC_E_CANCELLED (-14)            /**< The operation was stopped on request. */

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
#define MSC_LOG_ERROR 0
#define MSC_LOG_WARNING 1
#define MSC_LOG_INFO 2
#define MSC_LOG_DEBUG 3

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

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* MOSAIC_MOSAIC_H */
