// The MatMul of two activations (attention's Q.K^T and A.V) as a quantizable
// layer: its import form, the int8 batched matmul against an integer
// reference, the engine's quantized output against the same arithmetic done
// by hand, the simulators' closed form, and 3-D nn.Linear bias folding.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>

#include "graph_builder.h"
#include "haq/engine/engine.h"
#include "haq/engine/kernels.h"
#include "haq/hw/simulate.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "unit/hw/hw_test_util.h"
#include "onnx_builder.h"
#include "ort_reference.h"
#include "reference_models.h"
#include "test_paths.h"

using namespace haq;
using test::ModelBuilder;

namespace {

// x [N, 4, 6] -> q = x Wq + bq (Add after), k = bk + x Wk (constant first),
// s = q . k^T [N, 4, 4] (act_matmul), y = s . x [N, 4, 6] (act_matmul), flattened.
ModelBuilder attention_like(bool relu_scores) {
  ModelBuilder b(13);
  b.input("img", {-1, 1, 4, 6});
  b.init_i64("shape3", {3}, {-1, 4, 6});
  b.node("Reshape", {"img", "shape3"}, {"x"}, "to_tokens");
  b.init_random("Wq", {6, 5}, 1);
  b.init_random("bq", {5}, 2);
  b.init_random("Wk", {6, 5}, 3);
  b.init_random("bk", {5}, 4);
  b.node("MatMul", {"x", "Wq"}, {"xq"}, "q_mm");
  b.node("Add", {"xq", "bq"}, {"q"}, "q_bias");
  b.node("MatMul", {"x", "Wk"}, {"xk"}, "k_mm");
  b.node("Add", {"bk", "xk"}, {"k"}, "k_bias");
  auto& t = b.node("Transpose", {"k"}, {"kt"}, "k_t");
  test::set_ints(t, "perm", {0, 2, 1});
  b.node("MatMul", {"q", "kt"}, {"s0"}, "scores");
  std::string s = "s0";
  if (relu_scores) {
    b.node("Relu", {"s0"}, {"s"}, "scores_relu");
    s = "s";
  }
  b.node("MatMul", {s, "x"}, {"y"}, "mix");
  auto& f = b.node("Flatten", {"y"}, {"out"}, "flat");
  test::set_int(f, "axis", 1);
  b.output("out");
  return b;
}

// The model's first input as levels -> reference s32 sums of g products.
std::vector<int64_t> reference_sums(int64_t g, int64_t m, int64_t k, int64_t n, const std::vector<int32_t>& a,
                                    const std::vector<int8_t>& b) {
  std::vector<int64_t> out(static_cast<size_t>(g * m * n), 0);
  for (int64_t p = 0; p < g; ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        int64_t acc = 0;
        for (int64_t r = 0; r < k; ++r) acc += int64_t{a[(p * m + i) * k + r]} * b[(p * k + r) * n + j];
        out[(p * m + i) * n + j] = acc;
      }
  return out;
}

}  // namespace

TEST_CASE("a MatMul of two activations imports as an act_matmul layer and 3-D Linear biases fold") {
  model::Graph g = attention_like(false).import(3);
  REQUIRE(g.layers.size() == 4);
  const model::Layer& q = g.layers[0];
  const model::Layer& k = g.layers[1];
  CHECK(q.kind == model::LayerKind::matmul);
  CHECK(k.kind == model::LayerKind::matmul);
  // Both biases folded (Add after the MatMul and Add with the constant first): no Add is left.
  CHECK(test::count_op(g, "Add") == 0);
  CHECK(q.output == "q");
  CHECK(k.output == "k");
  const auto& bq = g.constants.at(q.bias).f32;
  REQUIRE(bq.size() == 5);
  // init_random(seed 2)'s first value, the formula of ModelBuilder::init_random.
  uint32_t x = 2 * 2654435761u + 1;
  x = x * 1664525u + 1013904223u;
  CHECK(bq[0] == static_cast<float>((x >> 8) & 0xffff) / 32768.f - 1.f);
  const model::Layer& s = g.layers[2];
  CHECK(s.kind == model::LayerKind::act_matmul);
  CHECK(s.name == "scores");
  CHECK(s.input == "q");
  CHECK(s.input_b == "kt");
  CHECK(s.rows == 4);
  CHECK(s.c_in == 5);
  CHECK(s.c_out == 4);
  CHECK(s.mats == 1);
  CHECK(s.macs == 4 * 5 * 4);
  CHECK(s.weight_params == 0);
  CHECK(s.params == 0);
  CHECK(s.weight.empty());
  const model::Layer& y = g.layers[3];
  CHECK(y.kind == model::LayerKind::act_matmul);
  CHECK(y.input_b == "x");
  CHECK(y.macs == 4 * 4 * 6);
}

