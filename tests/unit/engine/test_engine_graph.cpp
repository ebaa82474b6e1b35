// The engine on graphs built in code: fp32 against a naive float reference,
// quantized layers against the quantizer's arithmetic done by hand.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "graph_builder.h"
#include "haq/engine/engine.h"
#include "reference_models.h"

using namespace haq;
using haq::test::GraphBuilder;

namespace {

using Vec = std::vector<float>;

Vec conv_ref(const Vec& x, const model::Layer& l, const Vec& w, const Vec& b) {
  return test::conv_reference(x, l, w, b);
}

Vec relu(Vec x) {
  for (auto& v : x) v = std::max(v, 0.f);
  return x;
}

Vec maxpool2(const Vec& x, int64_t N, int64_t C, int64_t H, int64_t W) {
  Vec y(static_cast<size_t>(N * C * (H / 2) * (W / 2)));
  for (int64_t nc = 0; nc < N * C; ++nc)
    for (int64_t oy = 0; oy < H / 2; ++oy)
      for (int64_t ox = 0; ox < W / 2; ++ox) {
        float m = -1e30f;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) m = std::max(m, x[(nc * H + 2 * oy + dy) * W + 2 * ox + dx]);
        y[(nc * (H / 2) + oy) * (W / 2) + ox] = m;
      }
  return y;
}

Vec gemm_ref(const Vec& x, int64_t N, int64_t K, int64_t O, const Vec& w, const Vec& b) {
  Vec y(static_cast<size_t>(N * O));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double acc = b[o];
      for (int64_t k = 0; k < K; ++k) acc += x[n * K + k] * double(w[o * K + k]);
      y[n * O + o] = static_cast<float>(acc);
    }
  return y;
}

double max_abs(const Vec& v) {
  double m = 0;
  for (float x : v) m = std::max(m, double(std::fabs(x)));
  return m;
}

}  // namespace

TEST_CASE("fp32: conv, relu, maxpool, depthwise conv, residual add + relu, GAP, gemm match a naive reference") {
  const int64_t B = 4;
  GraphBuilder gb(B, {3, 8, 8});
  auto c1 = gb.conv("input", 8, 3, 1, 1);
  auto r1 = gb.unary("Relu", c1);
  auto p1 = gb.maxpool(r1, 2, 2);
  auto c2 = gb.conv(p1, 8, 3, 1, 1, 8);
  auto a = gb.add(c2, p1);  // can be negative: the Relu fused into the Add matters
  auto r2 = gb.unary("Relu", a);
  auto gap = gb.global_avg_pool(r2);
  auto fl = gb.flatten(gap);
  auto fc = gb.gemm(fl, 5);
  model::Graph g = gb.finish(fc);
  // 6 samples at batch 4: the last batch is padded.
  auto d = test::random_dataset(6, 3, 8, 8, -1.f, 1.f, 5, 3);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5};

  engine::EngineOptions o;
  o.batch = B;
  engine::Engine e(g, o);
  auto got = e.run_fp32(d, idx);
  REQUIRE(got.size() == 6 * 5);

  // Reference, batch 6 at once.
  auto L = g.layers;
  for (auto& l : L) l.input_shape[0] = 6;
  auto W = [&](int i) { return g.constants.at(L[i].weight).f32; };
  auto Bv = [&](int i) { return g.constants.at(L[i].bias).f32; };
  Vec x(d.images.begin(), d.images.end());
  auto y1 = maxpool2(relu(conv_ref(x, L[0], W(0), Bv(0))), 6, 8, 8, 8);
  auto y2 = conv_ref(y1, L[1], W(1), Bv(1));
  size_t negative = 0;
  for (size_t i = 0; i < y2.size(); ++i) {
    y2[i] += y1[i];
    negative += y2[i] < 0;
  }
  REQUIRE(negative > y2.size() / 10);
  y2 = relu(y2);
  Vec pooled(6 * 8, 0.f);
  for (int64_t nc = 0; nc < 6 * 8; ++nc) {
    double s = 0;
    for (int64_t i = 0; i < 16; ++i) s += y2[nc * 16 + i];
    pooled[nc] = static_cast<float>(s / 16);
  }
  auto want = gemm_ref(pooled, 6, 8, 5, W(2), Bv(2));
  const double tol = 1e-5 * std::max(1.0, max_abs(want));
  for (size_t i = 0; i < want.size(); ++i) CHECK(std::fabs(got[i] - want[i]) <= tol);
}

