#pragma once
// Internal: oneDNN helpers shared by the engine and the kernel entry points.

#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "haq/core/error.h"
#include "haq/engine/kernels.h"

namespace haq::engine::detail {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

/// The process-wide CPU engine and a stream on it.
dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

/// Fused activation after a layer.
struct PostOp {
  enum class Kind { none, relu, clip } kind = Kind::none;
  float lo = 0, hi = 0;  ///< clip bounds
};

/// A convolution primitive with its weights (reordered to the primitive's
/// preferred layout) and bias memory. Activations are NHWC.
struct ConvPrim {
  dnnl::convolution_forward prim;
  dnnl::memory::desc src_md, dst_md;
  dnnl::memory weights, bias;
};

/// Builds a convolution: `src_type` f32, u8 or s8 (then `weights` are s8
/// levels and `output_scales` has one per output channel); weights are
/// canonical (OIHW, groups folded into O). Error(unsupported) with `where`
/// if oneDNN has no implementation.
ConvPrim make_conv(const ConvSpec& s, dt src_type, const void* weights,
                   const std::vector<float>& bias, const std::vector<float>& output_scales,
                   const PostOp& post, const std::string& where, dt dst_type = dt::f32);

/// A matmul primitive (rows x K) x (K x N) with weights and bias memory.
struct MatmulPrim {
  dnnl::matmul prim;
  dnnl::memory::desc src_md, dst_md;
  dnnl::memory weights, bias;
};

/// Builds a matmul; weights are canonical [N, K] (f32 or s8 levels).
MatmulPrim make_matmul(int64_t rows, int64_t k, int64_t n, dt src_type, const void* weights,
                       const std::vector<float>& bias, const std::vector<float>& output_scales,
                       const PostOp& post, const std::string& where);

}  // namespace haq::engine::detail
