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
