#include "haq/search/budget.h"

#include <cmath>
#include <cstdlib>
#include <map>

#include <fmt/format.h>

#include "haq/core/error.h"

namespace haq::search {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}

// Units per metric, as factors to the base unit (s, pJ, bits, BOPs).
const std::map<std::string, double>& units(Metric m) {
  static const std::map<std::string, double> latency{
      {"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}};
  static const std::map<std::string, double> energy{
      {"J", 1e12}, {"mJ", 1e9}, {"uJ", 1e6}, {"nJ", 1e3}, {"pJ", 1.0}};
  // Decimal prefixes for B (kB/KB = 1000 bytes), binary for KiB/MiB/GiB; "b" is bits.
  static const std::map<std::string, double> size{
      {"b", 1.0},         {"B", 8.0},           {"kB", 8e3},          {"KB", 8e3},
      {"MB", 8e6},        {"GB", 8e9},          {"KiB", 8.0 * 1024},  {"MiB", 8.0 * 1048576},
      {"GiB", 8.0 * 1073741824.0}, {"kb", 1e3}, {"Mb", 1e6}};
  static const std::map<std::string, double> bops{
      {"", 1.0}, {"k", 1e3}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"T", 1e12}};
  switch (m) {
    case Metric::latency: return latency;
    case Metric::energy: return energy;
    case Metric::size: return size;
    case Metric::bops: return bops;
  }
  return bops;
}

std::string unit_list(Metric m) {
  std::string out;
  for (const auto& [u, f] : units(m)) {
    (void)f;
    if (u.empty()) continue;
    if (!out.empty()) out += ", ";
    out += u;
  }
  return out;
}

[[noreturn]] void bad(const std::string& item, const std::string& why) {
  fail(ErrorKind::usage, "", "--budget",
       "'{}': {} (expected METRIC<=VALUE with METRIC one of latency, energy, size, bops and "
       "VALUE a ratio of the all-8-bit cost such as 0.5x, or an absolute value with a unit such "
       "as 2ms, 1.5mJ, 0.25MB, 300M)",
       item, why);
}

BudgetSpec parse_one(const std::string& raw) {
  std::string item = trim(raw);
  size_t op = item.find("<=");
  if (op == std::string::npos) {
    if (item.find('<') != std::string::npos || item.find('=') != std::string::npos)
      bad(item, "the only comparison is '<='");
    bad(item, "missing '<='");
  }
  std::string name = trim(item.substr(0, op));
  std::string value = trim(item.substr(op + 2));
  BudgetSpec spec;
  spec.text = item;
  if (name == "latency") spec.metric = Metric::latency;
  else if (name == "energy") spec.metric = Metric::energy;
  else if (name == "size") spec.metric = Metric::size;
  else if (name == "bops") spec.metric = Metric::bops;
  else bad(item, fmt::format("unknown metric '{}'", name));
  if (value.empty()) bad(item, "missing value");
  const char* begin = value.c_str();
  char* end = nullptr;
  double number = std::strtod(begin, &end);
  if (end == begin) bad(item, fmt::format("'{}' does not start with a number", value));
  std::string unit = trim(std::string(end));
  if (!std::isfinite(number) || number <= 0) bad(item, "the value must be a positive number");
  if (unit == "x") {
    spec.relative = true;
    spec.value = number;
    return spec;
  }
  const auto& table = units(spec.metric);
  auto it = table.find(unit);
  if (it == table.end()) {
    if (unit.empty())
      bad(item, fmt::format("missing unit: write a ratio such as {}x or a {} unit ({})", value,
                            name, unit_list(spec.metric)));
    bad(item, fmt::format("unknown {} unit '{}' (known: x, {})", name, unit,
                          unit_list(spec.metric)));
  }
  spec.relative = false;
  spec.value = number * it->second;
  return spec;
}

}  // namespace

std::vector<BudgetSpec> parse_budgets(const std::string& text) {
  std::vector<BudgetSpec> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (trim(item).empty())
      fail(ErrorKind::usage, "", "--budget", "empty budget in '{}'", text);
    out.push_back(parse_one(item));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string format_metric(Metric m, double v) {
  switch (m) {
    case Metric::latency:
      if (v >= 1) return fmt::format("{:.4g} s", v);
      if (v >= 1e-3) return fmt::format("{:.4g} ms", v * 1e3);
      return fmt::format("{:.4g} us", v * 1e6);
    case Metric::energy:
      if (v >= 1e9) return fmt::format("{:.4g} mJ", v * 1e-9);
      if (v >= 1e6) return fmt::format("{:.4g} uJ", v * 1e-6);
      if (v >= 1e3) return fmt::format("{:.4g} nJ", v * 1e-3);
      return fmt::format("{:.4g} pJ", v);
    case Metric::size:
      if (v >= 8e6) return fmt::format("{:.4g} MB", v / 8e6);
      if (v >= 8e3) return fmt::format("{:.4g} kB", v / 8e3);
      return fmt::format("{:.4g} B", v / 8);
    case Metric::bops:
      if (v >= 1e9) return fmt::format("{:.4g} G", v * 1e-9);
      if (v >= 1e6) return fmt::format("{:.4g} M", v * 1e-6);
      return fmt::format("{:.4g}", v);
  }
  return fmt::format("{}", v);
}

std::vector<Budget> resolve_budgets(const std::vector<BudgetSpec>& specs, const CostModel& costs,
                                    const BitRange& w_range, const BitRange& a_range) {
  std::vector<Budget> out;
  const Costs ref = costs.uniform(8, 8);
  const Costs lowest = costs.uniform(w_range.min, a_range.min);
  for (const auto& spec : specs) {
    for (const auto& b : out)
      if (b.spec.metric == spec.metric)
        fail(ErrorKind::usage, "", "--budget", "'{}': a {} budget was already given ('{}')",
             spec.text, to_string(spec.metric), b.spec.text);
    Budget b;
    b.spec = spec;
    b.reference = ref.get(spec.metric);
    b.limit = spec.relative ? spec.value * b.reference : spec.value;
    double min_value = lowest.get(spec.metric);
    // A tiny tolerance so that "exactly the all-min cost" written as a ratio is reachable.
    if (b.limit < min_value * (1 - 1e-12)) {
      double min_ratio = b.reference > 0 ? min_value / b.reference : 0;
      fail(ErrorKind::usage, "", "--budget",
           "'{}' cannot be met: the smallest reachable {} is {} ({:.4g}x of all-8-bit, with "
           "w{}a{} everywhere); all-8-bit is {}",
           spec.text, to_string(spec.metric), format_metric(spec.metric, min_value), min_ratio,
           w_range.min, a_range.min, format_metric(spec.metric, b.reference));
    }
    out.push_back(b);
  }
  return out;
}

bool within_budgets(const Costs& c, const std::vector<Budget>& budgets) {
  for (const auto& b : budgets)
    if (c.get(b.spec.metric) > b.limit) return false;
  return true;
}

}  // namespace haq::search
