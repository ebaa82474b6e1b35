// haq sweep: the cartesian product of a sweep file's models, profiles,
// budgets, algorithms and seeds, one search per job, in-process through the
// library; complete jobs are skipped so a killed sweep resumes
// (docs/workflows.md).
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <string>

#include "command.h"
#include "haq/search/pipeline.h"
#include "haq/search/sweep.h"

namespace {

struct Cli {
  std::string file, out, shard = "1/1";
  bool quiet = false;
};

int run_sweep_cmd(const Cli& c) {
  namespace s = haq::search;
  const s::SweepSpec spec = s::read_sweep_file(c.file);
  const s::Shard shard = s::parse_shard(c.shard);
  s::install_stop_handlers();
  const s::SweepSummary sum = s::run_sweep(
      spec, c.out, shard,
      [](const s::SearchOptions& o) {
        s::SearchRun run = s::run_search_pipeline(o);
        return run.has_chosen;
      },
      c.quiet);
  // The summary always prints (also with --quiet): scripts grep it.
  fmt::print(
      "sweep {}: shard {}/{}: {} of {} jobs; ran {} ({} without a policy within the budgets), "
      "skipped {} complete\n",
      c.file, shard.k, shard.n, sum.in_shard, sum.total, sum.ran, sum.no_policy, sum.skipped);
  if (sum.stopped) {
    fmt::print(stderr, "haq: sweep stopped on request; rerun the same command to resume\n");
    return 130;
  }
  return 0;
}

haq::app::Run setup_sweep(CLI::App& sub) {
  auto c = std::make_shared<Cli>();
  sub.description(
      "Run a sweep: one `haq search` per combination of the sweep file's models, profiles,\n"
      "budgets, algos and seeds, each into OUT/<job-id>/. Complete jobs are skipped, so\n"
      "rerunning a killed sweep resumes it. --shard K/N runs the jobs with index % N == K-1.");
  sub.add_option("SWEEP", c->file, "sweep file (JSON), e.g. configs/sweep-example.json")
      ->required();
  sub.add_option("--out", c->out, "output folder")->required();
  sub.add_option("--shard", c->shard, "run slice K of N (1-based), e.g. 2/4; default 1/1");
  sub.add_flag("--quiet", c->quiet, "no per-job progress");
  sub.footer(
      "Examples:\n"
      "  haq sweep configs/sweep-example.json --out runs/sweep\n"
      "  parallel haq sweep configs/sweep-example.json --out runs/sweep --shard {}/4 ::: 1 2 3 4\n"
      "  haq merge runs/sweep --out runs/sweep/merged\n"
      "Exit codes: 0 every job of the shard complete, 2 bad input, 130 stopped by a signal.");
  return [c] { return run_sweep_cmd(*c); };
}

}  // namespace

HAQ_REGISTER_COMMAND(sweep, 60, setup_sweep);
