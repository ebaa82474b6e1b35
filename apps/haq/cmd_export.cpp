// haq export: the model under a policy as a standard QDQ ONNX model
// (docs/export.md). Calibrates exactly as `haq eval --policy` does (as the
// policy records), so the exported model reproduces eval's integer arithmetic.
#include <memory>
#include <optional>
#include <set>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.h"
#include "data_args.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/rng.h"
#include "haq/data/dataset.h"
#include "haq/engine/engine.h"
#include "haq/export/export.h"
#include "haq/model/equalize.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"
#include "haq/search/measurement.h"

namespace {

struct ExportOptions {
  std::string model, policy, data, out;
  int64_t calib = 512, batch = 0;  // batch 0: chosen (data::choose_batch)
  uint64_t seed = 0;
  haq::app::DataArgs data_args;
  bool json = false, equalize = false;
  std::string weight_rounding;  // "": as the policy records (nearest if it records none)
  std::string act_quant;        // "": as the policy records (asymmetric if it records nothing)
  std::string rounding_cache;
  std::set<std::string> given;  ///< options given on the command line (they override the policy's record)
};

int run_export(const ExportOptions& o) {
  using namespace haq;
  if (o.out.empty()) fail(ErrorKind::usage, "", "--out", "missing the output file");
  const quant::WeightRounding rounding =
      o.weight_rounding.empty() ? quant::WeightRounding::nearest : quant::parse_weight_rounding(o.weight_rounding);
  const std::optional<quant::ActQuantMode> act_quant =
      o.act_quant.empty() ? std::nullopt : std::optional(quant::parse_act_quant(o.act_quant));
  // The output policy, before any work: never onto an input, a link or a device;
  // one writer at a time in the output's folder.
  register_run_input(o.model);
  register_run_input(o.policy);
  check_output_target(o.out);
  const std::filesystem::path out_dir =
      std::filesystem::path(o.out).parent_path().empty() ? "." : std::filesystem::path(o.out).parent_path();
  OutputDirLock out_lock;
  if (haq::path_is_directory(out_dir)) out_lock = OutputDirLock(out_dir);
  const data::Preprocess pre = data::parse_preprocess(o.data_args.preprocess);
  model::ImportOptions io;
  io.batch = 1;  // per-sample shapes first; re-imported at the batch below
  model::Graph g = model::import_onnx(o.model, io);
  const quant::Policy policy = quant::load_policy(o.policy, g);
  const data::DataSpec spec = search::data_spec_for(o.data, pre, o.data_args.labels, g);
  // Calibrated as the policy records (the search's calibration samples and
  // quantizer, as `haq eval --policy` measures), unless options say
  // otherwise; a policy without a record as `haq eval --calib N --seed S`.
  const search::RecordedMeasurement recorded = search::read_recorded_measurement(o.policy);
  auto overrides = [&](const char* option) { return !recorded.recorded || o.given.count(option) > 0; };
  search::MeasurementOverrides ov;
  if (overrides("--calib")) ov.calib_samples = o.calib;
  if (overrides("--seed")) ov.seed = o.seed;
  if (overrides("--batch")) ov.batch = o.batch;
  if (o.equalize) ov.equalize = true;  // equalized if asked, or if the policy was searched so
  // Rounded as asked, else as the policy was searched: the QDQ model carries those levels.
  if (!o.weight_rounding.empty()) ov.weight_rounding = rounding;
  if (act_quant) ov.act_quant = act_quant;
  const search::MeasurementSetup ms =
      search::apply_overrides(recorded.recorded ? recorded.setup : search::eval_measurement_defaults(), ov);
  const search::RoundingCacheChoice cache = search::rounding_cache_choice(
      o.given.count("--rounding-cache") ? std::optional<std::string>(o.rounding_cache) : std::nullopt,
      ms.weight_rounding, o.policy);
  const data::Dataset train = data::load_dataset(spec, data::Split::train);
  search::print_data_note(train, train, g);
  const auto calib_idx = search::draw_samples(train, ms.calib_samples, ms.seed, ms.calib_stream);
  g = search::graph_at_batch(std::move(g), o.model,
                          data::choose_batch(ms.batch, search::largest_activation(g),
                                             static_cast<int64_t>(calib_idx.size())),
                          io);
  const engine::EngineOptions eo = search::engine_options(ms, g.batch);
  if (eo.equalize) {
    // The QDQ model carries quantized layers' weights; an fp32 layer keeps the
    // source model's, which equalization would have rescaled.
    model::Graph probe = g;
    for (const auto& pair : model::equalize_cross_layer(probe, 1).pairs)
      for (const std::string& name : {pair.first, pair.second}) {
        const int i = probe.find_layer(name);
        if (i >= 0 && policy.layers[static_cast<size_t>(i)].fp32)
          fail(ErrorKind::unsupported, o.policy, fmt::format("layer '{}'", name),
               "is fp32 in the policy but cross-layer equalized with '{}': export writes only quantized "
               "layers' weights, so quantize both or export without equalization",
               name == pair.first ? pair.second : pair.first);
      }
  }
  engine::Engine e(std::move(g), eo);
  e.calibrate(train, calib_idx);
  if (eo.weight_rounding == quant::WeightRounding::adaround) (void)search::round_policy_weights(e, policy, cache);
  exporter::export_qdq(e, policy, o.model, o.out);
  size_t quantized = 0;
  for (const auto& l : policy.layers) quantized += l.fp32 ? 0 : 1;
  if (o.json) {
    const nlohmann::json j = {{"out", o.out},
                              {"model", o.model},
                              {"policy", o.policy},
                              {"layers", policy.layers.size()},
                              {"quantized_layers", quantized},
                              {"policy_key", quant::policy_key(policy)},
                              {"calibration_samples", calib_idx.size()},
                              {"seed", ms.seed},
                              {"weight_rounding", quant::to_string(eo.weight_rounding)},
                              {"act_quant", quant::to_string(eo.act_quant)}};
    fmt::print("{}\n", j.dump(2));
    return 0;
  }
  fmt::print("wrote {}: {} of {} layers quantized ({}), calibrated on {} train samples\n", o.out, quantized,
             policy.layers.size(), quant::policy_key(policy), calib_idx.size());
  return 0;
}

haq::app::Run setup_export(CLI::App& sub) {
  auto o = std::make_shared<ExportOptions>();
  sub.description(
      "Write MODEL under POLICY as a standard ONNX model with QuantizeLinear/DequantizeLinear\n"
      "pairs (int8/uint8 containers holding b-bit levels) that ONNX Runtime runs. Activation\n"
      "ranges are calibrated on the train split exactly as haq eval --policy does: as the\n"
      "policy records (the search's calibration samples), unless --calib/--seed/--batch say otherwise.");
  sub.add_option("MODEL", o->model, "ONNX model file")->required();
  sub.add_option("--policy", o->policy, "policy.json (from haq search)")->required();
  sub.add_option("--data", o->data, "calibration data (as for haq eval)")->required();
  sub.add_option("--out", o->out, "output .onnx file (written atomically)")->required();
  sub.add_option("--calib", o->calib,
                 "calibration samples from the train split (default: as the policy records, else 512)")
      ->check(haq::app::int_in(1, int64_t{1} << 30))
      ->capture_default_str();
  sub.add_option("--batch", o->batch,
                 "batch size for calibration, models with a symbolic batch (default: chosen as for "
                 "haq eval)")
      ->check(haq::app::int_in(1, int64_t{1} << 16));
  haq::app::add_data_args(sub, o->data_args);
  sub.add_option("--seed", o->seed,
                 "seed for choosing the calibration samples, 0..2^63-1 (default: as the policy records, else 0)")
      ->check(haq::app::seed_value())
      ->capture_default_str();
  sub.add_flag("--json", o->json, "print what was written as JSON (fields in docs/export.md)");
  sub.add_option("--weight-rounding", o->weight_rounding,
                 "nearest or adaround (default: as the policy records; docs/quantization.md)");
  sub.add_option("--act-quant", o->act_quant,
                 "symmetric or asymmetric activations (default: as the policy records; docs/quantization.md)");
  sub.add_flag("--equalize", o->equalize,
               "cross-layer equalization before calibration (on anyway when the policy records it)");
  sub.add_option("--rounding-cache", o->rounding_cache,
                 "under adaround, a rounding cache file to read and update (default: the rounding-cache.bin "
                 "beside --policy, read only, if there is one; \"none\": no cache)");
  sub.footer(
      "Example:\n"
      "  haq export models/fmnist-mobilenet.onnx --policy runs/edge/policy.json --data fashion-mnist \\\n"
      "      --out mobilenet.qdq.onnx\n"
      "Exit codes: 0 ok, 2 bad input or unsupported layer, 3 internal error.");
  CLI::App* app = &sub;
  return [o, app]() {
    for (const char* name : {"--calib", "--seed", "--batch", "--rounding-cache"})
      if (app->get_option(name)->count() > 0) o->given.insert(name);
    return run_export(*o);
  };
}

}  // namespace

HAQ_REGISTER_COMMAND(export, 60, setup_export);
