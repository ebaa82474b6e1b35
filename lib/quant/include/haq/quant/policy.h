#pragma once
/// \file
/// A Policy: per quantizable layer, weight and activation bitwidths (1..8) or
/// fp32. It is the input of eval, simulate, check and export, and the output
/// of search (policy.json, see docs/policy-format.md).

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "haq/model/graph.h"

namespace haq::quant {

/// Bits of one layer.
struct LayerBits {
  std::string layer;   ///< layer name (Graph::layers[i].name)
  int w_bits = 8;      ///< 1..8; ignored when fp32
  int a_bits = 8;      ///< 1..8, the layer's input; ignored when fp32
  bool fp32 = false;   ///< keep this layer in floating point
  bool operator==(const LayerBits&) const = default;
};

/// One entry per quantizable layer, in Graph::layers order.
struct Policy {
  std::vector<LayerBits> layers;
  /// Everything else recorded with the policy (model, profile, accuracies,
  /// per-layer costs, ...). Kept as written; not interpreted here.
  nlohmann::json meta = nlohmann::json::object();
  bool operator==(const Policy& o) const { return layers == o.layers; }
};

/// w_bits/a_bits for every layer; with `keep_ends_8bit` the first and last
/// layers get 8/8 (the reference's uniform-k baseline).
Policy uniform_policy(const model::Graph& g, int w_bits, int a_bits, bool keep_ends_8bit = false);

/// Parses "w4a8", "w8a8", "4" (= w4a4) or "fp32"; Error(usage) otherwise.
std::pair<int, int> parse_bits_spec(const std::string& spec);

/// Reads policy JSON (the "layers" array of policy.json) and checks it
/// against the graph: every layer named once, no unknown layers, bits in
/// 1..8. Errors name the file and the JSON pointer (Error(policy)).
Policy policy_from_json(const nlohmann::json& j, const model::Graph& g, const std::string& file);

/// Parses policy JSON text and checks it (policy_from_json); `file` names the
/// source in messages. What load_policy does after reading the file; the
/// fuzz target (tests/fuzz/fuzz_policy.cpp) calls it on bytes in memory.
Policy parse_policy(const std::string& text, const model::Graph& g, const std::string& file);

/// Reads and checks a policy file.
Policy load_policy(const std::string& path, const model::Graph& g);

/// JSON with "schema": "haq.policy/1", "layers": [...] and `meta` merged at top level.
nlohmann::json policy_to_json(const Policy& p);

/// Compact string, e.g. "w8a8 w4a6 ... ", for logs and cache keys.
std::string policy_key(const Policy& p);

}  // namespace haq::quant
