// Second stage of the import: walk the sorted nodes once. For each node:
//  1. opset normalisation: inputs that replaced attributes in newer opsets
//     (Clip min/max, Squeeze/Unsqueeze/ReduceMean axes, Pad pads/value) become
//     attributes again, and defaults are written out, so the engine sees one
//     form for opsets 7..18 (documented in graph.h);
//  2. constant folding when every input is a constant;
//  3. otherwise the static shape and dtype of every output.

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include <fmt/format.h>

#include "import_internal.h"

namespace haq::model::detail {

double tensor_get(const Tensor& t, int64_t i) {
  return t.dtype == DType::f32 ? static_cast<double>(t.f32[i]) : static_cast<double>(t.i64[i]);
}

Tensor make_tensor(DType dtype, std::vector<int64_t> dims) {
  Tensor t;
  t.dtype = dtype;
  t.dims = std::move(dims);
  if (dtype == DType::f32) t.f32.assign(static_cast<size_t>(t.numel()), 0.f);
  else t.i64.assign(static_cast<size_t>(t.numel()), 0);
  return t;
}

void tensor_set(Tensor& t, int64_t i, double v) {
  switch (t.dtype) {
    case DType::f32: t.f32[i] = static_cast<float>(v); break;
    case DType::boolean: t.i64[i] = v != 0; break;
    case DType::u8: t.i64[i] = static_cast<uint8_t>(static_cast<int64_t>(v)); break;
    case DType::i8: t.i64[i] = static_cast<int8_t>(static_cast<int64_t>(v)); break;
    case DType::i32: t.i64[i] = static_cast<int32_t>(static_cast<int64_t>(v)); break;
    case DType::i64: t.i64[i] = static_cast<int64_t>(v); break;
  }
}

namespace {

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (int k = static_cast<int>(dims.size()) - 2; k >= 0; --k) st[k] = st[k + 1] * dims[k + 1];
  return st;
}

}  // namespace

Tensor transpose_tensor(const Tensor& t, const std::vector<int64_t>& perm) {
  const size_t r = t.dims.size();
  std::vector<int64_t> out_dims(r);
  for (size_t k = 0; k < r; ++k) out_dims[k] = t.dims[perm[k]];
  Tensor out = make_tensor(t.dtype, out_dims);
  const auto in_st = strides_of(t.dims);
  std::vector<int64_t> idx(r, 0);
  const int64_t n = out.numel();
  for (int64_t o = 0; o < n; ++o) {
    int64_t src = 0;
    for (size_t k = 0; k < r; ++k) src += idx[k] * in_st[perm[k]];
    if (t.dtype == DType::f32) out.f32[o] = t.f32[src];
    else out.i64[o] = t.i64[src];
    for (int k = static_cast<int>(r) - 1; k >= 0; --k) {
      if (++idx[k] < out_dims[k]) break;
      idx[k] = 0;
    }
  }
  return out;
}

namespace {

using Shape = std::vector<int64_t>;

/// Per-node helper: messages, input shapes and constants.
struct NodeCtx {
  ImportState& s;
  Node& n;

  [[noreturn]] void fail(ErrorKind kind, const std::string& what) const { s.fail_at(kind, where(n), what); }
  [[noreturn]] void bad(const std::string& what) const { fail(ErrorKind::model, what); }

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
    if (!t) fail(ErrorKind::unsupported, fmt::format("input {} ({}) must be a constant", i, what));
    return *t;
  }
  /// The one value of a constant input that must hold a single element.
  double scalar_of(size_t i, const char* what) const {
    const Tensor& t = need_constant(i, what);
    if (t.numel() != 1) bad(fmt::format("input {} ({}) must have one element, it has {}", i, what, t.numel()));
    return tensor_get(t, 0);
  }
  std::vector<int64_t> ints_of(const Tensor& t) const {
    std::vector<int64_t> v(static_cast<size_t>(t.numel()));
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<int64_t>(tensor_get(t, i));
    return v;
  }
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

Shape broadcast(const NodeCtx& c, const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t k = 0; k < r; ++k) {
    int64_t da = k < r - a.size() ? 1 : a[k - (r - a.size())];
    int64_t db = k < r - b.size() ? 1 : b[k - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      c.bad(fmt::format("shapes {} and {} do not broadcast", dims_str(a), dims_str(b)));
    out[k] = da == 1 ? db : da;
  }
  return out;
}

/// Sorted, non-negative, unique axes.
std::vector<int64_t> normal_axes(const NodeCtx& c, std::vector<int64_t> axes, int64_t r) {
  for (auto& a : axes) a = c.axis(a, r, "axis");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) c.bad("repeated axis");
  return axes;
}

