#include <algorithm>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"
#include "tiny_search.h"

using haq::test::run_haq;

TEST_CASE("haq --version prints the version") {
  auto r = run_haq({"--version"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.rfind("haq 0.", 0) == 0);
}

TEST_CASE("haq --help lists the subcommands") {
  auto r = run_haq({"--help"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("inspect") != std::string::npos);
}

TEST_CASE("an unknown subcommand or option is a usage error, exit 2") {
  CHECK(run_haq({"frobnicate"}).exit_code == 2);
  CHECK(run_haq({"inspect", "--no-such-option"}).exit_code == 2);
  CHECK(run_haq({}).exit_code == 2);
}

TEST_CASE("a misspelled option or subcommand names what was meant", "[cli]") {
  auto r = run_haq({"eval", "models/fmnist-mlp.onnx", "--dat", "fashion-mnist"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: unknown option '--dat'; did you mean '--data'?\n"
                    "Run 'haq eval --help' for the options and examples.\n",
                    0) == 0);
  r = run_haq({"search", "--episods=5"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: unknown option '--episods'; did you mean '--episodes'?", 0) == 0);
  r = run_haq({"serch"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: unknown subcommand 'serch'; did you mean 'search'?", 0) == 0);
  // Nothing close: no suggestion.
  r = run_haq({"inspect", "--zzzzzzzz"});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "haq: error: unknown option '--zzzzzzzz'\nRun 'haq inspect --help' for the options and examples.\n");
}

TEST_CASE("every option error has the haq: error: prefix and a readable bound", "[cli]") {
  const std::vector<std::vector<std::string>> bad = {
      {"eval"},
      {"eval", "m.onnx"},
      {"eval", "m.onnx", "--data", "d", "--batch", "0"},
      {"search", "--select-samples", "-1"},
      {"simulate", "m.onnx"},
      {"check", "p.json"},
      {"export", "m.onnx"},
      {"sweep"},
      {"merge"},
      {"inspect", "a.onnx", "b.onnx"},
      {},
  };
  for (const auto& args : bad) {
    INFO(fmt::format("haq {}", fmt::join(args, " ")));
    auto r = run_haq(args);
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("haq: error: ", 0) == 0);
    CHECK(r.err.find("--help") != std::string::npos);
  }
  auto r = run_haq({"eval", "m.onnx", "--data", "d", "--samples", "-5"});
  CHECK(r.err.rfind("haq: error: --samples: expected a non-negative integer, got -5\n", 0) == 0);
  r = run_haq({"search", "--w-bits", "9..2"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: --w-bits: expected bits MIN..MAX within 1..8", 0) == 0);
}

TEST_CASE("numbers and empty values on the command line are checked as in configs", "[cli][issue17]") {
  const std::string seed_range = "expected an integer in 0..9223372036854775807, got ";
  const std::vector<std::string> eval = {"eval", "m.onnx", "--data", "d"};
  auto with = [](std::vector<std::string> base, std::vector<std::string> more) {
    base.insert(base.end(), more.begin(), more.end());
    return base;
  };
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"search", "--seed", "-1"}, "--seed: " + seed_range + "-1"},
      {{"search", "--seed", "18446744073709551616"}, "--seed: " + seed_range + "18446744073709551616"},
      {{"search", "--seed", "9223372036854775808"}, "--seed: " + seed_range + "9223372036854775808"},
      {{"search", "--seed", "1e3"}, "--seed: " + seed_range + "1e3"},
      {with(eval, {"--seed", "-1"}), "--seed: " + seed_range + "-1"},
      {{"export", "m.onnx", "--policy", "p", "--data", "d", "--out", "o", "--seed", "-2"}, "--seed: " + seed_range + "-2"},
      {{"search", "--eval-samples", "-5"}, "--eval-samples: expected a positive integer, got -5"},
      {{"search", "--calib-samples", "0"}, "--calib-samples: expected a positive integer, got 0"},
      {{"search", "--test-samples", "-1"}, "--test-samples: expected a non-negative integer, got -1"},
      {{"search", "--episodes", "0"}, "--episodes: expected an integer in 1..1000000, got 0"},
      {{"search", "--episodes", "-3"}, "--episodes: expected an integer in 1..1000000, got -3"},
      {{"search", "--episodes", "2.5"}, "--episodes: expected an integer in 1..1000000, got 2.5"},
      {{"search", "--batch", "-4"}, "--batch: expected an integer in 1..100000, got -4"},
      {with(eval, {"--calib", "-1"}), "--calib: expected an integer in 1..1073741824, got -1"},
      {with(eval, {"--batch", "-1"}), "--batch: expected an integer in 1..65536, got -1"},
      {{"simulate", "m.onnx", "--hw", "h", "--batch", "-1"}, "--batch: expected an integer in 1..1048576, got -1"},
      {with(eval, {"--bits", ""}), "--bits: expected a value, got an empty one"},
      {{"search", "--budget", ""}, "--budget: expected a value, got an empty one"},
      {{"search", "--out", ""}, "--out: expected a value, got an empty one"},
      {{"eval", "", "--data", "d"}, "MODEL: expected a value, got an empty one"},
      {{"check", "p.json", "--model", "m", "--hw", "h", "--data", "d", "--max-accuracy-drop", "nan"},
       "--max-accuracy-drop: expected a finite number, got nan"},
      {{"check", "p.json", "--model", "m", "--hw", "h", "--data", "d", "--samples", ""},
       "--samples: expected a non-negative integer, got an empty value"},
  };
  for (const auto& [args, message] : cases) {
    INFO(fmt::format("haq {}", fmt::join(args, " ")));
    auto r = run_haq(args);
    INFO(r.err);
    CHECK(r.exit_code == 2);
    CHECK(r.err.rfind("haq: error: " + message + "\n", 0) == 0);
    CHECK(r.out.empty());
    CHECK(r.err.size() < 300);  // no 309-digit bound
  }
  // The bound itself is accepted: the error is then about the missing data.
  auto r = run_haq(with(eval, {"--seed", "9223372036854775807", "--samples", "0"}));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--seed") == std::string::npos);
}

TEST_CASE("haq search --help lists every key a search config holds", "[cli]") {
  const auto help = run_haq({"search", "--help"});
  REQUIRE(help.exit_code == 0);
  // A real config.json, as a search writes it: every key it can hold.
  const auto dir = haq::test::scratch_dir("cli_help_keys");
  const auto cfg = haq::test::tiny_search_config(dir, 100, 32, 100);
  auto args = haq::test::tiny_search_args(cfg, dir / "out", 2, 0);
  REQUIRE(run_haq(args).exit_code <= 1);
  const auto config = nlohmann::json::parse(haq::test::read_text((dir / "out" / "config.json").string()));
  for (const auto& [key, value] : config.items()) {
    if (key == "schema") continue;
    INFO(key);
    if (value.is_object()) {
      for (const auto& [k, v] : value.items()) CHECK(help.out.find(key + "." + k) != std::string::npos);
      continue;
    }
    std::string option = key == "budgets" ? "--budget" : key == "model" ? "MODEL" : "--" + key;
    std::replace(option.begin(), option.end(), '_', '-');
    // Listed as a key with the option that sets it, and the option exists.
    CHECK(help.out.find(fmt::format("{} ({})", key, option)) != std::string::npos);
    CHECK(help.out.find("  " + option) != std::string::npos);
  }
}

TEST_CASE("haq search, export, merge --json print their results as JSON", "[cli]") {
  const auto dir = haq::test::scratch_dir("cli_json");
  const auto cfg = haq::test::tiny_search_config(dir, 200, 64, 300);
  auto args = haq::test::tiny_search_args(cfg, dir / "out", 6, 1);
  args.push_back("--json");
  auto r = run_haq(args);
  REQUIRE(r.exit_code == 0);
  const auto j = nlohmann::json::parse(r.out);  // stdout is only the JSON
  const auto policy = nlohmann::json::parse(haq::test::read_text((dir / "out" / "policy.json").string()));
  CHECK(j["found"] == true);
  CHECK(j["episodes"] == 6);
  CHECK(j["chosen"]["top1"].get<double>() == policy["accuracy"]["chosen"]["test"].get<double>());
  r = run_haq({"export", haq::test::source_path("models/fmnist-mlp.onnx"), "--policy",
               (dir / "out" / "policy.json").string(), "--data", "fashion-mnist", "--calib", "64", "--out",
               (dir / "m.qdq.onnx").string(), "--json"});
  REQUIRE(r.exit_code == 0);
  const auto e = nlohmann::json::parse(r.out);
  CHECK(e["layers"] == policy["layers"].size());
  CHECK(e["calibration_samples"] == 64);
  r = run_haq({"merge", (dir / "out").string(), "--out", (dir / "merged").string(), "--json"});
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out)["searches"] == 1);
}
