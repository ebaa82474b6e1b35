// QDQ ONNX writer (docs/export.md). Rewrites the source ModelProto in place:
// each quantized layer node reads a Q/DQ(/Clip) copy of its activation and
// DequantizeLinear of int8 weight levels; nodes folded into the layer (e.g.
// BatchNormalization) become dead and are dropped.
#include "haq/model/onnx_export.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include "haq/core/error.h"
#include "haq/core/files.h"

namespace haq::model {
namespace {

onnx::TensorProto float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<float>& v) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float)));
  return t;
}

onnx::TensorProto int8_tensor(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<int8_t>& v, bool is_unsigned) {
  onnx::TensorProto t;
  t.set_name(name);
  t.set_data_type(is_unsigned ? onnx::TensorProto::UINT8 : onnx::TensorProto::INT8);
  for (int64_t d : dims) t.add_dims(d);
  t.set_raw_data(std::string(reinterpret_cast<const char*>(v.data()), v.size()));
  return t;
}

onnx::NodeProto make_node(const std::string& op, const std::string& name, std::vector<std::string> in,
                          std::vector<std::string> out) {
  onnx::NodeProto n;
  n.set_op_type(op);
  n.set_name(name);
  for (auto& s : in) n.add_input(s);
  for (auto& s : out) n.add_output(s);
  return n;
}

void set_int_attr(onnx::NodeProto& n, const std::string& name, int64_t v) {
  for (auto& a : *n.mutable_attribute())
    if (a.name() == name) {
      a.set_type(onnx::AttributeProto::INT);
      a.set_i(v);
      return;
    }
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}

void set_float_attr(onnx::NodeProto& n, const std::string& name, float v) {
  for (auto& a : *n.mutable_attribute())
    if (a.name() == name) {
      a.set_type(onnx::AttributeProto::FLOAT);
      a.set_f(v);
      return;
    }
  auto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}

int64_t int_attr(const onnx::NodeProto& n, const std::string& name, int64_t dflt) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return a.i();
  return dflt;
}

// Ops whose semantics do not change between opset 7 and 13 for the forms haq
// imports: raising the opset of a model using only these is safe.
const std::set<std::string>& opset_stable_ops() {
  static const std::set<std::string> ops = {
      "Conv", "Gemm", "MatMul", "Relu", "Add", "Mul", "Sub", "Flatten", "GlobalAveragePool",
      "AveragePool", "MaxPool", "BatchNormalization", "Reshape", "Concat", "Sigmoid", "Transpose",
      "Identity", "LeakyRelu", "Tanh"};
  return ops;
}

}  // namespace

