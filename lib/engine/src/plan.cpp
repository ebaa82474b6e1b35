// The rules of the quantization plan (plan.h): pure functions of values, so
// that each can be tested on its own.

#include "haq/engine/plan.h"

#include "haq/model/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace haq::engine {

FusedActivation fusable_activation(const model::Node& n) {
  FusedActivation a;
  const float inf = std::numeric_limits<float>::infinity();
  const model::OpDef* d = model::find_op(n.op);
  const model::Fusable f = d ? d->fusable : model::Fusable::no;
  if (f == model::Fusable::relu) {
    a.kind = FusedActivation::Kind::relu;
    a.lo = 0.f;
    a.hi = inf;
  } else if (f == model::Fusable::clip) {
    a.kind = FusedActivation::Kind::clip;
    a.lo = n.get_float("min", -inf);
    a.hi = n.get_float("max", inf);
  } else {
    return a;
  }
  a.node = n.name;
  return a;
}

std::vector<Eltwise> post_op_chain(const FusedActivation& act, const OutputEncoding& out) {
  using K = Eltwise::Kind;
  if (!out.codes) {
    switch (act.kind) {
      case FusedActivation::Kind::none: return {};
      case FusedActivation::Kind::relu: return {{K::relu, 0.f, 0.f}};
      // ONNX Clip with min > max gives max everywhere.
      case FusedActivation::Kind::clip: return {{K::clip, std::min(act.lo, act.hi), act.hi}};
    }
  }
  // Requantisation into the consumer's codes, with the activation's bounds
  // folded into the one clip.
  const float s = out.inv_scale;
  float lo = out.lo, hi = out.hi;
  if (act.kind != FusedActivation::Kind::none) {
    const float a = std::min(act.lo, act.hi), b = act.hi;
    lo = std::clamp(a * s, out.lo, out.hi);
    hi = std::clamp(b * s, out.lo, out.hi);
  }
  return {{K::linear, s, 0.f}, {K::clip, lo, hi}};
}

float apply_chain(const std::vector<Eltwise>& chain, float x) {
  for (const Eltwise& e : chain) {
    switch (e.kind) {
      case Eltwise::Kind::relu: x = x > 0.f ? x : 0.f; break;
      case Eltwise::Kind::clip: x = std::min(std::max(x, e.alpha), e.beta); break;
      case Eltwise::Kind::linear: x = e.alpha * x + e.beta; break;
    }
  }
  return x;
}

OutputEncoding choose_output_encoding(bool producer_is_quantized_conv, bool is_graph_output,
                                      const std::vector<OutputReader>& readers) {
  OutputEncoding f32;
  if (!producer_is_quantized_conv || is_graph_output || readers.empty()) return f32;
  const quant::ActQuant& first = readers.front().quantizer;
  for (const OutputReader& r : readers) {
    if (!r.quantized_conv_input) return f32;
    const quant::ActQuant& q = r.quantizer;
    if (!q.is_unsigned || q.binary()) return f32;
    if (q.bits != first.bits || q.scale != first.scale || q.inv_scale != first.inv_scale || q.lo != first.lo ||
        q.hi != first.hi)
      return f32;
  }
  OutputEncoding e;
  e.codes = true;
  e.consumer = readers.front().layer;
  e.consumer_a_bits = readers.front().a_bits;
  e.inv_scale = first.inv_scale;
  e.lo = static_cast<float>(first.lo);
  e.hi = static_cast<float>(first.hi);
  return e;
}

std::string to_string(const std::vector<Eltwise>& chain) {
  if (chain.empty()) return "none";
  std::string s;
  for (const Eltwise& e : chain) {
    if (!s.empty()) s += " ";
    switch (e.kind) {
      case Eltwise::Kind::relu: s += "relu"; break;
      case Eltwise::Kind::clip: s += fmt::format("clip({:g}, {:g})", e.alpha, e.beta); break;
      case Eltwise::Kind::linear:
        s += e.beta == 0.f ? fmt::format("linear({:.6g})", e.alpha) : fmt::format("linear({:.6g}, {:.6g})", e.alpha, e.beta);
        break;
    }
  }
  return s;
}

