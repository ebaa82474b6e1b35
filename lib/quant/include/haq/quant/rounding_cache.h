#pragma once
/// \file
/// The file format of the adaptive-rounding cache (docs/quantization.md,
/// "The rounding cache"): adaptively rounded weights of (layer, w_bits,
/// a_bits) combinations, each under the key of what it was computed from
/// (the engine computes the keys: haq/engine/engine.h). Little-endian:
///
///     "HAQRCACH" u32 format-version  u64 entry-count
///     entry*:    u64 key  u32 layer  u32 name-length name  i32 w_bits  i32 a_bits
///                i64 channels  i64 per_channel  i8 levels[channels*per_channel]
///                f32 scales[channels]  i64 weights flipped kept_nearest
///                f64 error_nearest error_adaround
///     u64 Hash64 of every byte before it

#include <cstdint>
#include <string>
#include <vector>

#include "haq/quant/adaround.h"
#include "haq/quant/quantizer.h"

namespace haq::quant {

inline constexpr uint32_t kRoundingCacheVersion = 1;

/// One adaptively rounded weight set.
struct RoundingCacheEntry {
  uint64_t key = 0;       ///< what it was computed from (the engine's key)
  uint32_t layer = 0;     ///< index in Graph::layers
  std::string name;       ///< the layer's name
  int32_t w_bits = 0;     ///< 2..8
  int32_t a_bits = 0;     ///< the input bits it compensates (0: the fp32 input)
  QuantizedWeights weights;
  AdaRoundStats stats;    ///< what the rounding did
};

/// A cache file's contents.
struct RoundingCacheFile {
  /// A haq rounding cache of another format version: no entries (the
  /// caller recomputes and rewrites it).
  bool other_version = false;
  std::vector<RoundingCacheEntry> entries;
};

/// The bytes of a cache file holding `entries`.
std::string write_rounding_cache(const std::vector<RoundingCacheEntry>& entries);

/// Parses the bytes of a cache file. A file that is not a rounding cache
/// (another magic), truncated, damaged (checksum) or holding impossible
/// values (levels outside the bits' range, a scale that is negative or not
/// finite, counts the bytes cannot hold) is Error(io) naming `file` and the
/// byte offset.
RoundingCacheFile parse_rounding_cache(const std::string& bytes, const std::string& file);

/// Bytes one entry takes in the file.
uint64_t rounding_cache_entry_bytes(const std::string& name, int64_t channels, int64_t per_channel);

}  // namespace haq::quant
