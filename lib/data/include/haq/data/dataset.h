#pragma once
/// \file
/// Datasets: IDX (fashion-mnist, mnist), NPY pairs and image folders, loaded
/// into one in-memory form, and laid out to match a model's input.

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace haq {
class JsonValue;
}

namespace haq::data {

/// Which part of a dataset.
enum class Split { train, test };

/// Preprocessing. resize, crop, channel_order and grayscale apply to image
/// folders only (IDX/NPY samples keep their stored size); mean and std apply
/// to every source, after scaling to [0,1]. See docs/datasets.md.
struct Preprocess {
  int64_t resize = 0;                 ///< shorter side resized to this (0: no resize)
  int64_t crop = 0;                   ///< centre crop to crop x crop (0: none)
  std::vector<float> mean;            ///< per channel, applied after scaling to [0,1] (empty: none)
  std::vector<float> std;             ///< per channel (empty: none)
  std::string channel_order = "rgb";  ///< "rgb" or "bgr"
  bool grayscale = false;             ///< decode to 1 channel
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
  /// If > 0, the number of classes the model predicts: a label >= this is an
  /// error naming the file and the sample index, and Dataset::num_classes is
  /// set to it. If 0, num_classes is 1 + the largest label of the split (or
  /// the number of class folders).
  int64_t num_classes = 0;
};

/// Images in memory, float, N x C x H x W, preprocessed.
struct Dataset {
  std::string source;  ///< file or folder, for messages
  int64_t channels = 0, height = 0, width = 0;
  int64_t num_classes = 0;               ///< 1 + max label (or the number of class folders)
  std::vector<float> images;             ///< size() * channels * height * width
  std::vector<int32_t> labels;           ///< size(), or empty when unlabeled
  std::vector<std::string> class_names;  ///< image folders only
  /// A remark for the user, printed by the apps (e.g. "the same data serves
  /// both splits"); empty if none.
  std::string note;
  int64_t size() const {
    return channels * height * width == 0
               ? 0
               : static_cast<int64_t>(images.size()) / (channels * height * width);
  }
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

/// One line for logs: "SOURCE: 10000 samples, 1x28x28, 10 classes".
std::string describe(const Dataset& d);

/// Parses a preprocessing spec given on the command line. Accepted forms:
///  - "" (defaults: nothing but the scaling);
///  - comma-separated key=value pairs, e.g.
///    "resize=256,crop=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,order=rgb",
///    keys resize, crop, mean, std, order (rgb|bgr), gray (a flag, or gray=0|1),
///    and the preset "imagenet" (resize 256, crop 224, ImageNet mean/std);
///  - inline JSON ("{...}") or the path of a .json file, see preprocess_from_json.
/// Error(usage) naming the key for bad values; Error(config) with the JSON pointer
/// for JSON.
Preprocess parse_preprocess(const std::string& text);

/// Reads a preprocessing spec from a JSON object with keys "resize", "crop",
/// "mean", "std" (a number or an array of numbers), "channel_order"
/// ("rgb"|"bgr"), "grayscale" (bool), through core's strict reader: unknown
/// keys and wrong types are errors of the reader's kind naming the file and
/// the JSON pointer (e.g. inside a search config at /data/preprocess).
Preprocess preprocess_from_json(const JsonValue& value);

/// The same from a plain nlohmann::json; errors are Error(config) naming
/// `file` and the pointer (`pointer` is the object's own pointer, "" for the root).
Preprocess preprocess_from_json(const nlohmann::json& j, const std::string& file,
                                const std::string& pointer = "");

/// The spec as the key=value string parse_preprocess reads back (for logs and outputs).
std::string to_string(const Preprocess& p);

}  // namespace haq::data
