// The two checks of every corpus model (tests/unit/engine/test_corpus*.cpp):
// haq's fp32 logits equal ONNX Runtime's within 1e-4 relative on 64 real test
// images (and the ops the model exists to exercise are still in the imported
// graph), and W8A8 keeps top-1 within 0.5 points of fp32 (at least 85 %) on the
// first 2000 test images.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "haq/model/graph.h"

namespace haq::test {

/// models/corpus/NAME.onnx in the source tree.
std::string corpus_model(const std::string& name);

/// The model imported for a fixed batch (REQUIREs that the file exists).
model::Graph import_corpus_at(const std::string& path, int64_t batch);

/// fp32 logits = ONNX Runtime within 1e-4 relative; every op of `ops` is in the
/// imported graph.
void check_fp32_equals_onnx_runtime(const std::string& name, const std::vector<std::string>& ops);

/// W8A8 (quant::uniform_policy(g, 8, 8), calibrated as `haq eval` does by
/// default) within 0.5 points of fp32 top-1, which must be at least 85 %.
void check_w8a8_keeps_top1(const std::string& name);

}  // namespace haq::test
