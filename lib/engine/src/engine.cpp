// The executor: Graph IR on oneDNN, fp32 and under a Policy.
//
// Activations are f32 buffers, one per graph value, either plain (row-major
// in the logical dims, NCHW for 4-D) or NHWC, which is what the convolution
// primitives read and write. Layout-agnostic ops (elementwise, pooling,
// per-channel ops) keep the layout; the rest first make their input plain.
// A quantizable layer with a_bits quantizes its input into u8/s8 levels
// (NHWC) and runs a oneDNN int8 primitive with f32 output.

#include "haq/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <set>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include <fmt/format.h>

#include "dnnl_util.h"
#include "plain_kernels.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/hash.h"
#include "haq/core/version.h"
#include "haq/engine/plan.h"
#include "haq/model/equalize.h"
#include "haq/model/ops.h"
#include "haq/quant/policy.h"
#include "haq/quant/rounding_cache.h"

namespace haq::engine {

using namespace detail;
using dnnl::memory;
using model::Graph;
using model::Layer;
using model::LayerKind;
using model::Node;

namespace {

// Adaptive rounding: at most this many input patches per layer (a stride over
// the calibration run's (sample, position) pairs), and at most this much
// memory for the quantized-input matrices of all layers (beyond it, a layer
// rounds on its fp32 inputs' Gram matrix only).
constexpr int64_t kRoundingPatches = 8192;
constexpr uint64_t kRoundingInputBytes = uint64_t{1} << 30;
// Which of the calibration run's (sample, position) pairs adaptive rounding
// keeps: a fixed hash of the pair's index (splitmix64's finaliser), not a
// plain stride, which would keep the same positions of every sample when
// it divides their count.
inline uint64_t patch_hash(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The largest a_bits whose quantized inputs adaptive rounding compensates.
constexpr int kRoundingMaxInputBits = 5;

enum class Op {
  layer, relu, clip, leaky_relu, sigmoid, tanh, hard_sigmoid, hard_swish, exp, sqrt, neg, abs,
  add, sub, mul, div, max, min,
  max_pool, avg_pool, global_avg_pool, global_max_pool, lrn, batchnorm,
  plain,  // a kernel of plain_kernels() (Step::kernel)
};

// The engine's kernel registry: the kernel of every op that reaches the
// engine, by the op registry's names (haq/model/ops.h; test_ops checks that
// every op the importer keeps has one): the layout-aware and fused kernels
// here, the plain ones in plain_kernels.cpp. Layers (Conv, Gemm, MatMul) run
// as Op::layer.
const std::map<std::string, Op>& kernel_registry() {
  static const std::map<std::string, Op> t = {
      {"Relu", Op::relu}, {"Clip", Op::clip}, {"LeakyRelu", Op::leaky_relu},
      {"Sigmoid", Op::sigmoid}, {"Tanh", Op::tanh}, {"HardSigmoid", Op::hard_sigmoid},
      {"HardSwish", Op::hard_swish}, {"Exp", Op::exp}, {"Sqrt", Op::sqrt}, {"Neg", Op::neg},
      {"Abs", Op::abs}, {"Add", Op::add}, {"Sum", Op::add}, {"Sub", Op::sub}, {"Mul", Op::mul}, {"Div", Op::div},
      {"Max", Op::max}, {"Min", Op::min}, {"MaxPool", Op::max_pool},
      {"AveragePool", Op::avg_pool}, {"GlobalAveragePool", Op::global_avg_pool},
      {"GlobalMaxPool", Op::global_max_pool}, {"LRN", Op::lrn}, {"BatchNormalization", Op::batchnorm},
  };
  return t;
}

bool is_unary(Op op) { return op >= Op::relu && op <= Op::abs; }
bool is_binary(Op op) { return op >= Op::add && op <= Op::min; }

int64_t numel(const std::vector<int64_t>& d) {
  return std::accumulate(d.begin(), d.end(), int64_t{1}, std::multiplies<int64_t>());
}

// An NHWC buffer whose memory equals the plain one (one channel, or 1x1).
bool nhwc_is_plain(const std::vector<int64_t>& d) {
  return d.size() != 4 || d[1] == 1 || d[2] * d[3] == 1;
}

struct Buf {
  std::vector<float> v;
  bool nhwc = false;
  // Instead of v: NHWC u8 codes of the consumers' activation quantizer,
  // written by a quantized producer (see Impl::lower).
  bool quantized = false;
  std::vector<uint8_t> q;
};

// One node, prepared.
struct Step {
  Op op = Op::plain;
  PlainKernel kernel = nullptr;           // Op::plain
  int node = -1;
  int layer = -1;
  std::vector<int> in;                    // value id per input, -1 if constant or absent
  std::vector<const model::Tensor*> cin;  // constant per input, or null
  int out = -1;                           // value id written
  PostOp post;                            // fused activation (layers and binary ops)
  bool skip = false;                      // fused into the step producing its input
};

void reorder_4d(const float* src, bool src_nhwc, float* dst, bool dst_nhwc,
                const std::vector<int64_t>& d) {
  memory::dims dims(d.begin(), d.end());
  memory s({dims, dt::f32, src_nhwc ? tag::nhwc : tag::nchw}, cpu_engine(),
           const_cast<float*>(src));
  memory t({dims, dt::f32, dst_nhwc ? tag::nhwc : tag::nchw}, cpu_engine(), dst);
  dnnl::reorder(s, t).execute(cpu_stream(), s, t);
  cpu_stream().wait();
}

// Elementwise loops, in parallel and vectorised (plain loops over restrict
// pointers: GCC does not vectorise the same loop written with a lambda).
// Their results do not depend on how the range is split.
// Relu or Clip, standalone or fused after a binary op (one formula for both).
template <PostOp::Kind K>
inline float post_of(float v, float lo, float hi) {
  if constexpr (K == PostOp::Kind::relu) return v > 0.f ? v : 0.f;
  else if constexpr (K == PostOp::Kind::clip) return std::min(std::max(v, lo), hi);
  else return v;
}

enum class Pointwise { relu, clip, leaky_relu };
template <Pointwise K>
void pointwise(const float* __restrict x, float* __restrict y, int64_t n, float lo, float hi, float alpha) {
#pragma omp parallel for simd schedule(static) if (n >= 16384)
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (K == Pointwise::relu) y[i] = post_of<PostOp::Kind::relu>(x[i], lo, hi);
    else if constexpr (K == Pointwise::clip) y[i] = post_of<PostOp::Kind::clip>(x[i], lo, hi);
    else y[i] = x[i] >= 0.f ? x[i] : alpha * x[i];
  }
}

// Quantizes n contiguous values into u8/s8 levels exactly as ActQuant::level
// does, in a form the compiler vectorizes (this loop runs over every
// quantized layer input of every batch).
// The codes are u8: level + zp (zp = 0 for unsigned quantizers).
void quantize_flat(const float* src, uint8_t* dst, int64_t n, const quant::ActQuant& aq, int32_t zp) {
  if (aq.binary()) {
    const auto one = static_cast<uint8_t>(zp + 1), minus_one = static_cast<uint8_t>(zp - 1);
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] >= 0.f ? one : minus_one;
    return;
  }
  const float inv = aq.inv_scale, lo = static_cast<float>(aq.lo), hi = static_cast<float>(aq.hi);
  const float magic = 12582912.f;  // 1.5 * 2^23: adding it rounds half to even
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float v = src[i] * inv;
    v = v >= lo ? v : lo;  // NaN -> lo, as ActQuant::level
    v = v > hi ? hi : v;
    v = (v + magic) - magic;
    dst[i] = static_cast<uint8_t>(static_cast<int32_t>(v) + zp);
  }
}

// True if the n values are all finite: no value has every exponent bit set
// (inf and NaN do). An OR reduction of 32-bit compares, vectorised with plain
// SSE2 (an unsigned max is not, and costs four times as much): about 0.1 ns
// a value in cache. This runs over every layer input of every batch.
bool finite_span(const float* x, int64_t n) {
  uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
  for (int64_t i = 0; i < n; ++i) {
    uint32_t b;
    std::memcpy(&b, x + i, sizeof b);
    bad |= (b & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
  }
  return bad == 0;
}

// The same in parallel chunks for large buffers. (One `parallel for simd`
// with an if clause is not vectorised as well: 4x slower when serial.)
bool all_finite(const float* x, int64_t n) {
  constexpr int64_t chunk = int64_t{1} << 16;
  if (n < 16 * chunk) return finite_span(x, n);
  const int64_t chunks = (n + chunk - 1) / chunk;
  int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static)
  for (int64_t c = 0; c < chunks; ++c) bad |= finite_span(x + c * chunk, std::min(chunk, n - c * chunk)) ? 0 : 1;
  return bad == 0;
}

const char* non_finite_name(float v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

}  // namespace

struct Engine::Impl {
  Graph g;
  EngineOptions opt;
  std::map<std::string, int> value_id;
  std::vector<std::vector<int64_t>> value_shape;
  std::vector<std::string> value_name;
  std::vector<Step> steps;
  int input_id = -1, output_id = -1;
  int64_t sample_in = 0, classes = 0;
  std::vector<int> last_use;  // per value, last step reading it
  std::vector<int> layer_step;  // per layer, its step
  std::vector<int> layer_in_value;
  std::vector<int> layer_in_b_value;  // act_matmul: the second operand's value, else -1

  // Calibration.
  bool calibrated = false;
  std::vector<quant::Histogram> hist;       // per layer input
  std::vector<quant::Histogram> hist_b;     // per act_matmul layer: its second operand
  std::vector<std::vector<float>> thresholds_b;  // per layer, per bits (index 1..8): clip of the second operand
  std::vector<std::vector<quant::ActQuant>> act_q;  // per layer, per a_bits: the input quantizer, once calib[li].thresholds[a_bits] >= 0
  std::vector<std::vector<double>> in_sum;  // per layer: sum of inputs per sample element (plain)
  // Under input_bias_correction: per layer, per a_bits 1..8, the sum of the
  // quantized inputs per sample element (as in_sum), from act_mean_pass.
  std::vector<std::vector<std::vector<double>>> in_sum_q;
  bool act_mean_pass = false;
  void accumulate_sum(std::vector<double>& sum, const Buf& b, int li, const quant::ActQuant* q);
  std::vector<double> in_count;
  // Per weighted layer under adaptive rounding: what it needs of the layer's
  // calibration inputs (quant::RoundingInputs), with the fp32 input, and per
  // a_bits 2..8 with the input quantized (when within kRoundingInputBytes).
  std::vector<quant::RoundingInputs> round_in;
  std::vector<std::map<int, quant::RoundingInputs>> round_in_q;
  std::vector<int64_t> patch_stride, patch_counter;  // per layer: keep every stride-th (sample, position)
  bool rounding_pass = false;  // calibrate()'s second pass: the quantized-input matrices
  RoundingStats rounding;
  // The rounding cache: what adaround did for each adaptively rounded entry
  // of qweights, the hash of the rounding inputs per (layer, a_key), and
  // whether an entry was computed since the cache file was last read or
  // written.
  std::map<std::tuple<int, int, int>, quant::AdaRoundStats> rounded;
  std::map<std::pair<int, int>, uint64_t> rounding_input_hash;
  bool rounding_dirty = false;
  // Entries of the cache file made from something else (another
  // calibration, model or options): written back on save as far as
  // rounding_cache_bound() allows, so that one run does not erase another's.
  std::vector<quant::RoundingCacheEntry> rounding_foreign;
  uint64_t rounding_key(int li, int w_bits, int a_key);
  uint64_t rounding_cache_bound() const;
  std::map<int, double> graph_input_min;
  std::vector<LayerCalibration> calib;
  bool calibrating = false;
  int64_t valid_rows = 0;  // samples of the current batch that are real

  // Numerics and observation (run_batch): where the batch's rows come from
  // (for messages naming the sample), the layer observer, and the layer after
  // which an observed run may stop (-1: run to the end).
  const data::Dataset* batch_data = nullptr;
  const int64_t* batch_indices = nullptr;  // dataset index per row, or null
  LayerObserver observer;
  int stop_after_layer = -1;
  // Samples of the dataset whose images (the array at `finite_images`) were
  // found finite, so that the run of a batch of them need not scan its input
  // again (a search runs the same samples hundreds of times).
  const float* finite_images = nullptr;
  size_t finite_images_size = 0;
  std::vector<bool> finite_sample;
  bool input_checked = false;  // the current batch's input is known finite
  std::vector<int> value_producer;  // per value, the step writing it (-1: the input); built on first use
  void check_finite(int value, const float* v, int64_t n, int layer);
  void for_each_batch(const data::Dataset& d, const std::vector<int64_t>& indices,
                      const std::function<void(const float* input, int64_t start, int64_t cnt)>& f);

  // Caches.
  std::map<int, ConvPrim> fconv;
  std::map<int, MatmulPrim> fmm;
  std::map<int, ActMatmulPrim> fam;  // fp32 act_matmul primitives
  std::vector<int8_t> bbuf, bbuf2;   // act_matmul: the second operand's levels (and their split rows)
  // Key: layer, w_bits, and rounding_a_key (the a_bits adaptive rounding
  // depends on, else 0).
  std::map<std::tuple<int, int, int>, quant::QuantizedWeights> qweights;
  std::map<std::tuple<int, int, int>, std::vector<float>> bias_shift;
  struct QPrim {
    ConvPrim conv;
    MatmulPrim mm;
    ActMatmulPrim am;          // act_matmul
    quant::ActQuant aq_b;      // act_matmul: the second operand's quantizer (signed, per tensor)
    quant::ActQuant aq;
    Int8Src src8;  // zero point of the u8 codes; split input
  };
  // Key: layer, w_bits, a_bits, and the output's encoding: (-1, 0) for f32,
  // else (consumer layer, its a_bits), whose quantizer the u8 output is in.
  std::map<std::tuple<int, int, int, int, int>, QPrim> qprims;
  std::vector<std::vector<int>> readers;  // per value: the steps reading it
  // The plan of the policy being run (lower()), and the key it was made for.
  QuantPlan plan;
  std::string plan_key;

