// Faults (issue 7): a search SIGKILLed at seeded pseudo-random moments and
// resumed ends byte-identical to an uninterrupted run, every file it leaves
// is complete; an unwritable or full output folder is a clear exit 2 with
// nothing half-written; a killed sweep resumes without redoing finished jobs.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "run_haq.h"
#include "tiny_search.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::run_haq_killed_when;
using haq::test::run_haq_limited;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;
using haq::test::read_text;
using Clock = std::chrono::steady_clock;

namespace {

fs::path tiny_config(const fs::path& dir) {
  return haq::test::tiny_search_config(dir, 100, 32, 100, R"("max_front_points": 3,)");
}

std::vector<std::string> search_args(const fs::path& cfg, const fs::path& out, int episodes) {
  return haq::test::tiny_search_args(cfg, out, episodes, 5);
}

/// Lines of search.jsonl on disk (0 if absent); races with the writer are
/// harmless: the file is replaced by rename, never written in place.
int logged_episodes(const fs::path& out) {
  std::string s = read_text(out / "search.jsonl");
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

/// A temporary file of write_file_atomic: ".NAME.haq-tmp.XXXXXX".
bool is_temp_file(const fs::path& p) {
  const std::string n = p.filename().string();
  return n.size() > 1 && n[0] == '.' && n.find(".haq-tmp.") != std::string::npos;
}

/// The number of episodes in checkpoint/state.bin, reading its layout
/// (lib/search/src/search.cpp: magic, identity, points, episodes); fails the
/// test if the file is not a complete checkpoint prefix of that shape.
int checkpoint_episodes(const fs::path& file) {
  const std::string b = read_text(file);
  size_t at = 0;
  auto u64 = [&]() {
    REQUIRE(at + 8 <= b.size());
    uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    at += 8;
    return v;
  };
  auto skip = [&](uint64_t n) {
    REQUIRE(n <= b.size() - at);
    at += n;
  };
  REQUIRE(b.substr(0, 8) == "HAQCKPT1");
  at = 8;
  skip(u64());  // identity
  const uint64_t points = u64();
  REQUIRE(points < 100000);
  for (uint64_t i = 0; i < points; ++i) {
    skip(16 * u64());  // bits (w, a)
    skip(u64());       // key
    skip(5 * 8 + 8 + 8);  // accuracy, 4 costs, feasible, episode
    skip(u64());          // phase
  }
  const uint64_t episodes = u64();
  for (uint64_t e = 0; e < episodes; ++e) {
    CHECK(u64() == e);  // episode numbers in order
    skip(8 * 5);
  }
  skip(8);  // best
  CHECK(at < b.size());  // the agent's state follows
  return static_cast<int>(episodes);
}

std::string fmt_moment(double s, int seen, int saved) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s%.1fs: %d logged, %d in checkpoint", "; ", s, seen, saved);
  return buf;
}

struct DirState {
  int checkpoint_episodes = -1;  ///< -1: no checkpoint
  int logged_episodes = 0;
  int temp_files = 0;
};

/// Checks that every file in a search's --out folder is complete and valid,
/// allowing temporary files of an interrupted atomic write.
DirState check_search_dir(const fs::path& out) {
  DirState st;
  if (!fs::exists(out)) return st;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (e.is_directory()) continue;
    const fs::path p = e.path();
    const std::string rel = fs::relative(p, out).string();
    INFO("file " << rel);
    if (is_temp_file(p)) {
      ++st.temp_files;
      continue;
    }
    const std::string text = read_text(p);
    if (rel == "policy.json" || rel == "pareto.json" || rel == "config.json" || rel == "job.json") {
      CHECK(nlohmann::json::accept(text));
    } else if (rel == "search.jsonl") {
      std::istringstream in(text);
      int n = 0;
      for (std::string line; std::getline(in, line); ++n) {
        REQUIRE(nlohmann::json::accept(line));
        CHECK(nlohmann::json::parse(line)["episode"] == n);
      }
      CHECK((text.empty() || text.back() == '\n'));
      st.logged_episodes = n;
    } else if (rel == "points.csv") {
      CHECK((!text.empty() && text.back() == '\n'));
      std::istringstream in(text);
      std::string header;
      std::getline(in, header);
      const auto cols = std::count(header.begin(), header.end(), ',');
      for (std::string line; std::getline(in, line);)
        CHECK(std::count(line.begin(), line.end(), ',') >= cols);
    } else if (rel == "report.html") {
      CHECK(text.find("</html>") != std::string::npos);
    } else if (rel == "report.md") {
      CHECK((!text.empty() && text.back() == '\n'));
    } else if (rel == "checkpoint/state.bin") {
      st.checkpoint_episodes = checkpoint_episodes(p);
    } else {
      FAIL("unexpected file in the output folder: " << rel);
    }
  }
  return st;
}

}  // namespace

