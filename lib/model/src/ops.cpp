// The op registry (ops.h): the public view of the definitions in
// op_defs.cpp, where each op is defined once (its facts and its import rules).
// Its kernel is registered by the same name in the engine (lib/engine/src/
// engine.cpp, kernel_registry()); tests/unit/engine/test_ops.cpp checks that
// the two agree.

#include "haq/model/ops.h"

#include "op_rules.h"

#include <algorithm>

#include <fmt/format.h>

namespace haq::model {

const std::vector<OpDef>& op_registry() {
  static const std::vector<OpDef> r = [] {
    std::vector<OpDef> v;
    for (const auto& e : detail::op_entries()) v.push_back(e.def);
    return v;
  }();
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
