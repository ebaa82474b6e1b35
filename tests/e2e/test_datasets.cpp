// Image folders through the CLI, written by the test: 40 Fashion-MNIST test
// images as gray, RGB, RGBA and palette PNGs of mixed sizes in class folders
// named after the classes, evaluated with --preprocess crop=28 and a label
// map, must measure exactly what the same images as .npy measure. Also:
// the batch follows the samples, the one-folder note, bad --preprocess and
// --labels values, a search and check carrying the preprocessing.
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "haq/data/dataset.h"
#include "run_haq.h"
#include "test_paths.h"
#include "writers.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::source_path;
namespace fs = std::filesystem;

namespace {

// Fashion-MNIST's classes in label order (folder names: no spaces, so a text
// label map can name them).
const std::vector<std::string> kClasses = {"t-shirt", "trouser", "pullover", "dress", "coat",
                                           "sandal",  "shirt",   "sneaker",  "bag",   "ankle-boot"};

struct Folder {
  fs::path dir, npy_x, npy_y, labels;
};

/// The first `n` Fashion-MNIST test images as an image folder (modes and
/// sizes cycle: gray 28x28, RGB 28x28, RGBA 32x32 with the image at offset
/// 2, palette 30x30 at offset 1 — where crop=28 puts it back), the same as
/// x.npy/y.npy, and labels.txt in label order.
Folder fmnist_folder(const std::string& name, int n) {
  Folder f;
  f.dir = haq::test::scratch_dir(name);
  haq::data::DataSpec spec;
  spec.data = "fashion-mnist";
  spec.preprocess.scale = 1;  // the stored bytes
  const haq::data::Dataset d = haq::data::load_dataset(spec, haq::data::Split::test);
  REQUIRE(d.size() >= n);
  std::vector<uint8_t> all;
  std::vector<int64_t> labels;
  fs::path imgs = f.dir / "imgs";
  for (const auto& c : kClasses) fs::create_directories(imgs / c);
  std::vector<uint8_t> palette;
  for (int v = 0; v < 256; ++v) palette.insert(palette.end(), {uint8_t(v), uint8_t(v), uint8_t(v)});
  for (int i = 0; i < n; ++i) {
    std::vector<uint8_t> g(784);
    for (int k = 0; k < 784; ++k) g[k] = static_cast<uint8_t>(d.images[i * 784 + k]);
    all.insert(all.end(), g.begin(), g.end());
    labels.push_back(d.labels[i]);
    // Sorted file names within a class keep the sample order of the .npy.
    const fs::path base = imgs / kClasses[d.labels[i]] / fmt::format("{:03d}", i);
    auto padded = [&](int size, int off, int channels, uint8_t fill) {
      std::vector<uint8_t> out(static_cast<size_t>(size * size * channels), fill);
      for (int y = 0; y < 28; ++y)
        for (int x = 0; x < 28; ++x)
          for (int c = 0; c < channels; ++c)
            out[((y + off) * size + x + off) * channels + c] =
                c == 3 ? uint8_t(40 + x) : g[y * 28 + x];  // RGBA: any alpha
      return out;
    };
    switch (i % 4) {
      case 0:
        haq::test::write_png_gray(base.string() + ".png", 28, 28, g);
        break;
      case 1:
        haq::test::write_png_rgb(base.string() + ".png", 28, 28, padded(28, 0, 3, 0));
        break;
      case 2:
        haq::test::write_png_rgba(base.string() + ".png", 32, 32, padded(32, 2, 4, 255));
        break;
      default:
        haq::test::write_png_palette(base.string() + ".png", 30, 30, palette, padded(30, 1, 1, 7));
    }
  }
  // The .npy in the folder's sample order (class folder names sorted, then
  // file names), so that the same seed draws the same calibration images.
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return kClasses[labels[a]] < kClasses[labels[b]]; });
  std::vector<uint8_t> x;
  std::vector<int64_t> y;
  for (int i : order) {
    x.insert(x.end(), all.begin() + i * 784, all.begin() + (i + 1) * 784);
    y.push_back(labels[i]);
  }
  all = x;
  labels = y;
  f.npy_x = f.dir / "x.npy";
  f.npy_y = f.dir / "y.npy";
  haq::test::write_npy(f.npy_x, "|u1", {uint64_t(n), 28, 28}, all.data(), all.size());
  haq::test::write_npy(f.npy_y, "<i8", {uint64_t(n)}, labels.data(), labels.size() * 8);
  f.labels = f.dir / "labels.txt";
  std::string text;
  for (const auto& c : kClasses) text += c + "\n";
  haq::test::write_bytes(f.labels, text);
  f.dir = imgs;
  return f;
}

nlohmann::json eval_json(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {
      "eval", source_path("models/fmnist-mobilenet.onnx"), "--json", "--calib", "16", "--bits",
      "w4a4"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_haq(args);
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);
  return nlohmann::json::parse(r.out);
}

/// Runs haq with `args`, expects exit 2 and one "haq: error:" line; returns stderr.
std::string error_of(const std::vector<std::string>& args) {
  auto r = run_haq(args);
  INFO("args: " << fmt::format("{}", fmt::join(args, " ")) << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: ", 0) == 0);
  return r.err;
}

}  // namespace

