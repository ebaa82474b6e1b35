// ONNX import, first stage: parse the ModelProto, validate what the rest of
// haq relies on, sort, fix the batch dim, run ONNX's shape inference and
// convert into Graph nodes and constants. The later passes are in fold.cpp
// and layers.cpp.

#include <algorithm>
#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <queue>
#include <set>

#include <fmt/format.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include "haq/core/files.h"
#include "haq/model/ops.h"
#include "import_internal.h"

namespace haq::model {

namespace fs = std::filesystem;
static_assert(std::endian::native == std::endian::little, "ONNX raw_data is little-endian; haq reads it directly");
using detail::ImportState;

namespace detail {

std::string where(const Node& n) { return fmt::format("node '{}' ({})", n.name, n.op); }

std::string dims_str(const std::vector<int64_t>& dims) { return fmt::format("[{}]", fmt::join(dims, ", ")); }

int64_t checked_numel(const ImportState& s, const std::string& at, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) s.fail_at(ErrorKind::model, at, fmt::format("negative dim in {}", dims_str(dims)));
    if (d != 0 && n > kMaxElements / d)
      s.fail_at(ErrorKind::model, at,
                fmt::format("dims {} give more than 2^31 elements, more than haq accepts", dims_str(dims)));
    n *= d;
  }
  return n;
}

std::string fresh_name(const ImportState& s, const std::string& base) {
  auto used = [&](const std::string& v) {
    return s.g.constants.count(v) || s.g.shapes.count(v) || s.onnx_shapes.count(v);
  };
  if (!used(base)) return base;
  for (int k = 1;; ++k) {
    std::string v = fmt::format("{}_{}", base, k);
    if (!used(v)) return v;
  }
}

}  // namespace detail

namespace {

using detail::checked_numel;
using detail::dims_str;

bool supported_dtype(int onnx_type, DType* out) {
  switch (onnx_type) {
    case onnx::TensorProto::FLOAT: *out = DType::f32; return true;
    case onnx::TensorProto::UINT8: *out = DType::u8; return true;
    case onnx::TensorProto::INT8: *out = DType::i8; return true;
    case onnx::TensorProto::INT32: *out = DType::i32; return true;
    case onnx::TensorProto::INT64: *out = DType::i64; return true;
    case onnx::TensorProto::BOOL: *out = DType::boolean; return true;
    default: return false;
  }
}

size_t element_bytes(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::i32: return 4;
    case DType::i64: return 8;
    default: return 1;  // u8, i8, bool
  }
}

std::string onnx_type_name(int t) {
  const std::string& n = onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(t));
  return n.empty() ? std::to_string(t) : n;
}

/// Reads the bytes of an external-data tensor, confined to `model_dir`.
std::string read_external(const ImportState& s, const std::string& at, const onnx::TensorProto& t,
                          const fs::path& model_dir, size_t needed_bytes) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    auto parse_int = [&](const std::string& v) -> int64_t {
      try {
        size_t used = 0;
        long long x = std::stoll(v, &used);
        if (used != v.size() || x < 0) throw std::invalid_argument("");
        return x;
      } catch (const std::exception&) {
        s.fail_at(ErrorKind::model, at, fmt::format("external data '{}' is '{}', expected a non-negative integer", kv.key(), v));
      }
    };
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset") offset = parse_int(kv.value());
    else if (kv.key() == "length") length = parse_int(kv.value());
  }
  if (location.empty()) s.fail_at(ErrorKind::model, at, "external data without a 'location'");
  fs::path rel(location);
  if (rel.is_absolute())
    s.fail_at(ErrorKind::model, at,
              fmt::format("external data location '{}' is absolute; it must be relative to the model's folder", location));
  // Confine to the model's folder: compare canonical forms, so '..' and
  // symlinked escapes are caught alike.
  std::error_code ec;
  fs::path dir = fs::weakly_canonical(model_dir, ec);
  fs::path full = fs::weakly_canonical(model_dir / rel, ec);
  auto [dir_end, _] = std::mismatch(dir.begin(), dir.end(), full.begin(), full.end());
  if (ec || dir_end != dir.end() || full == dir)
    s.fail_at(ErrorKind::model, at,
              fmt::format("external data location '{}' escapes the model's folder {}", location, dir.string()));
  if (length >= 0 && static_cast<uint64_t>(length) != needed_bytes)
    s.fail_at(ErrorKind::model, at,
              fmt::format("external data length is {} bytes but its dims need {}", length, needed_bytes));
  try {
    check_input_file(full, std::numeric_limits<uint64_t>::max(), "external data");
  } catch (const Error& e) {
    s.fail_at(ErrorKind::io, at, fmt::format("cannot open external data file '{}': {}", full.string(), e.message()));
  }
  std::ifstream in(full, std::ios::binary);
  if (!in)
    s.fail_at(ErrorKind::io, at, fmt::format("cannot open external data file '{}'", full.string()));
  in.seekg(0, std::ios::end);
  const uint64_t size = static_cast<uint64_t>(in.tellg());
  if (size < static_cast<uint64_t>(offset) + needed_bytes)
    s.fail_at(ErrorKind::model, at,
              fmt::format("external data file '{}' has {} bytes, shorter than offset {} + length {}", location, size,
                          offset, needed_bytes));
  std::string bytes(needed_bytes, '\0');
  in.seekg(offset);
  in.read(bytes.data(), static_cast<std::streamsize>(needed_bytes));
  if (!in) s.fail_at(ErrorKind::io, at, fmt::format("cannot read external data file '{}'", full.string()));
  return bytes;
}

}  // namespace

