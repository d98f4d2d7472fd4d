// mosaic.hpp — the C++17 interface of libmosaic: a header-only RAII wrapper of mosaic.h.
//
// GENERATED from include/mosaic/mosaic.h by bindings/gen_cpp.py (generate.py --lang cpp); do
// not edit: regenerate. docs/bindings.md ("C++") describes it.
//
// Handles. Each opaque handle of the C API is a move-only class that frees itself:
// msc_options -> mosaic::Options, msc_model -> Model, msc_batch -> Batch, msc_dataset ->
// Dataset, msc_loader -> Loader, msc_scene -> Scene. get() gives the raw pointer,
// release() gives it up, reset(p) frees the old one and takes p. An empty object
// (default-constructed, or moved from) passes NULL where the C function takes a handle
// (e.g. no runtime options for Model::load). Lifetimes are the C API's: a Loader must not
// outlive its Dataset, a Scene its Model.
//
// Functions. A C function that creates a handle is a static factory of its class
// (Model::load, Dataset::open, Options::create); one whose first parameter is a handle is
// a method of that class (const for a const pointer; msc_model_save -> Model::save,
// msc_embed -> Model::embed); the others are free functions (mosaic::loss_ntxent). Each
// has up to three overloads, documented by the C text above them:
//   base   the C parameters; a handle as X & or const X &, an msc_x ** out-parameter as
//          X & (reset on success), const char * as mosaic::cstr (a const char *, NULL
//          included, or a std::string);
//   span   each pointer + size_t length pair as a mosaic::span<T> (built from a pointer
//          and a length, a std::vector, a std::array or a C array), each char buffer +
//          capacity + length triple as a std::string &;
//   value  (exception mode, methods and factories) the trailing out-parameters returned:
//          one value, or a std::tuple in the C order (auto [bands, size] = ...).
// Library-owned strings (const char * returns) are returned as const char *, valid as
// long as the C function's doc says.
//
// Errors. A function that returns msc_status in C returns mosaic::Result:
//   - by default, Result is void and a status other than MSC_OK throws mosaic::Error (a
//     std::runtime_error; status() is the code, what() the msc_last_error() message);
//   - with MOSAIC_NO_EXCEPTIONS defined, or when exceptions are off (no
//     __cpp_exceptions: -fno-exceptions), Result is mosaic::Status, [[nodiscard]]: ok(),
//     code(), message(); the value overloads do not exist, and nothing throws.
// The two modes live in different inline namespaces, so translation units built in
// different modes cannot be linked into one program by mistake (a link error, not an
// ODR violation).
//
// Every function of mosaic.h is reachable: the wrapper calls each one (a test checks it),
// and mosaic.h itself stays included for its constants, structs and callbacks.
// clang-format off
#ifndef MOSAIC_MOSAIC_HPP
#define MOSAIC_MOSAIC_HPP

#include <mosaic/mosaic.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(MOSAIC_NO_EXCEPTIONS) && !defined(__cpp_exceptions)
#define MOSAIC_NO_EXCEPTIONS 1
#endif

