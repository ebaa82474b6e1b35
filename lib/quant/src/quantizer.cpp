#include "haq/quant/quantizer.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "haq/core/error.h"

namespace haq::quant {

const char* to_string(CalibMethod m) {
  switch (m) {
    case CalibMethod::minmax: return "minmax";
    case CalibMethod::percentile: return "percentile";
    case CalibMethod::mse: return "mse";
    case CalibMethod::kl: return "kl";
  }
  return "?";
}

const char* to_string(ActQuantMode m) { return m == ActQuantMode::symmetric ? "symmetric" : "asymmetric"; }

ActQuantMode parse_act_quant(const std::string& s) {
  if (s == "symmetric") return ActQuantMode::symmetric;
  if (s == "asymmetric") return ActQuantMode::asymmetric;
  fail(ErrorKind::usage, "", "--act-quant", "expected symmetric or asymmetric; got '{}'", s);
}

const char* to_string(WeightClip c) { return c == WeightClip::max ? "max" : "mse"; }

CalibMethod parse_calib_method(const std::string& s) {
  if (s == "minmax") return CalibMethod::minmax;
  if (s == "percentile") return CalibMethod::percentile;
  if (s == "mse") return CalibMethod::mse;
  if (s == "kl") return CalibMethod::kl;
  fail(ErrorKind::usage, "", "--calib-method", "expected minmax, percentile, mse or kl; got '{}'", s);
}

WeightClip parse_weight_clip(const std::string& s) {
  if (s == "max") return WeightClip::max;
  if (s == "mse") return WeightClip::mse;
  fail(ErrorKind::usage, "", "--weight-clip", "expected max or mse; got '{}'", s);
}

ActQuant make_act_quant(float threshold, int bits, bool is_unsigned) {
  HAQ_ASSERT(bits >= 1 && bits <= 8);
  ActQuant q;
  q.bits = bits;
  q.is_unsigned = is_unsigned;
  q.hi = is_unsigned ? unsigned_max_level(bits) : signed_max_level(bits);
  q.lo = is_unsigned ? 0 : -q.hi;
  q.scale = (threshold > 0.f && std::isfinite(threshold)) ? threshold / static_cast<float>(q.hi) : 1.f;
  q.inv_scale = 1.f / q.scale;
  return q;
}

ActQuant affine_act_quant(double scale, int32_t z, int bits) {
  HAQ_ASSERT(bits >= 2 && bits <= 8 && scale > 0 && std::isfinite(scale));
  const int32_t top = unsigned_max_level(bits);
  HAQ_ASSERT(z >= 0 && z <= top);
  ActQuant q;
  q.bits = bits;
  q.is_unsigned = false;
  q.scale = static_cast<float>(scale);
  q.inv_scale = 1.f / q.scale;
  q.lo = -z;
  q.hi = top - z;
  return q;
}

ActQuant make_affine_act_quant(double neg_clip, double pos_clip, int bits) {
  HAQ_ASSERT(bits >= 2 && bits <= 8 && neg_clip >= 0 && pos_clip >= 0);
  const int32_t top = unsigned_max_level(bits);
  const double span = neg_clip + pos_clip;
  if (!(span > 0) || !std::isfinite(span)) return affine_act_quant(1.0, 0, bits);
  const double s = span / top;
  const auto z = static_cast<int32_t>(std::clamp(std::nearbyint(neg_clip / s), 0.0, static_cast<double>(top)));
  return affine_act_quant(s, z, bits);
}

namespace {

// Squared error of quantizing the channel with scale s and top level L.
double channel_mse(const float* w, int64_t n, double s, int32_t L) {
  double err = 0;
  const double inv = 1.0 / s;
  for (int64_t i = 0; i < n; ++i) {
    double q = std::nearbyint(w[i] * inv);
    q = std::clamp(q, -static_cast<double>(L), static_cast<double>(L));
    double d = w[i] - q * s;
    err += d * d;
  }
  return err;
}

}  // namespace

QuantizedWeights quantize_weights(const float* w, int64_t channels, int64_t per_channel, int bits,
                                  WeightClip clip) {
  HAQ_ASSERT(bits >= 1 && bits <= 8);
  QuantizedWeights q;
  q.bits = bits;
  q.channels = channels;
  q.per_channel = per_channel;
  q.values.assign(static_cast<size_t>(channels * per_channel), 0);
  q.scales.assign(static_cast<size_t>(channels), 1.f);
  const int32_t L = signed_max_level(bits);
  for (int64_t c = 0; c < channels; ++c) {
    const float* wc = w + c * per_channel;
    int8_t* vc = q.values.data() + c * per_channel;
    double max_abs = 0, sum_abs = 0;
    for (int64_t i = 0; i < per_channel; ++i) {
      max_abs = std::max(max_abs, static_cast<double>(std::fabs(wc[i])));
      sum_abs += std::fabs(wc[i]);
    }
    if (max_abs == 0) continue;  // all-zero channel: levels 0, scale 1
    if (bits == 1) {
      // Binary: the sign, with alpha = mean |w| (the L2-optimal scale for signs).
      q.scales[c] = static_cast<float>(sum_abs / per_channel);
      for (int64_t i = 0; i < per_channel; ++i) vc[i] = wc[i] >= 0.f ? 1 : -1;
      continue;
    }
    double best_s = max_abs / L;
    if (clip == WeightClip::mse) {
      double best_err = channel_mse(wc, per_channel, best_s, L);
      // Ratios 1.00, 0.99, ..., 0.20 of max |w|; ties keep the larger clip.
      for (int k = 1; k <= 80; ++k) {
        double s = max_abs * (1.0 - 0.01 * k) / L;
        double e = channel_mse(wc, per_channel, s, L);
        if (e < best_err) best_err = e, best_s = s;
      }
    }
    const float s = static_cast<float>(best_s);
    q.scales[c] = s;
    const float inv = 1.f / s;
    for (int64_t i = 0; i < per_channel; ++i) {
      float r = std::nearbyint(wc[i] * inv);
      r = std::clamp(r, -static_cast<float>(L), static_cast<float>(L));
      vc[i] = static_cast<int8_t>(r);
    }
  }
  return q;
}

std::vector<float> dequantize(const QuantizedWeights& q) {
  std::vector<float> out(q.values.size());
  for (int64_t c = 0; c < q.channels; ++c)
    for (int64_t i = 0; i < q.per_channel; ++i)
      out[c * q.per_channel + i] = q.values[c * q.per_channel + i] * q.scales[c];
  return out;
}

// ---- Histogram -------------------------------------------------------------

void Histogram::grow_to(double v) {
  if (v < range_) return;
  if (range_ == 0) {
    range_ = v * (1 + 1e-6) + std::numeric_limits<double>::min();
    return;
  }
  const size_t n = counts_.size();
  while (v >= range_) {
    // Double the range: bins 2i and 2i+1 become bin i.
    for (size_t i = 0; i < n / 2; ++i) counts_[i] = counts_[2 * i] + counts_[2 * i + 1];
    std::fill(counts_.begin() + n / 2, counts_.end(), 0.0);
    for (size_t i = 0; i < n / 2; ++i) neg_[i] = neg_[2 * i] + neg_[2 * i + 1];
    std::fill(neg_.begin() + n / 2, neg_.end(), 0.0);
    range_ *= 2;
  }
}

void Histogram::add(const float* x, int64_t n) {
  if (n <= 0) return;
  // Non-finite values (NaN, +-inf) are counted apart and take no part in the
  // range or the bins: a NaN bin index or an infinite range would be
  // undefined behaviour. The engine refuses them before they get here; this
  // keeps the histogram itself safe on any float.
  float chunk_max = 0, chunk_min = std::numeric_limits<float>::max(), chunk_top = 0;
  int64_t finite = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) continue;
    ++finite;
    chunk_max = std::max(chunk_max, std::fabs(x[i]));
    chunk_min = std::min(chunk_min, x[i]);
    chunk_top = std::max(chunk_top, x[i]);
  }
  non_finite_ += static_cast<double>(n - finite);
  if (finite == 0) return;
  min_ = total_ == 0 ? chunk_min : std::min(min_, static_cast<double>(chunk_min));
  max_abs_ = std::max(max_abs_, static_cast<double>(chunk_max));
  max_ = std::max(max_, static_cast<double>(chunk_top));
  total_ += static_cast<double>(finite);
  if (chunk_max > 0) grow_to(chunk_max);
  const int nb = bins();
  const double k = range_ > 0 ? nb / range_ : 0;
  for (int64_t i = 0; i < n; ++i) {
    const double a = std::fabs(static_cast<double>(x[i]));
    if (!(a < std::numeric_limits<double>::infinity())) continue;  // NaN or inf
    if (a == 0) {
      zeros_ += 1;
      continue;
    }
    // a < range_ after grow_to, so a * k < nb; clamp anyway (rounding).
    const double b = a * k;
    const int bin = b < nb - 1 ? static_cast<int>(b) : nb - 1;
    counts_[bin] += 1;
    if (x[i] < 0) neg_[bin] += 1;
  }
}

