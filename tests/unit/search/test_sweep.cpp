// Sweep job list: order and ids, shards disjoint and covering, skip of
// complete jobs, strict sweep files.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/search/sweep.h"
#include "test_paths.h"

using namespace haq::search;
namespace fs = std::filesystem;

namespace {

SweepSpec small_spec() {
  SweepSpec s;
  s.file = "sweep.json";
  s.models = {"models/a.onnx", "m/b.onnx"};
  s.profiles = {"hw/edge.json", "hw/cloud.json", "hw/fusion.json"};
  s.budgets = {{"latency<=0.5x"}, {"energy <= 0.4x", "size<=0.3x"}};
  s.algos = {"ddpg", "random"};
  s.seeds = {0, 7};
  return s;
}

fs::path write_text(const fs::path& dir, const std::string& name, const std::string& text) {
  std::ofstream(dir / name) << text;
  return dir / name;
}

}  // namespace

TEST_CASE("budget ids are readable and safe") {
  CHECK(budget_id({"latency<=0.5x"}) == "latency-0.5x");
  CHECK(budget_id({"energy <= 0.4x", "size<=0.3x"}) == "energy-0.4x+size-0.3x");
  CHECK(budget_id({"size<=0.25MB"}) == "size-0.25MB");
  CHECK(budget_id({"latency<=2ms/x"}) == "latency-2ms_x");
}

TEST_CASE(
    "jobs are the cartesian product in model then profile then budget then algo then seed order") {
  const auto jobs = expand_jobs(small_spec());
  REQUIRE(jobs.size() == 2u * 3u * 2u * 2u * 2u);
  CHECK(jobs[0].id == "a__edge__latency-0.5x__ddpg__s0");
  CHECK(jobs[1].id == "a__edge__latency-0.5x__ddpg__s7");
  CHECK(jobs[2].id == "a__edge__latency-0.5x__random__s0");
  CHECK(jobs[4].id == "a__edge__energy-0.4x+size-0.3x__ddpg__s0");
  CHECK(jobs[8].id == "a__cloud__latency-0.5x__ddpg__s0");
  CHECK(jobs[24].id == "b__edge__latency-0.5x__ddpg__s0");
  CHECK(jobs.back().id == "b__fusion__energy-0.4x+size-0.3x__random__s7");
  CHECK(jobs[4].budgets == std::vector<std::string>{"energy <= 0.4x", "size<=0.3x"});
  CHECK(jobs[24].model == "m/b.onnx");
  CHECK(jobs[8].profile == "hw/cloud.json");
  std::set<std::string> ids;
  for (size_t i = 0; i < jobs.size(); ++i) {
    CHECK(jobs[i].index == static_cast<int>(i));
    ids.insert(jobs[i].id);
  }
  CHECK(ids.size() == jobs.size());
}

TEST_CASE("jobs: colliding ids are a config error") {
  SweepSpec s = small_spec();
  s.models = {"x/a.onnx", "y/a.onnx"};
  CHECK_THROWS_AS(expand_jobs(s), haq::Error);
}

TEST_CASE("shards are disjoint and cover the jobs") {
  const auto jobs = expand_jobs(small_spec());
  for (int n : {1, 2, 3, 5, 48, 50}) {
    std::vector<int> hits(jobs.size(), 0);
    for (int k = 1; k <= n; ++k)
      for (const auto& j : jobs)
        if (in_shard(j.index, Shard{k, n})) ++hits[j.index];
    for (int h : hits) CHECK(h == 1);
  }
  // Round robin: shard 2/3 is indices 1, 4, 7, ...
  CHECK(in_shard(1, Shard{2, 3}));
  CHECK(in_shard(4, Shard{2, 3}));
  CHECK_FALSE(in_shard(2, Shard{2, 3}));
}

TEST_CASE("shard parsing") {
  CHECK(parse_shard("1/1").k == 1);
  CHECK(parse_shard("3/4").k == 3);
  CHECK(parse_shard("3/4").n == 4);
  for (const char* bad :
       {"0/2", "3/2", "1/0", "2", "/2", "1/", "a/b", "1/2/3", "-1/2", "1 /2", "99999999999/1"})
    CHECK_THROWS_AS(parse_shard(bad), haq::Error);
}

