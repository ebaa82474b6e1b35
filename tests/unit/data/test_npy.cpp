// .npy pairs: dtypes, layouts, splits, and malformed headers.
#include <catch2/catch.hpp>

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
constexpr int64_t N = 3, C = 3, H = 2, W = 4;

/// Value of sample n, channel c, row h, column w (an integer below 256).
int value(int64_t n, int64_t c, int64_t h, int64_t w) { return int(n * 50 + c * 16 + h * 5 + w); }

template <typename T>
std::vector<T> make_images(bool channels_last) {
  std::vector<T> v;
  for (int64_t n = 0; n < N; ++n)
    if (channels_last) {
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          for (int64_t c = 0; c < C; ++c) v.push_back(static_cast<T>(value(n, c, h, w)));
    } else {
      for (int64_t c = 0; c < C; ++c)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) v.push_back(static_cast<T>(value(n, c, h, w)));
    }
  return v;
}

void check_nchw(const Dataset& d, float scale) {
  REQUIRE(d.size() == N);
  REQUIRE(d.channels == C);
  REQUIRE(d.height == H);
  REQUIRE(d.width == W);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w)
          REQUIRE(d.images[((n * C + c) * H + h) * W + w] == value(n, c, h, w) / scale);
}

DataSpec spec_of(const std::string& data) {
  DataSpec s;
  s.data = data;
  return s;
}
}  // namespace

TEST_CASE("npy pairs round-trip: float32/uint8, NCHW/NHWC, int32/int64 labels", "[data][npy]") {
  fs::path dir = haq::test::scratch_dir("data_npy");
  const std::vector<int32_t> l32 = {2, 0, 1};
  const std::vector<int64_t> l64 = {2, 0, 1};
  haq::test::write_npy(dir / "l32.npy", "<i4", {N}, l32.data(), l32.size() * 4);
  haq::test::write_npy(dir / "l64.npy", "<i8", {N}, l64.data(), l64.size() * 8, 2);
  for (bool last : {false, true}) {
    auto f = make_images<float>(last);
    auto u = make_images<uint8_t>(last);
    std::vector<uint64_t> shape =
        last ? std::vector<uint64_t>{N, H, W, C} : std::vector<uint64_t>{N, C, H, W};
    haq::test::write_npy(dir / "f.npy", "<f4", shape, f.data(), f.size() * 4);
    haq::test::write_npy(dir / "u.npy", "|u1", shape, u.data(), u.size(), 2);
    INFO("channels last: " << last);
    Dataset df = load_dataset(spec_of((dir / "f.npy").string() + "," + (dir / "l32.npy").string()),
                              Split::test);
    check_nchw(df, 1.f);  // float32 taken as is
    CHECK(df.labels == l32);
    CHECK(df.num_classes == 3);
    CHECK_THAT(df.note, Contains("serves both"));
    Dataset du = load_dataset(spec_of((dir / "u.npy").string() + "," + (dir / "l64.npy").string()),
                              Split::train);
    check_nchw(du, 255.f);  // uint8 scaled by spec.scale
    CHECK(du.labels == l32);
  }
}

TEST_CASE("npy: N x H x W, N x D, train,test pairs, a folder, unlabeled", "[data][npy]") {
  fs::path dir = haq::test::scratch_dir("data_npy_forms");
  std::vector<uint8_t> px(2 * 3 * 5);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i);
  const std::vector<int64_t> labels = {1, 4};
  haq::test::write_npy(dir / "hw.npy", "|u1", {2, 3, 5}, px.data(), px.size());
  haq::test::write_npy(dir / "flat.npy", "|u1", {2, 15}, px.data(), px.size());
  haq::test::write_npy(dir / "y.npy", "<i8", {2}, labels.data(), 16);
  DataSpec spec = spec_of((dir / "hw.npy").string() + "," + (dir / "y.npy").string() + ";" +
                          (dir / "flat.npy").string() + "," + (dir / "y.npy").string());
  Dataset train = load_dataset(spec, Split::train), test = load_dataset(spec, Split::test);
  CHECK(train.channels == 1);
  CHECK(train.height == 3);
  CHECK(train.width == 5);
  CHECK(test.channels == 1);
  CHECK(test.height == 1);
  CHECK(test.width == 15);
  CHECK(train.images == test.images);
  CHECK(train.note.empty());
  CHECK(train.num_classes == 5);

  Dataset unlabeled = load_dataset(spec_of((dir / "hw.npy").string()), Split::test);
  CHECK(unlabeled.size() == 2);
  CHECK(unlabeled.labels.empty());
  CHECK_THAT(haq::data::describe(unlabeled), Contains("unlabeled"));

  fs::path folder = haq::test::scratch_dir("data_npy_folder");
  fs::copy_file(dir / "hw.npy", folder / "images.npy");
  fs::copy_file(dir / "y.npy", folder / "labels.npy");
  Dataset from_folder = load_dataset(spec_of(folder.string()), Split::test);
  CHECK(from_folder.images == train.images);
  CHECK(from_folder.labels == train.labels);
}

