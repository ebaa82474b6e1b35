// IDX loading: the real Fashion-MNIST from Debian's dataset-fashion-mnist,
// gz vs plain, the mnist lookup, and every malformed-file error.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>

#include "haq/data/dataset.h"
#include "test_paths.h"
#include "writers.h"

using Catch::Matchers::Contains;
using haq::ErrorKind;
using haq::data::Dataset;
using haq::data::DataSpec;
using haq::data::load_dataset;
using haq::data::Split;
using haq::test::error_of;
namespace fs = std::filesystem;

namespace {
const fs::path kFashion = "/usr/share/datasets/fashion-mnist";

DataSpec spec_of(const std::string& data) {
  DataSpec s;
  s.data = data;
  return s;
}

/// A small IDX data set: n images of h x w with pixel (i, k) = (i * 7 + k) % 256
/// and label i % 10.
void write_small_idx(const fs::path& dir, const char* prefix, uint32_t n, uint32_t h, uint32_t w,
                     bool gz) {
  std::vector<uint8_t> px(size_t{n} * h * w), lab(n);
  for (size_t i = 0; i < n; ++i) {
    lab[i] = static_cast<uint8_t>(i % 10);
    for (size_t k = 0; k < size_t{h} * w; ++k)
      px[i * h * w + k] = static_cast<uint8_t>((i * 7 + k) % 256);
  }
  const std::string ext = gz ? ".gz" : "";
  haq::test::write_idx(dir / (std::string(prefix) + "-images-idx3-ubyte" + ext), {n, h, w}, px, gz);
  haq::test::write_idx(dir / (std::string(prefix) + "-labels-idx1-ubyte" + ext), {n}, lab, gz);
}
}  // namespace

TEST_CASE("fashion-mnist loads from Debian's dataset-fashion-mnist", "[data][idx]") {
  REQUIRE(fs::exists(kFashion / "t10k-images-idx3-ubyte.gz"));  // scripts/setup.sh installs it
  Dataset test = load_dataset(spec_of("fashion-mnist"), Split::test);
  CHECK(test.size() == 10000);
  CHECK(test.channels == 1);
  CHECK(test.height == 28);
  CHECK(test.width == 28);
  CHECK(test.num_classes == 10);
  REQUIRE(test.labels.size() == 10000);
  // The first test labels of Fashion-MNIST: ankle boot, pullover, trouser, trouser, shirt.
  CHECK(std::vector<int32_t>(test.labels.begin(), test.labels.begin() + 5) ==
        std::vector<int32_t>{9, 2, 1, 1, 6});
  std::vector<int> per_class(10);
  for (int32_t l : test.labels) per_class.at(l)++;
  CHECK(per_class == std::vector<int>(10, 1000));  // balanced: 1000 per class
  for (float v : test.images) {
    REQUIRE(v >= 0.f);
    REQUIRE(v <= 1.f);
    REQUIRE(std::abs(v * 255.f - std::round(v * 255.f)) < 1e-3f);
  }
  CHECK_THAT(test.source, Contains("fashion-mnist"));

  Dataset train = load_dataset(spec_of("fashion-mnist"), Split::train);
  CHECK(train.size() == 60000);
  CHECK(train.labels.size() == 60000);
  CHECK(train.labels[0] == 9);  // the first training image is an ankle boot
  // The published normalisation constants of Fashion-MNIST (train split).
  double sum = 0, sq = 0;
  for (float v : train.images) sum += v, sq += double(v) * v;
  const double n = double(train.images.size());
  const double mean = sum / n, sd = std::sqrt(sq / n - mean * mean);
  CHECK(mean == Approx(0.2860).margin(1e-3));
  CHECK(sd == Approx(0.3530).margin(1e-3));
  CHECK_THAT(haq::data::describe(test), Contains("10000 samples, 1x28x28, 10 classes"));
}

TEST_CASE("gzipped and plain IDX files give identical data", "[data][idx]") {
  fs::path dir = haq::test::scratch_dir("data_idx_plain");
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"})
    haq::test::write_bytes(dir / name,
                           haq::test::read_bytes(kFashion / (std::string(name) + ".gz"), true));
  Dataset gz = load_dataset(spec_of("fashion-mnist"), Split::test);
  Dataset plain = load_dataset(spec_of(dir.string()), Split::test);
  CHECK(plain.size() == 10000);
  CHECK(plain.images == gz.images);
  CHECK(plain.labels == gz.labels);
  // The folder has no train files: that split is a clear error naming what is missing.
  std::string msg =
      error_of([&] { load_dataset(spec_of(dir.string()), Split::train); }, ErrorKind::io);
  CHECK_THAT(msg, Contains(dir.string()));
  CHECK_THAT(msg, Contains("train-images-idx3-ubyte"));
}

