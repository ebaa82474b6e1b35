// haq export: the model under a policy as a standard QDQ ONNX model
// (docs/export.md). Calibrates exactly as `haq eval` does, so the exported
// model reproduces eval's integer arithmetic.
#include <memory>
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
};

int run_export(const ExportOptions& o) {
  using namespace haq;
  if (o.out.empty()) fail(ErrorKind::usage, "", "--out", "missing the output file");
  const quant::WeightRounding rounding =
      o.weight_rounding.empty() ? quant::WeightRounding::nearest : quant::parse_weight_rounding(o.weight_rounding);
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
  const data::Dataset train = data::load_dataset(spec, data::Split::train);
  search::print_data_note(train, train, g);
  // The same calibration samples as `haq eval --calib N --seed S`.
  const auto calib_idx = data::sample_indices(train, o.calib, haq::derive_seed(o.seed, "eval.calib"));
  g = search::graph_at_batch(std::move(g), o.model,
                          data::choose_batch(o.batch, search::largest_activation(g),
                                             static_cast<int64_t>(calib_idx.size())),
                          io);
  engine::EngineOptions eo;
  eo.batch = g.batch;
  eo.seed = o.seed;
  // Equalized if asked, or if the policy was searched on equalized weights.
  const search::RecordedMeasurement recorded = search::read_recorded_measurement(o.policy);
  eo.equalize = o.equalize || recorded.setup.equalize;
  // Rounded as asked, else as the policy was searched: the QDQ model carries those levels.
  eo.weight_rounding = o.weight_rounding.empty() ? recorded.setup.weight_rounding : rounding;
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
                              {"seed", o.seed}};
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
      "ranges are calibrated on the train split exactly as haq eval does.");
  sub.add_option("MODEL", o->model, "ONNX model file")->required();
  sub.add_option("--policy", o->policy, "policy.json (from haq search)")->required();
  sub.add_option("--data", o->data, "calibration data (as for haq eval)")->required();
  sub.add_option("--out", o->out, "output .onnx file (written atomically)")->required();
  sub.add_option("--calib", o->calib, "calibration samples from the train split")
      ->check(haq::app::int_in(1, int64_t{1} << 30))
      ->capture_default_str();
  sub.add_option("--batch", o->batch,
                 "batch size for calibration, models with a symbolic batch (default: chosen as for "
                 "haq eval)")
      ->check(haq::app::int_in(1, int64_t{1} << 16));
  haq::app::add_data_args(sub, o->data_args);
  sub.add_option("--seed", o->seed, "seed for choosing the calibration samples, 0..2^63-1")
      ->check(haq::app::seed_value())
      ->capture_default_str();
  sub.add_flag("--json", o->json, "print what was written as JSON (fields in docs/export.md)");
  sub.add_option("--weight-rounding", o->weight_rounding,
                 "nearest or adaround (default: as the policy records; docs/quantization.md)");
  sub.add_flag("--equalize", o->equalize,
               "cross-layer equalization before calibration (on anyway when the policy records it)");
  sub.footer(
      "Example:\n"
      "  haq export models/fmnist-mobilenet.onnx --policy runs/edge/policy.json --data fashion-mnist \\\n"
      "      --out mobilenet.qdq.onnx\n"
      "Exit codes: 0 ok, 2 bad input or unsupported layer, 3 internal error.");
  return [o]() { return run_export(*o); };
}

}  // namespace

HAQ_REGISTER_COMMAND(export, 60, setup_export);
