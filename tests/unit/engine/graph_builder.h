#pragma once
// Builds small Graphs in code (the importer's output form) for engine tests.
#include <random>
#include <string>
#include <vector>

#include "haq/data/dataset.h"
#include "haq/model/graph.h"

namespace haq::test {

/// Appends nodes to a Graph and keeps shapes, constants and layers consistent.
class GraphBuilder {
 public:
  GraphBuilder(int64_t batch, std::vector<int64_t> input_shape, uint64_t seed = 1);
  /// Conv layer (OIHW weights drawn N(0, 1/fan_in)), returns the output value.
  std::string conv(const std::string& x, int64_t c_out, int64_t k, int64_t stride = 1,
                   int64_t pad = 0, int64_t groups = 1);
  /// Gemm layer on a 2-D input.
  std::string gemm(const std::string& x, int64_t c_out);
  std::string unary(const std::string& op, const std::string& x);
  std::string add(const std::string& a, const std::string& b);
  std::string maxpool(const std::string& x, int64_t k, int64_t stride);
  std::string global_avg_pool(const std::string& x);
  std::string flatten(const std::string& x);
  model::Graph finish(const std::string& output);

  model::Graph g;

 private:
  std::string add_node(const std::string& op, std::vector<std::string> inputs,
                       std::vector<int64_t> out_shape);
  std::vector<float> random(size_t n, float sigma);
  std::mt19937_64 rng_;
  int counter_ = 0;
};

/// Naive NCHW convolution of `x` (the layer's input shape, batch from
/// l.input_shape[0]) with canonical OIHW weights `w` and bias `b`, in double.
std::vector<float> conv_reference(const std::vector<float>& x, const model::Layer& l, const std::vector<float>& w,
                                  const std::vector<float>& b);

/// A dataset of n random images (uniform in [lo, hi]) with labels c % classes.
data::Dataset random_dataset(int64_t n, int64_t c, int64_t h, int64_t w, float lo, float hi,
                             int64_t classes, uint64_t seed);

}  // namespace haq::test
