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

TEST_CASE("reference model fmnist-mobilenet: MACs equal a hand count of its architecture") {
  // Architecture from models/README.md / scripts/train_reference_models.py:
  // 3x3 stem conv 1->32 (stride 1, pad 1) on 28x28, then depthwise-separable
  // blocks (dw 3x3 with the block's stride, pad 1; then pw 1x1), GAP, Linear 128->10.
  struct Block {
    int64_t c_in, c_out, stride;
  };
  const std::vector<Block> blocks = {{32, 64, 2}, {64, 96, 1}, {96, 128, 2},
                                     {128, 128, 1}, {128, 128, 1}, {128, 128, 1}};
  std::vector<int64_t> macs = {28 * 28 * 32 * 1 * 3 * 3};  // stem
  std::vector<int64_t> params = {32 * 1 * 3 * 3 + 32};      // BN folded: every conv gets a bias
  int64_t hw = 28;
  for (const auto& b : blocks) {
    hw /= b.stride;
    macs.push_back(hw * hw * b.c_in * 1 * 3 * 3);  // depthwise: c_in/groups = 1
    params.push_back(b.c_in * 9 + b.c_in);
    macs.push_back(hw * hw * b.c_out * b.c_in);    // pointwise 1x1
    params.push_back(b.c_out * b.c_in + b.c_out);
  }
  macs.push_back(128 * 10);
  params.push_back(128 * 10 + 10);

  Graph g = load("models/fmnist-mobilenet.onnx");
  REQUIRE(g.layers.size() == 14);
  CHECK(g.layers.size() >= 12);
  int64_t expected_total = 0;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    INFO("layer " << i << " " << g.layers[i].name);
    CHECK(g.layers[i].macs == macs[i]);
    CHECK(g.layers[i].params == params[i]);
    CHECK(g.layers[i].depthwise == (i % 2 == 1 && i < 13));
    expected_total += macs[i];
  }
  CHECK(total_macs(g) == expected_total);
  CHECK(total_macs(g) == 5224288);  // as models/README.md states
  CHECK(count_op(g, "BatchNormalization") == 0);
  CHECK(g.original_op_counts.at("BatchNormalization") == 13);
  // batch 7 changes shapes, not per-sample counts
  Graph g7 = load("models/fmnist-mobilenet.onnx", 7);
  CHECK(g7.outputs[0].shape == std::vector<int64_t>{7, 10});
  CHECK(total_macs(g7) == 5224288);
}

TEST_CASE("reference model fmnist-resnet: 16 layers, residual Adds kept, BN folded") {
  // Architecture from models/README.md: stem 3x3 1->16, three stages of two
  // basic blocks (16/32/64 channels at 28/14/7), 1x1 stride-2 projections on
  // the first block of stages 2 and 3, GAP, Linear 64->10.
  Graph g = load("models/fmnist-resnet.onnx");
  REQUIRE(g.layers.size() == 16);
  CHECK(g.layers.size() >= 14);
  CHECK(count_op(g, "Add") == 6);
  CHECK(count_op(g, "BatchNormalization") == 0);
  CHECK(g.original_op_counts.at("BatchNormalization") == 15);
  // Closed form of the MACs: stem + stage 1 (4 convs 16->16 at 28x28)
  // + stage 2 (16->32 s2, 3x 32->32, proj 16->32, at 14x14)
  // + stage 3 (32->64 s2, 3x 64->64, proj 32->64, at 7x7) + fc.
  int64_t stem = 28 * 28 * 16 * 1 * 9;
  int64_t stage1 = 4 * (28 * 28 * 16 * 16 * 9);
  int64_t stage2 = 14 * 14 * 32 * 16 * 9 + 3 * (14 * 14 * 32 * 32 * 9) + 14 * 14 * 32 * 16;
  int64_t stage3 = 7 * 7 * 64 * 32 * 9 + 3 * (7 * 7 * 64 * 64 * 9) + 7 * 7 * 64 * 32;
  int64_t fc = 64 * 10;
  CHECK(total_macs(g) == stem + stage1 + stage2 + stage3 + fc);
  CHECK(total_macs(g) == 20183936);  // as models/README.md states
}

