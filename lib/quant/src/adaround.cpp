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

// One group's matrices as floats, divided by the Gram matrix's mean diagonal
// element; empty if the group saw no input.
struct GroupInputs {
  std::vector<float> G, M, N;  // gram, cross (or empty), noise (or empty)
  bool empty() const { return G.empty(); }
};

GroupInputs normalized_inputs(const RoundingInputs& in, int64_t group, int64_t K) {
  const double* g = in.gram.data() + group * K * K;
  double trace = 0;
  for (int64_t i = 0; i < K; ++i) trace += g[i * K + i];
  GroupInputs out;
  if (!(trace > 0) || !std::isfinite(trace)) return out;
  const double inv = static_cast<double>(K) / trace;
  auto take = [&](const std::vector<double>& m, std::vector<float>& dst) {
    if (m.empty()) return;
    dst.resize(static_cast<size_t>(K * K));
    const double* src = m.data() + group * K * K;
    for (int64_t i = 0; i < K * K; ++i) dst[i] = static_cast<float>(src[i] * inv);
  };
  take(in.gram, out.G);
  take(in.cross, out.M);
  take(in.noise, out.N);
  return out;
}

// y = A x (A K x K, row-major).
void times(const float* A, const float* x, float* y, int64_t K) {
  for (int64_t i = 0; i < K; ++i) {
    const float* row = A + i * K;
    float acc = 0.f;
#pragma omp simd reduction(+ : acc)
    for (int64_t j = 0; j < K; ++j) acc += row[j] * x[j];
    y[i] = acc;
  }
}

double dot(const float* a, const float* b, int64_t K) {
  double acc = 0;
  for (int64_t i = 0; i < K; ++i) acc += static_cast<double>(a[i]) * b[i];
  return acc;
}

// One channel's problem: the error of levels l is
// e^T G e + 2 e^T b + c0, e = u - l, b = M u, c0 = u^T N u.
struct Channel {
  const float* G;
  int64_t K;
  std::vector<float> u, b;
  double c0 = 0;
  Channel(const float* w, float scale, const GroupInputs& in, int64_t K_) : G(in.G.data()), K(K_), u(K_), b(K_, 0.f) {
    const float inv = 1.f / scale;
    for (int64_t i = 0; i < K; ++i) u[i] = w[i] * inv;
    std::vector<float> t(K);
    if (!in.M.empty()) times(in.M.data(), u.data(), b.data(), K);
    if (!in.N.empty()) {
      times(in.N.data(), u.data(), t.data(), K);
      c0 = dot(u.data(), t.data(), K);
    }
  }
  // The error of `levels`; `e` and `scratch` are K floats of workspace.
  double error(const int8_t* levels, float* e, float* scratch) const {
    for (int64_t i = 0; i < K; ++i) e[i] = u[i] - static_cast<float>(levels[i]);
    times(G, e, scratch, K);
    return dot(e, scratch, K) + 2.0 * dot(e, b.data(), K) + c0;
  }
};

struct ChannelResult {
  int64_t weights = 0, flipped = 0;
  bool kept_nearest = false;
  double error_nearest = 0, error_adaround = 0;
};

// Y[c] = G E[c] for the rows c < n of E, which holds 8 rows (those from n on
// zero) (G symmetric K x K, row-major: row i of G is its column i). Tiles of
// 8 outputs for all 8 rows stay in registers while i runs over the
// reduction; every product is summed in the same order whatever n or the
// thread count. One clone for AVX2 CPUs (both of haq's machine types; no
// FMA, so the sums are the same as the other clone's), one for any x86-64.
__attribute__((target_clones("avx2", "default")))
void times_block(const float* G, const float* E, float* Y, int n, int64_t K) {
  constexpr int kTile = 8;
  int64_t j0 = 0;
  for (; j0 + kTile <= K; j0 += kTile) {
    float acc[8][kTile] = {};
    for (int64_t i = 0; i < K; ++i) {
      const float* g = G + i * K + j0;
      for (int c = 0; c < 8; ++c) {
        const float e = E[c * K + i];
#pragma omp simd
        for (int j = 0; j < kTile; ++j) acc[c][j] += e * g[j];
      }
    }
    for (int c = 0; c < n; ++c)
      for (int j = 0; j < kTile; ++j) Y[c * K + j0 + j] = acc[c][j];
  }
  for (; j0 < K; ++j0)  // the last K % 8 outputs
    for (int c = 0; c < n; ++c) {
      float acc = 0.f;
      for (int64_t i = 0; i < K; ++i) acc += E[c * K + i] * G[i * K + j0];
      Y[c * K + j0] = acc;
    }
}

