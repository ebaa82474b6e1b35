// Post-op chains: the plan's rule (one clip, combined bounds), oneDNN's
// int8 kernels computing each chain the plan produces on this CPU, and the
// engine running every activation that can follow a layer, direct u8 on and
// off, split on and off, bits 2..8, against a plain integer reference.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "graph_builder.h"
#include "haq/engine/engine.h"
#include "haq/engine/kernels.h"
#include "haq/engine/plan.h"
#include "haq/quant/policy.h"

using namespace haq;
using engine::Eltwise;
using engine::FusedActivation;
using engine::OutputEncoding;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

FusedActivation act(FusedActivation::Kind k, float lo = 0, float hi = 0) {
  FusedActivation a;
  a.kind = k;
  a.lo = k == FusedActivation::Kind::relu ? 0.f : lo;
  a.hi = k == FusedActivation::Kind::relu ? kInf : hi;
  return a;
}

OutputEncoding codes(float inv_scale, float hi) {
  OutputEncoding o;
  o.codes = true;
  o.inv_scale = inv_scale;
  o.lo = 0;
  o.hi = hi;
  return o;
}

// The activation as ONNX defines it, then the consumer's quantizer before rounding.
float unfused(const FusedActivation& a, const OutputEncoding& o, float x) {
  if (a.kind != FusedActivation::Kind::none) x = std::min(std::max(x, a.lo), a.hi);
  if (!o.codes) return x;
  return std::min(std::max(x * o.inv_scale, o.lo), o.hi);
}

std::vector<FusedActivation> all_activations() {
  using K = FusedActivation::Kind;
  return {act(K::none), act(K::relu), act(K::clip, 0, 6), act(K::clip, -1, 1), act(K::clip, -kInf, 0.5f),
          act(K::clip, 0.25f, kInf), act(K::clip, 2, 1)};
}

}  // namespace

TEST_CASE("post_op_chain: an activation before requantisation becomes one linear and one clip") {
  using K = FusedActivation::Kind;
  // The chain oneDNN 2.6 gets wrong on AVX2, clip(0,6) -> linear(10) -> clip(0,255), is never made.
  auto c = engine::post_op_chain(act(K::clip, 0, 6), codes(10, 255));
  REQUIRE(c.size() == 2);
  CHECK(c[0] == Eltwise{Eltwise::Kind::linear, 10, 0});
  CHECK(c[1] == Eltwise{Eltwise::Kind::clip, 0, 60});
  CHECK(engine::apply_chain(c, 2) == 20);
  // Relu then codes: the relu is the clip's lower bound.
  c = engine::post_op_chain(act(K::relu), codes(4, 15));
  REQUIRE(c.size() == 2);
  CHECK(c[1] == Eltwise{Eltwise::Kind::clip, 0, 15});
  // Bounds beyond the codes' range are cut to it; a negative Clip min to 0.
  c = engine::post_op_chain(act(K::clip, -1, 100), codes(10, 255));
  CHECK(c[1] == Eltwise{Eltwise::Kind::clip, 0, 255});
  // f32 outputs keep the activation alone.
  CHECK(engine::post_op_chain(act(K::clip, 0, 6), {}) == std::vector<Eltwise>{{Eltwise::Kind::clip, 0, 6}});
  CHECK(engine::post_op_chain(act(K::relu), {}) == std::vector<Eltwise>{{Eltwise::Kind::relu, 0, 0}});
  CHECK(engine::post_op_chain(act(K::none), {}).empty());
  CHECK(engine::to_string(engine::post_op_chain(act(K::clip, 0, 6), codes(10, 255))) == "linear(10) clip(0, 60)");

  // The combined chain equals the activation followed by the quantizer exactly, for any float.
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-20.f, 20.f);
  for (const auto& a : all_activations())
    for (float s : {0.37f, 10.f, 42.5f})
      for (float hi : {3.f, 15.f, 255.f}) {
        const auto chain = engine::post_op_chain(a, codes(s, hi));
        int clips = 0;
        for (const auto& e : chain) clips += e.kind == Eltwise::Kind::clip;
        CHECK(clips <= 1);
        for (int i = 0; i < 2000; ++i) {
          const float x = i < 4 ? std::vector<float>{a.lo, a.hi, 0.f, -0.f}[i] : u(rng);
          if (!std::isfinite(x)) continue;
          INFO("lo " << a.lo << " hi " << a.hi << " s " << s << " x " << x);
          REQUIRE(engine::apply_chain(chain, x) == unfused(a, codes(s, hi), x));
        }
      }
}