TEST_CASE("faults: a search killed -9 at random moments resumes to the uninterrupted result",
          "[faults]") {
  constexpr int kEpisodes = 24;
  const fs::path dir = scratch_dir("e2e-faults-kill");
  const fs::path cfg = tiny_config(dir);
  auto ref = run_haq(search_args(cfg, dir / "ref", kEpisodes), 300);
  INFO(ref.err);
  REQUIRE(ref.exit_code == 0);

  const fs::path out = dir / "killed";
  // Kill moments from a fixed seed: one during setup (before any
  // checkpoint), three when the log reaches a random episode plus a random
  // part of an episode, one during the final measurements and reports.
  std::mt19937_64 rng(20240607);
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  struct Kill {
    int episode;   ///< wait until the log has this many episodes (-1: from the start)
    int delay_ms;  ///< then wait this long
  };
  std::vector<Kill> kills = {{-1, uniform(100, 500)}};
  int at = 2;
  for (int k = 0; k < 3; ++k) {
    at = uniform(at + 2, at + 6);
    kills.push_back({at, uniform(0, 60)});
  }
  kills.push_back({kEpisodes, uniform(0, 100)});

  int survived = 0, prev_saved = 0, temps_seen = 0;
  std::string moments;
  for (const Kill& k : kills) {
    auto args = search_args(cfg, out, kEpisodes);
    if (fs::exists(out / "checkpoint" / "state.bin")) args.push_back("--resume");
    int seen = 0;
    std::optional<Clock::time_point> armed;
    const auto start = Clock::now();
    auto r = run_haq_killed_when(
        args,
        [&] {
          seen = logged_episodes(out);
          if (!armed && (k.episode < 0 || seen >= k.episode)) armed = Clock::now();
          return armed && Clock::now() - *armed >= std::chrono::milliseconds(k.delay_ms);
        },
        300);
    const double ran_s = std::chrono::duration<double>(Clock::now() - start).count();
    INFO("kill at episode " << k.episode << " + " << k.delay_ms << " ms, after " << ran_s
                            << " s; stderr: " << r.err);
    REQUIRE(r.exit_code == -9);  // it was still running: a real kill
    ++survived;
    const DirState st = check_search_dir(out);
    temps_seen += st.temp_files;
    moments += fmt_moment(ran_s, seen, st.checkpoint_episodes);
    if (st.checkpoint_episodes >= 0) {
      // Nothing that was on disk before the kill is lost; the log lags the
      // checkpoint by at most the one episode whose write was cut.
      CHECK(st.checkpoint_episodes >= seen);
      CHECK(st.checkpoint_episodes >= prev_saved);
      CHECK(st.logged_episodes >= st.checkpoint_episodes - 1);
      CHECK(st.logged_episodes <= st.checkpoint_episodes);
      prev_saved = st.checkpoint_episodes;
    } else {
      CHECK(k.episode < 0);  // only the setup kill comes before the first checkpoint
      CHECK(st.logged_episodes == 0);
    }
  }
  CHECK(survived == 5);
  std::printf("faults: %d kills survived (%s), %d temporary files of cut writes seen\n", survived,
              moments.c_str(), temps_seen);
  CHECK(prev_saved == kEpisodes);

  auto args = search_args(cfg, out, kEpisodes);
  args.push_back("--resume");
  auto last = run_haq(args, 300);
  INFO(last.err);
  REQUIRE(last.exit_code == 0);
  const DirState st = check_search_dir(out);
  CHECK(st.temp_files == 0);  // stale temporary files of killed writes are cleaned up
  CHECK(st.checkpoint_episodes == kEpisodes);
  CHECK(st.logged_episodes == kEpisodes);
  for (const char* f : {"policy.json", "pareto.json", "points.csv"}) {
    INFO(f);
    CHECK(read_text(dir / "ref" / f) == read_text(out / f));
  }

  // A checkpoint damaged by something else than haq (a cut copy, a bad disk):
  // --resume is a clear exit 2, never an allocation of a corrupt length.
  const std::string state = read_text(out / "checkpoint" / "state.bin");
  uint64_t identity_len;
  std::memcpy(&identity_len, state.data() + 8, 8);
  std::string huge_count = state;
  const uint64_t absurd = uint64_t{1} << 60;  // the first point's bit count
  std::memcpy(huge_count.data() + 16 + identity_len + 8, &absurd, 8);
  for (const auto& [what, bytes] : {std::pair{"truncated", state.substr(0, state.size() / 2)},
                                    std::pair{"huge count", huge_count}}) {
    INFO(what);
    std::ofstream(out / "checkpoint" / "state.bin", std::ios::binary) << bytes;
    auto r = run_haq(args, 120);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("haq: error: " + (out / "checkpoint" / "state.bin").string() + ": checkpoint: "));
  }
}

