// haq eval on the bundled MLP and real Fashion-MNIST data.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "run_haq.h"
#include "test_paths.h"

using haq::test::run_haq;
using haq::test::source_path;

TEST_CASE("haq eval reports fp32 and W8A8 accuracy with counts and seed") {
  auto r = run_haq({"eval", source_path("models/fmnist-mlp.onnx"), "--data", "fashion-mnist",
                    "--samples", "1000", "--calib", "128", "--seed", "3", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["samples"] == 1000);
  CHECK(j["calibration_samples"] == 128);
  CHECK(j["seed"] == 3);
  CHECK(j["policy"] == "w8a8");
  CHECK(j["fp32"]["samples"] == 1000);
  const double fp = j["fp32"]["top1"], q = j["quantized"]["top1"];
  CHECK(fp > 80.0);  // the MLP scores 88.6% on the full test split
  CHECK(std::abs(q - fp) < 1.0);
  CHECK(j["quantized"]["fidelity"].get<double>() > 97.0);
  CHECK(j["fp32"]["samples_per_second"].get<double>() > 0);
}

TEST_CASE("haq eval is deterministic for a seed and prints a text report") {
  std::vector<std::string> args = {"eval", source_path("models/fmnist-mlp.onnx"), "--data",
                                   "fashion-mnist", "--samples", "300", "--calib", "64", "--bits", "w4a6"};
  auto a = run_haq(args), b = run_haq(args);
  REQUIRE(a.exit_code == 0);
  CHECK(a.out.find("300 test samples") != std::string::npos);
  CHECK(a.out.find("w4a6") != std::string::npos);
  // Same accuracies (the samples/s differ).
  auto acc_lines = [](const std::string& s) {
    std::string out;
    size_t p = 0;
    while ((p = s.find("top1 ", p)) != std::string::npos) out += s.substr(p, 12), p += 5;
    return out;
  };
  CHECK(acc_lines(a.out) == acc_lines(b.out));
}

TEST_CASE("haq eval with --bits fp32 reproduces fp32, with a policy file runs it") {
  auto r = run_haq({"eval", source_path("models/fmnist-mlp.onnx"), "--data", "fashion-mnist",
                    "--samples", "200", "--calib", "32", "--bits", "fp32", "--json"});
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["quantized"]["top1"] == j["fp32"]["top1"]);
  CHECK(j["quantized"]["fidelity"] == 100.0);
}

TEST_CASE("haq eval --explain prints the quantization plan the run executes") {
  auto r = run_haq({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data", "fashion-mnist", "--samples",
                    "100", "--calib", "32", "--bits", "w4a8", "--explain", "--json"});
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  auto j = nlohmann::json::parse(r.out);
  const auto& plan = j["plan"];
  REQUIRE(plan.size() == 14);  // the MobileNet's quantizable layers
  // The stem reads the [0, 1] image: unsigned input quantized from f32; it
  // fuses its Relu and writes the next conv's u8 codes: one linear, one clip.
  CHECK(plan[0]["input"]["signed"] == false);
  CHECK(plan[0]["input"]["from_producer"] == false);
  CHECK(plan[0]["weights"]["bits"] == 4);
  CHECK(plan[0]["weights"]["max_abs_level"] == 7);
  CHECK(plan[0]["fused_activation"]["kind"] == "relu");
  CHECK(plan[0]["output"]["encoding"] == "u8 codes");
  REQUIRE(plan[0]["post_ops"].size() == 2);
  CHECK(plan[0]["post_ops"][0]["op"] == "linear");
  CHECK(plan[0]["post_ops"][1]["op"] == "clip");
  CHECK(plan[0]["post_ops"][1]["alpha"] == 0.0);
  CHECK(plan[0]["post_ops"][1]["beta"] == 255.0);
  CHECK(plan[1]["input"]["from_producer"] == true);
  // The classifier reads pooled f32 values and writes f32 logits.
  CHECK(plan[13]["kind"] == "gemm");
  CHECK(plan[13]["output"]["encoding"] == "f32");
  CHECK(plan[13]["post_ops"].empty());
  // The text form names every layer.
  auto t = run_haq({"eval", source_path("models/fmnist-mobilenet.onnx"), "--data", "fashion-mnist", "--samples",
                    "100", "--calib", "32", "--bits", "w4a8", "--explain"});
  REQUIRE(t.exit_code == 0);
  CHECK(t.out.find("post-ops: linear(") != std::string::npos);
  CHECK(t.out.find("(codes from producer)") != std::string::npos);
}

TEST_CASE("haq eval quantizes inputs that can be negative with a zero point by default, symmetric on request") {
  // The EfficientNet-style net's convolutions read SiLU outputs (min -0.28).
  const std::string m = source_path("models/corpus/fmnist-efficientnet.onnx");
  auto plan_of = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"eval", m, "--data", "fashion-mnist", "--samples", "100", "--calib", "64",
                                     "--bits", "w8a4", "--explain", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = run_haq(args);
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return nlohmann::json::parse(r.out);
  };
  const auto asym = plan_of({});
  CHECK(asym["act_quant"] == "asymmetric");
  const auto sym = plan_of({"--act-quant", "symmetric"});
  CHECK(sym["act_quant"] == "symmetric");
  size_t signed_inputs = 0, shifted = 0;
  REQUIRE(asym["plan"].size() == sym["plan"].size());
  for (size_t i = 0; i < asym["plan"].size(); ++i) {
    const auto& a = asym["plan"][i]["input"];
    const auto& s = sym["plan"][i]["input"];
    if (!a["signed"].get<bool>()) {
      CHECK(a == s);  // unsigned inputs are the same under both
      continue;
    }
    ++signed_inputs;
    // Symmetric: levels [-7, 7] with the codes' zero point 8.
    CHECK(s["lo"] == -7);
    CHECK(s["hi"] == 7);
    CHECK(s["zero_point"] == 8);
    // Asymmetric: all 16 codes, the zero point -lo.
    CHECK(a["hi"].get<int>() - a["lo"].get<int>() == 15);
    CHECK(a["zero_point"] == -a["lo"].get<int>());
    shifted += a["zero_point"].get<int>() < 7;
  }
  // 21 signed inputs, 18 of them one-sided SiLU outputs whose zero point
  // sits near the bottom (measured); the others are roughly symmetric.
  CHECK(signed_inputs == 21);
  CHECK(shifted >= 15);
}

