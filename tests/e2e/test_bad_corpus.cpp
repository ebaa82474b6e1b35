// The hostile-input corpus (tests/data/bad/, made by scripts/make_bad_corpus.py):
// each MANIFEST.tsv row is fed to the cheapest haq command that reads it, under
// a 4 GiB memory limit (kMemoryLimit) so that an absurd size in a header cannot be
// allocated. Every case must exit 2 exactly (not a signal, not a timeout),
// name the file and the place in "haq: error: FILE: WHERE: WHAT", print no
// report, and leave no file behind, neither in its output folder nor beside
// its inputs.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq_limited;
using haq::test::source_path;
namespace fs = std::filesystem;

namespace {

// 4 GiB: far more than any case needs, far less than the sizes the hostile
// headers claim (run_haq.h).
const std::string kMemoryLimit = haq::test::memory_limit_4gib();

struct BadCase {
  std::string file, command, expected;
  std::string names;  ///< the file the message names: `file` unless the manifest says otherwise
};

std::vector<BadCase> read_manifest() {
  std::ifstream in(source_path("tests/data/bad/MANIFEST.tsv"));
  std::vector<BadCase> cases;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> f;
    std::istringstream s(line);
    for (std::string x; std::getline(s, x, '\t');) f.push_back(x);
    REQUIRE(f.size() >= 3);
    REQUIRE(f.size() <= 4);
    REQUIRE_FALSE(f[2].empty());  // every case pins its place and reason
    cases.push_back({f[0], f[1], f[2], f.size() == 4 ? f[3] : f[0]});
  }
  return cases;
}

/// Every path under `dir` (recursively), relative to it.
std::set<std::string> tree(const fs::path& dir) {
  std::set<std::string> s;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    s.insert(fs::relative(e.path(), dir).string());
  return s;
}

/// The haq arguments that make `c` read its file; outputs go to `out`.
std::vector<std::string> args_for(const BadCase& c, const fs::path& out) {
  const std::string file = source_path("tests/data/bad/" + c.file);
  // A dataset case is its folder (or a file in it).
  const std::string dir = fs::is_directory(file) ? file : fs::path(file).parent_path().string();
  const std::string model = source_path("models/fmnist-mlp.onnx");
  const std::string table = (out / "table.csv").string();
  if (c.command == "inspect") return {"inspect", file};
  if (c.command == "profile") return {"simulate", model, "--hw", file, "--table-out", table};
  if (c.command == "policy")
    return {"simulate", model, "--hw", source_path("hardware-profiles/bismo-edge.json"),
            "--policy", file, "--table-out", table};
  if (c.command == "check")
    return {"check", file, "--model", model, "--hw", source_path("hardware-profiles/bismo-edge.json"),
            "--data", "fashion-mnist"};
  if (c.command == "idx") return {"eval", model, "--data", dir, "--samples", "8", "--calib", "8"};
  if (c.command == "npy")
    return {"eval", model, "--data", dir + "/x.npy," + dir + "/y.npy", "--samples", "8",
            "--calib", "8"};
  FAIL("MANIFEST.tsv: unknown command '" << c.command << "' for " << c.file);
  return {};
}

}  // namespace

TEST_CASE("bad_corpus: every hostile input exits 2 naming the file and the place, writing nothing",
          "[bad_corpus]") {
  const auto cases = read_manifest();
  // The corpus is what the docs count: all five kinds, none dropped silently.
  std::map<std::string, int> kinds;
  for (const auto& c : cases) ++kinds[c.command];
  CHECK(cases.size() >= 90);
  for (const char* k : {"inspect", "profile", "policy", "idx", "npy"}) CHECK(kinds[k] >= 10);

  const fs::path corpus = source_path("tests/data/bad");
  const auto corpus_before = tree(corpus);
  const fs::path out = haq::test::scratch_dir("e2e-bad-corpus") / "out";
  for (const auto& c : cases) {
    fs::create_directories(out);
    auto r = run_haq_limited(kMemoryLimit, args_for(c, out), 30);
    const std::string named = source_path("tests/data/bad/" + c.names);
    INFO(c.file << " (" << c.command << ")\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains("haq: error: "));
    CHECK_THAT(r.err, Contains("haq: error: " + named + ": "));
    CHECK_THAT(r.err, Contains(c.expected));
    CHECK(r.out.empty());
    CHECK(tree(out).empty());
    fs::remove_all(out);
  }
  CHECK(tree(corpus) == corpus_before);
}
