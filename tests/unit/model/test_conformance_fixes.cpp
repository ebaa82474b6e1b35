// Import behaviours that ONNX's own node tests (tests/conformance,
// docs/conformance.md) found or needed: bound inputs, TensorProto files,
// Flatten's negative axis, Dropout in training mode, variadic Max/Min, empty
// dims and input-less graphs.
#include <fstream>

#include <catch2/catch.hpp>

#include "haq/core/error.h"
#include "haq/model/onnx_files.h"
#include "onnx_builder.h"
#include "test_paths.h"

using haq::Error;
using haq::ErrorKind;
using haq::model::DType;
using haq::model::Graph;
using haq::model::Tensor;
using haq::test::ModelBuilder;
using haq::test::set_int;
using Catch::Matchers::Contains;

namespace {

Graph import_with(const ModelBuilder& b, haq::model::ImportOptions o) {
  return haq::model::import_onnx_bytes(b.bytes(), "test.onnx", o);
}

Error error_of(const ModelBuilder& b, haq::model::ImportOptions o = {}) {
  try {
    import_with(b, o);
  } catch (const Error& e) {
    return e;
  }
  FAIL("no error thrown");
  return Error(ErrorKind::internal, "", "", "");
}

Tensor tensor(DType t, std::vector<int64_t> dims, std::vector<double> v) {
  Tensor x;
  x.dtype = t;
  x.dims = std::move(dims);
  for (double d : v) {
    if (t == DType::f32) x.f32.push_back(static_cast<float>(d));
    else x.i64.push_back(static_cast<int64_t>(d));
  }
  return x;
}

}  // namespace

TEST_CASE("bind_inputs turns graph inputs into constants that fold and feed layers") {
  ModelBuilder b(13);
  b.input("x", {2, 3});
  b.input("w", {4, 3});
  b.input("shape", {2}, onnx::TensorProto::INT64);
  auto& gemm = b.node("Gemm", {"x", "w"}, {"y"}, "fc");
  set_int(gemm, "transB", 1);
  b.node("Reshape", {"y", "shape"}, {"z"}, "reshape");
  b.output("z");
  haq::model::ImportOptions o;
  o.bind_inputs["w"] = tensor(DType::f32, {4, 3}, {1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1});
  o.bind_inputs["shape"] = tensor(DType::i64, {2}, {4, -1});
  Graph g = import_with(b, o);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].name == "x");
  REQUIRE(g.layers.size() == 1);
  CHECK(g.constants.at(g.layers[0].weight).f32 == std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1});
  CHECK(g.outputs[0].shape == std::vector<int64_t>{4, 2});

  haq::model::ImportOptions bad;
  bad.bind_inputs["nope"] = tensor(DType::f32, {1}, {0});
  const Error e = error_of(b, bad);
  CHECK(e.kind() == ErrorKind::usage);
  CHECK(e.where() == "input 'nope'");
  haq::model::ImportOptions wrong_shape;
  wrong_shape.bind_inputs["w"] = tensor(DType::f32, {3, 4}, std::vector<double>(12, 0.0));
  CHECK(error_of(b, wrong_shape).kind() == ErrorKind::model);
}

TEST_CASE("read_tensor_pb reads raw and typed TensorProto files, read_onnx_outline a model's ops and inputs") {
  const auto dir = haq::test::scratch_dir("tensor_pb");
  onnx::TensorProto t;
  ModelBuilder::fill(t, "a", {2, 2}, {1.5f, -2.f, 0.f, 4.f});
  { std::ofstream(dir / "typed.pb", std::ios::binary) << t.SerializeAsString(); }
  const Tensor typed = haq::model::read_tensor_pb((dir / "typed.pb").string());
  CHECK(typed.dims == std::vector<int64_t>{2, 2});
  CHECK(typed.f32 == std::vector<float>{1.5f, -2.f, 0.f, 4.f});

  onnx::TensorProto r;
  r.set_data_type(onnx::TensorProto::INT32);
  r.add_dims(3);
  const int32_t raw[3] = {7, -1, 300};
  r.set_raw_data(std::string(reinterpret_cast<const char*>(raw), sizeof raw));
  { std::ofstream(dir / "raw.pb", std::ios::binary) << r.SerializeAsString(); }
  const Tensor ints = haq::model::read_tensor_pb((dir / "raw.pb").string());
  CHECK(ints.dtype == DType::i32);
  CHECK(ints.i64 == std::vector<int64_t>{7, -1, 300});

  r.set_data_type(onnx::TensorProto::DOUBLE);
  { std::ofstream(dir / "double.pb", std::ios::binary) << r.SerializeAsString(); }
  try {
    haq::model::read_tensor_pb((dir / "double.pb").string());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::unsupported);
    CHECK_THAT(std::string(e.what()), Contains("DOUBLE"));
  }
  CHECK_THROWS_AS(haq::model::read_tensor_pb((dir / "missing.pb").string()), Error);

  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.input("k", {1, 4});
  b.init("c", {1, 4}, {1, 2, 3, 4});
  b.node("Add", {"x", "c"}, {"a"});
  b.node("Mul", {"a", "k"}, {"y"});
  b.output("y");
  { std::ofstream(dir / "m.onnx", std::ios::binary) << b.bytes(); }
  const auto outline = haq::model::read_onnx_outline((dir / "m.onnx").string());
  CHECK(outline.opset == 13);
  CHECK(outline.op_types == std::vector<std::string>{"Add", "Mul"});
  CHECK(outline.inputs == std::vector<std::string>{"x", "k"});
  CHECK(outline.outputs == std::vector<std::string>{"y"});
}

