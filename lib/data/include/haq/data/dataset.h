#pragma once
/// \file
/// Datasets: IDX (fashion-mnist, mnist), NPY pairs and image folders, loaded
/// into one in-memory form, and laid out to match a model's input.

#include <cstdint>
#include <string>
#include <vector>

namespace haq::data {

/// Which part of a dataset.
enum class Split { train, test };

/// Preprocessing for image folders (IDX/NPY data is only scaled, see below).
struct Preprocess {
  int64_t resize = 0;             ///< shorter side resized to this (0: no resize)
  int64_t crop = 0;               ///< centre crop to crop x crop (0: none)
  std::vector<float> mean;        ///< per channel, applied after scaling to [0,1] (empty: none)
  std::vector<float> std;         ///< per channel (empty: none)
  std::string channel_order = "rgb";  ///< "rgb" or "bgr"
  bool grayscale = false;         ///< decode to 1 channel
};

/// What the user named with --data, and how to read it.
struct DataSpec {
  /// "fashion-mnist" (Debian's dataset-fashion-mnist), "mnist" or a folder
  /// with the four IDX files (gzipped or not); "IMAGES.npy,LABELS.npy"; or an
  /// image folder with one subfolder per class (train/ and test/ subfolders,
  /// if present, are the splits).
  std::string data;
  Preprocess preprocess;
  /// uint8 data is divided by this (255 -> [0,1], the reference models' input).
  float scale = 255.f;
};

/// Images in memory, float, N x C x H x W, preprocessed.
struct Dataset {
  std::string source;             ///< file or folder, for messages
  int64_t channels = 0, height = 0, width = 0;
  int64_t num_classes = 0;        ///< 1 + max label (or the number of class folders)
  std::vector<float> images;      ///< size() * channels * height * width
  std::vector<int32_t> labels;    ///< size(), or empty when unlabeled
  std::vector<std::string> class_names;  ///< image folders only
  int64_t size() const { return channels * height * width == 0 ? 0 : static_cast<int64_t>(images.size()) / (channels * height * width); }
  int64_t sample_elems() const { return channels * height * width; }
};

/// Loads a split. Errors (Error(data) / Error(io)) name the file and the
/// sample index: missing file, count mismatch, label out of range, wrong image
/// size or channels, corrupt header.
Dataset load_dataset(const DataSpec& spec, Split split);

/// `count` distinct sample indices of `d` drawn with `seed` (all, in order, if
/// count <= 0 or count >= size()). Sorted ascending, so results are stable.
std::vector<int64_t> sample_indices(const Dataset& d, int64_t count, uint64_t seed);

/// Copies samples `indices` of `d` into `out`, laid out for a model input of
/// shape `input_shape` (its dim 0 is the batch and may differ from
/// indices.size(); the rest is one sample): N x C x H x W, N x H x W x C or
/// N x (C*H*W) all work from the same data. Error(data) naming both shapes if
/// the sample cannot be laid out so. `out` must hold indices.size() samples.
void to_model_layout(const Dataset& d, const std::vector<int64_t>& indices,
                     const std::vector<int64_t>& input_shape, float* out);

}  // namespace haq::data
