// haq eval: fp32 and quantized accuracy of a model on a dataset, measured on
// oneDNN integer kernels (docs/eval.md).
#include <chrono>
#include <cstdio>
#include <memory>
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "data_args.h"
#include "haq/core/error.h"
#include "haq/core/rng.h"
#include "haq/data/dataset.h"
#include "haq/engine/engine.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "haq/quant/quantizer.h"
#include "haq/search/measurement.h"

namespace {

struct EvalOptions {
  std::string model, data, bits, policy, metric = "top1", calib_method = "mse";
  std::string weight_clip = "mse";
  int64_t samples = 0, calib = 512, batch = 0;  // batch 0: chosen (data::choose_batch)
  haq::app::DataArgs data_args;
  uint64_t seed = 0;
  bool json = false, no_bias_correction = false, explain = false;
  std::set<std::string> given;  ///< options given on the command line (they override a policy's record)
};

nlohmann::json accuracy_json(const haq::engine::Accuracy& a) {
  return {{"top1", a.top1},
          {"top5", a.top5},
          {"fidelity", a.fidelity},
          {"samples", a.samples},
          {"seconds", a.seconds},
          {"samples_per_second", a.seconds > 0 ? a.samples / a.seconds : 0.0}};
}

int run_eval(const EvalOptions& o) {
  using namespace haq;
  // Validate the cheap things first.
  const quant::CalibMethod calib_method = quant::parse_calib_method(o.calib_method);
  const quant::WeightClip weight_clip = quant::parse_weight_clip(o.weight_clip);
  if (!o.bits.empty() && !o.policy.empty())
    fail(ErrorKind::usage, "", "--bits/--policy", "give one of --bits and --policy, not both");
  std::pair<int, int> bits{8, 8};
  if (!o.bits.empty()) bits = quant::parse_bits_spec(o.bits);
  haq::engine::Accuracy probe;
  probe.metric(o.metric);  // Error(usage) for an unknown metric name
  // --preprocess/--labels, else what a search's policy recorded.
  const app::DataChoice dc = app::data_choice(o.data_args, o.policy);
  const data::Preprocess& pre = dc.preprocess;
  // A policy from haq search records how its accuracy was measured; by
  // default measure the same way, so that the figures agree (docs/eval.md).
  search::RecordedMeasurement rec;
  if (!o.policy.empty()) rec = search::read_recorded_measurement(o.policy);
  auto overrides = [&](const char* option) { return !rec.recorded || o.given.count(option) > 0; };
  search::MeasurementOverrides ov;
  if (overrides("--seed")) ov.seed = o.seed;
  if (overrides("--calib")) ov.calib_samples = o.calib;
  if (overrides("--samples")) ov.test_samples = o.samples;
  if (overrides("--batch")) ov.batch = o.batch;
  if (overrides("--calib-method")) ov.calib_method = calib_method;
  if (overrides("--weight-clip")) ov.weight_clip = weight_clip;
  if (overrides("--no-bias-correction")) ov.bias_correction = !o.no_bias_correction;
  const search::MeasurementSetup ms =
      search::apply_overrides(rec.recorded ? rec.setup : search::eval_measurement_defaults(), ov);

  // Imported at batch 1 first: per-sample shapes tell the data its channels
  // and the batch its memory; re-imported at the run's batch below.
  model::ImportOptions io;
  io.batch = 1;
  model::Graph g = model::import_onnx(o.model, io);
  quant::Policy policy;
  std::string policy_name;
  if (!o.policy.empty()) {
    policy = quant::load_policy(o.policy, g);
    policy_name = o.policy;
  } else if (bits.first == 0) {
    policy = quant::uniform_policy(g, 8, 8);
    for (auto& l : policy.layers) l.fp32 = true;
    policy_name = "fp32";
  } else {
    policy = quant::uniform_policy(g, bits.first, bits.second);
    policy_name = fmt::format("w{}a{}", bits.first, bits.second);
  }

  // Labels are checked against the model's outputs as they are read, so an
  // error names the labels file and the sample.
  const data::DataSpec spec = search::data_spec_for(o.data, pre, dc.labels, g);
  // One folder (or .npy pair) serving both splits is read once.
  const bool shared = data::splits_shared(spec);
  const data::Dataset test = data::load_dataset(spec, data::Split::test);
  const data::Dataset train_own = shared ? data::Dataset{} : data::load_dataset(spec, data::Split::train);
  const data::Dataset& train = shared ? test : train_own;
  search::print_data_note(test, train, g);
  const auto eval_idx = search::draw_samples(test, ms.test_samples, ms.seed, ms.test_stream);
  const auto calib_idx = search::draw_samples(train, ms.calib_samples, ms.seed, ms.calib_stream);
  // Never more than the samples run at once; by default (no --batch, no
  // record) within the memory bound. Calibration gives the same result at
  // any batch >= its samples, so the cap does not change a figure.
  const int64_t batch =
      data::choose_batch(ms.batch, search::largest_activation(g),
                         static_cast<int64_t>(std::max(eval_idx.size(), calib_idx.size())));
  g = search::graph_at_batch(std::move(g), o.model, batch, io);

  // A model with a fixed batch dim runs at that batch.
  const engine::EngineOptions eo = search::engine_options(ms, g.batch);
  const bool batch_matters = g.dynamic_batch;
  const std::string model_path = g.source.empty() ? o.model : g.source;
  engine::Engine e(std::move(g), eo);
  const std::vector<std::string> differences =
      rec.recorded ? search::measurement_differences(rec, ms, o.data, train, test, batch_matters)
                   : std::vector<std::string>{};
  std::string metric = o.metric;
  if (test.labels.empty() && metric != "fidelity") metric = "fidelity";

  auto t0 = std::chrono::steady_clock::now();
  e.calibrate(train, calib_idx);
  const double calib_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  engine::PolicyEvaluator ev(e, test, eval_idx);
  const engine::Accuracy fp = ev.fp32();
  const engine::Accuracy q = ev.evaluate(policy);
  const double delta = q.metric(metric) - fp.metric(metric);

  if (o.json) {
    nlohmann::json j = {
        {"model", o.model},
        {"data", o.data},
        {"preprocess", data::preprocess_to_json(pre)},
        {"labels", dc.labels},
        {"sample_shape", {test.channels, test.height, test.width}},
        {"policy", policy_name},
        {"metric", metric},
        {"samples", static_cast<int64_t>(eval_idx.size())},
        {"calibration_samples", static_cast<int64_t>(calib_idx.size())},
        {"seed", ms.seed},
        {"batch", e.options().batch},
        {"calib_method", quant::to_string(eo.calib)},
        {"weight_clip", quant::to_string(eo.weight_clip)},
        {"bias_correction", eo.bias_correction},
        {"calibration_seconds", calib_s},
        {"fp32", accuracy_json(fp)},
        {"quantized", accuracy_json(q)},
        {"delta", delta},
    };
    if (o.explain) j["plan"] = engine::plan_to_json(e.plan(policy));
    if (rec.recorded)
      j["recorded"] = {{"top1", rec.test_top1 ? nlohmann::json(*rec.test_top1) : nlohmann::json()},
                       {"comparable", differences.empty()},
                       {"differences", differences}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  if (o.explain) fmt::print("plan (how each layer executes; docs/quantization.md)\n{}\n", engine::format_plan(e.plan(policy)));
  fmt::print("model        {} ({} quantizable layers, batch {})\n", model_path,
             e.graph().layers.size(), e.options().batch);
  fmt::print("data         {}: {} test samples (evaluation), {} train samples (calibration), seed {}\n",
             o.data, eval_idx.size(), calib_idx.size(), ms.seed);
  fmt::print("input        {}x{}x{} (C x H x W){}{}\n", test.channels, test.height, test.width,
             pre.resize || pre.crop || !pre.mean.empty() || !pre.std.empty() || pre.channels ||
                     pre.scale != 255.f || pre.channel_order != "rgb"
                 ? ", preprocess " + data::to_string(pre)
                 : std::string(),
             dc.labels.empty() ? std::string() : ", labels " + dc.labels);
  fmt::print("quantizer    activations {}, weight clip {}, bias correction {}\n",
             quant::to_string(eo.calib), quant::to_string(eo.weight_clip),
             eo.bias_correction ? "on" : "off");
  fmt::print("policy       {}\n", policy_name);
  auto line = [&](const char* name, const engine::Accuracy& a) {
    fmt::print("{:<12} {} {:6.2f}%   (top1 {:.2f}%, top5 {:.2f}%, fidelity {:.2f}%)   {:.0f} samples/s\n",
               name, metric, a.metric(metric), a.top1, a.top5, a.fidelity,
               a.seconds > 0 ? a.samples / a.seconds : 0.0);
  };
  line("fp32", fp);
  line("quantized", q);
  fmt::print("delta        {:+.2f} points\n", delta);
  if (rec.recorded) {
    const std::string figure = rec.test_top1 ? fmt::format("top1 {:6.2f}%", *rec.test_top1) : "no test figure";
    if (differences.empty())
      fmt::print("recorded     {} by haq search, measured the same way (calibration and samples of the policy)\n",
                 figure);
    else
      fmt::print("recorded     {} by haq search; NOT comparable: {}\n", figure, fmt::join(differences, "; "));
  }
  return 0;
}

haq::app::Run setup_eval(CLI::App& sub) {
  auto o = std::make_shared<EvalOptions>();
  sub.description(
      "Measure the fp32 and quantized accuracy of MODEL on DATA. Quantized layers run real\n"
      "oneDNN int8 kernels (b-bit levels in 8-bit containers); activation ranges are\n"
      "calibrated on the train split, accuracy is measured on the test split.");
  sub.add_option("MODEL", o->model, "ONNX model file")->required();
  sub.add_option("--data", o->data,
                 "fashion-mnist, mnist, a folder of IDX files, IMAGES.npy,LABELS.npy, or an image folder")
      ->required();
  sub.add_option("--bits", o->bits, "uniform bits for every layer: wWaA (e.g. w4a8), one number, or fp32 (default w8a8)");
  sub.add_option("--policy", o->policy,
                 "policy.json with per-layer bits (from haq search: then measured with the calibration, "
                 "samples, seed and batch it records, unless given below)");
  sub.add_option("--samples", o->samples, "evaluation samples from the test split (0: all)")
      ->check(haq::app::at_least(0))
      ->capture_default_str();
  sub.add_option("--calib", o->calib, "calibration samples from the train split")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30))
      ->capture_default_str();
  sub.add_option("--metric", o->metric, "top1, top5 or fidelity (agreement with fp32 top-1)")
      ->capture_default_str();
  sub.add_option("--calib-method", o->calib_method, "activation ranges: mse, minmax, percentile or kl")
      ->capture_default_str();
  sub.add_option("--weight-clip", o->weight_clip, "per-channel weight clip: mse or max")
      ->capture_default_str();
  sub.add_flag("--no-bias-correction", o->no_bias_correction, "do not fold the mean quantization shift into the bias");
  sub.add_option("--batch", o->batch,
                 "batch size for models with a symbolic batch dim (default: up to 256, with the "
                 "largest activation of a batch within 64 MiB; never more than the samples)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
  haq::app::add_data_args(sub, o->data_args);
  sub.add_option("--seed", o->seed, "seed for choosing the samples")->capture_default_str();
  sub.add_flag("--json", o->json, "print the result as JSON (fields in docs/eval.md)");
  sub.add_flag("--explain", o->explain,
               "print the quantization plan: per layer its input and weight quantizers, fused post-ops and "
               "output encoding");
  sub.footer(
      "Examples:\n"
      "  haq eval models/fmnist-resnet.onnx --data fashion-mnist\n"
      "  haq eval models/fmnist-resnet.onnx --data fashion-mnist --bits w4a4 --samples 2000\n"
      "  haq eval models/fmnist-mobilenet.onnx --data fashion-mnist --bits w4a8 --explain --samples 500\n"
      "  haq eval models/fmnist-mobilenet.onnx --data fashion-mnist --policy runs/edge/policy.json --json\n"
      "  haq eval models/fmnist-mlp.onnx --data runs/npy/x_test.npy,runs/npy/y_test.npy --calib-method kl\n"
      "  haq eval models/fmnist-mobilenet.onnx --data runs/imgs --preprocess resize=28,crop=28 \\\n"
      "      --labels runs/imgs/labels.txt\n"
      "Exit codes: 0 ok, 2 bad input (model, data, policy, option), 3 internal error.");
  CLI::App* app = &sub;
  return [o, app]() {
    for (const char* name : {"--samples", "--calib", "--calib-method", "--weight-clip", "--no-bias-correction",
                             "--batch", "--seed"})
      if (app->get_option(name)->count() > 0) o->given.insert(name);
    return run_eval(*o);
  };
}

}  // namespace

HAQ_REGISTER_COMMAND(eval, 30, setup_eval);
