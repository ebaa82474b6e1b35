#include "haq/hw/fit.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <map>
#include <set>

#include <fmt/ranges.h>

#include "haq/core/error.h"

namespace haq::hw {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr int64_t kMaxDim = 1 << 16;
constexpr int64_t kMaxBandwidth = int64_t{1} << 24;
constexpr int64_t kMaxOverhead = int64_t{1} << 32;

// A point of the search: array dims, bandwidth, overheads (cycles).
struct Point {
  std::vector<int64_t> dims;  // rows, cols | dm, dk, dn
  double log2_bw = 0;
  double overhead_layer = 0, overhead_tile = 0;

  int64_t bandwidth() const {
    return std::clamp<int64_t>(std::llround(std::exp2(log2_bw)), 1, kMaxBandwidth);
  }
};

std::vector<int64_t> start_dims(const HardwareProfile& p) {
  if (p.architecture == Architecture::bit_fusion) return {p.bit_fusion.rows, p.bit_fusion.cols};
  return {p.bit_serial.dm, p.bit_serial.dk, p.bit_serial.dn};
}

std::vector<std::string> dim_names(const HardwareProfile& p) {
  if (p.architecture == Architecture::bit_fusion) return {"bit_fusion/rows", "bit_fusion/cols"};
  return {"bit_serial/dm", "bit_serial/dk", "bit_serial/dn"};
}

void set_dims(HardwareProfile& p, const std::vector<int64_t>& d) {
  if (p.architecture == Architecture::bit_fusion) {
    p.bit_fusion.rows = d[0], p.bit_fusion.cols = d[1];
  } else {
    p.bit_serial.dm = d[0], p.bit_serial.dk = d[1], p.bit_serial.dn = d[2];
  }
}

// The off-chip bandwidth of a point. A staged bit-serial profile's read and
// write channels scale with it (their ratio to the DRAM kept): in BISMO's
// organisation they, not the DRAM, are what a bandwidth fit can see.
void set_bandwidth(HardwareProfile& p, const HardwareProfile& start, int64_t bw) {
  p.memory.dram_bits_per_cycle = bw;
  if (p.architecture != Architecture::bit_serial || !p.bit_serial.staged) return;
  const double scale = double(bw) / double(start.memory.dram_bits_per_cycle);
  auto scaled = [&](int64_t v) { return std::clamp<int64_t>(std::llround(double(v) * scale), 1, kMaxBandwidth); };
  p.bit_serial.stages.fetch_bits_per_cycle = scaled(start.bit_serial.stages.fetch_bits_per_cycle);
  p.bit_serial.stages.result_bits_per_cycle = scaled(start.bit_serial.stages.result_bits_per_cycle);
}

// Non-negative least squares A x ~ y over the columns in `use` (three at
// most), by trying every subset of them: the feasible least-squares solution
// with the smallest residual (x = 0 if none beats it). Columns are scaled to
// unit norm first (their magnitudes differ by many orders).
std::array<double, 3> nnls3(const std::vector<std::array<double, 3>>& a, const std::vector<double>& y,
                            const std::array<bool, 3>& use) {
  std::array<double, 3> norm{0, 0, 0};
  for (const auto& row : a)
    for (int k = 0; k < 3; ++k) norm[k] += row[k] * row[k];
  for (int k = 0; k < 3; ++k) norm[k] = norm[k] > 0 ? std::sqrt(norm[k]) : 0;
  auto residual = [&](const std::array<double, 3>& x) {
    double res = 0;
    for (size_t r = 0; r < a.size(); ++r) {
      const double e = a[r][0] * x[0] + a[r][1] * x[1] + a[r][2] * x[2] - y[r];
      res += e * e;
    }
    return res;
  };
  std::array<double, 3> best{0, 0, 0};
  double best_res = residual(best);
  for (int mask = 1; mask < 8; ++mask) {
    std::vector<int> cols;
    bool ok = true;
    for (int k = 0; k < 3; ++k)
      if (mask >> k & 1) {
        if (!use[k] || norm[k] == 0) ok = false;
        cols.push_back(k);
      }
    if (!ok) continue;
    const size_t n = cols.size();
    // Normal equations of the scaled columns, Gaussian elimination with partial pivoting.
    double m[3][4] = {};
    for (size_t r = 0; r < a.size(); ++r)
      for (size_t i = 0; i < n; ++i) {
        const double ai = a[r][cols[i]] / norm[cols[i]];
        for (size_t j = 0; j < n; ++j) m[i][j] += ai * a[r][cols[j]] / norm[cols[j]];
        m[i][n] += ai * y[r];
      }
    bool singular = false;
    for (size_t c = 0; c < n && !singular; ++c) {
      size_t piv = c;
      for (size_t r = c + 1; r < n; ++r)
        if (std::abs(m[r][c]) > std::abs(m[piv][c])) piv = r;
      if (std::abs(m[piv][c]) < 1e-12) {
        singular = true;
        break;
      }
      for (size_t j = 0; j <= n; ++j) std::swap(m[c][j], m[piv][j]);
      for (size_t r = 0; r < n; ++r)
        if (r != c) {
          const double f = m[r][c] / m[c][c];
          for (size_t j = c; j <= n; ++j) m[r][j] -= f * m[c][j];
        }
    }
    if (singular) continue;
    std::array<double, 3> x{0, 0, 0};
    bool feasible = true;
    for (size_t i = 0; i < n; ++i) {
      x[cols[i]] = m[i][n] / m[i][i] / norm[cols[i]];
      if (!(x[cols[i]] >= 0) || !std::isfinite(x[cols[i]])) feasible = false;
    }
    if (!feasible) continue;
    const double res = residual(x);
    if (res < best_res) best_res = res, best = x;
  }
  return best;
}

// Simulations are memoized per (dims, bandwidth, case): the overheads are
// added afterwards, and the folds of the cross-validation share the grid.
class Evaluator {
 public:
  Evaluator(const HardwareProfile& start, const std::vector<MeasuredCase>& cases, bool in_cycles,
            const FitOptions& o)
      : start_(start), cases_(cases), in_cycles_(in_cycles), options_(o) {
    start_.overhead = {};
  }