double Histogram::percentile(double pct) const {
  const double target = pct / 100.0 * total_;
  double cum = zeros_;
  if (cum >= target) return 0;
  const double w = bin_width();
  for (int i = 0; i < bins(); ++i) {
    if (cum + counts_[i] >= target && counts_[i] > 0) {
      double frac = (target - cum) / counts_[i];
      return std::min((i + frac) * w, max_abs_);
    }
    cum += counts_[i];
  }
  return max_abs_;
}

double histogram_quant_mse(const Histogram& h, double threshold, int bits, bool is_unsigned) {
  if (h.count() == 0) return 0;
  const bool binary = !is_unsigned && bits == 1;
  const double L = is_unsigned ? unsigned_max_level(bits) : signed_max_level(bits);
  const double s = threshold / L;
  const double w = h.bin_width();
  double err = binary ? h.zeros() * threshold * threshold : 0.0;
  const auto& c = h.counts();
  for (int i = 0; i < h.bins(); ++i) {
    if (c[i] == 0) continue;
    const double v = (i + 0.5) * w;
    double q = binary ? 1.0 : std::min(std::nearbyint(v / s), L);
    double d = v - q * s;
    err += c[i] * d * d;
  }
  return err / h.count();
}

namespace {

// TensorRT-style entropy calibration: the threshold whose clipped and
// `levels`-quantized histogram is closest (KL divergence) to the original.
double kl_threshold(const Histogram& h, int levels) {
  const auto& counts = h.counts();
  int nb = 0;
  for (int i = 0; i < h.bins(); ++i)
    if (counts[i] > 0) nb = i + 1;
  if (nb <= levels) return h.max_abs();
  std::vector<double> all(counts.begin(), counts.begin() + nb);
  all[0] += h.zeros();
  double best_kl = std::numeric_limits<double>::infinity();
  int best_i = nb;
  std::vector<double> p, q;
  // Candidates from 1/16 of the range up (TensorRT: bins 128..2048), so that
  // few-level quantizers cannot pick a degenerate tiny clip.
  const int first = std::max(levels, nb / 16);
  for (int i = first; i <= nb; ++i) {
    p.assign(all.begin(), all.begin() + i);
    double outliers = 0;
    for (int j = i; j < nb; ++j) outliers += all[j];
    p[i - 1] += outliers;
    // Quantize bins [0, i) without the outliers into `levels` chunks; spread
    // each chunk's mass uniformly over its non-empty bins.
    q.assign(i, 0.0);
    for (int l = 0; l < levels; ++l) {
      int b0 = static_cast<int>(static_cast<int64_t>(l) * i / levels);
      int b1 = static_cast<int>(static_cast<int64_t>(l + 1) * i / levels);
      double mass = 0;
      int nonempty = 0;
      for (int j = b0; j < b1; ++j) {
        mass += all[j];
        if (p[j] > 0) ++nonempty;
      }
      if (nonempty == 0) continue;
      for (int j = b0; j < b1; ++j)
        if (p[j] > 0) q[j] = mass / nonempty;
    }
    double sp = 0, sq = 0;
    for (int j = 0; j < i; ++j) sp += p[j], sq += q[j];
    double kl = 0;
    for (int j = 0; j < i; ++j) {
      if (p[j] <= 0) continue;
      double pj = p[j] / sp;
      double qj = q[j] > 0 ? q[j] / sq : 1e-12;
      kl += pj * std::log(pj / qj);
    }
    if (kl < best_kl) best_kl = kl, best_i = i;
  }
  return std::min(best_i * h.bin_width(), h.max_abs());
}

}  // namespace

