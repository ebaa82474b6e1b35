// Every op haq supports, one definition each: its public facts (OpDef,
// ops.h: opsets, stage, non-negativity, fusion, notes for docs/ops.md) and
// its import rules (OpRules, op_rules.h: normalisation, removal, dtype,
// shape, folding, checks). To add an op: one block here, in name order, and
// its kernel in the engine's kernel registry (lib/engine/src/engine.cpp,
// kernel_registry()); tests/unit/engine/test_ops.cpp checks that they agree.

#include <algorithm>
#include <cmath>
#include <limits>

#include "op_rules.h"

namespace haq::model::detail {

namespace {

using S = OpStage;
using N = NonNeg;
using Kind = Resolution::Kind;

// ---- rules shared by several ops -------------------------------------------

Shape same_shape(NodeCtx& c) { return c.shape(0); }

/// Opset < 7 binary ops: explicit `broadcast`/`axis` (now numpy
/// broadcasting) become numpy form, B reshaped when it is aligned at `axis`.
void binary_normalise(NodeCtx& c) {
  if (c.opset >= 7) return;
  Node& n = c.n;
  const Shape& a = c.shape(0);
  const Shape& b = c.shape(1);
  const int64_t ra = static_cast<int64_t>(a.size()), rb = static_cast<int64_t>(b.size());
  if (c.flag("broadcast", 0) == 0) {
    if (a != b)
      c.bad(fmt::format("shapes {} and {} differ and broadcast is 0 (opset < 7 needs equal shapes)", dims_str(a),
                        dims_str(b)));
  } else {
    if (rb > ra) c.bad(fmt::format("B {} has a higher rank than A {}", dims_str(b), dims_str(a)));
    int64_t axis = n.has("axis") ? n.get_int("axis", 0) : ra - rb;
    if (axis < 0) axis += ra;
    if (axis < 0 || axis + rb > ra)
      c.bad(fmt::format("axis {} does not place B {} inside A {}", n.get_int("axis", 0), dims_str(b), dims_str(a)));
    for (int64_t k = 0; k < rb; ++k)
      if (b[k] != 1 && b[k] != a[axis + k])
        c.bad(fmt::format("B {} does not broadcast to A {} at axis {}", dims_str(b), dims_str(a), axis));
    if (axis != ra - rb) {  // B is aligned at `axis`: numpy's form needs trailing 1s
      const Tensor* t = c.constant(1);
      if (!t)
        c.unsupported(fmt::format("opset < 7 broadcasting of a non-constant B {} at axis {} is not supported",
                                  dims_str(b), axis));
      Tensor r = *t;
      r.dims.insert(r.dims.end(), static_cast<size_t>(ra - axis - rb), 1);
      const std::string name = fresh_name(c.s, n.inputs[1] + ".bcast");
      c.s.g.shapes[name] = r.dims;
      c.s.g.dtypes[name] = r.dtype;
      c.s.g.constants[name] = std::move(r);
      n.inputs[1] = name;
    }
  }
  n.attrs.erase("broadcast");
  n.attrs.erase("axis");
}

/// Max and Min: two inputs (onnx_import.cpp makes chains of longer ones).
void variadic_normalise(NodeCtx& c) {
  for (size_t i = 0; i < c.n.inputs.size(); ++i)
    if (!c.has_input(i)) c.bad(fmt::format("input {} is missing", i));
  if (c.n.inputs.size() > 2)
    c.unsupported(fmt::format("{} of {} inputs is not supported (one or two inputs)", c.n.op, c.n.inputs.size()));
}

Resolution variadic_resolve(NodeCtx& c) {
  return c.n.inputs.size() == 1 ? Resolution::alias_of(c.n.inputs[0]) : Resolution::keep();
}

Shape broadcast_shape(NodeCtx& c) {
  Shape out = c.shape(0);
  for (size_t i = 1; i < c.n.inputs.size(); ++i) out = broadcast(c, out, c.shape(i));
  return out;
}

Shape pool_shape(NodeCtx& c) {
  const Shape& x = c.shape(0);
  if (x.size() < 3) c.bad(fmt::format("input {} has no spatial dims", dims_str(x)));
  if (!c.n.has("kernel_shape")) c.bad("kernel_shape is required");
  Shape sp = window_op(c, x, c.n.get_ints("kernel_shape"), c.flag("ceil_mode", 0) != 0, c.n.op == "MaxPool", true);
  Shape out = {x[0], x[1]};
  out.insert(out.end(), sp.begin(), sp.end());
  return out;
}

Shape global_pool_shape(NodeCtx& c) {
  Shape out = c.shape(0);
  if (out.size() < 3) c.bad(fmt::format("input {} has no spatial dims", dims_str(out)));
  std::fill(out.begin() + 2, out.end(), 1);
  return out;
}

/// Squeeze and Unsqueeze: axes from the attribute (opset < 13) or the
/// constant input 1, sorted and checked.
void squeeze_normalise(NodeCtx& c) {
  Node& n = c.n;
  std::vector<int64_t> axes;
  bool given = false;
  if (c.opset >= 13) {
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
  if (n.op == "Squeeze") {
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
}

/// Gather, Concat, Flatten: the axis attribute, resolved to non-negative.
void axis_normalise(NodeCtx& c) {
  Node& n = c.n;
  const int64_t r = c.rank(0);
  const bool flatten = n.op == "Flatten";
  if (n.op == "Concat" && !n.has("axis")) c.bad("Concat needs the attribute 'axis'");
  int64_t a = n.get_int("axis", flatten ? 1 : 0);
  if (flatten) {  // axis in [-r, r]; a negative one counts from r
    if (a < -r || a > r) c.bad(fmt::format("axis {} is out of range [-{}, {}]", a, r, r));
    if (a < 0) a += r;
  } else {
    a = c.axis(a, r);
  }
  c.set_int("axis", a);
}

/// A checked product of extents (shape arithmetic must not overflow).
int64_t checked_mul(const NodeCtx& c, int64_t a, int64_t b) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) c.bad(fmt::format("the extents {} x {} overflow 64 bits", a, b));
  return r;
}

using UnaryFn = double (*)(double);

/// out[i] = f(x[i]) for a constant float input 0; refused if a result is not finite.
void fold_unary(NodeCtx& c, Tensor& out, UnaryFn f) {
  const Tensor& x = *c.constant(0);
  if (!x.is_float()) c.unsupported(fmt::format("{} of an integer constant is not supported", c.n.op));
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double v = f(tensor_get(x, i));
    if (!std::isfinite(static_cast<float>(v)))
      c.bad(fmt::format("{} of the constant '{}' gives {} at element {}", c.n.op, c.n.inputs[0],
                        non_finite_name(static_cast<float>(v)), i));
    tensor_set(out, i, v);
  }
}

/// Calls f(o, offsets) for every element o of `out` (row-major), with the
/// element of each input that numpy broadcasting maps to it.
template <class F>
void for_each_broadcast(const Shape& out, const std::vector<Shape>& ins, F&& f) {
  const size_t r = out.size();
  std::vector<Shape> st;
  for (const Shape& d : ins) {
    Shape s(r, 0);
    const auto own = strides_of(d);
    const size_t off = r - d.size();
    for (size_t k = 0; k < d.size(); ++k) s[k + off] = d[k] == 1 ? 0 : own[k];
    st.push_back(std::move(s));
  }
  int64_t total = 1;
  for (auto v : out) total *= v;
  std::vector<int64_t> idx(r, 0), offs(ins.size(), 0);
  for (int64_t o = 0; o < total; ++o) {
    for (size_t i = 0; i < ins.size(); ++i) {
      offs[i] = 0;
      for (size_t k = 0; k < r; ++k) offs[i] += idx[k] * st[i][k];
    }
    f(o, offs);
    for (size_t k = r; k-- > 0;) {
      if (++idx[k] < out[k]) break;
      idx[k] = 0;
    }
  }
}

/// Integer values of a constant (i64 read exactly: INT64_MAX ends of Slice).
std::vector<int64_t> exact_ints(const NodeCtx& c, const Tensor& t) {
  return t.is_float() ? c.ints_of(t) : t.i64;
}

/// Slice and Split: out[idx] = x[starts + idx * steps] per axis (attributes
/// written by normalise, one entry per axis of x).
void fold_strided(NodeCtx& c, Tensor& out) {
  const Tensor& x = *c.constant(0);
  const auto starts = c.n.get_ints("starts"), steps = c.n.get_ints("steps");
  const auto st = strides_of(x.dims);
  const size_t r = x.dims.size();
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t src = 0;
    for (size_t k = 0; k < r; ++k) src += (starts[k] + idx[k] * steps[k]) * st[k];
    copy_element(out, o, x, src);
    for (size_t k = r; k-- > 0;) {
      if (++idx[k] < out.dims[k]) break;
      idx[k] = 0;
    }
  }
}

