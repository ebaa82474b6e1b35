// Image folders of mixed modes and sizes made by the test (gray, RGB, RGBA,
// palette and 16-bit PNGs, gray and RGB JPEGs): channels following the
// model, resize + crop of mixed sizes against hand-computed values, label
// maps and their errors, the batch choice, and the new preprocess keys.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

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

DataSpec spec_of(const fs::path& dir, const std::string& preprocess = "",
                 std::vector<int64_t> model_input = {}) {
  DataSpec s;
  s.data = dir.string();
  s.preprocess = haq::data::parse_preprocess(preprocess);
  s.model_input = std::move(model_input);
  return s;
}

float luma(float r, float g, float b) { return (0.299f * r + 0.587f * g + 0.114f * b) / 255.f; }

/// Pixel (c, y, x) of sample i of a dataset.
float at(const Dataset& d, int64_t i, int64_t c, int64_t y, int64_t x) {
  return d.images[static_cast<size_t>(((i * d.channels + c) * d.height + y) * d.width + x)];
}

/// Every pixel of channel c of sample i.
std::vector<float> plane(const Dataset& d, int64_t i, int64_t c) {
  std::vector<float> out;
  for (int64_t y = 0; y < d.height; ++y)
    for (int64_t x = 0; x < d.width; ++x) out.push_back(at(d, i, c, y, x));
  return out;
}

/// Six 3x2 images, one of each mode, in a/ (file order: g, g16, gj, pal, rgb, rgba).
fs::path six_modes() {
  fs::path dir = haq::test::scratch_dir("data_modes");
  fs::create_directories(dir / "a");
  haq::test::write_png_gray(dir / "a" / "g.png", 3, 2, {10, 30, 50, 50, 70, 90});
  // 16-bit: v * 257 is exactly v in 8 bits.
  haq::test::write_png_gray16(dir / "a" / "g16.png", 3, 2,
                              {0, 51 * 257, 102 * 257, 153 * 257, 204 * 257, 65535});
  haq::test::write_jpeg_gray(dir / "a" / "gj.jpg", 3, 2, std::vector<uint8_t>(6, 120), 100);
  haq::test::write_png_palette(dir / "a" / "pal.png", 3, 2, {255, 0, 0, 0, 128, 255},
                               {0, 1, 0, 1, 0, 1});
  std::vector<uint8_t> flat;
  for (int i = 0; i < 6; ++i) flat.insert(flat.end(), {200, 100, 50});
  haq::test::write_jpeg_rgb(dir / "a" / "rgb.jpg", 3, 2, flat, 100);
  std::vector<uint8_t> rgba;
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 3; ++x) rgba.insert(rgba.end(), {200, 100, uint8_t(50 + x), 9});
  haq::test::write_png_rgba(dir / "a" / "rgba.png", 3, 2, rgba);
  return dir;
}

}  // namespace

