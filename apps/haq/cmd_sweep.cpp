// haq sweep: the cartesian product of a sweep file's models, profiles,
// budgets, algorithms and seeds, one search per job, in-process through the
// library; complete jobs are skipped so a killed sweep resumes
// (docs/workflows.md).
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "haq/search/pipeline.h"
#include "haq/search/sweep.h"

namespace {

struct Cli {
  std::string file, out, shard = "1/1";
  bool quiet = false;
  bool json = false;        ///< the summary as JSON on stdout instead of the line
  bool keep_going = false;  ///< run the feasible jobs when some are infeasible (then exit 1)
};

int run_sweep_cmd(const Cli& c) {
  namespace s = haq::search;
  const s::SweepSpec spec = s::read_sweep_file(c.file);
  const s::Shard shard = s::parse_shard(c.shard);
  const std::vector<s::SweepJob> jobs = s::expand_jobs(spec);
  // Every job of the shard is checked before any runs (nothing is written yet).
  const std::vector<s::JobProblem> problems = s::precheck_jobs(spec, jobs, c.out, shard);
  const bool bad_input = std::any_of(problems.begin(), problems.end(),
                                     [](const s::JobProblem& p) { return !p.infeasible; });
  for (const auto& line : s::problem_lines(spec, jobs, problems))
    fmt::print(stderr, "haq: error: {}\n", line);
  if (bad_input) return 2;
  if (!problems.empty() && !c.keep_going) {
    fmt::print(stderr,
               "haq: {} job{} cannot meet {} budgets; no job was run (--keep-going runs the "
               "others)\n",
               problems.size(), problems.size() == 1 ? "" : "s",
               problems.size() == 1 ? "its" : "their");
    return 2;
  }
  if (!problems.empty())
    fmt::print(stderr,
               "haq: --keep-going: {} job{} not run (infeasible budget); running the others\n",
               problems.size(), problems.size() == 1 ? "" : "s");
  s::install_stop_handlers();
  const s::SweepSummary sum = s::run_sweep(
      spec, c.out, shard,
      [](const s::SearchOptions& o) {
        s::SearchRun run = s::run_search_pipeline(o);
        return run.has_chosen;
      },
      c.quiet || c.json, problems);
  // The summary always prints once jobs start (also with --quiet): scripts grep it.
  std::string infeasible = fmt::format("{} infeasible", sum.infeasible.size());
  if (!sum.infeasible.empty()) {
    std::vector<std::string> names;
    for (int i : sum.infeasible) names.push_back(fmt::format("job {} {}", i + 1, jobs[i].id));
    infeasible += fmt::format(" (not run: {})", fmt::join(names, ", "));
  }
  if (c.json) {
    nlohmann::json not_run = nlohmann::json::array();
    for (int i : sum.infeasible) not_run.push_back({{"job", i + 1}, {"id", jobs[i].id}});
    const nlohmann::json j = {{"sweep", c.file},
                              {"out", c.out},
                              {"shard", {shard.k, shard.n}},
                              {"jobs", sum.total},
                              {"in_shard", sum.in_shard},
                              {"ran", sum.ran},
                              {"no_policy", sum.no_policy},
                              {"skipped_complete", sum.skipped},
                              {"infeasible", not_run},
                              {"stopped", sum.stopped}};
    fmt::print("{}\n", j.dump(2));
  } else
    fmt::print(
        "sweep {}: shard {}/{}: {} of {} jobs; ran {} ({} without a policy within the budgets), "
        "skipped {} complete, {}\n",
        c.file, shard.k, shard.n, sum.in_shard, sum.total, sum.ran, sum.no_policy, sum.skipped,
        infeasible);
  if (sum.stopped) {
    fmt::print(stderr, "haq: sweep stopped on request; rerun the same command to resume\n");
    return 130;
  }
  return sum.infeasible.empty() ? 0 : 1;
}

haq::app::Run setup_sweep(CLI::App& sub) {
  auto c = std::make_shared<Cli>();
  sub.description(
      "Run a sweep: one `haq search` per combination of the sweep file's models, profiles,\n"
      "budgets, algos and seeds, each into OUT/<job-id>/. Complete jobs are skipped, so\n"
      "rerunning a killed sweep resumes it. --shard K/N runs the jobs with index % N == K-1.\n"
      "Before any job runs, every job of the shard is checked as `haq search` would check it\n"
      "(model, profile, data, budgets): each bad one is named with the sweep file, the JSON\n"
      "pointer, the job and its parameters, and the sweep exits 2 before writing anything.\n"
      "With --keep-going, jobs whose budget their model and profile cannot meet even at the\n"
      "lowest bits are left out instead: the others run, the summary line names the jobs not\n"
      "run, and the exit code is 1.");
  sub.add_option("SWEEP", c->file, "sweep file (JSON), e.g. configs/sweep-example.json")
      ->required();
  sub.add_option("--out", c->out, "output folder")->required();
  sub.add_option("--shard", c->shard, "run slice K of N (1-based), e.g. 2/4; default 1/1");
  sub.add_flag("--quiet", c->quiet, "no per-job progress");
  sub.add_flag(
      "--json", c->json,
      "print the summary as JSON on stdout (no per-job progress; fields in docs/workflows.md)");
  sub.add_flag("--keep-going", c->keep_going,
               "run the feasible jobs even if some jobs' budgets cannot be met (those are not "
               "run; exit 1). Default: exit 2 before any job runs");
  sub.footer(
      "Examples:\n"
      "  haq sweep configs/sweep-example.json --out runs/sweep\n"
      "  haq sweep configs/sweep-example.json --out runs/sweep --keep-going   # skip infeasible jobs\n"
      "  parallel haq sweep configs/sweep-example.json --out runs/sweep --shard {}/4 ::: 1 2 3 4\n"
      "  haq merge runs/sweep --out runs/sweep/merged\n"
      "Exit codes: 0 every job of the shard complete, 1 (--keep-going) the feasible jobs\n"
      "complete, the infeasible ones not run, 2 bad input or an infeasible job (nothing run),\n"
      "130 stopped by a signal.");
  return [c] { return run_sweep_cmd(*c); };
}

}  // namespace

HAQ_REGISTER_COMMAND(sweep, 60, setup_sweep);