/// Reductions: axes from the attribute, or from the constant input 1 from
/// opset `input_since` on; empty means all (none with noop_with_empty_axes).
void reduce_normalise(NodeCtx& c, int64_t input_since) {
  std::vector<int64_t> axes;
  if (c.opset >= input_since) {
    if (c.has_input(1)) axes = c.ints_of(c.need_constant(1, "axes"));
    c.truncate_inputs(1);
  } else {
    axes = c.n.get_ints("axes");
  }
  const int64_t r = c.rank(0);
  const bool noop = axes.empty() && c.flag("noop_with_empty_axes", 0) != 0;
  if (axes.empty() && !noop)
    for (int64_t k = 0; k < r; ++k) axes.push_back(k);
  c.n.attrs.erase("noop_with_empty_axes");
  c.set_ints("axes", normal_axes(c, axes, r));
  c.set_int("keepdims", c.flag("keepdims", 1));
}

Shape reduce_shape(NodeCtx& c) {
  const Shape& x = c.shape(0);
  auto axes = c.n.get_ints("axes");
  const bool keep = c.n.get_int("keepdims", 1) != 0;
  Shape out;
  for (int64_t k = 0; k < static_cast<int64_t>(x.size()); ++k) {
    if (!std::binary_search(axes.begin(), axes.end(), k)) out.push_back(x[k]);
    else if (keep) out.push_back(1);
  }
  return out;
}

/// Resize (opsets 10..18) and Upsample (7..9): the scales or sizes and the
/// modes become attributes (graph.h): "mode" nearest | linear,
/// "coordinate_transformation_mode", "nearest_mode" ("simple" before Resize-11:
/// floor when enlarging, ceil when shrinking, as ONNX Runtime runs those
/// opsets), floats "scales" (per axis, the scale the coordinate transform
/// divides by) and ints "sizes" (the output shape). Only the two spatial dims
/// of an NCHW tensor are resized.
void resize_normalise(NodeCtx& c) {
  Node& n = c.n;
  const Shape& x = c.shape(0);
  const int64_t r = static_cast<int64_t>(x.size());
  const bool upsample = n.op == "Upsample";
  const bool old_form = upsample || c.opset < 11;  // X and scales only, asymmetric coordinates
  const std::string mode = n.get_string("mode", "nearest");
  if (mode == "cubic")
    c.unsupported(fmt::format("{} mode 'cubic' is not supported (nearest and linear are)", n.op));
  if (mode != "nearest" && mode != "linear" && !(upsample && mode == "bilinear"))
    c.bad(fmt::format("mode '{}' is not one of nearest, linear, cubic", mode));
  std::string coord = "asymmetric", nearest = "simple";
  if (!old_form) {
    coord = n.get_string("coordinate_transformation_mode", "half_pixel");
    if (coord == "tf_crop_and_resize")
      c.unsupported("coordinate_transformation_mode 'tf_crop_and_resize' (a crop given by roi) is not supported; "
                    "haq resizes whole images (half_pixel, pytorch_half_pixel, align_corners, asymmetric)");
    if (coord != "half_pixel" && coord != "pytorch_half_pixel" && coord != "align_corners" && coord != "asymmetric")
      c.unsupported(fmt::format("coordinate_transformation_mode '{}' is not supported (half_pixel, "
                                "pytorch_half_pixel, align_corners and asymmetric are)",
                                coord));
    nearest = n.get_string("nearest_mode", "round_prefer_floor");
    if (nearest != "round_prefer_floor" && nearest != "round_prefer_ceil" && nearest != "floor" && nearest != "ceil")
      c.bad(fmt::format("nearest_mode '{}' is not one of round_prefer_floor, round_prefer_ceil, floor, ceil", nearest));
    if (c.flag("exclude_outside", 0) != 0)
      c.unsupported("exclude_outside = 1 is not supported (it applies to cubic mode)");
  }
  if (mode != "nearest") nearest = "";
  std::vector<int64_t> axes;
  if (c.opset >= 18 && !upsample) {
    if (c.flag("antialias", 0) != 0) c.unsupported("antialias = 1 is not supported");
    const std::string policy = n.get_string("keep_aspect_ratio_policy", "stretch");
    if (policy != "stretch")
      c.unsupported(fmt::format("keep_aspect_ratio_policy '{}' is not supported (only stretch)", policy));
    if (n.has("axes")) {  // in the order of the scales or sizes
      axes = n.get_ints("axes");
      for (auto& a : axes) a = c.axis(a, r);
      normal_axes(c, axes, r);  // refuses a repeated axis
    }
  }
  if (axes.empty())
    for (int64_t k = 0; k < r; ++k) axes.push_back(k);
  // The scales (float, per listed axis) or the sizes.
  std::vector<float> given_scales;
  std::vector<int64_t> given_sizes;
  auto read_scales = [&](const Tensor& t) {
    if (!t.is_float()) c.bad("scales must be float");
    given_scales = t.f32;
  };
  if (upsample && c.opset < 9) {
    if (!n.has("scales")) c.bad("Upsample needs the attribute 'scales'");
    given_scales = n.attrs.at("scales").floats;
  } else if (old_form) {
    read_scales(c.need_constant(1, "scales"));
  } else {
    const Tensor* s = c.has_input(2) ? &c.need_constant(2, "scales") : nullptr;
    const Tensor* z = c.has_input(3) ? &c.need_constant(3, "sizes") : nullptr;
    if (s && s->numel() > 0 && z && z->numel() > 0) c.bad("scales and sizes are both given; give one");
    if (z && z->numel() > 0) given_sizes = exact_ints(c, *z);
    else if (s && s->numel() > 0) read_scales(*s);
    else c.bad("neither scales (input 2) nor sizes (input 3) is given");
  }
  const size_t want = axes.size();
  if ((!given_scales.empty() && given_scales.size() != want) || (!given_sizes.empty() && given_sizes.size() != want))
    c.bad(fmt::format("{} has {} entries, expected {} (one per {})", given_sizes.empty() ? "scales" : "sizes",
                      given_sizes.empty() ? given_scales.size() : given_sizes.size(), want,
                      want == static_cast<size_t>(r) ? "input dim" : "axis"));
  std::vector<float> scales(r, 1.f);
  Shape sizes = x;
  for (size_t j = 0; j < want; ++j) {
    const int64_t a = axes[j];
    if (!given_sizes.empty()) {
      if (given_sizes[j] < 1) c.bad(fmt::format("sizes {} has an entry below 1", dims_str(given_sizes)));
      sizes[a] = given_sizes[j];
      scales[a] = static_cast<float>(sizes[a]) / static_cast<float>(x[a]);
    } else {
      const float s = given_scales[j];
      if (!(s > 0.f) || !std::isfinite(s)) c.bad(fmt::format("scale {} of axis {} is not a positive number", s, a));
      if (upsample && s < 1.f) c.bad(fmt::format("Upsample scale {} of axis {} is below 1", s, a));
      scales[a] = s;
      const double d = std::floor(static_cast<double>(static_cast<float>(x[a]) * s));
      if (d < 1) c.unsupported(fmt::format("scale {} leaves axis {} of extent {} empty", s, a, x[a]));
      if (d > 9.0e15) c.bad(fmt::format("scale {} makes axis {} too large", s, a));
      sizes[a] = static_cast<int64_t>(d);
      // Where the resized length enters the transform, ONNX's reference takes
      // scale x input (fractional) and ONNX Runtime the output's length: they
      // disagree, and haq refuses rather than pick one.
      const bool fractional = static_cast<double>(static_cast<float>(x[a]) * s) != d;
      if (fractional && (coord == "align_corners" || (coord == "pytorch_half_pixel" && sizes[a] == 1)))
        c.unsupported(fmt::format("coordinate_transformation_mode '{}' with scale {} on axis {} of extent {}: the "
                                  "resized length {} is fractional, where ONNX's reference and ONNX Runtime "
                                  "differ; give sizes instead",
                                  coord, s, a, x[a], static_cast<float>(x[a]) * s));
    }
  }
  if (r != 4 || sizes[0] != x[0] || sizes[1] != x[1] || scales[0] != 1.f || scales[1] != 1.f)
    c.unsupported(fmt::format("only the two spatial dims of an NCHW tensor are resized: input {}, output {}",
                              dims_str(x), dims_str(sizes)));
  checked_numel(c.s, where(n), sizes);
  n.attrs.erase("axes");
  n.attrs.erase("antialias");
  n.attrs.erase("keep_aspect_ratio_policy");
  n.attrs.erase("exclude_outside");
  n.attrs.erase("cubic_coeff_a");
  n.attrs.erase("extrapolation_value");
  c.set_string("mode", mode == "bilinear" ? "linear" : mode);
  c.set_string("coordinate_transformation_mode", coord);
  c.set_string("nearest_mode", nearest);
  n.attrs["scales"].kind = Attribute::Kind::floats;
  n.attrs["scales"].floats = scales;
  c.set_ints("sizes", sizes);
  c.truncate_inputs(1);
}

