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

/// Preprocessing. resize, crop, channel_order and channels apply to image
/// folders only (IDX/NPY samples keep their stored size); scale, mean and std
/// apply to every source. See docs/datasets.md.
struct Preprocess {
  int64_t resize = 0;                 ///< shorter side resized to this (0: no resize)
  int64_t crop = 0;                   ///< centre crop to crop x crop (0: none)
  float scale = 255.f;                ///< 8-bit values are divided by this (255: [0,1])
  std::vector<float> mean;            ///< per channel, applied after scaling (empty: none)
  std::vector<float> std;             ///< per channel (empty: none)
  std::string channel_order = "rgb";  ///< "rgb" or "bgr"
  /// Channels an image is converted to: 1 (BT.601 luma), 3 (RGB; a gray
  /// image is replicated), or 0: what the model's input has (DataSpec::
  /// model_input), 3 if that cannot be told.
  int64_t channels = 0;
};

/// What the model's input says about the samples it wants (from its shape).
struct ModelInput {
  int64_t channels = 0, height = 0, width = 0;  ///< 0: unknown (dynamic or not an image)
};

/// Reads channels and H x W from a model input shape: N x C x H x W when C is
/// 1 or 3, else N x H x W x C when C is 1 or 3 (the .npy rule); dims <= 0
/// (dynamic) stay unknown. Other ranks: all unknown.
ModelInput model_input_of(const std::vector<int64_t>& input_shape);

/// What the user named with --data, and how to read it.
struct DataSpec {
  /// "fashion-mnist" (Debian's dataset-fashion-mnist), "mnist" or a folder
  /// with the four IDX files (gzipped or not); "IMAGES.npy,LABELS.npy"; or an
  /// image folder with one subfolder per class (train/ and test/ subfolders,
  /// if present, are the splits).
  std::string data;
  Preprocess preprocess;
  /// Image folders: a label map file (JSON object {"cat": 3, ...}, or text
  /// with one class name per line, line k = index k-1). Empty: the folder
  /// names sorted byte-wise. See read_label_map.
  std::string labels;
  /// If > 0, the number of classes the model predicts: a label >= this is an
  /// error naming the file and the sample index, and Dataset::num_classes is
  /// set to it. If 0, num_classes is 1 + the largest label of the split (or
  /// the number of class folders).
  int64_t num_classes = 0;
  /// The model's input shape (batch first), if known: image folders follow
  /// its channels when Preprocess::channels is 0, and messages suggest its size.
  std::vector<int64_t> model_input;
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

/// True if both splits of `spec` are the same samples (one .npy pair, an
/// image folder without train/ and test/): a caller then loads one split and
/// uses it for both, instead of holding two copies.
bool splits_shared(const DataSpec& spec);

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
///    keys resize, crop, scale, mean, std, order (rgb|bgr), gray and rgb (flags,
///    or =0|1), channels (auto|1|3), and the presets "imagenet" (resize 256,
///    crop 224, ImageNet mean/std) and "none" (the defaults), applied in order;
///  - inline JSON ("{...}") or the path of a .json file, see preprocess_from_json.
/// Error(usage) naming the key for bad values; Error(config) with the JSON pointer
/// for JSON.
Preprocess parse_preprocess(const std::string& text);

/// Reads a preprocessing spec from a JSON object with keys "resize", "crop",
/// "scale", "mean", "std" (a number or an array of numbers), "channel_order"
/// ("rgb"|"bgr"), "channels" ("auto"|"gray"|"rgb"), "grayscale" (bool, the
/// same as channels gray|auto), through core's strict reader: unknown
/// keys and wrong types are errors of the reader's kind naming the file and
/// the JSON pointer (e.g. inside a search config at /data/preprocess).
Preprocess preprocess_from_json(const JsonValue& value);

/// The same from a plain nlohmann::json; errors are Error(config) naming
/// `file` and the pointer (`pointer` is the object's own pointer, "" for the root).
Preprocess preprocess_from_json(const nlohmann::json& j, const std::string& file,
                                const std::string& pointer = "");

/// The spec as the key=value string parse_preprocess reads back (for logs and outputs).
std::string to_string(const Preprocess& p);

/// The spec as the JSON object preprocess_from_json reads back (config.json,
/// policy.json, eval --json): every key, defaults included.
nlohmann::json preprocess_to_json(const Preprocess& p);

/// A label map: class folder name -> class index.
struct LabelMap {
  std::string file;                      ///< where it was read from, for messages
  std::vector<std::string> names;        ///< names in file order
  std::vector<int32_t> indices;          ///< names[i]'s index
  std::vector<std::string> where;        ///< names[i]'s place in the file ("line 3", "/cat")
};

/// Reads a label map: a JSON object {"cat": 3, ...} (a file whose first
/// non-blank character is '{'), or text with one class name per line, the
/// first word of line k naming class k-1 (the rest of the line is ignored,
/// so "n01440764 tench" lines work). Error(data) naming the file and the
/// line or JSON pointer: empty name, duplicate name or index, index < 0 or
/// >= num_classes (when num_classes > 0).
LabelMap read_label_map(const std::string& path, int64_t num_classes = 0);

/// Picks the inference batch: `requested` if > 0, else the largest batch up to
/// 256 whose biggest activation (`activation_elems_per_sample` floats per
/// sample) stays within 64 MiB; never more than `samples` (at least 1).
int64_t choose_batch(int64_t requested, int64_t activation_elems_per_sample, int64_t samples);

}  // namespace haq::data
