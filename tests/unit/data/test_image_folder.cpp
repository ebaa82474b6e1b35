// Image folders written by the test (PNG via libpng, JPEG via libjpeg):
// class indices, resize / crop / mean / std / order / gray against values
// computed by hand, splits, and errors.
#include <zlib.h>

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
DataSpec spec_of(const fs::path& dir, const std::string& preprocess = "") {
  DataSpec s;
  s.data = dir.string();
  s.preprocess = haq::data::parse_preprocess(preprocess);
  return s;
}

/// An RGB image of h x w whose pixel (y, x) channel c is base + 10*y + 2*x + c.
std::vector<uint8_t> ramp(int h, int w, int base) {
  std::vector<uint8_t> v;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) v.push_back(static_cast<uint8_t>(base + 10 * y + 2 * x + c));
  return v;
}
float px(int base, int y, int x, int c) { return (base + 10 * y + 2 * x + c) / 255.f; }
}  // namespace

TEST_CASE("image folder: classes from sorted folder names, PNG and JPEG", "[data][images]") {
  fs::path dir = haq::test::scratch_dir("data_images");
  fs::create_directories(dir / "b_dog");
  fs::create_directories(dir / "a_cat");
  haq::test::write_png_rgb(dir / "b_dog" / "1.png", 3, 2, ramp(2, 3, 100));
  haq::test::write_png_rgb(dir / "a_cat" / "2.png", 3, 2, ramp(2, 3, 0));
  // A flat colour survives JPEG nearly exactly.
  std::vector<uint8_t> flat;
  for (int i = 0; i < 6; ++i) flat.insert(flat.end(), {200, 100, 50});
  haq::test::write_jpeg_rgb(dir / "a_cat" / "1.JPG", 3, 2, flat, 100);
  haq::test::write_bytes(dir / "a_cat" / "README.txt", "not an image: skipped");

  Dataset d = load_dataset(spec_of(dir), Split::test);
  REQUIRE(d.size() == 3);
  CHECK(d.channels == 3);
  CHECK(d.height == 2);
  CHECK(d.width == 3);
  CHECK(d.class_names == std::vector<std::string>{"a_cat", "b_dog"});
  CHECK(d.num_classes == 2);
  CHECK(d.labels == std::vector<int32_t>{0, 0, 1});  // a_cat/1.JPG, a_cat/2.png, b_dog/1.png
  CHECK_THAT(d.note, Contains("serve both"));
  for (int k = 0; k < 6; ++k) {
    CHECK(d.images[0 * 6 + k] == Approx(200 / 255.f).margin(2 / 255.f));
    CHECK(d.images[1 * 6 + k] == Approx(100 / 255.f).margin(2 / 255.f));
    CHECK(d.images[2 * 6 + k] == Approx(50 / 255.f).margin(2 / 255.f));
  }
  // Sample 1 (a_cat/2.png) exactly, planar C x H x W.
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) CHECK(d.images[18 + (c * 2 + y) * 3 + x] == px(0, y, x, c));

  SECTION("bgr order and mean/std, listed in the model's channel order") {
    Dataset e =
        load_dataset(spec_of(dir, "order=bgr,mean=0.1:0.2:0.3,std=0.5:0.25:2"), Split::test);
    const float mean[3] = {0.1f, 0.2f, 0.3f}, sd[3] = {0.5f, 0.25f, 2.f};
    for (int c = 0; c < 3; ++c)
      for (int y = 0; y < 2; ++y)
        for (int x = 0; x < 3; ++x)
          CHECK(e.images[18 + (c * 2 + y) * 3 + x] ==
                Approx((px(0, y, x, 2 - c) - mean[c]) / sd[c]));
  }
  SECTION("grayscale: BT.601 luma") {
    Dataset g = load_dataset(spec_of(dir, "gray"), Split::test);
    REQUIRE(g.channels == 1);
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x)
        CHECK(g.images[6 + y * 3 + x] ==
              Approx(0.299f * px(0, y, x, 0) + 0.587f * px(0, y, x, 1) + 0.114f * px(0, y, x, 2)));
  }
  SECTION("mean with the wrong number of values") {
    CHECK_THAT(error_of([&] { load_dataset(spec_of(dir, "mean=0.5:0.5"), Split::test); },
                        ErrorKind::usage),
               Contains("mean has 2 values, but the images have 3 channel(s)"));
  }
}

