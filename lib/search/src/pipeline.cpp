#include "haq/search/pipeline.h"
#include "haq/search/model_data.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include <fmt/format.h>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/hash.h"
#include "haq/core/rng.h"
#include "haq/core/version.h"
#include "haq/data/dataset.h"
#include "haq/engine/engine.h"
#include "haq/search/mlp.h"
#include "haq/search/select.h"

namespace haq::search {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  int t = static_cast<int>(std::lround(s));
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t / 60) % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

// The live progress line: \r-updated on a terminal, a plain line every few
// seconds otherwise.
class ProgressPrinter {
 public:
  ProgressPrinter(const SearchProblem& problem, bool quiet)
      : problem_(problem), quiet_(quiet), tty_(::isatty(2) != 0) {}

  void update(const SearchProgress& p) {
    if (quiet_) return;
    auto now = std::chrono::steady_clock::now();
    bool last = static_cast<int>(p.result.episodes.size()) >= p.episodes_total;
    double since = std::chrono::duration<double>(now - last_print_).count();
    if (tty_ ? (since < 0.2 && !last) : (since < 5 && !last && printed_)) return;
    last_print_ = now;
    printed_ = true;
    std::string best = "none within budget yet";
    if (p.result.best >= 0) {
      const auto& b = p.result.points[p.result.best];
      best = fmt::format("{:.2f}%", b.accuracy_pct);
      for (const auto& bud : problem_.budgets)
        best += fmt::format(" {} {:.2f}x", to_string(bud.spec.metric),
                            b.costs.get(bud.spec.metric) / bud.reference);
      for (Metric m : {Metric::latency, Metric::energy}) {
        bool shown = false;
        for (const auto& bud : problem_.budgets) shown |= bud.spec.metric == m;
        double ref = problem_.costs.uniform(8, 8).get(m);
        if (!shown && ref > 0) best += fmt::format(" {} {:.2f}x", to_string(m), b.costs.get(m) / ref);
      }
    }
    std::string line = fmt::format("episode {}/{}  best {}  (fp32 {:.2f}%)  {:.1f} evals/s  ETA {}",
                                   p.result.episodes.size(), p.episodes_total, best,
                                   problem_.fp32_accuracy_pct, p.evals_per_s, format_duration(p.eta_s));
    print(line);
  }

  /// A progress line of a later stage, throttled like the episodes' (`last`
  /// is always shown).
  void show(const std::string& line, bool last) {
    if (quiet_) return;
    auto now = std::chrono::steady_clock::now();
    double since = std::chrono::duration<double>(now - last_print_).count();
    if (tty_ ? (since < 0.2 && !last) : (since < 5 && !last && printed_)) return;
    last_print_ = now;
    printed_ = true;
    print(line);
  }

  void print(const std::string& line) {
    if (tty_) {
      fmt::print(stderr, "\r{:<{}}", line, std::max<size_t>(width_, line.size()));
      width_ = line.size();
    } else {
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
  }

  void finish() {
    if (!quiet_ && tty_ && width_ > 0) fmt::print(stderr, "\n");
    width_ = 0;
  }

  void note(const std::string& text) {
    if (quiet_) return;
    finish();
    width_ = 0;
    fmt::print(stderr, "{}\n", text);
    std::fflush(stderr);
  }

 private:
  const SearchProblem& problem_;
  bool quiet_, tty_;
  bool printed_ = false;
  size_t width_ = 0;
  std::chrono::steady_clock::time_point last_print_{};
};

// Seconds per sample of an accuracy run, from the fp32 reference passes
// (each evaluator's first run). Quantized runs are about as fast or faster
// (docs/benchmarks.md), and what a policy prepares (quantized weights,
// primitives) is paid once per layer and bits, so the per-policy times on the
// search's small subset, mostly that preparation, would overstate a run on a
// large one several times over (measured: 6 s estimated for a 0.4 s stage).
struct EvalSpeed {
  double seconds = 0, samples = 0;
  void add(double s, size_t n) {
    seconds += s;
    samples += static_cast<double>(n);
  }
  double per_sample() const { return samples > 0 ? seconds / samples : 0; }
};

// The points re-measured on the test split: the front over (search accuracy
// up, first budget's metric down), at most `max_points` spread along it.
std::vector<size_t> front_points(const std::vector<EvaluatedPoint>& pts, Metric m0, int max_points) {
  std::vector<size_t> order(pts.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    double ca = pts[a].costs.get(m0), cb = pts[b].costs.get(m0);
    if (ca != cb) return ca < cb;
    return pts[a].accuracy_pct > pts[b].accuracy_pct;
  });
  std::vector<size_t> front;
  double best_acc = -std::numeric_limits<double>::infinity();
  for (size_t i : order)
    if (pts[i].accuracy_pct > best_acc) {
      front.push_back(i);
      best_acc = pts[i].accuracy_pct;
    }
  if (static_cast<int>(front.size()) > max_points) {
    std::vector<size_t> kept;
    const size_t n = front.size(), k = static_cast<size_t>(std::max(0, max_points));
    for (size_t i = 0; i < k; ++i) kept.push_back(front[i * (n - 1) / std::max<size_t>(1, k - 1)]);
    kept.erase(std::unique(kept.begin(), kept.end()), kept.end());
    front = kept;
  }
  return front;
}