  struct Base {
    int64_t cycles = -1;  // without overheads; -1: the layer does not fit
    int64_t tiles = 1;
  };

  const Base& base(const std::vector<int64_t>& dims, int64_t bw, size_t i) {
    std::vector<int64_t> key = dims;
    key.push_back(bw);
    key.push_back(static_cast<int64_t>(i));
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    HardwareProfile p = start_;
    set_dims(p, dims);
    set_bandwidth(p, start_, bw);
    const MeasuredCase& c = cases_[i];
    if (c.batch > 0) p.batch = c.batch;
    const LayerCost cost = simulate_layer(c.layer, c.w_bits, c.a_bits, p, c.io);
    ++simulations;
    Base b;
    if (cost.fits) b.cycles = cost.cycles, b.tiles = cost.mapping.tiles;
    return cache_.emplace(std::move(key), b).first->second;
  }

  // Measured latency of case i in cycles at the starting clock (for step sizes).
  double measured_cycles(size_t i) const {
    return in_cycles_ ? cases_[i].measured : cases_[i].measured * start_.clock_hz();
  }

  // Sum of squared log errors over `idx`. The overheads (fit_overheads) are
  // solved for each point: with cycles c_i = b_i + ol + ot * t_i, the
  // relative errors are linear in (ol, ot) (and in 1/clock, for seconds), a
  // non-negative least-squares problem of three unknowns at most. `out`
  // receives the point with those overheads; `log_clock_hz` the clock that
  // minimises the log errors (seconds with fit_clock) or the start's.
  double objective(const Point& pt, const std::vector<size_t>& idx, Point* out = nullptr,
                   double* log_clock_hz = nullptr) {
    const int64_t bw = pt.bandwidth();
    std::vector<const Base*> bases;
    bases.reserve(idx.size());
    for (size_t i : idx) {
      const Base& b = base(pt.dims, bw, i);
      if (b.cycles < 0) return kInf;
      bases.push_back(&b);
    }
    const bool free_clock = !in_cycles_ && options_.fit_clock;
    double ol = 0, ot = 0;
    if (options_.fit_overheads && !idx.empty()) {
      std::vector<std::array<double, 3>> a;
      std::vector<double> y;
      for (size_t j = 0; j < idx.size(); ++j) {
        const double m = cases_[idx[j]].measured, b = double(bases[j]->cycles), t = double(bases[j]->tiles);
        if (free_clock) {
          // (b + ol + ot t) / (clock m) - 1 with x = (1/clock, ol/clock, ot/clock).
          a.push_back({b / m, 1 / m, t / m});
          y.push_back(1);
        } else {
          const double mc = in_cycles_ ? m : m * start_.clock_hz();
          a.push_back({0, 1 / mc, t / mc});
          y.push_back(1 - b / mc);
        }
      }
      const auto x = nnls3(a, y, {free_clock, true, true});
      const double scale = free_clock ? x[0] : 1;
      if (scale > 0) {
        ol = std::min(double(kMaxOverhead), std::round(x[1] / scale));
        ot = std::min(double(kMaxOverhead), std::round(x[2] / scale));
      }
    }
    std::vector<double> r;
    r.reserve(idx.size());
    for (size_t j = 0; j < idx.size(); ++j) {
      const double cycles = double(bases[j]->cycles) + ol + ot * double(bases[j]->tiles);
      r.push_back(std::log(cycles) - std::log(cases_[idx[j]].measured));
    }
    double shift = 0;  // log of the clock (seconds) or 0 (cycles)
    if (!in_cycles_) {
      shift = std::log(start_.clock_hz());
      if (free_clock && !r.empty()) {
        double mean = 0;
        for (double x : r) mean += x;
        shift = std::clamp(mean / double(r.size()), std::log(1e3), std::log(1e12));
      }
    }
    if (log_clock_hz) *log_clock_hz = shift;
    if (out) *out = pt, out->overhead_layer = ol, out->overhead_tile = ot;
    double sum = 0;
    for (double x : r) sum += (x - shift) * (x - shift);
    return sum;
  }

