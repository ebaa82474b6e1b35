#pragma once
/// \file
/// Writes a QDQ ONNX model: the source model with, for each quantized layer,
/// QuantizeLinear/DequantizeLinear on its activation input and its weights
/// stored as int8 levels behind a per-channel DequantizeLinear (see
/// docs/export.md). The spec is plain data so that this part (the only one
/// including ONNX headers) needs nothing from quant or engine.

#include <cstdint>
#include <string>
#include <vector>

namespace haq::model {

/// One quantized layer (a Conv, Gemm or MatMul node of the source model).
struct QdqLayer {
  std::string name;    ///< Layer::name (the node's name, or OpType_index when unnamed)
  std::string input;   ///< activation input value (Layer::input)
  std::string output;  ///< value the layer produces after folding (Layer::output)
  // Activation: level = clamp(round(x / act_scale), act_lo, act_hi).
  float act_scale = 1.f;
  bool act_unsigned = true;  ///< uint8 container (else int8), zero point 0
  int32_t act_lo = 0, act_hi = 255;
  // Weights: canonical layout (output channel first), levels in int8.
  std::vector<int64_t> weight_shape;  ///< conv: c_out, c_in/groups, kh, kw; gemm: c_out, c_in
  std::vector<int8_t> weight_levels;
  std::vector<float> weight_scales;   ///< per output channel
  std::vector<float> bias;            ///< float, c_out values (folded and corrected)
  // act_matmul (a MatMul of two activations): no weights, no bias; the
  // second operand `input_b` is quantized like the first, signed.
  bool act_matmul = false;
  std::string input_b;
  float b_scale = 1.f;
  int32_t b_lo = -128, b_hi = 127;
};

/// What to write.
struct QdqSpec {
  std::vector<QdqLayer> layers;
  std::string doc;  ///< stored as the model's doc_string
};

/// Reads `src_model_path`, inserts the Q/DQ nodes of `spec`, drops the nodes
/// folded into a layer (e.g. BatchNormalization), raises the opset to 13 when
/// that is safe, and writes `out_path` atomically. Error(unsupported) for a
/// layer it cannot rewrite, Error(model/io) for bad files.
void write_qdq_onnx(const std::string& src_model_path, const QdqSpec& spec, const std::string& out_path);

}  // namespace haq::model
