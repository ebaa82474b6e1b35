// The measured CSV reader, predicted-vs-measured comparisons, and fitting a
// profile to measurements (haq fit-profile), against BitFusion's published
// sweep (tests/data/hw/bitfusion-16x32-192-*.csv) and synthetic measurements.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <map>

#include <fmt/format.h>

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

namespace {

// The sweep rows of one configuration (rows x cols at bw bits/cycle) of one
// network, as measured cases (tests/data/hw/bitfusion-sweep.csv, -layers.csv).
struct SweepConfig {
  int64_t rows, cols, bw, wbuf_bytes, obuf_bytes, ibuf_bytes;
};

std::vector<hw::MeasuredCase> sweep_cases(const SweepConfig& cfg, const std::string& network) {
  std::map<std::string, std::vector<std::string>> layers;
  for (const auto& r : test::csv_rows("tests/data/hw/bitfusion-layers.csv")) layers[r[0] + "/" + r[1]] = r;
  std::vector<hw::MeasuredCase> out;
  for (const auto& r : test::csv_rows("tests/data/hw/bitfusion-sweep.csv")) {
    if (std::stoll(r[0]) != cfg.rows || std::stoll(r[1]) != cfg.cols || std::stoll(r[16]) != cfg.bw ||
        r[4] != network)
      continue;
    const auto& l = layers.at(r[4] + "/" + r[5]);
    hw::MeasuredCase c;
    c.label = r[5];
    const bool fc = l[1].find("MatMul") != std::string::npos;
    c.layer = hw::layer_from_shape(r[5], fc ? "fc" : "conv", std::stoll(l[5]), std::stoll(l[6]), std::stoll(l[2]),
                                   std::stoll(l[4]), std::stoll(l[3]), std::stoll(l[3]), 1);
    c.w_bits = std::stoi(l[7]);
    c.a_bits = std::stoi(l[8]);
    c.io.input_from_layer = l[9] != "1";
    c.batch = std::stoll(r[20]);
    c.measured = std::stod(r[6]);
    out.push_back(c);
  }
  return out;
}

}  // namespace

TEST_CASE("fit-profile validation: on every sweep configuration, fit AlexNet from a wrong start, predict ResNet-18") {
  // Start: twice the columns and 2.67x (192 -> 512) or 2x the bandwidth.
  for (const SweepConfig cfg : {SweepConfig{16, 32, 192, 65536, 16384, 32768}, SweepConfig{16, 32, 4096, 65536, 16384, 32768},
                                SweepConfig{16, 64, 4096, 131072, 32768, 65536},
                                SweepConfig{16, 128, 4096, 262144, 65536, 131072},
                                SweepConfig{16, 256, 4096, 524288, 131072, 262144}}) {
    hw::HardwareProfile start = sweep_profile();
    start.bit_fusion.cols = 2 * cfg.cols;
    start.memory.dram_bits_per_cycle = cfg.bw == 192 ? 512 : 2 * cfg.bw;
    start.memory.weight_buffer_bits = 8 * cfg.wbuf_bytes;
    start.memory.output_buffer_bits = 8 * cfg.obuf_bytes;
    start.memory.input_buffer_bits = 8 * cfg.ibuf_bytes;
    const auto alexnet = sweep_cases(cfg, "AlexNet"), resnet = sweep_cases(cfg, "RESNET-18");
    REQUIRE(alexnet.size() == 13);
    REQUIRE(resnet.size() == 17);
    const hw::FitResult r = hw::fit_profile(start, alexnet, true);
    const hw::Comparison c = hw::compare_measured(resnet, true, r.profile);
    const std::string summary = fmt::format(
        "{}x{} @{}: fitted {}x{} @{} overhead {}/{}; AlexNet fit median {:.2f}% worst {:.2f}%, 5-fold CV median "
        "{:.2f}% worst {:.2f}%; ResNet-18 median {:.2f}% worst {:.2f}% ({})",
        cfg.rows, cfg.cols, cfg.bw, r.profile.bit_fusion.rows, r.profile.bit_fusion.cols,
        r.profile.memory.dram_bits_per_cycle, r.profile.overhead.cycles_per_layer, r.profile.overhead.cycles_per_tile,
        100 * r.fit.median_abs_error, 100 * r.fit.worst_abs_error, 100 * r.cv_median_abs_error,
        100 * r.cv_worst_abs_error, 100 * c.median_abs_error, 100 * c.worst_abs_error, c.worst_label);
    WARN(summary);  // the figures of docs/hardware-profiles.md, "Validation of the fit"
    CHECK(c.median_abs_error <= 0.05);
    CHECK(c.worst_abs_error <= 0.20);
    CHECK(r.cv_median_abs_error <= 0.05);
  }
}