TEST_CASE("Flatten's negative axis counts from the rank (axis -1 of rank 4 is 3)") {
  for (auto [axis, rows] : std::vector<std::pair<int64_t, int64_t>>{{-1, 24}, {-2, 6}, {-4, 1}, {4, 120}}) {
    ModelBuilder b(13);
    b.input("x", {2, 3, 4, 5});
    set_int(b.node("Flatten", {"x"}, {"y"}, "flat"), "axis", axis);
    b.output("y");
    Graph g = b.import();
    CHECK(g.outputs[0].shape == std::vector<int64_t>{rows, 120 / rows});
    CHECK(g.nodes[0].get_int("axis", -9) == (axis < 0 ? axis + 4 : axis));
  }
  ModelBuilder b(13);
  b.input("x", {2, 3});
  set_int(b.node("Flatten", {"x"}, {"y"}, "flat"), "axis", -3);
  b.output("y");
  CHECK(error_of(b).kind() == ErrorKind::model);
}

TEST_CASE("Dropout in training mode is refused unless its ratio is 0") {
  auto model = [](float ratio, bool training) {
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init("ratio", {}, {ratio});
    auto& mode = *b.graph().add_initializer();
    mode.set_name("mode");
    mode.set_data_type(onnx::TensorProto::BOOL);
    mode.add_int32_data(training ? 1 : 0);
    b.node("Dropout", {"x", "ratio", "mode"}, {"y"}, "drop");
    b.output("y");
    return b;
  };
  const Error e = error_of(model(0.5f, true));
  CHECK(e.kind() == ErrorKind::unsupported);
  CHECK(e.where() == "node 'drop' (Dropout)");
  CHECK_THAT(e.message(), Contains("training mode"));
  CHECK(model(0.f, true).import().nodes.size() == 1);  // the Identity kept for the graph output
  CHECK(model(0.5f, false).import().nodes.size() == 1);
}

TEST_CASE("Max and Min of several inputs become two-input chains, of one input an identity") {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.init("c1", {4}, {0, 1, 2, 3});
  b.init("c2", {1}, {1.5f});
  b.node("Max", {"x", "c1", "c2"}, {"m"}, "max3");
  b.node("Min", {"m"}, {"y"}, "min1");
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 2);  // the one-input Min is gone: the last Max writes y
  CHECK(g.nodes[0].op == "Max");
  CHECK(g.nodes[0].inputs == std::vector<std::string>{"x", "c1"});
  CHECK(g.nodes[1].op == "Max");
  CHECK(g.nodes[1].inputs == std::vector<std::string>{g.nodes[0].outputs[0], "c2"});
  CHECK(g.nodes[1].outputs[0] == "y");
  CHECK(g.original_op_counts.at("Max") == 1);
  CHECK(g.original_op_counts.at("Min") == 1);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 4});
}

TEST_CASE("an empty input dim and a graph without inputs are unsupported, not malformed") {
  ModelBuilder b(13);
  b.input("x", {1, 0});
  b.node("Relu", {"x"}, {"y"}, "relu");
  b.output("y");
  const Error e = error_of(b);
  CHECK(e.kind() == ErrorKind::unsupported);
  CHECK(e.where() == "input 'x'");

  ModelBuilder c(13);
  c.init("k", {2}, {1, 2});
  c.node("Relu", {"k"}, {"y"}, "relu");
  c.output("y");
  CHECK(error_of(c).kind() == ErrorKind::unsupported);
}

TEST_CASE("opset 6: broadcast/axis become numpy broadcasting, is_test = 0 is refused") {
  ModelBuilder b(6);
  b.input("x", {2, 3, 4});
  b.init("c", {3}, {1, 2, 3});
  auto& add = b.node("Add", {"x", "c"}, {"y"}, "add");
  set_int(add, "broadcast", 1);
  set_int(add, "axis", 1);
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 1);
  CHECK_FALSE(g.nodes[0].has("broadcast"));
  CHECK_FALSE(g.nodes[0].has("axis"));
  CHECK(g.constants.at(g.nodes[0].inputs[1]).dims == std::vector<int64_t>{3, 1});  // aligned at axis 1
  CHECK(g.outputs[0].shape == std::vector<int64_t>{2, 3, 4});

  ModelBuilder bn(6);
  bn.input("x", {1, 2, 2, 2});
  for (const char* p : {"s", "b", "m", "v"}) bn.init(p, {2}, {1, 1});
  bn.node("BatchNormalization", {"x", "s", "b", "m", "v"}, {"y"}, "bn");
  bn.output("y");
  const Error e = error_of(bn);
  CHECK(e.kind() == ErrorKind::unsupported);
  CHECK(e.where() == "node 'bn' (BatchNormalization)");
  CHECK_THAT(e.message(), Contains("is_test"));
  set_int(*bn.graph().mutable_node(0), "is_test", 1);
  CHECK(bn.import().nodes.size() == 1);
}
