#pragma once
/// \file
/// The report of a search: the Pareto front over accuracy and hardware cost,
/// and the writers of pareto.json, points.csv, report.md and report.html
/// (self-contained, inline SVG). File formats: docs/report.md.
///
/// The caller (`haq search`, `haq merge`) fills plain structs; report/ knows
/// nothing of the search, the engine or the simulators:
///
/// \code
///   report::ReportInput in;
///   in.model = "models/fmnist-mobilenet.onnx";
///   in.profile = "hardware-profiles/bismo-edge.json";
///   in.profile_name = "bismo-edge";
///   in.data = "fashion-mnist"; in.algo = "ddpg"; in.seed = 0; in.version = haq::version();
///   in.budgets = {{"latency<=0.5x", "latency", 0.5 * w8a8_latency_s}};
///   in.fp32_acc = 91.3;
///   in.w8a8_latency_s = ...; in.w8a8_energy_pj = ...; in.w8a8_size_bits = ...; in.w8a8_bops = ...;
///   in.baselines = {fp32, uniform-2 ... uniform-8, w8a8};   // DesignPoint each, in table order
///   in.points = every evaluated policy (kind "search", label "ddpg#<episode>");
///   in.chosen = the chosen policy (kind "chosen", acc_test measured);
///   in.layers = per-layer rows of the chosen policy; in.layers_w8a8 = the same for all-8-bit;
///   report::write_report(in, out_dir);  // pareto.json, points.csv, report.md, report.html
/// \endcode
///
/// Units: accuracy in percent (0..100), latency in seconds, energy in
/// picojoules, size in bits of weight storage, bops in bit operations
/// (MACs x w_bits x a_bits). NaN means "not measured / not applicable" and
/// is written as an empty CSV field, JSON null, "–" in tables, and is left
/// out of plots.

#include <cstdint>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "haq/quant/policy.h"

namespace haq::report {

/// "Not measured".
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// One evaluated policy with its objectives.
struct DesignPoint {
  std::string
      label;  ///< shown in tables and plots: "ddpg#123", "uniform-4", "fp32", "w8a8", "chosen"
  std::string kind;          ///< "search" | "uniform" | "fp32" | "w8a8" | "chosen"
  quant::Policy policy;      ///< bits per layer (may be empty for fp32)
  double acc_search = kNaN;  ///< top-1 accuracy (%) on the search's evaluation split
  double acc_test = kNaN;    ///< top-1 accuracy (%) on the held-out test split
  double acc_select = kNaN;  ///< top-1 accuracy (%) on the final choice's subset (candidates only)
  double latency_s = kNaN;   ///< model latency on the profile (s)
  double energy_pj = kNaN;   ///< model energy on the profile (pJ)
  double size_bits = kNaN;   ///< weight storage (bits)
  double bops = kNaN;        ///< bit operations, sum of MACs x w_bits x a_bits
  bool feasible = true;      ///< meets every budget
  int episode = -1;          ///< search episode that produced it; -1 for baselines

  /// The accuracy objective: acc_test if measured, else acc_search (NaN if neither).
  double accuracy() const;
};

/// One quantizable layer under some policy, with its cost on the profile.
struct LayerRow {
  std::string name;  ///< layer name (Graph::layers[i].name)
  std::string op;    ///< "Conv", "Conv(dw)", "Gemm", "MatMul", "MatMul(act)" (two activations)
  int w_bits = 8, a_bits = 8;
  bool fp32 = false;        ///< kept in floating point (w_bits/a_bits ignored)
  double latency_s = kNaN;  ///< this layer's latency (s)
  double energy_pj = kNaN;  ///< this layer's energy (pJ)
  double size_bits = kNaN;  ///< this layer's weight storage (bits)
  int64_t macs = 0;         ///< multiply-accumulates per sample
  int64_t params = 0;       ///< weight + bias elements
  std::string bound;        ///< what limits it on the profile: "compute" | "memory" | ""
};

/// One budget of the search, resolved to an absolute limit.
struct Budget {
  std::string text;     ///< as the user wrote it, e.g. "latency<=0.5x"
  std::string metric;   ///< "latency" | "energy" | "size" | "bops"
  double limit = kNaN;  ///< absolute limit in the metric's unit: s, pJ, bits, bit operations
};

/// Everything the report shows.
struct ReportInput {
  std::string model;         ///< model path as given on the command line
  std::string profile;       ///< hardware profile path
  std::string profile_name;  ///< the profile's "name"
  std::string data;          ///< dataset as given
  std::string algo;          ///< "ddpg" | "random" | "greedy" | "knapsack"
  std::vector<Budget> budgets;
  uint64_t seed = 0;
  std::string version;     ///< haq version (haq::version())
  double fp32_acc = kNaN;  ///< fp32 test accuracy (%)
  /// Extra "key: value" facts for the header, in order (episodes, evaluations,
  /// eval samples, why the search stopped...). Keep them deterministic.
  std::vector<std::pair<std::string, std::string>> facts;

