// Non-finite numbers at run time are errors naming the dataset, the sample
// and the layer, never a crash or a silent accuracy (issue 15, part 6); and
// the per-layer SQNR diagnostics (part 7).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "graph_builder.h"
#include "haq/core/error.h"
#include "haq/engine/engine.h"

using namespace haq;
using haq::test::GraphBuilder;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

/// The message of the haq::Error `f` throws (of `kind`), "" and a failure if none.
template <typename F>
std::string error_of(F&& f, ErrorKind kind = ErrorKind::data) {
  try {
    f();
  } catch (const Error& e) {
    CHECK(std::string(to_string(e.kind())) == to_string(kind));
    return e.what();
  }
  FAIL_CHECK("expected a haq::Error");
  return "";
}

/// A node of `op` on two activations, appended by hand (GraphBuilder has no Sub/Div/Exp).
std::string node(GraphBuilder& gb, const std::string& op, std::vector<std::string> in, const std::string& name) {
  model::Node n;
  n.name = name;
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = {name + "_out"};
  gb.g.shapes[n.outputs[0]] = gb.g.shapes.at(n.inputs[0]);
  gb.g.dtypes[n.outputs[0]] = model::DType::f32;
  gb.g.nodes.push_back(n);
  return n.outputs[0];
}

std::vector<int64_t> iota(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

engine::EngineOptions at_batch(int64_t b) {
  engine::EngineOptions o;
  o.batch = b;
  return o;
}

/// input [B, 1, 4, 4] -> Flatten -> Gemm(3): one layer, its output the logits.
model::Graph one_gemm(int64_t batch, uint64_t seed = 5) {
  GraphBuilder gb(batch, {1, 4, 4}, seed);
  return gb.finish(gb.gemm(gb.flatten("input"), 3));
}

}  // namespace

TEST_CASE("a NaN or inf in the dataset is Error(data) naming the dataset and the sample") {
  auto d = test::random_dataset(20, 1, 4, 4, 0.f, 1.f, 3, 7);
  d.source = "x.npy";
  d.images[13 * 16 + 5] = kNan;
  d.images[17 * 16 + 0] = -kInf;
  engine::Engine e(one_gemm(8), at_batch(8));
  CHECK_THAT(error_of([&] { e.calibrate(d, iota(20)); }),
             StartsWith("x.npy: sample 13: the model input holds nan at element 5 of the sample"));
  std::vector<int64_t> good;
  for (int64_t i = 0; i < 20; ++i)
    if (i != 13 && i != 17) good.push_back(i);
  e.calibrate(d, good);
  CHECK_THAT(error_of([&] { e.run_fp32(d, {2, 17, 3}); }), StartsWith("x.npy: sample 17: the model input holds -inf at element 0"));
  CHECK_THAT(error_of([&] { e.run(quant::uniform_policy(e.graph(), 4, 4), d, {0, 1, 13}); }),
             StartsWith("x.npy: sample 13: the model input holds nan"));
  // The good samples still run, and a batch run directly names its row.
  CHECK(e.run(quant::uniform_policy(e.graph(), 8, 8), d, good).size() == good.size() * 3);
  std::vector<float> batch(8 * 16, 0.5f);
  batch[6 * 16 + 2] = kInf;
  CHECK_THAT(error_of([&] { e.run_batch(nullptr, batch); }), StartsWith("batch row 6: the model input holds inf at element 2"));
}

TEST_CASE("a non-finite activation is Error(data) naming the sample, the layer and the node that wrote it") {
  // x / x is NaN where a pixel is 0 (0/0) and 1 elsewhere: sample 6 only.
  GraphBuilder gb(4, {1, 4, 4}, 3);
  const std::string q = node(gb, "Div", {"input", "input"}, "x_over_x");
  const std::string fc = gb.gemm(gb.flatten(q), 3);
  model::Graph g = gb.finish(fc);
  const std::string layer = g.layers[0].name;
  auto d = test::random_dataset(10, 1, 4, 4, 0.5f, 1.f, 3, 9);
  d.images[6 * 16 + 9] = 0.f;
  engine::Engine e(g, at_batch(4));
  const std::string want = "random: sample 6: non-finite activation nan at the input of layer '" + layer +
                           "' of the model";
  CHECK_THAT(error_of([&] { e.calibrate(d, iota(10)); }), StartsWith(want));
  CHECK_THAT(error_of([&] { e.calibrate(d, iota(10)); }), Contains("(value 'Flatten_0_out', written by node 'Flatten_0' (Flatten), element 9 of the sample)"));
  e.calibrate(d, {0, 1, 2, 3, 4, 5, 7, 8, 9});
  CHECK_THAT(error_of([&] { e.run_fp32(d, {5, 6}); }), StartsWith(want));
  CHECK_THAT(error_of([&] { e.run(quant::uniform_policy(g, 8, 8), d, {6}); }), StartsWith(want));
}

TEST_CASE("non-finite logits are Error(data) naming the sample and the output") {
  // Exp of the logits overflows to inf for sample 4, whose pixels are huge.
  GraphBuilder gb(4, {1, 4, 4}, 3);
  const std::string fc = gb.gemm(gb.flatten("input"), 3);
  const std::string out = node(gb, "Exp", {fc}, "exp");
  model::Graph g = gb.finish(out);
  auto d = test::random_dataset(8, 1, 4, 4, 0.f, 1.f, 3, 9);
  for (int k = 0; k < 16; ++k) d.images[4 * 16 + k] = k % 2 ? 1e4f : -1e4f;
  engine::Engine e(g, at_batch(4));
  const std::string msg = error_of([&] { e.calibrate(d, iota(8)); });
  CHECK_THAT(msg, StartsWith("random: sample 4: non-finite activation inf in the output of the model"));
  CHECK_THAT(msg, Contains("written by node 'exp' (Exp)"));
}