struct Defs {
  std::vector<OpEntry> v;
  OpEntry& add(const char* name, OpStage stage, NonNeg nonneg, const char* notes) {
    v.emplace_back();
    OpEntry& e = v.back();
    e.def.name = name;
    e.def.stage = stage;
    e.def.nonneg = nonneg;
    e.def.notes = notes;
    return e;
  }
};

std::vector<OpEntry> make_entries() {
  Defs d;

  // ---- elementwise unary ----------------------------------------------------
  struct Unary {
    const char* name;
    NonNeg nonneg;
    UnaryFn f;
    int since;
  };
  for (const Unary& u : {
           Unary{"Abs", N::always, [](double x) { return std::fabs(x); }, 6},
           Unary{"Erf", N::never, [](double x) { return std::erf(x); }, 9},
           Unary{"Exp", N::always, [](double x) { return std::exp(x); }, 6},
           Unary{"Log", N::never, [](double x) { return std::log(x); }, 6},
           Unary{"Neg", N::never, [](double x) { return -x; }, 6},
           Unary{"Reciprocal", N::never, [](double x) { return 1.0 / x; }, 6},
           Unary{"Sigmoid", N::always, [](double x) { return 1.0 / (1.0 + std::exp(-x)); }, 6},
           Unary{"Sqrt", N::always, [](double x) { return std::sqrt(x); }, 6},
           Unary{"Tanh", N::never, [](double x) { return std::tanh(x); }, 6},
       }) {
    auto& e = d.add(u.name, S::runs, u.nonneg, "");
    e.def.since = u.since;
    e.rules.shape = same_shape;
    e.rules.fold = [f = u.f](NodeCtx& c, Tensor& out) { fold_unary(c, out, f); };
  }
  {
    auto& e = d.add("Relu", S::runs, N::always, "fused into the producing layer or Add");
    e.def.fusable = Fusable::relu;
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("Clip", S::runs, N::clip_min,
                    "min/max as attributes (opset < 11) or constant inputs, min <= max; fused into the producing layer");
    e.def.fusable = Fusable::clip;
    e.rules.normalise = [](NodeCtx& c) {
      float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
      if (c.opset < 11) {
        lo = c.n.get_float("min", lo);
        hi = c.n.get_float("max", hi);
      } else {
        if (c.has_input(1)) lo = static_cast<float>(c.scalar_of(1, "min"));
        if (c.has_input(2)) hi = static_cast<float>(c.scalar_of(2, "max"));
        c.truncate_inputs(1);
      }
      if (std::isnan(lo) || std::isnan(hi)) c.bad("the bounds min and max must not be NaN");
      if (lo > hi) c.bad(fmt::format("min {} is greater than max {}", lo, hi));
      c.set_float("min", lo);
      c.set_float("max", hi);
    };
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("LeakyRelu", S::runs, N::never, "");
    e.rules.normalise = [](NodeCtx& c) { c.finite_float("alpha", 0.01f); };
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("HardSigmoid", S::runs, N::always, "");
    e.rules.normalise = [](NodeCtx& c) {
      c.finite_float("alpha", 0.2f);
      c.finite_float("beta", 0.5f);
    };
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("HardSwish", S::runs, N::never, "");
    e.def.since = 14;
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("Softmax", S::runs, N::always, "any axis; before opset 13 the dims from axis on are normalised together, as ONNX defines");
    e.rules.normalise = [](NodeCtx& c) {
      const int64_t r = c.rank(0);
      const int64_t a = c.axis(c.n.get_int("axis", c.opset < 13 ? 1 : -1), r);
      c.set_int("axis", a);
    };
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("LRN", S::runs, N::like_input, "across channels");
    e.rules.normalise = [](NodeCtx& c) {
      if (!c.n.has("size")) c.bad("LRN needs the attribute 'size'");
      if (c.n.get_int("size", 1) < 1) c.bad(fmt::format("LRN size {} must be at least 1", c.n.get_int("size", 1)));
      c.finite_float("alpha", 1e-4f);
      c.finite_float("beta", 0.75f);
      c.finite_float("bias", 1.f);
    };
    e.rules.shape = same_shape;
  }
  {
    auto& e = d.add("BatchNormalization", S::runs, N::never,
                    "inference form; folded into the preceding Conv/Gemm when it is that layer's only reader, else run");
    e.rules.normalise = [](NodeCtx& c) {
      Node& n = c.n;
      if (c.opset < 7) {
        if (n.get_int("is_test", 0) == 0)
          c.unsupported("BatchNormalization with is_test = 0 (training mode, opset < 7) is not supported");
        n.attrs.erase("is_test");
      }
      if (n.get_int("spatial", 1) != 1) c.unsupported("BatchNormalization with spatial=0 is not supported");
      if (n.get_int("training_mode", 0) != 0) c.unsupported("BatchNormalization in training mode is not supported");
      c.finite_float("epsilon", 1e-5f);
    };
    e.rules.shape = same_shape;
    e.rules.check = [](NodeCtx& c) {
      check_finite_constants(c);
      const Tensor* var = c.constant(4);
      const float eps = c.n.get_float("epsilon", 1e-5f);
      if (var && var->is_float())
        for (size_t ch = 0; ch < var->f32.size(); ++ch) {
          const float s = var->f32[ch] + eps;  // as the engine computes it
          if (!(s > 0.f) || !(static_cast<double>(var->f32[ch]) + eps > 0.0))
            c.bad(fmt::format("channel {}: variance {} + epsilon {} is not positive (division by sqrt(var + "
                              "epsilon) gives NaN or inf)",
                              ch, var->f32[ch], eps));
        }
    };
  }

  // ---- elementwise binary -----------------------------------------------------
  struct Binary {
    const char* name;
    NonNeg nonneg;
    BinaryFn f;
    const char* notes;
  };
  for (const Binary& b : {
           Binary{"Add", N::all_inputs, [](NodeCtx&, double x, double y) { return x + y; },
                  "numpy broadcasting; a following Relu/Clip is fused"},
           Binary{"Sub", N::never, [](NodeCtx&, double x, double y) { return x - y; }, "numpy broadcasting"},
           Binary{"Mul", N::all_inputs, [](NodeCtx&, double x, double y) { return x * y; }, "numpy broadcasting"},
       }) {
    auto& e = d.add(b.name, S::runs, b.nonneg, b.notes);
    e.rules.normalise = binary_normalise;
    e.rules.shape = broadcast_shape;
    e.rules.fold = [f = b.f](NodeCtx& c, Tensor& out) { fold_binary(c, out, f); };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("Div", S::runs, N::all_inputs, "numpy broadcasting; a constant divisor must not hold 0");
    e.rules.normalise = binary_normalise;
    e.rules.shape = broadcast_shape;
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      if (c.constant(0)->is_float())
        fold_binary(c, out, [](NodeCtx&, double x, double y) { return x / y; });
      else
        fold_binary(c, out, [](NodeCtx& c, double x, double y) {
          if (y == 0) c.bad("integer division by zero in a constant");
          return static_cast<double>(static_cast<int64_t>(x) / static_cast<int64_t>(y));
        });
    };
    e.rules.check = [](NodeCtx& c) {
      check_finite_constants(c);
      if (const Tensor* t = c.constant(1); t && t->is_float())
        for (size_t k = 0; k < t->f32.size(); ++k)
          if (t->f32[k] == 0.f)
            c.bad(fmt::format("the divisor '{}' (input 1) is 0 at element {}: division by zero", c.n.inputs[1], k));
    };
  }
  for (const char* name : {"Max", "Min"}) {
    const bool max = name[1] == 'a';
    auto& e = d.add(name, S::runs, max ? N::any_input : N::all_inputs,
                    "numpy broadcasting; more than two inputs become a chain of two-input nodes");
    e.def.chain_variadic = true;
    e.rules.normalise = variadic_normalise;
    e.rules.resolve = variadic_resolve;
    e.rules.shape = broadcast_shape;
    // NaN wins, as in ONNX Runtime (std::max(x, nan) would drop it or not
    // depending on the order of the operands).
    const BinaryFn f = max ? BinaryFn([](NodeCtx&, double x, double y) { return x != x || y != y ? x + y : std::max(x, y); })
                           : BinaryFn([](NodeCtx&, double x, double y) { return x != x || y != y ? x + y : std::min(x, y); });
    e.rules.fold = [f](NodeCtx& c, Tensor& out) { fold_binary(c, out, f); };
  }

  // ---- layers -------------------------------------------------------------------
  {
    auto& e = d.add("Conv", S::layer, N::never,
                    "2-D, constant weights; groups and depthwise, dilations, strides, explicit or auto pads");
    e.rules.normalise = [](NodeCtx& c) { c.set_int("group", c.n.get_int("group", 1)); };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      const Shape& w = c.shape(1);
      if (x.size() != 4)
        c.unsupported(fmt::format("only 2-D Conv (rank-4 input) is supported, input is {}", dims_str(x)));
      if (w.size() != 4) c.bad(fmt::format("weight {} is not rank 4", dims_str(w)));
      const int64_t group = c.n.get_int("group", 1);
      if (group < 1 || x[1] != checked_mul(c, w[1], group) || w[0] % group != 0)
        c.bad(fmt::format("input {} with weight {} and group {}: channels do not match", dims_str(x), dims_str(w),
                          group));
      if (c.has_input(2) && c.shape(2) != Shape{w[0]})
        c.bad(fmt::format("bias {} does not match {} output channels", dims_str(c.shape(2)), w[0]));
      Shape kernel = c.n.get_ints("kernel_shape", {w[2], w[3]});
      if (kernel != Shape{w[2], w[3]})
        c.bad(fmt::format("kernel_shape {} does not match weight {}", dims_str(kernel), dims_str(w)));
      Shape sp = window_op(c, x, kernel, false, true, false);
      return {x[0], w[0], sp[0], sp[1]};
    };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("Gemm", S::layer, N::never, "constant B; transA, transB, alpha and beta folded into canonical form");
    e.rules.normalise = [](NodeCtx& c) {
      if (c.opset < 7) c.n.attrs.erase("broadcast");  // C broadcasts unidirectionally from 7 on; haq takes a per-output C
      c.set_int("transA", c.flag("transA", 0));
      c.set_int("transB", c.flag("transB", 0));
      c.finite_float("alpha", 1.f);
      c.finite_float("beta", 1.f);
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      Shape a = c.shape(0), b = c.shape(1);
      if (a.size() != 2 || b.size() != 2) c.bad(fmt::format("inputs {} and {} must be 2-D", dims_str(a), dims_str(b)));
      if (c.n.get_int("transA", 0)) std::swap(a[0], a[1]);
      if (c.n.get_int("transB", 0)) std::swap(b[0], b[1]);
      if (a[1] != b[0]) c.bad(fmt::format("inner dims do not match: {} x {}", dims_str(a), dims_str(b)));
      Shape out = {a[0], b[1]};
      if (c.has_input(2) && broadcast(c, c.shape(2), out) != out)
        c.bad(fmt::format("C {} does not broadcast to {}", dims_str(c.shape(2)), dims_str(out)));
      return out;
    };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("MatMul", S::layer, N::never,
                    "a quantizable layer when the second input is a constant 2-D weight (a bias Add after it is "
                    "folded in); two activations of equal leading dims, batch first (attention), are an act_matmul "
                    "layer; else an fp32 kernel (numpy broadcasting)");
    e.rules.shape = [](NodeCtx& c) -> Shape {
      Shape a = c.shape(0), b = c.shape(1);
      if (a.empty() || b.empty()) c.bad("MatMul inputs must have rank >= 1");
      const bool a1 = a.size() == 1, b1 = b.size() == 1;
      if (a1) a.insert(a.begin(), 1);
      if (b1) b.push_back(1);
      if (a.back() != b[b.size() - 2])
        c.bad(fmt::format("inner dims do not match: {} x {}", dims_str(c.shape(0)), dims_str(c.shape(1))));
      Shape out = broadcast(c, Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2));
      if (!a1) out.push_back(a[a.size() - 2]);
      if (!b1) out.push_back(b.back());
      return out;
    };
    e.rules.check = check_finite_constants;
  }

  // ---- pooling --------------------------------------------------------------------
  {
    auto& e = d.add("AveragePool", S::runs, N::like_input,
                    "1-D, 2-D and 3-D; explicit or auto pads (below the kernel), ceil_mode, count_include_pad");
    e.rules.shape = pool_shape;
  }
  {
    auto& e = d.add("MaxPool", S::runs, N::like_input,
                    "1-D, 2-D and 3-D; dilations, ceil_mode, pads below the kernel; only output 0 (no indices)");
    e.rules.shape = pool_shape;
  }
  for (const char* name : {"GlobalAveragePool", "GlobalMaxPool"}) {
    auto& e = d.add(name, S::runs, N::like_input, "");
    e.rules.shape = global_pool_shape;
  }
  for (auto [name, input_since] : {std::pair{"ReduceMax", 18}, {"ReduceMean", 18}, {"ReduceMin", 18},
                                   {"ReduceSum", 13}}) {
    auto& e = d.add(name, S::runs, N::like_input,
                    input_since == 13 ? "axes as attribute (opset < 13) or constant input; keepdims"
                                      : "axes as attribute (opset < 18) or constant input; keepdims");
    e.rules.normalise = [since = input_since](NodeCtx& c) { reduce_normalise(c, since); };
    e.rules.resolve = [](NodeCtx& c) {
      return c.n.get_ints("axes").empty() ? Resolution::alias_of(c.n.inputs[0]) : Resolution::keep();
    };
    e.rules.shape = reduce_shape;
  }

  // ---- shape and layout ----------------------------------------------------------
  {
    auto& e = d.add("Flatten", S::runs, N::like_input, "");
    e.rules.normalise = axis_normalise;
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      const int64_t a = c.n.get_int("axis", 1);
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < static_cast<int64_t>(x.size()); ++k)
        (k < a ? outer : inner) = checked_mul(c, k < a ? outer : inner, x[k]);
      return {outer, inner};
    };
    e.rules.fold = fold_copy;
  }
  {
    auto& e = d.add("Reshape", S::runs, N::like_input, "constant shape (0 and -1 resolved)");
    e.rules.normalise = [](NodeCtx& c) { c.set_int("allowzero", c.flag("allowzero", 0)); };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      const Tensor* st = c.constant(1);
      if (!st) c.unsupported("the shape input must be a constant (after folding)");
      Shape out = c.ints_of(*st);
      const bool allowzero = c.n.get_int("allowzero", 0) != 0;
      int infer = -1;
      int64_t known = 1;
      for (size_t k = 0; k < out.size(); ++k) {
        if (out[k] == 0 && !allowzero) {
          if (k >= x.size())
            c.bad(fmt::format("shape {} copies dim {} that input {} lacks", dims_str(out), k, dims_str(x)));
          out[k] = x[k];
        }
        if (out[k] == -1) {
          if (infer >= 0) c.bad(fmt::format("shape {} has more than one -1", dims_str(out)));
          infer = static_cast<int>(k);
        } else if (out[k] < 0) {
          c.bad(fmt::format("shape {} has a negative dim", dims_str(out)));
        } else {
          known = checked_mul(c, known, out[k]);
        }
      }
      int64_t total = 1;
      for (auto dim : x) total = checked_mul(c, total, dim);
      if (infer >= 0) {
        if (known == 0 || total % known != 0)
          c.bad(fmt::format("cannot reshape {} into {}", dims_str(x), dims_str(c.ints_of(*st))));
        out[infer] = total / known;
      } else if (known != total) {
        c.bad(fmt::format("cannot reshape {} ({} elements) into {}", dims_str(x), total, dims_str(out)));
      }
      return out;
    };
    e.rules.fold = fold_copy;
  }
  {
    auto& e = d.add("Transpose", S::runs, N::like_input, "");
    e.rules.normalise = [](NodeCtx& c) {
      const int64_t r = c.rank(0);
      std::vector<int64_t> perm = c.n.get_ints("perm");
      if (perm.empty())
        for (int64_t k = r - 1; k >= 0; --k) perm.push_back(k);
      std::vector<int64_t> sorted = perm;
      std::sort(sorted.begin(), sorted.end());
      for (int64_t k = 0; k < static_cast<int64_t>(sorted.size()); ++k)
        if (sorted[k] != k || static_cast<int64_t>(sorted.size()) != r)
          c.bad(fmt::format("perm {} is not a permutation of {} axes", dims_str(perm), r));
      c.set_ints("perm", perm);
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      auto perm = c.n.get_ints("perm");
      Shape out(x.size());
      for (size_t k = 0; k < x.size(); ++k) out[k] = x[perm[k]];
      return out;
    };
    e.rules.fold = [](NodeCtx& c, Tensor& out) { out = transpose_tensor(*c.constant(0), c.n.get_ints("perm")); };
  }
  {
    auto& e = d.add("Concat", S::runs, N::all_inputs, "");
    e.rules.normalise = axis_normalise;
    e.rules.shape = [](NodeCtx& c) -> Shape {
      Shape out = c.shape(0);
      const int64_t a = c.n.get_int("axis", 0);
      for (size_t i = 1; i < c.n.inputs.size(); ++i) {
        const Shape& y = c.shape(i);
        if (y.size() != out.size()) c.bad(fmt::format("input {} has rank {}, expected {}", i, y.size(), out.size()));
        for (size_t k = 0; k < y.size(); ++k)
          if (static_cast<int64_t>(k) != a && y[k] != out[k])
            c.bad(fmt::format("input {} has shape {}, incompatible with {} on axis {}", i, dims_str(y),
                              dims_str(out), a));
        if (__builtin_add_overflow(out[a], y[a], &out[a])) c.bad("the concatenated extent overflows 64 bits");
      }
      return out;
    };
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      const int64_t a = c.n.get_int("axis", 0);
      int64_t outer = 1;
      for (int64_t k = 0; k < a; ++k) outer *= out.dims[k];
      int64_t o = 0;
      for (int64_t blk = 0; blk < outer; ++blk)
        for (size_t i = 0; i < c.n.inputs.size(); ++i) {
          const Tensor& t = *c.constant(i);
          const int64_t chunk = outer == 0 ? 0 : t.numel() / outer;
          for (int64_t j = 0; j < chunk; ++j) copy_element(out, o++, t, blk * chunk + j);
        }
    };
  }
  for (const char* name : {"Squeeze", "Unsqueeze"}) {
    auto& e = d.add(name, S::runs, N::like_input, "axes as attribute or constant input");
    e.rules.normalise = squeeze_normalise;
    const bool squeeze = name[0] == 'S';
    e.rules.shape = [squeeze](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      auto axes = c.n.get_ints("axes");
      Shape out;
      if (squeeze) {
        for (int64_t k = 0; k < static_cast<int64_t>(x.size()); ++k)
          if (!std::binary_search(axes.begin(), axes.end(), k)) out.push_back(x[k]);
      } else {
        size_t j = 0;
        for (int64_t k = 0; k < static_cast<int64_t>(x.size() + axes.size()); ++k)
          out.push_back(std::binary_search(axes.begin(), axes.end(), k) ? 1 : x[j++]);
      }
      return out;
    };
    e.rules.fold = fold_copy;
  }
  {
    auto& e = d.add("Pad", S::runs, N::pad_value, "constant, reflect and edge modes; pads as attribute or constant input");
    e.rules.normalise = [](NodeCtx& c) {
      Node& n = c.n;
      const int64_t r = c.rank(0);
      std::vector<int64_t> pads;
      float value = 0.f;
      if (c.opset >= 11) {
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
      for (auto p : pads)
        if (p < -(int64_t{1} << 40) || p > (int64_t{1} << 40)) c.bad(fmt::format("pad {} is out of range", p));
      c.set_ints("pads", pads);
      c.set_float("value", value);
      const std::string mode = n.get_string("mode", "constant");
      if (mode != "constant" && mode != "reflect" && mode != "edge")
        c.unsupported(fmt::format("Pad mode '{}' is not supported", mode));
      c.set_string("mode", mode);
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      Shape out = c.shape(0);
      auto pads = c.n.get_ints("pads");
      const size_t r = out.size();
      for (size_t k = 0; k < r; ++k) {
        out[k] += pads[k] + pads[k + r];
        if (out[k] <= 0) c.bad(fmt::format("pads {} leave no elements in dim {}", dims_str(pads), k));
      }
      return out;
    };
  }
  {
    auto& e = d.add("Gather", S::runs, N::like_input, "constant indices");
    e.rules.normalise = axis_normalise;
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      const Shape& ind = c.shape(1);
      const int64_t a = c.n.get_int("axis", 0);
      Shape out(x.begin(), x.begin() + a);
      out.insert(out.end(), ind.begin(), ind.end());
      out.insert(out.end(), x.begin() + a + 1, x.end());
      return out;
    };
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      const Tensor& x = *c.constant(0);
      const Tensor& ind = *c.constant(1);
      const int64_t a = c.n.get_int("axis", 0);
      int64_t outer = 1, inner = 1;
      for (int64_t k = 0; k < a; ++k) outer *= x.dims[k];
      for (size_t k = a + 1; k < x.dims.size(); ++k) inner *= x.dims[k];
      const int64_t dim = x.dims[a];
      int64_t o = 0;
      for (int64_t blk = 0; blk < outer; ++blk)
        for (int64_t i = 0; i < ind.numel(); ++i) {
          int64_t j = tensor_get_int(ind, i);
          if (j < 0 && j >= -dim) j += dim;
          if (j < 0 || j >= dim) c.bad(fmt::format("index {} is out of range for dim {}", tensor_get_int(ind, i), dim));
          for (int64_t k = 0; k < inner; ++k) copy_element(out, o++, x, (blk * dim + j) * inner + k);
        }
    };
  }

  // ---- added for the models people bring (issue 16) --------------------------------
  {
    auto& e = d.add("PRelu", S::runs, N::never,
                    "slope broadcast to the input (numpy, unidirectional; before opset 7 a 1-D slope is per channel)");
    e.rules.normalise = [](NodeCtx& c) {
      // PRelu-6 takes a slope of one element, or one per channel (axis 1).
      const Shape& x = c.shape(0);
      const Shape& a = c.shape(1);
      if (c.opset >= 7 || a.size() != 1 || a[0] == 1 || x.size() < 2 || a[0] != x[1] || x.size() == 2) return;
      const Tensor* t = c.constant(1);
      if (!t) c.unsupported("a per-channel slope (opset < 7) must be a constant");
      Tensor r = *t;
      r.dims.insert(r.dims.end(), x.size() - 2, 1);
      const std::string name = fresh_name(c.s, c.n.inputs[1] + ".per_channel");
      c.s.g.shapes[name] = r.dims;
      c.s.g.dtypes[name] = r.dtype;
      c.s.g.constants[name] = std::move(r);
      c.n.inputs[1] = name;
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape out = broadcast(c, c.shape(0), c.shape(1));
      if (out != c.shape(0))
        c.bad(fmt::format("slope {} does not broadcast to the input {}", dims_str(c.shape(1)), dims_str(c.shape(0))));
      return out;
    };
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      fold_binary(c, out, [](NodeCtx&, double x, double a) { return x >= 0 ? x : a * x; });
    };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("Pow", S::runs, N::never, "numpy broadcasting; the exponent may be an integer constant");
    e.rules.normalise = binary_normalise;
    e.rules.shape = broadcast_shape;
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      if (!c.constant(0)->is_float()) c.unsupported("Pow of an integer base is not supported");
      for_each_broadcast(out.dims, {c.constant(0)->dims, c.constant(1)->dims}, [&](int64_t o, const Shape& k) {
        const double v = std::pow(tensor_get(*c.constant(0), k[0]), tensor_get(*c.constant(1), k[1]));
        if (!std::isfinite(static_cast<float>(v))) c.bad(fmt::format("Pow of constants gives {} at element {}",
                                                                     non_finite_name(static_cast<float>(v)), o));
        tensor_set(out, o, v);
      });
    };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("Sum", S::runs, N::all_inputs,
                    "numpy broadcasting; runs as Add (a following Relu/Clip is fused); more than two inputs become a "
                    "chain of two-input nodes");
    e.def.chain_variadic = true;
    e.rules.normalise = variadic_normalise;
    e.rules.resolve = variadic_resolve;
    e.rules.shape = broadcast_shape;
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      fold_binary(c, out, [](NodeCtx&, double x, double y) { return x + y; });
    };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("Mean", S::runs, N::all_inputs, "any number of inputs, numpy broadcasting");
    e.rules.normalise = [](NodeCtx& c) {
      for (size_t i = 0; i < c.n.inputs.size(); ++i)
        if (!c.has_input(i)) c.bad(fmt::format("input {} is missing", i));
    };
    e.rules.resolve = variadic_resolve;
    e.rules.shape = broadcast_shape;
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      std::vector<Shape> dims;
      for (size_t i = 0; i < c.n.inputs.size(); ++i) {
        if (!c.constant(i)->is_float()) c.unsupported("Mean of integer constants is not supported");
        dims.push_back(c.constant(i)->dims);
      }
      for_each_broadcast(out.dims, dims, [&](int64_t o, const Shape& k) {
        double sum = 0;
        for (size_t i = 0; i < k.size(); ++i) sum += tensor_get(*c.constant(i), k[i]);
        tensor_set(out, o, sum / static_cast<double>(k.size()));
      });
    };
    e.rules.check = check_finite_constants;
  }
  {
    auto& e = d.add("Where", S::runs, N::never,
                    "numpy broadcasting; the condition must be a constant (haq has no boolean activations)");
    e.def.since = 9;
    e.rules.min_inputs = 3;
    e.rules.dtype = [](const NodeCtx& c) { return c.dtype(1); };
    e.rules.shape = broadcast_shape;
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      for_each_broadcast(out.dims, {c.constant(0)->dims, c.constant(1)->dims, c.constant(2)->dims},
                         [&](int64_t o, const Shape& k) {
                           const bool pick_x = tensor_get(*c.constant(0), k[0]) != 0;
                           copy_element(out, o, *c.constant(pick_x ? 1 : 2), k[pick_x ? 1 : 2]);
                         });
    };
    e.rules.check = [](NodeCtx& c) {
      if (!c.constant(0))
        c.unsupported("the condition (input 0) must be a constant; haq has no boolean activations");
      if (c.dtype(1) != DType::f32 || c.dtype(2) != DType::f32)
        c.unsupported("Where of non-float activations is not supported");
      check_finite_constants(c);
    };
  }
  for (const char* name : {"Equal", "Greater", "Less"}) {
    auto& e = d.add(name, S::folded, N::never,
                    "on constants only (shape arithmetic); a boolean output of activations is refused");
    e.rules.normalise = binary_normalise;
    e.rules.resolve = [](NodeCtx& c) {
      for (size_t i = 0; i < 2; ++i)
        if (!c.constant(i))
          c.unsupported(fmt::format("input {} is not a constant: {} of activations gives a boolean tensor, which "
                                    "haq cannot run (only shape arithmetic on constants folds)",
                                    i, c.n.op));
      return Resolution::keep();  // folds
    };
    e.rules.dtype = [](const NodeCtx&) { return DType::boolean; };
    e.rules.shape = broadcast_shape;
    const char k = name[0];
    e.rules.fold = [k](NodeCtx& c, Tensor& out) {
      if (k == 'E') fold_binary(c, out, [](NodeCtx&, double x, double y) { return double(x == y); });
      else if (k == 'G') fold_binary(c, out, [](NodeCtx&, double x, double y) { return double(x > y); });
      else fold_binary(c, out, [](NodeCtx&, double x, double y) { return double(x < y); });
    };
  }
  {
    auto& e = d.add("Expand", S::runs, N::like_input, "constant shape (numpy broadcasting of input and shape)");
    e.def.since = 8;
    e.rules.min_inputs = 2;
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape want = exact_ints(c, c.need_constant(1, "shape"));
      for (auto v : want)
        if (v < 1) c.bad(fmt::format("shape {} has a dim below 1", dims_str(want)));
      return broadcast(c, c.shape(0), want);
    };
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      for_each_broadcast(out.dims, {c.constant(0)->dims},
                         [&](int64_t o, const Shape& k) { copy_element(out, o, *c.constant(0), k[0]); });
    };
  }
  {
    auto& e = d.add("Tile", S::runs, N::like_input, "constant repeats");
    e.rules.min_inputs = 2;
    e.rules.normalise = [](NodeCtx& c) {
      const auto reps = exact_ints(c, c.need_constant(1, "repeats"));
      if (static_cast<int64_t>(reps.size()) != c.rank(0))
        c.bad(fmt::format("repeats has {} entries, the input rank is {}", reps.size(), c.rank(0)));
      for (auto v : reps)
        if (v < 1) c.bad(fmt::format("repeats {} must be positive", dims_str(reps)));
      c.set_ints("repeats", reps);
      c.truncate_inputs(1);
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      Shape out = c.shape(0);
      const auto reps = c.n.get_ints("repeats");
      for (size_t k = 0; k < out.size(); ++k) out[k] = checked_mul(c, out[k], reps[k]);
      return out;
    };
    e.rules.fold = [](NodeCtx& c, Tensor& out) {
      const Tensor& x = *c.constant(0);
      const auto st = strides_of(x.dims);
      const size_t r = x.dims.size();
      std::vector<int64_t> idx(r, 0);
      for (int64_t o = 0; o < out.numel(); ++o) {
        int64_t src = 0;
        for (size_t k = 0; k < r; ++k) src += (idx[k] % x.dims[k]) * st[k];
        copy_element(out, o, x, src);
        for (size_t k = r; k-- > 0;) {
          if (++idx[k] < out.dims[k]) break;
          idx[k] = 0;
        }
      }
    };
  }
  {
    auto& e = d.add("Slice", S::runs, N::like_input,
                    "starts/ends/axes/steps as attributes (opset < 10) or constant inputs (also Shape-derived), "
                    "negative axes and steps");
    e.rules.normalise = [](NodeCtx& c) {
      const Shape& x = c.shape(0);
      const int64_t r = static_cast<int64_t>(x.size());
      std::vector<int64_t> starts, ends, axes, steps;
      if (c.opset < 10) {
        starts = c.n.get_ints("starts");
        ends = c.n.get_ints("ends");
        axes = c.n.get_ints("axes");
      } else {
        starts = exact_ints(c, c.need_constant(1, "starts"));
        ends = exact_ints(c, c.need_constant(2, "ends"));
        if (c.has_input(3)) axes = exact_ints(c, c.need_constant(3, "axes"));
        if (c.has_input(4)) steps = exact_ints(c, c.need_constant(4, "steps"));
        c.truncate_inputs(1);
      }
      if (starts.size() != ends.size())
        c.bad(fmt::format("starts has {} entries and ends {}", starts.size(), ends.size()));
      if (axes.empty())
        for (size_t k = 0; k < starts.size(); ++k) axes.push_back(static_cast<int64_t>(k));
      if (steps.empty()) steps.assign(starts.size(), 1);
      if (axes.size() != starts.size() || steps.size() != starts.size())
        c.bad(fmt::format("starts, ends, axes and steps have {}, {}, {} and {} entries", starts.size(), ends.size(),
                          axes.size(), steps.size()));
      std::vector<int64_t> full_start(r, 0), full_step(r, 1), full_end(x.begin(), x.end());
      std::vector<bool> seen(r, false);
      for (size_t j = 0; j < axes.size(); ++j) {
        const int64_t a = c.axis(axes[j], r);
        if (seen[a]) c.bad(fmt::format("axis {} is repeated", axes[j]));
        seen[a] = true;
        const int64_t dim = x[a];
        int64_t st = starts[j], en = ends[j], step = steps[j];
        if (step == 0) c.bad(fmt::format("step 0 on axis {}", axes[j]));
        if (step == std::numeric_limits<int64_t>::min()) step = -dim - 1;  // the same single element, and -step fits
        if (st < 0) st += dim;
        if (en < 0) en += dim;
        if (step > 0) {
          st = std::clamp<int64_t>(st, 0, dim);
          en = std::clamp<int64_t>(en, 0, dim);
        } else {
          st = std::clamp<int64_t>(st, -1, dim - 1);
          en = std::clamp<int64_t>(en, -1, dim - 1);
        }
        full_start[a] = st;
        full_end[a] = en;
        full_step[a] = step;
      }
      std::vector<int64_t> all(r);
      for (int64_t k = 0; k < r; ++k) all[k] = k;
      c.set_ints("starts", full_start);
      c.set_ints("ends", full_end);
      c.set_ints("steps", full_step);
      c.set_ints("axes", all);
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const auto st = c.n.get_ints("starts"), en = c.n.get_ints("ends"), step = c.n.get_ints("steps");
      Shape out(st.size());
      for (size_t k = 0; k < st.size(); ++k) {
        if (step[k] > 0) out[k] = en[k] > st[k] ? (en[k] - st[k] - 1) / step[k] + 1 : 0;
        else out[k] = st[k] > en[k] ? (st[k] - en[k] - 1) / -step[k] + 1 : 0;
        if (out[k] == 0)
          c.unsupported(fmt::format("the slice of axis {} is empty (start {}, end {}, step {}); haq's tensors are "
                                    "non-empty",
                                    k, st[k], en[k], step[k]));
      }
      return out;
    };
    e.rules.fold = fold_strided;
  }
  {
    auto& e = d.add("Split", S::runs, N::like_input,
                    "split as attribute (opset < 13) or constant input, num_outputs (opset 18) or equal parts; one "
                    "node per output");
    e.rules.per_output = true;
    e.rules.normalise = [](NodeCtx& c) {
      const Shape& x = c.shape(0);
      const int64_t r = static_cast<int64_t>(x.size());
      const int64_t a = c.axis(c.n.get_int("axis", 0), r);
      const int64_t count = c.n.get_int("output_count", 1), index = c.n.get_int("output_index", 0);
      std::vector<int64_t> sizes;
      if (c.opset >= 13) {
        if (c.has_input(1)) sizes = exact_ints(c, c.need_constant(1, "split"));
      } else if (c.has_input(1)) {  // Split-1's optional second input
        sizes = exact_ints(c, c.need_constant(1, "split"));
      } else {
        sizes = c.n.get_ints("split");
      }
      c.truncate_inputs(1);
      if (sizes.empty()) {
        int64_t parts = count;
        if (c.opset >= 18 && c.n.has("num_outputs")) {
          parts = c.n.get_int("num_outputs", count);
          if (parts != count) c.bad(fmt::format("num_outputs is {} but the node has {} outputs", parts, count));
          const int64_t chunk = (x[a] + parts - 1) / parts;  // the last part may be smaller
          for (int64_t k = 0; k < parts; ++k) sizes.push_back(std::max<int64_t>(0, std::min(chunk, x[a] - k * chunk)));
        } else {
          if (x[a] % parts != 0)
            c.bad(fmt::format("axis {} of extent {} does not split into {} equal parts", a, x[a], parts));
          sizes.assign(static_cast<size_t>(parts), x[a] / parts);
        }
      }
      if (static_cast<int64_t>(sizes.size()) != count)
        c.bad(fmt::format("split {} has {} entries but the node has {} outputs", dims_str(sizes), sizes.size(), count));
      int64_t total = 0, offset = 0;
      for (size_t k = 0; k < sizes.size(); ++k) {
        if (sizes[k] < 0) c.bad(fmt::format("split {} has a negative entry", dims_str(sizes)));
        if (static_cast<int64_t>(k) < index) offset += sizes[k];
        total += sizes[k];
      }
      if (total != x[a]) c.bad(fmt::format("split {} sums to {}, axis {} has {}", dims_str(sizes), total, a, x[a]));
      c.n.attrs.erase("num_outputs");
      c.set_int("axis", a);
      c.set_ints("split", sizes);
      std::vector<int64_t> starts(r, 0), steps(r, 1);
      starts[a] = offset;
      c.set_ints("starts", starts);
      c.set_ints("steps", steps);
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      Shape out = c.shape(0);
      out[c.n.get_int("axis", 0)] = c.n.get_ints("split")[c.n.get_int("output_index", 0)];
      return out;
    };
    e.rules.fold = fold_strided;
  }
  {
    auto& e = d.add("LayerNormalization", S::runs, N::never,
                    "over the dims from axis on (default -1); scale and bias of those dims' shape or one element; "
                    "only output 0 (no mean or inverse deviation)");
    e.def.since = 17;
    e.rules.min_inputs = 2;
    e.rules.normalise = [](NodeCtx& c) {
      c.set_int("axis", c.axis(c.n.get_int("axis", -1), c.rank(0)));
      c.finite_float("epsilon", 1e-5f);
      c.n.attrs.erase("stash_type");
    };
    e.rules.shape = [](NodeCtx& c) -> Shape {
      const Shape& x = c.shape(0);
      const int64_t a = c.n.get_int("axis", -1);
      int64_t inner = 1;
      for (size_t k = a; k < x.size(); ++k) inner *= x[k];
      for (size_t i = 1; i < 3; ++i) {
        if (!c.has_input(i)) continue;
        int64_t m = 1;
        for (auto v : c.shape(i)) m *= v;
        const Shape& si = c.shape(i);
        const Shape tail(x.begin() + a, x.end());
        if (m != 1 && broadcast(c, si, tail) != tail)
          c.bad(fmt::format("{} {} does not broadcast to the normalised dims {}", i == 1 ? "scale" : "bias",
                            dims_str(si), dims_str(tail)));
      }
      return x;
    };
    e.rules.check = check_finite_constants;
  }

  {
    auto& e = d.add("Resize", S::runs, N::like_input,
                    "nearest and linear on the 2 spatial dims of NCHW; scales or sizes (constant), axes (opset 18); "
                    "coordinates half_pixel, pytorch_half_pixel, align_corners, asymmetric; all four nearest_modes; "
                    "cubic, tf_crop_and_resize, antialias and keep_aspect_ratio_policy other than stretch refused");
    e.def.since = 10;
    e.rules.normalise = resize_normalise;
    e.rules.shape = [](NodeCtx& c) -> Shape { return c.n.get_ints("sizes"); };
  }
  {
    auto& e = d.add("Upsample", S::runs, N::like_input,
                    "as Resize-10 (asymmetric coordinates): nearest and linear on the 2 spatial dims of NCHW, scales "
                    "as attribute (opset < 9) or constant input");
    e.def.since = 7;
    e.def.until = 9;
    e.rules.normalise = resize_normalise;
    e.rules.shape = [](NodeCtx& c) -> Shape { return c.n.get_ints("sizes"); };
  }

  // ---- removed or evaluated at import -----------------------------------------------
  {
    auto& e = d.add("Identity", S::folded, N::like_input, "removed (kept only between a graph input and a graph output)");
    e.rules.resolve = [](NodeCtx& c) { return Resolution::alias_of(c.n.inputs[0]); };
    e.rules.shape = same_shape;  // the Identity import keeps between a graph input and output
  }
  {
    auto& e = d.add("Dropout", S::folded, N::never, "inference: removed; training mode with a non-zero ratio refused");
    e.rules.resolve = [](NodeCtx& c) {
      const Node& n = c.n;
      if (c.opset < 7 && n.get_int("is_test", 0) == 0 && n.get_float("ratio", 0.5f) != 0.f)
        c.unsupported(fmt::format("Dropout with is_test = 0 (training mode, opset < 7, ratio {}) drops at random; "
                                  "haq runs inference only",
                                  n.get_float("ratio", 0.5f)));
      if (c.has_input(2)) {  // opset 12+: training_mode
        const Tensor* mode = c.constant(2);
        if (!mode) c.unsupported("training_mode (input 2) must be a constant");
        const double ratio = c.has_input(1) ? c.scalar_of(1, "ratio") : 0.5;
        if (mode->numel() == 1 && tensor_get(*mode, 0) != 0 && ratio != 0)
          c.unsupported(fmt::format("Dropout in training mode (training_mode = true, ratio {}) drops at random; haq "
                                    "runs inference only",
                                    ratio));
      }
      return Resolution::alias_of(n.inputs[0]);
    };
  }
  {
    auto& e = d.add("Constant", S::folded, N::never, "tensor value");
    e.rules.min_inputs = 0;
    e.rules.resolve = [](NodeCtx& c) {
      const Node& n = c.n;
      Tensor t;
      if (n.has("value")) return Resolution::constant_of(tensor_attribute(c, "value"));
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
        c.unsupported("Constant needs value, value_float(s) or value_int(s) (sparse and string values are not "
                      "supported)");
      }
      return Resolution::constant_of(std::move(t));
    };
  }
  {
    auto& e = d.add("ConstantOfShape", S::folded, N::never, "constant shape input");
    e.rules.resolve = [](NodeCtx& c) {
      Shape dims = c.ints_of(c.need_constant(0, "shape"));
      checked_numel(c.s, where(c.n), dims);
      Tensor value = make_tensor(DType::f32, {1});
      if (c.n.has("value")) value = tensor_attribute(c, "value");
      if (value.numel() != 1) c.bad("value must have one element");
      Tensor t = make_tensor(value.dtype, dims);
      for (int64_t i = 0; i < t.numel(); ++i) copy_element(t, i, value, 0);
      return Resolution::constant_of(std::move(t));
    };
  }
  {
    auto& e = d.add("Shape", S::folded, N::never, "static shapes: always a constant; start/end");
    e.rules.resolve = [](NodeCtx& c) {
      const Shape& x = c.shape(0);
      const int64_t r = static_cast<int64_t>(x.size());
      int64_t start = c.n.get_int("start", 0), end = c.n.get_int("end", r);
      start = std::clamp(start < 0 ? start + r : start, int64_t{0}, r);
      end = std::clamp(end < 0 ? end + r : end, int64_t{0}, r);
      Tensor t = make_tensor(DType::i64, {std::max<int64_t>(0, end - start)});
      for (int64_t i = 0; i < t.numel(); ++i) t.i64[i] = x[start + i];
      return Resolution::constant_of(std::move(t));
    };
  }
  {
    auto& e = d.add("Cast", S::folded, N::never, "on constants (shape arithmetic), or between equal types");
    e.rules.dtype = [](const NodeCtx& c) {
      const int64_t to = c.n.get_int("to", 1);
      switch (to) {
        case 1: return DType::f32;
        case 2: return DType::u8;
        case 3: return DType::i8;
        case 6: return DType::i32;
        case 7: return DType::i64;
        case 9: return DType::boolean;
        default: c.unsupported(fmt::format("Cast to element type {} is not supported", to));
      }
    };
    e.rules.resolve = [](NodeCtx& c) {
      if (c.constant(0)) return Resolution::keep();  // folds
      const DType to = find_entry("Cast")->rules.dtype(c);
      if (to != c.dtype(0))
        c.unsupported(fmt::format("Cast from {} to {} on a non-constant value is not supported", to_string(c.dtype(0)),
                                  to_string(to)));
      return Resolution::alias_of(c.n.inputs[0]);
    };
    e.rules.shape = same_shape;
    e.rules.fold = fold_copy;
  }

  std::sort(d.v.begin(), d.v.end(), [](const OpEntry& a, const OpEntry& b) { return a.def.name < b.def.name; });
  for (auto& e : d.v) e.def.folds_constants = e.rules.fold != nullptr;
  return std::move(d.v);
}

}  // namespace

const std::vector<OpEntry>& op_entries() {
  static const std::vector<OpEntry> entries = make_entries();
  return entries;
}

}  // namespace haq::model::detail
