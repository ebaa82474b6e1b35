#pragma once
// Internal: oneDNN helpers shared by the engine and the kernel entry points.

#include <string>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "haq/core/error.h"
#include "haq/engine/kernels.h"
#include "haq/engine/plan.h"

namespace haq::engine::detail {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

/// The process-wide CPU engine and a stream on it.
dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

/// Fused activation after a layer or an elementwise op.
using PostOp = FusedActivation;

/// How a quantized layer's input reaches the int8 primitive (see Int8Split):
/// always u8, signed levels stored as level + zero_point (oneDNN subtracts
/// it exactly, in s32, padding included); `split`: input channels duplicated
/// within each group, the primitive holds the two halves of the weights.
struct Int8Src {
  int32_t zero_point = 0;
  bool split = false;
};

/// The zero point that makes the levels of a signed `bits`-bit quantizer u8.
inline int32_t signed_zero_point(int bits) { return int32_t{1} << (bits - 1); }

/// Int8Src for a layer reducing over `reduce_per_group` input channels of a
/// group, whose u8 codes reach `max_code` and weights `max_abs_w`.
Int8Src plan_int8_src(int64_t reduce_per_group, int32_t max_code, int32_t max_abs_w, int32_t zero_point,
                      Int8Split mode);

/// Copies `pixels` rows of groups x cg u8 codes to rows of groups x 2cg,
/// each group's cg codes twice: the input of a split layer.
void duplicate_channels(const uint8_t* src, uint8_t* dst, int64_t pixels, int64_t groups, int64_t cg);

/// A convolution primitive with its weights (reordered to the primitive's
/// preferred layout) and bias memory. Activations are NHWC.
struct ConvPrim {
  dnnl::convolution_forward prim;
  dnnl::memory::desc src_md, dst_md;
  dnnl::memory weights, bias;
};

/// Builds a convolution: `src_type` f32 or u8 (then `weights` are s8
/// levels, `output_scales` has one per output channel and `src8` says how
/// the input is laid out); weights are canonical (OIHW, groups folded into
/// O). `post_ops` is applied after scale and bias (a u8 `dst_type` stores
/// its result rounded half to even and saturated). The ConvSpec is the
/// layer's own; a split primitive's src_md has twice its channels.
/// Error(unsupported) with `where` if oneDNN has no implementation.
ConvPrim make_conv(const ConvSpec& s, dt src_type, const void* weights,
                   const std::vector<float>& bias, const std::vector<float>& output_scales,
                   const std::vector<Eltwise>& post_ops, const std::string& where, dt dst_type = dt::f32,
                   const Int8Src& src8 = {});

/// A matmul primitive (rows x K) x (K x N) with weights and bias memory.
struct MatmulPrim {
  dnnl::matmul prim;
  dnnl::memory::desc src_md, dst_md;
  dnnl::memory weights, bias;
};

/// Builds a matmul; weights are canonical [N, K] (f32 or s8 levels); a
/// split primitive's src_md is rows x 2K.
MatmulPrim make_matmul(int64_t rows, int64_t k, int64_t n, dt src_type, const void* weights,
                       const std::vector<float>& bias, const std::vector<float>& output_scales,
                       const std::vector<Eltwise>& post_ops, const std::string& where,
                       dt dst_type = dt::f32, const Int8Src& src8 = {});

/// A batched matmul of two activations (act_matmul layers): src [G, M, K]
/// (f32, or u8 codes with `src8.zero_point`), weights [G, K, N] given at run
/// time in plain row-major order (f32, or s8 levels), dst [G, M, N] f32 =
/// `scale` * sum (int8) then `post_ops`. A split primitive's K is 2K (see
/// split_rows and duplicate_channels).
struct ActMatmulPrim {
  dnnl::matmul prim;
  dnnl::memory::desc src_md, wei_md, dst_md;
};
ActMatmulPrim make_act_matmul(int64_t g, int64_t m, int64_t k, int64_t n, bool int8, float scale,
                              const std::vector<Eltwise>& post_ops, const std::string& where,
                              const Int8Src& src8 = {});

/// The second operand of a split act_matmul: per product, its K x N levels
/// become 2K x N, first the rows of trunc(v/2), then those of v - trunc(v/2).
void split_rows(const int8_t* src, int8_t* dst, int64_t g, int64_t k, int64_t n);

}  // namespace haq::engine::detail