TEST_CASE("haq eval: an image folder of mixed modes and sizes measures what the .npy does",
          "[e2e][data][images]") {
  const Folder f = fmnist_folder("e2e_datasets_fmnist", 40);
  const nlohmann::json npy = eval_json({"--data", f.npy_x.string() + "," + f.npy_y.string()});
  const nlohmann::json imgs = eval_json(
      {"--data", f.dir.string(), "--preprocess", "crop=28", "--labels", f.labels.string()});
  for (const char* run : {"fp32", "quantized"})
    for (const char* metric : {"top1", "top5"}) {
      INFO(run << " " << metric);
      CHECK(imgs[run][metric] == npy[run][metric]);
    }
  CHECK(imgs["fp32"]["top1"].get<double>() > 50);  // a real model on real images
  // RGB, RGBA and palette images became one channel: the model's input.
  CHECK(imgs["sample_shape"] == nlohmann::json::array({1, 28, 28}));
  CHECK(imgs["preprocess"]["crop"] == 28);
  CHECK(imgs["preprocess"]["channels"] == "auto");
  CHECK(imgs["labels"] == f.labels.string());
  // 40 samples: batch 40, not the default's 256 (a small model's cap).
  CHECK(imgs["batch"] == 40);
  CHECK(imgs["samples"] == 40);

  SECTION("without the label map, classes are the sorted folder names: other labels") {
    const nlohmann::json sorted = eval_json({"--data", f.dir.string(), "--preprocess", "crop=28"});
    CHECK(sorted["fp32"]["top1"].get<double>() < imgs["fp32"]["top1"].get<double>());
  }
  SECTION("the same map as JSON") {
    nlohmann::json map = nlohmann::json::object();
    for (size_t i = 0; i < kClasses.size(); ++i) map[kClasses[i]] = i;
    const fs::path json = f.dir.parent_path() / "labels.json";
    haq::test::write_bytes(json, map.dump());
    const nlohmann::json j =
        eval_json({"--data", f.dir.string(), "--preprocess", "crop=28", "--labels", json.string()});
    CHECK(j["quantized"]["top1"] == npy["quantized"]["top1"]);
  }
  SECTION("one folder serves both splits: the note, once, on stderr") {
    auto r = run_haq({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data", f.dir.string(),
                      "--preprocess", "crop=28", "--calib", "8", "--samples", "8"});
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.err,
               Contains("haq: note: " + f.dir.string() + ": no train/ and test/ subfolders"));
    CHECK(r.err.find("haq: note:") == r.err.rfind("haq: note:"));
    // 8 samples evaluated, 8 calibrated: batch 8.
    CHECK_THAT(r.out, Contains("batch 8)"));
    CHECK_THAT(r.out, Contains("input        1x28x28 (C x H x W), preprocess crop=28"));
  }
  SECTION("mixed sizes without --preprocess: the error suggests the model's size") {
    CHECK_THAT(
        error_of({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data", f.dir.string()}),
        Contains("the model takes 28x28: add --preprocess resize=28,crop=28"));
  }
  SECTION("label map errors name the file and the line or folder") {
    const fs::path bad = f.dir.parent_path() / "bad.txt";
    haq::test::write_bytes(bad, "t-shirt\ntrouser\n");
    CHECK_THAT(error_of({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data",
                         f.dir.string(), "--preprocess", "crop=28", "--labels", bad.string()}),
               Contains("class folder 'ankle-boot' is not in the label map " + bad.string()));
    std::string eleven;
    for (const auto& c : kClasses) eleven += c + "\n";
    haq::test::write_bytes(bad, "cat\n" + eleven);
    CHECK_THAT(error_of({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data",
                         f.dir.string(), "--preprocess", "crop=28", "--labels", bad.string()}),
               Contains(bad.string() +
                        ": line 11: class index 10 out of range 0..9 (the model has 10 outputs)"));
    CHECK_THAT(error_of({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data",
                         "fashion-mnist", "--labels", bad.string()}),
               Contains("applies to image folders only"));
  }
}

TEST_CASE("preprocess option: bad values exit 2 naming the key", "[e2e][data][preprocess]") {
  const std::string model = source_path("models/fmnist-mlp.onnx");
  for (const auto& [spec, expected] : std::vector<std::pair<std::string, std::string>>{
           {"resize=-1", "--preprocess: resize=-1: expected an integer"},
           {"crop=big", "--preprocess: crop=big: expected an integer"},
           {"scale=0", "--preprocess: scale=0: expected a positive number"},
           {"order=rbg", "--preprocess: order=rbg: expected rgb or bgr"},
           {"channels=4", "--preprocess: channels=4: expected auto, 1 (gray) or 3 (rgb)"},
           {"mean=0.5:x", "--preprocess: mean=0.5:x"},
           {"imagenett", "unknown key 'imagenett'"},
           {"{\"resize\": -2}", "--preprocess: /resize"}}) {
    for (const char* cmd : {"eval", "export"}) {
      std::vector<std::string> args = {cmd, model, "--data", "fashion-mnist", "--preprocess", spec};
      if (std::string(cmd) == "export")
        args.insert(args.end(),
                    {"--policy", source_path("configs/policies/fmnist-resnet-w4a4-ends8.json"),
                     "--out", (haq::test::scratch_dir("e2e_pre_export") / "m.onnx").string()});
      CHECK_THAT(error_of(args), Contains(expected));
    }
  }
  // Image-only keys on IDX data are named too.
  CHECK_THAT(error_of({"eval", model, "--data", "fashion-mnist", "--preprocess", "imagenet"}),
             Contains("resize, crop, gray, rgb and order apply to image folders only"));
  // search: --preprocess, --metric and the config's keys.
  const fs::path out = haq::test::scratch_dir("e2e_pre_search");
  std::vector<std::string> search = {"search",   model,
                                     "--hw",     source_path("hardware-profiles/bismo-edge.json"),
                                     "--data",   "fashion-mnist",
                                     "--budget", "latency<=0.5x",
                                     "--out",    (out / "o").string()};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = search;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  CHECK_THAT(error_of(with({"--preprocess", "crop=x"})), Contains("--preprocess: crop=x"));
  CHECK_THAT(error_of(with({"--metric", "top3"})),
             Contains("--metric: expected top1, top5 or fidelity; got 'top3'"));
  haq::test::write_bytes(out / "c.json", R"({"preprocess": {"resize": 28, "crops": 28}})");
  CHECK_THAT(error_of(with({"--config", (out / "c.json").string()})),
             Contains("c.json: /preprocess/crops"));
  haq::test::write_bytes(out / "c.json", R"({"preprocess": "resize=x"})");
  CHECK_THAT(error_of(with({"--config", (out / "c.json").string()})),
             Contains("c.json: /preprocess: "));
  haq::test::write_bytes(out / "c.json", R"({"metric": "top2"})");
  CHECK_THAT(error_of(with({"--config", (out / "c.json").string()})), Contains("c.json: /metric"));
  CHECK_FALSE(fs::exists(out / "o"));
}

TEST_CASE("haq search and check on an image folder: preprocessing, labels and metric recorded",
          "[e2e][data][images][search]") {
  const Folder f = fmnist_folder("e2e_datasets_search", 48);
  const fs::path out = f.dir.parent_path() / "run";
  auto r = run_haq({"search",
                    source_path("models/fmnist-mobilenet.onnx"),
                    "--hw",
                    source_path("hardware-profiles/bismo-edge.json"),
                    "--data",
                    f.dir.string(),
                    "--preprocess",
                    "crop=28",
                    "--labels",
                    f.labels.string(),
                    "--metric",
                    "top5",
                    "--budget",
                    "latency<=0.6x",
                    "--algo",
                    "random",
                    "--episodes",
                    "3",
                    "--calib-samples",
                    "16",
                    "--eval-samples",
                    "32",
                    "--select-samples",
                    "0",
                    "--out",
                    out.string()});
  INFO("stderr: " << r.err);
  REQUIRE(r.exit_code == 0);  // a policy within the budget (w8a8 ends and 4-bit middles fit)
  CHECK(r.err.find("haq: note:") == r.err.rfind("haq: note:"));
  CHECK_THAT(r.err, Contains("haq: note:"));
  const auto config = nlohmann::json::parse(haq::test::read_text((out / "config.json").string()));
  CHECK(config["preprocess"]["crop"] == 28);
  CHECK(config["labels"] == f.labels.string());
  CHECK(config["metric"] == "top5");
  // config.json reads back as a config.
  auto again = run_haq({"search", "--config", (out / "config.json").string(), "--episodes", "1",
                        "--out", (out.parent_path() / "run2").string()});
  INFO("stderr: " << again.err);
  CHECK(again.exit_code <= 1);
  const auto policy = nlohmann::json::parse(haq::test::read_text((out / "policy.json").string()));
  CHECK(policy["preprocess"]["crop"] == 28);
  CHECK(policy["accuracy"]["metric"] == "top5");
  // eval --policy takes the recorded preprocessing and label map.
  auto e = run_haq({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data", f.dir.string(),
                    "--policy", (out / "policy.json").string(), "--json"});
  INFO("eval stderr: " << e.err);
  REQUIRE(e.exit_code == 0);
  const auto ej = nlohmann::json::parse(e.out);
  CHECK(ej["preprocess"]["crop"] == 28);
  CHECK(ej["labels"] == f.labels.string());
    // check takes the recorded preprocessing, labels and metric.
  auto c = run_haq({"check", (out / "policy.json").string(), "--model",
                    source_path("models/fmnist-mobilenet.onnx"), "--hw",
                    source_path("hardware-profiles/bismo-edge.json"), "--data", f.dir.string(),
                    "--json"});
  INFO("check stderr: " << c.err);
  CHECK(c.exit_code == 0);
  const auto cj = nlohmann::json::parse(c.out);
  CHECK(cj["metrics"][0]["unit"] == "% top5");
  CHECK(cj["metrics"][0]["change"] == 0.0);
}