TEST_CASE("per-head products: a 4-D act_matmul counts its heads, a constant second operand is a MatMul layer") {
  ModelBuilder b(13);
  b.input("img", {-1, 1, 4, 6});
  b.init_i64("shape4", {4}, {-1, 2, 4, 3});
  b.node("Reshape", {"img", "shape4"}, {"h"}, "heads");
  auto& t = b.node("Transpose", {"h"}, {"ht"}, "heads_t");
  test::set_ints(t, "perm", {0, 1, 3, 2});
  b.node("MatMul", {"h", "ht"}, {"s"}, "per_head");  // [N,2,4,3] x [N,2,3,4]
  b.init_i64("shape2", {2}, {-1, 32});
  b.node("Reshape", {"s", "shape2"}, {"out"}, "flat");
  b.output("out");
  model::Graph g = b.import(2);
  REQUIRE(g.layers.size() == 1);
  CHECK(g.layers[0].kind == model::LayerKind::act_matmul);
  CHECK(g.layers[0].mats == 2);
  CHECK(g.layers[0].rows == 4);
  CHECK(g.layers[0].c_in == 3);
  CHECK(g.layers[0].c_out == 4);
  CHECK(g.layers[0].macs == 2 * 4 * 3 * 4);

  // Broadcast second operand (no batch dim): not a layer, runs in fp32.
  ModelBuilder c(13);
  c.input("x", {-1, 4});
  c.input("w", {4, 3});
  c.node("MatMul", {"x", "w"}, {"out"}, "bcast");
  c.output("out");
  model::ImportOptions io;
  io.batch = 2;
  model::Tensor w;
  w.dims = {4, 3};
  w.f32.assign(12, 0.5f);
  // Bound as a constant, the second operand makes it an ordinary MatMul layer.
  io.bind_inputs["w"] = w;
  model::Graph h = model::import_onnx_bytes(c.bytes(), "bcast.onnx", io);
  REQUIRE(h.layers.size() == 1);
  CHECK(h.layers[0].kind == model::LayerKind::matmul);
}

TEST_CASE("the int8 batched matmul of two activations is exact on this CPU (with and without split)") {
  std::mt19937 rng(5);
  const int64_t G = 3, M = 5, K = 37, N = 7;
  for (bool a_unsigned : {true, false}) {
    std::vector<int32_t> a(static_cast<size_t>(G * M * K));
    std::vector<int8_t> b(static_cast<size_t>(G * K * N));
    std::uniform_int_distribution<int> ua(a_unsigned ? 0 : -128, a_unsigned ? 255 : 127), ub(-128, 127);
    for (auto& v : a) v = ua(rng);
    for (auto& v : b) v = static_cast<int8_t>(ub(rng));
    // The worst case for s16 pairs: the largest codes against -128.
    for (int64_t r = 0; r < K; ++r) {
      a[static_cast<size_t>(r)] = a_unsigned ? 255 : -128;
      b[static_cast<size_t>(r * N)] = -128;
    }
    const auto ref = reference_sums(G, M, K, N, a, b);
    for (auto split : {engine::Int8Split::automatic, engine::Int8Split::always}) {
      INFO("unsigned " << a_unsigned << " split " << (split == engine::Int8Split::always));
      const auto got = engine::act_matmul_int8_accumulators(G, M, K, N, a, a_unsigned, b, split);
      REQUIRE(got.size() == ref.size());
      size_t wrong = 0;
      for (size_t i = 0; i < ref.size(); ++i) wrong += got[i] != ref[i];
      CHECK(wrong == 0);
      CHECK(got[0] == ref[0]);
    }
  }
}