  std::vector<Buf> vals;
  std::vector<std::vector<float>> pool;  // freed buffers, reused (no page faults per batch)
  std::vector<float> acquire(int64_t n) {
    size_t best = pool.size();
    for (size_t i = 0; i < pool.size(); ++i)
      if (pool[i].capacity() >= static_cast<size_t>(n) &&
          (best == pool.size() || pool[i].capacity() < pool[best].capacity()))
        best = i;
    std::vector<float> v;
    if (best < pool.size()) {
      v.swap(pool[best]);
      pool.erase(pool.begin() + static_cast<std::ptrdiff_t>(best));
    }
    v.resize(static_cast<size_t>(n));
    return v;
  }
  void release(std::vector<float>&& v) {
    if (v.capacity() > 0) pool.push_back(std::move(v));
    v = {};
  }
  void set_out(int id, std::vector<float>&& res, bool nhwc) {
    release(std::move(vals[id].v));
    vals[id].quantized = false;
    vals[id].v = std::move(res);
    vals[id].nhwc = nhwc;
  }
  std::vector<uint8_t> qbuf;  // quantized layer input
  std::vector<uint8_t> qbuf2;  // the same, channels duplicated, for a split layer
  // The codes in qbuf as the primitive reads them: qbuf, or for a split layer
  // its channels duplicated per group into qbuf2.
  const uint8_t* split_input(const Int8Src& src8, const uint8_t* codes, int64_t pixels, int64_t groups,
                             int64_t cg) {
    if (!src8.split) return codes;
    qbuf2.resize(static_cast<size_t>(pixels * groups * cg * 2));
    duplicate_channels(codes, qbuf2.data(), pixels, groups, cg);
    return qbuf2.data();
  }
  std::vector<float> tmp;

  Impl(Graph graph, EngineOptions o);
  void prepare();
  ConvSpec conv_spec(const Layer& l) const;
  const std::vector<int64_t>& shape(int id) const { return value_shape[id]; }

  // Helpers on buffers.
  Buf& plain(int id);
  const float* input_ptr(const Step& s, size_t i, bool& nhwc, std::vector<int64_t>& dims);

  std::vector<float> run_batch(const quant::Policy* p, const float* input);
  std::vector<float> run_all(const quant::Policy* p, const data::Dataset& d,
                             const std::vector<int64_t>& indices);
  // An fp32 run over the samples with `mode` (calibrating, rounding_pass)
  // set, cleared after it, also when it throws.
  void fp32_pass(bool& mode, const data::Dataset& d, const std::vector<int64_t>& indices) {
    mode = true;
    try {
      run_all(nullptr, d, indices);
    } catch (...) {
      mode = false;
      throw;
    }
    mode = false;
  }
  void exec(const Step& s, const quant::Policy* p);
  void exec_layer(const Step& s, const quant::Policy* p);
  void exec_unary(const Step& s);
  void exec_binary(const Step& s);
  void exec_pool(const Step& s);
  void exec_lrn(const Step& s);
  void exec_batchnorm(const Step& s);
  void exec_plain(const Step& s);
  void observe_layer_input(int layer, const Buf& b);
  int64_t gather_patches(int layer, const Buf& b, std::vector<float>& colT, int64_t& groups, int64_t& K);
  void accumulate_rounding_inputs(int layer, const Buf& b);
  int rounding_a_key(int li, int a_bits) const;

  const ConvPrim& fp32_conv(int li);
  const MatmulPrim& fp32_matmul(int li);
  const quant::QuantizedWeights& weights_q(int li, int w_bits, int a_bits);
  const std::vector<float>& shift(int li, int w_bits, int a_bits);
  quant::ActQuant act_quant(int li, int a_bits);
  quant::ActQuant act_quant_b(int li, int bits);
  void exec_act_matmul(const Step& s, const quant::Policy* p);
  const QPrim& qprim(const LayerPlan& lp);
  // Makes `plan` the plan of `p` (null: fp32), from the cache if unchanged;
  // `f32_outputs`: no direct u8 outputs (an observer sees every layer's output).
  const QuantPlan& lower(const quant::Policy* p, bool f32_outputs = false);
  std::set<std::string> nonneg_values(const std::set<std::string>& nonneg_inputs) const;
};

// ---- preparation -----------------------------------------------------------

Engine::Impl::Impl(Graph graph, EngineOptions o) : g(std::move(graph)), opt(o) {
  if (g.batch != opt.batch)
    fail(ErrorKind::internal, g.source, "", "graph imported at batch {} but the engine runs batch {}",
         g.batch, opt.batch);
  if (g.inputs.size() != 1)
    fail(ErrorKind::unsupported, g.source, "inputs",
         "the engine runs models with exactly one input; this one has {}", g.inputs.size());
  if (g.outputs.empty()) fail(ErrorKind::model, g.source, "outputs", "the model has no output");
  if (opt.act_quant == ActQuantMode::asymmetric && opt.calib == CalibMethod::kl)
    fail(ErrorKind::usage, "", "--act-quant",
         "asymmetric activations need --calib-method mse, minmax or percentile (kl calibrates one side)");
  // Cross-layer equalization rescales the weights once, before anything reads them.
  if (opt.equalize) model::equalize_cross_layer(g);
  if (g.inputs[0].dtype != model::DType::f32)
    fail(ErrorKind::unsupported, g.source, fmt::format("input '{}'", g.inputs[0].name),
         "element type {} is not supported; the engine runs float inputs",
         model::to_string(g.inputs[0].dtype));
  const model::ValueInfo& out0 = g.outputs[0];
  if (out0.dtype != model::DType::f32)
    fail(ErrorKind::unsupported, g.source, fmt::format("output '{}'", out0.name),
         "element type {} is not supported; the engine computes float outputs", model::to_string(out0.dtype));
  if (g.is_constant(out0.name))
    fail(ErrorKind::unsupported, g.source, fmt::format("output '{}'", out0.name),
         "the output does not depend on the input (it folds to a constant at import); the engine "
         "computes node outputs only");
  prepare();
}

ConvSpec Engine::Impl::conv_spec(const Layer& l) const {
  ConvSpec s;
  s.n = l.input_shape.at(0);
  s.c_in = l.c_in;
  s.h = l.in_h;
  s.w = l.in_w;
  s.c_out = l.c_out;
  s.groups = l.groups;
  s.kernel_h = l.kernel_h;
  s.kernel_w = l.kernel_w;
  s.stride_h = l.stride_h;
  s.stride_w = l.stride_w;
  s.dilation_h = l.dilation_h;
  s.dilation_w = l.dilation_w;
  s.pads = l.pads;
  return s;
}

void Engine::Impl::prepare() {
  auto id_of = [&](const std::string& name) {
    auto it = value_id.find(name);
    if (it != value_id.end()) return it->second;
    int id = static_cast<int>(value_name.size());
    value_id[name] = id;
    value_name.push_back(name);
    value_shape.push_back(g.shape(name));
    return id;
  };
  input_id = id_of(g.inputs[0].name);
  std::map<std::string, int> consumers;
  for (const auto& n : g.nodes)
    for (const auto& i : n.inputs)
      if (!i.empty()) consumers[i]++;
  std::set<std::string> outputs;
  for (const auto& o : g.outputs) outputs.insert(o.name);

  const auto& table = kernel_registry();
  std::map<std::string, int> producer_step;
  for (size_t ni = 0; ni < g.nodes.size(); ++ni) {
    const Node& n = g.nodes[ni];
    Step s;
    s.node = static_cast<int>(ni);
    s.layer = n.layer;
    const std::string where = fmt::format("node '{}' ({})", n.name, n.op);
    if (n.layer >= 0) {
      s.op = Op::layer;
    } else {
      auto it = table.find(n.op);
      auto pk = plain_kernels().find(n.op);
      if (it != table.end()) {
        s.op = it->second;
      } else if (pk != plain_kernels().end()) {
        s.op = Op::plain;
        s.kernel = pk->second;
      } else {
        fail(ErrorKind::unsupported, g.source, where, "the engine cannot run op '{}' (engine ops: {})", n.op,
             fmt::join(kernel_ops(), ", "));
      }
    }
    for (const auto& i : n.inputs) {
      if (i.empty() || g.is_constant(i)) {
        s.in.push_back(-1);
        s.cin.push_back(i.empty() ? nullptr : &g.constants.at(i));
      } else {
        if (!value_id.count(i))
          fail(ErrorKind::model, g.source, where, "input '{}' is not produced before this node", i);
        s.in.push_back(value_id.at(i));
        s.cin.push_back(nullptr);
      }
    }
    if (n.outputs.empty()) fail(ErrorKind::model, g.source, where, "node has no output");
    s.out = id_of(n.outputs[0]);
    if (s.op != Op::layer && s.op != Op::plain && !is_binary(s.op) && s.in[0] < 0)
      fail(ErrorKind::unsupported, g.source, where, "first input is a constant that was not folded");
    if (g.dtypes.count(n.outputs[0]) && g.dtypes.at(n.outputs[0]) != model::DType::f32)
      fail(ErrorKind::unsupported, g.source, where, "non-float activation ({}) is not supported",
           model::to_string(g.dtypes.at(n.outputs[0])));
    // Fuse an activation into the layer that is its only producer.
    const FusedActivation act = fusable_activation(n);
    if (act.kind != FusedActivation::Kind::none) {
      auto p = producer_step.find(n.inputs[0]);
      if (p != producer_step.end()) {
        Step& ls = steps[p->second];
        const std::string& mid = n.inputs[0];
        if ((ls.op == Op::layer || is_binary(ls.op)) && ls.post.kind == PostOp::Kind::none &&
            consumers[mid] == 1 && !outputs.count(mid)) {
          ls.post = act;
          ls.out = s.out;
          s.skip = true;
        }
      }
    }
    producer_step[n.outputs[0]] = static_cast<int>(steps.size());
    steps.push_back(s);
  }
  if (!value_id.count(g.outputs[0].name))
    fail(ErrorKind::model, g.source, "outputs", "output '{}' is not computed by any node",
         g.outputs[0].name);
  output_id = value_id.at(g.outputs[0].name);
  last_use.assign(value_name.size(), -1);
  for (size_t si = 0; si < steps.size(); ++si)
    for (int v : steps[si].in)
      if (v >= 0) last_use[v] = static_cast<int>(si);
  last_use[output_id] = static_cast<int>(steps.size());
  readers.assign(value_name.size(), {});
  for (size_t si = 0; si < steps.size(); ++si)
    if (!steps[si].skip)
      for (int v : steps[si].in)
        if (v >= 0) readers[v].push_back(static_cast<int>(si));
  sample_in = numel(value_shape[input_id]) / g.batch;
  classes = numel(value_shape[output_id]) / g.batch;

  layer_step.assign(g.layers.size(), -1);
  layer_in_value.assign(g.layers.size(), -1);
  layer_in_b_value.assign(g.layers.size(), -1);
  for (size_t si = 0; si < steps.size(); ++si)
    if (steps[si].op == Op::layer) {
      layer_step[steps[si].layer] = static_cast<int>(si);
      layer_in_value[steps[si].layer] = steps[si].in[0];
      const Layer& l = g.layers[steps[si].layer];
      if (l.kind == LayerKind::act_matmul) layer_in_b_value[steps[si].layer] = steps[si].in[1];
      if (steps[si].in[0] < 0)
        fail(ErrorKind::unsupported, g.source, fmt::format("layer '{}'", l.name),
             "the layer's input is a constant");
      if (l.kind == LayerKind::conv && l.input_shape.size() != 4)
        fail(ErrorKind::unsupported, g.source, fmt::format("layer '{}'", l.name),
             "only 2-D convolutions are supported (input rank {})", l.input_shape.size());
    }
  vals.resize(value_name.size());
  hist.assign(g.layers.size(), quant::Histogram());
  hist_b.assign(g.layers.size(), quant::Histogram());
  in_sum.assign(g.layers.size(), {});
  in_sum_q.assign(g.layers.size(), {});
  in_count.assign(g.layers.size(), 0);
}

std::set<std::string> Engine::Impl::nonneg_values(const std::set<std::string>& nonneg_inputs) const {
  std::set<std::string> nn = nonneg_inputs;
  auto const_nonneg = [&](const std::string& name) {
    const auto& t = g.constants.at(name);
    if (t.is_float()) return std::all_of(t.f32.begin(), t.f32.end(), [](float v) { return v >= 0; });
    return std::all_of(t.i64.begin(), t.i64.end(), [](int64_t v) { return v >= 0; });
  };
  // The registry's rule per op (model::output_nonneg), in topological order.
  for (const auto& n : g.nodes) {
    auto in_nn = [&](size_t i) {
      if (i >= n.inputs.size() || n.inputs[i].empty()) return true;
      const std::string& v = n.inputs[i];
      return nn.count(v) != 0 || (g.is_constant(v) && const_nonneg(v));
    };
    if (model::output_nonneg(n, in_nn))
      for (const auto& o : n.outputs) nn.insert(o);
  }
  return nn;
}

// ---- buffers -----------------------------------------------------------------

