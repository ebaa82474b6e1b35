// Fuzz target: the search config reader (`haq search --config FILE`: core's
// strict JSON reader, every key's type and range, the preprocessing spec,
// bit ranges and durations), then the effective config back to JSON.
#include <string>

#include "fuzz_harness.h"
#include "haq/search/search.h"

namespace haq::fuzz {

Outcome run_config(const uint8_t* data, size_t size) {
  static const std::string file = (work_dir() / "config.json").string();
  write_bytes(file, data, size);
  return guarded([&] {
    const search::SearchOptions o = search::read_search_config(file, search::default_search_options());
    (void)search::search_options_to_json(o).dump();
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_config)