TEST_CASE("an IDX folder: names, scale, mean/std, num_classes", "[data][idx]") {
  fs::path dir = haq::test::scratch_dir("data_idx_small");
  write_small_idx(dir, "train", 12, 3, 4, true);
  write_small_idx(dir, "test", 5, 3, 4, false);  // "test-" prefix, plain
  DataSpec spec = spec_of(dir.string());
  Dataset d = load_dataset(spec, Split::test);
  REQUIRE(d.size() == 5);
  CHECK(d.height == 3);
  CHECK(d.width == 4);
  CHECK(d.num_classes == 5);  // 1 + max label of the split (labels 0..4)
  CHECK(d.images[2 * 12 + 5] == Approx((2 * 7 + 5) / 255.f));
  CHECK(d.labels == std::vector<int32_t>{0, 1, 2, 3, 4});
  CHECK(load_dataset(spec, Split::train).num_classes == 10);

  spec.preprocess.scale = 1.f;
  spec.preprocess.mean = {2.f};
  spec.preprocess.std = {4.f};
  d = load_dataset(spec, Split::test);
  CHECK(d.images[2 * 12 + 5] == Approx((2 * 7 + 5 - 2.f) / 4.f));

  spec = spec_of(dir.string());
  spec.num_classes = 20;
  CHECK(load_dataset(spec, Split::test).num_classes == 20);
  spec.num_classes = 8;  // train labels go to 9
  std::string msg = error_of([&] { load_dataset(spec, Split::train); }, ErrorKind::data);
  CHECK_THAT(msg, Contains("train-labels-idx1-ubyte.gz: sample 8: label 8 out of range 0..7"));

  spec = spec_of(dir.string());
  spec.preprocess.resize = 32;
  msg = error_of([&] { load_dataset(spec, Split::test); }, ErrorKind::usage);
  CHECK_THAT(msg, Contains("image folders only"));
}

TEST_CASE("mnist is looked up in $HAQ_MNIST_DIR", "[data][idx]") {
  fs::path dir = haq::test::scratch_dir("data_mnist_env");
  write_small_idx(dir, "t10k", 4, 2, 2, true);
  write_small_idx(dir, "train", 4, 2, 2, true);
  ::setenv("HAQ_MNIST_DIR", dir.c_str(), 1);
  Dataset d = load_dataset(spec_of("mnist"), Split::test);
  CHECK(d.size() == 4);
  CHECK_THAT(d.source, Contains("mnist"));
  fs::path empty = haq::test::scratch_dir("data_mnist_empty");
  ::setenv("HAQ_MNIST_DIR", empty.c_str(), 1);
  std::string msg = error_of([&] { load_dataset(spec_of("mnist"), Split::test); }, ErrorKind::io);
  CHECK_THAT(msg, Contains(empty.string()));
  CHECK_THAT(msg, Contains("HAQ_MNIST_DIR"));
  CHECK_THAT(msg, Contains("t10k-images-idx3-ubyte"));
  ::unsetenv("HAQ_MNIST_DIR");
}

