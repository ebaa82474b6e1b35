// haq fit-profile: fit a hardware profile's free parameters to measured layers.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "command.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/hw/fit.h"
#include "haq/hw/measured.h"
#include "haq/hw/profile.h"
#include "haq/model/graph.h"

namespace {

struct FitProfileOptions {
  std::string profile;                ///< the starting profile
  std::string measured;               ///< measured CSV to fit
  std::string out;                    ///< fitted profile JSON
  std::string model;                  ///< resolves rows that name layers
  std::string name;                   ///< fitted profile's name; default NAME-fitted
  std::vector<std::string> validate;  ///< further measured CSVs, predicted (not fitted)
  std::vector<std::string> fix;       ///< parameter groups kept as in the profile
  int folds = 5;
};

std::string profile_label(const haq::hw::HardwareProfile& p) {
  using haq::hw::Architecture;
  std::string array = p.architecture == Architecture::bit_serial
                          ? fmt::format("{}x{}x{}", p.bit_serial.dm, p.bit_serial.dk, p.bit_serial.dn)
                          : fmt::format("{}x{}", p.bit_fusion.rows, p.bit_fusion.cols);
  return fmt::format("{} {}, {} DRAM bits/cycle, overhead {} cycles/layer + {} cycles/tile, {:.6g} MHz",
                     haq::hw::to_string(p.architecture), array, p.memory.dram_bits_per_cycle,
                     p.overhead.cycles_per_layer, p.overhead.cycles_per_tile, p.clock_mhz);
}

std::string percent(double f) { return fmt::format("{:.2f}%", 100 * f); }

int run_fit_profile(const FitProfileOptions& o) {
  using namespace haq;
  for (const auto& input : {o.profile, o.measured, o.model}) register_run_input(input);
  for (const auto& v : o.validate) register_run_input(v);
  check_output_target(o.out);  // before any work
  const hw::HardwareProfile start = hw::load_profile(o.profile);
  const bool table = start.architecture == hw::Architecture::table;
  const std::filesystem::path csv_out = std::filesystem::path(o.out).replace_extension(".csv");
  if (table) {
    if (csv_out == std::filesystem::path(o.out))
      fail(ErrorKind::usage, "", "--out", "'{}': a table profile's --out needs a name ending in .json (its CSV "
           "goes beside it with .csv)", o.out);
    check_output_target(csv_out);
  }
  const hw::MeasuredSet measured = hw::read_measured_csv(o.measured);
  model::Graph graph;
  if (!o.model.empty()) graph = model::import_onnx(o.model);
  const model::Graph* g = o.model.empty() ? nullptr : &graph;
  const std::vector<hw::MeasuredCase> cases = hw::resolve_measured(measured, g, o.model);
  struct Validation {
    std::string file;
    hw::MeasuredSet set;
    std::vector<hw::MeasuredCase> cases;
  };
  std::vector<Validation> validations;
  for (const auto& v : o.validate) {
    Validation val{v, hw::read_measured_csv(v), {}};
    if (val.set.in_cycles != measured.in_cycles)
      fail(ErrorKind::usage, v, "", "latency in {}, but {} has it in {}: give both in cycles or both in seconds",
           val.set.in_cycles ? "cycles" : "seconds", o.measured, measured.in_cycles ? "cycles" : "seconds");
    val.cases = hw::resolve_measured(val.set, g, o.model);
    validations.push_back(std::move(val));
  }

  hw::HardwareProfile fitted;
  std::string table_csv;
  std::vector<std::string> source_lines;
  if (table) {
    fitted = hw::table_from_measured(start, measured, csv_out.filename().string(), table_csv);
    fitted.table.csv = csv_out.string();  // for the comparison's messages
    const hw::Comparison c = hw::compare_measured(cases, measured.in_cycles, fitted);
    fmt::print("table profile from {} ({} rows; nothing to fit: its latencies are the measurements)\n\n{}",
               o.measured, c.rows.size(), hw::format_comparison(c));
    source_lines.push_back(fmt::format("haq fit-profile: table made from the {} rows of {}", c.rows.size(), o.measured));
  } else {
    hw::FitOptions fo;
    fo.folds = o.folds;
    for (const auto& f : o.fix) {
      if (f == "dims") fo.fit_dims = false;
      if (f == "bandwidth") fo.fit_bandwidth = false;
      if (f == "overheads") fo.fit_overheads = false;
      if (f == "clock") fo.fit_clock = false;
      if (f == "energy") fo.fit_energy = false;
    }
    const hw::FitResult r = hw::fit_profile(start, cases, measured.in_cycles, fo);
    fitted = r.profile;
    fmt::print("start:  {} ({})\n", start.name, profile_label(start));
    fmt::print("fitted: {} to {} rows of {} (latency in {})\n", r.fitted.empty() ? "nothing" : fmt::format("{}", fmt::join(r.fitted, ", ")),
               cases.size(), o.measured, measured.in_cycles ? "cycles" : "seconds");
    fmt::print("result: {}\n\n{}", profile_label(fitted), hw::format_comparison(r.fit));
    fmt::print("fit: median |error| {}, worst {} over {} rows\n", percent(r.fit.median_abs_error),
               percent(r.fit.worst_abs_error), r.fit.rows.size());
    if (r.folds >= 2) {
      fmt::print("cross-validation ({}-fold): median |error| {}, worst {}", r.folds, percent(r.cv_median_abs_error),
                 percent(r.cv_worst_abs_error));
      if (r.fit.has_energy)
        fmt::print("; energy median |error| {}, worst {}", percent(r.cv_median_abs_energy_error),
                   percent(r.cv_worst_abs_energy_error));
      fmt::print("\n");
    } else {
      fmt::print("cross-validation: not run ({})\n", o.folds == 0 ? "--folds 0" : "fewer than 2 rows");
    }
    source_lines.push_back(hw::fit_source_line(r, o.measured, measured.in_cycles));
  }
  for (const auto& v : validations) {
    const hw::Comparison c = hw::compare_measured(v.cases, v.set.in_cycles, fitted);
    fmt::print("validation on {}: median |error| {}, worst {} ({}) over {} rows\n", v.file,
               percent(c.median_abs_error), percent(c.worst_abs_error), c.worst_label, c.rows.size());
    source_lines.push_back(fmt::format("haq fit-profile: predicts the {} rows of {} (not fitted) with median |error| {}, worst {}",
                                       c.rows.size(), v.file, percent(c.median_abs_error), percent(c.worst_abs_error)));
  }

  fitted.name = o.name.empty() ? start.name + "-fitted" : o.name;
  for (auto& s : source_lines) fitted.sources.push_back(s);
  if (table) fitted.table.csv = csv_out.filename().string();
  const std::string json = hw::profile_to_json(fitted).dump(2) + "\n";
  if (table) write_file_atomic(csv_out, table_csv);
  try {
    write_file_atomic(o.out, json);
  } catch (...) {
    if (table) {
      std::error_code ec;
      std::filesystem::remove(csv_out, ec);  // no half of the pair left behind
    }
    throw;
  }
  fmt::print("written: {}{}\n", o.out, table ? fmt::format(" and {}", csv_out.string()) : std::string());
  return 0;
}

haq::app::Run setup_fit_profile(CLI::App& sub) {
  auto opts = std::make_shared<FitProfileOptions>();
  sub.description(
      "Fit a hardware profile to measured layers: array dims (powers of two around the profile's),\n"
      "DRAM bandwidth, per-layer and per-tile overheads, the clock (latencies in seconds) and the\n"
      "energy figures (if measured), by least squares on log-latency. Prints the fit's median and\n"
      "worst error and a k-fold cross-validated error; writes the fitted profile with the fit in\n"
      "its sources. A `table` profile instead becomes a table of the measurements (docs/hardware-profiles.md).");
  sub.add_option("PROFILE", opts->profile, "starting hardware profile JSON (its architecture, buffers and precision are kept)")
      ->required();
  sub.add_option("--measured", opts->measured, "measured CSV (docs/hardware-profiles.md, \"Measured CSV\")")->required();
  sub.add_option("--out", opts->out, "the fitted profile JSON to write")->required();
  sub.add_option("--model", opts->model, "ONNX model whose layers the CSV's `layer` column names (rows by shape need none)");
  sub.add_option("--folds", opts->folds, "k of the k-fold cross-validation (row i in fold i mod k); 0: none")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  sub.add_option("--validate", opts->validate, "another measured CSV to predict with the fitted profile (repeatable)");
  sub.add_option("--fix", opts->fix, "keep as in the profile: dims, bandwidth, overheads, clock, energy (repeatable)")
      ->check(CLI::IsMember({"dims", "bandwidth", "overheads", "clock", "energy"}));
  sub.add_option("--name", opts->name, "name of the fitted profile (default: the profile's name + \"-fitted\")");
  sub.footer(
      "Examples:\n"
      "  haq fit-profile hardware-profiles/bitfusion.json --measured tests/data/hw/bitfusion-16x32-192-alexnet.csv \\\n"
      "      --out fitted.json --validate tests/data/hw/bitfusion-16x32-192-resnet18.csv\n"
      "Exit codes: 0 ok, 2 bad profile, measured CSV, model or option (the message names the file, line and column).");
  return [opts]() { return run_fit_profile(*opts); };
}

}  // namespace

// (HAQ_REGISTER_COMMAND needs an identifier; the name has a dash.)
static const bool haq_registered_fit_profile = haq::app::register_command({"fit-profile", 25, setup_fit_profile});
