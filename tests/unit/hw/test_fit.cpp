// The measured CSV reader, predicted-vs-measured comparisons, and fitting a
// profile to measurements (haq fit-profile), against BitFusion's published
// sweep (tests/data/hw/bitfusion-16x32-192-*.csv) and synthetic measurements.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "haq/core/error.h"
#include "haq/core/json_reader.h"
#include "haq/hw/fit.h"
#include "haq/hw/measured.h"
#include "hw_test_util.h"
#include "test_paths.h"

using namespace haq;

namespace {

const std::string kAlexNet = test::source_path("tests/data/hw/bitfusion-16x32-192-alexnet.csv");
const std::string kResNet18 = test::source_path("tests/data/hw/bitfusion-16x32-192-resnet18.csv");

std::string write_csv(const std::string& name, const std::string& text) {
  const auto path = test::scratch_dir("hw_fit") / name;
  std::ofstream(path) << text;
  return path.string();
}

// The error a malformed CSV raises: its "WHERE: WHAT".
std::string csv_error(const std::string& text) {
  const std::string path = write_csv("bad.csv", text);
  try {
    hw::read_measured_csv(path);
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::data);
    CHECK(e.file() == path);
    return e.where() + ": " + e.message();
  }
  FAIL("no error for:\n" << text);
  return "";
}

std::vector<hw::MeasuredCase> cases_of(const std::string& path) {
  return hw::resolve_measured(hw::read_measured_csv(path), nullptr);
}

// BitFusion's sweep configuration 16x32 at 192 bits/cycle, 64/32/16 KB, batch 16.
hw::HardwareProfile sweep_profile() {
  hw::HardwareProfile p = test::bit_fusion_profile();
  p.batch = 16;
  p.w_bits = p.a_bits = {2, 8};
  return p;
}

}  // namespace

TEST_CASE("measured CSV: BitFusion's sweep rows by shape, in cycles") {
  const hw::MeasuredSet a = hw::read_measured_csv(kAlexNet);
  CHECK(a.in_cycles);
  CHECK_FALSE(a.has_energy);
  REQUIRE(a.rows.size() == 13);
  const hw::MeasuredRow& conv1 = a.rows[0];
  CHECK(conv1.by_shape);
  CHECK(conv1.first);
  CHECK(conv1.batch == 16);
  CHECK(conv1.cycles == 3746423);
  CHECK(conv1.shape.kernel_h == 11);
  CHECK(conv1.shape.out_h == 55);
  CHECK(conv1.shape.macs == 55 * 55 * 96 * 3 * 11 * 11);
  CHECK(a.rows.back().shape.kind == model::LayerKind::gemm);
  CHECK(hw::read_measured_csv(kResNet18).rows.size() == 17);
}

TEST_CASE("simulate vs measured: the sweep rows of 16x32 at 192 bits/cycle are exact") {
  for (const auto& file : {kAlexNet, kResNet18}) {
    const hw::Comparison c = hw::compare_measured(cases_of(file), true, sweep_profile());
    INFO(file);
    CHECK(c.median_abs_error == 0);
    CHECK(c.worst_abs_error == 0);
    for (const auto& r : c.rows) CHECK(r.predicted == r.measured);
  }
  // A wrong profile: the errors are signed, (predicted - measured) / measured.
  hw::HardwareProfile wide = sweep_profile();
  wide.bit_fusion.cols = 64;
  const hw::Comparison c = hw::compare_measured(cases_of(kAlexNet), true, wide);
  CHECK(c.rows[0].error < 0);  // twice the columns: fewer cycles
  CHECK(c.median_abs_error > 0.2);
  const std::string text = hw::format_comparison(c);
  CHECK(text.find("conv1_a/Convolution") != std::string::npos);
  CHECK(text.find("latency error: median |error|") != std::string::npos);
}

