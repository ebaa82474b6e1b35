#include "haq/search/mlp.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <istream>
#include <ostream>

#include "haq/core/error.h"

namespace haq::search {

double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

double standard_normal(std::mt19937_64& rng) {
  double u1 = uniform01(rng);
  double u2 = uniform01(rng);
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

namespace {

// The kernels. Every output element is computed by the same sequence of
// float operations whatever the vector width, so the clones give identical
// results; AVX2 only makes them faster.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HAQ_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HAQ_CLONES
#endif

// z[b][o] = bias[o] + sum_i x[b][i] * wt[i][o], summed in i order.
HAQ_CLONES void dense_forward(const float* x, int batch, int in, int out, const float* wt,
                              const float* bias, float* z) {
  for (int b = 0; b < batch; ++b) {
    float* zr = z + static_cast<size_t>(b) * out;
    std::memcpy(zr, bias, sizeof(float) * out);
    const float* xr = x + static_cast<size_t>(b) * in;
    for (int i = 0; i < in; ++i) {
      const float xi = xr[i];
      if (xi == 0.f) continue;  // ReLU zeros: nothing to add
      const float* w = wt + static_cast<size_t>(i) * out;
      for (int o = 0; o < out; ++o) zr[o] += xi * w[o];
    }
  }
}

// gwt[i][o] += sum_b x[b][i] dz[b][o]; gb[o] += sum_b dz[b][o], summed in b order.
HAQ_CLONES void dense_param_grads(const float* x, const float* dz, int batch, int in, int out,
                                  float* gwt, float* gb) {
  for (int b = 0; b < batch; ++b) {
    const float* xr = x + static_cast<size_t>(b) * in;
    const float* dr = dz + static_cast<size_t>(b) * out;
    for (int i = 0; i < in; ++i) {
      const float xi = xr[i];
      if (xi == 0.f) continue;
      float* g = gwt + static_cast<size_t>(i) * out;
      for (int o = 0; o < out; ++o) g[o] += xi * dr[o];
    }
    for (int o = 0; o < out; ++o) gb[o] += dr[o];
  }
}

// dx[b][i] = sum_o wt[i][o] dz[b][o], with eight partial sums in a fixed
// order; skipped (0) where mask[b][i] == 0 (a ReLU that was off).
HAQ_CLONES void dense_input_grads(const float* dz, int batch, int in, int out, const float* wt,
                                  const float* mask, float* dx) {
  for (int b = 0; b < batch; ++b) {
    const float* dr = dz + static_cast<size_t>(b) * out;
    for (int i = 0; i < in; ++i) {
      size_t idx = static_cast<size_t>(b) * in + i;
      if (mask && mask[idx] == 0.f) {
        dx[idx] = 0.f;
        continue;
      }
      const float* w = wt + static_cast<size_t>(i) * out;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int o = 0;
      for (; o + 8 <= out; o += 8)
        for (int k = 0; k < 8; ++k) acc[k] += w[o + k] * dr[o + k];
      for (int k = 0; o < out; ++o, ++k) acc[k] += w[o] * dr[o];
      dx[idx] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    }
  }
}

}  // namespace

Mlp::Mlp(std::vector<int> sizes, OutputActivation out, std::mt19937_64& rng, float last_init)
    : sizes_(std::move(sizes)), out_(out) {
  HAQ_ASSERT(sizes_.size() >= 2);
  size_t total = 0;
  for (size_t k = 0; k + 1 < sizes_.size(); ++k) {
    offsets_.push_back(total);
    total += static_cast<size_t>(sizes_[k]) * sizes_[k + 1] + sizes_[k + 1];
  }
  params_.resize(total);
  grads_.assign(total, 0.f);
  const size_t layers = sizes_.size() - 1;
  for (size_t k = 0; k < layers; ++k) {
    const int in = sizes_[k], o = sizes_[k + 1];
    const double bound = (k + 1 == layers) ? last_init : 1.0 / std::sqrt(static_cast<double>(in));
    const double bias_bound = 1.0 / std::sqrt(static_cast<double>(in));
    float* w = params_.data() + offsets_[k];
    for (size_t j = 0; j < static_cast<size_t>(in) * o; ++j)
      w[j] = static_cast<float>((2 * uniform01(rng) - 1) * bound);
    float* b = w + static_cast<size_t>(in) * o;
    for (int j = 0; j < o; ++j)
      b[j] = static_cast<float>((2 * uniform01(rng) - 1) * ((k + 1 == layers) ? bound : bias_bound));
  }
}

void Mlp::zero_grads() { std::fill(grads_.begin(), grads_.end(), 0.f); }

const std::vector<float>& Mlp::forward(const float* x, int batch) {
  batch_ = batch;
  const size_t layers = sizes_.size() - 1;
  acts_.resize(layers + 1);
  acts_[0].assign(x, x + static_cast<size_t>(batch) * sizes_[0]);
  for (size_t k = 0; k < layers; ++k) {
    const int in = sizes_[k], out = sizes_[k + 1];
    const float* w = params_.data() + offsets_[k];
    const float* b = w + static_cast<size_t>(in) * out;
    auto& z = acts_[k + 1];
    z.resize(static_cast<size_t>(batch) * out);
    dense_forward(acts_[k].data(), batch, in, out, w, b, z.data());
    if (k + 1 < layers) {
      for (float& v : z) v = v > 0.f ? v : 0.f;
    } else if (out_ == OutputActivation::sigmoid) {
      for (float& v : z) v = 1.f / (1.f + std::exp(-v));
    } else if (out_ == OutputActivation::tanh) {
      for (float& v : z) v = std::tanh(v);
    }
  }
  return acts_.back();
}

void Mlp::backward(const float* dy, bool param_grads, std::vector<float>* dx) {
  const size_t layers = sizes_.size() - 1;
  const size_t n_out = static_cast<size_t>(batch_) * sizes_.back();
  dz_.assign(dy, dy + n_out);
  const auto& y = acts_.back();
  if (out_ == OutputActivation::sigmoid)
    for (size_t j = 0; j < n_out; ++j) dz_[j] *= y[j] * (1.f - y[j]);
  else if (out_ == OutputActivation::tanh)
    for (size_t j = 0; j < n_out; ++j) dz_[j] *= 1.f - y[j] * y[j];
  for (size_t k = layers; k-- > 0;) {
    const int in = sizes_[k], out = sizes_[k + 1];
    float* w = params_.data() + offsets_[k];
    if (param_grads) {
      float* gw = grads_.data() + offsets_[k];
      dense_param_grads(acts_[k].data(), dz_.data(), batch_, in, out, gw,
                        gw + static_cast<size_t>(in) * out);
    }
    if (k > 0) {
      // acts_[k] = relu(z_{k-1}): its zeros mask the gradient.
      dnext_.resize(static_cast<size_t>(batch_) * in);
      dense_input_grads(dz_.data(), batch_, in, out, w, acts_[k].data(), dnext_.data());
      std::swap(dz_, dnext_);
    } else if (dx) {
      dx->resize(static_cast<size_t>(batch_) * in);
      dense_input_grads(dz_.data(), batch_, in, out, w, nullptr, dx->data());
    }
  }
}

void Mlp::soft_update(const Mlp& src, float tau) {
  HAQ_ASSERT(src.params_.size() == params_.size());
  for (size_t j = 0; j < params_.size(); ++j)
    params_[j] = params_[j] * (1.f - tau) + src.params_[j] * tau;
}

void Mlp::save(std::ostream& out) const {
  bin::write_u64(out, sizes_.size());
  for (int s : sizes_) bin::write_u64(out, static_cast<uint64_t>(s));
  bin::write_u64(out, static_cast<uint64_t>(out_));
  bin::write_floats(out, params_);
}

void Mlp::load(std::istream& in) {
  size_t n = bin::read_u64(in);
  if (n != sizes_.size()) fail(ErrorKind::io, "", "checkpoint", "network shape differs");
  for (int s : sizes_)
    if (bin::read_u64(in) != static_cast<uint64_t>(s))
      fail(ErrorKind::io, "", "checkpoint", "network shape differs");
  if (bin::read_u64(in) != static_cast<uint64_t>(out_))
    fail(ErrorKind::io, "", "checkpoint", "network activation differs");
  auto p = bin::read_floats(in);
  if (p.size() != params_.size()) fail(ErrorKind::io, "", "checkpoint", "network size differs");
  params_ = std::move(p);
}

void Adam::step(std::vector<float>& params, const std::vector<float>& grads) {
  HAQ_ASSERT(params.size() == m_.size() && grads.size() == m_.size());
  ++t_;
  const double bc1 = 1.0 - std::pow(static_cast<double>(beta1_), static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(static_cast<double>(beta2_), static_cast<double>(t_));
  const float step = static_cast<float>(lr_ / bc1);
  const float sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
  for (size_t j = 0; j < params.size(); ++j) {
    const float g = grads[j];
    m_[j] = beta1_ * m_[j] + (1.f - beta1_) * g;
    v_[j] = beta2_ * v_[j] + (1.f - beta2_) * g * g;
    params[j] -= step * m_[j] / (std::sqrt(v_[j]) / sqrt_bc2 + eps_);
  }
}

void Adam::save(std::ostream& out) const {
  bin::write_f64(out, lr_);
  bin::write_u64(out, static_cast<uint64_t>(t_));
  bin::write_floats(out, m_);
  bin::write_floats(out, v_);
}

void Adam::load(std::istream& in) {
  lr_ = static_cast<float>(bin::read_f64(in));
  t_ = static_cast<int64_t>(bin::read_u64(in));
  auto m = bin::read_floats(in), v = bin::read_floats(in);
  if (m.size() != m_.size() || v.size() != v_.size())
    fail(ErrorKind::io, "", "checkpoint", "optimizer size differs");
  m_ = std::move(m);
  v_ = std::move(v);
}

namespace bin {
namespace {
void check(std::istream& in) {
  if (!in) fail(ErrorKind::io, "", "checkpoint", "truncated or unreadable checkpoint");
}
}  // namespace
void write_u64(std::ostream& out, uint64_t v) { out.write(reinterpret_cast<const char*>(&v), 8); }
uint64_t read_u64(std::istream& in) {
  uint64_t v = 0;
  in.read(reinterpret_cast<char*>(&v), 8);
  check(in);
  return v;
}
void write_f64(std::ostream& out, double v) { out.write(reinterpret_cast<const char*>(&v), 8); }
double read_f64(std::istream& in) {
  double v = 0;
  in.read(reinterpret_cast<char*>(&v), 8);
  check(in);
  return v;
}
void write_floats(std::ostream& out, const std::vector<float>& v) {
  write_u64(out, v.size());
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}
uint64_t read_count(std::istream& in, uint64_t bytes_each) {
  uint64_t n = read_u64(in);
  // The bytes left: seek to the end and back (in_avail() undercounts a
  // stringstream that was written to). A stream that cannot seek gets a
  // fixed bound instead.
  uint64_t left = uint64_t{1} << 32;
  const std::istream::pos_type here = in.tellg();
  if (here != std::istream::pos_type(-1)) {
    in.seekg(0, std::ios::end);
    const std::istream::pos_type end = in.tellg();
    in.seekg(here);
    if (end != std::istream::pos_type(-1) && end >= here) left = static_cast<uint64_t>(end - here);
  }
  if (n > left / std::max<uint64_t>(bytes_each, 1))
    fail(ErrorKind::io, "", "checkpoint", "corrupt checkpoint: a count of {} does not fit in the {} bytes left",
         n, left);
  return n;
}
std::vector<float> read_floats(std::istream& in) {
  uint64_t n = read_count(in, 4);
  std::vector<float> v(n);
  in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * 4));
  check(in);
  return v;
}
void write_string(std::ostream& out, const std::string& s) {
  write_u64(out, s.size());
  out.write(s.data(), static_cast<std::streamsize>(s.size()));
}
std::string read_string(std::istream& in) {
  uint64_t n = read_count(in, 1);
  std::string s(n, '\0');
  in.read(s.data(), static_cast<std::streamsize>(n));
  check(in);
  return s;
}
}  // namespace bin

}  // namespace haq::search
