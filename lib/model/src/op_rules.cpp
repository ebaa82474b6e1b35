// Helpers shared by the op definitions (op_rules.h).

#include "op_rules.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

namespace haq::model::detail {

double NodeCtx::scalar_of(size_t i, const char* what) const {
  const Tensor& t = need_constant(i, what);
  if (t.numel() != 1) bad(fmt::format("input {} ({}) must have one element, it has {}", i, what, t.numel()));
  return tensor_get(t, 0);
}

std::vector<int64_t> NodeCtx::ints_of(const Tensor& t) const {
  if (!t.is_float()) return t.i64;  // exact: a double would round values above 2^53
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double d = tensor_get(t, i);
    if (!(d >= -9.2e18 && d <= 9.2e18)) bad(fmt::format("value {} is not a valid integer", d));
    v[i] = static_cast<int64_t>(d);
  }
  return v;
}

float NodeCtx::finite_float(const std::string& k, float fallback) {
  const float v = n.get_float(k, fallback);
  if (!std::isfinite(v)) bad(fmt::format("attribute '{}' is {}; it must be finite", k, non_finite_name(v)));
  set_float(k, v);
  return v;
}

const OpEntry* find_entry(const std::string& name) {
  const auto& r = op_entries();
  auto it = std::lower_bound(r.begin(), r.end(), name,
                             [](const OpEntry& e, const std::string& n) { return e.def.name < n; });
  return it != r.end() && it->def.name == name ? &*it : nullptr;
}

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

std::vector<int64_t> normal_axes(const NodeCtx& c, std::vector<int64_t> axes, int64_t r) {
  for (auto& a : axes) a = c.axis(a, r, "axis");
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) c.bad("repeated axis");
  return axes;
}

Shape window_op(NodeCtx& c, const Shape& x, const Shape& kernel, bool ceil_mode, bool has_dilations,
                bool pads_below_kernel) {
  const size_t sp = x.size() - 2;
  if (kernel.size() != sp)
    c.bad(fmt::format("kernel_shape {} does not match the {} spatial dims of input {}", dims_str(kernel), sp,
                      dims_str(x)));
  auto strides = c.n.get_ints("strides", Shape(sp, 1));
  auto dil = has_dilations ? c.n.get_ints("dilations", Shape(sp, 1)) : Shape(sp, 1);
  auto pads = c.n.get_ints("pads", Shape(2 * sp, 0));
  if (strides.size() != sp || dil.size() != sp || pads.size() != 2 * sp)
    c.bad(fmt::format("strides/dilations/pads have the wrong length for {} spatial dims", sp));
  constexpr int64_t kBig = int64_t{1} << 31;  // no window or pad of 2^31 is real; keeps the sums below exact
  for (size_t k = 0; k < sp; ++k)
    if (strides[k] < 1 || dil[k] < 1 || kernel[k] < 1 || strides[k] > kBig || dil[k] > kBig || kernel[k] > kBig)
      c.bad("strides, dilations and kernel must be positive and below 2^31");
  for (auto p : pads)
    if (p < 0 || p > kBig) c.bad("pads must be non-negative and below 2^31");
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
    // A window that lies wholly in the padding has no input element: ONNX
    // requires pads below the kernel for pooling.
    if (pads_below_kernel && (pads[k] >= ek || pads[k + sp] >= ek))
      c.bad(fmt::format("pads {} reach the kernel's extent {} in spatial dim {}; pooling needs pads smaller "
                        "than the window",
                        dims_str(pads), ek, k));
  }
  c.set_ints("kernel_shape", kernel);
  c.set_ints("strides", strides);
  if (has_dilations) c.set_ints("dilations", dil);
  c.set_ints("pads", pads);
  c.set_string("auto_pad", "NOTSET");
  return out;
}

std::vector<int64_t> strides_of(const std::vector<int64_t>& dims) {
  std::vector<int64_t> st(dims.size(), 1);
  for (int k = static_cast<int>(dims.size()) - 2; k >= 0; --k) st[k] = st[k + 1] * dims[k + 1];
  return st;
}

