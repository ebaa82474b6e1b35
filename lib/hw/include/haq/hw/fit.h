#pragma once
/// \file
/// Fitting a profile's free parameters to measured layers (`haq fit-profile`):
/// least squares on log-latency over the array dimensions (powers of two
/// around the starting profile's), the DRAM bandwidth, the fixed overheads
/// and, for latencies in seconds, the clock; then the energy coefficients by
/// linear least squares when energies were measured. Deterministic: a grid,
/// then a coordinate (pattern) search, no randomness. k-fold cross-validation
/// refits on each fold's complement and predicts the fold.

#include <string>
#include <vector>

#include "haq/hw/measured.h"

namespace haq::hw {

/// What to fit, and how hard to look.
struct FitOptions {
  int folds = 5;              ///< k of the cross-validation; 0: none
  int dims_span = 3;          ///< array dims tried: the start's times 2^-span .. 2^span
  int bandwidth_span = 4;     ///< DRAM bandwidths of the grid: the start's times 2^-span .. 2^span
  bool fit_dims = true;       ///< rows/cols (bit-fusion), dm/dk/dn (bit-serial)
  bool fit_bandwidth = true;  ///< memory/dram_bits_per_cycle
  bool fit_overheads = true;  ///< overhead/cycles_per_layer and cycles_per_tile
  bool fit_clock = true;      ///< clock_mhz, when latencies are in seconds (cycles do not depend on it)
  bool fit_energy = true;     ///< scale the compute / SRAM / DRAM energy figures, when energies were measured
  int max_evaluations = 4000; ///< per fit: profile evaluations of the pattern search (the grid is extra)
};

/// The result of one fit.
struct FitResult {
  HardwareProfile profile;             ///< the fitted profile (sources not yet extended)
  std::vector<std::string> fitted;     ///< what was fitted, e.g. "bit_fusion/rows"
  Comparison fit;                      ///< the fitted profile on all rows
  int folds = 0;                       ///< cross-validation folds run (0: none)
  double cv_median_abs_error = 0, cv_worst_abs_error = 0;  ///< held-out latency errors
  double cv_median_abs_energy_error = 0, cv_worst_abs_energy_error = 0;
  int64_t simulations = 0;             ///< simulate_layer calls (cache misses)
};

/// Fits `start` to the cases (in_cycles: measured latencies are cycles).
/// A `table` profile has nothing to fit: Error(usage). Cases the fitted
/// profile cannot run are Error(profile).
FitResult fit_profile(const HardwareProfile& start, const std::vector<MeasuredCase>& cases, bool in_cycles,
                      const FitOptions& options = {});

/// The `sources` line describing a fit (file, rows, errors).
std::string fit_source_line(const FitResult& r, const std::string& measured_file, bool in_cycles);

/// A `table` profile from measured rows: name, clock, batch and precision of
/// `base`, the rows as its CSV `csv_path` (what to write is returned in
/// `csv_text`, latency with 17 significant digits so it reads back exactly).
/// Rows need a layer name; duplicate (layer, w, a) rows are Error(data).
HardwareProfile table_from_measured(const HardwareProfile& base, const MeasuredSet& set,
                                    const std::string& csv_path, std::string& csv_text);

}  // namespace haq::hw
