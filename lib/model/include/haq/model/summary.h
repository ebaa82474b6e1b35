#pragma once
/// \file
/// A report of an imported model: what `haq inspect` prints. Built from the
/// Graph only, so other parts (reports, search logs) can reuse it.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/model/graph.h"

namespace haq::model {

/// One quantizable layer, as reported.
struct LayerSummary {
  int index = 0;                   ///< position in Graph::layers (topological order)
  std::string name;                ///< the node's name
  std::string op;                  ///< ONNX op type of the node (Conv, Gemm, MatMul)
  std::string kind;                ///< "conv", "gemm" or "matmul"
  std::vector<int64_t> input_shape, output_shape;  ///< with batch = ModelSummary::batch
  int64_t c_in = 0, c_out = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t groups = 1;
  bool depthwise = false;
  int64_t params = 0;              ///< weight + bias elements
  int64_t macs = 0;                ///< multiply-accumulates per sample
};

/// Everything `haq inspect` reports.
struct ModelSummary {
  std::string file;
  int64_t ir_version = 0;
  int64_t opset = 0;
  std::string producer_name, producer_version;
  int64_t batch = 1;
  bool dynamic_batch = false;
  std::vector<ValueInfo> inputs, outputs;
  std::vector<LayerSummary> layers;
  int64_t total_params = 0;        ///< over quantizable layers
  int64_t total_macs = 0;          ///< over quantizable layers, per sample
  int64_t constant_params = 0;     ///< elements of all float constants after import
  std::map<std::string, int64_t> ops_imported;  ///< op type -> count, after import
  std::map<std::string, int64_t> ops_original;  ///< op type -> count, as in the file
};

/// Builds the report of a Graph.
ModelSummary summarize(const Graph& graph);

/// The report as JSON (fields documented in docs/inspect.md).
nlohmann::json to_json(const ModelSummary& summary);

/// The report as human-readable text (a table of the layers and totals).
std::string format_text(const ModelSummary& summary);

}  // namespace haq::model
