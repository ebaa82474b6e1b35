// haq sweep / haq merge end to end on the small MLP and two profiles: a
// tiny sweep runs, a rerun skips every job, shards 1/2 + 2/2 produce the
// same jobs (byte-identical policies), merge writes the 2 x 2 cross matrix,
// scripts/sweep_parallel.sh works with GNU parallel, bad files exit 2, an
// infeasible job is named up front (exit 2; --keep-going: the others run, exit 1).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::run_program;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;
using haq::test::read_text;

namespace {

// 1 model x 2 profiles x 1 budget x 1 algo x 1 seed, a few episodes on few samples.
fs::path tiny_sweep(const fs::path& dir,
                    const std::vector<std::string>& profiles = {"bismo-edge", "bismo-cloud"},
                    const std::vector<std::string>& budgets = {"latency<=0.6x"}) {
  std::vector<std::string> profile_paths;
  for (const auto& p : profiles)
    profile_paths.push_back(source_path("hardware-profiles/" + p + ".json"));
  nlohmann::json j = {{"schema", "haq.sweep/1"},
                      {"models", {source_path("models/fmnist-mlp.onnx")}},
                      {"profiles", profile_paths},
                      {"budgets", budgets},
                      {"algos", {"ddpg"}},
                      {"seeds", {0}},
                      {"episodes", 4},
                      {"eval_samples", 200},
                      {"calib_samples", 64},
                      {"test_samples", 300},
                      {"select_samples", 1000},
                      {"refine_moves", 4},
                      {"max_front_points", 2}};
  fs::path f = dir / "tiny-sweep.json";
  std::ofstream(f) << j.dump(2);
  return f;
}

const std::vector<std::string> kIds = {"fmnist-mlp__bismo-edge__latency-0.6x__ddpg__s0",
                                       "fmnist-mlp__bismo-cloud__latency-0.6x__ddpg__s0"};

std::set<std::string> complete_jobs(const fs::path& out) {
  std::set<std::string> s;
  for (const auto& e : fs::directory_iterator(out))
    if (fs::exists(e.path() / "job.json") && fs::exists(e.path() / "policy.json"))
      s.insert(e.path().filename().string());
  return s;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> r;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) r.push_back(l);
  return r;
}

}  // namespace

