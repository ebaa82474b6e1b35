// oneDNN primitive builders for the quantizable layers, and the int8
// convolution entry points used by tests.

#include "haq/engine/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <type_traits>
#include <unordered_map>

#include <fmt/format.h>

#include "dnnl_util.h"

namespace haq::engine {

bool int8_pairs_saturate() {
  // The ISA oneDNN dispatches to (DNNL_MAX_CPU_ISA can lower it): VNNI adds
  // u8 x s8 products straight into s32, older ISAs go through s16 pairs.
  static const bool saturate = [] {
    using I = dnnl::cpu_isa;
    const I isa = dnnl::get_effective_cpu_isa();
    return !(isa == I::avx2_vnni || isa == I::avx512_core_vnni || isa == I::avx512_core_bf16 ||
             isa == I::avx512_core_amx);
  }();
  return saturate;
}

}  // namespace haq::engine

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
                               const std::vector<Eltwise>& chain, int32_t src_zero_point = 0) {
  dnnl::primitive_attr attr;
  if (!output_scales.empty()) attr.set_output_scales(mask, output_scales);
  if (src_zero_point != 0) attr.set_zero_points(DNNL_ARG_SRC, 0, {src_zero_point});
  dnnl::post_ops po;
  int clips = 0;
  for (const Eltwise& e : chain) {
    switch (e.kind) {
      case Eltwise::Kind::relu: po.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f); break;
      case Eltwise::Kind::clip:
        ++clips;
        po.append_eltwise(1.f, dnnl::algorithm::eltwise_clip, e.alpha, e.beta);
        break;
      case Eltwise::Kind::linear: po.append_eltwise(1.f, dnnl::algorithm::eltwise_linear, e.alpha, e.beta); break;
    }
  }
  // oneDNN 2.6's AVX2 int8 kernels compute a second clip with the first
  // one's bounds (see post_op_chain); the plan never produces one.
  HAQ_ASSERT(clips <= 1);
  if (po.len() > 0) attr.set_post_ops(po);
  return attr;
}

[[noreturn]] void unsupported(const dnnl::error& e, const std::string& where, const char* what) {
  if (e.status == dnnl_unimplemented)
    fail(ErrorKind::unsupported, "", where, "oneDNN has no {} implementation for this layer", what);
  fail(ErrorKind::internal, "", where, "oneDNN {} failed: {}", what, e.what());
}

// The weights of a split layer: per output channel, its `cg` x `spatial`
// levels w become 2cg x spatial: first trunc(w/2), then w - trunc(w/2).
std::vector<int8_t> split_weights(const int8_t* w, int64_t c_out, int64_t cg, int64_t spatial) {
  std::vector<int8_t> out(static_cast<size_t>(c_out * 2 * cg * spatial));
  const int64_t per = cg * spatial;
  for (int64_t o = 0; o < c_out; ++o)
    for (int64_t i = 0; i < per; ++i) {
      const int v = w[o * per + i];
      const int half = v / 2;  // toward zero: |half| <= 63, |v - half| <= 64
      out[o * 2 * per + i] = static_cast<int8_t>(half);
      out[o * 2 * per + per + i] = static_cast<int8_t>(v - half);
    }
  return out;
}

}  // namespace


Int8Src plan_int8_src(int64_t reduce_per_group, int32_t max_code, int32_t max_abs_w, int32_t zero_point,
                      Int8Split mode) {
  Int8Src r;
  r.zero_point = zero_point;
  // One input channel per group (depthwise): no pairs of products to add.
  if (reduce_per_group <= 1) return r;
  if (mode == Int8Split::always) r.split = true;
  else r.split = int8_pairs_saturate() && 2 * max_code * max_abs_w > 32767;
  return r;
}

void duplicate_channels(const uint8_t* src, uint8_t* dst, int64_t pixels, int64_t groups, int64_t cg) {
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t g = 0; g < groups; ++g) {
      const uint8_t* in = src + (p * groups + g) * cg;
      uint8_t* out = dst + (p * groups + g) * 2 * cg;
      std::copy(in, in + cg, out);
      std::copy(in, in + cg, out + cg);
    }
}