Buf& Engine::Impl::plain(int id) {
  Buf& b = vals[id];
  if (b.nhwc) {
    const auto& d = value_shape[id];
    if (!nhwc_is_plain(d)) {
      tmp.resize(b.v.size());
      reorder_4d(b.v.data(), true, tmp.data(), false, d);
      b.v.swap(tmp);
    }
    b.nhwc = false;
  }
  return b;
}

// ---- run ---------------------------------------------------------------------

std::vector<float> Engine::Impl::run_batch(const quant::Policy* p, const float* input) {
  const bool checked = input_checked;
  input_checked = false;
  if (p && p->layers.size() != g.layers.size())
    fail(ErrorKind::policy, "", "", "the policy has {} layers, the model {}", p->layers.size(),
         g.layers.size());
  // A run that ended in an error (a non-finite value below) may have left u8
  // codes marked as a value's current content: none is, at a batch's start.
  for (Buf& b : vals) b.quantized = false;
  Buf& in = vals[input_id];
  in.v.assign(input, input + numel(value_shape[input_id]));
  in.nhwc = false;
  // Non-finite numbers are refused where they enter (the input), where they
  // would be quantized or calibrated (every layer input) and where they would
  // be scored (the output): an error naming the sample, never a crash or a
  // silent accuracy.
  if (!checked) check_finite(input_id, in.v.data(), valid_rows * sample_in, -1);
  // Observed layers write f32, so that the observer sees their outputs.
  lower(p, observer != nullptr);
  if (value_producer.empty()) {
    value_producer.assign(value_name.size(), -1);
    for (size_t si = 0; si < steps.size(); ++si)
      if (!steps[si].skip) value_producer[steps[si].out] = static_cast<int>(si);
  }
  for (size_t si = 0; si < steps.size(); ++si) {
    const Step& s = steps[si];
    if (s.skip) continue;
    if (s.op == Op::layer && s.in[0] != input_id && !vals[s.in[0]].quantized) {
      // A quantized layer's output is finite by construction (s32 sums times
      // finite scales, plus a finite bias): only other producers are scanned.
      const int prod = value_producer[s.in[0]];
      const bool bounded = p && prod >= 0 && steps[prod].op == Op::layer && !p->layers[steps[prod].layer].fp32;
      if (!bounded)
        check_finite(s.in[0], vals[s.in[0]].v.data(), valid_rows * (numel(value_shape[s.in[0]]) / g.batch),
                     s.layer);
    }
    if (s.op == Op::layer && layer_in_b_value[s.layer] >= 0) {
      const int vb = s.in[1];  // act_matmul's second operand is never a quantized layer's direct output
      check_finite(vb, plain(vb).v.data(), valid_rows * (numel(value_shape[vb]) / g.batch), s.layer);
    }
    try {
      exec(s, p);
    } catch (const dnnl::error& e) {
      const Node& n = g.nodes[s.node];
      fail(ErrorKind::internal, g.source, fmt::format("node '{}' ({})", n.name, n.op),
           "oneDNN error: {}", e.what());
    }
    if (nhwc_is_plain(value_shape[s.out])) vals[s.out].nhwc = false;
    if (s.op == Op::layer && observer) {
      const Buf& o = vals[s.out];
      HAQ_ASSERT(!o.quantized);
      LayerOutput lo;
      lo.layer = static_cast<size_t>(s.layer);
      lo.data = o.v.data();
      lo.count = valid_rows * (numel(value_shape[s.out]) / g.batch);
      lo.nhwc = o.nhwc;
      observer(lo);
      if (s.layer == stop_after_layer) {
        // The rest is not needed: free every buffer, as the end of a run does.
        for (size_t v = 0; v < vals.size(); ++v)
          if (static_cast<int>(v) != input_id) {
            release(std::move(vals[v].v));
            vals[v].quantized = false;
          }
        return {};
      }
    }
    // Free what no later step reads.
    for (int v : s.in)
      if (v >= 0 && last_use[v] == static_cast<int>(si) && v != input_id) {
        release(std::move(vals[v].v));
        vals[v].quantized = false;  // its u8 buffer is kept for the next batch
      }
  }
  Buf& out = plain(output_id);
  check_finite(output_id, out.v.data(), valid_rows * classes, -2);
  return out.v;
}

// Error(data) for the first non-finite value among v[0..n), naming the
// dataset and the sample (or the batch row), and where it appeared: the input
// (layer -1), the input of layer `layer`, or the model's output (-2).
void Engine::Impl::check_finite(int value, const float* v, int64_t n, int layer) {
  if (all_finite(v, n)) return;
  int64_t k = 0;
  while (k < n && std::isfinite(v[k])) ++k;
  HAQ_ASSERT(k < n);
  const int64_t per = numel(value_shape[value]) / g.batch;
  const int64_t row = k / per;
  const std::string file = batch_data ? batch_data->source : g.source;
  const std::string where =
      batch_indices ? fmt::format("sample {}", batch_indices[row]) : fmt::format("batch row {}", row);
  const std::string what = non_finite_name(v[k]);
  const std::string model = g.source.empty() ? std::string("the model") : g.source;
  if (layer == -1)
    fail(ErrorKind::data, file, where,
         "the model input holds {} at element {} of the sample (as laid out for {}); every input "
         "value must be finite",
         what, k % per, model);
  // The node that wrote the value, for the message.
  std::string from;
  for (const Step& st : steps)
    if (!st.skip && st.out == value) {
      const Node& nd = g.nodes[st.node];
      from = fmt::format(", written by node '{}' ({}{})", nd.name, nd.op,
                         st.post.kind == PostOp::Kind::none ? "" : " with its fused activation");
    }
  const std::string place = layer >= 0 ? fmt::format("at the input of layer '{}'", g.layers[layer].name)
                                       : std::string("in the output");
  fail(ErrorKind::data, file, where,
       "non-finite activation {} {} of {} (value '{}'{}, element {} of the sample); the sample's "
       "input is finite, so the model overflows or divides by zero on it",
       what, place, model, value_name[value], from, k % per);
}

void Engine::Impl::exec(const Step& s, const quant::Policy* p) {
  if (s.op == Op::layer) return exec_layer(s, p);
  if (is_unary(s.op)) return exec_unary(s);
  if (is_binary(s.op)) return exec_binary(s);
  switch (s.op) {
    case Op::max_pool:
    case Op::avg_pool:
    case Op::global_avg_pool:
    case Op::global_max_pool: return exec_pool(s);
    case Op::lrn: return exec_lrn(s);
    case Op::batchnorm: return exec_batchnorm(s);
    case Op::plain: return exec_plain(s);
    default: fail(ErrorKind::internal, g.source, "", "op not dispatched");
  }
}

// Adds the batch's real rows of b (a layer input), quantized by q if given,
// to sum per sample element in plain (C, H, W) order.
void Engine::Impl::accumulate_sum(std::vector<double>& sum, const Buf& b, int li, const quant::ActQuant* q) {
  const auto& d = value_shape[layer_in_value[li]];
  const int64_t per = numel(d) / g.batch;
  if (sum.empty()) sum.assign(static_cast<size_t>(per), 0.0);
  auto v = [&](float x) { return q ? static_cast<double>(q->fake(x)) : static_cast<double>(x); };
  if (b.nhwc) {
    const int64_t C = d[1], H = d[2], W = d[3];
    for (int64_t r = 0; r < valid_rows; ++r)
      for (int64_t y = 0; y < H; ++y)
        for (int64_t x = 0; x < W; ++x)
          for (int64_t c = 0; c < C; ++c)
            sum[(c * H + y) * W + x] += v(b.v[((r * H + y) * W + x) * C + c]);
  } else {
    for (int64_t r = 0; r < valid_rows; ++r)
      for (int64_t i = 0; i < per; ++i) sum[i] += v(b.v[r * per + i]);
  }
}

void Engine::Impl::observe_layer_input(int li, const Buf& b) {
  if (act_mean_pass) {
    if (layer_in_b_value[li] < 0)
      for (int a = 1; a <= 8; ++a) {
        const quant::ActQuant q = act_quant(li, a);
        accumulate_sum(in_sum_q[li][a], b, li, &q);
      }
    return;
  }
  if (rounding_pass) {
    if (layer_in_b_value[li] < 0) accumulate_rounding_inputs(li, b);
    return;
  }
  const auto& d = value_shape[layer_in_value[li]];
  const int64_t per = numel(d) / g.batch;
  const int64_t n = valid_rows * per;
  hist[li].add(b.v.data(), n);
  if (layer_in_b_value[li] >= 0) {
    // act_matmul: no weights, so no bias correction; the second operand's range.
    const int vb = layer_in_b_value[li];
    hist_b[li].add(plain(vb).v.data(), valid_rows * (numel(value_shape[vb]) / g.batch));
    return;
  }
  if (opt.weight_rounding == WeightRounding::adaround) accumulate_rounding_inputs(li, b);
  if (!opt.bias_correction) return;
  accumulate_sum(in_sum[li], b, li, nullptr);
  in_count[li] += static_cast<double>(valid_rows);
}

// The batch's input patches of layer `li`, as `groups` matrices of K rows
// (for a convolution the patch of C_in/groups x KH x KW inputs of an output
// position in the weights' (ic, ky, kx) order, zeros where it covers padding;
// for Gemm/MatMul a row of c_in inputs) by R columns, one per kept patch:
// about one in patch_stride of the calibration run's (sample, position)
// pairs, chosen by patch_hash.
// Returns R.
int64_t Engine::Impl::gather_patches(int li, const Buf& b, std::vector<float>& colT, int64_t& groups, int64_t& K) {
  const Layer& l = g.layers[li];
  const auto& d = value_shape[layer_in_value[li]];
  const int64_t per = numel(d) / g.batch;
  groups = 1;
  K = l.c_in;
  int64_t P = 0;
  ConvSpec s;
  if (l.kind == LayerKind::conv) {
    s = conv_spec(l);
    groups = s.groups;
    K = s.c_in / s.groups * s.kernel_h * s.kernel_w;
    P = s.out_h() * s.out_w();
  } else {
    P = per / l.c_in;  // rows per sample
  }
  // The kept (sample, position) pairs of this batch.
  std::vector<std::pair<int64_t, int64_t>> kept;
  const int64_t stride = patch_stride[li];
  int64_t& counter = patch_counter[li];
  for (int64_t r = 0; r < valid_rows; ++r)
    for (int64_t p = 0; p < P; ++p, ++counter)
      if (stride == 1 || patch_hash(static_cast<uint64_t>(counter)) % static_cast<uint64_t>(stride) == 0)
        kept.push_back({r, p});
  const auto R = static_cast<int64_t>(kept.size());
  colT.assign(static_cast<size_t>(groups * K * R), 0.f);
  for (int64_t grp = 0; grp < groups; ++grp) {
    float* G = colT.data() + grp * K * R;
    if (l.kind == LayerKind::conv) {
      const int64_t cg = s.c_in / s.groups, H = s.h, W = s.w, C = s.c_in, ow = s.out_w();
      for (int64_t ic = 0; ic < cg; ++ic)
        for (int64_t ky = 0; ky < s.kernel_h; ++ky)
          for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
            float* row = G + ((ic * s.kernel_h + ky) * s.kernel_w + kx) * R;
            const int64_t c = grp * cg + ic;
            for (int64_t j = 0; j < R; ++j) {
              const auto [r, p] = kept[static_cast<size_t>(j)];
              const float* x = b.v.data() + r * per;
              const int64_t iy = (p / ow) * s.stride_h - s.pads[0] + ky * s.dilation_h;
              const int64_t ix = (p % ow) * s.stride_w - s.pads[1] + kx * s.dilation_w;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W)
                row[j] = b.nhwc ? x[(iy * W + ix) * C + c] : x[(c * H + iy) * W + ix];
            }
          }
    } else {
      for (int64_t j = 0; j < R; ++j) {
        const auto [r, p] = kept[static_cast<size_t>(j)];
        const float* x = b.v.data() + r * per;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t i = p * K + k;  // the plain element of the sample
          float v;
          if (!b.nhwc) {
            v = x[i];
          } else {  // a 4-D input held NHWC: plain element (c, y, x) sits at (y, x, c)
            const int64_t C = d[1], H = d[2], W = d[3];
            const int64_t c = i / (H * W), y = (i / W) % H, xx = i % W;
            v = x[(y * W + xx) * C + c];
          }
          G[k * R + j] = v;
        }
      }
    }
  }
  return R;
}

namespace {

// acc (K x K, double) += A B^T for A, B of K x R floats (oneDNN's sgemm).
void add_products(const float* A, const float* B, int64_t K, int64_t R, std::vector<float>& tmp, double* acc) {
  if (R == 0) return;
  tmp.resize(static_cast<size_t>(K * K));
  dnnl::sgemm('N', 'T', K, K, R, 1.f, A, R, B, R, 0.f, tmp.data(), K);
  for (int64_t i = 0; i < K * K; ++i) acc[i] += tmp[i];
}

}  // namespace

