#pragma once
/// \file
/// How an accuracy recorded in policy.json was measured, so that `haq eval
/// --policy` and `haq check` measure the same way by default: the quantizer
/// settings, the calibration subset of the train split and the subset of the
/// test split, each drawn by data::sample_indices from a seed derived from
/// the run's seed and a stream name (docs/policy-format.md, "calibration" and
/// "test_split"). Two measurements with equal setups on the same model, data
/// and engine give the same figure, to the last bit.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "haq/data/dataset.h"
#include "haq/engine/engine.h"
#include "haq/quant/adaround.h"
#include "haq/quant/policy.h"
#include "haq/quant/quantizer.h"

namespace haq::search {

/// Everything an accuracy measurement depends on besides the model, the data
/// and the policy.
struct MeasurementSetup {
  uint64_t seed = 0;            ///< the run's seed
  int64_t calib_samples = 512;  ///< from the train split (all if more)
  std::string calib_stream =
      "search.calib";  ///< seed = derive_seed(seed, stream); "" = seed itself
  quant::CalibMethod calib_method = quant::CalibMethod::mse;
  quant::WeightClip weight_clip = quant::WeightClip::mse;
  bool bias_correction = true;
  bool equalize = false;                    ///< cross-layer equalization before calibration
  quant::WeightRounding weight_rounding = quant::WeightRounding::nearest;  ///< nearest or adaround
  quant::ActQuantMode act_quant = quant::ActQuantMode::symmetric;  ///< inputs that can be negative
  bool input_bias_correction = false;  ///< the bias correction's input term (EngineOptions)
  int64_t test_samples = 0;                 ///< from the test split (0 or more than it has: all)
  std::string test_stream = "search.test";  ///< as calib_stream
  int64_t batch = 100;                      ///< inference batch (models with a symbolic batch dim)
};

/// The setup `haq search` measures with (the defaults above), for `seed`.
MeasurementSetup search_measurement(uint64_t seed, int64_t calib_samples, int64_t test_samples,
                                    int64_t batch, const engine::EngineOptions& engine);

/// `haq eval`'s own defaults, for a policy that records no measurement:
/// calibration stream "eval.calib", test samples drawn with the seed itself, batch 256.
MeasurementSetup eval_measurement_defaults();

/// What a policy.json says about how its accuracy was measured.
struct RecordedMeasurement {
  bool recorded = false;            ///< written by haq search (has "search" or "calibration")
  MeasurementSetup setup;           ///< the recorded setup (search defaults for missing fields)
  std::optional<double> test_top1;  ///< accuracy.chosen.test (%), if recorded
  std::string data;                 ///< the dataset the search named ("" if not recorded)
};

/// Reads the record from a parsed policy.json. Fields are optional (a
/// policy written before "calibration" and "test_split" were recorded gets
/// the values the search used then: streams search.calib / search.test,
/// mse / mse / bias correction on, search.calib_samples, search.test_samples,
/// search.batch); a field of the wrong type or value is Error(policy) naming
/// `file` and the JSON pointer.
RecordedMeasurement recorded_measurement(const nlohmann::json& policy, const std::string& file);

/// Reads and parses `policy_file`, then as above.
RecordedMeasurement read_recorded_measurement(const std::string& policy_file);

/// policy.json's "calibration" object: samples, seed, stream, method, weight_clip, bias_correction
/// (and "equalize": true when on, "weight_rounding": "adaround" when adaptive,
/// "act_quant": "asymmetric" when so, "input_bias_correction": true when on;
/// absent means off / nearest / symmetric / off,
/// as before they existed).
nlohmann::json calibration_record(const MeasurementSetup& s, int64_t calib_samples_used);
/// policy.json's "test_split" object: samples, seed, stream.
nlohmann::json test_split_record(const MeasurementSetup& s, int64_t test_samples_used);

/// Options a command was given explicitly (unset: take the base setup's).
struct MeasurementOverrides {
  std::optional<uint64_t> seed;
  std::optional<int64_t> calib_samples, test_samples, batch;
  std::optional<quant::CalibMethod> calib_method;
  std::optional<quant::WeightClip> weight_clip;
  std::optional<bool> bias_correction;
  std::optional<bool> equalize;
  std::optional<quant::WeightRounding> weight_rounding;
  std::optional<quant::ActQuantMode> act_quant;
  std::optional<bool> input_bias_correction;
};

/// `base` with the given overrides applied.
MeasurementSetup apply_overrides(MeasurementSetup base, const MeasurementOverrides& o);

/// The `count` sample indices of `d` for (seed, stream), as the search draws them.
std::vector<int64_t> draw_samples(const data::Dataset& d, int64_t count, uint64_t seed,
                                  const std::string& stream);

/// Engine options of a setup; `graph_batch` is the imported graph's batch.
engine::EngineOptions engine_options(const MeasurementSetup& s, int64_t graph_batch);

/// The rounding cache of a measurement under adaptive rounding
/// (docs/quantization.md, "The rounding cache").
struct RoundingCacheChoice {
  std::string file;    ///< "" = none
  bool write = false;  ///< written back when the run rounded something the file lacked
};

/// For a measurement rounding as `rounding`: no cache under nearest; else
/// `given` (--rounding-cache, if given) "none": no cache; a path: read it if
/// it exists and write it; not given: the rounding-cache.bin beside
/// `policy_file` (where haq search leaves it) if there is one, read only.
/// Error(usage) for an empty value or a path given under nearest; a cache to
/// be written is checked against the output policy now (Error(io)).
RoundingCacheChoice rounding_cache_choice(const std::optional<std::string>& given, quant::WeightRounding rounding,
                                          const std::string& policy_file);

/// What round_policy_weights did.
struct PolicyRounding {
  engine::RoundingStats stats;   ///< the engine's, after the rounding
  engine::RoundingCacheLoad load;  ///< what the cache gave (nothing without one)
  int64_t written = 0;           ///< entries written to the cache (0: not written)
};

/// Rounds, up front, the weights of every layer `policy` quantizes (so that
/// the one-off cost is reported apart from the run), taking what the cache
/// holds first and writing it back if chosen. `e` must be calibrated under
/// WeightRounding::adaround.
PolicyRounding round_policy_weights(engine::Engine& e, const quant::Policy& policy,
                                    const RoundingCacheChoice& cache);

/// How `used` on `used_data` measures differently from `recorded`, one
/// phrase per difference ("512 calibration samples instead of the recorded
/// 256"). Empty: the measurement reproduces the recorded one. Sample subsets
/// are compared as drawn from `train` and `test` (e.g. --samples 10000 on a
/// 10000-sample test split is the recorded "all"); the batch counts only if
/// the model's batch is symbolic; the data by its name as given (another
/// spelling of the same folder counts as a difference).
std::vector<std::string> measurement_differences(const RecordedMeasurement& recorded,
                                                 const MeasurementSetup& used,
                                                 const std::string& used_data,
                                                 const data::Dataset& train,
                                                 const data::Dataset& test, bool batch_matters);

}  // namespace haq::search
