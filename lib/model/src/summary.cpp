#include "haq/model/summary.h"

#include <algorithm>

#include <fmt/format.h>

namespace haq::model {

namespace {

std::string shape_text(const std::vector<int64_t>& dims) { return fmt::format("{}", fmt::join(dims, "x")); }

/// 1234567 -> "1.23M"; exact figures are in the JSON.
std::string human(int64_t v) {
  const double d = static_cast<double>(v);
  if (v >= 1000000000) return fmt::format("{:.2f}G", d / 1e9);
  if (v >= 1000000) return fmt::format("{:.2f}M", d / 1e6);
  if (v >= 10000) return fmt::format("{:.1f}K", d / 1e3);
  return std::to_string(v);
}

nlohmann::json value_json(const ValueInfo& v) {
  return {{"name", v.name}, {"dtype", to_string(v.dtype)}, {"shape", v.shape}};
}

}  // namespace

ModelSummary summarize(const Graph& g) {
  ModelSummary s;
  s.file = g.source;
  s.ir_version = g.ir_version;
  s.opset = g.opset;
  s.producer_name = g.producer_name;
  s.producer_version = g.producer_version;
  s.batch = g.batch;
  s.dynamic_batch = g.dynamic_batch;
  s.inputs = g.inputs;
  s.outputs = g.outputs;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const Layer& L = g.layers[i];
    LayerSummary r;
    r.index = static_cast<int>(i);
    r.name = L.name;
    r.op = g.nodes.at(L.node).op;
    r.kind = to_string(L.kind);
    r.input_shape = L.input_shape;
    r.output_shape = L.output_shape;
    r.c_in = L.c_in;
    r.c_out = L.c_out;
    r.kernel_h = L.kernel_h;
    r.kernel_w = L.kernel_w;
    r.stride_h = L.stride_h;
    r.stride_w = L.stride_w;
    r.groups = L.groups;
    r.depthwise = L.depthwise;
    r.params = L.params;
    r.macs = L.macs;
    s.total_params += L.params;
    s.total_macs += L.macs;
    s.layers.push_back(r);
  }
  for (const auto& [name, t] : g.constants)
    if (t.is_float()) s.constant_params += t.numel();
  for (const auto& n : g.nodes) ++s.ops_imported[n.op];
  s.ops_original = g.original_op_counts;
  return s;
}

nlohmann::json to_json(const ModelSummary& s) {
  nlohmann::json j;
  j["file"] = s.file;
  j["ir_version"] = s.ir_version;
  j["opset"] = s.opset;
  j["producer"] = {{"name", s.producer_name}, {"version", s.producer_version}};
  j["batch"] = s.batch;
  j["dynamic_batch"] = s.dynamic_batch;
  j["inputs"] = nlohmann::json::array();
  for (const auto& v : s.inputs) j["inputs"].push_back(value_json(v));
  j["outputs"] = nlohmann::json::array();
  for (const auto& v : s.outputs) j["outputs"].push_back(value_json(v));
  j["layers"] = nlohmann::json::array();
  for (const auto& L : s.layers)
    j["layers"].push_back({{"index", L.index},
                           {"name", L.name},
                           {"op", L.op},
                           {"kind", L.kind},
                           {"input_shape", L.input_shape},
                           {"output_shape", L.output_shape},
                           {"c_in", L.c_in},
                           {"c_out", L.c_out},
                           {"kernel", {L.kernel_h, L.kernel_w}},
                           {"stride", {L.stride_h, L.stride_w}},
                           {"groups", L.groups},
                           {"depthwise", L.depthwise},
                           {"params", L.params},
                           {"macs", L.macs}});
  j["totals"] = {{"layers", s.layers.size()},
                 {"params", s.total_params},
                 {"macs", s.total_macs},
                 {"constant_params", s.constant_params}};
  j["ops"] = {{"imported", s.ops_imported}, {"original", s.ops_original}};
  return j;
}

std::string format_text(const ModelSummary& s) {
  std::string out;
  auto line = [&](const std::string& l) { out += l + "\n"; };
  line(fmt::format("model      {}", s.file));
  line(fmt::format("producer   {} {}", s.producer_name.empty() ? "(none)" : s.producer_name, s.producer_version));
  line(fmt::format("ir_version {}   opset {}   batch {}{}", s.ir_version, s.opset, s.batch,
                   s.dynamic_batch ? " (dynamic in the model)" : " (fixed by the model)"));
  for (const auto& v : s.inputs)
    line(fmt::format("input      {} {} {}", v.name, to_string(v.dtype), shape_text(v.shape)));
  for (const auto& v : s.outputs)
    line(fmt::format("output     {} {} {}", v.name, to_string(v.dtype), shape_text(v.shape)));
  line("");

  size_t name_w = 4;
  for (const auto& L : s.layers) name_w = std::max(name_w, L.name.size());
  name_w = std::min<size_t>(name_w, 40);
  line(fmt::format("{:>3}  {:<{}}  {:<7} {:>16} {:>16} {:>6} {:>6} {:>6} {:>10} {:>12}", "#", "name", name_w, "op",
                   "input", "output", "kernel", "stride", "groups", "params", "MACs"));
  for (const auto& L : s.layers) {
    std::string name = L.name.size() > name_w ? "..." + L.name.substr(L.name.size() - name_w + 3) : L.name;
    line(fmt::format("{:>3}  {:<{}}  {:<7} {:>16} {:>16} {:>6} {:>6} {:>6} {:>10} {:>12}", L.index, name, name_w,
                     L.op + (L.depthwise ? "/dw" : ""), shape_text(L.input_shape), shape_text(L.output_shape),
                     fmt::format("{}x{}", L.kernel_h, L.kernel_w), fmt::format("{}x{}", L.stride_h, L.stride_w),
                     L.groups, L.params, L.macs));
  }
  line("");
  line(fmt::format("totals     {} quantizable layers, {} params ({}), {} MACs ({}) per sample", s.layers.size(),
                   s.total_params, human(s.total_params), s.total_macs, human(s.total_macs)));
  auto ops_line = [&](const char* label, const std::map<std::string, int64_t>& ops) {
    std::vector<std::string> parts;
    int64_t total = 0;
    for (const auto& [op, n] : ops) {
      parts.push_back(fmt::format("{} {}", op, n));
      total += n;
    }
    line(fmt::format("{} {} nodes: {}", label, total, fmt::join(parts, ", ")));
  };
  ops_line("ops (imported)", s.ops_imported);
  ops_line("ops (in file) ", s.ops_original);
  return out;
}

}  // namespace haq::model
