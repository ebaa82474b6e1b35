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
  CHECK(r.err.rfind("haq: error: --samples: expected an integer >= 0, got '-5'\n", 0) == 0);
  r = run_haq({"search", "--w-bits", "9..2"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: --w-bits: expected bits MIN..MAX within 1..8", 0) == 0);
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