namespace {

// Every test layer at w = a = each of `bits`, "measured" on `truth`: latency
// in cycles, or in seconds with the energy.
std::vector<hw::MeasuredCase> simulated_cases(const hw::HardwareProfile& truth, std::vector<int> bits,
                                              bool in_cycles) {
  std::vector<hw::MeasuredCase> cases;
  int line = 2;
  for (const model::Layer& l : test::test_layers())
    for (int b : bits) {
      hw::MeasuredCase c;
      c.line = line++;
      c.label = l.name;
      c.layer = l;
      c.w_bits = c.a_bits = b;
      const hw::LayerCost cost = hw::simulate_layer(l, b, b, truth);
      REQUIRE(cost.fits);
      if (in_cycles) {
        c.measured = double(cost.cycles);
      } else {
        c.measured = cost.latency_s;
        c.has_energy = true;
        c.energy_pj = cost.energy_pj;
      }
      cases.push_back(c);
    }
  return cases;
}

}  // namespace

TEST_CASE("fit-profile: synthetic bit-serial measurements in seconds recover overheads, clock and energy") {
  // The "device": 8x256x8 at 64 bits/cycle, 200 MHz, 3000 cycles per layer
  // and 40 per tile, energies x2 (compute), x0.5 (SRAM), x1.5 (DRAM).
  hw::HardwareProfile truth = test::bit_serial_profile();
  truth.overhead = {3000, 40};
  truth.energy = {20, 0.05, 0.05, 0.05, 30};
  const std::vector<hw::MeasuredCase> cases = simulated_cases(truth, {2, 4, 8}, false);
  hw::HardwareProfile start = test::bit_serial_profile();
  start.bit_serial = {8, 128, 16, false, {}};
  start.memory.dram_bits_per_cycle = 128;
  start.clock_mhz = 150;
  const hw::FitResult r = hw::fit_profile(start, cases, false);
  INFO(r.profile.bit_serial.dm << "x" << r.profile.bit_serial.dk << "x" << r.profile.bit_serial.dn << " @"
                               << r.profile.memory.dram_bits_per_cycle << " " << r.profile.clock_mhz << " MHz overhead "
                               << r.profile.overhead.cycles_per_layer << "/" << r.profile.overhead.cycles_per_tile
                               << " core " << r.profile.energy.core_pj_per_cycle << " sram "
                               << r.profile.energy.sram_weight_pj_per_bit << " dram " << r.profile.energy.dram_pj_per_bit
                               << "; fit median " << r.fit.median_abs_error << " worst " << r.fit.worst_abs_error
                               << " CV " << r.cv_median_abs_error << "/" << r.cv_worst_abs_error << " energy "
                               << r.fit.median_abs_energy_error << "/" << r.fit.worst_abs_energy_error);
  CHECK(r.fit.median_abs_error <= 0.01);
  CHECK(r.fit.worst_abs_error <= 0.05);
  CHECK(r.cv_median_abs_error <= 0.05);
  CHECK(r.fit.median_abs_energy_error <= 0.01);
  CHECK(std::find(r.fitted.begin(), r.fitted.end(), "clock_mhz") != r.fitted.end());
  // Measured (2026-12-03): every parameter of the device comes back, the errors are rounding.
  CHECK(r.profile.bit_serial.dm == 8);
  CHECK(r.profile.bit_serial.dk == 256);
  CHECK(r.profile.bit_serial.dn == 8);
  CHECK(r.profile.memory.dram_bits_per_cycle == 64);
  CHECK(r.profile.clock_mhz == Approx(200).epsilon(1e-9));
  CHECK(r.profile.overhead.cycles_per_layer == 3000);
  CHECK(r.profile.overhead.cycles_per_tile == 40);
  CHECK(r.profile.energy.core_pj_per_cycle == Approx(20).epsilon(1e-6));
  CHECK(r.profile.energy.sram_input_pj_per_bit == Approx(0.05).epsilon(1e-6));
  CHECK(r.profile.energy.dram_pj_per_bit == Approx(30).epsilon(1e-6));
  CHECK(r.fit.worst_abs_error < 1e-9);
  CHECK(r.cv_worst_abs_error < 1e-9);
  CHECK(r.fit.worst_abs_energy_error < 1e-9);
}