// Adds the batch's patches of layer `li` to what adaptive rounding needs:
// in calibrate()'s first pass their Gram matrix; in its second pass, per
// a_bits, the matrices of the quantized patches and their noise.
void Engine::Impl::accumulate_rounding_inputs(int li, const Buf& b) {
  if (rounding_pass && round_in_q[li].empty()) return;  // beyond the memory bound: fp32 inputs only
  std::vector<float> colT, tmp;
  int64_t groups = 1, K = 1;
  const int64_t R = gather_patches(li, b, colT, groups, K);
  const auto n = static_cast<size_t>(groups * K * K);
  if (!rounding_pass) {
    auto& in = round_in[li];
    if (in.gram.empty()) in.gram.assign(n, 0.0);
    for (int64_t grp = 0; grp < groups; ++grp) {
      const float* A = colT.data() + grp * K * R;
      add_products(A, A, K, R, tmp, in.gram.data() + grp * K * K);
    }
    return;
  }
  std::vector<float> colQ(colT.size()), noise(colT.size());
  for (auto& [a_bits, in] : round_in_q[li]) {
    const quant::ActQuant aq = act_quant(li, a_bits);
    for (size_t i = 0; i < colT.size(); ++i) {
      colQ[i] = aq.fake(colT[i]);
      noise[i] = colT[i] - colQ[i];
    }
    if (in.gram.empty()) in.gram.assign(n, 0.0), in.cross.assign(n, 0.0), in.noise.assign(n, 0.0);
    for (int64_t grp = 0; grp < groups; ++grp) {
      const size_t off = static_cast<size_t>(grp * K * R);
      add_products(colQ.data() + off, colQ.data() + off, K, R, tmp, in.gram.data() + grp * K * K);
      add_products(colQ.data() + off, noise.data() + off, K, R, tmp, in.cross.data() + grp * K * K);
      add_products(noise.data() + off, noise.data() + off, K, R, tmp, in.noise.data() + grp * K * K);
    }
  }
}

int Engine::Impl::rounding_a_key(int li, int a_bits) const {
  if (opt.weight_rounding != WeightRounding::adaround) return 0;
  if (static_cast<size_t>(li) >= round_in_q.size()) return 0;
  return round_in_q[li].count(a_bits) ? a_bits : 0;
}

const ConvPrim& Engine::Impl::fp32_conv(int li) {
  auto it = fconv.find(li);
  if (it != fconv.end()) return it->second;
  const Layer& l = g.layers[li];
  const auto& w = g.constants.at(l.weight).f32;
  const auto& b = g.constants.at(l.bias).f32;
  return fconv[li] = make_conv(conv_spec(l), dt::f32, w.data(), b, {},
                               post_op_chain(steps[layer_step[li]].post, {}), fmt::format("layer '{}'", l.name));
}

const MatmulPrim& Engine::Impl::fp32_matmul(int li) {
  auto it = fmm.find(li);
  if (it != fmm.end()) return it->second;
  const Layer& l = g.layers[li];
  const auto& w = g.constants.at(l.weight).f32;
  const auto& b = g.constants.at(l.bias).f32;
  const int64_t rows = numel(l.input_shape) / l.c_in;
  return fmm[li] = make_matmul(rows, l.c_in, l.c_out, dt::f32, w.data(), b, {},
                               post_op_chain(steps[layer_step[li]].post, {}), fmt::format("layer '{}'", l.name));
}

const quant::QuantizedWeights& Engine::Impl::weights_q(int li, int w_bits, int a_bits) {
  const int a_key = rounding_a_key(li, a_bits);
  auto key = std::make_tuple(li, w_bits, a_key);
  auto it = qweights.find(key);
  if (it != qweights.end()) return it->second;
  const Layer& l = g.layers[li];
  const auto& w = g.constants.at(l.weight).f32;
  const int64_t per = static_cast<int64_t>(w.size()) / l.c_out;
  quant::QuantizedWeights q = quant::quantize_weights(w.data(), l.c_out, per, w_bits, opt.weight_clip);
  if (opt.weight_rounding == WeightRounding::adaround && w_bits >= 2) {
    if (!calibrated || round_in[li].gram.empty())
      fail(ErrorKind::usage, g.source, fmt::format("layer '{}'", l.name),
           "adaptive rounding needs the engine calibrated first");
    const quant::RoundingInputs& in = a_key > 0 ? round_in_q[li].at(a_key) : round_in[li];
    const int64_t groups = static_cast<int64_t>(in.gram.size()) / (per * per);
    const auto t0 = std::chrono::steady_clock::now();
    const quant::AdaRoundStats st = quant::adaround(w.data(), in, groups, q, opt.adaround);
    rounding.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ++rounding.layer_bits;
    rounding.totals += st;
    rounded[key] = st;
    rounding_dirty = true;
  }
  return qweights[key] = std::move(q);
}

// What an adaptively rounded weight set is computed from: the layer's
// weights, its rounding inputs at a_key, w_bits, the weight clip, the
// adaround options and haq's version (its code).
uint64_t Engine::Impl::rounding_key(int li, int w_bits, int a_key) {
  auto hk = std::make_pair(li, a_key);
  auto it = rounding_input_hash.find(hk);
  if (it == rounding_input_hash.end()) {
    const quant::RoundingInputs& in = a_key > 0 ? round_in_q[li].at(a_key) : round_in[li];
    Hash64 h;
    for (const std::vector<double>* m : {&in.gram, &in.cross, &in.noise})
      h.bytes(m->data(), m->size() * sizeof(double));
    it = rounding_input_hash.emplace(hk, h.value()).first;
  }
  const Layer& l = g.layers[li];
  const auto& w = g.constants.at(l.weight).f32;
  const quant::AdaRoundOptions& a = opt.adaround;
  Hash64 h;
  h.str("haq rounding cache").str(version()).u64(quant::kRoundingCacheVersion);
  h.u64(static_cast<uint64_t>(l.c_out)).bytes(w.data(), w.size() * sizeof(float));
  h.u64(static_cast<uint64_t>(w_bits)).u64(static_cast<uint64_t>(a_key));
  h.u64(static_cast<uint64_t>(opt.weight_clip)).u64(static_cast<uint64_t>(a.iterations));
  h.f64(a.warmup).f64(a.lambda).f64(a.beta_start).f64(a.beta_end).f64(a.learning_rate);
  return h.u64(it->second).value();
}

// Mean output shift caused by quantizing the weights: by linearity,
// E[W x] - E[Wq x] = (W - Wq) applied to E[x], averaged over output positions.
const std::vector<float>& Engine::Impl::shift(int li, int w_bits, int a_bits) {
  const bool inputs = opt.input_bias_correction && !in_sum_q[li].empty() && !in_sum_q[li][a_bits].empty();
  // Without the input term the shift depends on a_bits only through the weights' rounding.
  auto key = std::make_tuple(li, w_bits, inputs ? 100 + a_bits : rounding_a_key(li, a_bits));
  auto it = bias_shift.find(key);
  if (it != bias_shift.end()) return it->second;
  const Layer& l = g.layers[li];
  std::vector<float> sh(static_cast<size_t>(l.c_out), 0.f);
  if (opt.bias_correction && in_count[li] > 0) {
    const auto& w = g.constants.at(l.weight).f32;
    std::vector<float> wq = quant::dequantize(weights_q(li, w_bits, a_bits));
    std::vector<double> mean(in_sum[li].size()), mean_q(in_sum[li].size());
    for (size_t i = 0; i < mean.size(); ++i) {
      mean[i] = in_sum[li][i] / in_count[li];
      mean_q[i] = inputs ? in_sum_q[li][a_bits][i] / in_count[li] : mean[i];
    }
    if (l.kind == LayerKind::conv) {
      const ConvSpec s = conv_spec(l);
      const int64_t oh = s.out_h(), ow = s.out_w(), cg = s.c_in / s.groups, og = s.c_out / s.groups;
      for (int64_t oc = 0; oc < s.c_out; ++oc) {
        const int64_t grp = oc / og;
        double acc = 0;
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t x = 0; x < ow; ++x)
            for (int64_t ic = 0; ic < cg; ++ic)
              for (int64_t ky = 0; ky < s.kernel_h; ++ky) {
                const int64_t iy = y * s.stride_h - s.pads[0] + ky * s.dilation_h;
                if (iy < 0 || iy >= s.h) continue;
                for (int64_t kx = 0; kx < s.kernel_w; ++kx) {
                  const int64_t ix = x * s.stride_w - s.pads[1] + kx * s.dilation_w;
                  if (ix < 0 || ix >= s.w) continue;
                  const int64_t wi = ((oc * cg + ic) * s.kernel_h + ky) * s.kernel_w + kx;
                  const int64_t xi = ((grp * cg + ic) * s.h + iy) * s.w + ix;
                  acc += w[wi] * mean[xi] - wq[wi] * mean_q[xi];
                }
              }
        sh[oc] = static_cast<float>(acc / (oh * ow));
      }
    } else {
      // Rows x c_in per sample: average the rows first.
      const int64_t rows = static_cast<int64_t>(mean.size()) / l.c_in;
      std::vector<double> m(static_cast<size_t>(l.c_in), 0.0), mq(static_cast<size_t>(l.c_in), 0.0);
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < l.c_in; ++k) {
          m[k] += mean[r * l.c_in + k] / rows;
          mq[k] += mean_q[r * l.c_in + k] / rows;
        }
      for (int64_t oc = 0; oc < l.c_out; ++oc) {
        double acc = 0;
        for (int64_t k = 0; k < l.c_in; ++k)
          acc += w[oc * l.c_in + k] * m[k] - wq[oc * l.c_in + k] * mq[k];
        sh[oc] = static_cast<float>(acc);
      }
    }
  }
  return bias_shift[key] = std::move(sh);
}

quant::ActQuant Engine::Impl::act_quant(int li, int a_bits) {
  if (!calibrated)
    fail(ErrorKind::usage, g.source, fmt::format("layer '{}'", g.layers[li].name),
         "the engine must be calibrated before running a quantized layer");
  LayerCalibration& c = calib[li];
  if (c.thresholds[a_bits] < 0) {
    quant::ActQuant& q = act_q[li][a_bits];
    if (opt.act_quant == ActQuantMode::asymmetric && !c.is_unsigned && a_bits >= 2) {
      q = quant::calibrate_affine(hist[li], a_bits, opt.calib);
      c.thresholds[a_bits] = static_cast<float>(q.hi) * q.scale;
    } else {
      c.thresholds[a_bits] = quant::calibrate_range(hist[li], a_bits, c.is_unsigned, opt.calib);
      q = quant::make_act_quant(c.thresholds[a_bits], a_bits, c.is_unsigned);
    }
  }
  return act_q[li][a_bits];
}

// The second operand of an act_matmul: signed, symmetric, per tensor, at
// the layer's w_bits (the policy's bits for that operand).
quant::ActQuant Engine::Impl::act_quant_b(int li, int bits) {
  if (!calibrated)
    fail(ErrorKind::usage, g.source, fmt::format("layer '{}'", g.layers[li].name),
         "the engine must be calibrated before running a quantized layer");
  auto& t = thresholds_b[li];
  if (t[bits] < 0) t[bits] = quant::calibrate_range(hist_b[li], bits, false, opt.calib);
  return quant::make_act_quant(t[bits], bits, false);
}

const Engine::Impl::QPrim& Engine::Impl::qprim(const LayerPlan& lp) {
  const int li = lp.layer;
  auto key = std::make_tuple(li, lp.w_bits, lp.a_bits, lp.output.codes ? lp.output.consumer : -1,
                             lp.output.codes ? lp.output.consumer_a_bits : 0);
  auto it = qprims.find(key);
  if (it != qprims.end()) return it->second;
  const Layer& l = g.layers[li];
  QPrim q;
  q.aq = lp.input.act;
  if (l.kind == LayerKind::act_matmul) {
    q.aq_b = lp.input_b.act;
    q.src8.zero_point = lp.input.zero_point;
    q.src8.split = lp.weight.split;
    q.am = make_act_matmul(g.batch * l.mats, l.rows, l.c_in, l.c_out, true, q.aq.scale * q.aq_b.scale,
                           lp.post_ops, fmt::format("layer '{}'", l.name), q.src8);
    return qprims[key] = std::move(q);
  }
  const auto& qw = weights_q(li, lp.w_bits, lp.a_bits);
  const auto& b = g.constants.at(l.bias).f32;
  const auto& sh = shift(li, lp.w_bits, lp.a_bits);
  // oneDNN v2 int8: dst = output_scale[c] * (acc + bias[c]), so the bias is
  // given in accumulator units.
  std::vector<float> scales(static_cast<size_t>(l.c_out)), bias_acc(static_cast<size_t>(l.c_out));
  for (int64_t c = 0; c < l.c_out; ++c) {
    scales[c] = q.aq.scale * qw.scales[c];
    bias_acc[c] = (b[c] + sh[c]) / scales[c];
  }
  q.src8.zero_point = lp.input.zero_point;
  q.src8.split = lp.weight.split;
  const std::string where = fmt::format("layer '{}'", l.name);
  if (l.kind == LayerKind::conv)
    q.conv = make_conv(conv_spec(l), dt::u8, qw.values.data(), bias_acc, scales, lp.post_ops, where,
                       lp.output.codes ? dt::u8 : dt::f32, q.src8);
  else
    q.mm = make_matmul(numel(l.input_shape) / l.c_in, l.c_in, l.c_out, dt::u8, qw.values.data(),
                       bias_acc, scales, lp.post_ops, where, dt::f32, q.src8);
  return qprims[key] = std::move(q);
}

