#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "haq/core/rng.h"
#include "haq/search/mlp.h"

using namespace haq;
using namespace haq::search;

namespace {
// Loss = sum_j c_j y_j over a batch, so dLoss/dy = c.
double loss(Mlp& net, const std::vector<float>& x, int batch, const std::vector<float>& c) {
  const auto& y = net.forward(x.data(), batch);
  double l = 0;
  for (size_t j = 0; j < y.size(); ++j) l += static_cast<double>(c[j]) * y[j];
  return l;
}
}  // namespace

TEST_CASE("mlp: gradients match finite differences", "[search][mlp]") {
  for (auto act : {OutputActivation::linear, OutputActivation::sigmoid, OutputActivation::tanh}) {
    auto rng = make_rng(7, "test");
    Mlp net({3, 6, 5, 2}, act, rng, 0.5f);
    const int batch = 4;
    std::vector<float> x(batch * 3), c(batch * 2);
    for (auto& v : x) v = static_cast<float>(2 * uniform01(rng) - 1);
    for (auto& v : c) v = static_cast<float>(2 * uniform01(rng) - 1);
    loss(net, x, batch, c);
    net.zero_grads();
    std::vector<float> dx;
    net.backward(c.data(), true, &dx);
    const auto grads = net.grads();
    const double h = 1e-3;  // small enough not to cross a ReLU kink here
    for (size_t j = 0; j < net.params().size(); ++j) {
      float keep = net.params()[j];
      net.params()[j] = keep + static_cast<float>(h);
      double lp = loss(net, x, batch, c);
      net.params()[j] = keep - static_cast<float>(h);
      double lm = loss(net, x, batch, c);
      net.params()[j] = keep;
      double fd = (lp - lm) / (2 * h);
      CHECK(grads[j] == Approx(fd).margin(2e-3).epsilon(2e-2));
    }
    for (size_t j = 0; j < x.size(); ++j) {
      auto xp = x, xm = x;
      xp[j] += static_cast<float>(h);
      xm[j] -= static_cast<float>(h);
      double fd = (loss(net, xp, batch, c) - loss(net, xm, batch, c)) / (2 * h);
      CHECK(dx[j] == Approx(fd).margin(2e-3).epsilon(2e-2));
    }
  }
}

TEST_CASE("mlp: closed form of a one-layer linear net", "[search][mlp]") {
  auto rng = make_rng(1, "test");
  Mlp net({2, 1}, OutputActivation::linear, rng);
  net.params() = {2.f, -3.f, 0.5f};  // w = [2, -3], b = 0.5
  std::vector<float> x{1.f, 1.f, 0.f, 2.f};
  const auto& y = net.forward(x.data(), 2);
  CHECK(y[0] == Approx(-0.5));
  CHECK(y[1] == Approx(-5.5));
  net.zero_grads();
  std::vector<float> dy{1.f, 2.f}, dx;
  net.backward(dy.data(), true, &dx);
  CHECK(net.grads() == std::vector<float>{1.f, 5.f, 3.f});
  CHECK(dx == std::vector<float>{2.f, -3.f, 4.f, -6.f});
}

TEST_CASE("mlp: Adam fits a regression, save/load round-trips exactly", "[search][mlp]") {
  auto rng = make_rng(3, "test");
  Mlp net({1, 16, 16, 1}, OutputActivation::linear, rng, 0.1f);
  Adam opt(net.params().size(), 1e-2f);
  // y = x^2 on [-1, 1]
  std::vector<float> x(32), target(32);
  for (int i = 0; i < 32; ++i) {
    x[i] = -1.f + 2.f * i / 31.f;
    target[i] = x[i] * x[i];
  }
  auto mse = [&] {
    const auto& y = net.forward(x.data(), 32);
    double s = 0;
    for (int i = 0; i < 32; ++i) s += (y[i] - target[i]) * (y[i] - target[i]);
    return s / 32;
  };
  double before = mse();
  for (int step = 0; step < 400; ++step) {
    const auto& y = net.forward(x.data(), 32);
    std::vector<float> dy(32);
    for (int i = 0; i < 32; ++i) dy[i] = 2.f * (y[i] - target[i]) / 32.f;
    net.zero_grads();
    net.backward(dy.data(), true, nullptr);
    opt.step(net.params(), net.grads());
  }
  double after = mse();
  CHECK(before > 0.05);
  CHECK(after < 0.005);

  std::stringstream buf;
  net.save(buf);
  opt.save(buf);
  auto rng2 = make_rng(99, "other");
  Mlp copy({1, 16, 16, 1}, OutputActivation::linear, rng2, 0.1f);
  Adam opt2(copy.params().size(), 1.f);
  copy.load(buf);
  opt2.load(buf);
  CHECK(copy.params() == net.params());
  // the same next step from both
  net.zero_grads();
  copy.zero_grads();
  std::vector<float> dy(32, 0.01f);
  net.forward(x.data(), 32);
  net.backward(dy.data(), true, nullptr);
  copy.forward(x.data(), 32);
  copy.backward(dy.data(), true, nullptr);
  opt.step(net.params(), net.grads());
  opt2.step(copy.params(), copy.grads());
  CHECK(copy.params() == net.params());
  // a checkpoint of another shape is refused
  std::stringstream buf2;
  net.save(buf2);
  Mlp other({1, 8, 1}, OutputActivation::linear, rng2);
  CHECK_THROWS(other.load(buf2));
}

TEST_CASE("mlp: soft update", "[search][mlp]") {
  auto rng = make_rng(1, "test");
  Mlp a({2, 1}, OutputActivation::linear, rng), b({2, 1}, OutputActivation::linear, rng);
  a.params() = {1.f, 1.f, 1.f};
  b.params() = {3.f, 5.f, -1.f};
  a.soft_update(b, 0.25f);
  CHECK(a.params()[0] == Approx(1.5));
  CHECK(a.params()[1] == Approx(2.0));
  CHECK(a.params()[2] == Approx(0.5));
}
