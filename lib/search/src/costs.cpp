#include "haq/search/costs.h"

#include "haq/core/error.h"

namespace haq::search {

const char* to_string(Metric m) {
  switch (m) {
    case Metric::latency: return "latency";
    case Metric::energy: return "energy";
    case Metric::size: return "size";
    case Metric::bops: return "bops";
  }
  return "?";
}

double Costs::get(Metric m) const {
  switch (m) {
    case Metric::latency: return latency_s;
    case Metric::energy: return energy_pj;
    case Metric::size: return size_bits;
    case Metric::bops: return bops;
  }
  return 0;
}

Costs& Costs::operator+=(const Costs& o) {
  latency_s += o.latency_s;
  energy_pj += o.energy_pj;
  size_bits += o.size_bits;
  bops += o.bops;
  return *this;
}

Costs CostModel::total(const BitsVector& bits) const {
  HAQ_ASSERT(bits.size() == table.size());
  Costs c = fixed;
  for (size_t l = 0; l < bits.size(); ++l) c += layer(l, bits[l].w, bits[l].a);
  return c;
}

Costs CostModel::uniform(int w_bits, int a_bits) const {
  return total(BitsVector(table.size(), Bits{w_bits, a_bits}));
}

std::vector<LayerInfo> layer_infos(const model::Graph& g) {
  std::vector<LayerInfo> out;
  for (const auto& l : g.layers) {
    LayerInfo info;
    info.name = l.name;
    info.depthwise = l.depthwise;
    info.c_in = static_cast<double>(l.c_in);
    info.c_out = static_cast<double>(l.c_out);
    info.stride = static_cast<double>(l.stride_h);
    info.kernel = static_cast<double>(l.kernel_h);
    info.params = static_cast<double>(l.weight_params);
    info.in_hw = static_cast<double>(l.in_h * l.in_w);
    out.push_back(info);
  }
  return out;
}

quant::Policy to_policy(const std::vector<LayerInfo>& layers, const BitsVector& bits) {
  HAQ_ASSERT(layers.size() == bits.size());
  quant::Policy p;
  for (size_t i = 0; i < bits.size(); ++i)
    p.layers.push_back({layers[i].name, bits[i].w, bits[i].a, false});
  return p;
}

BitsVector to_bits(const quant::Policy& p) {
  BitsVector out;
  for (const auto& l : p.layers) out.push_back(l.fp32 ? Bits{8, 8} : Bits{l.w_bits, l.a_bits});
  return out;
}

}  // namespace haq::search
