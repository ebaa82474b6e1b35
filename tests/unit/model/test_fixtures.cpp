// Committed fixtures (scripts/make_model_fixtures.py) and the reference models
// in models/ (scripts/train_reference_models.py, see models/README.md).
#include <catch2/catch.hpp>

#include "onnx_builder.h"
#include "test_paths.h"

using haq::model::Graph;
using haq::model::import_onnx;
using haq::model::ImportOptions;
using haq::model::LayerKind;
using haq::test::count_op;
using haq::test::source_path;

namespace {
Graph load(const std::string& rel, int64_t batch = 1) {
  ImportOptions o;
  o.batch = batch;
  return import_onnx(source_path(rel), o);
}
int64_t total_macs(const Graph& g) {
  int64_t m = 0;
  for (const auto& L : g.layers) m += L.macs;
  return m;
}
int64_t total_params(const Graph& g) {
  int64_t p = 0;
  for (const auto& L : g.layers) p += L.params;
  return p;
}
}  // namespace

TEST_CASE("PyTorch export with a dynamic batch: chain folded, BN folded, shapes at batch 1 and 7") {
  for (int64_t batch : {1, 7}) {
    DYNAMIC_SECTION("batch " << batch) {
      Graph g = load("tests/data/model/dynamic_convnet.onnx", batch);
      CHECK(g.dynamic_batch);
      CHECK(g.batch == batch);
      CHECK(g.producer_name == "pytorch");
      CHECK(g.inputs[0].shape == std::vector<int64_t>{batch, 1, 12, 12});
      CHECK(g.outputs[0].shape == std::vector<int64_t>{batch, 10});
      // what the file had, and what is left
      CHECK(g.original_op_counts.at("Shape") == 1);
      CHECK(g.original_op_counts.at("BatchNormalization") == 2);
      for (const char* op : {"Shape", "Gather", "Unsqueeze", "Concat", "Constant", "Cast", "BatchNormalization"})
        CHECK(count_op(g, op) == 0);
      REQUIRE(count_op(g, "Reshape") == 1);
      for (const auto& n : g.nodes)
        if (n.op == "Reshape") {
          CHECK(g.constants.at(n.inputs[1]).i64 == std::vector<int64_t>{batch, -1});
          CHECK(g.shape(n.outputs[0]) == std::vector<int64_t>{batch, 144});
        }
      REQUIRE(g.layers.size() == 4);
      // closed forms: out_h*out_w*c_out*(c_in/groups)*kh*kw, and c_in*c_out for fc
      CHECK(g.layers[0].macs == 12 * 12 * 8 * 1 * 3 * 3);
      CHECK(g.layers[1].depthwise);
      CHECK(g.layers[1].output_shape == std::vector<int64_t>{batch, 8, 6, 6});
      CHECK(g.layers[1].macs == 6 * 6 * 8 * 1 * 3 * 3);
      CHECK(g.layers[2].macs == 6 * 6 * 16 * 8);
      CHECK(g.layers[3].kind == LayerKind::gemm);
      CHECK(g.layers[3].input_shape == std::vector<int64_t>{batch, 144});
      CHECK(g.layers[3].macs == 144 * 10);
      CHECK(total_macs(g) == 19008);
      // BN-folded convs (no bias in the file) got a real bias
      CHECK(g.constants.at(g.layers[0].bias).f32 != std::vector<float>(8, 0.f));
    }
  }
}

TEST_CASE("a model stored in reverse node order imports sorted, at batch 1 and 7") {
  for (int64_t batch : {1, 7}) {
    Graph g = load("tests/data/model/unsorted.onnx", batch);
    REQUIRE(g.nodes.size() == 4);
    CHECK(g.nodes[0].name == "conv");
    CHECK(g.nodes[1].name == "relu");
    CHECK(g.nodes[2].name == "flatten");
    CHECK(g.nodes[3].name == "fc");
    CHECK(g.shape("c") == std::vector<int64_t>{batch, 4, 3, 3});
    CHECK(g.outputs[0].shape == std::vector<int64_t>{batch, 3});
    REQUIRE(g.layers.size() == 2);
    CHECK(g.layers[0].macs == 3 * 3 * 4 * 2 * 9);
    CHECK(g.layers[1].macs == 36 * 3);
  }
}

TEST_CASE("reference model fmnist-mlp: 3 Gemm layers, counts as in models/README.md") {
  Graph g = load("models/fmnist-mlp.onnx", 4);
  REQUIRE(g.layers.size() == 3);
  for (const auto& L : g.layers) CHECK(L.kind == LayerKind::gemm);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{4, 10});
  CHECK(total_params(g) == 235146);
  CHECK(total_macs(g) == 784 * 256 + 256 * 128 + 128 * 10);  // 233,472
}
