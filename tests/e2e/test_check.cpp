// haq check end to end: a fresh search's policy passes; hand-edited recorded
// figures (better accuracy, lower latency), a renamed or reshaped layer, and
// bad files are caught with the right exit code and a message naming them.
#include <filesystem>
#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

void write_json(const fs::path& p, const nlohmann::json& j) { std::ofstream(p) << j.dump(2); }

std::vector<std::string> check_args(const fs::path& policy, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"check", policy.string(), "--model", source_path("models/fmnist-mlp.onnx"),
                                "--hw", source_path("hardware-profiles/bismo-edge.json"), "--data",
                                "fashion-mnist"};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

// One tiny search, run once for every section (Catch re-enters the test
// case per section).
const fs::path& search_dir() {
  static const fs::path dir = [] {
    auto dir = scratch_dir("e2e-check");
    fs::path cfg = dir / "tiny.json";
    std::ofstream(cfg) << R"({"schema": "haq.search/1", "eval_samples": 200, "calib_samples": 64,
      "test_samples": 500, "batch": 100, "select_samples": 1000, "refine_moves": 4})";
    auto s = run_haq({"search", source_path("models/fmnist-mlp.onnx"), "--hw",
                      source_path("hardware-profiles/bismo-edge.json"), "--data", "fashion-mnist", "--budget",
                      "latency<=0.6x", "--config", cfg.string(), "--episodes", "6", "--seed", "5", "--quiet",
                      "--out", (dir / "s").string()},
                     600);
    if (s.exit_code != 0) FAIL("search failed: " << s.err);
    return dir;
  }();
  return dir;
}

}  // namespace

TEST_CASE("haq check: fresh policy passes, edited figures and layers fail, bad files exit 2", "[check]") {
  const fs::path dir = search_dir();
  const fs::path good = dir / "s" / "policy.json";
  const nlohmann::json pj = read_json(good);
  REQUIRE(pj["layers"][0].contains("shape"));

  SECTION("the fresh policy passes, and re-measures exactly the recorded figures") {
    auto r = run_haq(check_args(good, {"--json"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["passed"] == true);
    CHECK(j["test_samples"] == 500);
    REQUIRE(j["metrics"].size() == 3);
    for (const auto& m : j["metrics"]) {
      CHECK(m["regressed"] == false);
      // Same samples, calibration and simulator: identical figures.
      CHECK(m["measured"].get<double>() == Approx(m["recorded"].get<double>()).epsilon(1e-9));
    }
    auto t = run_haq(check_args(good));
    CHECK(t.exit_code == 0);
    CHECK_THAT(t.out, Contains("PASS"));
  }

  SECTION("a recorded accuracy 1 point better than measured fails, naming accuracy") {
    auto p = pj;
    p["accuracy"]["chosen"]["test"] = pj["accuracy"]["chosen"]["test"].get<double>() + 1.0;
    write_json(dir / "acc.json", p);
    auto r = run_haq(check_args(dir / "acc.json"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Contains("accuracy") && Contains("REGRESSED") && Contains("-1.00 pt"));
    CHECK_THAT(r.out, Contains("FAIL: regressed: accuracy"));
    // Within a wider tolerance it passes.
    CHECK(run_haq(check_args(dir / "acc.json", {"--max-accuracy-drop", "1.5"})).exit_code == 0);
  }

  SECTION("a recorded latency 10% lower fails, naming latency") {
    auto p = pj;
    p["totals"]["latency_s"] = pj["totals"]["latency_s"].get<double>() * 0.9;
    write_json(dir / "lat.json", p);
    auto r = run_haq(check_args(dir / "lat.json", {"--json"}));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["passed"] == false);
    for (const auto& m : j["metrics"]) {
      CHECK(m["regressed"] == (m["metric"] == "latency"));
      if (m["metric"] == "latency") CHECK(m["change"].get<double>() == Approx(100.0 / 9.0).epsilon(1e-6));
    }
    CHECK(run_haq(check_args(dir / "lat.json", {"--max-latency-increase", "12%"})).exit_code == 0);
  }

  SECTION("a renamed layer fails with exit 1 naming both names") {
    auto p = pj;
    const std::string old_name = p["layers"][1]["name"];
    p["layers"][1]["name"] = "renamed_fc";
    write_json(dir / "ren.json", p);
    auto r = run_haq(check_args(dir / "ren.json"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Contains("'renamed_fc' is in the policy but not in the model"));
    CHECK_THAT(r.out, Contains("'" + old_name + "' is in the model but not in the policy"));
  }

  SECTION("a reshaped layer fails with exit 1 naming it") {
    auto p = pj;
    p["layers"][0]["shape"]["c_out"] = pj["layers"][0]["shape"]["c_out"].get<int64_t>() * 2;
    write_json(dir / "shape.json", p);
    auto r = run_haq(check_args(dir / "shape.json"));
    INFO(r.out << r.err);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Contains("layer '" + pj["layers"][0]["name"].get<std::string>() + "' was reshaped"));
  }

  SECTION("a removed layer fails with exit 1") {
    auto p = pj;
    p["layers"].erase(2);
    write_json(dir / "rm.json", p);
    auto r = run_haq(check_args(dir / "rm.json"));
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Contains("is in the model but not in the policy"));
  }

  SECTION("bad input exits 2 naming the file") {
    std::ofstream(dir / "bad.json") << "{not json";
    auto r = run_haq(check_args(dir / "bad.json"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("bad.json"));
    write_json(dir / "nofig.json", nlohmann::json{{"layers", pj["layers"]}});
    auto n = run_haq(check_args(dir / "nofig.json"));
    CHECK(n.exit_code == 2);
    CHECK_THAT(n.err, Contains("records no figures"));
    auto b = pj;
    b["layers"][0]["w_bits"] = 11;
    write_json(dir / "bits.json", b);
    CHECK(run_haq(check_args(dir / "bits.json")).exit_code == 2);
    CHECK(run_haq(check_args(dir / "missing.json")).exit_code == 2);
    CHECK(run_haq(check_args(good, {"--max-latency-increase", "lots"})).exit_code == 2);
  }
}
