// haq eval: fp32 and quantized accuracy of a model on a dataset, measured on
// oneDNN integer kernels (docs/eval.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
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
  std::string weight_clip = "mse", weight_rounding = "nearest", rounding_cache, act_quant = "asymmetric";
  int64_t samples = 0, calib = 512, batch = 0;  // batch 0: chosen (data::choose_batch)
  haq::app::DataArgs data_args;
  uint64_t seed = 0;
  bool json = false, no_bias_correction = false, no_input_bias_correction = false, equalize = false, explain = false, per_layer = false,
       ends8 = false;
  int64_t per_layer_samples = 256;
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

/// SQNR in dB for JSON: a number, or null when there is no error (+inf).
nlohmann::json db_json(double db) { return std::isfinite(db) ? nlohmann::json(db) : nlohmann::json(); }

std::string db_text(double db) {
  if (std::isinf(db)) return db > 0 ? "inf" : "-inf";
  return fmt::format("{:.2f}", db);
}

/// Rank (1 = lowest isolated SQNR) of the worst quantized layers: the worst
/// one of up to 3 quantized layers, else the worst 3.
std::map<size_t, int> worst_layers(const std::vector<haq::engine::LayerSqnr>& r) {
  std::vector<size_t> q;
  for (size_t i = 0; i < r.size(); ++i)
    if (r[i].quantized) q.push_back(i);
  std::stable_sort(q.begin(), q.end(),
                   [&](size_t a, size_t b) { return r[a].isolated_db() < r[b].isolated_db(); });
  const size_t k = std::min<size_t>(q.size() <= 3 ? 1 : 3, q.size());
  std::map<size_t, int> rank;
  for (size_t i = 0; i < k; ++i) rank[q[i]] = static_cast<int>(i + 1);
  return rank;
}

