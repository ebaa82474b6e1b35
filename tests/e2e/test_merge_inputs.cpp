// haq merge on policy.json files it did not write (issue 17): a missing or
// mistyped field is an error naming the policy.json and the JSON pointer
// (never a leaked library message), and names copied into merged.md are
// escaped so they cannot break its table or inject HTML.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"
#include "tiny_search.h"

using Catch::Matchers::Contains;
using haq::test::read_text;
using haq::test::run_haq;
using haq::test::scratch_dir;
namespace fs = std::filesystem;

TEST_CASE("haq merge: a damaged policy.json is named with its pointer and merged.md escapes names", "[merge]") {
  auto dir = scratch_dir("e2e-merge-inputs");
  const fs::path cfg = haq::test::tiny_search_config(dir, 100, 32, 100);
  auto s = run_haq(haq::test::tiny_search_args(cfg, dir / "s", 2, 3), 300);
  INFO(s.err);
  REQUIRE(s.exit_code == 0);
  nlohmann::json pj = nlohmann::json::parse(read_text((dir / "s" / "policy.json").string()));

  auto write_policy = [&](const std::string& name, const nlohmann::json& j) {
    fs::create_directories(dir / name);
    std::ofstream(dir / name / "policy.json") << j.dump(2);
    return (dir / name).string();
  };
  auto noacc = pj;
  noacc["accuracy"].erase("chosen");
  auto r = run_haq({"merge", write_policy("noacc", noacc), "--out", (dir / "m1").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: " + (dir / "noacc" / "policy.json").string() +
                             ": /accuracy/chosen/test: missing: not a policy written by haq search"));
  CHECK_THAT(r.err, !Contains("json.exception"));
  auto badseed = pj;
  badseed["seed"] = "five";
  r = run_haq({"merge", write_policy("badseed", badseed), "--out", (dir / "m2").string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("policy.json: /seed: expected a seed in 0..2^63-1, got \"five\""));
  CHECK_THAT(r.err, !Contains("json.exception"));
  CHECK_FALSE(fs::exists(dir / "m2" / "merged.md"));

  auto odd = pj;
  odd["algo"] = "ddpg|<img src=x>";
  r = run_haq({"merge", write_policy("odd", odd), "--out", (dir / "m3").string()});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  const std::string md = read_text((dir / "m3" / "merged.md").string());
  CHECK_THAT(md, Contains("ddpg\\|&lt;img src=x&gt;"));
  CHECK_THAT(md, !Contains("<img"));
  // Every table row keeps its column count: 14 cells, 15 unescaped bars.
  std::istringstream lines(md);
  std::string line;
  int rows = 0;
  while (std::getline(lines, line))
    if (line.find("ddpg") != std::string::npos && line.rfind("| ", 0) == 0) {
      int bars = 0;
      for (size_t i = 0; i < line.size(); ++i) bars += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
      CHECK(bars == 15);
      ++rows;
    }
  CHECK(rows >= 1);
}
