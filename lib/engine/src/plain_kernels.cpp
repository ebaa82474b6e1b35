// The fp32 kernels on plain row-major tensors (plain_kernels.h), one function
// per op, registered by name at the end of this file.

#include "plain_kernels.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace haq::engine::detail {

namespace {

using Dims = std::vector<int64_t>;

int64_t numel(const Dims& d) {
  int64_t n = 1;
  for (auto v : d) n *= v;
  return n;
}

/// Row-major strides of `d`.
Dims strides(const Dims& d) {
  Dims st(d.size(), 1);
  for (size_t i = d.size(); i-- > 1;) st[i - 1] = st[i] * d[i];
  return st;
}

/// Advances a row-major multi-index over `d`.
void next_index(Dims& idx, const Dims& d) {
  for (size_t k = idx.size(); k-- > 0;) {
    if (++idx[k] < d[k]) return;
    idx[k] = 0;
  }
}

/// `d` with leading 1s up to `rank`.
Dims align(const Dims& d, size_t rank) {
  Dims r(rank - d.size(), 1);
  r.insert(r.end(), d.begin(), d.end());
  return r;
}

int64_t positive_axis(int64_t a, size_t rank) { return a < 0 ? a + static_cast<int64_t>(rank) : a; }

// ---- kernels -------------------------------------------------------------------

/// Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout: the same elements.
void copy(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  HAQ_ASSERT(x.numel() == c.out_numel());
  std::copy(x.data, x.data + x.numel(), c.out);
}

void transpose(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const size_t r = x.dims.size();
  Dims perm = c.node.get_ints("perm");
  if (perm.empty())
    for (size_t i = 0; i < r; ++i) perm.push_back(static_cast<int64_t>(r - 1 - i));
  const Dims st = strides(x.dims);
  const int64_t cnt = c.out_numel();
  if (cnt == 0) return;
  if (r == 0) {
    c.out[0] = x.data[0];
    return;
  }
  // The output's last dim is the inner loop (one input stride), the other
  // dims an outer multi-index: one offset sum per row, not per element.
  const int64_t row = c.out_dims[r - 1];
  const int64_t step = st[perm[r - 1]];
  const Dims outer_dims(c.out_dims.begin(), c.out_dims.end() - 1);
  Dims idx(r - 1, 0);
  for (int64_t i = 0; i < cnt; i += row) {
    int64_t off = 0;
    for (size_t k = 0; k + 1 < r; ++k) off += idx[k] * st[perm[k]];
    float* o = c.out + i;
    const float* src = x.data + off;
    for (int64_t j = 0; j < row; ++j) o[j] = src[j * step];
    next_index(idx, outer_dims);
  }
}

void concat(const KernelCall& c) {
  const Dims& od = c.out_dims;
  const int64_t axis = positive_axis(c.node.get_int("axis", 1), od.size());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= od[i];
  for (size_t i = axis + 1; i < od.size(); ++i) inner *= od[i];
  int64_t off = 0;
  for (size_t i = 0; i < c.in.size(); ++i) {
    if (!c.in[i].present) continue;
    const KernelInput& x = c.floats(i);
    const int64_t len = x.dims.at(axis) * inner;
    for (int64_t o = 0; o < outer; ++o)
      std::copy(x.data + o * len, x.data + (o + 1) * len, c.out + o * od[axis] * inner + off);
    off += len;
  }
}

void softmax(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const Dims& d = x.dims;
  const int64_t axis = positive_axis(c.node.get_int("axis", c.opset >= 13 ? -1 : 1), d.size());
  int64_t outer = 1, len = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  if (c.opset >= 13) {
    len = d[axis];
    for (size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
  } else {
    for (size_t i = axis; i < d.size(); ++i) len *= d[i];  // coerced to 2-D
  }
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      const int64_t base = o * len * inner + in;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < len; ++k) m = std::max(m, x.data[base + k * inner]);
      // Each exponential once: kept in the output, then divided by the sum.
      double sum = 0;
      for (int64_t k = 0; k < len; ++k) {
        const float e = std::exp(x.data[base + k * inner] - m);
        c.out[base + k * inner] = e;
        sum += e;
      }
      for (int64_t k = 0; k < len; ++k)
        c.out[base + k * inner] = static_cast<float>(c.out[base + k * inner] / sum);
    }
}