TEST_CASE(
    "haq sweep runs and resumes by skipping and its shards cover the same jobs and haq merge "
    "writes the cross matrix",
    "[sweep]") {
  const fs::path dir = scratch_dir("e2e-sweep");
  const fs::path sweep = tiny_sweep(dir);
  const std::set<std::string> ids(kIds.begin(), kIds.end());

  auto a = run_haq({"sweep", sweep.string(), "--out", (dir / "a").string(), "--quiet"}, 600);
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  CHECK_THAT(a.out,
             Contains("2 of 2 jobs; ran 2 (0 without a policy within the budgets), skipped 0"));
  CHECK(complete_jobs(dir / "a") == ids);
  const auto list = nlohmann::json::parse(read_text(dir / "a" / "sweep.json"));
  REQUIRE(list["jobs"].size() == 2);
  CHECK(list["jobs"][0]["id"] == kIds[0]);
  CHECK(list["jobs"][1]["id"] == kIds[1]);
  CHECK(list["common"]["episodes"] == 4);

  // Rerun: nothing to do.
  auto again = run_haq({"sweep", sweep.string(), "--out", (dir / "a").string()}, 60);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.out,
             Contains("ran 0 (0 without a policy within the budgets), skipped 2 complete"));
  CHECK_THAT(again.err, Contains(kIds[0] + ": complete, skipped"));

  // Shards 1/2 and 2/2 into one folder: the same jobs, the same bytes.
  for (const char* shard : {"1/2", "2/2"}) {
    auto s = run_haq(
        {"sweep", sweep.string(), "--out", (dir / "b").string(), "--quiet", "--shard", shard}, 600);
    INFO(s.err);
    REQUIRE(s.exit_code == 0);
    CHECK_THAT(s.out, Contains("1 of 2 jobs; ran 1"));
  }
  CHECK(complete_jobs(dir / "b") == ids);
  for (const auto& id : kIds)
    CHECK(read_text(dir / "a" / id / "policy.json") == read_text(dir / "b" / id / "policy.json"));
  CHECK(read_text(dir / "a" / "sweep.json") == read_text(dir / "b" / "sweep.json"));

  // A job killed mid-search (a checkpoint, no job.json) resumes from its
  // checkpoint and ends where the uninterrupted run did.
  auto cut = run_haq(
      {"search", source_path("models/fmnist-mlp.onnx"), "--hw",
       source_path("hardware-profiles/bismo-edge.json"), "--data", "fashion-mnist", "--budget",
       "latency<=0.6x", "--episodes", "2", "--eval-samples", "200", "--calib-samples", "64",
       "--test-samples", "300", "--quiet", "--out", (dir / "c" / kIds[0]).string()},
      600);
  REQUIRE(cut.exit_code == 0);
  REQUIRE(fs::exists(dir / "c" / kIds[0] / "checkpoint" / "state.bin"));
  auto resumed =
      run_haq({"sweep", sweep.string(), "--out", (dir / "c").string(), "--shard", "1/2"}, 600);
  INFO(resumed.err);
  REQUIRE(resumed.exit_code == 0);
  CHECK_THAT(resumed.err, Contains(kIds[0] + ": resuming from its checkpoint"));
  CHECK(read_text(dir / "a" / kIds[0] / "policy.json") ==
        read_text(dir / "c" / kIds[0] / "policy.json"));

  // Merge: one row per job, a 2 x 2 cross matrix whose diagonal equals each job's own figures.
  auto m = run_haq({"merge", (dir / "a").string(), "--out", (dir / "m").string()}, 120);
  INFO(m.err);
  REQUIRE(m.exit_code == 0);
  const auto merged = lines_of(read_text(dir / "m" / "merged.csv"));
  REQUIRE(merged.size() == 3);
  CHECK(merged[0].rfind("model,profile,budget,algo,seed,acc_test_pct,", 0) == 0);
  CHECK(merged[1].rfind("fmnist-mlp,bismo-cloud,latency-0.6x,ddpg,0,", 0) == 0);
  CHECK(merged[2].rfind("fmnist-mlp,bismo-edge,latency-0.6x,ddpg,0,", 0) == 0);
  const auto cross = lines_of(read_text(dir / "m" / "cross.csv"));
  REQUIRE(cross.size() == 5);
  CHECK(cross[1].rfind("fmnist-mlp,latency-0.6x,ddpg,0,bismo-cloud,bismo-cloud,", 0) == 0);
  CHECK(cross[2].rfind("fmnist-mlp,latency-0.6x,ddpg,0,bismo-cloud,bismo-edge,", 0) == 0);
  CHECK(cross[3].rfind("fmnist-mlp,latency-0.6x,ddpg,0,bismo-edge,bismo-cloud,", 0) == 0);
  CHECK(cross[4].rfind("fmnist-mlp,latency-0.6x,ddpg,0,bismo-edge,bismo-edge,", 0) == 0);
  for (const auto& [row, id] : {std::pair{1, kIds[1]}, std::pair{4, kIds[0]}}) {
    const auto pol = nlohmann::json::parse(read_text(dir / "a" / id / "policy.json"));
    std::vector<std::string> f;
    std::istringstream in(cross[row]);
    for (std::string x; std::getline(in, x, ',');) f.push_back(x);
    REQUIRE(f.size() == 10);
    CHECK(std::stod(f[6]) == Approx(pol["totals"]["latency_s"].get<double>()).epsilon(1e-5));
    CHECK(std::stod(f[8]) == Approx(pol["totals"]["latency_ratio"].get<double>()).epsilon(1e-5));
    CHECK(std::stod(f[8]) <= 0.6 + 1e-5);
  }
  const std::string md = read_text(dir / "m" / "merged.md");
  CHECK_THAT(md, Contains("## Cross-hardware"));
  CHECK_THAT(md, Contains("| tuned for \\ measured on | bismo-cloud | bismo-edge |"));
  // Deterministic: merging the sharded run gives the same cross matrix.
  auto m2 =
      run_haq({"merge", (dir / "b").string(), "--out", (dir / "m2").string(), "--quiet"}, 120);
  REQUIRE(m2.exit_code == 0);
  CHECK(read_text(dir / "m" / "cross.csv") == read_text(dir / "m2" / "cross.csv"));
}