TEST_CASE("faults: an unwritable or full output folder is exit 2 with nothing half-written",
          "[faults]") {
  const fs::path dir = scratch_dir("e2e-faults-disk");
  const fs::path cfg = tiny_config(dir);
  const std::string model = source_path("models/fmnist-mlp.onnx");
  const std::string hw = source_path("hardware-profiles/bismo-edge.json");

  // A path under a regular file cannot be created, even by root.
  std::ofstream(dir / "a-file") << "x";
  {
    auto r = run_haq(search_args(cfg, dir / "a-file" / "out", 3), 120);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("haq: error: " + (dir / "a-file" / "out").string() + ": cannot create output folder"));
    auto t = run_haq({"simulate", model, "--hw", hw, "--table-out", (dir / "a-file" / "t.csv").string()});
    CHECK(t.exit_code == 2);
    CHECK_THAT(t.err, Contains("haq: error: " + (dir / "a-file" / "t.csv").string() + ": "));
    CHECK(read_text(dir / "a-file") == "x");
  }

  // A read-only folder (chmod does not stop root, so probe first).
  const fs::path ro = dir / "read-only";
  fs::create_directories(ro);
  ::chmod(ro.c_str(), 0555);
  const bool chmod_protects = ::access(ro.c_str(), W_OK) != 0;
  if (chmod_protects) {
    auto r = run_haq(search_args(cfg, ro / "out", 3), 120);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains((ro / "out").string() + ": cannot create output folder"));
    auto t = run_haq({"simulate", model, "--hw", hw, "--table-out", (ro / "t.csv").string()});
    CHECK(t.exit_code == 2);
    CHECK_THAT(t.err, Contains((ro / "t.csv").string() + ": cannot create a temporary file"));
    CHECK(fs::is_empty(ro));
  } else {
    WARN("running as root: chmod 0555 does not stop writes; the path-under-a-file and full-disk cases cover it");
  }
  ::chmod(ro.c_str(), 0755);

  // A full disk: `ulimit -f` makes writes past the limit fail with EFBIG
  // (SIGXFSZ ignored, as a full disk gives ENOSPC without a signal).
  {
    const fs::path out = dir / "full";
    auto r = run_haq_limited("ulimit -f 16; trap '' XFSZ", search_args(cfg, out, 3), 120);  // 8 KiB
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("haq: error: " + out.string()));
    CHECK_THAT(r.err, Contains("write failed: File too large"));
    const DirState st = check_search_dir(out);
    CHECK(st.temp_files == 0);
    CHECK(st.checkpoint_episodes == -1);  // the first checkpoint did not fit
    const fs::path table = dir / "table.csv";
    auto t = run_haq_limited("ulimit -f 1; trap '' XFSZ",
                             {"simulate", model, "--hw", hw, "--table-out", table.string()});
    CHECK(t.exit_code == 2);
    CHECK_THAT(t.err, Contains("haq: error: " + table.string() + ": write failed: File too large"));
    for (const auto& e : fs::directory_iterator(dir)) CHECK_FALSE(is_temp_file(e.path()));
    CHECK_FALSE(fs::exists(table));
  }
}

TEST_CASE("faults: a sweep killed -9 resumes without redoing finished jobs", "[faults]") {
  const fs::path dir = scratch_dir("e2e-faults-sweep");
  nlohmann::json j = {{"schema", "haq.sweep/1"},
                      {"models", {source_path("models/fmnist-mlp.onnx")}},
                      {"profiles",
                       {source_path("hardware-profiles/bismo-edge.json"),
                        source_path("hardware-profiles/bismo-cloud.json")}},
                      {"budgets", {"latency<=0.6x"}},
                      {"algos", {"ddpg"}},
                      {"seeds", {0}},
                      {"episodes", 6},
                      {"eval_samples", 100},
                      {"calib_samples", 32},
                      {"test_samples", 100},
                      {"select_samples", 1000},
                      {"refine_moves", 4},
                      {"max_front_points", 2}};
  const fs::path sweep = dir / "sweep.json";
  std::ofstream(sweep) << j.dump(2);
  const fs::path out = dir / "out";
  const std::string first = "fmnist-mlp__bismo-edge__latency-0.6x__ddpg__s0";
  const std::string second = "fmnist-mlp__bismo-cloud__latency-0.6x__ddpg__s0";

  // Kill once the first job is finished and the second has a checkpoint.
  auto r = run_haq_killed_when({"sweep", sweep.string(), "--out", out.string(), "--quiet"}, [&] {
    return fs::exists(out / first / "job.json") && logged_episodes(out / second) >= 2;
  }, 300);
  INFO(r.err);
  REQUIRE(r.exit_code == -9);
  REQUIRE(fs::exists(out / first / "policy.json"));
  REQUIRE_FALSE(fs::exists(out / second / "job.json"));
  const auto first_time = fs::last_write_time(out / first / "policy.json");
  const std::string first_policy = read_text(out / first / "policy.json");
  check_search_dir(out / second);

  auto again = run_haq({"sweep", sweep.string(), "--out", out.string()}, 300);
  INFO(again.err);
  REQUIRE(again.exit_code == 0);
  CHECK_THAT(again.err, Contains(first + ": complete, skipped"));
  CHECK_THAT(again.err, Contains(second + ": resuming from its checkpoint"));
  CHECK_THAT(again.out, Contains("ran 1"));
  CHECK(fs::last_write_time(out / first / "policy.json") == first_time);  // not redone
  CHECK(read_text(out / first / "policy.json") == first_policy);
  CHECK(fs::exists(out / second / "job.json"));
  const DirState st = check_search_dir(out / second);
  CHECK(st.logged_episodes == 6);
  CHECK(st.temp_files == 0);
}
