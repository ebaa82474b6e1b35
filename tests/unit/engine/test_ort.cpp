// fp32 outputs of the engine equal ONNX Runtime's (within 1e-4 relative) on
// every reference model, on a batch of real Fashion-MNIST test images.
// ONNX Runtime comes from npm: `npm install --ignore-scripts` in tests/ort
// (scripts/test.sh does it). Without it this test fails; it never skips.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "haq/engine/engine.h"
#include "haq/model/graph.h"
#include "graph_builder.h"
#include "ort_reference.h"
#include "reference_models.h"

using namespace haq;

namespace {

// Real Fashion-MNIST images for the reference models; uniform [0,1) images
// for a fixture with another input size.
const data::Dataset& data_for(const model::Graph& g) {
  static std::map<std::vector<int64_t>, data::Dataset> random;
  const auto& s = g.inputs[0].shape;
  if (s.size() == 4 && s[1] == 1 && s[2] == 28 && s[3] == 28) return test::fashion_mnist_test();
  auto it = random.find(s);
  if (it == random.end())
    it = random.emplace(s, test::random_dataset(256, s[1], s[2], s[3], 0.f, 1.f, 10, 17)).first;
  return it->second;
}

std::vector<std::string> models_to_check() {
  auto m = test::reference_models();
  // A PyTorch export with BatchNormalization, Clip, depthwise conv and a Reshape chain.
  m.push_back(test::source_path("tests/data/model/dynamic_convnet.onnx"));
  // The ops of issue 16 (scripts/make_op_fixtures.py): a ViT at opsets 17 and
  // 13 (LayerNormalization or its decomposition, Erf, attention MatMuls, shape
  // arithmetic), a ShuffleNetV2-style net (Slice, Split), a LeNet with PRelu
  // and Tanh at opset 9, and a zoo-style ResNet with Sum.
  for (const char* f : {"vit_tiny_op17", "vit_tiny_op13", "shufflenet_tiny", "lenet_prelu_op9", "zoo_like_resnet"})
    m.push_back(test::source_path(std::string("tests/data/model/") + f + ".onnx"));
  return m;
}

}  // namespace

TEST_CASE("fp32 outputs equal ONNX Runtime's on every reference model") {
  test::require_onnx_runtime();
  auto models = models_to_check();
  REQUIRE(models.size() >= 2);
  const int64_t B = 64;
  auto dir = test::scratch_dir("engine_ort");
  for (const auto& m : models) {
    INFO(m);
    model::ImportOptions io;
    io.batch = B;
    auto g = model::import_onnx(m, io);
    const auto& d = data_for(g);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < B; ++i) idx.push_back(i * 97 % d.size());
    std::vector<float> input(static_cast<size_t>(B * d.sample_elems()));
    data::to_model_layout(d, idx, g.inputs[0].shape, input.data());
    engine::EngineOptions eo;
    eo.batch = B;
    engine::Engine e(g, eo);
    auto ours = e.run_fp32(d, idx);
    auto ref = test::run_onnx_runtime(m, input, g.inputs[0].shape, dir);
    REQUIRE(ref.size() == ours.size());
    // Relative to the largest logit magnitude of the sample.
    const double worst = test::worst_relative_difference(ours, ref, e.num_classes());
    INFO("worst relative difference " << worst);
    CHECK(worst <= 1e-4);
  }
}

TEST_CASE("BatchNormalization folding changes fp32 outputs by less than 1e-5") {
  const int64_t B = 32;
  int with_bn = 0;
  for (const auto& m : models_to_check()) {
    INFO(m);
    model::ImportOptions io;
    io.batch = B;
    io.fold_batchnorm = false;
    auto unfolded = model::import_onnx(m, io);
    const auto& d = data_for(unfolded);
    std::vector<int64_t> idx;
    for (int64_t i = 0; i < B; ++i) idx.push_back(i * 31 % d.size());
    int bn = 0;
    for (const auto& n : unfolded.nodes) bn += n.op == "BatchNormalization";
    if (bn == 0) continue;
    ++with_bn;
    io.fold_batchnorm = true;
    auto folded = model::import_onnx(m, io);
    int bn_after = 0;
    for (const auto& n : folded.nodes) bn_after += n.op == "BatchNormalization";
    CHECK(bn_after < bn);
    engine::EngineOptions eo;
    eo.batch = B;
    engine::Engine a(unfolded, eo), b(folded, eo);
    auto ya = a.run_fp32(d, idx), yb = b.run_fp32(d, idx);
    REQUIRE(ya.size() == yb.size());
    double worst = 0, scale = 1e-6;
    for (float v : ya) scale = std::max(scale, double(std::fabs(v)));
    for (size_t i = 0; i < ya.size(); ++i) worst = std::max(worst, std::fabs(double(ya[i]) - yb[i]));
    INFO("worst difference " << worst << " (largest logit " << scale << ")");
    CHECK(worst / scale < 1e-5);
  }
  // At least one model must exercise the fold.
  CHECK(with_bn > 0);
}