TEST_CASE("a quantized act_matmul computes scale_a * scale_b * the integer sums of its levels") {
  for (bool relu : {true, false}) {
    model::Graph g = attention_like(relu).import(4);
    auto d = test::random_dataset(16, 1, 4, 6, -1.f, 1.f, 10, 9);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < 8; ++i) idx.push_back(i);
    for (auto split : {engine::Int8Split::automatic, engine::Int8Split::always})
    for (auto mode : {engine::ActQuantMode::symmetric, engine::ActQuantMode::asymmetric}) {
      INFO(quant::to_string(mode));
      engine::EngineOptions eo;
      eo.batch = 4;
      eo.int8_split = split;
      eo.act_quant = mode;
      engine::Engine e(g, eo);
      e.calibrate(d, idx);
      const auto cal = e.calibration();
      CHECK(cal[3].is_unsigned == relu);  // the second product reads Relu(scores) or scores
      for (int bits : {8, 5, 3}) {
        // Only the last layer ("mix") quantized: its inputs are the fp32 model's values.
        quant::Policy p = quant::uniform_policy(g, 8, 8);
        for (auto& l : p.layers) l.fp32 = true;
        p.layers[3] = {"mix", bits, bits, false};
        const auto plan = e.plan(p);
        const auto& lp = plan.layers[3];
        REQUIRE(lp.quantized);
        CHECK(lp.input.act.is_unsigned == relu);
        // The first operand has a zero point under asymmetric activations;
        // the second stays symmetric (s8 levels, no zero point).
        CHECK(lp.input.act.affine() == (!relu && mode == engine::ActQuantMode::asymmetric));
        CHECK_FALSE(lp.input_b.act.affine());
        CHECK(!lp.input_b.act.is_unsigned);
        CHECK(lp.input_b.act.bits == bits);
        // The two operands, from an observed fp32 run: mix reads s (or Relu(s)) and x.
        std::vector<std::vector<float>> outs(4);
        e.set_layer_observer([&](const engine::LayerOutput& o) {
          outs[o.layer].assign(o.data, o.data + o.count);
        });
        auto fp32 = e.run_fp32(d, {0, 1, 2, 3});
        e.set_layer_observer({});
        auto q = e.run(p, d, {0, 1, 2, 3});
        // Reference: A = scores (after the fused Relu), B = x (the dataset rows).
        const std::vector<float>& A = outs[2];
        REQUIRE(A.size() == 4 * 16);
        std::vector<int32_t> la(A.size());
        for (size_t i = 0; i < A.size(); ++i) la[i] = lp.input.act.level(A[i]);
        std::vector<float> X(4 * 24);
        std::vector<int64_t> rows = {0, 1, 2, 3};
        data::to_model_layout(d, rows, {4, 1, 4, 6}, X.data());
        std::vector<int8_t> lb(X.size());
        for (size_t i = 0; i < X.size(); ++i) lb[i] = static_cast<int8_t>(lp.input_b.act.level(X[i]));
        const auto sums = reference_sums(4, 4, 4, 6, la, lb);
        const float scale = lp.input.act.scale * lp.input_b.act.scale;
        REQUIRE(q.size() == sums.size());
        double worst = 0, err = 0, ref2 = 0;
        for (size_t i = 0; i < q.size(); ++i) {
          const double want = static_cast<float>(sums[i]) * scale;
          worst = std::max(worst, std::fabs(q[i] - want) / (std::fabs(want) + 1e-6));
          err += (q[i] - fp32[i]) * (q[i] - fp32[i]);
          ref2 += fp32[i] * fp32[i];
        }
        INFO("relu " << relu << " bits " << bits);
        CHECK(worst < 1e-6);
        // And it is a quantization of the fp32 product: 8 bits within 1 %, never exact.
        if (bits == 8) CHECK(std::sqrt(err / ref2) < 0.01);
        CHECK(err > 0);
      }
    }
  }
}

