#pragma once
/// \file
/// Measured per-layer latencies (and energies) of a real device, as a CSV
/// (docs/hardware-profiles.md, "Measured CSV"), and the comparison of a
/// profile's predictions with them (`haq simulate --compare`, `haq fit-profile`).
/// The reader is strict: every error names the file, the line and the column.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/hw/simulate.h"

namespace haq::hw {

/// One measurement row, as read.
struct MeasuredRow {
  int line = 0;            ///< 1-based line in the file (messages)
  std::string layer;       ///< the `layer` cell: a model layer's name, or (shape rows) a label; may be ""
  bool by_shape = false;   ///< the row gives the layer's shape (`kind` column) instead of naming a model layer
  model::Layer shape;      ///< by_shape: the layer built from the row's shape (layer_from_shape)
  bool first = false;      ///< by_shape: the input comes from the host (a network's first layer)
  int64_t batch = 0;       ///< inputs per measured run; 0: the profile's batch
  int w_bits = 8, a_bits = 8;
  double latency_s = 0;    ///< measured latency when the file has `latency_s`
  int64_t cycles = 0;      ///< measured core cycles when the file has `cycles`
  double energy_pj = 0;    ///< when the file has `energy_pj`
};

/// A measured CSV.
struct MeasuredSet {
  std::string file;
  bool in_cycles = false;   ///< latency given as `cycles` (else `latency_s`)
  bool has_energy = false;  ///< an `energy_pj` column
  std::vector<MeasuredRow> rows;
};

/// Reads a measured CSV under the input policy (regular file, size bound).
/// Throws Error(data) naming file, line and column for any malformed cell,
/// unknown or missing column, or a file without rows.
MeasuredSet read_measured_csv(const std::string& path);

/// The layer a shape row describes: `kind` conv | dwconv | fc; square
/// kernel and stride; "same" padding (input = output x stride). For fc the
/// spatial arguments are ignored.
model::Layer layer_from_shape(const std::string& name, const std::string& kind, int64_t in_c, int64_t out_c,
                              int64_t kernel, int64_t stride, int64_t out_h, int64_t out_w, int64_t groups);

/// A row resolved to what the simulators need.
struct MeasuredCase {
  int line = 0;
  std::string label;       ///< layer name, or the shape row's label ("line N" if it has none)
  model::Layer layer;
  LayerIo io;
  int64_t batch = 0;       ///< 0: the profile's batch
  int w_bits = 8, a_bits = 8;
  double measured = 0;     ///< cycles (MeasuredSet::in_cycles) or seconds
  bool has_energy = false;
  double energy_pj = 0;
};

/// Resolves the rows: names against `graph` (with its layer_io), shapes as
/// standalone layers. A named row without a graph, or naming no layer of it,
/// is Error(data) naming the line and column (with a did-you-mean).
std::vector<MeasuredCase> resolve_measured(const MeasuredSet& set, const model::Graph* graph,
                                           const std::string& model_file = "");

/// Predicted vs measured for one case.
struct ComparedRow {
  std::string label;
  int line = 0;
  int w_bits = 8, a_bits = 8;
  double predicted = 0, measured = 0;  ///< cycles or seconds (Comparison::in_cycles)
  double error = 0;                     ///< signed: (predicted - measured) / measured
  bool has_energy = false;
  double predicted_energy_pj = 0, measured_energy_pj = 0, energy_error = 0;
};

/// A profile's predictions against a measured set.
struct Comparison {
  bool in_cycles = false;
  bool has_energy = false;
  std::vector<ComparedRow> rows;
  double median_abs_error = 0, worst_abs_error = 0;  ///< of latency, fractions
  std::string worst_label;
  double median_abs_energy_error = 0, worst_abs_energy_error = 0;
};

/// Cost of one case on a profile (cycles and seconds). A
/// case the profile cannot run (no tiling fits) is Error(profile) naming
/// the case. The row's batch, if any, replaces the profile's.
LayerCost simulate_case(const MeasuredCase& c, const HardwareProfile& profile);

/// Simulates every case and compares. Pure.
Comparison compare_measured(const std::vector<MeasuredCase>& cases, bool in_cycles, const HardwareProfile& profile);

/// Median and worst of |errors| (0, 0 for none).
std::pair<double, double> median_worst_abs(const std::vector<double>& errors);

/// JSON of a comparison: per row predicted, measured and the signed error; the summary.
nlohmann::json to_json(const Comparison& c);

/// The comparison as a text table (one line per row, then the summary lines).
std::string format_comparison(const Comparison& c);

}  // namespace haq::hw