namespace mosaic {
#ifdef MOSAIC_NO_EXCEPTIONS
inline namespace no_exceptions {
#else
inline namespace exceptions {
#endif

/// The header's version, 0.5.0; mosaic::version() is the library's.
constexpr int header_version_major = 0;
constexpr int header_version_minor = 5;
constexpr int header_version_patch = 0;

/// A NUL-terminated string argument: a const char * (NULL allowed where the C function
/// allows it) or a std::string (which must outlive the call).
class cstr {
public:
  cstr(const char *s) noexcept : p_(s) {}
  cstr(std::nullptr_t) noexcept : p_(nullptr) {}
  cstr(const std::string &s) noexcept : p_(s.c_str()) {}
  const char *c_str() const noexcept { return p_; }

private:
  const char *p_;
};

/// A pointer and a number of elements (C++17 has no std::span): from (pointer, size), a
/// std::vector, a std::array, a C array, or any container with data() and size().
template <typename T> class span {
public:
  constexpr span() noexcept = default;
  constexpr span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
  template <std::size_t N> constexpr span(T (&a)[N]) noexcept : data_(a), size_(N) {}
  template <typename C, typename D = decltype(std::declval<C &>().data()),
            typename = std::enable_if_t<!std::is_same<std::decay_t<C>, span>::value &&
                                        std::is_convertible<D, T *>::value>>
  constexpr span(C &&c) noexcept : data_(c.data()), size_(c.size()) {}
  constexpr T *data() const noexcept { return data_; }
  constexpr std::size_t size() const noexcept { return size_; }
  constexpr bool empty() const noexcept { return size_ == 0; }
  constexpr T *begin() const noexcept { return data_; }
  constexpr T *end() const noexcept { return data_ + size_; }
  constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }

private:
  T *data_ = nullptr;
  std::size_t size_ = 0;
};

/// The outcome of a call: MSC_OK, or an error code with the msc_last_error() message
/// captured when it failed. The result type of every call in no-exceptions mode.
class [[nodiscard]] Status {
public:
  Status() noexcept = default;
  Status(msc_status code, std::string message) : code_(code), message_(std::move(message)) {}
  bool ok() const noexcept { return code_ == MSC_OK; }
  explicit operator bool() const noexcept { return ok(); }
  msc_status code() const noexcept { return code_; }
  /// msc_last_error() at the failure ("" for MSC_OK).
  const std::string &message() const noexcept { return message_; }
  /// msc_status_string(code()): "invalid argument", ...
  const char *description() const noexcept { return msc_status_string(code_); }

private:
  msc_status code_ = MSC_OK;
  std::string message_;
};

/// A failed call (exception mode): status() is the code, what() the msc_last_error()
/// message (msc_status_string(status()) when the library left none).
class Error : public std::runtime_error {
public:
  Error(msc_status status, const std::string &message)
      : std::runtime_error(message.empty() ? msc_status_string(status) : message),
        status_(status) {}
  msc_status status() const noexcept { return status_; }

private:
  msc_status status_;
};

#ifdef MOSAIC_NO_EXCEPTIONS
using Result = Status;
#else
using Result = void;
#endif

/// A struct of the C API with struct_size set (msc_step_result, msc_vi_bands, ...).
template <typename T> T init() noexcept {
  T v{};
  v.struct_size = sizeof(T);
  return v;
}

namespace detail {
#ifdef MOSAIC_NO_EXCEPTIONS
inline Status check(msc_status st) {
  return st == MSC_OK ? Status() : Status(st, msc_last_error());
}
#else
inline void check(msc_status st) {
  if (st != MSC_OK) throw Error(st, msc_last_error());
}
#endif

// The C API's string protocol (msc_options_get_string): ask for the length with cap = 0,
// then read into a buffer of that size (again if the value grew in between).
template <typename F> Result fetch_string(std::string &out, F &&call) {
  size_t len = 0;
  msc_status st = call(nullptr, 0, &len);
  std::string buf;
  while (st == MSC_OK || st == MSC_E_BUFFER_TOO_SMALL) {
    if (len < buf.size()) break;
    buf.assign(len + 1, '\0');
    st = call(&buf[0], buf.size(), &len);
  }
  if (st == MSC_OK || (st == MSC_E_BUFFER_TOO_SMALL && len < buf.size())) {
    buf.resize(len);
    out = std::move(buf);
    st = MSC_OK;
  }
  return check(st);
}
} // namespace detail


class Options;
class Model;
class Batch;
class Dataset;
class Loader;
class Scene;
class Dist;

/// Owns an msc_options (null when empty); frees it with msc_options_free.
class Options {
public:
  Options() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Options(msc_options *p) noexcept : p_(p) {}
  ~Options() { reset(); }
  Options(const Options &) = delete;
  Options &operator=(const Options &) = delete;
  Options(Options &&other) noexcept : p_(other.release()) {}
  Options &operator=(Options &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_options *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_options_free.
  msc_options *release() noexcept {
    msc_options *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_options_free) and takes p.
  void reset(msc_options *p = nullptr) noexcept {
    msc_options *old = p_;
    p_ = p;
    if (old != nullptr) msc_options_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Creates an empty options handle (every key at its default).
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT (out is NULL) or MSC_E_OUT_OF_MEMORY.
  /// Since 0.1.0.
  /// C: msc_status msc_options_create(msc_options **out);
  static Result create(Options &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Options create();
#endif

  /// Creates *out, a deep copy of src: every key that is set, with its type and exact value
  /// (a floats key keeps its float values bit for bit and its text form as given); keys not
  /// set read their defaults, as in src. The copy is independent: setting keys in or freeing
  /// either handle leaves the other intact. Free the copy with msc_options_free.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (src or out is NULL, with a message naming it);
  /// MSC_E_OUT_OF_MEMORY. *out is untouched on error. Reads src only; as for every call on a
  /// handle, no other thread may change src during the call. Since 0.2.0.
  /// C: msc_status msc_options_copy(const msc_options *src, msc_options **out);
  Result copy(Options &out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  Options copy() const;
#endif

  /// Sets an integer, floating-point or string key (see the list above). A string value
  /// is copied. An int value is accepted for a float key. A floats key also takes its
  /// text form with msc_options_set_string: numbers separated by ',' ("1.5, -2e3"; ""
  /// for none), each read in the C locale and rounded to float, the text kept as given.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for NULL
  /// arguments, a key of another type, or a value outside the key's valid range (the
  /// message names the key and the rule). The handle is unchanged on error.
  /// Since 0.1.0.
  /// C: msc_status msc_options_set_int(msc_options *opts, const char *key, int64_t value);
  Result set_int(cstr key, int64_t value);

  /// Sets an integer, floating-point or string key (see the list above). A string value
  /// is copied. An int value is accepted for a float key. A floats key also takes its
  /// text form with msc_options_set_string: numbers separated by ',' ("1.5, -2e3"; ""
  /// for none), each read in the C locale and rounded to float, the text kept as given.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for NULL
  /// arguments, a key of another type, or a value outside the key's valid range (the
  /// message names the key and the rule). The handle is unchanged on error.
  /// Since 0.1.0.
  /// C: msc_status msc_options_set_float(msc_options *opts, const char *key, double value);
  Result set_float(cstr key, double value);

  /// Sets an integer, floating-point or string key (see the list above). A string value
  /// is copied. An int value is accepted for a float key. A floats key also takes its
  /// text form with msc_options_set_string: numbers separated by ',' ("1.5, -2e3"; ""
  /// for none), each read in the C locale and rounded to float, the text kept as given.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for NULL
  /// arguments, a key of another type, or a value outside the key's valid range (the
  /// message names the key and the rule). The handle is unchanged on error.
  /// Since 0.1.0.
  /// C: msc_status msc_options_set_string(msc_options *opts, const char *key, const char *value);
  Result set_string(cstr key, cstr value);

  /// Sets a floats key (a list of floats, e.g. "modality.0.mean") to values[0..n); n = 0
  /// (values may then be NULL) sets the empty list, which stands for the default. The
  /// values are copied. msc_options_get_string and msc_options_to_json then give the text
  /// form, each value written with "%.9g" (which reads back as the same float).
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for NULL
  /// opts or key, NULL values with n > 0, a key of another type, more than 1024 values,
  /// a NaN or infinite value, or one outside the key's rule (std: > 0); the message names
  /// the key and the value. The handle is unchanged on error. Since 0.2.0.
  /// C: msc_status msc_options_set_floats(msc_options *opts, const char *key, const float *values, size_t n);
  Result set_floats(cstr key, const float *values, size_t n);
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result set_floats(cstr key, span<const float> values);

  /// Reads a key: the value set, else its default. For strings, buf receives up to cap-1
  /// bytes and a NUL; *len (if not NULL) receives the full length without the NUL, so a
  /// call with cap = 0 (buf may then be NULL) asks for the size.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for a key
  /// of another type or NULL arguments; MSC_E_BUFFER_TOO_SMALL when cap <= the length
  /// (buf then holds the truncated, NUL-terminated prefix if cap > 0).
  /// Since 0.1.0.
  /// C: msc_status msc_options_get_int(const msc_options *opts, const char *key, int64_t *out);
  Result get_int(cstr key, int64_t *out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int64_t get_int(cstr key) const;
#endif

  /// Reads a key: the value set, else its default. For strings, buf receives up to cap-1
  /// bytes and a NUL; *len (if not NULL) receives the full length without the NUL, so a
  /// call with cap = 0 (buf may then be NULL) asks for the size.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for a key
  /// of another type or NULL arguments; MSC_E_BUFFER_TOO_SMALL when cap <= the length
  /// (buf then holds the truncated, NUL-terminated prefix if cap > 0).
  /// Since 0.1.0.
  /// C: msc_status msc_options_get_float(const msc_options *opts, const char *key, double *out);
  Result get_float(cstr key, double *out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  double get_float(cstr key) const;
#endif

  /// Reads a key: the value set, else its default. For strings, buf receives up to cap-1
  /// bytes and a NUL; *len (if not NULL) receives the full length without the NUL, so a
  /// call with cap = 0 (buf may then be NULL) asks for the size.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for a key
  /// of another type or NULL arguments; MSC_E_BUFFER_TOO_SMALL when cap <= the length
  /// (buf then holds the truncated, NUL-terminated prefix if cap > 0).
  /// Since 0.1.0.
  /// C: msc_status msc_options_get_string(const msc_options *opts, const char *key, char *buf, size_t cap, size_t *len);
  Result get_string(cstr key, char *buf, size_t cap, size_t *len) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result get_string(cstr key, std::string &out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::string get_string(cstr key) const;
#endif

  /// Reads a floats key: the values set (or parsed from the text set), else its default.
  /// *n receives the number of values; when it is at most cap they are written to
  /// out[0..*n), so a call with cap = 0 (out may then be NULL) asks for the count.
  /// Returns MSC_OK; MSC_E_NOT_FOUND for an unknown key; MSC_E_INVALID_ARGUMENT for a key
  /// of another type, NULL opts, key or n, or NULL out with cap > 0;
  /// MSC_E_BUFFER_TOO_SMALL when cap < *n (*n is set, out is untouched). Since 0.2.0.
  /// C: msc_status msc_options_get_floats(const msc_options *opts, const char *key, float *out, size_t cap, size_t *n);
  Result get_floats(cstr key, float *out, size_t cap, size_t *n) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result get_floats(cstr key, span<float> out, size_t *n) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  size_t get_floats(cstr key, span<float> out) const;
#endif

  /// Whether key has been set explicitly: *out = 1 if so, 0 if it holds its default.
  /// Returns MSC_OK, MSC_E_NOT_FOUND or MSC_E_INVALID_ARGUMENT. Since 0.1.0.
  /// C: msc_status msc_options_is_set(const msc_options *opts, const char *key, int32_t *out);
  Result is_set(cstr key, int32_t *out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int32_t is_set(cstr key) const;
#endif

  /// Applies a JSON document (UTF-8, NUL-terminated) to opts: every member is set as by
  /// the setters. Nested objects join keys with '.' ({"proj": {"dim": 64}} sets
  /// "proj.dim"); an array of objects sets "<key>.count" and "<key>.<i>.*"
  /// ({"modality": [{"name": "s2", "bands": 12}]}); an array of numbers becomes a
  /// comma-separated string (integers as such, other numbers with "%.9g": the text form
  /// of a floats key) and an array of strings a ';'-separated one.
  /// The whole document is checked before anything is applied: on error opts is
  /// unchanged and the message names the key (or the line and column of a syntax error).
  /// Returns MSC_OK, MSC_E_BAD_FORMAT (not JSON), MSC_E_NOT_FOUND (unknown key),
  /// MSC_E_INVALID_ARGUMENT (bad value, NULL arguments). Since 0.1.0.
  /// C: msc_status msc_options_from_json(msc_options *opts, const char *json);
  Result from_json(cstr json);

  /// Writes every key that is set as one JSON object (flat dotted keys, sorted) into
  /// buf, with the same size protocol as msc_options_get_string.
  /// Returns MSC_OK, MSC_E_BUFFER_TOO_SMALL, MSC_E_INVALID_ARGUMENT. Since 0.1.0.
  /// C: msc_status msc_options_to_json(const msc_options *opts, char *buf, size_t cap, size_t *len);
  Result to_json(char *buf, size_t cap, size_t *len) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result to_json(std::string &out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::string to_json() const;
#endif

  /// Sets the model keys that the dataset ds determines in opts, so that msc_model_create
  /// builds a model for it: "modality.count"; per modality i "modality.i.name", ".bands"
  /// and ".size"; "classes" and "class_names" (since 0.3.0, of a dataset without patch
  /// labels but with masks, such as Sen1Floods11, the mask's classes:
  /// msc_dataset_mask_info); since 0.3.0 the label mode "labels"
  /// ("single" when msc_dataset_single_label(ds), else "multi") unless opts holds it
  /// already; and the normalisation "modality.i.mean" and ".std" (as floats) unless opts
  /// holds them already; since 0.4.0 the inputs' description: "modality.i.band_names"
  /// (msc_dataset_band_name, left unset for a dataset without names) and ".scale" /
  /// ".offset" (msc_dataset_band_scale). The statistics are the
  /// published ones (stats = MSC_STATS_PUBLISHED), computed by msc_dataset_compute_stats
  /// over stats_samples samples (0: all; MSC_STATS_COMPUTED), or the published ones where
  /// the dataset has them and computed ones elsewhere (MSC_STATS_AUTO). A computed band
  /// whose standard deviation is at most 1e-6 (a constant band) gets std 1. Other keys
  /// (encoder, heads, training) are left as they are.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL opts or ds, an unknown stats value,
  /// stats_samples < 0, a dataset value the options refuse); with MSC_STATS_PUBLISHED,
  /// MSC_E_NOT_FOUND when a modality has no published statistics; the errors of
  /// msc_dataset_compute_stats (reading the samples), each with a message naming the
  /// modality; MSC_E_OUT_OF_MEMORY. opts is unchanged on error. Reads samples only to
  /// compute statistics. Not thread-safe for opts (one thread per handle); ds may be used
  /// by other threads. Since 0.2.0.
  /// C: msc_status msc_options_from_dataset(msc_options *opts, const msc_dataset *ds, int32_t stats, int64_t stats_samples);
  Result from_dataset(const Dataset &ds, int32_t stats, int64_t stats_samples);

  /// Sets the learning-rate schedule of a training run of total_steps optimiser steps, for
  /// the keys opts does not hold yet: "optim.total_steps" = total_steps (the length of the
  /// cosine decay; without it the learning rate stays constant) and "optim.warmup_steps" =
  /// total_steps / 20 when total_steps >= 20, else 0. A key already set is left as it is.
  /// The tool's `mosaic train` (epochs × batches per epoch) and the Python Model.fit use
  /// it, so both train with the same defaults (docs/training.md).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (opts NULL, total_steps < 1). opts is unchanged
  /// on error. Since 0.5.0.
  /// C: msc_status msc_options_default_schedule(msc_options *opts, int64_t total_steps);
  Result default_schedule(int64_t total_steps);

private:
  msc_options *p_ = nullptr;
};

/// Owns an msc_model (null when empty); frees it with msc_model_free.
class Model {
public:
  Model() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Model(msc_model *p) noexcept : p_(p) {}
  ~Model() { reset(); }
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;
  Model(Model &&other) noexcept : p_(other.release()) {}
  Model &operator=(Model &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_model *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_model_free.
  msc_model *release() noexcept {
    msc_model *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_model_free) and takes p.
  void reset(msc_model *p = nullptr) noexcept {
    msc_model *old = p_;
    p_ = p;
    if (old != nullptr) msc_model_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Creates a model from a configuration (NULL: every default, i.e. S1 2 bands + S2 12
  /// bands, 120×120, ResNet-18 encoders, 19 classes) with seeded initialisation: the same
  /// options give bit-identical weights. The run-time keys "backend" and "threads" choose
  /// where it runs; an explicitly requested backend that is unusable is an error, never a
  /// silent fallback (msc_model_backend says which one was chosen). "precision" and
  /// "conv_algorithm" choose how it computes (docs/options.md): with "auto" (the default
  /// since 0.5.0) the cpu backend runs float32 3×3 stride-1 convolutions of 64 channels and
  /// more (in calls of 32 output tiles of 4×4 or more) as Winograd F(4×4, 3×3) where the
  /// CPU has AVX-512, which rounds differently from the direct sum (differences of the
  /// order of 1e-6 relative); "direct" keeps the direct sum of earlier versions.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (out is NULL, an inconsistent configuration:
  /// the message names the key); MSC_E_BACKEND_UNAVAILABLE; MSC_E_NOT_FOUND (unknown
  /// backend); MSC_E_OUT_OF_MEMORY. *out is untouched on error. Since 0.1.0.
  /// C: msc_status msc_model_create(const msc_options *opts, msc_model **out);
  static Result create(const Options &opts, Model &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Model create(const Options &opts);
#endif

  /// Saves the model (configuration, weights, BatchNorm running statistics) to path as
  /// safetensors (float32). The save is atomic: the data goes to a temporary file in the
  /// same directory, which is flushed to disk and renamed over path; if anything fails,
  /// a file already at path is left as it was. A save never writes a file that
  /// msc_model_load would refuse: a NaN or infinity in any tensor it would write (weights,
  /// running statistics, a checkpoint's optimiser moments), or a negative variance, is
  /// refused before anything is written (since 0.5.0; docs/model.md, "What saving checks").
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_IO (with the OS reason),
  /// MSC_E_NUMERICAL (a tensor holds a NaN or infinity, or a negative variance: the
  /// message names it and the index), MSC_E_OUT_OF_MEMORY. Not concurrent with training the same model. Since 0.1.0.
  /// C: msc_status msc_model_save(const msc_model *model, const char *path);
  Result save(cstr path) const;

  /// Loads a model saved by msc_model_save (or any safetensors file with the same tensor
  /// names and a 'mosaic.config' entry in __metadata__; F32, F16, BF16 and F64 tensors
  /// are accepted). runtime may be NULL or hold "backend", "threads", "precision" and
  /// "conv_algorithm" (as for msc_model_create); other keys in it are ignored. Every length, offset, dtype and shape is validated before any data
  /// is used; a truncated, corrupt or hostile file is refused with a message naming the
  /// file and the problem, never a crash. Every value of every tensor it reads must be
  /// finite: weights, running statistics and (since 0.5.0) a checkpoint's optimiser
  /// moments optim.m1.* and optim.m2.*; a variance (BatchNorm's *.running_var, Adam's
  /// optim.m2.*) must also not be negative (since 0.5.0).
  /// Returns MSC_OK; MSC_E_IO (cannot read); MSC_E_BAD_FORMAT (corrupt or not a model, a
  /// NaN or infinity in a tensor, a negative variance: the message names the tensor and
  /// the index);
  /// MSC_E_VERSION (a newer model format); MSC_E_UNSUPPORTED (a dtype it cannot read);
  /// MSC_E_BACKEND_UNAVAILABLE; MSC_E_INVALID_ARGUMENT; MSC_E_OUT_OF_MEMORY.
  /// *out is untouched on error. Since 0.1.0.
  /// C: msc_status msc_model_load(const char *path, const msc_options *runtime, msc_model **out);
  static Result load(cstr path, const Options &runtime, Model &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Model load(cstr path, const Options &runtime);
#endif

  /// A copy of the model's full configuration (every model key explicitly set, as stored
  /// in its file); free it with msc_options_free. Use msc_options_to_json to print it.
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_OUT_OF_MEMORY. Since 0.1.0.
  /// C: msc_status msc_model_options(const msc_model *model, msc_options **out);
  Result options(Options &out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  Options options() const;
#endif

  /// Name of the backend the model runs on ("cpu", "cuda"); NULL for NULL. Since 0.1.0.
  /// C: const char *msc_model_backend(const msc_model *model);
  const char *backend() const;

  /// Number of modalities (0 for NULL). Since 0.1.0.
  /// C: int32_t msc_model_modality_count(const msc_model *model);
  int32_t modality_count() const;

  /// Name of modality i, or NULL when out of range. Lives as long as the model. Since 0.1.0.
  /// C: const char *msc_model_modality_name(const msc_model *model, int32_t i);
  const char *modality_name(int32_t i) const;

  /// Input shape of modality i: bands (channels) and patch size (height = width).
  /// Returns MSC_OK, MSC_E_NOT_FOUND (i out of range), MSC_E_INVALID_ARGUMENT.
  /// Since 0.1.0.
  /// C: msc_status msc_model_modality_shape(const msc_model *model, int32_t i, int64_t *bands, int64_t *size);
  Result modality_shape(int32_t i, int64_t *bands, int64_t *size) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<int64_t, int64_t> modality_shape(int32_t i) const;
#endif

  /// Name of band b of modality i as the model expects it ("B04", "VV"; option
  /// modality.i.band_names, filled by msc_options_from_dataset), or NULL when the model has
  /// no band names (made without a dataset, or from a file before 0.4.0), or for NULL or i
  /// or b out of range. Lives as long as the model. Thread-safe. Since 0.4.0.
  /// C: const char *msc_model_band_name(const msc_model *model, int32_t i, int64_t b);
  const char *band_name(int32_t i, int64_t b) const;

  /// What band b of modality i expects: the raw value's conversion to the physical quantity,
  /// physical = raw × *scale + *offset (options modality.i.scale / .offset; 1 and 0 when
  /// not recorded), and the normalisation the model applies to the raw value,
  /// (raw − *mean) / *std (modality.i.mean / .std). The model reads raw values: an input
  /// given in physical units p converts back as raw = (p − offset) / scale (docs/model.md,
  /// "Inputs"). All four outputs are required and written only on success.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i or b out of range).
  /// Thread-safe. Since 0.4.0.
  /// C: msc_status msc_model_band_info(const msc_model *model, int32_t i, int64_t b, double *scale, double *offset, double *mean, double *std);
  Result band_info(int32_t i, int64_t b, double *scale, double *offset, double *mean,
                   double *std) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<double, double, double, double> band_info(int32_t i, int64_t b) const;
#endif

  /// Number of classes C (0 for NULL). Since 0.1.0.
  /// C: int64_t msc_model_class_count(const msc_model *model);
  int64_t class_count() const;

  /// Name of class i, or NULL when out of range. Lives as long as the model. Since 0.1.0.
  /// C: const char *msc_model_class_name(const msc_model *model, int64_t i);
  const char *class_name(int64_t i) const;

  /// Number of trainable values (weights, biases, BatchNorm scales and shifts; not the
  /// running statistics), as PyTorch's sum(p.numel() for p in parameters()). 0 for NULL.
  /// Since 0.1.0.
  /// C: int64_t msc_model_parameter_count(const msc_model *model);
  int64_t parameter_count() const;

  /// Copies into dst every weight of src that dst has under the same name and with the same
  /// shape — all of them, or those whose name starts with prefix (e.g. "enc." for the
  /// encoders, "enc.s2." for one modality's encoder; NULL or "" for every tensor) — and sets
  /// *copied to their number. Tensor names say where a weight sits
  /// ("enc.<modality>.layer1.0.conv1.weight", docs/model.md), so an encoder moves to any
  /// model with a modality of the same name and architecture, whatever its other
  /// modalities, patch size or classes: a PIMC-pretrained "s2" encoder under a fresh EuroSAT
  /// classifier, for instance. BatchNorm running statistics are copied with their layer.
  /// Call it before training dst (optimiser moments are not touched).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, dst == src); MSC_E_SHAPE (a tensor of the
  /// same name has another shape, named in the message: nothing is copied);
  /// MSC_E_NOT_FOUND (no tensor matches); errors of the backends. dst and src may be on
  /// different backends. Since 0.3.0.
  /// C: msc_status msc_model_copy_weights(msc_model *dst, const msc_model *src, const char *prefix, int64_t *copied);
  Result copy_weights(const Model &src, cstr prefix, int64_t *copied);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int64_t copy_weights(const Model &src, cstr prefix);
#endif

  /// Optimiser steps taken by the model: those of msc_train_step since it was created,
  /// plus those recorded in the checkpoint it was loaded from. 0 for NULL and for a model
  /// that was never trained. Since 0.1.0.
  /// C: int64_t msc_model_step(const msc_model *model);
  int64_t step() const;

  /// Size of one sample's embedding for `which`.
  /// Returns MSC_OK or MSC_E_INVALID_ARGUMENT (NULL, or `which` not valid for the model).
  /// Thread-safe. Since 0.1.0.
  /// C: msc_status msc_model_embedding_size(const msc_model *model, int32_t which, int64_t *size);
  Result embedding_size(int32_t which, int64_t *size) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int64_t embedding_size(int32_t which) const;
#endif

  /// Computes embeddings of the batch's samples in inference mode (BatchNorm running
  /// statistics) into out, N × size row-major (size from msc_model_embedding_size).
  /// Only the modalities the chosen output needs must be in the batch: a single modality's
  /// features need only that modality. The fused kinds take any non-empty subset of the
  /// model's modalities (since 0.4.0; before, all of them): an absent modality's features
  /// are zeros and the present ones are scaled by n_mod / n_present (docs/model.md,
  /// "Missing modalities"), and the absent encoders do not run.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, empty batch, bad `which`);
  /// MSC_E_NOT_FOUND (a needed modality is missing; for the fused kinds, none of the
  /// model's modalities is in the batch); MSC_E_SHAPE (an array does not fit the
  /// model: the message gives the expected shape); MSC_E_NUMERICAL (a NaN or infinite
  /// pixel: the message says where; or, since 0.5.0, an output that is not finite because
  /// finite inputs are so large, e.g. ±3e38, that the activations overflow float32: the
  /// message names the function, the sample and the value; never MSC_OK with a NaN or an
  /// infinity in out); MSC_E_BUFFER_TOO_SMALL (out_len < N × size);
  /// MSC_E_OUT_OF_MEMORY; a backend error. out may be partly written on error.
  /// Thread-safe: concurrent calls on one model are allowed and give the same results as
  /// serial calls. Since 0.1.0.
  /// C: msc_status msc_embed(msc_model *model, const msc_batch *batch, int32_t which, float *out, size_t out_len);
  Result embed(const Batch &batch, int32_t which, float *out, size_t out_len);
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result embed(const Batch &batch, int32_t which, span<float> out);

  /// Calibrates a model of precision int8 (the runtime option precision = int8;
  /// docs/precision.md, "int8"): runs the whole graph in float32 on batch (every modality
  /// of the model present, N >= 1) and records, for the input of every convolution and
  /// linear layer, the largest absolute value seen and whether any value was negative.
  /// Calls accumulate (the ranges are maxima over every calibrated batch): a few
  /// representative batches (e.g. 4 × 32 samples) are enough. Afterwards msc_embed,
  /// msc_predict and msc_predict_mask compute those layers in 8-bit integers: input
  /// quantised per tensor with the recorded range (u8 where no negative value was seen,
  /// s8 otherwise; values beyond the range saturate), weights per output channel, batch
  /// norm folded first. Before any calibration they return MSC_E_INVALID_ARGUMENT
  /// ("calibrate first"). batch = NULL forgets every range: the model is uncalibrated
  /// again. The ranges live in the model only: msc_model_save does not store them and a
  /// copy or a reload needs its own calibration. Not thread-safe against other calls on
  /// the same model (like msc_train_step). Returns MSC_OK; MSC_E_INVALID_ARGUMENT (model
  /// NULL; the model's precision is not int8; an empty batch); the errors of msc_embed for
  /// the batch (missing modality, shape, non-finite pixel); a failed call leaves the
  /// ranges as they were. Since 0.5.0.
  /// C: msc_status msc_model_calibrate(msc_model *model, const msc_batch *batch);
  Result calibrate(const Batch &batch);

  /// Per-class probabilities of the classifier's logits on the fused features, N × C
  /// row-major into probs (len >= N × C): for a multi-label model (option labels = multi,
  /// the default) the sigmoid of every logit; for a single-label model (labels = single,
  /// since 0.3.0) the softmax of each row, so that a row sums to 1 and its arg max is the
  /// predicted class. The batch holds any non-empty subset of the model's modalities, the
  /// fused features computed as msc_embed's (since 0.4.0; before, every modality).
  /// Returns and thread safety as msc_embed: a logit that is not finite is MSC_E_NUMERICAL
  /// (since 0.5.0), never MSC_OK with NaN probabilities. Since 0.1.0.
  /// C: msc_status msc_predict(msc_model *model, const msc_batch *batch, float *probs, size_t len);
  Result predict(const Batch &batch, float *probs, size_t len);
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result predict(const Batch &batch, span<float> probs);

  /// Per-pixel classes of a segmentation model (option task = segmentation;
  /// docs/segmentation.md): runs the encoders and the U-Net decoder and writes the arg max
  /// over the C classes of each pixel's logits into classes, N × H × W int32 values sample
  /// by sample (H = W = the patch size; classes_len >= N × H × W; of equal maxima the
  /// lowest class). With probs non-NULL (probs_len >= N × C × H × W) also the softmax over
  /// the classes of every pixel, N × C × H × W (NCHW: a pixel's C values sum to 1); with
  /// probs NULL, probs_len is not read. Every modality must be in the batch.
  /// Returns MSC_E_INVALID_ARGUMENT (a NULL model, batch or classes; an empty batch; a
  /// model without a decoder); MSC_E_BUFFER_TOO_SMALL; otherwise as msc_embed (a logit
  /// that is not finite is MSC_E_NUMERICAL, since 0.5.0: classes is then untouched, probs
  /// may be partly written). The outputs may be partly written on error. Thread safety as
  /// msc_embed. Since 0.3.0.
  /// C: msc_status msc_predict_mask(msc_model *model, const msc_batch *batch, int32_t *classes, size_t classes_len, float *probs, size_t probs_len);
  Result predict_mask(const Batch &batch, int32_t *classes, size_t classes_len, float *probs,
                      size_t probs_len);
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result predict_mask(const Batch &batch, span<int32_t> classes, span<float> probs);

  /// Sets the training configuration of a model from the training keys of opts (NULL:
  /// defaults, i.e. preset mosaic1 with AdamW). msc_model_create already applies those of
  /// its options, and msc_model_load those saved in a checkpoint; call this to change
  /// them (fine-tuning, a linear probe). The step count and optimiser state are kept.
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT (a bad combination: the message names the
  /// key), MSC_E_OUT_OF_MEMORY. Needs exclusive access to the model. Since 0.1.0.
  /// C: msc_status msc_train_configure(msc_model *model, const msc_options *opts);
  Result train_configure(const Options &opts);

  /// Reinitialises the classification head (the parameters named "classifier.*") from
  /// seed, exactly as msc_model_create would with options seed = seed, and restarts its
  /// optimiser moments at zero; the encoders, projection heads and the step count are
  /// untouched. This is the start of a linear probe or fine-tuning protocol: the head a
  /// pre-training run learnt on all labels must not leak into a low-label evaluation.
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT (model NULL), MSC_E_OUT_OF_MEMORY, a backend
  /// error. Needs exclusive access to the model. Since 0.1.0.
  /// C: msc_status msc_model_reset_classifier(msc_model *model, uint64_t seed);
  Result reset_classifier(uint64_t seed);

  /// One training step on a batch of N >= 2 samples with every modality of the model (and
  /// labels for the supervised terms). On MSC_OK, *out holds the step's losses, learning
  /// rate and step count.
  /// Returns MSC_OK; MSC_E_NUMERICAL when the loss, a gradient or (since 0.5.0) a BatchNorm
  /// running statistic the forward pass updated is not finite (finite pixels of 1e20 can
  /// overflow a batch's variance while loss and gradients stay finite): the update
  /// is skipped, the weights and running statistics are left exactly as they were, *out
  /// is filled with skipped = 1, and training may go on with the next batch (a non-finite
  /// input pixel also gives MSC_E_NUMERICAL, before anything runs, with *out untouched);
  /// MSC_E_INVALID_ARGUMENT (NULL, struct_size below the 0.1.0 size, N < 2); MSC_E_NOT_FOUND (a
  /// modality missing); MSC_E_SHAPE (arrays or labels that do not fit the model);
  /// MSC_E_OUT_OF_MEMORY; a backend error. On errors other than a skipped step *out is
  /// untouched. Needs exclusive access to the model (no concurrent msc_embed).
  /// Since 0.1.0.
  /// C: msc_status msc_train_step(msc_model *model, const msc_batch *batch, msc_step_result *out);
  Result train_step(const Batch &batch, msc_step_result *out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  msc_step_result train_step(const Batch &batch);
#endif

  /// Makes model's training data-parallel over dist (every rank calls it), or single-
  /// process again with dist NULL. The parameters and running statistics of rank 0 are
  /// broadcast to the others, so every rank starts from the same weights; every rank must
  /// have a model of the same architecture (checked: MSC_E_SHAPE) and should configure
  /// training identically (the seed and the step are checked by every msc_train_step:
  /// MSC_E_INVALID_ARGUMENT). dist is borrowed: it must outlive the attachment (detach or
  /// free the model first). msc_train_configure keeps the attachment.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (model NULL); MSC_E_SHAPE; MSC_E_COMM;
  /// MSC_E_OUT_OF_MEMORY; a backend error. Since 0.5.0.
  /// C: msc_status msc_train_set_dist(msc_model *model, msc_dist *dist);
  Result train_set_dist(Dist &dist);

private:
  msc_model *p_ = nullptr;
};

/// Owns an msc_batch (null when empty); frees it with msc_batch_free.
class Batch {
public:
  Batch() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Batch(msc_batch *p) noexcept : p_(p) {}
  ~Batch() { reset(); }
  Batch(const Batch &) = delete;
  Batch &operator=(const Batch &) = delete;
  Batch(Batch &&other) noexcept : p_(other.release()) {}
  Batch &operator=(Batch &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_batch *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_batch_free.
  msc_batch *release() noexcept {
    msc_batch *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_batch_free) and takes p.
  void reset(msc_batch *p = nullptr) noexcept {
    msc_batch *old = p_;
    p_ = p;
    if (old != nullptr) msc_batch_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Creates an empty batch. Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_OUT_OF_MEMORY. Since 0.1.0.
  /// C: msc_status msc_batch_create(msc_batch **out);
  static Result create(Batch &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Batch create();
#endif

  /// Number of samples N (0 while empty or for NULL). Since 0.1.0.
  /// C: int64_t msc_batch_size(const msc_batch *batch);
  int64_t size() const;

  /// Sets (or replaces) the patches of the modality called name: n×c×h×w floats in NCHW
  /// order, copied into the batch (the caller may reuse nchw at once). Every array of a
  /// batch must have the same n. Whether c, h and w fit the model is checked by the call
  /// that uses the batch (the error names the modality and the expected shape). The batch
  /// keeps its storage: setting an array no larger than the one it held allocates nothing.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, an empty or too long name, more than 8
  /// modalities); MSC_E_SHAPE (a non-positive size, or n differs from the batch's);
  /// MSC_E_OUT_OF_MEMORY. Since 0.1.0.
  /// C: msc_status msc_batch_set_modality(msc_batch *batch, const char *name, const float *nchw, int64_t n, int64_t c, int64_t h, int64_t w);
  Result set_modality(cstr name, const float *nchw, int64_t n, int64_t c, int64_t h, int64_t w);

  /// Removes the patches of the modality called name from the batch (its storage is kept
  /// for a later msc_batch_set_modality), e.g. to run a fused model without one modality
  /// (docs/model.md, "Missing modalities"). Labels, flags and mask stay. Returns MSC_OK;
  /// MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (the batch has no such modality).
  /// Since 0.4.0.
  /// C: msc_status msc_batch_remove_modality(msc_batch *batch, const char *name);
  Result remove_modality(cstr name);

  /// Number of modalities the batch holds (0 for NULL). Since 0.5.0.
  /// C: int32_t msc_batch_modality_count(const msc_batch *batch);
  int32_t modality_count() const;

  /// Name of the batch's modality i, 0 <= i < msc_batch_modality_count (in the order they
  /// were set, or the dataset's order for a batch a dataset or loader filled), or NULL for
  /// NULL or an index out of range. The string belongs to the batch and lives until the
  /// batch's modalities change. Since 0.5.0.
  /// C: const char *msc_batch_modality_name(const msc_batch *batch, int32_t i);
  const char *modality_name(int32_t i) const;

  /// Copies the patches of the modality called name (N×C×H×W float32 values, NCHW, sample
  /// by sample: the raw values that were set, or that msc_dataset_fill_batch and
  /// msc_loader_next read, before any normalisation) into out, and their C, H and W into
  /// *c, *h and *w (each may be NULL). out may be NULL to ask for the shape only; then
  /// out_len (a count of floats) is ignored. For plots, checks and augmentation of one's own.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (batch or name NULL); MSC_E_NOT_FOUND (no such
  /// modality); MSC_E_BUFFER_TOO_SMALL (out_len < N×C×H×W; the shape is still set). out is
  /// untouched on error. Since 0.5.0.
  /// C: msc_status msc_batch_modality(const msc_batch *batch, const char *name, float *out, size_t out_len, int64_t *c, int64_t *h, int64_t *w);
  Result modality(cstr name, float *out, size_t out_len, int64_t *c, int64_t *h,
                  int64_t *w) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result modality(cstr name, span<float> out, int64_t *c, int64_t *h, int64_t *w) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<int64_t, int64_t, int64_t> modality(cstr name, span<float> out) const;
#endif

  /// Sets multi-hot labels: n×c bytes, each 0 or 1 (row-major, sample by sample).
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT (NULL, a value other than 0/1), MSC_E_SHAPE,
  /// MSC_E_OUT_OF_MEMORY. Since 0.1.0.
  /// C: msc_status msc_batch_set_labels(msc_batch *batch, const uint8_t *multi_hot, int64_t n, int64_t c);
  Result set_labels(const uint8_t *multi_hot, int64_t n, int64_t c);

  /// Sets per-sample flags: non-zero = the sample's labels are known. Without flags every
  /// sample of a batch with labels counts as labelled. Unlabelled samples feed only the
  /// self-supervised loss terms.
  /// Returns MSC_OK, MSC_E_INVALID_ARGUMENT, MSC_E_SHAPE, MSC_E_OUT_OF_MEMORY. Since 0.1.0.
  /// C: msc_status msc_batch_set_labeled(msc_batch *batch, const uint8_t *flags, int64_t n);
  Result set_labeled(const uint8_t *flags, int64_t n);

  /// Copies the batch's multi-hot labels (N×C bytes, sample by sample) into out and their
  /// class count C into *classes (may be NULL). out may be NULL to ask for C only; then
  /// out_len is ignored.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (batch NULL); MSC_E_NOT_FOUND (the batch has
  /// no labels); MSC_E_BUFFER_TOO_SMALL (out_len < N×C; *classes is still set). out is
  /// untouched on error. Since 0.1.0.
  /// C: msc_status msc_batch_labels(const msc_batch *batch, uint8_t *out, size_t out_len, int64_t *classes);
  Result labels(uint8_t *out, size_t out_len, int64_t *classes) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result labels(span<uint8_t> out, int64_t *classes) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int64_t labels(span<uint8_t> out) const;
#endif

  /// Copies the batch's labelled flags into out (N bytes): 1 for a sample whose labels the
  /// supervised terms use, 0 for an unlabelled one (msc_batch_set_labeled, or a dataset
  /// opened with data.labeled_fraction < 1); every sample is 0 when the batch has no labels.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_BUFFER_TOO_SMALL (out_len < N).
  /// Since 0.3.0.
  /// C: msc_status msc_batch_labeled(const msc_batch *batch, uint8_t *out, size_t out_len);
  Result labeled(uint8_t *out, size_t out_len) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result labeled(span<uint8_t> out) const;

  /// Sets the batch's per-pixel label map (the target of segmentation): n×h×w int32 values,
  /// row-major sample by sample, each a class index 0..K−1 or an ignore value for pixels
  /// without a class. The batch stores the values as given; which value means "ignore" is
  /// the convention of whoever uses the mask (a dataset declares its own: msc_dataset_mask_info,
  /// −1 for every built-in format). A batch holds at most one mask, replaced by the next
  /// call; its n must equal the batch's (its h and w need not match the patches'). The
  /// storage is kept as for msc_batch_set_modality: a mask no larger than the last one
  /// allocates nothing.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_SHAPE (a non-positive size, or n
  /// differs from the batch's); MSC_E_OUT_OF_MEMORY. Since 0.3.0.
  /// C: msc_status msc_batch_set_mask(msc_batch *batch, const int32_t *mask, int64_t n, int64_t h, int64_t w);
  Result set_mask(const int32_t *mask, int64_t n, int64_t h, int64_t w);

  /// Copies the batch's mask (N×H×W int32 values, sample by sample) into out and its height
  /// and width into *h and *w (each may be NULL). out may be NULL to ask for the shape only;
  /// then out_len is ignored. A batch filled by msc_dataset_fill_batch or msc_loader_next
  /// has a mask when its dataset does (msc_dataset_mask_info), of mask_size × mask_size.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (batch NULL); MSC_E_NOT_FOUND (the batch has
  /// no mask); MSC_E_BUFFER_TOO_SMALL (out_len < N×H×W; *h and *w are still set). out is
  /// untouched on error. Since 0.3.0.
  /// C: msc_status msc_batch_mask(const msc_batch *batch, int32_t *out, size_t out_len, int64_t *h, int64_t *w);
  Result mask(int32_t *out, size_t out_len, int64_t *h, int64_t *w) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result mask(span<int32_t> out, int64_t *h, int64_t *w) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<int64_t, int64_t> mask(span<int32_t> out) const;
#endif

private:
  msc_batch *p_ = nullptr;
};

/// Owns an msc_dataset (null when empty); frees it with msc_dataset_free.
class Dataset {
public:
  Dataset() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Dataset(msc_dataset *p) noexcept : p_(p) {}
  ~Dataset() { reset(); }
  Dataset(const Dataset &) = delete;
  Dataset &operator=(const Dataset &) = delete;
  Dataset(Dataset &&other) noexcept : p_(other.release()) {}
  Dataset &operator=(Dataset &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_dataset *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_dataset_free.
  msc_dataset *release() noexcept {
    msc_dataset *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_dataset_free) and takes p.
  void reset(msc_dataset *p = nullptr) noexcept {
    msc_dataset *old = p_;
    p_ = p;
    if (old != nullptr) msc_dataset_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Opens the dataset of the given format under the directory root.
  /// opts may be NULL (every default: BigEarthNet's train split, all bands, bilinear).
  /// The samples are those of data.split (formats without splits need "all"), without the
  /// excluded ones (BigEarthNet v2: seasonal snow, cloud or shadow unless
  /// data.include_snow_cloud = 1), then, when data.fraction < 1, a subset of
  /// round(fraction · n) samples drawn by iterative stratification (Sechidis et al. 2011)
  /// seeded by "seed", so every class keeps its share: the same options give the same
  /// samples in the same order.
  /// A patch with a missing file fails the open (data.on_missing = "fail", the message
  /// names the patch and the file) or is left out and counted (data.on_missing = "skip",
  /// see msc_dataset_skipped); it is never zero-filled.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL root, format or out; an option of the
  /// wrong type; a format without splits and data.split other than "all");
  /// MSC_E_NOT_FOUND (an unknown format: the message lists them; a missing file with
  /// on_missing = "fail"); MSC_E_IO (root or the metadata cannot be read: the message has
  /// the path and the reason); MSC_E_BAD_FORMAT (malformed metadata: the message names the
  /// line or the patch, e.g. an unknown class name); MSC_E_OUT_OF_MEMORY. *out is
  /// untouched on error. Since 0.1.0.
  /// C: msc_status msc_dataset_open(const char *root, const char *format, const msc_options *opts, msc_dataset **out);
  static Result open(cstr root, cstr format, const Options &opts, Dataset &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Dataset open(cstr root, cstr format, const Options &opts);
#endif

  /// Number of samples (0 for NULL). Thread-safe. Since 0.1.0.
  /// C: int64_t msc_dataset_size(const msc_dataset *ds);
  int64_t size() const;

  /// Number of patches left out at open because a file was missing (data.on_missing =
  /// "skip"); 0 for NULL. Their ids go to the log callback at debug level. Since 0.1.0.
  /// C: int64_t msc_dataset_skipped(const msc_dataset *ds);
  int64_t skipped() const;

  /// Number of samples whose labels the supervised terms see: all of them, unless the
  /// dataset was opened with data.labeled_fraction < 1 (then a stratified share, the others
  /// being marked unlabelled in every batch: msc_batch_labeled); 0 for a dataset without
  /// labels and for NULL. Since 0.3.0.
  /// C: int64_t msc_dataset_labeled_count(const msc_dataset *ds);
  int64_t labeled_count() const;

  /// Number of classes C of the labels (0 for NULL). Since 0.1.0.
  /// C: int64_t msc_dataset_class_count(const msc_dataset *ds);
  int64_t class_count() const;

  /// 1 when the dataset is single-label: every sample has exactly one class (EuroSAT; the
  /// pixel samples of PASTIS and of a series manifest with targets), and models for it
  /// should be trained with softmax cross-entropy and scored by accuracy
  /// (msc_options_from_dataset sets the option labels = single). 0 for a multi-label
  /// dataset (BigEarthNet, SEN12MS, patch samples of a time series, manifests: a manifest
  /// whose rows happen to carry one label each is still 0; set labels = single yourself)
  /// and for NULL.
  /// Thread-safe. Since 0.3.0.
  /// C: int32_t msc_dataset_single_label(const msc_dataset *ds);
  int32_t single_label() const;

  /// Name of class i (0 ≤ i < C), owned by the dataset and valid until msc_dataset_free;
  /// NULL for NULL or i out of range. Since 0.1.0.
  /// C: const char *msc_dataset_class_name(const msc_dataset *ds, int64_t i);
  const char *class_name(int64_t i) const;

  /// Whether the dataset's samples carry a per-pixel label map (a mask, docs/data.md
  /// "Masks"): Sen1Floods11 ("sen1floods11": not water / water); with the option
  /// data.masks = 1, BigEarthNet v2 (the 19 classes from the CORINE reference maps) and
  /// SEN12MS (the 10 simplified IGBP classes from the land-cover rasters). When they do,
  /// msc_dataset_fill_batch and the loader put each sample's mask into the batch
  /// (msc_batch_mask): size × size int32 values, each a class 0..classes−1 or ignore_index
  /// for a pixel without a class (no data, a code outside the nomenclature, a NaN input
  /// pixel where the format says so). ignore_index is −1 for every built-in format. The
  /// mask's classes are their own list (msc_dataset_mask_class_name), which may differ from
  /// the patch labels (msc_dataset_class_name): Sen1Floods11 has masks and no patch labels.
  /// Any of classes, ignore_index and size may be NULL.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (ds NULL); MSC_E_NOT_FOUND (the samples have no
  /// mask; outputs untouched). Thread-safe. Since 0.3.0.
  /// C: msc_status msc_dataset_mask_info(const msc_dataset *ds, int64_t *classes, int32_t *ignore_index, int64_t *size);
  Result mask_info(int64_t *classes, int32_t *ignore_index, int64_t *size) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<int64_t, int32_t, int64_t> mask_info() const;
#endif

  /// Name of mask class i (0 ≤ i < the classes of msc_dataset_mask_info), owned by the
  /// dataset and valid until msc_dataset_free; NULL for NULL, a dataset without masks or i
  /// out of range. Thread-safe. Since 0.3.0.
  /// C: const char *msc_dataset_mask_class_name(const msc_dataset *ds, int64_t i);
  const char *mask_class_name(int64_t i) const;

  /// Number of modalities of each sample (0 for NULL). Since 0.1.0.
  /// C: int32_t msc_dataset_modality_count(const msc_dataset *ds);
  int32_t modality_count() const;

  /// Name of modality i ("s1", "s2", ...), the name its patches get in a batch; owned by
  /// the dataset. NULL for NULL or i out of range. Since 0.1.0.
  /// C: const char *msc_dataset_modality_name(const msc_dataset *ds, int32_t i);
  const char *modality_name(int32_t i) const;

  /// Bands and patch size (height = width, after resampling) of modality i.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i out of range).
  /// Since 0.1.0.
  /// C: msc_status msc_dataset_modality_shape(const msc_dataset *ds, int32_t i, int64_t *bands, int64_t *size);
  Result modality_shape(int32_t i, int64_t *bands, int64_t *size) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<int64_t, int64_t> modality_shape(int32_t i) const;
#endif

  /// Name of band b of modality i ("B02", "VV", "NDVI"; the selection of data.s1_bands /
  /// data.s2_bands in its order), owned by the dataset; NULL for a format without band
  /// names (manifest), for NULL, or i or b out of range. Since 0.4.0.
  /// C: const char *msc_dataset_band_name(const msc_dataset *ds, int32_t i, int64_t b);
  const char *band_name(int32_t i, int64_t b) const;

  /// The unit of the values the dataset gives for band b of modality i: physical = value ×
  /// *scale + *offset. Sentinel-2 digital numbers (BigEarthNet, EuroSAT, SEN12MS,
  /// Sen1Floods11): scale 1e-4, offset 0 (reflectance); Sentinel-1 in dB: 1 and 0; series
  /// and PASTIS: 1 / data.sits.scale and data.sits.offset / data.sits.scale (recurrence
  /// plots: 1 and 0); manifest: 1 and 0 (unknown). Sentinel-2 dates of processing baseline
  /// 04.00 or later are shifted back to the earlier convention when read (docs/data.md,
  /// "Processing baselines"), so one scale and offset hold for every date.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i or b out of range).
  /// Since 0.4.0.
  /// C: msc_status msc_dataset_band_scale(const msc_dataset *ds, int32_t i, int64_t b, double *scale, double *offset);
  Result band_scale(int32_t i, int64_t b, double *scale, double *offset) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<double, double> band_scale(int32_t i, int64_t b) const;
#endif

  /// Writes the id of sample i (e.g. the BigEarthNet patch name) into buf with the size
  /// protocol of msc_options_get_string: up to cap-1 bytes and a NUL; *len (if not NULL)
  /// receives the full length, so cap = 0 (buf may then be NULL) asks for the size.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL ds, NULL buf with cap > 0, i out of
  /// range); MSC_E_BUFFER_TOO_SMALL (cap ≤ the length; buf holds the truncated prefix).
  /// Since 0.1.0.
  /// C: msc_status msc_dataset_sample_id(const msc_dataset *ds, int64_t i, char *buf, size_t cap, size_t *len);
  Result sample_id(int64_t i, char *buf, size_t cap, size_t *len) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result sample_id(int64_t i, std::string &out) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::string sample_id(int64_t i) const;
#endif

  /// The time series behind sample i of a time-series dataset ("pastis", "series"), on the
  /// dataset's time axis (data.sits.time, data.sits.length): *t dates × *c bands into out
  /// (row-major, date-major), in the files' units (PASTIS: L2A digital numbers). A pixel
  /// sample gives its pixel's series, a patch sample the mean over the patch's pixels that
  /// are not missing. NaN marks a missing value: a date masked as cloudy
  /// (data.sits.cloud_blue), a padded date, a pixel with no valid date. days (NULL, or room
  /// for *t values) receives each date as days since 1970-01-01 (the resampling grid; the
  /// padded series' own dates, NaN for padding).
  /// Call with out NULL and cap 0 to learn *t and *c.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL ds, t or c; out NULL with cap > 0; i out of
  /// range); MSC_E_UNSUPPORTED (a format without time series); MSC_E_BUFFER_TOO_SMALL (cap
  /// < t·c; nothing written); MSC_E_IO / MSC_E_BAD_FORMAT (the file, named). Thread-safe.
  /// Since 0.3.0.
  /// C: msc_status msc_dataset_series(const msc_dataset *ds, int64_t i, float *out, size_t cap, double *days, int64_t *t, int64_t *c);
  Result series(int64_t i, float *out, size_t cap, double *days, int64_t *t, int64_t *c) const;
  /// The same with each pointer + length pair as a span (a std::string for a string buffer).
  Result series(int64_t i, span<float> out, double *days, int64_t *t, int64_t *c) const;

  /// Reads samples indices[0..n) into batch: one n×bands×size×size float32 array per
  /// modality, under the dataset's modality names (msc_batch_set_modality), and the n×C
  /// multi-hot labels; the batch's "labelled" flags are cleared (every sample has labels).
  /// Since 0.3.0 also the samples' masks when the dataset has them (msc_dataset_mask_info),
  /// read into the batch's own storage; otherwise the batch is left without a mask.
  /// A batch that held another number of samples is emptied first, so one batch can be
  /// reused for every step. Samples are read on OpenMP threads; the result does not depend
  /// on their number. Bands below the patch size are resampled (data.resample).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n ≤ 0, an index outside 0..size-1);
  /// MSC_E_IO, MSC_E_BAD_FORMAT, MSC_E_UNSUPPORTED (a file cannot be read or decoded) and
  /// MSC_E_NUMERICAL (a NaN or infinite pixel where the format allows none), each with a
  /// message naming the sample and the file; MSC_E_OUT_OF_MEMORY. On error the batch is
  /// left empty. Pixels are read straight into the batch's own arrays, reused from call to
  /// call when the shapes fit. Thread-safe for distinct batches. Since 0.1.0.
  /// C: msc_status msc_dataset_fill_batch(const msc_dataset *ds, const int64_t *indices, int64_t n, msc_batch *batch);
  Result fill_batch(const int64_t *indices, int64_t n, Batch &batch) const;

  /// The published per-band mean and standard deviation of modality i for the selected
  /// bands in their order (BigEarthNet v2, SEN12MS: docs/data.md), written to mean[0..bands)
  /// and std[0..bands).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (i out of range, or no
  /// published statistics for one of the selected bands, e.g. BigEarthNet's B01 and B09:
  /// use msc_dataset_compute_stats); MSC_E_BUFFER_TOO_SMALL (cap < bands). Since 0.1.0.
  /// C: msc_status msc_dataset_stats(const msc_dataset *ds, int32_t i, float *mean, float *std, size_t cap);
  Result stats(int32_t i, float *mean, float *std, size_t cap) const;

  /// Computes the per-band mean and (population) standard deviation of modality i over
  /// max_samples samples spread evenly over the dataset (all of them when max_samples ≤ 0
  /// or ≥ its size), after resampling, accumulated in double precision in sample order:
  /// the result is the same for any thread count.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, an empty dataset); MSC_E_NOT_FOUND (i
  /// out of range); MSC_E_BUFFER_TOO_SMALL (cap < bands); the errors of
  /// msc_dataset_fill_batch for an unreadable file. Since 0.1.0.
  /// C: msc_status msc_dataset_compute_stats(const msc_dataset *ds, int32_t i, int64_t max_samples, float *mean, float *std, size_t cap);
  Result compute_stats(int32_t i, int64_t max_samples, float *mean, float *std,
                       size_t cap) const;

private:
  msc_dataset *p_ = nullptr;
};

/// Owns an msc_loader (null when empty); frees it with msc_loader_free.
class Loader {
public:
  Loader() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Loader(msc_loader *p) noexcept : p_(p) {}
  ~Loader() { reset(); }
  Loader(const Loader &) = delete;
  Loader &operator=(const Loader &) = delete;
  Loader(Loader &&other) noexcept : p_(other.release()) {}
  Loader &operator=(Loader &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_loader *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_loader_free.
  msc_loader *release() noexcept {
    msc_loader *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_loader_free) and takes p.
  void reset(msc_loader *p = nullptr) noexcept {
    msc_loader *old = p_;
    p_ = p;
    if (old != nullptr) msc_loader_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Creates a loader over the samples of ds and starts its worker threads, which begin
  /// reading the first batches at once.
  /// ds: an open dataset (required); it must outlive the loader.
  /// batch_size: samples per batch, >= 1.
  /// seed: seeds the per-epoch permutations (any value).
  /// workers: background threads, 0..64 (0 means 1).
  /// drop_last: non-zero drops the last, smaller batch of every epoch, so that every
  ///   batch has exactly batch_size samples (then the dataset needs at least batch_size
  ///   samples); zero keeps it (an epoch has ceil(size / batch_size) batches).
  /// out: receives the loader (required).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, batch_size < 1, workers out of range, an
  /// empty dataset, or drop_last with fewer samples than batch_size); MSC_E_OUT_OF_MEMORY;
  /// MSC_E_INTERNAL (a thread could not be started). *out is untouched on error.
  /// Since 0.1.0.
  /// C: msc_status msc_loader_create(msc_dataset *ds, int64_t batch_size, uint64_t seed, int32_t workers, int32_t drop_last, msc_loader **out);
  static Result create(Dataset &ds, int64_t batch_size, uint64_t seed, int32_t workers,
                       int32_t drop_last, Loader &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Loader create(Dataset &ds, int64_t batch_size, uint64_t seed, int32_t workers,
                       int32_t drop_last);
#endif

  /// Creates a loader that hands out one rank's share of every batch of the loader
  /// msc_loader_create(ds, batch_size, seed, workers, drop_last) would make, for
  /// data-parallel training (msc_train_set_dist): the same global order, and of every
  /// global batch of batch_size samples, rows floor(rank·batch_size/ranks) …
  /// floor((rank+1)·batch_size/ranks) − 1 (batch_size/ranks rows each when it divides).
  /// The ranks' shares concatenated in rank order are the global batch, so R ranks
  /// reading with the same arguments train on what one process reads with ranks = 1.
  /// Each rank reads only its own samples. msc_loader_batches_per_epoch counts global
  /// batches.
  /// rank, ranks: this process's share, 0 <= rank < ranks (msc_dist_rank, msc_dist_size);
  ///   ranks = 1 is msc_loader_create.
  /// drop_last: required (non-zero) when ranks > 1, so that every batch is full and
  ///   every share has samples; batch_size >= ranks.
  /// Returns what msc_loader_create returns, and MSC_E_INVALID_ARGUMENT for a rank out of
  /// range, ranks > 1 without drop_last or batch_size < ranks. Since 0.5.0.
  /// C: msc_status msc_loader_create_shard(msc_dataset *ds, int64_t batch_size, uint64_t seed, int32_t workers, int32_t drop_last, int32_t rank, int32_t ranks, msc_loader **out);
  static Result create_shard(Dataset &ds, int64_t batch_size, uint64_t seed, int32_t workers,
                             int32_t drop_last, int32_t rank, int32_t ranks, Loader &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Loader create_shard(Dataset &ds, int64_t batch_size, uint64_t seed, int32_t workers,
                             int32_t drop_last, int32_t rank, int32_t ranks);
#endif

  /// Fills batch with the next batch: every modality of the dataset (bands × size × size
  /// float32 per sample, raw values) and the multi-hot labels, as msc_dataset_fill_batch
  /// does; whatever batch held before is replaced. Blocks until that batch is ready.
  /// batch: a batch from msc_batch_create (required).
  /// epoch: receives the epoch (0, 1, ...) the batch belongs to, or NULL.
  /// Returns MSC_OK, or the error a worker met while reading this batch (MSC_E_IO,
  /// MSC_E_BAD_FORMAT, ...: msc_last_error() holds the worker's message, naming the
  /// sample and the file); MSC_E_INVALID_ARGUMENT (NULL). After an error, batch and *epoch
  /// are untouched and the failed batch is skipped: the next call returns the batch after
  /// it. Not thread-safe: one thread per loader. Since 0.1.0.
  /// C: msc_status msc_loader_next(msc_loader *loader, msc_batch *batch, int64_t *epoch);
  Result next(Batch &batch, int64_t *epoch);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int64_t next(Batch &batch);
#endif

  /// Number of batches in one epoch of the loader: ceil(size / batch_size), or
  /// floor(size / batch_size) with drop_last; 0 for NULL. Since 0.5.0.
  /// C: int64_t msc_loader_batches_per_epoch(const msc_loader *loader);
  int64_t batches_per_epoch() const;

private:
  msc_loader *p_ = nullptr;
};

/// Owns an msc_scene (null when empty); frees it with msc_scene_free.
class Scene {
public:
  Scene() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Scene(msc_scene *p) noexcept : p_(p) {}
  ~Scene() { reset(); }
  Scene(const Scene &) = delete;
  Scene &operator=(const Scene &) = delete;
  Scene(Scene &&other) noexcept : p_(other.release()) {}
  Scene &operator=(Scene &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_scene *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_scene_free.
  msc_scene *release() noexcept {
    msc_scene *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_scene_free) and takes p.
  void reset(msc_scene *p = nullptr) noexcept {
    msc_scene *old = p_;
    p_ = p;
    if (old != nullptr) msc_scene_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Opens a scene: reads the layout and georeferencing of every raster (no pixels) and
  /// checks that they fit the model and each other (above).
  /// paths: n GeoTIFF paths, one per modality of the model, in the model's modality order
  ///   (msc_model_modality_name); each raster's band count must be the modality's bands.
  ///   A NULL path (at least one must not be) makes that modality absent: it is neither
  ///   read nor put into the batches, and the outputs are what the model computes without
  ///   it (fused embeddings and msc_predict accept any non-empty subset of modalities; a
  ///   decoder or a per-modality embedding needing the absent one fails in msc_scene_write
  ///   with that call's error).
  /// n: msc_model_modality_count(model).
  /// model: the model to map with (required); borrowed, it must outlive the scene.
  /// opts: NULL (defaults) or options of which "scene.stride" (0: P; 1..P), "scene.batch"
  ///   (1..1024), "scene.resample", "scene.blend", "scene.mask", "scene.max_masked",
  ///   "scene.overviews", "scene.embedding_type" and "scene.harmonize" are read (other keys
  ///   are ignored).
  ///   scene.mask (since 0.4.0): a one-band GeoTIFF cloud / no-data mask on the scene's
  ///   grid or coarser by an integer factor (nearest-neighbour upsampled), georeferenced
  ///   like the rasters (checked as they are); a nonzero (or NaN) value masks the pixel.
  ///   A tile whose masked share exceeds scene.max_masked (default 0.5) is not run (its
  ///   pixels are nodata); in the other tiles masked pixels are treated as missing pixels
  ///   (filled with the band means, nodata in the outputs). scene.overviews (default 1):
  ///   the outputs get reduced-resolution overviews (nearest for the class map, average
  ///   for probabilities and embeddings). scene.harmonize (since 0.5.0, default 1): a
  ///   modality whose name starts with "s2" (any case) and whose raster is of Sentinel-2
  ///   processing baseline 04.00 or later (PROCESSING_BASELINE in a metadata.json beside
  ///   it, else the N<xxyy> field of a product name in its path, as the series reader
  ///   decides) has 1000 subtracted from every value read, putting it in the convention of
  ///   earlier baselines; 0 reads values as they are.
  /// out: receives the scene (required).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, every path NULL, n other than the model's
  /// modality count, a stride above P); MSC_E_IO / MSC_E_BAD_FORMAT (a raster cannot be read: the message
  /// names it); MSC_E_SHAPE (a raster with the wrong band count, smaller than a tile, or
  /// not on the scene's grid: named; a mask with more than one band or off the grid);
  /// MSC_E_UNSUPPORTED (modalities with different patch sizes; georeferencing that cannot
  /// be carried over, such as ground control points); MSC_E_OUT_OF_MEMORY. *out is
  /// untouched on error. Since 0.4.0.
  /// C: msc_status msc_scene_open(const char * const *paths, int32_t n, msc_model *model, const msc_options *opts, msc_scene **out);
  static Result open(const char *const *paths, int32_t n, Model &model, const Options &opts,
                     Scene &out);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  static Scene open(const char *const *paths, int32_t n, Model &model, const Options &opts);
#endif

  /// The scene's grid: width and height in pixels of the finest raster, which the outputs
  /// have too, and the number of tiles the model will see (any of the outputs may be NULL).
  /// Returns MSC_OK or MSC_E_INVALID_ARGUMENT (scene NULL). Since 0.4.0.
  /// C: msc_status msc_scene_size(const msc_scene *scene, int64_t *width, int64_t *height, int64_t *tiles);
  Result size(int64_t *width, int64_t *height, int64_t *tiles) const;
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  std::tuple<int64_t, int64_t, int64_t> size() const;
#endif

  /// Runs the model over the scene and writes the outputs, in one pass over the tiles:
  /// mask_path (or NULL): the class map, one band, uint8 when the model has at most 255
  ///   classes (nodata 255, a colour table), else uint16 (nodata 65535);
  /// probs_path (or NULL): the class probabilities, C float32 bands (nodata NaN), band i
  ///   described by class i's name.
  /// At least one must be given. Both are GeoTIFFs of the scene's size, tiled 256 × 256,
  /// DEFLATE-compressed, with the finest raster's georeferencing (GeoKeys copied, tie point
  /// and pixel scale or transformation), the class names in GDAL metadata
  /// (CLASS_<i> items) and band descriptions, and (scene.overviews, the default) overviews:
  /// nearest for the class map, averaged for the probabilities. Since 0.5.0 each is a
  /// Cloud-Optimised GeoTIFF (GDAL reports LAYOUT=COG: every IFD before the data, the
  /// smallest overview's tiles first; docs/scenes.md), also without overviews. Each is
  /// written through temporary files next to it and renamed into place only when complete:
  /// an error or a cancellation leaves no file and an older file at the path untouched.
  /// progress (or NULL) is called after every row of tiles with (tiles done, total);
  /// returning non-zero cancels.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (scene NULL, both paths NULL or the same);
  /// MSC_E_CANCELLED; MSC_E_IO (an output cannot be written, an input cannot be read: the
  /// message names the file); MSC_E_BAD_FORMAT; the errors of msc_predict_mask /
  /// msc_predict (among them MSC_E_NUMERICAL when finite but huge pixels overflow the
  /// model's activations, since 0.5.0: no output is written rather than NaN probabilities
  /// for pixels that are not missing); MSC_E_OUT_OF_MEMORY. Since 0.4.0.
  /// C: msc_status msc_scene_write(msc_scene *scene, const char *mask_path, const char *probs_path, msc_progress_fn progress, void *user);
  Result write(cstr mask_path, cstr probs_path, msc_progress_fn progress, void *user);

  /// Writes an embedding map: the model's embedding `which` (MSC_EMBED_FUSED, ...; as
  /// msc_embed) of every tile, one output pixel per tile, at tile resolution. The tiles are
  /// those at (i·S, j·S), S = scene.stride, for every i, j with the tile inside the scene
  /// (no tile is shifted inward: (width − P) / S + 1 by (height − P) / S + 1 pixels, any
  /// remainder narrower than S at the right and bottom edges is left out). Output pixel
  /// (i, j) stands for the S × S centre block of its tile: its pixel size is S times the
  /// scene's, its origin (P − S) / 2 scene pixels in from the scene's (msci_georef_window;
  /// with the default stride the pixel is the tile's footprint). Its value is exactly what
  /// msc_embed gives for that tile's window with missing pixels given the band means (as
  /// msc_scene_write); a tile that does not run (no valid pixel, or a masked share above
  /// scene.max_masked) is NaN in every band.
  /// The file: size-of-embedding bands, float32 (or IEEE float16 with option
  /// scene.embedding_type = float16, read by GDAL as Float32), nodata NaN, tiled 256 × 256,
  /// DEFLATE, the scene's georeferencing moved to the tile grid, averaged overviews unless
  /// scene.overviews = 0; written atomically as msc_scene_write's outputs. Progress counts
  /// tiles of the map after each row.
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (scene or path NULL, `which` not valid for the
  /// model); MSC_E_CANCELLED; MSC_E_IO; the errors of msc_embed; MSC_E_OUT_OF_MEMORY.
  /// Since 0.4.0.
  /// C: msc_status msc_scene_write_embeddings(msc_scene *scene, const char *path, int32_t which, msc_progress_fn progress, void *user);
  Result write_embeddings(cstr path, int32_t which, msc_progress_fn progress, void *user);

private:
  msc_scene *p_ = nullptr;
};

/// Owns an msc_dist (null when empty); frees it with msc_dist_free.
class Dist {
public:
  Dist() noexcept = default;
  /// Takes ownership of p (NULL allowed).
  explicit Dist(msc_dist *p) noexcept : p_(p) {}
  ~Dist() { reset(); }
  Dist(const Dist &) = delete;
  Dist &operator=(const Dist &) = delete;
  Dist(Dist &&other) noexcept : p_(other.release()) {}
  Dist &operator=(Dist &&other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  /// The raw handle, still owned by this object.
  msc_dist *get() const noexcept { return p_; }
  /// Gives up ownership: the caller frees the result with msc_dist_free.
  msc_dist *release() noexcept {
    msc_dist *p = p_;
    p_ = nullptr;
    return p;
  }
  /// Frees the handle held (msc_dist_free) and takes p.
  void reset(msc_dist *p = nullptr) noexcept {
    msc_dist *old = p_;
    p_ = p;
    if (old != nullptr) msc_dist_free(old);
  }
  explicit operator bool() const noexcept { return p_ != nullptr; }

  /// Opens a communicator over the processes of a distributed run.
  /// engine: "mpi" (required): the MPI module, libmosaic_mpi.so. MPI is initialised
  ///   (MPI_Init_thread, MPI_THREAD_FUNNELED) unless the program already did, and
  ///   finalised by msc_dist_free in that case. "nccl": the NCCL module,
  ///   libmosaic_nccl.so, one GPU per rank (local rank modulo the visible devices); MPI
  ///   starts it as for "mpi" (comm alike), the collectives are NCCL's, staged through
  ///   device memory (docs/distributed.md, "GPU with NCCL"). Without a CUDA device it
  ///   returns MSC_E_BACKEND_UNAVAILABLE before touching MPI.
  /// comm: NULL for every process of the job (MPI_COMM_WORLD), or the address of an
  ///   MPI_Comm of the program (a communicator it created), which is duplicated: the
  ///   program keeps and frees its own.
  /// out: receives the communicator (required).
  /// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL); MSC_E_NOT_FOUND (an unknown engine);
  /// MSC_E_BACKEND_UNAVAILABLE (the module is missing or unusable: the message says where
  /// it was looked for and why); MSC_E_COMM (MPI failed to start); MSC_E_OUT_OF_MEMORY.
  /// *out is untouched on error. Not thread-safe (MPI initialisation). Since 0.5.0.
  /// C: msc_status msc_dist_create(const char *engine, void *comm, msc_dist **out);
  static Result create(cstr engine, void *comm, Dist &out);

  /// This process's rank, 0..size-1; 0 for NULL. Thread-safe. Since 0.5.0.
  /// C: int32_t msc_dist_rank(const msc_dist *dist);
  int32_t rank() const;

  /// The number of processes; 1 for NULL. Thread-safe. Since 0.5.0.
  /// C: int32_t msc_dist_size(const msc_dist *dist);
  int32_t size() const;

  /// Sets how long any collective may wait for the other ranks, in seconds (0: forever;
  /// default 300). Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, negative or not finite).
  /// Since 0.5.0.
  /// C: msc_status msc_dist_set_timeout(msc_dist *dist, double seconds);
  Result set_timeout(double seconds);

  /// Waits until every rank has called it (within the timeout). Returns MSC_OK;
  /// MSC_E_INVALID_ARGUMENT (NULL); MSC_E_COMM. Since 0.5.0.
  /// C: msc_status msc_dist_barrier(msc_dist *dist);
  Result barrier();

  /// Tells every rank whether every rank is fit to go on: a collective (every rank calls it
  /// at the same point, within the timeout) for work that ranks do apart from the library's
  /// collectives, such as rank 0 writing a log or a checkpoint. Without it, a rank that
  /// fails there and ends its program leaves the others waiting in their next collective
  /// until the timeout, and finalising MPI (msc_dist_free) on the failed rank waits for
  /// them as well; with it, every rank learns of the failure at once and may then free the
  /// communicator and exit (docs/distributed.md, "Failures").
  /// mine: this rank's outcome, MSC_OK or the error it met. why: what went wrong, in a
  ///   few words (NULL or "": the thread's msc_last_error() when mine is an error); only
  ///   its first 255 bytes are sent.
  /// failed: if not NULL, receives how many ranks passed an error once the agreement is
  ///   made (0 with MSC_OK), or -1 when it could not be made (a collective failed).
  /// Returns MSC_OK when every rank passed MSC_OK. Otherwise a rank that passed an error
  /// gets it back (message: why); the others get MSC_E_COMM with a message naming the
  /// lowest failed rank, its status and its why (and how many ranks failed). The
  /// communicator stays usable after an agreement, whatever it says. MSC_E_INVALID_ARGUMENT
  /// (dist NULL, or mine not a status of this library; nothing is sent); MSC_E_OUT_OF_MEMORY
  /// (nothing is sent: the others time out); MSC_E_COMM with *failed = -1 (the collective
  /// failed or timed out, or an earlier one did: the communicator is unusable). Since 0.5.0.
  /// C: msc_status msc_dist_agree(msc_dist *dist, msc_status mine, const char *why, int32_t *failed);
  Result agree(msc_status mine, cstr why, int32_t *failed);
#ifndef MOSAIC_NO_EXCEPTIONS
  /// The same, returning the out-parameter(s); throws mosaic::Error on failure.
  int32_t agree(msc_status mine, cstr why);
#endif

  /// Seconds this process has spent in the communicator's collectives (waiting included)
  /// since it was created: the communication share of training. 0 for NULL. Since 0.5.0.
  /// C: double msc_dist_comm_seconds(const msc_dist *dist);
  double comm_seconds() const;

private:
  msc_dist *p_ = nullptr;
};

// ---- free functions ----

/// Version of the library loaded at run time, encoded like MSC_VERSION_NUMBER.
/// Compare with MSC_VERSION_NUMBER to detect a header/library mismatch.
/// Thread-safe. Cannot fail. Since 0.1.0.
/// C: uint32_t msc_version(void);
inline uint32_t version() {
  return msc_version();
}

/// Version of the library loaded at run time as "MAJOR.MINOR.PATCH" (static storage).
/// Thread-safe. Cannot fail. Since 0.1.0.
/// C: const char *msc_version_string(void);
inline const char *version_string() {
  return msc_version_string();
}

/// A short, static English description of a status code ("invalid argument").
/// Unknown codes give "unknown status". Never returns NULL.
/// Thread-safe. Since 0.1.0.
/// C: const char *msc_status_string(msc_status status);
inline const char *status_string(msc_status status) {
  return msc_status_string(status);
}

/// The message of the last error raised on the calling thread, naming what went wrong
/// (file, shape, value). "" when no call on this thread has failed yet.
/// The pointer stays valid until the next libmosaic call on the same thread.
/// Each thread has its own message. Since 0.1.0.
/// C: const char *msc_last_error(void);
inline const char *last_error() {
  return msc_last_error();
}

/// Clears the calling thread's last error message (msc_last_error() returns "").
/// Thread-safe (affects only the calling thread). Since 0.1.0.
/// C: void msc_clear_error(void);
inline void clear_error() {
  return msc_clear_error();
}

/// Installs (or, with fn == NULL, removes) the process-wide log callback. Messages of a
/// level above max_level are dropped. Without a callback nothing is ever printed.
/// Returns MSC_OK, or MSC_E_INVALID_ARGUMENT if max_level is not an MSC_LOG_* value.
/// Thread-safe; a callback running concurrently may still see the previous setting.
/// Since 0.1.0.
/// C: msc_status msc_set_log_callback(msc_log_fn fn, void *user, int32_t max_level);
inline Result set_log_callback(msc_log_fn fn, void *user, int32_t max_level) {
  return detail::check(msc_set_log_callback(fn, user, max_level));
}

/// Number of known backends, available or not (at least 1: "cpu").
/// Thread-safe. Cannot fail. Since 0.1.0.
/// C: int32_t msc_backend_count(void);
inline int32_t backend_count() {
  return msc_backend_count();
}

/// Name of backend i (0 <= i < msc_backend_count()), or NULL when i is out of range.
/// Index 0 is always "cpu". The string lives as long as the process.
/// Thread-safe. Since 0.1.0.
/// C: const char *msc_backend_name(int32_t i);
inline const char *backend_name(int32_t i) {
  return msc_backend_name(i);
}

/// Whether the backend called name can be used on this machine.
/// Returns MSC_OK if it can; MSC_E_BACKEND_UNAVAILABLE with the reason in
/// msc_last_error() (module missing, failed to load, wrong API version, no device)
/// if it is known but unusable; MSC_E_NOT_FOUND for an unknown name;
/// MSC_E_INVALID_ARGUMENT for NULL.
/// Thread-safe. Since 0.1.0.
/// C: msc_status msc_backend_available(const char *name);
inline Result backend_available(cstr name) {
  return detail::check(msc_backend_available(name.c_str()));
}

/// Resolves a backend request as model creation does: "auto" picks "cuda" when it is
/// available and "cpu" otherwise; any other name must be available itself — an
/// explicit request never falls back silently.
/// On success *chosen points to the chosen backend's name (lives as long as the
/// process). Returns MSC_OK; MSC_E_BACKEND_UNAVAILABLE (with the reason) when an
/// explicitly named backend is unusable; MSC_E_NOT_FOUND for an unknown name;
/// MSC_E_INVALID_ARGUMENT if request or chosen is NULL. *chosen is untouched on error.
/// Thread-safe. Since 0.1.0.
/// C: msc_status msc_backend_select(const char *request, const char **chosen);
inline Result backend_select(cstr request, const char **chosen) {
  return detail::check(msc_backend_select(request.c_str(), chosen));
}

/// Writes a synthetic dataset of n patches in the on-disk layout of a real format, for
/// tests, benchmarks and demos, readable like the real thing (msc_dataset_open(dir,
/// "bigearthnet-v2", ...); NumPy or a PASTIS loader for "pastis"). Supported formats:
/// - "bigearthnet-v2" (docs/data.md): per patch the 12 Sentinel-2 bands as uint16 GeoTIFFs
///   at their native sizes (120, 60 and 20 pixels), Sentinel-1 VV and VH as float32 dB
///   120×120, and metadata.tsv (splits train/validation/test about 70/15/15 %, no snow or
///   cloud). Each patch carries 1 to 3 of the 19 classes, each drawn as a region with a
///   class-specific spectral signature, texture and backscatter, so that the labels can be
///   learnt from the pixels.
/// - "pastis" (docs/pimc.md, "Synthetic time series"): satellite image time series in the
///   PASTIS layout, patch id = 0..n−1: DATA_S2/S2_<id>.npy (int16 T × 10 × 32 × 32, bands
///   B2, B3, B4, B5, B6, B7, B8, B8A, B11, B12 as L2A digital numbers, reflectance × 10000;
///   T = 20..28 dates of 2019, varying by patch), ANNOTATIONS/TARGET_<id>.npy (uint8
///   3 × 32 × 32: channel 0 the class, 0 background, 1..18 crops, 19 void; channels 1 and 2
///   copies of it), INSTANCE_ANNOTATIONS/INSTANCES_<id>.npy (int64 32 × 32: parcel id, 0 for
///   background) and metadata.geojson (a FeatureCollection, per patch ID_PATCH, Fold 1..5,
///   TILE, N_Parcel, Parcel_Cover, dates-S2 {"0": YYYYMMDD, ...}, synth-cloudy-S2 the
///   indices of the cloudy dates). A patch holds rectangular parcels of at least two crop
///   classes whose NDVI follows a class-specific double-logistic curve, plus noise and a
///   10–25 % share of cloudy dates (bright in every band).
/// - "sen1floods11" (docs/data.md, "Sen1Floods11"): hand-labelled flood chips, id
///   <region>_<number>: S1Hand/<id>_S1Hand.tif (float32 VV, VH in dB, NaN where missing),
///   S2Hand/<id>_S2Hand.tif (13 bands uint16, B1..B8, B8A, B9..B12),
///   LabelHand/<id>_LabelHand.tif (int16: −1 no data, 0 not water, 1 water) and the split
///   lists flood_train_data.csv, flood_valid_data.csv, flood_test_data.csv (about
///   60/20/20 %). Rivers and flooded areas are dark in S1 (VV ≈ −20 dB) and have a high
///   NDWI in S2; clouds (labelled −1) and NaN S1 pixels occur as in the real data. Chips
///   are 512 × 512 like the real ones, or synth.size × synth.size (16..512) from opts.
///   Since 0.4.0 every file is georeferenced like the real chips (EPSG:4326, a tie point
///   and a 10 m pixel scale; the three files of a chip share one grid).
/// dir: the directory to write to, created if missing. It must be empty, or hold a
///   dataset of the same format already (metadata.tsv, metadata.geojson: files of the same
///   names are replaced); any other non-empty directory is refused, so user data is never
///   overwritten.
/// format: "bigearthnet-v2", "pastis" or "sen1floods11". n: number of patches,
///   1..1000000. seed: any value; the same seed and n give byte-identical files (whatever
///   the number of threads). opts: NULL, or options of which "synth.size" is read
///   (sen1floods11 only; other keys are ignored).
/// Every file is written under a temporary name and then renamed, and the metadata file
/// comes last: an interrupted call never leaves a truncated file under a final name.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n out of range, a non-empty directory
/// without the format's metadata file); MSC_E_UNSUPPORTED (another format); MSC_E_IO (the
/// message names the file); MSC_E_OUT_OF_MEMORY.
/// Thread-safe (calls writing to distinct directories are independent). Since 0.1.0;
/// "pastis" since 0.2.0; "sen1floods11" since 0.3.0.
/// C: msc_status msc_synth_write(const char *dir, const char *format, int64_t n, uint64_t seed, const msc_options *opts);
inline Result synth_write(cstr dir, cstr format, int64_t n, uint64_t seed,
                          const Options &opts) {
  return detail::check(msc_synth_write(dir.c_str(), format.c_str(), n, seed, opts.get()));
}

/// Computes the summary metrics of scores against labels into out[0..out_len), indexed
/// by the MSC_METRIC_* values.
/// scores: N × C scores (required, finite). labels: N × C bytes, each 0 or 1 (required).
/// n: N >= 1. c: C >= 1. threshold: t for F1 and the Hamming loss (not NaN; 0.5 for
///   probabilities).
/// out: receives the metrics (required unless out_len is 0). out_len: its length. With
///   out_len < MSC_METRIC_COUNT only the first out_len metrics are written (a program
///   built against an older header gets the metrics it knows); entries from the
///   library's own count on, i.e. metrics of a newer header, are set to NaN. With
///   out_len = 0 the inputs are only validated.
/// MSC_METRIC_MACRO_AP is NaN when no class has a positive; MSC_METRIC_MICRO_AP is NaN
/// when no entry is positive; MSC_METRIC_SKIPPED_CLASSES says how many classes the macro
/// AP left out (msc_metrics_per_class gives which: support 0).
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL scores, labels or out; n or c <= 0, or
/// N·C too large; a NaN threshold; out_len < 0; a label other than 0 or 1: the message
/// names the index); MSC_E_NUMERICAL (a NaN or infinite score: the message names the
/// sample and the class); MSC_E_OUT_OF_MEMORY. out is untouched on error.
/// Thread-safe. Since 0.1.0.
/// C: msc_status msc_metrics_compute(const float *scores, const uint8_t *labels, int64_t n, int64_t c, float threshold, double *out, int32_t out_len);
inline Result metrics_compute(const float *scores, const uint8_t *labels, int64_t n, int64_t c,
                              float threshold, double *out, int32_t out_len) {
  return detail::check(msc_metrics_compute(scores, labels, n, c, threshold, out, out_len));
}

/// Per-class metrics: for every class k = 0 .. C−1, ap[k] (NaN for a class without any
/// positive), f1[k], hamming[k] (the share of the N samples where ŷ ≠ y for class k),
/// brier[k] (the mean of (score − y)² over the N samples) and support[k] (the number of
/// positive samples).
/// scores, labels, n, c, threshold: as msc_metrics_compute.
/// ap, f1, hamming, brier, support: arrays of cap elements, each may be NULL (that
///   metric is not computed; with ap NULL nothing is sorted); C values are written to
///   each non-NULL one.
/// cap: the capacity of every non-NULL array, >= C.
/// Returns MSC_OK; MSC_E_BUFFER_TOO_SMALL (cap < C while an array is given);
/// MSC_E_INVALID_ARGUMENT, MSC_E_NUMERICAL and MSC_E_OUT_OF_MEMORY as
/// msc_metrics_compute. The arrays are untouched on error.
/// Thread-safe. Since 0.1.0.
/// C: msc_status msc_metrics_per_class(const float *scores, const uint8_t *labels, int64_t n, int64_t c, float threshold, double *ap, double *f1, double *hamming, double *brier, int64_t *support, size_t cap);
inline Result metrics_per_class(const float *scores, const uint8_t *labels, int64_t n,
                                int64_t c, float threshold, double *ap, double *f1,
                                double *hamming, double *brier, int64_t *support, size_t cap) {
  return detail::check(msc_metrics_per_class(scores, labels, n, c, threshold, ap, f1, hamming,
                                             brier, support, cap));
}

/// Counts the confusion matrix of n (prediction, truth) pairs.
/// pred, truth: n class indices each (required).
/// n: the number of pairs, >= 0. classes: C >= 1 (C·C must fit in memory).
/// ignore_index: pairs whose truth equals it are skipped (a void class: PASTIS's 19, 255,
///   or Sen1Floods11's −1 no data — the same convention as the per-pixel losses);
///   MSC_IGNORE_NONE ignores nothing. It may lie inside [0, C): the row of that
///   class then stays 0, while predictions of it still count in its column (the metrics
///   are then those of scikit-learn on the pairs kept).
/// confusion: C × C int64, row-major, row = true class, column = predicted class
///   (required); overwritten (not accumulated into).
/// Every pair not skipped must have truth and prediction in [0, C).
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (a NULL pointer, n < 0, C < 1 or too large, or
///   a truth or prediction outside [0, C): the message names the row and the value).
/// confusion is untouched on error. Thread-safe. Since 0.3.0.
/// C: msc_status msc_metrics_confusion(const int32_t *pred, const int32_t *truth, int64_t n, int64_t classes, int32_t ignore_index, int64_t *confusion);
inline Result metrics_confusion(const int32_t *pred, const int32_t *truth, int64_t n,
                                int64_t classes, int32_t ignore_index, int64_t *confusion) {
  return detail::check(msc_metrics_confusion(pred, truth, n, classes, ignore_index, confusion));
}

/// Accuracy, macro F1 and mean IoU of a C × C confusion matrix (row = true class, column
/// = predicted class, as msc_metrics_confusion writes it), with the conventions above.
/// confusion: C × C counts, each >= 0 (required). classes: C >= 1.
/// out: receives the summary (required; out->struct_size must be set by the caller).
/// per_class_f1, per_class_iou: C doubles each, or NULL: F1_k and IoU_k of every class,
///   NaN for a class absent from both the truth and the predictions.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (a NULL confusion or out, C < 1 or too large,
///   out->struct_size smaller than the 0.3 struct, a negative count or a total that
///   overflows int64: the message names the entry). Outputs are untouched on error.
/// Thread-safe. Since 0.3.0.
/// C: msc_status msc_metrics_from_confusion(const int64_t *confusion, int64_t classes, msc_class_metrics *out, double *per_class_f1, double *per_class_iou);
inline Result metrics_from_confusion(const int64_t *confusion, int64_t classes,
                                     msc_class_metrics *out, double *per_class_f1,
                                     double *per_class_iou) {
  return detail::check(msc_metrics_from_confusion(confusion, classes, out, per_class_f1,
                                                  per_class_iou));
}

/// Top-k accuracy of n rows of class scores (N × C, any monotone score: logits or
/// probabilities) against true class indices, as scikit-learn's top_k_accuracy_score: a
/// row counts as right when its true class is among the k highest-ranked classes, the
/// classes ranked by score with ties broken towards the larger class index (scikit-learn's
/// stable sort, reversed). k ≥ C gives 1. Rows whose truth is ignore_index are skipped
/// (MSC_IGNORE_NONE: none); *counted (may be NULL) receives the rows counted, and
/// *accuracy is NaN when none is.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n < 0, C < 1, k < 1, a truth outside
/// [0, C) that is not ignored, a NaN score: the message names the row). Outputs are
/// untouched on error. Thread-safe. Since 0.3.0.
/// C: msc_status msc_metrics_top_k(const float *scores, const int32_t *truth, int64_t n, int64_t classes, int64_t k, int32_t ignore_index, double *accuracy, int64_t *counted);
inline Result metrics_top_k(const float *scores, const int32_t *truth, int64_t n,
                            int64_t classes, int64_t k, int32_t ignore_index, double *accuracy,
                            int64_t *counted) {
  return detail::check(msc_metrics_top_k(scores, truth, n, classes, k, ignore_index, accuracy,
                                         counted));
}

/// Regression errors of n predictions against n targets, over the m pairs whose truth
/// is finite (a NaN or infinite truth marks a missing target: the pair is skipped):
///   MAE = (1/m) Σ |pred − truth|,   RMSE = sqrt((1/m) Σ (pred − truth)²),
/// accumulated in double. When no pair is counted (n = 0 or every truth non-finite),
/// both are NaN and the call succeeds.
/// pred, truth: n floats each (required). n >= 0.
/// mae, rmse: receive the values (each may be NULL, not both).
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL pred or truth, both outputs NULL,
///   n < 0); MSC_E_NUMERICAL (a NaN or infinite prediction where the truth is finite:
///   the message names the row). Outputs are untouched on error.
/// Thread-safe. Since 0.3.0.
/// C: msc_status msc_metrics_regression(const float *pred, const float *truth, int64_t n, double *mae, double *rmse);
inline Result metrics_regression(const float *pred, const float *truth, int64_t n, double *mae,
                                 double *rmse) {
  return detail::check(msc_metrics_regression(pred, truth, n, mae, rmse));
}

/// The mean silhouette coefficient, equal to scikit-learn's silhouette_score(x, group,
/// metric="euclidean" | "cosine") over the samples kept: for sample i, a = its mean
/// distance to the other members of its group, b = the smallest mean distance to the
/// members of another group, s = (b − a) / max(a, b) (0 when both are 0, and 0 for a
/// sample alone in its group); *score = the mean of s, in [−1, 1].
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x, group or score; n or d < 1; an
/// unknown metric; fewer than 2 groups, or as many groups as samples kept);
/// MSC_E_NUMERICAL; MSC_E_OUT_OF_MEMORY. *score is untouched on error. Thread-safe.
/// Since 0.5.0.
/// C: msc_status msc_metrics_silhouette(const float *x, int64_t n, int64_t d, const int32_t *group, int32_t metric, double *score);
inline Result metrics_silhouette(const float *x, int64_t n, int64_t d, const int32_t *group,
                                 int32_t metric, double *score) {
  return detail::check(msc_metrics_silhouette(x, n, d, group, metric, score));
}

/// The kNN label purity: for every sample kept, the share of its k nearest other samples
/// (by the metric; ties towards the lower index) that are in its group; *purity = the
/// mean over the samples, in [0, 1] (chance level: Σ_g (n_g / N)², roughly).
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x, group or purity; n or d < 1; an
/// unknown metric; k outside 1 .. samples kept − 1); MSC_E_NUMERICAL;
/// MSC_E_OUT_OF_MEMORY. *purity is untouched on error. Thread-safe. Since 0.5.0.
/// C: msc_status msc_metrics_knn_purity(const float *x, int64_t n, int64_t d, const int32_t *group, int64_t k, int32_t metric, double *purity);
inline Result metrics_knn_purity(const float *x, int64_t n, int64_t d, const int32_t *group,
                                 int64_t k, int32_t metric, double *purity) {
  return detail::check(msc_metrics_knn_purity(x, n, d, group, k, metric, purity));
}

/// Groups multi-label samples for the cluster metrics: group[i] = the most specific of
/// sample i's labels, i.e. its positive class with the fewest positives among the n
/// samples (ties towards the lower class index), or −1 when it has none. (The frequent
/// classes of BigEarthNet co-occur with nearly everything; the rarest label is the one
/// that tells a sample apart.) labels: N × C multi-hot bytes, each 0 or 1.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL, n < 0, c < 1, a label other than 0 or
/// 1: the message names it); MSC_E_OUT_OF_MEMORY. Thread-safe. Since 0.5.0.
/// C: msc_status msc_metrics_group_by_label(const uint8_t *labels, int64_t n, int64_t c, int32_t *group);
inline Result metrics_group_by_label(const uint8_t *labels, int64_t n, int64_t c,
                                     int32_t *group) {
  return detail::check(msc_metrics_group_by_label(labels, n, c, group));
}

/// Principal component analysis: out = (x − mean) V, V the k leading eigenvectors of the
/// covariance (the principal axes, as scikit-learn's PCA(k).fit_transform(x) up to the
/// sign of each axis: here the largest-magnitude coordinate of each axis is positive).
/// variance: k doubles, or NULL: the variance along each axis (scikit-learn's
/// explained_variance_, divisor N − 1), in decreasing order.
/// k: 1 .. min(n, d, 56); min(n, d) ≤ 8192 (the dense min(n, d)² matrix it works on).
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x or out, n < 2, d < 1, k or min(n, d)
/// out of range); MSC_E_NUMERICAL (a non-finite entry); MSC_E_OUT_OF_MEMORY. Outputs
/// are untouched on error. Thread-safe. Since 0.5.0.
/// C: msc_status msc_project_pca(const float *x, int64_t n, int64_t d, int64_t k, float *out, double *variance);
inline Result project_pca(const float *x, int64_t n, int64_t d, int64_t k, float *out,
                          double *variance) {
  return detail::check(msc_project_pca(x, n, d, k, out, variance));
}

/// Exact t-SNE to 2-D, as scikit-learn's TSNE(perplexity, n_iter=iterations,
/// method="exact", init="pca", learning_rate="auto") computes it on squared Euclidean
/// distances (for cosine geometry, give unit-norm rows, e.g. MSC_EMBED_FUSED_PROJECTION),
/// without its early stop: every iteration runs. out: N × 2 floats.
/// perplexity: in (0, n) (scikit-learn's default: 30; 5–50 usual). iterations: ≥ 250
/// (the early exaggeration phase; 1000 is scikit-learn's default).
/// O(N²) memory and O(N²) time per iteration: n ≤ MSC_TSNE_MAX_SAMPLES.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x or out, n < 2, d < 1, n above the cap,
/// perplexity or iterations out of range); MSC_E_NUMERICAL (a non-finite entry, or a
/// diverged optimisation); MSC_E_OUT_OF_MEMORY. Thread-safe. Since 0.5.0.
/// C: msc_status msc_project_tsne(const float *x, int64_t n, int64_t d, double perplexity, int64_t iterations, float *out);
inline Result project_tsne(const float *x, int64_t n, int64_t d, double perplexity,
                           int64_t iterations, float *out) {
  return detail::check(msc_project_tsne(x, n, d, perplexity, iterations, out));
}

/// NT-Xent (SimCLR) loss over the 2N views u_1..u_2N = (rows of za, then rows of zb),
/// each of za and zb N × D; the positive of u_i is pos(i) = i ± N (the other view of the
/// same sample):
///   l_i = −s(u_i, u_pos(i)) + log Σ_{k≠i} exp s(u_i, u_k),   *loss = (1/2N) Σ_i l_i.
/// za, zb: N × D unnormalised embeddings of view a and view b (required).
/// n: N >= 1. d: D >= 1. tau: temperature τ > 0 (finite).
/// loss: receives the value (required). grad_a, grad_b: N × D each, ∂loss/∂za and
/// ∂loss/∂zb, or NULL.
/// Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
/// C: msc_status msc_loss_ntxent(const float *za, const float *zb, int64_t n, int64_t d, float tau, float *loss, float *grad_a, float *grad_b);
inline Result loss_ntxent(const float *za, const float *zb, int64_t n, int64_t d, float tau,
                          float *loss, float *grad_a, float *grad_b) {
  return detail::check(msc_loss_ntxent(za, zb, n, d, tau, loss, grad_a, grad_b));
}

/// Symmetric InfoNCE (CLIP-style) loss between two sets of N paired embeddings:
///   S_ij = s(p_i, q_j) (an N × N matrix),
///   CE(S) = (1/N) Σ_i [ −S_ii + log Σ_j exp S_ij ],   *loss = ½ [CE(S) + CE(Sᵀ)].
/// zp, zq: N × D unnormalised embeddings; row i of zp and row i of zq are the pair
/// (required). n: N >= 1. d: D >= 1. tau: temperature τ > 0 (finite).
/// loss: receives the value (required). grad_p, grad_q: N × D each, or NULL.
/// Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
/// C: msc_status msc_loss_infonce(const float *zp, const float *zq, int64_t n, int64_t d, float tau, float *loss, float *grad_p, float *grad_q);
inline Result loss_infonce(const float *zp, const float *zq, int64_t n, int64_t d, float tau,
                           float *loss, float *grad_p, float *grad_q) {
  return detail::check(msc_loss_infonce(zp, zq, n, d, tau, loss, grad_p, grad_q));
}

/// MulSupCon (multi-label supervised contrastive) loss over K embeddings e_1..e_K with
/// multi-hot labels y. Every anchor i and every class c with y_ic = 1 make one row
/// r = (i, c) with positives P_r = { j ≠ i : y_jc = 1 }; rows with P_r empty are skipped:
///   loss_r = −(1/|P_r|) Σ_{p∈P_r} [ s(e_i, e_p) − log Σ_{j≠i} exp s(e_i, e_j) ],
///   *loss = (1/R) Σ_r loss_r over the R rows kept.
/// A key sharing several labels with the anchor counts once per shared label. A sample
/// without any label is a key (in every denominator) but never an anchor. With
/// per_anchor_weight != 0, rows are weighted per anchor instead:
///   *loss = Σ_r loss_r / (|y_i|·K_a),
/// |y_i| = Σ_c y_ic (every label of the anchor, even those whose row is skipped),
/// K_a = the number of anchors with at least one row. When R = 0, *loss = 0 and the
/// gradient is zero.
/// e: K × D unnormalised embeddings (required). y: K × C labels, each 0 or 1 (required).
/// k: K >= 1. d: D >= 1. c: C >= 1. tau: temperature τ > 0 (finite).
/// per_anchor_weight: 0 for the mean over rows, non-zero for per-anchor weights.
/// loss: receives the value (required). grad: K × D, ∂loss/∂e, or NULL.
/// Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
/// C: msc_status msc_loss_mulsupcon(const float *e, const uint8_t *y, int64_t k, int64_t d, int64_t c, float tau, int32_t per_anchor_weight, float *loss, float *grad);
inline Result loss_mulsupcon(const float *e, const uint8_t *y, int64_t k, int64_t d, int64_t c,
                             float tau, int32_t per_anchor_weight, float *loss, float *grad) {
  return detail::check(msc_loss_mulsupcon(e, y, k, d, c, tau, per_anchor_weight, loss, grad));
}

/// Binary cross-entropy with logits, averaged over all N × C entries:
///   *loss = (1/(N·C)) Σ_ij [ max(x_ij, 0) − x_ij·y_ij + log(1 + e^{−|x_ij|}) ],
///   grad_ij = (σ(x_ij) − y_ij) / (N·C),   σ(x) = 1/(1 + e^{−x}).
/// Exact for any finite logit (no overflow for large |x|).
/// logits: N × C (required). y: N × C targets, each 0 or 1 (required).
/// n: N >= 1. c: C >= 1. loss: receives the value (required).
/// grad: N × C, ∂loss/∂logits, or NULL.
/// Returns MSC_OK or a common status (above). Thread-safe. Since 0.1.0.
/// C: msc_status msc_loss_bce(const float *logits, const uint8_t *y, int64_t n, int64_t c, float *loss, float *grad);
inline Result loss_bce(const float *logits, const uint8_t *y, int64_t n, int64_t c, float *loss,
                       float *grad) {
  return detail::check(msc_loss_bce(logits, y, n, c, loss, grad));
}

/// Single-label softmax cross-entropy over the logits of N samples × C classes, each row
/// of y one-hot (exactly one 1, at the true class t_i), averaged over the N rows:
///   *loss = (1/N) Σ_i [ −x_{i,t_i} + log Σ_j exp x_ij ],
///   grad_ij = (p_ij − [j = t_i]) / N,   p_i = softmax(x_i).
/// Log-sum-exp with the row maximum subtracted, in double: exact for any finite logit.
/// This is the classification term of single-label training (train.labels = single,
/// docs/losses.md).
/// logits: N × C (required). y: N × C one-hot targets (required). n: N >= 1. c: C >= 1.
/// loss: receives the value (required). grad: N × C, ∂loss/∂logits, or NULL.
/// Returns MSC_OK or a common status (above); a row of y without exactly one 1 is
/// MSC_E_INVALID_ARGUMENT naming the row. Thread-safe. Since 0.3.0.
/// C: msc_status msc_loss_softmax_ce(const float *logits, const uint8_t *y, int64_t n, int64_t c, float *loss, float *grad);
inline Result loss_softmax_ce(const float *logits, const uint8_t *y, int64_t n, int64_t c,
                              float *loss, float *grad) {
  return detail::check(msc_loss_softmax_ce(logits, y, n, c, loss, grad));
}

/// Per-pixel softmax cross-entropy against class indices, PyTorch's
/// F.cross_entropy(logits, target, weight=class_weight, ignore_index=ignore_index,
/// reduction="mean"): at pixel p with target t_p,
///   l_p = −x_{t_p,p} + log Σ_j exp x_{j,p},
///   *loss = Σ_p w_{t_p} l_p / Σ_p w_{t_p}   over the counted pixels (t_p ≠ ignore_index),
///   grad_{j,p} = w_{t_p} (softmax_j(x_p) − [j = t_p]) / Σ_p w_{t_p},
/// with w = class_weight (all 1 when NULL: then the plain mean over counted pixels).
/// Σ w = 0 (no counted pixel, or only classes of weight 0): *loss = 0, zero gradient.
/// logits: N × C × H × W (required). target: N × H × W class indices (required), each in
/// [0, C) or equal to ignore_index (−1 is the usual choice; a value in [0, C) ignores that
/// class). n, c, h, w: N, C, H, W >= 1. class_weight: C weights, finite and >= 0, or NULL.
/// loss: receives the value (required). grad: N × C × H × W, ∂loss/∂logits, or NULL.
/// Returns MSC_OK or a common status (above); a target outside [0, C) other than
/// ignore_index is MSC_E_INVALID_ARGUMENT naming the image, y and x. Thread-safe.
/// Since 0.3.0.
/// C: msc_status msc_loss_pixel_ce(const float *logits, const int32_t *target, int64_t n, int64_t c, int64_t h, int64_t w, int32_t ignore_index, const float *class_weight, float *loss, float *grad);
inline Result loss_pixel_ce(const float *logits, const int32_t *target, int64_t n, int64_t c,
                            int64_t h, int64_t w, int32_t ignore_index,
                            const float *class_weight, float *loss, float *grad) {
  return detail::check(msc_loss_pixel_ce(logits, target, n, c, h, w, ignore_index, class_weight,
                                         loss, grad));
}

/// Per-pixel binary cross-entropy with logits against soft targets, PyTorch's
/// BCEWithLogitsLoss(pos_weight=pos_weight, reduction="mean") over the counted elements:
///   l = −pw_k·y·log σ(x) − (1 − y)·log(1 − σ(x))   (stable for any finite x),
///   *loss = mean of l over the counted elements (mask ≠ 0),
///   grad = ((1 + (pw_k − 1)·y)·σ(x) − pw_k·y) / counted,
/// pw_k the positive weight of channel k (1 when pos_weight is NULL). One channel (K = 1)
/// is a binary map (water / no water); K > 1 is multi-label per pixel.
/// logits: N × K × H × W (required). target: N × K × H × W, each in [0, 1] where counted
/// (required). mask: N × K × H × W bytes, 0 = not counted (its target is not read), or NULL
/// (all counted). n, k, h, w: N, K, H, W >= 1. pos_weight: K weights, finite and >= 0, or
/// NULL. loss: receives the value (required). grad: N × K × H × W, or NULL.
/// Returns MSC_OK or a common status (above); a target outside [0, 1] is
/// MSC_E_INVALID_ARGUMENT naming the element. Thread-safe. Since 0.3.0.
/// C: msc_status msc_loss_pixel_bce(const float *logits, const float *target, const uint8_t *mask, int64_t n, int64_t k, int64_t h, int64_t w, const float *pos_weight, float *loss, float *grad);
inline Result loss_pixel_bce(const float *logits, const float *target, const uint8_t *mask,
                             int64_t n, int64_t k, int64_t h, int64_t w,
                             const float *pos_weight, float *loss, float *grad) {
  return detail::check(msc_loss_pixel_bce(logits, target, mask, n, k, h, w, pos_weight, loss,
                                          grad));
}

/// Soft Dice loss on the per-pixel softmax p = softmax over C of the logits, against
/// class indices. Over the counted pixels (target ≠ ignore_index) of the whole batch, for
/// each class j: I_j = Σ p_j·[t = j], P_j = Σ p_j, G_j = Σ [t = j], and
///   *loss = 1 − (1/|S|) Σ_{j∈S} (2 I_j + ε) / (P_j + G_j + ε),   ε = 1,
/// averaged over S, the classes present in the counted targets (G_j > 0): a class absent
/// from the batch is not averaged (its ratio would be ε/(P_j + ε), rewarding it for
/// predicting nothing). grad: ∂loss/∂logits through the softmax; 0 at ignored pixels.
/// No counted pixel: *loss = 0, zero gradient. Arguments as msc_loss_pixel_ce (without
/// class weights); C = 1 gives loss 0 (p = 1, D = 1) and a zero gradient.
/// Returns MSC_OK or a common status (above); errors as msc_loss_pixel_ce. Thread-safe.
/// Since 0.3.0.
/// C: msc_status msc_loss_dice(const float *logits, const int32_t *target, int64_t n, int64_t c, int64_t h, int64_t w, int32_t ignore_index, float *loss, float *grad);
inline Result loss_dice(const float *logits, const int32_t *target, int64_t n, int64_t c,
                        int64_t h, int64_t w, int32_t ignore_index, float *loss, float *grad) {
  return detail::check(msc_loss_dice(logits, target, n, c, h, w, ignore_index, loss, grad));
}

/// Computes index kind over a T × C × P series x: out[t·P + p] for every date t and
/// pixel p (T × P floats), NaN where invalid (above).
/// kind: an MSC_VI_* value. x: T × C × P digital numbers (required; any value, a NaN or
/// infinite one makes the indices using it invalid). t: T >= 1. c: C >= 1. p: P >= 1
/// (T·C·P must fit int64_t). bands: the band table, or NULL for the PASTIS one.
/// out: T × P floats (required). valid: T × P bytes, 1 where out is finite and 0 where it
/// is NaN, or NULL.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x or out; a size < 1 or too large; an
/// unknown kind; bands->struct_size too small; a band the index needs absent or out of
/// range; a scale not finite or <= 0, an offset not finite). out and valid are untouched
/// on error. Thread-safe. Since 0.2.0.
/// C: msc_status msc_vegetation_index(int32_t kind, const float *x, int64_t t, int64_t c, int64_t p, const msc_vi_bands *bands, float *out, uint8_t *valid);
inline Result vegetation_index(int32_t kind, const float *x, int64_t t, int64_t c, int64_t p,
                               const msc_vi_bands *bands, float *out, uint8_t *valid) {
  return detail::check(msc_vegetation_index(kind, x, t, c, p, bands, out, valid));
}

/// The recurrence plots of n pixels of a T × C × H × W series x: for pixel i at row
/// yx[2i] and column yx[2i+1], the K index series of that pixel (as msc_vegetation_index)
/// give out[(i·K + k)·S·S ...], the S × S plot of index params->indices[k], and
/// valid[i·K + k] (0 for a series without any finite date, whose plot is zeros).
/// x: T × C × H × W digital numbers (required). t: T, 1..4096. c, h, w: >= 1.
/// bands: the band table, or NULL for the PASTIS one. params: required.
/// yx: n (row, column) pairs inside the image (required unless n is 0). n: >= 0.
/// out: n·K·S·S floats (required). valid: n·K bytes, or NULL.
/// This is a convenience function: each call allocates its own scratch and frees it
/// before returning, K·T floats (plus K·T² + 3S when S ≠ T, and T(T−1)/2 for a
/// percentile ε) for each of up to omp_get_max_threads() threads (at most n). Pixels are shared among OpenMP threads,
/// each computed by one thread alone: the result does not depend on the thread count.
/// Returns MSC_OK; MSC_E_INVALID_ARGUMENT (NULL x, params, params->indices, out or yx;
/// params->struct_size or bands->struct_size too small; a size out of range; an unknown
/// index; binary or eps_is_percentile other than 0 or 1; a bad eps; days not finite or
/// not increasing; a band an index needs absent; a bad scale or offset; a pixel outside
/// the image: the message names it); MSC_E_OUT_OF_MEMORY. out and valid are untouched on
/// error. Thread-safe. Since 0.2.0.
/// C: msc_status msc_recurrence_plots(const float *x, int64_t t, int64_t c, int64_t h, int64_t w, const msc_vi_bands *bands, const msc_rp_params *params, const int64_t *yx, int64_t n, float *out, uint8_t *valid);
inline Result recurrence_plots(const float *x, int64_t t, int64_t c, int64_t h, int64_t w,
                               const msc_vi_bands *bands, const msc_rp_params *params,
                               const int64_t *yx, int64_t n, float *out, uint8_t *valid) {
  return detail::check(msc_recurrence_plots(x, t, c, h, w, bands, params, yx, n, out, valid));
}

// ---- member definitions ----

inline Result Options::create(Options &out) {
  msc_options *out_ = nullptr;
  const msc_status st = msc_options_create(&out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Options Options::create() {
  msc_options *out_ = nullptr;
  detail::check(msc_options_create(&out_));
  return Options(out_);
}
#endif

inline Result Options::copy(Options &out) const {
  msc_options *out_ = nullptr;
  const msc_status st = msc_options_copy(p_, &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Options Options::copy() const {
  msc_options *out_ = nullptr;
  detail::check(msc_options_copy(p_, &out_));
  return Options(out_);
}
#endif

inline Result Options::set_int(cstr key, int64_t value) {
  return detail::check(msc_options_set_int(p_, key.c_str(), value));
}

inline Result Options::set_float(cstr key, double value) {
  return detail::check(msc_options_set_float(p_, key.c_str(), value));
}

inline Result Options::set_string(cstr key, cstr value) {
  return detail::check(msc_options_set_string(p_, key.c_str(), value.c_str()));
}

inline Result Options::set_floats(cstr key, const float *values, size_t n) {
  return detail::check(msc_options_set_floats(p_, key.c_str(), values, n));
}

inline Result Options::set_floats(cstr key, span<const float> values) {
  return detail::check(msc_options_set_floats(p_, key.c_str(), values.data(), values.size()));
}

inline Result Options::get_int(cstr key, int64_t *out) const {
  return detail::check(msc_options_get_int(p_, key.c_str(), out));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int64_t Options::get_int(cstr key) const {
  int64_t out_{};
  detail::check(msc_options_get_int(p_, key.c_str(), &out_));
  return out_;
}
#endif

inline Result Options::get_float(cstr key, double *out) const {
  return detail::check(msc_options_get_float(p_, key.c_str(), out));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline double Options::get_float(cstr key) const {
  double out_{};
  detail::check(msc_options_get_float(p_, key.c_str(), &out_));
  return out_;
}
#endif

inline Result Options::get_string(cstr key, char *buf, size_t cap, size_t *len) const {
  return detail::check(msc_options_get_string(p_, key.c_str(), buf, cap, len));
}

inline Result Options::get_string(cstr key, std::string &out) const {
  return detail::fetch_string(out, [&](char *buf_, size_t cap_, size_t *len_) {
      return msc_options_get_string(p_, key.c_str(), buf_, cap_, len_);
  });
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::string Options::get_string(cstr key) const {
  std::string out_;
  detail::fetch_string(out_, [&](char *buf_, size_t cap_, size_t *len_) {
      return msc_options_get_string(p_, key.c_str(), buf_, cap_, len_);
  });
  return out_;
}
#endif

inline Result Options::get_floats(cstr key, float *out, size_t cap, size_t *n) const {
  return detail::check(msc_options_get_floats(p_, key.c_str(), out, cap, n));
}

inline Result Options::get_floats(cstr key, span<float> out, size_t *n) const {
  return detail::check(msc_options_get_floats(p_, key.c_str(), out.data(), out.size(), n));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline size_t Options::get_floats(cstr key, span<float> out) const {
  size_t n_{};
  detail::check(msc_options_get_floats(p_, key.c_str(), out.data(), out.size(), &n_));
  return n_;
}
#endif

inline Result Options::is_set(cstr key, int32_t *out) const {
  return detail::check(msc_options_is_set(p_, key.c_str(), out));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int32_t Options::is_set(cstr key) const {
  int32_t out_{};
  detail::check(msc_options_is_set(p_, key.c_str(), &out_));
  return out_;
}
#endif

inline Result Options::from_json(cstr json) {
  return detail::check(msc_options_from_json(p_, json.c_str()));
}

inline Result Options::to_json(char *buf, size_t cap, size_t *len) const {
  return detail::check(msc_options_to_json(p_, buf, cap, len));
}

inline Result Options::to_json(std::string &out) const {
  return detail::fetch_string(out, [&](char *buf_, size_t cap_, size_t *len_) {
      return msc_options_to_json(p_, buf_, cap_, len_);
  });
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::string Options::to_json() const {
  std::string out_;
  detail::fetch_string(out_, [&](char *buf_, size_t cap_, size_t *len_) {
      return msc_options_to_json(p_, buf_, cap_, len_);
  });
  return out_;
}
#endif

inline Result Options::from_dataset(const Dataset &ds, int32_t stats, int64_t stats_samples) {
  return detail::check(msc_options_from_dataset(p_, ds.get(), stats, stats_samples));
}

inline Result Options::default_schedule(int64_t total_steps) {
  return detail::check(msc_options_default_schedule(p_, total_steps));
}

inline Result Model::create(const Options &opts, Model &out) {
  msc_model *out_ = nullptr;
  const msc_status st = msc_model_create(opts.get(), &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Model Model::create(const Options &opts) {
  msc_model *out_ = nullptr;
  detail::check(msc_model_create(opts.get(), &out_));
  return Model(out_);
}
#endif

inline Result Model::save(cstr path) const {
  return detail::check(msc_model_save(p_, path.c_str()));
}

inline Result Model::load(cstr path, const Options &runtime, Model &out) {
  msc_model *out_ = nullptr;
  const msc_status st = msc_model_load(path.c_str(), runtime.get(), &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Model Model::load(cstr path, const Options &runtime) {
  msc_model *out_ = nullptr;
  detail::check(msc_model_load(path.c_str(), runtime.get(), &out_));
  return Model(out_);
}
#endif

inline Result Model::options(Options &out) const {
  msc_options *out_ = nullptr;
  const msc_status st = msc_model_options(p_, &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Options Model::options() const {
  msc_options *out_ = nullptr;
  detail::check(msc_model_options(p_, &out_));
  return Options(out_);
}
#endif

inline const char *Model::backend() const {
  return msc_model_backend(p_);
}

inline int32_t Model::modality_count() const {
  return msc_model_modality_count(p_);
}

inline const char *Model::modality_name(int32_t i) const {
  return msc_model_modality_name(p_, i);
}

inline Result Model::modality_shape(int32_t i, int64_t *bands, int64_t *size) const {
  return detail::check(msc_model_modality_shape(p_, i, bands, size));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<int64_t, int64_t> Model::modality_shape(int32_t i) const {
  int64_t bands_{};
  int64_t size_{};
  detail::check(msc_model_modality_shape(p_, i, &bands_, &size_));
  return std::tuple<int64_t, int64_t>(bands_, size_);
}
#endif

inline const char *Model::band_name(int32_t i, int64_t b) const {
  return msc_model_band_name(p_, i, b);
}

inline Result Model::band_info(int32_t i, int64_t b, double *scale, double *offset,
                               double *mean, double *std) const {
  return detail::check(msc_model_band_info(p_, i, b, scale, offset, mean, std));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<double, double, double, double> Model::band_info(int32_t i, int64_t b) const {
  double scale_{};
  double offset_{};
  double mean_{};
  double std_{};
  detail::check(msc_model_band_info(p_, i, b, &scale_, &offset_, &mean_, &std_));
  return std::tuple<double, double, double, double>(scale_, offset_, mean_, std_);
}
#endif

inline int64_t Model::class_count() const {
  return msc_model_class_count(p_);
}

inline const char *Model::class_name(int64_t i) const {
  return msc_model_class_name(p_, i);
}

inline int64_t Model::parameter_count() const {
  return msc_model_parameter_count(p_);
}

inline Result Model::copy_weights(const Model &src, cstr prefix, int64_t *copied) {
  return detail::check(msc_model_copy_weights(p_, src.get(), prefix.c_str(), copied));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int64_t Model::copy_weights(const Model &src, cstr prefix) {
  int64_t copied_{};
  detail::check(msc_model_copy_weights(p_, src.get(), prefix.c_str(), &copied_));
  return copied_;
}
#endif

inline int64_t Model::step() const {
  return msc_model_step(p_);
}

inline Result Model::embedding_size(int32_t which, int64_t *size) const {
  return detail::check(msc_model_embedding_size(p_, which, size));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int64_t Model::embedding_size(int32_t which) const {
  int64_t size_{};
  detail::check(msc_model_embedding_size(p_, which, &size_));
  return size_;
}
#endif

inline Result Model::embed(const Batch &batch, int32_t which, float *out, size_t out_len) {
  return detail::check(msc_embed(p_, batch.get(), which, out, out_len));
}

inline Result Model::embed(const Batch &batch, int32_t which, span<float> out) {
  return detail::check(msc_embed(p_, batch.get(), which, out.data(), out.size()));
}

inline Result Model::calibrate(const Batch &batch) {
  return detail::check(msc_model_calibrate(p_, batch.get()));
}

inline Result Model::predict(const Batch &batch, float *probs, size_t len) {
  return detail::check(msc_predict(p_, batch.get(), probs, len));
}

inline Result Model::predict(const Batch &batch, span<float> probs) {
  return detail::check(msc_predict(p_, batch.get(), probs.data(), probs.size()));
}

inline Result Model::predict_mask(const Batch &batch, int32_t *classes, size_t classes_len,
                                  float *probs, size_t probs_len) {
  return detail::check(msc_predict_mask(p_, batch.get(), classes, classes_len, probs,
                                        probs_len));
}

inline Result Model::predict_mask(const Batch &batch, span<int32_t> classes,
                                  span<float> probs) {
  return detail::check(msc_predict_mask(p_, batch.get(), classes.data(), classes.size(),
                                        probs.data(), probs.size()));
}

inline Result Model::train_configure(const Options &opts) {
  return detail::check(msc_train_configure(p_, opts.get()));
}

inline Result Model::reset_classifier(uint64_t seed) {
  return detail::check(msc_model_reset_classifier(p_, seed));
}

inline Result Model::train_step(const Batch &batch, msc_step_result *out) {
  return detail::check(msc_train_step(p_, batch.get(), out));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline msc_step_result Model::train_step(const Batch &batch) {
  msc_step_result out_{};
  out_.struct_size = sizeof out_;
  detail::check(msc_train_step(p_, batch.get(), &out_));
  return out_;
}
#endif

inline Result Model::train_set_dist(Dist &dist) {
  return detail::check(msc_train_set_dist(p_, dist.get()));
}

inline Result Batch::create(Batch &out) {
  msc_batch *out_ = nullptr;
  const msc_status st = msc_batch_create(&out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Batch Batch::create() {
  msc_batch *out_ = nullptr;
  detail::check(msc_batch_create(&out_));
  return Batch(out_);
}
#endif

inline int64_t Batch::size() const {
  return msc_batch_size(p_);
}

inline Result Batch::set_modality(cstr name, const float *nchw, int64_t n, int64_t c, int64_t h,
                                  int64_t w) {
  return detail::check(msc_batch_set_modality(p_, name.c_str(), nchw, n, c, h, w));
}

inline Result Batch::remove_modality(cstr name) {
  return detail::check(msc_batch_remove_modality(p_, name.c_str()));
}

inline int32_t Batch::modality_count() const {
  return msc_batch_modality_count(p_);
}

inline const char *Batch::modality_name(int32_t i) const {
  return msc_batch_modality_name(p_, i);
}

inline Result Batch::modality(cstr name, float *out, size_t out_len, int64_t *c, int64_t *h,
                              int64_t *w) const {
  return detail::check(msc_batch_modality(p_, name.c_str(), out, out_len, c, h, w));
}

inline Result Batch::modality(cstr name, span<float> out, int64_t *c, int64_t *h,
                              int64_t *w) const {
  return detail::check(msc_batch_modality(p_, name.c_str(), out.data(), out.size(), c, h, w));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<int64_t, int64_t, int64_t> Batch::modality(cstr name, span<float> out) const {
  int64_t c_{};
  int64_t h_{};
  int64_t w_{};
  detail::check(msc_batch_modality(p_, name.c_str(), out.data(), out.size(), &c_, &h_, &w_));
  return std::tuple<int64_t, int64_t, int64_t>(c_, h_, w_);
}
#endif

inline Result Batch::set_labels(const uint8_t *multi_hot, int64_t n, int64_t c) {
  return detail::check(msc_batch_set_labels(p_, multi_hot, n, c));
}

inline Result Batch::set_labeled(const uint8_t *flags, int64_t n) {
  return detail::check(msc_batch_set_labeled(p_, flags, n));
}

inline Result Batch::labels(uint8_t *out, size_t out_len, int64_t *classes) const {
  return detail::check(msc_batch_labels(p_, out, out_len, classes));
}

inline Result Batch::labels(span<uint8_t> out, int64_t *classes) const {
  return detail::check(msc_batch_labels(p_, out.data(), out.size(), classes));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int64_t Batch::labels(span<uint8_t> out) const {
  int64_t classes_{};
  detail::check(msc_batch_labels(p_, out.data(), out.size(), &classes_));
  return classes_;
}
#endif

inline Result Batch::labeled(uint8_t *out, size_t out_len) const {
  return detail::check(msc_batch_labeled(p_, out, out_len));
}

inline Result Batch::labeled(span<uint8_t> out) const {
  return detail::check(msc_batch_labeled(p_, out.data(), out.size()));
}

inline Result Batch::set_mask(const int32_t *mask, int64_t n, int64_t h, int64_t w) {
  return detail::check(msc_batch_set_mask(p_, mask, n, h, w));
}

inline Result Batch::mask(int32_t *out, size_t out_len, int64_t *h, int64_t *w) const {
  return detail::check(msc_batch_mask(p_, out, out_len, h, w));
}

inline Result Batch::mask(span<int32_t> out, int64_t *h, int64_t *w) const {
  return detail::check(msc_batch_mask(p_, out.data(), out.size(), h, w));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<int64_t, int64_t> Batch::mask(span<int32_t> out) const {
  int64_t h_{};
  int64_t w_{};
  detail::check(msc_batch_mask(p_, out.data(), out.size(), &h_, &w_));
  return std::tuple<int64_t, int64_t>(h_, w_);
}
#endif

inline Result Dataset::open(cstr root, cstr format, const Options &opts, Dataset &out) {
  msc_dataset *out_ = nullptr;
  const msc_status st = msc_dataset_open(root.c_str(), format.c_str(), opts.get(), &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Dataset Dataset::open(cstr root, cstr format, const Options &opts) {
  msc_dataset *out_ = nullptr;
  detail::check(msc_dataset_open(root.c_str(), format.c_str(), opts.get(), &out_));
  return Dataset(out_);
}
#endif

inline int64_t Dataset::size() const {
  return msc_dataset_size(p_);
}

inline int64_t Dataset::skipped() const {
  return msc_dataset_skipped(p_);
}

inline int64_t Dataset::labeled_count() const {
  return msc_dataset_labeled_count(p_);
}

inline int64_t Dataset::class_count() const {
  return msc_dataset_class_count(p_);
}

inline int32_t Dataset::single_label() const {
  return msc_dataset_single_label(p_);
}

inline const char *Dataset::class_name(int64_t i) const {
  return msc_dataset_class_name(p_, i);
}

inline Result Dataset::mask_info(int64_t *classes, int32_t *ignore_index, int64_t *size) const {
  return detail::check(msc_dataset_mask_info(p_, classes, ignore_index, size));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<int64_t, int32_t, int64_t> Dataset::mask_info() const {
  int64_t classes_{};
  int32_t ignore_index_{};
  int64_t size_{};
  detail::check(msc_dataset_mask_info(p_, &classes_, &ignore_index_, &size_));
  return std::tuple<int64_t, int32_t, int64_t>(classes_, ignore_index_, size_);
}
#endif

inline const char *Dataset::mask_class_name(int64_t i) const {
  return msc_dataset_mask_class_name(p_, i);
}

inline int32_t Dataset::modality_count() const {
  return msc_dataset_modality_count(p_);
}

inline const char *Dataset::modality_name(int32_t i) const {
  return msc_dataset_modality_name(p_, i);
}

inline Result Dataset::modality_shape(int32_t i, int64_t *bands, int64_t *size) const {
  return detail::check(msc_dataset_modality_shape(p_, i, bands, size));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<int64_t, int64_t> Dataset::modality_shape(int32_t i) const {
  int64_t bands_{};
  int64_t size_{};
  detail::check(msc_dataset_modality_shape(p_, i, &bands_, &size_));
  return std::tuple<int64_t, int64_t>(bands_, size_);
}
#endif

inline const char *Dataset::band_name(int32_t i, int64_t b) const {
  return msc_dataset_band_name(p_, i, b);
}

inline Result Dataset::band_scale(int32_t i, int64_t b, double *scale, double *offset) const {
  return detail::check(msc_dataset_band_scale(p_, i, b, scale, offset));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<double, double> Dataset::band_scale(int32_t i, int64_t b) const {
  double scale_{};
  double offset_{};
  detail::check(msc_dataset_band_scale(p_, i, b, &scale_, &offset_));
  return std::tuple<double, double>(scale_, offset_);
}
#endif

inline Result Dataset::sample_id(int64_t i, char *buf, size_t cap, size_t *len) const {
  return detail::check(msc_dataset_sample_id(p_, i, buf, cap, len));
}

inline Result Dataset::sample_id(int64_t i, std::string &out) const {
  return detail::fetch_string(out, [&](char *buf_, size_t cap_, size_t *len_) {
      return msc_dataset_sample_id(p_, i, buf_, cap_, len_);
  });
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::string Dataset::sample_id(int64_t i) const {
  std::string out_;
  detail::fetch_string(out_, [&](char *buf_, size_t cap_, size_t *len_) {
      return msc_dataset_sample_id(p_, i, buf_, cap_, len_);
  });
  return out_;
}
#endif

inline Result Dataset::series(int64_t i, float *out, size_t cap, double *days, int64_t *t,
                              int64_t *c) const {
  return detail::check(msc_dataset_series(p_, i, out, cap, days, t, c));
}

inline Result Dataset::series(int64_t i, span<float> out, double *days, int64_t *t,
                              int64_t *c) const {
  return detail::check(msc_dataset_series(p_, i, out.data(), out.size(), days, t, c));
}

inline Result Dataset::fill_batch(const int64_t *indices, int64_t n, Batch &batch) const {
  return detail::check(msc_dataset_fill_batch(p_, indices, n, batch.get()));
}

inline Result Dataset::stats(int32_t i, float *mean, float *std, size_t cap) const {
  return detail::check(msc_dataset_stats(p_, i, mean, std, cap));
}

inline Result Dataset::compute_stats(int32_t i, int64_t max_samples, float *mean, float *std,
                                     size_t cap) const {
  return detail::check(msc_dataset_compute_stats(p_, i, max_samples, mean, std, cap));
}

inline Result Loader::create(Dataset &ds, int64_t batch_size, uint64_t seed, int32_t workers,
                             int32_t drop_last, Loader &out) {
  msc_loader *out_ = nullptr;
  const msc_status st = msc_loader_create(ds.get(), batch_size, seed, workers, drop_last,
                                          &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Loader Loader::create(Dataset &ds, int64_t batch_size, uint64_t seed, int32_t workers,
                             int32_t drop_last) {
  msc_loader *out_ = nullptr;
  detail::check(msc_loader_create(ds.get(), batch_size, seed, workers, drop_last, &out_));
  return Loader(out_);
}
#endif

inline Result Loader::create_shard(Dataset &ds, int64_t batch_size, uint64_t seed,
                                   int32_t workers, int32_t drop_last, int32_t rank,
                                   int32_t ranks, Loader &out) {
  msc_loader *out_ = nullptr;
  const msc_status st = msc_loader_create_shard(ds.get(), batch_size, seed, workers, drop_last,
                                                rank, ranks, &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Loader Loader::create_shard(Dataset &ds, int64_t batch_size, uint64_t seed,
                                   int32_t workers, int32_t drop_last, int32_t rank,
                                   int32_t ranks) {
  msc_loader *out_ = nullptr;
  detail::check(msc_loader_create_shard(ds.get(), batch_size, seed, workers, drop_last, rank,
                                        ranks, &out_));
  return Loader(out_);
}
#endif

inline Result Loader::next(Batch &batch, int64_t *epoch) {
  return detail::check(msc_loader_next(p_, batch.get(), epoch));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int64_t Loader::next(Batch &batch) {
  int64_t epoch_{};
  detail::check(msc_loader_next(p_, batch.get(), &epoch_));
  return epoch_;
}
#endif

inline int64_t Loader::batches_per_epoch() const {
  return msc_loader_batches_per_epoch(p_);
}

inline Result Scene::open(const char *const *paths, int32_t n, Model &model,
                          const Options &opts, Scene &out) {
  msc_scene *out_ = nullptr;
  const msc_status st = msc_scene_open(paths, n, model.get(), opts.get(), &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline Scene Scene::open(const char *const *paths, int32_t n, Model &model,
                         const Options &opts) {
  msc_scene *out_ = nullptr;
  detail::check(msc_scene_open(paths, n, model.get(), opts.get(), &out_));
  return Scene(out_);
}
#endif

inline Result Scene::size(int64_t *width, int64_t *height, int64_t *tiles) const {
  return detail::check(msc_scene_size(p_, width, height, tiles));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline std::tuple<int64_t, int64_t, int64_t> Scene::size() const {
  int64_t width_{};
  int64_t height_{};
  int64_t tiles_{};
  detail::check(msc_scene_size(p_, &width_, &height_, &tiles_));
  return std::tuple<int64_t, int64_t, int64_t>(width_, height_, tiles_);
}
#endif

inline Result Scene::write(cstr mask_path, cstr probs_path, msc_progress_fn progress,
                           void *user) {
  return detail::check(msc_scene_write(p_, mask_path.c_str(), probs_path.c_str(), progress,
                                       user));
}

inline Result Scene::write_embeddings(cstr path, int32_t which, msc_progress_fn progress,
                                      void *user) {
  return detail::check(msc_scene_write_embeddings(p_, path.c_str(), which, progress, user));
}

inline Result Dist::create(cstr engine, void *comm, Dist &out) {
  msc_dist *out_ = nullptr;
  const msc_status st = msc_dist_create(engine.c_str(), comm, &out_);
  if (st == MSC_OK) out.reset(out_);
  return detail::check(st);
}

inline int32_t Dist::rank() const {
  return msc_dist_rank(p_);
}

inline int32_t Dist::size() const {
  return msc_dist_size(p_);
}

inline Result Dist::set_timeout(double seconds) {
  return detail::check(msc_dist_set_timeout(p_, seconds));
}

inline Result Dist::barrier() {
  return detail::check(msc_dist_barrier(p_));
}

inline Result Dist::agree(msc_status mine, cstr why, int32_t *failed) {
  return detail::check(msc_dist_agree(p_, mine, why.c_str(), failed));
}

#ifndef MOSAIC_NO_EXCEPTIONS
inline int32_t Dist::agree(msc_status mine, cstr why) {
  int32_t failed_{};
  detail::check(msc_dist_agree(p_, mine, why.c_str(), &failed_));
  return failed_;
}
#endif

inline double Dist::comm_seconds() const {
  return msc_dist_comm_seconds(p_);
}

} // inline namespace
} // namespace mosaic

#endif // MOSAIC_MOSAIC_HPP
// clang-format on
