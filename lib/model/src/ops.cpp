// The op registry (ops.h). To add an op: one entry here, its normalisation,
// shape rule and folding in fold.cpp's per-op tables, and its kernel in the
// engine's kernel registry (lib/engine/src/engine.cpp, kernel_registry());
// tests/unit/model/test_ops.cpp checks that the three agree.

#include "haq/model/ops.h"

#include <algorithm>

#include <fmt/format.h>

namespace haq::model {

namespace {

OpDef op(std::string name, OpStage stage, NonNeg nonneg, std::string notes) {
  OpDef d;
  d.name = std::move(name);
  d.stage = stage;
  d.nonneg = nonneg;
  d.notes = std::move(notes);
  return d;
}

std::vector<OpDef> make_registry() {
  using S = OpStage;
  using N = NonNeg;
  std::vector<OpDef> v = {
      op("Abs", S::runs, N::always, ""),
      op("Add", S::runs, N::all_inputs, "numpy broadcasting; a following Relu/Clip is fused"),
      op("AveragePool", S::runs, N::like_input, "2-D; explicit or auto pads, ceil_mode, count_include_pad"),
      op("BatchNormalization", S::runs, N::never,
         "inference form; folded into the preceding Conv/Gemm when it is that layer's only reader, else run"),
      op("Cast", S::folded, N::never, "on constants (shape arithmetic), or between equal types"),
      op("Clip", S::runs, N::clip_min, "min/max as attributes (opset < 11) or constant inputs; fused into the producing layer"),
      op("Concat", S::runs, N::all_inputs, ""),
      op("Constant", S::folded, N::never, "tensor value"),
      op("ConstantOfShape", S::folded, N::never, "constant shape input"),
      op("Conv", S::layer, N::never,
         "2-D, constant weights; groups and depthwise, dilations, strides, explicit or auto pads"),
      op("Div", S::runs, N::all_inputs, "numpy broadcasting"),
      op("Dropout", S::folded, N::never, "inference: removed"),
      op("Exp", S::runs, N::always, ""),
      op("Flatten", S::runs, N::like_input, ""),
      op("Gather", S::runs, N::like_input, "constant indices"),
      op("Gemm", S::layer, N::never, "constant B; transA, transB, alpha and beta folded into canonical form"),
      op("GlobalAveragePool", S::runs, N::like_input, ""),
      op("GlobalMaxPool", S::runs, N::like_input, ""),
      op("HardSigmoid", S::runs, N::always, ""),
      op("HardSwish", S::runs, N::never, ""),
      op("Identity", S::folded, N::like_input, "removed (kept only between a graph input and a graph output)"),
      op("LRN", S::runs, N::like_input, "across channels"),
      op("LeakyRelu", S::runs, N::never, ""),
      op("MatMul", S::layer, N::never, "a quantizable layer when the second input is a constant weight"),
      op("Max", S::runs, N::any_input, "numpy broadcasting"),
      op("MaxPool", S::runs, N::like_input, "2-D; dilations, ceil_mode; only output 0 (no indices)"),
      op("Min", S::runs, N::all_inputs, "numpy broadcasting"),
      op("Mul", S::runs, N::all_inputs, "numpy broadcasting"),
      op("Neg", S::runs, N::never, ""),
      op("Pad", S::runs, N::pad_value, "constant, reflect and edge modes; pads as attribute or constant input"),
      op("ReduceMean", S::runs, N::like_input, "axes as attribute or constant input; keepdims"),
      op("Relu", S::runs, N::always, "fused into the producing layer or Add"),
      op("Reshape", S::runs, N::like_input, "constant shape (0 and -1 resolved)"),
      op("Shape", S::folded, N::never, "static shapes: always a constant; start/end"),
      op("Sigmoid", S::runs, N::always, ""),
      op("Softmax", S::runs, N::always, "any axis (opset < 13 only where flattening gives the same result)"),
      op("Sqrt", S::runs, N::always, ""),
      op("Squeeze", S::runs, N::like_input, "axes as attribute or constant input"),
      op("Sub", S::runs, N::never, "numpy broadcasting"),
      op("Tanh", S::runs, N::never, ""),
      op("Transpose", S::runs, N::like_input, ""),
      op("Unsqueeze", S::runs, N::like_input, "axes as attribute or constant input"),
  };
  auto find = [&](const char* name) -> OpDef& {
    for (auto& d : v)
      if (d.name == name) return d;
    throw std::logic_error(name);
  };
  find("HardSwish").since = 14;
  find("Relu").fusable = Fusable::relu;
  find("Clip").fusable = Fusable::clip;
  for (const char* f : {"Add", "Sub", "Mul", "Div", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Cast",
                        "Flatten", "Transpose"})
    find(f).folds_constants = true;
  std::sort(v.begin(), v.end(), [](const OpDef& a, const OpDef& b) { return a.name < b.name; });
  return v;
}

}  // namespace

const std::vector<OpDef>& op_registry() {
  static const std::vector<OpDef> r = make_registry();
  return r;
}

const OpDef* find_op(const std::string& name) {
  const auto& r = op_registry();
  auto it = std::lower_bound(r.begin(), r.end(), name, [](const OpDef& d, const std::string& n) { return d.name < n; });
  return it != r.end() && it->name == name ? &*it : nullptr;
}

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& d : op_registry()) v.push_back(d.name);
    return v;
  }();
  return names;
}

