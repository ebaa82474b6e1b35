// report.html: one self-contained page, inline CSS and SVG, no scripts, no
// network references. Well-formed XML (void elements self-closed) so that it
// can be checked by a simple parser.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common.h"
#include "haq/report/report.h"
#include "haq/report/svg_plot.h"

namespace haq::report {

using namespace detail;
using svg::escape;

namespace {

const char* kCss = R"(
body { font-family: sans-serif; color: #222; background: #f7f7f7; margin: 0; }
main { max-width: 1220px; margin: 0 auto; padding: 16px 20px 40px; background: #fff; }
h1 { font-size: 22px; margin: 8px 0 12px; }
h2 { font-size: 18px; margin: 28px 0 10px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; font-size: 14px; }
dl.meta dt { color: #666; }
dl.meta dd { margin: 0; font-family: monospace; word-break: break-all; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; white-space: nowrap; }
th { background: #f0f0f0; }
td.l, th.l { text-align: left; }
td.key { font-family: monospace; font-size: 11px; text-align: left; white-space: normal; }
tr.chosen td { background: #fdecea; font-weight: bold; }
tr.w8a8 td { background: #f3eefa; }
.yes { color: #1a7f37; } .no { color: #c62828; }
.note { color: #555; font-size: 13px; margin: 4px 0 10px; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); gap: 12px; }
figure { margin: 0; }
svg.plot { max-width: 100%; height: auto; display: block; }
.scroll { overflow-x: auto; }
footer { margin-top: 30px; color: #777; font-size: 12px; }
)";

std::string td(const std::string& text, const char* cls = nullptr) {
  return cls ? fmt::format("<td class=\"{}\">{}</td>", cls, escape(text))
             : "<td>" + escape(text) + "</td>";
}

std::string met_cell(int met) {
  if (met == 1) return "<td class=\"yes\">yes</td>";
  if (met == 0) return "<td class=\"no\">no</td>";
  return "<td>\u2013</td>";
}

svg::Style style(const std::string& color, double opacity, double size_px,
                 svg::Shape shape = svg::Shape::circle) {
  svg::Style s;
  s.color = color;
  s.opacity = opacity;
  s.size_px = size_px;
  s.shape = shape;
  return s;
}

std::string point_tip(const DesignPoint& p, const Units& u, const ReportInput& in) {
  std::string acc;
  if (std::isfinite(p.acc_search)) acc += show_acc(p.acc_search) + "% search";
  if (std::isfinite(p.acc_test)) acc += (acc.empty() ? "" : ", ") + show_acc(p.acc_test) + "% test";
  if (acc.empty()) acc = "not measured";
  return fmt::format("{}: accuracy {}; latency {} {} ({}), energy {} {} ({}), size {} {}", p.label,
                     acc, show(p.latency_s * u.latency.scale), u.latency.name,
                     show_ratio(ratio(p.latency_s, in.w8a8_latency_s)),
                     show(p.energy_pj * u.energy.scale), u.energy.name,
                     show_ratio(ratio(p.energy_pj, in.w8a8_energy_pj)),
                     show(p.size_bits * u.size.scale), u.size.name);
}

/// How the plots' accuracy axis is named for the report's accuracy split.
std::string accuracy_axis_label(Objective acc) {
  if (acc == Objective::acc_search) return "top-1 accuracy (%), search split";
  if (acc == Objective::acc_test) return "top-1 accuracy (%), test split";
  return "top-1 accuracy (%)";
}

/// fp32 accuracy on the report's split: the fp32 baseline's, else fp32_acc.
double fp32_on_split(const ReportInput& in, Objective acc) {
  for (const auto& p : in.baselines)
    if (p.kind == "fp32" && std::isfinite(objective_value(p, acc))) return objective_value(p, acc);
  return in.fp32_acc;
}

/// One accuracy-vs-cost plot.
struct Axis {
  std::string id, title, metric;  // metric as in Budget::metric
  Objective objective;
  double DesignPoint::*field;
  Unit unit;
  std::string name;  // "latency"
};

std::string scatter(const ReportInput& in, const std::vector<DesignPoint>& all, const Axis& ax,
                    Objective acc, double y_lo, double y_hi, const Units& u) {
  auto y_of = [&](const DesignPoint& p) { return objective_value(p, acc); };
  svg::ScatterPlot plot;
  plot.id = ax.id;
  plot.title = ax.title;
  plot.x_label = fmt::format("{} ({})", ax.name, ax.unit.name);
  plot.y_label = accuracy_axis_label(acc);
  plot.y_min = y_lo;
  plot.y_max = y_hi;
  auto x_of = [&](const DesignPoint& p) { return (p.*ax.field) * ax.unit.scale; };

  svg::Series ok, over;
  ok.style = style("#6f8fbf", 0.35, 2.5);
  over.style = style("#9a9a9a", 0.35, 2.5);
  for (const auto& p : in.points) {
    svg::Series& s = p.feasible ? ok : over;
    s.x.push_back(x_of(p));
    s.y.push_back(y_of(p));
    s.tooltips.push_back(point_tip(p, u, in));
  }
  ok.name = fmt::format("evaluated ({})", ok.x.size());
  over.name = fmt::format("over budget ({})", over.x.size());
  if (!ok.x.empty()) plot.series.push_back(ok);
  if (!over.x.empty()) plot.series.push_back(over);

  // The front of this plane (accuracy vs this cost), as a connected line.
  std::vector<DesignPoint> designs = all;
  for (auto& p : designs)
    if (p.kind == "fp32") p.latency_s = p.energy_pj = p.size_bits = p.bops = kNaN;
  svg::Series front;
  front.name = "Pareto front";
  front.style = style("#1f4e9c", 1.0, 3.0);
  front.style.line_width_px = 2;
  for (size_t i : pareto_front(designs, {acc, ax.objective})) {
    front.x.push_back(x_of(designs[i]));
    front.y.push_back(y_of(designs[i]));
    front.tooltips.push_back(point_tip(designs[i], u, in));
  }
  if (!front.x.empty()) plot.series.push_back(front);

  svg::Series uni, w8;
  uni.name = "uniform k-bit (ends 8-bit)";
  uni.style = style("#e07b00", 1.0, 4.0, svg::Shape::square);
  w8.name = "W8A8";
  w8.style = style("#6a3d9a", 1.0, 4.5, svg::Shape::diamond);
  auto same_as_w8a8 = [&](const DesignPoint& p) {
    for (const auto& q : in.baselines)
      if (q.kind == "w8a8" && x_of(q) == x_of(p) && y_of(q) == y_of(p)) return true;
    return false;
  };
  for (const auto& p : in.baselines) {
    if (p.kind != "uniform" && p.kind != "w8a8") continue;
    svg::Series& s = p.kind == "uniform" ? uni : w8;
    s.x.push_back(x_of(p));
    s.y.push_back(y_of(p));
    // uniform-8 often is W8A8 itself: one label is enough.
    s.labels.push_back(p.kind == "uniform" && same_as_w8a8(p) ? std::string() : short_label(p));
    s.tooltips.push_back(point_tip(p, u, in));
  }
  if (!uni.x.empty()) plot.series.push_back(uni);
  if (!w8.x.empty()) plot.series.push_back(w8);

  if (!in.chosen.label.empty()) {
    svg::Series c;
    c.name = "chosen";
    c.style = style("#d62728", 1.0, 6.0, svg::Shape::star);
    c.style.label_font_px = 12;
    c.style.label_below = true;  // the front's labels sit above
    c.x.push_back(x_of(in.chosen));
    c.y.push_back(y_of(in.chosen));
    c.labels.push_back("chosen");
    c.tooltips.push_back(point_tip(in.chosen, u, in));
    plot.series.push_back(c);
  }
  for (const auto& b : in.budgets)
    if (b.metric == ax.metric && std::isfinite(b.limit))
      plot.lines.push_back(
          {svg::RefLine::vertical, b.limit * ax.unit.scale, "budget " + b.text, "#d62728", "6 4"});
  if (const double fp32 = fp32_on_split(in, acc); std::isfinite(fp32))
    plot.lines.push_back(
        {svg::RefLine::horizontal, fp32, fmt::format("fp32 {:.2f}%", fp32), "#2ca02c", "2 3"});
  return plot.render();
}

/// Accuracy per search episode and the best within budget so far: shows the
/// warm-up, the exploration decay and when the search stopped improving.
/// Empty if no point has an episode.
std::string progress_plot(const ReportInput& in, Objective acc, double y_lo, double y_hi) {
  auto y_of = [&](const DesignPoint* p) { return objective_value(*p, acc); };
  std::vector<const DesignPoint*> pts;
  for (const auto& p : in.points)
    if (p.episode >= 0 && std::isfinite(y_of(&p))) pts.push_back(&p);
  if (pts.empty()) return "";
  std::stable_sort(pts.begin(), pts.end(), [](const DesignPoint* a, const DesignPoint* b) {
    return a->episode < b->episode;
  });
  svg::ScatterPlot plot;
  plot.id = "progress";
  plot.title = "Search progress";
  plot.x_label = "episode";
  plot.y_label = accuracy_axis_label(acc);
  plot.y_min = y_lo;
  plot.y_max = y_hi;
  svg::Series ok, over, best;
  ok.style = style("#6f8fbf", 0.45, 2.5);
  over.style = style("#9a9a9a", 0.35, 2.5);
  best.style = style("#d62728", 1.0, 2.0);
  best.style.markers = false;
  best.style.line_width_px = 2;
  double best_acc = kNaN;
  for (const DesignPoint* p : pts) {
    svg::Series& s = p->feasible ? ok : over;
    s.x.push_back(p->episode);
    s.y.push_back(y_of(p));
    s.tooltips.push_back(fmt::format("{}: accuracy {}%{}", p->label, show_acc(y_of(p)),
                                     p->feasible ? "" : " (over budget)"));
    if (p->feasible && (!std::isfinite(best_acc) || y_of(p) > best_acc)) {
      // A step: hold the old best up to this episode, then jump.
      if (std::isfinite(best_acc)) {
        best.x.push_back(p->episode);
        best.y.push_back(best_acc);
      }
      best_acc = y_of(p);
      best.x.push_back(p->episode);
      best.y.push_back(best_acc);
    }
  }
  if (!best.x.empty()) {
    best.x.push_back(pts.back()->episode);
    best.y.push_back(best_acc);
  }
  ok.name = "within budget";
  over.name = "over budget";
  best.name = "best within budget so far";
  for (auto* s : {&ok, &over, &best})
    if (!s->x.empty()) plot.series.push_back(*s);
  if (const double fp32 = fp32_on_split(in, acc); std::isfinite(fp32))
    plot.lines.push_back(
        {svg::RefLine::horizontal, fp32, fmt::format("fp32 {:.2f}%", fp32), "#2ca02c", "2 3"});
  return "<figure>" + plot.render() + "</figure>\n";
}

/// The shared accuracy range of the scatter plots: everything that matters,
/// but not down to collapsed policies (those sit on the axis as triangles).
std::pair<double, double> accuracy_range(const ReportInput& in, const std::vector<DesignPoint>& all,
                                         Objective split) {
  std::vector<double> acc;
  const double fp32 = fp32_on_split(in, split);
  double best = fp32;
  auto see = [&](double a) {
    if (!std::isfinite(a)) return;
    acc.push_back(a);
    if (!std::isfinite(best) || a > best) best = a;
  };
  for (const auto& p : all)
    if (p.kind != "fp32") see(objective_value(p, split));
  if (acc.empty()) return {0, 100};
  // At most 30 points below the best: the range a deployment would consider.
  double floor_acc = best - 30;
  double lo = best;
  for (double a : acc)
    if (a >= floor_acc) lo = std::min(lo, a);
  if (std::isfinite(fp32)) lo = std::min(lo, fp32);
  // Headroom above the best point so that its marker and label stay inside.
  svg::Ticks t = svg::nice_ticks(lo, best + 0.06 * std::max(best - lo, 1.0), 6);
  return {std::max(0.0, t.lo), std::min(100.0, t.hi)};
}

std::string layer_plots(const ReportInput& in) {
  std::string o;
  std::map<std::string, const LayerRow*> ref;
  for (const auto& l : in.layers_w8a8) ref[l.name] = &l;
  std::vector<std::string> names, tips;
  for (size_t i = 0; i < in.layers.size(); ++i) {
    const auto& l = in.layers[i];
    names.push_back(l.name);
    tips.push_back(
        fmt::format("#{} {} ({}), MACs {}, params {}", i, l.name, l.op, l.macs, l.params));
  }
  const double width = 1180;

  svg::BarChart bits;
  bits.title = "Chosen policy: bits per layer";
  bits.y_label = "bits";
  bits.categories = names;
  bits.tooltips = tips;
  bits.width_px = width;
  bits.y_max = 8;
  bits.y_ticks = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  svg::BarGroup w{"weight bits", "#1f77b4", {}, {}}, a{"activation bits", "#ff7f0e", {}, {}};
  for (const auto& l : in.layers) {
    w.values.push_back(l.fp32 ? kNaN : l.w_bits);
    a.values.push_back(l.fp32 ? kNaN : l.a_bits);
    w.labels.push_back(l.fp32 ? "fp32" : std::to_string(l.w_bits));
    a.labels.push_back(l.fp32 ? "fp32" : std::to_string(l.a_bits));
  }
  bits.groups = {w, a};
  o += "<figure>" + bits.render() + "</figure>\n";

  auto cost_chart = [&](const std::string& title, double LayerRow::*field, Unit unit) {
    svg::BarChart c;
    c.title = title;
    c.y_label = unit.name;
    c.categories = names;
    c.tooltips = tips;
    c.width_px = width;
    svg::BarGroup chosen{"chosen", "#d62728", {}, {}}, w8{"W8A8", "#9e9e9e", {}, {}};
    bool any_ref = false;
    for (const auto& l : in.layers) {
      chosen.values.push_back(l.*field * unit.scale);
      auto it = ref.find(l.name);
      w8.values.push_back(it == ref.end() ? kNaN : it->second->*field * unit.scale);
      any_ref = any_ref || it != ref.end();
    }
    c.groups =
        any_ref ? std::vector<svg::BarGroup>{chosen, w8} : std::vector<svg::BarGroup>{chosen};
    return "<figure>" + c.render() + "</figure>\n";
  };
  double max_lat = 0, max_e = 0;
  for (const auto* rows : {&in.layers, &in.layers_w8a8})
    for (const auto& l : *rows) {
      if (std::isfinite(l.latency_s)) max_lat = std::max(max_lat, l.latency_s);
      if (std::isfinite(l.energy_pj)) max_e = std::max(max_e, l.energy_pj);
    }
  o += cost_chart("Latency per layer: chosen vs W8A8", &LayerRow::latency_s, time_unit(max_lat));
  o += cost_chart("Energy per layer: chosen vs W8A8", &LayerRow::energy_pj, energy_unit(max_e));
  return o;
}

std::string layer_table(const ReportInput& in) {
  std::map<std::string, const LayerRow*> ref;
  for (const auto& l : in.layers_w8a8) ref[l.name] = &l;
  double max_lat = 0, max_e = 0;
  for (const auto& l : in.layers) {
    if (std::isfinite(l.latency_s)) max_lat = std::max(max_lat, l.latency_s);
    if (std::isfinite(l.energy_pj)) max_e = std::max(max_e, l.energy_pj);
  }
  Unit lu = time_unit(max_lat), eu = energy_unit(max_e);
  std::string o = "<div class=\"scroll\"><table>\n";
  o += fmt::format(
      "<tr><th>#</th><th class=\"l\">layer</th><th class=\"l\">op</th><th>w bits</th><th>a "
      "bits</th>"
      "<th>latency ({})</th><th>\u00d7 W8A8</th><th>energy ({})</th><th>\u00d7 W8A8</th><th>size "
      "(kB)</th>"
      "<th>MACs</th><th>params</th><th class=\"l\">bound</th></tr>\n",
      escape(lu.name), escape(eu.name));
  for (size_t i = 0; i < in.layers.size(); ++i) {
    const LayerRow& l = in.layers[i];
    auto it = ref.find(l.name);
    const LayerRow* r = it == ref.end() ? nullptr : it->second;
    o += "<tr>" + td(std::to_string(i)) + td(l.name, "l") + td(l.op, "l") +
         td(l.fp32 ? "fp32" : std::to_string(l.w_bits)) +
         td(l.fp32 ? "fp32" : std::to_string(l.a_bits)) + td(show(l.latency_s * lu.scale)) +
         td(show_ratio(r ? ratio(l.latency_s, r->latency_s) : kNaN)) +
         td(show(l.energy_pj * eu.scale)) +
         td(show_ratio(r ? ratio(l.energy_pj, r->energy_pj) : kNaN)) + td(show(l.size_bits / 8e3)) +
         td(std::to_string(l.macs)) + td(std::to_string(l.params)) +
         td(l.bound.empty() ? "\u2013" : l.bound, "l") + "</tr>\n";
  }
  return o + "</table></div>\n";
}

}  // namespace

std::string report_html(const ReportInput& in) {
  const Units u = pick_units(in);
  const std::vector<DesignPoint> all = candidate_points(in);
  const std::string where = in.profile_name.empty() ? in.profile : in.profile_name;
  std::string o;
  o += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  o += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
  o += fmt::format("<title>haq report: {} on {}</title>\n", escape(in.model), escape(where));
  o += std::string("<style>") + kCss + "</style>\n</head>\n<body>\n<main>\n";
  o += fmt::format("<h1>haq report: {} on {}</h1>\n", escape(in.model), escape(where));

  // Header facts.
  std::string budgets;
  for (const auto& b : in.budgets) budgets += (budgets.empty() ? "" : ", ") + b.text;
  std::vector<std::pair<std::string, std::string>> meta = {
      {"model", in.model},
      {"hardware profile",
       in.profile_name.empty() ? in.profile : in.profile_name + " (" + in.profile + ")"},
      {"data", in.data},
      {"algorithm", in.algo},
      {"budgets", budgets.empty() ? "none" : budgets},
      {"seed", std::to_string(in.seed)},
      {"haq version", in.version},
  };
  for (const auto& f : in.facts) meta.push_back(f);
  o += "<dl class=\"meta\">\n";
  for (const auto& [k, v] : meta)
    o += fmt::format("<dt>{}</dt><dd>{}</dd>\n", escape(k), escape(v));
  o += "</dl>\n";

  // Summary table.
  o += "<h2>Summary</h2>\n";
  o += "<p class=\"note\">Accuracy: top-1 on the test split where measured (search split "
       "otherwise, marked *). "
       "Ratios (\u00d7) are to the all-8-bit policy (W8A8) on the same profile. Uniform k-bit "
       "keeps the first "
       "and last layers at 8 bits.</p>\n";
  o += "<div class=\"scroll\"><table>\n";
  o += fmt::format(
      "<tr><th class=\"l\">policy</th><th>accuracy %</th><th>\u0394 fp32</th><th>latency ({})</th>"
      "<th>\u00d7 W8A8</th><th>energy ({})</th><th>\u00d7 W8A8</th><th>size ({})</th><th>\u00d7 "
      "W8A8</th>"
      "<th>meets budgets</th></tr>\n",
      escape(u.latency.name), escape(u.energy.name), escape(u.size.name));
  auto row = [&](const DesignPoint& p, const char* cls) {
    double acc = p.accuracy();
    std::string acc_s =
        show_acc(acc) + (std::isfinite(p.acc_test) || !std::isfinite(acc) ? "" : "*");
    std::string delta = std::isfinite(acc) && std::isfinite(in.fp32_acc)
                            ? fmt::format("{:+.2f}", acc - in.fp32_acc)
                            : "\u2013";
    o += (cls ? fmt::format("<tr class=\"{}\">", cls) : std::string("<tr>")) +
         td(short_label(p), "l") + td(acc_s) + td(delta) + td(show(p.latency_s * u.latency.scale)) +
         td(show_ratio(ratio(p.latency_s, in.w8a8_latency_s))) +
         td(show(p.energy_pj * u.energy.scale)) +
         td(show_ratio(ratio(p.energy_pj, in.w8a8_energy_pj))) +
         td(show(p.size_bits * u.size.scale)) +
         td(show_ratio(ratio(p.size_bits, in.w8a8_size_bits))) +
         (p.kind == "fp32" ? std::string("<td>\u2013</td>")
                           : met_cell(meets_budgets(p, in.budgets))) +
         "</tr>\n";
  };
  for (const auto& p : in.baselines) row(p, p.kind == "w8a8" ? "w8a8" : nullptr);
  if (!in.chosen.label.empty()) row(in.chosen, "chosen");
  o += "</table></div>\n";
  if (in.chosen.label.empty())
    o += "<p class=\"note\">No policy was found that meets the budgets.</p>\n";

  // Budgets of the chosen policy.
  if (!in.budgets.empty() && !in.chosen.label.empty()) {
    o += "<p class=\"note\">";
    bool first = true;
    for (const auto& b : in.budgets) {
      double v = metric_value(in.chosen, b.metric);
      int met = meets_budgets(in.chosen, {b});
      Unit unit = b.metric == "latency"  ? u.latency
                  : b.metric == "energy" ? u.energy
                  : b.metric == "size"   ? u.size
                                         : u.bops;
      o += fmt::format(
          "{}Budget <b>{}</b>: chosen {} {} of a {} {} limit: <span class=\"{}\">{}</span>",
          first ? "" : "<br/>", escape(b.text), escape(show(v * unit.scale)), escape(unit.name),
          escape(show(b.limit * unit.scale)), escape(unit.name), met == 1 ? "yes" : "no",
          met == 1   ? "met"
          : met == 0 ? "NOT met"
                     : "unknown");
      first = false;
    }
    o += "</p>\n";
  }

  // Scatter plots.
  const Objective split = report_accuracy(in);
  auto [y_lo, y_hi] = accuracy_range(in, all, split);
  std::vector<Axis> axes = {
      {"lat", "Accuracy vs latency", "latency", Objective::latency, &DesignPoint::latency_s,
       u.latency, "latency"},
      {"energy", "Accuracy vs energy", "energy", Objective::energy, &DesignPoint::energy_pj,
       u.energy, "energy"},
      {"size", "Accuracy vs model size", "size", Objective::size, &DesignPoint::size_bits, u.size,
       "weight size"},
      {"bops", "Accuracy vs bit operations", "bops", Objective::bops, &DesignPoint::bops, u.bops,
       "bit operations"},
  };
  o += "<h2>Accuracy vs cost</h2>\n";
  o += fmt::format(
      "<p class=\"note\">Accuracy on the {} for every point, so that points compare (the tables "
      "give the test split). Faint dots: every evaluated policy. Line: the policies no other "
      "policy beats in both accuracy and that cost. Dashed red: the budget. Hover a point for its "
      "figures; pareto.json has the front over all four objectives, points.csv every point.</p>\n",
      split == Objective::acc_search ? "search's evaluation split"
      : split == Objective::acc_test ? "test split"
                                     : "test split where measured, else the search split");
  o += "<div class=\"grid\">\n";
  for (const auto& ax : axes) {
    bool any = false;
    for (const auto& p : all) any = any || std::isfinite(p.*ax.field);
    if (!any) continue;
    o += "<figure>" + scatter(in, all, ax, split, y_lo, y_hi, u) + "</figure>\n";
  }
  o += progress_plot(in, split, y_lo, y_hi);
  o += "</div>\n";

  // Per layer.
  if (!in.layers.empty()) {
    o += "<h2>Chosen policy per layer</h2>\n";
    o += layer_plots(in);
    o += layer_table(in);
  }

  // The front.
  const std::vector<size_t> front = report_front(in);
  o += fmt::format("<h2>Pareto front ({} policies)</h2>\n", front.size());
  o += fmt::format(
      "<p class=\"note\">Non-dominated over accuracy ({}), latency, energy and size, ordered by "
      "latency. The policy lists w/a bits per layer in layer order.</p>\n",
      split == Objective::acc_search ? "search split"
      : split == Objective::acc_test ? "test split"
                                     : "test where measured, else search");
  o += "<div class=\"scroll\"><table>\n";
  o += fmt::format(
      "<tr><th class=\"l\">label</th><th>search acc %</th><th>test acc %</th><th>latency "
      "({})</th><th>\u00d7 W8A8</th>"
      "<th>energy ({})</th><th>\u00d7 W8A8</th><th>size ({})</th><th "
      "class=\"l\">policy</th></tr>\n",
      escape(u.latency.name), escape(u.energy.name), escape(u.size.name));
  const size_t kMaxRows = 60;
  for (size_t r = 0; r < front.size() && r < kMaxRows; ++r) {
    const DesignPoint& p = all[front[r]];
    o += std::string(p.kind == "chosen" ? "<tr class=\"chosen\">" : "<tr>") +
         td(short_label(p), "l") + td(show_acc(p.acc_search)) + td(show_acc(p.acc_test)) +
         td(show(p.latency_s * u.latency.scale)) +
         td(show_ratio(ratio(p.latency_s, in.w8a8_latency_s))) +
         td(show(p.energy_pj * u.energy.scale)) +
         td(show_ratio(ratio(p.energy_pj, in.w8a8_energy_pj))) +
         td(show(p.size_bits * u.size.scale)) + td(quant::policy_key(p.policy), "key") + "</tr>\n";
  }
  o += "</table></div>\n";
  if (front.size() > kMaxRows)
    o += fmt::format("<p class=\"note\">{} more in pareto.json.</p>\n", front.size() - kMaxRows);

  o += "<h2>Files</h2>\n<ul>\n"
       "<li><code>pareto.json</code>: the front with objectives and per-layer bits</li>\n"
       "<li><code>points.csv</code>: every evaluated policy (search and test accuracy, costs, "
       "ratios)</li>\n"
       "<li><code>report.md</code>: this summary as Markdown, for a review</li>\n"
       "<li><code>policy.json</code>: the chosen policy, input of <code>haq eval</code>, "
       "<code>simulate</code>, "
       "<code>check</code>, <code>export</code> (written by <code>haq search</code>)</li>\n"
       "</ul>\n";
  o += fmt::format("<footer>Generated by haq {}.</footer>\n", escape(in.version));
  o += "</main>\n</body>\n</html>\n";
  return o;
}

}  // namespace haq::report
