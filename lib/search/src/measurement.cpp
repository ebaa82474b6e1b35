// How a recorded accuracy was measured, and measuring the same way again.
#include "haq/search/measurement.h"

#include <filesystem>

#include <fmt/format.h>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/core/rng.h"

namespace haq::search {

MeasurementSetup search_measurement(uint64_t seed, int64_t calib_samples, int64_t test_samples,
                                    int64_t batch, const engine::EngineOptions& engine) {
  MeasurementSetup s;
  s.seed = seed;
  s.calib_samples = calib_samples;
  s.test_samples = test_samples;
  s.batch = batch;
  s.calib_method = engine.calib;
  s.weight_clip = engine.weight_clip;
  s.bias_correction = engine.bias_correction;
  s.equalize = engine.equalize;
  s.weight_rounding = engine.weight_rounding;
  s.act_quant = engine.act_quant;
  s.input_bias_correction = engine.input_bias_correction;
  return s;
}

MeasurementSetup eval_measurement_defaults() {
  MeasurementSetup s;
  s.calib_stream = "eval.calib";
  s.test_stream = "";
  s.act_quant = quant::ActQuantMode::asymmetric;
  s.input_bias_correction = true;
  s.batch = 256;
  return s;
}

namespace {

// The object at `key` of `j`, or nullptr; Error(policy) if it is not an object.
const nlohmann::json* object_at(const nlohmann::json& j, const char* key, const std::string& file,
                                const std::string& where) {
  if (!j.is_object() || !j.contains(key)) return nullptr;
  const nlohmann::json& v = j[key];
  if (!v.is_object())
    fail(ErrorKind::policy, file, where, "expected an object, got {}", v.type_name());
  return &v;
}

std::optional<int64_t> count_at(const nlohmann::json* j, const char* key, const std::string& file,
                                const std::string& where) {
  if (!j || !j->contains(key)) return std::nullopt;
  const nlohmann::json& v = (*j)[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    fail(ErrorKind::policy, file, where + "/" + key, "expected a non-negative integer, got {}",
         v.dump());
  return v.get<int64_t>();
}

std::optional<std::string> string_at(const nlohmann::json* j, const char* key,
                                     const std::string& file, const std::string& where) {
  if (!j || !j->contains(key)) return std::nullopt;
  const nlohmann::json& v = (*j)[key];
  if (!v.is_string())
    fail(ErrorKind::policy, file, where + "/" + key, "expected a string, got {}", v.dump());
  return v.get<std::string>();
}

std::optional<uint64_t> seed_at(const nlohmann::json* j, const char* key, const std::string& file,
                                const std::string& where) {
  if (!j || !j->contains(key)) return std::nullopt;
  const nlohmann::json& v = (*j)[key];
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0))
    fail(ErrorKind::policy, file, where + "/" + key, "expected a non-negative integer seed, got {}",
         v.dump());
  return v.get<uint64_t>();
}

}  // namespace

