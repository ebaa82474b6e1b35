// Fuzz target: the policy parser (JSON, schema, checks against a model's
// layers), then the policy back to JSON and its key. The model is
// models/fmnist-resnet.onnx, the one the committed example policy is for.
#include <filesystem>
#include <string>

#include "fuzz_harness.h"
#include "haq/model/graph.h"
#include "haq/quant/policy.h"

namespace haq::fuzz {

Outcome run_policy(const uint8_t* data, size_t size) {
  static const model::Graph graph =
      model::import_onnx((std::filesystem::path(HAQ_SOURCE_DIR) / "models/fmnist-resnet.onnx").string());
  const std::string text(reinterpret_cast<const char*>(data), size);
  return guarded([&] {
    const quant::Policy p = quant::parse_policy(text, graph, "policy.json");
    (void)quant::policy_to_json(p).dump();
    (void)quant::policy_key(p);
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_policy)
