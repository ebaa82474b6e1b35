// The model corpus (models/corpus/, `scripts/train_reference_models.py
// --models corpus`): small Fashion-MNIST models whose exports exercise the
// ops of common architectures (ReLU6 = Clip(0, 6), HardSwish, squeeze-
// excitation, SiLU, Concat branches, BatchNormalization no importer can
// fold). Per model, two tests: haq's fp32 logits equal ONNX Runtime's within
// 1e-4 relative on a batch of real test images, and W8A8 (every layer 8/8,
// calibrated as `haq eval` calibrates by default) keeps top-1 within 0.5
// points of fp32 on the first 2000 test images.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "haq/engine/engine.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "haq/search/measurement.h"
#include "ort_reference.h"
#include "reference_models.h"

using namespace haq;

namespace {

std::string corpus_model(const std::string& name) { return test::source_path("models/corpus/" + name + ".onnx"); }

/// The Fashion-MNIST train split (loaded once): calibration samples.
const data::Dataset& fashion_mnist_train() {
  static const data::Dataset d = [] {
    data::DataSpec spec;
    spec.data = "fashion-mnist";
    return data::load_dataset(spec, data::Split::train);
  }();
  return d;
}

model::Graph import_at(const std::string& path, int64_t batch) {
  REQUIRE(std::filesystem::exists(path));
  model::ImportOptions io;
  io.batch = batch;
  return model::import_onnx(path, io);
}

/// The graph haq runs still holds `op`: folding did not remove what the
/// model exists to exercise.
void check_runs_op(const model::Graph& g, const std::string& op) {
  int count = 0;
  for (const auto& n : g.nodes) count += n.op == op;
  INFO("op " << op);
  CHECK(count > 0);
}

void check_fp32_equals_onnx_runtime(const std::string& name, const std::vector<std::string>& ops) {
  const std::string path = corpus_model(name);
  INFO(path);
  const int64_t B = 64;
  auto g = import_at(path, B);
  for (const auto& op : ops) check_runs_op(g, op);
  const auto& d = test::fashion_mnist_test();
  // Spread over the split, every class present.
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < B; ++i) idx.push_back(i * 97 % d.size());
  std::vector<float> input(static_cast<size_t>(B * d.sample_elems()));
  data::to_model_layout(d, idx, g.inputs[0].shape, input.data());
  engine::EngineOptions eo;
  eo.batch = B;
  engine::Engine e(g, eo);
  const auto ours = e.run_fp32(d, idx);
  const auto ref = test::run_onnx_runtime(path, input, g.inputs[0].shape, test::scratch_dir("corpus_ort_" + name));
  REQUIRE(ref.size() == ours.size());
  const double worst = test::worst_relative_difference(ours, ref, e.num_classes());
  INFO("worst relative difference " << worst);
  CHECK(worst <= 1e-4);
}

void check_w8a8_keeps_top1(const std::string& name) {
  const std::string path = corpus_model(name);
  INFO(path);
  // What `haq eval --bits w8a8` does by default: 512 calibration samples
  // from the train split drawn on the "eval.calib" stream of seed 0, the
  // default quantizer (mse clips, bias correction), batch 256.
  const search::MeasurementSetup ms = search::eval_measurement_defaults();
  const auto& train = fashion_mnist_train();
  const auto& test_split = test::fashion_mnist_test();
  const auto calib_idx = search::draw_samples(train, ms.calib_samples, ms.seed, ms.calib_stream);
  REQUIRE(calib_idx.size() == 512);
  std::vector<int64_t> eval_idx;
  for (int64_t i = 0; i < 2000; ++i) eval_idx.push_back(i);
  auto g = import_at(path, ms.batch);
  const quant::Policy w8a8 = quant::uniform_policy(g, 8, 8);
  engine::Engine e(std::move(g), search::engine_options(ms, ms.batch));
  e.calibrate(train, calib_idx);
  engine::PolicyEvaluator ev(e, test_split, eval_idx);
  const engine::Accuracy fp = ev.fp32();
  const engine::Accuracy q = ev.evaluate(w8a8);
  INFO("fp32 top-1 " << fp.top1 << " %, W8A8 top-1 " << q.top1 << " % (fidelity " << q.fidelity
                     << " %) on " << q.samples << " test images");
  REQUIRE(q.samples == 2000);
  // A real model, not chance: the fp32 figure is what the W8A8 one is held to.
  CHECK(fp.top1 >= 85.0);
  CHECK(std::fabs(q.top1 - fp.top1) <= 0.5);
}

}  // namespace

TEST_CASE("corpus fmnist-mobilenetv2: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-mobilenetv2", {"Clip", "Add"});
}
TEST_CASE("corpus fmnist-mobilenetv2: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-mobilenetv2");
}

TEST_CASE("corpus fmnist-mobilenetv3: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-mobilenetv3", {"HardSwish", "HardSigmoid", "Mul", "GlobalAveragePool"});
}
TEST_CASE("corpus fmnist-mobilenetv3: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-mobilenetv3");
}

TEST_CASE("corpus fmnist-efficientnet: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-efficientnet", {"Sigmoid", "Mul", "Add"});
}
TEST_CASE("corpus fmnist-efficientnet: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-efficientnet");
}

TEST_CASE("corpus fmnist-inception: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-inception", {"Concat", "MaxPool", "AveragePool"});
}
TEST_CASE("corpus fmnist-inception: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-inception");
}

// BatchNormalization after the input, an Add and a Concat: the engine runs it.
TEST_CASE("corpus fmnist-bn18: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-bn18", {"BatchNormalization", "Concat", "Add"});
  CHECK(import_at(corpus_model("fmnist-bn18"), 1).opset == 18);
}
TEST_CASE("corpus fmnist-bn18: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-bn18");
}
