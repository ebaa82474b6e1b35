// Third stage of the import: quantizable layers in canonical form (graph.h),
// BatchNormalization folding, removal of unused constants and the final
// consistency check that every value has a static shape and a dtype.

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include <fmt/format.h>

#include "op_rules.h"

namespace haq::model::detail {
namespace {

using Shape = std::vector<int64_t>;

const Tensor* find_constant(const Graph& g, const std::string& name) {
  auto it = g.constants.find(name);
  return it == g.constants.end() ? nullptr : &it->second;
}

std::string add_constant(ImportState& s, const std::string& base, Tensor t) {
  std::string name = fresh_name(s, base);
  s.g.shapes[name] = t.dims;
  s.g.dtypes[name] = t.dtype;
  s.g.constants[name] = std::move(t);
  return name;
}

const Tensor& float_weight(const ImportState& s, const Node& n, size_t i, const char* what) {
  const Tensor* t = i < n.inputs.size() ? find_constant(s.g, n.inputs[i]) : nullptr;
  if (!t) s.fail_at(ErrorKind::unsupported, where(n), fmt::format("the {} (input {}) must be a constant", what, i));
  if (!t->is_float())
    s.fail_at(ErrorKind::unsupported, where(n), fmt::format("the {} must be float32, it is {}", what, to_string(t->dtype)));
  return *t;
}

/// Bias constant of c_out floats: the node's own when it already has that
/// form, else a new constant (zeros when absent).
std::string bias_or_zeros(ImportState& s, const Node& n, size_t i, int64_t c_out) {
  if (i < n.inputs.size() && !n.inputs[i].empty()) {
    const Tensor& b = float_weight(s, n, i, "bias");
    if (b.dims != Shape{c_out})
      s.fail_at(ErrorKind::model, where(n), fmt::format("bias has shape {}, expected [{}]", dims_str(b.dims), c_out));
    return n.inputs[i];
  }
  return add_constant(s, n.name + ".bias", make_tensor(DType::f32, {c_out}));
}

/// Gemm into canonical form. May return a Transpose node to insert before it.
std::vector<Node> canonical_gemm(ImportState& s, Node& n, Layer& L) {
  Graph& g = s.g;
  std::vector<Node> before;
  const Tensor& B = float_weight(s, n, 1, "weight B");
  if (find_constant(g, n.inputs[0]))
    s.fail_at(ErrorKind::unsupported, where(n), "input A is a constant; haq expects the activation in A");
  if (n.get_int("transA", 0)) {
    Node t;
    t.name = fresh_name(s, n.name + ".transA");
    t.op = "Transpose";
    t.inputs = {n.inputs[0]};
    t.outputs = {fresh_name(s, n.name + ".transA")};
    t.attrs["perm"].kind = Attribute::Kind::ints;
    t.attrs["perm"].ints = {1, 0};
    const Shape& a = g.shapes.at(n.inputs[0]);
    g.shapes[t.outputs[0]] = {a[1], a[0]};
    g.dtypes[t.outputs[0]] = g.dtypes.at(n.inputs[0]);
    n.inputs[0] = t.outputs[0];
    before.push_back(std::move(t));
  }
  const bool transB = n.get_int("transB", 0) != 0;
  const float alpha = n.get_float("alpha", 1.f), beta = n.get_float("beta", 1.f);
  const int64_t c_out = transB ? B.dims[0] : B.dims[1];
  if (transB && alpha == 1.f) {
    L.weight = n.inputs[1];
  } else {
    Tensor W = transB ? B : transpose_tensor(B, {1, 0});
    for (auto& v : W.f32) v *= alpha;
    L.weight = add_constant(s, n.name + ".weight", std::move(W));
  }
  if (n.inputs.size() > 2 && !n.inputs[2].empty()) {
    const Tensor& C = float_weight(s, n, 2, "bias C");
    const Shape& d = C.dims;
    const int64_t numel = C.numel();
    const bool per_out = (numel == c_out && !d.empty() && d.back() == c_out) || numel == 1;
    if (!per_out)
      s.fail_at(ErrorKind::unsupported, where(n),
                fmt::format("C of shape {} is not a per-output bias of [{}]", dims_str(d), c_out));
    if (d == Shape{c_out} && beta == 1.f) {
      L.bias = n.inputs[2];
    } else {
      Tensor b = make_tensor(DType::f32, {c_out});
      for (int64_t j = 0; j < c_out; ++j) b.f32[j] = beta * C.f32[numel == 1 ? 0 : j];
      L.bias = add_constant(s, n.name + ".bias", std::move(b));
    }
  } else {
    L.bias = add_constant(s, n.name + ".bias", make_tensor(DType::f32, {c_out}));
  }
  n.attrs["transA"].i = 0;
  n.attrs["transB"].i = 1;
  n.attrs["alpha"].f = 1.f;
  n.attrs["beta"].f = 1.f;
  return before;
}

/// Geometry, parameter and MAC counts of a layer from its final shapes.
void fill_layer(const ImportState& s, Layer& L, const Node& n) {
  const Graph& g = s.g;
  L.name = n.name;
  L.input = n.inputs[0];
  L.output = n.outputs[0];
  L.input_shape = g.shapes.at(L.input);
  L.output_shape = g.shapes.at(L.output);
  if (L.kind == LayerKind::act_matmul) {
    L.input_b = n.inputs[1];
    const Shape& b = g.shapes.at(L.input_b);
    const size_t r = L.input_shape.size();
    L.rows = L.input_shape[r - 2];
    L.c_in = L.input_shape[r - 1];
    L.c_out = b[r - 1];
    L.mats = 1;
    for (size_t k = 1; k + 2 < r; ++k) L.mats *= L.input_shape[k];
    L.macs = L.mats * L.rows * L.c_in * L.c_out;
    L.weight_params = L.params = 0;
    return;
  }
  const Tensor& W = g.constants.at(L.weight);
  L.weight_params = W.numel();
  if (L.kind == LayerKind::conv) {
    L.c_in = L.input_shape[1];
    L.c_out = W.dims[0];
    L.groups = n.get_int("group", 1);
    L.kernel_h = W.dims[2];
    L.kernel_w = W.dims[3];
    auto st = n.get_ints("strides"), dil = n.get_ints("dilations"), pads = n.get_ints("pads");
    L.stride_h = st[0];
    L.stride_w = st[1];
    L.dilation_h = dil[0];
    L.dilation_w = dil[1];
    L.pads = {pads[0], pads[1], pads[2], pads[3]};
    L.in_h = L.input_shape[2];
    L.in_w = L.input_shape[3];
    L.out_h = L.output_shape[2];
    L.out_w = L.output_shape[3];
    L.rows = 1;
    L.depthwise = L.groups > 1 && L.groups == L.c_in && L.groups == L.c_out;
    L.macs = L.out_h * L.out_w * L.c_out * (L.c_in / L.groups) * L.kernel_h * L.kernel_w;
  } else {
    L.c_out = W.dims[0];
    L.c_in = W.dims[1];
    int64_t rows = 1;
    for (size_t k = 0; k + 1 < L.input_shape.size(); ++k) rows *= L.input_shape[k];
    // rows per sample: the leading dims include the batch
    L.rows = (g.batch > 0 && rows % g.batch == 0) ? rows / g.batch : rows;
    L.macs = L.rows * L.c_in * L.c_out;
  }
  L.params = L.weight_params + g.constants.at(L.bias).numel();
}

/// How many nodes (and graph outputs) read each value.
std::map<std::string, int> value_uses(const Graph& g) {
  std::map<std::string, int> uses;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs)
      if (!in.empty()) ++uses[in];
  for (const auto& o : g.outputs) ++uses[o.name];
  return uses;
}

/// A node folded into layer L (its only reader): the layer's node now writes
/// the folded node's output, and L's old output value is gone.
void take_over_output(Graph& g, Layer& L, Node& producer, const Node& folded) {
  g.shapes.erase(L.output);
  g.dtypes.erase(L.output);
  producer.outputs[0] = folded.outputs[0];
  L.output = folded.outputs[0];
}

/// Removes the nodes marked in `drop` (indices into g.nodes).
void drop_nodes(Graph& g, const std::vector<bool>& drop) {
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (!drop[i]) kept.push_back(std::move(g.nodes[i]));
  g.nodes = std::move(kept);
}

/// A MatMul of two float activations that runs as a quantizable act_matmul
/// layer: A [B, .., M, K] x B [B, .., K, N], the same leading dims (no
/// broadcasting), rank >= 3, the batch first.
bool act_matmul_form(const Graph& g, const Node& n) {
  if (n.inputs.size() != 2 || g.is_constant(n.inputs[0]) || g.is_constant(n.inputs[1])) return false;
  for (const auto& in : n.inputs) {
    auto d = g.dtypes.find(in);
    if (d == g.dtypes.end() || d->second != DType::f32) return false;
  }
  const Shape& a = g.shapes.at(n.inputs[0]);
  const Shape& b = g.shapes.at(n.inputs[1]);
  const size_t r = a.size();
  if (r < 3 || b.size() != r || a[0] != g.batch || a[r - 1] != b[r - 2]) return false;
  for (size_t k = 0; k + 2 < r; ++k)
    if (a[k] != b[k]) return false;
  return true;
}

/// Folds a constant per-output bias added after a MatMul or Gemm layer into
/// the layer's bias (Add(layer, b) or Add(b, layer); b of c_out values as
/// [c_out] or [1, .., 1, c_out], no more dims than the output), when the
/// Add is the layer output's only reader.
void fold_bias_adds(ImportState& s, std::vector<Layer>& layers) {
  Graph& g = s.g;
  std::map<std::string, int> uses = value_uses(g);
  std::map<std::string, size_t> node_of_output;
  for (size_t i = 0; i < g.nodes.size(); ++i) node_of_output[g.nodes[i].outputs[0]] = i;
  std::map<std::string, size_t> add_of_input;  // value -> the Add node reading it
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].op == "Add" && g.nodes[i].inputs.size() == 2)
      for (const auto& in : g.nodes[i].inputs) add_of_input[in] = i;
  std::vector<bool> drop(g.nodes.size(), false);
  for (Layer& L : layers) {
    if (L.kind != LayerKind::matmul && L.kind != LayerKind::gemm) continue;
    auto ai = add_of_input.find(L.output);
    if (ai == add_of_input.end() || uses[L.output] != 1 || drop[ai->second]) continue;
    const Node& add = g.nodes[ai->second];
    const std::string& other = add.inputs[0] == L.output ? add.inputs[1] : add.inputs[0];
    if (other == L.output) continue;
    const Tensor* c = find_constant(g, other);
    const Tensor& b0 = g.constants.at(L.bias);
    const int64_t c_out = b0.numel();
    const Shape& out = g.shapes.at(L.output);
    if (!c || !c->is_float() || c->numel() != c_out || c->dims.empty() || c->dims.back() != c_out ||
        c->dims.size() > out.size())
      continue;
    Tensor b = b0;
    for (int64_t j = 0; j < c_out; ++j) b.f32[j] += c->f32[j];
    Node& producer = g.nodes[node_of_output.at(L.output)];
    L.bias = add_constant(s, L.name + ".bias", std::move(b));
    producer.inputs[2] = L.bias;
    take_over_output(g, L, producer, add);
    drop[ai->second] = true;
  }
  drop_nodes(g, drop);
}

