#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "haq/quant/quantizer.h"

using namespace haq::quant;

namespace {
std::vector<float> uniform01(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
std::vector<float> gaussian(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}
// Exact quantization MSE of samples under a threshold.
double sample_mse(const std::vector<float>& x, float t, int bits, bool is_unsigned) {
  auto q = make_act_quant(t, bits, is_unsigned);
  double e = 0;
  for (float v : x) e += (v - q.fake(v)) * double(v - q.fake(v));
  return e / x.size();
}
}  // namespace

TEST_CASE("histogram keeps exact min, max, count and zeros while its range grows") {
  Histogram h(64);
  std::vector<float> a = {0.f, 0.5f, -0.25f, 0.f};
  std::vector<float> b = {8.f, -3.f};
  h.add(a.data(), 4);
  h.add(b.data(), 2);
  CHECK(h.count() == 6);
  CHECK(h.zeros() == 2);
  CHECK(h.min() == -3.0);
  CHECK(h.max_abs() == 8.0);
  CHECK(h.range() > 8.0);
  double total = 0;
  for (double c : h.counts()) total += c;
  CHECK(total == 4);
}

TEST_CASE("minmax and percentile on a uniform distribution") {
  auto x = uniform01(200000, 3);
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  float mx = 0;
  for (float v : x) mx = std::max(mx, v);
  CHECK(calibrate_range(h, 8, true, CalibMethod::minmax) == Approx(mx));
  CHECK(calibrate_range(h, 8, true, CalibMethod::percentile) == Approx(0.9999).epsilon(0.002));
  CHECK(h.percentile(50) == Approx(0.5).epsilon(0.01));
}

TEST_CASE("histogram MSE agrees with the exact sample MSE") {
  auto x = gaussian(100000, 4);
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  for (int bits : {2, 4, 8})
    for (float t : {1.f, 2.5f, 4.f})
      CHECK(histogram_quant_mse(h, t, bits, false) ==
            Approx(sample_mse(x, t, bits, false)).epsilon(0.03));
}

TEST_CASE("MSE calibration finds the known optimum clip of a Gaussian") {
  auto x = gaussian(200000, 5);
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  // Signed 4-bit (levels -7..7): the MSE-optimal clip of N(0,1) is about 2.5 sigma;
  // 2-bit (-1..1): about 1.2 sigma (ternary). Both far below the max (~4.5 sigma).
  float t4 = calibrate_range(h, 4, false, CalibMethod::mse);
  float t2 = calibrate_range(h, 2, false, CalibMethod::mse);
  CHECK(t4 > 2.2f);
  CHECK(t4 < 2.9f);
  CHECK(t2 > 0.9f);
  CHECK(t2 < 1.6f);
  // And it beats minmax on the exact sample MSE.
  float tm = calibrate_range(h, 4, false, CalibMethod::minmax);
  CHECK(sample_mse(x, t4, 4, false) < sample_mse(x, tm, 4, false));
  // 8 bits on a uniform distribution: the clip stays near the max.
  auto u = uniform01(100000, 6);
  Histogram hu;
  hu.add(u.data(), static_cast<int64_t>(u.size()));
  CHECK(calibrate_range(hu, 8, true, CalibMethod::mse) > 0.97f);
}

TEST_CASE("KL calibration clips a heavy tail and keeps a uniform distribution") {
  auto x = gaussian(200000, 7);
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  float t = calibrate_range(h, 8, false, CalibMethod::kl);
  CHECK(t > 2.5f);
  CHECK(t < h.max_abs());
  auto u = uniform01(200000, 8);
  Histogram hu;
  hu.add(u.data(), static_cast<int64_t>(u.size()));
  CHECK(calibrate_range(hu, 8, true, CalibMethod::kl) > 0.9f);
}

TEST_CASE("every method returns 0 for an all-zero tensor") {
  std::vector<float> z(100, 0.f);
  for (auto m : {CalibMethod::minmax, CalibMethod::percentile, CalibMethod::mse, CalibMethod::kl})
    CHECK(calibrate_range(z, 8, true, m) == 0.f);
}

TEST_CASE("method names parse and print") {
  for (auto m : {CalibMethod::minmax, CalibMethod::percentile, CalibMethod::mse, CalibMethod::kl})
    CHECK(parse_calib_method(to_string(m)) == m);
  CHECK_THROWS(parse_calib_method("entropy"));
}

// ---- asymmetric (affine) activations ---------------------------------------

namespace {
// Exact quantization MSE of samples under any activation quantizer.
double sample_mse(const std::vector<float>& x, const ActQuant& q) {
  double e = 0;
  for (float v : x) e += (v - q.fake(v)) * double(v - q.fake(v));
  return e / x.size();
}
// SiLU of Gaussian inputs: a long positive side and a short negative one
// (min -0.278), as the inputs of an EfficientNet's convolutions.
std::vector<float> silu_of_gaussian(size_t n, uint64_t seed) {
  auto v = gaussian(n, seed);
  for (auto& x : v) x = 2.f * x / (1.f + std::exp(-2.f * x));
  return v;
}
}  // namespace

TEST_CASE("the histogram counts the negative values apart, through range growth") {
  Histogram h(64);
  std::vector<float> a = {0.5f, -0.25f, 0.f, -0.5f};
  std::vector<float> b = {8.f, -3.f};
  h.add(a.data(), 4);
  h.add(b.data(), 2);
  CHECK(h.max() == 8.0);
  CHECK(h.min() == -3.0);
  double all = 0, neg = 0;
  for (int i = 0; i < h.bins(); ++i) all += h.counts()[i], neg += h.neg_counts()[i];
  CHECK(all == 5);  // the zero apart
  CHECK(neg == 3);
  // -3 sits in the bin of |x| = 3.
  const int bin3 = static_cast<int>(3.0 / h.bin_width());
  CHECK(h.neg_counts()[bin3] == 1);
  CHECK(h.counts()[bin3] == 1);
}

TEST_CASE("an affine activation quantizer: closed-form scale, zero point and levels") {
  // [-1, 3] at 2 bits: scale 4/3, z = round(0.75) = 1, levels [-1, 2].
  const ActQuant q = make_affine_act_quant(1.0, 3.0, 2);
  CHECK(q.scale == Approx(4.0 / 3.0));
  CHECK(q.lo == -1);
  CHECK(q.hi == 2);
  CHECK(q.affine());
  CHECK(q.code_zero_point() == 1);
  CHECK(q.level(0.f) == 0);  // real zero is exact (padding)
  CHECK(q.level(-5.f) == -1);
  CHECK(q.level(2.1f) == 2);
  CHECK(q.level(1.9f) == 1);
  // Codes level + z cover [0, 2^b - 1] exactly.
  CHECK(q.lo + q.code_zero_point() == 0);
  CHECK(q.hi + q.code_zero_point() == 3);
  // All-positive and all-negative ranges put z at an end.
  CHECK(make_affine_act_quant(0.0, 2.0, 4).lo == 0);
  CHECK(make_affine_act_quant(2.0, 0.0, 4).hi == 0);
  // Symmetric quantizers are not affine and keep their zero point 2^(b-1).
  const ActQuant s = make_act_quant(1.f, 4, false);
  CHECK_FALSE(s.affine());
  CHECK(s.code_zero_point() == 8);
  CHECK(make_act_quant(1.f, 1, false).code_zero_point() == 1);
  CHECK(make_act_quant(1.f, 4, true).code_zero_point() == 0);
}

TEST_CASE("affine minmax spans min to max, and mse is the grid optimum and beats symmetric on one-sided data") {
  const auto x = silu_of_gaussian(200000, 7);
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  const double lo = h.min(), hi = h.max();
  REQUIRE(lo == Approx(-0.2785).epsilon(0.01));  // u sigmoid(u), u = 2x, has its minimum -0.278 at u = -1.28
  for (int bits : {2, 3, 4, 6, 8}) {
    INFO("bits " << bits);
    const double top = (1 << bits) - 1;
    const ActQuant mm = calibrate_affine(h, bits, CalibMethod::minmax);
    CHECK(mm.scale == Approx((hi - lo) / top).epsilon(1e-6));
    CHECK(-mm.lo == static_cast<int32_t>(std::nearbyint(-lo / ((hi - lo) / top))));
    const ActQuant best = calibrate_affine(h, bits, CalibMethod::mse);
    // The search's choice is the best of its grid (every scale, every zero
    // point) by the plain histogram error: the prefix sums are exact.
    const double e_best = histogram_affine_mse(h, best);
    double e_grid = std::numeric_limits<double>::infinity();
    for (int k = 0; k < 200; ++k)
      for (int z = 0; z <= static_cast<int>(top); ++z)
        e_grid = std::min(e_grid, histogram_affine_mse(h, affine_act_quant((hi - lo) * (1.0 - 0.005 * k) / top, z, bits)));
    CHECK(e_best == Approx(e_grid).epsilon(1e-9));
    // On the samples themselves: better than the best symmetric quantizer,
    // and than affine minmax.
    const double sym = sample_mse(x, calibrate_range(h, bits, false, CalibMethod::mse), bits, false);
    CHECK(sample_mse(x, best) < sym);
    CHECK(sample_mse(x, best) <= sample_mse(x, mm) * 1.0001);
    // At 4 bits one-sided data gains about a bit: at least 2x less error.
    if (bits == 4) CHECK(sample_mse(x, best) < 0.5 * sym);
  }
  CHECK_THROWS(calibrate_affine(h, 4, CalibMethod::kl));
  CHECK(parse_act_quant("asymmetric") == ActQuantMode::asymmetric);
  CHECK(std::string(to_string(ActQuantMode::symmetric)) == "symmetric");
  CHECK_THROWS(parse_act_quant("affine"));
}

TEST_CASE("affine percentile takes each side's own 99.99th percentile") {
  // Uniform on [-1, 0) and [0, 4): each side's percentile is near its end.
  auto u = uniform01(400000, 3);
  std::vector<float> x(u.size());
  for (size_t i = 0; i < u.size(); ++i) x[i] = i % 2 ? -u[i] : 4.f * u[i];
  Histogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  const ActQuant q = calibrate_affine(h, 8, CalibMethod::percentile);
  const double span = q.scale * 255;
  CHECK(span == Approx(5.0).epsilon(0.002));
  CHECK(-q.lo == static_cast<int32_t>(std::nearbyint(1.0 / (span / 255))));
}