TEST_CASE("measured CSV: malformed files name the line and column") {
  CHECK_THAT(csv_error("layer,w_bits,a_bits,latency_s\n/fc1/Gemm,4,4,abc\n"),
             Catch::Contains("line 2, column 4 (latency_s): expected a positive number, got 'abc'"));
  CHECK_THAT(csv_error("layer,w_bits,a_bits,latency_s\n/fc1/Gemm,9,4,1e-3\n"),
             Catch::Contains("line 2, column 2 (w_bits): expected an integer in 1..8, got '9'"));
  CHECK_THAT(csv_error("# comment\nlayer,w_bits,latency_s\n/fc1/Gemm,4,1e-3\n"),
             Catch::Contains("line 2: missing column 'a_bits'"));
  CHECK_THAT(csv_error("layer,w_bits,a_bits,latency,cycles\n"),
             Catch::Contains("line 1, column 4: unknown column 'latency'"));
  CHECK_THAT(csv_error("layer,w_bits,a_bits,latency_s,cycles\nx,4,4,1,1\n"),
             Catch::Contains("exactly one of the columns 'latency_s' and 'cycles'"));
  CHECK_THAT(csv_error("layer,w_bits,a_bits,cycles\nx,4,4\n"), Catch::Contains("line 2: expected 4 columns"));
  CHECK_THAT(csv_error("layer,w_bits,a_bits,cycles\n"), Catch::Contains("no measurement rows"));
  CHECK_THAT(csv_error("# only a comment\n\n"), Catch::Contains("empty file"));
  CHECK_THAT(csv_error("kind,in_c,out_c,kernel,stride,out_h,w_bits,a_bits,cycles\nconv3d,3,8,3,1,8,8,8,100\n"),
             Catch::Contains("line 2, column 1 (kind): expected conv, dwconv or fc, got 'conv3d'"));
  CHECK_THAT(csv_error("kind,in_c,out_c,kernel,stride,w_bits,a_bits,cycles\nconv,3,8,3,1,8,8,100\n"),
             Catch::Contains("a conv row needs the column 'out_h'"));
  CHECK_THAT(csv_error("layer,in_c,w_bits,a_bits,cycles\nx,3,8,8,100\n"),
             Catch::Contains("shape column 'in_c' without a 'kind' column"));
  CHECK_THAT(csv_error("kind,in_c,out_c,groups,kernel,stride,out_h,w_bits,a_bits,cycles\nconv,6,8,4,3,1,8,8,8,100\n"),
             Catch::Contains("line 2, column 4 (groups): groups 4 must divide in_c 6 and out_c 8"));
  // A named row needs a model, and a layer of it.
  const std::string named = write_csv("named.csv", "layer,w_bits,a_bits,cycles\n/fc1/Gemm,4,4,100\n");
  CHECK_THROWS_WITH(hw::resolve_measured(hw::read_measured_csv(named), nullptr),
                    Catch::Contains("line 2, column layer: row names layer '/fc1/Gemm' but no model was given"));
  model::Graph g = test::graph_of({test::fc_layer("/fc2/Gemm", 16, 8)});
  CHECK_THROWS_WITH(hw::resolve_measured(hw::read_measured_csv(named), &g, "m.onnx"),
                    Catch::Contains("no quantizable layer '/fc1/Gemm' in m.onnx (did you mean '/fc2/Gemm'?)"));
}