CostModel cost_model_from(const hw::CostTable& t, const model::Graph& g) {
  CostModel m;
  for (size_t l = 0; l < t.num_layers(); ++l) {
    std::array<Costs, 64> row{};
    const auto& layer = g.layers[l];
    for (int w = t.w_range.min_bits; w <= t.w_range.max_bits; ++w)
      for (int a = t.a_range.min_bits; a <= t.a_range.max_bits; ++a) {
        const auto& c = t.at(l, w, a);
        Costs& x = row[(w - 1) * 8 + (a - 1)];
        // A tiling that does not fit the buffers cannot run: never within a budget.
        const double inf = std::numeric_limits<double>::infinity();
        x.latency_s = c.fits ? c.latency_s : inf;
        x.energy_pj = c.fits ? c.energy_pj : inf;
        x.size_bits = static_cast<double>(layer.weight_params) * w;
        x.bops = static_cast<double>(layer.macs) * w * a;
      }
    m.table.push_back(row);
  }
  return m;
}

BitRange intersect(BitRange wanted, hw::BitRange supported, const char* what) {
  BitRange r{std::max(wanted.min, supported.min_bits), std::min(wanted.max, supported.max_bits)};
  if (r.min > r.max)
    fail(ErrorKind::usage, "", what,
         "the searched range {}..{} and the profile's supported range {}..{} do not overlap",
         wanted.min, wanted.max, supported.min_bits, supported.max_bits);
  return r;
}

// `count` train samples, none of them in `taken`, drawn with the seed's
// `stream` (all that are left if fewer), sorted.
std::vector<int64_t> disjoint_subset(int64_t train_size, const std::vector<int64_t>& taken,
                                     int64_t count, uint64_t seed, const char* stream) {
  std::vector<char> used(static_cast<size_t>(train_size), 0);
  for (int64_t i : taken) used[static_cast<size_t>(i)] = 1;
  std::vector<int64_t> rest;
  for (int64_t i = 0; i < train_size; ++i)
    if (!used[static_cast<size_t>(i)]) rest.push_back(i);
  if (count >= static_cast<int64_t>(rest.size())) return rest;
  auto rng = make_rng(seed, stream);
  for (int64_t i = 0; i < count; ++i) {  // partial Fisher-Yates
    size_t j = static_cast<size_t>(i) +
               static_cast<size_t>(uniform01(rng) * static_cast<double>(rest.size() - i));
    if (j >= rest.size()) j = rest.size() - 1;
    std::swap(rest[static_cast<size_t>(i)], rest[j]);
  }
  rest.resize(static_cast<size_t>(count));
  std::sort(rest.begin(), rest.end());
  return rest;
}

// The rounding cache of a search under adaround ("" for none).
std::string rounding_cache_path(const SearchOptions& o) {
  if (o.weight_rounding != quant::WeightRounding::adaround || o.rounding_cache == "none") return "";
  return o.rounding_cache.empty() ? (fs::path(o.out) / "rounding-cache.bin").string() : o.rounding_cache;
}

nlohmann::json identity_of(const SearchOptions& o) {
  auto j = search_options_to_json(o);
  // The rounding cache changes no figure (its entries are keyed by what
  // they were computed from): a resume may use another one.
  for (const char* k : {"out", "episodes", "time_budget", "quiet", "test_samples", "rounding_cache",
                        "max_front_points", "select_samples", "select_top", "refine_rounds",
                        "refine_moves"})
    j.erase(k);
  // The data options at their defaults are left out, so that checkpoints
  // written before they existed still resume.
  if (data::to_string(o.preprocess).empty()) j.erase("preprocess");
  if (o.labels.empty()) j.erase("labels");
  if (o.metric == "top1") j.erase("metric");
  return j;
}

}  // namespace