RecordedMeasurement recorded_measurement(const nlohmann::json& pj, const std::string& file) {
  RecordedMeasurement r;
  if (!pj.is_object()) return r;
  const nlohmann::json* search = object_at(pj, "search", file, "/search");
  const nlohmann::json* calib = object_at(pj, "calibration", file, "/calibration");
  const nlohmann::json* test = object_at(pj, "test_split", file, "/test_split");
  r.recorded = search || calib;
  if (!r.recorded) return r;
  MeasurementSetup& s = r.setup;
  if (auto v = seed_at(&pj, "seed", file, "")) s.seed = *v;
  // The older record (search.*) first, then the newer objects, which win.
  if (auto v = count_at(search, "calib_samples", file, "/search")) s.calib_samples = *v;
  if (auto v = count_at(search, "test_samples", file, "/search")) s.test_samples = *v;
  if (auto v = count_at(search, "batch", file, "/search")) s.batch = *v;
  if (auto v = count_at(calib, "samples", file, "/calibration")) s.calib_samples = *v;
  if (auto v = seed_at(calib, "seed", file, "/calibration")) s.seed = *v;
  if (auto v = string_at(calib, "stream", file, "/calibration")) s.calib_stream = *v;
  if (auto v = string_at(calib, "method", file, "/calibration")) {
    try {
      s.calib_method = quant::parse_calib_method(*v);
    } catch (const Error&) {
      fail(ErrorKind::policy, file, "/calibration/method",
           "expected mse, minmax, percentile or kl, got '{}'", *v);
    }
  }
  if (auto v = string_at(calib, "weight_clip", file, "/calibration")) {
    try {
      s.weight_clip = quant::parse_weight_clip(*v);
    } catch (const Error&) {
      fail(ErrorKind::policy, file, "/calibration/weight_clip", "expected mse or max, got '{}'",
           *v);
    }
  }
  if (calib && calib->contains("bias_correction")) {
    const auto& v = (*calib)["bias_correction"];
    if (!v.is_boolean())
      fail(ErrorKind::policy, file, "/calibration/bias_correction",
           "expected true or false, got {}", v.dump());
    s.bias_correction = v.get<bool>();
  }
  if (calib && calib->contains("equalize")) {
    const auto& v = (*calib)["equalize"];
    if (!v.is_boolean())
      fail(ErrorKind::policy, file, "/calibration/equalize", "expected true or false, got {}", v.dump());
    s.equalize = v.get<bool>();
  }
  if (auto v = string_at(calib, "weight_rounding", file, "/calibration")) {
    try {
      s.weight_rounding = quant::parse_weight_rounding(*v);
    } catch (const Error&) {
      fail(ErrorKind::policy, file, "/calibration/weight_rounding", "expected nearest or adaround, got '{}'", *v);
    }
  }
  if (calib && calib->contains("input_bias_correction")) {
    const auto& v = (*calib)["input_bias_correction"];
    if (!v.is_boolean())
      fail(ErrorKind::policy, file, "/calibration/input_bias_correction", "expected true or false, got {}", v.dump());
    s.input_bias_correction = v.get<bool>();
  }
  if (auto v = string_at(calib, "act_quant", file, "/calibration")) {
    try {
      s.act_quant = quant::parse_act_quant(*v);
    } catch (const Error&) {
      fail(ErrorKind::policy, file, "/calibration/act_quant", "expected symmetric or asymmetric, got '{}'", *v);
    }
    if (s.act_quant == quant::ActQuantMode::asymmetric && s.calib_method == quant::CalibMethod::kl)
      fail(ErrorKind::policy, file, "/calibration/act_quant", "asymmetric activations are not calibrated by kl");
  }
  if (auto v = count_at(test, "samples", file, "/test_split")) s.test_samples = *v;
  if (auto v = string_at(test, "stream", file, "/test_split")) s.test_stream = *v;
  if (s.batch < 1)
    fail(ErrorKind::policy, file, "/search/batch", "expected a positive batch, got {}", s.batch);
  if (pj.contains("data") && pj["data"].is_string()) r.data = pj["data"].get<std::string>();
  const nlohmann::json* acc = object_at(pj, "accuracy", file, "/accuracy");
  const nlohmann::json* chosen =
      acc ? object_at(*acc, "chosen", file, "/accuracy/chosen") : nullptr;
  if (chosen && chosen->contains("test") && (*chosen)["test"].is_number())
    r.test_top1 = (*chosen)["test"].get<double>();
  return r;
}

RecordedMeasurement read_recorded_measurement(const std::string& policy_file) {
  return recorded_measurement(
      parse_json_document(read_file(policy_file), policy_file, ErrorKind::policy), policy_file);
}

nlohmann::json calibration_record(const MeasurementSetup& s, int64_t calib_samples_used) {
  nlohmann::json j = {{"split", "train"},
                      {"samples", calib_samples_used},
                      {"seed", s.seed},
                      {"stream", s.calib_stream},
                      {"method", quant::to_string(s.calib_method)},
                      {"weight_clip", quant::to_string(s.weight_clip)},
                      {"bias_correction", s.bias_correction}};
  // Written only when on, so records of runs without it read back unchanged.
  if (s.equalize) j["equalize"] = true;
  if (s.weight_rounding != quant::WeightRounding::nearest) j["weight_rounding"] = quant::to_string(s.weight_rounding);
  if (s.act_quant != quant::ActQuantMode::symmetric) j["act_quant"] = quant::to_string(s.act_quant);
  if (s.input_bias_correction && s.bias_correction) j["input_bias_correction"] = true;
  return j;
}

nlohmann::json test_split_record(const MeasurementSetup& s, int64_t test_samples_used) {
  return {{"samples", test_samples_used}, {"seed", s.seed}, {"stream", s.test_stream}};
}

MeasurementSetup apply_overrides(MeasurementSetup s, const MeasurementOverrides& o) {
  if (o.seed) s.seed = *o.seed;
  if (o.calib_samples) s.calib_samples = *o.calib_samples;
  if (o.test_samples) s.test_samples = *o.test_samples;
  if (o.batch) s.batch = *o.batch;
  if (o.calib_method) s.calib_method = *o.calib_method;
  if (o.weight_clip) s.weight_clip = *o.weight_clip;
  if (o.bias_correction) s.bias_correction = *o.bias_correction;
  if (o.equalize) s.equalize = *o.equalize;
  if (o.weight_rounding) s.weight_rounding = *o.weight_rounding;
  if (o.act_quant) s.act_quant = *o.act_quant;
  if (o.input_bias_correction) s.input_bias_correction = *o.input_bias_correction;
  return s;
}

std::vector<int64_t> draw_samples(const data::Dataset& d, int64_t count, uint64_t seed,
                                  const std::string& stream) {
  return data::sample_indices(d, count, stream.empty() ? seed : derive_seed(seed, stream));
}

namespace fs = std::filesystem;

