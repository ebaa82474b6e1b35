// haq search end to end on the small MLP: every output written, byte-identical
// across runs with the same seed, resume equals an uninterrupted run, and bad
// or infeasible budgets exit 2 before anything is written.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "tiny_search.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;
using haq::test::read_text;

namespace {

fs::path tiny_config(const fs::path& dir) { return haq::test::tiny_search_config(dir, 200, 64, 300); }

std::vector<std::string> tiny_args(const fs::path& cfg, const fs::path& out, int episodes) {
  return haq::test::tiny_search_args(cfg, out, episodes, 3);
}

}  // namespace

TEST_CASE("haq search: a tiny search writes every output, byte-identical across runs", "[search]") {
  auto dir = scratch_dir("e2e-search");
  auto cfg = tiny_config(dir);
  auto a = run_haq(tiny_args(cfg, dir / "a", 10), 600);
  INFO(a.err);
  REQUIRE(a.exit_code == 0);
  for (const char* f : {"policy.json", "pareto.json", "points.csv", "report.html", "report.md",
                        "search.jsonl", "config.json", "checkpoint/state.bin"})
    CHECK(fs::exists(dir / "a" / f));
  auto policy = nlohmann::json::parse(read_text(dir / "a" / "policy.json"));
  CHECK(policy["schema"] == "haq.policy/1");
  REQUIRE(policy["layers"].size() == 3);
  CHECK(policy["budgets"][0]["ratio"].get<double>() <= 0.5);
  CHECK(policy["accuracy"]["fp32"]["test"].get<double>() > 70);
  CHECK(policy["search"]["test_samples"] == 300);
  CHECK(policy["search"]["eval_split"] == "train");
  for (const auto& l : policy["layers"]) {
    CHECK(l["w_bits"].get<int>() >= 2);
    CHECK(l.contains("latency_s"));
  }
  // the final choice: the best of the candidates on 1000 other train samples
  CHECK(policy["search"]["select_samples"] == 1000);
  CHECK(policy["search"]["select_candidates"].get<int>() >= 2);
  {
    std::istringstream csv(read_text(dir / "a" / "points.csv"));
    std::string line;
    std::getline(csv, line);
    REQUIRE(line.rfind("index,label,kind,episode,feasible,pareto,acc_search,acc_test,acc_select,", 0) == 0);
    double chosen = -1, best = -1;
    int measured = 0;
    while (std::getline(csv, line)) {
      std::vector<std::string> f;
      std::istringstream cells(line);
      for (std::string c; std::getline(cells, c, ',');) f.push_back(c);
      if (!line.empty() && line.back() == ',') f.push_back("");
      REQUIRE(f.size() == 18);
      if (f[8].empty()) continue;
      ++measured;
      best = std::max(best, std::stod(f[8]));
      if (f[2] == "chosen") chosen = std::stod(f[8]);
    }
    CHECK(measured == policy["search"]["select_candidates"].get<int>());
    CHECK(chosen == best);
  }
  // search.jsonl: one line per episode
  std::string log = read_text(dir / "a" / "search.jsonl");
  CHECK(std::count(log.begin(), log.end(), '\n') == 10);
  auto config = nlohmann::json::parse(read_text(dir / "a" / "config.json"));
  CHECK(config["episodes"] == 10);
  CHECK(config["ddpg"]["warmup"] == 4);
  CHECK(config["seed"] == 3);

  auto b = run_haq(tiny_args(cfg, dir / "b", 10), 600);
  REQUIRE(b.exit_code == 0);
  for (const char* f : {"policy.json", "pareto.json", "points.csv"})
    CHECK(read_text(dir / "a" / f) == read_text(dir / "b" / f));

  // the policy is an input of eval
  auto ev = run_haq({"eval", source_path("models/fmnist-mlp.onnx"), "--data", "fashion-mnist",
                     "--policy", (dir / "a" / "policy.json").string(), "--samples", "100"});
  INFO(ev.err);
  CHECK(ev.exit_code == 0);
}

TEST_CASE("haq search: resume from the checkpoint equals an uninterrupted run", "[search]") {
  auto dir = scratch_dir("e2e-search-resume");
  auto cfg = tiny_config(dir);
  auto straight = run_haq(tiny_args(cfg, dir / "straight", 12), 600);
  REQUIRE(straight.exit_code == 0);
  auto half = run_haq(tiny_args(cfg, dir / "resumed", 6), 600);
  REQUIRE(half.exit_code == 0);
  auto args = tiny_args(cfg, dir / "resumed", 12);
  args.push_back("--resume");
  auto rest = run_haq(args, 600);
  INFO(rest.err);
  REQUIRE(rest.exit_code == 0);
  CHECK(read_text(dir / "straight" / "policy.json") == read_text(dir / "resumed" / "policy.json"));
  CHECK(read_text(dir / "straight" / "points.csv") == read_text(dir / "resumed" / "points.csv"));
  // a resume with another seed is refused
  auto other = tiny_args(cfg, dir / "resumed", 12);
  other[other.size() - 4] = "4";  // --seed
  other.push_back("--resume");
  auto bad = run_haq(other, 600);
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Contains("different search") && Contains("seed"));
}

