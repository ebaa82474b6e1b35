// ONNX's own backend tests (Debian's libonnx-testdata) through haq: every
// case whose model uses only ops haq supports is imported and run by the fp32
// engine, and its output is compared with ONNX's expected one at the
// tolerances of ONNX's runner (onnx/backend/test/runner: |got - expected| <=
// atol + rtol * |expected| with rtol = 1e-3, atol = 1e-7; NaN where expected
// is NaN).
//
// The engine runs one float input: the harness feeds the first float input
// of the data set and binds every other graph input to its data as a
// constant (ImportOptions::bind_inputs). A static model's batch is its input's
// dim 0, and the engine runs at that batch.
//
// Each case is passed, rejected (a haq::Error of kind unsupported that names
// the place: an op form haq refuses on purpose) or failed (wrong numbers, any
// other error). Exit status 0 only with no failure and at least --min-pass
// passes. See docs/conformance.md.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "haq/core/error.h"
#include "haq/engine/engine.h"
#include "haq/model/graph.h"
#include "haq/model/onnx_files.h"

namespace fs = std::filesystem;
using haq::Error;
using haq::ErrorKind;
namespace model = haq::model;

namespace {

constexpr double kRtol = 1e-3, kAtol = 1e-7;
const char* const kSuites[] = {"node", "simple", "pytorch-converted", "pytorch-operator"};

enum class Result { passed, rejected, failed };

struct Outcome {
  Result result = Result::passed;
  std::string detail;
};

std::vector<model::Tensor> read_numbered(const fs::path& dir, const char* prefix) {
  std::vector<model::Tensor> v;
  for (int k = 0;; ++k) {
    const fs::path p = dir / fmt::format("{}_{}.pb", prefix, k);
    if (!fs::exists(p)) break;
    v.push_back(model::read_tensor_pb(p.string()));
  }
  return v;
}

std::string dims_str(const std::vector<int64_t>& d) { return fmt::format("[{}]", fmt::join(d, ", ")); }

// One data set of one case. Throws haq::Error from import or the engine.
Outcome run_data_set(const fs::path& model_path, const model::OnnxOutline& outline, const fs::path& set) {
  std::vector<model::Tensor> inputs, expected;
  try {
    inputs = read_numbered(set, "input");
    expected = read_numbered(set, "output");
  } catch (const Error& e) {
    // Data haq cannot hold (double, float16, string, sequences...): the
    // verdict is the importer's on the model itself, which must refuse it.
    model::import_onnx(model_path.string());
    return {Result::failed, fmt::format("haq imports the model but cannot read its data: {}", e.what())};
  }
  if (inputs.empty()) {  // the importer refuses a graph without inputs
    model::import_onnx(model_path.string());
    return {Result::failed, "haq imports a model without inputs"};
  }
  if (inputs.size() != outline.inputs.size())
    return {Result::failed, fmt::format("{} has {} inputs, the model declares {}", set.filename().string(),
                                        inputs.size(), outline.inputs.size())};
  if (expected.empty()) return {Result::failed, fmt::format("{} has no output_0.pb", set.filename().string())};
  for (size_t i = 0; i < inputs.size(); ++i)
    if (std::find(inputs[i].dims.begin(), inputs[i].dims.end(), 0) != inputs[i].dims.end())
      // The one refusal of the harness itself: haq's shapes are positive, and
      // a dim 0 of 0 in a model is read as a symbolic batch (docs/inspect.md).
      return {Result::rejected, fmt::format("input {} is an empty tensor {} (haq's tensors are non-empty)", i,
                                            dims_str(inputs[i].dims))};
  size_t live = 0;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].is_float()) {
      live = i;
      break;
    }
  model::ImportOptions io;
  io.batch = inputs[live].dims.empty() || inputs[live].dims[0] < 1 ? 1 : inputs[live].dims[0];
  for (size_t i = 0; i < inputs.size(); ++i)
    if (i != live) io.bind_inputs[outline.inputs[i]] = inputs[i];
  model::Graph g = model::import_onnx(model_path.string(), io);
  if (g.inputs.at(0).shape != inputs[live].dims)
    return {Result::failed, fmt::format("input '{}' imported with shape {}, the data has {}", g.inputs[0].name,
                                        dims_str(g.inputs[0].shape), dims_str(inputs[live].dims))};
  const std::vector<int64_t> out_shape = g.outputs.at(0).shape;
  const size_t n_outputs = g.outputs.size();
  haq::engine::EngineOptions eo;
  eo.batch = g.batch;
  haq::engine::Engine e(std::move(g), eo);
  if (!inputs[live].is_float()) return {Result::failed, "the engine accepted a non-float input"};
  std::vector<float> got;
  try {
    got = e.run_batch(nullptr, inputs[live].f32);
  } catch (const Error& err) {
    // haq refuses non-finite activations by design (docs/reliability.md): a
    // case whose expected output is NaN or inf is refused, not failed.
    const auto& w = expected[0].f32;
    const bool want_non_finite = std::any_of(w.begin(), w.end(), [](float v) { return !std::isfinite(v); });
    if (err.kind() == ErrorKind::data && want_non_finite)
      return {Result::rejected, fmt::format("the expected output holds NaN or inf, which haq refuses: {}", err.what())};
    throw;
  }
  if (n_outputs != 1)
    // A model haq runs has one output (a classifier's logits): the engine
    // returns only the first, so the others cannot be compared.
    return {Result::rejected, fmt::format("the graph has {} outputs; the engine returns only the first", n_outputs)};
  const model::Tensor& want = expected[0];
  if (!want.is_float())
    return {Result::failed, fmt::format("the expected output is {}, the engine returned float",
                                        model::to_string(want.dtype))};
  if (out_shape != want.dims)
    return {Result::failed, fmt::format("output shape {}, expected {}", dims_str(out_shape), dims_str(want.dims))};
  if (got.size() != want.f32.size())
    return {Result::failed, fmt::format("{} output values, expected {}", got.size(), want.f32.size())};
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double a = got[i], b = want.f32[i];
    bool ok;
    if (std::isnan(b) || std::isnan(a)) ok = std::isnan(a) && std::isnan(b);
    else if (std::isinf(b) || std::isinf(a)) ok = a == b;
    else ok = std::fabs(a - b) <= kAtol + kRtol * std::fabs(b);
    if (!ok) {
      if (bad++ == 0) first = i;
      if (!std::isnan(a - b)) worst = std::max(worst, std::fabs(a - b));
    }
  }
  if (bad)
    return {Result::failed, fmt::format("{} of {} values out of tolerance; first at {}: got {}, expected {} "
                                        "(largest difference {:.3g})",
                                        bad, got.size(), first, got[first], want.f32[first], worst)};
  return {};
}