// Everything run_search_pipeline checks before it reads data, as three calls
// that `haq sweep` also makes to check its jobs before running any.
void check_search_options(const SearchOptions& o) {
  if (o.model.empty()) fail(ErrorKind::usage, "", "MODEL", "missing the model (an .onnx file)");
  if (o.hw.empty()) fail(ErrorKind::usage, "", "--hw", "missing the hardware profile");
  if (o.out.empty()) fail(ErrorKind::usage, "", "--out", "missing the output folder");
  if (o.budgets.empty())
    fail(ErrorKind::usage, "", "--budget", "give at least one budget, e.g. --budget 'latency<=0.5x'");
  if (o.episodes < 1) fail(ErrorKind::usage, "", "--episodes", "must be at least 1");
  for (const auto& b : o.budgets) (void)parse_budgets(b);
  engine::Accuracy{}.metric(o.metric);  // Error(usage) naming --metric for an unknown name
  if (o.batch < 1) fail(ErrorKind::usage, "", "--batch", "must be >= 1, got {}", o.batch);
  if (std::find(agent_names().begin(), agent_names().end(), o.algo) == agent_names().end())
    fail(ErrorKind::usage, "", "--algo", "unknown algorithm '{}' (expected ddpg, random, greedy or knapsack)", o.algo);
  if (!o.rounding_cache.empty() && o.rounding_cache != "none" &&
      o.weight_rounding != quant::WeightRounding::adaround)
    fail(ErrorKind::usage, "", "--rounding-cache",
         "'{}' is given but weights round to nearest: a rounding cache applies to weight_rounding adaround",
         o.rounding_cache);
  // Refused now rather than after the rounding: a cache that is a symlink,
  // a device or one of the run's inputs.
  const std::string cache = rounding_cache_path(o);
  if (!cache.empty()) check_output_target(cache);
}

SearchTarget load_search_target(const SearchOptions& o) {
  SearchTarget t;
  t.profile = hw::load_profile(o.hw);
  model::ImportOptions io;
  io.batch = o.batch;
  t.graph = model::import_onnx(o.model, io);
  if (t.graph.layers.empty())
    fail(ErrorKind::unsupported, o.model, "", "the model has no quantizable layer (Conv, Gemm, MatMul)");
  t.table = hw::build_cost_table(t.graph, t.profile);
  t.problem.layers = layer_infos(t.graph);
  t.problem.costs = cost_model_from(t.table, t.graph);
  t.problem.w_range = intersect(o.w_bits, t.profile.w_bits, "w_bits");
  t.problem.a_range = intersect(o.a_bits, t.profile.a_bits, "a_bits");
  return t;
}

std::vector<Budget> resolve_search_budgets(const SearchOptions& o, const SearchProblem& problem) {
  std::vector<BudgetSpec> specs;
  for (const auto& b : o.budgets) {
    auto s = parse_budgets(b);
    specs.insert(specs.end(), s.begin(), s.end());
  }
  // Relative budgets are against all-8-bit; a profile without 8 bits has no
  // such reference, so use its highest bits.
  return resolve_budgets(specs, problem.costs, problem.w_range, problem.a_range);
}