TEST_CASE("choose_output_encoding: direct u8 only into identical unsigned quantizers of quantized convs") {
  auto reader = [](int layer, int bits, bool is_unsigned, float scale) {
    engine::OutputReader r;
    r.quantized_conv_input = true;
    r.layer = layer;
    r.a_bits = bits;
    r.quantizer = quant::make_act_quant(scale * 255.f, bits, is_unsigned);
    return r;
  };
  auto e = engine::choose_output_encoding(true, false, {reader(3, 8, true, 0.1f), reader(4, 8, true, 0.1f)});
  CHECK(e.codes);
  CHECK(e.consumer == 3);
  CHECK(e.hi == 255);
  CHECK(e.inv_scale == quant::make_act_quant(25.5f, 8, true).inv_scale);
  CHECK_FALSE(engine::choose_output_encoding(true, false, {reader(3, 8, true, 0.1f), reader(4, 7, true, 0.1f)}).codes);
  CHECK_FALSE(engine::choose_output_encoding(true, false, {reader(3, 8, true, 0.1f), reader(4, 8, true, 0.2f)}).codes);
  CHECK_FALSE(engine::choose_output_encoding(true, false, {reader(3, 8, false, 0.1f)}).codes);
  CHECK_FALSE(engine::choose_output_encoding(true, true, {reader(3, 8, true, 0.1f)}).codes);
  CHECK_FALSE(engine::choose_output_encoding(false, false, {reader(3, 8, true, 0.1f)}).codes);
  CHECK_FALSE(engine::choose_output_encoding(true, false, {}).codes);
  engine::OutputReader other;  // e.g. an Add, or a conv reading it as its weight
  CHECK_FALSE(engine::choose_output_encoding(true, false, {reader(3, 8, true, 0.1f), other}).codes);
}

namespace {

// What oneDNN is specified to compute: out = scale[c] * (acc + bias_acc[c]),
// the chain, then for u8 outputs round half to even and saturate.
float expected(float acc, float scale, float bias_acc, const std::vector<Eltwise>& chain, bool u8) {
  float v = engine::apply_chain(chain, scale * (acc + bias_acc));
  if (!u8) return v;
  v = std::nearbyint(v);
  return std::min(std::max(v, 0.f), 255.f);
}

// Counts outputs that differ from the specification: f32 beyond 1e-5
// relative; u8 codes at all, unless the specified value lies within 1e-3 of
// a rounding tie (where oneDNN's order of float operations may round the
// other way).
template <class Acc>
int64_t mismatches(const std::vector<float>& got, const Acc& acc_at, int64_t n, int64_t c_out, bool channels_last,
                   int64_t plane, const std::vector<float>& scales, const std::vector<float>& bias,
                   const std::vector<Eltwise>& chain, bool u8) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = channels_last ? i % c_out : (i / plane) % c_out;
    const float want = expected(static_cast<float>(acc_at(i)), scales[c], bias[c], chain, u8);
    if (u8) {
      const float raw = engine::apply_chain(chain, scales[c] * (static_cast<float>(acc_at(i)) + bias[c]));
      const float frac = raw - std::floor(raw);
      if (std::fabs(frac - 0.5f) < 1e-3f) continue;
      bad += got[i] != want;
    } else {
      bad += std::fabs(got[i] - want) > 1e-5f * std::max(1.f, std::fabs(want));
    }
  }
  return bad;
}

}  // namespace

