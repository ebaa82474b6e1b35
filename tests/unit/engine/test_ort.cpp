// fp32 outputs of the engine equal ONNX Runtime's (within 1e-4 relative) on
// every reference model, on a batch of real Fashion-MNIST test images.
// ONNX Runtime comes from npm: `npm install --ignore-scripts` in tests/ort
// (scripts/test.sh does it). Without it this test fails; it never skips.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "e2e/run_haq.h"
#include "haq/engine/engine.h"
#include "haq/model/graph.h"
#include "graph_builder.h"
#include "reference_models.h"

using namespace haq;

namespace {

std::string find_node() {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/usr/local/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    auto p = std::filesystem::path(dir) / "node";
    if (std::filesystem::exists(p)) return p.string();
  }
  return "";
}

void write_floats(const std::filesystem::path& p, const std::vector<float>& v) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

std::vector<float> read_floats(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary | std::ios::ate);
  std::vector<float> v(static_cast<size_t>(f.tellg()) / 4);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

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
  return m;
}

}  // namespace

TEST_CASE("fp32 outputs equal ONNX Runtime's on every reference model") {
  const std::string node = find_node();
  if (node.empty()) FAIL("node (nodejs) is not on PATH: ONNX Runtime is the fp32 reference");
  const std::string ort_dir = test::source_path("tests/ort");
  if (!std::filesystem::exists(ort_dir + "/node_modules/onnxruntime-node"))
    FAIL("tests/ort/node_modules/onnxruntime-node is missing: run `npm install --ignore-scripts` in "
         "tests/ort (scripts/test.sh does this)");
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
    std::string shape;
    for (auto s : g.inputs[0].shape) shape += (shape.empty() ? "" : ",") + std::to_string(s);
    write_floats(dir / "input.bin", input);
    auto r = test::run_program(node, {ort_dir + "/run_ort.js", m, (dir / "input.bin").string(), shape,
                                      (dir / "output.bin").string(), "--threads", "1"}, 300);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    auto ref = read_floats(dir / "output.bin");
    REQUIRE(ref.size() == ours.size());
    // Relative to the largest logit magnitude of the sample.
    const int64_t classes = e.num_classes();
    double worst = 0;
    for (int64_t n = 0; n < B; ++n) {
      double scale = 1e-6;
      for (int64_t c = 0; c < classes; ++c) scale = std::max(scale, double(std::fabs(ref[n * classes + c])));
      for (int64_t c = 0; c < classes; ++c)
        worst = std::max(worst, std::fabs(double(ours[n * classes + c]) - ref[n * classes + c]) / scale);
    }
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
