#pragma once
// The config keys a search config file and a sweep file share (internal to
// lib/search): one reader, so both accept the same keys with the same checks.
#include "haq/core/json_reader.h"
#include "haq/search/search.h"

namespace haq::search::detail {

/// Reads data, preprocess, labels, metric, episodes, time_budget, w_bits, a_bits, eval_samples,
/// calib_samples, test_samples, batch, select_samples, select_top,
/// refine_rounds, refine_moves and max_front_points from `obj` into `o`.
void read_shared_keys(JsonObject& obj, SearchOptions& o);

}  // namespace haq::search::detail
