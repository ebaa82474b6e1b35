#pragma once
// The data options eval, search, check and export share (--preprocess,
// --labels), and what they take from the model: its input (channels, size),
// its class count, and a batch that fits the samples and the memory bound.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>

#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/data/dataset.h"
#include "haq/model/graph.h"

namespace haq::app {

struct DataArgs {
  std::string preprocess;  ///< --preprocess SPEC (parsed with data::parse_preprocess)
  std::string labels;      ///< --labels FILE
};

inline void add_data_args(CLI::App& sub, DataArgs& a) {
  sub.add_option("--preprocess", a.preprocess,
                 "image preprocessing: imagenet, none, key=value pairs (resize, crop, scale, mean, "
                 "std, order, gray, rgb), inline JSON or a .json file (docs/datasets.md)");
  sub.add_option("--labels", a.labels,
                 "label map of an image folder: JSON {\"cat\": 3, ...} or one class name per line "
                 "(default: the folder names sorted)");
}

/// The preprocessing and label map of a run: as given, else what the
/// policy.json `policy_file` (if any) recorded, else the defaults.
struct DataChoice {
  data::Preprocess preprocess;
  std::string labels;
};
inline DataChoice data_choice(const DataArgs& a, const std::string& policy_file) {
  DataChoice c;
  if (!a.preprocess.empty()) c.preprocess = data::parse_preprocess(a.preprocess);
  c.labels = a.labels;
  if (policy_file.empty() || (!a.preprocess.empty() && !a.labels.empty())) return c;
  const nlohmann::json pj = parse_json_document(read_file(policy_file), policy_file, ErrorKind::policy);
  if (!pj.is_object()) return c;  // the policy reader names the problem
  if (a.preprocess.empty() && pj.contains("preprocess") && pj["preprocess"].is_object())
    c.preprocess = data::preprocess_from_json(pj["preprocess"], policy_file, "/preprocess");
  if (a.labels.empty() && pj.contains("labels") && pj["labels"].is_string())
    c.labels = pj["labels"].get<std::string>();
  return c;
}

/// Elements per sample of the model's first output (its classes).
inline int64_t model_classes(const model::Graph& g) {
  int64_t n = 1;
  for (int64_t d : g.shape(g.outputs.at(0).name)) n *= d;
  return n / std::max<int64_t>(1, g.batch);
}

/// Elements per sample of the model's largest activation.
inline int64_t largest_activation(const model::Graph& g) {
  int64_t top = 0;
  for (const auto& [name, shape] : g.shapes) {
    if (g.is_constant(name)) continue;
    int64_t n = 1;
    for (int64_t d : shape) n *= std::max<int64_t>(d, 1);
    top = std::max(top, n);
  }
  return top / std::max<int64_t>(1, g.batch);
}

/// The DataSpec for `data` fed to `g`: preprocessing, label map, the model's
/// class count (labels are checked against it) and input shape (channels).
inline data::DataSpec data_spec_for(const std::string& data, const data::Preprocess& pre,
                                    const std::string& labels, const model::Graph& g) {
  data::DataSpec spec;
  spec.data = data;
  spec.preprocess = pre;
  spec.labels = labels;
  spec.num_classes = model_classes(g);
  if (!g.inputs.empty()) spec.model_input = g.inputs[0].shape;
  return spec;
}

/// Prints the datasets' note (e.g. "the same images serve both splits") to
/// stderr, once even when both splits carry it; first checks that the model
/// takes the samples (that error, not a note and then the error).
inline void print_data_note(const data::Dataset& a, const data::Dataset& b, const model::Graph& g) {
  for (const data::Dataset* d : {&a, &b})
    if (d->size() > 0 && !g.inputs.empty()) {
      std::vector<float> one(static_cast<size_t>(d->sample_elems()));
      data::to_model_layout(*d, {0}, g.inputs[0].shape, one.data());
    }
  if (!a.note.empty()) fmt::print(stderr, "haq: note: {}\n", a.note);
  if (!b.note.empty() && b.note != a.note) fmt::print(stderr, "haq: note: {}\n", b.note);
}

/// `g` at `batch`: re-imported from `path` if its batch dim is symbolic and
/// differs; a fixed batch stays.
inline model::Graph graph_at_batch(model::Graph g, const std::string& path, int64_t batch,
                                   model::ImportOptions io = {}) {
  if (!g.dynamic_batch || g.batch == batch) return g;
  io.batch = batch;
  return model::import_onnx(path, io);
}

}  // namespace haq::app