SearchRun run_search_pipeline(const SearchOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  SearchRun run;
  run.options = opt;
  // A search killed before its first checkpoint (during setup) left nothing
  // to resume: --resume starts it anew from its options, as a new run would.
  bool restarted = false;
  if (run.options.resume && !run.options.out.empty() &&
      !path_exists(fs::path(run.options.out) / "checkpoint" / "state.bin")) {
    run.options.resume = false;
    restarted = true;
  }
  const SearchOptions& o = run.options;
  // Cheap checks first: nothing is loaded or written before these pass.
  check_search_options(o);
  SearchTarget target = load_search_target(o);
  run.profile = std::move(target.profile);
  run.graph = std::move(target.graph);
  const hw::CostTable table = std::move(target.table);
  SearchProblem& problem = run.problem;
  problem = std::move(target.problem);
  problem.budgets = resolve_search_budgets(o, problem);

  // Data (bad data is an error before OUT exists). Labels are checked
  // against the model's outputs as they are read, naming file and sample.
  const data::DataSpec spec = data_spec_for(o.data, o.preprocess, o.labels, run.graph);
  // One folder (or .npy pair) serving both splits is read once.
  const bool shared = data::splits_shared(spec);
  const data::Dataset train = data::load_dataset(spec, data::Split::train);
  const data::Dataset test_own = shared ? data::Dataset{} : data::load_dataset(spec, data::Split::test);
  const data::Dataset& test = shared ? train : test_own;
  if (!o.quiet) print_data_note(train, test, run.graph);
  // Fidelity (agreement with fp32) needs no labels; top1/top5 do.
  if (o.metric != "fidelity" && (train.labels.empty() || test.labels.empty()))
    fail(ErrorKind::data, train.source, "labels",
         "the search needs labelled data for --metric {} (fidelity needs none)", o.metric);
  const auto calib_idx = data::sample_indices(train, o.calib_samples, derive_seed(o.seed, "search.calib"));
  const auto eval_idx = disjoint_subset(train.size(), calib_idx, o.eval_samples, o.seed, "search.eval");
  std::vector<int64_t> taken = calib_idx;
  taken.insert(taken.end(), eval_idx.begin(), eval_idx.end());
  const auto select_idx = o.select_samples > 0 && o.select_top > 0
                              ? disjoint_subset(train.size(), taken, o.select_samples, o.seed, "search.select")
                              : std::vector<int64_t>{};
  const auto test_idx = data::sample_indices(test, o.test_samples, derive_seed(o.seed, "search.test"));
  if (eval_idx.empty())
    fail(ErrorKind::data, train.source, "", "no train samples left for evaluation after calibration");
  run.eval_samples = static_cast<int64_t>(eval_idx.size());
  run.calib_samples = static_cast<int64_t>(calib_idx.size());
  run.test_samples = static_cast<int64_t>(test_idx.size());
  run.select_samples = static_cast<int64_t>(select_idx.size());
  // The engine's batch: never more than the samples run at once (padding
  // costs memory and time).
  // The default stays 256 whatever the model (activation size 0); a given
  // batch is bounded by the memory its largest activation takes.
  const int64_t batch = data::choose_batch(
      o.batch, o.batch > 0 ? largest_activation(run.graph) : 0,
      std::max({run.calib_samples, run.eval_samples, run.select_samples, run.test_samples}));
  engine::EngineOptions eo;
  eo.seed = o.seed;
  eo.equalize = o.equalize;
  eo.weight_rounding = o.weight_rounding;
  eo.act_quant = o.act_quant;
  eo.input_bias_correction = o.input_bias_correction;
  model::Graph engine_graph = graph_at_batch(run.graph, o.model, batch);
  eo.batch = engine_graph.batch;
  engine::Engine eng(std::move(engine_graph), eo);
  run.measurement = search_measurement(o.seed, o.calib_samples, o.test_samples, o.batch, eo);


  // One writer per folder: a second search into the same --out is refused,
  // naming the first one's pid. The lock lives as long as the run (its report).
  run.out_lock = std::make_shared<OutputDirLock>(lock_output_dir(o.out));
  // A search killed mid-write may have left temporary files; this folder is ours.
  remove_stale_temp_files(o.out);
  remove_stale_temp_files(fs::path(o.out) / "checkpoint");
  ProgressPrinter progress(problem, o.quiet);
  if (restarted)
    progress.note(fmt::format("haq search: --resume: {} has no checkpoint (the search stopped before its first "
                              "episode); starting it from the beginning",
                              o.out));
  progress.note(fmt::format(
      "haq search: {} ({} layers) on {} [{}], budgets {}, {} x {} episodes, seed {}", o.model,
      run.graph.layers.size(), run.profile.name, o.hw, fmt::join(o.budgets, ","), o.algo,
      o.episodes, o.seed));
  progress.note(fmt::format("calibrating on {} train samples; evaluating on {} other train samples",
                            calib_idx.size(), eval_idx.size()));
  eng.calibrate(train, calib_idx);
  if (o.weight_rounding == quant::WeightRounding::adaround) {
    // The one-off cost, paid up front: every weighted layer at every
    // (w_bits, a_bits) of the searched ranges and of the uniform baselines
    // (k/k, k = 2..8); anything else the search visits is rounded when first
    // needed, then cached like these.
    const std::string cache = rounding_cache_path(o);
    if (!cache.empty()) progress.note(eng.load_rounding_cache(cache).summary(cache));
    std::vector<int> wb, ab;
    for (int b = std::max(2, o.w_bits.min); b <= o.w_bits.max; ++b) wb.push_back(b);
    for (int b = o.a_bits.min; b <= o.a_bits.max; ++b) ab.push_back(b);
    eng.prepare_weights(wb, ab);
    for (int k = 2; k <= 8; ++k) eng.prepare_weights({k}, {k});
    if (!cache.empty()) (void)eng.save_rounding_cache(cache);
    progress.note(eng.rounding_stats().summary());
  }
  // Speed of real accuracy runs (cache misses), for the time estimates of
  // the final choice; the fp32 reference run of each evaluator counts too.
  EvalSpeed speed;
  auto t_ref = std::chrono::steady_clock::now();
  engine::PolicyEvaluator search_eval(eng, train, eval_idx);
  speed.add(seconds_since(t_ref), eval_idx.size());
  // Samples with NaN logits count as wrong (engine::score): a warning at the
  // end says how many measurements had them, the figures alone would not.
  int64_t nan_measurements = 0, nan_samples_max = 0;
  auto metric_of = [&](const engine::Accuracy& a) {
    if (a.nan_samples > 0) ++nan_measurements, nan_samples_max = std::max(nan_samples_max, a.nan_samples);
    return a.metric(o.metric);
  };
  problem.fp32_accuracy_pct = metric_of(search_eval.fp32());
  problem.accuracy = [&](const quant::Policy& p) { return metric_of(search_eval.evaluate(p)); };
  run.setup_s = seconds_since(t0);

  // Uniform k-bit policies, k = 2..8, first and last layers at 8 bits: the
  // report's baselines and candidates of the final choice.
  std::vector<ExtraCandidate> uniform;
  for (int k = 2; k <= 8; ++k)
    uniform.push_back({fmt::format("uniform-{}", k), to_bits(quant::uniform_policy(run.graph, k, k, true))});
  const bool w8a8_supported = run.profile.w_bits.contains(8) && run.profile.a_bits.contains(8);
  int uniform_supported = 0;
  for (int k = 2; k <= 8; ++k)
    uniform_supported += run.profile.w_bits.contains(k) && run.profile.a_bits.contains(k);
  const Metric m0 = problem.budgets[0].spec.metric;
  const double n_eval = static_cast<double>(eval_idx.size()), n_select = static_cast<double>(select_idx.size()),
               n_test = static_cast<double>(test_idx.size());
  // Samples the test-split stage runs (an upper bound: w8a8 and the uniform
  // policies may be cached on the search's subset already).
  auto test_stage_samples = [&](const SearchResult& r) {
    const double policies = 1.0 + w8a8_supported + uniform_supported + (r.best >= 0 ? 1 : 0) +
                            static_cast<double>(front_points(r.points, m0, o.max_front_points).size());
    return policies * n_test + (w8a8_supported + uniform_supported) * n_eval;
  };
  // The final choice's samples at most: the candidates and every refinement move.
  auto choice_samples = [&](const SearchResult& r) {
    if (select_idx.empty() || r.best < 0) return 0.0;
    int new_points = 0;
    const int planned = planned_selection_measurements(r, problem, uniform, o.select_top, o.refine_rounds,
                                                       o.refine_moves, &new_points);
    return n_select * (1 + planned) + n_eval * (new_points + o.refine_rounds * o.refine_moves);
  };

  SearchOptions loop = o;
  if (o.time_budget_s > 0) loop.time_budget_s = std::max(1e-9, o.time_budget_s - run.setup_s);
  SearchHooks hooks;
  hooks.out_dir = o.out;
  hooks.identity = identity_of(o).dump();
  hooks.on_episode = [&](const SearchProgress& p) { progress.update(p); };
  // The budget covers the whole run: the loop leaves time for what follows
  // it, but at most half of the budget (the search needs time too; a final
  // choice that does not fit the rest is cut short).
  hooks.reserve_s = [&](const SearchResult& r) {
    const double after = speed.per_sample() * (choice_samples(r) + test_stage_samples(r));
    return o.time_budget_s > 0 ? std::min(after, 0.5 * o.time_budget_s) : after;
  };
  write_file_atomic(fs::path(o.out) / "config.json", search_options_to_json(o).dump(2) + "\n");
  run.result = run_search(loop, problem, hooks);
  progress.finish();
  run.search_s = run.result.seconds;
  const auto t1 = std::chrono::steady_clock::now();
  if (run.result.stop_reason == "interrupted")
    progress.note(fmt::format("search stopped (interrupted) after {} episodes; writing the best found so far",
                              run.result.episodes.size()));
  else if (run.result.stop_reason == "time budget")
    progress.note(fmt::format("search stopped (time budget) after {} episodes, leaving about {} for the final "
                              "choice and the test split",
                              run.result.episodes.size(), format_duration(hooks.reserve_s(run.result))));

  // With a time budget, a measurement of the final choice starts only if it
  // and the test-split stage after it still fit; then the best measured so
  // far is chosen. Without one, everything planned is measured.
  const double per_choice_measurement = n_select + n_eval;  // samples, at most
  // Seconds per sample of the test-split stage: the fp32 estimate until the
  // final choice has measured quantized runs on its large subset.
  double test_per_sample = speed.per_sample();
  auto out_of_time = [&](double seconds_next) {
    return o.time_budget_s > 0 &&
           seconds_since(t0) + seconds_next + test_per_sample * test_stage_samples(run.result) >
               o.time_budget_s;
  };

  // The choice: the best few on a larger subset the search never saw.
  run.chosen.point = run.result.best;
  run.final_choice = select_idx.empty() ? "off" : "complete";
  // After Ctrl-C the user wants the outputs now: the search's best is kept.
  if (run.result.best >= 0 && !select_idx.empty() && run.result.stop_reason == "interrupted") {
    run.final_choice = "interrupted";
  } else if (run.result.best >= 0 && !select_idx.empty() &&
             out_of_time(speed.per_sample() * (n_select + per_choice_measurement))) {
    run.final_choice = "time budget";
    progress.note("choosing: no time left in the time budget; the search's best is kept");
  } else if (run.result.best >= 0 && !select_idx.empty()) {
    progress.note(fmt::format("choosing: the best {} feasible policies and the fitting uniform ones "
                              "measured again on {} other train samples",
                              o.select_top, select_idx.size()));
    t_ref = std::chrono::steady_clock::now();
    engine::PolicyEvaluator select_eval(eng, train, select_idx);
    speed.add(seconds_since(t_ref), select_idx.size());
    const AccuracyFn select_accuracy = [&](const quant::Policy& p) {
      return metric_of(select_eval.evaluate(p));
    };
    SelectionHooks sh;
    const auto stage_t0 = std::chrono::steady_clock::now();
    int measured_here = 0;
    // The next measurement takes what the stage's have taken on average
    // (before the first: the speed estimate).
    sh.stop_reason = [&]() -> std::string {
      const double next = measured_here > 0 ? seconds_since(stage_t0) / measured_here
                                            : speed.per_sample() * per_choice_measurement;
      return out_of_time(next) ? "time budget" : "";
    };
    sh.on_progress = [&](const SelectionProgress& pr) {
      // ETA: the choice at its own measured pace, the test split at the measured speed.
      const double per_measure = seconds_since(stage_t0) / ++measured_here;
      test_per_sample = per_measure / n_select;
      double left = per_measure * (pr.planned - pr.done);
      if (std::string(pr.stage) == "choosing")
        left += per_measure * o.refine_rounds * o.refine_moves;
      else
        left += per_measure * (pr.rounds - pr.round) * o.refine_moves;
      left += test_per_sample * test_stage_samples(run.result);
      const std::string best = pr.best_point >= 0 ? point_label(run, pr.best_point) : "-";
      const bool last = pr.done >= pr.planned;
      if (std::string(pr.stage) == "choosing")
        progress.show(fmt::format("choosing: {}/{} policies measured on {} train samples  best {:.2f}% ({})  ETA {}",
                                  pr.done, pr.planned, select_idx.size(), pr.best_pct, best,
                                  format_duration(left)),
                      last);
      else
        progress.show(fmt::format("refining: round {}/{}, {}/{} moves  best {:.2f}% ({})  ETA {}", pr.round,
                                  pr.rounds, pr.done, pr.planned, pr.best_pct, best, format_duration(left)),
                      last);
    };
    run.selection = select_policy(run.result, problem, uniform, o.select_top, select_accuracy, sh);
    progress.finish();
    if (run.selection.done && run.selection.stopped.empty() && o.refine_rounds > 0) {
      progress.note(fmt::format("refining: up to {} rounds of {} one-bit moves around the best",
                                o.refine_rounds, o.refine_moves));
      refine_selection(run.selection, run.result, problem, o.refine_rounds, o.refine_moves, select_accuracy, sh);
      progress.finish();
    }
    if (run.selection.done) run.chosen.point = run.selection.chosen;
    if (!run.selection.stopped.empty()) {
      run.final_choice = run.selection.stopped;
      progress.note(fmt::format("final choice stopped ({}) after {} measurements; the best of them is chosen",
                                run.selection.stopped, run.selection.candidates.size()));
    }
  }

  // Final figures on the test split (always complete: policy.json needs them).
  const int test_total = 1 + w8a8_supported + uniform_supported + (run.chosen.point >= 0 ? 1 : 0) +
                         static_cast<int>(front_points(run.result.points, m0, o.max_front_points).size());
  progress.note(fmt::format("measuring the chosen policy, the front and the baselines on {} test samples",
                            test_idx.size()));
  const auto test_t0 = std::chrono::steady_clock::now();
  int test_done = 0;
  auto test_progress = [&] {
    ++test_done;
    const double left = seconds_since(test_t0) / test_done * (test_total - test_done);
    progress.show(fmt::format("measuring: {}/{} policies on {} test samples  ETA {}", test_done, test_total,
                              test_idx.size(), format_duration(left)),
                  test_done >= test_total);
  };
  engine::PolicyEvaluator test_eval(eng, test, test_idx);
  test_progress();
  auto measure = [&](MeasuredPolicy& m) {
    m.acc_search = metric_of(search_eval.evaluate(m.policy));
    m.acc_test = metric_of(test_eval.evaluate(m.policy));
    m.has_test = true;
    m.cost = hw::evaluate(table, m.policy);
    test_progress();
  };
  run.fp32.label = "fp32";
  run.fp32.acc_search = search_eval.fp32().metric(o.metric);
  run.fp32.acc_test = metric_of(test_eval.fp32());
  run.fp32.has_test = true;
  run.w8a8.label = "w8a8";
  run.w8a8.policy = quant::uniform_policy(run.graph, 8, 8);
  if (w8a8_supported) measure(run.w8a8);
  for (int k = 2; k <= 8; ++k) {
    if (!run.profile.w_bits.contains(k) || !run.profile.a_bits.contains(k)) continue;
    MeasuredPolicy m;
    m.label = uniform[k - 2].label;
    m.policy = to_policy(problem.layers, uniform[k - 2].bits);
    measure(m);
    run.uniform.push_back(m);
  }
  const auto& pts = run.result.points;
  if (run.chosen.point >= 0) {
    run.has_chosen = true;
    run.chosen.label = "chosen";
    run.chosen.policy = to_policy(problem.layers, pts[run.chosen.point].bits);
    measure(run.chosen);
  }
  // Front over (search accuracy up, first budget's metric down), capped.
  for (size_t i : front_points(pts, m0, o.max_front_points)) {
    MeasuredPolicy m;
    m.label = point_label(run, static_cast<int>(i));
    m.point = static_cast<int>(i);
    m.policy = to_policy(problem.layers, pts[i].bits);
    measure(m);
    run.front.push_back(m);
  }
  progress.finish();
  run.final_s = seconds_since(t1);
  if (nan_measurements > 0)
    fmt::print(stderr,
               "haq: warning: {} accuracy measurements had samples whose logits hold NaN (up to {} samples in "
               "one); those samples count as wrong\n",
               nan_measurements, nan_samples_max);
  if (run.has_chosen)
    write_file_atomic(fs::path(o.out) / "policy.json", policy_json(run).dump(2) + "\n");
  return run;
}

