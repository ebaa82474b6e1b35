#pragma once
/// \file
/// `haq sweep` and `haq merge` (docs/workflows.md).
///
/// A sweep file lists models, profiles, budgets, algorithms and seeds; their
/// cartesian product, in a fixed order (model, profile, budget, algo, seed;
/// the seed varies fastest), is the job list. Each job is one `haq search`
/// into OUT/<job-id>/. A job is complete once OUT/<job-id>/job.json exists:
/// the sweep writes it (atomically) only after the search returned, so a
/// killed sweep reruns exactly the jobs that had not finished. `--shard K/N`
/// keeps the jobs whose index % N == K - 1.
///
/// Merging reads every policy.json under some folders and writes one table
/// (merged.csv, merged.md) and the cross-hardware matrix (cross.csv): the
/// policy tuned for profile A simulated on profile B.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "haq/search/search.h"

namespace haq::search {

/// A parsed sweep file.
struct SweepSpec {
  std::string file;                               ///< where it came from (messages)
  std::vector<std::string> models;                ///< ONNX paths
  std::vector<std::string> profiles;              ///< hardware profile paths
  std::vector<std::vector<std::string>> budgets;  ///< each entry: the budgets of one search
  std::vector<std::string> algos{"ddpg"};
  std::vector<uint64_t> seeds{0};
  SearchOptions common;  ///< every other search option
};

/// One search of the sweep.
struct SweepJob {
  int index = 0;               ///< position in the full job list (0-based)
  std::string id;              ///< folder name, e.g. fmnist-mlp__bismo-edge__latency-0.5x__ddpg__s0
  std::string model, profile;  ///< paths
  std::vector<std::string> budgets;
  std::string algo;
  uint64_t seed = 0;
  /// Where its model, profile and budgets stand in the sweep file's lists
  /// ("/models/<model_at>"...), for messages.
  int model_at = 0, profile_at = 0, budgets_at = 0;
};

/// Reads a sweep file strictly (unknown keys, wrong types, empty lists:
/// Error(config) naming the file and the JSON pointer). Keys: "models",
/// "profiles", "budgets" (each entry a budget string or a list of them),
/// optional "algos", "seeds", and the common search options "data",
/// "episodes", "eval_samples", "calib_samples", "test_samples", "batch",
/// "select_samples", "select_top", "refine_rounds", "refine_moves",
/// "max_front_points", "time_budget", "w_bits", "a_bits"; "schema"
/// ("haq.sweep/1") and "description" are accepted.
SweepSpec read_sweep_file(const std::string& path);

/// The readable, filesystem-safe id of a budget list: "latency<=0.5x" ->
/// "latency-0.5x"; several are joined with "+".
std::string budget_id(const std::vector<std::string>& budgets);

/// The cartesian product in the documented order. Error(config) if two jobs
/// would share an id (e.g. two models with the same file name).
std::vector<SweepJob> expand_jobs(const SweepSpec& spec);

/// A slice of the job list: 1-based k of n.
struct Shard {
  int k = 1, n = 1;
};
/// Parses "K/N" with 1 <= K <= N; Error(usage) naming --shard otherwise.
Shard parse_shard(const std::string& text);
/// True if job `index` belongs to the shard.
inline bool in_shard(int index, Shard s) { return index % s.n == s.k - 1; }

/// The search options of one job writing into `job_dir`.
SearchOptions job_options(const SweepSpec& spec, const SweepJob& job,
                          const std::filesystem::path& job_dir);

/// True if the job's folder holds its completion marker (job.json).
bool job_complete(const std::filesystem::path& job_dir);

/// The job list as written to OUT/sweep.json (deterministic).
nlohmann::json sweep_json(const SweepSpec& spec, const std::vector<SweepJob>& jobs);

/// Runs one job's search; returns true if a policy within the budgets was found.
using JobRunner = std::function<bool(const SearchOptions&)>;

/// What run_sweep did in this process.
struct SweepSummary {
  int total = 0;                ///< jobs in the whole sweep
  int in_shard = 0;             ///< jobs of this shard
  int ran = 0;                  ///< searched now (found a policy or not)
  int no_policy = 0;            ///< of `ran`, searches that found no policy within the budgets
  int skipped = 0;              ///< already complete
  std::vector<int> infeasible;  ///< indices of jobs not run: their budgets cannot be met
  bool stopped = false;         ///< a stop request (SIGINT/SIGTERM) ended the sweep early
};

/// A job that cannot run, found by precheck_jobs.
struct JobProblem {
  int index = 0;        ///< the job's index
  std::string pointer;  ///< JSON pointer into the sweep file: "/budgets/1/0", "/models/0", "/data"
  std::string message;  ///< what is wrong
  /// true: a budget the job's model and profile cannot meet even at the
  /// lowest bits (the job alone is skipped); false: bad input (a model,
  /// profile or data that cannot be used, a malformed budget).
  bool infeasible = false;
};

/// Checks every job of the shard that is not complete in `out` as its
/// search would before creating its folder: options, profile, model, cost
/// table, budgets' grammar and feasibility, and the data (read once per
/// model output size) — without writing anything. Each (model, profile) is
/// imported and costed once. Returns the problems in job order (empty: all
/// can run). Throws nothing for bad jobs; Error(internal) only for bugs.
std::vector<JobProblem> precheck_jobs(const SweepSpec& spec, const std::vector<SweepJob>& jobs,
                                      const std::filesystem::path& out, Shard shard);

/// A job's parameters for messages: "models/a.onnx x hw/edge.json x
/// latency<=0.5x x ddpg x seed 0" (several budgets joined by " + ").
std::string describe_job(const SweepJob& job);

/// "SWEEP: POINTER: job N (PARAMS): MESSAGE", N 1-based as in the progress lines.
std::string format_problem(const SweepSpec& spec, const SweepJob& job, const JobProblem& problem);

/// The problems as message lines: one per infeasible job (format_problem);
/// a bad input shared by several jobs once, naming them ("SWEEP: /models/1:
/// jobs 7, 8, 9: MESSAGE").
std::vector<std::string> problem_lines(const SweepSpec& spec, const std::vector<SweepJob>& jobs,
                                       const std::vector<JobProblem>& problems);

/// Writes OUT/sweep.json, then runs the shard's incomplete jobs in order
/// (resuming a job from its checkpoint when there is one) and marks each
/// complete with job.json. Jobs listed in `infeasible` (precheck_jobs) are
/// not run, not marked, and counted in SweepSummary::infeasible. Stops after
/// the current job on a stop request (that job is not marked). An Error from
/// a job's search gains the sweep file and the job as context. Progress lines
/// go to stderr unless `quiet`.
SweepSummary run_sweep(const SweepSpec& spec, const std::filesystem::path& out, Shard shard,
                       const JobRunner& runner, bool quiet,
                       const std::vector<JobProblem>& infeasible = {});

/// One finished search, read back from its policy.json.
struct MergedJob {
  std::string dir;  ///< folder holding policy.json (or job.json)
  std::string status =
      "policy";  ///< "policy", or "no-policy": a sweep job that found none (no figures)
  std::string model, model_file;      ///< model name (file stem) and path
  std::string profile, profile_file;  ///< profile name (file stem) and path
  std::string budget;                 ///< budget_id of its budgets
  std::string algo;
  uint64_t seed = 0;
  double acc_test = 0, acc_fp32 = 0, acc_w8a8 = 0;  ///< top-1 %, test split
  double latency_s = 0, energy_pj = 0, size_bits = 0;
  double latency_ratio = 0, energy_ratio = 0, size_ratio = 0;  ///< of the profile's w8a8
};

/// Every policy.json under the folders (recursively; in a sweep folder only
/// jobs marked complete) and every sweep job marked "no-policy", sorted by model,
/// profile, budget, algo, seed, folder. Error(io/policy) naming the file on
/// an unreadable one; Error(usage) if a folder does not exist.
std::vector<MergedJob> find_merged_jobs(const std::vector<std::string>& dirs);

/// One cell of the cross-hardware matrix.
struct CrossCell {
  std::string model, budget, algo;
  uint64_t seed = 0;
  std::string tuned_for, measured_on;  ///< profile names
  double latency_s = 0, energy_pj = 0;
  double latency_ratio = 0, energy_ratio = 0;  ///< of measured_on's all-8-bit
};

/// For each model, budget, algo and seed: every job's policy simulated on
/// every profile seen for that model (a square matrix when the sweep covers
/// all of them); jobs without a policy are left out. Models and profiles are
/// loaded from the paths in policy.json.
std::vector<CrossCell> cross_matrix(const std::vector<MergedJob>& jobs);

/// merged.csv, cross.csv and merged.md into `out` (atomic writes).
void write_merge(const std::vector<MergedJob>& jobs, const std::vector<CrossCell>& cross,
                 const std::filesystem::path& out);

}  // namespace haq::search
