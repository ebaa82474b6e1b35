// Fuzz target: the IDX reader (gzipped or plain, through zlib) via
// load_dataset on a folder, then the model layout of the first sample. The
// input holds both files (see split_two): images, then labels.
#include <vector>

#include "fuzz_harness.h"
#include "haq/data/dataset.h"

namespace haq::fuzz {

Outcome run_idx(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = work_dir() / "idx";
  static const bool made = std::filesystem::create_directories(dir);
  (void)made;
  const TwoParts parts = split_two(data, size);
  write_bytes(dir / "train-images-idx3-ubyte", parts.first, parts.first_size);
  write_bytes(dir / "train-labels-idx1-ubyte", parts.second, parts.second_size);
  return guarded([&] {
    data::DataSpec spec;
    spec.data = dir.string();
    const data::Dataset d = data::load_dataset(spec, data::Split::train);
    (void)data::describe(d);
    std::vector<float> one(static_cast<size_t>(d.sample_elems()));
    data::to_model_layout(d, {0}, {1, d.channels, d.height, d.width}, one.data());
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_idx)
