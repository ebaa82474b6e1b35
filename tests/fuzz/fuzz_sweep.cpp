// Fuzz target: the sweep file reader (`haq sweep FILE`: the strict JSON
// reader, the lists and their product, job ids), then the job list as
// sweep.json writes it. Paths in a sweep file are relative to the current
// folder, the repository's root here (its models and profiles exist), so
// the seeds are real sweep files; the folder is restored after each input.
#include <unistd.h>

#include <filesystem>
#include <string>

#include "fuzz_harness.h"
#include "haq/search/sweep.h"

namespace haq::fuzz {

Outcome run_sweep(const uint8_t* data, size_t size) {
  static const std::string file = (work_dir() / "sweep.json").string();
  write_bytes(file, data, size);
  const std::filesystem::path here = std::filesystem::current_path();
  std::filesystem::current_path(HAQ_SOURCE_DIR);
  struct Back {
    std::filesystem::path to;
    ~Back() { std::filesystem::current_path(to); }
  } back{here};
  return guarded([&] {
    const search::SweepSpec spec = search::read_sweep_file(file);
    (void)search::sweep_json(spec, search::expand_jobs(spec)).dump();
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_sweep)