TEST_CASE("image folder: resize and centre crop against hand-computed values", "[data][images]") {
  fs::path dir = haq::test::scratch_dir("data_images_resize");
  fs::create_directories(dir / "c");
  // A 2 x 4 gray image (written as gray PNG: R = G = B).
  const std::vector<uint8_t> a = {10, 20, 40, 80, 100, 120, 140, 160};
  haq::test::write_png_gray(dir / "c" / "a.png", 4, 2, a);
  auto v = [&](int y, int x) { return a[y * 4 + x] / 255.f; };

  SECTION("shrink by 2: triangle filter widened to 2 pixels") {
    // Shorter side 2 -> 1, longer 4 -> floor(1 * 4 / 2) = 2. Output column 0 is
    // centred on input x = 1.0: weights 0.75, 0.75, 0.25 for x = 0, 1, 2.
    Dataset d = load_dataset(spec_of(dir, "resize=1"), Split::test);
    REQUIRE(d.height == 1);
    REQUIRE(d.width == 2);
    auto row = [&](int y, int x0) {
      return x0 == 0 ? (0.75f * v(y, 0) + 0.75f * v(y, 1) + 0.25f * v(y, 2)) / 1.75f
                     : (0.25f * v(y, 1) + 0.75f * v(y, 2) + 0.75f * v(y, 3)) / 1.75f;
    };
    for (int c = 0; c < 3; ++c) {
      CHECK(d.images[c * 2 + 0] == Approx((row(0, 0) + row(1, 0)) / 2).epsilon(1e-5));
      CHECK(d.images[c * 2 + 1] == Approx((row(0, 1) + row(1, 1)) / 2).epsilon(1e-5));
    }
    // Crop 1 of width 2: left = round(0.5) = 0 (half to even, as torchvision).
    Dataset e = load_dataset(spec_of(dir, "resize=1,crop=1"), Split::test);
    REQUIRE(e.width == 1);
    CHECK(e.images[0] == d.images[0]);
  }
  SECTION("enlarge by 2: plain bilinear with half-pixel centres") {
    Dataset d = load_dataset(spec_of(dir, "resize=4,gray"), Split::test);
    REQUIRE(d.channels == 1);
    REQUIRE(d.height == 4);
    REQUIRE(d.width == 8);
    // Along x, output centres map to input x = 0.25, 0.75, 1.25, ...: weights
    // (edge) 1 | .75/.25 | .25/.75 | ...; the same along y.
    auto hx = [&](int y, int ox) {
      double c = (ox + 0.5) / 2 - 0.5;
      int x0 = c < 0 ? 0 : int(c);
      int x1 = std::min(x0 + 1, 3);
      double t = c < 0 ? 0 : c - x0;
      return (1 - t) * v(y, x0) + t * v(y, x1);
    };
    for (int oy = 0; oy < 4; ++oy)
      for (int ox = 0; ox < 8; ++ox) {
        double c = (oy + 0.5) / 2 - 0.5;
        double expected = c <= 0   ? hx(0, ox)
                          : c >= 1 ? hx(1, ox)
                                   : (1 - c) * hx(0, ox) + c * hx(1, ox);
        CHECK(d.images[oy * 8 + ox] == Approx(expected).epsilon(1e-5));
      }
    // Crop 3 of 4 x 8: top = round(0.5) = 0, left = round(2.5) = 2.
    Dataset e = load_dataset(spec_of(dir, "resize=4,crop=3,gray"), Split::test);
    REQUIRE(e.height == 3);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) CHECK(e.images[y * 3 + x] == d.images[y * 8 + x + 2]);
  }
}

TEST_CASE("image folder: train/ and test/ splits share class indices", "[data][images]") {
  fs::path dir = haq::test::scratch_dir("data_images_split");
  for (const char* c : {"train/ant", "train/bee", "train/cow", "test/cow"})
    fs::create_directories(dir / c);
  for (const char* f : {"train/ant/1.png", "train/bee/1.png", "train/cow/1.png", "test/cow/9.png"})
    haq::test::write_png_rgb(dir / f, 2, 2, ramp(2, 2, 0));
  Dataset train = load_dataset(spec_of(dir), Split::train);
  Dataset test = load_dataset(spec_of(dir), Split::test);
  CHECK(train.labels == std::vector<int32_t>{0, 1, 2});
  CHECK(test.labels == std::vector<int32_t>{2});
  CHECK(test.num_classes == 3);
  CHECK(train.note.empty());
  fs::create_directories(dir / "test" / "dog");
  haq::test::write_png_rgb(dir / "test/dog/1.png", 2, 2, ramp(2, 2, 0));
  CHECK_THAT(error_of([&] { load_dataset(spec_of(dir), Split::test); }, ErrorKind::data),
             Contains("class folder 'dog' does not exist in the train split"));
}

