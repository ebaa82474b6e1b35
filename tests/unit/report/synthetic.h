#pragma once
// A synthetic but realistic ReportInput: a MobileNet-like layer list on a
// BISMO-like cost model, a few hundred "evaluated" policies with an accuracy
// model that collapses at low bitwidths, uniform baselines and a chosen
// point. Used by the report tests and by report_sample (screenshots).

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "haq/core/rng.h"
#include "haq/report/report.h"

namespace haq::test {

struct SyntheticLayer {
  std::string name, op;
  int64_t macs, params, act_elems;
  double sensitivity;  // accuracy loss scale
};

inline std::vector<SyntheticLayer> synthetic_layers() {
  std::vector<SyntheticLayer> l;
  l.push_back({"/features/features.0/features.0.0/Conv", "Conv", 28 * 28 * 16 * 9, 16 * 9 + 16,
               28 * 28, 3.0});
  int c = 16, hw = 28;
  for (int b = 1; b <= 6; ++b) {
    int stride = (b == 2 || b == 4) ? 2 : 1;
    int out_hw = hw / stride, c_out = std::min(c * (stride == 2 ? 2 : 1), 128);
    l.push_back({fmt::format("/features/features.{}/conv/conv.0/Conv", b), "Conv(dw)",
                 int64_t(out_hw) * out_hw * c * 9, c * 9 + c, int64_t(hw) * hw * c, 1.2 + 0.1 * b});
    l.push_back({fmt::format("/features/features.{}/conv/conv.3/Conv", b), "Conv",
                 int64_t(out_hw) * out_hw * c * c_out, c * c_out + c_out,
                 int64_t(out_hw) * out_hw * c, 0.6 + 0.05 * b});
    c = c_out;
    hw = out_hw;
  }
  l.push_back({"/classifier/classifier.1/Gemm", "Gemm", 128 * 10, 128 * 10 + 10, 128, 2.0});
  return l;
}

/// BISMO-like layer cost for w/a bits: latency (s), energy (pJ), size (bits), bound.
inline void synthetic_cost(const SyntheticLayer& l, int w, int a, double& lat_s, double& e_pj,
                           double& size_bits, std::string& bound) {
  double compute = double(l.macs) * w * a / 4096.0;
  double memory = (double(l.params) * w + double(l.act_elems) * a) / 64.0;
  lat_s = (std::max(compute, memory) + 50) / 200e6;
  e_pj = double(l.macs) * w * a * 0.015 + (double(l.params) * w + double(l.act_elems) * a) * 1.2;
  size_bits = double(l.params) * w;
  bound = compute >= memory ? "compute" : "memory";
}

inline report::DesignPoint synthetic_point(const std::vector<SyntheticLayer>& layers,
                                           const std::vector<int>& w, const std::vector<int>& a,
                                           double fp32_acc, double noise) {
  report::DesignPoint p;
  p.latency_s = p.energy_pj = p.size_bits = p.bops = 0;
  double loss = 0;
  for (size_t i = 0; i < layers.size(); ++i) {
    double lat, e, s;
    std::string bound;
    synthetic_cost(layers[i], w[i], a[i], lat, e, s, bound);
    p.latency_s += lat;
    p.energy_pj += e;
    p.size_bits += s;
    p.bops += double(layers[i].macs) * w[i] * a[i];
    loss +=
        layers[i].sensitivity * (std::pow(3.2, 8 - w[i]) + 0.6 * std::pow(3.2, 8 - a[i])) * 0.0025;
    p.policy.layers.push_back({layers[i].name, w[i], a[i], false});
  }
  p.acc_search = std::max(10.0, fp32_acc - loss + noise);
  return p;
}

/// `n_points` evaluated policies (search), seeded.
inline report::ReportInput synthetic_input(int n_points = 300, uint64_t seed = 7) {
  const auto layers = synthetic_layers();
  const size_t L = layers.size();
  const double fp32 = 91.32;
  report::ReportInput in;
  in.model = "models/fmnist-mobilenet.onnx";
  in.profile = "hardware-profiles/bismo-edge.json";
  in.profile_name = "bismo-edge";
  in.data = "fashion-mnist";
  in.algo = "ddpg";
  in.seed = seed;
  in.version = "0.1.0";
  in.fp32_acc = fp32;
  in.facts = {{"episodes", std::to_string(n_points)}, {"eval samples", "2000"}};

  std::vector<int> all8(L, 8);
  report::DesignPoint w8 = synthetic_point(layers, all8, all8, fp32, 0);
  in.w8a8_latency_s = w8.latency_s;
  in.w8a8_energy_pj = w8.energy_pj;
  in.w8a8_size_bits = w8.size_bits;
  in.w8a8_bops = w8.bops;
  in.budgets = {{"latency<=0.5x", "latency", 0.5 * w8.latency_s}};

  report::DesignPoint f;
  f.label = "fp32";
  f.kind = "fp32";
  f.acc_search = f.acc_test = fp32;
  in.baselines.push_back(f);
  for (int k = 2; k <= 8; ++k) {
    std::vector<int> b(L, k);
    b.front() = b.back() = 8;
    report::DesignPoint u = synthetic_point(layers, b, b, fp32, 0);
    u.label = fmt::format("uniform-{}", k);
    u.kind = "uniform";
    u.acc_test = std::max(10.0, u.acc_search - 0.2);
    u.feasible = u.latency_s <= in.budgets[0].limit;
    in.baselines.push_back(u);
  }
  w8.label = "w8a8";
  w8.kind = "w8a8";
  w8.acc_test = fp32 - 0.1;
  in.baselines.push_back(w8);

  std::mt19937_64 rng = haq::make_rng(seed, "synthetic-report");
  std::uniform_int_distribution<int> bits(2, 8);
  std::normal_distribution<double> noise(0, 0.15);
  size_t best = 0;
  double best_acc = -1;
  for (int e = 0; e < n_points; ++e) {
    // Later episodes concentrate on 4..7 bits, like a converging agent.
    std::uniform_int_distribution<int> good(4, 7);
    std::vector<int> w(L), a(L);
    for (size_t i = 0; i < L; ++i) {
      bool late = e > 40 && (rng() % 100) < 70;
      w[i] = late ? good(rng) : bits(rng);
      a[i] = late ? good(rng) : bits(rng);
    }
    report::DesignPoint p = synthetic_point(layers, w, a, fp32, noise(rng));
    p.label = fmt::format("ddpg#{}", e);
    p.kind = "search";
    p.episode = e;
    p.feasible = p.latency_s <= in.budgets[0].limit;
    if (p.feasible && p.acc_search > best_acc) {
      best_acc = p.acc_search;
      best = in.points.size();
    }
    in.points.push_back(p);
  }
  in.chosen = in.points[best];
  in.chosen.label = "chosen";
  in.chosen.kind = "chosen";
  in.chosen.acc_test = in.chosen.acc_search - 0.25;
  for (size_t i = 0; i < L; ++i) {
    for (int which = 0; which < 2; ++which) {
      const auto& lb = in.chosen.policy.layers[i];
      int w = which == 0 ? lb.w_bits : 8, a = which == 0 ? lb.a_bits : 8;
      report::LayerRow r;
      r.name = layers[i].name;
      r.op = layers[i].op;
      r.w_bits = w;
      r.a_bits = a;
      r.macs = layers[i].macs;
      r.params = layers[i].params;
      synthetic_cost(layers[i], w, a, r.latency_s, r.energy_pj, r.size_bits, r.bound);
      (which == 0 ? in.layers : in.layers_w8a8).push_back(r);
    }
  }
  return in;
}

}  // namespace haq::test
