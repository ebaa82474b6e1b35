// haq's bit-fusion simulator against BitFusion's own (the published sweep of
// its authors' simulator, tests/data/hw/bitfusion-sweep.csv): every layer of
// AlexNet-WRPN and ResNet-18-WRPN on the five configurations of the sweep.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include "haq/core/files.h"
#include "haq/hw/simulate.h"
#include "hw_test_util.h"
#include "test_paths.h"

using namespace haq;

namespace {

struct RefLayer {
  model::Layer layer;
  int w_bits = 8, a_bits = 8;
  bool first = false;
};

std::map<std::string, RefLayer> reference_layers() {
  std::map<std::string, RefLayer> out;
  for (const auto& r : test::csv_rows("tests/data/hw/bitfusion-layers.csv")) {
    REQUIRE(r.size() == 10);
    const int64_t k = std::stoll(r[2]), o = std::stoll(r[3]), s = std::stoll(r[4]);
    const int64_t ic = std::stoll(r[5]), oc = std::stoll(r[6]);
    RefLayer l;
    if (r[1].find("MatMul") != std::string::npos) {
      l.layer = test::fc_layer(r[1], ic, oc);
    } else {
      l.layer = test::conv_layer(r[1], ic, oc, k, s, o * s);
      l.layer.out_h = l.layer.out_w = o;
      l.layer.macs = o * o * l.layer.weight_params;
    }
    l.w_bits = std::stoi(r[7]);
    l.a_bits = std::stoi(r[8]);
    l.first = r[9] == "1";
    out[r[0] + "/" + r[1]] = l;
  }
  return out;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

TEST_CASE("bit-fusion reproduces BitFusion's simulator on its published sweep") {
  const auto layers = reference_layers();
  REQUIRE(layers.size() == 30);
  struct Errors {
    std::vector<double> cycles, dram;
    double worst = 0;
    std::string worst_layer;
  };
  std::map<std::string, Errors> by_config;
  const auto rows = test::csv_rows("tests/data/hw/bitfusion-sweep.csv");
  REQUIRE(rows.size() == 150);
  for (const auto& r : rows) {
    REQUIRE(r.size() == 21);
    const std::string key = r[4] + "/" + r[5];
    REQUIRE(layers.count(key));
    const RefLayer& ref = layers.at(key);
    hw::HardwareProfile p = test::bit_fusion_profile();
    p.bit_fusion.rows = std::stoll(r[0]);
    p.bit_fusion.cols = std::stoll(r[1]);
    p.memory.dram_bits_per_cycle = std::stoll(r[16]);
    // The sweep's buffer "bits" are bytes.
    p.memory.weight_buffer_bits = 8 * std::stoll(r[17]);
    p.memory.output_buffer_bits = 8 * std::stoll(r[18]);
    p.memory.input_buffer_bits = 8 * std::stoll(r[19]);
    p.batch = std::stoll(r[20]);
    p.w_bits = p.a_bits = {2, 8};
    hw::LayerIo io;
    io.input_from_layer = !ref.first;
    const hw::LayerCost c = hw::simulate_layer(ref.layer, ref.w_bits, ref.a_bits, p, io);
    INFO(key << " on " << r[0] << "x" << r[1] << " at " << r[16] << " bits/cycle");
    REQUIRE(c.fits);
    const double cycles = std::stod(r[6]);
    const double dram = std::stod(r[14]) + std::stod(r[15]);
    const double e = (double(c.cycles) - cycles) / cycles;
    const double d = (double(c.dram_read_bits + c.dram_write_bits) - dram) / dram;
    Errors& er = by_config[r[0] + "x" + r[1] + " @" + r[16]];
    er.cycles.push_back(std::abs(e));
    er.dram.push_back(std::abs(d));
    if (std::abs(e) > er.worst) er.worst = std::abs(e), er.worst_layer = key;
    // Exact on every layer: the same loop nest, tile candidates and mapper.
    CHECK(c.cycles == std::stoll(r[6]));
    CHECK(c.stall_cycles == std::stoll(r[7]));
    CHECK(c.dram_read_bits == std::stoll(r[14]));
    CHECK(c.dram_write_bits == std::stoll(r[15]));
  }
  REQUIRE(by_config.size() == 5);
  for (const auto& [config, er] : by_config) {
    INFO(config << ": median cycle error " << median(er.cycles) << ", worst " << er.worst << " ("
                << er.worst_layer << "), median DRAM error " << median(er.dram));
    CHECK(er.cycles.size() == 30);
    // The issue's acceptance bounds (issue 18), which the exact checks above imply.
    CHECK(median(er.cycles) <= 0.05);
    CHECK(er.worst <= 0.20);
    CHECK(median(er.dram) <= 0.10);
  }
}