Tensor detail::tensor_from_proto(const ImportState& s, const std::string& at, const onnx::TensorProto& t,
                                 const fs::path& model_dir) {
  Tensor out;
  if (!supported_dtype(t.data_type(), &out.dtype))
    s.fail_at(ErrorKind::unsupported, at,
              fmt::format("element type {} is not supported (float, uint8, int8, int32, int64, bool)",
                          onnx_type_name(t.data_type())));
  out.dims.assign(t.dims().begin(), t.dims().end());
  const int64_t n = checked_numel(s, at, out.dims);
  const size_t bytes_needed = static_cast<size_t>(n) * element_bytes(out.dtype);

  std::string external;
  const std::string* raw = nullptr;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    external = read_external(s, at, t, model_dir, bytes_needed);
    raw = &external;
  } else if (t.has_raw_data()) {
    raw = &t.raw_data();
    if (raw->size() != bytes_needed)
      s.fail_at(ErrorKind::model, at,
                fmt::format("raw_data has {} bytes but dims {} of {} need {}", raw->size(), dims_str(out.dims),
                            to_string(out.dtype), bytes_needed));
  }

  if (out.dtype == DType::f32) out.f32.resize(static_cast<size_t>(n));
  else out.i64.resize(static_cast<size_t>(n));
  if (raw) {
    // An empty tensor has no bytes to copy (memcpy to the null data() of an
    // empty vector is undefined; found by the bad-input corpus under UBSan).
    if (bytes_needed == 0) return out;
    const char* p = raw->data();
    // ONNX raw data is little-endian, like every host haq runs on.
    if (out.dtype == DType::f32) {
      std::memcpy(out.f32.data(), p, bytes_needed);
      return out;
    }
    if (out.dtype == DType::i64) {
      std::memcpy(out.i64.data(), p, bytes_needed);
      return out;
    }
    for (int64_t i = 0; i < n; ++i) {
      switch (out.dtype) {
        case DType::f32: std::memcpy(&out.f32[i], p + 4 * i, 4); break;
        case DType::i32: { int32_t v; std::memcpy(&v, p + 4 * i, 4); out.i64[i] = v; break; }
        case DType::i64: std::memcpy(&out.i64[i], p + 8 * i, 8); break;
        case DType::i8: out.i64[i] = static_cast<int8_t>(p[i]); break;
        case DType::u8: out.i64[i] = static_cast<uint8_t>(p[i]); break;
        case DType::boolean: out.i64[i] = p[i] != 0; break;
      }
    }
    return out;
  }
  auto check_count = [&](int have, const char* field) {
    if (have != n)
      s.fail_at(ErrorKind::model, at,
                fmt::format("{} has {} values but dims {} need {}", field, have, dims_str(out.dims), n));
  };
  switch (out.dtype) {
    case DType::f32:
      check_count(t.float_data_size(), "float_data");
      std::copy(t.float_data().begin(), t.float_data().end(), out.f32.begin());
      break;
    case DType::i64:
      check_count(t.int64_data_size(), "int64_data");
      std::copy(t.int64_data().begin(), t.int64_data().end(), out.i64.begin());
      break;
    default:
      check_count(t.int32_data_size(), "int32_data");
      std::copy(t.int32_data().begin(), t.int32_data().end(), out.i64.begin());
      break;
  }
  return out;
}