TEST_CASE("run_sweep skips complete jobs and resumes the others") {
  const fs::path out = haq::test::scratch_dir("unit_sweep_run");
  SweepSpec s = small_spec();
  s.models = {"models/a.onnx"};
  s.profiles = {"hw/edge.json", "hw/cloud.json"};
  s.budgets = {{"latency<=0.5x"}};
  s.algos = {"ddpg"};
  s.seeds = {0, 1};  // 4 jobs
  std::vector<std::string> ran;
  auto runner = [&](const SearchOptions& o) {
    ran.push_back(fs::path(o.out).filename().string());
    fs::create_directories(o.out);
    return o.seed == 0;  // seed 1 finds no policy
  };
  SweepSummary a = run_sweep(s, out, Shard{2, 2}, runner, true);
  CHECK(a.total == 4);
  CHECK(a.in_shard == 2);
  CHECK(a.ran == 2);
  CHECK(a.no_policy == 2);
  CHECK(ran == std::vector<std::string>{"a__edge__latency-0.5x__ddpg__s1",
                                        "a__cloud__latency-0.5x__ddpg__s1"});
  CHECK(job_complete(out / "a__edge__latency-0.5x__ddpg__s1"));
  CHECK(fs::exists(out / "sweep.json"));

  // A job with a checkpoint but no marker (killed mid-search) is resumed.
  fs::create_directories(out / "a__cloud__latency-0.5x__ddpg__s0" / "checkpoint");
  haq::write_file_atomic(out / "a__cloud__latency-0.5x__ddpg__s0" / "checkpoint" / "state.bin",
                         "x");
  ran.clear();
  std::vector<bool> resumed;
  auto runner2 = [&](const SearchOptions& o) {
    resumed.push_back(o.resume);
    return runner(o);
  };
  SweepSummary b = run_sweep(s, out, Shard{1, 1}, runner2, true);
  CHECK(b.skipped == 2);
  CHECK(b.ran == 2);
  CHECK(ran == std::vector<std::string>{"a__edge__latency-0.5x__ddpg__s0",
                                        "a__cloud__latency-0.5x__ddpg__s0"});
  CHECK(resumed == std::vector<bool>{false, true});

  ran.clear();
  SweepSummary c = run_sweep(s, out, Shard{1, 1}, runner, true);
  CHECK(c.skipped == 4);
  CHECK(c.ran == 0);
  CHECK(ran.empty());
}

TEST_CASE("job options carry the job and the common options") {
  SweepSpec s = small_spec();
  s.common.episodes = 9;
  s.common.eval_samples = 123;
  const auto jobs = expand_jobs(s);
  const SearchOptions o = job_options(s, jobs[5], "/tmp/x/y");
  CHECK(o.model == "models/a.onnx");
  CHECK(o.hw == "hw/edge.json");
  CHECK(o.budgets == std::vector<std::string>{"energy <= 0.4x", "size<=0.3x"});
  CHECK(o.algo == "ddpg");
  CHECK(o.seed == 7u);
  CHECK(o.episodes == 9);
  CHECK(o.eval_samples == 123);
  CHECK(o.out == "/tmp/x/y");
}