TEST_CASE("per-layer SQNR of one layer: high at 8 bits, low at 2, isolated equals cumulative, equal to the logits' SQNR") {
  const model::Graph g = one_gemm(8);
  auto d = test::random_dataset(20, 1, 4, 4, -1.f, 1.f, 3, 11);
  engine::Engine e(g, at_batch(8));
  e.calibrate(d, iota(20));
  const auto idx = iota(20);  // 2.5 batches: the padding of the last is not counted
  const auto ref = e.run_fp32(d, idx);
  double signal = 0;
  for (float v : ref) signal += double(v) * v;
  std::map<int, double> db;
  for (int bits : {8, 2}) {
    INFO("bits " << bits);
    const quant::Policy p = quant::uniform_policy(g, bits, bits);
    const auto r = e.layer_sqnr(p, d, idx);
    REQUIRE(r.size() == 1);
    CHECK(r[0].layer == g.layers[0].name);
    CHECK(r[0].quantized);
    // The one layer's output is the logits: the SQNR of run()'s logits.
    const auto q = e.run(p, d, idx);
    double noise = 0;
    for (size_t i = 0; i < q.size(); ++i) noise += (double(ref[i]) - q[i]) * (double(ref[i]) - q[i]);
    CHECK(r[0].signal == Approx(signal).epsilon(1e-12));
    CHECK(r[0].noise_cumulative == Approx(noise).epsilon(1e-12));
    CHECK(r[0].noise_isolated == r[0].noise_cumulative);  // the first layer: exactly
    CHECK(r[0].isolated_db() == r[0].cumulative_db());
    CHECK(r[0].cumulative_db() == Approx(10 * std::log10(signal / noise)).epsilon(1e-9));
    db[bits] = r[0].cumulative_db();
  }
  CHECK(db[8] > 30);
  CHECK(db[2] < 15);
  CHECK(db[8] - db[2] > 20);
}

TEST_CASE("per-layer SQNR of a chain: errors accumulate, fp32 layers add none, observing changes no logit") {
  GraphBuilder gb(4, {1, 6, 6}, 3);
  auto c0 = gb.conv("input", 4, 3, 1, 1);
  auto r0 = gb.unary("Relu", c0);
  auto c1 = gb.conv(r0, 4, 3, 1, 1);
  auto r1 = gb.unary("Relu", c1);
  auto fc = gb.gemm(gb.flatten(r1), 3);
  model::Graph g = gb.finish(fc);
  auto d = test::random_dataset(10, 1, 6, 6, 0.f, 1.f, 3, 8);
  const auto idx = iota(10);
  engine::Engine e(g, at_batch(4));
  e.calibrate(d, idx);

  quant::Policy p = quant::uniform_policy(g, 8, 8);
  p.layers[0].w_bits = p.layers[0].a_bits = 2;  // the culprit
  p.layers[2].fp32 = true;
  const auto r = e.layer_sqnr(p, d, idx);
  REQUIRE(r.size() == 3);
  CHECK(r[0].noise_isolated == r[0].noise_cumulative);
  CHECK(r[1].quantized);
  CHECK(r[1].isolated_db() > r[0].isolated_db() + 10);  // 8 bits alone is far better than 2
  CHECK(r[1].cumulative_db() < r[1].isolated_db());     // carries layer 0's error
  CHECK_FALSE(r[2].quantized);
  CHECK(r[2].noise_isolated == 0);
  CHECK(std::isinf(r[2].isolated_db()));
  CHECK(r[2].noise_cumulative > 0);  // fp32, but its input is quantized upstream
  for (const auto& l : r) CHECK(l.signal > 0);

  // Only layer 1 quantized: layer 0 has no error at all.
  quant::Policy only1 = quant::uniform_policy(g, 8, 8);
  only1.layers[0].fp32 = only1.layers[2].fp32 = true;
  const auto r1b = e.layer_sqnr(only1, d, idx);
  CHECK(r1b[0].noise_cumulative == 0);
  CHECK(r1b[1].noise_cumulative == r1b[1].noise_isolated);
  CHECK(r1b[1].noise_isolated == r[1].noise_isolated);  // isolated does not depend on the rest

  // An observer sees every layer of every batch (3 batches), and the logits
  // are those of an unobserved run (u8 direct outputs or not).
  const quant::Policy all8 = quant::uniform_policy(g, 8, 8);
  const auto plain = e.run(all8, d, idx);
  int calls = 0;
  std::vector<int64_t> counts;
  e.set_layer_observer([&](const engine::LayerOutput& o) {
    ++calls;
    if (o.layer == 0) counts.push_back(o.count);
  });
  const auto observed = e.run(all8, d, idx);
  e.set_layer_observer({});
  CHECK(calls == 9);
  CHECK(counts == std::vector<int64_t>{4 * 4 * 36, 4 * 4 * 36, 2 * 4 * 36});
  CHECK(observed == plain);
  CHECK(e.run(all8, d, idx) == plain);
}