int run_eval(const EvalOptions& o) {
  using namespace haq;
  // Validate the cheap things first.
  const quant::CalibMethod calib_method = quant::parse_calib_method(o.calib_method);
  const quant::WeightClip weight_clip = quant::parse_weight_clip(o.weight_clip);
  const quant::WeightRounding weight_rounding = quant::parse_weight_rounding(o.weight_rounding);
  const quant::ActQuantMode act_quant = quant::parse_act_quant(o.act_quant);
  if (!o.bits.empty() && !o.policy.empty())
    fail(ErrorKind::usage, "", "--bits/--policy", "give one of --bits and --policy, not both");
  if (o.ends8 && !o.policy.empty())
    fail(ErrorKind::usage, "", "--ends8", "applies to --bits, not to a --policy (which sets every layer)");
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
  if (overrides("--no-input-bias-correction")) ov.input_bias_correction = !o.no_input_bias_correction;
  if (overrides("--equalize")) ov.equalize = o.equalize;
  if (overrides("--weight-rounding")) ov.weight_rounding = weight_rounding;
  if (overrides("--act-quant")) ov.act_quant = act_quant;
  search::MeasurementSetup ms =
      search::apply_overrides(rec.recorded ? rec.setup : search::eval_measurement_defaults(), ov);
  // kl calibrates one side: asymmetric activations only when asked for (an error then).
  if (ms.calib_method == quant::CalibMethod::kl && !o.given.count("--act-quant"))
    ms.act_quant = quant::ActQuantMode::symmetric;
  const search::RoundingCacheChoice cache = search::rounding_cache_choice(
      o.given.count("--rounding-cache") ? std::optional<std::string>(o.rounding_cache) : std::nullopt,
      ms.weight_rounding, o.policy);

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
    policy = quant::uniform_policy(g, bits.first, bits.second, o.ends8);
    policy_name = fmt::format("w{}a{}{}", bits.first, bits.second, o.ends8 ? " (first and last layers w8a8)" : "");
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
  search::PolicyRounding pr;
  if (eo.weight_rounding == quant::WeightRounding::adaround) pr = search::round_policy_weights(e, policy, cache);
  const engine::RoundingStats& rounding = pr.stats;
  engine::PolicyEvaluator ev(e, test, eval_idx);
  const engine::Accuracy fp = ev.fp32();
  const engine::Accuracy q = ev.evaluate(policy);
  // Scored wrong (engine::score); say so, the accuracy alone would not.
  for (const auto& [what, a] : {std::pair{"fp32", &fp}, std::pair{"quantized", &q}})
    if (a->nan_samples > 0)
      fmt::print(stderr, "haq: warning: the {} logits of {} of {} samples hold NaN; those samples count as wrong\n",
                 what, a->nan_samples, a->samples);
  const double delta = q.metric(metric) - fp.metric(metric);
  const bool any_quantized =
      std::any_of(policy.layers.begin(), policy.layers.end(), [](const quant::LayerBits& l) { return !l.fp32; });
  // Per-layer SQNR on the first evaluation samples (docs/eval.md, "--per-layer").
  std::vector<engine::LayerSqnr> per_layer;
  std::vector<int64_t> per_layer_idx;
  double per_layer_s = 0;
  if (o.per_layer) {
    const size_t n = std::min<size_t>(eval_idx.size(), static_cast<size_t>(o.per_layer_samples));
    per_layer_idx.assign(eval_idx.begin(), eval_idx.begin() + static_cast<std::ptrdiff_t>(n));
    auto t1 = std::chrono::steady_clock::now();
    per_layer = e.layer_sqnr(policy, test, per_layer_idx);
    per_layer_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  }
  const std::map<size_t, int> worst = worst_layers(per_layer);
  // A collapse of agreement with fp32 usually has one culprit layer: say
  // where to look (on stderr, after the result).
  auto warn_collapse = [&] {
    if (!any_quantized || q.fidelity >= 50.0) return;
    std::fflush(stdout);
    fmt::print(stderr,
               "warning: the quantized model agrees with fp32 on only {:.2f}% of the samples (top-1 "
               "fidelity below 50%); see which layers lose it with: haq eval {} --data {} {} {} --per-layer\n",
               q.fidelity, o.model, o.data, o.policy.empty() ? "--bits" : "--policy",
               o.policy.empty() ? policy_name : o.policy);
  };

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
        {"input_bias_correction", eo.input_bias_correction},
        {"equalize", eo.equalize},
        {"weight_rounding", quant::to_string(eo.weight_rounding)},
        {"act_quant", quant::to_string(eo.act_quant)},
        {"rounding", {{"layer_bits", rounding.layer_bits},
                      {"seconds", rounding.seconds},
                      {"cache", cache.file.empty() ? nlohmann::json() : nlohmann::json(cache.file)},
                      {"loaded", rounding.loaded},
                      {"written", pr.written},
                      {"weights", rounding.totals.weights},
                      {"flipped", rounding.totals.flipped},
                      {"error_nearest", rounding.totals.error_nearest},
                      {"error_adaround", rounding.totals.error_adaround}}},
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
    if (o.per_layer) {
      nlohmann::json layers = nlohmann::json::array();
      for (size_t i = 0; i < per_layer.size(); ++i) {
        const auto& r = per_layer[i];
        const auto& b = policy.layers[i];
        layers.push_back({{"layer", r.layer},
                          {"kind", model::to_string(e.graph().layers[i].kind)},
                          {"fp32", b.fp32},
                          {"w_bits", b.fp32 ? nlohmann::json() : nlohmann::json(b.w_bits)},
                          {"a_bits", b.fp32 ? nlohmann::json() : nlohmann::json(b.a_bits)},
                          {"sqnr_cumulative_db", db_json(r.cumulative_db())},
                          {"sqnr_isolated_db", r.quantized ? db_json(r.isolated_db()) : nlohmann::json()},
                          {"worst", worst.count(i) > 0},
                          {"worst_rank", worst.count(i) ? nlohmann::json(worst.at(i)) : nlohmann::json()}});
      }
      j["per_layer"] = {{"samples", static_cast<int64_t>(per_layer_idx.size())},
                        {"seconds", per_layer_s},
                        {"layers", layers}};
    }
    fmt::print("{}\n", j.dump(2));
    warn_collapse();
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
  fmt::print("quantizer    activations {}{}, weight clip {}, bias correction {}{}{}\n",
             quant::to_string(eo.calib), eo.act_quant == quant::ActQuantMode::asymmetric ? " asymmetric" : "",
             quant::to_string(eo.weight_clip),
             !eo.bias_correction ? "off" : eo.input_bias_correction ? "on (weights and inputs)" : "on (weights)",
             eo.equalize ? ", cross-layer equalization" : "",
             eo.weight_rounding == quant::WeightRounding::adaround ? ", adaptive rounding" : "");
  if (!cache.file.empty()) fmt::print("rounding     {}\n", pr.load.summary(cache.file));
  if (rounding.layer_bits + rounding.loaded > 0) fmt::print("rounding     {}\n", rounding.summary());
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
  if (o.per_layer) {
    fmt::print("per-layer    output SQNR against fp32 in dB on {} test samples ({:.1f} s): cumulative = "
               "the policy, isolated = only that layer quantized\n",
               per_layer_idx.size(), per_layer_s);
    size_t width = 5;
    for (const auto& r : per_layer) width = std::max(width, r.layer.size());
    fmt::print("  {:>3}  {:<{}}  {:<6}  {:<5}  {:>10}  {:>8}\n", "#", "layer", width, "kind", "bits",
               "cumulative", "isolated");
    for (size_t i = 0; i < per_layer.size(); ++i) {
      const auto& r = per_layer[i];
      const auto& b = policy.layers[i];
      const std::string bits = b.fp32 ? "fp32" : fmt::format("w{}a{}", b.w_bits, b.a_bits);
      fmt::print("  {:>3}  {:<{}}  {:<6}  {:<5}  {:>10}  {:>8}{}\n", i, r.layer, width,
                 model::to_string(e.graph().layers[i].kind), bits, db_text(r.cumulative_db()),
                 r.quantized ? db_text(r.isolated_db()) : "-",
                 worst.count(i) ? fmt::format("  <- worst {}", worst.at(i)) : std::string());
    }
  }
  warn_collapse();
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
  sub.add_flag("--ends8", o->ends8,
               "with --bits: the first and last layers at w8a8 (the search's uniform-k baselines)");
  sub.add_option("--policy", o->policy,
                 "policy.json with per-layer bits (from haq search: then measured with the calibration, "
                 "samples, seed and batch it records, unless given below)");
  sub.add_option("--samples", o->samples, "evaluation samples from the test split (0: all)")
      ->check(haq::app::at_least(0))
      ->capture_default_str();
  sub.add_option("--calib", o->calib, "calibration samples from the train split")
      ->check(haq::app::int_in(1, int64_t{1} << 30))
      ->capture_default_str();
  sub.add_option("--metric", o->metric, "top1, top5 or fidelity (agreement with fp32 top-1)")
      ->capture_default_str();
  sub.add_option("--calib-method", o->calib_method, "activation ranges: mse, minmax, percentile or kl")
      ->capture_default_str();
  sub.add_option("--weight-clip", o->weight_clip, "per-channel weight clip: mse or max")
      ->capture_default_str();
  sub.add_flag("--no-bias-correction", o->no_bias_correction, "do not fold the mean quantization shift into the bias");
  sub.add_flag("--no-input-bias-correction", o->no_input_bias_correction,
               "correct only the weights' mean shift, not that of the layer's own input quantization");
  sub.add_flag("--equalize", o->equalize,
               "cross-layer equalization of the weights before calibration (docs/quantization.md)");
  sub.add_option("--weight-rounding", o->weight_rounding,
                 "nearest, or adaround: each weight rounded up or down to minimise its layer's output "
                 "error on the calibration inputs (docs/quantization.md)")
      ->capture_default_str();
  sub.add_option("--act-quant", o->act_quant,
                 "layer inputs that can be negative: symmetric, or asymmetric (a zero point; all 2^b levels "
                 "over the calibrated range; symmetric under --calib-method kl; docs/quantization.md)")
      ->capture_default_str();
  sub.add_option("--rounding-cache", o->rounding_cache,
                 "under adaround, a rounding cache file to read and update (default: the rounding-cache.bin "
                 "beside --policy, read only, if there is one; \"none\": no cache)");
  sub.add_option("--batch", o->batch,
                 "batch size for models with a symbolic batch dim (default: up to 256, with the "
                 "largest activation of a batch within 64 MiB; never more than the samples)")
      ->check(haq::app::int_in(1, int64_t{1} << 16));
  haq::app::add_data_args(sub, o->data_args);
  sub.add_option("--seed", o->seed, "seed for choosing the samples, 0..2^63-1")
      ->check(haq::app::seed_value())
      ->capture_default_str();
  sub.add_flag("--json", o->json, "print the result as JSON (fields in docs/eval.md)");
  sub.add_flag("--explain", o->explain,
               "print the quantization plan: per layer its input and weight quantizers, fused post-ops and "
               "output encoding");
  sub.add_flag("--per-layer", o->per_layer,
               "also print each layer's output SQNR (dB) against fp32, with the policy and with only "
               "that layer quantized, the worst marked");
  sub.add_option("--per-layer-samples", o->per_layer_samples,
                 "test samples (the first of those evaluated) for --per-layer")
      ->check(haq::app::int_in(1, int64_t{1} << 30))
      ->capture_default_str();
  sub.footer(
      "Examples:\n"
      "  haq eval models/fmnist-resnet.onnx --data fashion-mnist\n"
      "  haq eval models/fmnist-resnet.onnx --data fashion-mnist --bits w4a4 --samples 2000\n"
      "  haq eval models/fmnist-mobilenet.onnx --data fashion-mnist --bits w4a8 --explain --samples 500\n"
      "  haq eval models/fmnist-mobilenet.onnx --data fashion-mnist --policy runs/edge/policy.json --json\n"
      "  haq eval models/fmnist-mobilenet.onnx --data fashion-mnist --policy runs/edge/policy.json --per-layer\n"
      "  haq eval models/fmnist-mlp.onnx --data runs/npy/x_test.npy,runs/npy/y_test.npy --calib-method kl\n"
      "  haq eval models/fmnist-mobilenet.onnx --data runs/imgs --preprocess resize=28,crop=28 \\\n"
      "      --labels runs/imgs/labels.txt\n"
      "Exit codes: 0 ok, 2 bad input (model, data, policy, option), 3 internal error.");
  CLI::App* app = &sub;
  return [o, app]() {
    for (const char* name : {"--samples", "--calib", "--calib-method", "--weight-clip", "--no-bias-correction", "--no-input-bias-correction",
                             "--equalize", "--weight-rounding", "--act-quant", "--batch", "--seed", "--rounding-cache"})
      if (app->get_option(name)->count() > 0) o->given.insert(name);
    return run_eval(*o);
  };
}

}  // namespace

HAQ_REGISTER_COMMAND(eval, 30, setup_eval);