/// Resolves pads of a sliding window op (Conv, pools) into explicit pads and
/// returns the output spatial dims. Writes kernel_shape, strides, dilations,
/// pads and auto_pad=NOTSET as attributes.
Shape window_op(NodeCtx& c, const Shape& x, const Shape& kernel, bool ceil_mode, bool has_dilations) {
  const size_t sp = x.size() - 2;
  if (kernel.size() != sp)
    c.bad(fmt::format("kernel_shape {} does not match the {} spatial dims of input {}", dims_str(kernel), sp,
                      dims_str(x)));
  auto strides = c.n.get_ints("strides", Shape(sp, 1));
  auto dil = has_dilations ? c.n.get_ints("dilations", Shape(sp, 1)) : Shape(sp, 1);
  auto pads = c.n.get_ints("pads", Shape(2 * sp, 0));
  if (strides.size() != sp || dil.size() != sp || pads.size() != 2 * sp)
    c.bad(fmt::format("strides/dilations/pads have the wrong length for {} spatial dims", sp));
  for (size_t k = 0; k < sp; ++k)
    if (strides[k] < 1 || dil[k] < 1 || kernel[k] < 1) c.bad("strides, dilations and kernel must be positive");
  for (auto p : pads)
    if (p < 0) c.bad("pads must be non-negative");
  const std::string auto_pad = c.n.get_string("auto_pad", "NOTSET");
  Shape out(sp);
  for (size_t k = 0; k < sp; ++k) {
    const int64_t in = x[2 + k], ek = dil[k] * (kernel[k] - 1) + 1;
    if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      out[k] = (in + strides[k] - 1) / strides[k];
      const int64_t total = std::max<int64_t>(0, (out[k] - 1) * strides[k] + ek - in);
      const int64_t small = total / 2, big = total - small;
      pads[k] = auto_pad == "SAME_UPPER" ? small : big;
      pads[k + sp] = auto_pad == "SAME_UPPER" ? big : small;
    } else if (auto_pad == "VALID" || auto_pad == "NOTSET" || auto_pad.empty()) {
      if (auto_pad == "VALID") pads[k] = pads[k + sp] = 0;
      const int64_t span = in + pads[k] + pads[k + sp] - ek;
      if (span < 0)
        c.bad(fmt::format("the window (extent {}) is larger than the padded input ({}) in spatial dim {}", ek,
                          in + pads[k] + pads[k + sp], k));
      out[k] = (ceil_mode ? (span + strides[k] - 1) / strides[k] : span / strides[k]) + 1;
    } else {
      c.bad(fmt::format("auto_pad '{}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", auto_pad));
    }
  }
  c.set_ints("kernel_shape", kernel);
  c.set_ints("strides", strides);
  if (has_dilations) c.set_ints("dilations", dil);
  c.set_ints("pads", pads);
  c.set_string("auto_pad", "NOTSET");
  return out;
}

