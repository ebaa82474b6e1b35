#pragma once
/// \file
/// A small dense network (ReLU hidden layers, linear/sigmoid/tanh output) and
/// Adam, for DDPG's actor and critic. Float, single-threaded, fixed order of
/// operations: same seed -> same numbers.

#include <cstdint>
#include <iosfwd>
#include <random>
#include <vector>

namespace haq::search {

/// Uniform double in [0, 1) from 53 random bits (portable, unlike std:: distributions).
double uniform01(std::mt19937_64& rng);
/// Standard normal by Box-Muller (portable).
double standard_normal(std::mt19937_64& rng);

/// Output non-linearity of the last layer.
enum class OutputActivation { linear, sigmoid, tanh };

class Mlp {
 public:
  Mlp() = default;
  /// `sizes` = {inputs, hidden..., outputs}. Hidden layers use ReLU. Weights are
  /// uniform in +-1/sqrt(fan_in), the last layer's in +-`last_init` (DDPG's init).
  Mlp(std::vector<int> sizes, OutputActivation out, std::mt19937_64& rng, float last_init = 3e-3f);

  int in_dim() const { return sizes_.front(); }
  int out_dim() const { return sizes_.back(); }
  const std::vector<int>& sizes() const { return sizes_; }

  /// Forward pass on `batch` rows of in_dim() inputs; returns batch x out_dim()
  /// outputs (valid until the next call). Keeps activations for backward().
  const std::vector<float>& forward(const float* x, int batch);

  /// Backward pass for the last forward(): `dy` is dLoss/dOutput (batch x
  /// out_dim()). Adds parameter gradients into grads() when `param_grads`;
  /// writes dLoss/dInput (batch x in_dim()) into `dx` when not null.
  void backward(const float* dy, bool param_grads, std::vector<float>* dx);

  /// Parameters: for each layer the weight as [in][out], then the bias [out].
  std::vector<float>& params() { return params_; }
  const std::vector<float>& params() const { return params_; }
  std::vector<float>& grads() { return grads_; }
  void zero_grads();

  /// this = (1 - tau) this + tau src (target network update).
  void soft_update(const Mlp& src, float tau);

  /// Binary state (sizes, activation, parameters).
  void save(std::ostream& out) const;
  void load(std::istream& in);

 private:
  std::vector<int> sizes_;
  OutputActivation out_ = OutputActivation::linear;
  std::vector<float> params_, grads_;
  std::vector<size_t> offsets_;  // start of each layer's weights in params_
  int batch_ = 0;
  std::vector<std::vector<float>> acts_;  // acts_[k] = input of layer k; acts_.back() = output
  std::vector<float> dz_, dnext_;
};

/// Adam (Kingma & Ba) with PyTorch's defaults (beta1 0.9, beta2 0.999, eps 1e-8).
class Adam {
 public:
  Adam() = default;
  Adam(size_t n, float lr) : lr_(lr), m_(n, 0.f), v_(n, 0.f) {}
  /// One step on `params` with `grads`.
  void step(std::vector<float>& params, const std::vector<float>& grads);
  void save(std::ostream& out) const;
  void load(std::istream& in);

 private:
  float lr_ = 1e-3f, beta1_ = 0.9f, beta2_ = 0.999f, eps_ = 1e-8f;
  int64_t t_ = 0;
  std::vector<float> m_, v_;
};

/// Binary helpers for checkpoints (little-endian host layout, checked on load).
namespace bin {
void write_u64(std::ostream& out, uint64_t v);
uint64_t read_u64(std::istream& in);
void write_f64(std::ostream& out, double v);
double read_f64(std::istream& in);
void write_floats(std::ostream& out, const std::vector<float>& v);
std::vector<float> read_floats(std::istream& in);
void write_string(std::ostream& out, const std::string& s);
std::string read_string(std::istream& in);
/// Reads a count of items of at least `bytes_each` bytes that follow in `in`;
/// a count the rest of the stream cannot hold is a corrupt checkpoint
/// (Error(io)), so that no corrupt length is ever allocated.
uint64_t read_count(std::istream& in, uint64_t bytes_each);
}  // namespace bin

}  // namespace haq::search
