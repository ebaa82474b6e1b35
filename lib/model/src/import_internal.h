#pragma once
// Shared by the importer's passes (not a public header). The importer runs in
// stages over one ImportState:
//   onnx_import.cpp  parse, validate, topological sort, batch fix, ONNX shape
//                    inference, conversion into Graph nodes and constants;
//   fold.cpp         per node in order, each op's own rules (op_defs.cpp,
//                    op_rules.h): opset normalisation, removal, static shape
//                    and dtype, constant folding, checks on constants;
//   layers.cpp       quantizable layers in canonical form, BatchNorm folding,
//                    dead-constant removal and the final consistency check.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "haq/core/error.h"
#include "haq/model/graph.h"

namespace onnx {
class TensorProto;
}

namespace haq::model::detail {

/// Elements above this count are refused before allocating (2^31).
constexpr int64_t kMaxElements = int64_t{1} << 31;

struct ImportState {
  Graph g;
  std::string file;  ///< for messages
  /// Static shapes and dtypes ONNX's shape inference found (cross-check only).
  std::map<std::string, std::vector<int64_t>> onnx_shapes;
  std::map<std::string, DType> onnx_dtypes;

  [[noreturn]] void fail_at(ErrorKind kind, const std::string& where, const std::string& what) const {
    throw Error(kind, file, where, what);
  }
};

/// "node 'NAME' (OP)", the place used in messages.
std::string where(const Node& n);
/// "[1, 3, 224, 224]".
std::string dims_str(const std::vector<int64_t>& dims);

/// Product of dims; Error(model) at `where` if a dim is negative or the count
/// exceeds kMaxElements.
int64_t checked_numel(const ImportState& s, const std::string& where, const std::vector<int64_t>& dims);

/// Element i as a double, whatever the dtype.
double tensor_get(const Tensor& t, int64_t i);
/// A zero-filled tensor of this type and shape.
Tensor make_tensor(DType dtype, std::vector<int64_t> dims);
/// Sets element i from a double; an integer tensor takes it as a C cast
/// would, and a value outside int64 (nan, 1e30) is Error(model) without a
/// place (the fold gives it the node).
void tensor_set(Tensor& t, int64_t i, double v);
/// Element i as an exact int64 (a float must fit, as in tensor_set).
int64_t tensor_get_int(const Tensor& t, int64_t i);
/// Sets element i from an exact int64 (narrower integer types wrap, as a C cast).
void tensor_set_int(Tensor& t, int64_t i, int64_t v);
/// dst[o] = src[i], exact between integer tensors (a double would round
/// values above 2^53 and turn 2^63-1 into -2^63).
void copy_element(Tensor& dst, int64_t o, const Tensor& src, int64_t i);
/// Tensor with permuted axes (out dim k = in dim perm[k]).
Tensor transpose_tensor(const Tensor& t, const std::vector<int64_t>& perm);

/// Decodes a TensorProto (raw, typed or external data, the latter confined to
/// `model_dir`) with size checks; Error at `at` in `s.file` (onnx_import.cpp).
Tensor tensor_from_proto(const ImportState& s, const std::string& at, const onnx::TensorProto& t,
                         const std::filesystem::path& model_dir);

/// Normalises, folds and shapes every node (fold.cpp).
void process_nodes(ImportState& s);
/// Layers, BatchNorm folding, cleanup and final check (layers.cpp).
void build_layers(ImportState& s, const ImportOptions& options);

/// A value name not yet used in the graph, starting from `base`.
std::string fresh_name(const ImportState& s, const std::string& base);

}  // namespace haq::model::detail
