// haq simulate on the bundled MLP with the shipped profiles.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"

using haq::test::run_haq;
using haq::test::source_path;

namespace {
const std::string kModel = source_path("models/fmnist-mlp.onnx");
std::string profile(const std::string& name) { return source_path("hardware-profiles/" + name + ".json"); }
}  // namespace

TEST_CASE("haq simulate prints the per-layer table, totals and the ratio to all-8-bit") {
  auto r = run_haq({"simulate", kModel, "--hw", profile("bismo-edge"), "--bits", "w4a4"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  for (const char* s : {"/fc1/Gemm", "/fc2/Gemm", "/fc3/Gemm", "4/4", "compute_cyc", "stall_cyc", "bound",
                        "memory", "total", "vs all-w8a8 on bismo-edge: latency"})
    CHECK(r.out.find(s) != std::string::npos);
}

TEST_CASE("haq simulate --json: per-layer costs, mappings and ratios") {
  auto r8 = run_haq({"simulate", kModel, "--hw", profile("bismo-edge"), "--json"});
  auto r4 = run_haq({"simulate", kModel, "--hw", profile("bismo-edge"), "--bits", "w4a8", "--json"});
  REQUIRE(r8.exit_code == 0);
  REQUIRE(r4.exit_code == 0);
  auto j8 = nlohmann::json::parse(r8.out), j4 = nlohmann::json::parse(r4.out);
  CHECK(j8["policy"] == "w8a8");
  CHECK(j8["ratio_to_baseline"]["latency"] == 1.0);
  REQUIRE(j4["report"]["layers"].size() == 3);
  const auto& fc1 = j4["report"]["layers"][0];
  CHECK(fc1["layer"] == "/fc1/Gemm");
  CHECK(fc1["w_bits"] == 4);
  CHECK(fc1["mapping"]["gemm_k"] == 784);
  CHECK(fc1["mapping"]["gemm_n"] == 256);
  // fc1 at batch 1 is bound by streaming its weights, so halving w halves its latency.
  CHECK(fc1["bound"] == "memory");
  double ratio = j4["ratio_to_baseline"]["latency"];
  CHECK(ratio > 0.45);
  CHECK(ratio < 0.6);
  CHECK(j4["report"]["size_bits"] == (784 * 256 + 256 * 128 + 128 * 10) * 4);
  // --batch overrides the profile's batch.
  auto rb = run_haq({"simulate", kModel, "--hw", profile("bismo-edge"), "--batch", "8", "--json"});
  REQUIRE(rb.exit_code == 0);
  CHECK(nlohmann::json::parse(rb.out)["batch"] == 8);
}

TEST_CASE("haq simulate --table-out writes a CSV a table profile reads back") {
  auto dir = haq::test::scratch_dir("e2e_simulate_table");
  std::string csv = (dir / "costs.csv").string();
  auto r = run_haq({"simulate", kModel, "--hw", profile("bitfusion"), "--bits", "w4a4", "--table-out", csv, "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.find("3 layers x 49 bit pairs") != std::string::npos);
  nlohmann::json p = {{"schema", "haq.hardware/1"}, {"name", "measured"}, {"description", "from bitfusion"},
                      {"sources", {"haq simulate --table-out"}}, {"architecture", "table"}, {"batch", 1},
                      {"clock_mhz", 500}, {"precision", {{"w_bits", {2, 8}}, {"a_bits", {2, 8}}}},
                      {"table", {{"csv", "costs.csv"}}}};
  std::ofstream(dir / "table.json") << p.dump(2);
  auto t = run_haq({"simulate", kModel, "--hw", (dir / "table.json").string(), "--bits", "w4a4", "--json"});
  INFO(t.err);
  REQUIRE(t.exit_code == 0);
  auto a = nlohmann::json::parse(r.out)["report"], b = nlohmann::json::parse(t.out)["report"];
  CHECK(b["latency_s"].get<double>() == Approx(a["latency_s"].get<double>()).epsilon(1e-6));
  CHECK(b["energy_pj"].get<double>() == Approx(a["energy_pj"].get<double>()).epsilon(1e-6));
  CHECK(b["layers"][0]["bound"] == "measured");
}

TEST_CASE("haq simulate: bad profile, bits or options exit 2 naming the file and place") {
  auto dir = haq::test::scratch_dir("e2e_simulate_bad");
  std::ifstream in(profile("bismo-edge"));
  nlohmann::json p = nlohmann::json::parse(in);
  p["memory"]["dram_bits_per_cycle"] = -4;
  std::string bad = (dir / "bad.json").string();
  std::ofstream(bad) << p.dump(2);
  auto r = run_haq({"simulate", kModel, "--hw", bad});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "haq: error: " + bad + ": /memory/dram_bits_per_cycle: expected an integer in 1..16777216, got -4\n");
  CHECK(r.out.empty());

  p = nlohmann::json::parse(std::ifstream(profile("bismo-edge")));
  p["bit_serial"]["dkk"] = 256;
  std::ofstream(bad) << p.dump(2);
  r = run_haq({"simulate", kModel, "--hw", bad});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(bad + ": /bit_serial/dkk: unknown key \"dkk\" (did you mean \"dk\"?)") != std::string::npos);

  std::ofstream(bad) << "{ \"schema\": ";
  r = run_haq({"simulate", kModel, "--hw", bad});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find(bad + ": line 1 column") != std::string::npos);

  // bitfusion runs 2..8 bits: w1a1 is bad input, not a crash.
  r = run_haq({"simulate", kModel, "--hw", profile("bitfusion"), "--bits", "w1a1"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("outside what profile 'bitfusion' supports") != std::string::npos);

  CHECK(run_haq({"simulate", kModel, "--hw", (dir / "missing.json").string()}).exit_code == 2);
  CHECK(run_haq({"simulate", kModel}).exit_code == 2);  // --hw is required
  CHECK(run_haq({"simulate", kModel, "--hw", profile("bismo-edge"), "--bits", "w9a9"}).exit_code == 2);
  CHECK(run_haq({"simulate", kModel, "--hw", profile("bismo-edge"), "--bits", "w4a4", "--policy", "p.json"})
            .exit_code == 2);
}

// Issue 17: a clock whose cycle time is not finite, or a profile that cannot
// run a layer, is exit 2 naming the place, never a latency of nan or 0 (with
// which search would "meet" any budget).
TEST_CASE("haq simulate and search: a tiny clock or a layer that fits no buffer is exit 2 naming it") {
  auto dir = haq::test::scratch_dir("e2e_simulate_nofit");
  nlohmann::json p = nlohmann::json::parse(std::ifstream(profile("bismo-edge")));
  p["clock_mhz"] = 5e-324;
  std::string bad = (dir / "slow.json").string();
  std::ofstream(bad) << p.dump(2);
  auto r = run_haq({"simulate", kModel, "--hw", bad});
  CHECK(r.exit_code == 2);
  CHECK(r.err == "haq: error: " + bad +
                     ": /clock_mhz: expected a clock in MHz between 0.001 (1 kHz) and 1e6 (1 THz), got 5e-324\n");
  CHECK(r.out.empty());

  p = nlohmann::json::parse(std::ifstream(profile("bismo-edge")));
  p["memory"]["weight_buffer_bits"] = 1000;  // two 256x8 weight chunks of 1 bit need 4096
  bad = (dir / "small.json").string();
  std::ofstream(bad) << p.dump(2);
  r = run_haq({"simulate", kModel, "--hw", bad});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::StartsWith("haq: error: " + bad + ": layer '"));
  CHECK_THAT(r.err, Catch::Contains("does not fit profile 'bismo-edge' at w1a1: chunk 8x256x8 (M x K x N, padded) "
                                    "needs 4096 weight (RHS) buffer bits (two chunks), the profile has 1000"));
  CHECK(r.out.empty());
  const auto out = dir / "run";
  r = run_haq({"search", kModel, "--hw", bad, "--data", "fashion-mnist", "--budget", "latency<=0.5x", "--episodes",
               "2", "--out", out.string()});
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains("does not fit profile 'bismo-edge' at w1a1"));
  CHECK_FALSE(std::filesystem::exists(out / "policy.json"));
}