bool output_nonneg(const Node& n, const std::function<bool(size_t)>& input_nonneg) {
  if (n.layer >= 0) return false;
  const OpDef* d = find_op(n.op);
  if (!d) return false;
  auto present = [&](size_t i) { return i < n.inputs.size() && !n.inputs[i].empty(); };
  switch (d->nonneg) {
    case NonNeg::never: return false;
    case NonNeg::always: return true;
    case NonNeg::clip_min: return n.get_float("min", -1.f) >= 0.f;
    case NonNeg::like_input: return input_nonneg(0);
    case NonNeg::pad_value: return input_nonneg(0) && n.get_float("value", 0.f) >= 0.f;
    case NonNeg::all_inputs:
      for (size_t i = 0; i < n.inputs.size(); ++i)
        if (present(i) && !input_nonneg(i)) return false;
      return true;
    case NonNeg::any_input:
      for (size_t i = 0; i < n.inputs.size(); ++i)
        if (present(i) && input_nonneg(i)) return true;
      return false;
  }
  return false;
}

std::string op_table_markdown() {
  auto stage = [](OpStage s) {
    switch (s) {
      case OpStage::folded: return "folded at import";
      case OpStage::layer: return "quantizable layer";
      case OpStage::runs: return "fp32 kernel";
    }
    return "";
  };
  auto nonneg = [](NonNeg n) {
    switch (n) {
      case NonNeg::never: return "";
      case NonNeg::always: return "always";
      case NonNeg::clip_min: return "if min >= 0";
      case NonNeg::like_input: return "if its input is";
      case NonNeg::pad_value: return "if its input and the pad value are";
      case NonNeg::all_inputs: return "if all inputs are";
      case NonNeg::any_input: return "if any input is";
    }
    return "";
  };
  std::string s =
      "| op | opsets | runs as | output >= 0 | fused into the layer before | notes |\n"
      "|---|---|---|---|---|---|\n";
  for (const auto& d : op_registry())
    s += fmt::format("| {} | {}–{} | {}{} | {} | {} | {} |\n", d.name, d.since, d.until, stage(d.stage),
                     d.folds_constants && d.stage != OpStage::folded ? " (folded when its inputs are constants)" : "",
                     nonneg(d.nonneg), d.fusable == Fusable::no ? "" : "yes", d.notes);
  return s;
}

}  // namespace haq::model
