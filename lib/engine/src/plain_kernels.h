#pragma once
// The engine's fp32 kernels of ops that read and write plain (row-major)
// float tensors: reshapes, Transpose, Concat, Softmax, Pad, reductions,
// Gather, MatMul of two activations, ... (not a public header). Each is one
// function registered by its ONNX name in plain_kernels(); the engine gives
// it its inputs plain and takes its output plain. Ops with layout-aware or
// fused paths (layers, elementwise, pooling, LRN, BatchNormalization) live in
// engine.cpp. Adding an op: its definition in lib/model/src/op_defs.cpp and,
// when it reaches the engine, its kernel here.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "haq/core/error.h"
#include "haq/model/graph.h"

namespace haq::engine::detail {

/// One input of a kernel.
struct KernelInput {
  const float* data = nullptr;              ///< float values, or null (absent, or a non-float constant)
  std::vector<int64_t> dims;                ///< its shape
  const model::Tensor* constant = nullptr;  ///< set when the input is a constant
  bool present = false;
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : dims) n *= d;
    return n;
  }
};

/// A kernel's call: the node, its inputs, the output to fill.
struct KernelCall {
  const model::Node& node;
  int64_t opset;
  const std::string& source;  ///< the model file, for messages
  std::vector<KernelInput> in;
  const std::vector<int64_t>& out_dims;
  float* out;
  int64_t out_numel() const {
    int64_t n = 1;
    for (auto d : out_dims) n *= d;
    return n;
  }
  template <class... A>
  [[noreturn]] void fail(ErrorKind kind, fmt::format_string<A...> f, A&&... a) const {
    throw Error(kind, source, fmt::format("node '{}' ({})", node.name, node.op),
                fmt::format(f, std::forward<A>(a)...));
  }
  /// Input i as floats; an error naming the node if it is absent or not float.
  const KernelInput& floats(size_t i) const {
    if (i >= in.size() || !in[i].present) fail(ErrorKind::model, "input {} is missing", i);
    if (!in[i].data) fail(ErrorKind::unsupported, "input {} must be a float tensor", i);
    return in[i];
  }
};

using PlainKernel = void (*)(const KernelCall&);

/// The plain kernels, by ONNX op name.
const std::map<std::string, PlainKernel>& plain_kernels();

}  // namespace haq::engine::detail