void pad(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const Dims& d = x.dims;
  const size_t r = d.size();
  const Dims pads = c.node.get_ints("pads");
  if (pads.size() != 2 * r) c.fail(ErrorKind::unsupported, "pads must have 2 x rank entries");
  const std::string mode = c.node.get_string("mode", "constant");
  const float value = c.node.get_float("value", 0.f);
  const Dims st = strides(d);
  Dims idx(r, 0);
  const int64_t cnt = c.out_numel();
  for (int64_t i = 0; i < cnt; ++i) {
    int64_t off = 0;
    bool inside = true;
    for (size_t k = 0; k < r; ++k) {
      int64_t p = idx[k] - pads[k];
      if (p < 0 || p >= d[k]) {
        if (mode == "constant") {
          inside = false;
          break;
        } else if (mode == "edge") {
          p = std::clamp<int64_t>(p, 0, d[k] - 1);
        } else {  // reflect
          if (d[k] == 1) p = 0;
          while (p < 0 || p >= d[k]) p = p < 0 ? -p : 2 * (d[k] - 1) - p;
        }
      }
      off += p * st[k];
    }
    c.out[i] = inside ? x.data[off] : value;
    next_index(idx, c.out_dims);
  }
}

/// ReduceMean, ReduceSum, ReduceMax, ReduceMin.
void reduce(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const Dims& d = x.dims;
  const size_t r = d.size();
  const Dims axes = c.node.get_ints("axes");
  std::vector<bool> red(r, axes.empty());
  for (int64_t a : axes) red[positive_axis(a, r)] = true;
  Dims ostride(r, 0);
  int64_t k = 1, group = 1;
  for (size_t i = r; i-- > 0;) {
    if (red[i]) {
      group *= d[i];
    } else {
      ostride[i] = k;
      k *= d[i];
    }
  }
  const int64_t cnt = c.out_numel();
  HAQ_ASSERT(k == cnt);
  const std::string& op = c.node.op;
  const bool mx = op == "ReduceMax", mn = op == "ReduceMin";
  std::vector<double> acc(static_cast<size_t>(cnt), mx   ? -std::numeric_limits<double>::infinity()
                                                    : mn ? std::numeric_limits<double>::infinity()
                                                         : 0.0);
  Dims idx(r, 0);
  const int64_t total = numel(d);
  for (int64_t i = 0; i < total; ++i) {
    int64_t o = 0;
    for (size_t a = 0; a < r; ++a) o += idx[a] * ostride[a];
    if (mx) acc[o] = std::max<double>(acc[o], x.data[i]);
    else if (mn) acc[o] = std::min<double>(acc[o], x.data[i]);
    else acc[o] += x.data[i];
    next_index(idx, d);
  }
  const double div = op == "ReduceMean" ? static_cast<double>(group) : 1.0;
  for (int64_t i = 0; i < cnt; ++i) c.out[i] = static_cast<float>(acc[i] / div);
}

void gather(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const Dims& d = x.dims;
  if (c.in.size() < 2 || !c.in[1].constant || c.in[1].constant->is_float())
    c.fail(ErrorKind::unsupported, "Gather needs constant integer indices");
  const auto& ind = c.in[1].constant->i64;
  const int64_t axis = positive_axis(c.node.get_int("axis", 0), d.size());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= d[i];
  for (size_t i = axis + 1; i < d.size(); ++i) inner *= d[i];
  const int64_t ni = static_cast<int64_t>(ind.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < ni; ++j) {
      const int64_t v = ind[j] < 0 ? ind[j] + d[axis] : ind[j];
      if (v < 0 || v >= d[axis]) c.fail(ErrorKind::model, "index {} out of range", ind[j]);
      std::copy(x.data + (o * d[axis] + v) * inner, x.data + (o * d[axis] + v + 1) * inner,
                c.out + (o * ni + j) * inner);
    }
}