Outcome run_case(const fs::path& dir) {
  const fs::path model_path = dir / "model.onnx";
  try {
    const model::OnnxOutline outline = model::read_onnx_outline(model_path.string());
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0) sets.push_back(e.path());
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) return {Result::failed, "no test_data_set_* folder"};
    for (const auto& set : sets) {
      Outcome o = run_data_set(model_path, outline, set);
      if (o.result != Result::passed) {
        if (sets.size() > 1) o.detail = set.filename().string() + ": " + o.detail;
        return o;
      }
    }
    return {};
  } catch (const Error& e) {
    // A deliberate refusal names what is refused and where; anything else
    // (a model error on ONNX's own valid models, an internal error) is a bug.
    const bool clear = e.kind() == ErrorKind::unsupported && !e.where().empty();
    return {clear ? Result::rejected : Result::failed, fmt::format("[{}] {}", haq::to_string(e.kind()), e.what())};
  } catch (const std::exception& e) {
    return {Result::failed, fmt::format("exception: {}", e.what())};
  }
}

bool in_scope(const fs::path& dir) {
  const auto& ops = model::supported_ops();
  const model::OnnxOutline o = model::read_onnx_outline((dir / "model.onnx").string());
  return std::all_of(o.op_types.begin(), o.op_types.end(),
                     [&](const std::string& op) { return std::binary_search(ops.begin(), ops.end(), op); });
}

int usage() {
  std::fprintf(stderr,
               "usage: haq_onnx_conformance --data DIR [--min-pass N] [--filter TEXT] [--verbose]\n"
               "  DIR holds ONNX's backend test data (node/, simple/, pytorch-converted/, pytorch-operator/);\n"
               "  Debian's libonnx-testdata installs it in /usr/include/onnx/backend/test/data.\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data, filter;
  long min_pass = 0;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--data" && i + 1 < argc) data = argv[++i];
    else if (a == "--filter" && i + 1 < argc) filter = argv[++i];
    else if (a == "--min-pass" && i + 1 < argc) min_pass = std::stol(argv[++i]);
    else if (a == "--verbose") verbose = true;
    else return usage();
  }
  if (data.empty()) return usage();
  if (!fs::is_directory(fs::path(data) / "node")) {
    std::fprintf(stderr, "%s: no node/ folder: install libonnx-testdata (scripts/setup.sh)\n", data.c_str());
    return 1;
  }
  int passed = 0, rejected = 0, failed = 0, out_of_scope = 0;
  std::vector<std::string> failures, rejections;
  for (const char* suite : kSuites) {
    const fs::path root = fs::path(data) / suite;
    if (!fs::is_directory(root)) continue;
    std::vector<fs::path> cases;
    for (const auto& e : fs::directory_iterator(root))
      if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
    std::sort(cases.begin(), cases.end());
    for (const auto& dir : cases) {
      const std::string name = std::string(suite) + "/" + dir.filename().string();
      if (!filter.empty() && name.find(filter) == std::string::npos) continue;
      bool scope = false;
      try {
        scope = in_scope(dir);
      } catch (const std::exception& e) {
        failures.push_back(fmt::format("{}: cannot read the model: {}", name, e.what()));
        ++failed;
        continue;
      }
      if (!scope) {
        ++out_of_scope;
        continue;
      }
      const Outcome o = run_case(dir);
      switch (o.result) {
        case Result::passed:
          ++passed;
          if (verbose) std::printf("passed   %s\n", name.c_str());
          break;
        case Result::rejected: ++rejected; rejections.push_back(name + ": " + o.detail); break;
        case Result::failed: ++failed; failures.push_back(name + ": " + o.detail); break;
      }
      std::fflush(stdout);
    }
  }
  for (const auto& r : rejections) std::printf("REJECTED %s\n", r.c_str());
  for (const auto& f : failures) std::printf("FAILED   %s\n", f.c_str());
  std::printf("%d passed, %d rejected, %d failed (%d cases use ops haq does not support)\n", passed, rejected,
              failed, out_of_scope);
  if (passed < min_pass) {
    std::printf("fewer passes than the required %ld\n", min_pass);
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