namespace {

using detail::tensor_from_proto;

/// The TensorProto of a haq Tensor (raw data), for a bound input.
onnx::TensorProto proto_from_tensor(const ImportState& s, const std::string& at, const std::string& name,
                                    const Tensor& t) {
  const int64_t n = checked_numel(s, at, t.dims);
  if (static_cast<int64_t>(t.is_float() ? t.f32.size() : t.i64.size()) != n)
    s.fail_at(ErrorKind::usage, at, fmt::format("the bound tensor has dims {} but {} values", dims_str(t.dims),
                                                t.is_float() ? t.f32.size() : t.i64.size()));
  onnx::TensorProto p;
  p.set_name(name);
  p.set_data_type(static_cast<int>(t.dtype));  // DType is numbered as TensorProto.DataType
  for (int64_t d : t.dims) p.add_dims(d);
  std::string raw(static_cast<size_t>(n) * element_bytes(t.dtype), '\0');
  char* out = raw.data();
  for (int64_t i = 0; i < n; ++i) {
    switch (t.dtype) {
      case DType::f32: std::memcpy(out + 4 * i, &t.f32[i], 4); break;
      case DType::i32: { const auto v = static_cast<int32_t>(t.i64[i]); std::memcpy(out + 4 * i, &v, 4); break; }
      case DType::i64: std::memcpy(out + 8 * i, &t.i64[i], 8); break;
      default: out[i] = static_cast<char>(t.i64[i]); break;  // u8, i8, bool
    }
  }
  p.set_raw_data(std::move(raw));
  return p;
}

Attribute attribute_from_proto(const ImportState& s, const std::string& at, const onnx::AttributeProto& a,
                               const fs::path& model_dir) {
  Attribute out;
  switch (a.type()) {
    case onnx::AttributeProto::INT: out.kind = Attribute::Kind::i; out.i = a.i(); break;
    case onnx::AttributeProto::FLOAT: out.kind = Attribute::Kind::f; out.f = a.f(); break;
    case onnx::AttributeProto::INTS:
      out.kind = Attribute::Kind::ints;
      out.ints.assign(a.ints().begin(), a.ints().end());
      break;
    case onnx::AttributeProto::FLOATS:
      out.kind = Attribute::Kind::floats;
      out.floats.assign(a.floats().begin(), a.floats().end());
      break;
    case onnx::AttributeProto::STRING: out.kind = Attribute::Kind::s; out.s = a.s(); break;
    case onnx::AttributeProto::TENSOR:
      out.kind = Attribute::Kind::tensor;
      out.t = tensor_from_proto(s, at + ": attribute '" + a.name() + "'", a.t(), model_dir);
      break;
    default:
      s.fail_at(ErrorKind::unsupported, at,
                fmt::format("attribute '{}' has type {}, which haq does not support", a.name(),
                            onnx::AttributeProto_AttributeType_Name(a.type())));
  }
  return out;
}

/// Static shape of a TypeProto, if it is a tensor with all dims known and positive.
bool static_shape(const onnx::TypeProto& type, std::vector<int64_t>* out) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) return false;
  out->clear();
  for (const auto& d : type.tensor_type().shape().dim()) {
    if (!d.has_dim_value() || d.dim_value() <= 0) return false;
    out->push_back(d.dim_value());
  }
  return true;
}

/// Kahn's algorithm, stable by original position; Error(model) on a cycle.
void topo_sort(const ImportState& s, onnx::GraphProto* g, const std::vector<std::string>& names) {
  const int n = g->node_size();
  std::map<std::string, int> producer;
  for (int i = 0; i < n; ++i)
    for (const auto& o : g->node(i).output())
      if (!o.empty()) producer[o] = i;
  std::vector<int> indegree(n, 0);
  std::vector<std::vector<int>> consumers(n);
  for (int i = 0; i < n; ++i)
    for (const auto& in : g->node(i).input()) {
      auto it = producer.find(in);
      if (in.empty() || it == producer.end()) continue;
      ++indegree[i];
      consumers[it->second].push_back(i);
    }
  std::priority_queue<int, std::vector<int>, std::greater<int>> ready;
  for (int i = 0; i < n; ++i)
    if (indegree[i] == 0) ready.push(i);
  std::vector<int> order;
  order.reserve(n);
  while (!ready.empty()) {
    int i = ready.top();
    ready.pop();
    order.push_back(i);
    for (int c : consumers[i])
      if (--indegree[c] == 0) ready.push(c);
  }
  if (static_cast<int>(order.size()) != n) {
    std::vector<bool> done(n, false);
    for (int i : order) done[i] = true;
    for (int i = 0; i < n; ++i)
      if (!done[i])
        s.fail_at(ErrorKind::model, fmt::format("node '{}' ({})", names[i], g->node(i).op_type()),
                  "the graph has a cycle through this node");
  }
  bool sorted = true;
  for (int i = 0; i < n; ++i) sorted = sorted && order[i] == i;
  if (sorted) return;
  google::protobuf::RepeatedPtrField<onnx::NodeProto> nodes;
  nodes.Reserve(n);
  for (int i : order) nodes.Add()->Swap(g->mutable_node(i));
  g->mutable_node()->Swap(&nodes);
}

