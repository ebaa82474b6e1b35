#pragma once
/// \file
/// The search loop: an agent proposes, the environment enforces budgets, the
/// shared evaluation cache measures, the agent learns; with a checkpoint after
/// every episode, a time budget and a clean stop on SIGINT/SIGTERM.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "haq/data/dataset.h"
#include "haq/quant/adaround.h"
#include "haq/search/agent.h"
#include "haq/search/budget.h"
#include "haq/search/costs.h"
#include "haq/search/environment.h"

namespace haq::search {

/// Everything `haq search` can be told, on the command line or in a config
/// file (docs/search.md). Every field has a config key of the same name.
struct SearchOptions {
  // Inputs
  std::string model;                 ///< ONNX model path
  std::string hw;                    ///< hardware profile path
  std::string data = "fashion-mnist";///< dataset (see haq::data::DataSpec)
  data::Preprocess preprocess;       ///< image preprocessing (config: the JSON object, or a --preprocess string)
  std::string labels;                ///< label map of an image folder ("": folder names sorted)
  std::string metric = "top1";       ///< accuracy searched and reported: top1 | top5 | fidelity
  std::vector<std::string> budgets;  ///< e.g. {"latency<=0.5x"}; several may be given
  std::string out;                   ///< output folder
  // Search
  std::string algo = "ddpg";         ///< ddpg | random | greedy | knapsack
  int episodes = 600;                ///< episodes (= policies proposed) at most
  uint64_t seed = 0;                 ///< the one seed; every component derives its own stream
  double time_budget_s = 0;          ///< stop at the next episode boundary after this (0: none)
  bool resume = false;               ///< continue from OUT/checkpoint
  BitRange w_bits{2, 8};             ///< weight bits searched (intersected with the profile's)
  BitRange a_bits{2, 8};             ///< activation bits searched (intersected with the profile's)
  DdpgOptions ddpg;                  ///< DDPG hyperparameters (reference defaults)
  // Data
  int64_t eval_samples = 2000;       ///< search's evaluation subset, from the TRAIN split, disjoint from calibration
  int64_t calib_samples = 512;       ///< calibration samples, from the train split
  bool equalize = false;             ///< cross-layer equalization of the weights before calibration
  /// nearest, or adaround: adaptive rounding per (layer, w_bits), computed
  /// for every searched w_bits once after calibration (the one-off cost printed).
  quant::WeightRounding weight_rounding = quant::WeightRounding::nearest;
  /// Layer inputs that can be negative: asymmetric (a zero point; the
  /// default) or symmetric levels (docs/quantization.md).
  quant::ActQuantMode act_quant = quant::ActQuantMode::asymmetric;
  /// The bias correction's input term: the mean shift of each layer's own
  /// input quantization (docs/quantization.md, "Bias correction").
  bool input_bias_correction = true;
  /// Under adaround, the rounding cache file (docs/quantization.md, "The
  /// rounding cache"): "" = OUT/rounding-cache.bin, "none" = no cache.
  std::string rounding_cache;
  int64_t test_samples = 0;          ///< final figures on this many test samples (0: the full test split)
  int64_t batch = 100;               ///< inference batch for accuracy runs (never more than the samples run at once)
  int max_front_points = 24;         ///< Pareto points re-measured on the test split, at most
  int64_t select_samples = 10000;    ///< the final choice re-measures candidates on this many other train samples (0: off)
  int select_top = 8;                ///< ... the best this many feasible policies of the search, and the fitting uniform ones
  int refine_rounds = 3;             ///< then rounds of one-bit moves from the chosen policy on that subset (0: none)
  int refine_moves = 12;             ///< moves measured per round
  // Output
  bool quiet = false;                ///< no progress output
  std::string config;                ///< config file the options came from ("" if none)
};

/// The defaults, as documented.
SearchOptions default_search_options();

/// Reads a config file (JSON object, keys as SearchOptions' fields) on top of
/// `base`. Strict: unknown keys and wrong types are Error(config) naming the
/// file and the JSON pointer.
SearchOptions read_search_config(const std::string& path, SearchOptions base);

/// The options as JSON (the effective config written to OUT/config.json).
nlohmann::json search_options_to_json(const SearchOptions& o);

/// Parses a bit range given on the command line: "2..8", or "4" (4..4).
/// Error(usage) naming `option` otherwise.
BitRange parse_bit_range(const std::string& text, const std::string& option);

/// Parses a duration: "90s", "20m", "1.5h", "45" (seconds). Error(usage) otherwise.
double parse_duration_s(const std::string& text);

/// The problem a search solves: layers, costs, budgets and how to measure accuracy.
struct SearchProblem {
  std::vector<LayerInfo> layers;
  CostModel costs;
  std::vector<Budget> budgets;      ///< resolved (see resolve_budgets)
  BitRange w_range, a_range;        ///< bits searched
  AccuracyFn accuracy;              ///< percent, on the evaluation subset
  double fp32_accuracy_pct = 0;     ///< fp32 on the same subset (reward baseline)
};

/// A measured policy (each distinct policy once, in order of first evaluation).
struct EvaluatedPoint {
  BitsVector bits;
  std::string key;                  ///< quant::policy_key
  double accuracy_pct = 0;          ///< evaluation subset
  Costs costs;
  bool feasible = false;            ///< within every budget
  int episode = 0;                  ///< episode that first proposed it
  std::string phase;                ///< what the agent proposed it for
};

/// One episode, as written to search.jsonl.
struct EpisodeLog {
  int episode = 0;
  int point = 0;                    ///< index into SearchResult::points
  double reward = 0;
  bool cached = false;              ///< measured before: no evaluation this episode
  double time_s = 0;                ///< wall time since the search (or its resume) started
  double best_accuracy_pct = 0;     ///< best feasible so far (NaN if none)
};

struct SearchResult {
  std::vector<EvaluatedPoint> points;
  std::vector<EpisodeLog> episodes;
  int best = -1;                    ///< index of the best feasible point, -1 if none
  std::string stop_reason;          ///< "done", "episodes", "time budget", "interrupted"
  int evaluations = 0;              ///< accuracy measurements made (cache misses), this run
  double seconds = 0;               ///< wall time of this run
  int resumed_from = 0;             ///< episodes already done when resumed (0: fresh)
};

/// Progress after each episode, for the live line.
struct SearchProgress {
  const SearchResult& result;
  const EpisodeLog& last;
  int episodes_total = 0;
  double evals_per_s = 0;
  double eta_s = 0;                 ///< to the end of the run: the episodes left (within the time budget) + reserve_s
  double reserve_s = 0;             ///< estimated time of what follows the loop (SearchHooks::reserve_s)
};

/// Hooks of run_search (all optional).
struct SearchHooks {
  /// Folder for checkpoint/ and search.jsonl, rewritten (atomically) after every episode.
  std::string out_dir;
  /// Identity of the inputs and options; a resume refuses a checkpoint made with another one.
  std::string identity;
  /// Called after every episode.
  std::function<void(const SearchProgress&)> on_episode;
  /// Estimated seconds of what runs after the loop (the final choice), at the
  /// speed measured so far; called after every episode. With a time budget
  /// the loop stops when its elapsed time plus this reaches the budget, so
  /// that the whole run fits; the ETA includes it.
  std::function<double(const SearchResult&)> reserve_s;
};

/// Runs the search. With options.resume, continues from out_dir/checkpoint.
SearchResult run_search(const SearchOptions& options, const SearchProblem& problem,
                        const SearchHooks& hooks = {});

/// Reads a checkpoint file (OUT/checkpoint/state.bin) into `r` and `agent`
/// as --resume does (exposed for tests and tests/fuzz/fuzz_checkpoint):
/// Error naming `file` for one that is not a checkpoint, another search's
/// (identity differs), damaged (a count the bytes left cannot hold) or padded.
void load_checkpoint(const std::string& file, const std::string& identity, SearchResult& r, Agent& agent);

/// search.jsonl text for a result (one JSON object per episode).
std::string search_jsonl(const SearchResult& r, const SearchProblem& problem);

/// Whether a is better than b for choosing the policy: higher accuracy, then
/// lower cost on the first budget's metric.
bool better_point(const EvaluatedPoint& a, const EvaluatedPoint& b, Metric tie_metric);

/// Asks the search to stop at the next episode boundary (signal-safe).
void request_stop();
bool stop_requested();
/// Clears a stop request (tests, or a new search in the same process).
void reset_stop();
/// SIGINT/SIGTERM -> request_stop(); a second signal kills the process as usual.
void install_stop_handlers();

}  // namespace haq::search
