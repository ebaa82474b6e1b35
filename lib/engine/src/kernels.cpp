// oneDNN primitive builders for the quantizable layers, and the int8
// convolution entry points used by tests.

#include "haq/engine/kernels.h"

#include <type_traits>
#include <unordered_map>

#include <fmt/format.h>

#include "dnnl_util.h"

namespace haq::engine::detail {

using dnnl::memory;

dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

dnnl::stream& cpu_stream() {
  static dnnl::stream s(cpu_engine());
  return s;
}

namespace {

dnnl::primitive_attr make_attr(const std::vector<float>& output_scales, int mask,
                               const PostOp& post) {
  dnnl::primitive_attr attr;
  if (!output_scales.empty()) attr.set_output_scales(mask, output_scales);
  if (post.kind != PostOp::Kind::none) {
    dnnl::post_ops po;
    if (post.kind == PostOp::Kind::relu)
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    else
      po.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, post.lo, post.hi);
    attr.set_post_ops(po);
  }
  return attr;
}

[[noreturn]] void unsupported(const dnnl::error& e, const std::string& where, const char* what) {
  if (e.status == dnnl_unimplemented)
    fail(ErrorKind::unsupported, "", where, "oneDNN has no {} implementation for this layer", what);
  fail(ErrorKind::internal, "", where, "oneDNN {} failed: {}", what, e.what());
}

}  // namespace

ConvPrim make_conv(const ConvSpec& s, dt src_type, const void* weights,
                   const std::vector<float>& bias, const std::vector<float>& output_scales,
                   const PostOp& post, const std::string& where, dt dst_type) {
  const bool int8 = src_type != dt::f32;
  const dt wei_type = int8 ? dt::s8 : dt::f32;
  memory::dims wdims, user_wdims;
  tag user_wtag;
  if (s.groups > 1) {
    wdims = {s.groups, s.c_out / s.groups, s.c_in / s.groups, s.kernel_h, s.kernel_w};
    user_wtag = tag::goihw;
  } else {
    wdims = {s.c_out, s.c_in, s.kernel_h, s.kernel_w};
    user_wtag = tag::oihw;
  }
  memory::desc src_md({s.n, s.c_in, s.h, s.w}, src_type, tag::nhwc);
  memory::desc dst_md({s.n, s.c_out, s.out_h(), s.out_w()}, dst_type, tag::nhwc);
  memory::desc wei_md(wdims, wei_type, tag::any);
  memory::desc bias_md({s.c_out}, dt::f32, tag::x);
  ConvPrim out;
  try {
    dnnl::convolution_forward::desc d(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_md,
        bias_md, dst_md, {s.stride_h, s.stride_w}, {s.dilation_h - 1, s.dilation_w - 1},
        {s.pads[0], s.pads[1]}, {s.pads[2], s.pads[3]});
    dnnl::convolution_forward::primitive_desc pd(
        d, make_attr(output_scales, output_scales.empty() ? 0 : 1 << 1, post), cpu_engine());
    out.prim = dnnl::convolution_forward(pd);
    out.src_md = pd.src_desc();
    out.dst_md = pd.dst_desc();
    memory user_w({wdims, wei_type, user_wtag}, cpu_engine(), const_cast<void*>(weights));
    out.weights = memory(pd.weights_desc(), cpu_engine());
    dnnl::reorder(user_w, out.weights).execute(cpu_stream(), user_w, out.weights);
    out.bias = memory(bias_md, cpu_engine());
    std::copy(bias.begin(), bias.end(), static_cast<float*>(out.bias.get_data_handle()));
    cpu_stream().wait();
  } catch (const dnnl::error& e) {
    unsupported(e, where, int8 ? "int8 convolution" : "fp32 convolution");
  }
  return out;
}

