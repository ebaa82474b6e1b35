#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>

#include "haq/quant/quantizer.h"

using namespace haq::quant;

namespace {
std::vector<float> gaussian(size_t n, uint64_t seed, float sigma = 1.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
double mse(const std::vector<float>& a, const std::vector<float>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (a[i] - b[i]) * double(a[i] - b[i]);
  return e / a.size();
}
}  // namespace

TEST_CASE("weight levels lie exactly in [-(2^(b-1)-1), 2^(b-1)-1] for every bitwidth") {
  const int64_t channels = 8, per = 300;
  auto w = gaussian(channels * per, 1);
  w[5] = 40.f;  // an outlier in channel 0
  for (int bits = 2; bits <= 8; ++bits) {
    for (auto clip : {WeightClip::max, WeightClip::mse}) {
      auto q = quantize_weights(w.data(), channels, per, bits, clip);
      const int L = (1 << (bits - 1)) - 1;
      REQUIRE(q.values.size() == w.size());
      int lo = 0, hi = 0;
      for (int8_t v : q.values) lo = std::min<int>(lo, v), hi = std::max<int>(hi, v);
      CHECK(lo >= -L);
      CHECK(hi <= L);
      // The extremes are used: with max clip exactly, with mse at least the top level.
      if (clip == WeightClip::max) CHECK((hi == L || lo == -L));
      for (int64_t c = 0; c < channels; ++c) {
        REQUIRE(q.scales[c] > 0.f);
        // Unclipped weights are within half a step of their level.
        for (int64_t i = 0; i < per; ++i) {
          float x = w[c * per + i];
          if (std::fabs(x) <= L * q.scales[c])
            CHECK(std::fabs(x - q.values[c * per + i] * q.scales[c]) <= 0.5f * q.scales[c] * 1.0001f);
        }
      }
    }
  }
}

TEST_CASE("max clip puts the largest |w| of each channel on the top level") {
  std::vector<float> w = {0.5f, -1.f, 0.25f, 0.f, 3.f, -1.5f, 0.75f, 0.f};
  auto q = quantize_weights(w.data(), 2, 4, 8, WeightClip::max);
  CHECK(q.scales[0] == Approx(1.f / 127));
  CHECK(q.scales[1] == Approx(3.f / 127));
  CHECK(q.values[1] == -127);
  CHECK(q.values[4] == 127);
  CHECK(q.values[3] == 0);
  CHECK(q.values[0] == 64);  // 0.5 * 127 = 63.5 rounds to even
}

TEST_CASE("the MSE clip never has a larger error than the max clip") {
  for (int bits = 2; bits <= 8; ++bits) {
    auto w = gaussian(16 * 200, 10 + bits);
    auto qmax = quantize_weights(w.data(), 16, 200, bits, WeightClip::max);
    auto qmse = quantize_weights(w.data(), 16, 200, bits, WeightClip::mse);
    double emax = mse(w, dequantize(qmax)), emse = mse(w, dequantize(qmse));
    CHECK(emse <= emax);
    // For Gaussian weights at low bitwidth the clip matters a lot.
    if (bits <= 4) CHECK(emse < 0.8 * emax);
  }
}

TEST_CASE("1-bit weights are binary: +/-1 with scale mean |w| per channel") {
  std::vector<float> w = {0.5f, -1.5f, 2.f, 0.f, -0.1f, -0.3f};
  auto q = quantize_weights(w.data(), 2, 3, 1, WeightClip::mse);
  CHECK(q.values == std::vector<int8_t>{1, -1, 1, 1, -1, -1});
  CHECK(q.scales[0] == Approx(4.f / 3));
  CHECK(q.scales[1] == Approx(0.4f / 3));
}

TEST_CASE("an all-zero channel quantizes to zero levels") {
  std::vector<float> w(10, 0.f);
  for (int bits : {1, 4, 8}) {
    auto q = quantize_weights(w.data(), 2, 5, bits, WeightClip::mse);
    for (float x : dequantize(q)) CHECK(x == 0.f);
  }
}

TEST_CASE("activation levels: unsigned [0, 2^b-1], signed +/-(2^(b-1)-1), binary sign") {
  for (int bits = 1; bits <= 8; ++bits) {
    auto u = make_act_quant(2.f, bits, true);
    CHECK(u.hi == (1 << bits) - 1);
    CHECK(u.lo == 0);
    CHECK(u.scale == Approx(2.f / u.hi));
    CHECK(u.level(-3.f) == 0);
    CHECK(u.level(100.f) == u.hi);
    auto s = make_act_quant(2.f, bits, false);
    const int L = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
    CHECK(s.hi == L);
    CHECK(s.lo == -L);
    CHECK(s.level(-100.f) == -L);
    CHECK(s.level(100.f) == L);
  }
  auto b = make_act_quant(1.f, 1, false);
  CHECK(b.binary());
  CHECK(b.level(0.f) == 1);
  CHECK(b.level(-1e-6f) == -1);
  CHECK(b.fake(0.3f) == 1.f);
  auto q8 = make_act_quant(255.f, 8, true);
  CHECK(q8.level(2.5f) == 2);  // ties to even
  CHECK(q8.level(3.5f) == 4);
  CHECK(make_act_quant(0.f, 8, true).scale == 1.f);
}

TEST_CASE("Histogram::add never crashes on non-finite or extreme floats and leaves NaN and inf out") {
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const float big = std::numeric_limits<float>::max(), tiny = std::numeric_limits<float>::denorm_min();
  Histogram h;
  const std::vector<float> only_bad = {nan, inf, -inf, -nan};
  h.add(only_bad.data(), 4);  // nothing finite: no range, no count
  CHECK(h.count() == 0);
  CHECK(h.non_finite() == 4);
  CHECK(h.range() == 0);
  const std::vector<float> x = {1.f, nan, -2.f, 0.f, inf, 3e38f, -big, tiny, -inf, 0.5f};
  h.add(x.data(), static_cast<int64_t>(x.size()));
  CHECK(h.non_finite() == 7);
  CHECK(h.count() == 7);  // 1, -2, 0, 3e38, -max, denorm_min, 0.5
  CHECK(h.zeros() == 1);
  CHECK(h.min() == -static_cast<double>(big));
  CHECK(h.max_abs() == static_cast<double>(big));
  CHECK(std::isfinite(h.range()));
  CHECK(h.range() > h.max_abs());
  double binned = 0;
  for (double c : h.counts()) binned += c;
  CHECK(binned == 6);  // the non-zero finite values
  // Thresholds from it are finite numbers for every method.
  for (auto m : {CalibMethod::minmax, CalibMethod::percentile, CalibMethod::mse, CalibMethod::kl}) {
    const float t = calibrate_range(h, 8, false, m);
    CHECK(std::isfinite(t));
    CHECK(t >= 0.f);
  }
}
