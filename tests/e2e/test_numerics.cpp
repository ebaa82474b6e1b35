// Numerics through the CLI (issue 15): parameters that make NaN or inf are
// import errors naming the node, non-finite data at run time is exit 2 naming
// the file, the sample and the layer, never a signal; and `eval --per-layer`.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <limits>

#include <nlohmann/json.hpp>

#include "onnx_builder.h"
#include "run_haq.h"
#include "test_paths.h"
#include "writers.h"

using haq::test::ModelBuilder;
using haq::test::run_haq;
using haq::test::source_path;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
namespace fs = std::filesystem;

namespace {

const float kNan = std::numeric_limits<float>::quiet_NaN();

std::string save(const ModelBuilder& b, const fs::path& path) {
  haq::test::write_bytes(path, b.bytes());
  return path.string();
}

/// x [N, 1, 28, 28] -> (middle) -> Flatten -> Gemm "fc" (10 outputs): a model
/// for Fashion-MNIST; `middle` adds nodes from "x" to "m".
template <typename F>
ModelBuilder fmnist_model(F&& middle) {
  ModelBuilder b(13);
  b.input("x", {-1, 1, 28, 28});
  middle(b);
  b.node("Flatten", {"m"}, {"f"}, "flatten");
  b.init_random("fc.w", {10, 784}, 2);
  b.init("fc.b", {10}, std::vector<float>(10, 0.f));
  auto& fc = b.node("Gemm", {"f", "fc.w", "fc.b"}, {"y"}, "fc");
  haq::test::set_int(fc, "transB", 1);
  b.output("y");
  return b;
}

/// Expects exit 2 (not a signal), nothing on stdout, and a last stderr line
/// "haq: error: ..." (after notes, if any); returns that line.
std::string exit2(const std::vector<std::string>& args) {
  auto r = run_haq(args);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.out.empty());
  const size_t at = r.err.rfind("haq: error: ");
  REQUIRE(at != std::string::npos);
  CHECK((at == 0 || r.err[at - 1] == '\n'));
  const std::string line = r.err.substr(at);
  CHECK(line.find('\n') == line.size() - 1);
  return line;
}

/// x.npy (float32, n x 28 x 28) and y.npy (int64 labels) in `dir`; returns "x,y".
std::string npy_pair(const fs::path& dir, const std::vector<float>& x, int64_t n) {
  std::vector<int64_t> y(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) y[static_cast<size_t>(i)] = i % 10;
  haq::test::write_npy(dir / "x.npy", "<f4", {static_cast<uint64_t>(n), 28, 28}, x.data(), x.size() * 4);
  haq::test::write_npy(dir / "y.npy", "<i8", {static_cast<uint64_t>(n)}, y.data(), y.size() * 8);
  return (dir / "x.npy").string() + "," + (dir / "y.npy").string();
}

}  // namespace

TEST_CASE("haq: parameters that make NaN or inf are exit 2 naming the model and the node", "[e2e][numerics]") {
  const fs::path dir = haq::test::scratch_dir("e2e_numerics_import");
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    const char* file;
    ModelBuilder model;
    const char* expected;
  };
  std::vector<Case> cases;
  cases.push_back({"bn_var.onnx", fmnist_model([](ModelBuilder& b) {
                     b.init("s", {1}, {1.f});
                     b.init("bb", {1}, {0.f});
                     b.init("mu", {1}, {0.f});
                     b.init("var", {1}, {-1.f});
                     b.node("BatchNormalization", {"x", "s", "bb", "mu", "var"}, {"m"}, "bn");
                   }),
                   "node 'bn' (BatchNormalization): channel 0: variance -1 + epsilon 1e-05 is not positive"});
  cases.push_back({"lrn_size_0.onnx", fmnist_model([](ModelBuilder& b) {
                     auto& n = b.node("LRN", {"x"}, {"m"}, "lrn");
                     haq::test::set_int(n, "size", 0);
                   }),
                   "node 'lrn' (LRN): LRN size 0 must be at least 1"});
  cases.push_back({"weight_nan.onnx", fmnist_model([](ModelBuilder& b) { b.node("Relu", {"x"}, {"m"}, "relu"); }),
                   "node 'fc' (Gemm): initializer 'fc.w' (input 1) holds nan at element 7"});
  cases.back().model.graph().mutable_initializer(0)->set_float_data(7, kNan);
  cases.push_back({"alpha_inf.onnx", fmnist_model([](ModelBuilder& b) { b.node("Relu", {"x"}, {"m"}, "relu"); }),
                   "node 'fc' (Gemm): attribute 'alpha' is inf"});
  {
    auto* fc = cases.back().model.graph().mutable_node(cases.back().model.graph().node_size() - 1);
    haq::test::set_float(*fc, "alpha", inf);
  }
  for (auto& c : cases) {
    INFO(c.file);
    const std::string path = save(c.model, dir / c.file);
    CHECK_THAT(exit2({"inspect", path}), StartsWith("haq: error: " + path + ": " + c.expected));
    CHECK_THAT(exit2({"eval", path, "--data", "fashion-mnist", "--samples", "20", "--calib", "8"}),
               StartsWith("haq: error: " + path + ": " + c.expected));
  }
}

TEST_CASE("haq eval: a NaN pixel in an .npy dataset is exit 2 naming the file and the sample", "[e2e][numerics]") {
  const fs::path dir = haq::test::scratch_dir("e2e_numerics_npy_nan");
  std::vector<float> x(10 * 784, 0.25f);
  x[3 * 784 + 100] = kNan;
  const std::string data = npy_pair(dir, x, 10);
  CHECK_THAT(exit2({"eval", source_path("models/fmnist-mlp.onnx"), "--data", data}),
             StartsWith("haq: error: " + (dir / "x.npy").string() +
                        ": sample 3: the model input holds nan at element 100 of the sample"));
}