TEST_CASE("scripts/sweep_parallel.sh runs two shards under GNU parallel and merges", "[sweep]") {
  const fs::path dir = scratch_dir("e2e-sweep-parallel");
  const fs::path sweep = tiny_sweep(dir);
  auto r = run_program(
      "/usr/bin/env",
      {std::string("HAQ=") + HAQ_BINARY, "bash", source_path("scripts/sweep_parallel.sh"),
       sweep.string(), (dir / "p").string(), "2"},
      600);
  INFO(r.out);
  INFO(r.err);  // "GNU parallel is missing" if the Debian package is not installed
  REQUIRE(r.exit_code == 0);
  CHECK(complete_jobs(dir / "p") == std::set<std::string>(kIds.begin(), kIds.end()));
  CHECK(lines_of(read_text(dir / "p" / "merged" / "cross.csv")).size() == 5);
  CHECK(lines_of(read_text(dir / "p" / "merged" / "merged.csv")).size() == 3);
}

TEST_CASE("scripts/sweep_slurm.sh: an array task runs its shard", "[sweep]") {
  // No Slurm here: the script only reads SLURM_ARRAY_TASK_ID/COUNT, so set them.
  const fs::path dir = scratch_dir("e2e-sweep-slurm");
  const fs::path sweep = tiny_sweep(dir);
  auto r = run_program(
      "/usr/bin/env",
      {std::string("HAQ=") + HAQ_BINARY, "SLURM_ARRAY_TASK_ID=2", "SLURM_ARRAY_TASK_COUNT=2",
       "bash", source_path("scripts/sweep_slurm.sh"), sweep.string(), (dir / "s").string()},
      600);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("shard 2/2: 1 of 2 jobs; ran 1"));
  CHECK(complete_jobs(dir / "s") == std::set<std::string>{kIds[1]});
}

TEST_CASE("haq sweep / merge: bad input exits 2 naming the file and place", "[sweep]") {
  const fs::path dir = scratch_dir("e2e-sweep-bad");
  const fs::path bad = dir / "bad-sweep.json";
  const std::string files = R"("models": [")" + source_path("models/fmnist-mlp.onnx") +
                            R"("], "profiles": [")" +
                            source_path("hardware-profiles/bismo-edge.json") + R"("])";
  std::ofstream(bad) << "{" + files + R"(, "budgets": [0.5]})";
  auto r = run_haq({"sweep", bad.string(), "--out", (dir / "o").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("bad-sweep.json") && Contains("/budgets/0"));
  CHECK_FALSE(fs::exists(dir / "o"));

  std::ofstream(bad) << "{" + files + R"(, "budgets": ["latency<=0.5x"], "seed": [1]})";
  r = run_haq({"sweep", bad.string(), "--out", (dir / "o").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("bad-sweep.json") && Contains("seeds"));

  // A model that does not exist: named before any job runs.
  std::ofstream(bad) << R"({"models": ["no/such-model.onnx"], "profiles": [")" +
                            source_path("hardware-profiles/bismo-edge.json") +
                            R"("], "budgets": ["latency<=0.5x"]})";
  r = run_haq({"sweep", bad.string(), "--out", (dir / "o").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err,
             Contains("bad-sweep.json") && Contains("/models/0") && Contains("no/such-model.onnx"));
  CHECK_FALSE(fs::exists(dir / "o"));

  std::ofstream(bad) << "{" + files + R"(, "budgets": ["latency<=0.5x"]})";
  r = run_haq({"sweep", bad.string(), "--out", (dir / "o").string(), "--shard", "3/2"});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("--shard"));
  CHECK_FALSE(fs::exists(dir / "o"));

  r = run_haq({"merge", (dir / "nothing-here").string(), "--out", (dir / "m").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("nothing-here"));
}