/// MatMul that is not a layer (both operands activations, or a weight of rank
/// != 2): numpy matmul with broadcast batch dims.
void matmul(const KernelCall& c) {
  const KernelInput& a = c.floats(0);
  const KernelInput& b = c.floats(1);
  if (a.dims.empty() || b.dims.empty()) c.fail(ErrorKind::internal, "MatMul of a scalar");
  Dims ea = a.dims, eb = b.dims;  // 1-D operands promoted to matrices
  if (ea.size() == 1) ea.insert(ea.begin(), 1);
  if (eb.size() == 1) eb.push_back(1);
  const int64_t M = ea[ea.size() - 2], K = ea.back(), N = eb.back();
  if (eb[eb.size() - 2] != K) c.fail(ErrorKind::internal, "inner dims do not match");
  const size_t rb = std::max(ea.size(), eb.size()) - 2;
  const Dims ba = align({ea.begin(), ea.end() - 2}, rb), bb = align({eb.begin(), eb.end() - 2}, rb);
  Dims bo(rb), sa(rb, 0), sb(rb, 0);
  int64_t ka = 1, kb = 1;
  for (size_t i = rb; i-- > 0;) {
    bo[i] = std::max(ba[i], bb[i]);
    sa[i] = ba[i] == 1 ? 0 : ka;
    sb[i] = bb[i] == 1 ? 0 : kb;
    ka *= ba[i];
    kb *= bb[i];
  }
  const int64_t batches = numel(bo);
  HAQ_ASSERT(batches * M * N == c.out_numel());
  Dims idx(rb, 0);
  for (int64_t bi = 0; bi < batches; ++bi) {
    int64_t oa = 0, ob = 0;
    for (size_t k = 0; k < rb; ++k) oa += idx[k] * sa[k], ob += idx[k] * sb[k];
    const float* A = a.data + oa * M * K;
    const float* B = b.data + ob * K * N;
    float* R = c.out + bi * M * N;
    std::fill(R, R + M * N, 0.f);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t k = 0; k < K; ++k) {
        const float x = A[i * K + k];
        for (int64_t j = 0; j < N; ++j) R[i * N + j] += x * B[k * N + j];
      }
    next_index(idx, bo);
  }
}


/// Input i as floats, whatever its type (an integer constant, e.g. Pow's
/// exponent, is converted into `keep`).
const float* any_floats(const KernelCall& c, size_t i, std::vector<float>& keep) {
  if (i >= c.in.size() || !c.in[i].present) c.fail(ErrorKind::model, "input {} is missing", i);
  if (c.in[i].data) return c.in[i].data;
  if (!c.in[i].constant) c.fail(ErrorKind::unsupported, "input {} must be a float tensor", i);
  keep.assign(c.in[i].constant->i64.begin(), c.in[i].constant->i64.end());
  return keep.data();
}

/// Calls f(o, offsets) for every output element o, with the element of each
/// input numpy broadcasting maps to it.
template <class F>
void broadcast_each(const Dims& out, const std::vector<Dims>& ins, F&& f) {
  const size_t r = out.size();
  std::vector<Dims> st;
  for (const Dims& d : ins) {
    const Dims a = align(d, r), own = strides(a);
    Dims s(r, 0);
    for (size_t k = 0; k < r; ++k) s[k] = a[k] == 1 ? 0 : own[k];
    st.push_back(std::move(s));
  }
  const int64_t total = numel(out);
  Dims idx(r, 0), offs(ins.size(), 0);
  for (int64_t o = 0; o < total; ++o) {
    for (size_t i = 0; i < ins.size(); ++i) {
      offs[i] = 0;
      for (size_t k = 0; k < r; ++k) offs[i] += idx[k] * st[i][k];
    }
    f(o, offs);
    next_index(idx, out);
  }
}