TEST_CASE("haq eval: pixels of 3e38 overflow inside the model: exit 2 naming the file, the sample and the layer",
          "[e2e][numerics]") {
  const fs::path dir = haq::test::scratch_dir("e2e_numerics_npy_huge");
  std::vector<float> x(10 * 784, 0.25f);
  for (int k = 0; k < 784; ++k) x[2 * 784 + k] = 3e38f;
  const std::string data = npy_pair(dir, x, 10);
  const std::string err = exit2({"eval", source_path("models/fmnist-mlp.onnx"), "--data", data});
  CHECK_THAT(err, StartsWith("haq: error: " + (dir / "x.npy").string() + ": sample 2: non-finite activation "));
  CHECK_THAT(err, Contains("at the input of layer '"));
  CHECK_THAT(err, Contains("the sample's input is finite"));
}

TEST_CASE("haq eval: x / (x - x) in the model is exit 2 naming the sample, the layer and the node", "[e2e][numerics]") {
  const fs::path dir = haq::test::scratch_dir("e2e_numerics_div");
  const std::string path = save(fmnist_model([](ModelBuilder& b) {
                                  b.node("Sub", {"x", "x"}, {"z"}, "zero");
                                  b.node("Div", {"x", "z"}, {"m"}, "div");
                                }),
                                dir / "div.onnx");
  CHECK(run_haq({"inspect", path}).exit_code == 0);  // nothing wrong with the parameters
  const std::string err = exit2({"eval", path, "--data", "fashion-mnist", "--samples", "20", "--calib", "8"});
  CHECK_THAT(err, StartsWith("haq: error: fashion-mnist ("));
  CHECK_THAT(err, Contains(": sample "));
  CHECK_THAT(err, Contains("non-finite activation nan at the input of layer 'fc' of " + path +
                           " (value 'f', written by node 'flatten' (Flatten)"));
}

TEST_CASE("haq eval --per-layer: SQNR per layer with the 2-bit layer worst, and a collapsed policy warns", "[e2e][numerics]") {
  const fs::path dir = haq::test::scratch_dir("e2e_per_layer");
  const std::string model = source_path("models/fmnist-mlp.onnx");
  auto inspect = run_haq({"inspect", model, "--json"});
  REQUIRE(inspect.exit_code == 0);
  const auto layers = nlohmann::json::parse(inspect.out)["layers"];
  REQUIRE(layers.size() == 3);
  nlohmann::json policy = {{"layers", nlohmann::json::array()}};
  for (size_t i = 0; i < layers.size(); ++i)
    policy["layers"].push_back({{"name", layers[i]["name"]}, {"w_bits", i == 1 ? 2 : 8}, {"a_bits", i == 1 ? 2 : 8}});
  haq::test::write_bytes(dir / "p.json", policy.dump());
  const std::vector<std::string> args = {"eval", model, "--data", "fashion-mnist", "--samples", "300",
                                         "--calib", "64", "--policy", (dir / "p.json").string(), "--per-layer"};
  auto r = run_haq(args);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.out, Contains("per-layer    output SQNR against fp32 in dB on 256 test samples"));
  CHECK_THAT(r.out, Contains("cumulative  isolated"));
  // The 2-bit layer is the one marked.
  const std::string row1 = r.out.substr(r.out.find("\n    1  "), 200);
  CHECK_THAT(row1.substr(0, row1.find('\n', 1)), Contains("w2a2") && Contains("<- worst 1"));
  auto args_json = args;
  args_json.push_back("--json");
  args_json.push_back("--per-layer-samples");
  args_json.push_back("100");
  auto j = run_haq(args_json);
  REQUIRE(j.exit_code == 0);
  const auto pl = nlohmann::json::parse(j.out)["per_layer"];
  CHECK(pl["samples"] == 100);
  REQUIRE(pl["layers"].size() == 3);
  const auto& l = pl["layers"];
  CHECK(l[0]["sqnr_isolated_db"].get<double>() == l[0]["sqnr_cumulative_db"].get<double>());
  CHECK(l[0]["sqnr_isolated_db"].get<double>() > 30);
  CHECK(l[2]["sqnr_isolated_db"].get<double>() > 30);
  CHECK(l[1]["sqnr_isolated_db"].get<double>() < l[0]["sqnr_isolated_db"].get<double>() - 20);
  CHECK(l[1]["w_bits"] == 2);
  CHECK(l[1]["worst"] == true);
  CHECK(l[1]["worst_rank"] == 1);
  CHECK(l[0]["worst_rank"].is_null());
  CHECK(l[0]["worst"] == false);
  CHECK(l[2]["sqnr_cumulative_db"].get<double>() < l[2]["sqnr_isolated_db"].get<double>());

  // 2 bits everywhere in the MobileNet: agreement with fp32 collapses (about
  // 9%); stderr says where to look.
  const std::string mobilenet = source_path("models/fmnist-mobilenet.onnx");
  auto w = run_haq({"eval", mobilenet, "--data", "fashion-mnist", "--samples", "300", "--calib", "64", "--bits", "w2a2"});
  REQUIRE(w.exit_code == 0);
  CHECK_THAT(w.err, StartsWith("warning: the quantized model agrees with fp32 on only "));
  CHECK_THAT(w.err, Contains("(top-1 fidelity below 50%); see which layers lose it with: haq eval " + mobilenet +
                             " --data fashion-mnist --bits w2a2 --per-layer\n"));
  auto ok = run_haq({"eval", model, "--data", "fashion-mnist", "--samples", "300", "--calib", "64"});
  REQUIRE(ok.exit_code == 0);
  CHECK(ok.err.find("warning:") == std::string::npos);
}
