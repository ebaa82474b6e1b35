// Fuzz target: the NPY reader via load_dataset on "images.npy,labels.npy"
// (or "images.npy" alone when the labels part is empty), then the model
// layout of the first sample. The input holds both files (see split_two).
#include <vector>

#include "fuzz_harness.h"
#include "haq/data/dataset.h"

namespace haq::fuzz {

Outcome run_npy(const uint8_t* data, size_t size) {
  static const std::filesystem::path dir = work_dir() / "npy";
  static const bool made = std::filesystem::create_directories(dir);
  (void)made;
  const TwoParts parts = split_two(data, size);
  write_bytes(dir / "images.npy", parts.first, parts.first_size);
  write_bytes(dir / "labels.npy", parts.second, parts.second_size);
  return guarded([&] {
    data::DataSpec spec;
    spec.data = (dir / "images.npy").string();
    if (parts.second_size > 0) spec.data += "," + (dir / "labels.npy").string();
    const data::Dataset d = data::load_dataset(spec, data::Split::train);
    (void)data::describe(d);
    std::vector<float> one(static_cast<size_t>(d.sample_elems()));
    data::to_model_layout(d, {0}, {1, d.channels, d.height, d.width}, one.data());
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_npy)