TEST_CASE("table profile from a measured CSV: every row predicted exactly") {
  const std::string path = write_csv("board.csv",
                                     "# shape rows with labels, cycles\n"
                                     "layer,kind,in_c,out_c,kernel,stride,out_h,w_bits,a_bits,cycles,energy_pj\n"
                                     "stem,conv,3,32,3,2,112,8,8,1234567,5.5e6\n"
                                     "stem,conv,3,32,3,2,112,4,4,345679,1.25e6\n"
                                     "head,fc,1280,1000,,,,4,8,98765,3.3e5\n");
  const hw::MeasuredSet set = hw::read_measured_csv(path);
  hw::HardwareProfile base = test::bit_fusion_profile();
  base.clock_mhz = 333.3;  // cycles -> seconds -> cycles must still be exact
  std::string text;
  const hw::HardwareProfile table = hw::table_from_measured(base, set, "board-table.csv", text);
  CHECK(table.architecture == hw::Architecture::table);
  CHECK_THAT(text, Catch::StartsWith("layer,w_bits,a_bits,latency_s,energy_pj\nstem,8,8,"));
  const hw::Comparison c = hw::compare_measured(hw::resolve_measured(set, nullptr), true, table);
  REQUIRE(c.rows.size() == 3);
  for (const auto& row : c.rows) {
    CHECK(row.predicted == row.measured);
    CHECK(row.predicted_energy_pj == row.measured_energy_pj);
  }
  // Written and read back as a table profile's CSV: the same entries.
  const std::string csv = write_csv("board-table.csv", text);
  nlohmann::json j = hw::profile_to_json(table);
  j["sources"] = {"test"};
  j["table"]["csv"] = csv;
  const hw::HardwareProfile back = hw::profile_from_json(parse_json(j.dump(), "t.json", ErrorKind::profile), "");
  REQUIRE(back.table.entries.size() == 3);
  for (const auto& [key, e] : table.table.entries) {
    CHECK(back.table.entries.at(key).latency_s == e.latency_s);
    CHECK(back.table.entries.at(key).energy_pj == e.energy_pj);
  }
  // A duplicate row cannot be a table.
  const hw::MeasuredSet dup = hw::read_measured_csv(write_csv("dup.csv", "layer,w_bits,a_bits,cycles\nx,4,4,10\nx,4,4,11\n"));
  CHECK_THROWS_WITH(hw::table_from_measured(base, dup, "t.csv", text), Catch::Contains("line 3: a second row for layer 'x' w4a4"));
}

TEST_CASE("fit-profile: a staged bit-serial device's channels scale with the fitted bandwidth") {
  // The "device": BISMO's stages on 8x256x8, 64-bit read and write channels
  // behind 84 DRAM bits/cycle, 200 MHz; the start has every bandwidth halved.
  hw::HardwareProfile truth = test::bit_serial_profile();
  truth.memory.dram_bits_per_cycle = 84;
  truth.memory.output_bits = 32;
  truth.bit_serial.staged = true;
  truth.bit_serial.stages = {64, 64, 32, 13, 3, 32};
  const std::vector<hw::MeasuredCase> cases = simulated_cases(truth, {2, 8}, true);
  hw::HardwareProfile start = truth;
  start.memory.dram_bits_per_cycle = 42;
  start.bit_serial.stages.fetch_bits_per_cycle = start.bit_serial.stages.result_bits_per_cycle = 32;
  // Only the bandwidth (and the overheads) free, no cross-validation: the
  // staged mapper is slow under the sanitizers, and the dims are another test's.
  hw::FitOptions options;
  options.folds = 0;
  options.fit_dims = false;
  const hw::FitResult r = hw::fit_profile(start, cases, true, options);
  INFO("dram " << r.profile.memory.dram_bits_per_cycle << " fetch " << r.profile.bit_serial.stages.fetch_bits_per_cycle
               << " result " << r.profile.bit_serial.stages.result_bits_per_cycle << "; fit median "
               << r.fit.median_abs_error << " worst " << r.fit.worst_abs_error);
  CHECK(std::find(r.fitted.begin(), r.fitted.end(), "bit_serial/stages/fetch_bits_per_cycle") != r.fitted.end());
  CHECK(r.profile.bit_serial.staged);
  CHECK(r.profile.memory.dram_bits_per_cycle == 84);
  CHECK(r.profile.bit_serial.stages.fetch_bits_per_cycle == 64);
  CHECK(r.profile.bit_serial.stages.result_bits_per_cycle == 64);
  CHECK(r.fit.worst_abs_error < 1e-9);
}
