// Hostile input: seeded random corruptions of small valid IDX, .npy, PNG and
// JPEG files must load or fail with haq::Error — never crash, never throw
// anything else. (Run under the sanitizer build in CI.)
#include <catch2/catch.hpp>
#include <random>

#include "haq/data/dataset.h"
#include "test_paths.h"
#include "writers.h"

using haq::data::DataSpec;
using haq::data::load_dataset;
using haq::data::Split;
namespace fs = std::filesystem;

namespace {
/// Loads `spec` with `file` replaced by mutations of `original`; counts the
/// outcomes. Any exception other than haq::Error fails the test.
void mutate_and_load(const fs::path& file, const std::string& original, const DataSpec& spec,
                     uint64_t seed, int rounds) {
  std::mt19937_64 rng(seed);
  int loaded = 0, refused = 0;
  for (int round = 0; round < rounds; ++round) {
    std::string bytes = original;
    // One rng() call per statement: the order of draws must not depend on
    // the compiler's evaluation order.
    const uint64_t kind = rng() % 4;
    if (kind == 0) {  // overwrite a few bytes, biased to the header
      const int n = 1 + int(rng() % 4);
      for (int k = 0; k < n; ++k) {
        const bool header = rng() % 2;
        const size_t at = rng() % (header ? std::min<size_t>(bytes.size(), 64) : bytes.size());
        bytes[at] = char(rng());
      }
    } else if (kind == 1) {  // truncate
      bytes.resize(rng() % bytes.size());
    } else if (kind == 2) {  // append junk
      const size_t n = 1 + rng() % 50;
      bytes += std::string(n, char(rng()));
    } else {  // a header byte set to 0xFF (huge dims)
      bytes[rng() % std::min<size_t>(bytes.size(), 24)] = char(0xFF);
    }
    haq::test::write_bytes(file, bytes);
    try {
      load_dataset(spec, Split::test);
      loaded++;
    } catch (const haq::Error& e) {
      CHECK(std::string(e.what()).size() > 0);
      refused++;
    }
  }
  INFO(file << ": loaded " << loaded << ", refused " << refused);
  CHECK(loaded + refused == rounds);
  CHECK(refused > 0);  // most mutations are detected
}
}  // namespace

TEST_CASE("mutated IDX files never crash", "[data][errors][hostile]") {
  fs::path dir = haq::test::scratch_dir("data_hostile_idx");
  std::vector<uint8_t> px(6 * 5 * 4), lab = {0, 1, 2, 3, 4, 5};
  for (size_t i = 0; i < px.size(); ++i) px[i] = uint8_t(i);
  haq::test::write_idx(dir / "t10k-labels-idx1-ubyte", {6}, lab, false);
  DataSpec spec;
  spec.data = dir.string();
  mutate_and_load(dir / "t10k-images-idx3-ubyte", haq::test::idx_bytes({6, 5, 4}, px), spec, 1,
                  150);
  fs::remove(dir / "t10k-images-idx3-ubyte");
  haq::test::write_idx(dir / "t10k-images-idx3-ubyte.gz", {6, 5, 4}, px, true);
  mutate_and_load(dir / "t10k-images-idx3-ubyte.gz",
                  haq::test::read_bytes(dir / "t10k-images-idx3-ubyte.gz"), spec, 2, 150);
}

TEST_CASE("mutated npy files never crash", "[data][errors][hostile]") {
  fs::path dir = haq::test::scratch_dir("data_hostile_npy");
  std::vector<float> x(4 * 3 * 2 * 2, 0.5f);
  std::vector<int64_t> y = {0, 1, 2, 3};
  haq::test::write_npy(dir / "y.npy", "<i8", {4}, y.data(), 32);
  DataSpec spec;
  spec.data = (dir / "x.npy").string() + "," + (dir / "y.npy").string();
  mutate_and_load(dir / "x.npy", haq::test::npy_bytes("<f4", {4, 3, 2, 2}, x.data(), x.size() * 4),
                  spec, 3, 150);
  haq::test::write_npy(dir / "x.npy", "<f4", {4, 3, 2, 2}, x.data(), x.size() * 4);
  mutate_and_load(dir / "y.npy", haq::test::npy_bytes("<i8", {4}, y.data(), 32), spec, 4, 150);
}

TEST_CASE("mutated PNG and JPEG files never crash", "[data][errors][hostile]") {
  fs::path dir = haq::test::scratch_dir("data_hostile_images");
  fs::create_directories(dir / "c");
  std::vector<uint8_t> rgb(16 * 16 * 3);
  for (size_t i = 0; i < rgb.size(); ++i) rgb[i] = uint8_t(i * 7);
  haq::test::write_png_rgb(dir / "c" / "a.png", 16, 16, rgb);
  haq::test::write_jpeg_rgb(dir / "c" / "b.jpg", 16, 16, rgb, 90);
  const std::string png = haq::test::read_bytes(dir / "c" / "a.png");
  const std::string jpg = haq::test::read_bytes(dir / "c" / "b.jpg");
  DataSpec spec;
  spec.data = dir.string();
  spec.preprocess = haq::data::parse_preprocess("resize=8,crop=8");
  mutate_and_load(dir / "c" / "a.png", png, spec, 5, 150);
  haq::test::write_bytes(dir / "c" / "a.png", png);
  mutate_and_load(dir / "c" / "b.jpg", jpg, spec, 6, 150);
}