TEST_CASE("overheads: cycles per layer and per tile add to the mapper's cycles, optional in the JSON") {
  const model::Layer l = test::conv_layer("c", 64, 64, 3, 1, 28);
  for (hw::HardwareProfile p : {test::bit_serial_profile(), test::bit_fusion_profile()}) {
    const hw::LayerCost base = hw::simulate_layer(l, 4, 4, p);
    p.overhead = {1000, 7};
    p.sources = {"test"};
    const hw::LayerCost c = hw::simulate_layer(l, 4, 4, p);
    INFO(hw::to_string(p.architecture));
    CHECK(c.mapping.tiles >= 1);
    CHECK(c.mapping.tiles == base.mapping.tiles);
    CHECK(c.cycles == base.cycles + 1000 + 7 * c.mapping.tiles);
    CHECK(c.stall_cycles == base.stall_cycles + 1000 + 7 * c.mapping.tiles);
    CHECK(c.compute_cycles == base.compute_cycles);
    CHECK(c.energy_pj == base.energy_pj);
    // The JSON has the section only when set, and reads it back.
    nlohmann::json j = hw::profile_to_json(p);
    CHECK(j["overhead"]["cycles_per_tile"] == 7);
    const hw::HardwareProfile back = hw::profile_from_json(parse_json(j.dump(), "p.json", ErrorKind::profile), "");
    CHECK(back.overhead.cycles_per_layer == 1000);
    CHECK(back.overhead.cycles_per_tile == 7);
    p.overhead = {};
    CHECK_FALSE(hw::profile_to_json(p).contains("overhead"));
    j["overhead"]["cycles_per_layer"] = -1;
    CHECK_THROWS_WITH(hw::profile_from_json(parse_json(j.dump(), "p.json", ErrorKind::profile), ""),
                      Catch::Contains("/overhead/cycles_per_layer"));
  }
}

TEST_CASE("fit-profile: from 16x64 at 512 bits/cycle, AlexNet's rows recover BitFusion's 16x32 at 192") {
  hw::HardwareProfile start = sweep_profile();
  start.bit_fusion.cols = 64;
  start.memory.dram_bits_per_cycle = 512;
  const auto alexnet = cases_of(kAlexNet);
  const hw::FitResult r = hw::fit_profile(start, alexnet, true);
  const hw::Comparison resnet = hw::compare_measured(cases_of(kResNet18), true, r.profile);
  INFO("fitted " << r.profile.bit_fusion.rows << "x" << r.profile.bit_fusion.cols << " @"
                 << r.profile.memory.dram_bits_per_cycle << " overhead " << r.profile.overhead.cycles_per_layer << "/"
                 << r.profile.overhead.cycles_per_tile << "; fit median " << r.fit.median_abs_error << " worst "
                 << r.fit.worst_abs_error << "; CV median " << r.cv_median_abs_error << " worst "
                 << r.cv_worst_abs_error << "; ResNet-18 median " << resnet.median_abs_error << " worst "
                 << resnet.worst_abs_error << " (" << resnet.worst_label << "); simulations " << r.simulations);
  CHECK(r.folds == 5);
  CHECK(r.profile.bit_fusion.rows == 16);
  CHECK(r.profile.bit_fusion.cols == 32);
  // The issue's acceptance bounds on the other network.
  CHECK(resnet.median_abs_error <= 0.05);
  CHECK(resnet.worst_abs_error <= 0.20);
  // Measured (2026-12-03): the fit lands on the sweep's configuration itself,
  // where haq's simulator is exact, so every error is 0.
  CHECK(r.profile.memory.dram_bits_per_cycle == 192);
  CHECK(r.profile.overhead.cycles_per_layer == 0);
  CHECK(r.profile.overhead.cycles_per_tile == 0);
  CHECK(r.fit.median_abs_error == 0);
  CHECK(r.fit.worst_abs_error == 0);
  CHECK(resnet.median_abs_error == 0);
  CHECK(resnet.worst_abs_error == 0);
  CHECK(r.cv_median_abs_error == 0);
  CHECK(r.cv_worst_abs_error == 0);
  CHECK(std::find(r.fitted.begin(), r.fitted.end(), "bit_fusion/cols") != r.fitted.end());
  const std::string line = hw::fit_source_line(r, "alexnet.csv", true);
  CHECK_THAT(line, Catch::Contains("to 13 rows of alexnet.csv (latency in cycles): median |error| 0.00%, worst 0.00%; "
                                   "5-fold cross-validated median |error| 0.00%, worst 0.00%"));
}