float calibrate_range(const Histogram& h, int bits, bool is_unsigned, CalibMethod method) {
  HAQ_ASSERT(bits >= 1 && bits <= 8);
  const double amax = h.max_abs();
  if (amax <= 0) return 0.f;
  switch (method) {
    case CalibMethod::minmax: return static_cast<float>(amax);
    case CalibMethod::percentile: {
      double t = h.percentile(99.99);
      return static_cast<float>(t > 0 ? t : amax);
    }
    case CalibMethod::mse: {
      double best_t = amax, best_e = histogram_quant_mse(h, amax, bits, is_unsigned);
      // Ratios 1.000, 0.995, ..., 0.005 of the max; ties keep the larger clip.
      for (int k = 1; k < 200; ++k) {
        double t = amax * (1.0 - 0.005 * k);
        double e = histogram_quant_mse(h, t, bits, is_unsigned);
        if (e < best_e) best_e = e, best_t = t;
      }
      return static_cast<float>(best_t);
    }
    case CalibMethod::kl: {
      int levels = is_unsigned ? (1 << bits) : std::max(2, 1 << (bits - 1));
      return static_cast<float>(kl_threshold(h, levels));
    }
  }
  return static_cast<float>(amax);
}

double histogram_affine_mse(const Histogram& h, const ActQuant& q) {
  if (h.count() == 0) return 0;
  const double w = h.bin_width(), s = q.scale;
  const auto& all = h.counts();
  const auto& neg = h.neg_counts();
  double err = 0;
  for (int i = 0; i < h.bins(); ++i) {
    const double v = (i + 0.5) * w;
    const double cp = all[i] - neg[i], cn = neg[i];
    if (cp > 0) {
      const double d = v - std::min(std::nearbyint(v / s), static_cast<double>(q.hi)) * s;
      err += cp * d * d;
    }
    if (cn > 0) {
      const double d = -v - std::max(std::nearbyint(-v / s), static_cast<double>(q.lo)) * s;
      err += cn * d * d;
    }
  }
  return err / h.count();
}