void write_qdq_onnx(const std::string& src, const QdqSpec& spec, const std::string& out_path) {
  check_input_file(src, kMaxModelFileBytes, "an ONNX model");
  std::ifstream in(src, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, src, "", "cannot open the file");
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in))
    throw Error(ErrorKind::model, src, "", "not a valid ONNX model (protobuf parse failed)");
  onnx::GraphProto& g = *model.mutable_graph();

  // Opset: per-axis DequantizeLinear needs 13.
  onnx::OperatorSetIdProto* def = nullptr;
  for (auto& o : *model.mutable_opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") def = &o;
  if (!def) throw Error(ErrorKind::model, src, "opset_import", "no default-domain opset");
  if (def->version() < 7)  // opset 6's broadcast/is_test attributes are not valid at 13
    fail(ErrorKind::unsupported, src, "opset_import",
         "the model has opset {}; QDQ export needs opset 7 or later (re-export the model at opset 13)",
         def->version());
  if (def->version() < 13) {
    for (const auto& n : g.node())
      if (!opset_stable_ops().count(n.op_type()))
        fail(ErrorKind::unsupported, src, fmt::format("node '{}'", n.name()),
                    "the model has opset {} and uses {}, whose form changed by opset 13; per-channel "
                    "QDQ needs opset 13: re-export the model at opset 13",
                    def->version(), n.op_type());
    def->set_version(13);
  }

  // Layer name -> node index, with the importer's naming of unnamed nodes.
  std::map<std::string, int> by_name;
  for (int i = 0; i < g.node_size(); ++i) {
    const auto& n = g.node(i);
    by_name[n.name().empty() ? fmt::format("{}_{}", n.op_type(), i) : n.name()] = i;
  }
  std::map<int, std::vector<onnx::NodeProto>> before;  // nodes inserted before node i
  std::map<int, std::vector<onnx::NodeProto>> after;   // and after it
  std::set<std::string> produced_by_layer;
  std::set<int> layer_nodes;
  for (size_t k = 0; k < spec.layers.size(); ++k) {
    const QdqLayer& l = spec.layers[k];
    auto it = by_name.find(l.name);
    if (it == by_name.end())
      throw Error(ErrorKind::unsupported, src, fmt::format("layer '{}'", l.name), "no node of that name");
    onnx::NodeProto& n = *g.mutable_node(it->second);
    const std::string& op = n.op_type();
    if (op != "Conv" && op != "Gemm" && op != "MatMul")
      fail(ErrorKind::unsupported, src, fmt::format("layer '{}'", l.name),
                  "export rewrites Conv, Gemm and MatMul layers; {} is not supported yet (keep it fp32 in the policy)", op);
    if (op == "Gemm" && int_attr(n, "transA", 0) != 0)
      throw Error(ErrorKind::unsupported, src, fmt::format("layer '{}'", l.name), "Gemm with transA=1");
    const std::string p = fmt::format("haq_q{}_", k);
    const int64_t c_out = l.weight_shape.empty() ? 0 : l.weight_shape[0];
    std::vector<onnx::NodeProto>& pre = before[it->second];
    // An activation: Q -> DQ -> Clip to the b-bit range (QuantizeLinear
    // saturates only to the container's range).
    auto fake_quant = [&](const std::string& x, const std::string& tag, float scale, bool is_unsigned, int32_t lo,
                          int32_t hi) {
      const std::string q = p + tag;
      g.add_initializer()->CopyFrom(float_tensor(q + "_scale", {}, {scale}));
      // Levels lo..hi as codes: int8 with zero point 0 when they fit it,
      // else (8-bit asymmetric levels [-z, 255-z]) uint8 with zero point z.
      const bool shifted = !is_unsigned && (lo < -128 || hi > 127);
      const int32_t zero = shifted ? -lo : 0;
      g.add_initializer()->CopyFrom(
          int8_tensor(q + "_zero", {}, {static_cast<int8_t>(static_cast<uint8_t>(zero))}, is_unsigned || shifted));
      g.add_initializer()->CopyFrom(float_tensor(q + "_min", {}, {static_cast<float>(lo) * scale}));
      g.add_initializer()->CopyFrom(float_tensor(q + "_max", {}, {static_cast<float>(hi) * scale}));
      pre.push_back(make_node("QuantizeLinear", q + "_Q", {x, q + "_scale", q + "_zero"}, {q + "_q"}));
      pre.push_back(make_node("DequantizeLinear", q + "_DQ", {q + "_q", q + "_scale", q + "_zero"}, {q + "_dq"}));
      pre.push_back(make_node("Clip", q + "_Clip", {q + "_dq", q + "_min", q + "_max"}, {q}));
      return q;
    };
    const std::string x = fake_quant(l.input, "x", l.act_scale, l.act_unsigned, l.act_lo, l.act_hi);
    n.clear_input();
    n.add_input(x);
    if (l.act_matmul) {
      if (op != "MatMul")
        throw Error(ErrorKind::internal, src, fmt::format("layer '{}'", l.name), "an act_matmul layer that is not a MatMul");
      n.add_input(fake_quant(l.input_b, "y", l.b_scale, false, l.b_lo, l.b_hi));
    } else {
      // Weights: int8 levels, per-channel DequantizeLinear (axis 0 of the
      // canonical [c_out, ...]; a MatMul's [K, N] weight has them on axis 1).
      const bool matmul = op == "MatMul";
      std::vector<int64_t> wshape = l.weight_shape;
      std::vector<int8_t> levels = l.weight_levels;
      if (matmul) {
        const int64_t kk = l.weight_shape[1];
        wshape = {kk, c_out};
        for (int64_t o = 0; o < c_out; ++o)
          for (int64_t i = 0; i < kk; ++i) levels[static_cast<size_t>(i * c_out + o)] = l.weight_levels[static_cast<size_t>(o * kk + i)];
      }
      g.add_initializer()->CopyFrom(int8_tensor(p + "w_levels", wshape, levels, false));
      g.add_initializer()->CopyFrom(float_tensor(p + "w_scale", {c_out}, l.weight_scales));
      g.add_initializer()->CopyFrom(int8_tensor(p + "w_zero", {c_out}, std::vector<int8_t>(c_out, 0), false));
      g.add_initializer()->CopyFrom(float_tensor(p + "bias", {c_out}, l.bias));
      onnx::NodeProto wdq = make_node("DequantizeLinear", p + "w_DQ", {p + "w_levels", p + "w_scale", p + "w_zero"}, {p + "w"});
      set_int_attr(wdq, "axis", matmul ? 1 : 0);
      pre.push_back(wdq);
      // The layer itself: canonical weights, folded bias, the folded output
      // (a MatMul's bias is an Add after it).
      n.add_input(p + "w");
      if (matmul) {
        n.set_output(0, p + "mm");
        after[it->second].push_back(make_node("Add", p + "bias_Add", {p + "mm", p + "bias"}, {l.output}));
        produced_by_layer.insert(l.output);
        layer_nodes.insert(it->second);
        continue;
      }
      n.add_input(p + "bias");
    }
    if (op == "Gemm") {
      set_int_attr(n, "transB", 1);
      set_float_attr(n, "alpha", 1.f);
      set_float_attr(n, "beta", 1.f);
    }
    n.set_output(0, l.output);
    produced_by_layer.insert(l.output);
    layer_nodes.insert(it->second);
  }

  // New node list: inserted nodes first; drop other producers of a layer's
  // (folded) output, then dead nodes.
  std::vector<onnx::NodeProto> nodes;
  for (int i = 0; i < g.node_size(); ++i) {
    auto b = before.find(i);
    if (b != before.end()) nodes.insert(nodes.end(), b->second.begin(), b->second.end());
    const auto& n = g.node(i);
    bool replaced = false;
    if (!layer_nodes.count(i))
      for (const auto& o : n.output()) replaced = replaced || produced_by_layer.count(o) > 0;
    if (!replaced) nodes.push_back(n);
    auto a = after.find(i);
    if (a != after.end()) nodes.insert(nodes.end(), a->second.begin(), a->second.end());
  }
  std::set<std::string> graph_outputs;
  for (const auto& o : g.output()) graph_outputs.insert(o.name());
  for (bool changed = true; changed;) {
    changed = false;
    std::set<std::string> used(graph_outputs);
    for (const auto& n : nodes)
      for (const auto& s : n.input()) used.insert(s);
    for (size_t i = 0; i < nodes.size(); ++i) {
      bool live = false;
      for (const auto& o : nodes[i].output()) live = live || used.count(o) > 0;
      if (!live) {
        nodes.erase(nodes.begin() + static_cast<std::ptrdiff_t>(i));
        changed = true;
        break;
      }
    }
  }
  g.clear_node();
  for (auto& n : nodes) g.add_node()->CopyFrom(n);
  // Drop initializers (and their graph-input entries) nothing reads now.
  std::set<std::string> used;
  for (const auto& n : g.node())
    for (const auto& s : n.input()) used.insert(s);
  google::protobuf::RepeatedPtrField<onnx::TensorProto> inits;
  std::set<std::string> dropped;
  for (const auto& t : g.initializer()) {
    if (used.count(t.name()))
      *inits.Add() = t;
    else
      dropped.insert(t.name());
  }
  g.mutable_initializer()->Swap(&inits);
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> inputs;
  for (const auto& v : g.input())
    if (!dropped.count(v.name())) *inputs.Add() = v;
  g.mutable_input()->Swap(&inputs);
  g.clear_value_info();  // stale for the removed values; runtimes re-infer shapes
  model.set_producer_name("haq export");
  if (!spec.doc.empty()) model.set_doc_string(spec.doc);

  std::string bytes;
  if (!model.SerializeToString(&bytes))
    throw Error(ErrorKind::internal, out_path, "", "protobuf serialisation failed");
  write_file_atomic(out_path, bytes);
}

}  // namespace haq::model