// The lowering pass: what every layer computes under `p`, as values (plan.h).
// Output encodings follow choose_output_encoding (direct u8 outputs: a
// quantized conv writing its readers' codes saves writing the f32 output
// and the quantizing pass over it; the codes are the ones quantize_flat
// would write from the f32 output); the chains follow post_op_chain.
const QuantPlan& Engine::Impl::lower(const quant::Policy* p, bool f32_outputs) {
  std::string key = p ? quant::policy_key(*p) : std::string("fp32");
  if (calibrating) key += "/calibrating";
  if (f32_outputs) key += "/f32-outputs";
  if (key == plan_key && plan.layers.size() == g.layers.size()) return plan;
  QuantPlan np;
  np.layers.resize(g.layers.size());
  const bool direct = p && !calibrating && !f32_outputs && opt.direct_u8_outputs;
  auto quantized = [&](int li) { return p && !p->layers[li].fp32; };
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const int li = static_cast<int>(i);
    const Layer& l = g.layers[li];
    LayerPlan& lp = np.layers[li];
    lp.layer = li;
    lp.name = l.name;
    lp.kind = l.kind;
    lp.activation = steps[layer_step[li]].post;
    lp.quantized = quantized(li);
    if (!lp.quantized) continue;
    lp.w_bits = p->layers[li].w_bits;
    lp.a_bits = p->layers[li].a_bits;
    lp.input.act = act_quant(li, lp.a_bits);
    lp.input.zero_point = lp.input.act.code_zero_point();
    if (l.kind == LayerKind::act_matmul) {
      lp.input_b.act = act_quant_b(li, lp.w_bits);
      lp.weight.bits = lp.w_bits;
      lp.weight.max_abs_level = std::max(std::abs(lp.input_b.act.lo), std::abs(lp.input_b.act.hi));
      lp.weight.min_scale = lp.weight.max_scale = lp.input_b.act.scale;
      lp.weight.split = plan_int8_src(l.c_in, lp.input.act.hi + lp.input.zero_point, lp.weight.max_abs_level,
                                      lp.input.zero_point, opt.int8_split).split;
      continue;
    }
    const auto& qw = weights_q(li, lp.w_bits, lp.a_bits);
    lp.weight.bits = lp.w_bits;
    lp.weight.clip = opt.weight_clip;
    for (int8_t v : qw.values) lp.weight.max_abs_level = std::max(lp.weight.max_abs_level, std::abs(int32_t{v}));
    if (!qw.scales.empty()) {
      lp.weight.min_scale = *std::min_element(qw.scales.begin(), qw.scales.end());
      lp.weight.max_scale = *std::max_element(qw.scales.begin(), qw.scales.end());
    }
    // u8 codes always, split where this CPU's int8 kernels could saturate.
    const int64_t reduce = l.kind == LayerKind::conv ? l.c_in / l.groups : l.c_in;
    lp.weight.split = plan_int8_src(reduce, lp.input.act.hi + lp.input.zero_point, lp.weight.max_abs_level,
                                    lp.input.zero_point, opt.int8_split).split;
  }
  for (size_t i = 0; i < g.layers.size(); ++i) {
    LayerPlan& lp = np.layers[i];
    const Step& s = steps[layer_step[i]];
    if (direct) {
      auto is_qconv = [&](const Step& st) {
        return st.op == Op::layer && g.layers[st.layer].kind == LayerKind::conv && quantized(st.layer);
      };
      std::vector<OutputReader> rs;
      for (int r : readers[s.out]) {
        const Step& rst = steps[r];
        OutputReader o;
        o.quantized_conv_input = is_qconv(rst) && rst.in[0] == s.out;
        if (o.quantized_conv_input) {
          o.layer = rst.layer;
          o.a_bits = np.layers[rst.layer].a_bits;
          o.quantizer = np.layers[rst.layer].input.act;
        }
        rs.push_back(o);
      }
      lp.output = choose_output_encoding(is_qconv(s), s.out == output_id, rs);
      if (lp.output.codes)
        for (int r : readers[s.out]) np.layers[steps[r].layer].input.from_producer = true;
    }
    lp.post_ops = post_op_chain(lp.activation, lp.output);
  }
  plan = std::move(np);
  plan_key = std::move(key);
  return plan;
}

void Engine::Impl::exec_layer(const Step& s, const quant::Policy* p) {
  const int li = s.layer;
  const Layer& l = g.layers[li];
  if (l.kind == LayerKind::act_matmul) return exec_act_matmul(s, p);
  const int in_id = s.in[0];
  if (calibrating || rounding_pass || act_mean_pass) observe_layer_input(li, vals[in_id]);
  const bool quantized = p && !p->layers[li].fp32;
  Buf& out = vals[s.out];
  const int64_t out_n = numel(value_shape[s.out]);
  // A conv writing u8 codes for its readers (the plan) needs no f32 buffer.
  const LayerPlan& lp = plan.layers[li];
  const bool direct_u8 = quantized && lp.output.codes;
  if (!direct_u8) {
    if (out.v.capacity() < static_cast<size_t>(out_n)) set_out(s.out, acquire(out_n), false);
    out.v.resize(static_cast<size_t>(out_n));
  }
  auto& strm = cpu_stream();
  if (l.kind == LayerKind::conv) {
    const auto& d = value_shape[in_id];
    Buf& in = vals[in_id];
    if (!quantized) {
      const ConvPrim& cp = fp32_conv(li);
      const float* src = in.v.data();
      if (!in.nhwc && !nhwc_is_plain(d)) {
        tmp.resize(in.v.size());
        reorder_4d(in.v.data(), false, tmp.data(), true, d);
        src = tmp.data();
      }
      memory sm(cp.src_md, cpu_engine(), const_cast<float*>(src));
      memory dm(cp.dst_md, cpu_engine(), out.v.data());
      cp.prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, cp.weights},
                             {DNNL_ARG_BIAS, cp.bias}, {DNNL_ARG_DST, dm}});
    } else {
      const QPrim& q = qprim(lp);
      const int64_t N = d[0], C = d[1], H = d[2], W = d[3], HW = H * W;
      const quant::ActQuant aq = q.aq;
      const uint8_t* codes = nullptr;
      HAQ_ASSERT(in.quantized == lp.input.from_producer);
      if (in.quantized) {
        // Its producer already wrote our codes (the plan checked the quantizer).
        codes = split_input(q.src8, in.q.data(), N * HW, l.groups, C / l.groups);
      } else {
      // Quantize the input into NHWC levels.
      qbuf.resize(numel(d));
      const float* src = in.v.data();
      uint8_t* dst = qbuf.data();
      const bool src_nhwc = in.nhwc || nhwc_is_plain(d);
      const int32_t zp = q.src8.zero_point;
      if (src_nhwc) quantize_flat(src, dst, N * HW * C, aq, zp);
      else
#pragma omp parallel for
      for (int64_t n = 0; n < N; ++n) {
        for (int64_t i = 0; i < HW; ++i)
          for (int64_t c = 0; c < C; ++c) {
            const float x = src_nhwc ? src[(n * HW + i) * C + c] : src[(n * C + c) * HW + i];
            dst[(n * HW + i) * C + c] = static_cast<uint8_t>(aq.level(x) + zp);
          }
      }
      codes = split_input(q.src8, qbuf.data(), N * HW, l.groups, C / l.groups);
      }
      void* dst_data = out.v.data();
      if (direct_u8) {
        out.q.resize(static_cast<size_t>(out_n));
        dst_data = out.q.data();
        release(std::move(out.v));
        out.quantized = true;
      }
      memory sm(q.conv.src_md, cpu_engine(), const_cast<uint8_t*>(codes));
      memory dm(q.conv.dst_md, cpu_engine(), dst_data);
      q.conv.prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, q.conv.weights},
                                 {DNNL_ARG_BIAS, q.conv.bias}, {DNNL_ARG_DST, dm}});
    }
    strm.wait();
    out.nhwc = true;
    return;
  }
  // Gemm / MatMul: rows x c_in, plain.
  Buf& in = plain(in_id);
  if (!quantized) {
    const MatmulPrim& mp = fp32_matmul(li);
    memory sm(mp.src_md, cpu_engine(), in.v.data());
    memory dm(mp.dst_md, cpu_engine(), out.v.data());
    mp.prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, mp.weights},
                           {DNNL_ARG_BIAS, mp.bias}, {DNNL_ARG_DST, dm}});
  } else {
    const QPrim& q = qprim(lp);
    qbuf.resize(in.v.size());
    const quant::ActQuant aq = q.aq;
    const int64_t n = static_cast<int64_t>(in.v.size());
    const float* src = in.v.data();
    uint8_t* dst = qbuf.data();
    quantize_flat(src, dst, n, aq, q.src8.zero_point);
    const uint8_t* codes = split_input(q.src8, qbuf.data(), n / l.c_in, 1, l.c_in);
    memory sm(q.mm.src_md, cpu_engine(), const_cast<uint8_t*>(codes));
    memory dm(q.mm.dst_md, cpu_engine(), out.v.data());
    q.mm.prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, q.mm.weights},
                             {DNNL_ARG_BIAS, q.mm.bias}, {DNNL_ARG_DST, dm}});
  }
  strm.wait();
  out.nhwc = false;
}

// A x B of two activations, `mats` products per sample: fp32, or A as u8
// codes (with the zero point of a signed quantizer) and B as s8 levels, both
// per tensor, the f32 result = scale_A * scale_B * the s32 sums.
void Engine::Impl::exec_act_matmul(const Step& s, const quant::Policy* p) {
  const int li = s.layer;
  const Layer& l = g.layers[li];
  Buf& a = plain(s.in[0]);
  Buf& b = plain(s.in[1]);
  if (calibrating) observe_layer_input(li, a);
  const bool quantized = p && !p->layers[li].fp32;
  const int64_t G = g.batch * l.mats, M = l.rows, K = l.c_in, N = l.c_out;
  std::vector<float> res = acquire(G * M * N);
  auto& strm = cpu_stream();
  if (!quantized) {
    auto it = fam.find(li);
    if (it == fam.end())
      it = fam.emplace(li, make_act_matmul(G, M, K, N, false, 1.f, post_op_chain(s.post, {}),
                                           fmt::format("layer '{}'", l.name)))
               .first;
    const ActMatmulPrim& ap = it->second;
    memory sm(ap.src_md, cpu_engine(), a.v.data());
    memory wm(ap.wei_md, cpu_engine(), b.v.data());
    memory dm(ap.dst_md, cpu_engine(), res.data());
    ap.prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dm}});
  } else {
    const LayerPlan& lp = plan.layers[li];
    const QPrim& q = qprim(lp);
    qbuf.resize(static_cast<size_t>(G * M * K));
    quantize_flat(a.v.data(), qbuf.data(), G * M * K, q.aq, q.src8.zero_point);
    // Signed levels as s8: the u8 code of level + 0 is its two's complement byte.
    bbuf.resize(static_cast<size_t>(G * K * N));
    quantize_flat(b.v.data(), reinterpret_cast<uint8_t*>(bbuf.data()), G * K * N, q.aq_b, 0);
    const uint8_t* codes = split_input(q.src8, qbuf.data(), G * M, 1, K);
    const int8_t* levels = bbuf.data();
    if (q.src8.split) {
      bbuf2.resize(bbuf.size() * 2);
      split_rows(bbuf.data(), bbuf2.data(), G, K, N);
      levels = bbuf2.data();
    }
    memory sm(q.am.src_md, cpu_engine(), const_cast<uint8_t*>(codes));
    memory wm(q.am.wei_md, cpu_engine(), const_cast<int8_t*>(levels));
    memory dm(q.am.dst_md, cpu_engine(), res.data());
    q.am.prim.execute(strm, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dm}});
  }
  strm.wait();
  set_out(s.out, std::move(res), false);
}

void Engine::Impl::exec_unary(const Step& s) {
  const Node& n = g.nodes[s.node];
  Buf& in = vals[s.in[0]];
  const bool nhwc = in.nhwc;
  const int64_t cnt = static_cast<int64_t>(in.v.size());
  std::vector<float> res = acquire(cnt);
  const float* x = in.v.data();
  float* y = res.data();
  const float lo = n.get_float("min", -std::numeric_limits<float>::infinity());
  const float hi = n.get_float("max", std::numeric_limits<float>::infinity());
  const float alpha = n.get_float("alpha", s.op == Op::hard_sigmoid ? 0.2f : 0.01f);
  const float beta = n.get_float("beta", 0.5f);
  switch (s.op) {
    case Op::relu: pointwise<Pointwise::relu>(x, y, cnt, lo, hi, alpha); break;
    case Op::clip: pointwise<Pointwise::clip>(x, y, cnt, lo, hi, alpha); break;
    case Op::leaky_relu: pointwise<Pointwise::leaky_relu>(x, y, cnt, lo, hi, alpha); break;
    case Op::sigmoid: for (int64_t i = 0; i < cnt; ++i) y[i] = 1.f / (1.f + std::exp(-x[i])); break;
    case Op::tanh: for (int64_t i = 0; i < cnt; ++i) y[i] = std::tanh(x[i]); break;
    case Op::hard_sigmoid:
      for (int64_t i = 0; i < cnt; ++i) y[i] = std::clamp(alpha * x[i] + beta, 0.f, 1.f);
      break;
    case Op::hard_swish:
      for (int64_t i = 0; i < cnt; ++i) y[i] = x[i] * std::clamp(x[i] / 6.f + 0.5f, 0.f, 1.f);
      break;
    case Op::exp: for (int64_t i = 0; i < cnt; ++i) y[i] = std::exp(x[i]); break;
    case Op::sqrt: for (int64_t i = 0; i < cnt; ++i) y[i] = std::sqrt(x[i]); break;
    case Op::neg: for (int64_t i = 0; i < cnt; ++i) y[i] = -x[i]; break;
    case Op::abs: for (int64_t i = 0; i < cnt; ++i) y[i] = std::fabs(x[i]); break;
    default: HAQ_ASSERT(false);
  }
  set_out(s.out, std::move(res), nhwc);
}

