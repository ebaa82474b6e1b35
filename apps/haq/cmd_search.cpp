// haq search: the HAQ search (docs/search.md). Parses the options (config
// file, then the command line on top), runs the library's pipeline, and
// hands the result to lib/report.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/version.h"
#include "haq/report/report.h"
#include "haq/search/pipeline.h"
#include "haq/data/dataset.h"

namespace {

using haq::search::SearchOptions;
using haq::search::SearchRun;
using haq::search::MeasuredPolicy;
namespace report = haq::report;

report::DesignPoint design_point(const MeasuredPolicy& m, const std::string& kind, bool feasible) {
  report::DesignPoint d;
  d.label = m.label;
  d.kind = kind;
  d.policy = m.policy;
  d.acc_search = m.acc_search;
  d.acc_test = m.has_test ? m.acc_test : report::kNaN;
  if (kind != "fp32") {
    d.latency_s = m.cost.latency_s;
    d.energy_pj = m.cost.energy_pj;
    d.size_bits = static_cast<double>(m.cost.size_bits);
    d.bops = m.cost.bops;
  }
  d.feasible = feasible;
  return d;
}

std::vector<report::LayerRow> layer_rows(const SearchRun& run, const MeasuredPolicy& m) {
  std::vector<report::LayerRow> rows;
  for (size_t i = 0; i < run.graph.layers.size(); ++i) {
    const auto& l = run.graph.layers[i];
    report::LayerRow r;
    r.name = l.name;
    r.op = l.kind == haq::model::LayerKind::conv ? (l.depthwise ? "Conv(dw)" : "Conv")
           : l.kind == haq::model::LayerKind::gemm ? "Gemm"
           : l.kind == haq::model::LayerKind::act_matmul ? "MatMul(act)" : "MatMul";
    r.w_bits = m.policy.layers[i].w_bits;
    r.a_bits = m.policy.layers[i].a_bits;
    r.fp32 = m.policy.layers[i].fp32;
    if (i < m.cost.layers.size()) {
      const auto& c = m.cost.layers[i];
      r.latency_s = c.latency_s;
      r.energy_pj = c.energy_pj;
      r.bound = c.fits ? haq::hw::to_string(c.bound) : "";
    }
    r.size_bits = static_cast<double>(l.weight_params) * r.w_bits;
    r.macs = l.macs;
    r.params = l.params;
    rows.push_back(r);
  }
  return rows;
}

report::ReportInput report_input(const SearchRun& run) {
  const SearchOptions& o = run.options;
  report::ReportInput in;
  in.model = o.model;
  in.profile = o.hw;
  in.profile_name = run.profile.name;
  in.data = o.data;
  in.algo = o.algo;
  in.seed = o.seed;
  in.version = haq::version();
  for (const auto& b : run.problem.budgets)
    in.budgets.push_back({b.spec.text, haq::search::to_string(b.spec.metric), b.limit});
  in.fp32_acc = run.fp32.acc_test;
  const auto& res = run.result;
  in.facts = {{"episodes", std::to_string(res.episodes.size())},
              {"policies evaluated", std::to_string(haq::search::policies_searched(run))},
              {"search stopped", res.stop_reason},
              {"evaluation split", fmt::format("{} train samples (disjoint from calibration)", run.eval_samples)},
              {"calibration", fmt::format("{} train samples", run.calib_samples)},
              {"test split", fmt::format("{} samples", run.test_samples)},
              {"bits searched", fmt::format("w {}..{}, a {}..{}", run.problem.w_range.min,
                                            run.problem.w_range.max, run.problem.a_range.min,
                                            run.problem.a_range.max)}};
  if (o.metric != "top1")
    in.facts.push_back({"accuracy metric", fmt::format("{} (every accuracy of this report is {})", o.metric, o.metric)});
  if (run.has_chosen) {
    const std::string from = haq::search::point_label(run, run.chosen.point);
    in.facts.push_back(
        {"chosen policy",
         run.selection.done
             ? fmt::format("{}: the best of {} policies re-measured on {} other train samples "
                           "(the search's best, the fitting uniform ones, refinement moves)",
                           from, run.selection.candidates.size(), run.select_samples)
             : fmt::format("{}: the best on the evaluation split", from)});
    if (run.final_choice == "time budget" || run.final_choice == "interrupted")
      in.facts.push_back({"final choice", fmt::format("cut short ({}) after {} measurements: the best of them",
                                                      run.final_choice, run.selection.candidates.size())});
    in.chosen = design_point(run.chosen, "chosen", true);
    in.chosen.episode = res.points[run.chosen.point].episode;
    in.layers = layer_rows(run, run.chosen);
  }
  in.layers_w8a8 = layer_rows(run, run.w8a8);
  std::vector<double> test_acc(res.points.size(), report::kNaN);
  for (const auto& f : run.front) test_acc[f.point] = f.acc_test;
  if (run.has_chosen) test_acc[run.chosen.point] = run.chosen.acc_test;
  std::vector<double> select_acc(res.points.size(), report::kNaN);
  for (size_t k = 0; k < run.selection.candidates.size(); ++k)
    select_acc[run.selection.candidates[k]] = run.selection.accuracy[k];
  if (run.has_chosen) in.chosen.acc_select = select_acc[run.chosen.point];
  for (size_t i = 0; i < res.points.size(); ++i) {
    const auto& p = res.points[i];
    report::DesignPoint d;
    d.label = haq::search::point_label(run, static_cast<int>(i));
    d.kind = "search";
    d.policy = haq::search::to_policy(run.problem.layers, p.bits);
    d.acc_search = p.accuracy_pct;
    d.acc_test = test_acc[i];
    d.acc_select = select_acc[i];
    d.latency_s = p.costs.latency_s;
    d.energy_pj = p.costs.energy_pj;
    d.size_bits = p.costs.size_bits;
    d.bops = p.costs.bops;
    d.feasible = p.feasible;
    d.episode = p.episode;
    in.points.push_back(d);
  }
  auto within = [&](const MeasuredPolicy& m) {
    haq::search::Costs c{m.cost.latency_s, m.cost.energy_pj, static_cast<double>(m.cost.size_bits),
                         m.cost.bops};
    return haq::search::within_budgets(c, run.problem.budgets);
  };
  in.baselines.push_back(design_point(run.fp32, "fp32", false));
  for (const auto& u : run.uniform) in.baselines.push_back(design_point(u, "uniform", within(u)));
  in.baselines.push_back(design_point(run.w8a8, "w8a8", within(run.w8a8)));
  in.w8a8_latency_s = run.w8a8.cost.latency_s;
  in.w8a8_energy_pj = run.w8a8.cost.energy_pj;
  in.w8a8_size_bits = static_cast<double>(run.w8a8.cost.size_bits);
  in.w8a8_bops = run.w8a8.cost.bops;
  return in;
}

struct Cli {
  std::string config, model, hw, data, algo, out, time_budget, w_bits, a_bits, preprocess, labels, metric,
      weight_rounding, rounding_cache, act_quant;
  std::vector<std::string> budgets;
  int episodes = 0;
  int64_t eval_samples = 0, calib_samples = 0, test_samples = 0, select_samples = 0, batch = 0;
  int select_top = 0, refine_rounds = 0, refine_moves = 0, max_front_points = 0;
  uint64_t seed = 0;
  bool resume = false, quiet = false, json = false, equalize = false, input_bias_correction = true;
};

/// The result as one JSON object on stdout (--json): what the closing lines say.
nlohmann::json summary_json(const SearchRun& run) {
  const auto& r = run.result;
  nlohmann::json j = {{"out", run.options.out},
                      {"model", run.options.model},
                      {"profile", run.options.hw},
                      {"budgets", run.options.budgets},
                      {"algo", run.options.algo},
                      {"seed", run.options.seed},
                      {"episodes", r.episodes.size()},
                      {"policies_measured", r.points.size()},
                      {"stopped", r.stop_reason},
                      {"metric", run.options.metric},  // what the *_top1 figures measure
                      {"fp32_top1", run.fp32.acc_test},
                      {"w8a8_top1", run.w8a8.acc_test},
                      {"found", run.has_chosen},
                      {"files", {"policy.json", "report.html", "report.md", "pareto.json", "points.csv",
                                 "search.jsonl"}}};
  if (run.has_chosen) {
    const auto& ch = run.chosen;
    j["chosen"] = {{"label", haq::search::point_label(run, ch.point)},
                   {"top1", ch.acc_test},
                   {"latency_s", ch.cost.latency_s},
                   {"energy_pj", ch.cost.energy_pj},
                   {"size_bits", ch.cost.size_bits},
                   {"latency_vs_w8a8", ch.cost.latency_s / run.w8a8.cost.latency_s},
                   {"energy_vs_w8a8", ch.cost.energy_pj / run.w8a8.cost.energy_pj},
                   {"size_vs_w8a8",
                    static_cast<double>(ch.cost.size_bits) / static_cast<double>(run.w8a8.cost.size_bits)}};
  }
  j["seconds"] = {{"setup", run.setup_s}, {"search", run.search_s}, {"final", run.final_s}};
  return j;
}

/// The config file's keys, each with the option that sets it, for --help:
/// read off the effective config's writer, so the list cannot drift.
std::string config_keys_help(const CLI::App& sub) {
  const nlohmann::json keys = haq::search::search_options_to_json(haq::search::default_search_options());
  std::string text = "Config keys (--config FILE, JSON; the command line overrides them):\n";
  std::string line = " ";
  auto add = [&](const std::string& item) {
    if (line.size() + item.size() + 2 > 96) {
      text += line + "\n";
      line = " ";
    }
    line += " " + item;
  };
  for (const auto& [key, value] : keys.items()) {
    if (key == "schema") continue;
    if (value.is_object()) {
      std::vector<std::string> inner;
      for (const auto& [k, v] : value.items()) inner.push_back(key + "." + k);
      for (size_t i = 0; i + 1 < inner.size(); ++i) add(inner[i] + ",");
      // preprocess: also the one option --preprocess (the key=value form).
      const bool whole = sub.get_option_no_throw("--" + key) != nullptr;
      add(inner.back() + (whole ? " (--" + key + "),": " (config only),"));
      continue;
    }
    std::string option = key == "model" ? "MODEL" : key == "budgets" ? "--budget" : "--" + key;
    std::replace(option.begin(), option.end(), '_', '-');
    const bool has = option == "MODEL" || sub.get_option_no_throw(option) != nullptr;
    add(has ? fmt::format("{} ({}),", key, option) : fmt::format("{} (config only),", key));
  }
  text += line.substr(0, line.size() - 1) + "\n";
  return text;
}

int run_search_cmd(CLI::App& sub, const Cli& c) {
  using namespace haq;
  SearchOptions o = search::default_search_options();
  if (!c.config.empty()) o = search::read_search_config(c.config, o);
  auto given = [&](const char* name) { return sub.get_option(name)->count() > 0; };
  if (given("MODEL")) o.model = c.model;
  if (given("--hw")) o.hw = c.hw;
  if (given("--data")) o.data = c.data;
  if (given("--preprocess")) o.preprocess = data::parse_preprocess(c.preprocess);
  if (given("--labels")) o.labels = c.labels;
  if (given("--metric")) o.metric = c.metric;
  if (given("--budget")) o.budgets = c.budgets;
  if (given("--algo")) o.algo = c.algo;
  if (given("--episodes")) o.episodes = c.episodes;
  if (given("--eval-samples")) o.eval_samples = c.eval_samples;
  if (given("--calib-samples")) o.calib_samples = c.calib_samples;
  if (given("--test-samples")) o.test_samples = c.test_samples;
  if (given("--select-samples")) o.select_samples = c.select_samples;
  if (given("--select-top")) o.select_top = c.select_top;
  if (given("--refine-rounds")) o.refine_rounds = c.refine_rounds;
  if (given("--batch")) o.batch = c.batch;
  if (given("--refine-moves")) o.refine_moves = c.refine_moves;
  if (given("--max-front-points")) o.max_front_points = c.max_front_points;
  if (given("--w-bits")) o.w_bits = search::parse_bit_range(c.w_bits, "--w-bits");
  if (given("--a-bits")) o.a_bits = search::parse_bit_range(c.a_bits, "--a-bits");
  if (given("--seed")) o.seed = c.seed;
  if (given("--time-budget")) o.time_budget_s = search::parse_duration_s(c.time_budget);
  if (given("--out")) o.out = c.out;
  if (c.resume) o.resume = true;
  if (c.quiet) o.quiet = true;
  if (c.equalize) o.equalize = true;
  if (given("--input-bias-correction")) o.input_bias_correction = c.input_bias_correction;
  if (given("--weight-rounding")) o.weight_rounding = quant::parse_weight_rounding(c.weight_rounding);
  if (given("--act-quant")) o.act_quant = quant::parse_act_quant(c.act_quant);
  if (given("--rounding-cache")) {
    if (c.rounding_cache.empty())
      fail(ErrorKind::usage, "", "--rounding-cache", "expected a file or \"none\", got an empty value");
    o.rounding_cache = c.rounding_cache;
  }
  if (c.json) o.quiet = true;  // stdout is the JSON; errors still go to stderr

  for (const auto& input : {o.model, o.hw, c.config}) register_run_input(input);
  search::install_stop_handlers();
  SearchRun run = search::run_search_pipeline(o);
  report::write_report(report_input(run), o.out);

  const auto& r = run.result;
  if (c.json) fmt::print("{}\n", summary_json(run).dump(2));
  if (!run.has_chosen) {
    fmt::print(stderr, "haq: no policy within the budget was found in {} episodes; see {}/report.html\n",
               r.episodes.size(), o.out);
    return 1;
  }
  if (!o.quiet && !c.json) {
    const auto& ch = run.chosen;
    fmt::print("chosen policy: test {} {:.2f}% (fp32 {:.2f}%, w8a8 {:.2f}%), latency {:.3f}x, energy {:.3f}x, size {:.3f}x of w8a8\n",
               o.metric, ch.acc_test, run.fp32.acc_test, run.w8a8.acc_test,
               ch.cost.latency_s / run.w8a8.cost.latency_s, ch.cost.energy_pj / run.w8a8.cost.energy_pj,
               static_cast<double>(ch.cost.size_bits) / static_cast<double>(run.w8a8.cost.size_bits));
    fmt::print("{} episodes, {} policies measured ({:.1f} evals/s), search {:.0f}s, setup {:.0f}s, final {:.0f}s\n",
               r.episodes.size(), r.points.size(), r.seconds > 0 ? r.evaluations / r.seconds : 0.0,
               run.search_s, run.setup_s, run.final_s);
    fmt::print("wrote {}/policy.json, report.html, report.md, pareto.json, points.csv, search.jsonl\n", o.out);
  }
  return 0;
}

haq::app::Run setup_search(CLI::App& sub) {
  auto c = std::make_shared<Cli>();
  sub.description(
      "Search per-layer weight/activation bits for MODEL on the hardware PROFILE under budgets\n"
      "(HAQ: DDPG by default), measuring accuracy with real integer kernels. Writes\n"
      "policy.json, report.html, report.md, pareto.json, points.csv, search.jsonl into --out.");
  sub.add_option("MODEL", c->model, "ONNX model file");
  sub.add_option("--hw", c->hw, "hardware profile (JSON), e.g. hardware-profiles/bismo-edge.json");
  sub.add_option("--data", c->data, "dataset: fashion-mnist, mnist, an IDX folder, X.npy,Y.npy or an image folder");
  sub.add_option("--preprocess", c->preprocess,
                 "image preprocessing: imagenet, none, key=value pairs (resize, crop, scale, mean, "
                 "std, order, gray, rgb), inline JSON or a .json file (docs/datasets.md)");
  sub.add_option("--labels", c->labels,
                 "label map of an image folder: JSON {\"cat\": 3, ...} or one class name per line");
  sub.add_option("--metric", c->metric,
                 "accuracy searched and reported: top1 (default), top5 or fidelity (agreement with "
                 "fp32 top-1; needs no labels)");
  sub.add_option("--budget", c->budgets,
                 "budget, repeatable or comma-separated: latency|energy|size|bops<=RATIOx, or absolute "
                 "(latency<=2ms, energy<=1.5mJ, size<=0.25MB, bops<=300M)");
  sub.add_option("--algo", c->algo, "ddpg (default), random, greedy or knapsack");
  sub.add_option("--episodes", c->episodes, "episodes (policies proposed), default 600")
      ->check(haq::app::int_in(1, 1000000));
  sub.add_option("--eval-samples", c->eval_samples,
                 "search evaluation subset, train samples disjoint from calibration (default 2000)")
      ->check(haq::app::at_least(1));
  sub.add_option("--calib-samples", c->calib_samples, "calibration samples from the train split (default 512)")
      ->check(haq::app::at_least(1));
  sub.add_option("--test-samples", c->test_samples, "test samples for the final figures (default 0: all)")
      ->check(haq::app::at_least(0));
  sub.add_option("--select-samples", c->select_samples,
                 "the final choice re-measures the best candidates on this many other train samples "
                 "(default 10000; 0: choose by the search's evaluation subset)")
      ->check(haq::app::int_in(0, 1000000000));
  sub.add_option("--select-top", c->select_top,
                 "candidates of the final choice: the best N feasible policies found, and the fitting "
                 "uniform ones (default 8)")
      ->check(haq::app::int_in(0, 100000));
  sub.add_option("--refine-rounds", c->refine_rounds,
                 "then rounds of one-bit moves from the chosen policy, measured on the same samples "
                 "(default 3; 0: none)")
      ->check(haq::app::int_in(0, 1000));
  sub.add_option("--batch", c->batch,
                 "inference batch for the accuracy runs (default 100; never more than the samples)")
      ->check(haq::app::int_in(1, 100000));
  sub.add_option("--refine-moves", c->refine_moves, "one-bit moves measured per refinement round (default 12)")
      ->check(haq::app::int_in(1, 100000));
  sub.add_option("--max-front-points", c->max_front_points,
                 "Pareto points re-measured on the test split, at most (default 24)")
      ->check(haq::app::int_in(1, 100000));
  sub.add_option("--w-bits", c->w_bits, "weight bits searched, MIN..MAX within 1..8 (default 2..8; "
                                        "intersected with the profile's)");
  sub.add_option("--a-bits", c->a_bits, "activation bits searched, MIN..MAX (default 2..8)");
  sub.add_option("--seed", c->seed, "random seed, 0..2^63-1 (default 0)")->check(haq::app::seed_value());
  sub.add_option("--time-budget", c->time_budget, "stop cleanly after this wall time, e.g. 90s, 20m, 1.5h");
  sub.add_flag("--resume", c->resume, "continue the search in --out from its checkpoint");
  sub.add_option("--config", c->config, "JSON config with any of these options (the command line overrides it)");
  sub.add_flag("--quiet", c->quiet, "no progress output");
  sub.add_flag("--input-bias-correction,!--no-input-bias-correction", c->input_bias_correction,
               "the bias correction also removes the mean shift of each layer's own input quantization "
               "(default; --no-input-bias-correction: the weights' shift only; docs/quantization.md; config key "
               "\"input_bias_correction\")");
  sub.add_flag("--equalize", c->equalize,
               "cross-layer equalization of the weights before calibration (docs/quantization.md; config key \"equalize\")");
  sub.add_option("--weight-rounding", c->weight_rounding,
                 "nearest (default) or adaround: adaptive rounding per (layer, w_bits), computed once after "
                 "calibration (docs/quantization.md; config key \"weight_rounding\")");
  sub.add_option("--act-quant", c->act_quant,
                 "layer inputs that can be negative: asymmetric (default; a zero point, all 2^b levels over "
                 "the calibrated range) or symmetric (docs/quantization.md; config key \"act_quant\")");
  sub.add_option("--rounding-cache", c->rounding_cache,
                 "under adaround, where the adaptively rounded weights are kept for the next run (default "
                 "OUT/rounding-cache.bin; \"none\": no cache; config key \"rounding_cache\")");
  sub.add_flag("--json", c->json, "print the result as JSON on stdout (no progress; fields in docs/search.md)");
  sub.add_option("--out", c->out, "output folder");
  sub.footer(
      "Examples:\n"
      "  haq search models/fmnist-mobilenet.onnx --hw hardware-profiles/bismo-edge.json \\\n"
      "      --data fashion-mnist --budget 'latency<=0.5x' --out runs/edge\n"
      "  haq search --config configs/fmnist-mobilenet-bismo-edge.json --episodes 100 --out runs/x\n"
      "Exit codes: 0 a policy within the budgets was found, 1 none was, 2 bad input.\n" +
      config_keys_help(sub));
  CLI::App* app = &sub;
  return [c, app] { return run_search_cmd(*app, *c); };
}

}  // namespace

HAQ_REGISTER_COMMAND(search, 40, setup_search);
