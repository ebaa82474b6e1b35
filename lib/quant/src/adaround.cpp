// Adaptive rounding (haq/quant/adaround.h): per output channel, Adam on the
// rectified-sigmoid relaxation of the up/down choice of every weight.
#include "haq/quant/adaround.h"

#include <algorithm>
#include <cmath>

#include "haq/core/error.h"

namespace haq::quant {

const char* to_string(WeightRounding r) { return r == WeightRounding::adaround ? "adaround" : "nearest"; }

WeightRounding parse_weight_rounding(const std::string& s) {
  if (s == "nearest") return WeightRounding::nearest;
  if (s == "adaround") return WeightRounding::adaround;
  fail(ErrorKind::usage, "", "--weight-rounding", "expected nearest or adaround; got '{}'", s);
}

namespace {

constexpr float kZeta = 1.1f, kGamma = -0.1f;

// One group's Gram matrix as floats, divided by its mean diagonal element;
// empty if the group saw no input.
std::vector<float> normalized_gram(const std::vector<double>& gram, int64_t group, int64_t K) {
  const double* g = gram.data() + group * K * K;
  double trace = 0;
  for (int64_t i = 0; i < K; ++i) trace += g[i * K + i];
  if (!(trace > 0) || !std::isfinite(trace)) return {};
  const double inv = static_cast<double>(K) / trace;
  std::vector<float> out(static_cast<size_t>(K * K));
  for (int64_t i = 0; i < K * K; ++i) out[i] = static_cast<float>(g[i] * inv);
  return out;
}

// y = G e (G symmetric K x K, row-major).
void gram_times(const float* G, const float* e, float* y, int64_t K) {
  for (int64_t i = 0; i < K; ++i) {
    const float* row = G + i * K;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < K; ++j) acc += row[j] * e[j];
    y[i] = acc;
  }
}

// e^T G e.
double quadratic(const float* G, const float* e, float* scratch, int64_t K) {
  gram_times(G, e, scratch, K);
  double acc = 0;
  for (int64_t i = 0; i < K; ++i) acc += static_cast<double>(e[i]) * scratch[i];
  return acc;
}

// The error of one channel's levels, in levels: u - level.
void level_error(const float* w, float scale, const int8_t* levels, float* e, int64_t K) {
  const float inv = 1.f / scale;
  for (int64_t i = 0; i < K; ++i) e[i] = w[i] * inv - static_cast<float>(levels[i]);
}

struct ChannelResult {
  int64_t weights = 0, flipped = 0;
  bool kept_nearest = false;
  double error_nearest = 0, error_adaround = 0;
};

// Optimises the levels of one channel in place.
ChannelResult round_channel(const float* w, float scale, int32_t L, const float* G, int64_t K,
                            int8_t* levels, const AdaRoundOptions& o) {
  ChannelResult r;
  std::vector<float> e(K), grad(K), V(K), m(K, 0.f), v2(K, 0.f), base(K);
  std::vector<char> is_free(K, 0);
  const float inv = 1.f / scale;
  level_error(w, scale, levels, e.data(), K);
  r.error_nearest = quadratic(G, e.data(), grad.data(), K);
  // The choice: floor(u) or floor(u) + 1, both within [-L, L]; a weight whose
  // two candidates clamp to the same level has none.
  for (int64_t i = 0; i < K; ++i) {
    const float u = w[i] * inv;
    const float f = std::floor(u);
    base[i] = f;
    if (f >= static_cast<float>(-L) && f <= static_cast<float>(L - 1)) {
      is_free[i] = 1;
      ++r.weights;
      // Start at h = the fractional part: the soft weight equals the real one.
      const float rest = std::clamp(u - f, 1e-4f, 1.f - 1e-4f);
      V[i] = -std::log((kZeta - kGamma) / (rest - kGamma) - 1.f);
    } else {
      base[i] = static_cast<float>(levels[i]);  // clipped: the nearest level is the only one
    }
  }
  if (r.weights == 0) {
    r.error_adaround = r.error_nearest;
    return r;
  }
  const int T = std::max(1, o.iterations);
  const int warm = static_cast<int>(o.warmup * T);
  const float lr = static_cast<float>(o.learning_rate), b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const float lambda = static_cast<float>(o.lambda);
  float b1t = 1.f, b2t = 1.f;
  std::vector<float> h(K), dh(K);
  for (int t = 0; t < T; ++t) {
    for (int64_t i = 0; i < K; ++i) {
      if (!is_free[i]) {
        h[i] = 0.f;
        dh[i] = 0.f;
        e[i] = w[i] * inv - base[i];
        continue;
      }
      const float sg = 1.f / (1.f + std::exp(-V[i]));
      const float raw = sg * (kZeta - kGamma) + kGamma;
      h[i] = std::clamp(raw, 0.f, 1.f);
      dh[i] = (raw > 0.f && raw < 1.f) ? (kZeta - kGamma) * sg * (1.f - sg) : 0.f;
      e[i] = w[i] * inv - (base[i] + h[i]);
    }
    gram_times(G, e.data(), grad.data(), K);  // d(e^T G e)/dh = -2 G e
    float beta = 0.f;
    const bool reg = t >= warm;
    if (reg) {
      const float progress = T - warm > 1 ? static_cast<float>(t - warm) / static_cast<float>(T - warm - 1) : 1.f;
      beta = static_cast<float>(o.beta_start + (o.beta_end - o.beta_start) * progress);
    }
    b1t *= b1;
    b2t *= b2;
    for (int64_t i = 0; i < K; ++i) {
      if (!is_free[i]) continue;
      float g = -2.f * grad[i];
      if (reg) {
        const float d = 2.f * h[i] - 1.f;
        const float ad = std::fabs(d);
        // d/dh of 1 - |2h - 1|^beta
        if (ad > 0.f) g += lambda * (-beta * std::pow(ad, beta - 1.f) * (d > 0.f ? 2.f : -2.f));
      }
      g *= dh[i];
      m[i] = b1 * m[i] + (1.f - b1) * g;
      v2[i] = b2 * v2[i] + (1.f - b2) * g * g;
      const float mh = m[i] / (1.f - b1t), vh = v2[i] / (1.f - b2t);
      V[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
  std::vector<int8_t> chosen(levels, levels + K);
  for (int64_t i = 0; i < K; ++i) {
    if (!is_free[i]) continue;
    chosen[i] = static_cast<int8_t>(base[i] + (V[i] >= 0.f ? 1.f : 0.f));  // h >= 1/2 <=> V >= 0
  }
  level_error(w, scale, chosen.data(), e.data(), K);
  r.error_adaround = quadratic(G, e.data(), grad.data(), K);
  if (r.error_adaround > r.error_nearest) {
    r.kept_nearest = true;
    r.error_adaround = r.error_nearest;
    return r;
  }
  for (int64_t i = 0; i < K; ++i) {
    if (chosen[i] != levels[i]) ++r.flipped;
    levels[i] = chosen[i];
  }
  return r;
}

void check_shapes(const std::vector<double>& gram, int64_t groups, const QuantizedWeights& q) {
  HAQ_ASSERT(groups >= 1 && q.channels % groups == 0);
  HAQ_ASSERT(static_cast<int64_t>(gram.size()) == groups * q.per_channel * q.per_channel);
}

}  // namespace

AdaRoundStats adaround(const float* w, const std::vector<double>& gram, int64_t groups,
                       QuantizedWeights& q, const AdaRoundOptions& options) {
  check_shapes(gram, groups, q);
  HAQ_ASSERT(q.bits >= 2);
  const int64_t K = q.per_channel, per_group = q.channels / groups;
  const int32_t L = signed_max_level(q.bits);
  std::vector<std::vector<float>> G(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) G[g] = normalized_gram(gram, g, K);
  std::vector<ChannelResult> res(static_cast<size_t>(q.channels));
#pragma omp parallel for schedule(dynamic)
  for (int64_t c = 0; c < q.channels; ++c) {
    const auto& Gg = G[c / per_group];
    if (Gg.empty()) continue;
    res[c] = round_channel(w + c * K, q.scales[c], L, Gg.data(), K, q.values.data() + c * K, options);
  }
  AdaRoundStats s;
  for (const auto& r : res) {  // summed in channel order: the same at any thread count
    s.weights += r.weights;
    s.flipped += r.flipped;
    s.kept_nearest += r.kept_nearest ? 1 : 0;
    s.error_nearest += r.error_nearest;
    s.error_adaround += r.error_adaround;
  }
  return s;
}

double rounding_error(const float* w, const std::vector<double>& gram, int64_t groups,
                      const QuantizedWeights& q) {
  check_shapes(gram, groups, q);
  const int64_t K = q.per_channel, per_group = q.channels / groups;
  std::vector<float> e(K), scratch(K);
  double total = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const std::vector<float> Gg = normalized_gram(gram, g, K);
    if (Gg.empty()) continue;
    for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c) {
      level_error(w + c * K, q.scales[c], q.values.data() + c * K, e.data(), K);
      total += quadratic(Gg.data(), e.data(), scratch.data(), K);
    }
  }
  return total;
}

}  // namespace haq::quant
