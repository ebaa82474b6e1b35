// The rounding cache's file format (haq/quant/rounding_cache.h): exact round
// trips, and every damaged or impossible file is Error(io) naming the byte.
#include <catch2/catch.hpp>

#include <cstring>

#include "haq/core/error.h"
#include "haq/core/hash.h"
#include "haq/quant/rounding_cache.h"

using namespace haq;
using Catch::Matchers::Contains;

namespace {

quant::RoundingCacheEntry entry(uint32_t layer, int w_bits, int a_bits, int64_t channels, int64_t per) {
  quant::RoundingCacheEntry e;
  e.key = 0x0123456789abcdefull + layer;
  e.layer = layer;
  e.name = "conv" + std::to_string(layer);
  e.w_bits = w_bits;
  e.a_bits = a_bits;
  e.weights.bits = w_bits;
  e.weights.channels = channels;
  e.weights.per_channel = per;
  const int top = quant::signed_max_level(w_bits);
  for (int64_t i = 0; i < channels * per; ++i) e.weights.values.push_back(static_cast<int8_t>(i % (2 * top + 1) - top));
  for (int64_t c = 0; c < channels; ++c) e.weights.scales.push_back(0.01f * static_cast<float>(c + 1));
  e.stats = {channels * per, 7, 1, 12.5, 3.25};
  return e;
}

// Recomputes the trailing checksum, so that a test reaches the parser's
// checks behind it.
std::string resealed(std::string bytes) {
  const uint64_t h = Hash64().bytes(bytes.data(), bytes.size() - 8).value();
  std::memcpy(bytes.data() + bytes.size() - 8, &h, 8);
  return bytes;
}

std::string error_of(const std::string& bytes) {
  try {
    (void)quant::parse_rounding_cache(bytes, "c.bin");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("rounding cache: entries round-trip exactly") {
  const std::vector<quant::RoundingCacheEntry> in = {entry(0, 3, 0, 4, 9), entry(5, 8, 4, 2, 3)};
  const std::string bytes = quant::write_rounding_cache(in);
  // 8 magic + 4 version + 8 count + entries + 8 checksum.
  CHECK(bytes.size() == 28 + quant::rounding_cache_entry_bytes("conv0", 4, 9) +
                            quant::rounding_cache_entry_bytes("conv5", 2, 3));
  const quant::RoundingCacheFile f = quant::parse_rounding_cache(bytes, "c.bin");
  CHECK_FALSE(f.other_version);
  REQUIRE(f.entries.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    const auto &a = in[i], &b = f.entries[i];
    CHECK(b.key == a.key);
    CHECK(b.layer == a.layer);
    CHECK(b.name == a.name);
    CHECK(b.w_bits == a.w_bits);
    CHECK(b.a_bits == a.a_bits);
    CHECK(b.weights.bits == a.w_bits);
    CHECK(b.weights.channels == a.weights.channels);
    CHECK(b.weights.per_channel == a.weights.per_channel);
    CHECK(b.weights.values == a.weights.values);
    CHECK(b.weights.scales == a.weights.scales);
    CHECK(b.stats.weights == a.stats.weights);
    CHECK(b.stats.flipped == 7);
    CHECK(b.stats.kept_nearest == 1);
    CHECK(b.stats.error_nearest == 12.5);
    CHECK(b.stats.error_adaround == 3.25);
  }
  CHECK(quant::write_rounding_cache(f.entries) == bytes);
  CHECK(quant::parse_rounding_cache(quant::write_rounding_cache({}), "c.bin").entries.empty());
}

TEST_CASE("rounding cache: another file, damage, truncation and impossible values are errors naming the byte") {
  const std::string good = quant::write_rounding_cache({entry(0, 3, 0, 4, 9), entry(1, 4, 2, 3, 2)});
  CHECK_THAT(error_of("\x08\x01\x12\x04onnx"), Contains("c.bin: byte 0: not a haq rounding cache"));
  CHECK_THAT(error_of(""), Contains("not a haq rounding cache"));
  // Every truncation fails cleanly.
  for (size_t n = 0; n < good.size(); ++n) CHECK_FALSE(error_of(good.substr(0, n)).empty());
  // One changed byte: the checksum.
  std::string flipped = good;
  flipped[40] ^= 1;
  CHECK_THAT(error_of(flipped), Contains("the checksum does not match"));
  // Behind the checksum: a level outside the bits' range (3 bits: -3..3).
  quant::RoundingCacheEntry wide = entry(0, 3, 0, 1, 2);
  wide.weights.values[1] = 4;
  const std::string w = quant::write_rounding_cache({wide});
  CHECK_THAT(error_of(w), Contains("level 4 outside [-3, 3] of 3 bits"));
  const size_t level_at = 20 + 8 + 4 + 4 + wide.name.size() + 4 + 4 + 8 + 8 + 1;
  CHECK_THAT(error_of(w), Contains(fmt::format("byte {}:", level_at)));
  quant::RoundingCacheEntry neg = entry(0, 3, 0, 1, 2);
  neg.weights.scales[0] = -1.f;
  CHECK_THAT(error_of(quant::write_rounding_cache({neg})), Contains("scale -1 is not a finite value >= 0"));
  quant::RoundingCacheEntry bits = entry(0, 3, 0, 1, 2);
  bits.w_bits = 9;
  CHECK_THAT(error_of(quant::write_rounding_cache({bits})), Contains("w_bits 9 / a_bits 0 out of range"));
  // Counts the file cannot hold are refused before anything is allocated.
  std::string big = good;
  const uint64_t huge = uint64_t{1} << 60;
  std::memcpy(big.data() + 12, &huge, 8);
  CHECK_THAT(error_of(resealed(big)), Contains("entries cannot fit"));
  std::string dims = good;
  std::memcpy(dims.data() + 20 + 8 + 4 + 4 + 5 + 4 + 4, &huge, 8);
  CHECK_THAT(error_of(resealed(dims)), Contains("levels cannot fit"));
  std::string extra = good;
  extra.insert(extra.size() - 8, "zz");
  CHECK_THAT(error_of(resealed(extra)), Contains("2 bytes after the last entry"));
  // Another format version is not an error: no entries, recomputed.
  std::string v2 = good;
  v2[8] = 2;
  const quant::RoundingCacheFile f = quant::parse_rounding_cache(v2, "c.bin");
  CHECK(f.other_version);
  CHECK(f.entries.empty());
}