TEST_CASE("image folder errors name the file and the sample", "[data][images][errors]") {
  fs::path dir = haq::test::scratch_dir("data_images_bad");
  fs::create_directories(dir / "a");
  haq::test::write_png_rgb(dir / "a" / "1.png", 4, 4, ramp(4, 4, 0));
  const fs::path second = dir / "a" / "2.png";
  auto load = [&](const std::string& pre) {
    return [&, pre] { load_dataset(spec_of(dir, pre), Split::test); };
  };

  SECTION("different sizes without crop") {
    haq::test::write_png_rgb(second, 4, 3, ramp(3, 4, 0));
    std::string msg = error_of(load(""), ErrorKind::data);
    CHECK_THAT(msg, Contains(second.string() + ": sample 1: image is 3x3x4 after preprocessing"));
    CHECK_THAT(msg, Contains("1.png is 3x4x4"));
    // resize alone keeps the aspect ratio: still different; crop fixes it.
    CHECK_THAT(error_of(load("resize=3"), ErrorKind::data),
               Contains("image is 3x3x4 after preprocessing, but"));
    CHECK(load_dataset(spec_of(dir, "resize=3,crop=3"), Split::test).size() == 2);
  }
  SECTION("crop larger than the image") {
    CHECK_THAT(error_of(load("crop=5"), ErrorKind::data),
               Contains("1.png: sample 0: image is 4x4 (after resize), smaller than the crop 5x5"));
  }
  SECTION("truncated PNG") {
    haq::test::write_png_rgb(second, 4, 4, ramp(4, 4, 9));
    std::string bytes = haq::test::read_bytes(second);
    haq::test::write_bytes(second, bytes.substr(0, bytes.size() - 20));
    CHECK_THAT(error_of(load(""), ErrorKind::data),
               Contains(second.string() + ": sample 1: data: corrupt or truncated PNG"));
  }
  SECTION("truncated JPEG") {
    std::vector<uint8_t> noise(64 * 64 * 3);
    for (size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<uint8_t>(i * 37 % 251);
    haq::test::write_jpeg_rgb(dir / "a" / "3.jpg", 64, 64, noise, 90);
    std::string bytes = haq::test::read_bytes(dir / "a" / "3.jpg");
    haq::test::write_bytes(dir / "a" / "3.jpg", bytes.substr(0, bytes.size() / 2));
    CHECK_THAT(error_of(load("resize=4,crop=4"), ErrorKind::data),
               Contains("3.jpg: sample 1: corrupt or truncated JPEG"));
  }
  SECTION("not an image") {
    haq::test::write_bytes(second, "GIF89a pretending to be a PNG");
    CHECK_THAT(error_of(load(""), ErrorKind::data),
               Contains(second.string() + ": sample 1: header: neither a PNG nor a JPEG"));
  }
  SECTION("hostile PNG header: 100000 x 100000 pixels") {
    haq::test::write_png_rgb(second, 4, 4, ramp(4, 4, 0));
    std::string bytes = haq::test::read_bytes(second);
    // IHDR data starts at byte 16 (8 signature + 4 length + 4 type): width, height.
    for (int k = 0; k < 2; ++k) {
      uint32_t v = 100000;
      for (int b = 0; b < 4; ++b)
        bytes[16 + 4 * k + b] = static_cast<char>((v >> (24 - 8 * b)) & 0xFF);
    }
    uLong crc = crc32(0, reinterpret_cast<const Bytef*>(bytes.data() + 12), 17);
    for (int b = 0; b < 4; ++b) bytes[29 + b] = static_cast<char>((crc >> (24 - 8 * b)) & 0xFF);
    haq::test::write_bytes(second, bytes);
    CHECK_THAT(
        error_of(load(""), ErrorKind::data),
        Contains(second.string() + ": sample 1: header: PNG of 100000 x 100000 pixels: refused"));
  }
  SECTION("no class subfolders") {
    fs::path flat = haq::test::scratch_dir("data_images_flat");
    haq::test::write_png_rgb(flat / "1.png", 2, 2, ramp(2, 2, 0));
    CHECK_THAT(error_of([&] { load_dataset(spec_of(flat), Split::test); }, ErrorKind::data),
               Contains("no class subfolders"));
  }
}