/// Erf, Log, Reciprocal.
void unary(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const int64_t n = x.numel();
  const float* a = x.data;
  float* y = c.out;
  const std::string& op = c.node.op;
  if (op == "Erf")
    for (int64_t i = 0; i < n; ++i) y[i] = std::erf(a[i]);
  else if (op == "Log")
    for (int64_t i = 0; i < n; ++i) y[i] = std::log(a[i]);
  else if (op == "Reciprocal")
    for (int64_t i = 0; i < n; ++i) y[i] = 1.f / a[i];
  else
    c.fail(ErrorKind::internal, "no unary kernel for {}", op);
}

/// Pow and PRelu: either operand may be the constant.
void binary(const KernelCall& c) {
  std::vector<float> ka, kb;
  const float* a = any_floats(c, 0, ka);
  const float* b = any_floats(c, 1, kb);
  const bool pow = c.node.op == "Pow";
  if (pow && c.in[1].numel() == 1 && b[0] == 2.f) {  // x^2 (LayerNorm's decomposition): exact as x * x
    const int64_t n = c.out_numel();
    if (c.in[0].numel() == n) {
      for (int64_t i = 0; i < n; ++i) c.out[i] = a[i] * a[i];
      return;
    }
  }
  broadcast_each(c.out_dims, {c.in[0].dims, c.in[1].dims}, [&](int64_t o, const Dims& k) {
    const float x = a[k[0]], y = b[k[1]];
    c.out[o] = pow ? std::pow(x, y) : (x >= 0.f ? x : y * x);
  });
}

/// Mean of any number of inputs.
void mean(const KernelCall& c) {
  std::vector<const float*> p;
  std::vector<Dims> dims;
  for (size_t i = 0; i < c.in.size(); ++i) {
    p.push_back(c.floats(i).data);
    dims.push_back(c.in[i].dims);
  }
  const double n = static_cast<double>(p.size());
  broadcast_each(c.out_dims, dims, [&](int64_t o, const Dims& k) {
    double s = 0;
    for (size_t i = 0; i < p.size(); ++i) s += p[i][k[i]];
    c.out[o] = static_cast<float>(s / n);
  });
}

/// Where with a constant condition.
void where(const KernelCall& c) {
  if (c.in.size() < 3 || !c.in[0].constant) c.fail(ErrorKind::unsupported, "the condition must be a constant");
  const model::Tensor& cond = *c.in[0].constant;
  const float* x = c.floats(1).data;
  const float* y = c.floats(2).data;
  broadcast_each(c.out_dims, {c.in[0].dims, c.in[1].dims, c.in[2].dims}, [&](int64_t o, const Dims& k) {
    const bool t = cond.is_float() ? cond.f32[k[0]] != 0.f : cond.i64[k[0]] != 0;
    c.out[o] = t ? x[k[1]] : y[k[2]];
  });
}

void expand(const KernelCall& c) {
  const float* x = c.floats(0).data;
  broadcast_each(c.out_dims, {c.in[0].dims}, [&](int64_t o, const Dims& k) { c.out[o] = x[k[0]]; });
}

void tile(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const size_t r = x.dims.size();
  const Dims st = strides(x.dims);
  Dims idx(r, 0);
  const int64_t cnt = c.out_numel();
  for (int64_t i = 0; i < cnt; ++i) {
    int64_t off = 0;
    for (size_t k = 0; k < r; ++k) off += (idx[k] % x.dims[k]) * st[k];
    c.out[i] = x.data[off];
    next_index(idx, c.out_dims);
  }
}

/// Slice and Split: out[idx] = x[starts + idx * steps], one start and step
/// per axis (the importer writes them).
void strided(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const size_t r = x.dims.size();
  const Dims starts = c.node.get_ints("starts"), steps = c.node.get_ints("steps");
  if (starts.size() != r || steps.size() != r) c.fail(ErrorKind::internal, "starts/steps do not match the rank");
  const Dims st = strides(x.dims);
  Dims idx(r, 0);
  const int64_t cnt = c.out_numel();
  if (r == 0) {
    if (cnt == 1) c.out[0] = x.data[0];
    return;
  }
  // Contiguous rows along the last axis when its step is 1.
  const int64_t row = steps[r - 1] == 1 ? c.out_dims[r - 1] : 1;
  for (int64_t i = 0; i < cnt; i += row) {
    int64_t off = 0;
    for (size_t k = 0; k < r; ++k) off += (starts[k] + idx[k] * steps[k]) * st[k];
    if (row > 1) {
      std::copy(x.data + off, x.data + off + row, c.out + i);
      idx[r - 1] = row - 1;
    } else {
      c.out[i] = x.data[off];
    }
    next_index(idx, c.out_dims);
  }
}

