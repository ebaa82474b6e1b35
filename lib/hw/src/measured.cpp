#include "haq/hw/measured.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <sstream>

#include <fmt/ranges.h>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"

namespace haq::hw {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::string> split_cells(const std::string& line) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t comma = line.find(',', start);
    out.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Every column the reader knows; the shape columns describe a layer without a model.
const std::vector<std::string> kColumns = {"layer",  "kind",   "in_c",   "out_c",  "kernel",    "stride",
                                           "out_h",  "out_w",  "groups", "batch",  "first",     "w_bits",
                                           "a_bits", "latency_s", "cycles", "energy_pj"};
const std::vector<std::string> kShapeColumns = {"in_c", "out_c", "kernel", "stride", "out_h", "out_w", "groups", "first"};

struct Reader {
  std::string file;
  int line = 0;
  std::map<std::string, size_t> col;  // column name -> index
  const std::vector<std::string>* cells = nullptr;

  std::string where(const std::string& name) const {
    auto it = col.find(name);
    return it == col.end() ? fmt::format("line {}", line)
                           : fmt::format("line {}, column {} ({})", line, it->second + 1, name);
  }
  bool has(const std::string& name) const { return col.count(name) > 0; }
  const std::string& cell(const std::string& name) const { return (*cells)[col.at(name)]; }

  template <typename... Args>
  [[noreturn]] void error(const std::string& name, fmt::format_string<Args...> f, Args&&... args) const {
    fail(ErrorKind::data, file, where(name), f, std::forward<Args>(args)...);
  }

  int64_t integer(const std::string& name, int64_t lo, int64_t hi) const {
    const std::string& c = cell(name);
    int64_t v = 0;
    size_t used = 0;
    bool ok = !c.empty() && c.find_first_not_of("0123456789") == std::string::npos && c.size() <= 18;
    if (ok) {
      v = std::stoll(c, &used);
      ok = used == c.size() && v >= lo && v <= hi;
    }
    if (!ok) error(name, "expected an integer in {}..{}, got '{}'", lo, hi, c);
    return v;
  }

