// Second stage of the import: walk the sorted nodes once and apply each
// op's own rules (op_defs.cpp, in the order op_rules.h gives):
//  1. normalise: inputs that replaced attributes in newer opsets become
//     attributes again and defaults are written out, so the engine sees one
//     form for opsets 6..18 (documented in graph.h);
//  2. resolve: nodes removed at import (Identity, Dropout, Constant, Shape...);
//  3. the output's dtype and static shape, checked against ONNX's inference;
//  4. constant folding when every input is a constant;
//  5. checks on the nodes that stay (constants that would make NaN or inf).

#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "op_rules.h"

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

namespace {
// A double that is not in int64's range (nan, 1e30, 2^63) has no integer
// value: casting it is undefined behaviour (x86 gives -2^63).
int64_t double_to_int64(double v) {
  if (!(v >= -9223372036854775808.0 && v < 9223372036854775808.0))
    throw Error(ErrorKind::model, "", "", fmt::format("value {:g} does not fit a 64-bit integer", v));
  return static_cast<int64_t>(v);
}
}  // namespace

int64_t tensor_get_int(const Tensor& t, int64_t i) {
  return t.dtype == DType::f32 ? double_to_int64(static_cast<double>(t.f32[i])) : t.i64[i];
}

void tensor_set_int(Tensor& t, int64_t i, int64_t v) {
  switch (t.dtype) {
    case DType::f32: t.f32[i] = static_cast<float>(v); break;
    case DType::boolean: t.i64[i] = v != 0; break;
    case DType::u8: t.i64[i] = static_cast<uint8_t>(v); break;
    case DType::i8: t.i64[i] = static_cast<int8_t>(v); break;
    case DType::i32: t.i64[i] = static_cast<int32_t>(v); break;
    case DType::i64: t.i64[i] = v; break;
  }
}

void tensor_set(Tensor& t, int64_t i, double v) {
  switch (t.dtype) {
    case DType::f32: t.f32[i] = static_cast<float>(v); break;
    case DType::boolean: t.i64[i] = v != 0; break;
    default: tensor_set_int(t, i, double_to_int64(v)); break;
  }
}

void copy_element(Tensor& dst, int64_t o, const Tensor& src, int64_t i) {
  if (src.dtype == DType::f32) tensor_set(dst, o, static_cast<double>(src.f32[i]));
  else tensor_set_int(dst, o, src.i64[i]);
}

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

void process_nodes(ImportState& s) {
  Graph& g = s.g;
  std::map<std::string, std::string> alias;  // removed value -> the value that replaces it
  std::map<std::string, int> uses;
  for (const auto& n : g.nodes)
    for (const auto& in : n.inputs)
      if (!in.empty()) ++uses[in];
  for (const auto& o : g.outputs) ++uses[o.name];

  // One node per output for the ops that take that form (Split).
  {
    std::vector<Node> expanded;
    expanded.reserve(g.nodes.size());
    for (Node& node : g.nodes) {
      const OpEntry* entry = find_entry(node.op);
      if (!entry || !entry->rules.per_output || node.outputs.size() < 2) {
        expanded.push_back(std::move(node));
        continue;
      }
      const int64_t count = static_cast<int64_t>(node.outputs.size());
      for (int64_t k = 0; k < count; ++k) {
        if (node.outputs[k].empty()) {
          NodeCtx c{s, node, g.opset};
          c.bad(fmt::format("output {} has no name", k));
        }
        Node m = node;
        m.outputs = {node.outputs[k]};
        if (k > 0) m.name = fmt::format("{}.{}", node.name, k);
        m.attrs["output_index"].kind = Attribute::Kind::i;
        m.attrs["output_index"].i = k;
        m.attrs["output_count"].kind = Attribute::Kind::i;
        m.attrs["output_count"].i = count;
        expanded.push_back(std::move(m));
      }
    }
    g.nodes = std::move(expanded);
  }

  std::vector<Node> kept;
  kept.reserve(g.nodes.size());
  for (Node& node : g.nodes) {
    NodeCtx c{s, node, g.opset};
    const OpEntry* entry = find_entry(node.op);
    if (!entry) c.fail(ErrorKind::internal, "the op has no definition");  // the importer checked the list
    const OpRules& rules = entry->rules;
    for (auto& in : node.inputs)
      if (!in.empty() && alias.count(in)) in = alias.at(in);
    // Only the first output of multi-output ops is supported.
    for (size_t k = 1; k < node.outputs.size(); ++k)
      if (!node.outputs[k].empty() && uses[node.outputs[k]] > 0)
        c.unsupported(fmt::format("output {} ('{}') is used; haq supports only the first output of {}", k,
                                  node.outputs[k], node.op));
    if (node.outputs.empty() || node.outputs[0].empty()) c.bad("the node has no output");
    node.outputs.resize(1);
    const std::string& out = node.outputs[0];
    int64_t present = 0;
    for (size_t i = 0; i < node.inputs.size(); ++i) present += c.has_input(i);
    if (present < rules.min_inputs || (rules.min_inputs > 0 && !c.has_input(0))) c.bad("input 0 is missing");

    auto define = [&](Tensor t) {
      g.shapes[out] = t.dims;
      g.dtypes[out] = t.dtype;
      g.constants[out] = std::move(t);
    };
    if (rules.normalise) rules.normalise(c);
    if (rules.resolve) {
      Resolution r = rules.resolve(c);
      if (r.kind == Resolution::Kind::alias) {
        alias[out] = r.value;
        continue;
      }
      if (r.kind == Resolution::Kind::constant) {
        define(std::move(r.tensor));
        continue;
      }
    }
    if (!rules.shape) c.fail(ErrorKind::internal, "no shape rule for this op");
    const DType dtype = rules.dtype ? rules.dtype(c) : c.dtype(0);
    const Shape shape = rules.shape(c);
    for (auto d : shape)
      if (d <= 0) c.bad(fmt::format("output '{}' would have shape {}; dims must be positive", out, dims_str(shape)));
    checked_numel(s, where(node), shape);
    auto onnx_shape = s.onnx_shapes.find(out);
    if (onnx_shape != s.onnx_shapes.end() && onnx_shape->second != shape)
      c.fail(ErrorKind::internal, fmt::format("haq computes shape {} for '{}' but ONNX shape inference gives {}",
                                              dims_str(shape), out, dims_str(onnx_shape->second)));
    bool all_constant = static_cast<bool>(rules.fold);
    for (size_t i = 0; all_constant && i < node.inputs.size(); ++i)
      if (c.has_input(i) && !c.constant(i)) all_constant = false;
    if (all_constant) {
      Tensor folded = make_tensor(dtype, shape);
      try {
        rules.fold(c, folded);
      } catch (const Error& e) {
        if (!e.file().empty() || !e.where().empty()) throw;
        c.bad(e.message());  // from the element helpers: give it the node
      }
      define(std::move(folded));
      continue;
    }
    if (rules.check) rules.check(c);
    g.shapes[out] = shape;
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
