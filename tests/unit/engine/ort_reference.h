#pragma once
// ONNX Runtime as the fp32 reference of the engine tests (test_ort.cpp,
// test_corpus.cpp). ONNX Runtime comes from npm: `npm install
// --ignore-scripts` in tests/ort (scripts/test.sh does it). Without it these
// helpers fail the test; they never skip.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace haq::test {

/// Fails the running test case unless node is on PATH and
/// tests/ort/node_modules/onnxruntime-node exists.
void require_onnx_runtime();

/// The first output of `model` on `input` (float32 of `shape`), computed by
/// ONNX Runtime (tests/ort/run_ort.js, one thread) through files in `dir`.
std::vector<float> run_onnx_runtime(const std::string& model, const std::vector<float>& input,
                                    const std::vector<int64_t>& shape, const std::filesystem::path& dir);

/// The largest |ours - ref| over all logits, each relative to the largest
/// |ref| logit of its sample (rows of `classes`).
double worst_relative_difference(const std::vector<float>& ours, const std::vector<float>& ref,
                                 int64_t classes);

}  // namespace haq::test
