#include "graph_builder.h"

#include <cmath>

namespace haq::test {

GraphBuilder::GraphBuilder(int64_t batch, std::vector<int64_t> input_shape, uint64_t seed)
    : rng_(seed) {
  g.batch = batch;
  g.opset = 13;
  std::vector<int64_t> s = {batch};
  s.insert(s.end(), input_shape.begin(), input_shape.end());
  g.inputs.push_back({"input", model::DType::f32, s});
  g.shapes["input"] = s;
  g.dtypes["input"] = model::DType::f32;
}

std::vector<float> GraphBuilder::random(size_t n, float sigma) {
  std::normal_distribution<float> d(0.f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng_);
  return v;
}

std::string GraphBuilder::add_node(const std::string& op, std::vector<std::string> inputs,
                                   std::vector<int64_t> out_shape) {
  model::Node n;
  n.name = op + "_" + std::to_string(counter_++);
  n.op = op;
  n.inputs = std::move(inputs);
  n.outputs = {n.name + "_out"};
  g.shapes[n.outputs[0]] = out_shape;
  g.dtypes[n.outputs[0]] = model::DType::f32;
  g.nodes.push_back(n);
  return n.outputs[0];
}

std::string GraphBuilder::conv(const std::string& x, int64_t c_out, int64_t k, int64_t stride,
                               int64_t pad, int64_t groups) {
  const auto in = g.shapes.at(x);
  model::Layer l;
  l.kind = model::LayerKind::conv;
  l.c_in = in[1], l.c_out = c_out, l.groups = groups;
  l.kernel_h = l.kernel_w = k;
  l.stride_h = l.stride_w = stride;
  l.pads = {pad, pad, pad, pad};
  l.in_h = in[2], l.in_w = in[3];
  l.out_h = (in[2] + 2 * pad - k) / stride + 1;
  l.out_w = (in[3] + 2 * pad - k) / stride + 1;
  l.depthwise = groups > 1 && groups == l.c_in && groups == c_out;
  const int64_t fan_in = (l.c_in / groups) * k * k;
  model::Tensor w, b;
  w.dims = {c_out, l.c_in / groups, k, k};
  w.f32 = random(static_cast<size_t>(c_out * fan_in), std::sqrt(2.f / fan_in));
  b.dims = {c_out};
  b.f32 = random(static_cast<size_t>(c_out), 0.1f);
  const std::string name = "conv_" + std::to_string(counter_);
  g.constants[name + ".w"] = w;
  g.constants[name + ".b"] = b;
  std::string out = add_node("Conv", {x, name + ".w", name + ".b"},
                             {in[0], c_out, l.out_h, l.out_w});
  auto& node = g.nodes.back();
  node.attrs["group"].i = groups;
  node.layer = static_cast<int>(g.layers.size());
  l.name = node.name;
  l.node = static_cast<int>(g.nodes.size() - 1);
  l.weight = name + ".w", l.bias = name + ".b", l.input = x, l.output = out;
  l.input_shape = in, l.output_shape = g.shapes.at(out);
  l.weight_params = c_out * fan_in, l.params = l.weight_params + c_out;
  l.macs = l.weight_params * l.out_h * l.out_w;
  g.layers.push_back(l);
  return out;
}

std::string GraphBuilder::gemm(const std::string& x, int64_t c_out) {
  const auto in = g.shapes.at(x);
  model::Layer l;
  l.kind = model::LayerKind::gemm;
  l.c_in = in[1], l.c_out = c_out;
  model::Tensor w, b;
  w.dims = {c_out, l.c_in};
  w.f32 = random(static_cast<size_t>(c_out * l.c_in), std::sqrt(1.f / l.c_in));
  b.dims = {c_out};
  b.f32 = random(static_cast<size_t>(c_out), 0.1f);
  const std::string name = "fc_" + std::to_string(counter_);
  g.constants[name + ".w"] = w;
  g.constants[name + ".b"] = b;
  std::string out = add_node("Gemm", {x, name + ".w", name + ".b"}, {in[0], c_out});
  auto& node = g.nodes.back();
  node.layer = static_cast<int>(g.layers.size());
  l.name = node.name;
  l.node = static_cast<int>(g.nodes.size() - 1);
  l.weight = name + ".w", l.bias = name + ".b", l.input = x, l.output = out;
  l.input_shape = in, l.output_shape = g.shapes.at(out);
  l.weight_params = c_out * l.c_in, l.params = l.weight_params + c_out, l.macs = l.weight_params;
  g.layers.push_back(l);
  return out;
}

std::string GraphBuilder::unary(const std::string& op, const std::string& x) {
  return add_node(op, {x}, g.shapes.at(x));
}

std::string GraphBuilder::add(const std::string& a, const std::string& b) {
  return add_node("Add", {a, b}, g.shapes.at(a));
}

std::string GraphBuilder::maxpool(const std::string& x, int64_t k, int64_t stride) {
  auto s = g.shapes.at(x);
  s[2] = (s[2] - k) / stride + 1;
  s[3] = (s[3] - k) / stride + 1;
  std::string out = add_node("MaxPool", {x}, s);
  auto& n = g.nodes.back();
  n.attrs["kernel_shape"].kind = model::Attribute::Kind::ints;
  n.attrs["kernel_shape"].ints = {k, k};
  n.attrs["strides"].kind = model::Attribute::Kind::ints;
  n.attrs["strides"].ints = {stride, stride};
  return out;
}

std::string GraphBuilder::global_avg_pool(const std::string& x) {
  auto s = g.shapes.at(x);
  s[2] = s[3] = 1;
  return add_node("GlobalAveragePool", {x}, s);
}

std::string GraphBuilder::flatten(const std::string& x) {
  auto s = g.shapes.at(x);
  int64_t rest = 1;
  for (size_t i = 1; i < s.size(); ++i) rest *= s[i];
  return add_node("Flatten", {x}, {s[0], rest});
}

model::Graph GraphBuilder::finish(const std::string& output) {
  g.outputs.push_back({output, model::DType::f32, g.shapes.at(output)});
  return g;
}

data::Dataset random_dataset(int64_t n, int64_t c, int64_t h, int64_t w, float lo, float hi,
                             int64_t classes, uint64_t seed) {
  data::Dataset d;
  d.source = "random";
  d.channels = c, d.height = h, d.width = w, d.num_classes = classes;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  d.images.resize(static_cast<size_t>(n * c * h * w));
  for (auto& x : d.images) x = u(rng);
  for (int64_t i = 0; i < n; ++i) d.labels.push_back(static_cast<int32_t>(i % classes));
  return d;
}

std::vector<float> conv_reference(const std::vector<float>& x, const model::Layer& l, const std::vector<float>& w,
                                  const std::vector<float>& b) {
  const int64_t N = l.input_shape[0], C = l.c_in, H = l.in_h, W = l.in_w, O = l.c_out;
  const int64_t cg = C / l.groups, og = O / l.groups;
  std::vector<float> y(static_cast<size_t>(N * O * l.out_h * l.out_w));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oy = 0; oy < l.out_h; ++oy)
        for (int64_t ox = 0; ox < l.out_w; ++ox) {
          double acc = b[o];
          for (int64_t ic = 0; ic < cg; ++ic)
            for (int64_t ky = 0; ky < l.kernel_h; ++ky)
              for (int64_t kx = 0; kx < l.kernel_w; ++kx) {
                const int64_t iy = oy * l.stride_h - l.pads[0] + ky, ix = ox * l.stride_w - l.pads[1] + kx;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                acc += x[((n * C + (o / og) * cg + ic) * H + iy) * W + ix] *
                       double(w[((o * cg + ic) * l.kernel_h + ky) * l.kernel_w + kx]);
              }
          y[((n * O + o) * l.out_h + oy) * l.out_w + ox] = static_cast<float>(acc);
        }
  return y;
}

}  // namespace haq::test
