// Fuzz target: the rounding cache reader (haq/quant/rounding_cache.h, what
// --rounding-cache and OUT/rounding-cache.bin are read with). The first byte
// picks the mode: even, the rest is the file as it is; odd, the file with its
// trailing checksum recomputed, so that mutations get past the checksum to
// the counts, dimensions, levels and scales behind it.
#include <cstring>
#include <string>

#include "fuzz_harness.h"
#include "haq/core/hash.h"
#include "haq/quant/rounding_cache.h"

namespace haq::fuzz {

Outcome run_rounding_cache(const uint8_t* data, size_t size) {
  const bool reseal = size > 0 && (data[0] & 1) != 0;
  std::string bytes = size > 0 ? std::string(reinterpret_cast<const char*>(data) + 1, size - 1) : std::string();
  if (reseal && bytes.size() >= 8) {
    const uint64_t h = Hash64().bytes(bytes.data(), bytes.size() - 8).value();
    std::memcpy(bytes.data() + bytes.size() - 8, &h, 8);
  }
  return guarded([&] { (void)quant::parse_rounding_cache(bytes, "rounding-cache.bin"); });
}

}  // namespace haq::fuzz

HAQ_FUZZ_TARGET(haq::fuzz::run_rounding_cache)
