// Replays the fuzzers' inputs through the real parsers in the normal build:
//  - tests/fuzz/regressions/<target>/*: inputs that once crashed, hung or
//    leaked; each must now be rejected with a haq::Error naming the file;
//  - tests/fuzz/corpus/<target>/*: the hand-made seeds, valid inputs that
//    must be accepted (so a harness that rejects everything fails here).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fuzz_harness.h"
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
                          {"npy", haq::fuzz::run_npy}};

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
