#include <catch2/catch.hpp>

#include <filesystem>

#include "haq/hw/simulate.h"
#include "test_paths.h"

// Every shipped profile parses and simulates every reference model in models/.
TEST_CASE("every shipped profile simulates every reference model") {
  namespace fs = std::filesystem;
  std::vector<std::string> models;
  for (const auto& e : fs::directory_iterator(haq::test::source_path("models")))
    if (e.path().extension() == ".onnx") models.push_back(e.path().string());
  std::sort(models.begin(), models.end());
  REQUIRE_FALSE(models.empty());
  for (const auto& e : fs::directory_iterator(haq::test::source_path("hardware-profiles"))) {
    if (e.path().extension() != ".json") continue;
    haq::hw::HardwareProfile p = haq::hw::load_profile(e.path().string());
    for (const auto& m : models) {
      INFO(e.path().filename().string() << " on " << m);
      haq::model::Graph g = haq::model::import_onnx(m);
      if (p.architecture == haq::hw::Architecture::table) {
        // A table profile covers the layers it was measured on: only its own model.
        bool covers = !g.layers.empty() &&
                      p.table.entries.count({g.layers[0].name, p.w_bits.max_bits, p.a_bits.max_bits});
        if (!covers) continue;
      }
      haq::hw::CostTable t = haq::hw::build_cost_table(g, p);
      haq::hw::CostReport hi = haq::hw::evaluate_max_bits(t), lo = haq::hw::evaluate_min_bits(t);
      CHECK(hi.fits);
      CHECK(hi.latency_s > 0);
      CHECK(lo.latency_s <= hi.latency_s);
      CHECK(lo.energy_pj <= hi.energy_pj);
    }
  }
}