/// Opset normalisation (see graph.h): constant inputs that replaced
/// attributes become attributes; defaults are written out.
void normalise(NodeCtx& c, int64_t opset) {
  Node& n = c.n;
  const std::string& op = n.op;
  if (op == "Clip") {
    float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
    if (opset < 11) {
      lo = n.get_float("min", lo);
      hi = n.get_float("max", hi);
    } else {
      if (c.has_input(1)) lo = static_cast<float>(c.scalar_of(1, "min"));
      if (c.has_input(2)) hi = static_cast<float>(c.scalar_of(2, "max"));
      c.truncate_inputs(1);
    }
    c.set_float("min", lo);
    c.set_float("max", hi);
  } else if (op == "Squeeze" || op == "Unsqueeze") {
    std::vector<int64_t> axes;
    bool given = false;
    if (opset >= 13) {
      if (c.has_input(1)) {
        axes = c.ints_of(c.need_constant(1, "axes"));
        given = true;
      }
      c.truncate_inputs(1);
    } else if (n.has("axes")) {
      axes = n.get_ints("axes");
      given = true;
    }
    const int64_t r = c.rank(0);
    if (op == "Squeeze") {
      if (!given)
        for (int64_t k = 0; k < r; ++k)
          if (c.shape(0)[k] == 1) axes.push_back(k);
      axes = normal_axes(c, axes, r);
      for (auto a : axes)
        if (c.shape(0)[a] != 1) c.bad(fmt::format("cannot squeeze dim {} of size {}", a, c.shape(0)[a]));
    } else {
      if (!given) c.bad("Unsqueeze needs axes");
      axes = normal_axes(c, axes, r + static_cast<int64_t>(axes.size()));
    }
    c.set_ints("axes", axes);
  } else if (op == "ReduceMean") {
    std::vector<int64_t> axes;
    if (opset >= 18) {
      if (c.has_input(1)) axes = c.ints_of(c.need_constant(1, "axes"));
      c.truncate_inputs(1);
    } else {
      axes = n.get_ints("axes");
    }
    const int64_t r = c.rank(0);
    if (axes.empty() && c.flag("noop_with_empty_axes", 0) == 0)
      for (int64_t k = 0; k < r; ++k) axes.push_back(k);
    n.attrs.erase("noop_with_empty_axes");
    c.set_ints("axes", normal_axes(c, axes, r));
    c.set_int("keepdims", c.flag("keepdims", 1));
  } else if (op == "Pad") {
    const int64_t r = c.rank(0);
    std::vector<int64_t> pads;
    float value = 0.f;
    if (opset >= 11) {
      pads = c.ints_of(c.need_constant(1, "pads"));
      if (c.has_input(2)) value = static_cast<float>(c.scalar_of(2, "constant_value"));
      if (c.has_input(3)) {  // opset 18: pads given for some axes only
        auto axes = c.ints_of(c.need_constant(3, "axes"));
        if (pads.size() != 2 * axes.size()) c.bad("pads must have two entries per axis");
        std::vector<int64_t> full(2 * r, 0);
        for (size_t k = 0; k < axes.size(); ++k) {
          int64_t a = c.axis(axes[k], r);
          full[a] = pads[k];
          full[a + r] = pads[k + axes.size()];
        }
        pads = full;
      }
      c.truncate_inputs(1);
    } else {
      pads = n.get_ints("pads");
      value = n.get_float("value", 0.f);
    }
    if (static_cast<int64_t>(pads.size()) != 2 * r)
      c.bad(fmt::format("pads has {} entries, expected {} for rank {}", pads.size(), 2 * r, r));
    c.set_ints("pads", pads);
    c.set_float("value", value);
    const std::string mode = n.get_string("mode", "constant");
    if (mode != "constant" && mode != "reflect" && mode != "edge")
      c.fail(ErrorKind::unsupported, fmt::format("Pad mode '{}' is not supported", mode));
    c.set_string("mode", mode);
  } else if (op == "Softmax") {
    const int64_t r = c.rank(0);
    const int64_t a = c.axis(n.get_int("axis", opset < 13 ? 1 : -1), r);
    if (opset < 13)  // before 13, Softmax flattened dims [axis:] to one; same when the rest are 1
      for (int64_t k = a + 1; k < r; ++k)
        if (c.shape(0)[k] != 1)
          c.fail(ErrorKind::unsupported,
                 fmt::format("Softmax (opset {}) over axis {} of {} flattens the trailing dims; only the "
                             "per-axis form is supported",
                             opset, a, dims_str(c.shape(0))));
    c.set_int("axis", a);
  } else if (op == "LeakyRelu") {
    c.set_float("alpha", n.get_float("alpha", 0.01f));
  } else if (op == "HardSigmoid") {
    c.set_float("alpha", n.get_float("alpha", 0.2f));
    c.set_float("beta", n.get_float("beta", 0.5f));
  } else if (op == "LRN") {
    if (!n.has("size")) c.bad("LRN needs the attribute 'size'");
    c.set_float("alpha", n.get_float("alpha", 1e-4f));
    c.set_float("beta", n.get_float("beta", 0.75f));
    c.set_float("bias", n.get_float("bias", 1.f));
  } else if (op == "BatchNormalization") {
    if (n.get_int("spatial", 1) != 1)
      c.fail(ErrorKind::unsupported, "BatchNormalization with spatial=0 is not supported");
    if (n.get_int("training_mode", 0) != 0)
      c.fail(ErrorKind::unsupported, "BatchNormalization in training mode is not supported");
    c.set_float("epsilon", n.get_float("epsilon", 1e-5f));
  } else if (op == "Gather" || op == "Concat" || op == "Flatten") {
    const int64_t r = c.rank(0);
    const int64_t fallback = op == "Flatten" ? 1 : 0;
    if (op == "Concat" && !n.has("axis")) c.bad("Concat needs the attribute 'axis'");
    int64_t a = n.get_int("axis", fallback);
    a = op == "Flatten" ? c.axis(a, r + 1) : c.axis(a, r);
    c.set_int("axis", a);
  } else if (op == "Transpose") {
    const int64_t r = c.rank(0);
    std::vector<int64_t> perm = n.get_ints("perm");
    if (perm.empty())
      for (int64_t k = r - 1; k >= 0; --k) perm.push_back(k);
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t k = 0; k < static_cast<int64_t>(sorted.size()); ++k)
      if (sorted[k] != k || static_cast<int64_t>(sorted.size()) != r)
        c.bad(fmt::format("perm {} is not a permutation of {} axes", dims_str(perm), r));
    c.set_ints("perm", perm);
  } else if (op == "Gemm") {
    c.set_int("transA", c.flag("transA", 0));
    c.set_int("transB", c.flag("transB", 0));
    c.set_float("alpha", n.get_float("alpha", 1.f));
    c.set_float("beta", n.get_float("beta", 1.f));
  } else if (op == "Conv") {
    c.set_int("group", n.get_int("group", 1));
  } else if (op == "Reshape") {
    c.set_int("allowzero", c.flag("allowzero", 0));
  }
}

}  // namespace

