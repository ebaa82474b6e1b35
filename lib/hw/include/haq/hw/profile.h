#pragma once
/// \file
/// Hardware profiles: the parsed and validated description of a bit-flexible
/// accelerator ("haq.hardware/1" JSON, see docs/hardware-profiles.md).
/// Parsing is strict: unknown keys, wrong types, missing or out-of-range
/// fields are Error(profile) naming the file and the JSON pointer.

#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "haq/core/json_reader.h"

namespace haq::hw {

/// How the accelerator computes (selects the simulator).
enum class Architecture { bit_serial, bit_fusion, table };
/// "bit-serial", "bit-fusion" or "table".
const char* to_string(Architecture a);

/// A supported bitwidth range, inclusive, within 1..8.
struct BitRange {
  int min_bits = 1;
  int max_bits = 8;
  bool contains(int bits) const { return bits >= min_bits && bits <= max_bits; }
};

/// Memory system. All sizes in bits; bandwidth in bits per core clock cycle.
struct MemorySpec {
  int64_t dram_bits_per_cycle = 64;   ///< total off-chip bandwidth (all ports), bits/cycle
  int64_t weight_buffer_bits = 0;     ///< on-chip weight buffer (holds two tiles: double-buffered)
  int64_t input_buffer_bits = 0;      ///< on-chip input (activation) buffer, double-buffered
  int64_t output_buffer_bits = 0;     ///< on-chip output/accumulator buffer, double-buffered
  int64_t accumulator_bits = 32;      ///< bits of one partial sum held in the output buffer
  int64_t output_bits = 8;            ///< bits of one output element written to DRAM
};

/// Energy figures, picojoules.
struct EnergySpec {
  double core_pj_per_cycle = 0;       ///< compute array dynamic energy per busy cycle
  double sram_weight_pj_per_bit = 0;  ///< weight buffer, per bit read or written
  double sram_input_pj_per_bit = 0;   ///< input buffer, per bit read or written
  double sram_output_pj_per_bit = 0;  ///< output buffer, per bit read or written
  double dram_pj_per_bit = 0;         ///< off-chip DRAM, per bit transferred
};

/// Fixed costs a simulated layer pays beyond the model's loop nest (layer
/// launch, DMA descriptor setup per tile), added to the mapper's cycles as a
/// plain term; idle cycles, so no energy. Optional in the JSON, default 0;
/// `haq fit-profile` fits them to measurements.
struct OverheadSpec {
  int64_t cycles_per_layer = 0;  ///< per layer (per simulate_layer call)
  int64_t cycles_per_tile = 0;   ///< per tile of the mapping (Mapping::tiles)
};

/// BISMO's pipeline organisation (Umuroglu et al., FPL 2018 / TRETS 2019,
/// and its hardware sources): fetch, execute and result stages that overlap,
/// synchronised by tokens. Without it (`staged` false) the array is the ideal
/// model: one DRAM port, data fetched once per reuse, no instruction costs.
struct BitSerialStages {
  int64_t fetch_bits_per_cycle = 64;   ///< DRAM read channel of the fetch stage (LHS and RHS share it)
  int64_t result_bits_per_cycle = 64;  ///< DRAM write channel of the result stage
  int64_t result_bits = 32;            ///< bits written per result: BISMO writes its accumulators
  int64_t exec_latency_cycles = 13;    ///< execute pipeline depth (BRAM read + dot-product array), drained per result tile
  int64_t sync_cycles = 3;             ///< one token sync instruction of a stage controller
  int64_t fetch_latency_cycles = 0;    ///< DRAM read latency a fetch run waits before signalling its buffer full
};

/// BISMO-style bit-serial array: Dm x Dk x Dn binary dot-product units.
struct BitSerialSpec {
  int64_t dm = 8;    ///< rows of the left (activation) matrix per cycle
  int64_t dk = 256;  ///< reduction depth: bits per binary dot product
  int64_t dn = 8;    ///< columns of the right (weight) matrix per cycle
  bool staged = false;     ///< `stages` given: BISMO's three-stage model (docs/hardware-profiles.md)
  BitSerialStages stages;  ///< when staged
};

/// BitFusion-style array of fusion units (each one 8x8, four 4x4 or
/// sixteen 2x2 MACs per cycle).
struct BitFusionSpec {
  int64_t rows = 16;  ///< input-channel lanes (reduction)
  int64_t cols = 32;  ///< output-channel lanes
};

/// Measured per-layer costs from a CSV next to the profile.
struct TableSpec {
  std::string csv;        ///< path as resolved (relative to the profile's folder)
  bool has_energy = false;  ///< the CSV had an energy_pj column
  struct Entry {
    double latency_s = 0;
    double energy_pj = 0;
  };
  /// (layer name, w_bits, a_bits) -> measured cost.
  std::map<std::tuple<std::string, int, int>, Entry> entries;
};

/// A parsed, validated hardware profile.
struct HardwareProfile {
  std::string file;                  ///< where it was read from (messages)
  std::string name;
  std::string description;
  std::vector<std::string> sources;  ///< where every number comes from
  Architecture architecture = Architecture::bit_serial;
  int64_t batch = 1;                 ///< inputs per inference; latency is per batch
  double clock_mhz = 100;            ///< core clock, MHz
  BitRange w_bits, a_bits;           ///< supported weight / activation bitwidths
  MemorySpec memory;                 ///< unused by `table`
  EnergySpec energy;                 ///< unused by `table`
  OverheadSpec overhead;             ///< unused by `table`; optional, default 0
  BitSerialSpec bit_serial;          ///< when architecture == bit_serial
  BitFusionSpec bit_fusion;          ///< when architecture == bit_fusion
  TableSpec table;                   ///< when architecture == table

  double clock_hz() const { return clock_mhz * 1e6; }
};

/// Reads a profile from parsed JSON. `dir` resolves a table CSV's relative path.
/// Throws Error(profile) naming the file and pointer.
HardwareProfile profile_from_json(const JsonValue& root, const std::string& dir);

/// Reads and validates a profile file (and, for `table`, its CSV).
HardwareProfile load_profile(const std::string& path);

/// The profile as JSON (schema "haq.hardware/1"), for reports.
nlohmann::json profile_to_json(const HardwareProfile& p);

}  // namespace haq::hw
