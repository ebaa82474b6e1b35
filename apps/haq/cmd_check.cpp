// haq check: CI regression of a committed policy (docs/ci.md). Re-measures
// the policy's test accuracy (same samples, calibration and seed as the
// search that wrote it) and its simulated latency and energy, and compares
// them with the figures recorded in policy.json.
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "data_args.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/hash.h"
#include "haq/core/json_reader.h"
#include "haq/core/rng.h"
#include "haq/data/dataset.h"
#include "haq/engine/engine.h"
#include "haq/hw/profile.h"
#include "haq/hw/simulate.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "haq/search/measurement.h"

namespace {

struct CheckOptions {
  std::string policy, model, hw, data;
  double max_accuracy_drop = 0.3;
  std::string max_latency_increase = "2%", max_energy_increase = "2%";
  int64_t samples = -1;
  bool json = false;
  bool allow_other_profile = false;
  std::optional<std::string> rounding_cache;
  haq::app::DataArgs data_args;
};

/// "2%", "2" (percent) or "0.5%" -> percent; Error(usage) otherwise.
double parse_percent(const std::string& text, const char* option) {
  std::string s = text;
  if (!s.empty() && s.back() == '%') s.pop_back();
  size_t used = 0;
  double v = -1;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (s.empty() || used != s.size() || !(v >= 0) || !std::isfinite(v))
    haq::fail(haq::ErrorKind::usage, "", option, "expected a non-negative percentage such as 2%, got '{}'", text);
  return v;
}

/// One layer as recorded in policy.json (read leniently: a model mismatch
/// is a regression, exit 1, not bad input).
struct RecordedLayer {
  std::string name;
  std::optional<nlohmann::json> shape;
};

nlohmann::json shape_of(const haq::model::Layer& l) {
  return {{"c_in", l.c_in}, {"c_out", l.c_out}, {"groups", l.groups}, {"kernel", {l.kernel_h, l.kernel_w}}};
}

std::string shape_text(const nlohmann::json& s) {
  auto get = [&](const char* k) { return s.contains(k) ? s[k].dump() : std::string("?"); };
  std::string kernel = "?";
  if (s.contains("kernel") && s["kernel"].is_array() && s["kernel"].size() == 2)
    kernel = fmt::format("{}x{}", s["kernel"][0].dump(), s["kernel"][1].dump());
  return fmt::format("c_in {} c_out {} groups {} kernel {}", get("c_in"), get("c_out"), get("groups"), kernel);
}

/// Number at a JSON path in `j`, or nullopt.
std::optional<double> number_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return std::nullopt;
    p = &(*p)[k];
  }
  if (!p->is_number()) return std::nullopt;
  return p->get<double>();
}

struct Row {
  std::string metric, unit;
  double recorded = 0, measured = 0;
  double change = 0;       ///< points (accuracy) or percent (costs)
  double tolerance = 0;
  bool regressed = false;
};

