#include "haq/model/equalize.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

namespace haq::model {

namespace {

struct Pair {
  int first = -1, second = -1;  // layer indices
  std::string through;
};

bool has_weights(const Layer& l) { return l.kind != LayerKind::act_matmul && !l.weight.empty(); }

// Visits every element of layer 2's weight that multiplies its input channel
// `c` (canonical layout: conv [c_out, c_in/groups, kh, kw], gemm/matmul [c_out, c_in]).
template <typename F>
void for_input_channel(const Layer& l, std::vector<float>& w, int64_t c, F&& f) {
  if (l.kind == LayerKind::conv) {
    const int64_t cpg = l.c_in / l.groups, opg = l.c_out / l.groups, kk = l.kernel_h * l.kernel_w;
    const int64_t group = c / cpg, j = c % cpg;
    for (int64_t o = group * opg; o < (group + 1) * opg; ++o)
      for (int64_t k = 0; k < kk; ++k) f(w[static_cast<size_t>((o * cpg + j) * kk + k)]);
  } else {
    for (int64_t o = 0; o < l.c_out; ++o) f(w[static_cast<size_t>(o * l.c_in + c)]);
  }
}

std::vector<Pair> find_pairs(const Graph& g) {
  std::map<std::string, std::vector<int>> consumers;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (const auto& in : g.nodes[i].inputs)
      if (!in.empty()) consumers[in].push_back(static_cast<int>(i));
  std::set<std::string> outputs;
  for (const auto& v : g.outputs) outputs.insert(v.name);
  auto sole_consumer = [&](const std::string& v) -> int {
    if (outputs.count(v)) return -1;
    auto it = consumers.find(v);
    if (it == consumers.end() || it->second.size() != 1) return -1;
    return it->second[0];
  };
  auto unshared = [&](const std::string& c) { return !c.empty() && consumers[c].size() == 1; };
  std::vector<Pair> pairs;
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const Layer& a = g.layers[i];
    if (!has_weights(a)) continue;
    int n = sole_consumer(a.output);
    if (n < 0) continue;
    std::string through, feed = a.output;
    if (g.nodes[n].layer < 0) {
      if (g.nodes[n].op != "Relu") continue;
      through = "Relu";
      feed = g.nodes[n].outputs[0];
      n = sole_consumer(feed);
      if (n < 0) continue;
    }
    const int second = g.nodes[n].layer;
    if (second < 0) continue;
    const Layer& b = g.layers[second];
    if (!has_weights(b) || b.input != feed) continue;
    const bool both_conv = a.kind == LayerKind::conv && b.kind == LayerKind::conv;
    const bool both_fc = a.kind != LayerKind::conv && b.kind != LayerKind::conv;
    if ((!both_conv && !both_fc) || b.c_in != a.c_out) continue;
    if (!unshared(a.weight) || !unshared(a.bias) || !unshared(b.weight)) continue;
    pairs.push_back({static_cast<int>(i), second, through});
  }
  return pairs;
}

}  // namespace

EqualizeReport equalize_cross_layer(Graph& g, int max_passes, double tolerance) {
  EqualizeReport report;
  const std::vector<Pair> pairs = find_pairs(g);
  for (const Pair& p : pairs) report.pairs.push_back({g.layers[p.first].name, g.layers[p.second].name, p.through});
  if (pairs.empty()) return report;
  for (int pass = 0; pass < max_passes; ++pass) {
    double change = 0;
    for (const Pair& p : pairs) {
      const Layer& a = g.layers[p.first];
      const Layer& b = g.layers[p.second];
      std::vector<float>& w1 = g.constants.at(a.weight).f32;
      std::vector<float>& b1 = g.constants.at(a.bias).f32;
      std::vector<float>& w2 = g.constants.at(b.weight).f32;
      const int64_t per_out = static_cast<int64_t>(w1.size()) / a.c_out;
      for (int64_t c = 0; c < a.c_out; ++c) {
        float r1 = 0, r2 = 0;
        for (int64_t k = 0; k < per_out; ++k) r1 = std::max(r1, std::fabs(w1[static_cast<size_t>(c * per_out + k)]));
        for_input_channel(b, w2, c, [&](float& v) { r2 = std::max(r2, std::fabs(v)); });
        if (!(r1 > 0) || !(r2 > 0) || !std::isfinite(r1) || !std::isfinite(r2)) continue;
        const double s = std::sqrt(double(r1) / double(r2));
        if (!std::isfinite(s) || s <= 0) continue;
        change = std::max(change, std::fabs(std::log(s)));
        const float inv = static_cast<float>(1.0 / s), sf = static_cast<float>(s);
        for (int64_t k = 0; k < per_out; ++k) w1[static_cast<size_t>(c * per_out + k)] *= inv;
        b1[static_cast<size_t>(c)] *= inv;
        for_input_channel(b, w2, c, [&](float& v) { v *= sf; });
      }
    }
    report.passes = pass + 1;
    report.last_change = change;
    if (change < tolerance) break;
  }
  return report;
}

}  // namespace haq::model
