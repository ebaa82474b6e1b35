// Replays the fuzzers' inputs through the real parsers in the normal build:
//  - tests/fuzz/regressions/<target>/*: inputs that once crashed, hung or
//    leaked; each must now be rejected with a haq::Error naming the file;
//  - tests/fuzz/corpus/<target>/*: the hand-made seeds, valid inputs that
//    must be accepted (so a harness that rejects everything fails here).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../unit/search/fake_problem.h"
#include "fuzz_harness.h"
#include "haq/quant/rounding_cache.h"
#include "haq/search/agent.h"
#include "haq/search/search.h"
#include "test_paths.h"

namespace fs = std::filesystem;
using haq::fuzz::Outcome;

namespace {

using Target = Outcome (*)(const uint8_t*, size_t);

struct Named {
  const char* name;
  Target run;
};
const Named kTargets[] = {{"onnx", haq::fuzz::run_onnx},
                          {"profile", haq::fuzz::run_profile},
                          {"policy", haq::fuzz::run_policy},
                          {"idx", haq::fuzz::run_idx},
                          {"npy", haq::fuzz::run_npy},
                          {"checkpoint", haq::fuzz::run_checkpoint},
                          {"config", haq::fuzz::run_config},
                          {"sweep", haq::fuzz::run_sweep},
                          {"rounding_cache", haq::fuzz::run_rounding_cache}};

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "README.md") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

Outcome replay(Target run, const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return run(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

TEST_CASE("fuzz regressions: every saved crash input is rejected with a haq::Error") {
  int cases = 0;
  for (const Named& t : kTargets) {
    for (const fs::path& f : files_in(haq::test::source_path("tests/fuzz/regressions/") + t.name)) {
      INFO(t.name << ": " << f.filename().string());
      const Outcome o = replay(t.run, f);
      CHECK_FALSE(o.accepted);
      CHECK_FALSE(o.error.empty());
      ++cases;
    }
  }
  // The folder is checked in with the cases: an empty walk means a wrong path.
  CHECK(cases > 0);
}

TEST_CASE("fuzz seeds: every hand-made seed is a valid input") {
  for (const Named& t : kTargets) {
    const auto seeds = files_in(haq::test::source_path("tests/fuzz/corpus/") + t.name);
    INFO(t.name);
    CHECK(!seeds.empty());
    for (const fs::path& f : seeds) {
      INFO(f.filename().string());
      const Outcome o = replay(t.run, f);
      CHECK(o.error == "");
      CHECK(o.accepted);
    }
  }
}

// Writes the checkpoint seeds (tests/fuzz/corpus/checkpoint/): a short
// search per agent with the options fuzz_checkpoint uses, its state.bin
// after the last episode prefixed with the agent's index. Hidden; run as
//   HAQ_FUZZ_SEED_OUT=tests/fuzz/corpus/checkpoint build/tests/fuzz/test_fuzz_regressions '[.write-seeds]'
TEST_CASE("fuzz seeds: write the checkpoint seeds", "[.write-seeds]") {
  const char* to = std::getenv("HAQ_FUZZ_SEED_OUT");
  REQUIRE(to != nullptr);
  const auto& names = haq::search::agent_names();
  for (size_t k = 0; k < names.size(); ++k) {
    haq::search::SearchOptions o;
    o.algo = names[k];
    o.episodes = 4;
    o.seed = 3;
    o.ddpg = haq::fuzz::fuzz_ddpg_options();
    haq::search::SearchHooks hooks;
    hooks.out_dir = (haq::fuzz::work_dir() / ("seed-" + names[k])).string();
    hooks.identity = "{\"fuzz\":\"" + names[k] + "\"}";
    (void)haq::search::run_search(o, haq::search::fake::fake_problem(), hooks);
    std::ifstream in(fs::path(hooks.out_dir) / "checkpoint" / "state.bin", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    REQUIRE(!bytes.empty());
    std::ofstream out(fs::path(to) / names[k], std::ios::binary | std::ios::trunc);
    out.put(static_cast<char>(k));
    out << bytes;
  }
}

// Writes the rounding cache seeds (tests/fuzz/corpus/rounding_cache/): a
// cache of two entries, as it is (mode byte 0) and to be resealed (1), and an
// empty one. Hidden; run as
//   HAQ_FUZZ_SEED_OUT=tests/fuzz/corpus/rounding_cache build/tests/fuzz/test_fuzz_regressions '[.write-cache-seeds]'
TEST_CASE("fuzz seeds: write the rounding cache seeds", "[.write-cache-seeds]") {
  const char* to = std::getenv("HAQ_FUZZ_SEED_OUT");
  REQUIRE(to != nullptr);
  std::vector<haq::quant::RoundingCacheEntry> entries(2);
  for (size_t k = 0; k < 2; ++k) {
    auto& e = entries[k];
    e.key = 0x5eed0000u + k;
    e.layer = static_cast<uint32_t>(k);
    e.name = k ? "fc" : "conv1";
    e.w_bits = k ? 4 : 2;
    e.a_bits = k ? 0 : 3;
    e.weights.bits = e.w_bits;
    e.weights.channels = 2 + static_cast<int64_t>(k);
    e.weights.per_channel = 3;
    for (int64_t i = 0; i < e.weights.channels * 3; ++i) e.weights.values.push_back(static_cast<int8_t>(i % 3 - 1));
    e.weights.scales.assign(static_cast<size_t>(e.weights.channels), 0.125f);
    e.stats = {6, 2, 0, 1.5, 0.75};
  }
  const std::pair<const char*, std::string> seeds[] = {{"two-entries", haq::quant::write_rounding_cache(entries)},
                                                       {"empty", haq::quant::write_rounding_cache({})}};
  for (const auto& [name, bytes] : seeds)
    for (char mode : {'\0', '\1'}) {
      std::ofstream out(fs::path(to) / (std::string(name) + (mode ? "-1" : "-0")), std::ios::binary | std::ios::trunc);
      out.put(mode);
      out << bytes;
    }
}