int run_check(const CheckOptions& o) {
  using namespace haq;
  const double lat_tol = parse_percent(o.max_latency_increase, "--max-latency-increase");
  const double en_tol = parse_percent(o.max_energy_increase, "--max-energy-increase");
  if (!(o.max_accuracy_drop >= 0))
    fail(ErrorKind::usage, "", "--max-accuracy-drop", "must be a non-negative number of points");

  // 1. The policy file, leniently: only its structure must be valid.
  // Core's parser: besides syntax, it refuses numbers out of range and
  // nesting that copying the document below would recurse through.
  nlohmann::json pj = parse_json_document(read_file(o.policy), o.policy, ErrorKind::policy);
  if (!pj.is_object() || !pj.contains("layers") || !pj["layers"].is_array())
    fail(ErrorKind::policy, o.policy, "", "expected an object with a \"layers\" array (a policy.json from haq search)");
  if (pj.contains("schema") && pj["schema"] != "haq.policy/1")
    fail(ErrorKind::policy, o.policy, "/schema", "unsupported schema {} (expected \"haq.policy/1\")", pj["schema"].dump());
  std::vector<RecordedLayer> recorded;
  for (size_t i = 0; i < pj["layers"].size(); ++i) {
    const auto& e = pj["layers"][i];
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string())
      fail(ErrorKind::policy, o.policy, fmt::format("/layers/{}/name", i), "missing the layer name");
    RecordedLayer r{e["name"].get<std::string>(), std::nullopt};
    if (e.contains("shape") && e["shape"].is_object()) r.shape = e["shape"];
    recorded.push_back(std::move(r));
  }
  const nlohmann::json meta = pj;
  // Every figure check compares is required: one left out would pass unchecked.
  auto recorded_figure = [&](std::initializer_list<const char*> path, const char* pointer, const char* what,
                             bool percent) -> std::optional<double> {
    const auto v = number_at(meta, path);
    if (!v)
      fail(ErrorKind::policy, o.policy, pointer,
           "missing {}: check compares every figure a policy.json written by haq search records", what);
    if (!std::isfinite(*v) || (percent ? (*v < 0 || *v > 100) : !(*v > 0)))
      fail(ErrorKind::policy, o.policy, pointer, "expected {} {}, got {}", what,
           percent ? "in 0..100" : "above 0", *v);
    return v;
  };
  const auto rec_acc = recorded_figure({"accuracy", "chosen", "test"}, "/accuracy/chosen/test", "the test accuracy in percent", true);
  const auto rec_lat = recorded_figure({"totals", "latency_s"}, "/totals/latency_s", "the latency in seconds", false);
  const auto rec_en = recorded_figure({"totals", "energy_pj"}, "/totals/energy_pj", "the energy in pJ", false);
  // How the recorded accuracy was measured (calibration, samples, seed,
  // quantizer, batch); measured the same way unless --samples says otherwise.
  // Policies written before a field was recorded get the search's value of the time.
  const search::RecordedMeasurement rec = search::recorded_measurement(meta, o.policy);
  search::MeasurementOverrides ov;
  if (o.samples >= 0) ov.test_samples = o.samples;
  const search::MeasurementSetup ms = search::apply_overrides(rec.setup, ov);
  const search::RoundingCacheChoice cache =
      search::rounding_cache_choice(o.rounding_cache, ms.weight_rounding, o.policy);
  const uint64_t seed = ms.seed;
  const int64_t batch = ms.batch;
  // The search's preprocessing, label map and metric unless given here.
  data::Preprocess pre;
  if (!o.data_args.preprocess.empty()) {
    pre = data::parse_preprocess(o.data_args.preprocess);
  } else if (meta.contains("preprocess") && meta["preprocess"].is_object()) {
    pre = data::preprocess_from_json(meta["preprocess"], o.policy, "/preprocess");
  }
  std::string labels = o.data_args.labels;
  if (labels.empty() && meta.contains("labels") && meta["labels"].is_string())
    labels = meta["labels"].get<std::string>();
  std::string metric = "top1";
  if (meta.contains("accuracy") && meta["accuracy"].is_object() && meta["accuracy"].contains("metric") &&
      meta["accuracy"]["metric"].is_string())
    metric = meta["accuracy"]["metric"].get<std::string>();
  engine::Accuracy{}.metric(metric);  // an unknown recorded metric is bad input

  // 2. The model and profile (bad files are exit 2 from here).
  const hw::HardwareProfile profile = hw::load_profile(o.hw);
  // The profile the figures were simulated on (name, and content when recorded).
  if (!o.allow_other_profile && meta.contains("profile") && meta["profile"].is_object()) {
    const auto& rp = meta["profile"];
    if (rp.contains("name") && rp["name"].is_string() && rp["name"].get<std::string>() != profile.name)
      fail(ErrorKind::usage, o.hw, "--hw",
           "is profile '{}', but {} was searched for '{}'; its figures do not apply (--allow-other-profile "
           "compares anyway)",
           profile.name, o.policy, rp["name"].get<std::string>());
    if (rp.contains("content_hash") && rp["content_hash"].is_string()) {
      const std::string now = content_hash(read_file(o.hw));
      if (now != rp["content_hash"].get<std::string>())
        fail(ErrorKind::usage, o.hw, "--hw",
             "differs from the profile '{}' that {} was searched with (content {}, recorded {}); "
             "--allow-other-profile compares anyway",
             profile.name, o.policy, now, rp["content_hash"].get<std::string>());
    }
  }
  model::ImportOptions io;
  io.batch = batch > 0 ? batch : 1;  // 0: chosen below, from the model
  model::Graph g = model::import_onnx(o.model, io);

  // 3. Does the model still match the policy?
  std::vector<std::string> mismatches;
  std::map<std::string, size_t> in_model, in_policy;
  for (size_t i = 0; i < g.layers.size(); ++i) in_model[g.layers[i].name] = i;
  for (size_t i = 0; i < recorded.size(); ++i) {
    if (in_policy.count(recorded[i].name))
      mismatches.push_back(fmt::format("layer '{}' appears twice in the policy", recorded[i].name));
    in_policy[recorded[i].name] = i;
  }
  for (const auto& r : recorded) {
    auto it = in_model.find(r.name);
    if (it == in_model.end()) {
      mismatches.push_back(fmt::format("layer '{}' is in the policy but not in the model (removed or renamed)", r.name));
      continue;
    }
    if (r.shape) {
      const nlohmann::json now = shape_of(g.layers[it->second]);
      if (*r.shape != now)
        mismatches.push_back(fmt::format("layer '{}' was reshaped: policy has {}, model has {}", r.name,
                                         shape_text(*r.shape), shape_text(now)));
    }
  }
  for (const auto& l : g.layers)
    if (!in_policy.count(l.name))
      mismatches.push_back(fmt::format("layer '{}' is in the model but not in the policy (added or renamed)", l.name));
  if (mismatches.empty()) {
    for (size_t i = 0; i < g.layers.size(); ++i)
      if (recorded[i].name != g.layers[i].name) {
        mismatches.push_back(fmt::format("layer order changed: position {} is '{}' in the policy, '{}' in the model",
                                         i, recorded[i].name, g.layers[i].name));
        break;
      }
  }
  if (!mismatches.empty()) {
    if (o.json) {
      nlohmann::json j = {{"policy", o.policy}, {"model", o.model}, {"passed", false},
                          {"model_mismatch", mismatches}, {"metrics", nlohmann::json::array()}};
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("FAIL: the model {} no longer matches the policy {}:\n", o.model, o.policy);
      for (const auto& m : mismatches) fmt::print("  - {}\n", m);
      fmt::print("Re-run haq search on the new model and commit its policy.json.\n");
    }
    return 1;
  }
  const quant::Policy policy = quant::policy_from_json(pj, g, o.policy);  // bits checked here (exit 2)

  // 4. Re-measure.
  std::vector<Row> rows;
  if (rec_lat || rec_en) {
    const hw::CostTable table = hw::build_cost_table(g, profile);
    const hw::CostReport c = hw::evaluate(table, policy);
    auto cost_row = [&](const char* name, const char* unit, double rec, double now, double tol) {
      Row r{name, unit, rec, now, rec > 0 ? (now / rec - 1.0) * 100.0 : (now > 0 ? INFINITY : 0.0), tol, false};
      // A tiny slack absorbs the JSON round trip of the recorded double.
      r.regressed = r.change > tol + 1e-9;
      rows.push_back(r);
    };
    if (rec_lat) cost_row("latency", "s", *rec_lat, c.latency_s, lat_tol);
    if (rec_en) cost_row("energy", "pJ", *rec_en, c.energy_pj, en_tol);
  }
  int64_t used_samples = 0;
  if (rec_acc) {
    // A bad label names its file and sample.
    const data::DataSpec spec = search::data_spec_for(o.data, pre, labels, g);
    // One folder (or .npy pair) serving both splits is read once.
    const bool shared = data::splits_shared(spec);
    const data::Dataset train = data::load_dataset(spec, data::Split::train);
    const data::Dataset test_own = shared ? data::Dataset{} : data::load_dataset(spec, data::Split::test);
    const data::Dataset& test = shared ? train : test_own;
    search::print_data_note(train, test, g);
    if (test.labels.empty() && metric != "fidelity")
      fail(ErrorKind::data, test.source, "labels", "check needs labelled test data");
    // The same subsets the search measured its test accuracy on.
    const auto calib_idx = search::draw_samples(train, ms.calib_samples, ms.seed, ms.calib_stream);
    const auto test_idx = search::draw_samples(test, ms.test_samples, ms.seed, ms.test_stream);
    used_samples = static_cast<int64_t>(test_idx.size());
    const int64_t run_batch = data::choose_batch(
        batch, search::largest_activation(g), static_cast<int64_t>(std::max(calib_idx.size(), test_idx.size())));
    model::Graph run_graph = search::graph_at_batch(g, o.model, run_batch, io);
    const engine::EngineOptions eo = search::engine_options(ms, run_graph.batch);
    engine::Engine eng(std::move(run_graph), eo);
    eng.calibrate(train, calib_idx);
    if (eo.weight_rounding == quant::WeightRounding::adaround) (void)search::round_policy_weights(eng, policy, cache);
    engine::PolicyEvaluator ev(eng, test, test_idx);
    const double now = ev.evaluate(policy).metric(metric);
    Row r{"accuracy", "% " + metric, *rec_acc, now, now - *rec_acc, o.max_accuracy_drop, false};
    r.regressed = -r.change > o.max_accuracy_drop + 1e-9;
    rows.insert(rows.begin(), r);
  }

  bool passed = true;
  for (const auto& r : rows) passed = passed && !r.regressed;
  if (o.json) {
    nlohmann::json metrics = nlohmann::json::array();
    for (const auto& r : rows)
      metrics.push_back({{"metric", r.metric},
                         {"unit", r.unit},
                         {"recorded", r.recorded},
                         {"measured", r.measured},
                         {"change", r.change},
                         {"change_unit", r.metric == "accuracy" ? "points" : "percent"},
                         {"tolerance", r.tolerance},
                         {"regressed", r.regressed}});
    nlohmann::json j = {{"policy", o.policy}, {"model", o.model}, {"hw", o.hw},
                        {"data", o.data}, {"test_samples", used_samples}, {"seed", seed},
                        {"passed", passed}, {"model_mismatch", nlohmann::json::array()},
                        {"metrics", metrics}};
    fmt::print("{}\n", j.dump(2));
    return passed ? 0 : 1;
  }
  fmt::print("haq check {} ({} layers) on {}, {} test samples, seed {}\n", o.policy, g.layers.size(),
             profile.name, used_samples, seed);
  fmt::print("{:<10} {:>14} {:>14} {:>12} {:>12}  {}\n", "metric", "recorded", "measured", "change",
             "tolerance", "status");
  for (const auto& r : rows) {
    const bool acc = r.metric == "accuracy";
    const std::string rec = acc ? fmt::format("{:.2f}%", r.recorded) : fmt::format("{:.6g} {}", r.recorded, r.unit);
    const std::string now = acc ? fmt::format("{:.2f}%", r.measured) : fmt::format("{:.6g} {}", r.measured, r.unit);
    const std::string ch = acc ? fmt::format("{:+.2f} pt", r.change) : fmt::format("{:+.2f}%", r.change);
    const std::string tol = acc ? fmt::format("-{:.2f} pt", r.tolerance) : fmt::format("+{:.2f}%", r.tolerance);
    fmt::print("{:<10} {:>14} {:>14} {:>12} {:>12}  {}\n", r.metric, rec, now, ch, tol,
               r.regressed ? "REGRESSED" : "ok");
  }
  if (passed) {
    fmt::print("PASS: every metric is within tolerance\n");
    return 0;
  }
  std::string names;
  for (const auto& r : rows)
    if (r.regressed) names += (names.empty() ? "" : ", ") + r.metric;
  fmt::print("FAIL: regressed: {}\n", names);
  return 1;
}