  double number(const std::string& name, bool allow_zero) const {
    const std::string& c = cell(name);
    double x = 0;
    size_t used = 0;
    try {
      x = std::stod(c, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != c.size() || !std::isfinite(x) || x < 0 || (!allow_zero && x == 0))
      error(name, "expected a {} number, got '{}'", allow_zero ? "non-negative" : "positive", c);
    return x;
  }
};

}  // namespace

model::Layer layer_from_shape(const std::string& name, const std::string& kind, int64_t in_c, int64_t out_c,
                              int64_t kernel, int64_t stride, int64_t out_h, int64_t out_w, int64_t groups) {
  model::Layer l;
  l.name = name;
  l.c_in = in_c;
  l.c_out = out_c;
  if (kind == "fc") {
    l.kind = model::LayerKind::gemm;
    l.weight_params = in_c * out_c;
    l.params = l.weight_params + out_c;
    l.macs = l.weight_params;
    return l;
  }
  l.kind = model::LayerKind::conv;
  l.groups = kind == "dwconv" ? in_c : groups;
  l.kernel_h = l.kernel_w = kernel;
  l.stride_h = l.stride_w = stride;
  l.out_h = out_h, l.out_w = out_w;
  l.in_h = out_h * stride, l.in_w = out_w * stride;  // "same" padding
  l.depthwise = l.groups > 1 && l.groups == in_c && l.groups == out_c;
  l.weight_params = out_c * (in_c / l.groups) * kernel * kernel;
  l.params = l.weight_params + out_c;
  l.macs = out_h * out_w * l.weight_params;
  return l;
}

MeasuredSet read_measured_csv(const std::string& path) {
  MeasuredSet set;
  set.file = path;
  const std::string text = read_file(path);
  std::stringstream ss(text);
  std::string raw;
  Reader r;
  r.file = path;
  bool header_seen = false;
  size_t width = 0;
  while (std::getline(ss, raw)) {
    ++r.line;
    const std::string s = trim(raw);
    if (s.empty() || s[0] == '#') continue;
    const std::vector<std::string> cells = split_cells(s);
    if (!header_seen) {
      header_seen = true;
      width = cells.size();
      for (size_t i = 0; i < cells.size(); ++i) {
        const std::string& name = cells[i];
        const std::string here = fmt::format("line {}, column {}", r.line, i + 1);
        if (std::find(kColumns.begin(), kColumns.end(), name) == kColumns.end()) {
          std::string near = closest_match(name, kColumns);
          fail(ErrorKind::data, path, here, "unknown column '{}'{} (known: {})", name,
               near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near), fmt::join(kColumns, ", "));
        }
        if (!r.col.emplace(name, i).second) fail(ErrorKind::data, path, here, "column '{}' appears twice", name);
      }
      const std::string header_where = fmt::format("line {}", r.line);
      for (const char* need : {"w_bits", "a_bits"})
        if (!r.has(need)) fail(ErrorKind::data, path, header_where, "missing column '{}'", need);
      if (r.has("latency_s") == r.has("cycles"))
        fail(ErrorKind::data, path, header_where, "expected exactly one of the columns 'latency_s' and 'cycles'");
      set.in_cycles = r.has("cycles");
      set.has_energy = r.has("energy_pj");
      if (r.has("kind")) {
        for (const char* need : {"in_c", "out_c"})
          if (!r.has(need))
            fail(ErrorKind::data, path, header_where, "missing column '{}' (rows with a 'kind' give the layer's shape)", need);
      } else {
        if (!r.has("layer"))
          fail(ErrorKind::data, path, header_where,
               "missing column 'layer' (a model layer's name) or 'kind' (with the layer's shape columns)");
        for (const auto& c : kShapeColumns)
          if (r.has(c)) fail(ErrorKind::data, path, r.where(c), "shape column '{}' without a 'kind' column", c);
      }
      continue;
    }
    if (cells.size() != width)
      fail(ErrorKind::data, path, fmt::format("line {}", r.line), "expected {} columns (as the header), got {}",
           width, cells.size());
    r.cells = &cells;
    MeasuredRow row;
    row.line = r.line;
    if (r.has("layer")) row.layer = r.cell("layer");
    row.w_bits = static_cast<int>(r.integer("w_bits", 1, 8));
    row.a_bits = static_cast<int>(r.integer("a_bits", 1, 8));
    if (r.has("batch") && !r.cell("batch").empty()) row.batch = r.integer("batch", 1, 1 << 20);
    if (set.in_cycles)
      row.cycles = r.integer("cycles", 1, int64_t{1} << 50);
    else
      row.latency_s = r.number("latency_s", false);
    if (set.has_energy) row.energy_pj = r.number("energy_pj", true);
    if (r.has("kind")) {
      row.by_shape = true;
      const std::string kind = r.cell("kind");
      if (kind != "conv" && kind != "dwconv" && kind != "fc")
        r.error("kind", "expected conv, dwconv or fc, got '{}'", kind);
      const int64_t in_c = r.integer("in_c", 1, 1 << 20), out_c = r.integer("out_c", 1, 1 << 20);
      int64_t kernel = 1, stride = 1, out_h = 1, out_w = 1, groups = 1;
      auto optional = [&](const char* name, int64_t lo, int64_t hi, int64_t fallback) {
        return r.has(name) && !r.cell(name).empty() ? r.integer(name, lo, hi) : fallback;
      };
      if (kind == "fc") {
        // Spatial columns of an fc row must be empty or 1 (a 1x1 layer).
        for (const char* name : {"kernel", "stride", "out_h", "out_w", "groups"})
          if (optional(name, 1, 1 << 20, 1) != 1) r.error(name, "expected 1 or an empty cell in an fc row, got '{}'", r.cell(name));
      } else {
        for (const char* name : {"kernel", "stride", "out_h"})
          if (!r.has(name) || r.cell(name).empty())
            r.error(name, "a {} row needs the column '{}'", kind, name);
        kernel = r.integer("kernel", 1, 64);
        stride = r.integer("stride", 1, 64);
        out_h = r.integer("out_h", 1, 1 << 16);
        out_w = optional("out_w", 1, 1 << 16, out_h);
        groups = optional("groups", 1, 1 << 20, 1);
        if (kind == "dwconv") {
          if (in_c != out_c) r.error("out_c", "a dwconv row has out_c == in_c, got {} and {}", in_c, out_c);
          if (r.has("groups") && !r.cell("groups").empty() && groups != in_c)
            r.error("groups", "a dwconv row has groups == in_c ({}), got {}", in_c, groups);
        } else if (in_c % groups != 0 || out_c % groups != 0) {
          r.error("groups", "groups {} must divide in_c {} and out_c {}", groups, in_c, out_c);
        }
      }
      if (r.has("first") && !r.cell("first").empty()) row.first = r.integer("first", 0, 1) == 1;
      const std::string name = row.layer.empty() ? fmt::format("line {}", r.line) : row.layer;
      row.shape = layer_from_shape(name, kind, in_c, out_c, kernel, stride, out_h, out_w, groups);
    } else if (row.layer.empty()) {
      r.error("layer", "empty layer name");
    }
    set.rows.push_back(std::move(row));
  }
  if (!header_seen) fail(ErrorKind::data, path, "", "empty file: expected a header line and measurement rows");
  if (set.rows.empty()) fail(ErrorKind::data, path, "", "no measurement rows after the header");
  return set;
}