namespace {

std::string input_text(const LayerPlan& l) {
  if (!l.quantized) return "f32";
  const quant::ActQuant& q = l.input.act;
  std::string s = q.binary() ? "binary" : fmt::format("{}{} [{}, {}]", q.is_unsigned ? "u" : "s", q.bits, q.lo, q.hi);
  s += fmt::format(" scale {:.4g}", q.scale);
  if (l.input.zero_point != 0) s += fmt::format(" zp {}", l.input.zero_point);
  s += l.input.from_producer ? " (codes from producer)" : " (quantized from f32)";
  return s;
}

std::string weight_text(const LayerPlan& l) {
  if (!l.quantized) return "f32";
  const WeightQuantizer& w = l.weight;
  if (l.kind == model::LayerKind::act_matmul) {
    const quant::ActQuant& q = l.input_b.act;
    std::string s = q.binary() ? "second operand binary" : fmt::format("second operand s{} [{}, {}]", q.bits, q.lo, q.hi);
    s += fmt::format(" per-tensor scale {:.4g} (quantized from f32)", q.scale);
    if (w.split) s += ", split";
    return s;
  }
  std::string s = fmt::format("s{} per-channel {} clip, |level| <= {}", w.bits, quant::to_string(w.clip), w.max_abs_level);
  if (w.split) s += ", split";
  return s;
}

std::string output_text(const OutputEncoding& o, const QuantPlan& plan) {
  if (!o.codes) return "f32";
  const std::string who = o.consumer >= 0 && o.consumer < static_cast<int>(plan.layers.size())
                              ? plan.layers[o.consumer].name
                              : fmt::format("layer {}", o.consumer);
  return fmt::format("u{} codes of '{}'", o.consumer_a_bits, who);
}

}  // namespace

std::string format_plan(const QuantPlan& plan) {
  std::string out;
  for (const LayerPlan& l : plan.layers) {
    out += fmt::format("{} ({}, {})\n", l.name, model::to_string(l.kind),
                       l.quantized ? fmt::format("w{}a{}", l.w_bits, l.a_bits) : std::string("fp32"));
    out += fmt::format("  input:    {}\n", input_text(l));
    out += fmt::format("  weights:  {}\n", weight_text(l));
    std::string act = "none";
    if (l.activation.kind == FusedActivation::Kind::relu) act = fmt::format("Relu '{}'", l.activation.node);
    if (l.activation.kind == FusedActivation::Kind::clip)
      act = fmt::format("Clip({:g}, {:g}) '{}'", l.activation.lo, l.activation.hi, l.activation.node);
    out += fmt::format("  fused:    {}\n", act);
    out += fmt::format("  post-ops: {}\n", to_string(l.post_ops));
    out += fmt::format("  output:   {}\n", output_text(l.output, plan));
  }
  return out;
}

nlohmann::json plan_to_json(const QuantPlan& plan) {
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerPlan& l : plan.layers) {
    nlohmann::json j = {{"layer", l.name}, {"kind", model::to_string(l.kind)}, {"quantized", l.quantized}};
    const char* act = l.activation.kind == FusedActivation::Kind::relu   ? "relu"
                      : l.activation.kind == FusedActivation::Kind::clip ? "clip"
                                                                         : "none";
    j["fused_activation"] = {{"kind", act}, {"node", l.activation.node}};
    if (l.activation.kind == FusedActivation::Kind::clip) {
      // JSON has no infinity: an open bound is null.
      auto bound = [](float v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
      j["fused_activation"]["min"] = bound(l.activation.lo);
      j["fused_activation"]["max"] = bound(l.activation.hi);
    }
    if (l.quantized) {
      const quant::ActQuant& q = l.input.act;
      j["w_bits"] = l.w_bits;
      j["a_bits"] = l.a_bits;
      j["input"] = {{"bits", q.bits},       {"signed", !q.is_unsigned}, {"scale", q.scale},
                    {"lo", q.lo},           {"hi", q.hi},               {"zero_point", l.input.zero_point},
                    {"from_producer", l.input.from_producer}};
      j["weights"] = {{"bits", l.weight.bits},
                      {"clip", quant::to_string(l.weight.clip)},
                      {"max_abs_level", l.weight.max_abs_level},
                      {"min_scale", l.weight.min_scale},
                      {"max_scale", l.weight.max_scale},
                      {"split", l.weight.split}};
      if (l.kind == model::LayerKind::act_matmul) {
        const quant::ActQuant& b = l.input_b.act;
        j["input_b"] = {{"bits", b.bits}, {"signed", true}, {"scale", b.scale}, {"lo", b.lo}, {"hi", b.hi}};
      }
    }
    nlohmann::json chain = nlohmann::json::array();
    for (const Eltwise& e : l.post_ops) {
      const char* k = e.kind == Eltwise::Kind::relu ? "relu" : e.kind == Eltwise::Kind::clip ? "clip" : "linear";
      chain.push_back({{"op", k}, {"alpha", e.alpha}, {"beta", e.beta}});
    }
    j["post_ops"] = chain;
    j["output"] = l.output.codes ? nlohmann::json{{"encoding", "u8 codes"},
                                                  {"consumer", plan.layers.at(l.output.consumer).name},
                                                  {"consumer_a_bits", l.output.consumer_a_bits}}
                                 : nlohmann::json{{"encoding", "f32"}};
    layers.push_back(j);
  }
  return layers;
}

}  // namespace haq::engine
