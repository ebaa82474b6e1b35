// What a dataset takes from the model it feeds (see model_data.h).
#include "haq/search/model_data.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

namespace haq::search {

namespace {
// Elements per sample of a shape at the graph's batch; dims below 1 count as 1.
int64_t per_sample(const model::Graph& g, const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= std::max<int64_t>(d, 1);
  return n / std::max<int64_t>(1, g.batch);
}
}  // namespace

int64_t model_classes(const model::Graph& g) { return per_sample(g, g.shape(g.outputs.at(0).name)); }

int64_t largest_activation(const model::Graph& g) {
  int64_t top = 0;
  for (const auto& [name, shape] : g.shapes)
    if (!g.is_constant(name)) top = std::max(top, per_sample(g, shape));
  return top;
}

data::DataSpec data_spec_for(const std::string& data, const data::Preprocess& pre, const std::string& labels,
                             const model::Graph& g) {
  data::DataSpec spec;
  spec.data = data;
  spec.preprocess = pre;
  spec.labels = labels;
  spec.num_classes = model_classes(g);
  if (!g.inputs.empty()) spec.model_input = g.inputs[0].shape;
  return spec;
}

void print_data_note(const data::Dataset& a, const data::Dataset& b, const model::Graph& g) {
  for (const data::Dataset* d : {&a, &b})
    if (d->size() > 0 && !g.inputs.empty()) {
      std::vector<float> one(static_cast<size_t>(d->sample_elems()));
      data::to_model_layout(*d, {0}, g.inputs[0].shape, one.data());
    }
  if (!a.note.empty()) fmt::print(stderr, "haq: note: {}\n", a.note);
  if (!b.note.empty() && b.note != a.note) fmt::print(stderr, "haq: note: {}\n", b.note);
}

model::Graph graph_at_batch(model::Graph g, const std::string& path, int64_t batch, model::ImportOptions io) {
  if (!g.dynamic_batch || g.batch == batch) return g;
  io.batch = batch;
  return model::import_onnx(path, io);
}

}  // namespace haq::search
