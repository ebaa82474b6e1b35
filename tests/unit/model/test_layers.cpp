// Quantizable layers: canonical weights, BatchNorm folding, geometry, MACs.
#include <cmath>

#include <catch2/catch.hpp>

#include "onnx_builder.h"

using haq::model::Graph;
using haq::model::LayerKind;
using haq::model::Tensor;
using haq::test::ModelBuilder;
using haq::test::set_float;
using haq::test::set_int;
using haq::test::set_ints;
using haq::test::set_string;

namespace {

std::vector<float> values(const ModelBuilder& b, const std::string& name) {
  for (const auto& t : b.model().graph().initializer())
    if (t.name() == name) return {t.float_data().begin(), t.float_data().end()};
  FAIL("no initializer " << name);
  return {};
}

/// Plain fp32 NCHW conv (batch 1), the reference for folding checks.
std::vector<float> conv_ref(const std::vector<float>& x, int c_in, int h, int w, const std::vector<float>& wt,
                            const std::vector<float>& bias, int c_out, int k, int pad) {
  const int oh = h + 2 * pad - k + 1, ow = w + 2 * pad - k + 1;
  std::vector<float> y(static_cast<size_t>(c_out * oh * ow));
  for (int o = 0; o < c_out; ++o)
    for (int i = 0; i < oh; ++i)
      for (int j = 0; j < ow; ++j) {
        double acc = bias[o];
        for (int c = 0; c < c_in; ++c)
          for (int u = 0; u < k; ++u)
            for (int v = 0; v < k; ++v) {
              int yy = i + u - pad, xx = j + v - pad;
              if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
              acc += x[(c * h + yy) * w + xx] * wt[((o * c_in + c) * k + u) * k + v];
            }
        y[(o * oh + i) * ow + j] = static_cast<float>(acc);
      }
  return y;
}

}  // namespace

TEST_CASE("Conv + BatchNormalization folds into the conv, numerically equal") {
  ModelBuilder b(13);
  b.input("x", {1, 2, 5, 5});
  b.init_random("w", {3, 2, 3, 3}, 11);
  b.init_random("bias", {3}, 12);
  b.init("gamma", {3}, {1.5f, -0.5f, 0.8f});
  b.init("beta", {3}, {0.1f, 0.2f, -0.3f});
  b.init("mean", {3}, {0.05f, -0.4f, 0.7f});
  b.init("var", {3}, {0.9f, 2.5f, 0.01f});
  auto& conv = b.node("Conv", {"x", "w", "bias"}, {"c"}, "conv");
  set_ints(conv, "pads", {1, 1, 1, 1});
  auto& bn = b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}, "bn");
  set_float(bn, "epsilon", 1e-3f);
  b.output("y");
  Graph g = b.import();
  CHECK(haq::test::count_op(g, "BatchNormalization") == 0);
  REQUIRE(g.layers.size() == 1);
  const auto& L = g.layers[0];
  CHECK(L.output == "y");
  CHECK(g.nodes[L.node].outputs[0] == "y");

  // Reference: conv then BN, by hand in fp32; vs conv with the folded weights.
  std::vector<float> x(50);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
  auto c = conv_ref(x, 2, 5, 5, values(b, "w"), values(b, "bias"), 3, 3, 1);
  auto gamma = values(b, "gamma"), beta = values(b, "beta"), mean = values(b, "mean"), var = values(b, "var");
  for (int o = 0; o < 3; ++o)
    for (int i = 0; i < 25; ++i) {
      float& v = c[o * 25 + i];
      v = (v - mean[o]) / std::sqrt(var[o] + 1e-3f) * gamma[o] + beta[o];
    }
  const Tensor& W = g.constants.at(L.weight);
  const Tensor& B = g.constants.at(L.bias);
  CHECK(W.dims == std::vector<int64_t>{3, 2, 3, 3});
  auto folded = conv_ref(x, 2, 5, 5, W.f32, B.f32, 3, 3, 1);
  REQUIRE(folded.size() == c.size());
  double max_err = 0;
  for (size_t i = 0; i < c.size(); ++i) max_err = std::max(max_err, std::abs(double(folded[i]) - c[i]) / (1 + std::abs(c[i])));
  CHECK(max_err < 1e-5);
  // the originals are gone: only canonical constants remain
  CHECK(g.constants.count("gamma") == 0);
  CHECK(g.constants.count("w") == 0);
}

