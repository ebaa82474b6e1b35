#pragma once
/// \file
/// Budgets: `latency<=0.5x` (relative to the all-8-bit policy on the same
/// profile) or absolute with units (`latency<=2ms`, `energy<=1.5mJ`,
/// `size<=0.25MB`, `bops<=300M`). See docs/search.md for the grammar.

#include <string>
#include <vector>

#include "haq/search/costs.h"

namespace haq::search {

/// One budget as the user wrote it.
struct BudgetSpec {
  Metric metric = Metric::latency;
  bool relative = true;   ///< value is a ratio of the all-8-bit cost
  double value = 0;       ///< ratio, or absolute in the metric's base unit (s, pJ, bits, BOPs)
  std::string text;       ///< as written, for messages and outputs
};

/// A budget resolved against a cost model: total(metric) <= limit.
struct Budget {
  BudgetSpec spec;
  double limit = 0;       ///< in the metric's base unit
  double reference = 0;   ///< cost of the all-8-bit policy, base unit
};

/// Parses one or more budgets separated by commas ("latency<=0.5x,size<=1MB").
/// Error(usage) at "--budget" saying what is expected.
std::vector<BudgetSpec> parse_budgets(const std::string& text);

/// Resolves specs against a cost model. Error(usage) if a budget is below
/// the cost of the all-`min_bits` policy (the smallest reachable value),
/// saying that value; also if the same metric is given twice.
std::vector<Budget> resolve_budgets(const std::vector<BudgetSpec>& specs, const CostModel& costs,
                                    const BitRange& w_range, const BitRange& a_range);

/// True if every budget holds for these totals.
bool within_budgets(const Costs& c, const std::vector<Budget>& budgets);

/// A value in the metric's base unit, with a readable unit ("1.23 ms", "4.5 uJ").
std::string format_metric(Metric m, double value);

}  // namespace haq::search