  int64_t simulations = 0;

 private:
  HardwareProfile start_;
  const std::vector<MeasuredCase>& cases_;
  bool in_cycles_;
  FitOptions options_;
  std::map<std::vector<int64_t>, Base> cache_;
};

std::vector<int64_t> powers_around(int64_t start, int span, int64_t hi) {
  std::set<int64_t> out;
  for (int j = -span; j <= span; ++j) {
    double v = std::ldexp(double(start), j);
    if (v >= 1 && v <= double(hi) && std::floor(v) == v) out.insert(static_cast<int64_t>(v));
  }
  out.insert(start);
  return {out.begin(), out.end()};
}

struct FitCore {
  HardwareProfile profile;
  std::vector<std::string> fitted;
};

// One fit on the cases `idx`.
FitCore fit_on(Evaluator& ev, const HardwareProfile& start, const std::vector<MeasuredCase>& cases,
               const std::vector<size_t>& idx, bool in_cycles, const FitOptions& o) {
  const std::vector<int64_t> dims0 = start_dims(start);
  const int64_t bw0 = start.memory.dram_bits_per_cycle;
  // Stage 1: the grid of dims x bandwidths (powers of two), no overheads.
  std::vector<std::vector<int64_t>> dim_values;
  for (int64_t d : dims0) dim_values.push_back(o.fit_dims ? powers_around(d, o.dims_span, kMaxDim) : std::vector<int64_t>{d});
  // Bandwidths in quarter powers of two: the cycles of a layer are a step
  // function of the bandwidth, so a coarse grid misses the right step.
  std::vector<int64_t> bws{bw0};
  if (o.fit_bandwidth) {
    std::set<int64_t> b;
    for (int j = -4 * o.bandwidth_span; j <= 4 * o.bandwidth_span; ++j)
      b.insert(std::clamp<int64_t>(std::llround(double(bw0) * std::exp2(j / 4.0)), 1, kMaxBandwidth));
    bws.assign(b.begin(), b.end());
  }
  struct Scored {
    double obj;
    Point pt;
  };
  std::vector<Scored> grid;
  std::vector<size_t> pos(dim_values.size(), 0);
  while (true) {
    Point pt;
    for (size_t k = 0; k < pos.size(); ++k) pt.dims.push_back(dim_values[k][pos[k]]);
    // The best bandwidth of the grid for these dims, refined in one dimension
    // (around the right bandwidth the error falls steeply, so every array
    // size is given its own best bandwidth before sizes are compared).
    Scored best{kInf, pt};
    for (int64_t bw : bws) {
      pt.log2_bw = std::log2(double(bw));
      const double v = ev.objective(pt, idx);
      if (v < best.obj) best = {v, pt};
    }
    if (o.fit_bandwidth && std::isfinite(best.obj))
      for (double step = 0.125; step >= 1.0 / 128; step /= 2)
        for (bool moved = true; moved;) {
          moved = false;
          for (double dir : {1.0, -1.0}) {
            Point cand = best.pt;
            cand.log2_bw = std::clamp(best.pt.log2_bw + dir * step, 0.0, 24.0);
            const double v = ev.objective(cand, idx);
            if (v < best.obj) {
              best = {v, cand}, moved = true;
              break;
            }
          }
        }
    grid.push_back(best);
    size_t k = 0;
    while (k < pos.size() && ++pos[k] == dim_values[k].size()) pos[k++] = 0;
    if (k == pos.size()) break;
  }
  // Ties (equal objectives) keep grid order: deterministic.
  std::stable_sort(grid.begin(), grid.end(), [](const Scored& a, const Scored& b) { return a.obj < b.obj; });
  if (grid.empty() || !std::isfinite(grid[0].obj))
    fail(ErrorKind::profile, start.file, "",
         "no array size or bandwidth around profile '{}' runs every measured layer (a layer fits no tiling)",
         start.name);

  // Stage 2: a pattern search over dims and bandwidth (the overheads and
  // clock are solved at every point).
  Point best_pt = grid[0].pt;
  double best_obj = grid[0].obj;
  // Starting points: the five best array sizes, each at its best bandwidth.
  std::vector<Point> starts;
  for (const Scored& g : grid) {
    if (!std::isfinite(g.obj) || starts.size() == 5) break;
    starts.push_back(g.pt);
  }
  for (const Point& from : starts) {
    Point pt = from;
    double obj = ev.objective(pt, idx);
    double step_bw = o.fit_bandwidth ? 1.0 / 32 : 0;
    int evals = 0;
    while (evals < o.max_evaluations) {
      bool improved = false;
      auto consider = [&](const Point& cand) {
        ++evals;
        const double v = ev.objective(cand, idx);
        if (v < obj * (1 - 1e-12) - 1e-15) {
          pt = cand, obj = v, improved = true;
          return true;
        }
        return false;
      };
      if (o.fit_dims)
        for (size_t k = 0; k < pt.dims.size(); ++k) {
          Point up = pt, down = pt;
          up.dims[k] = std::min(kMaxDim, pt.dims[k] * 2);
          down.dims[k] = std::max<int64_t>(1, pt.dims[k] / 2);
          if (up.dims[k] != pt.dims[k] && consider(up)) continue;
          if (down.dims[k] != pt.dims[k]) consider(down);
        }
      if (step_bw > 0) {
        Point up = pt, down = pt;
        up.log2_bw = std::min(24.0, pt.log2_bw + step_bw);
        down.log2_bw = std::max(0.0, pt.log2_bw - step_bw);
        if (!consider(up)) consider(down);
      }
      if (improved) continue;
      // No move helps: refine the continuous steps, or stop at their floors.
      bool refined = false;
      if (step_bw > 1.0 / 128) step_bw /= 2, refined = true;
      if (!refined) break;
    }
    if (obj < best_obj) best_obj = obj, best_pt = pt;
  }

  FitCore out;
  out.profile = start;
  HardwareProfile& p = out.profile;
  set_dims(p, best_pt.dims);
  set_bandwidth(p, start, best_pt.bandwidth());
  ev.objective(best_pt, idx, &best_pt);  // the point's overheads
  p.overhead.cycles_per_layer = std::llround(best_pt.overhead_layer);
  p.overhead.cycles_per_tile = std::llround(best_pt.overhead_tile);
  if (o.fit_dims)
    for (const auto& n : dim_names(start)) out.fitted.push_back(n);
  if (o.fit_bandwidth) {
    out.fitted.push_back("memory/dram_bits_per_cycle");
    if (p.architecture == Architecture::bit_serial && p.bit_serial.staged) {
      out.fitted.push_back("bit_serial/stages/fetch_bits_per_cycle");
      out.fitted.push_back("bit_serial/stages/result_bits_per_cycle");
    }
  }
  if (o.fit_overheads) {
    out.fitted.push_back("overhead/cycles_per_layer");
    out.fitted.push_back("overhead/cycles_per_tile");
  }
  if (!in_cycles && o.fit_clock) {
    double log_clock = 0;
    ev.objective(best_pt, idx, nullptr, &log_clock);
    p.clock_mhz = std::clamp(std::exp(log_clock) / 1e6, 1e-3, 1e6);
    out.fitted.push_back("clock_mhz");
  }

  // Energy: scale the compute, SRAM and DRAM figures (linear in them for a
  // fixed mapping) to the measured energies, relative errors, non-negative.
  if (o.fit_energy) {
    std::vector<std::array<double, 3>> rows;
    std::array<bool, 3> use{false, false, false};
    for (size_t i : idx) {
      const MeasuredCase& c = cases[i];
      if (!c.has_energy || c.energy_pj <= 0) continue;
      const LayerCost cost = simulate_case(c, p);
      rows.push_back({cost.energy_compute_pj / c.energy_pj, cost.energy_sram_pj / c.energy_pj,
                      cost.energy_dram_pj / c.energy_pj});
      for (int k = 0; k < 3; ++k) use[k] = use[k] || rows.back()[k] > 0;
    }
    if (!rows.empty() && (use[0] || use[1] || use[2])) {
      auto x = nnls3(rows, std::vector<double>(rows.size(), 1.0), use);
      for (int k = 0; k < 3; ++k)
        if (!use[k]) x[k] = 1;  // a part the profile does not charge stays as it is
      auto scale = [](double& v, double f) { v = std::min(1e9, v * f); };
      scale(p.energy.core_pj_per_cycle, x[0]);
      scale(p.energy.sram_weight_pj_per_bit, x[1]);
      scale(p.energy.sram_input_pj_per_bit, x[1]);
      scale(p.energy.sram_output_pj_per_bit, x[1]);
      scale(p.energy.dram_pj_per_bit, x[2]);
      out.fitted.push_back("energy (compute, SRAM, DRAM scales)");
    }
  }
  return out;
}

std::string percent(double f) { return fmt::format("{:.2f}%", 100 * f); }

}  // namespace