void layer_norm(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const int64_t axis = positive_axis(c.node.get_int("axis", -1), x.dims.size());
  const float eps = c.node.get_float("epsilon", 1e-5f);
  int64_t inner = 1;
  for (size_t k = axis; k < x.dims.size(); ++k) inner *= x.dims[k];
  const int64_t outer = x.numel() / inner;
  const KernelInput& scale = c.floats(1);
  const bool scale1 = scale.numel() == 1;
  const float* bias = nullptr;
  bool bias1 = false;
  if (c.in.size() > 2 && c.in[2].present) {
    bias = c.floats(2).data;
    bias1 = c.in[2].numel() == 1;
  }
  if ((!scale1 && scale.numel() != inner) || (bias && !bias1 && c.in[2].numel() != inner))
    c.fail(ErrorKind::unsupported, "scale and bias must have the normalised dims' shape or one element");
  for (int64_t o = 0; o < outer; ++o) {
    const float* v = x.data + o * inner;
    double m = 0;
    for (int64_t k = 0; k < inner; ++k) m += v[k];
    m /= static_cast<double>(inner);
    double var = 0;
    for (int64_t k = 0; k < inner; ++k) var += (v[k] - m) * (v[k] - m);
    var /= static_cast<double>(inner);
    const double inv = 1.0 / std::sqrt(var + eps);
    float* y = c.out + o * inner;
    for (int64_t k = 0; k < inner; ++k) {
      double r = (v[k] - m) * inv * scale.data[scale1 ? 0 : k];
      if (bias) r += bias[bias1 ? 0 : k];
      y[k] = static_cast<float>(r);
    }
  }
}

/// The source coordinate of output index `x` along one axis, in float as ONNX
/// Runtime computes it (the importer checked the mode).
float resize_source(const std::string& coord, float x, float scale, int64_t out_len, int64_t in_len) {
  if (coord == "asymmetric") return x / scale;
  if (coord == "align_corners")
    return out_len == 1 ? 0.f : x * static_cast<float>(in_len - 1) / static_cast<float>(out_len - 1);
  if (coord == "pytorch_half_pixel" && out_len == 1) return 0.f;
  return (x + 0.5f) / scale - 0.5f;  // half_pixel, pytorch_half_pixel
}

/// The input index nearest_mode picks for source coordinate `v`, clamped.
int64_t resize_nearest(const std::string& mode, float v, bool shrinking, int64_t in_len) {
  int64_t i;
  if (mode == "simple") i = shrinking ? static_cast<int64_t>(std::ceil(v)) : static_cast<int64_t>(v);  // Resize-10
  else if (mode == "floor") i = static_cast<int64_t>(std::floor(v));
  else if (mode == "ceil") i = static_cast<int64_t>(std::ceil(v));
  else if (mode == "round_prefer_ceil") i = static_cast<int64_t>(std::round(v));
  else i = v == std::floor(v) + 0.5f ? static_cast<int64_t>(std::floor(v)) : static_cast<int64_t>(std::round(v));
  return std::clamp<int64_t>(i, 0, in_len - 1);
}

/// One axis of a resize: for each output index, two input indices and their
/// weights (nearest: the same index twice, weights 1 and 0).
struct ResizeAxis {
  std::vector<int64_t> i0, i1;
  std::vector<float> w0, w1;
};