TEST_CASE("BatchNormalization stays when the conv output has another consumer") {
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4});
  b.init_random("w", {2, 2, 1, 1}, 1);
  for (const char* n : {"gamma", "beta", "mean"}) b.init(n, {2}, {0.5f, 0.25f});
  b.init("var", {2}, {1.f, 2.f});
  b.node("Conv", {"x", "w"}, {"c"}, "conv");
  b.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"bn"}, "bn");
  b.node("Add", {"bn", "c"}, {"y"}, "add");
  b.output("y");
  Graph g = b.import();
  CHECK(haq::test::count_op(g, "BatchNormalization") == 1);
  CHECK(g.layers[0].output == "c");
  // the conv had no bias: a zero bias is made
  const Tensor& bias = g.constants.at(g.layers[0].bias);
  CHECK(bias.f32 == std::vector<float>{0.f, 0.f});
  // with folding off, BN stays too
  ModelBuilder b2(13);
  b2.input("x", {1, 2, 4, 4});
  b2.init_random("w", {2, 2, 1, 1}, 1);
  for (const char* n : {"gamma", "beta", "mean", "var"}) b2.init(n, {2}, {0.5f, 0.25f});
  b2.node("Conv", {"x", "w"}, {"c"}, "conv");
  b2.node("BatchNormalization", {"c", "gamma", "beta", "mean", "var"}, {"y"}, "bn");
  b2.output("y");
  CHECK(haq::test::count_op(b2.import(1, false), "BatchNormalization") == 1);
  CHECK(haq::test::count_op(b2.import(1, true), "BatchNormalization") == 0);
}

TEST_CASE("Gemm transB/alpha/beta fold into canonical [out,in] weight and [out] bias") {
  for (int transB : {0, 1}) {
    DYNAMIC_SECTION("transB=" << transB) {
      ModelBuilder b(13);
      b.input("a", {2, 3});
      if (transB) b.init_random("B", {4, 3}, 5);
      else b.init_random("B", {3, 4}, 5);
      b.init("C", {1, 4}, {0.5f, -1.f, 2.f, 0.25f});
      auto& n = b.node("Gemm", {"a", "B", "C"}, {"y"}, "fc");
      set_int(n, "transB", transB);
      set_float(n, "alpha", 0.5f);
      set_float(n, "beta", 2.f);
      b.output("y");
      Graph g = b.import();
      REQUIRE(g.layers.size() == 1);
      const auto& L = g.layers[0];
      CHECK(L.c_in == 3);
      CHECK(L.c_out == 4);
      const Tensor& W = g.constants.at(L.weight);
      const Tensor& bias = g.constants.at(L.bias);
      CHECK(W.dims == std::vector<int64_t>{4, 3});
      CHECK(bias.dims == std::vector<int64_t>{4});
      auto B = values(b, "B");
      auto C = values(b, "C");
      // y = alpha * a B' + beta C  ==  a W^T + bias, for a = unit vectors
      for (int o = 0; o < 4; ++o) {
        CHECK(bias.f32[o] == Approx(2.f * C[o]));
        for (int i = 0; i < 3; ++i) {
          const float b_io = transB ? B[o * 3 + i] : B[i * 4 + o];
          CHECK(W.f32[o * 3 + i] == Approx(0.5f * b_io));
        }
      }
      const auto& node = g.nodes[L.node];
      CHECK(node.get_int("transB", 0) == 1);
      CHECK(node.get_float("alpha", 0) == 1.f);
      CHECK(node.get_float("beta", 0) == 1.f);
    }
  }
}

TEST_CASE("Gemm transA gets an explicit Transpose before it") {
  ModelBuilder b(11);
  b.input("a", {3, 2});
  b.init_random("B", {3, 4}, 5);
  auto& n = b.node("Gemm", {"a", "B"}, {"y"}, "fc");
  set_int(n, "transA", 1);
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].op == "Transpose");
  CHECK(g.nodes[0].get_ints("perm") == std::vector<int64_t>{1, 0});
  CHECK(g.shape(g.nodes[0].outputs[0]) == std::vector<int64_t>{2, 3});
  CHECK(g.nodes[1].inputs[0] == g.nodes[0].outputs[0]);
  CHECK(g.nodes[1].get_int("transA", 1) == 0);
  CHECK(g.layers[0].node == 1);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{2, 4});
}

TEST_CASE("MatMul with a constant [K,N] weight becomes a layer with the transposed weight") {
  ModelBuilder b(13);
  b.input("x", {-1, 5, 3});  // rows per sample = 5
  b.init_random("W", {3, 4}, 9);
  b.node("MatMul", {"x", "W"}, {"y"}, "mm");
  b.output("y");
  Graph g = b.import(2);
  REQUIRE(g.layers.size() == 1);
  const auto& L = g.layers[0];
  CHECK(L.kind == LayerKind::matmul);
  CHECK(L.c_in == 3);
  CHECK(L.c_out == 4);
  CHECK(L.rows == 5);
  CHECK(L.macs == 5 * 3 * 4);
  CHECK(L.output_shape == std::vector<int64_t>{2, 5, 4});
  const Tensor& W = g.constants.at(L.weight);
  CHECK(W.dims == std::vector<int64_t>{4, 3});
  auto orig = values(b, "W");
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < 3; ++k) CHECK(W.f32[n * 3 + k] == orig[k * 4 + n]);
  CHECK(g.constants.at(L.bias).f32 == std::vector<float>(4, 0.f));
}

