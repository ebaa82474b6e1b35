#pragma once
/// \file
/// The op registry: one definition per ONNX op haq supports, with what every
/// part needs to know about it (lib/model/src/op_defs.cpp, which also holds
/// each op's import rules: normalisation, shape, folding, checks). The importer's supported list, `haq inspect
/// --ops`, `--help` and docs/ops.md come from here; the engine's kernels are
/// registered by the same names (lib/engine, checked complete by a test), and
/// its non-negativity and fusion rules are these.

#include <functional>
#include <string>
#include <vector>

#include "haq/model/graph.h"

namespace haq::model {

/// What becomes of an op at import.
enum class OpStage {
  folded,  ///< evaluated or removed at import (Constant, Shape, Identity, ...); never runs
  layer,   ///< a quantizable layer (Conv, Gemm, MatMul with a constant weight)
  runs,    ///< runs in the engine's fp32 kernels
};

/// When an op's output is known to be non-negative (then the layer reading it
/// gets an unsigned activation quantizer).
enum class NonNeg {
  never,        ///< no guarantee
  always,       ///< Relu, Sigmoid, Softmax, Abs, Exp, HardSigmoid, Sqrt
  clip_min,     ///< Clip whose min >= 0
  like_input,   ///< as its first input (pooling, reshapes, Gather, LRN, ReduceMean)
  pad_value,    ///< as its first input, and the pad value >= 0
  all_inputs,   ///< when every input is (Add, Mul, Div, Min, Concat)
  any_input,    ///< when some input is (Max)
};

/// An activation the layer producing its input can compute as a post-op.
enum class Fusable { no, relu, clip };

/// One supported op.
struct OpDef {
  std::string name;
  int since = 6, until = 18;  ///< default-domain opsets haq imports it at
  OpStage stage = OpStage::runs;
  NonNeg nonneg = NonNeg::never;
  Fusable fusable = Fusable::no;
  bool folds_constants = false;  ///< evaluated at import when every input is a constant
  bool chain_variadic = false;   ///< more than two inputs become a chain of two-input nodes
  std::string notes;             ///< what haq accepts or rejects (docs/ops.md)
};

/// Every supported op, sorted by name.
const std::vector<OpDef>& op_registry();
/// The op's definition, or null if haq does not support it.
const OpDef* find_op(const std::string& name);

/// Whether node `n`'s output is non-negative, given which of its inputs are
/// (`input_nonneg(i)` for input i; absent inputs count as non-negative).
/// Layer nodes (Node::layer >= 0) never are.
bool output_nonneg(const Node& n, const std::function<bool(size_t)>& input_nonneg);

/// docs/ops.md: the op table in Markdown (`haq inspect --ops`).
std::string op_table_markdown();

}  // namespace haq::model