namespace {

// One side of signed data (counts by |x|) under scale s: the squared error
// when its largest level is L, for every L in 0..top, with prefix sums.
// Values whose level would exceed L are clipped to L * s.
void side_errors(const std::vector<double>& c, double w, double s, int32_t top, std::vector<double>& out) {
  const int nb = static_cast<int>(c.size());
  out.assign(static_cast<size_t>(top) + 1, 0.0);
  // The bins below each clip point: unclipped rounding error; above it:
  // sum c (v - L s)^2 = S2 - 2 L s S1 + (L s)^2 S0 over the suffix.
  std::vector<double> round_err(static_cast<size_t>(nb) + 1, 0.0), s0(static_cast<size_t>(nb) + 1, 0.0),
      s1(static_cast<size_t>(nb) + 1, 0.0), s2(static_cast<size_t>(nb) + 1, 0.0);
  for (int i = 0; i < nb; ++i) {
    const double v = (i + 0.5) * w;
    const double d = v - std::nearbyint(v / s) * s;
    round_err[i + 1] = round_err[i] + c[i] * d * d;
  }
  for (int i = nb - 1; i >= 0; --i) {
    const double v = (i + 0.5) * w;
    s0[i] = s0[i + 1] + c[i];
    s1[i] = s1[i + 1] + c[i] * v;
    s2[i] = s2[i + 1] + c[i] * v * v;
  }
  for (int32_t L = 0; L <= top; ++L) {
    // First bin whose centre rounds above L: v / s >= L + 0.5.
    const double edge = (L + 0.5) * s / w - 0.5;
    int j = edge <= 0 ? 0 : static_cast<int>(std::ceil(edge));
    j = std::min(j, nb);
    const double t = L * s;
    out[L] = round_err[j] + (s2[j] - 2 * t * s1[j] + t * t * s0[j]);
  }
}

}  // namespace

