// test_cpp.cpp — the C++ wrapper (include/mosaic/mosaic.hpp) in exception mode: handles
// free themselves and move, a failing call throws mosaic::Error with the status and the
// message the C API gives for the same call, and values round-trip through the
// convenience overloads. Every expected value is what the C API returns when called
// directly in this program. Prints each failed check; exit status 0 when all pass.
#include <mosaic/mosaic.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

static int failures = 0;
#define FAIL(what)                                                                             \
  do {                                                                                         \
    std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, what);                             \
    failures++;                                                                                \
  } while (0)
#define CHECK(cond)                                                                            \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);            \
      failures++;                                                                              \
    }                                                                                          \
  } while (0)

static_assert(!std::is_copy_constructible<mosaic::Model>::value, "handles are move-only");
static_assert(!std::is_copy_assignable<mosaic::Options>::value, "handles are move-only");
static_assert(std::is_nothrow_move_constructible<mosaic::Dataset>::value, "noexcept move");
static_assert(std::is_nothrow_move_assignable<mosaic::Batch>::value, "noexcept move");
static_assert(std::is_same<mosaic::Result, void>::value, "exception mode: Result is void");
static_assert(std::is_base_of<std::runtime_error, mosaic::Error>::value,
              "Error is an exception");

// Ownership moves with the object; the moved-from one is empty and frees nothing.
// (Leaks are valgrind's job: memcheck_test_cpp, when valgrind is installed.)
static void test_raii_and_move() {
  mosaic::Options a = mosaic::Options::create();
  CHECK(a);
  msc_options *raw = a.get();
  mosaic::Options b(std::move(a));
  CHECK(!a && a.get() == nullptr);
  CHECK(b.get() == raw);
  mosaic::Options c;
  c = std::move(b);
  CHECK(!b && c.get() == raw);
  mosaic::Options &same = c;
  c = std::move(same); // a self-move keeps the handle
  CHECK(c.get() == raw);
  msc_options *released = c.release();
  CHECK(released == raw && !c);
  msc_options_free(released);
  c.reset(); // an empty handle frees nothing
  {
    mosaic::Batch batch = mosaic::Batch::create();
    CHECK(batch.size() == msc_batch_size(batch.get()));
  }
  std::vector<mosaic::Options> many;
  for (int i = 0; i < 8; i++) many.push_back(mosaic::Options::create()); // moves on growth
  for (const auto &o : many) CHECK(o);
}

static void test_error(const char *dir) {
  const std::string missing = std::string(dir) + "/no-such-model.safetensors";
  msc_model *raw = nullptr;
  const msc_status want = msc_model_load(missing.c_str(), nullptr, &raw);
  const std::string want_msg = msc_last_error();
  CHECK(want != MSC_OK && raw == nullptr);
  CHECK(!want_msg.empty());
  msc_clear_error();
  bool thrown = false;
  try {
    mosaic::Model m = mosaic::Model::load(missing, mosaic::Options());
    (void)m;
  } catch (const mosaic::Error &e) {
    thrown = true;
    CHECK(e.status() == want);
    CHECK(want_msg == e.what());
  }
  CHECK(thrown);
  // A C error code of another kind: an unknown option key.
  mosaic::Options o = mosaic::Options::create();
  const msc_status want_key = msc_options_set_int(o.get(), "no.such.key", 1);
  CHECK(want_key != MSC_OK);
  try {
    o.set_int("no.such.key", 1);
    FAIL("set_int of an unknown key did not throw");
  } catch (const mosaic::Error &e) {
    CHECK(e.status() == want_key);
  }
  // The status-only base overload throws as well; the empty handle passes NULL.
  mosaic::Model empty;
  int64_t d = 0;
  const msc_status want_null = msc_model_embedding_size(nullptr, MSC_EMBED_FUSED, &d);
  try {
    empty.embedding_size(MSC_EMBED_FUSED, &d);
    FAIL("a NULL model did not throw");
  } catch (const mosaic::Error &e) {
    CHECK(e.status() == want_null);
  }
}