ConvPrim make_conv(const ConvSpec& s, dt src_type, const void* weights,
                   const std::vector<float>& bias, const std::vector<float>& output_scales,
                   const std::vector<Eltwise>& post_ops, const std::string& where, dt dst_type,
                   const Int8Src& src8) {
  const bool int8 = src_type != dt::f32;
  const dt wei_type = int8 ? dt::s8 : dt::f32;
  const int64_t mult = src8.split ? 2 : 1;
  const int64_t c_in = s.c_in * mult, cg = c_in / s.groups;
  std::vector<int8_t> halves;
  if (src8.split) {
    halves = split_weights(static_cast<const int8_t*>(weights), s.c_out, s.c_in / s.groups,
                           s.kernel_h * s.kernel_w);
    weights = halves.data();
  }
  memory::dims wdims, user_wdims;
  tag user_wtag;
  if (s.groups > 1) {
    wdims = {s.groups, s.c_out / s.groups, cg, s.kernel_h, s.kernel_w};
    user_wtag = tag::goihw;
  } else {
    wdims = {s.c_out, c_in, s.kernel_h, s.kernel_w};
    user_wtag = tag::oihw;
  }
  memory::desc src_md({s.n, c_in, s.h, s.w}, src_type, tag::nhwc);
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
        d, make_attr(output_scales, output_scales.empty() ? 0 : 1 << 1, post_ops, src8.zero_point),
        cpu_engine());
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
                       const std::vector<Eltwise>& post_ops, const std::string& where, dt dst_type,
                       const Int8Src& src8) {
  const bool int8 = src_type != dt::f32;
  const dt wei_type = int8 ? dt::s8 : dt::f32;
  std::vector<int8_t> halves;
  if (src8.split) {
    halves = split_weights(static_cast<const int8_t*>(weights), n, k, 1);
    weights = halves.data();
    k *= 2;
  }
  memory::desc src_md({rows, k}, src_type, tag::ab);
  memory::desc wei_md({k, n}, wei_type, tag::any);
  memory::desc bias_md({1, n}, dt::f32, tag::ab);
  memory::desc dst_md({rows, n}, dst_type, tag::ab);
  MatmulPrim out;
  try {
    dnnl::matmul::desc d(src_md, wei_md, bias_md, dst_md);
    dnnl::matmul::primitive_desc pd(
        d, make_attr(output_scales, output_scales.empty() ? 0 : 1 << 1, post_ops, src8.zero_point),
        cpu_engine());
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

ActMatmulPrim make_act_matmul(int64_t g, int64_t m, int64_t k, int64_t n, bool int8, float scale,
                              const std::vector<Eltwise>& post_ops, const std::string& where,
                              const Int8Src& src8) {
  const int64_t kk = src8.split ? 2 * k : k;
  memory::desc src_md({g, m, kk}, int8 ? dt::u8 : dt::f32, tag::abc);
  memory::desc wei_md({g, kk, n}, int8 ? dt::s8 : dt::f32, tag::abc);
  memory::desc dst_md({g, m, n}, dt::f32, tag::abc);
  ActMatmulPrim out;
  try {
    dnnl::matmul::desc d(src_md, wei_md, dst_md);
    dnnl::matmul::primitive_desc pd(
        d, make_attr(int8 ? std::vector<float>{scale} : std::vector<float>{}, 0, post_ops, src8.zero_point),
        cpu_engine());
    out.prim = dnnl::matmul(pd);
    out.src_md = pd.src_desc();
    out.wei_md = pd.weights_desc();
    out.dst_md = pd.dst_desc();
  } catch (const dnnl::error& e) {
    unsupported(e, where, int8 ? "int8 matmul of two activations" : "fp32 matmul of two activations");
  }
  return out;
}

void split_rows(const int8_t* src, int8_t* dst, int64_t g, int64_t k, int64_t n) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < g; ++i) {
    const int8_t* in = src + i * k * n;
    int8_t* lo = dst + i * 2 * k * n;
    int8_t* hi = lo + k * n;
    for (int64_t j = 0; j < k * n; ++j) {
      const int v = in[j];
      const int half = v / 2;  // toward zero: |half| <= 64, |v - half| <= 64
      lo[j] = static_cast<int8_t>(half);
      hi[j] = static_cast<int8_t>(v - half);
    }
  }
}

}  // namespace haq::engine::detail

