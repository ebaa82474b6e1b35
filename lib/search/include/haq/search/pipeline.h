#pragma once
/// \file
/// The whole of `haq search` short of the report: load and check the inputs,
/// build the cost table, calibrate, search, re-measure on the test split,
/// and write policy.json, config.json, search.jsonl and checkpoint/.
/// apps/haq/cmd_search.cpp turns the result into the report (lib/report).

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/core/files.h"
#include "haq/hw/profile.h"
#include "haq/hw/simulate.h"
#include "haq/model/graph.h"
#include "haq/search/measurement.h"
#include "haq/search/search.h"
#include "haq/search/select.h"

namespace haq::search {

/// A policy measured for the report.
struct MeasuredPolicy {
  std::string label;          ///< "fp32", "w8a8", "uniform-4", "chosen", "ddpg#12"
  quant::Policy policy;       ///< empty for fp32
  double acc_search = 0;      ///< top-1 %, evaluation subset (train split)
  double acc_test = 0;        ///< top-1 %, test split
  bool has_test = false;      ///< acc_test measured
  hw::CostReport cost;        ///< on the profile (fp32: not meaningful)
  int point = -1;             ///< index into SearchResult::points, -1 for baselines
};

/// Everything a finished (or stopped) search produced.
struct SearchRun {
  SearchOptions options;                ///< effective options
  model::Graph graph;
  hw::HardwareProfile profile;
  SearchProblem problem;
  SearchResult result;
  MeasuredPolicy fp32, w8a8;            ///< references
  std::vector<MeasuredPolicy> uniform;  ///< uniform-k, k = 2..8, first and last layer at 8 bits
  Selection selection;                  ///< the re-measurement that chose (done: false if off)
  /// How the final choice ended: "complete", "off" (--select-samples 0 or
  /// --select-top 0), "time budget" (cut short: the best of what it measured,
  /// or the search's best if it measured nothing) or "interrupted" (Ctrl-C).
  std::string final_choice;
  bool has_chosen = false;
  MeasuredPolicy chosen;                ///< the chosen policy (point: its index in result.points)
  std::vector<MeasuredPolicy> front;    ///< front over (accuracy, first budget) re-measured on test
  int64_t eval_samples = 0, calib_samples = 0, test_samples = 0, select_samples = 0;
  MeasurementSetup measurement;         ///< how the test figures were measured (policy.json records it)
  double setup_s = 0, search_s = 0, final_s = 0;  ///< wall times (not written to deterministic files)
  /// The advisory lock on options.out, held while the run (and its report writer) lives.
  std::shared_ptr<OutputDirLock> out_lock;
};

/// What a search runs on, loaded and checked as run_search_pipeline does
/// before it reads any data.
struct SearchTarget {
  hw::HardwareProfile profile;
  model::Graph graph;     ///< imported at options.batch
  hw::CostTable table;
  SearchProblem problem;  ///< layers, costs and bit ranges; no budgets, no accuracy yet
};

/// The checks of run_search_pipeline that read no file: a model, profile,
/// output folder and budget given, episodes >= 1, the budgets' grammar, a
/// known algorithm, a checkpoint for --resume. Error(usage) naming the option.
void check_search_options(const SearchOptions& options);

/// Loads options.hw and options.model and builds the cost table. Errors name
/// the file (bad profile or model, no quantizable layer); Error(usage) if
/// w_bits/a_bits and the profile's supported bits do not overlap.
SearchTarget load_search_target(const SearchOptions& options);

/// options.budgets resolved against `problem` (resolve_budgets): Error(usage)
/// at "--budget" if one cannot be met even at the lowest bits (the message
/// says the smallest reachable value) or a metric is given twice.
std::vector<Budget> resolve_search_budgets(const SearchOptions& options,
                                           const SearchProblem& problem);

/// Runs `haq search`. Validates every input (and the budgets' feasibility)
/// before creating OUT; then writes OUT/config.json, search.jsonl,
/// checkpoint/ as it goes and policy.json at the end. Progress goes to
/// stderr unless options.quiet.
SearchRun run_search_pipeline(const SearchOptions& options);

/// How a point is named in the report: "ddpg#123" (the episode that found
/// it), or its phase ("uniform-4") for a candidate the selection added.
std::string point_label(const SearchRun& run, int point);

/// Distinct policies the search itself proposed and measured (the final
/// choice may add uniform ones as points).
size_t policies_searched(const SearchRun& run);

/// policy.json for a run (deterministic: no timings).
nlohmann::json policy_json(const SearchRun& run);

}  // namespace haq::search
