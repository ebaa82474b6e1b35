#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "haq/hw/profile.h"
#include "test_paths.h"

using haq::Error;
using haq::hw::Architecture;
using haq::hw::HardwareProfile;
using nlohmann::json;

namespace {

json valid_profile() {
  return json::parse(R"({
    "schema": "haq.hardware/1", "name": "t", "description": "d", "sources": ["s"],
    "architecture": "bit-serial", "batch": 1, "clock_mhz": 200,
    "precision": {"w_bits": [1, 8], "a_bits": [2, 8]},
    "memory": {"dram_bits_per_cycle": 64, "weight_buffer_bits": 1024, "input_buffer_bits": 2048,
               "output_buffer_bits": 4096, "accumulator_bits": 32, "output_bits": 8},
    "energy": {"core_pj_per_cycle": 72, "sram_weight_pj_per_bit": 0.1, "sram_input_pj_per_bit": 0.1,
               "sram_output_pj_per_bit": 0.1, "dram_pj_per_bit": 20},
    "bit_serial": {"dm": 8, "dk": 256, "dn": 8}
  })");
}

HardwareProfile parse(const json& j, const std::string& dir = "") {
  return haq::hw::profile_from_json(haq::parse_json(j.dump(), "bismo.json", haq::ErrorKind::profile), dir);
}

