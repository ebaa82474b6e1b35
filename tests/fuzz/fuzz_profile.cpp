// Fuzz target: the hardware-profile parser (strict JSON reader, schema checks,
// and for `table` profiles the CSV), then the profile back to JSON. The input
// is the profile JSON, optionally followed by a NUL byte and the contents of
// the table CSV (written as example-table.csv next to the profile); without a
// NUL that file is the repository's example.
#include <cstring>
#include <filesystem>
#include <string>

#include "fuzz_harness.h"
#include "haq/core/error.h"
#include "haq/core/files.h"
#include "haq/core/json_reader.h"
#include "haq/hw/profile.h"

namespace haq::fuzz {

Outcome run_profile(const uint8_t* data, size_t size) {
  static const std::string example_csv =
      read_file((std::filesystem::path(HAQ_SOURCE_DIR) / "hardware-profiles/example-table.csv").string());
  static const std::string dir = (work_dir() / "profile").string();
  static const std::string file = dir + "/profile.json";
  static const bool made = std::filesystem::create_directories(dir);
  (void)made;

  const auto* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t json_size = nul ? static_cast<size_t>(nul - data) : size;
  const std::string json(reinterpret_cast<const char*>(data), json_size);
  if (nul)
    write_bytes(dir + "/example-table.csv", nul + 1, size - json_size - 1);
  else
    write_bytes(dir + "/example-table.csv", reinterpret_cast<const uint8_t*>(example_csv.data()),
                example_csv.size());
  return guarded([&] {
    const JsonValue root = parse_json(json, file, ErrorKind::profile);
    const hw::HardwareProfile p = hw::profile_from_json(root, dir);
    (void)hw::profile_to_json(p).dump();
  });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_profile)
