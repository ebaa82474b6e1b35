// The Pareto front and the candidate list the writers share.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "common.h"
#include "haq/report/report.h"

namespace haq::report {

double DesignPoint::accuracy() const { return std::isfinite(acc_test) ? acc_test : acc_search; }

namespace {

bool is_accuracy(Objective o) {
  return o == Objective::accuracy || o == Objective::acc_search || o == Objective::acc_test;
}

/// The objective as "higher is better".
double goodness(const DesignPoint& p, Objective o) {
  double v = objective_value(p, o);
  return is_accuracy(o) ? v : -v;
}

}  // namespace

double objective_value(const DesignPoint& p, Objective o) {
  switch (o) {
    case Objective::accuracy:
      return p.accuracy();
    case Objective::acc_search:
      return p.acc_search;
    case Objective::acc_test:
      return p.acc_test;
    case Objective::latency:
      return p.latency_s;
    case Objective::energy:
      return p.energy_pj;
    case Objective::size:
      return p.size_bits;
    case Objective::bops:
      return p.bops;
  }
  return kNaN;
}

std::vector<size_t> pareto_front(const std::vector<DesignPoint>& points,
                                 const std::vector<Objective>& objectives) {
  const size_t n = points.size(), k = objectives.size();
  // Objective vectors once, row-major; invalid points never enter the front.
  std::vector<double> v(n * k);
  std::vector<char> valid(n, 1);
  for (size_t i = 0; i < n; ++i)
    for (size_t o = 0; o < k; ++o) {
      v[i * k + o] = goodness(points[i], objectives[o]);
      if (!std::isfinite(v[i * k + o])) valid[i] = 0;
    }
  // Visit points in lexicographic order of their objective vectors (best
  // first, ties by index). Whatever dominates a point, or equals it with a
  // lower index, comes before it, and nothing later can dominate an earlier
  // point; so comparing each point with the front found so far is enough:
  // O(n log n + n * front size) instead of all pairs.
  std::vector<size_t> order;
  for (size_t i = 0; i < n; ++i)
    if (valid[i]) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    for (size_t o = 0; o < k; ++o)
      if (v[a * k + o] != v[b * k + o]) return v[a * k + o] > v[b * k + o];
    return a < b;
  });
  std::vector<size_t> front;
  for (size_t i : order) {
    bool dominated = false;
    for (size_t j : front) {
      // j is at least as good everywhere: strictly better somewhere, or an
      // identical vector seen first. Either way i is out.
      bool all_ge = true;
      for (size_t o = 0; o < k && all_ge; ++o) all_ge = v[j * k + o] >= v[i * k + o];
      if (all_ge) {
        dominated = true;
        break;
      }
    }
    if (!dominated) front.push_back(i);
  }
  // Costs ascending in the given order, then accuracy descending, then index.
  std::sort(front.begin(), front.end(), [&](size_t a, size_t b) {
    for (size_t o = 0; o < k; ++o) {
      if (is_accuracy(objectives[o])) continue;
      if (v[a * k + o] != v[b * k + o]) return v[a * k + o] > v[b * k + o];
    }
    for (size_t o = 0; o < k; ++o)
      if (is_accuracy(objectives[o]) && v[a * k + o] != v[b * k + o])
        return v[a * k + o] > v[b * k + o];
    return a < b;
  });
  return front;
}

std::vector<DesignPoint> candidate_points(const ReportInput& in) {
  std::vector<DesignPoint> out;
  std::map<std::string, size_t> by_key;
  auto add = [&](const DesignPoint& p) {
    if (p.policy.layers.empty()) {
      out.push_back(p);
      return;
    }
    std::string key = quant::policy_key(p.policy);
    auto it = by_key.find(key);
    if (it == by_key.end()) {
      by_key.emplace(key, out.size());
      out.push_back(p);
      return;
    }
    // Same policy evaluated again (a cache hit, or the chosen point's search
    // entry): keep the first, fill in what it lacks.
    DesignPoint& first = out[it->second];
    auto fill = [](double& dst, double src) {
      if (!std::isfinite(dst) && std::isfinite(src)) dst = src;
    };
    fill(first.acc_search, p.acc_search);
    fill(first.acc_test, p.acc_test);
    fill(first.acc_select, p.acc_select);
    fill(first.latency_s, p.latency_s);
    fill(first.energy_pj, p.energy_pj);
    fill(first.size_bits, p.size_bits);
    fill(first.bops, p.bops);
    if (first.episode < 0) first.episode = p.episode;
  };
  if (!in.chosen.label.empty()) add(in.chosen);
  for (const auto& p : in.baselines) add(p);
  for (const auto& p : in.points) add(p);
  return out;
}

