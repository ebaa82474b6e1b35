#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "fake_problem.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/search/search.h"
#include "test_paths.h"

using namespace haq;
using namespace haq::search;

namespace {
SearchOptions small(const std::string& algo, int episodes) {
  SearchOptions o;
  o.algo = algo;
  o.episodes = episodes;
  o.seed = 11;
  o.ddpg.hidden = 32;
  o.ddpg.warmup = 5;
  return o;
}

void check_same(const SearchResult& a, const SearchResult& b) {
  REQUIRE(a.points.size() == b.points.size());
  for (size_t i = 0; i < a.points.size(); ++i) {
    CHECK(a.points[i].key == b.points[i].key);
    CHECK(a.points[i].accuracy_pct == b.points[i].accuracy_pct);
  }
  REQUIRE(a.episodes.size() == b.episodes.size());
  for (size_t i = 0; i < a.episodes.size(); ++i) {
    CHECK(a.episodes[i].point == b.episodes[i].point);
    CHECK(a.episodes[i].reward == b.episodes[i].reward);
  }
  CHECK(a.best == b.best);
}
}  // namespace

TEST_CASE("search: every agent returns a feasible best, deterministically", "[search][loop]") {
  auto p = fake::fake_problem();
  for (const auto& algo : agent_names()) {
    INFO(algo);
    auto o = small(algo, 150);
    auto a = run_search(o, p);
    auto b = run_search(o, p);
    check_same(a, b);
    REQUIRE(a.best >= 0);
    CHECK(a.points[a.best].feasible);
    for (const auto& pt : a.points)
      if (pt.feasible) CHECK(pt.accuracy_pct <= a.points[a.best].accuracy_pct);
    // the cache: each distinct policy measured once
    CHECK(a.evaluations == static_cast<int>(a.points.size()));
    int cached = 0;
    for (const auto& e : a.episodes) cached += e.cached;
    CHECK(cached + a.evaluations == static_cast<int>(a.episodes.size()));
  }
}

TEST_CASE("search: resume from a checkpoint equals an uninterrupted run", "[search][loop]") {
  for (const auto& algo : agent_names()) {
    INFO(algo);
    auto p = fake::fake_problem();
    auto dir = haq::test::scratch_dir("search-resume-" + algo);
    auto o = small(algo, 60);
    auto straight = run_search(o, p);
    SearchHooks hooks;
    hooks.out_dir = dir.string();
    hooks.identity = "{\"seed\":11}";
    // interrupted after 25 measurements (as by Ctrl-C), then resumed
    auto interrupted = p;
    int calls = 0;
    interrupted.accuracy = [&](const quant::Policy& pol) {
      if (++calls == 25) request_stop();
      return p.accuracy(pol);
    };
    auto first = run_search(o, interrupted, hooks);
    reset_stop();
    CHECK(first.stop_reason == "interrupted");
    CHECK(std::filesystem::exists(dir / "checkpoint" / "state.bin"));
    CHECK(std::filesystem::exists(dir / "search.jsonl"));
    auto o2 = o;
    o2.resume = true;
    auto resumed = run_search(o2, p, hooks);
    CHECK(resumed.resumed_from == static_cast<int>(first.episodes.size()));
    check_same(straight, resumed);
    // a different identity is refused, naming what changed
    SearchHooks other = hooks;
    other.identity = "{\"seed\":12}";
    CHECK_THROWS_WITH(run_search(o2, p, other), Catch::Contains("'seed' was 11 and is now 12"));
  }
}

TEST_CASE("search: ddpg run to N/2, then resumed to N, equals N straight", "[search][loop]") {
  auto p = fake::fake_problem();
  auto dir = haq::test::scratch_dir("search-resume-half");
  auto straight = run_search(small("ddpg", 40), p);
  SearchHooks hooks;
  hooks.out_dir = dir.string();
  run_search(small("ddpg", 20), p, hooks);
  auto o = small("ddpg", 40);
  o.resume = true;
  check_same(straight, run_search(o, p, hooks));
}