ActQuant calibrate_affine(const Histogram& h, int bits, CalibMethod method) {
  HAQ_ASSERT(bits >= 2 && bits <= 8);
  const double pos_max = h.max(), neg_max = h.min() < 0 ? -h.min() : 0.0;
  switch (method) {
    case CalibMethod::minmax: return make_affine_act_quant(neg_max, pos_max, bits);
    case CalibMethod::percentile: {
      // Each side's 99.99th percentile of its own values.
      auto side = [&](bool negative, double top) {
        double total = 0;
        std::vector<double> c(h.counts().size());
        for (size_t i = 0; i < c.size(); ++i) {
          c[i] = negative ? h.neg_counts()[i] : h.counts()[i] - h.neg_counts()[i];
          total += c[i];
        }
        if (total <= 0) return 0.0;
        const double target = 0.9999 * total;
        double cum = 0;
        for (size_t i = 0; i < c.size(); ++i) {
          if (c[i] > 0 && cum + c[i] >= target) return std::min((i + (target - cum) / c[i]) * h.bin_width(), top);
          cum += c[i];
        }
        return top;
      };
      return make_affine_act_quant(side(true, neg_max), side(false, pos_max), bits);
    }
    case CalibMethod::mse: {
      const int32_t top = unsigned_max_level(bits);
      const double span = pos_max + neg_max;
      if (!(span > 0)) return make_affine_act_quant(0, 0, bits);
      std::vector<double> pos(h.counts().size());
      for (size_t i = 0; i < pos.size(); ++i) pos[i] = h.counts()[i] - h.neg_counts()[i];
      const ActQuant start = make_affine_act_quant(neg_max, pos_max, bits);
      double best_s = start.scale, best_e = std::numeric_limits<double>::infinity();
      int32_t best_z = -start.lo;
      std::vector<double> ep, en;
      // Scales 1.000, 0.995, ..., 0.005 of the min-max one; for each, every
      // zero point z (negative side L = z, positive side L = top - z). Ties
      // keep the larger scale, then the first z.
      for (int k = 0; k < 200; ++k) {
        const double s = span * (1.0 - 0.005 * k) / top;
        side_errors(pos, h.bin_width(), s, top, ep);
        side_errors(h.neg_counts(), h.bin_width(), s, top, en);
        for (int32_t z = 0; z <= top; ++z) {
          const double e = ep[top - z] + en[z];
          if (e < best_e * (1 - 1e-12)) best_e = e, best_s = s, best_z = z;
        }
      }
      return affine_act_quant(best_s, best_z, bits);
    }
    case CalibMethod::kl: break;
  }
  fail(ErrorKind::usage, "", "--calib-method", "kl calibration is defined for symmetric activations only");
}

float calibrate_range(const std::vector<float>& samples, int bits, bool is_unsigned,
                      CalibMethod method) {
  Histogram h;
  h.add(samples.data(), static_cast<int64_t>(samples.size()));
  return calibrate_range(h, bits, is_unsigned, method);
}

}  // namespace haq::quant
