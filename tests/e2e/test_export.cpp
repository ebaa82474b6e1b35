// haq export on the command line: a valid export writes an ONNX file; bad
// input exits 2 naming the file and writes nothing. (Accuracy in ONNX
// Runtime is checked in tests/unit/export.)
#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "run_haq.h"
#include "test_paths.h"

using Catch::Matchers::Contains;
using haq::test::run_haq;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;

TEST_CASE("haq export: writes a model, and bad input exits 2 writing nothing", "[export]") {
  auto dir = scratch_dir("e2e-export");
  const std::string mlp = source_path("models/fmnist-mlp.onnx");
  // The MLP's layers as `haq inspect` names them.
  std::ofstream(dir / "w4a8.json") << R"({"layers": [{"name": "/fc1/Gemm", "w_bits": 4, "a_bits": 8},
      {"name": "/fc2/Gemm", "w_bits": 4, "a_bits": 8}, {"name": "/fc3/Gemm", "w_bits": 4, "a_bits": 8}]})";
  auto ok = run_haq({"export", mlp, "--policy", (dir / "w4a8.json").string(), "--data", "fashion-mnist",
                     "--out", (dir / "m.qdq.onnx").string(), "--calib", "64"});
  INFO(ok.out << ok.err);
  REQUIRE(ok.exit_code == 0);
  CHECK_THAT(ok.out, Contains("3 of 3 layers quantized"));
  CHECK(fs::file_size(dir / "m.qdq.onnx") > 1000);

  std::ofstream(dir / "bad.json") << R"({"layers": [{"name": "nope", "w_bits": 4, "a_bits": 8}]})";
  auto bad = run_haq({"export", mlp, "--policy", (dir / "bad.json").string(), "--data", "fashion-mnist",
                      "--out", (dir / "x.onnx").string()});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Contains("bad.json"));
  CHECK_FALSE(fs::exists(dir / "x.onnx"));
  auto nomodel = run_haq({"export", (dir / "none.onnx").string(), "--policy", (dir / "w4a8.json").string(),
                          "--data", "fashion-mnist", "--out", (dir / "x.onnx").string()});
  CHECK(nomodel.exit_code == 2);
  CHECK_FALSE(fs::exists(dir / "x.onnx"));
}

TEST_CASE("haq eval and export --equalize: recorded, and an fp32 layer of an equalized pair is refused", "[export]") {
  auto dir = scratch_dir("e2e-export-equalize");
  const std::string mlp = source_path("models/fmnist-mlp.onnx");
  auto ev = run_haq({"eval", mlp, "--data", "fashion-mnist", "--bits", "w4a8", "--samples", "200", "--calib", "64",
                     "--equalize", "--json"});
  INFO(ev.out << ev.err);
  REQUIRE(ev.exit_code == 0);
  CHECK_THAT(ev.out, Contains("\"equalize\": true"));
  std::ofstream(dir / "w4a8.json") << R"({"layers": [{"name": "/fc1/Gemm", "w_bits": 4, "a_bits": 8},
      {"name": "/fc2/Gemm", "w_bits": 4, "a_bits": 8}, {"name": "/fc3/Gemm", "w_bits": 4, "a_bits": 8}]})";
  auto ok = run_haq({"export", mlp, "--policy", (dir / "w4a8.json").string(), "--data", "fashion-mnist", "--out",
                     (dir / "m.qdq.onnx").string(), "--calib", "64", "--equalize"});
  INFO(ok.out << ok.err);
  CHECK(ok.exit_code == 0);
  CHECK(fs::exists(dir / "m.qdq.onnx"));
  // fc1 -> Relu -> fc2 is an equalized pair: fc2 in fp32 would keep the source's (unscaled) weights.
  std::ofstream(dir / "fp32.json") << R"({"layers": [{"name": "/fc1/Gemm", "w_bits": 4, "a_bits": 8},
      {"name": "/fc2/Gemm", "fp32": true}, {"name": "/fc3/Gemm", "w_bits": 4, "a_bits": 8}]})";
  auto bad = run_haq({"export", mlp, "--policy", (dir / "fp32.json").string(), "--data", "fashion-mnist", "--out",
                      (dir / "f.qdq.onnx").string(), "--calib", "64", "--equalize"});
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.err, Contains("layer '/fc2/Gemm': is fp32 in the policy but cross-layer equalized with '/fc1/Gemm'"));
  CHECK_FALSE(fs::exists(dir / "f.qdq.onnx"));
}