// scripts/make_op_fixtures.py: PyTorch's shape arithmetic (x.shape -> Shape,
// Gather, Div, Cast, Mul, Concat -> Reshape; cls.expand(B, ...) -> Expand of a
// Where/Equal-computed shape) folds to constants at the fixed batch.
TEST_CASE("ViT exports (opsets 17 and 13): shape arithmetic folds for a fixed batch, layers and kernels left") {
  for (const char* file : {"tests/data/model/vit_tiny_op17.onnx", "tests/data/model/vit_tiny_op13.onnx"}) {
    for (int64_t batch : {1, 5}) {
      DYNAMIC_SECTION(file << " batch " << batch) {
        Graph g = load(file, batch);
        CHECK(g.dynamic_batch);
        CHECK(g.outputs[0].shape == std::vector<int64_t>{batch, 10});
        CHECK(g.original_op_counts.at("Shape") == 9);
        CHECK(g.original_op_counts.at("Where") == 1);
        for (const char* op : {"Shape", "Unsqueeze", "Cast", "Equal", "Where", "ConstantOfShape", "Constant",
                               "Slice", "Expand"})
          CHECK(count_op(g, op) == 0);
        // qkv.reshape(B, N, 3, heads, C / heads), and back to (B, N, C), per block
        int heads = 0, back = 0;
        for (const auto& n : g.nodes)
          if (n.op == "Reshape") {
            const auto& s = g.constants.at(n.inputs[1]).i64;
            heads += s == std::vector<int64_t>{batch, 17, 3, 4, 4};
            back += s == std::vector<int64_t>{batch, 17, 16};
          }
        CHECK(heads == 2);
        CHECK(back == 2);
        // the class token (a constant) expanded to the batch folds too: the
        // one Concat left prepends it to the patch tokens
        REQUIRE(count_op(g, "Concat") == 1);
        for (const auto& n : g.nodes)
          if (n.op == "Concat") {
            REQUIRE(g.is_constant(n.inputs[0]));
            CHECK(g.constants.at(n.inputs[0]).dims == std::vector<int64_t>{batch, 1, 16});
            CHECK(g.shape(n.outputs[0]) == std::vector<int64_t>{batch, 17, 16});
          }
        // Conv patch embedding, qkv/proj/fc1/fc2 per block, the head
        CHECK(g.layers.size() == 14);  // 10 with weights + q.k^T and A.v per block (act_matmul)
        int act = 0;
        for (const auto& l : g.layers) act += l.kind == LayerKind::act_matmul;
        CHECK(act == 4);
        CHECK(count_op(g, "MatMul") == 12);  // 8 layers + q.k^T and A.v per block
        CHECK(count_op(g, "Softmax") == 2);
        CHECK(count_op(g, "Erf") == 2);
        if (std::string(file).find("op17") != std::string::npos) {
          CHECK(count_op(g, "LayerNormalization") == 5);
        } else {
          CHECK(count_op(g, "LayerNormalization") == 0);
          CHECK(count_op(g, "ReduceMean") == 10);
          CHECK(count_op(g, "Pow") == 5);
          CHECK(count_op(g, "Sqrt") == 5);
        }
      }
    }
  }
}

TEST_CASE("ShuffleNet-style export: chunk's Slices on x.shape and Split fold their arguments") {
  for (int64_t batch : {1, 3}) {
    DYNAMIC_SECTION("batch " << batch) {
      Graph g = load("tests/data/model/shufflenet_tiny.onnx", batch);
      CHECK(g.outputs[0].shape == std::vector<int64_t>{batch, 10});
      for (const char* op : {"Shape", "Gather", "Unsqueeze", "Cast", "Constant"}) CHECK(count_op(g, op) == 0);
      CHECK(count_op(g, "Concat") == 3);  // torch.cat of activations
      CHECK(count_op(g, "Split") == 2);  // one node per output
      CHECK(count_op(g, "Slice") >= 4);  // chunk x 2 units, ::2 steps, negative ends
      for (const auto& n : g.nodes)
        if (n.op == "Slice") {
          CHECK(n.get_ints("starts").size() == 4);
          CHECK(n.get_ints("steps").size() == 4);
        }
      CHECK(g.layers.size() == 8);
    }
  }
}