TEST_CASE("MatMul of two activations is an act_matmul layer") {
  ModelBuilder b(13);
  b.input("x", {1, 2, 3});
  b.input("z", {1, 3, 4});
  b.node("MatMul", {"x", "z"}, {"y"}, "mm");
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.layers.size() == 1);
  CHECK(g.layers[0].kind == LayerKind::act_matmul);
  CHECK(g.layers[0].input_b == "z");
  CHECK(g.layers[0].rows == 2);
  CHECK(g.layers[0].c_in == 3);
  CHECK(g.layers[0].c_out == 4);
  CHECK(g.layers[0].params == 0);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 2, 4});
}

TEST_CASE("auto_pad SAME_UPPER, SAME_LOWER and VALID resolve into explicit pads") {
  struct Case {
    const char* mode;
    int64_t stride;
    std::array<int64_t, 4> pads;
    int64_t out;
  };
  // input 7x7, kernel 4: SAME with stride 2 -> out 4, total pad (4-1)*2+4-7 = 3
  for (const Case& c : {Case{"SAME_UPPER", 2, {1, 1, 2, 2}, 4}, Case{"SAME_LOWER", 2, {2, 2, 1, 1}, 4},
                        Case{"VALID", 1, {0, 0, 0, 0}, 4}, Case{"SAME_UPPER", 1, {1, 1, 2, 2}, 7}}) {
    DYNAMIC_SECTION(c.mode << " stride " << c.stride) {
      ModelBuilder b(13);
      b.input("x", {1, 1, 7, 7});
      b.init_random("w", {2, 1, 4, 4}, 3);
      auto& n = b.node("Conv", {"x", "w"}, {"y"}, "conv");
      set_string(n, "auto_pad", c.mode);
      set_ints(n, "strides", {c.stride, c.stride});
      b.output("y");
      Graph g = b.import();
      const auto& L = g.layers[0];
      CHECK(L.pads == c.pads);
      CHECK(L.out_h == c.out);
      CHECK(L.out_w == c.out);
      CHECK(g.nodes[0].get_string("auto_pad") == "NOTSET");
      CHECK(L.macs == c.out * c.out * 2 * 1 * 16);
    }
  }
}

TEST_CASE("depthwise convs are detected, grouped and dilated geometry is recorded") {
  ModelBuilder b(13);
  b.input("x", {1, 8, 10, 10});
  b.init_random("dw", {8, 1, 3, 3}, 1);
  b.init_random("gw", {4, 2, 3, 3}, 2);  // 4 groups of 2 input channels
  auto& dw = b.node("Conv", {"x", "dw"}, {"a"}, "dw");
  set_int(dw, "group", 8);
  set_ints(dw, "pads", {1, 1, 1, 1});
  set_ints(dw, "strides", {2, 2});
  auto& gc = b.node("Conv", {"a", "gw"}, {"y"}, "grouped");
  set_int(gc, "group", 4);
  set_ints(gc, "dilations", {2, 2});
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.layers.size() == 2);
  const auto& d = g.layers[0];
  CHECK(d.depthwise);
  CHECK(d.groups == 8);
  CHECK(d.stride_h == 2);
  CHECK(d.out_h == 5);
  CHECK(d.macs == 5 * 5 * 8 * 1 * 9);
  const auto& gr = g.layers[1];
  CHECK_FALSE(gr.depthwise);
  CHECK(gr.groups == 4);
  CHECK(gr.dilation_h == 2);
  CHECK(gr.in_h == 5);
  CHECK(gr.out_h == 1);  // 5 - (2*(3-1)+1) + 1
  CHECK(gr.macs == 1 * 1 * 4 * 2 * 9);
}

TEST_CASE("an NHWC input wrapped in Transposes imports with NCHW layers") {
  ModelBuilder b(13);
  b.input("x", {-1, 6, 6, 3});  // NHWC
  b.init_random("w", {5, 3, 3, 3}, 4);
  set_ints(b.node("Transpose", {"x"}, {"nchw"}, "to_nchw"), "perm", {0, 3, 1, 2});
  b.node("Conv", {"nchw", "w"}, {"c"}, "conv");
  set_ints(b.node("Transpose", {"c"}, {"y"}, "to_nhwc"), "perm", {0, 2, 3, 1});
  b.output("y");
  Graph g = b.import(2);
  REQUIRE(g.layers.size() == 1);
  CHECK(g.layers[0].input_shape == std::vector<int64_t>{2, 3, 6, 6});
  CHECK(g.layers[0].macs == 4 * 4 * 5 * 3 * 9);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{2, 4, 4, 5});
}