/// Folds BatchNormalization nodes into the layer that produces their input,
/// when that output has no other consumer. Leaves the graph unchanged
/// otherwise (the engine runs the BN).
void fold_batchnorms(ImportState& s, std::vector<Layer>& layers) {
  Graph& g = s.g;
  std::map<std::string, int> uses = value_uses(g);
  std::map<std::string, size_t> layer_of_output;  // value -> index into layers
  for (size_t i = 0; i < layers.size(); ++i) layer_of_output[layers[i].output] = i;
  std::map<std::string, size_t> node_of_output;
  for (size_t i = 0; i < g.nodes.size(); ++i) node_of_output[g.nodes[i].outputs[0]] = i;

  std::vector<bool> drop(g.nodes.size(), false);
  for (size_t bi = 0; bi < g.nodes.size(); ++bi) {
    Node& bn = g.nodes[bi];
    if (bn.op != "BatchNormalization") continue;
    auto li = layer_of_output.find(bn.inputs[0]);
    if (li == layer_of_output.end() || uses[bn.inputs[0]] != 1) continue;
    Layer& L = layers[li->second];
    if (L.kind == LayerKind::act_matmul) continue;
    const Shape& out_shape = g.shapes.at(L.output);
    if (L.kind != LayerKind::conv && out_shape.size() != 2) continue;  // BN's channel axis 1 must be c_out
    const Tensor* p[4];
    bool ok = bn.inputs.size() >= 5;
    const int64_t c_out = g.constants.at(L.weight).dims[0];
    for (int k = 0; ok && k < 4; ++k) {
      p[k] = find_constant(g, bn.inputs[k + 1]);
      ok = p[k] && p[k]->is_float() && p[k]->numel() == c_out;
    }
    if (!ok) continue;
    const float eps = bn.get_float("epsilon", 1e-5f);
    Tensor W = g.constants.at(L.weight);
    Tensor b = g.constants.at(L.bias);
    const int64_t per_out = W.numel() / c_out;
    for (int64_t c = 0; c < c_out; ++c) {
      const double scale = p[0]->f32[c] / std::sqrt(static_cast<double>(p[3]->f32[c]) + eps);
      for (int64_t j = 0; j < per_out; ++j) W.f32[c * per_out + j] = static_cast<float>(W.f32[c * per_out + j] * scale);
      b.f32[c] = static_cast<float>((b.f32[c] - p[2]->f32[c]) * scale + p[1]->f32[c]);
    }
    Node& producer = g.nodes[node_of_output.at(L.output)];
    L.weight = add_constant(s, L.name + ".weight", std::move(W));
    L.bias = add_constant(s, L.name + ".bias", std::move(b));
    producer.inputs.resize(3);
    producer.inputs[1] = L.weight;
    producer.inputs[2] = L.bias;
    take_over_output(g, L, producer, bn);
    drop[bi] = true;
  }
  drop_nodes(g, drop);
}