ResizeAxis resize_axis(const KernelCall& c, size_t axis, int64_t in_len, int64_t out_len) {
  const auto& scales = c.node.attrs.at("scales").floats;
  const std::string coord = c.node.get_string("coordinate_transformation_mode", "half_pixel");
  const std::string nearest = c.node.get_string("nearest_mode", "");
  const bool linear = c.node.get_string("mode", "nearest") == "linear";
  const float scale = scales.at(axis);
  ResizeAxis r;
  for (int64_t o = 0; o < out_len; ++o) {
    float v = resize_source(coord, static_cast<float>(o), scale, out_len, in_len);
    if (!linear) {
      const int64_t i = resize_nearest(nearest, v, scale < 1.f, in_len);
      r.i0.push_back(i);
      r.i1.push_back(i);
      r.w0.push_back(1.f);
      r.w1.push_back(0.f);
      continue;
    }
    // As ONNX Runtime's bilinear kernel: the coordinate clamped into the
    // input, its two neighbours, weights by distance (0.5 each at the edge).
    v = std::max(0.f, std::min(v, static_cast<float>(in_len - 1)));
    const int64_t a = std::min(static_cast<int64_t>(v), in_len - 1), b = std::min(a + 1, in_len - 1);
    float da = std::fabs(v - static_cast<float>(a)), db = std::fabs(v - static_cast<float>(b));
    if (a == b) da = db = 0.5f;
    r.i0.push_back(a);
    r.i1.push_back(b);
    r.w0.push_back(db);
    r.w1.push_back(da);
  }
  return r;
}

/// Resize and Upsample on NCHW (the importer wrote mode, coordinate mode,
/// nearest mode and the per-axis scales; only H and W change).
void resize(const KernelCall& c) {
  const KernelInput& x = c.floats(0);
  const Dims& d = x.dims;
  const Dims& od = c.out_dims;
  if (d.size() != 4 || od.size() != 4 || d[0] != od[0] || d[1] != od[1])
    c.fail(ErrorKind::internal, "Resize of {} into {}: only H and W change", d.size(), od.size());
  const int64_t H = d[2], W = d[3], OH = od[2], OW = od[3];
  const ResizeAxis ry = resize_axis(c, 2, H, OH), rx = resize_axis(c, 3, W, OW);
  const bool linear = c.node.get_string("mode", "nearest") == "linear";
  const int64_t planes = d[0] * d[1];
  for (int64_t p = 0; p < planes; ++p) {
    const float* src = x.data + p * H * W;
    float* dst = c.out + p * OH * OW;
    for (int64_t oy = 0; oy < OH; ++oy) {
      const float* r0 = src + ry.i0[oy] * W;
      const float* r1 = src + ry.i1[oy] * W;
      float* out = dst + oy * OW;
      if (!linear) {
        for (int64_t ox = 0; ox < OW; ++ox) out[ox] = r0[rx.i0[ox]];
        continue;
      }
      const float wy0 = ry.w0[oy], wy1 = ry.w1[oy];
      for (int64_t ox = 0; ox < OW; ++ox) {
        const int64_t a = rx.i0[ox], b = rx.i1[ox];
        const float wx0 = rx.w0[ox], wx1 = rx.w1[ox];
        out[ox] = wx0 * wy0 * r0[a] + wx1 * wy0 * r0[b] + wx0 * wy1 * r1[a] + wx1 * wy1 * r1[b];
      }
    }
  }
}

}  // namespace

const std::map<std::string, PlainKernel>& plain_kernels() {
  static const std::map<std::string, PlainKernel> t = {
      {"Flatten", copy},     {"Reshape", copy},         {"Squeeze", copy},
      {"Unsqueeze", copy},   {"Identity", copy},        {"Dropout", copy},
      {"Transpose", transpose}, {"Concat", concat},     {"Softmax", softmax},
      {"Pad", pad},          {"ReduceMean", reduce}, {"Gather", gather},
      {"MatMul", matmul},    {"ReduceSum", reduce},     {"ReduceMax", reduce},
      {"ReduceMin", reduce}, {"Erf", unary},            {"Log", unary},
      {"Reciprocal", unary}, {"Pow", binary},           {"PRelu", binary},
      {"Mean", mean},        {"Where", where},          {"Expand", expand},
      {"Tile", tile},        {"Slice", strided},        {"Split", strided},
      {"LayerNormalization", layer_norm}, {"Resize", resize}, {"Upsample", resize},
  };
  return t;
}

}  // namespace haq::engine::detail