namespace {

// Max and Min propagate NaN, as ONNX Runtime does: std::max(a, b) returns a
// NaN a but drops a NaN b, so the result would depend on the operand order.
inline float nan_max(float a, float b) { return a != a || b != b ? a + b : std::max(a, b); }
inline float nan_min(float a, float b) { return a != a || b != b ? a + b : std::min(a, b); }

float binop(Op op, float a, float b) {
  switch (op) {
    case Op::add: return a + b;
    case Op::sub: return a - b;
    case Op::mul: return a * b;
    case Op::div: return a / b;
    case Op::max: return nan_max(a, b);
    case Op::min: return nan_min(a, b);
    default: return 0;
  }
}

template <Op OP>
inline float binop_of(float a, float b) {
  if constexpr (OP == Op::add) return a + b;
  else if constexpr (OP == Op::sub) return a - b;
  else if constexpr (OP == Op::mul) return a * b;
  else if constexpr (OP == Op::div) return a / b;
  else if constexpr (OP == Op::max) return nan_max(a, b);
  else return nan_min(a, b);
}

// r = post(a op b) elementwise; a or b a single value broadcast when its stride is 0.
template <Op OP, int SA, int SB, PostOp::Kind K>
void binop_loop(const float* __restrict a, const float* __restrict b, float* __restrict r, int64_t n,
                float lo, float hi) {
#pragma omp parallel for simd schedule(static) if (n >= 16384)
  for (int64_t i = 0; i < n; ++i) r[i] = post_of<K>(binop_of<OP>(a[i * SA], b[i * SB]), lo, hi);
}

template <Op OP, int SA, int SB>
void binop_loop(const float* a, const float* b, float* r, int64_t n, const PostOp& post) {
  switch (post.kind) {
    case PostOp::Kind::none: return binop_loop<OP, SA, SB, PostOp::Kind::none>(a, b, r, n, 0, 0);
    case PostOp::Kind::relu: return binop_loop<OP, SA, SB, PostOp::Kind::relu>(a, b, r, n, 0, 0);
    case PostOp::Kind::clip:
      return binop_loop<OP, SA, SB, PostOp::Kind::clip>(a, b, r, n, post.lo, post.hi);
  }
}

// The fused post-op of a binary step on the paths without a fused loop.
void apply_post(float* r, int64_t n, const PostOp& post) {
  if (post.kind == PostOp::Kind::none) return;
  const float lo = post.lo, hi = post.hi;
  const bool relu = post.kind == PostOp::Kind::relu;
#pragma omp parallel for simd schedule(static) if (n >= 16384)
  for (int64_t i = 0; i < n; ++i)
    r[i] = relu ? post_of<PostOp::Kind::relu>(r[i], lo, hi) : post_of<PostOp::Kind::clip>(r[i], lo, hi);
}

// Calls body(std::integral_constant<Op, op>{}): the op is chosen once, so
// the loops in body are specialised and vectorised.
template <class Body>
void with_binop(Op op, Body&& body) {
  switch (op) {
    case Op::add: return body(std::integral_constant<Op, Op::add>{});
    case Op::sub: return body(std::integral_constant<Op, Op::sub>{});
    case Op::mul: return body(std::integral_constant<Op, Op::mul>{});
    case Op::div: return body(std::integral_constant<Op, Op::div>{});
    case Op::max: return body(std::integral_constant<Op, Op::max>{});
    case Op::min: return body(std::integral_constant<Op, Op::min>{});
    default: HAQ_ASSERT(false);
  }
}

// Right-aligns `d` to `rank` dims.
std::vector<int64_t> align(const std::vector<int64_t>& d, size_t rank) {
  std::vector<int64_t> r(rank - d.size(), 1);
  r.insert(r.end(), d.begin(), d.end());
  return r;
}

}  // namespace

void Engine::Impl::exec_binary(const Step& s) {
  const Node& n = g.nodes[s.node];
  if (n.inputs.size() != 2)
    fail(ErrorKind::unsupported, g.source, fmt::format("node '{}' ({})", n.name, n.op),
         "expected 2 inputs, got {}", n.inputs.size());
  const auto& od = value_shape[s.out];
  const int64_t cnt = numel(od);
  std::vector<float> res = acquire(cnt);
  auto dims_of = [&](int i) {
    return s.in[i] >= 0 ? value_shape[s.in[i]] : s.cin[i]->dims;
  };
  auto fdata = [&](int i) -> const std::vector<float>& {
    if (s.in[i] >= 0) return vals[s.in[i]].v;
    if (!s.cin[i]->is_float())
      fail(ErrorKind::unsupported, g.source, fmt::format("node '{}' ({})", n.name, n.op),
           "integer constant operand");
    return s.cin[i]->f32;
  };
  const auto da = dims_of(0), db = dims_of(1);
  // Fast paths: same shape and layout; a scalar; a per-channel constant.
  if (s.in[0] >= 0 && s.in[1] >= 0 && da == db && da == od &&
      vals[s.in[0]].nhwc == vals[s.in[1]].nhwc) {
    const float* a = vals[s.in[0]].v.data();
    const float* b = vals[s.in[1]].v.data();
    float* r = res.data();
    with_binop(s.op, [&](auto op) { binop_loop<decltype(op)::value, 1, 1>(a, b, r, cnt, s.post); });
    set_out(s.out, std::move(res), vals[s.in[0]].nhwc);
    return;
  }
  for (int full = 0; full < 2; ++full) {
    const int other = 1 - full;
    if (s.in[full] < 0 || dims_of(full) != od || s.in[other] >= 0) continue;
    const auto& c = fdata(other);
    const float* x = vals[s.in[full]].v.data();
    const bool nhwc = vals[s.in[full]].nhwc;
    auto f = [&](float v, float k) { return full == 0 ? binop(s.op, v, k) : binop(s.op, k, v); };
    if (c.size() == 1) {
      const float k = c[0];
      float* r = res.data();
      with_binop(s.op, [&](auto op) {
        constexpr Op o = decltype(op)::value;
        if (full == 0) binop_loop<o, 1, 0>(x, &k, r, cnt, s.post);
        else binop_loop<o, 0, 1>(&k, x, r, cnt, s.post);
      });
      set_out(s.out, std::move(res), nhwc);
      return;
    }
    const auto& cd = dims_of(other);
    if (od.size() == 4 && cd.size() <= 4 &&
        align(cd, 4) == std::vector<int64_t>{1, od[1], 1, 1}) {
      const int64_t N = od[0], C = od[1], HW = od[2] * od[3];
      if (nhwc) {
        for (int64_t i = 0; i < N * HW; ++i)
          for (int64_t ch = 0; ch < C; ++ch) res[i * C + ch] = f(x[i * C + ch], c[ch]);
      } else {
        for (int64_t nn = 0; nn < N; ++nn)
          for (int64_t ch = 0; ch < C; ++ch)
            for (int64_t i = 0; i < HW; ++i) {
              const int64_t k = (nn * C + ch) * HW + i;
              res[k] = f(x[k], c[ch]);
            }
      }
      apply_post(res.data(), cnt, s.post);
      set_out(s.out, std::move(res), nhwc);
      return;
    }
  }
  // General numpy broadcasting on plain data.
  if (s.in[0] >= 0) plain(s.in[0]);
  if (s.in[1] >= 0) plain(s.in[1]);
  const auto& a = fdata(0);
  const auto& b = fdata(1);
  const size_t rank = od.size();
  const auto aa = align(da, rank), ab = align(db, rank);
  std::vector<int64_t> sa(rank, 0), sb(rank, 0);
  int64_t ka = 1, kb = 1;
  for (size_t i = rank; i-- > 0;) {
    sa[i] = aa[i] == 1 ? 0 : ka;
    sb[i] = ab[i] == 1 ? 0 : kb;
    ka *= aa[i];
    kb *= ab[i];
  }
  std::vector<int64_t> idx(rank, 0);
  for (int64_t i = 0; i < cnt; ++i) {
    int64_t oa = 0, ob = 0;
    for (size_t k = 0; k < rank; ++k) oa += idx[k] * sa[k], ob += idx[k] * sb[k];
    res[i] = binop(s.op, a[oa], b[ob]);
    for (size_t k = rank; k-- > 0;) {
      if (++idx[k] < od[k]) break;
      idx[k] = 0;
    }
  }
  apply_post(res.data(), cnt, s.post);
  set_out(s.out, std::move(res), false);
}

void Engine::Impl::exec_pool(const Step& s) {
  const Node& n = g.nodes[s.node];
  const std::string where = fmt::format("node '{}' ({})", n.name, n.op);
  const auto& d = value_shape[s.in[0]];
  const auto& od = value_shape[s.out];
  // 1-, 2- and 3-D windows; only 4-D buffers can be NHWC.
  if (d.size() < 3 || d.size() > 5)
    fail(ErrorKind::unsupported, g.source, where, "only 1-, 2- and 3-D pooling is supported (input rank {})",
         d.size());
  const size_t sp = d.size() - 2;
  Buf& in = vals[s.in[0]];
  const bool nhwc = in.nhwc && d.size() == 4;
  if (in.nhwc && !nhwc) plain(s.in[0]);
  memory::dims kernel(sp), strides(sp, 1), dil(sp, 0), pl(sp, 0), pr(sp, 0);
  dnnl::algorithm alg;
  if (s.op == Op::global_avg_pool || s.op == Op::global_max_pool) {
    for (size_t k = 0; k < sp; ++k) kernel[k] = d[2 + k];
    alg = s.op == Op::global_avg_pool ? dnnl::algorithm::pooling_avg_include_padding
                                      : dnnl::algorithm::pooling_max;
  } else {
    // The importer writes explicit kernel_shape, strides, pads (and dilations
    // for MaxPool) with auto_pad = NOTSET (graph.h).
    const auto k = n.get_ints("kernel_shape");
    const auto st = n.get_ints("strides", std::vector<int64_t>(sp, 1));
    const auto dl = n.get_ints("dilations", std::vector<int64_t>(sp, 1));
    const auto p = n.get_ints("pads", std::vector<int64_t>(2 * sp, 0));
    if (k.size() != sp || st.size() != sp || dl.size() != sp || p.size() != 2 * sp)
      fail(ErrorKind::internal, g.source, where, "window attributes do not match {} spatial dims", sp);
    for (size_t ax = 0; ax < sp; ++ax) {
      kernel[ax] = k[ax];
      strides[ax] = st[ax];
      dil[ax] = dl[ax] - 1;
      pl[ax] = p[ax];
      // Right padding from the output size (covers ceil_mode). A ceil_mode
      // window that would start in the right padding is dropped by ONNX's
      // output size already, so this is at most the window extent - 1.
      pr[ax] = std::max<int64_t>(0, (od[2 + ax] - 1) * st[ax] + (k[ax] - 1) * dl[ax] + 1 - d[2 + ax] - p[ax]);
    }
    if (s.op == Op::max_pool)
      alg = dnnl::algorithm::pooling_max;
    else
      alg = n.get_int("count_include_pad", 0) ? dnnl::algorithm::pooling_avg_include_padding
                                              : dnnl::algorithm::pooling_avg_exclude_padding;
  }
  static const tag plain_tag[] = {tag::ncw, tag::nchw, tag::ncdhw};
  const tag t = nhwc ? tag::nhwc : plain_tag[sp - 1];
  memory::desc src_md(memory::dims(d.begin(), d.end()), dt::f32, t);
  memory::desc dst_md(memory::dims(od.begin(), od.end()), dt::f32, t);
  dnnl::pooling_v2_forward::desc pdsc(dnnl::prop_kind::forward_inference, alg, src_md, dst_md,
                                      strides, kernel, dil, pl, pr);
  dnnl::pooling_v2_forward::primitive_desc pd(pdsc, cpu_engine());
  std::vector<float> res = acquire(numel(od));
  memory sm(src_md, cpu_engine(), in.v.data());
  memory dm(dst_md, cpu_engine(), res.data());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, sm}, {DNNL_ARG_DST, dm}};
  memory ws;
  if (pd.workspace_desc().get_size() > 0) {
    ws = memory(pd.workspace_desc(), cpu_engine());
    args[DNNL_ARG_WORKSPACE] = ws;
  }
  dnnl::pooling_v2_forward(pd).execute(cpu_stream(), args);
  cpu_stream().wait();
  set_out(s.out, std::move(res), nhwc);
}

void Engine::Impl::exec_lrn(const Step& s) {
  const Node& n = g.nodes[s.node];
  const auto& d = value_shape[s.in[0]];
  if (d.size() != 4)
    fail(ErrorKind::unsupported, g.source, fmt::format("node '{}' (LRN)", n.name), "expected 4-D input");
  Buf& in = vals[s.in[0]];
  const tag t = in.nhwc ? tag::nhwc : tag::nchw;
  memory::desc md({d[0], d[1], d[2], d[3]}, dt::f32, t);
  dnnl::lrn_forward::desc ld(dnnl::prop_kind::forward_inference,
                             dnnl::algorithm::lrn_across_channels, md, n.get_int("size", 1),
                             n.get_float("alpha", 1e-4f), n.get_float("beta", 0.75f),
                             n.get_float("bias", 1.f));
  dnnl::lrn_forward::primitive_desc pd(ld, cpu_engine());
  std::vector<float> res = acquire(static_cast<int64_t>(in.v.size()));
  memory sm(md, cpu_engine(), in.v.data()), dm(md, cpu_engine(), res.data());
  std::unordered_map<int, memory> args{{DNNL_ARG_SRC, sm}, {DNNL_ARG_DST, dm}};
  memory ws;
  if (pd.workspace_desc().get_size() > 0) {
    ws = memory(pd.workspace_desc(), cpu_engine());
    args[DNNL_ARG_WORKSPACE] = ws;
  }
  dnnl::lrn_forward(pd).execute(cpu_stream(), args);
  cpu_stream().wait();
  set_out(s.out, std::move(res), in.nhwc);
}

