#include "haq/model/graph.h"

#include "haq/core/error.h"

namespace haq::model {

const char* to_string(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::u8: return "uint8";
    case DType::i8: return "int8";
    case DType::i32: return "int32";
    case DType::i64: return "int64";
    case DType::boolean: return "bool";
  }
  return "unknown";
}

const char* to_string(LayerKind k) {
  switch (k) {
    case LayerKind::conv: return "conv";
    case LayerKind::gemm: return "gemm";
    case LayerKind::matmul: return "matmul";
    case LayerKind::act_matmul: return "act_matmul";
  }
  return "unknown";
}

int64_t Tensor::numel() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

int64_t Node::get_int(const std::string& attr, int64_t fallback) const {
  auto it = attrs.find(attr);
  return it == attrs.end() ? fallback : it->second.i;
}

float Node::get_float(const std::string& attr, float fallback) const {
  auto it = attrs.find(attr);
  return it == attrs.end() ? fallback : it->second.f;
}

std::vector<int64_t> Node::get_ints(const std::string& attr, std::vector<int64_t> fallback) const {
  auto it = attrs.find(attr);
  return it == attrs.end() ? fallback : it->second.ints;
}

std::string Node::get_string(const std::string& attr, std::string fallback) const {
  auto it = attrs.find(attr);
  return it == attrs.end() ? fallback : it->second.s;
}

const std::vector<int64_t>& Graph::shape(const std::string& value) const {
  auto it = shapes.find(value);
  if (it == shapes.end()) fail(ErrorKind::internal, source, value, "value has no known shape");
  return it->second;
}

int Graph::find_layer(const std::string& name) const {
  for (size_t i = 0; i < layers.size(); ++i)
    if (layers[i].name == name) return static_cast<int>(i);
  return -1;
}

}  // namespace haq::model
