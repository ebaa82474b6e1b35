#pragma once
/// \file
/// The engine's int8 convolution, exposed on its own so that tests can
/// compare it with a plain integer reference. The engine builds its
/// quantized Conv layers with exactly these primitives.

#include <array>
#include <cstdint>
#include <vector>

#include "haq/engine/plan.h"

namespace haq::engine {

/// Geometry of a 2-D convolution (ONNX semantics, NCHW logical order).
struct ConvSpec {
  int64_t n = 1, c_in = 1, h = 1, w = 1, c_out = 1, groups = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  std::array<int64_t, 4> pads{0, 0, 0, 0};  ///< top, left, bottom, right
  int64_t out_h() const { return (h + pads[0] + pads[2] - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1; }
  int64_t out_w() const { return (w + pads[1] + pads[3] - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1; }
};

/// How quantized inputs are presented to oneDNN's int8 kernels. On CPUs
/// without VNNI (AVX2, AVX-512 before Cascade Lake) oneDNN multiplies u8 by
/// s8 with vpmaddubsw, which adds pairs of products in saturating 16-bit
/// arithmetic: exact only while 2 * max(u8 code) * max|weight| <= 32767. A
/// layer beyond that is run "split": its input channels are duplicated and
/// its weights halved into two parts (w = trunc(w/2) + rest, each |part| <=
/// 64), so every pair fits; twice the MACs, the same integer result.
/// `automatic` splits only where this CPU needs it; `always` splits every
/// layer whose reduction could pair products (for tests on any CPU).
enum class Int8Split { automatic, always };

/// True if this CPU's int8 kernels add product pairs in saturating s16 (no VNNI).
bool int8_pairs_saturate();

/// oneDNN int8 convolution returning the s32 accumulators (N x C_out x OH x
/// OW). `src_levels` are N x C_in x H x W levels that fit u8 (src_unsigned)
/// or s8; `weight_levels` are C_out x C_in/groups x KH x KW.
/// Signed levels reach oneDNN as u8 codes level + 2^(bits-1) with a source
/// zero point (bits from the largest |level|), as the engine runs them.
std::vector<int32_t> conv_int8_accumulators(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                            bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                            Int8Split split = Int8Split::automatic);

/// The same convolution as the engine's quantized layer runs it: f32 out,
/// out[c] = output_scale[c] * (acc[c] + bias_acc[c]), then ReLU if `relu`.
std::vector<float> conv_int8_f32(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                 bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                 const std::vector<float>& output_scales,
                                 const std::vector<float>& bias_acc, bool relu,
                                 Int8Split split = Int8Split::automatic);

/// oneDNN int8 matmul (rows x K levels) x (K x N) returning the s32
/// accumulators, rows x N; `weight_levels` are canonical [N, K].
std::vector<int32_t> matmul_int8_accumulators(int64_t rows, int64_t k, int64_t n,
                                              const std::vector<int32_t>& src_levels, bool src_unsigned,
                                              const std::vector<int8_t>& weight_levels,
                                              Int8Split split = Int8Split::automatic);

/// oneDNN int8 batched matmul of two activations as the engine's act_matmul
/// layers run it: `g` products of A (m x k levels, u8 or signed) by B (k x n
/// s8 levels, row-major), returning the s32 accumulators g x m x n.
std::vector<int32_t> act_matmul_int8_accumulators(int64_t g, int64_t m, int64_t k, int64_t n,
                                                  const std::vector<int32_t>& a_levels, bool a_unsigned,
                                                  const std::vector<int8_t>& b_levels,
                                                  Int8Split split = Int8Split::automatic);

/// The int8 convolution with a post-op chain after out = output_scale[c] *
/// (acc + bias_acc[c]), as the engine's quantized layers run it: f32 output,
/// or with `u8_output` the u8 codes the chain's result is stored as
/// (rounded half to even, saturated), returned as floats. NCHW in and out.
std::vector<float> conv_int8_chain(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                   bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                   const std::vector<float>& output_scales, const std::vector<float>& bias_acc,
                                   const std::vector<Eltwise>& chain, bool u8_output,
                                   Int8Split split = Int8Split::automatic);

/// The same for the int8 matmul (rows x K levels, canonical [N, K] weights).
std::vector<float> matmul_int8_chain(int64_t rows, int64_t k, int64_t n, const std::vector<int32_t>& src_levels,
                                     bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                     const std::vector<float>& output_scales, const std::vector<float>& bias_acc,
                                     const std::vector<Eltwise>& chain, bool u8_output,
                                     Int8Split split = Int8Split::automatic);

}  // namespace haq::engine
