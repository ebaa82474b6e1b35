// How a policy's recorded accuracy was measured: reading the record (old and
// new), overriding it, and telling a different measurement from the same.
#include <catch2/catch.hpp>

#include "haq/core/error.h"
#include "haq/core/rng.h"
#include "haq/search/measurement.h"

using namespace haq;
using namespace haq::search;

namespace {
data::Dataset samples(int64_t n) {
  data::Dataset d;
  d.channels = d.height = d.width = 1;
  d.images.assign(static_cast<size_t>(n), 0.f);
  d.labels.assign(static_cast<size_t>(n), 0);
  return d;
}
}  // namespace

TEST_CASE("measurement: the record of a search, old and new", "[search][measurement]") {
  SECTION("a policy from before the calibration record: the search's values of the time") {
    auto j = nlohmann::json::parse(R"({"seed": 7, "data": "fashion-mnist",
      "accuracy": {"chosen": {"test": 91.25}},
      "search": {"calib_samples": 256, "test_samples": 2000, "batch": 64}, "layers": []})");
    RecordedMeasurement r = recorded_measurement(j, "p.json");
    CHECK(r.recorded);
    CHECK(r.setup.seed == 7);
    CHECK(r.setup.calib_samples == 256);
    CHECK(r.setup.calib_stream == "search.calib");
    CHECK(r.setup.test_samples == 2000);
    CHECK(r.setup.test_stream == "search.test");
    CHECK(r.setup.batch == 64);
    CHECK(r.setup.calib_method == quant::CalibMethod::mse);
    CHECK(r.setup.bias_correction);
    CHECK(r.test_top1 == std::optional<double>(91.25));
    CHECK(r.data == "fashion-mnist");
  }
  SECTION("the calibration and test_split objects win, and round-trip") {
    MeasurementSetup s;
    s.seed = 3;
    s.calib_method = quant::CalibMethod::kl;
    s.weight_clip = quant::WeightClip::max;
    s.bias_correction = false;
    nlohmann::json j = {{"seed", 3},
                        {"search", {{"calib_samples", 512}, {"batch", 100}}},
                        {"calibration", calibration_record(s, 128)},
                        {"test_split", test_split_record(s, 900)}};
    RecordedMeasurement r = recorded_measurement(j, "p.json");
    CHECK(r.setup.calib_samples == 128);
    CHECK(r.setup.test_samples == 900);
    CHECK(r.setup.calib_method == quant::CalibMethod::kl);
    CHECK(r.setup.weight_clip == quant::WeightClip::max);
    CHECK_FALSE(r.setup.bias_correction);
    CHECK_FALSE(r.test_top1.has_value());
  }
  SECTION("act_quant: absent is symmetric (policies from before it), asymmetric is written and read back") {
    MeasurementSetup s;
    CHECK_FALSE(calibration_record(s, 64).contains("act_quant"));
    auto j = nlohmann::json::parse(R"({"calibration": {"samples": 64}})");
    CHECK(recorded_measurement(j, "p.json").setup.act_quant == quant::ActQuantMode::symmetric);
    s.act_quant = quant::ActQuantMode::asymmetric;
    const nlohmann::json rec = calibration_record(s, 64);
    CHECK(rec["act_quant"] == "asymmetric");
    j = {{"calibration", rec}};
    CHECK(recorded_measurement(j, "p.json").setup.act_quant == quant::ActQuantMode::asymmetric);
    // eval's own defaults (a policy without a record) are asymmetric.
    CHECK(eval_measurement_defaults().act_quant == quant::ActQuantMode::asymmetric);
    j = nlohmann::json::parse(R"({"calibration": {"act_quant": "affine"}})");
    CHECK_THROWS_WITH(recorded_measurement(j, "p.json"),
                      Catch::Contains("p.json") && Catch::Contains("/calibration/act_quant"));
    j = nlohmann::json::parse(R"({"calibration": {"method": "kl", "act_quant": "asymmetric"}})");
    CHECK_THROWS_WITH(recorded_measurement(j, "p.json"), Catch::Contains("/calibration/act_quant"));
  }
  SECTION("input_bias_correction: absent is off (policies from before it), on is written and read back") {
    MeasurementSetup s;
    CHECK_FALSE(calibration_record(s, 64).contains("input_bias_correction"));
    s.input_bias_correction = true;
    nlohmann::json j = {{"calibration", calibration_record(s, 64)}};
    CHECK(j["calibration"]["input_bias_correction"] == true);
    CHECK(recorded_measurement(j, "p.json").setup.input_bias_correction);
    CHECK(engine_options(recorded_measurement(j, "p.json").setup, 1).input_bias_correction);
    s.bias_correction = false;  // no bias correction at all: nothing of it recorded or done
    CHECK_FALSE(calibration_record(s, 64).contains("input_bias_correction"));
    CHECK_FALSE(engine_options(s, 1).input_bias_correction);
    CHECK(eval_measurement_defaults().input_bias_correction);
    j = nlohmann::json::parse(R"({"calibration": {"input_bias_correction": 1}})");
    CHECK_THROWS_WITH(recorded_measurement(j, "p.json"), Catch::Contains("/calibration/input_bias_correction"));
  }
  SECTION("a hand-written policy records nothing") {
    CHECK_FALSE(recorded_measurement(nlohmann::json::parse(R"({"layers": []})"), "p.json").recorded);
  }
  SECTION("a malformed record names the file and the pointer") {
    auto j = nlohmann::json::parse(R"({"search": {"calib_samples": -4}})");
    CHECK_THROWS_WITH(recorded_measurement(j, "p.json"),
                      Catch::Contains("p.json") && Catch::Contains("/search/calib_samples"));
    j = nlohmann::json::parse(R"({"calibration": {"bias_correction": "yes"}})");
    CHECK_THROWS_WITH(recorded_measurement(j, "p.json"), Catch::Contains("/calibration/bias_correction"));
  }
}