TEST_CASE("fp32 act_matmul layers (the tiny attention fixture) equal ONNX Runtime") {
  test::require_onnx_runtime();
  const std::string path = test::source_path("tests/data/model/tiny_attention.onnx");
  model::ImportOptions io;
  io.batch = 16;
  model::Graph g = model::import_onnx(path, io);
  int act = 0, linear = 0;
  for (const auto& l : g.layers) {
    act += l.kind == model::LayerKind::act_matmul;
    linear += l.kind == model::LayerKind::matmul;
  }
  CHECK(act == 2);      // Q.K^T and A.V
  CHECK(linear == 6);   // q, k, v, o, fc1, fc2 with their biases folded
  for (const auto& l : g.layers)
    if (l.kind == model::LayerKind::act_matmul) CHECK(l.mats == 2);
  const auto& d = test::fashion_mnist_test();
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < 16; ++i) idx.push_back(i * 31);
  std::vector<float> input(static_cast<size_t>(16 * d.sample_elems()));
  data::to_model_layout(d, idx, g.inputs[0].shape, input.data());
  engine::EngineOptions eo;
  eo.batch = 16;
  engine::Engine e(g, eo);
  auto ours = e.run_fp32(d, idx);
  auto ref = test::run_onnx_runtime(path, input, g.inputs[0].shape, test::scratch_dir("act_matmul_ort"));
  CHECK(test::worst_relative_difference(ours, ref, 10) < 1e-4);
}

TEST_CASE("simulators: an act_matmul is batch x heads GEMMs streaming both operands (closed form)") {
  model::Layer l;
  l.name = "scores";
  l.kind = model::LayerKind::act_matmul;
  l.rows = 64;
  l.c_in = 32;
  l.c_out = 64;
  l.mats = 4;
  l.macs = 4 * 64 * 32 * 64;
  hw::HardwareProfile p = test::bit_serial_profile();  // 8 x 256 x 8 array
  p.batch = 2;
  const hw::LoweredLayer L = hw::lower_layer(l, p.batch);
  CHECK(L.groups == 8);  // batch 2 x 4 heads
  CHECK(L.m == 64);
  CHECK(L.k == 32);
  CHECK(L.n == 64);
  // 8 GEMMs * ceil(64/8) * ceil(32/256) * ceil(64/8) * w * a.
  CHECK(hw::compute_cycles(l, 4, 6, p) == 8 * 8 * 1 * 8 * 4 * 6);
  CHECK(hw::compute_cycles(l, 2, 2, p) == 8 * 8 * 1 * 8 * 2 * 2);
  // The second operand is read once per GEMM at w_bits: no weight storage, no reuse across the batch.
  const hw::LayerCost c = hw::simulate_layer(l, 4, 6, p);
  REQUIRE(c.fits);
  CHECK(c.dram_read_bits >= 8 * (64 * 32 * 6 + 32 * 64 * 4));
  hw::HardwareProfile f = test::bit_fusion_profile();  // 16 x 32
  f.batch = 1;
  // bit-fusion: 4 GEMMs * m * ceil(32 / (16 * (8/4)*(8/4))) * ceil(64/32) at w4a4.
  CHECK(hw::compute_cycles(l, 4, 4, f) == 4 * 64 * 1 * 1 * 2);
}