TEST_CASE("haq search: bad and infeasible budgets exit 2 and write nothing", "[search]") {
  auto dir = scratch_dir("e2e-search-bad");
  auto cfg = tiny_config(dir);
  auto args = tiny_args(cfg, dir / "out", 5);
  args[7] = "latency<=half";
  auto r = run_haq(args);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: --budget: 'latency<=half'"));
  CHECK_FALSE(fs::exists(dir / "out"));

  args[7] = "latency<=0.01x";
  r = run_haq(args);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("cannot be met") && Contains("smallest reachable latency"));
  CHECK_FALSE(fs::exists(dir / "out"));

  fs::path bad_cfg = dir / "bad.json";
  std::ofstream(bad_cfg) << R"({"episode": 4})";
  args[7] = "latency<=0.5x";
  args[9] = bad_cfg.string();
  r = run_haq(args);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains(bad_cfg.string()) && Contains("episode") && Contains("episodes"));
  CHECK_FALSE(fs::exists(dir / "out"));

  auto algo = tiny_args(cfg, dir / "out", 5);
  algo.push_back("--algo");
  algo.push_back("sgd");
  r = run_haq(algo);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("unknown algorithm 'sgd'"));
  CHECK_FALSE(fs::exists(dir / "out"));

  // the final choice's options: out of range on the command line or in a config
  auto sel = tiny_args(cfg, dir / "out", 5);
  sel.insert(sel.end(), {"--select-samples", "-1"});
  r = run_haq(sel);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: --select-samples: expected an integer in 0..1000000000, got -1"));
  CHECK_FALSE(fs::exists(dir / "out"));
  std::ofstream(bad_cfg) << R"({"refine_moves": 0})";
  r = run_haq(args);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains(bad_cfg.string() + ": /refine_moves: expected an integer in 1..100000, got 0"));
  CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("haq search: the baseline agents run through the CLI", "[search]") {
  auto dir = scratch_dir("e2e-search-algos");
  auto cfg = tiny_config(dir);
  for (const std::string algo : {"random", "greedy", "knapsack"}) {
    auto args = tiny_args(cfg, dir / algo, 60);
    args.push_back("--algo");
    args.push_back(algo);
    auto r = run_haq(args, 600);
    INFO(algo << ": " << r.err);
    REQUIRE(r.exit_code == 0);
    auto policy = nlohmann::json::parse(read_text(dir / algo / "policy.json"));
    CHECK(policy["algo"] == algo);
    CHECK(policy["totals"]["latency_ratio"].get<double>() <= 0.5);
  }
}

TEST_CASE("haq search on an attention net: the attention matmuls are searched layers of the report",
          "[search]") {
  auto dir = scratch_dir("e2e-search-attention");
  auto cfg = tiny_config(dir);
  auto args = tiny_args(cfg, dir / "att", 8);
  args[1] = source_path("tests/data/model/tiny_attention.onnx");
  auto r = run_haq(args, 600);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto policy = nlohmann::json::parse(read_text(dir / "att" / "policy.json"));
  REQUIRE(policy["layers"].size() == 10);  // patch conv, 6 linears, 2 attention matmuls, head
  CHECK(policy["budgets"][0]["ratio"].get<double>() <= 0.5);
  int act = 0;
  for (const auto& l : policy["layers"]) {
    const std::string name = l["name"];
    if (name == "/MatMul" || name == "/MatMul_1") {
      ++act;
      CHECK(l["w_bits"].get<int>() >= 1);
      CHECK(l["latency_s"].get<double>() > 0);
    }
  }
  CHECK(act == 2);
  const std::string md = read_text(dir / "att" / "report.md");
  CHECK_THAT(md, Contains("MatMul(act)"));
}

TEST_CASE("haq search on the corpus ViT: bismo-edge under latency<=0.5x, its attention matmuls searched",
          "[search]") {
  // Issue 16: the small vision transformer of the corpus (patch conv, 2
  // pre-LN encoder blocks, 4 heads, GELU MLP, opset 17) end to end.
  auto dir = scratch_dir("e2e-search-vit");
  auto cfg = haq::test::tiny_search_config(dir, 100, 32, 200);
  auto args = tiny_args(cfg, dir / "vit", 8);
  args[1] = source_path("models/corpus/fmnist-vit.onnx");
  auto r = run_haq(args, 900);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto policy = nlohmann::json::parse(read_text(dir / "vit" / "policy.json"));
  // patch conv, 2 x (qkv, proj, fc1, fc2) linears, 2 x 2 attention matmuls, head
  REQUIRE(policy["layers"].size() == 14);
  CHECK(policy["budgets"][0]["ratio"].get<double>() <= 0.5);
  for (const auto& l : policy["layers"]) {
    CHECK(l["w_bits"].get<int>() >= 1);
    CHECK(l["latency_s"].get<double>() > 0);
  }
  // The report's layer table lists the four attention matmuls as layers.
  const std::string md = read_text(dir / "vit" / "report.md");
  size_t act = 0;
  for (size_t at = md.find("| MatMul(act) |"); at != std::string::npos; at = md.find("| MatMul(act) |", at + 1))
    ++act;
  CHECK(act == 4);
}
