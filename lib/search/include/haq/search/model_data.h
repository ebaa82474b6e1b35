#pragma once
/// \file
/// What a dataset takes from the model it feeds, shared by `haq search`'s
/// pipeline and the eval, check and export commands: the DataSpec (class
/// count, input shape), the datasets' notes, the largest activation (for
/// the batch bound) and the graph at a chosen batch.

#include <cstdint>
#include <string>

#include "haq/data/dataset.h"
#include "haq/model/graph.h"

namespace haq::search {

/// Elements per sample of the model's first output (its classes).
int64_t model_classes(const model::Graph& g);

/// Elements per sample of the model's largest activation.
int64_t largest_activation(const model::Graph& g);

/// The DataSpec for `data` fed to `g`: preprocessing, label map, the model's
/// class count (labels are checked against it) and input shape (channels).
data::DataSpec data_spec_for(const std::string& data, const data::Preprocess& pre, const std::string& labels,
                             const model::Graph& g);

/// Prints the datasets' note (e.g. "the same images serve both splits") to
/// stderr, once even when both splits carry it; first checks that the model
/// takes the samples (that error, not a note and then the error).
void print_data_note(const data::Dataset& a, const data::Dataset& b, const model::Graph& g);

/// `g` at `batch`: re-imported from `path` if its batch dim is symbolic and
/// differs; a fixed batch stays.
model::Graph graph_at_batch(model::Graph g, const std::string& path, int64_t batch,
                            model::ImportOptions io = {});

}  // namespace haq::search