std::vector<Shape> infer_output_shapes(const ImportState& s, const Node& node) {
  // NodeCtx wants mutable access for attributes; shape rules only read them.
  NodeCtx c{const_cast<ImportState&>(s), const_cast<Node&>(node)};
  const std::string& op = node.op;
  static const std::set<std::string> same_shape = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid",
                                                   "HardSwish", "Tanh", "Softmax", "LRN", "Identity",
                                                   "Dropout", "BatchNormalization", "Cast", "Exp",
                                                   "Sqrt", "Neg", "Abs"};
  if (same_shape.count(op)) return {c.shape(0)};
  if (op == "Max" || op == "Min") {
    if (node.inputs.size() != 2 || !c.has_input(1))
      c.fail(ErrorKind::unsupported, fmt::format("{} of {} inputs is not supported (only 2)", op, node.inputs.size()));
    return {broadcast(c, c.shape(0), c.shape(1))};
  }
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return {broadcast(c, c.shape(0), c.shape(1))};
  if (op == "Conv") {
    const Shape& x = c.shape(0);
    const Shape& w = c.shape(1);
    if (x.size() != 4)
      c.fail(ErrorKind::unsupported, fmt::format("only 2-D Conv (rank-4 input) is supported, input is {}", dims_str(x)));
    if (w.size() != 4) c.bad(fmt::format("weight {} is not rank 4", dims_str(w)));
    const int64_t group = node.get_int("group", 1);
    if (group < 1 || x[1] != w[1] * group || w[0] % group != 0)
      c.bad(fmt::format("input {} with weight {} and group {}: channels do not match", dims_str(x), dims_str(w), group));
    if (c.has_input(2) && c.shape(2) != Shape{w[0]})
      c.bad(fmt::format("bias {} does not match {} output channels", dims_str(c.shape(2)), w[0]));
    Shape kernel = node.get_ints("kernel_shape", {w[2], w[3]});
    if (kernel != Shape{w[2], w[3]})
      c.bad(fmt::format("kernel_shape {} does not match weight {}", dims_str(kernel), dims_str(w)));
    Shape sp = window_op(c, x, kernel, false, true);
    return {{x[0], w[0], sp[0], sp[1]}};
  }
  if (op == "MaxPool" || op == "AveragePool") {
    const Shape& x = c.shape(0);
    if (x.size() < 3) c.bad(fmt::format("input {} has no spatial dims", dims_str(x)));
    if (!node.has("kernel_shape")) c.bad("kernel_shape is required");
    Shape sp = window_op(c, x, node.get_ints("kernel_shape"), c.flag("ceil_mode", 0) != 0, op == "MaxPool");
    Shape out = {x[0], x[1]};
    out.insert(out.end(), sp.begin(), sp.end());
    return {out};
  }
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
    Shape out = c.shape(0);
    if (out.size() < 3) c.bad(fmt::format("input {} has no spatial dims", dims_str(out)));
    std::fill(out.begin() + 2, out.end(), 1);
    return {out};
  }
  if (op == "Gemm") {
    Shape a = c.shape(0), b = c.shape(1);
    if (a.size() != 2 || b.size() != 2) c.bad(fmt::format("inputs {} and {} must be 2-D", dims_str(a), dims_str(b)));
    if (node.get_int("transA", 0)) std::swap(a[0], a[1]);
    if (node.get_int("transB", 0)) std::swap(b[0], b[1]);
    if (a[1] != b[0]) c.bad(fmt::format("inner dims do not match: {} x {}", dims_str(a), dims_str(b)));
    Shape out = {a[0], b[1]};
    if (c.has_input(2) && broadcast(c, c.shape(2), out) != out)
      c.bad(fmt::format("C {} does not broadcast to {}", dims_str(c.shape(2)), dims_str(out)));
    return {out};
  }
  if (op == "MatMul") {
    Shape a = c.shape(0), b = c.shape(1);
    if (a.empty() || b.empty()) c.bad("MatMul inputs must have rank >= 1");
    const bool a1 = a.size() == 1, b1 = b.size() == 1;
    if (a1) a.insert(a.begin(), 1);
    if (b1) b.push_back(1);
    if (a.back() != b[b.size() - 2])
      c.bad(fmt::format("inner dims do not match: {} x {}", dims_str(c.shape(0)), dims_str(c.shape(1))));
    Shape batch = broadcast(c, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
    Shape out = batch;
    if (!a1) out.push_back(a[a.size() - 2]);
    if (!b1) out.push_back(b.back());
    return {out};
  }
  if (op == "Flatten") {
    const Shape& x = c.shape(0);
    const int64_t a = node.get_int("axis", 1);
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < static_cast<int64_t>(x.size()); ++k) (k < a ? outer : inner) *= x[k];
    return {{outer, inner}};
  }
  if (op == "Reshape") {
    const Shape& x = c.shape(0);
    const Tensor* st = c.constant(1);
    if (!st) c.fail(ErrorKind::unsupported, "the shape input must be a constant (after folding)");
    Shape out = c.ints_of(*st);
    const bool allowzero = node.get_int("allowzero", 0) != 0;
    int infer = -1;
    int64_t known = 1;
    for (size_t k = 0; k < out.size(); ++k) {
      if (out[k] == 0 && !allowzero) {
        if (k >= x.size()) c.bad(fmt::format("shape {} copies dim {} that input {} lacks", dims_str(out), k, dims_str(x)));
        out[k] = x[k];
      }
      if (out[k] == -1) {
        if (infer >= 0) c.bad(fmt::format("shape {} has more than one -1", dims_str(out)));
        infer = static_cast<int>(k);
      } else if (out[k] < 0) {
        c.bad(fmt::format("shape {} has a negative dim", dims_str(out)));
      } else {
        known *= out[k];
      }
    }
    int64_t total = 1;
    for (auto d : x) total *= d;
    if (infer >= 0) {
      if (known == 0 || total % known != 0)
        c.bad(fmt::format("cannot reshape {} into {}", dims_str(x), dims_str(c.ints_of(*st))));
      out[infer] = total / known;
    } else if (known != total) {
      c.bad(fmt::format("cannot reshape {} ({} elements) into {}", dims_str(x), total, dims_str(out)));
    }
    return {out};
  }
  if (op == "Transpose") {
    const Shape& x = c.shape(0);
    auto perm = node.get_ints("perm");
    Shape out(x.size());
    for (size_t k = 0; k < x.size(); ++k) out[k] = x[perm[k]];
    return {out};
  }
  if (op == "Concat") {
    Shape out = c.shape(0);
    const int64_t a = node.get_int("axis", 0);
    for (size_t i = 1; i < node.inputs.size(); ++i) {
      const Shape& y = c.shape(i);
      if (y.size() != out.size()) c.bad(fmt::format("input {} has rank {}, expected {}", i, y.size(), out.size()));
      for (size_t k = 0; k < y.size(); ++k)
        if (static_cast<int64_t>(k) != a && y[k] != out[k])
          c.bad(fmt::format("input {} has shape {}, incompatible with {} on axis {}", i, dims_str(y), dims_str(out), a));
      out[a] += y[a];
    }
    return {out};
  }
  if (op == "Squeeze") {
    const Shape& x = c.shape(0);
    auto axes = node.get_ints("axes");
    Shape out;
    for (int64_t k = 0; k < static_cast<int64_t>(x.size()); ++k)
      if (!std::binary_search(axes.begin(), axes.end(), k)) out.push_back(x[k]);
    return {out};
  }
  if (op == "Unsqueeze") {
    const Shape& x = c.shape(0);
    auto axes = node.get_ints("axes");
    Shape out;
    size_t j = 0;
    for (int64_t k = 0; k < static_cast<int64_t>(x.size() + axes.size()); ++k)
      out.push_back(std::binary_search(axes.begin(), axes.end(), k) ? 1 : x[j++]);
    return {out};
  }
  if (op == "Pad") {
    Shape out = c.shape(0);
    auto pads = node.get_ints("pads");
    const size_t r = out.size();
    for (size_t k = 0; k < r; ++k) {
      out[k] += pads[k] + pads[k + r];
      if (out[k] <= 0) c.bad(fmt::format("pads {} leave no elements in dim {}", dims_str(pads), k));
    }
    return {out};
  }
  if (op == "ReduceMean") {
    const Shape& x = c.shape(0);
    auto axes = node.get_ints("axes");
    const bool keep = node.get_int("keepdims", 1) != 0;
    Shape out;
    for (int64_t k = 0; k < static_cast<int64_t>(x.size()); ++k) {
      if (!std::binary_search(axes.begin(), axes.end(), k)) out.push_back(x[k]);
      else if (keep) out.push_back(1);
    }
    return {out};
  }
  if (op == "Gather") {
    const Shape& x = c.shape(0);
    const Shape& ind = c.shape(1);
    const int64_t a = node.get_int("axis", 0);
    Shape out(x.begin(), x.begin() + a);
    out.insert(out.end(), ind.begin(), ind.end());
    out.insert(out.end(), x.begin() + a + 1, x.end());
    return {out};
  }
  if (op == "Shape") {
    const int64_t r = c.rank(0);
    int64_t start = node.get_int("start", 0), end = node.get_int("end", r);
    start = std::clamp(start < 0 ? start + r : start, int64_t{0}, r);
    end = std::clamp(end < 0 ? end + r : end, int64_t{0}, r);
    return {{std::max<int64_t>(0, end - start)}};
  }
  c.fail(ErrorKind::internal, "no shape rule for this op");
}