TEST_CASE("measurement: overrides, and what makes a measurement differ", "[search][measurement]") {
  RecordedMeasurement rec;
  rec.recorded = true;
  rec.data = "fashion-mnist";
  rec.setup.seed = 5;
  rec.setup.calib_samples = 64;
  rec.setup.test_samples = 0;  // all
  const data::Dataset train = samples(1000), test = samples(300);
  auto diff = [&](const MeasurementOverrides& o, bool batch_matters = true) {
    return measurement_differences(rec, apply_overrides(rec.setup, o), "fashion-mnist", train, test,
                                   batch_matters);
  };
  CHECK(diff({}).empty());
  MeasurementOverrides o;
  o.test_samples = 300;  // the whole test split, as recorded
  o.seed = 5;
  CHECK(diff(o).empty());
  o = {};
  o.calib_samples = 32;
  CHECK(diff(o) == std::vector<std::string>{"32 calibration samples instead of the recorded 64"});
  o = {};
  o.seed = 6;  // other calibration samples; the test split is all of it either way
  CHECK(diff(o) == std::vector<std::string>{"other calibration samples (seed 6, not the recorded 5)"});
  o = {};
  o.batch = 256;
  CHECK(diff(o).size() == 1);
  CHECK(diff(o, false).empty());  // a fixed batch: both ran at it
  o = {};
  o.input_bias_correction = true;
  CHECK(diff(o) == std::vector<std::string>{"bias correction of the input quantization on (recorded off)"});
  o = {};
  o.act_quant = quant::ActQuantMode::asymmetric;
  CHECK(diff(o) == std::vector<std::string>{"asymmetric activations instead of the recorded symmetric"});
  CHECK(engine_options(apply_overrides(rec.setup, o), 1).act_quant == quant::ActQuantMode::asymmetric);
  CHECK(measurement_differences(rec, rec.setup, "/data/fmnist", train, test, true) ==
        std::vector<std::string>{"data /data/fmnist instead of the recorded fashion-mnist"});
  // The draws are those of the record's streams.
  CHECK(draw_samples(train, 64, 5, "search.calib") ==
        data::sample_indices(train, 64, derive_seed(5, "search.calib")));
  CHECK(draw_samples(test, 10, 5, "") == data::sample_indices(test, 10, 5));
}