RoundingCacheChoice rounding_cache_choice(const std::optional<std::string>& given, quant::WeightRounding rounding,
                                          const std::string& policy_file) {
  RoundingCacheChoice c;
  if (given && given->empty())
    fail(ErrorKind::usage, "", "--rounding-cache", "expected a file or \"none\", got an empty value");
  if (given && *given == "none") return c;
  if (rounding != quant::WeightRounding::adaround) {
    if (given)
      fail(ErrorKind::usage, "", "--rounding-cache",
           "the measurement rounds weights to nearest: a rounding cache applies to --weight-rounding adaround");
    return c;
  }
  if (given) {
    check_output_target(*given);
    c.file = *given;
    c.write = true;
    return c;
  }
  if (policy_file.empty()) return c;
  const fs::path beside = fs::path(policy_file).parent_path() / "rounding-cache.bin";
  if (path_is_regular_file(beside)) c.file = beside.string();
  return c;
}

PolicyRounding round_policy_weights(engine::Engine& e, const quant::Policy& policy,
                                    const RoundingCacheChoice& cache) {
  PolicyRounding r;
  if (!cache.file.empty()) r.load = e.load_rounding_cache(cache.file);
  for (size_t i = 0; i < policy.layers.size(); ++i) {
    const quant::LayerBits& l = policy.layers[i];
    if (!l.fp32) (void)e.quantized_layer(i, l.w_bits, l.a_bits);
  }
  if (cache.write) r.written = e.save_rounding_cache(cache.file);
  r.stats = e.rounding_stats();
  return r;
}

engine::EngineOptions engine_options(const MeasurementSetup& s, int64_t graph_batch) {
  engine::EngineOptions eo;
  eo.batch = graph_batch;
  eo.calib = s.calib_method;
  eo.weight_clip = s.weight_clip;
  eo.bias_correction = s.bias_correction;
  eo.equalize = s.equalize;
  eo.weight_rounding = s.weight_rounding;
  eo.act_quant = s.act_quant;
  eo.input_bias_correction = s.input_bias_correction && s.bias_correction;
  eo.seed = s.seed;
  return eo;
}

std::vector<std::string> measurement_differences(const RecordedMeasurement& recorded,
                                                 const MeasurementSetup& used,
                                                 const std::string& used_data,
                                                 const data::Dataset& train,
                                                 const data::Dataset& test, bool batch_matters) {
  const MeasurementSetup& rec = recorded.setup;
  std::vector<std::string> d;
  if (!recorded.data.empty() && recorded.data != used_data)
    d.push_back(fmt::format("data {} instead of the recorded {}", used_data, recorded.data));
  const auto rc = draw_samples(train, rec.calib_samples, rec.seed, rec.calib_stream);
  const auto uc = draw_samples(train, used.calib_samples, used.seed, used.calib_stream);
  if (rc.size() != uc.size())
    d.push_back(
        fmt::format("{} calibration samples instead of the recorded {}", uc.size(), rc.size()));
  else if (rc != uc)
    d.push_back(fmt::format("other calibration samples (seed {}, not the recorded {})", used.seed,
                            rec.seed));
  const auto rt = draw_samples(test, rec.test_samples, rec.seed, rec.test_stream);
  const auto ut = draw_samples(test, used.test_samples, used.seed, used.test_stream);
  if (rt.size() != ut.size())
    d.push_back(fmt::format("{} test samples instead of the recorded {}", ut.size(), rt.size()));
  else if (rt != ut)
    d.push_back(
        fmt::format("other test samples (seed {}, not the recorded {})", used.seed, rec.seed));
  if (used.calib_method != rec.calib_method)
    d.push_back(fmt::format("activation calibration {} instead of the recorded {}",
                            quant::to_string(used.calib_method),
                            quant::to_string(rec.calib_method)));
  if (used.weight_clip != rec.weight_clip)
    d.push_back(fmt::format("weight clip {} instead of the recorded {}",
                            quant::to_string(used.weight_clip), quant::to_string(rec.weight_clip)));
  if (used.bias_correction != rec.bias_correction)
    d.push_back(fmt::format("bias correction {} (recorded {})", used.bias_correction ? "on" : "off",
                            rec.bias_correction ? "on" : "off"));
  if (used.equalize != rec.equalize)
    d.push_back(fmt::format("cross-layer equalization {} (recorded {})", used.equalize ? "on" : "off",
                            rec.equalize ? "on" : "off"));
  if (used.weight_rounding != rec.weight_rounding)
    d.push_back(fmt::format("weight rounding {} instead of the recorded {}", quant::to_string(used.weight_rounding),
                            quant::to_string(rec.weight_rounding)));
  // (Its input term only when both correct at all: bias correction off says it.)
  if (used.bias_correction && rec.bias_correction && used.input_bias_correction != rec.input_bias_correction)
    d.push_back(fmt::format("bias correction of the input quantization {} (recorded {})",
                            used.input_bias_correction ? "on" : "off", rec.input_bias_correction ? "on" : "off"));
  if (used.act_quant != rec.act_quant)
    d.push_back(fmt::format("{} activations instead of the recorded {}", quant::to_string(used.act_quant),
                            quant::to_string(rec.act_quant)));
  if (batch_matters && used.batch != rec.batch)
    d.push_back(fmt::format("batch {} instead of the recorded {}", used.batch, rec.batch));
  return d;
}

}  // namespace haq::search