TEST_CASE("image modes: gray, 16-bit, palette, alpha, and channels following the model",
          "[data][images][channels]") {
  const fs::path dir = six_modes();
  const float g[6] = {10, 30, 50, 50, 70, 90}, g16[6] = {0, 51, 102, 153, 204, 255};

  auto check_rgb = [&](const Dataset& d) {
    REQUIRE(d.size() == 6);
    REQUIRE(d.channels == 3);
    for (int c = 0; c < 3; ++c)
      for (int k = 0; k < 6; ++k) {
        // Gray images are replicated to R = G = B.
        CHECK(plane(d, 0, c)[k] == g[k] / 255.f);
        CHECK(plane(d, 1, c)[k] == g16[k] / 255.f);
        CHECK(plane(d, 2, c)[k] == Approx(120 / 255.f).margin(1.5 / 255));
        const float pal[2][3] = {{255, 0, 0}, {0, 128, 255}};
        CHECK(plane(d, 3, c)[k] == pal[k % 2][c] / 255.f);
        const float rgb[3] = {200, 100, 50};
        CHECK(plane(d, 4, c)[k] == Approx(rgb[c] / 255.f).margin(2.5 / 255));
        // Alpha dropped: the stored colour, not composited.
        const float rgba[3] = {200, 100, float(50 + k % 3)};
        CHECK(plane(d, 5, c)[k] == rgba[c] / 255.f);
      }
  };
  SECTION("a 3-channel model (and no model: RGB)") {
    check_rgb(load_dataset(spec_of(dir, "", {1, 3, 2, 3}), Split::test));
    check_rgb(load_dataset(spec_of(dir), Split::test));
    check_rgb(load_dataset(spec_of(dir, "", {1, 2, 3, 3}), Split::test));  // NHWC
    // rgb overrides a 1-channel model.
    check_rgb(load_dataset(spec_of(dir, "rgb", {1, 1, 2, 3}), Split::test));
  }
  SECTION("a 1-channel model: colour images become BT.601 luma, gray stays") {
    auto check_gray = [&](const Dataset& d) {
      REQUIRE(d.channels == 1);
      for (int k = 0; k < 6; ++k) {
        CHECK(plane(d, 0, 0)[k] == g[k] / 255.f);
        CHECK(plane(d, 1, 0)[k] == g16[k] / 255.f);
        CHECK(plane(d, 2, 0)[k] == Approx(120 / 255.f).margin(1.5 / 255));
        CHECK(plane(d, 3, 0)[k] == Approx(k % 2 ? luma(0, 128, 255) : luma(255, 0, 0)));
        CHECK(plane(d, 4, 0)[k] == Approx(luma(200, 100, 50)).margin(2.5 / 255));
        CHECK(plane(d, 5, 0)[k] == Approx(luma(200, 100, float(50 + k % 3))));
      }
    };
    check_gray(load_dataset(spec_of(dir, "", {1, 1, 2, 3}), Split::test));
    check_gray(load_dataset(spec_of(dir, "", {-1, 2, 3, 1}), Split::test));  // NHWC, dynamic batch
    // gray overrides a 3-channel model.
    check_gray(load_dataset(spec_of(dir, "gray", {1, 3, 2, 3}), Split::test));
  }
  SECTION("a CMYK JPEG is refused by name, not called corrupt") {
    haq::test::write_jpeg(dir / "a" / "z.jpg", 3, 2, 4, std::vector<uint8_t>(24, 100));
    std::string msg = error_of([&] { load_dataset(spec_of(dir), Split::test); }, ErrorKind::data);
    CHECK_THAT(msg, Contains("z.jpg: sample 6: CMYK JPEG: not supported"));
    fs::remove(dir / "a" / "z.jpg");
  }
  SECTION("scale: 8-bit values divided by it, before mean/std") {
    Dataset d = load_dataset(spec_of(dir, "scale=1,mean=10,std=2", {1, 1, 2, 3}), Split::test);
    for (int k = 0; k < 6; ++k) CHECK(plane(d, 0, 0)[k] == (g[k] - 10) / 2);
  }
}

