// haq check end to end: a fresh search's policy passes; hand-edited recorded
// figures (better accuracy, lower latency), a renamed or reshaped layer, and
// bad files are caught with the right exit code and a message naming them.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::scratch_dir;
using haq::test::source_path;
using haq::test::read_text;
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

// One tiny search per test case, run once for all its sections (Catch
// re-enters the test case per section). Each test case has its own folder:
// ctest runs test cases in parallel processes, which must not search into
// the same --out (a shared one gave intermittent exit 2 under ASan).
const fs::path& search_dir(const std::string& name) {
  static std::map<std::string, fs::path> dirs;
  if (auto it = dirs.find(name); it != dirs.end()) return it->second;
  const fs::path dir = [&] {
    auto dir = scratch_dir("e2e-check-" + name);
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
  return dirs.emplace(name, dir).first->second;
}

}  // namespace

TEST_CASE("haq check: fresh policy passes, edited figures and layers fail, bad files exit 2", "[check]") {
  const fs::path dir = search_dir("figures");
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
    CHECK_THAT(n.err, Contains("nofig.json: /accuracy/chosen/test: missing the test accuracy"));
    // Each figure is required on its own, and validated.
    for (const char* key : {"latency_s", "energy_pj"}) {
      auto f = pj;
      f["totals"].erase(key);
      write_json(dir / "onefig.json", f);
      auto one = run_haq(check_args(dir / "onefig.json"));
      CHECK(one.exit_code == 2);
      CHECK_THAT(one.err, Contains(fmt::format("onefig.json: /totals/{}: missing", key)));
    }
    auto noacc = pj;
    noacc["accuracy"]["chosen"].erase("test");
    write_json(dir / "noacc.json", noacc);
    auto na = run_haq(check_args(dir / "noacc.json"));
    CHECK(na.exit_code == 2);  // was PASS
    CHECK_THAT(na.err, Contains("/accuracy/chosen/test: missing"));
    auto neg = pj;
    neg["totals"]["latency_s"] = -1.0;
    write_json(dir / "neg.json", neg);
    auto ng = run_haq(check_args(dir / "neg.json"));
    CHECK(ng.exit_code == 2);
    CHECK_THAT(ng.err, Contains("/totals/latency_s: expected the latency in seconds above 0, got -1"));
    auto b = pj;
    b["layers"][0]["w_bits"] = 11;
    write_json(dir / "bits.json", b);
    CHECK(run_haq(check_args(dir / "bits.json")).exit_code == 2);
    CHECK(run_haq(check_args(dir / "missing.json")).exit_code == 2);
    CHECK(run_haq(check_args(good, {"--max-latency-increase", "lots"})).exit_code == 2);
  }
}

namespace {
std::vector<std::string> eval_args(const fs::path& policy, std::vector<std::string> extra = {}) {
  std::vector<std::string> a = {"eval", source_path("models/fmnist-mlp.onnx"), "--data", "fashion-mnist",
                                "--policy", policy.string()};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}
}  // namespace

