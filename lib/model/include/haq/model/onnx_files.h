#pragma once
/// \file
/// ONNX files other than a model to import: serialized TensorProto files (the
/// input_N.pb / output_N.pb of ONNX's backend tests) and a light outline of a
/// model (its ops and its graph inputs and outputs) read without importing it.

#include <string>
#include <vector>

#include "haq/model/graph.h"

namespace haq::model {

/// Reads one serialized TensorProto (raw or typed data). Error(io) when the
/// file cannot be read, Error(model) when it is not a TensorProto or its data
/// does not match its dims, Error(unsupported) for an element type haq lacks
/// (see DType).
Tensor read_tensor_pb(const std::string& path);

/// What a model file declares, before any import step.
struct OnnxOutline {
  int64_t opset = 0;                     ///< default-domain opset (0 if none)
  std::vector<std::string> op_types;     ///< per node, in file order; "domain.Op" outside the default domain
  std::vector<std::string> inputs;       ///< graph inputs that are not initializers, in order
  std::vector<std::string> outputs;      ///< graph outputs, in order
};

/// Reads the outline of an ONNX model. Error(io) / Error(model) as import_onnx.
OnnxOutline read_onnx_outline(const std::string& path);

}  // namespace haq::model