namespace {

// One quantized conv (+ReLU) layer by hand: levels of the input under the
// engine's calibrated quantizer, levels of the weights, integer dot products,
// then (acc + bias / s) * s with s = scale_a * scale_w[c].
Vec quantized_conv_by_hand(const model::Graph& g, const engine::Engine& e, const Vec& x, int w_bits,
                           int a_bits, bool relu_after) {
  const auto& l = g.layers[0];
  const auto cal = e.calibration()[0];
  auto aq = quant::make_act_quant(cal.thresholds[a_bits], a_bits, cal.is_unsigned);
  const auto& w = g.constants.at(l.weight).f32;
  auto qw = quant::quantize_weights(w.data(), l.c_out, static_cast<int64_t>(w.size()) / l.c_out, w_bits,
                                    quant::WeightClip::mse);
  Vec xl(x.size()), wl(qw.values.begin(), qw.values.end());
  for (size_t i = 0; i < x.size(); ++i) xl[i] = static_cast<float>(aq.level(x[i]));
  Vec zero(static_cast<size_t>(l.c_out), 0.f);
  auto acc = conv_ref(xl, l, wl, zero);  // exact: small integers in double
  const auto& b = g.constants.at(l.bias).f32;
  const int64_t plane = l.out_h * l.out_w;
  for (size_t i = 0; i < acc.size(); ++i) {
    int64_t c = (static_cast<int64_t>(i) / plane) % l.c_out;
    float s = aq.scale * qw.scales[c];
    acc[i] = (acc[i] + b[c] / s) * s;
    if (relu_after) acc[i] = std::max(acc[i], 0.f);
  }
  return acc;
}

// Both ways int8 layers run: split only where this CPU could saturate, and always.
constexpr engine::Int8Split kSplits[] = {engine::Int8Split::automatic, engine::Int8Split::always};
const char* split_name(engine::Int8Split s) { return s == engine::Int8Split::always ? "split" : "automatic split"; }

engine::EngineOptions options(int64_t batch, engine::Int8Split split, bool bias_correction = false) {
  engine::EngineOptions o;
  o.batch = batch;
  o.bias_correction = bias_correction;
  o.int8_split = split;
  return o;
}

/// An engine for `g` calibrated on d[idx].
engine::Engine calibrated(const model::Graph& g, const engine::EngineOptions& o, const data::Dataset& d,
                          const std::vector<int64_t>& idx) {
  engine::Engine e(g, o);
  e.calibrate(d, idx);
  return e;
}

}  // namespace