namespace {

DType output_dtype(const NodeCtx& c) {
  const std::string& op = c.n.op;
  if (op == "Shape") return DType::i64;
  if (op == "Cast") {
    DType t;
    const int64_t to = c.n.get_int("to", 1);
    switch (to) {
      case 1: t = DType::f32; break;
      case 2: t = DType::u8; break;
      case 3: t = DType::i8; break;
      case 6: t = DType::i32; break;
      case 7: t = DType::i64; break;
      case 9: t = DType::boolean; break;
      default: c.fail(ErrorKind::unsupported, fmt::format("Cast to element type {} is not supported", to));
    }
    return t;
  }
  return c.dtype(0);
}

/// Evaluates a node whose inputs are all constants. Returns false when the op
/// is not one that haq folds.
bool fold(NodeCtx& c, const Shape& out_shape, DType out_dtype, Tensor* out) {
  const std::string& op = c.n.op;
  static const std::set<std::string> foldable = {"Add", "Sub",       "Mul",     "Div",  "Gather", "Unsqueeze",
                                                 "Squeeze", "Concat", "Reshape", "Cast", "Flatten", "Transpose"};
  if (!foldable.count(op)) return false;
  for (size_t i = 0; i < c.n.inputs.size(); ++i)
    if (c.has_input(i) && !c.constant(i)) return false;
  *out = make_tensor(out_dtype, out_shape);
  const Tensor& x = *c.constant(0);
  if (op == "Unsqueeze" || op == "Squeeze" || op == "Reshape" || op == "Flatten" || op == "Cast") {
    for (int64_t i = 0; i < x.numel(); ++i) tensor_set(*out, i, tensor_get(x, i));
  } else if (op == "Transpose") {
    *out = transpose_tensor(x, c.n.get_ints("perm"));
  } else if (op == "Concat") {
    const int64_t a = c.n.get_int("axis", 0);
    int64_t outer = 1;
    for (int64_t k = 0; k < a; ++k) outer *= out_shape[k];
    int64_t o = 0;
    for (int64_t blk = 0; blk < outer; ++blk)
      for (size_t i = 0; i < c.n.inputs.size(); ++i) {
        const Tensor& t = *c.constant(i);
        const int64_t chunk = outer == 0 ? 0 : t.numel() / outer;
        for (int64_t j = 0; j < chunk; ++j) tensor_set(*out, o++, tensor_get(t, blk * chunk + j));
      }
  } else if (op == "Gather") {
    const Tensor& ind = *c.constant(1);
    const int64_t a = c.n.get_int("axis", 0);
    int64_t outer = 1, inner = 1;
    for (int64_t k = 0; k < a; ++k) outer *= x.dims[k];
    for (size_t k = a + 1; k < x.dims.size(); ++k) inner *= x.dims[k];
    const int64_t dim = x.dims[a];
    int64_t o = 0;
    for (int64_t blk = 0; blk < outer; ++blk)
      for (int64_t i = 0; i < ind.numel(); ++i) {
        int64_t j = static_cast<int64_t>(tensor_get(ind, i));
        if (j < 0) j += dim;
        if (j < 0 || j >= dim) c.bad(fmt::format("index {} is out of range for dim {}", tensor_get(ind, i), dim));
        for (int64_t k = 0; k < inner; ++k) tensor_set(*out, o++, tensor_get(x, (blk * dim + j) * inner + k));
      }
  } else {  // binary arithmetic with broadcasting
    const Tensor& y = *c.constant(1);
    if (x.is_float() != y.is_float()) c.bad("arithmetic on a float and an integer tensor");
    const size_t r = out_shape.size();
    auto aligned_strides = [&](const Tensor& t) {
      Shape st(r, 0);
      const auto own = strides_of(t.dims);
      const size_t off = r - t.dims.size();
      for (size_t k = 0; k < t.dims.size(); ++k) st[k + off] = t.dims[k] == 1 ? 0 : own[k];
      return st;
    };
    const Shape sx = aligned_strides(x), sy = aligned_strides(y);
    std::vector<int64_t> idx(r, 0);
    for (int64_t o = 0; o < out->numel(); ++o) {
      int64_t ix = 0, iy = 0;
      for (size_t k = 0; k < r; ++k) ix += idx[k] * sx[k], iy += idx[k] * sy[k];
      const double a = tensor_get(x, ix), b = tensor_get(y, iy);
      double v = 0;
      if (op == "Add") v = a + b;
      else if (op == "Sub") v = a - b;
      else if (op == "Mul") v = a * b;
      else if (x.is_float()) v = a / b;
      else {
        if (b == 0) c.bad("integer division by zero in a constant");
        v = static_cast<double>(static_cast<int64_t>(a) / static_cast<int64_t>(b));
      }
      tensor_set(*out, o, v);
      for (int k = static_cast<int>(r) - 1; k >= 0; --k) {
        if (++idx[k] < out_shape[k]) break;
        idx[k] = 0;
      }
    }
  }
  return true;
}

// A tensor attribute ('value' of Constant, ConstantOfShape); a file that
// gives it as another kind (a string, say) is a model error, not an empty tensor.
const Tensor& tensor_attribute(NodeCtx& c, const char* name) {
  const Attribute& a = c.n.attrs.at(name);
  if (a.kind != Attribute::Kind::tensor)
    c.bad(fmt::format("attribute '{}' must be a tensor", name));
  return a.t;
}

Tensor constant_value(NodeCtx& c) {
  const Node& n = c.n;
  Tensor t;
  if (n.has("value")) return tensor_attribute(c, "value");
  if (n.has("value_float")) {
    t = make_tensor(DType::f32, {});
    t.f32[0] = n.get_float("value_float", 0.f);
  } else if (n.has("value_floats")) {
    const auto& v = n.attrs.at("value_floats").floats;
    t = make_tensor(DType::f32, {static_cast<int64_t>(v.size())});
    t.f32 = v;
  } else if (n.has("value_int")) {
    t = make_tensor(DType::i64, {});
    t.i64[0] = n.get_int("value_int", 0);
  } else if (n.has("value_ints")) {
    const auto& v = n.attrs.at("value_ints").ints;
    t = make_tensor(DType::i64, {static_cast<int64_t>(v.size())});
    t.i64 = v;
  } else {
    c.fail(ErrorKind::unsupported, "Constant needs value, value_float(s) or value_int(s) (sparse and string values are not supported)");
  }
  return t;
}

}  // namespace