TEST_CASE("malformed IDX files are errors naming the file and the place", "[data][idx][errors]") {
  fs::path dir = haq::test::scratch_dir("data_idx_bad");
  std::vector<uint8_t> px(4 * 2 * 2, 7), lab = {0, 1, 2, 3};
  const fs::path images = dir / "t10k-images-idx3-ubyte", labels = dir / "t10k-labels-idx1-ubyte";
  auto reset = [&] {
    fs::remove(images);
    fs::remove(labels);
    fs::remove(fs::path(images.string() + ".gz"));
    haq::test::write_idx(images, {4, 2, 2}, px, false);
    haq::test::write_idx(labels, {4}, lab, false);
  };
  auto load = [&] { load_dataset(spec_of(dir.string()), Split::test); };
  reset();
  REQUIRE(load_dataset(spec_of(dir.string()), Split::test).size() == 4);

  SECTION("truncated plain file") {
    std::string bytes = haq::test::idx_bytes({4, 2, 2}, px);
    haq::test::write_bytes(images, bytes.substr(0, bytes.size() - 6));  // image 2 is cut short
    std::string msg = error_of(load, ErrorKind::data);
    CHECK_THAT(msg, Contains(images.string() + ": image 2: truncated"));
    CHECK_THAT(msg, Contains("4 x 2 x 2"));
  }
  SECTION("truncated gzip file") {
    fs::remove(images);
    std::vector<uint8_t> short_px(px.begin(), px.begin() + 9);  // 2 whole images and a bit
    haq::test::write_idx(fs::path(images.string() + ".gz"), {4, 2, 2}, short_px, true);
    std::string msg = error_of(load, ErrorKind::data);
    CHECK_THAT(msg, Contains(images.string() + ".gz: image 2: truncated"));
  }
  SECTION("corrupt gzip stream") {
    fs::remove(images);
    std::string gz;
    haq::test::write_idx(fs::path(images.string() + ".gz"), {4, 2, 2}, px, true);
    gz = haq::test::read_bytes(fs::path(images.string() + ".gz"));
    for (size_t i = 12; i < gz.size() - 8; ++i) gz[i] = static_cast<char>(0xFF);
    haq::test::write_bytes(fs::path(images.string() + ".gz"), gz);
    std::string msg = error_of(load, ErrorKind::data);
    CHECK_THAT(msg, Contains(images.string() + ".gz"));
  }
  SECTION("trailing bytes") {
    haq::test::write_bytes(images, haq::test::idx_bytes({4, 2, 2}, px) + "xyz");
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(images.string() + ": end: 3 bytes after"));
  }
  SECTION("bad magic") {
    std::string bytes = haq::test::idx_bytes({4, 2, 2}, px);
    bytes[0] = 'P';
    haq::test::write_bytes(images, bytes);
    CHECK_THAT(error_of(load, ErrorKind::data),
               Contains(images.string() + ": header: bad magic number 0x50000803"));
  }
  SECTION("labels file given as images (wrong number of dimensions)") {
    haq::test::write_idx(images, {4}, lab, false);
    CHECK_THAT(error_of(load, ErrorKind::data),
               Contains(images.string() + ": header: bad magic number 0x00000801"));
  }
  SECTION("unsupported element type") {
    std::string bytes = haq::test::idx_bytes({4, 2, 2}, px);
    bytes[2] = 0x0D;  // float
    haq::test::write_bytes(images, bytes);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("unsupported IDX element type 0x0d"));
  }
  SECTION("too short for a header") {
    haq::test::write_bytes(images, std::string("\0\0", 2));
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(images.string() + ": header: truncated"));
  }
  SECTION("count mismatch") {
    haq::test::write_idx(labels, {3}, {0, 1, 2}, false);
    std::string msg = error_of(load, ErrorKind::data);
    CHECK_THAT(msg, Contains(labels.string() + ": count mismatch: 3 labels, but " +
                             images.string() + " holds 4 images"));
  }
  SECTION("hostile dimensions are refused without allocating") {
    // 2^32-1 x 2^32-1 x 2^32-1: overflows 64 bits.
    haq::test::write_idx(images, {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu}, px, false);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(images.string() + ": header:"));
    // 2^24 images of 256 x 256 = 2^40 bytes claimed by a 32-byte file.
    haq::test::write_idx(images, {1u << 24, 256, 256}, px, false);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("too large"));
    // 1e6 images of 28 x 28: plausible, but the file is tiny.
    haq::test::write_idx(images, {1000000, 28, 28}, px, false);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(images.string() + ": image 0: truncated"));
    // The same claim in a gzip file: more than deflate can expand it to.
    fs::remove(images);
    haq::test::write_idx(fs::path(images.string() + ".gz"), {1000000, 28, 28}, px, true);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("more than a gzip file of"));
  }
  SECTION("zero dimension") {
    haq::test::write_idx(images, {4, 0, 2}, {}, false);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("a dimension is 0"));
  }
  SECTION("missing labels file") {
    fs::remove(labels);
    CHECK_THAT(error_of(load, ErrorKind::io), Contains("t10k-labels-idx1-ubyte"));
  }
}

TEST_CASE("a DATA that names nothing is a clear error", "[data][errors]") {
  CHECK_THAT(error_of([] { load_dataset(spec_of(""), Split::test); }, ErrorKind::usage),
             Contains("no dataset given"));
  CHECK_THAT(
      error_of([] { load_dataset(spec_of("/nonexistent/folder"), Split::test); }, ErrorKind::io),
      Contains("/nonexistent/folder: no such file or folder"));
}