size_t policies_searched(const SearchRun& run) {
  return static_cast<size_t>(std::count_if(run.result.points.begin(), run.result.points.end(),
                                           [](const EvaluatedPoint& e) { return e.episode >= 0; }));
}

std::string point_label(const SearchRun& run, int point) {
  const EvaluatedPoint& p = run.result.points.at(static_cast<size_t>(point));
  return p.episode >= 0 ? fmt::format("{}#{}", run.options.algo, p.episode) : p.phase;
}

nlohmann::json policy_json(const SearchRun& run) {
  const SearchOptions& o = run.options;
  quant::Policy p = run.chosen.policy;
  nlohmann::json meta;
  meta["tool"] = {{"name", "haq"}, {"version", version()}};
  meta["model"] = o.model;
  meta["profile"] = {{"file", o.hw}, {"name", run.profile.name}, {"content_hash", content_hash(read_file(o.hw))}};
  meta["data"] = o.data;
  meta["preprocess"] = data::preprocess_to_json(o.preprocess);
  meta["labels"] = o.labels;
  meta["seed"] = o.seed;
  meta["algo"] = o.algo;
  nlohmann::json budgets = nlohmann::json::array();
  const hw::CostReport& c = run.chosen.cost;
  auto value_of = [&](Metric m) {
    switch (m) {
      case Metric::latency: return c.latency_s;
      case Metric::energy: return c.energy_pj;
      case Metric::size: return static_cast<double>(c.size_bits);
      case Metric::bops: return c.bops;
    }
    return 0.0;
  };
  for (const auto& b : run.problem.budgets)
    budgets.push_back({{"budget", b.spec.text},
                       {"metric", to_string(b.spec.metric)},
                       {"limit", b.limit},
                       {"w8a8", b.reference},
                       {"value", value_of(b.spec.metric)},
                       {"ratio", b.reference > 0 ? value_of(b.spec.metric) / b.reference : 0.0}});
  meta["budgets"] = budgets;
  auto acc = [](const MeasuredPolicy& m) {
    return nlohmann::json{{"search", m.acc_search}, {"test", m.acc_test}};
  };
  meta["accuracy"] = {{"metric", o.metric},
                      {"fp32", acc(run.fp32)},
                      {"w8a8", acc(run.w8a8)},
                      {"chosen", acc(run.chosen)}};
  const hw::CostReport& ref = run.w8a8.cost;
  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  meta["totals"] = {{"latency_s", c.latency_s},
                    {"energy_pj", c.energy_pj},
                    {"size_bits", c.size_bits},
                    {"bops", c.bops},
                    {"latency_ratio", ratio(c.latency_s, ref.latency_s)},
                    {"energy_ratio", ratio(c.energy_pj, ref.energy_pj)},
                    {"size_ratio", ratio(static_cast<double>(c.size_bits), static_cast<double>(ref.size_bits))},
                    {"bops_ratio", ratio(c.bops, ref.bops)}};
  meta["search"] = {{"episodes", run.result.episodes.size()},
                    {"policies_evaluated", policies_searched(run)},
                    {"chosen_episode", run.chosen.point >= 0 ? run.result.points[run.chosen.point].episode : -1},
                    {"chosen_from", run.chosen.point >= 0 ? point_label(run, run.chosen.point) : ""},
                    {"eval_split", "train"},
                    {"eval_samples", run.eval_samples},
                    {"calib_samples", run.calib_samples},
                    {"test_samples", run.test_samples},
                    {"select_samples", run.selection.done ? run.select_samples : 0},
                    {"select_candidates", run.selection.candidates.size()},
                    {"final_choice", run.final_choice},
                    {"batch", o.batch},
                    {"w_bits", {run.problem.w_range.min, run.problem.w_range.max}},
                    {"a_bits", {run.problem.a_range.min, run.problem.a_range.max}}};
  // How the test figures were measured: `haq eval --policy` and `haq check`
  // measure the same way (haq/search/measurement.h).
  meta["calibration"] = calibration_record(run.measurement, run.calib_samples);
  meta["test_split"] = test_split_record(run.measurement, run.test_samples);
  p.meta = meta;
  nlohmann::json j = quant::policy_to_json(p);
  for (size_t i = 0; i < j["layers"].size() && i < c.layers.size(); ++i) {
    auto& e = j["layers"][i];
    e["latency_s"] = c.layers[i].latency_s;
    e["energy_pj"] = c.layers[i].energy_pj;
    e["size_bits"] = static_cast<double>(run.graph.layers[i].weight_params) * p.layers[i].w_bits;
    // Shapes let `haq check` tell a reshaped model from the one searched.
    const model::Layer& l = run.graph.layers[i];
    e["shape"] = {{"c_in", l.c_in}, {"c_out", l.c_out}, {"groups", l.groups},
                  {"kernel", {l.kernel_h, l.kernel_w}}};
  }
  return j;
}

}  // namespace haq::search
