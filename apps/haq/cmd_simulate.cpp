// haq simulate: per-layer latency and energy of a policy on a hardware profile.
#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/format.h>

#include "command.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/hw/measured.h"
#include "haq/hw/profile.h"
#include "haq/hw/simulate.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"

namespace {

struct SimulateOptions {
  std::string model;
  std::string profile;
  std::string bits;      ///< e.g. "w4a8"; default: the profile's highest bits
  std::string policy;    ///< policy.json
  int64_t batch = 0;     ///< 0: the profile's batch
  bool json = false;
  std::string table_out;  ///< write the full cost table as CSV
  std::string compare;    ///< measured CSV: predicted vs measured per row
};

std::string bits_label(const haq::hw::LayerCost& c, const haq::quant::LayerBits& lb) {
  return lb.fp32 ? fmt::format("fp32*") : fmt::format("{}/{}", c.w_bits, c.a_bits);
}

std::string array_label(const haq::hw::HardwareProfile& p) {
  using haq::hw::Architecture;
  if (p.architecture == Architecture::bit_serial)
    return fmt::format("{}x{}x{}", p.bit_serial.dm, p.bit_serial.dk, p.bit_serial.dn);
  if (p.architecture == Architecture::bit_fusion)
    return fmt::format("{}x{}", p.bit_fusion.rows, p.bit_fusion.cols);
  return "measured";
}

double ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

// The cost table in the CSV format a `table` profile reads.
std::string cost_table_csv(const haq::hw::CostTable& t) {
  std::string out = "layer,w_bits,a_bits,latency_s,energy_pj\n";
  for (size_t i = 0; i < t.num_layers(); ++i)
    for (int w = t.w_range.min_bits; w <= t.w_range.max_bits; ++w)
      for (int a = t.a_range.min_bits; a <= t.a_range.max_bits; ++a) {
        const auto& c = t.at(i, w, a);
        out += fmt::format("{},{},{},{:.9g},{:.9g}\n", t.layer_names[i], w, a, c.latency_s, c.energy_pj);
      }
  return out;
}

int run_simulate(const SimulateOptions& o) {
  using namespace haq;
  for (const auto& input : {o.model, o.profile, o.policy, o.compare}) register_run_input(input);
  if (!o.table_out.empty()) check_output_target(o.table_out);  // before any work
  hw::HardwareProfile profile = hw::load_profile(o.profile);
  if (o.batch > 0 && o.batch != profile.batch && profile.architecture == hw::Architecture::table)
    fail(ErrorKind::usage, "", "--batch",
         "profile '{}' is a measured table at batch {}; its costs cannot be rescaled to batch {}", profile.name,
         profile.batch, o.batch);
  if (o.batch > 0) profile.batch = o.batch;
  model::Graph graph = model::import_onnx(o.model);
  if (graph.layers.empty())
    fail(ErrorKind::unsupported, o.model, "", "the model has no quantizable layers (Conv, Gemm, MatMul with constant weights)");
  if (!o.compare.empty()) {
    // Each row carries its own layer and bits: no policy.
    const hw::MeasuredSet measured = hw::read_measured_csv(o.compare);
    const hw::Comparison c =
        hw::compare_measured(hw::resolve_measured(measured, &graph, o.model), measured.in_cycles, profile);
    if (o.json) {
      nlohmann::json j = {{"model", o.model}, {"profile", hw::profile_to_json(profile)}, {"batch", profile.batch},
                          {"measured", o.compare}, {"compare", hw::to_json(c)}};
      fmt::print("{}\n", j.dump(2));
    } else {
      fmt::print("profile:  {} ({}, {} @ {} MHz, batch {})\n", profile.name, hw::to_string(profile.architecture),
                 array_label(profile), profile.clock_mhz, profile.batch);
      fmt::print("measured: {} ({} rows, latency in {})\n\n{}", o.compare, c.rows.size(),
                 measured.in_cycles ? "cycles" : "seconds", hw::format_comparison(c));
    }
    return 0;
  }

  quant::Policy policy;
  std::string policy_label;
  if (!o.policy.empty()) {
    policy = quant::load_policy(o.policy, graph);
    policy_label = o.policy;
  } else {
    std::string spec = o.bits.empty() ? fmt::format("w{}a{}", profile.w_bits.max_bits, profile.a_bits.max_bits) : o.bits;
    auto [w, a] = quant::parse_bits_spec(spec);
    policy = quant::uniform_policy(graph, w, a);
    if (w == 0)
      for (auto& l : policy.layers) l.fp32 = true;
    policy_label = spec;
  }

  auto t0 = std::chrono::steady_clock::now();
  const hw::CostTable table = hw::build_cost_table(graph, profile);
  double table_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const hw::CostReport report = hw::evaluate(table, policy);
  const hw::CostReport base = hw::evaluate_max_bits(table);
  const std::string base_label = fmt::format("all-w{}a{}", table.w_range.max_bits, table.a_range.max_bits);

  if (!o.table_out.empty()) {
    write_file_atomic(o.table_out, cost_table_csv(table));
    fmt::print(stderr, "haq: cost table: {} layers x {} bit pairs built in {:.1f} ms, written to {}\n",
               table.num_layers(),
               (table.w_range.max_bits - table.w_range.min_bits + 1) * (table.a_range.max_bits - table.a_range.min_bits + 1),
               table_ms, o.table_out);
  }

  if (o.json) {
    nlohmann::json j;
    j["model"] = o.model;
    j["profile"] = hw::profile_to_json(profile);
    j["policy"] = policy_label;
    j["policy_key"] = quant::policy_key(policy);
    j["batch"] = profile.batch;
    j["report"] = hw::to_json(report);
    j["baseline"] = {{"policy", base_label}, {"latency_s", base.latency_s}, {"energy_pj", base.energy_pj},
                     {"cycles", base.cycles}};
    j["ratio_to_baseline"] = {{"latency", ratio(report.latency_s, base.latency_s)},
                              {"energy", ratio(report.energy_pj, base.energy_pj)}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }

  fmt::print("model:   {} ({} quantizable layers)\n", o.model, graph.layers.size());
  fmt::print("profile: {} ({}, {} @ {} MHz, batch {})\n", profile.name, hw::to_string(profile.architecture),
             array_label(profile), profile.clock_mhz, profile.batch);
  fmt::print("policy:  {}\n\n", policy_label);
  size_t name_w = 5;
  for (const auto& c : report.layers) name_w = std::max(name_w, c.layer.size());
  name_w = std::min<size_t>(name_w, 40);
  fmt::print("{:<{}}  {:>5}  {:>13}  {:>13}  {:>13}  {:>12}  {:>8}  {:>12}  {:>12}\n", "layer", name_w, "w/a",
             "MACs", "compute_cyc", "stall_cyc", "DRAM_kbit", "bound", "latency_us", "energy_uJ");
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const auto& c = report.layers[i];
    std::string bound = c.fits ? hw::to_string(c.bound) : "NO-FIT";
    fmt::print("{:<{}}  {:>5}  {:>13}  {:>13}  {:>13}  {:>12.1f}  {:>8}  {:>12.3f}  {:>12.3f}\n", c.layer, name_w,
               bits_label(c, policy.layers[i]), c.macs, c.compute_cycles, c.stall_cycles,
               double(c.dram_read_bits + c.dram_write_bits) / 1e3, bound, c.latency_s * 1e6, c.energy_pj * 1e-6);
  }
  fmt::print("{:<{}}  {:>5}  {:>13}  {:>13}  {:>13}  {:>12.1f}  {:>8}  {:>12.3f}  {:>12.3f}\n", "total", name_w, "",
             "", report.compute_cycles, report.stall_cycles, double(report.dram_bits) / 1e3,
             fmt::format("{}mem", report.memory_bound_layers), report.latency_s * 1e6, report.energy_pj * 1e-6);
  fmt::print("\nenergy split: compute {:.3f} uJ, SRAM {:.3f} uJ, DRAM {:.3f} uJ\n", report.energy_compute_pj * 1e-6,
             report.energy_sram_pj * 1e-6, report.energy_dram_pj * 1e-6);
  fmt::print("weights: {:.1f} kB; BOPs per sample: {:.4g}\n", double(report.size_bits) / 8e3, report.bops);
  fmt::print("vs {} on {}: latency {:.3f}x ({:.3f} us), energy {:.3f}x ({:.3f} uJ)\n", base_label, profile.name,
             ratio(report.latency_s, base.latency_s), base.latency_s * 1e6, ratio(report.energy_pj, base.energy_pj),
             base.energy_pj * 1e-6);
  for (size_t i = 0; i < report.layers.size(); ++i)
    if (policy.layers[i].fp32) {
      fmt::print("* fp32 layers are costed at the profile's highest bits (the accelerator has no float path)\n");
      break;
    }
  if (!report.fits) {
    for (const auto& c : report.layers)
      if (!c.fits) fmt::print(stderr, "haq: warning: layer '{}' does not fit: {}\n", c.layer, c.reason);
  }
  return 0;
}

haq::app::Run setup_simulate(CLI::App& sub) {
  auto opts = std::make_shared<SimulateOptions>();
  sub.description("Simulate the per-layer latency and energy of a policy on a hardware profile\n"
                  "(bit-serial, bit-fusion or a measured table; see docs/hardware-profiles.md), with\n"
                  "totals and the ratio to the all-8-bit policy on the same profile.");
  sub.add_option("MODEL", opts->model, "ONNX model file")->required();
  sub.add_option("--hw", opts->profile, "hardware profile JSON (hardware-profiles/*.json)")->required();
  auto* bits = sub.add_option("--bits", opts->bits,
                              "uniform bits for every layer: wWaA (e.g. w4a8), a single bitwidth, or fp32 "
                              "(default: the profile's highest, usually w8a8)");
  auto* policy = sub.add_option("--policy", opts->policy, "policy.json with per-layer bits")->excludes(bits);
  sub.add_option("--batch", opts->batch, "inputs per inference, overriding the profile's batch")
      ->check(haq::app::int_in(1, int64_t{1} << 20));
  sub.add_flag("--json", opts->json, "print the full report (per-layer costs and mappings) as JSON");
  auto* table_out = sub.add_option("--table-out", opts->table_out,
                                   "also write the full cost table (every layer x every supported bit pair) as CSV, in "
                                   "the format a `table` profile reads; its build time goes to stderr");
  sub.add_option("--compare", opts->compare,
                 "measured CSV (docs/hardware-profiles.md, \"Measured CSV\"): print predicted vs measured latency "
                 "(and energy) per row with the signed error, and the median and worst |error|")
      ->excludes(bits)
      ->excludes(policy)
      ->excludes(table_out);
  sub.footer(
      "Examples:\n"
      "  haq simulate models/fmnist-mlp.onnx --hw hardware-profiles/bismo-edge.json --bits w4a4\n"
      "  haq simulate models/fmnist-resnet.onnx --hw hardware-profiles/bismo-cloud.json --bits w4a8\n"
      "  haq simulate models/fmnist-mobilenet.onnx --hw hardware-profiles/bitfusion.json \\\n"
      "      --policy runs/edge/policy.json --json | jq '.ratio_to_baseline'\n"
      "  haq simulate models/fmnist-resnet.onnx --hw hardware-profiles/bismo-edge.json --batch 4 \\\n"
      "      --table-out resnet-costs.csv\n"
      "  haq simulate models/fmnist-mlp.onnx --hw hardware-profiles/bismo-edge.json \\\n"
      "      --compare hardware-profiles/example-table.csv\n"
      "Exit codes: 0 ok, 2 bad model, profile, policy or bits (the message names the file and place).");
  return [opts]() { return run_simulate(*opts); };
}

}  // namespace

HAQ_REGISTER_COMMAND(simulate, 20, setup_simulate);
