// points.csv, pareto.json, report.md and write_report.

#include <fmt/format.h>

#include <cmath>
#include <map>
#include <set>

#include "common.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/report/report.h"

namespace haq::report {

using namespace detail;

namespace {

/// CSV number: up to 9 significant digits (enough for every value we store
/// and the same on every machine), empty when not finite.
std::string csv_num(double v) {
  return std::isfinite(v) ? fmt::format("{:.9g}", v) : std::string();
}

/// RFC 4180: quote a field holding a separator, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

nlohmann::ordered_json jnum(double v) {
  return std::isfinite(v) ? nlohmann::ordered_json(v) : nlohmann::ordered_json(nullptr);
}

/// Markdown table cell: no pipes or line breaks.
std::string md_cell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n' || c == '\r')
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string met_text(int met) { return met == 1 ? "yes" : met == 0 ? "no" : "\u2013"; }

}  // namespace

std::string points_csv(const ReportInput& in) {
  const std::vector<DesignPoint> all = candidate_points(in);
  const std::vector<size_t> front = report_front(in);
  const std::set<size_t> on_front(front.begin(), front.end());
  std::string out =
      "index,label,kind,episode,feasible,pareto,acc_search,acc_test,acc_select,latency_s,energy_pj,size_bits,"
      "bops,"
      "latency_x_w8a8,energy_x_w8a8,size_x_w8a8,bops_x_w8a8,policy\n";
  for (size_t i = 0; i < all.size(); ++i) {
    const DesignPoint& p = all[i];
    out += fmt::format(
        "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n", i, csv_field(p.label),
        csv_field(p.kind), p.episode, p.feasible ? 1 : 0, on_front.count(i) ? 1 : 0,
        csv_num(p.acc_search), csv_num(p.acc_test), csv_num(p.acc_select), csv_num(p.latency_s), csv_num(p.energy_pj),
        csv_num(p.size_bits), csv_num(p.bops), csv_num(ratio(p.latency_s, in.w8a8_latency_s)),
        csv_num(ratio(p.energy_pj, in.w8a8_energy_pj)),
        csv_num(ratio(p.size_bits, in.w8a8_size_bits)), csv_num(ratio(p.bops, in.w8a8_bops)),
        csv_field(quant::policy_key(p.policy)));
  }
  return out;
}

nlohmann::ordered_json pareto_json(const ReportInput& in) {
  using J = nlohmann::ordered_json;
  const std::vector<DesignPoint> all = candidate_points(in);
  J j = J::object();
  j["schema"] = "haq.pareto/1";
  j["model"] = in.model;
  j["profile"] = in.profile;
  j["profile_name"] = in.profile_name;
  j["data"] = in.data;
  j["algo"] = in.algo;
  J budgets = J::array();
  for (const auto& b : in.budgets)
    budgets.push_back(J{{"text", b.text}, {"metric", b.metric}, {"limit", jnum(b.limit)}});
  j["budgets"] = budgets;
  j["seed"] = in.seed;
  j["version"] = in.version;
  j["objectives"] =
      J{{"accuracy", "max"}, {"latency_s", "min"}, {"energy_pj", "min"}, {"size_bits", "min"}};
  const Objective split = report_accuracy(in);
  j["accuracy_is"] = split == Objective::acc_test     ? "acc_test"
                     : split == Objective::acc_search ? "acc_search"
                                                      : "acc_test where measured, else acc_search";
  j["fp32_acc"] = jnum(in.fp32_acc);
  j["w8a8"] = J{{"latency_s", jnum(in.w8a8_latency_s)},
                {"energy_pj", jnum(in.w8a8_energy_pj)},
                {"size_bits", jnum(in.w8a8_size_bits)},
                {"bops", jnum(in.w8a8_bops)}};
  J points = J::array();
  for (size_t i : report_front(in)) {
    const DesignPoint& p = all[i];
    J e = J::object();
    e["index"] = i;  // row of points.csv
    e["label"] = p.label;
    e["kind"] = p.kind;
    e["episode"] = p.episode;
    e["feasible"] = p.feasible;
    e["accuracy"] = jnum(objective_value(p, split));
    e["acc_search"] = jnum(p.acc_search);
    e["acc_test"] = jnum(p.acc_test);
    e["acc_select"] = jnum(p.acc_select);
    e["latency_s"] = jnum(p.latency_s);
    e["energy_pj"] = jnum(p.energy_pj);
    e["size_bits"] = jnum(p.size_bits);
    e["bops"] = jnum(p.bops);
    e["latency_x_w8a8"] = jnum(ratio(p.latency_s, in.w8a8_latency_s));
    e["energy_x_w8a8"] = jnum(ratio(p.energy_pj, in.w8a8_energy_pj));
    e["size_x_w8a8"] = jnum(ratio(p.size_bits, in.w8a8_size_bits));
    e["bops_x_w8a8"] = jnum(ratio(p.bops, in.w8a8_bops));
    e["policy_key"] = quant::policy_key(p.policy);
    J layers = J::array();
    for (const auto& l : p.policy.layers) {
      if (l.fp32)
        layers.push_back(J{{"name", l.layer}, {"fp32", true}});
      else
        layers.push_back(J{{"name", l.layer}, {"w_bits", l.w_bits}, {"a_bits", l.a_bits}});
    }
    e["layers"] = layers;
    points.push_back(e);
  }
  j["count"] = points.size();
  j["points"] = points;
  return j;
}

std::string report_markdown(const ReportInput& in) {
  const Units u = pick_units(in);
  std::string o;
  o += fmt::format("# haq report: {} on {}\n\n", md_cell(in.model),
                   md_cell(in.profile_name.empty() ? in.profile : in.profile_name));
  std::string budgets;
  for (const auto& b : in.budgets) budgets += (budgets.empty() ? "" : ", ") + ("`" + b.text + "`");
  o += fmt::format("- model: `{}`\n- hardware profile: `{}` ({})\n- data: `{}`\n- algorithm: {}\n",
                   in.model, in.profile, in.profile_name, in.data, in.algo);
  o += fmt::format("- budgets: {}\n- seed: {}\n- haq version: {}\n",
                   budgets.empty() ? "none" : budgets, in.seed, in.version);
  for (const auto& [k, v] : in.facts) o += fmt::format("- {}: {}\n", k, v);

  o += "\n## Summary\n\n";
  o += "Accuracy is top-1 on the test split where measured (search split otherwise, marked *). "
       "Ratios are to the all-8-bit policy (W8A8) on the same profile.\n\n";
  o += fmt::format(
      "| policy | accuracy % | \u0394 fp32 | latency ({}) | \u00d7 W8A8 | energy ({}) | \u00d7 "
      "W8A8 | size ({}) | "
      "\u00d7 W8A8 | meets budgets |\n",
      u.latency.name, u.energy.name, u.size.name);
  o += "|---|--:|--:|--:|--:|--:|--:|--:|--:|:-:|\n";
  auto row = [&](const DesignPoint& p, bool bold) {
    double acc = p.accuracy();
    std::string acc_s =
        show_acc(acc) + (std::isfinite(p.acc_test) || !std::isfinite(acc) ? "" : "*");
    std::string name = md_cell(short_label(p));
    if (bold) name = "**" + name + "**";
    o += fmt::format(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", name, acc_s,
        std::isfinite(acc) && std::isfinite(in.fp32_acc) ? fmt::format("{:+.2f}", acc - in.fp32_acc)
                                                         : "\u2013",
        show(p.latency_s * u.latency.scale), show_ratio(ratio(p.latency_s, in.w8a8_latency_s)),
        show(p.energy_pj * u.energy.scale), show_ratio(ratio(p.energy_pj, in.w8a8_energy_pj)),
        show(p.size_bits * u.size.scale), show_ratio(ratio(p.size_bits, in.w8a8_size_bits)),
        p.kind == "fp32" ? "\u2013" : met_text(meets_budgets(p, in.budgets)));
  };
  for (const auto& p : in.baselines) row(p, false);
  if (!in.chosen.label.empty())
    row(in.chosen, true);
  else
    o += "\nNo policy was found that meets the budgets.\n";

  if (!in.budgets.empty() && !in.chosen.label.empty()) {
    o += "\n## Budgets\n\n";
    for (const auto& b : in.budgets) {
      double v = metric_value(in.chosen, b.metric);
      int met = meets_budgets(in.chosen, {b});
      Unit unit = b.metric == "latency"  ? u.latency
                  : b.metric == "energy" ? u.energy
                  : b.metric == "size"   ? u.size
                                         : u.bops;
      o += fmt::format("- `{}`: chosen {} {} of a {} {} limit \u2014 {}\n", b.text,
                       show(v * unit.scale), unit.name, show(b.limit * unit.scale), unit.name,
                       met == 1   ? "met"
                       : met == 0 ? "**NOT met**"
                                  : "unknown");
    }
  }

  if (!in.layers.empty()) {
    std::map<std::string, const LayerRow*> ref;
    for (const auto& l : in.layers_w8a8) ref[l.name] = &l;
    double max_lat = 0;
    for (const auto& l : in.layers)
      if (std::isfinite(l.latency_s)) max_lat = std::max(max_lat, l.latency_s);
    Unit lu = time_unit(max_lat), eu = energy_unit(0);
    double max_e = 0;
    for (const auto& l : in.layers)
      if (std::isfinite(l.energy_pj)) max_e = std::max(max_e, l.energy_pj);
    eu = energy_unit(max_e);
    o += "\n## Chosen policy per layer\n\n";
    o += fmt::format(
        "| # | layer | op | w bits | a bits | latency ({}) | \u00d7 W8A8 | energy ({}) | \u00d7 "
        "W8A8 | size (kB) | "
        "MACs | bound |\n",
        lu.name, eu.name);
    o += "|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|\n";
    for (size_t i = 0; i < in.layers.size(); ++i) {
      const LayerRow& l = in.layers[i];
      auto it = ref.find(l.name);
      const LayerRow* r = it == ref.end() ? nullptr : it->second;
      o += fmt::format(
          "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", i, md_cell(l.name),
          md_cell(l.op), l.fp32 ? "fp32" : std::to_string(l.w_bits),
          l.fp32 ? "fp32" : std::to_string(l.a_bits), show(l.latency_s * lu.scale),
          show_ratio(r ? ratio(l.latency_s, r->latency_s) : kNaN), show(l.energy_pj * eu.scale),
          show_ratio(r ? ratio(l.energy_pj, r->energy_pj) : kNaN), show(l.size_bits / 8e3), l.macs,
          md_cell(l.bound.empty() ? "\u2013" : l.bound));
    }
  }

  const std::vector<size_t> front = report_front(in);
  o += "\n## Files\n\n";
  o += "- `report.html` \u2014 this summary with plots (self-contained; open in a browser)\n";
  o += fmt::format(
      "- `pareto.json` \u2014 the {} non-dominated policies (accuracy, latency, energy, size)\n",
      front.size());
  o += fmt::format(
      "- `points.csv` \u2014 every evaluated policy ({} distinct) with its objectives\n",
      candidate_points(in).size());
  o += "- `policy.json` \u2014 the chosen policy (input of `haq eval`, `simulate`, `check`, "
       "`export`), and "
       "`search.jsonl` \u2014 one line per episode, when written by `haq search`\n";
  return o;
}

void write_report(const ReportInput& in, const std::filesystem::path& out_dir) {
  // Render everything first: a failure here writes nothing.
  const std::vector<std::pair<std::string, std::string>> files = {
      {"pareto.json", pareto_json(in).dump(2) + "\n"},
      {"points.csv", points_csv(in)},
      {"report.md", report_markdown(in)},
      {"report.html", report_html(in)},
  };
  ensure_output_dir(out_dir);
  // A folder in the way would fail only at its rename; check all targets first.
  for (const auto& [name, content] : files) {
    std::error_code ec;
    if (std::filesystem::is_directory(out_dir / name, ec))
      fail(ErrorKind::io, (out_dir / name).string(), "",
           "is a folder, cannot write the report file there");
  }
  for (const auto& [name, content] : files) write_file_atomic(out_dir / name, content);
}

}  // namespace haq::report