constexpr int kBlock = 8;  // channels optimised together (one pass over G per step)

// Optimises the levels of channels chs[0..n) (of one group) in place.
void round_block(const Channel* const* chs, int n, int32_t L, int8_t* const* levels, const AdaRoundOptions& o,
                 ChannelResult* res) {
  const int64_t K = chs[0]->K;
  const float* G = chs[0]->G;
  std::vector<float> E(kBlock * K, 0.f), Y(kBlock * K), V(n * K, 0.f), m(n * K, 0.f), v2(n * K, 0.f), base(n * K), h(n * K),
      dh(n * K);
  std::vector<char> is_free(n * K, 0);
  for (int c = 0; c < n; ++c) {
    const Channel& ch = *chs[c];
    ChannelResult& r = res[c];
    r.error_nearest = ch.error(levels[c], E.data() + c * K, Y.data() + c * K);
    // The choice: floor(u) or floor(u) + 1, both within [-L, L]; a weight whose
    // two candidates clamp to the same level has none.
    for (int64_t i = 0; i < K; ++i) {
      const int64_t x = c * K + i;
      const float u = ch.u[i];
      const float f = std::floor(u);
      base[x] = f;
      if (f >= static_cast<float>(-L) && f <= static_cast<float>(L - 1)) {
        is_free[x] = 1;
        ++r.weights;
        // Start at h = the fractional part: the soft weight equals the real one.
        const float rest = std::clamp(u - f, 1e-4f, 1.f - 1e-4f);
        V[x] = -std::log((kZeta - kGamma) / (rest - kGamma) - 1.f);
      } else {
        base[x] = static_cast<float>(levels[c][i]);  // clipped: the nearest level is the only one
      }
    }
  }
  const int T = std::max(1, o.iterations);
  const int warm = static_cast<int>(o.warmup * T);
  const float lr = static_cast<float>(o.learning_rate), b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
  const float lambda = static_cast<float>(o.lambda);
  float b1t = 1.f, b2t = 1.f;
  for (int t = 0; t < T; ++t) {
    for (int c = 0; c < n; ++c)
      for (int64_t i = 0; i < K; ++i) {
        const int64_t x = c * K + i;
        if (!is_free[x]) {
          h[x] = 0.f;
          dh[x] = 0.f;
          E[x] = chs[c]->u[i] - base[x];
          continue;
        }
        const float sg = 1.f / (1.f + std::exp(-V[x]));
        const float raw = sg * (kZeta - kGamma) + kGamma;
        h[x] = std::clamp(raw, 0.f, 1.f);
        dh[x] = (raw > 0.f && raw < 1.f) ? (kZeta - kGamma) * sg * (1.f - sg) : 0.f;
        E[x] = chs[c]->u[i] - (base[x] + h[x]);
      }
    times_block(G, E.data(), Y.data(), n, K);  // d(error)/dh = -2 (G e + b)
    float beta = 0.f;
    const bool reg = t >= warm;
    if (reg) {
      const float progress = T - warm > 1 ? static_cast<float>(t - warm) / static_cast<float>(T - warm - 1) : 1.f;
      beta = static_cast<float>(o.beta_start + (o.beta_end - o.beta_start) * progress);
    }
    b1t *= b1;
    b2t *= b2;
    for (int c = 0; c < n; ++c)
      for (int64_t i = 0; i < K; ++i) {
        const int64_t x = c * K + i;
        if (!is_free[x]) continue;
        float g = -2.f * (Y[x] + chs[c]->b[i]);
        if (reg) {
          const float d = 2.f * h[x] - 1.f;
          const float ad = std::fabs(d);
          // d/dh of 1 - |2h - 1|^beta
          if (ad > 0.f) g += lambda * (-beta * std::pow(ad, beta - 1.f) * (d > 0.f ? 2.f : -2.f));
        }
        g *= dh[x];
        m[x] = b1 * m[x] + (1.f - b1) * g;
        v2[x] = b2 * v2[x] + (1.f - b2) * g * g;
        const float mh = m[x] / (1.f - b1t), vh = v2[x] / (1.f - b2t);
        V[x] -= lr * mh / (std::sqrt(vh) + eps);
      }
  }
  std::vector<int8_t> chosen(K);
  for (int c = 0; c < n; ++c) {
    ChannelResult& r = res[c];
    if (r.weights == 0) {
      r.error_adaround = r.error_nearest;
      continue;
    }
    for (int64_t i = 0; i < K; ++i) {
      const int64_t x = c * K + i;
      // h >= 1/2 <=> V >= 0
      chosen[i] = is_free[x] ? static_cast<int8_t>(base[x] + (V[x] >= 0.f ? 1.f : 0.f)) : levels[c][i];
    }
    r.error_adaround = chs[c]->error(chosen.data(), E.data(), Y.data());
    if (r.error_adaround > r.error_nearest) {
      r.kept_nearest = true;
      r.error_adaround = r.error_nearest;
      continue;
    }
    for (int64_t i = 0; i < K; ++i) {
      if (chosen[i] != levels[c][i]) ++r.flipped;
      levels[c][i] = chosen[i];
    }
  }
}

