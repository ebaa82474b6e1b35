// TensorProto files and model outlines (onnx_files.h). The tensor decoding is
// the importer's own (detail::tensor_from_proto).

#include "haq/model/onnx_files.h"

#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>

#include "haq/core/files.h"
#include "import_internal.h"

namespace haq::model {

namespace fs = std::filesystem;

namespace {

template <class Proto>
void parse_file(const std::string& path, Proto* proto, const char* what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ErrorKind::io, path, "", "no such file");
  check_input_file(path, kMaxModelFileBytes, what);  // a regular file: a FIFO never blocks
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, path, "", "cannot open the file");
  if (!proto->ParseFromIstream(&in))
    throw Error(ErrorKind::model, path, "", fmt::format("not a valid {} (protobuf parse failed)", what));
}

}  // namespace

Tensor read_tensor_pb(const std::string& path) {
  onnx::TensorProto t;
  parse_file(path, &t, "ONNX TensorProto");
  detail::ImportState s;
  s.file = path;
  const std::string at = t.name().empty() ? std::string("tensor") : fmt::format("tensor '{}'", t.name());
  return detail::tensor_from_proto(s, at, t, fs::path(path).parent_path());
}

OnnxOutline read_onnx_outline(const std::string& path) {
  onnx::ModelProto m;
  parse_file(path, &m, "ONNX model");
  OnnxOutline o;
  for (const auto& op : m.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") o.opset = op.version();
  const auto& g = m.graph();
  for (const auto& n : g.node()) {
    const bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    o.op_types.push_back(default_domain ? n.op_type() : n.domain() + "." + n.op_type());
  }
  std::set<std::string> inits;
  for (const auto& t : g.initializer()) inits.insert(t.name());
  for (const auto& in : g.input())
    if (!inits.count(in.name())) o.inputs.push_back(in.name());
  for (const auto& out : g.output()) o.outputs.push_back(out.name());
  return o;
}

}  // namespace haq::model
