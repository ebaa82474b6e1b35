#pragma once
/// \file
/// The Graph IR: what the importer produces and every other part consumes.
///
/// After import a Graph is
///  - topologically sorted (`nodes` in execution order),
///  - fully shaped: every value has a static shape with the batch dim fixed
///    to `batch`,
///  - constant-folded: Constant, ConstantOfShape, Identity, Dropout and the
///    Shape/Gather/Unsqueeze/Concat chains are gone; their results live in
///    `constants`,
///  - BatchNormalization that follows a Conv or Gemm is folded into it,
///  - canonical for quantizable layers (see Layer).
/// No ONNX type appears here: only lib/model includes ONNX headers.
///
/// Node forms after import (the same for opsets 6..18; the engine relies on them):
///  - Layer nodes (Conv, Gemm, MatMul with Node::layer >= 0): inputs are
///    {activation, Layer::weight, Layer::bias}. Conv carries explicit
///    kernel_shape, strides, dilations, pads [top, left, bottom, right], group
///    and auto_pad = "NOTSET". Gemm is transA=0, transB=1, alpha=1, beta=1
///    (a transA Gemm gets an explicit Transpose node before it). A MatMul layer
///    node's inputs[1] is the canonical [N, K] weight, so it no longer has ONNX
///    MatMul semantics: use Layer. A constant per-output bias added after a
///    MatMul/Gemm layer (Add(MatMul(x, W), b) in either operand order, the
///    3-D nn.Linear of transformers) is folded into Layer::bias.
///  - act_matmul layer nodes (a MatMul of two activations A [B, .., M, K] x
///    B [B, .., K, N] with the same leading dims, the batch first: attention's
///    Q.K^T and A.V) keep their two inputs {A, B}; Layer::input_b is B. Any
///    other MatMul of two activations is a plain fp32 node.
///  - Add / Sub / Mul / Div: numpy broadcasting (opset 6's broadcast/axis
///    attributes are gone; a B aligned at an axis gets trailing 1-dims).
///  - Max / Min: two inputs (more become a chain, one an identity).
///  - Clip: one input; float attrs "min"/"max" always present (lowest()/max()
///    when the model had none).
///  - Squeeze / Unsqueeze: one input; ints "axes", sorted and non-negative
///    (for Unsqueeze: positions in the output). Squeeze without axes gets the
///    explicit list of its size-1 dims.
///  - ReduceMean: one input; ints "axes" (sorted, non-negative, never empty)
///    and int "keepdims". An empty-axes no-op (opset 18) is removed.
///  - Pad: one input; ints "pads" (2 x rank, ONNX order: all begins, then all
///    ends), float "value", string "mode" (constant | reflect | edge).
///  - Softmax: int "axis" non-negative, per-axis semantics (opset < 13 models
///    whose flattening would differ are rejected).
///  - Flatten, Concat, Gather: int "axis" non-negative. Transpose: ints "perm"
///    always present. LeakyRelu "alpha", HardSigmoid "alpha"/"beta", LRN
///    "alpha"/"beta"/"bias", BatchNormalization "epsilon": always present.
///  - MaxPool / AveragePool: explicit kernel_shape, strides, pads, auto_pad =
///    "NOTSET" (MaxPool also dilations); ceil_mode / count_include_pad as in
///    the model (default 0). Only output 0 of MaxPool, BN and Dropout is kept.
///  - Resize / Upsample: one input (rank 4, only H and W change); string
///    "mode" (nearest | linear), "coordinate_transformation_mode" (half_pixel
///    | pytorch_half_pixel | align_corners | asymmetric), "nearest_mode"
///    (round_prefer_floor | round_prefer_ceil | floor | ceil, "simple" for
///    Upsample and Resize-10, "" in linear mode), floats "scales" (per axis,
///    the divisor of the coordinate transform) and ints "sizes" (the output).
///  - Reshape keeps its constant shape input (may hold 0 / -1): take the output
///    shape from Graph::shapes. Identity, Dropout, Constant, ConstantOfShape,
///    Shape and Casts are gone, except an Identity that feeds a graph output
///    directly from a graph input.

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace haq::model {

/// Element types, numbered as ONNX's TensorProto.DataType.
enum class DType : int { f32 = 1, u8 = 2, i8 = 3, i32 = 6, i64 = 7, boolean = 9 };

/// Name of a DType ("float32", "int64", ...).
const char* to_string(DType t);

/// A constant tensor. Floating data lives in `f32`; integer and bool data in `i64`.
struct Tensor {
  DType dtype = DType::f32;
  std::vector<int64_t> dims;   ///< empty for a scalar
  std::vector<float> f32;      ///< data when dtype == f32
  std::vector<int64_t> i64;    ///< data when dtype is an integer or bool type
  /// Number of elements (product of dims; 1 for a scalar).
  int64_t numel() const;
  bool is_float() const { return dtype == DType::f32; }
};

/// A node attribute (the subset of ONNX's AttributeProto that haq uses).
struct Attribute {
  enum class Kind { i, f, ints, floats, s, tensor };
  Kind kind = Kind::i;
  int64_t i = 0;
  float f = 0.f;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string s;
  Tensor t;
};

/// One operation, with ONNX's op type and attribute names.
struct Node {
  std::string name;                   ///< unique; generated ("<op>_<index>") if the model had none
  std::string op;                     ///< ONNX op type, e.g. "Conv"
  std::vector<std::string> inputs;    ///< value names; "" marks an absent optional input
  std::vector<std::string> outputs;   ///< value names
  std::map<std::string, Attribute> attrs;
  int layer = -1;                     ///< index into Graph::layers when quantizable, else -1

  bool has(const std::string& attr) const { return attrs.count(attr) != 0; }
  int64_t get_int(const std::string& attr, int64_t fallback) const;
  float get_float(const std::string& attr, float fallback) const;
  std::vector<int64_t> get_ints(const std::string& attr, std::vector<int64_t> fallback = {}) const;
  std::string get_string(const std::string& attr, std::string fallback = "") const;
};

/// Kind of a quantizable layer.
enum class LayerKind { conv, gemm, matmul, act_matmul };
const char* to_string(LayerKind k);

/// A quantizable layer, in canonical form. The executor and the simulators
/// use this, not the node's attributes, for the weights and the geometry.
///
/// Canonical weights (in Graph::constants under `weight` / `bias`):
///  - conv:   [c_out, c_in / groups, kernel_h, kernel_w] (OIHW)
///  - gemm, matmul: [c_out, c_in] (out x in; Gemm's transB, alpha and beta
///    are folded in, MatMul's [K, N] weight is transposed into this form)
///  - bias: [c_out] float, always present (zeros if the model had none).
/// The activation input is node.inputs[0]; the output is node.outputs[0].
/// For gemm/matmul, the input is treated as rows x c_in, rows = product of
/// all input dims but the last (for Gemm with a 2-D input: the batch).
/// act_matmul has no weight and no bias (`weight`, `bias` empty,
/// weight_params = params = 0): per sample it multiplies `mats` pairs of
/// matrices, input [rows x c_in] by input_b [c_in x c_out]; both operands are
/// activations, quantized per tensor (input at a_bits, input_b at w_bits).
struct Layer {
  std::string name;        ///< the node's name
  LayerKind kind = LayerKind::conv;
  int node = -1;           ///< index into Graph::nodes
  std::string weight;      ///< canonical weight constant
  std::string bias;        ///< canonical bias constant
  std::string input;       ///< activation input value (node.inputs[0])
  std::string input_b;     ///< act_matmul: the second activation operand (node.inputs[1]); else empty
  std::string output;      ///< output value (node.outputs[0])
  std::vector<int64_t> input_shape, output_shape;  ///< with batch = Graph::batch

  int64_t c_in = 0, c_out = 0, groups = 1;
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t dilation_h = 1, dilation_w = 1;
  std::array<int64_t, 4> pads{0, 0, 0, 0};  ///< top, left, bottom, right (auto_pad resolved)
  int64_t in_h = 1, in_w = 1;    ///< input spatial size (1 for gemm/matmul)
  int64_t out_h = 1, out_w = 1;  ///< output spatial size (1 for gemm/matmul)
  int64_t rows = 1;              ///< gemm/matmul: rows per sample (1 for a plain FC layer); act_matmul: M
  int64_t mats = 1;              ///< act_matmul: matrix products per sample (product of the leading dims but the batch)
  bool depthwise = false;        ///< groups == c_in == c_out and groups > 1

  int64_t weight_params = 0;     ///< number of weight elements
  int64_t params = 0;            ///< weight + bias elements
  int64_t macs = 0;              ///< multiply-accumulates per sample (batch 1)
};

/// Name, element type and static shape of a graph input or output.
struct ValueInfo {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
};

/// The imported model.
struct Graph {
  std::string source;               ///< path it was read from (for messages)
  int64_t opset = 0;                ///< default-domain opset
  std::string producer_name, producer_version;
  int64_t ir_version = 0;
  int64_t batch = 1;                ///< batch size the shapes are fixed to
  bool dynamic_batch = false;       ///< the model's batch dim was symbolic
  std::vector<ValueInfo> inputs;    ///< real inputs (initializers excluded)
  std::vector<ValueInfo> outputs;
  std::vector<Node> nodes;          ///< topologically sorted
  std::map<std::string, Tensor> constants;                 ///< initializers and folded values
  std::map<std::string, std::vector<int64_t>> shapes;      ///< static shape of every value
  std::map<std::string, DType> dtypes;                     ///< element type of every value
  std::vector<Layer> layers;        ///< quantizable layers, in topological order
  /// Op types of the model as read from the file (before folding), counted;
  /// non-default domains are written "domain.Op".
  std::map<std::string, int64_t> original_op_counts;

  bool is_constant(const std::string& value) const { return constants.count(value) != 0; }
  /// Shape of a value; Error(internal) if unknown.
  const std::vector<int64_t>& shape(const std::string& value) const;
  /// Index of the layer with this name, or -1.
  int find_layer(const std::string& name) const;
};

/// Import options.
struct ImportOptions {
  int64_t batch = 1;              ///< value for a symbolic batch dim
  bool fold_batchnorm = true;     ///< fold BatchNormalization into the preceding Conv/Gemm
  /// Graph inputs replaced by these constants before anything else runs, as if
  /// they were initializers (the conformance harness feeds one input and binds
  /// the others). Error(usage) when a name is not a graph input.
  std::map<std::string, Tensor> bind_inputs;
};

/// Reads, checks and canonicalises an ONNX model. Throws haq::Error naming the
/// file and the node (model, unsupported, io) on bad input.
Graph import_onnx(const std::string& path, const ImportOptions& options = {});

/// The same from bytes in memory; `source` is used in messages and to resolve
/// external data (its folder).
Graph import_onnx_bytes(const std::string& bytes, const std::string& source,
                        const ImportOptions& options = {});

/// The op types haq supports, sorted.
const std::vector<std::string>& supported_ops();

}  // namespace haq::model