void process_nodes(ImportState& s) {
  Graph& g = s.g;
  std::map<std::string, std::string> alias;  // removed value -> the value that replaces it
  std::map<std::string, int> uses;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs)
      if (!in.empty()) ++uses[in];
  for (const auto& o : g.outputs) ++uses[o.name];

  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (Node& node : g.nodes) {
    NodeCtx c{s, node};
    for (auto& in : node.inputs)
      if (!in.empty() && alias.count(in)) in = alias.at(in);
    // Only the first output of multi-output ops is supported.
    for (size_t k = 1; k < node.outputs.size(); ++k)
      if (!node.outputs[k].empty() && uses[node.outputs[k]] > 0)
        c.fail(ErrorKind::unsupported,
               fmt::format("output {} ('{}') is used; haq supports only the first output of {}", k, node.outputs[k],
                           node.op));
    if (node.outputs.empty() || node.outputs[0].empty()) c.bad("the node has no output");
    node.outputs.resize(1);
    const std::string& out = node.outputs[0];
    const int64_t min_inputs = node.op == "Constant" ? 0 : 1;
    int64_t present = 0;
    for (size_t i = 0; i < node.inputs.size(); ++i) present += c.has_input(i);
    if (present < min_inputs || (node.op != "Constant" && !c.has_input(0))) c.bad("input 0 is missing");

    auto define = [&](Tensor t) {
      g.shapes[out] = t.dims;
      g.dtypes[out] = t.dtype;
      g.constants[out] = std::move(t);
    };
    if (node.op == "Identity" || node.op == "Dropout") {
      alias[out] = node.inputs[0];
      continue;
    }
    if (node.op == "Constant") {
      define(constant_value(c));
      continue;
    }
    if (node.op == "Shape") {  // static shapes: always a constant
      Shape sh = infer_output_shapes(s, node)[0];
      const Shape& x = c.shape(0);
      const int64_t r = static_cast<int64_t>(x.size());
      int64_t start = node.get_int("start", 0);
      start = std::clamp(start < 0 ? start + r : start, int64_t{0}, r);
      Tensor t = make_tensor(DType::i64, sh);
      for (int64_t i = 0; i < sh[0]; ++i) t.i64[i] = x[start + i];
      define(std::move(t));
      continue;
    }
    if (node.op == "ConstantOfShape") {
      const Tensor& dims_t = c.need_constant(0, "shape");
      Shape dims = c.ints_of(dims_t);
      checked_numel(s, where(node), dims);
      Tensor value = make_tensor(DType::f32, {1});
      if (node.has("value")) value = tensor_attribute(c, "value");
      if (value.numel() != 1) c.bad("value must have one element");
      Tensor t = make_tensor(value.dtype, dims);
      for (int64_t i = 0; i < t.numel(); ++i) tensor_set(t, i, tensor_get(value, 0));
      define(std::move(t));
      continue;
    }
    normalise(c, g.opset);
    if (node.op == "ReduceMean" && node.get_ints("axes").empty()) {  // noop_with_empty_axes
      alias[out] = node.inputs[0];
      continue;
    }
    const DType dtype = output_dtype(c);
    if (node.op == "Cast" && !c.constant(0)) {
      if (dtype != c.dtype(0))
        c.fail(ErrorKind::unsupported, fmt::format("Cast from {} to {} on a non-constant value is not supported",
                                                   to_string(c.dtype(0)), to_string(dtype)));
      alias[out] = node.inputs[0];
      continue;
    }
    std::vector<Shape> shapes = infer_output_shapes(s, node);
    for (auto d : shapes[0])
      if (d <= 0) c.bad(fmt::format("output '{}' would have shape {}; dims must be positive", out, dims_str(shapes[0])));
    checked_numel(s, where(node), shapes[0]);
    auto onnx_shape = s.onnx_shapes.find(out);
    if (onnx_shape != s.onnx_shapes.end() && onnx_shape->second != shapes[0])
      c.fail(ErrorKind::internal, fmt::format("haq computes shape {} for '{}' but ONNX shape inference gives {}",
                                              dims_str(shapes[0]), out, dims_str(onnx_shape->second)));
    Tensor folded;
    if (fold(c, shapes[0], dtype, &folded)) {
      define(std::move(folded));
      continue;
    }
    g.shapes[out] = shapes[0];
    g.dtypes[out] = dtype;
    kept.push_back(std::move(node));
  }
  g.nodes = std::move(kept);

  // Graph outputs that were removed values (Identity/Dropout): rename the
  // producer's output when that is safe, else keep an explicit Identity.
  std::set<std::string> output_names;
  for (const auto& o : g.outputs) output_names.insert(o.name);
  for (const auto& o : g.outputs) {
    auto it = alias.find(o.name);
    if (it == alias.end()) continue;
    const std::string src = it->second;
    if (g.constants.count(src)) {
      g.constants[o.name] = g.constants.at(src);
      g.shapes[o.name] = g.shapes.at(src);
      g.dtypes[o.name] = g.dtypes.at(src);
      continue;
    }
    Node* producer = nullptr;
    for (auto& n : g.nodes)
      if (n.outputs[0] == src) producer = &n;
    if (producer && !output_names.count(src)) {
      producer->outputs[0] = o.name;
      for (auto& n : g.nodes)
        for (auto& in : n.inputs)
          if (in == src) in = o.name;
      g.shapes[o.name] = g.shapes.at(src);
      g.dtypes[o.name] = g.dtypes.at(src);
      g.shapes.erase(src);
      g.dtypes.erase(src);
    } else {
      Node id;
      id.name = fresh_name(s, o.name + "_identity");
      id.op = "Identity";
      id.inputs = {src};
      id.outputs = {o.name};
      g.shapes[o.name] = g.shapes.at(src);
      g.dtypes[o.name] = g.dtypes.at(src);
      g.nodes.push_back(std::move(id));
    }
  }
}

}  // namespace haq::model::detail
