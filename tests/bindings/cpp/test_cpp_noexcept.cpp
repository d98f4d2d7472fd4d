// test_cpp_noexcept.cpp — the C++ wrapper built with -fno-exceptions: mosaic.hpp switches
// to no-exceptions mode by itself, every status-returning call gives a mosaic::Status,
// and a failing call's code and message are those the C API gives for the same call.
// Exit status 0 when all checks pass.
#include <mosaic/mosaic.hpp>

#include <cstdio>
#include <string>
#include <type_traits>

#ifndef MOSAIC_NO_EXCEPTIONS
#error "mosaic.hpp did not switch to no-exceptions mode under -fno-exceptions"
#endif

static int failures = 0;
#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);            \
      failures++;                                                                              \
    }                                                                                          \
  } while (0)

static_assert(std::is_same<mosaic::Result, mosaic::Status>::value, "Result is Status");

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: test_cpp_noexcept TMPDIR\n");
    return 2;
  }
  const std::string missing = std::string(argv[1]) + "/no-such-model.safetensors";
  msc_model *raw = nullptr;
  const msc_status want = msc_model_load(missing.c_str(), nullptr, &raw);
  const std::string want_msg = msc_last_error();
  CHECK(want != MSC_OK);

  mosaic::Model model;
  mosaic::Status st = mosaic::Model::load(missing, mosaic::Options(), model);
  CHECK(!st.ok() && !st);
  CHECK(st.code() == want);
  CHECK(st.message() == want_msg);
  CHECK(!model);

  mosaic::Options o;
  st = mosaic::Options::create(o);
  CHECK(st.ok() && st.code() == MSC_OK && st.message().empty() && o);
  CHECK(o.set_int("seed", 99).ok());
  int64_t seed = 0;
  CHECK(o.get_int("seed", &seed).ok() && seed == 99);
  std::string enc;
  CHECK(o.set_string("modality.0.encoder", "tiny").ok());
  CHECK(o.get_string("modality.0.encoder", enc).ok() && enc == "tiny");
  const msc_status want_key = msc_options_set_int(o.get(), "no.such.key", 1);
  st = o.set_int("no.such.key", 1);
  CHECK(st.code() == want_key && want_key != MSC_OK);
  if (failures)
    std::fprintf(stderr, "test_cpp_noexcept: %d check(s) failed\n", failures);
  else
    std::printf("test_cpp_noexcept: all checks passed\n");
  return failures ? 1 : 0;
}
