// Sizes a small input implies (issue 17): a --batch whose activations would
// take gigabytes, a gzip IDX bomb, a sweep file whose product is millions of
// jobs. Each is exit 2 naming the option or the file, before the memory or
// the jobs are taken, and writes nothing.
#include <zlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::run_haq_limited;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;

namespace {

const std::string kMemoryLimit = haq::test::memory_limit_4gib();

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

/// A gzip IDX file of `n` images of h x w zero bytes: a bomb, a few hundred
/// bytes per megabyte it inflates to.
void write_gzip_idx(const fs::path& path, uint32_t n, uint32_t h, uint32_t w) {
  gzFile f = gzopen(path.c_str(), "wb9");
  REQUIRE(f != nullptr);
  const std::string head = std::string("\0\0\x08\x03", 4) + be32(n) + be32(h) + be32(w);
  REQUIRE(gzwrite(f, head.data(), static_cast<unsigned>(head.size())) == static_cast<int>(head.size()));
  const std::vector<char> zeros(size_t{1} << 20, 0);
  uint64_t left = uint64_t{n} * h * w;
  bool written = true;
  while (left > 0) {
    const unsigned chunk = static_cast<unsigned>(std::min<uint64_t>(left, zeros.size()));
    written &= gzwrite(f, zeros.data(), chunk) == static_cast<int>(chunk);
    left -= chunk;
  }
  REQUIRE(written);
  REQUIRE(gzclose(f) == Z_OK);
}

void write_idx_labels(const fs::path& path, uint32_t n) {
  std::ofstream out(path, std::ios::binary);
  out << std::string("\0\0\x08\x01", 4) << be32(n) << std::string(n, '\0');
}

}  // namespace

TEST_CASE("limits: a --batch whose largest activation exceeds 1 GiB is refused with the batch that fits",
          "[limits][issue17]") {
  // fmnist-resnet's largest activation is 16 x 28 x 28 floats (50,176 bytes)
  // a sample: 10,000 samples at once would take 479 MiB, a search's 60,000
  // train samples 2.8 GiB.
  const fs::path out = scratch_dir("e2e-limits-batch");
  fs::remove_all(out);
  auto r = run_haq({"search", source_path("models/fmnist-resnet.onnx"), "--hw",
                    source_path("hardware-profiles/bismo-edge.json"), "--data", "fashion-mnist", "--budget",
                    "latency<=0.5x", "--batch", "100000", "--eval-samples", "50000", "--episodes", "1", "--out",
                    out.string()},
                   300);
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: --batch: 100000 runs 50000 samples at once, which need 2.3 GiB"));
  CHECK_THAT(r.err, Contains("the largest batch that fits is 21399"));
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(out / "policy.json"));
  // Within the bound (eval's 10,000 test samples at once take 479 MiB): runs.
  r = run_haq({"eval", source_path("models/fmnist-resnet.onnx"), "--data", "fashion-mnist", "--batch", "65536",
               "--samples", "64", "--calib", "64"},
              300);
  CHECK(r.exit_code == 0);
}

TEST_CASE("limits: a gzip IDX bomb beyond 1 GiB is refused from its header, under a memory limit",
          "[limits][issue17]") {
  const fs::path dir = scratch_dir("e2e-limits-bomb");
  fs::remove_all(dir);
  fs::create_directories(dir);
  // 1100 x 1024 x 1024 zero bytes (1.07 GiB): about 1.1 MB of gzip, within
  // deflate's ratio, so only the header's bound stops it. Before, it was read
  // whole (and then four times that as floats) even for --calib 8.
  write_gzip_idx(dir / "t10k-images-idx3-ubyte.gz", 1100, 1024, 1024);
  write_idx_labels(dir / "t10k-labels-idx1-ubyte", 1100);
  const auto before = fs::file_size(dir / "t10k-images-idx3-ubyte.gz");
  CHECK(before < 2000000);
  auto r = run_haq_limited(kMemoryLimit,
                           {"eval", source_path("models/fmnist-mlp.onnx"), "--data", dir.string(), "--samples",
                            "8", "--calib", "8"},
                           60);
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: " + (dir / "t10k-images-idx3-ubyte.gz").string() +
                             ": header: header says 1100 x 1024 x 1024 (1153433600 bytes of data), too large: more than the "
                             "1 GiB an IDX file may hold"));
  CHECK(r.out.empty());
}

TEST_CASE("limits: a sweep file of more than 100000 jobs is refused naming the file", "[limits][issue17]") {
  const fs::path dir = scratch_dir("e2e-limits-sweep");
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<int> seeds(50001);
  for (size_t i = 0; i < seeds.size(); ++i) seeds[i] = static_cast<int>(i);
  const nlohmann::json j = {{"schema", "haq.sweep/1"},
                            {"models", {source_path("models/fmnist-mlp.onnx")}},
                            {"profiles", {source_path("hardware-profiles/bismo-edge.json")}},
                            {"budgets", {"latency<=0.5x", "size<=0.5x"}},
                            {"seeds", seeds}};
  const fs::path file = dir / "huge-sweep.json";
  std::ofstream(file) << j.dump();
  auto r = run_haq({"sweep", file.string(), "--out", (dir / "out").string()}, 120);
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("haq: error: " + file.string() +
                             ": /: the sweep expands to 100002 jobs (1 models x 1 profiles x 2 budgets x 1 algos x "
                             "50001 seeds); at most 100000 are allowed"));
  CHECK(r.out.empty());
  CHECK_FALSE(fs::exists(dir / "out"));
}
