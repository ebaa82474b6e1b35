// haq merge: one table of the searches found under some folders, and the
// cross-hardware matrix (policy tuned for A, simulated on B).
#include <fmt/format.h>

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "command.h"
#include "haq/core/error.h"
#include "haq/search/sweep.h"

namespace {

struct Cli {
  std::vector<std::string> dirs;
  std::string out;
  bool quiet = false, json = false;
};

int run_merge_cmd(const Cli& c) {
  namespace s = haq::search;
  const auto jobs = s::find_merged_jobs(c.dirs);
  if (jobs.empty())
    haq::fail(haq::ErrorKind::usage, c.dirs.front(), "",
              "no policy.json found under the given folders");
  const auto cross = s::cross_matrix(jobs);
  s::write_merge(jobs, cross, c.out);
  if (c.json) {
    const nlohmann::json j = {{"out", c.out},
                              {"searches", jobs.size()},
                              {"cross_cells", cross.size()},
                              {"files", {"merged.csv", "cross.csv", "merged.md"}}};
    fmt::print("{}\n", j.dump(2));
  } else if (!c.quiet)
    fmt::print(
        "merged {} searches ({} cross-hardware cells) into {}/merged.csv, cross.csv, merged.md\n",
        jobs.size(), cross.size(), c.out);
  return 0;
}

haq::app::Run setup_merge(CLI::App& sub) {
  auto c = std::make_shared<Cli>();
  sub.description(
      "Combine search results (every policy.json under the folders) into merged.csv and\n"
      "merged.md, with the cross-hardware matrix (policy tuned for target A simulated on\n"
      "target B) in cross.csv. Run it from the folder the searches ran in: model and\n"
      "profile paths recorded in policy.json are read again.");
  sub.add_option("DIR", c->dirs, "sweep or search output folders")->required();
  sub.add_option("--out", c->out, "output folder")->required();
  sub.add_flag("--quiet", c->quiet, "no summary line");
  sub.add_flag("--json", c->json, "print the summary as JSON (fields in docs/workflows.md)");
  sub.footer("Example:\n  haq merge runs/edge runs/x --out runs/merged");
  return [c] { return run_merge_cmd(*c); };
}

}  // namespace

HAQ_REGISTER_COMMAND(merge, 61, setup_merge);