FitResult fit_profile(const HardwareProfile& start, const std::vector<MeasuredCase>& cases, bool in_cycles,
                      const FitOptions& o) {
  if (start.architecture == Architecture::table)
    fail(ErrorKind::usage, start.file, "/architecture",
         "profile '{}' is a measured table: it has no parameters to fit (a table is made from the measured CSV "
         "itself)", start.name);
  if (cases.empty()) fail(ErrorKind::data, "", "", "no measurements to fit");
  Evaluator ev(start, cases, in_cycles, o);
  std::vector<size_t> all(cases.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  FitResult r;
  FitCore core = fit_on(ev, start, cases, all, in_cycles, o);
  r.profile = core.profile;
  r.fitted = core.fitted;
  r.fit = compare_measured(cases, in_cycles, r.profile);
  // k-fold cross-validation: row i is in fold i mod k (file order).
  const size_t k = std::min<size_t>(o.folds > 0 ? size_t(o.folds) : 0, cases.size());
  if (k >= 2) {
    std::vector<double> errors, energy_errors;
    for (size_t f = 0; f < k; ++f) {
      std::vector<size_t> train;
      std::vector<MeasuredCase> held;
      for (size_t i = 0; i < cases.size(); ++i) {
        if (i % k == f)
          held.push_back(cases[i]);
        else
          train.push_back(i);
      }
      const FitCore fold = fit_on(ev, start, cases, train, in_cycles, o);
      const Comparison c = compare_measured(held, in_cycles, fold.profile);
      for (const auto& row : c.rows) {
        errors.push_back(row.error);
        if (row.has_energy && row.measured_energy_pj > 0) energy_errors.push_back(row.energy_error);
      }
    }
    r.folds = static_cast<int>(k);
    std::tie(r.cv_median_abs_error, r.cv_worst_abs_error) = median_worst_abs(errors);
    std::tie(r.cv_median_abs_energy_error, r.cv_worst_abs_energy_error) = median_worst_abs(energy_errors);
  }
  r.simulations = ev.simulations;
  return r;
}

std::string fit_source_line(const FitResult& r, const std::string& measured_file, bool in_cycles) {
  std::string s = fmt::format("haq fit-profile: {} fitted by least squares on log-latency to {} rows of {} "
                              "(latency in {}): median |error| {}, worst {}",
                              r.fitted.empty() ? std::string("nothing") : fmt::format("{}", fmt::join(r.fitted, ", ")),
                              r.fit.rows.size(), measured_file, in_cycles ? "cycles" : "seconds",
                              percent(r.fit.median_abs_error), percent(r.fit.worst_abs_error));
  if (r.fit.has_energy)
    s += fmt::format("; energy median |error| {}, worst {}", percent(r.fit.median_abs_energy_error),
                     percent(r.fit.worst_abs_energy_error));
  if (r.folds >= 2)
    s += fmt::format("; {}-fold cross-validated median |error| {}, worst {}", r.folds, percent(r.cv_median_abs_error),
                     percent(r.cv_worst_abs_error));
  return s;
}

HardwareProfile table_from_measured(const HardwareProfile& base, const MeasuredSet& set, const std::string& csv_path,
                                    std::string& csv_text) {
  HardwareProfile p;
  p.file = base.file;
  p.name = base.name;
  p.description = base.description;
  p.sources = base.sources;
  p.architecture = Architecture::table;
  p.batch = base.batch;
  p.clock_mhz = base.clock_mhz;
  p.w_bits = base.w_bits;
  p.a_bits = base.a_bits;
  p.table.csv = csv_path;
  p.table.has_energy = set.has_energy;
  csv_text = set.has_energy ? "layer,w_bits,a_bits,latency_s,energy_pj\n" : "layer,w_bits,a_bits,latency_s\n";
  for (const MeasuredRow& row : set.rows) {
    const std::string where = fmt::format("line {}", row.line);
    if (row.layer.empty())
      fail(ErrorKind::data, set.file, where + ", column layer", "a table profile needs every row's layer name");
    if (!base.w_bits.contains(row.w_bits) || !base.a_bits.contains(row.a_bits))
      fail(ErrorKind::data, set.file, where, "w{}a{} is outside profile '{}''s /precision (w_bits {}..{}, a_bits {}..{})",
           row.w_bits, row.a_bits, base.name, base.w_bits.min_bits, base.w_bits.max_bits, base.a_bits.min_bits,
           base.a_bits.max_bits);
    if (row.batch > 0 && row.batch != base.batch)
      fail(ErrorKind::data, set.file, where + ", column batch",
           "measured at batch {}, but the table profile is at batch {} (profile '{}')", row.batch, base.batch,
           base.name);
    TableSpec::Entry e;
    e.latency_s = set.in_cycles ? double(row.cycles) / base.clock_hz() : row.latency_s;
    e.energy_pj = row.energy_pj;
    if (!p.table.entries.emplace(std::make_tuple(row.layer, row.w_bits, row.a_bits), e).second)
      fail(ErrorKind::data, set.file, where, "a second row for layer '{}' w{}a{} (a table has one per layer and bits)",
           row.layer, row.w_bits, row.a_bits);
    csv_text += fmt::format("{},{},{},{:.17g}", row.layer, row.w_bits, row.a_bits, e.latency_s);
    if (set.has_energy) csv_text += fmt::format(",{:.17g}", e.energy_pj);
    csv_text += "\n";
  }
  return p;
}

}  // namespace haq::hw
