// to_model_layout (NCHW, NHWC, flat) and sample_indices.
#include <catch2/catch.hpp>
#include <set>

#include "haq/data/dataset.h"
#include "writers.h"

using Catch::Matchers::Contains;
using haq::ErrorKind;
using haq::data::Dataset;
using haq::test::error_of;

namespace {
/// n samples of c x h x w with value 1000 n + 100 c + 10 h + w.
Dataset make(int64_t n, int64_t c, int64_t h, int64_t w) {
  Dataset d;
  d.source = "synthetic";
  d.channels = c, d.height = h, d.width = w;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) d.images.push_back(float(1000 * i + 100 * ch + 10 * y + x));
  d.labels.assign(static_cast<size_t>(n), 0);
  return d;
}
float val(int64_t i, int64_t c, int64_t y, int64_t x) {
  return float(1000 * i + 100 * c + 10 * y + x);
}
}  // namespace

TEST_CASE("to_model_layout: NCHW, NHWC and flat from the same data", "[data][layout]") {
  const int64_t C = 3, H = 2, W = 4;
  Dataset d = make(5, C, H, W);
  const std::vector<int64_t> idx = {4, 1};
  std::vector<float> out(2 * C * H * W, -1.f);

  haq::data::to_model_layout(d, idx, {1, C, H, W}, out.data());
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          REQUIRE(out[((k * C + c) * H + y) * W + x] == val(idx[k], c, y, x));

  haq::data::to_model_layout(d, idx, {-1, H, W, C}, out.data());
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t c = 0; c < C; ++c)
          REQUIRE(out[((k * H + y) * W + x) * C + c] == val(idx[k], c, y, x));

  haq::data::to_model_layout(d, idx, {256, C * H * W}, out.data());
  for (int64_t k = 0; k < 2; ++k)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          REQUIRE(out[k * C * H * W + (c * H + y) * W + x] == val(idx[k], c, y, x));

  // Dynamic (<= 0) non-batch dims match anything.
  std::fill(out.begin(), out.end(), -1.f);
  haq::data::to_model_layout(d, idx, {1, C, 0, -1}, out.data());
  CHECK(out[C * H * W + 5] == val(1, 0, 1, 1));
}

TEST_CASE("to_model_layout: one-channel data fits N x 1 x 28 x 28, N x 28 x 28 x 1, N x 784",
          "[data][layout]") {
  Dataset d = make(2, 1, 28, 28);
  for (std::vector<int64_t> shape :
       {std::vector<int64_t>{1, 1, 28, 28}, {1, 28, 28, 1}, {1, 784}, {1, 28, 28}}) {
    std::vector<float> out(2 * 784);
    haq::data::to_model_layout(d, {0, 1}, shape, out.data());
    CHECK(out == d.images);
  }
}

TEST_CASE("to_model_layout: incompatible shapes name both", "[data][layout][errors]") {
  Dataset d = make(1, 1, 28, 28);
  std::vector<float> out(3 * 224 * 224);
  std::string msg = error_of(
      [&] {
        haq::data::to_model_layout(d, {0}, {1, 3, 224, 224}, out.data());
      },
      ErrorKind::data);
  CHECK_THAT(msg, Contains("synthetic"));
  CHECK_THAT(msg, Contains("1 x 3 x 224 x 224"));
  CHECK_THAT(msg, Contains("1x28x28"));
  CHECK_THAT(
      error_of([&] { haq::data::to_model_layout(d, {0}, {784}, out.data()); }, ErrorKind::data),
      Contains("the model's input is 784"));
  CHECK_THAT(error_of(
                 [&] {
                   haq::data::to_model_layout(d, {0}, {1, 785}, out.data());
                 },
                 ErrorKind::data),
             Contains("N x 784"));
}

TEST_CASE("flat N x D data fills any model shape of D elements", "[data][layout]") {
  Dataset d = make(1, 1, 1, 12);
  std::vector<float> out(12);
  haq::data::to_model_layout(d, {0}, {1, 3, 2, 2}, out.data());
  CHECK(out == d.images);
}

TEST_CASE("sample_indices: deterministic, distinct, sorted", "[data][sample]") {
  Dataset d = make(1000, 1, 1, 1);
  auto a = haq::data::sample_indices(d, 100, 42);
  auto b = haq::data::sample_indices(d, 100, 42);
  auto c = haq::data::sample_indices(d, 100, 43);
  CHECK(a == b);
  CHECK(a != c);
  REQUIRE(a.size() == 100);
  CHECK(std::is_sorted(a.begin(), a.end()));
  CHECK(std::set<int64_t>(a.begin(), a.end()).size() == 100);
  CHECK(a.front() >= 0);
  CHECK(a.back() < 1000);
  // A sample of 500 of 1000 is spread over the whole range, not a prefix.
  auto half = haq::data::sample_indices(d, 500, 7);
  int64_t above = std::count_if(half.begin(), half.end(), [](int64_t i) { return i >= 500; });
  CHECK(above > 200);
  CHECK(above < 300);
  // count <= 0 or >= size: everything, in order.
  for (int64_t count : {0, -1, 1000, 5000}) {
    auto all = haq::data::sample_indices(d, count, 1);
    REQUIRE(all.size() == 1000);
    CHECK(all[0] == 0);
    CHECK(all[999] == 999);
  }
  // count = size - 1 leaves out exactly one.
  CHECK(haq::data::sample_indices(d, 999, 3).size() == 999);
}
