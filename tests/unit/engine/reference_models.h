#pragma once
// The reference models and a batch of real Fashion-MNIST test images.
#include <filesystem>
#include <string>
#include <vector>

#include "haq/data/dataset.h"
#include "test_paths.h"

namespace haq::test {

/// models/fmnist-*.onnx, sorted.
inline std::vector<std::string> reference_models() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(source_path("models"))) {
    const std::string name = e.path().filename().string();
    if (name.rfind("fmnist-", 0) == 0 && e.path().extension() == ".onnx") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Fashion-MNIST's `split`, read from disk.
inline data::Dataset load_fashion_mnist(data::Split split) {
  data::DataSpec spec;
  spec.data = "fashion-mnist";
  return data::load_dataset(spec, split);
}

/// The Fashion-MNIST test split (loaded once).
inline const data::Dataset& fashion_mnist_test() {
  static const data::Dataset d = load_fashion_mnist(data::Split::test);
  return d;
}

/// The Fashion-MNIST train split (loaded once): calibration samples.
inline const data::Dataset& fashion_mnist_train() {
  static const data::Dataset d = load_fashion_mnist(data::Split::train);
  return d;
}

}  // namespace haq::test
