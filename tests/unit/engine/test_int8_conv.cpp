// The engine's int8 convolution (oneDNN) against a plain integer reference,
// exactly, for every bitwidth 2..8: dense, depthwise, strided, dilated.
#include <catch2/catch.hpp>

#include <cmath>
#include <random>

#include "haq/engine/kernels.h"

using haq::engine::ConvSpec;
using haq::engine::Int8Split;

namespace {

std::vector<int64_t> reference_acc(const ConvSpec& s, const std::vector<int32_t>& x,
                                   const std::vector<int8_t>& w) {
  const int64_t oh = s.out_h(), ow = s.out_w(), cg = s.c_in / s.groups, og = s.c_out / s.groups;
  std::vector<int64_t> out(static_cast<size_t>(s.n * s.c_out * oh * ow), 0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oc = 0; oc < s.c_out; ++oc)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t xx = 0; xx < ow; ++xx) {
          int64_t acc = 0;
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t ky = 0; ky < s.kernel_h; ++ky)
              for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
                int64_t iy = y * s.stride_h - s.pads[0] + ky * s.dilation_h;
                int64_t ix = xx * s.stride_w - s.pads[1] + kx * s.dilation_w;
                if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
                int64_t c = (oc / og) * cg + ic;
                acc += int64_t{x[((n * s.c_in + c) * s.h + iy) * s.w + ix]} *
                       w[((oc * cg + ic) * s.kernel_h + ky) * s.kernel_w + kx];
              }
          out[((n * s.c_out + oc) * oh + y) * ow + xx] = acc;
        }
  return out;
}

struct Case {
  const char* name;
  ConvSpec spec;
};

std::vector<Case> cases() {
  std::vector<Case> v;
  ConvSpec dense;
  dense.n = 2, dense.c_in = 16, dense.h = 9, dense.w = 9, dense.c_out = 24;
  dense.kernel_h = dense.kernel_w = 3, dense.pads = {1, 1, 1, 1};
  v.push_back({"dense 3x3", dense});
  ConvSpec dw = dense;
  dw.c_in = dw.c_out = dw.groups = 32, dw.stride_h = dw.stride_w = 2;
  v.push_back({"depthwise 3x3 stride 2", dw});
  ConvSpec strided;
  strided.n = 3, strided.c_in = 3, strided.h = 15, strided.w = 13, strided.c_out = 8;
  strided.kernel_h = 5, strided.kernel_w = 3, strided.stride_h = 2, strided.stride_w = 3;
  strided.pads = {2, 0, 1, 1};
  v.push_back({"strided 5x3, asymmetric pads", strided});
  ConvSpec pw;
  pw.n = 2, pw.c_in = 40, pw.h = 7, pw.w = 7, pw.c_out = 20;
  v.push_back({"pointwise 1x1", pw});
  ConvSpec grouped = dense;
  grouped.groups = 4, grouped.dilation_h = grouped.dilation_w = 2, grouped.pads = {2, 2, 2, 2};
  v.push_back({"grouped, dilated", grouped});
  return v;
}

}  // namespace

TEST_CASE("int8 convolution accumulators equal the integer reference for bits 2..8") {
  std::mt19937_64 rng(42);
  INFO("this CPU's int8 kernels " << (haq::engine::int8_pairs_saturate() ? "saturate pairs (no VNNI)" : "have VNNI"));
  for (const auto& c : cases()) {
    const ConvSpec& s = c.spec;
    for (int bits = 2; bits <= 8; ++bits)
      for (bool src_unsigned : {true, false})
      for (Int8Split split : {Int8Split::automatic, Int8Split::always}) {
        INFO(c.name << ", bits " << bits << (src_unsigned ? ", u8" : ", s8")
                    << (split == Int8Split::always ? ", split" : ""));
        const int a_hi = src_unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
        const int a_lo = src_unsigned ? 0 : -a_hi;
        const int w_hi = (1 << (bits - 1)) - 1;
        std::uniform_int_distribution<int> da(a_lo, a_hi), dw(-w_hi, w_hi);
        std::vector<int32_t> x(static_cast<size_t>(s.n * s.c_in * s.h * s.w));
        for (auto& v : x) v = da(rng);
        // Make sure the extreme levels occur.
        x[0] = a_hi, x[1] = a_lo;
        std::vector<int8_t> w(static_cast<size_t>(s.c_out * (s.c_in / s.groups) * s.kernel_h * s.kernel_w));
        for (auto& v : w) v = static_cast<int8_t>(dw(rng));
        w[0] = static_cast<int8_t>(w_hi), w[1] = static_cast<int8_t>(-w_hi);
        auto got = haq::engine::conv_int8_accumulators(s, x, src_unsigned, w, split);
        auto want = reference_acc(s, x, w);
        REQUIRE(got.size() == want.size());
        size_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i) bad += got[i] != want[i];
        CHECK(bad == 0);
      }
  }
}