void Engine::Impl::exec_batchnorm(const Step& s) {
  const Node& n = g.nodes[s.node];
  const std::string where = fmt::format("node '{}' ({})", n.name, n.op);
  std::vector<float> res = acquire(numel(value_shape[s.out]));
  bool out_nhwc = false;
  Buf& in = vals[s.in[0]];
  const auto& d = value_shape[s.in[0]];
  for (int i = 1; i <= 4; ++i)
    if (!s.cin.at(i) || !s.cin[i]->is_float())
      fail(ErrorKind::unsupported, g.source, where, "BatchNormalization parameters must be constants");
  const auto &sc = s.cin[1]->f32, &bi = s.cin[2]->f32, &mu = s.cin[3]->f32, &var = s.cin[4]->f32;
  const float eps = n.get_float("epsilon", 1e-5f);
  const int64_t N = d[0], C = d.size() > 1 ? d[1] : 1;
  int64_t HW = 1;
  for (size_t i = 2; i < d.size(); ++i) HW *= d[i];
  std::vector<float> a(C), b(C);
  for (int64_t c = 0; c < C; ++c) {
    a[c] = sc[c] / std::sqrt(var[c] + eps);
    b[c] = bi[c] - mu[c] * a[c];
  }
  const float* x = in.v.data();
  if (in.nhwc) {
    for (int64_t i = 0; i < N * HW; ++i)
      for (int64_t c = 0; c < C; ++c) res[i * C + c] = x[i * C + c] * a[c] + b[c];
  } else {
    for (int64_t nn = 0; nn < N; ++nn)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < HW; ++i) {
          const int64_t k = (nn * C + c) * HW + i;
          res[k] = x[k] * a[c] + b[c];
        }
  }
  out_nhwc = in.nhwc;
  set_out(s.out, std::move(res), out_nhwc);
}

void Engine::Impl::exec_plain(const Step& s) {
  const Node& n = g.nodes[s.node];
  const auto& od = value_shape[s.out];
  std::vector<float> res = acquire(numel(od));
  KernelCall call{n, g.opset, g.source, {}, od, res.data()};
  call.in.resize(s.in.size());
  for (size_t i = 0; i < s.in.size(); ++i) {
    KernelInput& k = call.in[i];
    if (s.in[i] >= 0) {
      k.present = true;
      k.dims = value_shape[s.in[i]];
      k.data = plain(s.in[i]).v.data();
    } else if (s.cin[i]) {
      k.present = true;
      k.constant = s.cin[i];
      k.dims = s.cin[i]->dims;
      if (s.cin[i]->is_float()) k.data = s.cin[i]->f32.data();
    }
  }
  s.kernel(call);
  set_out(s.out, std::move(res), false);
}

// ---- Engine ------------------------------------------------------------------

std::vector<std::string> kernel_ops() {
  std::vector<std::string> v = {"Conv", "Gemm", "MatMul"};
  for (const auto& [name, op] : kernel_registry()) v.push_back(name);
  for (const auto& [name, k] : plain_kernels())
    if (name != "MatMul") v.push_back(name);
  std::sort(v.begin(), v.end());
  return v;
}

Engine::Engine(model::Graph graph, EngineOptions options)
    : impl_(std::make_unique<Impl>(std::move(graph), options)) {}
Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

const model::Graph& Engine::graph() const { return impl_->g; }
const EngineOptions& Engine::options() const { return impl_->opt; }
bool Engine::calibrated() const { return impl_->calibrated; }
std::vector<LayerCalibration> Engine::calibration() const { return impl_->calib; }
int64_t Engine::num_classes() const { return impl_->classes; }

std::vector<std::string> Engine::u8_output_layers(const quant::Policy& p) {
  Impl& m = *impl_;
  if (p.layers.size() != m.g.layers.size())
    fail(ErrorKind::policy, "", "", "the policy has {} layers, the model {}", p.layers.size(),
         m.g.layers.size());
  std::vector<std::string> names;
  for (const LayerPlan& lp : m.lower(&p).layers)
    if (lp.output.codes) names.push_back(lp.name);
  return names;
}

QuantPlan Engine::plan(const quant::Policy& p) {
  Impl& m = *impl_;
  if (p.layers.size() != m.g.layers.size())
    fail(ErrorKind::policy, "", "", "the policy has {} layers, the model {}", p.layers.size(),
         m.g.layers.size());
  return m.lower(&p);
}

void Engine::prepare_weights(const std::vector<int>& w_bits, const std::vector<int>& a_bits) {
  Impl& m = *impl_;
  for (size_t li = 0; li < m.g.layers.size(); ++li) {
    if (m.g.layers[li].kind == LayerKind::act_matmul) continue;
    for (int wb : w_bits)
      for (int ab : a_bits) m.weights_q(static_cast<int>(li), wb, ab);
  }
}

RoundingStats Engine::rounding_stats() const { return impl_->rounding; }

std::string RoundingStats::summary() const {
  const std::string done =
      loaded > 0 ? fmt::format("{} (layer, w_bits, a_bits) combinations, {} from the rounding cache and {} rounded in "
                               "{:.1f} s",
                               layer_bits + loaded, loaded, layer_bits, seconds)
                 : fmt::format("{} (layer, w_bits, a_bits) combinations in {:.1f} s", layer_bits, seconds);
  return fmt::format("adaptive rounding: {}, {:.1f} % of the weights rounded the other way, output error {:.3g} -> "
                     "{:.3g}",
                     done,
                     totals.weights > 0 ? 100.0 * totals.flipped / totals.weights : 0.0, totals.error_nearest,
                     totals.error_adaround);
}

std::string RoundingCacheLoad::summary(const std::string& file) const {
  if (!exists) return fmt::format("rounding cache: {} does not exist yet; this run's adaptive rounding goes there", file);
  if (other_version)
    return fmt::format("rounding cache: {} has another format version; it is recomputed and rewritten", file);
  std::string s =
      fmt::format("rounding cache: {} (layer, w_bits, a_bits) combinations from {} in {:.2f} s", loaded, file, seconds);
  if (stale > 0)
    s += fmt::format(" ({} others, made from another model, calibration or options, are not used)", stale);
  return s;
}

