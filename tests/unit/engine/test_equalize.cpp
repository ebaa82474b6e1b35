// Cross-layer equalization (haq/model/equalize.h): the fp32 function is
// unchanged, the equalized channels' ranges match, and only positively
// homogeneous activations are crossed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "graph_builder.h"
#include "haq/engine/engine.h"
#include "haq/model/equalize.h"
#include "reference_models.h"

using namespace haq;

namespace {

// Range of output channel c of layer l, and of input channel c of layer l.
float out_range(const model::Graph& g, const model::Layer& l, int64_t c) {
  const auto& w = g.constants.at(l.weight).f32;
  const int64_t per = static_cast<int64_t>(w.size()) / l.c_out;
  float r = 0;
  for (int64_t k = 0; k < per; ++k) r = std::max(r, std::fabs(w[static_cast<size_t>(c * per + k)]));
  return r;
}

float in_range(const model::Graph& g, const model::Layer& l, int64_t c) {
  const auto& w = g.constants.at(l.weight).f32;
  float r = 0;
  if (l.kind == model::LayerKind::conv) {
    const int64_t cpg = l.c_in / l.groups, opg = l.c_out / l.groups, kk = l.kernel_h * l.kernel_w;
    for (int64_t o = (c / cpg) * opg; o < (c / cpg + 1) * opg; ++o)
      for (int64_t k = 0; k < kk; ++k) r = std::max(r, std::fabs(w[static_cast<size_t>((o * cpg + c % cpg) * kk + k)]));
  } else {
    for (int64_t o = 0; o < l.c_out; ++o) r = std::max(r, std::fabs(w[static_cast<size_t>(o * l.c_in + c)]));
  }
  return r;
}

}  // namespace

TEST_CASE("cross-layer equalization keeps every reference model's fp32 logits within 1e-5") {
  const int64_t B = 16;
  std::vector<int64_t> idx(B);
  for (int64_t i = 0; i < B; ++i) idx[static_cast<size_t>(i)] = i * 37;
  for (const std::string& m : test::reference_models()) {
    INFO(m);
    model::ImportOptions io;
    io.batch = B;
    const model::Graph g = model::import_onnx(m, io);
    engine::EngineOptions eo;
    eo.batch = B;
    const std::vector<float> ref = engine::Engine(g, eo).run_fp32(test::fashion_mnist_test(), idx);
    eo.equalize = true;
    engine::Engine eq(g, eo);
    const std::vector<float> got = eq.run_fp32(test::fashion_mnist_test(), idx);
    REQUIRE(got.size() == ref.size());
    float scale = 0, err = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      scale = std::max(scale, std::fabs(ref[i]));
      err = std::max(err, std::fabs(got[i] - ref[i]));
    }
    CHECK(err <= 1e-5f * scale);
    // The weights did change where there were pairs.
    model::Graph copy = g;
    const model::EqualizeReport r = model::equalize_cross_layer(copy);
    if (m.find("mobilenet") != std::string::npos) {
      // 13 convolutions, each followed by a Relu into the next: 12 pairs.
      CHECK(r.pairs.size() == 12);
      CHECK(r.last_change < 1e-4);
      bool changed = false;
      for (const auto& l : copy.layers)
        changed = changed || copy.constants.at(l.weight).f32 != g.constants.at(l.weight).f32;
      CHECK(changed);
      // The engine holds the equalized weights.
      CHECK(eq.graph().constants.at(copy.layers[0].weight).f32 == copy.constants.at(copy.layers[0].weight).f32);
    }
  }
}

TEST_CASE("cross-layer equalization: each channel of a pair ends with the same range in both layers") {
  model::ImportOptions io;
  model::Graph g = model::import_onnx(test::source_path("models/fmnist-mobilenet.onnx"), io);
  const model::EqualizeReport r = model::equalize_cross_layer(g, 2000, 1e-5);
  REQUIRE(r.pairs.size() == 12);
  CHECK(r.last_change < 1e-5);
  int depthwise_pairs = 0;
  for (const auto& p : r.pairs) {
    INFO(p.first << " -> " << p.second);
    CHECK(p.through == "Relu");
    const model::Layer& a = g.layers[static_cast<size_t>(g.find_layer(p.first))];
    const model::Layer& b = g.layers[static_cast<size_t>(g.find_layer(p.second))];
    depthwise_pairs += (a.depthwise || b.depthwise) ? 1 : 0;
    for (int64_t c = 0; c < a.c_out; ++c) {
      const float r1 = out_range(g, a, c), r2 = in_range(g, b, c);
      if (r1 == 0 || r2 == 0) continue;
      CHECK(r1 == Approx(r2).epsilon(1e-4));
    }
  }
  CHECK(depthwise_pairs == 12);  // every pair has a depthwise side in a MobileNet
}

TEST_CASE("cross-layer equalization crosses Relu but not Clip (Relu6), a shared output or a graph output") {
  auto chain = [](const char* act) {
    test::GraphBuilder gb(2, {3, 8, 8});
    std::string x = gb.conv("input", 4, 3, 1, 1);
    if (std::string(act) == "Clip") {
      x = gb.unary("Clip", x);
      model::Attribute lo, hi;
      lo.kind = hi.kind = model::Attribute::Kind::f;
      lo.f = 0, hi.f = 6;
      gb.g.nodes.back().attrs["min"] = lo;
      gb.g.nodes.back().attrs["max"] = hi;
    } else if (std::string(act) == "Relu") {
      x = gb.unary("Relu", x);
    }
    return gb.finish(gb.conv(x, 5, 3, 1, 1));
  };
  model::Graph relu = chain("Relu"), clip = chain("Clip"), direct = chain("");
  CHECK(model::equalize_cross_layer(relu).pairs.size() == 1);
  CHECK(model::equalize_cross_layer(direct).pairs.size() == 1);
  CHECK(model::equalize_cross_layer(clip).pairs.empty());

  // An output read twice (here by a residual Add as well) is not equalized.
  test::GraphBuilder gb(2, {4, 8, 8});
  const std::string a = gb.conv("input", 4, 3, 1, 1);
  const std::string b = gb.conv(a, 4, 3, 1, 1);
  model::Graph shared = gb.finish(gb.add(a, b));
  CHECK(model::equalize_cross_layer(shared).pairs.empty());
}