namespace haq::engine {

using namespace detail;

namespace {

// Runs the int8 convolution; `dst_type` s32 (no scales) or f32.
// How the test entry points present levels: u8 codes (signed levels plus the
// zero point of the narrowest signed quantizer holding them) and the plan.
struct Codes {
  std::vector<uint8_t> bytes;  // in the caller's order
  Int8Src src8;
};

Codes to_codes(const std::vector<int32_t>& levels, bool src_unsigned, const std::vector<int8_t>& w,
               int64_t reduce_per_group, Int8Split split) {
  int32_t max_abs = 0, max_w = 0;
  for (int32_t v : levels) max_abs = std::max(max_abs, v < 0 ? -v : v);
  for (int8_t v : w) max_w = std::max(max_w, std::abs(int32_t{v}));
  int32_t zp = 0;
  if (!src_unsigned) {
    int bits = 1;
    while (bits < 8 && max_abs > (1 << (bits - 1)) - (bits > 1 ? 1 : 0)) ++bits;
    zp = signed_zero_point(bits);
  }
  Codes c;
  c.bytes.resize(levels.size());
  int32_t max_code = 0;
  for (size_t i = 0; i < levels.size(); ++i) {
    const int32_t code = levels[i] + zp;
    HAQ_ASSERT(code >= 0 && code <= 255);
    c.bytes[i] = static_cast<uint8_t>(code);
    max_code = std::max(max_code, code);
  }
  c.src8 = plan_int8_src(reduce_per_group, max_code, max_w, zp, split);
  return c;
}

template <typename Out>
std::vector<Out> run_conv_int8(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                               bool src_unsigned, const std::vector<int8_t>& weight_levels,
                               const std::vector<float>& output_scales,
                               const std::vector<float>& bias_acc, const std::vector<Eltwise>& chain,
                               Int8Split split) {
  const int64_t in_elems = s.n * s.c_in * s.h * s.w;
  const int64_t oh = s.out_h(), ow = s.out_w();
  HAQ_ASSERT(static_cast<int64_t>(src_levels.size()) == in_elems);
  HAQ_ASSERT(static_cast<int64_t>(weight_levels.size()) ==
             s.c_out * (s.c_in / s.groups) * s.kernel_h * s.kernel_w);
  std::vector<float> bias = bias_acc.empty() ? std::vector<float>(s.c_out, 0.f) : bias_acc;
  constexpr dt dst_type = std::is_same_v<Out, int32_t> ? dt::s32 : std::is_same_v<Out, uint8_t> ? dt::u8 : dt::f32;
  // Levels NCHW -> u8 codes NHWC.
  std::vector<int32_t> nhwc(static_cast<size_t>(in_elems));
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t c = 0; c < s.c_in; ++c)
      for (int64_t y = 0; y < s.h; ++y)
        for (int64_t x = 0; x < s.w; ++x)
          nhwc[((n * s.h + y) * s.w + x) * s.c_in + c] = src_levels[((n * s.c_in + c) * s.h + y) * s.w + x];
  Codes codes = to_codes(nhwc, src_unsigned, weight_levels, s.c_in / s.groups, split);
  ConvPrim cp = make_conv(s, dt::u8, weight_levels.data(), bias, output_scales, chain, "conv_int8",
                          dst_type, codes.src8);
  std::vector<uint8_t> src_bytes = std::move(codes.bytes);
  if (codes.src8.split) {
    std::vector<uint8_t> twice(src_bytes.size() * 2);
    duplicate_channels(src_bytes.data(), twice.data(), s.n * s.h * s.w, s.groups, s.c_in / s.groups);
    src_bytes.swap(twice);
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
                                            bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                            Int8Split split) {
  return run_conv_int8<int32_t>(s, src_levels, src_unsigned, weight_levels, {}, {}, {}, split);
}

std::vector<float> conv_int8_f32(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                 bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                 const std::vector<float>& output_scales,
                                 const std::vector<float>& bias_acc, bool relu, Int8Split split) {
  std::vector<Eltwise> chain;
  if (relu) chain.push_back({Eltwise::Kind::relu, 0.f, 0.f});
  return run_conv_int8<float>(s, src_levels, src_unsigned, weight_levels, output_scales, bias_acc, chain,
                              split);
}

std::vector<float> conv_int8_chain(const ConvSpec& s, const std::vector<int32_t>& src_levels,
                                   bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                   const std::vector<float>& output_scales, const std::vector<float>& bias_acc,
                                   const std::vector<Eltwise>& chain, bool u8_output, Int8Split split) {
  if (!u8_output)
    return run_conv_int8<float>(s, src_levels, src_unsigned, weight_levels, output_scales, bias_acc, chain,
                                split);
  auto codes = run_conv_int8<uint8_t>(s, src_levels, src_unsigned, weight_levels, output_scales, bias_acc,
                                      chain, split);
  return std::vector<float>(codes.begin(), codes.end());
}

namespace {

template <typename Out>
std::vector<Out> run_matmul_int8(int64_t rows, int64_t k, int64_t n, const std::vector<int32_t>& src_levels,
                                 bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                 const std::vector<float>& output_scales, const std::vector<float>& bias_acc,
                                 const std::vector<Eltwise>& chain, Int8Split split) {
  HAQ_ASSERT(static_cast<int64_t>(src_levels.size()) == rows * k);
  HAQ_ASSERT(static_cast<int64_t>(weight_levels.size()) == n * k);
  constexpr dt dst_type = std::is_same_v<Out, int32_t> ? dt::s32 : std::is_same_v<Out, uint8_t> ? dt::u8 : dt::f32;
  Codes codes = to_codes(src_levels, src_unsigned, weight_levels, k, split);
  MatmulPrim mp = make_matmul(rows, k, n, dt::u8, weight_levels.data(),
                              bias_acc.empty() ? std::vector<float>(n, 0.f) : bias_acc, output_scales, chain,
                              "matmul_int8", dst_type, codes.src8);
  std::vector<uint8_t> src_bytes = std::move(codes.bytes);
  if (codes.src8.split) {
    std::vector<uint8_t> twice(src_bytes.size() * 2);
    duplicate_channels(src_bytes.data(), twice.data(), rows, 1, k);
    src_bytes.swap(twice);
  }
  std::vector<Out> out(static_cast<size_t>(rows * n));
  dnnl::memory src(mp.src_md, cpu_engine(), src_bytes.data());
  dnnl::memory dst(mp.dst_md, cpu_engine(), out.data());
  mp.prim.execute(cpu_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, mp.weights},
                                 {DNNL_ARG_BIAS, mp.bias}, {DNNL_ARG_DST, dst}});
  cpu_stream().wait();
  return out;
}

}  // namespace

