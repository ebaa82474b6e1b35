#pragma once
// Helpers shared by the report writers (not public): number formatting,
// display units, budget checks.

#include <cmath>
#include <string>

#include "haq/report/report.h"

namespace haq::report::detail {

/// A display unit: shown value = base value * scale.
struct Unit {
  std::string name;
  double scale = 1;
};

/// Units picked from a reference magnitude (W8A8, else the largest value),
/// so that the reference reads between 1 and 1000.
Unit time_unit(double ref_s);
Unit energy_unit(double ref_pj);
Unit size_unit(double ref_bits);  ///< bytes with SI prefixes (1 kB = 1000 B)
Unit bops_unit(double ref_bops);

/// The units of one report (same in every table and plot).
struct Units {
  Unit latency, energy, size, bops;
};
Units pick_units(const ReportInput& in);

/// a / b, or NaN unless both are finite and b > 0.
inline double ratio(double a, double b) {
  return (std::isfinite(a) && std::isfinite(b) && b > 0) ? a / b : kNaN;
}

/// A value for tables: about three significant digits, "–" when not finite.
std::string show(double v);
/// A ratio for tables: "0.48×".
std::string show_ratio(double v);
/// An accuracy for tables: "91.30".
std::string show_acc(double v);

/// The point's value of a budget metric ("latency" -> latency_s, ...).
double metric_value(const DesignPoint& p, const std::string& metric);

/// Whether the point meets every budget: 1 yes, 0 no, -1 unknown (no
/// budgets, or a value/limit is not finite).
int meets_budgets(const DesignPoint& p, const std::vector<Budget>& budgets);

/// Display label of a baseline ("uniform-4" -> "4-bit").
std::string short_label(const DesignPoint& p);

}  // namespace haq::report::detail