MatmulPrim make_matmul(int64_t rows, int64_t k, int64_t n, dt src_type, const void* weights,
                       const std::vector<float>& bias, const std::vector<float>& output_scales,
                       const PostOp& post, const std::string& where) {
  const bool int8 = src_type != dt::f32;
  const dt wei_type = int8 ? dt::s8 : dt::f32;
  memory::desc src_md({rows, k}, src_type, tag::ab);
  memory::desc wei_md({k, n}, wei_type, tag::any);
  memory::desc bias_md({1, n}, dt::f32, tag::ab);
  memory::desc dst_md({rows, n}, dt::f32, tag::ab);
  MatmulPrim out;
  try {
    dnnl::matmul::desc d(src_md, wei_md, bias_md, dst_md);
    dnnl::matmul::primitive_desc pd(
        d, make_attr(output_scales, output_scales.empty() ? 0 : 1 << 1, post), cpu_engine());
    out.prim = dnnl::matmul(pd);
    out.src_md = pd.src_desc();
    out.dst_md = pd.dst_desc();
    // Canonical [N, K] row-major is the K x N matrix in "ba" order.
    memory user_w({{k, n}, wei_type, tag::ba}, cpu_engine(), const_cast<void*>(weights));
    out.weights = memory(pd.weights_desc(), cpu_engine());
    dnnl::reorder(user_w, out.weights).execute(cpu_stream(), user_w, out.weights);
    out.bias = memory(bias_md, cpu_engine());
    std::copy(bias.begin(), bias.end(), static_cast<float*>(out.bias.get_data_handle()));
    cpu_stream().wait();
  } catch (const dnnl::error& e) {
    unsupported(e, where, int8 ? "int8 matmul" : "fp32 matmul");
  }
  return out;
}

}  // namespace haq::engine::detail

namespace haq::engine {

using namespace detail;

namespace {

// Runs the int8 convolution; `dst_type` s32 (no scales) or f32.
template <typename Out>
std::vector<Out> run_conv_int8(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                               bool src_unsigned, const std::vector<int8_t>& weight_levels,
                               const std::vector<float>& output_scales,
                               const std::vector<float>& bias_acc, bool relu) {
  const int64_t in_elems = s.n * s.c_in * s.h * s.w;
  const int64_t oh = s.out_h(), ow = s.out_w();
  HAQ_ASSERT(static_cast<int64_t>(src_levels.size()) == in_elems);
  HAQ_ASSERT(static_cast<int64_t>(weight_levels.size()) ==
             s.c_out * (s.c_in / s.groups) * s.kernel_h * s.kernel_w);
  PostOp post;
  if (relu) post.kind = PostOp::Kind::relu;
  std::vector<float> bias = bias_acc.empty() ? std::vector<float>(s.c_out, 0.f) : bias_acc;
  constexpr bool s32 = std::is_same_v<Out, int32_t>;
  ConvPrim cp = make_conv(s, src_unsigned ? dt::u8 : dt::s8, weight_levels.data(), bias,
                          output_scales, post, "conv_int8", s32 ? dt::s32 : dt::f32);
  // Levels NCHW -> u8/s8 NHWC.
  std::vector<uint8_t> src_bytes(static_cast<size_t>(in_elems));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c_in; ++c)
      for (int64_t y = 0; y < s.h; ++y)
        for (int64_t x = 0; x < s.w; ++x) {
          int32_t v = src_levels[((n * s.c_in + c) * s.h + y) * s.w + x];
          src_bytes[((n * s.h + y) * s.w + x) * s.c_in + c] =
              src_unsigned ? static_cast<uint8_t>(v) : static_cast<uint8_t>(static_cast<int8_t>(v));
        }
  std::vector<Out> dst_nhwc(static_cast<size_t>(s.n * s.c_out * oh * ow));
  dnnl::memory src(cp.src_md, cpu_engine(), src_bytes.data());
  dnnl::memory dst(cp.dst_md, cpu_engine(), dst_nhwc.data());
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, cp.weights}, {DNNL_ARG_BIAS, cp.bias},
      {DNNL_ARG_DST, dst}};
  cp.prim.execute(cpu_stream(), args);
  cpu_stream().wait();
  std::vector<Out> out(dst_nhwc.size());
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c_out; ++c)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x)
          out[((n * s.c_out + c) * oh + y) * ow + x] = dst_nhwc[((n * oh + y) * ow + x) * s.c_out + c];
  return out;
}

}  // namespace

std::vector<int32_t> conv_int8_accumulators(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                            bool src_unsigned, const std::vector<int8_t>& weight_levels) {
  return run_conv_int8<int32_t>(s, src_levels, src_unsigned, weight_levels, {}, {}, false);
}

std::vector<float> conv_int8_f32(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                 bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                 const std::vector<float>& output_scales,
                                 const std::vector<float>& bias_acc, bool relu) {
  return run_conv_int8<float>(s, src_levels, src_unsigned, weight_levels, output_scales, bias_acc,
                              relu);
}

}  // namespace haq::engine