std::vector<int32_t> matmul_int8_accumulators(int64_t rows, int64_t k, int64_t n,
                                              const std::vector<int32_t>& src_levels, bool src_unsigned,
                                              const std::vector<int8_t>& weight_levels, Int8Split split) {
  return run_matmul_int8<int32_t>(rows, k, n, src_levels, src_unsigned, weight_levels, {}, {}, {}, split);
}

std::vector<float> matmul_int8_chain(int64_t rows, int64_t k, int64_t n, const std::vector<int32_t>& src_levels,
                                     bool src_unsigned, const std::vector<int8_t>& weight_levels,
                                     const std::vector<float>& output_scales, const std::vector<float>& bias_acc,
                                     const std::vector<Eltwise>& chain, bool u8_output, Int8Split split) {
  if (!u8_output)
    return run_matmul_int8<float>(rows, k, n, src_levels, src_unsigned, weight_levels, output_scales, bias_acc,
                                  chain, split);
  auto codes = run_matmul_int8<uint8_t>(rows, k, n, src_levels, src_unsigned, weight_levels, output_scales,
                                        bias_acc, chain, split);
  return std::vector<float>(codes.begin(), codes.end());
}

std::vector<int32_t> act_matmul_int8_accumulators(int64_t g, int64_t m, int64_t k, int64_t n,
                                                  const std::vector<int32_t>& a_levels, bool a_unsigned,
                                                  const std::vector<int8_t>& b_levels, Int8Split split) {
  HAQ_ASSERT(static_cast<int64_t>(a_levels.size()) == g * m * k);
  HAQ_ASSERT(static_cast<int64_t>(b_levels.size()) == g * k * n);
  Codes codes = to_codes(a_levels, a_unsigned, b_levels, k, split);
  // f32 output at scale 1 holds every s32 accumulator these sizes reach exactly (< 2^24).
  ActMatmulPrim ap = make_act_matmul(g, m, k, n, true, 1.f, {}, "act_matmul_int8", codes.src8);
  std::vector<uint8_t> a = std::move(codes.bytes);
  std::vector<int8_t> b = b_levels;
  if (codes.src8.split) {
    std::vector<uint8_t> a2(a.size() * 2);
    duplicate_channels(a.data(), a2.data(), g * m, 1, k);
    a.swap(a2);
    std::vector<int8_t> b2(b.size() * 2);
    split_rows(b_levels.data(), b2.data(), g, k, n);
    b.swap(b2);
  }
  std::vector<float> out(static_cast<size_t>(g * m * n));
  dnnl::memory src(ap.src_md, cpu_engine(), a.data());
  dnnl::memory wei(ap.wei_md, cpu_engine(), b.data());
  dnnl::memory dst(ap.dst_md, cpu_engine(), out.data());
  ap.prim.execute(cpu_stream(), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}});
  cpu_stream().wait();
  std::vector<int32_t> acc(out.size());
  for (size_t i = 0; i < out.size(); ++i) acc[i] = static_cast<int32_t>(std::lround(out[i]));
  return acc;
}

}  // namespace haq::engine