TEST_CASE("mixed sizes and modes through resize + crop", "[data][images][resize]") {
  fs::path dir = haq::test::scratch_dir("data_mixed");
  fs::create_directories(dir / "x");
  fs::create_directories(dir / "y");
  // Flat images keep their value through any resize (weights sum to 1).
  haq::test::write_png_gray(dir / "x" / "1.png", 6, 4, std::vector<uint8_t>(24, 90));
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 35; ++i) rgb.insert(rgb.end(), {30, 60, 90});
  haq::test::write_jpeg_rgb(dir / "x" / "2.jpg", 5, 7, rgb, 100);
  std::vector<uint8_t> rgba;
  for (int i = 0; i < 64; ++i) rgba.insert(rgba.end(), {10, 20, 30, 0});
  haq::test::write_png_rgba(dir / "y" / "3.png", 8, 8, rgba);
  haq::test::write_png_palette(dir / "y" / "4.png", 4, 9, {255, 128, 0},
                               std::vector<uint8_t>(36, 0));
  // A ramp of 4 x 6 (shorter side already 4: no resize), cropped to columns 1..4.
  std::vector<uint8_t> ramp;
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x) ramp.push_back(static_cast<uint8_t>(10 * y + 3 * x));
  haq::test::write_png_gray(dir / "y" / "5.png", 6, 4, ramp);

  Dataset d = load_dataset(spec_of(dir, "resize=4,crop=4", {1, 3, 4, 4}), Split::test);
  REQUIRE(d.size() == 5);
  CHECK(d.labels == std::vector<int32_t>{0, 0, 1, 1, 1});
  REQUIRE((d.channels == 3 && d.height == 4 && d.width == 4));
  const float flat[4][3] = {{90, 90, 90}, {30, 60, 90}, {10, 20, 30}, {255, 128, 0}};
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 3; ++c)
      for (float v : plane(d, i, c))
        CHECK(v == Approx(flat[i][c] / 255.f).margin(i == 1 ? 2.5 / 255 : 1e-6));
  for (int c = 0; c < 3; ++c)
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x) CHECK(at(d, 4, c, y, x) == (10 * y + 3 * (x + 1)) / 255.f);

  SECTION("the same for a 1-channel model: luma") {
    Dataset e = load_dataset(spec_of(dir, "resize=4,crop=4", {1, 1, 4, 4}), Split::test);
    REQUIRE(e.channels == 1);
    for (int i = 0; i < 4; ++i)
      for (float v : plane(e, i, 0))
        CHECK(v ==
              Approx(luma(flat[i][0], flat[i][1], flat[i][2])).margin(i == 1 ? 2.5 / 255 : 1e-5));
  }
  SECTION("without preprocessing: the error suggests the model's size") {
    std::string msg = error_of(
        [&] {
          load_dataset(spec_of(dir, "", {1, 3, 4, 4}), Split::test);
        },
        ErrorKind::data);
    CHECK_THAT(msg, Contains("2.jpg: sample 1: image is 3x7x5 after preprocessing"));
    CHECK_THAT(msg, Contains("the model takes 4x4: add --preprocess resize=4,crop=4"));
    CHECK_THAT(error_of(
                   [&] {
                     load_dataset(spec_of(dir, "resize=6", {1, 3, 4, 4}), Split::test);
                   },
                   ErrorKind::data),
               Contains("add --preprocess resize=6,crop=4"));
    CHECK_THAT(error_of([&] { load_dataset(spec_of(dir), Split::test); }, ErrorKind::data),
               Contains("set resize and crop, e.g. --preprocess resize=256,crop=224"));
  }
  SECTION("one size, but not the model's: to_model_layout suggests it") {
    Dataset one = load_dataset(spec_of(dir, "resize=6,crop=6", {1, 3, 4, 4}), Split::test);
    std::vector<float> out(one.sample_elems());
    CHECK_THAT(
        error_of(
            [&] {
              haq::data::to_model_layout(one, {0}, {1, 3, 4, 4}, out.data());
            },
            ErrorKind::data),
        Contains("resize and crop the images to the model's size: --preprocess resize=4,crop=4"));
  }
}