// We rely on oneDNN computing the chains the plan produces; check it does, on
// this CPU, for the kernels the engine uses (1x1, 3x3, depthwise, matmul).
TEST_CASE("oneDNN int8 kernels compute every chain the plan produces") {
  std::mt19937 rng(11);
  struct Geometry {
    const char* name;
    engine::ConvSpec s;
  };
  std::vector<Geometry> convs;
  {
    engine::ConvSpec s;
    s.n = 2, s.c_in = 16, s.h = 5, s.w = 5, s.c_out = 24;
    convs.push_back({"1x1", s});
    s.kernel_h = s.kernel_w = 3, s.pads = {1, 1, 1, 1};
    convs.push_back({"3x3", s});
    s.c_out = 16, s.groups = 16;
    convs.push_back({"depthwise 3x3", s});
  }
  for (int bits : {2, 4, 8}) {
    const int32_t hi_level = (1 << bits) - 1;
    for (const auto& a : all_activations())
      for (bool u8 : {false, true})
        for (auto split : {engine::Int8Split::automatic, engine::Int8Split::always}) {
          OutputEncoding o = u8 ? codes(4.f, static_cast<float>((1 << bits) - 1)) : OutputEncoding{};
          const auto chain = engine::post_op_chain(a, o);
          INFO("bits " << bits << " chain " << engine::to_string(chain) << (u8 ? " u8" : " f32")
                       << (split == engine::Int8Split::always ? " split" : ""));
          for (const auto& geo : convs) {
            INFO(geo.name);
            const auto& s = geo.s;
            std::uniform_int_distribution<int32_t> lv(0, hi_level), wv(-(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1);
            std::vector<int32_t> src(static_cast<size_t>(s.n * s.c_in * s.h * s.w));
            for (auto& v : src) v = lv(rng);
            std::vector<int8_t> w(static_cast<size_t>(s.c_out * (s.c_in / s.groups) * s.kernel_h * s.kernel_w));
            for (auto& v : w) v = static_cast<int8_t>(bits == 1 ? 1 : wv(rng));
            std::vector<float> scales(static_cast<size_t>(s.c_out)), bias(static_cast<size_t>(s.c_out));
            std::uniform_real_distribution<float> sc(0.002f, 0.05f), bi(-30.f, 30.f);
            for (auto& v : scales) v = sc(rng);
            for (auto& v : bias) v = bi(rng);
            const auto acc = engine::conv_int8_accumulators(s, src, true, w, split);
            const auto got = engine::conv_int8_chain(s, src, true, w, scales, bias, chain, u8, split);
            REQUIRE(got.size() == acc.size());
            const int64_t plane = s.out_h() * s.out_w();
            CHECK(mismatches(got, [&](int64_t i) { return acc[i]; }, static_cast<int64_t>(got.size()), s.c_out, false,
                             plane, scales, bias, chain, u8) == 0);
          }
          // Matmul (Gemm layers and linear layers over tokens).
          const int64_t rows = 12, k = 40, n = 9;
          std::uniform_int_distribution<int32_t> lv(0, hi_level), wv(-(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1);
          std::vector<int32_t> src(static_cast<size_t>(rows * k));
          for (auto& v : src) v = lv(rng);
          std::vector<int8_t> w(static_cast<size_t>(n * k));
          for (auto& v : w) v = static_cast<int8_t>(wv(rng));
          std::vector<float> scales(static_cast<size_t>(n), 0.01f), bias(static_cast<size_t>(n));
          for (int64_t j = 0; j < n; ++j) scales[j] = 0.003f * (j + 1), bias[j] = -20.f + 5.f * j;
          const auto acc = engine::matmul_int8_accumulators(rows, k, n, src, true, w, split);
          const auto got = engine::matmul_int8_chain(rows, k, n, src, true, w, scales, bias, chain, u8, split);
          INFO("matmul");
          CHECK(mismatches(got, [&](int64_t i) { return acc[i]; }, rows * n, n, true, 1, scales, bias, chain, u8) == 0);
        }
  }
}

namespace {

// The activations that can follow a layer, as graph nodes (the normalised form).
struct Activation {
  std::string label, op;
  float min = 0, max = 0, alpha = 0, beta = 0;
};

std::vector<Activation> following_activations() {
  return {{"none", ""},
          {"Relu", "Relu"},
          {"Clip(0,6)", "Clip", 0.f, 6.f},
          {"Clip(-1,1)", "Clip", -1.f, 1.f},
          {"Clip(0.2,inf)", "Clip", 0.2f, kInf},
          {"LeakyRelu", "LeakyRelu", 0, 0, 0.1f},
          {"HardSwish", "HardSwish"},
          {"HardSigmoid", "HardSigmoid", 0, 0, 0.2f, 0.5f},
          {"Sigmoid", "Sigmoid"},
          {"Tanh", "Tanh"}};
}

float activation_ref(const Activation& a, float x) {
  if (a.op.empty()) return x;
  if (a.op == "Relu") return std::max(x, 0.f);
  if (a.op == "Clip") return std::min(std::max(x, a.min), a.max);
  if (a.op == "LeakyRelu") return x >= 0.f ? x : a.alpha * x;
  if (a.op == "HardSwish") return x * std::clamp(x / 6.f + 0.5f, 0.f, 1.f);
  if (a.op == "HardSigmoid") return std::clamp(a.alpha * x + a.beta, 0.f, 1.f);
  if (a.op == "Sigmoid") return 1.f / (1.f + std::exp(-x));
  return std::tanh(x);
}

// conv (3x3) -> activation -> conv (1x1) -> output, batch 4.
model::Graph two_layers(const Activation& a, int64_t batch) {
  test::GraphBuilder gb(batch, {4, 6, 6}, 7);
  std::string x = gb.conv("input", 8, 3, 1, 1);
  if (!a.op.empty()) {
    x = gb.unary(a.op, x);
    auto& n = gb.g.nodes.back();
    auto set = [&](const char* k, float v) {
      n.attrs[k].kind = model::Attribute::Kind::f;
      n.attrs[k].f = v;
    };
    if (a.op == "Clip") set("min", a.min), set("max", a.max);
    if (a.op == "LeakyRelu") set("alpha", a.alpha);
    if (a.op == "HardSigmoid") set("alpha", a.alpha), set("beta", a.beta);
  }
  std::string y = gb.conv(x, 6, 1);
  return gb.finish(y);
}

// One quantized layer by hand from the engine's own quantizers: integer
// accumulators of the levels, then scale * (acc + bias / scale).
std::vector<float> layer_by_hand(const model::Layer& l, const engine::Engine::QuantizedLayer& q,
                                 const std::vector<float>& x) {
  std::vector<float> xl(x.size());
  for (size_t i = 0; i < x.size(); ++i) xl[i] = static_cast<float>(q.act.level(x[i]));
  std::vector<float> wl(q.weights.values.begin(), q.weights.values.end());
  auto acc = test::conv_reference(xl, l, wl, std::vector<float>(static_cast<size_t>(l.c_out), 0.f));
  const int64_t plane = l.out_h * l.out_w;
  for (size_t i = 0; i < acc.size(); ++i) {
    const int64_t c = (static_cast<int64_t>(i) / plane) % l.c_out;
    const float s = q.act.scale * q.weights.scales[c];
    acc[i] = s * (acc[i] + q.bias[c] / s);
  }
  return acc;
}

}  // namespace

TEST_CASE("every activation after a quantized layer: direct u8 on and off, split on and off, bits 2..8") {
  const int64_t B = 4;
  auto d = test::random_dataset(B, 4, 6, 6, -1.f, 1.f, 6, 13);
  std::vector<int64_t> idx = {0, 1, 2, 3};
  std::vector<float> x(d.images.begin(), d.images.end());
  for (const auto& a : following_activations()) {
    const model::Graph g = two_layers(a, B);
    for (bool direct : {false, true})
      for (auto split : {engine::Int8Split::automatic, engine::Int8Split::always}) {
        engine::EngineOptions o;
        o.batch = B;
        o.int8_split = split;
        o.direct_u8_outputs = direct;
        engine::Engine e(g, o);
        e.calibrate(d, idx);
        for (int bits = 2; bits <= 8; ++bits) {
          INFO(a.label << ", bits " << bits << (direct ? ", direct u8" : ", f32 outputs")
                       << (split == engine::Int8Split::always ? ", split" : ""));
          const quant::Policy p = quant::uniform_policy(g, bits, bits);
          const auto plan = e.plan(p);
          // Only the activations the layer fuses (Relu, Clip) can take the
          // direct path, and only into an unsigned quantizer.
          const bool fused = a.op == "Relu" || a.op == "Clip" || a.op.empty();
          const bool unsigned_next = e.calibration()[1].is_unsigned;
          CHECK(plan.layers[0].output.codes == (direct && fused && unsigned_next));
          CHECK(plan.layers[0].input.from_producer == false);
          CHECK(plan.layers[1].input.from_producer == plan.layers[0].output.codes);
          const auto got = e.run(p, d, idx);

          const auto q0 = e.quantized_layer(0, bits, bits), q1 = e.quantized_layer(1, bits, bits);
          auto y = layer_by_hand(g.layers[0], q0, x);
          for (auto& v : y) v = activation_ref(a, v);
          const auto want = layer_by_hand(g.layers[1], q1, y);
          REQUIRE(got.size() == want.size());
          // Exact but for the float order of oneDNN's scale and bias, which
          // can move a value that lies on a rounding tie of the second
          // layer's quantizer by one level: allow a few such outputs.
          double max_ref = 0;
          for (float v : want) max_ref = std::max(max_ref, double(std::fabs(v)));
          int64_t off = 0;
          for (size_t i = 0; i < want.size(); ++i) off += std::fabs(got[i] - want[i]) > 1e-5 * std::max(1.0, max_ref);
          CHECK(off <= static_cast<int64_t>(want.size()) / 50);
        }
      }
  }
}