// ONNX strings are UTF-8, and haq writes the names into JSON (inspect
// --json, policies, search logs), which cannot hold other bytes: a name that
// is not valid UTF-8 is refused here, not when a report is written (found by
// tests/fuzz/fuzz_onnx).
bool is_utf8(const std::string& text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07, min = 0x10000;
    else return false;
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are invalid.
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

// The string for a message: printable ASCII as is, every other byte as \xNN.
std::string escaped(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7F) out += static_cast<char>(c);
    else out += fmt::format("\\x{:02x}", c);
  }
  return out;
}

void check_utf8(const ImportState& s, const std::string& where, const char* what, const std::string& text) {
  if (!is_utf8(text))
    s.fail_at(ErrorKind::model, where, fmt::format("{} '{}' is not valid UTF-8", what, escaped(text)));
}

// Every string the importer keeps: names of nodes, values, ops and attributes,
// string attributes, the producer. Places are indices, as the names cannot be printed.
void check_strings(const ImportState& s, const onnx::ModelProto& model) {
  check_utf8(s, "producer_name", "producer name", model.producer_name());
  check_utf8(s, "producer_version", "producer version", model.producer_version());
  const onnx::GraphProto& g = model.graph();
  for (int i = 0; i < g.node_size(); ++i) {
    const onnx::NodeProto& n = g.node(i);
    const std::string at = fmt::format("node {}", i);
    check_utf8(s, at, "name", n.name());
    check_utf8(s, at, "op_type", n.op_type());
    check_utf8(s, at, "domain", n.domain());
    for (const auto& v : n.input()) check_utf8(s, at, "input", v);
    for (const auto& v : n.output()) check_utf8(s, at, "output", v);
    for (const auto& a : n.attribute()) {
      check_utf8(s, at, "attribute name", a.name());
      check_utf8(s, at + ": attribute '" + escaped(a.name()) + "'", "string", a.s());
      for (const auto& v : a.strings()) check_utf8(s, at + ": attribute '" + escaped(a.name()) + "'", "string", v);
    }
  }
  for (int i = 0; i < g.initializer_size(); ++i)
    check_utf8(s, fmt::format("initializer {}", i), "name", g.initializer(i).name());
  for (int i = 0; i < g.input_size(); ++i) check_utf8(s, fmt::format("input {}", i), "name", g.input(i).name());
  for (int i = 0; i < g.output_size(); ++i) check_utf8(s, fmt::format("output {}", i), "name", g.output(i).name());
  for (int i = 0; i < g.value_info_size(); ++i)
    check_utf8(s, fmt::format("value_info {}", i), "name", g.value_info(i).name());
}

