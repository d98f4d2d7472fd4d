// embed.cpp — the C++ wrapper's parity example (docs/bindings.md, "C++"): does what
// `embed_ref embed MODEL DATA OUT` (tests/bindings/embed_ref.c) does, through
// include/mosaic/mosaic.hpp: loads the model, opens the BigEarthNet v2 folder DATA, fills
// one batch with every sample in dataset order, computes the fused embeddings and writes
// them to OUT as raw float32 (N × D row-major).
//
//   embed MODEL DATA OUT
#include <mosaic/mosaic.hpp>

#include <cstdio>
#include <numeric>
#include <vector>

int main(int argc, char **argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: embed MODEL DATA OUT\n");
    return 2;
  }
  try {
    mosaic::Model model = mosaic::Model::load(argv[1], mosaic::Options());
    mosaic::Dataset ds = mosaic::Dataset::open(argv[2], "bigearthnet-v2", mosaic::Options());
    const int64_t n = ds.size();
    const int64_t d = model.embedding_size(MSC_EMBED_FUSED);
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), int64_t{0});
    mosaic::Batch batch = mosaic::Batch::create();
    ds.fill_batch(idx.data(), n, batch);
    std::vector<float> h(static_cast<size_t>(n * d));
    model.embed(batch, MSC_EMBED_FUSED, h);
    std::FILE *f = std::fopen(argv[3], "wb");
    if (!f || std::fwrite(h.data(), sizeof(float), h.size(), f) != h.size() ||
        std::fclose(f) != 0) {
      std::fprintf(stderr, "embed: cannot write %s\n", argv[3]);
      return 1;
    }
    std::printf("embed: %lld samples x %lld floats -> %s\n", static_cast<long long>(n),
                static_cast<long long>(d), argv[3]);
  } catch (const mosaic::Error &e) {
    std::fprintf(stderr, "embed: %s: %s\n", msc_status_string(e.status()), e.what());
    return 1;
  }
  return 0;
}