TEST_CASE("malformed npy files are errors naming the file and the place", "[data][npy][errors]") {
  fs::path dir = haq::test::scratch_dir("data_npy_bad");
  auto f = make_images<float>(false);
  const std::vector<int32_t> l32 = {2, 0, 1};
  const fs::path x = dir / "x.npy", y = dir / "y.npy";
  haq::test::write_npy(x, "<f4", {N, C, H, W}, f.data(), f.size() * 4);
  haq::test::write_npy(y, "<i4", {N}, l32.data(), 12);
  DataSpec spec = spec_of(x.string() + "," + y.string());
  auto load = [&] { load_dataset(spec, Split::test); };
  REQUIRE(load_dataset(spec, Split::test).size() == N);

  SECTION("bad image dtype") {
    std::vector<double> d(f.begin(), f.end());
    haq::test::write_npy(x, "<f8", {N, C, H, W}, d.data(), d.size() * 8);
    CHECK_THAT(error_of(load, ErrorKind::data),
               Contains(x.string() + ": header: bad dtype '<f8' for images"));
  }
  SECTION("bad label dtype") {
    std::vector<float> lf = {2, 0, 1};
    haq::test::write_npy(y, "<f4", {N}, lf.data(), 12);
    CHECK_THAT(error_of(load, ErrorKind::data),
               Contains(y.string() + ": header: bad dtype '<f4' for labels"));
  }
  SECTION("big-endian") {
    haq::test::write_npy(x, ">f4", {N, C, H, W}, f.data(), f.size() * 4);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("big-endian"));
  }
  SECTION("fortran order") {
    haq::test::write_bytes(
        x, haq::test::npy_bytes("<f4", {N, C, H, W}, f.data(), f.size() * 4, 1, "True"));
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("fortran_order is True"));
  }
  SECTION("truncated") {
    std::string bytes = haq::test::npy_bytes("<f4", {N, C, H, W}, f.data(), f.size() * 4);
    haq::test::write_bytes(x, bytes.substr(0, bytes.size() - 10));
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(x.string() + ": sample 2: truncated"));
  }
  SECTION("not an npy file") {
    haq::test::write_bytes(x, "hello, world, this is not numpy");
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(x.string() + ": header: not a .npy file"));
  }
  SECTION("header length beyond the file") {
    std::string bytes = haq::test::npy_bytes("<f4", {N, C, H, W}, f.data(), 0);
    bytes[8] = '\xFF';
    bytes[9] = '\xFF';
    haq::test::write_bytes(x, bytes);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(x.string() + ": header: truncated"));
  }
  SECTION("corrupt header") {
    std::string bytes = haq::test::npy_bytes("<f4", {N, C, H, W}, f.data(), f.size() * 4);
    bytes.replace(bytes.find("shape"), 5, "shupe");
    haq::test::write_bytes(x, bytes);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("no 'shape' tuple"));
  }
  SECTION("hostile shape") {
    haq::test::write_npy(x, "<f4", {1ull << 40, 1000, 1000}, f.data(), 16);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(x.string() + ": header: shape"));
    haq::test::write_npy(x, "<f4", {100000, 28, 28}, f.data(), 16);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains(x.string() + ": sample 0: truncated"));
  }
  SECTION("count mismatch") {
    haq::test::write_npy(y, "<i4", {2}, l32.data(), 8);
    CHECK_THAT(
        error_of(load, ErrorKind::data),
        Contains(y.string() + ": count mismatch: 2 labels, but " + x.string() + " holds 3 images"));
  }
  SECTION("negative label") {
    const std::vector<int32_t> bad = {2, -1, 1};
    haq::test::write_npy(y, "<i4", {N}, bad.data(), 12);
    CHECK_THAT(error_of(load, ErrorKind::data),
               Contains(y.string() + ": sample 1: label -1 out of range"));
  }
  SECTION("label beyond num_classes") {
    spec.num_classes = 2;
    CHECK_THAT(error_of(load, ErrorKind::data),
               Contains(y.string() + ": sample 0: label 2 out of range 0..1 (num_classes 2)"));
  }
  SECTION("unsupported rank") {
    haq::test::write_npy(x, "<f4", {f.size()}, f.data(), f.size() * 4);
    CHECK_THAT(error_of(load, ErrorKind::data), Contains("expected N x D, N x H x W"));
  }
  SECTION("missing file") {
    fs::remove(y);
    CHECK_THAT(error_of(load, ErrorKind::io), Contains(y.string() + ": no such file"));
  }
}