Graph import_model(onnx::ModelProto& model, const std::string& source, const ImportOptions& options) {
  ImportState s;
  s.file = source;
  Graph& graph = s.g;
  graph.source = source;
  const fs::path model_dir = fs::path(source).has_parent_path() ? fs::path(source).parent_path() : fs::path(".");

  // Opset.
  bool has_default = false;
  for (const auto& op : model.opset_import())
    if (op.domain().empty() || op.domain() == "ai.onnx") {
      has_default = true;
      graph.opset = op.version();
    }
  if (!has_default) s.fail_at(ErrorKind::model, "opset_import", "no opset for the default ONNX domain");
  if (graph.opset < 6 || graph.opset > 18)
    s.fail_at(ErrorKind::unsupported, "opset_import",
              fmt::format("default-domain opset {} is outside the supported range 6..18", graph.opset));
  graph.producer_name = model.producer_name();
  graph.producer_version = model.producer_version();
  graph.ir_version = model.ir_version();
  if (!model.has_graph()) s.fail_at(ErrorKind::model, "graph", "the model has no graph");
  check_strings(s, model);
  onnx::GraphProto* g = model.mutable_graph();

  // Graph inputs bound to constants (ImportOptions::bind_inputs) become
  // initializers, listed as inputs as in IR < 4, so every later stage treats
  // them as such.
  for (const auto& [name, t] : options.bind_inputs) {
    const std::string at = fmt::format("input '{}'", name);
    for (const auto& init : g->initializer())
      if (init.name() == name) s.fail_at(ErrorKind::usage, at, "is an initializer already; only graph inputs can be bound");
    bool found = false;
    for (const auto& in : g->input()) found = found || in.name() == name;
    if (!found) s.fail_at(ErrorKind::usage, at, "a value to bind is not a graph input of the model");
    *g->add_initializer() = proto_from_tensor(s, at, name, t);
  }

  // Node names: unique, generated where missing, so every message can name the node.
  std::vector<std::string> names(g->node_size());
  {
    std::set<std::string> used;
    for (int i = 0; i < g->node_size(); ++i) {
      std::string base = g->node(i).name().empty() ? fmt::format("{}_{}", g->node(i).op_type(), i) : g->node(i).name();
      std::string name = base;
      for (int k = 1; used.count(name); ++k) name = fmt::format("{}_{}", base, k);
      used.insert(name);
      names[i] = name;
      g->mutable_node(i)->set_name(name);
    }
  }

  // Ops: supported types only, default domain only.
  const auto& ops = supported_ops();
  for (const auto& n : g->node()) {
    const bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    std::string op = default_domain ? n.op_type() : n.domain() + "." + n.op_type();
    ++graph.original_op_counts[op];
  }
  for (const auto& n : g->node()) {
    const bool default_domain = n.domain().empty() || n.domain() == "ai.onnx";
    const OpDef* def = default_domain ? find_op(n.op_type()) : nullptr;
    std::string op = default_domain ? n.op_type() : n.domain() + "." + n.op_type();
    if (!def)
      s.fail_at(ErrorKind::unsupported, fmt::format("node '{}' ({})", n.name(), op),
                fmt::format("op '{}' (opset {}) is not supported{}; supported ops: {}", op,
                            default_domain ? graph.opset : int64_t{1},
                            default_domain && op == "Gelu"
                                ? " (Gelu is an opset-20 op; haq imports opsets 6..18: export at opset 17 or 18, "
                                  "where PyTorch writes GELU as Div, Erf, Add and Mul, which haq runs)"
                                : "",
                            fmt::join(ops, ", ")));
    if (graph.opset < def->since || graph.opset > def->until)
      s.fail_at(ErrorKind::unsupported, fmt::format("node '{}' ({})", n.name(), op),
                fmt::format("op '{}' is supported at opsets {}..{}; the model declares opset {}", op, def->since,
                            def->until, graph.opset));
  }

  // Variadic ops (Max, Min) of more than two inputs become a chain of two-input nodes
  // (the engine's form): node 'M' (a, b, c) -> 'M' (a, b) -> 'M.1' (., c).
  {
    std::set<std::string> taken;
    for (const auto& n : g->node()) {
      taken.insert(n.name());
      for (const auto& v : n.output()) taken.insert(v);
      for (const auto& v : n.input()) taken.insert(v);
    }
    for (const auto& v : g->input()) taken.insert(v.name());
    auto fresh = [&](const std::string& base) {
      std::string v = base;
      for (int k = 1; taken.count(v); ++k) v = fmt::format("{}.{}", base, k);
      taken.insert(v);
      return v;
    };
    google::protobuf::RepeatedPtrField<onnx::NodeProto> split;
    bool changed = false;
    for (const auto& n : g->node()) {
      const OpDef* def = n.domain().empty() || n.domain() == "ai.onnx" ? find_op(n.op_type()) : nullptr;
      const bool variadic = def && def->chain_variadic && n.input_size() > 2;
      if (!variadic) {
        *split.Add() = n;
        continue;
      }
      changed = true;
      std::string acc = n.input(0);
      for (int k = 1; k < n.input_size(); ++k) {
        onnx::NodeProto* m = split.Add();
        *m = n;
        m->clear_input();
        m->clear_output();
        m->add_input(acc);
        m->add_input(n.input(k));
        if (k > 1) m->set_name(fresh(n.name()));
        acc = k + 1 == n.input_size() ? n.output(0) : fresh(n.output(0) + ".partial");
        m->add_output(acc);
      }
    }
    if (changed) {
      g->mutable_node()->Swap(&split);
      names.clear();
      for (const auto& n : g->node()) names.push_back(n.name());
    }
  }

  // Window attributes that ONNX's own shape inference (below) divides by or
  // sizes with: a zero stride there is a SIGFPE inside libonnx, so they are
  // checked first, for every node.
  for (const auto& n : g->node())
    for (const auto& a : n.attribute()) {
      const std::string& k = a.name();
      const bool positive = k == "strides" || k == "dilations" || k == "kernel_shape" || k == "group";
      if (!positive && (k != "pads" || n.op_type() == "Pad")) continue;  // Pad-2's may crop
      auto check = [&](int64_t v) {
        if (positive ? v > 0 : v >= 0) return;
        s.fail_at(ErrorKind::model, fmt::format("node '{}' ({})", n.name(), n.op_type()),
                  fmt::format("attribute '{}' holds {}; it must be {}", k, v, positive ? "positive" : ">= 0"));
      };
      for (int64_t v : a.ints()) check(v);
      if (a.has_i()) check(a.i());
    }

  // Conv without kernel_shape: libonnx's inference takes the kernel from the
  // weight's type and indexes the input's dims with it unchecked (a SEGV
  // when the ranks differ, a null dereference without a weight). A weight is
  // required, and kernel_shape is set from an initializer weight, so that
  // ONNX checks it against the input's rank.
  for (auto& n : *g->mutable_node()) {
    if (n.op_type() != "Conv" && n.op_type() != "ConvTranspose") continue;
    const std::string at = fmt::format("node '{}' ({})", n.name(), n.op_type());
    if (n.input_size() < 2 || n.input(1).empty()) s.fail_at(ErrorKind::model, at, "a convolution needs a weight input");
    bool has_kernel = false;
    for (const auto& a : n.attribute()) has_kernel |= a.name() == "kernel_shape";
    if (has_kernel) continue;
    for (const auto& t : g->initializer()) {
      if (t.name() != n.input(1)) continue;
      if (t.dims_size() < 3)
        s.fail_at(ErrorKind::model, at, fmt::format("weight '{}' has rank {}; a convolution's is at least 3", t.name(), t.dims_size()));
      auto* a = n.add_attribute();
      a->set_name("kernel_shape");
      a->set_type(onnx::AttributeProto::INTS);
      for (int k = 2; k < t.dims_size(); ++k) a->add_ints(t.dims(k));
      break;
    }
  }

  // Names: initializers, graph inputs, node outputs must be unique producers.
  std::map<std::string, onnx::TensorProto*> initializers;
  for (auto& t : *g->mutable_initializer()) {
    if (t.name().empty()) s.fail_at(ErrorKind::model, "initializer", "an initializer has no name");
    if (!initializers.emplace(t.name(), &t).second)
      s.fail_at(ErrorKind::model, fmt::format("initializer '{}'", t.name()), "defined twice");
  }
  if (g->sparse_initializer_size() > 0)
    s.fail_at(ErrorKind::unsupported, "sparse_initializer", "sparse initializers are not supported");
  std::set<std::string> defined;  // every value that exists before any node runs
  for (const auto& [name, t] : initializers) defined.insert(name);
  for (const auto& in : g->input()) {
    if (initializers.count(in.name())) continue;
    if (!defined.insert(in.name()).second)
      s.fail_at(ErrorKind::model, fmt::format("input '{}'", in.name()), "graph input declared twice");
  }
  std::set<std::string> produced;
  for (const auto& n : g->node())
    for (const auto& o : n.output()) {
      if (o.empty()) continue;
      if (defined.count(o) || !produced.insert(o).second)
        s.fail_at(ErrorKind::model, fmt::format("node '{}' ({})", n.name(), n.op_type()),
                  fmt::format("output '{}' is already defined by a graph input, initializer or another node", o));
    }
  for (const auto& n : g->node())
    for (const auto& in : n.input())
      if (!in.empty() && !defined.count(in) && !produced.count(in))
        s.fail_at(ErrorKind::model, fmt::format("node '{}' ({})", n.name(), n.op_type()),
                  fmt::format("input '{}' is produced by no node and is neither a graph input nor an initializer "
                              "(missing initializer?)",
                              in));
  for (const auto& o : g->output())
    if (!defined.count(o.name()) && !produced.count(o.name()))
      s.fail_at(ErrorKind::model, fmt::format("output '{}'", o.name()), "graph output is produced by no node");
  if (g->output_size() == 0) s.fail_at(ErrorKind::model, "graph", "the graph has no outputs");

  topo_sort(s, g, names);

  // Graph inputs: fix the batch dim, insist on static other dims.
  for (auto& in : *g->mutable_input()) {
    const std::string at = fmt::format("input '{}'", in.name());
    auto init = initializers.find(in.name());
    if (init != initializers.end()) {
      // IR < 4 lists initializers as inputs: the declarations must agree.
      const auto& t = *init->second;
      if (in.type().has_tensor_type()) {
        if (in.type().tensor_type().elem_type() != t.data_type())
          s.fail_at(ErrorKind::model, fmt::format("initializer '{}'", t.name()),
                    fmt::format("graph input declares {} but the initializer is {}",
                                onnx_type_name(in.type().tensor_type().elem_type()), onnx_type_name(t.data_type())));
        std::vector<int64_t> declared;
        if (static_shape(in.type(), &declared) && !std::equal(declared.begin(), declared.end(), t.dims().begin(), t.dims().end()))
          s.fail_at(ErrorKind::model, fmt::format("initializer '{}'", t.name()),
                    fmt::format("graph input declares shape {} but the initializer has {}", dims_str(declared),
                                dims_str({t.dims().begin(), t.dims().end()})));
      }
      continue;
    }
    if (!in.type().has_tensor_type())
      s.fail_at(ErrorKind::unsupported, at, "only tensor inputs are supported");
    ValueInfo vi;
    vi.name = in.name();
    if (!supported_dtype(in.type().tensor_type().elem_type(), &vi.dtype))
      s.fail_at(ErrorKind::unsupported, at,
                fmt::format("element type {} is not supported", onnx_type_name(in.type().tensor_type().elem_type())));
    if (!in.type().tensor_type().has_shape()) s.fail_at(ErrorKind::model, at, "the input has no shape");
    auto* shape = in.mutable_type()->mutable_tensor_type()->mutable_shape();
    for (int d = 0; d < shape->dim_size(); ++d) {
      auto* dim = shape->mutable_dim(d);
      const bool symbolic = !dim->has_dim_value() || dim->dim_value() <= 0;
      if (d == 0 && symbolic) {
        graph.dynamic_batch = true;
        dim->clear_dim_param();
        dim->set_dim_value(options.batch);
      } else if (dim->has_dim_param()) {
        s.fail_at(ErrorKind::unsupported, at,
                  fmt::format("dim {} is symbolic ('{}'); only the batch dim (0) may be", d, dim->dim_param()));
      } else if (dim->has_dim_value() && dim->dim_value() == 0) {  // valid ONNX, but empty
        s.fail_at(ErrorKind::unsupported, at, fmt::format("dim {} is 0 (an empty tensor); haq needs non-empty inputs", d));
      } else if (symbolic) {
        s.fail_at(ErrorKind::model, at,
                  fmt::format("dim {} is {}; dims must be positive", d, dim->has_dim_value() ? dim->dim_value() : 0));
      }
      vi.shape.push_back(dim->dim_value());
    }
    checked_numel(s, at, vi.shape);
    graph.inputs.push_back(vi);
  }
  if (graph.inputs.empty())
    s.fail_at(ErrorKind::unsupported, "graph", "the graph has no inputs (haq runs models on an input)");
  graph.batch = graph.dynamic_batch ? options.batch
                                    : (graph.inputs[0].shape.empty() ? 1 : graph.inputs[0].shape[0]);

  // A Reshape to a constant shape holding a dim beyond int32 makes libonnx
  // 1.12's shape inference allocate without bound: refused before it runs.
  {
    std::map<std::string, const onnx::TensorProto*> constant(initializers.begin(), initializers.end());
    for (const auto& n : g->node())
      if (n.op_type() == "Constant" && n.output_size() == 1)
        for (const auto& a : n.attribute())
          if (a.name() == "value" && a.has_t()) constant[n.output(0)] = &a.t();
    for (const auto& n : g->node()) {
      if (n.op_type() != "Reshape" || n.input_size() < 2) continue;
      auto it = constant.find(n.input(1));
      if (it == constant.end() || it->second->data_type() != onnx::TensorProto::INT64) continue;
      const onnx::TensorProto& t = *it->second;
      std::vector<int64_t> dims(t.int64_data().begin(), t.int64_data().end());
      if (t.has_raw_data()) {
        dims.resize(t.raw_data().size() / sizeof(int64_t));
        if (!dims.empty()) std::memcpy(dims.data(), t.raw_data().data(), dims.size() * sizeof(int64_t));
      }
      for (int64_t d : dims)
        if (d > std::numeric_limits<int32_t>::max())
          s.fail_at(ErrorKind::model, fmt::format("node '{}' ({})", n.name(), n.op_type()),
                    fmt::format("the shape holds {}, beyond any dim a tensor can have", d));
    }
  }

  // Shape inference by ONNX itself, from our fixed inputs: stale shapes the
  // exporter stored (value_info, outputs) would conflict with a new batch.
  g->clear_value_info();
  for (auto& o : *g->mutable_output())
    if (o.type().has_tensor_type()) o.mutable_type()->mutable_tensor_type()->clear_shape();
  try {
    // Errors tolerated (error_mode 0): haq's own checks below name the node
    // and the attribute better. No data propagation: in Debian's libonnx 1.12
    // it crashes on an Unsqueeze with an out-of-range axis and on a Reshape or
    // Concat of shape values below -1 (found by fuzz_onnx, kept in
    // tests/fuzz/regressions/onnx/); haq folds shape arithmetic itself.
    onnx::ShapeInferenceOptions opts(/*check_type=*/false, /*error_mode=*/0, /*data_prop=*/false);
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(), opts);
  } catch (const std::exception& e) {
    // ONNX lists the failed node and every node after it that then lacks a
    // type: the first is the cause.
    std::string what = e.what();
    if (auto nl = what.find('\n'); nl != std::string::npos) what.resize(nl);
    s.fail_at(ErrorKind::model, "shape inference", what);
  }
  auto record = [&](const onnx::ValueInfoProto& vi) {
    std::vector<int64_t> shape;
    if (static_shape(vi.type(), &shape)) s.onnx_shapes[vi.name()] = shape;
    DType t;
    if (vi.type().has_tensor_type() && supported_dtype(vi.type().tensor_type().elem_type(), &t))
      s.onnx_dtypes[vi.name()] = t;
  };
  for (const auto& vi : g->value_info()) record(vi);
  for (const auto& vi : g->output()) record(vi);

  // Constants.
  for (const auto& [name, t] : initializers) {
    Tensor tensor = tensor_from_proto(s, fmt::format("initializer '{}'", name), *t, model_dir);
    t->clear_raw_data();  // keeps the peak at about one copy of the weights
    t->clear_float_data();
    graph.shapes[name] = tensor.dims;
    graph.dtypes[name] = tensor.dtype;
    graph.constants.emplace(name, std::move(tensor));
  }
  for (const auto& in : graph.inputs) {
    graph.shapes[in.name] = in.shape;
    graph.dtypes[in.name] = in.dtype;
  }
  for (const auto& o : g->output()) {
    ValueInfo vi;
    vi.name = o.name();
    graph.outputs.push_back(vi);
  }

  // Nodes.
  graph.nodes.reserve(g->node_size());
  for (const auto& np : g->node()) {
    Node n;
    n.name = np.name();
    n.op = np.op_type();
    n.inputs.assign(np.input().begin(), np.input().end());
    n.outputs.assign(np.output().begin(), np.output().end());
    const std::string at = fmt::format("node '{}' ({})", n.name, n.op);
    for (const auto& a : np.attribute()) n.attrs[a.name()] = attribute_from_proto(s, at, a, model_dir);
    graph.nodes.push_back(std::move(n));
  }
  model.Clear();  // the big initializer bytes are no longer needed

  detail::process_nodes(s);
  detail::build_layers(s, options);
  return std::move(s.g);
}

}  // namespace