static void test_options_round_trip() {
  mosaic::Options o = mosaic::Options::create();
  o.set_int("seed", 1234);
  CHECK(o.get_int("seed") == 1234);
  int64_t seed_c = 0;
  CHECK(msc_options_get_int(o.get(), "seed", &seed_c) == MSC_OK && seed_c == 1234);
  o.set_float("optim.lr", 0.25);
  CHECK(o.get_float("optim.lr") == 0.25);
  o.set_string("modality.0.encoder", std::string("tiny"));
  CHECK(o.get_string("modality.0.encoder") == "tiny");
  CHECK(o.is_set("modality.0.encoder") == 1);
  CHECK(o.is_set("optim.weight_decay") == 0);
  // A value longer than any fixed guess: the string protocol sizes the buffer.
  std::string long_name(300, 'x');
  o.set_string("modality.0.band_names", long_name);
  CHECK(o.get_string("modality.0.band_names") == long_name);
  std::vector<float> mean = {1.5f, 2.5f, -3.0f};
  o.set_floats("modality.0.mean", mean);
  std::vector<float> back(mean.size());
  CHECK(o.get_floats("modality.0.mean", back) == mean.size());
  CHECK(back == mean);
  // to_json / from_json through std::string, compared with the C API's own text.
  char buf[4096];
  size_t len = 0;
  CHECK(msc_options_to_json(o.get(), buf, sizeof buf, &len) == MSC_OK);
  const std::string json = o.to_json();
  CHECK(json == std::string(buf, len));
  mosaic::Options p = mosaic::Options::create();
  p.from_json(json);
  CHECK(p.to_json() == json);
  mosaic::Options q = o.copy();
  CHECK(q.get() != o.get() && q.to_json() == json);
}

static void test_free_functions() {
  CHECK(mosaic::version() == msc_version());
  CHECK(std::strcmp(mosaic::version_string(), msc_version_string()) == 0);
  CHECK(mosaic::header_version_major == MSC_VERSION_MAJOR);
  CHECK(std::strcmp(mosaic::status_string(MSC_E_IO), msc_status_string(MSC_E_IO)) == 0);
  const char *chosen = nullptr;
  mosaic::backend_select("cpu", &chosen);
  CHECK(chosen != nullptr && std::strcmp(chosen, "cpu") == 0);
  // A metric through spans of std::vector against the C function called directly.
  std::vector<float> pred = {1, 2, 3, 4}, truth = {1, 3, 2, 8};
  double mae = 0, rmse = 0, mae_c = 0, rmse_c = 0;
  mosaic::metrics_regression(pred.data(), truth.data(), 4, &mae, &rmse);
  CHECK(msc_metrics_regression(pred.data(), truth.data(), 4, &mae_c, &rmse_c) == MSC_OK);
  CHECK(mae == mae_c && rmse == rmse_c);
}

static void test_model(const char *data) {
  mosaic::Dataset ds = mosaic::Dataset::open(data, "bigearthnet-v2", mosaic::Options());
  mosaic::Options o = mosaic::Options::create();
  o.set_string("modality.0.encoder", "tiny");
  o.set_string("modality.1.encoder", "tiny");
  o.from_dataset(ds, MSC_STATS_AUTO, 0);
  mosaic::Model m = mosaic::Model::create(o);
  CHECK(m.modality_count() == msc_model_modality_count(m.get()));
  int64_t bands = 0, size = 0;
  CHECK(msc_model_modality_shape(m.get(), 0, &bands, &size) == MSC_OK);
  auto [b, s] = m.modality_shape(0);
  CHECK(b == bands && s == size);
  int64_t d = 0;
  CHECK(msc_model_embedding_size(m.get(), MSC_EMBED_FUSED, &d) == MSC_OK);
  CHECK(m.embedding_size(MSC_EMBED_FUSED) == d);
  std::string id_c(256, '\0');
  size_t len = 0;
  CHECK(msc_dataset_sample_id(ds.get(), 0, &id_c[0], id_c.size(), &len) == MSC_OK);
  id_c.resize(len);
  CHECK(ds.sample_id(0) == id_c);
  // A short embedding buffer: the C status, as an exception.
  mosaic::Batch batch = mosaic::Batch::create();
  std::vector<int64_t> idx = {0};
  ds.fill_batch(idx.data(), 1, batch);
  std::vector<float> small(static_cast<size_t>(d) - 1);
  const msc_status want =
      msc_embed(m.get(), batch.get(), MSC_EMBED_FUSED, small.data(), small.size());
  CHECK(want != MSC_OK);
  try {
    m.embed(batch, MSC_EMBED_FUSED, small);
    FAIL("a short buffer did not throw");
  } catch (const mosaic::Error &e) {
    CHECK(e.status() == want);
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: test_cpp TMPDIR DATA\n");
    return 2;
  }
  test_raii_and_move();
  test_error(argv[1]);
  test_options_round_trip();
  test_free_functions();
  test_model(argv[2]);
  if (failures)
    std::fprintf(stderr, "test_cpp: %d check(s) failed\n", failures);
  else
    std::printf("test_cpp: all checks passed\n");
  return failures ? 1 : 0;
}