TEST_CASE("search: stop request ends at an episode boundary", "[search][loop]") {
  auto p = fake::fake_problem();
  int calls = 0;
  auto inner = p.accuracy;
  p.accuracy = [&](const quant::Policy& pol) {
    if (++calls == 7) request_stop();
    return inner(pol);
  };
  auto r = run_search(small("random", 100), p);
  reset_stop();
  CHECK(r.stop_reason == "interrupted");
  CHECK(r.episodes.size() == 7);
  auto again = run_search(small("random", 10), fake::fake_problem());
  CHECK(again.stop_reason == "done");
  CHECK(again.episodes.size() == 10);
}

TEST_CASE("search: search.jsonl has one line per episode", "[search][loop]") {
  auto p = fake::fake_problem();
  auto r = run_search(small("random", 12), p);
  auto text = search_jsonl(r, p);
  size_t lines = 0;
  for (char c : text) lines += c == '\n';
  CHECK(lines == 12);
  auto first = nlohmann::json::parse(text.substr(0, text.find('\n')));
  CHECK(first["episode"] == 0);
  CHECK(first.contains("latency_ratio"));
  CHECK(first["feasible"] == true);
}

TEST_CASE("search: config files are strict", "[search][config]") {
  auto dir = haq::test::scratch_dir("search-config");
  auto good = (dir / "good.json").string();
  write_file_atomic(good, R"({"schema": "haq.search/1", "model": "m.onnx", "hw": "p.json",
    "budgets": ["latency<=0.5x"], "algo": "random", "episodes": 12, "time_budget": "2m",
    "w_bits": [3, 8], "ddpg": {"warmup": 4}, "select_samples": 500, "select_top": 3,
    "refine_rounds": 0, "refine_moves": 5, "act_quant": "symmetric"})");
  auto o = read_search_config(good, default_search_options());
  CHECK(default_search_options().act_quant == quant::ActQuantMode::asymmetric);
  CHECK(o.act_quant == quant::ActQuantMode::symmetric);
  CHECK(o.select_samples == 500);
  CHECK(o.select_top == 3);
  CHECK(o.refine_rounds == 0);
  CHECK(o.refine_moves == 5);
  CHECK(o.model == "m.onnx");
  CHECK(o.algo == "random");
  CHECK(o.episodes == 12);
  CHECK(o.time_budget_s == 120);
  CHECK(o.w_bits.min == 3);
  CHECK(o.ddpg.warmup == 4);
  CHECK(o.ddpg.hidden == 300);
  auto j = search_options_to_json(o);
  auto round = (dir / "round.json").string();
  write_file_atomic(round, j.dump(2));
  auto o2 = read_search_config(round, default_search_options());
  CHECK(search_options_to_json(o2) == j);

  auto bad = (dir / "bad.json").string();
  write_file_atomic(bad, R"({"episode": 12})");
  try {
    read_search_config(bad, default_search_options());
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::config);
    CHECK(e.file() == bad);
    CHECK_THAT(e.what(), Catch::Contains("episode"));
    CHECK_THAT(e.what(), Catch::Contains("episodes"));
  }
  write_file_atomic(bad, R"({"ddpg": {"tau": 3}})");
  CHECK_THROWS_WITH(read_search_config(bad, default_search_options()), Catch::Contains("/ddpg/tau"));
  write_file_atomic(bad, R"({"act_quant": "affine"})");
  CHECK_THROWS_WITH(read_search_config(bad, default_search_options()), Catch::Contains("/act_quant"));
  write_file_atomic(bad, R"({"algo": "dqn"})");
  CHECK_THROWS_WITH(read_search_config(bad, default_search_options()), Catch::Contains("/algo"));
  CHECK(parse_duration_s("90s") == 90);
  CHECK(parse_duration_s("20m") == 1200);
  CHECK(parse_duration_s("1.5h") == 5400);
  CHECK(parse_duration_s("45") == 45);
  CHECK_THROWS(parse_duration_s("soon"));
  CHECK_THROWS(parse_duration_s("5d"));
}