Objective report_accuracy(const ReportInput& in) {
  bool all_test = true, all_search = true, any = false;
  for (const auto& p : candidate_points(in)) {
    if (p.kind == "fp32" || !std::isfinite(p.latency_s)) continue;
    any = true;
    all_test = all_test && std::isfinite(p.acc_test);
    all_search = all_search && std::isfinite(p.acc_search);
  }
  if (any && all_test) return Objective::acc_test;
  if (any && all_search) return Objective::acc_search;
  return Objective::accuracy;
}

std::vector<size_t> report_front(const ReportInput& in) {
  std::vector<DesignPoint> all = candidate_points(in);
  // fp32 is a reference, not a design for the accelerator: keep it off the
  // front by making its objectives invalid in a copy.
  for (auto& p : all)
    if (p.kind == "fp32") p.latency_s = kNaN;
  return pareto_front(
      all, {report_accuracy(in), Objective::latency, Objective::energy, Objective::size});
}

namespace detail {

namespace {
Unit pick(double ref, std::initializer_list<std::pair<double, const char*>> ladder, double base) {
  // ladder: (threshold in base units, name) from largest to smallest.
  for (const auto& [threshold, name] : ladder)
    if (std::isfinite(ref) && ref >= threshold) return {name, base / threshold};
  auto last = *(ladder.end() - 1);
  return {last.second, base / last.first};
}
}  // namespace

Unit time_unit(double ref_s) {
  return pick(ref_s, {{1.0, "s"}, {1e-3, "ms"}, {1e-6, "\u00b5s"}, {1e-9, "ns"}}, 1.0);
}
Unit energy_unit(double ref_pj) {
  return pick(ref_pj, {{1e12, "J"}, {1e9, "mJ"}, {1e6, "\u00b5J"}, {1e3, "nJ"}, {1.0, "pJ"}}, 1.0);
}
Unit size_unit(double ref_bits) {
  // Thresholds in bits: 8e9 bits = 1 GB.
  return pick(ref_bits, {{8e9, "GB"}, {8e6, "MB"}, {8e3, "kB"}, {8.0, "B"}}, 1.0);
}
Unit bops_unit(double ref_bops) {
  return pick(ref_bops,
              {{1e12, "TBOPs"}, {1e9, "GBOPs"}, {1e6, "MBOPs"}, {1e3, "kBOPs"}, {1.0, "BOPs"}},
              1.0);
}

Units pick_units(const ReportInput& in) {
  // Reference: W8A8, else the largest value seen.
  auto ref = [&](double w8a8, double DesignPoint::*field) {
    if (std::isfinite(w8a8) && w8a8 > 0) return w8a8;
    double m = kNaN;
    auto see = [&](const DesignPoint& p) {
      double v = p.*field;
      if (std::isfinite(v) && (!std::isfinite(m) || v > m)) m = v;
    };
    see(in.chosen);
    for (const auto& p : in.baselines) see(p);
    for (const auto& p : in.points) see(p);
    return m;
  };
  return {time_unit(ref(in.w8a8_latency_s, &DesignPoint::latency_s)),
          energy_unit(ref(in.w8a8_energy_pj, &DesignPoint::energy_pj)),
          size_unit(ref(in.w8a8_size_bits, &DesignPoint::size_bits)),
          bops_unit(ref(in.w8a8_bops, &DesignPoint::bops))};
}

std::string show(double v) {
  if (!std::isfinite(v)) return "\u2013";
  double a = std::abs(v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 1) return fmt::format("{:.2f}", v);
  if (a == 0) return "0";
  if (a >= 0.01) return fmt::format("{:.3f}", v);
  return fmt::format("{:.2e}", v);
}

std::string show_ratio(double v) {
  if (!std::isfinite(v)) return "\u2013";
  return fmt::format("{:.2f}\u00d7", v);
}

std::string show_acc(double v) {
  if (!std::isfinite(v)) return "\u2013";
  return fmt::format("{:.2f}", v);
}

double metric_value(const DesignPoint& p, const std::string& metric) {
  if (metric == "latency") return p.latency_s;
  if (metric == "energy") return p.energy_pj;
  if (metric == "size") return p.size_bits;
  if (metric == "bops") return p.bops;
  return kNaN;
}

int meets_budgets(const DesignPoint& p, const std::vector<Budget>& budgets) {
  if (budgets.empty()) return -1;
  for (const auto& b : budgets) {
    double v = metric_value(p, b.metric);
    if (!std::isfinite(v) || !std::isfinite(b.limit)) return -1;
    // A relative tolerance: limits are often products of ratios.
    if (v > b.limit * (1 + 1e-9)) return 0;
  }
  return 1;
}

std::string short_label(const DesignPoint& p) {
  const std::string prefix = "uniform-";
  if (p.kind == "uniform" && p.label.rfind(prefix, 0) == 0)
    return p.label.substr(prefix.size()) + "-bit";
  if (p.kind == "w8a8" && p.label == "w8a8") return "W8A8";
  return p.label;
}

}  // namespace detail

}  // namespace haq::report
