#pragma once
/// \file
/// `haq export`: the QDQ ONNX form of a model under a policy (docs/export.md).

#include <string>

#include "haq/engine/engine.h"
#include "haq/model/onnx_export.h"
#include "haq/quant/policy.h"

namespace haq::exporter {

/// The Q/DQ parameters of every quantized (non-fp32) layer of `p`, exactly
/// what `engine` computes with. `engine` must be calibrated. Error(unsupported)
/// for a signed 1-bit activation (a sign function, not expressible as Q/DQ).
model::QdqSpec qdq_spec(engine::Engine& engine, const quant::Policy& p);

/// qdq_spec() written as a QDQ ONNX model of `src_model_path` to `out_path` (atomically).
void export_qdq(engine::Engine& engine, const quant::Policy& p, const std::string& src_model_path,
                const std::string& out_path);

}  // namespace haq::exporter