TEST_CASE("label maps: JSON and text, and their errors", "[data][images][labels]") {
  fs::path dir = haq::test::scratch_dir("data_labels");
  for (const char* c : {"bird", "cat", "dog"}) {
    fs::create_directories(dir / c);
    haq::test::write_png_gray(dir / c / "1.png", 2, 2, {1, 2, 3, 4});
  }
  auto with_map = [&](const std::string& file, const std::string& text, int64_t classes = 0) {
    haq::test::write_bytes(dir / file, text);
    DataSpec s = spec_of(dir);
    s.labels = (dir / file).string();
    s.num_classes = classes;
    return s;
  };
  auto load_error = [&](const DataSpec& s) {
    return error_of([&] { load_dataset(s, Split::test); }, ErrorKind::data);
  };
  // bird.txt etc. are files, not folders: the maps live beside the class folders.
  SECTION("default: folder names sorted byte-wise") {
    Dataset d = load_dataset(spec_of(dir), Split::test);
    CHECK(d.labels == std::vector<int32_t>{0, 1, 2});
  }
  SECTION("text: line k is index k-1; the first word names the folder") {
    Dataset d =
        load_dataset(with_map("classes.txt", "dog\ncat  felis catus\r\nbird\n"), Split::test);
    CHECK(d.labels == std::vector<int32_t>{2, 1, 0});  // bird, cat, dog folders in sorted order
    CHECK(d.class_names == std::vector<std::string>{"dog", "cat", "bird"});
    CHECK(d.num_classes == 3);
  }
  SECTION("JSON object, indices within the model's classes") {
    Dataset d = load_dataset(
        with_map("map.json", R"({"cat": 7, "dog": 0, "bird": 3, "eel": 9})", 10), Split::test);
    CHECK(d.labels == std::vector<int32_t>{3, 7, 0});
    CHECK(d.num_classes == 10);
    CHECK(d.class_names.at(7) == "cat");
  }
  SECTION("errors name the file and the line or pointer") {
    const std::string json = (dir / "map.json").string(), txt = (dir / "classes.txt").string();
    CHECK_THAT(load_error(with_map("map.json", R"({"cat": "7", "dog": 0, "bird": 1})")),
               Contains(json + ": /cat: expected an integer"));
    CHECK_THAT(load_error(with_map("map.json", R"({"cat": 12, "dog": 0, "bird": 1})", 10)),
               Contains(json + ": /cat: index 12 out of range 0..9 (the model has 10 outputs)"));
    CHECK_THAT(load_error(with_map("map.json", R"({"cat": 1, "dog": 1, "bird": 0})")),
               Contains("has index 1, which 'cat' (/cat) has too"));
    CHECK_THAT(load_error(with_map("map.json", R"({"cat": 1, "dog": 0})")),
               Contains((dir / "bird").string() + ": class folder 'bird' is not in the label map " +
                        json));
    CHECK_THAT(load_error(with_map("map.json", R"({"cat": 1,)")), Contains(json + ": line 1"));
    CHECK_THAT(load_error(with_map("classes.txt", "dog\n\ncat\nbird\n")),
               Contains(txt + ": line 2: empty line"));
    CHECK_THAT(load_error(with_map("classes.txt", "cat\ndog\ncat\nbird\n")),
               Contains(txt + ": line 3: class 'cat' is listed twice (also at line 1)"));
    CHECK_THAT(load_error(with_map("classes.txt", "cat\ndog\nbird\n", 2)),
               Contains(txt + ": line 3: class index 2 out of range 0..1"));
    CHECK_THAT(load_error(with_map("classes.txt", "")), Contains("empty label map"));
    DataSpec missing = spec_of(dir);
    missing.labels = (dir / "nope.txt").string();
    CHECK_THAT(error_of([&] { load_dataset(missing, Split::test); }, ErrorKind::io),
               Contains("nope.txt"));
  }
  SECTION("a label map with IDX or .npy data is a usage error") {
    DataSpec s;
    s.data = "x.npy,y.npy";
    s.labels = "classes.txt";
    CHECK_THAT(error_of([&] { load_dataset(s, Split::test); }, ErrorKind::usage),
               Contains("applies to image folders only"));
  }
}

TEST_CASE("label map with train/ and test/: one map for both splits", "[data][images][labels]") {
  fs::path dir = haq::test::scratch_dir("data_labels_split");
  for (const char* c : {"train/ant", "train/bee", "test/bee"}) {
    fs::create_directories(dir / c);
    haq::test::write_png_gray(dir / c / "1.png", 2, 2, {1, 2, 3, 4});
  }
  haq::test::write_bytes(dir / "map.json", R"({"bee": 0, "ant": 1})");
  DataSpec s = spec_of(dir);
  s.labels = (dir / "map.json").string();
  CHECK(load_dataset(s, Split::train).labels == std::vector<int32_t>{1, 0});
  CHECK(load_dataset(s, Split::test).labels == std::vector<int32_t>{0});
}