void check_shapes(const RoundingInputs& in, int64_t groups, const QuantizedWeights& q) {
  HAQ_ASSERT(groups >= 1 && q.channels % groups == 0);
  const auto n = static_cast<size_t>(groups * q.per_channel * q.per_channel);
  HAQ_ASSERT(in.gram.size() == n);
  HAQ_ASSERT(in.cross.empty() || in.cross.size() == n);
  HAQ_ASSERT(in.noise.empty() || in.noise.size() == n);
}

}  // namespace

AdaRoundStats adaround(const float* w, const RoundingInputs& inputs, int64_t groups, QuantizedWeights& q,
                       const AdaRoundOptions& options) {
  check_shapes(inputs, groups, q);
  HAQ_ASSERT(q.bits >= 2);
  const int64_t K = q.per_channel, per_group = q.channels / groups;
  const int32_t L = signed_max_level(q.bits);
  std::vector<GroupInputs> G(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) G[g] = normalized_inputs(inputs, g, K);
  std::vector<ChannelResult> res(static_cast<size_t>(q.channels));
  // Blocks of up to kBlock channels of one group, each optimised on its own:
  // the result does not depend on the thread count.
  const int64_t blocks_per_group = (per_group + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic)
  for (int64_t blk = 0; blk < groups * blocks_per_group; ++blk) {
    const int64_t g = blk / blocks_per_group;
    const GroupInputs& in = G[g];
    if (in.empty()) continue;
    const int64_t c0 = g * per_group + (blk % blocks_per_group) * kBlock;
    const int n = static_cast<int>(std::min<int64_t>(kBlock, (g + 1) * per_group - c0));
    std::vector<Channel> chs;
    chs.reserve(n);
    const Channel* ptr[kBlock] = {};
    int8_t* lv[kBlock] = {};
    for (int c = 0; c < n; ++c) {
      chs.emplace_back(w + (c0 + c) * K, q.scales[c0 + c], in, K);
      lv[c] = q.values.data() + (c0 + c) * K;
    }
    for (int c = 0; c < n; ++c) ptr[c] = &chs[c];
    round_block(ptr, n, L, lv, options, res.data() + c0);
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

double rounding_error(const float* w, const RoundingInputs& inputs, int64_t groups, const QuantizedWeights& q) {
  check_shapes(inputs, groups, q);
  const int64_t K = q.per_channel, per_group = q.channels / groups;
  std::vector<float> e(K), scratch(K);
  double total = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const GroupInputs in = normalized_inputs(inputs, g, K);
    if (in.empty()) continue;
    for (int64_t c = g * per_group; c < (g + 1) * per_group; ++c)
      total += Channel(w + c * K, q.scales[c], in, K).error(q.values.data() + c * K, e.data(), scratch.data());
  }
  return total;
}

}  // namespace haq::quant