std::vector<MeasuredCase> resolve_measured(const MeasuredSet& set, const model::Graph* graph,
                                           const std::string& model_file) {
  std::vector<MeasuredCase> out;
  std::vector<LayerIo> io;
  std::map<std::string, size_t> by_name;
  std::vector<std::string> names;
  if (graph) {
    io = layer_io(*graph);
    for (size_t i = 0; i < graph->layers.size(); ++i) {
      by_name.emplace(graph->layers[i].name, i);
      names.push_back(graph->layers[i].name);
    }
  }
  for (const MeasuredRow& row : set.rows) {
    MeasuredCase c;
    c.line = row.line;
    c.batch = row.batch;
    c.w_bits = row.w_bits;
    c.a_bits = row.a_bits;
    c.measured = set.in_cycles ? double(row.cycles) : row.latency_s;
    c.has_energy = set.has_energy;
    c.energy_pj = row.energy_pj;
    if (row.by_shape) {
      c.layer = row.shape;
      c.label = row.shape.name;
      c.io.input_from_layer = !row.first;
    } else {
      const std::string where = fmt::format("line {}, column layer", row.line);
      if (!graph)
        fail(ErrorKind::data, set.file, where,
             "row names layer '{}' but no model was given (give one, or the layer's shape: kind, in_c, out_c, ...)",
             row.layer);
      auto it = by_name.find(row.layer);
      if (it == by_name.end()) {
        std::string near = closest_match(row.layer, names);
        fail(ErrorKind::data, set.file, where, "no quantizable layer '{}' in {}{}", row.layer,
             model_file.empty() ? std::string("the model") : model_file,
             near.empty() ? "" : fmt::format(" (did you mean '{}'?)", near));
      }
      c.layer = graph->layers[it->second];
      c.io = io[it->second];
      c.label = row.layer;
    }
    out.push_back(std::move(c));
  }
  return out;
}

LayerCost simulate_case(const MeasuredCase& c, const HardwareProfile& profile) {
  LayerCost cost;
  if (c.batch > 0 && c.batch != profile.batch) {
    if (profile.architecture == Architecture::table)
      fail(ErrorKind::data, "", fmt::format("line {}", c.line),
           "measured at batch {}, but profile '{}' is a measured table at batch {}", c.batch, profile.name,
           profile.batch);
    HardwareProfile p = profile;
    p.batch = c.batch;
    cost = simulate_layer(c.layer, c.w_bits, c.a_bits, p, c.io);
  } else {
    cost = simulate_layer(c.layer, c.w_bits, c.a_bits, profile, c.io);
  }
  if (!cost.fits)
    fail(ErrorKind::profile, profile.file, fmt::format("layer '{}'", c.label), "does not fit profile '{}' at w{}a{}: {}",
         profile.name, c.w_bits, c.a_bits, cost.reason);
  return cost;
}

std::pair<double, double> median_worst_abs(const std::vector<double>& errors) {
  if (errors.empty()) return {0, 0};
  std::vector<double> a;
  for (double e : errors) a.push_back(std::abs(e));
  std::sort(a.begin(), a.end());
  const size_t n = a.size();
  const double median = n % 2 ? a[n / 2] : 0.5 * (a[n / 2 - 1] + a[n / 2]);
  return {median, a.back()};
}

