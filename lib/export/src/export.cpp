#include "haq/export/export.h"

#include <fmt/format.h>

#include "haq/core/error.h"

namespace haq::exporter {

model::QdqSpec qdq_spec(engine::Engine& engine, const quant::Policy& p) {
  const model::Graph& g = engine.graph();
  if (p.layers.size() != g.layers.size())
    fail(ErrorKind::policy, g.source, "", "the policy has {} layers, the model {}", p.layers.size(), g.layers.size());
  model::QdqSpec spec;
  spec.doc = fmt::format("haq export: {}", quant::policy_key(p));
  for (size_t i = 0; i < g.layers.size(); ++i) {
    const quant::LayerBits& b = p.layers[i];
    if (b.fp32) continue;
    const model::Layer& l = g.layers[i];
    engine::Engine::QuantizedLayer q = engine.quantized_layer(i, b.w_bits, b.a_bits);
    if (q.act.binary())
      fail(ErrorKind::unsupported, g.source, fmt::format("layer '{}'", l.name),
           "a signed 1-bit activation is a sign function, which Q/DQ cannot express; use a_bits >= 2");
    model::QdqLayer e;
    e.name = l.name;
    e.input = l.input;
    e.output = l.output;
    e.act_scale = q.act.scale;
    e.act_unsigned = q.act.is_unsigned;
    e.act_lo = q.act.lo;
    e.act_hi = q.act.hi;
    if (l.kind == model::LayerKind::act_matmul) {
      if (q.act_b.binary())
        fail(ErrorKind::unsupported, g.source, fmt::format("layer '{}'", l.name),
             "a 1-bit second operand is a sign function, which Q/DQ cannot express; use w_bits >= 2");
      e.act_matmul = true;
      e.input_b = l.input_b;
      e.b_scale = q.act_b.scale;
      e.b_lo = q.act_b.lo;
      e.b_hi = q.act_b.hi;
      spec.layers.push_back(std::move(e));
      continue;
    }
    if (l.kind == model::LayerKind::conv)
      e.weight_shape = {l.c_out, l.c_in / l.groups, l.kernel_h, l.kernel_w};
    else
      e.weight_shape = {l.c_out, l.c_in};
    e.weight_levels = std::move(q.weights.values);
    e.weight_scales = std::move(q.weights.scales);
    e.bias = std::move(q.bias);
    spec.layers.push_back(std::move(e));
  }
  return spec;
}

void export_qdq(engine::Engine& engine, const quant::Policy& p, const std::string& src_model_path,
                const std::string& out_path) {
  model::write_qdq_onnx(src_model_path, qdq_spec(engine, p), out_path);
}

}  // namespace haq::exporter