TEST_CASE("quantized conv layer equals the quantizer arithmetic (u8 and s8 inputs, bits 1..8)") {
  for (bool nonneg : {true, false})
  for (auto split : kSplits) {
    INFO(split_name(split));
    const int64_t B = 4;
    GraphBuilder gb(B, {4, 9, 9}, 11);
    auto c = gb.conv("input", 6, 3, 2, 1);
    auto r = gb.unary("Relu", c);
    model::Graph g = gb.finish(r);
    auto d = test::random_dataset(B, 4, 9, 9, nonneg ? 0.f : -1.f, 1.f, 6, 5);
    std::vector<int64_t> idx = {0, 1, 2, 3};
    engine::Engine e = calibrated(g, options(B, split), d, idx);
    CHECK(e.calibration()[0].is_unsigned == nonneg);
    for (auto [wb, ab] : std::vector<std::pair<int, int>>{{8, 8}, {4, 4}, {2, 3}, {1, 8}, {8, 1}, {5, 6}}) {
      INFO("w" << wb << "a" << ab << (nonneg ? " u8" : " s8"));
      quant::Policy p = quant::uniform_policy(g, wb, ab);
      auto got = e.run(p, d, idx);
      Vec x(d.images.begin(), d.images.end());
      auto want = quantized_conv_by_hand(g, e, x, wb, ab, true);
      REQUIRE(got.size() == want.size());
      const double tol = 1e-5 * std::max(1.0, max_abs(want));
      size_t bad = 0;
      for (size_t i = 0; i < want.size(); ++i) bad += std::fabs(got[i] - want[i]) > tol;
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("quantized gemm layer equals the quantizer arithmetic") {
  const int64_t B = 8;
  GraphBuilder gb(B, {2, 4, 4}, 5);
  auto fl = gb.flatten("input");
  auto fc = gb.gemm(fl, 7);
  model::Graph g = gb.finish(fc);
  auto d = test::random_dataset(B, 2, 4, 4, -2.f, 1.f, 7, 9);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5, 6, 7};
  for (auto split : kSplits) {
    INFO(split_name(split));
    engine::Engine e = calibrated(g, options(B, split), d, idx);
    CHECK_FALSE(e.calibration()[0].is_unsigned);
    for (int bits : {2, 4, 8}) {
      auto got = e.run(quant::uniform_policy(g, bits, bits), d, idx);
      const auto& l = g.layers[0];
      auto cal = e.calibration()[0];
      auto aq = quant::make_act_quant(cal.thresholds[bits], bits, false);
      const auto& w = g.constants.at(l.weight).f32;
      auto qw = quant::quantize_weights(w.data(), 7, 32, bits, quant::WeightClip::mse);
      const auto& b = g.constants.at(l.bias).f32;
      for (int64_t n = 0; n < B; ++n)
        for (int64_t o2 = 0; o2 < 7; ++o2) {
          int64_t acc = 0;
          for (int64_t k = 0; k < 32; ++k) acc += aq.level(d.images[n * 32 + k]) * qw.values[o2 * 32 + k];
          float s = aq.scale * qw.scales[o2];
          float want = (static_cast<float>(acc) + b[o2] / s) * s;
          CHECK(got[n * 7 + o2] == Approx(want).margin(1e-5));
        }
    }
  }
}

TEST_CASE("asymmetric activations: conv (padded) and gemm equal the quantizer arithmetic with a zero point") {
  // Inputs in [-0.3, 1]: one-sided, so the zero point sits far from 2^(b-1).
  // Padding is real zero, level 0, code z: oneDNN's zero-point compensation
  // must cover the padded border exactly.
  const int64_t B = 4;
  auto d = test::random_dataset(B, 4, 9, 9, -0.3f, 1.f, 6, 5);
  std::vector<int64_t> idx = {0, 1, 2, 3};
  Vec x(d.images.begin(), d.images.end());
  for (auto split : kSplits)
    for (bool gemm : {false, true}) {
      INFO(split_name(split) << (gemm ? " gemm" : " conv"));
      GraphBuilder gb(B, {4, 9, 9}, 11);
      model::Graph g = gemm ? gb.finish(gb.gemm(gb.flatten("input"), 7)) : gb.finish(gb.conv("input", 6, 3, 2, 1));
      engine::EngineOptions o = options(B, split);
      o.act_quant = engine::ActQuantMode::asymmetric;
      engine::Engine e = calibrated(g, o, d, idx);
      REQUIRE_FALSE(e.calibration()[0].is_unsigned);
      for (auto [wb, ab] : std::vector<std::pair<int, int>>{{8, 8}, {4, 4}, {2, 3}, {5, 6}, {8, 2}, {3, 8}}) {
        INFO("w" << wb << "a" << ab);
        const auto ql = e.quantized_layer(0, wb, ab);
        const quant::ActQuant& aq = ql.act;
        CHECK(aq.affine());
        CHECK(aq.hi - aq.lo == (1 << ab) - 1);  // all 2^b codes
        CHECK(-aq.lo < (1 << (ab - 1)) - 1);    // the zero point is not the symmetric one
        auto got = e.run(quant::uniform_policy(g, wb, ab), d, idx);
        const auto& l = g.layers[0];
        Vec xl(x.size());
        for (size_t i = 0; i < x.size(); ++i) xl[i] = static_cast<float>(aq.level(x[i]));
        Vec wl(ql.weights.values.begin(), ql.weights.values.end());
        const auto& b = g.constants.at(l.bias).f32;
        Vec want;
        if (gemm) {
          want = gemm_ref(xl, B, l.c_in, l.c_out, wl, Vec(static_cast<size_t>(l.c_out), 0.f));
        } else {
          want = conv_ref(xl, l, wl, Vec(static_cast<size_t>(l.c_out), 0.f));
        }
        const int64_t plane = gemm ? 1 : l.out_h * l.out_w;
        for (size_t i = 0; i < want.size(); ++i) {
          const int64_t c = (static_cast<int64_t>(i) / plane) % l.c_out;
          const float sc = aq.scale * ql.weights.scales[c];
          want[i] = (want[i] + b[c] / sc) * sc;
        }
        REQUIRE(got.size() == want.size());
        const double tol = 1e-5 * std::max(1.0, max_abs(want));
        size_t bad = 0;
        for (size_t i = 0; i < want.size(); ++i) bad += std::fabs(got[i] - want[i]) > tol;
        CHECK(bad == 0);
      }
    }
}

TEST_CASE("bias correction removes the mean output shift of weight quantization") {
  const int64_t B = 16;
  GraphBuilder gb(B, {8, 6, 6}, 21);
  auto c = gb.conv("input", 8, 3, 1, 1);
  model::Graph g = gb.finish(c);
  auto d = test::random_dataset(B, 8, 6, 6, 0.f, 1.f, 8, 4);
  std::vector<int64_t> idx(B);
  for (int64_t i = 0; i < B; ++i) idx[i] = i;
  auto channel_shift = [&](bool bc) {
    engine::EngineOptions o;
    o.batch = B;
    o.bias_correction = bc;
    engine::Engine e(g, o);
    e.calibrate(d, idx);
    auto fp = e.run_fp32(d, idx);
    auto q = e.run(quant::uniform_policy(g, 2, 8), d, idx);
    // Mean difference per output channel, summed in magnitude.
    std::vector<double> diff(8, 0.0);
    for (size_t i = 0; i < fp.size(); ++i) diff[(i / 36) % 8] += q[i] - fp[i];
    double total = 0;
    for (double v : diff) total += std::fabs(v) / (B * 36);
    return total;
  };
  double off = channel_shift(false), on = channel_shift(true);
  CHECK(off > 0.01);
  CHECK(on < 0.1 * off);
}

TEST_CASE("input bias correction removes the mean output shift of the input quantization (its clipping)") {
  // 2-bit inputs under an MSE clip: the tail is clipped, so the quantized
  // input's mean is below the real one; 8-bit weights keep the weight term
  // small. Calibrated and measured on the same samples: by linearity the
  // correction is exact for their mean, per output channel.
  const int64_t B = 16;
  GraphBuilder gb(B, {8, 6, 6}, 21);
  auto c = gb.conv("input", 8, 3, 1, 1);
  model::Graph g = gb.finish(c);
  auto d = test::random_dataset(B, 8, 6, 6, 0.f, 1.f, 8, 4);
  for (auto& v : d.images) v = v * v * v;  // a long upper tail
  std::vector<int64_t> idx(B);
  for (int64_t i = 0; i < B; ++i) idx[i] = i;
  auto channel_shift = [&](bool inputs) {
    engine::EngineOptions o;
    o.batch = B;
    o.input_bias_correction = inputs;
    engine::Engine e(g, o);
    e.calibrate(d, idx);
    auto fp = e.run_fp32(d, idx);
    auto q = e.run(quant::uniform_policy(g, 8, 2), d, idx);
    std::vector<double> diff(8, 0.0);
    for (size_t i = 0; i < fp.size(); ++i) diff[(i / 36) % 8] += q[i] - fp[i];
    double total = 0;
    for (double v : diff) total += std::fabs(v) / (B * 36);
    return total;
  };
  const double weights_only = channel_shift(false), both = channel_shift(true);
  CHECK(weights_only > 0.01);
  CHECK(both < 1e-4 * std::max(1.0, weights_only) + 1e-5);
}

TEST_CASE("PolicyEvaluator caches per policy, an all-fp32 policy reproduces fp32") {
  const int64_t B = 4;
  GraphBuilder gb(B, {1, 6, 6}, 3);
  auto c = gb.conv("input", 4, 3, 1, 1);
  auto r = gb.unary("Relu", c);
  auto fl = gb.flatten(r);
  auto fc = gb.gemm(fl, 3);
  model::Graph g = gb.finish(fc);
  auto d = test::random_dataset(10, 1, 6, 6, 0.f, 1.f, 3, 8);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  engine::EngineOptions o;
  o.batch = B;
  engine::Engine e(g, o);
  e.calibrate(d, idx);
  engine::PolicyEvaluator ev(e, d, idx);
  auto p = quant::uniform_policy(g, 8, 8);
  for (auto& l : p.layers) l.fp32 = true;
  auto a = ev.evaluate(p);
  CHECK(a.top1 == ev.fp32().top1);
  CHECK(a.fidelity == 100.0);
  CHECK(a.samples == 10);
  ev.evaluate(p);
  CHECK(ev.cache_size() == 1);
  ev.evaluate(quant::uniform_policy(g, 4, 4));
  CHECK(ev.cache_size() == 2);
}

TEST_CASE("score: top1, top5 and fidelity on known logits") {
  std::vector<float> logits = {0, 1, 2, 3, 4, 5, 6,   // argmax 6
                               6, 5, 4, 3, 2, 1, 0};  // argmax 0
  std::vector<float> ref = {0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};
  auto a = engine::score(logits, 7, {6, 5}, ref);
  CHECK(a.top1 == 50.0);
  CHECK(a.top5 == 50.0);  // label 5 of row 2 has rank 6
  CHECK(a.fidelity == 50.0);
  auto b = engine::score(logits, 7, {2, 4}, {});
  CHECK(b.top1 == 0.0);
  CHECK(b.top5 == 100.0);
}

TEST_CASE("score: a sample with a NaN logit is wrong for every metric and counted", "[issue17]") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Row 0 all NaN (max_element returned 0 = the label, the rank test found
  // nothing greater: top-1 and top-5 both right before), row 1 one NaN in
  // front of the right answer, row 2 clean.
  std::vector<float> logits = {nan, nan, nan, nan, nan, nan, nan,
                               nan, 0, 9, 1, 1, 1, 1,
                               0, 1, 2, 3, 4, 5, 6};
  auto a = engine::score(logits, 7, {0, 2, 6}, logits);
  CHECK(a.nan_samples == 2);
  CHECK(a.top1 == Approx(100.0 / 3));
  CHECK(a.top5 == Approx(100.0 / 3));
  CHECK(a.fidelity == Approx(100.0 / 3));
  // A clean row against a NaN fp32 reference does not agree with it.
  std::vector<float> clean(21, 0.f);
  clean[0] = clean[7 + 2] = clean[14 + 6] = 1.f;
  auto b = engine::score(clean, 7, {0, 2, 6}, logits);
  CHECK(b.top1 == 100.0);
  CHECK(b.nan_samples == 2);
  CHECK(b.fidelity == Approx(100.0 / 3));
  // Ten classes, every logit NaN: 0 %, not top-1 9.5 % and top-5 100 %.
  std::vector<float> all_nan(10 * 10, nan);
  std::vector<int32_t> labels = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto c = engine::score(all_nan, 10, labels, {});
  CHECK(c.top1 == 0.0);
  CHECK(c.top5 == 0.0);
  CHECK(c.nan_samples == 10);
}

// Direct u8 outputs (a quantized conv writing its consumers' codes) are an
// optimisation only: the logits must be bit-identical to the f32 round trip,
// on the reference models under uniform and mixed policies, split or not.
TEST_CASE("direct u8 outputs give the same logits as quantizing the f32 output") {
  const int64_t B = 64;
  const auto& d = test::fashion_mnist_test();
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < B; ++i) idx.push_back(i * 131 % d.size());
  for (const std::string name : {"fmnist-mobilenet", "fmnist-resnet"}) {
    model::ImportOptions io;
    io.batch = B;
    const auto g = model::import_onnx(test::source_path("models/" + name + ".onnx"), io);
    std::mt19937 rng(3);
    std::vector<quant::Policy> policies = {quant::uniform_policy(g, 8, 8), quant::uniform_policy(g, 4, 4),
                                           quant::uniform_policy(g, 3, 5, true)};
    quant::Policy mixed = quant::uniform_policy(g, 8, 8);
    for (auto& l : mixed.layers) l.w_bits = 2 + static_cast<int>(rng() % 7), l.a_bits = 2 + static_cast<int>(rng() % 7);
    policies.push_back(mixed);
    for (auto split : kSplits) {
      std::vector<std::vector<float>> logits[2];
      for (bool direct : {false, true}) {
        engine::EngineOptions o = options(B, split, /*bias_correction=*/true);
        o.direct_u8_outputs = direct;
        engine::Engine e = calibrated(g, o, d, idx);
        for (size_t k = 0; k < policies.size(); ++k) {
          if (direct && name == "fmnist-mobilenet") CHECK(e.u8_output_layers(policies[k]).size() >= 5);
          if (!direct) CHECK(e.u8_output_layers(policies[k]).empty());
          logits[direct].push_back(e.run(policies[k], d, idx));
        }
      }
      for (size_t k = 0; k < policies.size(); ++k) {
        INFO(name << ", policy " << k << ", " << split_name(split));
        REQUIRE(logits[0][k].size() == logits[1][k].size());
        size_t differ = 0;
        for (size_t i = 0; i < logits[0][k].size(); ++i) differ += logits[0][k][i] != logits[1][k][i];
        CHECK(differ == 0);
      }
    }
  }
}

// GlobalMaxPool has only ONNX opset 1, so ONNX's own node tests for it
// (opset 1) are outside haq's opset range: checked here, after a conv (NHWC
// buffer) and on the plain graph input, against the max over each channel.
TEST_CASE("GlobalMaxPool: the max over each channel, on NHWC and plain buffers") {
  const int64_t B = 2, C = 4, H = 5, W = 3;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  Vec input(static_cast<size_t>(B * 3 * H * W));
  for (auto& v : input) v = u(rng);
  engine::EngineOptions o;
  o.batch = B;

  GraphBuilder conv_only(B, {3, H, W});
  model::Graph g_conv = conv_only.finish(conv_only.conv("input", C, 3, 1, 1));
  const Vec conv_out = engine::Engine(g_conv, o).run_batch(nullptr, input);  // NCHW
  REQUIRE(conv_out.size() == static_cast<size_t>(B * C * H * W));

  GraphBuilder gb(B, {3, H, W});
  const std::string gmp = gb.unary("GlobalMaxPool", gb.conv("input", C, 3, 1, 1));
  gb.g.shapes[gmp] = {B, C, 1, 1};
  const Vec got = engine::Engine(gb.finish(gmp), o).run_batch(nullptr, input);
  REQUIRE(got.size() == static_cast<size_t>(B * C));
  for (int64_t n = 0; n < B; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const auto first = conv_out.begin() + (n * C + c) * H * W;
      CHECK(got[n * C + c] == *std::max_element(first, first + H * W));
    }

  GraphBuilder direct(B, {3, H, W});
  const std::string gmp_in = direct.unary("GlobalMaxPool", "input");
  direct.g.shapes[gmp_in] = {B, 3, 1, 1};
  const Vec got_in = engine::Engine(direct.finish(gmp_in), o).run_batch(nullptr, input);
  REQUIRE(got_in.size() == static_cast<size_t>(B * 3));
  for (int64_t i = 0; i < B * 3; ++i)
    CHECK(got_in[i] == *std::max_element(input.begin() + i * H * W, input.begin() + (i + 1) * H * W));
}
