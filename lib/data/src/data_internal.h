#pragma once
// Internals of lib/data shared between the loaders (not installed, not API).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "haq/data/dataset.h"

namespace haq::data::detail {

/// Largest sample count * elements we agree to hold in memory (floats): 2^33
/// elements = 32 GiB. Anything above is refused before allocating.
inline constexpr uint64_t kMaxTotalElems = uint64_t{1} << 33;

/// Multiplies with an overflow check; returns false on overflow.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

/// The four IDX files of a folder (either split may be missing: empty path).
struct IdxFiles {
  std::filesystem::path train_images, train_labels, test_images, test_labels;
};

/// Finds IDX files in `dir` (train-images-idx3-ubyte, train-images.idx3-ubyte,
/// t10k-/test- prefixes, each optionally .gz). Missing files stay empty.
IdxFiles find_idx_files(const std::filesystem::path& dir);

/// Loads IDX images + labels of one split.
Dataset load_idx(const std::filesystem::path& images, const std::filesystem::path& labels,
                 const DataSpec& spec);

/// Loads a .npy image file and an optional label file (empty path: unlabeled).
Dataset load_npy(const std::filesystem::path& images, const std::filesystem::path& labels,
                 const DataSpec& spec);

/// Loads an image folder (one subfolder per class) of one split. `labels`
/// (a label map) gives the class indices when not null; else `class_names`
/// fixes the class order when given (the test split follows the train
/// split); else the sorted folder names do.
Dataset load_image_folder(const std::filesystem::path& dir, const DataSpec& spec,
                          const std::vector<std::string>& class_names, const LabelMap* labels);

/// How to make images of different sizes one size, for messages: the
/// --preprocess to add, from the model's input size when known.
std::string size_hint(const DataSpec& spec);

/// Sets num_classes and checks the label range (Error(data) naming `file`
/// and the sample index).
void finish_labels(Dataset& d, const DataSpec& spec, const std::string& file);

/// Applies mean/std of `p` to every sample (channel-wise). Error(usage) if the
/// number of values is neither 1 nor d.channels.
void apply_mean_std(Dataset& d, const Preprocess& p);

/// An 8-bit decoded image, interleaved rows (H x W x C): C = 1 (gray) or 3 (RGB).
struct Image8 {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;
};

/// Decodes PNG or JPEG (chosen by content) to 8-bit gray or RGB, as stored:
/// gray (and gray + alpha) PNGs and grayscale JPEGs give 1 channel; RGB,
/// RGBA and palette PNGs and colour JPEGs give 3. Alpha is dropped (the
/// colour values as stored, as PIL's convert); 16-bit PNGs are scaled to 8
/// bits. Error(data) naming `path`.
Image8 decode_image(const std::filesystem::path& path);

/// Planar float image C x H x W.
struct Planar {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<float> values;
};

/// Resizes so the shorter side is `size` (longer side: floor(size * long /
/// short), as torchvision), bilinear; antialiased when shrinking (the
/// triangle filter widened by the scale factor, as PIL).
Planar resize_shorter_side(const Planar& in, int64_t size);

/// Resizes to exactly out_h x out_w with the same filter.
Planar resize_bilinear(const Planar& in, int64_t out_h, int64_t out_w);

/// Centre crop to size x size; offsets round((h - size) / 2) half-to-even, as
/// torchvision. The caller checks that the image is large enough.
Planar center_crop(const Planar& in, int64_t size);

}  // namespace haq::data::detail
