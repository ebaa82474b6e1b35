#pragma once
// The data options eval, search, check and export share (--preprocess,
// --labels) and the recorded choice a policy carries; what the data takes
// from the model is in haq/search/model_data.h.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <string>

#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/data/dataset.h"
#include "haq/model/graph.h"
#include "haq/search/model_data.h"

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

}  // namespace haq::app