RoundingCacheLoad Engine::load_rounding_cache(const std::string& file) {
  Impl& m = *impl_;
  if (m.opt.weight_rounding != WeightRounding::adaround || !m.calibrated)
    fail(ErrorKind::usage, file, "", "the rounding cache needs an engine calibrated for adaptive rounding");
  RoundingCacheLoad r;
  if (!path_exists(file)) return r;
  r.exists = true;
  const auto t0 = std::chrono::steady_clock::now();
  std::set<std::tuple<int, int, int>> in_file;
  quant::RoundingCacheFile f = quant::parse_rounding_cache(read_file(file, m.rounding_cache_bound()), file);
  r.other_version = f.other_version;
  m.rounding_foreign.clear();
  for (quant::RoundingCacheEntry& e : f.entries) {
    const int li = static_cast<int>(e.layer);
    bool ok = e.layer < m.g.layers.size() && m.g.layers[li].kind != LayerKind::act_matmul &&
              m.g.layers[li].name == e.name && !m.round_in[li].gram.empty() &&
              (e.a_bits == 0 || m.round_in_q[li].count(e.a_bits) != 0);
    if (ok) {
      const Layer& l = m.g.layers[li];
      const int64_t per = static_cast<int64_t>(m.g.constants.at(l.weight).f32.size()) / l.c_out;
      ok = e.weights.channels == l.c_out && e.weights.per_channel == per &&
           e.key == m.rounding_key(li, e.w_bits, e.a_bits);
    }
    if (!ok) {
      ++r.stale;
      m.rounding_foreign.push_back(std::move(e));
      continue;
    }
    const auto key = std::make_tuple(li, static_cast<int>(e.w_bits), static_cast<int>(e.a_bits));
    in_file.insert(key);
    if (m.rounded.count(key)) continue;
    m.qweights[key] = e.weights;
    m.rounded[key] = e.stats;
    ++m.rounding.loaded;
    m.rounding.totals += e.stats;
    ++r.loaded;
  }
  // Rewritten on save only if this engine holds an entry the file lacks.
  m.rounding_dirty = std::any_of(m.rounded.begin(), m.rounded.end(),
                                 [&](const auto& kv) { return in_file.count(kv.first) == 0; });
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

// The largest cache file this model reads: every weighted layer at w_bits
// 2..8 and each input-bits key (0, 2..kRoundingMaxInputBits).
uint64_t Engine::Impl::rounding_cache_bound() const {
  uint64_t bound = 64;
  for (const Layer& l : g.layers) {
    if (l.kind == LayerKind::act_matmul) continue;
    const int64_t per = static_cast<int64_t>(g.constants.at(l.weight).f32.size()) / l.c_out;
    bound += 7 * (1 + (kRoundingMaxInputBits - 1)) * quant::rounding_cache_entry_bytes(l.name, l.c_out, per);
  }
  return bound;
}

int64_t Engine::save_rounding_cache(const std::string& file) {
  Impl& m = *impl_;
  if (!m.rounding_dirty) return 0;
  std::vector<quant::RoundingCacheEntry> entries;
  for (const auto& [key, stats] : m.rounded) {
    const auto [li, w_bits, a_key] = key;
    quant::RoundingCacheEntry e;
    e.key = m.rounding_key(li, w_bits, a_key);
    e.layer = static_cast<uint32_t>(li);
    e.name = m.g.layers[li].name;
    e.w_bits = w_bits;
    e.a_bits = a_key;
    e.weights = m.qweights.at(key);
    e.stats = stats;
    entries.push_back(std::move(e));
  }
  // Then the file's other entries, as many as fit in the bound (so that the
  // file stays readable), in their order.
  const uint64_t bound = m.rounding_cache_bound();
  uint64_t bytes = 64;
  for (const auto& e : entries)
    bytes += quant::rounding_cache_entry_bytes(e.name, e.weights.channels, e.weights.per_channel);
  for (const auto& e : m.rounding_foreign) {
    const uint64_t b = quant::rounding_cache_entry_bytes(e.name, e.weights.channels, e.weights.per_channel);
    if (bytes + b > bound) continue;
    bytes += b;
    entries.push_back(e);
  }
  write_file_atomic(file, quant::write_rounding_cache(entries));
  m.rounding_dirty = false;
  return static_cast<int64_t>(entries.size());
}

Engine::QuantizedLayer Engine::quantized_layer(size_t layer, int w_bits, int a_bits) {
  Impl& m = *impl_;
  if (layer >= m.g.layers.size() || w_bits < 1 || w_bits > 8 || a_bits < 1 || a_bits > 8)
    fail(ErrorKind::usage, m.g.source, "quantized_layer", "layer {} or bits w{}a{} out of range", layer, w_bits, a_bits);
  const int li = static_cast<int>(layer);
  QuantizedLayer q;
  q.act = m.act_quant(li, a_bits);
  if (m.g.layers[layer].kind == LayerKind::act_matmul) {
    q.act_b = m.act_quant_b(li, w_bits);
    return q;
  }
  q.weights = m.weights_q(li, w_bits, a_bits);
  const auto& b = m.g.constants.at(m.g.layers[layer].bias).f32;
  const auto& sh = m.shift(li, w_bits, a_bits);
  q.bias.resize(sh.size());
  for (size_t c = 0; c < sh.size(); ++c) q.bias[c] = b[c] + sh[c];
  return q;
}

std::vector<float> Engine::run_batch(const quant::Policy* p, const std::vector<float>& input) {
  HAQ_ASSERT(static_cast<int64_t>(input.size()) == impl_->sample_in * impl_->g.batch);
  impl_->valid_rows = impl_->g.batch;
  impl_->batch_data = nullptr;
  impl_->batch_indices = nullptr;
  return impl_->run_batch(p, input.data());
}

void Engine::set_layer_observer(LayerObserver obs) { impl_->observer = std::move(obs); }

namespace {
void check_policy(const quant::Policy& p, const model::Graph& g) {
  if (p.layers.size() != g.layers.size())
    fail(ErrorKind::policy, "", "", "the policy has {} layers, the model {}", p.layers.size(), g.layers.size());
  for (size_t i = 0; i < p.layers.size(); ++i) {
    const auto& l = p.layers[i];
    if (l.layer != g.layers[i].name)
      fail(ErrorKind::policy, "", fmt::format("/layers/{}", i), "layer '{}' where the model has '{}'", l.layer,
           g.layers[i].name);
    if (!l.fp32 && (l.w_bits < 1 || l.w_bits > 8 || l.a_bits < 1 || l.a_bits > 8))
      fail(ErrorKind::policy, "", fmt::format("/layers/{}", i), "bits must be in 1..8");
  }
}
}  // namespace

std::vector<LayerSqnr> Engine::layer_sqnr(const quant::Policy& p, const data::Dataset& d,
                                          const std::vector<int64_t>& indices) {
  Impl& m = *impl_;
  check_policy(p, m.g);
  if (!m.calibrated)
    fail(ErrorKind::usage, m.g.source, "per-layer", "the engine must be calibrated before measuring layers");
  const size_t L = m.g.layers.size();
  std::vector<LayerSqnr> res(L);
  for (size_t i = 0; i < L; ++i) {
    res[i].layer = m.g.layers[i].name;
    res[i].quantized = !p.layers[i].fp32;
  }
  // Only layer i quantized, as in p.
  std::vector<quant::Policy> isolated(L);
  for (size_t i = 0; i < L; ++i) {
    if (!res[i].quantized) continue;
    isolated[i] = p;
    for (size_t j = 0; j < L; ++j) isolated[i].layers[j].fp32 = j != i;
  }
  std::vector<std::vector<float>> ref(L);
  std::vector<char> ref_nhwc(L, 0);
  auto noise = [&](const LayerOutput& o) {
    const std::vector<float>& r = ref[o.layer];
    HAQ_ASSERT(static_cast<int64_t>(r.size()) == o.count && (ref_nhwc[o.layer] != 0) == o.nhwc);
    double e = 0;
    for (int64_t k = 0; k < o.count; ++k) {
      const double dlt = static_cast<double>(r[k]) - o.data[k];
      e += dlt * dlt;
    }
    return e;
  };
  struct Restore {
    Impl& m;
    LayerObserver saved;
    ~Restore() {
      m.observer = std::move(saved);
      m.stop_after_layer = -1;
    }
  } restore{m, std::move(m.observer)};
  m.for_each_batch(d, indices, [&](const float* input, int64_t, int64_t) {
    m.stop_after_layer = -1;
    m.observer = [&](const LayerOutput& o) {
      ref[o.layer].assign(o.data, o.data + o.count);
      ref_nhwc[o.layer] = o.nhwc;
      double sg = 0;
      for (int64_t k = 0; k < o.count; ++k) sg += static_cast<double>(o.data[k]) * o.data[k];
      res[o.layer].signal += sg;
    };
    m.run_batch(nullptr, input);
    m.observer = [&](const LayerOutput& o) { res[o.layer].noise_cumulative += noise(o); };
    m.run_batch(&p, input);
    for (size_t i = 0; i < L; ++i) {
      if (!res[i].quantized) continue;
      m.stop_after_layer = static_cast<int>(i);
      m.observer = [&, i](const LayerOutput& o) {
        if (o.layer == i) res[i].noise_isolated += noise(o);
      };
      m.run_batch(&isolated[i], input);
    }
  });
  return res;
}

// Lays out the samples batch by batch (the last one padded with zeros) and
// calls f(input, first sample, samples) with valid_rows and the batch's
// sample indices set for run_batch.
void Engine::Impl::for_each_batch(const data::Dataset& d, const std::vector<int64_t>& indices,
                                  const std::function<void(const float*, int64_t, int64_t)>& f) {
  const int64_t B = g.batch;
  const int64_t total = static_cast<int64_t>(indices.size());
  std::vector<float> input(static_cast<size_t>(B * sample_in));
  const auto& in_shape = value_shape[input_id];
  struct Reset {
    Impl& m;
    ~Reset() {
      m.batch_data = nullptr;
      m.batch_indices = nullptr;
      m.input_checked = false;
    }
  } reset{*this};
  batch_data = &d;
  for (int64_t start = 0; start < total; start += B) {
    const int64_t cnt = std::min(B, total - start);
    std::vector<int64_t> chunk(indices.begin() + start, indices.begin() + start + cnt);
    std::fill(input.begin(), input.end(), 0.f);  // padding of the last batch
    data::to_model_layout(d, chunk, in_shape, input.data());
    valid_rows = cnt;
    batch_indices = indices.data() + start;
    // Each sample's images are scanned once (the layout only moves values).
    if (d.images.data() != finite_images || d.images.size() != finite_images_size) {
      finite_images = d.images.data();
      finite_images_size = d.images.size();
      finite_sample.assign(static_cast<size_t>(d.size()), false);
    }
    const int64_t per = d.sample_elems();
    bool known = true;
    for (int64_t i : chunk) {
      if (finite_sample[static_cast<size_t>(i)]) continue;
      if (!all_finite(d.images.data() + i * per, per)) {
        known = false;  // run_batch names the sample
        break;
      }
      finite_sample[static_cast<size_t>(i)] = true;
    }
    input_checked = known;
    f(input.data(), start, cnt);
  }
}

std::vector<float> Engine::Impl::run_all(const quant::Policy* p, const data::Dataset& d,
                                         const std::vector<int64_t>& indices) {
  Impl& m = *this;
  const int64_t total = static_cast<int64_t>(indices.size());
  std::vector<float> logits(static_cast<size_t>(total * m.classes));
  for_each_batch(d, indices, [&](const float* input, int64_t start, int64_t cnt) {
    if (m.calibrating) {
      // (A NaN leaves the minimum alone; run_batch then refuses it.)
      auto& mn = m.graph_input_min[m.input_id];
      for (int64_t i = 0; i < cnt * m.sample_in; ++i) mn = std::min<double>(mn, input[i]);
    }
    const auto& out = m.run_batch(p, input);
    std::copy(out.begin(), out.begin() + cnt * m.classes, logits.begin() + start * m.classes);
  });
  return logits;
}

void Engine::calibrate(const data::Dataset& d, const std::vector<int64_t>& indices) {
  Impl& m = *impl_;
  if (indices.empty()) fail(ErrorKind::usage, d.source, "calibration", "no calibration samples");
  m.hist.assign(m.g.layers.size(), quant::Histogram());
  m.hist_b.assign(m.g.layers.size(), quant::Histogram());
  m.in_sum.assign(m.g.layers.size(), {});
  m.in_sum_q.assign(m.g.layers.size(), {});
  m.in_count.assign(m.g.layers.size(), 0);
  m.round_in.assign(m.g.layers.size(), {});
  m.round_in_q.assign(m.g.layers.size(), {});
  m.patch_stride.assign(m.g.layers.size(), 1);
  m.patch_counter.assign(m.g.layers.size(), 0);
  if (m.opt.weight_rounding == WeightRounding::adaround)
    for (size_t li = 0; li < m.g.layers.size(); ++li) {
      const model::Layer& l = m.g.layers[li];
      if (l.kind == LayerKind::act_matmul) continue;
      const int64_t P = (l.kind == LayerKind::conv ? numel(l.output_shape) / l.c_out
                                                   : numel(l.input_shape) / l.c_in) / m.g.batch;
      const int64_t total = static_cast<int64_t>(indices.size()) * P;
      m.patch_stride[li] = std::max<int64_t>(1, (total + kRoundingPatches - 1) / kRoundingPatches);
    }
  m.qweights.clear();  // adaptive rounding depends on the calibration inputs
  m.rounded.clear();
  m.rounding_input_hash.clear();
  m.rounding_foreign.clear();
  m.rounding_dirty = false;
  m.graph_input_min.clear();
  m.graph_input_min[m.input_id] = std::numeric_limits<double>::infinity();
  m.fp32_pass(m.calibrating, d, indices);
  std::set<std::string> nn_inputs;
  if (m.graph_input_min[m.input_id] >= 0) nn_inputs.insert(m.g.inputs[0].name);
  const auto nn = m.nonneg_values(nn_inputs);
  m.calib.assign(m.g.layers.size(), {});
  for (size_t li = 0; li < m.g.layers.size(); ++li) {
    auto& c = m.calib[li];
    c.is_unsigned = nn.count(m.g.layers[li].input) != 0;
    c.min = m.hist[li].min();
    c.max_abs = m.hist[li].max_abs();
    c.thresholds.assign(9, -1.f);
  }
  m.act_q.assign(m.g.layers.size(), std::vector<quant::ActQuant>(9));
  m.thresholds_b.assign(m.g.layers.size(), std::vector<float>(9, -1.f));
  m.qprims.clear();
  m.bias_shift.clear();
  m.plan_key.clear();
  m.calibrated = true;
  if (m.opt.bias_correction && m.opt.input_bias_correction) {
    // A second pass: the mean of every layer's input as it is quantized at
    // each a_bits (the input term of the bias correction).
    for (size_t li = 0; li < m.g.layers.size(); ++li)
      if (!m.in_sum[li].empty()) m.in_sum_q[li].assign(9, {});
    m.fp32_pass(m.act_mean_pass, d, indices);
  }
  if (m.opt.weight_rounding == WeightRounding::adaround) {
    // A second pass: per a_bits 2..kRoundingMaxInputBits, the layers' inputs
    // as they are quantized, for as many layers (in order) as
    // kRoundingInputBytes holds. Above those bits the input's quantization
    // noise is small and the rounding uses the fp32 inputs' Gram matrix.
    uint64_t bytes = 0;
    for (size_t li = 0; li < m.g.layers.size(); ++li) {
      const auto& in = m.round_in[li];
      if (in.gram.empty()) continue;
      const uint64_t need = (kRoundingMaxInputBits - 1) * 3 * in.gram.size() * sizeof(double);
      if (bytes + need > kRoundingInputBytes) continue;
      bytes += need;
      for (int a = 2; a <= kRoundingMaxInputBits; ++a) m.round_in_q[li][a] = {};
    }
    std::fill(m.patch_counter.begin(), m.patch_counter.end(), 0);
    m.fp32_pass(m.rounding_pass, d, indices);
  }
}

std::vector<float> Engine::run_fp32(const data::Dataset& d, const std::vector<int64_t>& indices) {
  return impl_->run_all(nullptr, d, indices);
}

void Engine::prepare(const quant::Policy& p) {
  Impl& m = *impl_;
  HAQ_ASSERT(p.layers.size() == m.g.layers.size());
  for (const LayerPlan& lp : m.lower(&p).layers) {
    if (!lp.quantized) {
      if (lp.kind == LayerKind::conv) m.fp32_conv(lp.layer);
      else if (lp.kind != LayerKind::act_matmul) m.fp32_matmul(lp.layer);
    } else {
      m.qprim(lp);
    }
  }
}

std::vector<float> Engine::run(const quant::Policy& p, const data::Dataset& d,
                               const std::vector<int64_t>& indices) {
  check_policy(p, impl_->g);
  return impl_->run_all(&p, d, indices);
}

// ---- scoring -------------------------------------------------------------------

double Accuracy::metric(const std::string& name) const {
  if (name == "top1") return top1;
  if (name == "top5") return top5;
  if (name == "fidelity") return fidelity;
  fail(ErrorKind::usage, "", "--metric", "expected top1, top5 or fidelity; got '{}'", name);
}

Accuracy score(const std::vector<float>& logits, int64_t classes,
               const std::vector<int32_t>& labels, const std::vector<float>& fp32_logits) {
  Accuracy a;
  HAQ_ASSERT(classes > 0);
  const int64_t n = static_cast<int64_t>(logits.size()) / classes;
  a.samples = n;
  if (n == 0) return a;
  auto argmax = [&](const std::vector<float>& v, int64_t i) {
    const float* r = v.data() + i * classes;
    return static_cast<int64_t>(std::max_element(r, r + classes) - r);
  };
  // A NaN logit compares false with everything: max_element and the rank
  // below would make such a sample right by accident (all-NaN logits scored
  // top-1 9.5% and top-5 100%). A sample with a NaN logit is wrong.
  auto has_nan = [&](const std::vector<float>& v, int64_t i) {
    const float* r = v.data() + i * classes;
    return std::any_of(r, r + classes, [](float x) { return x != x; });
  };
  int64_t t1 = 0, t5 = 0, fid = 0;
  for (int64_t i = 0; i < n; ++i) {
    const bool nan_row = has_nan(logits, i);
    if (nan_row || (!fp32_logits.empty() && has_nan(fp32_logits, i))) ++a.nan_samples;
    if (nan_row) continue;
    const int64_t top = argmax(logits, i);
    if (!labels.empty()) {
      const int32_t y = labels[i];
      if (top == y) ++t1;
      const float* r = logits.data() + i * classes;
      if (y >= 0 && y < classes) {
        // Rank of the label: the number of logits strictly greater (ties favour lower index).
        int64_t greater = 0;
        for (int64_t c = 0; c < classes; ++c)
          if (r[c] > r[y] || (r[c] == r[y] && c < y)) ++greater;
        if (greater < 5) ++t5;
      }
    }
    if (!fp32_logits.empty() && !has_nan(fp32_logits, i) && argmax(fp32_logits, i) == top) ++fid;
  }
  a.top1 = 100.0 * t1 / n;
  a.top5 = 100.0 * t5 / n;
  a.fidelity = fp32_logits.empty() ? 0.0 : 100.0 * fid / n;
  return a;
}

std::vector<int32_t> labels_of(const data::Dataset& d, const std::vector<int64_t>& indices) {
  std::vector<int32_t> out;
  if (d.labels.empty()) return out;
  out.reserve(indices.size());
  for (int64_t i : indices) out.push_back(d.labels.at(static_cast<size_t>(i)));
  return out;
}

PolicyEvaluator::PolicyEvaluator(Engine& engine, const data::Dataset& data,
                                 std::vector<int64_t> indices)
    : engine_(engine), data_(data), indices_(std::move(indices)) {
  labels_ = labels_of(data_, indices_);
  quant::Policy all_fp32 = quant::uniform_policy(engine_.graph(), 8, 8);
  for (auto& l : all_fp32.layers) l.fp32 = true;
  engine_.prepare(all_fp32);
  auto t0 = std::chrono::steady_clock::now();
  fp32_logits_ = engine_.run_fp32(data_, indices_);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fp32_ = score(fp32_logits_, engine_.num_classes(), labels_, fp32_logits_);
  fp32_.seconds = secs;
}

Accuracy PolicyEvaluator::evaluate(const quant::Policy& p) {
  const std::string key = quant::policy_key(p);
  auto it = cache_.find(key);
  if (it != cache_.end()) return it->second;
  if (p.layers.size() == engine_.graph().layers.size()) engine_.prepare(p);
  auto t0 = std::chrono::steady_clock::now();
  auto logits = engine_.run(p, data_, indices_);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Accuracy a = score(logits, engine_.num_classes(), labels_, fp32_logits_);
  a.seconds = secs;
  return cache_[key] = a;
}

}  // namespace haq::engine
