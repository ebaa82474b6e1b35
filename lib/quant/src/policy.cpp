#include "haq/quant/policy.h"

#include <map>
#include <regex>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"

namespace haq::quant {

Policy uniform_policy(const model::Graph& g, int w_bits, int a_bits, bool keep_ends_8bit) {
  Policy p;
  const size_t n = g.layers.size();
  for (size_t i = 0; i < n; ++i) {
    bool end = keep_ends_8bit && (i == 0 || i + 1 == n);
    p.layers.push_back({g.layers[i].name, end ? 8 : w_bits, end ? 8 : a_bits, false});
  }
  return p;
}

std::pair<int, int> parse_bits_spec(const std::string& spec) {
  if (spec == "fp32") return {0, 0};
  static const std::regex wa(R"(w([1-8])a([1-8]))");
  static const std::regex one(R"([1-8])");
  std::smatch m;
  if (std::regex_match(spec, m, wa)) return {std::stoi(m[1]), std::stoi(m[2])};
  if (std::regex_match(spec, m, one)) return {std::stoi(spec), std::stoi(spec)};
  fail(ErrorKind::usage, "", "--bits", "expected wWaA with W and A in 1..8 (e.g. w4a8), a single bitwidth, or fp32; got '{}'", spec);
}

namespace {
int read_bits(const nlohmann::json& e, const char* key, const std::string& file,
              const std::string& pointer) {
  if (!e.contains(key)) fail(ErrorKind::policy, file, pointer, "missing \"{}\"", key);
  const auto& v = e.at(key);
  if (!v.is_number_integer())
    fail(ErrorKind::policy, file, pointer + "/" + key, "expected an integer in 1..8, got {}", v.dump());
  int64_t b = v.get<int64_t>();
  if (b < 1 || b > 8)
    fail(ErrorKind::policy, file, pointer + "/" + key, "expected an integer in 1..8, got {}", b);
  return static_cast<int>(b);
}
}  // namespace

Policy policy_from_json(const nlohmann::json& j, const model::Graph& g, const std::string& file) {
  if (!j.is_object()) fail(ErrorKind::policy, file, "/", "expected a JSON object");
  if (j.contains("schema") && j["schema"] != "haq.policy/1")
    fail(ErrorKind::policy, file, "/schema", "expected \"haq.policy/1\", got {}", j["schema"].dump());
  if (!j.contains("layers") || !j["layers"].is_array())
    fail(ErrorKind::policy, file, "/layers", "expected an array of layers");
  std::map<std::string, LayerBits> by_name;
  const auto& arr = j["layers"];
  for (size_t i = 0; i < arr.size(); ++i) {
    std::string ptr = "/layers/" + std::to_string(i);
    const auto& e = arr[i];
    if (!e.is_object()) fail(ErrorKind::policy, file, ptr, "expected an object");
    if (!e.contains("name") || !e["name"].is_string())
      fail(ErrorKind::policy, file, ptr + "/name", "expected the layer name as a string");
    LayerBits lb;
    lb.layer = e["name"].get<std::string>();
    if (g.find_layer(lb.layer) < 0)
      fail(ErrorKind::policy, file, ptr + "/name", "unknown layer '{}': the model has no quantizable layer of that name", lb.layer);
    if (by_name.count(lb.layer))
      fail(ErrorKind::policy, file, ptr + "/name", "layer '{}' appears twice", lb.layer);
    if (e.contains("fp32") && !e["fp32"].is_boolean())
      fail(ErrorKind::policy, file, ptr + "/fp32", "expected true or false, got {}", e["fp32"].dump());
    if (e.contains("fp32") && e["fp32"] == true) {
      // Bits beside "fp32": true say two things of one layer; which one the
      // user meant is not ours to guess (haq writes either, never both).
      for (const char* key : {"w_bits", "a_bits"})
        if (e.contains(key))
          fail(ErrorKind::policy, file, ptr + "/" + key,
               "a layer with \"fp32\": true has no bits, got {}", e[key].dump());
      lb.fp32 = true;
      lb.w_bits = lb.a_bits = 32;
    } else {
      lb.w_bits = read_bits(e, "w_bits", file, ptr);
      lb.a_bits = read_bits(e, "a_bits", file, ptr);
    }
    by_name[lb.layer] = lb;
  }
  Policy p;
  for (const auto& layer : g.layers) {
    auto it = by_name.find(layer.name);
    if (it == by_name.end())
      fail(ErrorKind::policy, file, "/layers", "layer '{}' of the model is missing from the policy", layer.name);
    p.layers.push_back(it->second);
  }
  p.meta = j;
  p.meta.erase("layers");
  p.meta.erase("schema");
  return p;
}

Policy parse_policy(const std::string& text, const model::Graph& g, const std::string& file) {
  // Core's parser: syntax errors by line and column, numbers out of range
  // (1e999, found by tests/fuzz/fuzz_policy) and nesting deeper than 256
  // levels are Error(policy). The depth limit matters: extra keys are kept
  // in Policy::meta, and copying or writing a deeply nested value recurses.
  return policy_from_json(parse_json_document(text, file, ErrorKind::policy), g, file);
}

Policy load_policy(const std::string& path, const model::Graph& g) {
  return parse_policy(read_file(path), g, path);
}

nlohmann::json policy_to_json(const Policy& p) {
  nlohmann::json j = nlohmann::json::object();
  j["schema"] = "haq.policy/1";
  for (auto it = p.meta.begin(); it != p.meta.end(); ++it) j[it.key()] = it.value();
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& l : p.layers) {
    nlohmann::json e;
    e["name"] = l.layer;
    if (l.fp32) e["fp32"] = true;
    else {
      e["w_bits"] = l.w_bits;
      e["a_bits"] = l.a_bits;
    }
    layers.push_back(e);
  }
  j["layers"] = layers;
  return j;
}

std::string policy_key(const Policy& p) {
  std::string key;
  for (const auto& l : p.layers) {
    if (!key.empty()) key += ' ';
    key += l.fp32 ? std::string("fp32") : fmt::format("w{}a{}", l.w_bits, l.a_bits);
  }
  return key;
}

}  // namespace haq::quant
