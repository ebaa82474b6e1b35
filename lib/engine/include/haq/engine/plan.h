#pragma once
/// \file
/// The quantization plan: how every layer of a Graph executes under a
/// Policy, as plain values. The engine lowers (Graph, Policy, calibration)
/// into a QuantPlan (Engine::plan) and executes the plan and nothing else:
/// each layer's input quantizer, weight quantizer, the fused post-op chain
/// handed to oneDNN, and its output encoding. Each rule that decides one of
/// these is a function here, tested on its own (tests/unit/engine/test_plan.cpp)
/// and printed by `haq eval --explain`.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/model/graph.h"
#include "haq/quant/quantizer.h"

namespace haq::engine {

/// An activation fused into the layer (or elementwise op) that produces its
/// input: the graph node after the layer that the layer computes itself.
struct FusedActivation {
  enum class Kind { none, relu, clip } kind = Kind::none;
  float lo = 0, hi = 0;  ///< clip bounds (relu: 0, +inf)
  std::string node;      ///< the fused node's name ("" for none)
};

/// The activation a node computes, if it is one a layer can fuse (Relu, Clip);
/// Kind::none otherwise.
FusedActivation fusable_activation(const model::Node& n);

/// One elementwise step of a post-op chain, applied by oneDNN after the
/// output scale and bias: relu: max(x, 0); clip: min(max(x, alpha), beta);
/// linear: alpha * x + beta.
struct Eltwise {
  enum class Kind { relu, clip, linear } kind = Kind::relu;
  float alpha = 0, beta = 0;
  bool operator==(const Eltwise& o) const { return kind == o.kind && alpha == o.alpha && beta == o.beta; }
};

/// How a layer's output leaves it: f32 values, or directly the u8 codes of
/// the activation quantizer of the layer(s) that read it ("direct u8").
struct OutputEncoding {
  bool codes = false;
  int consumer = -1;        ///< layer whose quantizer the codes are in
  int consumer_a_bits = 0;
  float inv_scale = 1.f;    ///< consumer quantizer: code = round(clip(x * inv_scale, lo, hi))
  float lo = 0.f, hi = 0.f;
};

/// The post-op chain a layer hands to oneDNN for its fused activation and
/// output encoding. Never more than one clip: oneDNN 2.6's AVX2 int8
/// kernels (jit_uni_int8_1x1) apply the first clip's bounds to a second clip
/// in the same chain (clip(0,6) -> linear(10) -> clip(0,255) on 2 gives 6),
/// so an activation followed by requantisation becomes one linear and one
/// clip with combined bounds: clip(clip(x,a,b)*s, lo, hi) =
/// clip(x*s, clamp(a*s, lo, hi), clamp(b*s, lo, hi)) for s > 0, exact in float.
std::vector<Eltwise> post_op_chain(const FusedActivation& act, const OutputEncoding& out);

/// Applies a chain to one value as oneDNN specifies it (the reference the
/// tests compare oneDNN with).
float apply_chain(const std::vector<Eltwise>& chain, float x);

/// A reader of a layer's output, as the output-encoding rule sees it.
struct OutputReader {
  bool quantized_conv_input = false;  ///< a quantized Conv layer reading it as its activation input
  int layer = -1;
  int a_bits = 0;
  quant::ActQuant quantizer;          ///< that layer's input quantizer (if quantized_conv_input)
};

/// The rule for direct u8 outputs: a quantized Conv layer that is not a
/// graph output writes its readers' codes when it has readers, every reader
/// is a quantized Conv taking it as its input, and they all use one and the
/// same unsigned, non-binary quantizer. Otherwise f32.
OutputEncoding choose_output_encoding(bool producer_is_quantized_conv, bool is_graph_output,
                                      const std::vector<OutputReader>& readers);

/// Input quantizer of a quantized layer: the levels, and the u8 codes they
/// reach oneDNN as (code = level + zero_point; signed levels are shifted by
/// 2^(bits-1), which oneDNN subtracts exactly in s32).
struct InputQuantizer {
  quant::ActQuant act;
  int32_t zero_point = 0;
  bool from_producer = false;  ///< the producer wrote these codes (direct u8); else quantized from f32
};

/// Weight quantizer of a quantized layer (per output channel, symmetric).
struct WeightQuantizer {
  int bits = 0;
  quant::WeightClip clip = quant::WeightClip::mse;
  int32_t max_abs_level = 0;  ///< largest |level| actually used
  float min_scale = 0, max_scale = 0;
  /// Input channels duplicated and weights halved (engine::Int8Split): this
  /// CPU's int8 kernels could saturate s16 pairs otherwise.
  bool split = false;
};

/// How one layer executes.
struct LayerPlan {
  int layer = -1;
  std::string name;
  model::LayerKind kind = model::LayerKind::conv;
  bool quantized = false;  ///< false: fp32 primitive, input and output f32
  int w_bits = 0, a_bits = 0;
  FusedActivation activation;
  InputQuantizer input;    ///< quantized layers only
  /// act_matmul: the second operand (signed, per tensor, at w_bits); `weight`
  /// then describes its levels (bits, max |level|, scale, split).
  InputQuantizer input_b;
  WeightQuantizer weight;  ///< quantized layers only
  std::vector<Eltwise> post_ops;  ///< what oneDNN applies after scale and bias
  OutputEncoding output;
};

/// The plan of a Graph under one Policy, in Graph::layers order.
struct QuantPlan {
  std::vector<LayerPlan> layers;
};

/// Short text of a chain, e.g. "linear(41.3) clip(0, 255)" ("none" if empty).
std::string to_string(const std::vector<Eltwise>& chain);
/// The plan as text, a few lines per layer (what `haq eval --explain` prints).
std::string format_plan(const QuantPlan& plan);
/// The plan as JSON (`haq eval --explain --json`; fields in docs/eval.md).
nlohmann::json plan_to_json(const QuantPlan& plan);

}  // namespace haq::engine