  DesignPoint chosen;               ///< the chosen policy (kind "chosen"); label "" = none found
  std::vector<DesignPoint> points;  ///< every evaluated policy, in evaluation order
  std::vector<DesignPoint>
      baselines;  ///< fp32, uniform-k (k = 2..8), w8a8 — the summary rows, in order
  std::vector<LayerRow> layers;       ///< the chosen policy, per layer, in Graph::layers order
  std::vector<LayerRow> layers_w8a8;  ///< all-8-bit per layer (same order), for per-layer ratios

  /// The all-8-bit (W8A8) reference cost; the "x W8A8" columns divide by these.
  double w8a8_latency_s = kNaN, w8a8_energy_pj = kNaN, w8a8_size_bits = kNaN, w8a8_bops = kNaN;
};

/// An objective of the Pareto front.
enum class Objective {
  accuracy,    ///< DesignPoint::accuracy() (test, else search), higher is better
  acc_search,  ///< acc_search only, higher is better
  acc_test,    ///< acc_test only, higher is better
  latency,     ///< latency_s, lower is better
  energy,      ///< energy_pj, lower is better
  size,        ///< size_bits, lower is better
  bops,        ///< bops, lower is better
};

/// The accuracy/latency/energy/size objectives of pareto.json.
inline const std::vector<Objective> kDefaultObjectives = {Objective::accuracy, Objective::latency,
                                                          Objective::energy, Objective::size};

/// The point's value of an objective, as stored (costs not negated).
double objective_value(const DesignPoint& p, Objective o);

/// Indices of the non-dominated points over `objectives`. A point is
/// dominated if another is at least as good in every objective and better in
/// one. Points with a non-finite objective are never on the front. Of points
/// with identical objective vectors only the first (lowest index) is kept.
/// Order: by the first cost objective ascending (latency by default), then the
/// following ones, then accuracy descending, then index — deterministic.
std::vector<size_t> pareto_front(const std::vector<DesignPoint>& points,
                                 const std::vector<Objective>& objectives = kDefaultObjectives);

/// The rows of points.csv: the chosen policy, the baselines, then the search
/// points, with duplicates (same policy_key) merged into their first
/// occurrence (which takes acc_search/acc_test/episode from a later duplicate
/// where it has none). Points with an empty policy (e.g. fp32 given without
/// layers) are never merged. The chosen point is left out if its label is "".
std::vector<DesignPoint> candidate_points(const ReportInput& in);

/// The accuracy the report compares points by. Accuracies of two splits are
/// not comparable (the search's evaluation subset usually reads higher than
/// the test split), so one split is used for every point: acc_test if every
/// design point (not fp32, with a finite latency) has it, else acc_search if
/// every one has that, else Objective::accuracy (test where measured).
/// A search that re-measures only its front on the test split therefore
/// gets a front and plots on the search split, with test figures alongside.
Objective report_accuracy(const ReportInput& in);

/// The Pareto front over {report_accuracy(in), latency, energy, size} of
/// candidate_points(), fp32 excluded (it is a reference, not a design for
/// the accelerator): indices into candidate_points(in), in pareto_front order.
std::vector<size_t> report_front(const ReportInput& in);

/// points.csv: a header row and one row per candidate point (RFC 4180
/// quoting, '\n' line ends, numbers with up to 9 significant digits).
std::string points_csv(const ReportInput& in);

/// pareto.json (schema "haq.pareto/1"): run facts and the front's points
/// with objectives, ratios to W8A8 and per-layer bits. Keys keep the
/// documented order.
nlohmann::ordered_json pareto_json(const ReportInput& in);

/// report.md: header, summary table, budgets, chosen policy per layer, files.
std::string report_markdown(const ReportInput& in);

/// report.html: self-contained page (inline CSS and SVG, no scripts, no
/// network references).
std::string report_html(const ReportInput& in);

/// Writes pareto.json, points.csv, report.md and report.html into out_dir
/// (created if missing). All four are rendered before anything is written,
/// and each is written atomically (temporary file, then rename), so a
/// failure never leaves a half-written file. Throws Error(io) naming the file.
void write_report(const ReportInput& in, const std::filesystem::path& out_dir);

}  // namespace haq::report