/// After Gemm's alpha/beta and BatchNormalization are folded into a layer,
/// its weights and bias must still be finite (a large scale can overflow).
void check_layer_params(const ImportState& s, const std::vector<Layer>& layers) {
  for (const Layer& L : layers)
    for (const std::string* name : {&L.weight, &L.bias}) {
      if (name->empty()) continue;  // act_matmul
      const Tensor& t = s.g.constants.at(*name);
      const int64_t k = first_non_finite(t.f32);
      if (k >= 0)
        s.fail_at(ErrorKind::model, fmt::format("node '{}'", L.name),
                  fmt::format("the layer's folded {} ('{}') holds {} at element {} (a folded scale "
                              "overflows float32)",
                              name == &L.weight ? "weight" : "bias", *name,
                              non_finite_name(t.f32[static_cast<size_t>(k)]), k));
    }
}

}  // namespace

void build_layers(ImportState& s, const ImportOptions& options) {
  Graph& g = s.g;
  std::vector<Node> nodes;
  std::vector<Layer> layers;
  nodes.reserve(g.nodes.size());
  for (Node& n : g.nodes) {
    Layer L;
    if (n.op == "Conv") {
      L.kind = LayerKind::conv;
      const Tensor& W = float_weight(s, n, 1, "weight");
      L.weight = n.inputs[1];
      L.bias = bias_or_zeros(s, n, 2, W.dims[0]);
    } else if (n.op == "Gemm") {
      L.kind = LayerKind::gemm;
      for (auto& t : canonical_gemm(s, n, L)) nodes.push_back(std::move(t));
    } else if (n.op == "MatMul") {
      const Tensor* B = find_constant(g, n.inputs[1]);
      if (!B && act_matmul_form(g, n)) {
        L.kind = LayerKind::act_matmul;
        L.name = n.name;
        L.output = n.outputs[0];
        layers.push_back(L);
        nodes.push_back(std::move(n));
        continue;
      }
      if (!B || B->dims.size() != 2 || !B->is_float() || find_constant(g, n.inputs[0])) {
        nodes.push_back(std::move(n));  // not a layer: the engine runs it in fp32
        continue;
      }
      L.kind = LayerKind::matmul;
      L.weight = add_constant(s, n.name + ".weight", transpose_tensor(*B, {1, 0}));
      L.bias = add_constant(s, n.name + ".bias", make_tensor(DType::f32, {B->dims[1]}));
    } else {
      nodes.push_back(std::move(n));
      continue;
    }
    n.inputs.resize(3);
    n.inputs[1] = L.weight;
    n.inputs[2] = L.bias;
    L.name = n.name;
    L.output = n.outputs[0];
    layers.push_back(L);
    nodes.push_back(std::move(n));
  }
  g.nodes = std::move(nodes);
  if (options.fold_batchnorm) fold_batchnorms(s, layers);
  fold_bias_adds(s, layers);
  check_layer_params(s, layers);

  // Indices and geometry.
  std::map<std::string, size_t> node_index;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    g.nodes[i].layer = -1;
    node_index[g.nodes[i].name] = i;
  }
  for (size_t li = 0; li < layers.size(); ++li) {
    Layer& L = layers[li];
    L.node = static_cast<int>(node_index.at(L.name));
    g.nodes[L.node].layer = static_cast<int>(li);
    fill_layer(s, L, g.nodes[L.node]);
  }
  g.layers = std::move(layers);

  // Drop constants nothing refers to (originals replaced by canonical forms).
  std::set<std::string> referenced;
  for (const auto& n : g.nodes) referenced.insert(n.inputs.begin(), n.inputs.end());
  for (const auto& o : g.outputs) referenced.insert(o.name);
  for (auto it = g.constants.begin(); it != g.constants.end();) {
    if (referenced.count(it->first)) {
      ++it;
    } else {
      it = g.constants.erase(it);
    }
  }

  // Final check, and shapes/dtypes only for values that exist.
  std::map<std::string, Shape> shapes;
  std::map<std::string, DType> dtypes;
  auto keep = [&](const std::string& v, const std::string& at) {
    auto si = g.shapes.find(v);
    auto di = g.dtypes.find(v);
    if (si == g.shapes.end() || di == g.dtypes.end())
      s.fail_at(ErrorKind::internal, at, fmt::format("value '{}' has no static shape or dtype after import", v));
    shapes[v] = si->second;
    dtypes[v] = di->second;
  };
  for (const auto& [name, t] : g.constants) keep(name, "constant");
  for (const auto& in : g.inputs) keep(in.name, "input");
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs)
      if (!in.empty() && !shapes.count(in))
        s.fail_at(ErrorKind::internal, where(n), fmt::format("input '{}' is not defined before the node", in));
    keep(n.outputs[0], where(n));
  }
  for (auto& o : g.outputs) {
    if (!shapes.count(o.name))
      s.fail_at(ErrorKind::model, fmt::format("output '{}'", o.name), "graph output is not produced");
    o.shape = shapes.at(o.name);
    o.dtype = dtypes.at(o.name);
  }
  g.shapes = std::move(shapes);
  g.dtypes = std::move(dtypes);
}

}  // namespace haq::model::detail