TEST_CASE("model_input_of and choose_batch", "[data][batch]") {
  auto m = haq::data::model_input_of({1, 3, 224, 224});
  CHECK((m.channels == 3 && m.height == 224 && m.width == 224));
  m = haq::data::model_input_of({-1, 28, 28, 1});
  CHECK((m.channels == 1 && m.height == 28 && m.width == 28));
  m = haq::data::model_input_of({1, 3, -1, -1});
  CHECK((m.channels == 3 && m.height == 0));
  CHECK(haq::data::model_input_of({1, 784}).channels == 0);
  CHECK(haq::data::model_input_of({1, 8, 16, 16}).channels == 0);
  // MobileNetV2 at 224: its largest activation is 96 x 112 x 112 floats per sample.
  const int64_t mnv2 = 96 * 112 * 112;
  CHECK(haq::data::choose_batch(0, mnv2, 10000) == (int64_t{64} << 20) / (mnv2 * 4));
  CHECK(haq::data::choose_batch(0, mnv2, 10000) == 13);
  CHECK(haq::data::choose_batch(0, 32 * 28 * 28, 10000) == 256);  // small models: the cap
  CHECK(haq::data::choose_batch(0, 32 * 28 * 28, 8) == 8);        // never more than the samples
  CHECK(haq::data::choose_batch(100, mnv2, 8) == 8);
  CHECK(haq::data::choose_batch(100, mnv2, 1000) == 100);  // given: kept
  CHECK(haq::data::choose_batch(0, int64_t{1} << 30, 50) == 1);
}

TEST_CASE("preprocess: scale, rgb, channels, none, and the JSON round trip", "[data][preprocess]") {
  using haq::data::parse_preprocess;
  auto p = parse_preprocess("imagenet,scale=1,rgb,order=bgr");
  CHECK(p.scale == 1.f);
  CHECK(p.channels == 3);
  CHECK(p.resize == 256);
  CHECK(parse_preprocess("imagenet,none").resize == 0);
  CHECK(parse_preprocess("imagenet,none,crop=8").crop == 8);
  CHECK(parse_preprocess("channels=1").channels == 1);
  CHECK(parse_preprocess("gray,channels=auto").channels == 0);
  CHECK(haq::data::to_string(p) ==
        "resize=256,crop=224,scale=1,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,order=bgr,rgb");
  const nlohmann::json j = haq::data::preprocess_to_json(p);
  CHECK(
      j.dump() ==
      R"({"channel_order":"bgr","channels":"rgb","crop":224,"mean":[0.485,0.456,0.406],"resize":256,"scale":1.0,"std":[0.229,0.224,0.225]})");
  auto back = haq::data::preprocess_from_json(j, "config.json");
  CHECK(haq::data::to_string(back) == haq::data::to_string(p));
  auto none = haq::data::preprocess_from_json(haq::data::preprocess_to_json({}), "config.json");
  CHECK(haq::data::to_string(none) == "");
  CHECK(parse_preprocess(R"({"channels": "gray", "scale": 2})").channels == 1);

  CHECK_THAT(error_of([] { parse_preprocess("scale=0"); }, ErrorKind::usage),
             Contains("scale=0: expected a positive number"));
  CHECK_THAT(error_of([] { parse_preprocess("channels=2"); }, ErrorKind::usage),
             Contains("channels=2: expected auto, 1 (gray) or 3 (rgb)"));
  CHECK_THAT(error_of([] { parse_preprocess("rgb=yes"); }, ErrorKind::usage), Contains("rgb=yes"));
  CHECK_THAT(error_of([] { parse_preprocess("layout=nhwc"); }, ErrorKind::usage),
             Contains("unknown key 'layout'"));
  CHECK_THAT(error_of([] { parse_preprocess(R"({"channels": "bgr"})"); }, ErrorKind::usage),
             Contains("/channels"));
  CHECK_THAT(error_of([] { parse_preprocess(R"({"grayscale": true, "channels": "rgb"})"); },
                      ErrorKind::usage),
             Contains("/grayscale: give one of"));
}

TEST_CASE("splits_shared: one folder or .npy pair serves both splits", "[data][splits]") {
  fs::path dir = haq::test::scratch_dir("data_shared");
  fs::create_directories(dir / "flat" / "a");
  for (const char* c : {"split/train/a", "split/val/a"}) fs::create_directories(dir / c);
  auto shared = [](const std::string& data) {
    DataSpec s;
    s.data = data;
    return haq::data::splits_shared(s);
  };
  CHECK(shared((dir / "flat").string()));
  CHECK_FALSE(shared((dir / "split").string()));
  CHECK(shared("x.npy,y.npy"));
  CHECK(shared("x.npy"));
  CHECK_FALSE(shared("a.npy,b.npy;c.npy,d.npy"));
  CHECK_FALSE(shared("fashion-mnist"));
  CHECK_FALSE(shared((dir / "missing").string()));
}