std::string error_of(const json& j) {
  try {
    parse(j);
  } catch (const Error& e) {
    CHECK(e.kind() == haq::ErrorKind::profile);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("profile: a valid bit-serial profile parses") {
  HardwareProfile p = parse(valid_profile());
  CHECK(p.name == "t");
  CHECK(p.architecture == Architecture::bit_serial);
  CHECK(p.clock_hz() == 200e6);
  CHECK(p.w_bits.min_bits == 1);
  CHECK(p.a_bits.min_bits == 2);
  CHECK(p.memory.input_buffer_bits == 2048);
  CHECK(p.energy.dram_pj_per_bit == 20);
  CHECK(p.bit_serial.dk == 256);
  // Round trip through profile_to_json.
  json back = haq::hw::profile_to_json(p);
  HardwareProfile q = parse(back);
  CHECK(haq::hw::profile_to_json(q) == back);
}

TEST_CASE("profile: errors name the file and the exact JSON pointer") {
  json j = valid_profile();
  j["memory"]["dram_bits_per_cycle"] = -4;
  CHECK(error_of(j) == "bismo.json: /memory/dram_bits_per_cycle: expected an integer in 1..16777216, got -4");

  j = valid_profile();
  j["memory"]["weight_buffer_bits"] = 0;
  CHECK(error_of(j) == "bismo.json: /memory/weight_buffer_bits: expected an integer in 1..1099511627776, got 0");

  j = valid_profile();  // misspelt key: did-you-mean, at the misspelt key's pointer
  j["memory"].erase("dram_bits_per_cycle");
  j["memory"]["dram_bits_per_cyle"] = 64;
  CHECK(error_of(j) ==
        "bismo.json: /memory/dram_bits_per_cyle: unknown key \"dram_bits_per_cyle\" (did you mean "
        "\"dram_bits_per_cycle\"?)");

  j = valid_profile();  // an extra unknown key
  j["bit_serial"]["dkk"] = 3;
  CHECK(error_of(j) == "bismo.json: /bit_serial/dkk: unknown key \"dkk\" (did you mean \"dk\"?)");

  j = valid_profile();
  j["batch"] = "1";
  CHECK(error_of(j) == "bismo.json: /batch: expected an integer in 1..1048576, got \"1\"");

  j = valid_profile();
  j["clock_mhz"] = 0;
  CHECK(error_of(j) == "bismo.json: /clock_mhz: expected a positive number, got 0");
  j["clock_mhz"] = 5e-324;  // positive, but its cycle time is inf: latency would be nan
  CHECK(error_of(j) == "bismo.json: /clock_mhz: expected a clock in MHz between 0.001 (1 kHz) and 1e6 (1 THz), got 5e-324");
  j["clock_mhz"] = 2e6;
  CHECK(error_of(j) == "bismo.json: /clock_mhz: expected a clock in MHz between 0.001 (1 kHz) and 1e6 (1 THz), got 2000000");
  j["clock_mhz"] = 200;
  j["memory"]["weight_buffer_bits"] = int64_t{1} << 50;
  CHECK_THAT(error_of(j), Catch::StartsWith("bismo.json: /memory/weight_buffer_bits: "));
  j["memory"]["weight_buffer_bits"] = 1024;

  j = valid_profile();
  j.erase("clock_mhz");
  CHECK(error_of(j) == "bismo.json: /clock_mhz: missing required key \"clock_mhz\"");

  j = valid_profile();
  j["precision"]["w_bits"] = {8, 2};
  CHECK(error_of(j) == "bismo.json: /precision/w_bits: expected [min, max] with min <= max, got [8, 2]");

  j = valid_profile();
  j["precision"]["a_bits"] = {0, 8};
  CHECK(error_of(j) == "bismo.json: /precision/a_bits/0: expected an integer in 1..8, got 0");

  j = valid_profile();
  j["precision"]["a_bits"] = {1, 16};
  CHECK(error_of(j) == "bismo.json: /precision/a_bits/1: expected an integer in 1..8, got 16");

  j = valid_profile();
  j["architecture"] = "bitserial";
  CHECK(error_of(j) ==
        "bismo.json: /architecture: expected one of \"bit-serial\", \"bit-fusion\", \"table\", got "
        "\"bitserial\" (did you mean \"bit-serial\"?)");

  j = valid_profile();
  j["bit_fusion"] = {{"rows", 16}, {"cols", 32}};
  CHECK(error_of(j) == "bismo.json: /bit_fusion: not used with architecture \"bit-serial\"");

  j = valid_profile();
  j["schema"] = "haq.hardware/2";
  CHECK(error_of(j) == "bismo.json: /schema: expected \"haq.hardware/1\", got \"haq.hardware/2\"");

  j = valid_profile();
  j["sources"] = json::array();
  CHECK(error_of(j) == "bismo.json: /sources: expected an array of at least 1 elements, got 0");

  j = valid_profile();
  j["energy"]["dram_pj_per_bit"] = -1.5;
  CHECK(error_of(j) == "bismo.json: /energy/dram_pj_per_bit: expected a number in [0, 1000000000], got -1.5");
}

TEST_CASE("profile: table profiles read their CSV, bad rows name the line") {
  auto dir = haq::test::scratch_dir("hw_profile_table");
  json j = valid_profile();
  j["architecture"] = "table";
  j.erase("memory");
  j.erase("energy");
  j.erase("bit_serial");
  j["precision"] = {{"w_bits", {4, 8}}, {"a_bits", {8, 8}}};
  j["table"] = {{"csv", "t.csv"}};
  std::ofstream(dir / "t.csv") << "# measured\nlayer,w_bits,a_bits,latency_s,energy_pj\n"
                                  "fc,8,8,1.5e-5,2.5e6\nfc,4,8,1e-5,1e6\n";
  HardwareProfile p = parse(j, dir.string());
  CHECK(p.architecture == Architecture::table);
  CHECK(p.table.has_energy);
  CHECK(p.table.entries.size() == 2);
  CHECK(p.table.entries.at({"fc", 4, 8}).latency_s == 1e-5);

  std::ofstream(dir / "t.csv") << "layer,w_bits,a_bits,latency_s\nfc,8,2,1e-5\n";
  try {
    parse(j, dir.string());
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.file() == (dir / "t.csv").string());
    CHECK(e.where() == "line 2");
    CHECK(e.message() == "column a_bits: expected an integer in 8..8 (the profile's /precision), got '2'");
  }
  std::ofstream(dir / "t.csv") << "layer,w_bits,a_bits,latency_s\nfc,8,8,-1\n";
  CHECK_THROWS_WITH(parse(j, dir.string()),
                    Catch::Contains("line 2: column latency_s: expected a positive number, got '-1'"));
  std::ofstream(dir / "t.csv") << "layer,w,a,latency\n";
  CHECK_THROWS_WITH(parse(j, dir.string()), Catch::Contains("line 1: expected the header"));

  j["memory"] = valid_profile()["memory"];  // simulator sections are not used by tables
  CHECK(error_of(j) == "bismo.json: /memory: not used with architecture \"table\"");
}

TEST_CASE("profile: every shipped profile parses") {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(haq::test::source_path("hardware-profiles"))) {
    if (e.path().extension() != ".json") continue;
    INFO(e.path());
    HardwareProfile p = haq::hw::load_profile(e.path().string());
    CHECK_FALSE(p.sources.empty());
    CHECK_FALSE(p.description.empty());
    ++n;
  }
  CHECK(n >= 4);
}