Comparison compare_measured(const std::vector<MeasuredCase>& cases, bool in_cycles, const HardwareProfile& profile) {
  Comparison out;
  out.in_cycles = in_cycles;
  std::vector<double> errors, energy_errors;
  for (const MeasuredCase& c : cases) {
    const LayerCost cost = simulate_case(c, profile);
    ComparedRow row;
    row.label = c.label;
    row.line = c.line;
    row.w_bits = c.w_bits;
    row.a_bits = c.a_bits;
    row.predicted = in_cycles ? double(cost.cycles) : cost.latency_s;
    row.measured = c.measured;
    row.error = (row.predicted - row.measured) / row.measured;
    if (std::abs(row.error) > out.worst_abs_error || out.worst_label.empty()) {
      out.worst_abs_error = std::abs(row.error);
      out.worst_label = c.label;
    }
    errors.push_back(row.error);
    if (c.has_energy) {
      out.has_energy = row.has_energy = true;
      row.predicted_energy_pj = cost.energy_pj;
      row.measured_energy_pj = c.energy_pj;
      row.energy_error = c.energy_pj > 0 ? (cost.energy_pj - c.energy_pj) / c.energy_pj : 0.0;
      if (c.energy_pj > 0) energy_errors.push_back(row.energy_error);
    }
    out.rows.push_back(row);
  }
  std::tie(out.median_abs_error, out.worst_abs_error) = median_worst_abs(errors);
  std::tie(out.median_abs_energy_error, out.worst_abs_energy_error) = median_worst_abs(energy_errors);
  return out;
}

nlohmann::json to_json(const Comparison& c) {
  nlohmann::json rows = nlohmann::json::array();
  const char* unit = c.in_cycles ? "cycles" : "latency_s";
  for (const ComparedRow& r : c.rows) {
    nlohmann::json j = {{"layer", r.label}, {"line", r.line}, {"w_bits", r.w_bits}, {"a_bits", r.a_bits}};
    j[std::string("predicted_") + unit] = r.predicted;
    j[std::string("measured_") + unit] = r.measured;
    j["error"] = r.error;
    if (r.has_energy) {
      j["predicted_energy_pj"] = r.predicted_energy_pj;
      j["measured_energy_pj"] = r.measured_energy_pj;
      j["energy_error"] = r.energy_error;
    }
    rows.push_back(j);
  }
  nlohmann::json j = {{"unit", unit},
                      {"rows", rows},
                      {"median_abs_error", c.median_abs_error},
                      {"worst_abs_error", c.worst_abs_error},
                      {"worst_layer", c.worst_label}};
  if (c.has_energy) {
    j["median_abs_energy_error"] = c.median_abs_energy_error;
    j["worst_abs_energy_error"] = c.worst_abs_energy_error;
  }
  return j;
}

std::string format_comparison(const Comparison& c) {
  size_t name_w = 5;
  for (const auto& r : c.rows) name_w = std::max(name_w, r.label.size());
  name_w = std::min<size_t>(name_w, 40);
  const char* unit = c.in_cycles ? "cyc" : "us";
  const double scale = c.in_cycles ? 1.0 : 1e6;
  std::string out = fmt::format("{:<{}}  {:>5}  {:>16}  {:>16}  {:>8}", "layer", name_w, "w/a",
                                fmt::format("predicted_{}", unit), fmt::format("measured_{}", unit), "error_%");
  if (c.has_energy) out += fmt::format("  {:>14}  {:>14}  {:>8}", "predicted_uJ", "measured_uJ", "energy_%");
  out += "\n";
  for (const auto& r : c.rows) {
    const std::string value_format = c.in_cycles ? "{:>16.0f}" : "{:>16.3f}";
    out += fmt::format("{:<{}}  {:>5}  ", r.label, name_w, fmt::format("{}/{}", r.w_bits, r.a_bits));
    out += fmt::format(fmt::runtime(value_format), r.predicted * scale) + "  ";
    out += fmt::format(fmt::runtime(value_format), r.measured * scale);
    out += fmt::format("  {:>+8.2f}", 100 * r.error);
    if (r.has_energy)
      out += fmt::format("  {:>14.3f}  {:>14.3f}  {:>+8.2f}", r.predicted_energy_pj * 1e-6, r.measured_energy_pj * 1e-6,
                         100 * r.energy_error);
    out += "\n";
  }
  out += fmt::format("\nlatency error: median |error| {:.2f}%, worst {:.2f}% ({}), {} rows\n", 100 * c.median_abs_error,
                     100 * c.worst_abs_error, c.worst_label, c.rows.size());
  if (c.has_energy)
    out += fmt::format("energy error: median |error| {:.2f}%, worst {:.2f}%\n", 100 * c.median_abs_energy_error,
                       100 * c.worst_abs_energy_error);
  return out;
}

}  // namespace haq::hw
