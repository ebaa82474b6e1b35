// The preprocessing spec: CLI string, JSON, and their errors.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "haq/core/json_reader.h"
#include "haq/data/dataset.h"
#include "test_paths.h"
#include "writers.h"

using Catch::Matchers::Contains;
using haq::ErrorKind;
using haq::data::parse_preprocess;
using haq::data::Preprocess;
using haq::test::error_of;

TEST_CASE("parse_preprocess: key=value string", "[data][preprocess]") {
  Preprocess p = parse_preprocess(
      "resize=256,crop=224,mean=0.485:0.456:0.406,std=0.229:0.224:0.225,order=bgr");
  CHECK(p.resize == 256);
  CHECK(p.crop == 224);
  CHECK(p.mean == std::vector<float>{0.485f, 0.456f, 0.406f});
  CHECK(p.std == std::vector<float>{0.229f, 0.224f, 0.225f});
  CHECK(p.channel_order == "bgr");
  CHECK(p.channels == 0);
  CHECK(parse_preprocess("gray").channels == 1);
  CHECK(parse_preprocess("gray=0").channels == 0);
  Preprocess empty = parse_preprocess("");
  CHECK(empty.resize == 0);
  CHECK(empty.mean.empty());
  Preprocess imagenet = parse_preprocess("imagenet");
  CHECK(imagenet.resize == 256);
  CHECK(imagenet.crop == 224);
  CHECK(imagenet.std == std::vector<float>{0.229f, 0.224f, 0.225f});
  // to_string reads back.
  Preprocess back = parse_preprocess(haq::data::to_string(p));
  CHECK(back.resize == p.resize);
  CHECK(back.crop == p.crop);
  CHECK(back.mean == p.mean);
  CHECK(back.std == p.std);
  CHECK(back.channel_order == p.channel_order);
  CHECK(haq::data::to_string(parse_preprocess("mean=0.5,gray")) == "mean=0.5,gray");
}

TEST_CASE("parse_preprocess: bad values name the key", "[data][preprocess][errors]") {
  CHECK_THAT(error_of([] { parse_preprocess("resize=-3"); }, ErrorKind::usage),
             Contains("resize=-3: expected an integer"));
  CHECK_THAT(error_of([] { parse_preprocess("crop=12px"); }, ErrorKind::usage),
             Contains("crop=12px"));
  CHECK_THAT(error_of([] { parse_preprocess("mean=0.5:x"); }, ErrorKind::usage),
             Contains("mean=0.5:x"));
  CHECK_THAT(error_of([] { parse_preprocess("std=0.5:0"); }, ErrorKind::usage),
             Contains("positive"));
  CHECK_THAT(error_of([] { parse_preprocess("order=rbg"); }, ErrorKind::usage),
             Contains("rgb or bgr"));
  CHECK_THAT(error_of([] { parse_preprocess("size=3"); }, ErrorKind::usage),
             Contains("unknown key 'size'"));
  CHECK_THAT(error_of([] { parse_preprocess("{bad json"); }, ErrorKind::usage),
             Contains("--preprocess: line 1 column 2: not valid JSON"));
}

TEST_CASE("preprocess from JSON: inline, file, and pointer errors", "[data][preprocess]") {
  Preprocess p = parse_preprocess(
      R"({"resize": 32, "crop": 28, "mean": 0.5, "std": [0.25], "channel_order": "bgr", "grayscale": true})");
  CHECK(p.resize == 32);
  CHECK(p.crop == 28);
  CHECK(p.mean == std::vector<float>{0.5f});
  CHECK(p.std == std::vector<float>{0.25f});
  CHECK(p.channel_order == "bgr");
  CHECK(p.channels == 1);

  auto dir = haq::test::scratch_dir("data_preprocess_json");
  haq::test::write_bytes(dir / "pre.json", R"({"resize": 256, "std": [0.2, -1, 0.2]})");
  std::string msg =
      error_of([&] { parse_preprocess((dir / "pre.json").string()); }, ErrorKind::config);
  CHECK_THAT(msg, Contains("pre.json: /std/1: expected a positive number, got -1"));

  nlohmann::json j = {{"preprocess", {{"crop", "224"}}}};
  CHECK_THAT(
      error_of(
          [&] { haq::data::preprocess_from_json(j["preprocess"], "search.json", "/preprocess"); },
          ErrorKind::config),
      Contains("search.json: /preprocess/crop: expected an integer"));
  j = {{"resize", 1}, {"mean_values", 1}};
  CHECK_THAT(error_of([&] { haq::data::preprocess_from_json(j, "c.json"); }, ErrorKind::config),
             Contains("c.json: /mean_values: unknown key"));
  CHECK_THAT(error_of([] { parse_preprocess("/nonexistent/pre.json"); }, ErrorKind::io),
             Contains("/nonexistent/pre.json"));
}

TEST_CASE("preprocess from core's JSON reader: pointer inside a config, did-you-mean",
          "[data][preprocess]") {
  haq::JsonValue root = haq::parse_json(R"({"data": {"preprocess": {"resize": 64, "cropp": 56}}})",
                                        "search.json", haq::ErrorKind::config);
  haq::JsonObject obj = root.object();
  haq::JsonObject data = obj.get("data").object();
  haq::JsonValue pre = data.get("preprocess");
  std::string msg = error_of([&] { haq::data::preprocess_from_json(pre); }, ErrorKind::config);
  CHECK_THAT(msg, Contains("search.json: /data/preprocess/cropp"));
  CHECK_THAT(msg, Contains("crop"));
}
