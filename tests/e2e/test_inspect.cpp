// haq inspect: the report on a fixture, and bad input -> exit 2 with
// "haq: error: FILE: WHERE: WHAT".
#include <fstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using haq::test::run_haq;
using haq::test::source_path;

TEST_CASE("haq inspect prints the layer table and totals") {
  auto r = run_haq({"inspect", source_path("tests/data/model/dynamic_convnet.onnx")});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(r.err.empty());
  CHECK_THAT(r.out, Contains("/dw/Conv") && Contains("Conv/dw") && Contains("opset 13"));
  CHECK_THAT(r.out, Contains("4 quantizable layers, 1754 params") && Contains("19008 MACs"));
  CHECK_THAT(r.out, Contains("BatchNormalization 2"));  // in the file's op counts
}

TEST_CASE("haq inspect --json gives the same report as JSON, with --batch") {
  auto r = run_haq({"inspect", source_path("tests/data/model/dynamic_convnet.onnx"), "--json", "--batch", "7"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["opset"] == 13);
  CHECK(j["ir_version"] == 7);
  CHECK(j["producer"]["name"] == "pytorch");
  CHECK(j["batch"] == 7);
  CHECK(j["dynamic_batch"] == true);
  CHECK(j["inputs"][0]["shape"] == nlohmann::json({7, 1, 12, 12}));
  CHECK(j["outputs"][0]["name"] == "logits");
  REQUIRE(j["layers"].size() == 4);
  const auto& dw = j["layers"][1];
  CHECK(dw["index"] == 1);
  CHECK(dw["op"] == "Conv");
  CHECK(dw["depthwise"] == true);
  CHECK(dw["groups"] == 8);
  CHECK(dw["kernel"] == nlohmann::json({3, 3}));
  CHECK(dw["stride"] == nlohmann::json({2, 2}));
  CHECK(dw["input_shape"] == nlohmann::json({7, 8, 12, 12}));
  CHECK(dw["output_shape"] == nlohmann::json({7, 8, 6, 6}));
  CHECK(dw["params"] == 80);
  CHECK(dw["macs"] == 2592);
  CHECK(j["totals"]["layers"] == 4);
  CHECK(j["totals"]["params"] == 1754);
  CHECK(j["totals"]["macs"] == 19008);
  CHECK(j["ops"]["imported"]["Conv"] == 3);
  CHECK(j["ops"]["original"]["Shape"] == 1);
  CHECK(j["ops"]["imported"].count("Shape") == 0);
}

TEST_CASE("haq inspect --help has examples") {
  auto r = run_haq({"inspect", "--help"});
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("Examples:") && Contains("--json") && Contains("--batch"));
}

namespace {
void expect_bad(const std::string& file, const std::string& place) {
  auto r = run_haq({"inspect", file});
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, StartsWith("haq: error: " + file + ": "));
  CHECK_THAT(r.err, Contains(place));
}
}  // namespace

TEST_CASE("haq inspect on bad input exits 2 naming the file and the place") {
  auto dir = haq::test::scratch_dir("e2e_inspect_bad");
  const std::string empty = (dir / "empty.onnx").string();
  std::ofstream(empty).close();
  const std::string noise = (dir / "noise.onnx").string();
  {
    std::ofstream out(noise, std::ios::binary);
    uint32_t x = 99;
    for (int i = 0; i < 4096; ++i) out.put(static_cast<char>((x = x * 1103515245u + 12345u) >> 16));
  }
  expect_bad(empty, "empty file");
  expect_bad(noise, "");
  expect_bad(source_path("tests/data/bad/truncated.onnx"), "not a valid ONNX model");
  expect_bad(source_path("tests/data/bad/unknown_op.onnx"), "node 'hardmax_1' (Hardmax): op 'Hardmax' (opset 13) is not supported");
  expect_bad(source_path("tests/data/bad/missing_initializer.onnx"), "node 'fc' (MatMul): input 'fc.weight'");
  expect_bad(source_path("tests/data/bad/external_escape.onnx"),
             "initializer 'fc.weight': external data location '../escape.bin' escapes");
  expect_bad((dir / "does-not-exist.onnx").string(), "no such file");
}
