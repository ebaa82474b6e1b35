#pragma once
// The importer's side of the op registry (not a public header): what each
// op's definition in op_defs.cpp may hold besides its public OpDef, and the
// helpers those definitions share. fold.cpp's process_nodes() runs, for each
// node in order:
//   normalise -> resolve -> dtype -> shape -> fold (all inputs constant)
//   -> check (kept nodes)
// where every step is the op's own rule, or the default named below.

#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "haq/model/ops.h"
#include "import_internal.h"

namespace haq::model::detail {

using Shape = std::vector<int64_t>;

/// Per-node helper: messages, input shapes and constants, attribute writes.
struct NodeCtx {
  ImportState& s;
  Node& n;
  int64_t opset = 0;

  [[noreturn]] void fail(ErrorKind kind, const std::string& what) const { s.fail_at(kind, where(n), what); }
  [[noreturn]] void bad(const std::string& what) const { fail(ErrorKind::model, what); }
  [[noreturn]] void unsupported(const std::string& what) const { fail(ErrorKind::unsupported, what); }

  bool has_input(size_t i) const { return i < n.inputs.size() && !n.inputs[i].empty(); }
  const Shape& shape(size_t i) const {
    if (!has_input(i)) bad(fmt::format("input {} is missing", i));
    return s.g.shapes.at(n.inputs[i]);
  }
  int64_t rank(size_t i) const { return static_cast<int64_t>(shape(i).size()); }
  DType dtype(size_t i) const { return s.g.dtypes.at(n.inputs[i]); }
  const Tensor* constant(size_t i) const {
    if (!has_input(i)) return nullptr;
    auto it = s.g.constants.find(n.inputs[i]);
    return it == s.g.constants.end() ? nullptr : &it->second;
  }
  const Tensor& need_constant(size_t i, const char* what) const {
    const Tensor* t = constant(i);
    if (!t) unsupported(fmt::format("input {} ({}) must be a constant", i, what));
    return *t;
  }
  /// The one value of a constant input that must hold a single element.
  double scalar_of(size_t i, const char* what) const;
  std::vector<int64_t> ints_of(const Tensor& t) const;
  int64_t axis(int64_t a, int64_t r, const char* what = "axis") const {
    if (a < -r || a >= r) bad(fmt::format("{} {} is out of range for rank {}", what, a, r));
    return a < 0 ? a + r : a;
  }
  /// A 0/1 attribute (keepdims, transA, ...): ONNX's shape inference treats
  /// any other value as 0 where runtimes treat it as 1, so it is refused.
  int64_t flag(const std::string& k, int64_t fallback) const {
    const int64_t v = n.get_int(k, fallback);
    if (v != 0 && v != 1) bad(fmt::format("attribute '{}' must be 0 or 1, got {}", k, v));
    return v;
  }
  /// A float attribute with its default, written out; refused unless finite.
  float finite_float(const std::string& k, float fallback);
  void set_int(const std::string& k, int64_t v) {
    n.attrs[k].kind = Attribute::Kind::i;
    n.attrs[k].i = v;
  }
  void set_float(const std::string& k, float v) {
    n.attrs[k].kind = Attribute::Kind::f;
    n.attrs[k].f = v;
  }
  void set_ints(const std::string& k, std::vector<int64_t> v) {
    n.attrs[k].kind = Attribute::Kind::ints;
    n.attrs[k].ints = std::move(v);
  }
  void set_string(const std::string& k, std::string v) {
    n.attrs[k].kind = Attribute::Kind::s;
    n.attrs[k].s = std::move(v);
  }
  /// Drops inputs from position `keep` on (they became attributes).
  void truncate_inputs(size_t keep) {
    if (n.inputs.size() > keep) n.inputs.resize(keep);
  }
};

/// What the resolve rule makes of a node.
struct Resolution {
  enum class Kind { keep, alias, constant } kind = Kind::keep;
  std::string value;  ///< alias: the value the output is replaced by
  Tensor tensor;      ///< constant: the output's value
  static Resolution keep() { return {}; }
  static Resolution alias_of(std::string v) { return {Kind::alias, std::move(v), {}}; }
  static Resolution constant_of(Tensor t) { return {Kind::constant, {}, std::move(t)}; }
};

/// The importer's rules of one op. Null means the default.
struct OpRules {
  /// Opset normalisation (graph.h): inputs that replaced attributes become
  /// attributes, defaults are written out, attributes are validated.
  /// Default: nothing to do.
  std::function<void(NodeCtx&)> normalise;
  /// Removal at import (Identity, Dropout, Constant, Shape, ...). Default: keep.
  std::function<Resolution(NodeCtx&)> resolve;
  /// The output's element type. Default: input 0's.
  std::function<DType(const NodeCtx&)> dtype;
  /// The output's static shape. Required unless resolve always removes the node.
  std::function<Shape(NodeCtx&)> shape;
  /// Evaluates the node when all its inputs are constants (into `out`, made
  /// with the output's dtype and shape). Null: the op never folds.
  std::function<void(NodeCtx&, Tensor& out)> fold;
  /// Checks on a node that stays in the graph (constant operands that would
  /// make NaN or inf). Default: none.
  std::function<void(NodeCtx&)> check;
  int min_inputs = 1;  ///< inputs that must be present (input 0 first)
  /// A node of several outputs becomes one node per output before the rules
  /// run (Split): each keeps the inputs and attributes, has one output and
  /// the attributes output_index and output_count.
  bool per_output = false;
};

/// One op's whole definition: the public part (ops.h) and the importer's.
struct OpEntry {
  OpDef def;
  OpRules rules;
};

/// Every op's definition, sorted by name (op_defs.cpp).
const std::vector<OpEntry>& op_entries();
/// The op's entry, or null if haq does not support it.
const OpEntry* find_entry(const std::string& name);

// Shared by the definitions (op_rules.cpp).

/// The numpy broadcast of two shapes; Error naming the node if they do not.
Shape broadcast(const NodeCtx& c, const Shape& a, const Shape& b);
/// Sorted, non-negative, unique axes.
std::vector<int64_t> normal_axes(const NodeCtx& c, std::vector<int64_t> axes, int64_t r);
/// Resolves pads of a sliding window op (Conv, pools) into explicit pads and
/// returns the output spatial dims. Writes kernel_shape, strides, dilations,
/// pads and auto_pad=NOTSET as attributes. `pads_below_kernel`: every pad
/// must be smaller than the window's extent (pooling, as ONNX requires).
Shape window_op(NodeCtx& c, const Shape& x, const Shape& kernel, bool ceil_mode, bool has_dilations,
                bool pads_below_kernel);
/// Row-major strides of `dims`.
std::vector<int64_t> strides_of(const std::vector<int64_t>& dims);
/// out[i] = f(x[bx(i)], y[by(i)]) over the broadcast of the two constants.
using BinaryFn = double (*)(NodeCtx&, double, double);
void fold_binary(NodeCtx& c, Tensor& out, BinaryFn f);
/// out = in, element by element (reshapes, casts).
void fold_copy(NodeCtx& c, Tensor& out);
/// A tensor attribute ('value' of Constant, ConstantOfShape).
const Tensor& tensor_attribute(const NodeCtx& c, const char* name);
/// "nan", "inf" or "-inf".
std::string non_finite_name(float v);
/// Index of the first non-finite element, or -1.
int64_t first_non_finite(const std::vector<float>& v);
/// Every float constant input is finite (weights, biases, operands).
void check_finite_constants(NodeCtx& c);

}  // namespace haq::model::detail