TEST_CASE("haq check: another profile than the policy's is exit 2 unless --allow-other-profile", "[check]") {
  const fs::path dir = search_dir("profile");
  const fs::path good = dir / "s" / "policy.json";
  const nlohmann::json pj = read_json(good);
  REQUIRE(pj["profile"]["content_hash"].is_string());
  auto with_hw = [&](const fs::path& hw, std::vector<std::string> extra = {}) {
    std::vector<std::string> a = {"check", good.string(), "--model", source_path("models/fmnist-mlp.onnx"),
                                  "--hw", hw.string(), "--data", "fashion-mnist"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_haq(a);
  };
  const fs::path cloud = source_path("hardware-profiles/bismo-cloud.json");
  auto other = with_hw(cloud);
  CHECK(other.exit_code == 2);
  CHECK_THAT(other.err, Contains("was searched for 'bismo-edge'"));
  // The same name with other content: an edited copy.
  nlohmann::json edited = read_json(source_path("hardware-profiles/bismo-edge.json"));
  edited["clock_mhz"] = edited["clock_mhz"].get<double>() * 2;
  write_json(dir / "edge-edited.json", edited);
  auto changed = with_hw(dir / "edge-edited.json");
  CHECK(changed.exit_code == 2);
  CHECK_THAT(changed.err, Contains("differs from the profile 'bismo-edge'"));
  // Allowed: compared, and twice the clock halves the latency (the cycles stay).
  auto allowed = with_hw(dir / "edge-edited.json", {"--allow-other-profile", "--json"});
  INFO(allowed.err);
  REQUIRE(allowed.exit_code != 2);
  bool seen = false;
  const nlohmann::json report = nlohmann::json::parse(allowed.out);
  for (const auto& m : report["metrics"])
    if (m["metric"] == "latency") {
      seen = true;
      CHECK(m["measured"].get<double>() == Approx(m["recorded"].get<double>() / 2).epsilon(1e-9));
    }
  CHECK(seen);
}

TEST_CASE("haq eval --policy and haq check reproduce the search's recorded test accuracy exactly",
          "[check][eval]") {
  const fs::path dir = search_dir("reproduce");
  const fs::path good = dir / "s" / "policy.json";
  const nlohmann::json pj = read_json(good);
  const double recorded = pj["accuracy"]["chosen"]["test"].get<double>();
  // The record says how it was measured (docs/policy-format.md).
  const auto& c = pj["calibration"];
  CHECK(c["split"] == "train");
  CHECK(c["samples"] == 64);
  CHECK(c["seed"] == 5);
  CHECK(c["stream"] == "search.calib");
  CHECK(c["method"] == "mse");
  CHECK(c["weight_clip"] == "mse");
  CHECK(c["bias_correction"] == true);
  CHECK(pj["test_split"] == nlohmann::json({{"samples", 500}, {"seed", 5}, {"stream", "search.test"}}));

  SECTION("eval --policy --json: the same samples, calibration and figure, to the bit") {
    auto r = run_haq(eval_args(good, {"--json"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["samples"] == 500);
    CHECK(j["calibration_samples"] == 64);
    CHECK(j["seed"] == 5);
    CHECK(j["batch"] == 100);
    CHECK(j["quantized"]["top1"].get<double>() == recorded);
    CHECK(j["fp32"]["top1"].get<double>() == pj["accuracy"]["fp32"]["test"].get<double>());
    CHECK(j["recorded"]["top1"].get<double>() == recorded);
    CHECK(j["recorded"]["comparable"] == true);
    CHECK(j["recorded"]["differences"].empty());
  }
  SECTION("eval --policy text: prints the recorded figure as measured") {
    auto r = run_haq(eval_args(good));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.out, Contains(fmt::format("quantized    top1 {:6.2f}%", recorded)));
    CHECK_THAT(r.out, Contains("500 test samples (evaluation), 64 train samples (calibration), seed 5"));
    CHECK_THAT(r.out, Contains("measured the same way"));
  }
  SECTION("check: zero delta, to the bit") {
    auto r = run_haq(check_args(good, {"--json"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    REQUIRE(j["metrics"][0]["metric"] == "accuracy");
    CHECK(j["metrics"][0]["measured"].get<double>() == recorded);
    CHECK(j["metrics"][0]["change"].get<double>() == 0.0);
  }
  SECTION("options equal to the record keep the figure comparable") {
    auto r = run_haq(eval_args(good, {"--json", "--seed", "5", "--calib", "64", "--samples", "500", "--batch",
                                      "100", "--calib-method", "mse"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["quantized"]["top1"].get<double>() == recorded);
    CHECK(j["recorded"]["comparable"] == true);
  }
  SECTION("explicit options override the record, and the output says it is not comparable") {
    auto r = run_haq(eval_args(good, {"--json", "--calib", "32", "--no-bias-correction"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["calibration_samples"] == 32);
    CHECK(j["bias_correction"] == false);
    CHECK(j["samples"] == 500);  // the rest still as recorded
    CHECK(j["recorded"]["comparable"] == false);
    CHECK(j["recorded"]["differences"].size() == 2);
    CHECK_THAT(j["recorded"]["differences"][0].get<std::string>(),
               Contains("32 calibration samples instead of the recorded 64"));
    auto t = run_haq(eval_args(good, {"--seed", "0"}));
    REQUIRE(t.exit_code == 0);
    CHECK_THAT(t.out, Contains("NOT comparable: other calibration samples (seed 0, not the recorded 5)"));
    auto d = run_haq({"eval", source_path("models/fmnist-mlp.onnx"), "--data", "/usr/share/datasets/fashion-mnist",
                      "--policy", good.string(), "--json"});
    INFO(d.out << d.err);
    REQUIRE(d.exit_code == 0);
    auto dj = nlohmann::json::parse(d.out);
    CHECK(dj["quantized"]["top1"].get<double>() == recorded);  // the same files...
    CHECK(dj["recorded"]["comparable"] == false);             // ...but haq cannot know that
    CHECK_THAT(dj["recorded"]["differences"][0].get<std::string>(), Contains("data /usr/share/datasets/fashion-mnist"));
  }
  SECTION("a policy without a search record is measured with eval's own defaults") {
    nlohmann::json bare = {{"layers", pj["layers"]}};
    write_json(dir / "bare.json", bare);
    auto r = run_haq(eval_args(dir / "bare.json", {"--json", "--samples", "300"}));
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["calibration_samples"] == 512);
    CHECK(j["seed"] == 0);
    CHECK_FALSE(j.contains("recorded"));
  }
  SECTION("a malformed record is bad input naming the file and the pointer") {
    auto p = pj;
    p["calibration"]["method"] = "entropy";
    write_json(dir / "badcal.json", p);
    auto r = run_haq(eval_args(dir / "badcal.json"));
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("badcal.json") && Contains("/calibration/method"));
    CHECK(run_haq(check_args(dir / "badcal.json")).exit_code == 2);
  }
}

TEST_CASE("haq search: a time budget too small for the final choice cuts it short, the policy stays valid",
          "[check][search]") {
  auto dir = scratch_dir("e2e-check-budget");
  fs::path cfg = dir / "tiny.json";
  // The final choice on every train sample left: far more than the budget.
  std::ofstream(cfg) << R"({"schema": "haq.search/1", "algo": "random", "eval_samples": 200,
    "calib_samples": 64, "test_samples": 500, "batch": 100, "select_samples": 60000, "select_top": 100})";
  const auto t0 = std::chrono::steady_clock::now();
  auto s = run_haq({"search", source_path("models/fmnist-mlp.onnx"), "--hw",
                    source_path("hardware-profiles/bismo-edge.json"), "--data", "fashion-mnist", "--budget",
                    "latency<=0.6x", "--config", cfg.string(), "--episodes", "100000", "--seed", "2",
                    "--time-budget", "6s", "--out", (dir / "s").string()},
                   600);
  const double wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO(s.out << s.err);
  REQUIRE(s.exit_code == 0);
  // Without the budget the final choice alone would measure up to 136 policies on ~59,700 samples.
  CHECK(wall_s < 60);
  CHECK_THAT(s.err, Contains("search stopped (time budget)"));
  const nlohmann::json pj = read_json(dir / "s" / "policy.json");
  CHECK(pj["search"]["final_choice"] == "time budget");
  CHECK(pj["search"]["episodes"].get<int>() >= 1);
  CHECK(pj["search"]["episodes"].get<int>() < 100000);
  CHECK_THAT(haq::test::read_text((dir / "s" / "report.md").string()), Contains("cut short (time budget)"));
  // The cut-short policy is a valid, reproducible record.
  auto r = run_haq(check_args(dir / "s" / "policy.json", {"--json"}));
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["metrics"][0]["change"].get<double>() == 0.0);
}

TEST_CASE("haq search --weight-rounding adaround is recorded, and eval, check and export measure the same way", "[check]") {
  auto dir = scratch_dir("e2e-check-adaround");
  // The small attention net: rounding every layer at every bit width stays
  // cheap under the sanitizers (fmnist-mobilenet took over 600 s there).
  const std::string model = source_path("tests/data/model/tiny_attention.onnx");
  std::ofstream(dir / "cfg.json") << R"({"schema": "haq.search/1", "eval_samples": 200, "calib_samples": 64,
    "test_samples": 500, "batch": 100, "select_samples": 500, "refine_moves": 2, "weight_rounding": "adaround",
    "w_bits": [3, 4], "a_bits": [6, 8]})";
  auto s = run_haq({"search", model, "--hw", source_path("hardware-profiles/bismo-edge.json"), "--data",
                    "fashion-mnist", "--budget", "latency<=0.8x", "--config", (dir / "cfg.json").string(),
                    "--episodes", "4", "--seed", "2", "--out", (dir / "s").string()},
                   900);
  INFO(s.out << s.err);
  REQUIRE(s.exit_code == 0);
  // The one-off cost is printed.
  CHECK_THAT(s.err + s.out, Contains("adaptive rounding: "));
  const fs::path policy = dir / "s" / "policy.json";
  const auto pj = read_json(policy);
  CHECK(pj["calibration"]["weight_rounding"] == "adaround");
  CHECK(read_json(dir / "s" / "config.json")["weight_rounding"] == "adaround");
  const double recorded = pj["accuracy"]["chosen"]["test"].get<double>();
  auto eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = {"eval", model, "--data", "fashion-mnist", "--policy", policy.string(), "--json"};
    a.insert(a.end(), extra.begin(), extra.end());
    auto r = run_haq(a, 600);
    INFO(r.out << r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  };
  const auto same = eval({});
  CHECK(same["weight_rounding"] == "adaround");
  CHECK(same["quantized"]["top1"].get<double>() == recorded);
  CHECK(same["recorded"]["comparable"] == true);
  const auto other = eval({"--weight-rounding", "nearest"});
  CHECK(other["recorded"]["comparable"] == false);
  CHECK_THAT(other["recorded"]["differences"].dump(), Contains("weight rounding nearest instead of the recorded adaround"));
  auto c = run_haq({"check", policy.string(), "--model", model, "--hw", source_path("hardware-profiles/bismo-edge.json"),
                    "--data", "fashion-mnist", "--json"},
                   600);
  INFO(c.out << c.err);
  REQUIRE(c.exit_code == 0);
  CHECK(nlohmann::json::parse(c.out)["metrics"][0]["change"].get<double>() == 0.0);
  // export rounds as the policy records: other levels than nearest rounding's.
  auto e1 = run_haq({"export", model, "--policy", policy.string(), "--data", "fashion-mnist", "--out",
                     (dir / "a.onnx").string(), "--calib", "64"}, 600);
  auto e3 = run_haq({"export", model, "--policy", policy.string(), "--data", "fashion-mnist", "--out",
                     (dir / "c.onnx").string(), "--calib", "64", "--weight-rounding", "nearest"}, 600);
  INFO(e1.err << e3.err);
  REQUIRE(e1.exit_code == 0);
  REQUIRE(e3.exit_code == 0);
  CHECK(read_text(dir / "a.onnx") != read_text(dir / "c.onnx"));
  auto bad = run_haq({"export", model, "--policy", policy.string(), "--data", "fashion-mnist", "--out",
                      (dir / "d.onnx").string(), "--weight-rounding", "upwards"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Contains("expected nearest or adaround"));
  CHECK_FALSE(fs::exists(dir / "d.onnx"));
  // A record or config naming another rounding is exit 2 naming the place.
  auto edited = pj;
  edited["calibration"]["weight_rounding"] = "upwards";
  std::ofstream(dir / "edited.json") << edited.dump(2);
  auto be = run_haq({"eval", model, "--data", "fashion-mnist", "--policy", (dir / "edited.json").string()});
  CHECK(be.exit_code == 2);
  CHECK_THAT(be.err, Contains("edited.json: /calibration/weight_rounding: expected nearest or adaround, got 'upwards'"));
  std::ofstream(dir / "bad-cfg.json") << R"({"schema": "haq.search/1", "weight_rounding": 1})";
  auto bc = run_haq({"search", model, "--hw", source_path("hardware-profiles/bismo-edge.json"), "--data",
                     "fashion-mnist", "--budget", "latency<=0.8x", "--config", (dir / "bad-cfg.json").string(),
                     "--out", (dir / "bad-run").string()});
  CHECK(bc.exit_code == 2);
  CHECK_THAT(bc.err, Contains("bad-cfg.json"));
  CHECK_THAT(bc.err, Contains("/weight_rounding"));
  CHECK_FALSE(fs::exists(dir / "bad-run" / "policy.json"));

  // The rounding cache: the search left it beside policy.json; eval reads it
  // there by default and rounds nothing again, with the same figure.
  const fs::path cache = dir / "s" / "rounding-cache.bin";
  REQUIRE(fs::exists(cache));
  CHECK(same["rounding"]["cache"] == cache.string());
  CHECK(same["rounding"]["layer_bits"] == 0);
  CHECK(same["rounding"]["loaded"].get<int64_t>() > 0);
  const auto uncached = eval({"--rounding-cache", "none"});
  CHECK(uncached["rounding"]["layer_bits"].get<int64_t>() > 0);
  CHECK(uncached["quantized"]["top1"] == same["quantized"]["top1"]);
  // A second search given the cache rounds nothing and chooses the same policy.
  auto s2 = run_haq({"search", model, "--hw", source_path("hardware-profiles/bismo-edge.json"), "--data",
                     "fashion-mnist", "--budget", "latency<=0.8x", "--config", (dir / "cfg.json").string(),
                     "--episodes", "4", "--seed", "2", "--out", (dir / "s2").string(), "--rounding-cache",
                     cache.string()},
                    900);
  INFO(s2.out << s2.err);
  REQUIRE(s2.exit_code == 0);
  CHECK_THAT(s2.err + s2.out, Contains("from the rounding cache and 0 rounded in"));
  CHECK(read_json(dir / "s2" / "policy.json")["layers"] == pj["layers"]);
  CHECK_FALSE(fs::exists(dir / "s2" / "rounding-cache.bin"));
  // Bad caches: not a cache (exit 2 naming it, left as it was), a symlink
  // (refused before any work), an option that does not apply.
  fs::copy_file(model, dir / "not-a-cache.bin");
  const std::string before = read_text(dir / "not-a-cache.bin");
  auto nc = run_haq({"eval", model, "--data", "fashion-mnist", "--policy", policy.string(), "--rounding-cache",
                     (dir / "not-a-cache.bin").string()});
  CHECK(nc.exit_code == 2);
  CHECK_THAT(nc.err, Contains("not-a-cache.bin: byte 0: not a haq rounding cache"));
  CHECK(read_text(dir / "not-a-cache.bin") == before);
  fs::create_symlink(cache, dir / "link.bin");
  auto ln = run_haq({"search", model, "--hw", source_path("hardware-profiles/bismo-edge.json"), "--data",
                     "fashion-mnist", "--budget", "latency<=0.8x", "--config", (dir / "cfg.json").string(),
                     "--episodes", "4", "--out", (dir / "s3").string(), "--rounding-cache", (dir / "link.bin").string()});
  CHECK(ln.exit_code == 2);
  CHECK_THAT(ln.err, Contains("link.bin"));
  CHECK_FALSE(fs::exists(dir / "s3" / "policy.json"));
  // export calibrates as the policy records (64 samples, seed 2, as eval
  // --policy), takes the search's rounding from the cache, and writes the
  // same bytes as without it.
  auto ej = run_haq({"export", model, "--policy", policy.string(), "--data", "fashion-mnist", "--out",
                     (dir / "cached.onnx").string(), "--json"}, 600);
  auto en = run_haq({"export", model, "--policy", policy.string(), "--data", "fashion-mnist", "--out",
                     (dir / "uncached.onnx").string(), "--rounding-cache", "none"}, 600);
  INFO(ej.err << en.err);
  REQUIRE(ej.exit_code == 0);
  REQUIRE(en.exit_code == 0);
  const auto ejj = nlohmann::json::parse(ej.out);
  CHECK(ejj["calibration_samples"] == 64);
  CHECK(ejj["seed"] == 2);
  CHECK(ejj["weight_rounding"] == "adaround");
  CHECK(read_text(dir / "cached.onnx") == read_text(dir / "uncached.onnx"));
  CHECK(read_text(dir / "cached.onnx") == read_text(dir / "a.onnx"));  // --calib 64 as recorded: the same
  auto nr = run_haq({"eval", model, "--data", "fashion-mnist", "--bits", "w4a4", "--rounding-cache",
                     cache.string()});
  CHECK(nr.exit_code == 2);
  CHECK_THAT(nr.err, Contains("--rounding-cache: the measurement rounds weights to nearest"));
}