TEST_CASE("sweep files are read strictly") {
  const fs::path dir = haq::test::scratch_dir("unit_sweep_file");
  const std::string mlp = haq::test::source_path("models/fmnist-mlp.onnx");
  const std::string edge = haq::test::source_path("hardware-profiles/bismo-edge.json");
  const std::string cloud = haq::test::source_path("hardware-profiles/bismo-cloud.json");
  const fs::path good = write_text(dir, "good.json", R"({
    "schema": "haq.sweep/1", "description": "x",
    "models": [")" + mlp + R"("],
    "profiles": [")" + edge + R"(", ")" + cloud + R"("],
    "budgets": ["latency<=0.5x", ["energy<=0.5x", "size<=0.3x"]],
    "algos": ["ddpg", "random"], "seeds": [3],
    "data": "mnist", "episodes": 7, "eval_samples": 100, "calib_samples": 32, "test_samples": 50,
    "time_budget": "2m", "w_bits": [2, 6], "select_samples": 300, "refine_rounds": 1
  })");
  const SweepSpec s = read_sweep_file(good.string());
  CHECK(s.budgets.size() == 2u);
  CHECK(s.budgets[1].size() == 2u);
  CHECK(s.seeds == std::vector<uint64_t>{3});
  CHECK(s.common.data == "mnist");
  CHECK(s.common.episodes == 7);
  CHECK(s.common.test_samples == 50);
  CHECK(s.common.time_budget_s == 120.0);
  CHECK(s.common.w_bits.max == 6);
  CHECK(s.common.select_samples == 300);
  CHECK(s.common.refine_rounds == 1);
  CHECK(expand_jobs(s).size() == 8u);

  auto message_of = [&](const std::string& text) {
    const fs::path f = write_text(dir, "bad.json", text);
    try {
      read_sweep_file(f.string());
    } catch (const haq::Error& e) {
      CHECK(e.kind() == haq::ErrorKind::config);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string base = R"("models": [")" + mlp + R"("], "profiles": [")" + edge + R"("])";
  CHECK_THAT(message_of("{" + base + R"(, "budgets": [5]})"),
             Catch::Contains("bad.json") && Catch::Contains("/budgets/0"));
  CHECK_THAT(message_of("{" + base + R"(, "budgets": ["latency<=0.5x"], "episode": 3})"),
             Catch::Contains("episode") && Catch::Contains("episodes"));
  CHECK_THAT(message_of("{" + base + "}"), Catch::Contains("budgets"));
  CHECK_THAT(message_of(R"({"models": [], "profiles": ["p.json"], "budgets": ["latency<=0.5x"]})"),
             Catch::Contains("/models"));
  CHECK_THAT(message_of(R"({"models": [")" + mlp + R"("], "profiles": [")" + edge +
                        R"(", "nowhere/p.json"], "budgets": ["latency<=0.5x"]})"),
             Catch::Contains("/profiles/1") && Catch::Contains("nowhere/p.json"));
  CHECK_THAT(message_of("{" + base + R"(, "budgets": ["latency<=0.5x"], "algos": ["dqn"]})"),
             Catch::Contains("/algos/0"));
}

TEST_CASE("a stop request ends the sweep without marking the job") {
  const fs::path out = haq::test::scratch_dir("unit_sweep_stop");
  SweepSpec s = small_spec();
  s.models = {"models/a.onnx"};
  s.profiles = {"hw/edge.json"};
  s.budgets = {{"latency<=0.5x"}};
  s.algos = {"ddpg"};
  s.seeds = {0, 1, 2};
  int calls = 0;
  reset_stop();
  SweepSummary r = run_sweep(
      s, out, Shard{1, 1},
      [&](const SearchOptions&) {
        ++calls;
        if (calls == 2) request_stop();
        return true;
      },
      true);
  reset_stop();
  CHECK(r.stopped);
  CHECK(calls == 2);
  CHECK(r.ran == 1);
  CHECK(job_complete(out / "a__edge__latency-0.5x__ddpg__s0"));
  CHECK_FALSE(job_complete(out / "a__edge__latency-0.5x__ddpg__s1"));
}