namespace {

// Integer operands are shape arithmetic (Shape, Gather, Mul, Concat into a
// Reshape): folded exactly in int64, and an overflow is an error naming the
// node, never a wrapped (negative) extent. Nothing for ops without an
// integer form here.
std::optional<int64_t> fold_integers(NodeCtx& c, int64_t a, int64_t b, int64_t element) {
  const std::string& op = c.n.op;
  int64_t r = 0;
  bool overflow = false;
  if (op == "Add" || op == "Sum") overflow = __builtin_add_overflow(a, b, &r);
  else if (op == "Sub") overflow = __builtin_sub_overflow(a, b, &r);
  else if (op == "Mul") overflow = __builtin_mul_overflow(a, b, &r);
  else if (op == "Div") {
    if (b == 0) c.bad(fmt::format("integer division by zero in a constant (element {})", element));
    overflow = a == std::numeric_limits<int64_t>::min() && b == -1;
    if (!overflow) r = a / b;
  } else if (op == "Max") r = std::max(a, b);
  else if (op == "Min") r = std::min(a, b);
  else if (op == "Equal") r = a == b;
  else if (op == "Greater") r = a > b;
  else if (op == "Less") r = a < b;
  else return std::nullopt;
  if (overflow)
    c.bad(fmt::format("{} of the integer constants {} and {} overflows 64 bits (element {})", op, a, b, element));
  return r;
}

}  // namespace

void fold_binary(NodeCtx& c, Tensor& out, BinaryFn f) {
  const Tensor& x = *c.constant(0);
  const Tensor& y = *c.constant(1);
  if (x.is_float() != y.is_float()) c.bad("arithmetic on a float and an integer tensor");
  const Shape& out_shape = out.dims;
  const size_t r = out_shape.size();
  auto aligned_strides = [&](const Tensor& t) {
    Shape st(r, 0);
    const auto own = strides_of(t.dims);
    const size_t off = r - t.dims.size();
    for (size_t k = 0; k < t.dims.size(); ++k) st[k + off] = t.dims[k] == 1 ? 0 : own[k];
    return st;
  };
  const Shape sx = aligned_strides(x), sy = aligned_strides(y);
  const bool integers = !x.is_float();
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t ix = 0, iy = 0;
    for (size_t k = 0; k < r; ++k) ix += idx[k] * sx[k], iy += idx[k] * sy[k];
    if (integers) {
      const int64_t a = x.i64[ix], b = y.i64[iy];
      if (auto exact = fold_integers(c, a, b, o)) {
        tensor_set_int(out, o, *exact);
      } else {
        // An op without an exact integer form goes through double, which
        // holds integers exactly only up to 2^53.
        constexpr int64_t kExact = int64_t{1} << 53;
        for (int64_t v : {a, b})
          if (v > kExact || v < -kExact)
            c.bad(fmt::format("the integer constant {} (element {}) is beyond 2^53, where {} of integers is "
                              "not exact",
                              v, o, c.n.op));
        tensor_set(out, o, f(c, static_cast<double>(a), static_cast<double>(b)));
      }
    } else {
      tensor_set(out, o, f(c, tensor_get(x, ix), tensor_get(y, iy)));
    }
    for (int k = static_cast<int>(r) - 1; k >= 0; --k) {
      if (++idx[k] < out_shape[k]) break;
      idx[k] = 0;
    }
  }
}

void fold_copy(NodeCtx& c, Tensor& out) {
  const Tensor& x = *c.constant(0);
  for (int64_t i = 0; i < x.numel(); ++i) copy_element(out, i, x, i);
}

const Tensor& tensor_attribute(const NodeCtx& c, const char* name) {
  const Attribute& a = c.n.attrs.at(name);
  if (a.kind != Attribute::Kind::tensor) c.bad(fmt::format("attribute '{}' must be a tensor", name));
  return a.t;
}

std::string non_finite_name(float v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

int64_t first_non_finite(const std::vector<float>& v) {
  for (size_t i = 0; i < v.size(); ++i)
    if (!std::isfinite(v[i])) return static_cast<int64_t>(i);
  return -1;
}

void check_finite_constants(NodeCtx& c) {
  for (size_t i = 0; i < c.n.inputs.size(); ++i) {
    const Tensor* t = c.constant(i);
    if (!t || !t->is_float()) continue;
    const int64_t k = first_non_finite(t->f32);
    if (k >= 0)
      c.bad(fmt::format("initializer '{}' (input {}) holds {} at element {}; weights, biases and operands must "
                        "be finite",
                        c.n.inputs[i], i, non_finite_name(t->f32[static_cast<size_t>(k)]), k));
  }
}

}  // namespace haq::model::detail