TEST_CASE("haq eval rejects bad input with exit 2 and a message") {
  const std::string m = source_path("models/fmnist-mlp.onnx");
  auto r = run_haq({"eval", "/no/such/model.onnx", "--data", "fashion-mnist"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("model.onnx") != std::string::npos);
  r = run_haq({"eval", m, "--data", "fashion-mnist", "--bits", "w9a8"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--bits") != std::string::npos);
  r = run_haq({"eval", m, "--data", "fashion-mnist", "--metric", "top3"});
  CHECK(r.exit_code == 2);
  r = run_haq({"eval", m, "--data", "fashion-mnist", "--calib-method", "entropy"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--calib-method") != std::string::npos);
  r = run_haq({"eval", m, "--data", "fashion-mnist", "--act-quant", "affine"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--act-quant") != std::string::npos);
  r = run_haq({"eval", m, "--data", "fashion-mnist", "--calib-method", "kl", "--act-quant", "asymmetric"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("--act-quant") != std::string::npos);
  r = run_haq({"eval", m, "--data", "/no/such/data"});
  CHECK(r.exit_code == 2);
  r = run_haq({"eval", m});
  CHECK(r.exit_code == 2);
  auto dir = haq::test::scratch_dir("eval_bad_policy");
  std::ofstream(dir / "p.json") << R"({"layers": [{"name": "nope", "w_bits": 4, "a_bits": 4}]})";
  r = run_haq({"eval", m, "--data", "fashion-mnist", "--policy", (dir / "p.json").string()});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("p.json") != std::string::npos);
}

namespace {
// The OpenMP runtimes' view of their settings, printed to stderr with
// OMP_DISPLAY_ENV=verbose: libgomp (oneDNN's) once per process start, before
// main(); LLVM's libomp, which the clang sanitizer build also loads, when it
// first runs (its lines read "[host] OMP_WAIT_POLICY='PASSIVE'").
struct OmpDisplay {
  int starts = 0;                       // libgomp starts
  std::string wait_policy, spin_count;  // of libgomp's last start
  std::vector<std::string> libomp_wait_policies;  // every libomp display
};
OmpDisplay omp_display(const std::string& err) {
  OmpDisplay d;
  auto value = [](const std::string& block, const std::string& name, const std::string& sep) {
    size_t p = block.find(name + sep);
    if (p == std::string::npos) return std::string();
    p += name.size() + sep.size();
    return block.substr(p, block.find('\'', p) - p);
  };
  const std::string begin = "OPENMP DISPLAY ENVIRONMENT BEGIN", end = "OPENMP DISPLAY ENVIRONMENT END";
  for (size_t p = err.find(begin); p != std::string::npos; p = err.find(begin, p + 1)) {
    const std::string block = err.substr(p, err.find(end, p) - p);
    if (block.find("GOMP_SPINCOUNT") != std::string::npos) {
      ++d.starts;
      d.wait_policy = value(block, "OMP_WAIT_POLICY", " = '");
      d.spin_count = value(block, "GOMP_SPINCOUNT", " = '");
    } else {
      d.libomp_wait_policies.push_back(value(block, "OMP_WAIT_POLICY", "='"));
    }
  }
  return d;
}
}  // namespace

TEST_CASE("haq runs OpenMP with passive waiting unless OMP_WAIT_POLICY is set", "[eval][openmp]") {
  const std::vector<std::string> eval = {HAQ_BINARY, "eval", source_path("models/fmnist-mlp.onnx"), "--data",
                                         "fashion-mnist", "--samples", "100", "--calib", "32"};
  auto with_env = [&](std::vector<std::string> env) {
    env.insert(env.begin(), {"-u", "OMP_WAIT_POLICY", "OMP_DISPLAY_ENV=verbose"});
    env.insert(env.end(), eval.begin(), eval.end());
    return haq::test::run_program("/usr/bin/env", env);
  };
  SECTION("unset: the runtime haq computes with does not spin") {
    auto r = with_env({});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const OmpDisplay d = omp_display(r.err);
    CHECK(d.starts == 2);  // libgomp starts before main(); haq re-executes itself with the variable set
    CHECK(d.wait_policy == "PASSIVE");
    CHECK(d.spin_count == "0");
    for (const auto& w : d.libomp_wait_policies) CHECK(w == "PASSIVE");
  }
  SECTION("set by the user: left alone, no re-execution") {
    auto r = with_env({"OMP_WAIT_POLICY=active"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    const OmpDisplay d = omp_display(r.err);
    CHECK(d.starts == 1);
    CHECK(d.wait_policy == "ACTIVE");
    CHECK(d.spin_count != "0");
    for (const auto& w : d.libomp_wait_policies) CHECK(w == "ACTIVE");
  }
}