TEST_CASE("configs/sweep-example.json is a valid sweep") {
  // Its paths are relative to the repository root, where it is meant to run.
  const fs::path before = fs::current_path();
  fs::current_path(haq::test::source_path(""));
  SweepSpec s;
  try {
    s = read_sweep_file("configs/sweep-example.json");
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
  const auto jobs = expand_jobs(s);
  CHECK(jobs.size() == 12u);
  CHECK(jobs[0].id == "fmnist-mlp__bismo-edge__latency-0.75x__ddpg__s0");
  CHECK(jobs[1].id == "fmnist-mlp__bismo-edge__latency-0.75x+size-0.4x__ddpg__s0");
  for (const auto& j : jobs) {
    CHECK(fs::exists(haq::test::source_path(j.model)));
    CHECK(fs::exists(haq::test::source_path(j.profile)));
  }
}

TEST_CASE("merge lists a sweep job that found no policy, without figures or cross cells") {
  const fs::path out = haq::test::scratch_dir("unit_sweep_merge_nopolicy");
  SweepSpec s = small_spec();
  s.models = {"models/a.onnx"};
  s.profiles = {"hw/edge.json"};
  s.budgets = {{"latency<=0.1x"}};
  s.algos = {"random"};
  s.seeds = {5};
  run_sweep(
      s, out, Shard{1, 1}, [](const SearchOptions&) { return false; }, true);
  const auto jobs = find_merged_jobs({out.string()});
  REQUIRE(jobs.size() == 1u);
  CHECK(jobs[0].status == "no-policy");
  CHECK(jobs[0].model == "a");
  CHECK(jobs[0].profile == "edge");
  CHECK(jobs[0].budget == "latency-0.1x");
  CHECK(jobs[0].algo == "random");
  CHECK(jobs[0].seed == 5u);
  const auto cross = cross_matrix(jobs);
  CHECK(cross.empty());
  write_merge(jobs, cross, out / "m");
  std::ifstream in(out / "m" / "merged.csv");
  std::string header, row;
  std::getline(in, header);
  std::getline(in, row);
  CHECK(row == "a,edge,latency-0.1x,random,5,,,,,,,,,,no-policy," +
                   (out / "a__edge__latency-0.1x__random__s5").string());
  std::ifstream xin(out / "m" / "cross.csv");
  std::string xheader, xrow;
  std::getline(xin, xheader);
  CHECK_FALSE(std::getline(xin, xrow));
}

namespace {

// The MLP on BISMO edge: two budgets, the second one far below what 2 bits reach.
SweepSpec mlp_spec(const fs::path& dir) {
  SweepSpec s;
  s.file = (dir / "s.json").string();
  s.common = default_search_options();
  s.models = {haq::test::source_path("models/fmnist-mlp.onnx")};
  s.profiles = {haq::test::source_path("hardware-profiles/bismo-edge.json")};
  s.budgets = {{"latency<=0.6x"}, {"size<=0.4x", "latency<=0.01x"}};
  return s;
}

}  // namespace

TEST_CASE("precheck_jobs names an infeasible budget by its JSON pointer and the job") {
  const fs::path dir = haq::test::scratch_dir("unit_sweep_precheck");
  const SweepSpec s = mlp_spec(dir);
  const auto jobs = expand_jobs(s);
  REQUIRE(jobs.size() == 2u);
  const auto problems = precheck_jobs(s, jobs, dir / "out", Shard{1, 1});
  REQUIRE(problems.size() == 1u);
  const JobProblem& p = problems[0];
  CHECK(p.index == 1);
  CHECK(p.infeasible);
  CHECK(p.pointer == "/budgets/1/1");  // the list's second budget; size<=0.4x alone holds
  CHECK_THAT(p.message, Catch::StartsWith("'latency<=0.01x' cannot be met: the smallest reachable "
                                          "latency is ") &&
                            Catch::Contains("with w2a2 everywhere"));
  CHECK(format_problem(s, jobs[1], p) ==
        s.file + ": /budgets/1/1: job 2 (" + s.models[0] + " x " + s.profiles[0] +
            " x size<=0.4x + latency<=0.01x x ddpg x seed 0): " + p.message);
  CHECK(problem_lines(s, jobs, problems) ==
        std::vector<std::string>{format_problem(s, jobs[1], p)});
  CHECK_FALSE(fs::exists(dir / "out"));  // nothing written

  // Only the shard's jobs are checked, and not complete ones.
  CHECK(precheck_jobs(s, jobs, dir / "out", Shard{1, 2}).empty());
  fs::create_directories(dir / "done" / jobs[1].id);
  haq::write_file_atomic(dir / "done" / jobs[1].id / "job.json", "{}");
  CHECK(precheck_jobs(s, jobs, dir / "done", Shard{1, 1}).empty());

  // run_sweep leaves it out: not run, not marked, counted.
  std::vector<std::string> ran;
  const SweepSummary sum = run_sweep(
      s, dir / "run", Shard{1, 1},
      [&](const SearchOptions& o) {
        ran.push_back(fs::path(o.out).filename().string());
        return true;
      },
      true, problems);
  CHECK(ran == std::vector<std::string>{jobs[0].id});
  CHECK(sum.ran == 1);
  CHECK(sum.infeasible == std::vector<int>{1});
  CHECK_FALSE(fs::exists(dir / "run" / jobs[1].id));
}

TEST_CASE("precheck_jobs: bad inputs are named once for the jobs they affect") {
  const fs::path dir = haq::test::scratch_dir("unit_sweep_precheck_bad");
  SweepSpec s = mlp_spec(dir);
  s.budgets = {{"latency<=0.6x"}, {"latency<=0.6x", "latency<=0.7x"}, {"latency<<0.5x"}};
  const std::string bad_model = write_text(dir, "bad.onnx", "not a model").string();
  s.models.push_back(bad_model);
  const auto jobs = expand_jobs(s);  // 2 models x 3 budgets
  auto problems = precheck_jobs(s, jobs, dir / "out", Shard{1, 1});
  REQUIRE(problems.size() == 5u);
  // Job 1 is fine; the same metric twice is the list's fault, a grammar error the entry's.
  CHECK(problems[0].index == 1);
  CHECK(problems[0].pointer == "/budgets/1");
  CHECK_FALSE(problems[0].infeasible);
  CHECK_THAT(problems[0].message, Catch::Contains("a latency budget was already given"));
  CHECK(problems[1].index == 2);
  CHECK(problems[1].pointer == "/budgets/2");
  CHECK_FALSE(problems[1].infeasible);
  // The bad model: jobs 4 and 5 (job 6's budget fails first, on its grammar).
  CHECK(problems[2].index == 3);
  CHECK(problems[2].pointer == "/models/1");
  CHECK_THAT(problems[2].message, Catch::StartsWith(bad_model));
  CHECK(problems[3].index == 4);
  CHECK(problems[3].message == problems[2].message);
  CHECK(problems[4].index == 5);
  CHECK(problems[4].pointer == "/budgets/2");
  const auto lines = problem_lines(s, jobs, problems);
  REQUIRE(lines.size() == 3u);
  CHECK_THAT(lines[0], Catch::StartsWith(s.file + ": /budgets/1: job 2 ("));
  CHECK_THAT(lines[1], Catch::StartsWith(s.file + ": /budgets/2: jobs 3, 6: "));
  CHECK(lines[2] == s.file + ": /models/1: jobs 4, 5: " + problems[2].message);

  // An invalid profile is the profile's entry.
  s = mlp_spec(dir);
  const std::string bad_profile =
      write_text(dir, "p.json", R"({"schema": "haq.hardware/1"})").string();
  s.profiles = {bad_profile};
  s.budgets = {{"latency<=0.6x"}};
  problems = precheck_jobs(s, expand_jobs(s), dir / "out", Shard{1, 1});
  REQUIRE(problems.size() == 1u);
  CHECK(problems[0].pointer == "/profiles/0");
  CHECK_THAT(problems[0].message, Catch::StartsWith(bad_profile + ": /name: "));

  // Unreadable data: one message for every job, at /data.
  s = mlp_spec(dir);
  s.common.data = (dir / "no-such-data").string();
  problems = precheck_jobs(s, expand_jobs(s), dir / "out", Shard{1, 1});
  REQUIRE(problems.size() == 2u);
  CHECK(problems[0].pointer == "/data");
  CHECK(problems[1].pointer == "/data");
  CHECK_THAT(problems[0].message, Catch::Contains("no-such-data"));
  CHECK_FALSE(problems[0].infeasible);
}

TEST_CASE("every job of configs/sweep-example.json can run") {
  const fs::path before = fs::current_path();
  fs::current_path(haq::test::source_path(""));
  std::vector<JobProblem> problems;
  try {
    const SweepSpec s = read_sweep_file("configs/sweep-example.json");
    problems =
        precheck_jobs(s, expand_jobs(s), haq::test::scratch_dir("unit_sweep_example"), Shard{1, 1});
  } catch (...) {
    fs::current_path(before);
    throw;
  }
  fs::current_path(before);
  for (const auto& p : problems) UNSCOPED_INFO(p.index << " " << p.pointer << ": " << p.message);
  CHECK(problems.empty());
}