TEST_CASE("int8 convolution with output scales, bias and ReLU dequantizes as specified") {
  std::mt19937_64 rng(7);
  for (const auto& c : cases()) {
    const ConvSpec& s = c.spec;
    for (int bits : {2, 4, 8}) {
      INFO(c.name << ", bits " << bits);
      std::uniform_int_distribution<int> da(0, (1 << bits) - 1), dw(-((1 << (bits - 1)) - 1), (1 << (bits - 1)) - 1);
      std::uniform_real_distribution<float> ds(0.001f, 0.01f), db(-50.f, 50.f);
      std::vector<int32_t> x(static_cast<size_t>(s.n * s.c_in * s.h * s.w));
      for (auto& v : x) v = da(rng);
      std::vector<int8_t> w(static_cast<size_t>(s.c_out * (s.c_in / s.groups) * s.kernel_h * s.kernel_w));
      for (auto& v : w) v = static_cast<int8_t>(dw(rng));
      std::vector<float> scales(s.c_out), bias(s.c_out);
      for (auto& v : scales) v = ds(rng);
      for (auto& v : bias) v = db(rng);
      for (bool relu : {false, true}) {
        auto got = haq::engine::conv_int8_f32(s, x, true, w, scales, bias, relu);
        auto acc = reference_acc(s, x, w);
        const int64_t plane = s.out_h() * s.out_w();
        size_t bad = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          const int64_t oc = (static_cast<int64_t>(i) / plane) % s.c_out;
          // Accumulators are below 2^24 here, so float(acc) is exact.
          float want = (static_cast<float>(acc[i]) + bias[oc]) * scales[oc];
          if (relu) want = std::max(want, 0.f);
          if (std::fabs(got[i] - want) > 1e-6f * std::fabs(want) + 1e-6f) ++bad;
        }
        CHECK(bad == 0);
      }
    }
  }
}

// The worst case of CPUs without VNNI: every product at its largest, so
// that any pair of products added in s16 would saturate (2 * 255 * 127 >
// 32767). Every accumulator is then a closed form.
TEST_CASE("int8 convolution and matmul at the extreme levels do not saturate") {
  ConvSpec s;
  s.n = 1, s.c_in = 64, s.h = 4, s.w = 4, s.c_out = 8, s.kernel_h = s.kernel_w = 3;
  s.pads = {1, 1, 1, 1};
  for (bool src_unsigned : {true, false})
    for (Int8Split split : {Int8Split::automatic, Int8Split::always}) {
      INFO((src_unsigned ? "u8 255" : "s8 -127") << (split == Int8Split::always ? ", split" : ""));
      const int32_t level = src_unsigned ? 255 : -127;
      std::vector<int32_t> x(static_cast<size_t>(s.c_in * s.h * s.w), level);
      std::vector<int8_t> w(static_cast<size_t>(s.c_out * s.c_in * 9), 127);
      auto got = haq::engine::conv_int8_accumulators(s, x, src_unsigned, w, split);
      // Output (y, x) sees taps inside the 4x4 image only: corners 4, edges 6, inside 9.
      for (int64_t oc = 0; oc < s.c_out; ++oc)
        for (int64_t y = 0; y < 4; ++y)
          for (int64_t xx = 0; xx < 4; ++xx) {
            const int64_t taps = (y == 0 || y == 3 ? 2 : 3) * (xx == 0 || xx == 3 ? 2 : 3);
            CHECK(got[static_cast<size_t>((oc * 4 + y) * 4 + xx)] == taps * s.c_in * 127 * level);
          }
      const int64_t rows = 3, k = 300, n = 5;
      std::vector<int32_t> a(static_cast<size_t>(rows * k), level);
      std::vector<int8_t> b(static_cast<size_t>(n * k), -127);
      auto mm = haq::engine::matmul_int8_accumulators(rows, k, n, a, src_unsigned, b, split);
      for (int32_t v : mm) CHECK(v == k * -127 * level);
    }
}

TEST_CASE("int8 matmul accumulators equal the integer reference for bits 1..8") {
  std::mt19937_64 rng(9);
  const int64_t rows = 7, k = 96, n = 33;
  for (int bits = 1; bits <= 8; ++bits)
    for (bool src_unsigned : {true, false})
      for (Int8Split split : {Int8Split::automatic, Int8Split::always}) {
        if (bits == 1 && src_unsigned) continue;
        INFO("bits " << bits << (src_unsigned ? ", u8" : ", s8") << (split == Int8Split::always ? ", split" : ""));
        const int a_hi = src_unsigned ? (1 << bits) - 1 : std::max(1, (1 << (bits - 1)) - 1);
        const int a_lo = src_unsigned ? 0 : -a_hi;
        const int w_hi = std::max(1, (1 << (bits - 1)) - 1);
        std::uniform_int_distribution<int> da(a_lo, a_hi), dw(-w_hi, w_hi);
        std::vector<int32_t> x(static_cast<size_t>(rows * k));
        for (auto& v : x) v = bits == 1 ? (da(rng) >= 0 ? 1 : -1) : da(rng);
        std::vector<int8_t> w(static_cast<size_t>(n * k));
        for (auto& v : w) v = static_cast<int8_t>(bits == 1 ? (dw(rng) >= 0 ? 1 : -1) : dw(rng));
        auto got = haq::engine::matmul_int8_accumulators(rows, k, n, x, src_unsigned, w, split);
        size_t bad = 0;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < n; ++j) {
            int64_t acc = 0;
            for (int64_t i = 0; i < k; ++i) acc += int64_t{x[r * k + i]} * w[j * k + i];
            bad += got[static_cast<size_t>(r * n + j)] != acc;
          }
        CHECK(bad == 0);
      }
}
