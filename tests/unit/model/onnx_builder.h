#pragma once
// Builds tiny ONNX models in memory for the importer's tests (in the spirit
// of ONNX Runtime's ModelTestBuilder). Only tests include ONNX headers
// outside lib/model, to create inputs for it.

#include <cstdint>
#include <string>
#include <vector>

#include <onnx/onnx_pb.h>

#include "haq/model/graph.h"

namespace haq::test {

class ModelBuilder {
 public:
  explicit ModelBuilder(int64_t opset = 13) {
    model_.set_ir_version(8);
    model_.set_producer_name("haq-test");
    auto* op = model_.add_opset_import();
    op->set_domain("");
    op->set_version(opset);
  }
  onnx::ModelProto& model() { return model_; }
  const onnx::ModelProto& model() const { return model_; }
  onnx::GraphProto& graph() { return *model_.mutable_graph(); }

  /// A float input; a dim of -1 becomes the symbolic batch "N".
  void input(const std::string& name, const std::vector<int64_t>& dims,
             int elem = onnx::TensorProto::FLOAT) {
    auto* vi = graph().add_input();
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* shape = tt->mutable_shape();
    for (auto d : dims) {
      if (d < 0) shape->add_dim()->set_dim_param("N");
      else shape->add_dim()->set_dim_value(d);
    }
  }
  void output(const std::string& name) {
    auto* vi = graph().add_output();
    vi->set_name(name);
    vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  }
  onnx::TensorProto& init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v) {
    auto* t = graph().add_initializer();
    fill(*t, name, dims, v);
    return *t;
  }
  onnx::TensorProto& init_i64(const std::string& name, const std::vector<int64_t>& dims,
                              const std::vector<int64_t>& v) {
    auto* t = graph().add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (auto d : dims) t->add_dims(d);
    for (auto x : v) t->add_int64_data(x);
    return *t;
  }
  /// Initializer with deterministic pseudo-random values in [-1, 1].
  onnx::TensorProto& init_random(const std::string& name, const std::vector<int64_t>& dims, uint32_t seed) {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    uint32_t x = seed * 2654435761u + 1;
    for (auto& f : v) {
      x = x * 1664525u + 1013904223u;
      f = static_cast<float>((x >> 8) & 0xffff) / 32768.f - 1.f;
    }
    return init(name, dims, v);
  }
  onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs, const std::string& name = "") {
    auto* n = graph().add_node();
    n->set_op_type(op);
    n->set_name(name.empty() ? op + "_" + std::to_string(graph().node_size()) : name);
    for (auto& i : inputs) n->add_input(i);
    for (auto& o : outputs) n->add_output(o);
    return *n;
  }
  std::string bytes() const { return model_.SerializeAsString(); }
  haq::model::Graph import(int64_t batch = 1, bool fold_bn = true) const {
    haq::model::ImportOptions o;
    o.batch = batch;
    o.fold_batchnorm = fold_bn;
    return haq::model::import_onnx_bytes(bytes(), "test.onnx", o);
  }

  static void fill(onnx::TensorProto& t, const std::string& name, const std::vector<int64_t>& dims,
                   const std::vector<float>& v) {
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (auto d : dims) t.add_dims(d);
    for (auto x : v) t.add_float_data(x);
  }

 private:
  onnx::ModelProto model_;
};

inline void set_int(onnx::NodeProto& n, const std::string& k, int64_t v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
}
inline void set_float(onnx::NodeProto& n, const std::string& k, float v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
}
inline void set_ints(onnx::NodeProto& n, const std::string& k, const std::vector<int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
}
inline void set_string(onnx::NodeProto& n, const std::string& k, const std::string& v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
}
inline void set_tensor_i64(onnx::NodeProto& n, const std::string& k, const std::vector<int64_t>& dims,
                           const std::vector<int64_t>& v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::TENSOR);
  auto* t = a->mutable_t();
  t->set_data_type(onnx::TensorProto::INT64);
  for (auto d : dims) t->add_dims(d);
  for (auto x : v) t->add_int64_data(x);
}
inline void set_tensor_f32(onnx::NodeProto& n, const std::string& k, const std::vector<int64_t>& dims,
                           const std::vector<float>& v) {
  auto* a = n.add_attribute();
  a->set_name(k);
  a->set_type(onnx::AttributeProto::TENSOR);
  ModelBuilder::fill(*a->mutable_t(), "", dims, v);
}

/// Number of nodes of an op type in an imported graph.
inline int count_op(const haq::model::Graph& g, const std::string& op) {
  int n = 0;
  for (const auto& node : g.nodes) n += node.op == op;
  return n;
}

}  // namespace haq::test
