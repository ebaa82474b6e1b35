// The importer on small graphs built in code: shapes, batch, topological order.
#include <catch2/catch.hpp>

#include "onnx_builder.h"

using haq::model::DType;
using haq::model::Graph;
using haq::test::ModelBuilder;

namespace {

/// x[N,3,8,8] -> Conv(4,3x3,pad1) -> Relu -> MaxPool(2) -> Flatten -> Gemm(64->10)
ModelBuilder small_convnet() {
  ModelBuilder b(13);
  b.input("x", {-1, 3, 8, 8});
  b.init_random("w", {4, 3, 3, 3}, 1);
  b.init_random("bias", {4}, 2);
  b.init_random("fc_w", {10, 64}, 3);
  b.init_random("fc_b", {10}, 4);
  auto& conv = b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv");
  haq::test::set_ints(conv, "pads", {1, 1, 1, 1});
  b.node("Relu", {"c"}, {"r"}, "relu");
  auto& pool = b.node("MaxPool", {"r"}, {"p"}, "pool");
  haq::test::set_ints(pool, "kernel_shape", {2, 2});
  haq::test::set_ints(pool, "strides", {2, 2});
  b.node("Flatten", {"p"}, {"f"}, "flatten");
  auto& fc = b.node("Gemm", {"f", "fc_w", "fc_b"}, {"y"}, "fc");
  haq::test::set_int(fc, "transB", 1);
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("a small conv net imports with static shapes and two layers") {
  Graph g = small_convnet().import();
  CHECK(g.opset == 13);
  CHECK(g.producer_name == "haq-test");
  CHECK(g.dynamic_batch);
  CHECK(g.batch == 1);
  REQUIRE(g.inputs.size() == 1);
  CHECK(g.inputs[0].shape == std::vector<int64_t>{1, 3, 8, 8});
  REQUIRE(g.outputs.size() == 1);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 10});
  CHECK(g.shape("c") == std::vector<int64_t>{1, 4, 8, 8});
  CHECK(g.shape("p") == std::vector<int64_t>{1, 4, 4, 4});
  CHECK(g.shape("f") == std::vector<int64_t>{1, 64});
  REQUIRE(g.layers.size() == 2);
  const auto& conv = g.layers[0];
  CHECK(conv.name == "conv");
  CHECK(conv.kind == haq::model::LayerKind::conv);
  CHECK(conv.c_in == 3);
  CHECK(conv.c_out == 4);
  CHECK(conv.pads == std::array<int64_t, 4>{1, 1, 1, 1});
  CHECK(conv.macs == 8 * 8 * 4 * 3 * 3 * 3);
  CHECK(conv.weight_params == 108);
  CHECK(conv.params == 112);
  const auto& fc = g.layers[1];
  CHECK(fc.kind == haq::model::LayerKind::gemm);
  CHECK(fc.c_in == 64);
  CHECK(fc.c_out == 10);
  CHECK(fc.rows == 1);
  CHECK(fc.macs == 640);
  CHECK(fc.params == 650);
  // every value has a shape and a dtype; layer nodes point back at layers
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) CHECK(g.shapes.count(in) == 1);
    CHECK(g.dtypes.at(n.outputs[0]) == DType::f32);
  }
  CHECK(g.nodes[conv.node].layer == 0);
  CHECK(g.nodes[fc.node].layer == 1);
  CHECK(g.nodes[fc.node].inputs == std::vector<std::string>{"f", fc.weight, fc.bias});
  CHECK(g.original_op_counts.at("Conv") == 1);
}

TEST_CASE("the symbolic batch dim is fixed to the requested batch") {
  Graph g = small_convnet().import(7);
  CHECK(g.batch == 7);
  CHECK(g.inputs[0].shape == std::vector<int64_t>{7, 3, 8, 8});
  CHECK(g.outputs[0].shape == std::vector<int64_t>{7, 10});
  // MACs are per sample, independent of the batch
  CHECK(g.layers[0].macs == 8 * 8 * 4 * 3 * 3 * 3);
  CHECK(g.layers[1].rows == 1);
  CHECK(g.layers[1].macs == 640);
}

TEST_CASE("a static batch is kept whatever the option says") {
  ModelBuilder b(13);
  b.input("x", {2, 5});
  b.node("Relu", {"x"}, {"y"});
  b.output("y");
  Graph g = b.import(7);
  CHECK_FALSE(g.dynamic_batch);
  CHECK(g.batch == 2);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{2, 5});
}

TEST_CASE("unsorted nodes are sorted topologically, stable by original order") {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.output("y");
  // file order: d, c, b, a ; data flow: a -> b -> c -> d, with e independent of b
  b.node("Relu", {"c"}, {"y"}, "d");
  b.node("Sigmoid", {"b"}, {"c"}, "c");
  b.node("Tanh", {"a"}, {"b"}, "b");
  b.node("Relu", {"x"}, {"a"}, "a");
  b.node("Relu", {"x"}, {"e"}, "e");
  b.graph().add_output()->set_name("e");
  Graph g = b.import();
  std::vector<std::string> order;
  for (const auto& n : g.nodes) order.push_back(n.name);
  // Kahn with the smallest original index first: a (3) and e (4) are ready; a first.
  CHECK(order == std::vector<std::string>{"a", "b", "c", "d", "e"});
}

TEST_CASE("nodes without names get '<op>_<index>' names, duplicates made unique") {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.node("Relu", {"x"}, {"a"}).clear_name();
  b.node("Relu", {"a"}, {"b"}, "same");
  b.node("Relu", {"b"}, {"y"}, "same");
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 3);
  CHECK(g.nodes[0].name == "Relu_0");
  CHECK(g.nodes[1].name == "same");
  CHECK(g.nodes[2].name == "same_1");
}
