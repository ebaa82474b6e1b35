// The checks of tests/unit/engine/corpus_checks.h.
#include "corpus_checks.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "haq/engine/engine.h"
#include "haq/quant/policy.h"
#include "haq/search/measurement.h"
#include "ort_reference.h"
#include "reference_models.h"

using namespace haq;

namespace haq::test {

std::string corpus_model(const std::string& name) { return test::source_path("models/corpus/" + name + ".onnx"); }

model::Graph import_corpus_at(const std::string& path, int64_t batch) {
  REQUIRE(std::filesystem::exists(path));
  model::ImportOptions io;
  io.batch = batch;
  return model::import_onnx(path, io);
}

namespace {

/// The graph haq runs still holds `op`: folding did not remove what the
/// model exists to exercise.
void check_runs_op(const model::Graph& g, const std::string& op) {
  int count = 0;
  for (const auto& n : g.nodes) count += n.op == op;
  INFO("op " << op);
  CHECK(count > 0);
}

}  // namespace

void check_fp32_equals_onnx_runtime(const std::string& name, const std::vector<std::string>& ops) {
  const std::string path = corpus_model(name);
  INFO(path);
  const int64_t B = 64;
  auto g = import_corpus_at(path, B);
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
  auto g = import_corpus_at(path, ms.batch);
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

}  // namespace haq::test