TEST_CASE(
    "haq sweep names an infeasible job up front and exits 2 writing nothing, and with --keep-going runs "
    "the others and exits 1",
    "[sweep]") {
  const fs::path dir = scratch_dir("e2e-sweep-infeasible");
  // Job 1 can run; job 2's latency is far below what 2 bits reach on BISMO edge.
  const fs::path sweep = tiny_sweep(dir, {"bismo-edge"}, {"latency<=0.6x", "latency<=0.01x"});
  const std::string ok_id = "fmnist-mlp__bismo-edge__latency-0.6x__ddpg__s0";
  const std::string bad_id = "fmnist-mlp__bismo-edge__latency-0.01x__ddpg__s0";
  const std::string error = "haq: error: " + sweep.string() + ": /budgets/1: job 2 (" +
                            source_path("models/fmnist-mlp.onnx") + " x " +
                            source_path("hardware-profiles/bismo-edge.json") +
                            " x latency<=0.01x x ddpg x seed 0): 'latency<=0.01x' cannot be met: "
                            "the smallest reachable latency is ";

  // Default: the error, exit 2, nothing written.
  auto strict = run_haq({"sweep", sweep.string(), "--out", (dir / "s").string()}, 120);
  CHECK(strict.exit_code == 2);
  CHECK_THAT(strict.err,
             Contains(error) && Contains("1 job cannot meet its budgets; no job was run"));
  CHECK(strict.out.empty());
  CHECK_FALSE(fs::exists(dir / "s"));

  // --keep-going: the same error before any job, the feasible job runs, exit 1.
  auto r = run_haq({"sweep", sweep.string(), "--out", (dir / "o").string(), "--keep-going"}, 600);
  INFO(r.err);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err, Contains(error));
  CHECK(r.err.find(error) < r.err.find("[1/2] " + ok_id + ": searching"));
  CHECK_THAT(r.err, Contains("[2/2] " + bad_id + ": infeasible budget, not run"));
  CHECK_THAT(r.out, Contains("shard 1/1: 2 of 2 jobs; ran 1 (0 without a policy within the "
                             "budgets), skipped 0 complete, 1 infeasible (not run: job 2 " +
                             bad_id + ")\n"));
  CHECK(complete_jobs(dir / "o") == std::set<std::string>{ok_id});
  CHECK_FALSE(fs::exists(dir / "o" / bad_id));
  CHECK(nlohmann::json::parse(read_text(dir / "o" / "sweep.json"))["jobs"].size() == 2);

  // Rerun: the complete job is skipped, the infeasible one named again, still exit 1.
  auto again = run_haq(
      {"sweep", sweep.string(), "--out", (dir / "o").string(), "--quiet", "--keep-going"}, 120);
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.out, Contains("ran 0 (0 without a policy within the budgets), skipped 1 "
                                 "complete, 1 infeasible (not run: job 2 " +
                                 bad_id + ")"));
  // Without --keep-going: exit 2 without touching the complete job.
  auto again_strict = run_haq({"sweep", sweep.string(), "--out", (dir / "o").string()}, 120);
  CHECK(again_strict.exit_code == 2);
  CHECK(complete_jobs(dir / "o") == std::set<std::string>{ok_id});

  // Shards: only the shard's jobs are checked.
  auto shard1 =
      run_haq({"sweep", sweep.string(), "--out", (dir / "o").string(), "--shard", "1/2"}, 120);
  CHECK(shard1.exit_code == 0);
  CHECK_THAT(shard1.out, Contains("shard 1/2: 1 of 2 jobs; ran 0 (0 without a policy within the "
                                  "budgets), skipped 1 complete, 0 infeasible\n"));
  auto shard2 = run_haq({"sweep", sweep.string(), "--out", (dir / "o").string(), "--shard", "2/2",
                         "--quiet", "--keep-going"},
                        120);
  CHECK(shard2.exit_code == 1);
  CHECK_THAT(shard2.out, Contains("shard 2/2: 1 of 2 jobs; ran 0 (0 without a policy within the "
                                  "budgets), skipped 0 complete, 1 infeasible"));
}

TEST_CASE("haq sweep: a model that cannot be read is exit 2 before any job, naming the jobs",
          "[sweep]") {
  const fs::path dir = scratch_dir("e2e-sweep-bad-model");
  const fs::path model = dir / "broken.onnx";
  std::ofstream(model) << "not an onnx file";
  nlohmann::json j = {{"models", {source_path("models/fmnist-mlp.onnx"), model.string()}},
                      {"profiles", {source_path("hardware-profiles/bismo-edge.json")}},
                      {"budgets", {"latency<=0.6x", "latency<=0.7x"}}};
  const fs::path sweep = dir / "sweep.json";
  std::ofstream(sweep) << j.dump();
  auto r = run_haq({"sweep", sweep.string(), "--out", (dir / "o").string()}, 120);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: " + sweep.string() +
                             ": /models/1: jobs 3, 4: " + model.string()));
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(dir / "o"));
}