haq::app::Run setup_check(CLI::App& sub) {
  auto o = std::make_shared<CheckOptions>();
  sub.description(
      "Re-measure a committed policy.json (from haq search) and compare with the figures it\n"
      "records: test accuracy (same samples, calibration and seed as the search), simulated\n"
      "latency and energy. Also fails when the model's layers no longer match the policy.");
  sub.add_option("POLICY", o->policy, "policy.json written by haq search")->required();
  sub.add_option("--model", o->model, "ONNX model file")->required();
  sub.add_option("--hw", o->hw, "hardware profile (JSON)")->required();
  sub.add_option("--data", o->data, "dataset (as for haq eval)")->required();
  sub.add_option("--max-accuracy-drop", o->max_accuracy_drop, "allowed top-1 drop, in points")
      ->check(haq::app::finite_number())
      ->capture_default_str();
  sub.add_option("--max-latency-increase", o->max_latency_increase, "allowed latency increase (e.g. 2%)")
      ->capture_default_str();
  sub.add_option("--max-energy-increase", o->max_energy_increase, "allowed energy increase (e.g. 2%)")
      ->capture_default_str();
  sub.add_option("--samples", o->samples,
                 "test samples to measure accuracy on (default: the number the policy recorded; 0: all)")
      ->check(haq::app::at_least(0));
  sub.add_flag("--json", o->json, "print the comparison as JSON (fields in docs/ci.md)");
  sub.add_option("--rounding-cache", o->rounding_cache,
                 "for a policy searched with adaptive rounding: a rounding cache file to read and update "
                 "(default: the rounding-cache.bin beside POLICY, read only, if there is one; \"none\": no cache)");
  sub.add_flag("--allow-other-profile", o->allow_other_profile,
               "compare although --hw is not the profile the policy was searched with (name or content)");
  haq::app::add_data_args(sub, o->data_args);
  sub.footer(
      "Example:\n"
      "  haq check runs/edge/policy.json --model models/fmnist-mobilenet.onnx \\\n"
      "      --hw hardware-profiles/bismo-edge.json --data fashion-mnist --max-latency-increase 1%\n"
      "Exit codes: 0 within tolerance, 1 regressed or model mismatch (table on stdout),\n"
      "2 bad input (policy, model, profile, data, option), 3 internal error.");
  return [o]() { return run_check(*o); };
}

}  // namespace

HAQ_REGISTER_COMMAND(check, 50, setup_check);
