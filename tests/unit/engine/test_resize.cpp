// Resize and Upsample (issue 16: segmentation heads): the import form, the
// kernel against closed forms, the refused modes, the fixtures of
// scripts/make_op_fixtures.py and builder models against ONNX Runtime, and
// the quantized path with Resize between int8 layers.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "haq/core/error.h"
#include "haq/engine/engine.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "onnx_builder.h"
#include "ort_reference.h"
#include "reference_models.h"
#include "test_paths.h"

using namespace haq;
using test::ModelBuilder;

namespace {

struct ResizeSpec {
  std::string mode = "nearest";
  std::string coord;    // coordinate_transformation_mode, "" = the default
  std::string nearest;  // nearest_mode, "" = the default
  std::vector<float> scales;
  std::vector<int64_t> sizes;
  std::vector<int64_t> axes;  // opset 18
  int64_t opset = 13;
};

// x [1, 1, H, W] -> Resize -> y.
ModelBuilder resize_model(const ResizeSpec& s, int64_t H, int64_t W) {
  ModelBuilder b(s.opset);
  b.input("x", {1, 1, H, W});
  std::vector<std::string> in = {"x"};
  if (s.opset == 10) {
    b.init("scales", {static_cast<int64_t>(s.scales.size())}, s.scales);
    in.push_back("scales");
  } else {
    in.push_back("");
    if (!s.scales.empty()) {
      b.init("scales", {static_cast<int64_t>(s.scales.size())}, s.scales);
      in.push_back("scales");
    } else {
      in.push_back("");
      b.init_i64("sizes", {static_cast<int64_t>(s.sizes.size())}, s.sizes);
      in.push_back("sizes");
    }
  }
  auto& n = b.node("Resize", in, {"y"}, "up");
  test::set_string(n, "mode", s.mode);
  if (!s.coord.empty()) test::set_string(n, "coordinate_transformation_mode", s.coord);
  if (!s.nearest.empty()) test::set_string(n, "nearest_mode", s.nearest);
  if (!s.axes.empty()) test::set_ints(n, "axes", s.axes);
  b.output("y");
  return b;
}

std::vector<float> run(const ModelBuilder& b, const std::vector<float>& x) {
  engine::EngineOptions eo;
  eo.batch = 1;
  engine::Engine e(b.import(1), eo);
  return e.run_batch(nullptr, x);
}

std::vector<float> iota(int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}

std::string error_of(const ModelBuilder& b) {
  try {
    b.import(1);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::unsupported);
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("Resize imports into its canonical form: modes, per-axis scales, output sizes") {
  ResizeSpec s;
  s.scales = {1, 1, 2, 3};
  s.coord = "asymmetric";
  s.nearest = "floor";
  auto g = resize_model(s, 2, 3).import(1);
  REQUIRE(g.nodes.size() == 1);
  const auto& n = g.nodes[0];
  CHECK(n.op == "Resize");
  CHECK(n.inputs.size() == 1);
  CHECK(n.get_ints("sizes") == std::vector<int64_t>{1, 1, 4, 9});
  CHECK(n.attrs.at("scales").floats == std::vector<float>{1, 1, 2, 3});
  CHECK(n.get_string("nearest_mode") == "floor");
  CHECK(g.shapes.at("y") == std::vector<int64_t>{1, 1, 4, 9});
  // Sizes: the scale is out / in, as ONNX Runtime divides by it.
  ResizeSpec z;
  z.mode = "linear";
  z.sizes = {1, 1, 3, 8};
  auto g2 = resize_model(z, 2, 3).import(1);
  CHECK(g2.nodes[0].attrs.at("scales").floats == std::vector<float>{1, 1, 1.5f, 8.f / 3.f});
  CHECK(g2.nodes[0].get_string("coordinate_transformation_mode") == "half_pixel");
  CHECK(g2.nodes[0].get_string("nearest_mode").empty());
  // Resize-10: asymmetric coordinates and ONNX Runtime's opset-10 rounding.
  ResizeSpec t;
  t.opset = 10;
  t.scales = {1, 1, 0.5f, 2};
  auto g3 = resize_model(t, 4, 3).import(1);
  CHECK(g3.nodes[0].get_string("coordinate_transformation_mode") == "asymmetric");
  CHECK(g3.nodes[0].get_string("nearest_mode") == "simple");
  CHECK(g3.shapes.at("y") == std::vector<int64_t>{1, 1, 2, 6});
}

TEST_CASE("Resize kernel: closed forms of nearest and linear") {
  // [[0 1 2], [3 4 5]] doubled: asymmetric + floor repeats every element.
  ResizeSpec s;
  s.scales = {1, 1, 2, 2};
  s.coord = "asymmetric";
  s.nearest = "floor";
  auto y = run(resize_model(s, 2, 3), iota(6));
  REQUIRE(y.size() == 24);
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < 6; ++c) CHECK(y[r * 6 + c] == static_cast<float>((r / 2) * 3 + c / 2));
  // Linear, half_pixel, x2 of the row [0 4]: sources -0.25, 0.25, 0.75, 1.25
  // clamp to 0, 0.25, 0.75, 1 -> 0, 1, 3, 4.
  ResizeSpec l;
  l.mode = "linear";
  l.scales = {1, 1, 1, 2};
  auto yl = run(resize_model(l, 1, 2), {0.f, 4.f});
  CHECK(yl == std::vector<float>{0.f, 1.f, 3.f, 4.f});
  // align_corners, 3 -> 5 on [0 2 4]: sources 0, 0.5, 1, 1.5, 2 -> 0 1 2 3 4.
  l.coord = "align_corners";
  l.scales.clear();
  l.sizes = {1, 1, 1, 5};
  auto ya = run(resize_model(l, 1, 3), {0.f, 2.f, 4.f});
  REQUIRE(ya.size() == 5);
  for (int k = 0; k < 5; ++k) CHECK(ya[k] == Approx(k).margin(1e-6));
  // Nearest modes at the half-way point: x4 down to x2 with asymmetric,
  // scale 0.4 on 5 columns: sources 0 and 2.5 -> round_prefer_floor 2, _ceil 3.
  ResizeSpec n;
  n.coord = "asymmetric";
  n.scales = {1, 1, 1, 0.4f};
  n.nearest = "round_prefer_floor";
  CHECK(run(resize_model(n, 1, 5), iota(5)) == std::vector<float>{0.f, 2.f});
  n.nearest = "round_prefer_ceil";
  CHECK(run(resize_model(n, 1, 5), iota(5)) == std::vector<float>{0.f, 3.f});
  n.nearest = "ceil";
  CHECK(run(resize_model(n, 1, 5), iota(5)) == std::vector<float>{0.f, 3.f});
  // Opset 18: axes name the resized dims; scales hold one entry per axis.
  ResizeSpec a;
  a.opset = 18;
  a.axes = {3, 2};
  a.scales = {3, 1};
  a.coord = "asymmetric";
  a.nearest = "floor";
  CHECK(run(resize_model(a, 1, 2), {5.f, 7.f}) == std::vector<float>{5.f, 5.f, 5.f, 7.f, 7.f, 7.f});
}

TEST_CASE("Resize refuses what it does not run, naming the node and the mode") {
  ResizeSpec s;
  s.scales = {1, 1, 2, 2};
  s.mode = "cubic";
  auto msg = error_of(resize_model(s, 2, 2));
  CHECK_THAT(msg, Catch::Contains("node 'up' (Resize)") && Catch::Contains("cubic"));
  s.mode = "linear";
  s.coord = "tf_crop_and_resize";
  CHECK_THAT(error_of(resize_model(s, 2, 2)), Catch::Contains("tf_crop_and_resize"));
  s.coord = "tf_half_pixel_for_nn";
  CHECK_THAT(error_of(resize_model(s, 2, 2)), Catch::Contains("tf_half_pixel_for_nn"));
  s.coord = "align_corners";  // 0.6 x 4 = 2.4: ONNX's reference and ONNX Runtime disagree
  s.scales = {1, 1, 0.6f, 0.6f};
  CHECK_THAT(error_of(resize_model(s, 2, 4)), Catch::Contains("fractional"));
  s.coord.clear();
  s.scales = {1, 2, 2, 2};  // the channels
  CHECK_THAT(error_of(resize_model(s, 2, 2)), Catch::Contains("spatial dims"));
  s.scales = {1, 1, 2, 2};
  s.opset = 18;
  {
    auto b = resize_model(s, 2, 2);
    test::set_int(*b.graph().mutable_node(0), "antialias", 1);
    CHECK_THAT(error_of(b), Catch::Contains("antialias"));
  }
  {
    auto b = resize_model(s, 2, 2);
    test::set_string(*b.graph().mutable_node(0), "keep_aspect_ratio_policy", "not_larger");
    CHECK_THAT(error_of(b), Catch::Contains("keep_aspect_ratio_policy 'not_larger'"));
  }
}

TEST_CASE("Resize and Upsample fixtures (opsets 9, 10, 11, 13) and builder models equal ONNX Runtime") {
  test::require_onnx_runtime();
  const auto& d = test::fashion_mnist_test();
  const int64_t B = 16;
  std::vector<int64_t> idx;
  for (int64_t i = 0; i < B; ++i) idx.push_back(i * 53);
  auto dir = test::scratch_dir("resize_ort");
  for (const char* f : {"seg_resize_op13", "seg_resize_op11", "seg_resize_op10", "seg_resize_op9"}) {
    const std::string path = test::source_path(std::string("tests/data/model/") + f + ".onnx");
    INFO(path);
    model::ImportOptions io;
    io.batch = B;
    auto g = model::import_onnx(path, io);
    int resizes = 0;
    for (const auto& n : g.nodes) resizes += n.op == "Resize" || n.op == "Upsample";
    CHECK(resizes == 2);
    std::vector<float> input(static_cast<size_t>(B * d.sample_elems()));
    data::to_model_layout(d, idx, g.inputs[0].shape, input.data());
    engine::EngineOptions eo;
    eo.batch = B;
    engine::Engine e(g, eo);
    auto ours = e.run_fp32(d, idx);
    auto ref = test::run_onnx_runtime(path, input, g.inputs[0].shape, dir);
    REQUIRE(ref.size() == ours.size());
    CHECK(test::worst_relative_difference(ours, ref, 10) <= 1e-4);
  }
  // Every coordinate and nearest mode on odd sizes, up and down, against ORT.
  struct Case {
    std::string mode, coord, nearest;
    std::vector<float> scales;
    std::vector<int64_t> sizes;
  };
  const std::vector<Case> cases = {
      {"nearest", "half_pixel", "round_prefer_floor", {1, 1, 1.7f, 0.6f}, {}},
      {"nearest", "pytorch_half_pixel", "round_prefer_ceil", {}, {1, 1, 9, 4}},
      {"nearest", "align_corners", "floor", {}, {1, 1, 3, 11}},
      {"nearest", "asymmetric", "ceil", {1, 1, 2.5f, 1.5f}, {}},
      {"linear", "half_pixel", "", {1, 1, 0.7f, 2.3f}, {}},
      {"linear", "pytorch_half_pixel", "", {}, {1, 1, 1, 13}},
      {"linear", "align_corners", "", {}, {1, 1, 11, 3}},
      {"linear", "asymmetric", "", {1, 1, 3.f, 0.5f}, {}},
  };
  const int64_t H = 5, W = 7;
  std::vector<float> x(H * W);
  for (int64_t i = 0; i < H * W; ++i) x[i] = std::sin(0.7f * static_cast<float>(i)) * 3.f;
  int k = 0;
  for (const auto& c : cases) {
    for (int64_t opset : {13, 18}) {
      ResizeSpec s;
      s.mode = c.mode;
      s.coord = c.coord;
      s.nearest = c.nearest;
      s.scales = c.scales;
      s.sizes = c.sizes;
      s.opset = opset;
      INFO(c.mode << " " << c.coord << " " << c.nearest << " opset " << opset);
      auto b = resize_model(s, H, W);
      const auto file = dir / ("case" + std::to_string(k++) + ".onnx");
      std::ofstream(file, std::ios::binary) << b.bytes();
      auto ours = run(b, x);
      auto ref = test::run_onnx_runtime(file.string(), x, {1, 1, H, W}, dir);
      REQUIRE(ref.size() == ours.size());
      for (size_t i = 0; i < ours.size(); ++i) CHECK(ours[i] == Approx(ref[i]).margin(1e-5));
    }
  }
}

TEST_CASE("Resize between int8 layers: unsigned quantizers after ReLU, W8A8 close to fp32") {
  const std::string path = test::source_path("tests/data/model/seg_resize_op13.onnx");
  const int64_t B = 100;
  model::ImportOptions io;
  io.batch = B;
  auto g = model::import_onnx(path, io);
  REQUIRE(g.layers.size() == 5);
  const auto& d = test::fashion_mnist_test();
  std::vector<int64_t> calib, eval;
  for (int64_t i = 0; i < 200; ++i) calib.push_back(5000 + i * 7);
  for (int64_t i = 0; i < 1000; ++i) eval.push_back(i);
  engine::EngineOptions eo;
  eo.batch = B;
  engine::Engine e(g, eo);
  e.calibrate(d, calib);
  const auto cal = e.calibration();
  // d1 reads Resize(nearest) of a ReLU, d2 reads Concat(Resize(linear), image): both non-negative.
  CHECK(cal[2].is_unsigned);
  CHECK(cal[3].is_unsigned);
  const quant::Policy w8a8 = quant::uniform_policy(g, 8, 8);
  const auto plan = e.plan(w8a8);
  for (const auto& lp : plan.layers) CHECK(lp.quantized);
  engine::PolicyEvaluator ev(e, d, eval);
  const auto fp = ev.fp32();
  const auto q8 = ev.evaluate(w8a8);
  const auto q4 = ev.evaluate(quant::uniform_policy(g, 4, 4));
  INFO("fp32 " << fp.top1 << " %, W8A8 " << q8.top1 << " % (fidelity " << q8.fidelity << " %), W4A4 "
               << q4.top1 << " %");
  CHECK(fp.top1 > 60.0);  // trained for one epoch (67 % on the 10k test images in PyTorch)
  CHECK(std::fabs(q8.top1 - fp.top1) <= 1.0);
  CHECK(q8.fidelity >= 97.0);
  CHECK(q4.fidelity < q8.fidelity);  // the quantizers are really in the path
}