Graph import_onnx_bytes(const std::string& bytes, const std::string& source, const ImportOptions& options) {
  if (options.batch < 1) throw Error(ErrorKind::usage, source, "batch", "batch must be at least 1");
  if (bytes.empty()) throw Error(ErrorKind::model, source, "", "empty file; expected an ONNX model");
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    throw Error(ErrorKind::model, source, "",
                "not a valid ONNX model (protobuf parse failed: truncated or not an ONNX file)");
  return import_model(model, source, options);
}

Graph import_onnx(const std::string& path, const ImportOptions& options) {
  std::error_code ec;
  // The input policy: a regular file (never a FIFO that blocks or a device), bounded.
  check_input_file(path, kMaxModelFileBytes, "an ONNX model");
  if (options.batch < 1) throw Error(ErrorKind::usage, path, "batch", "batch must be at least 1");
  // Parse straight from the file: no second in-memory copy of a large model.
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::io, path, "", "cannot open the file");
  if (fs::file_size(path, ec) == 0 && !ec) throw Error(ErrorKind::model, path, "", "empty file; expected an ONNX model");
  onnx::ModelProto model;
  if (!model.ParseFromIstream(&in))
    throw Error(ErrorKind::model, path, "",
                "not a valid ONNX model (protobuf parse failed: truncated or not an ONNX file)");
  return import_model(model, path, options);
}

}  // namespace haq::model
