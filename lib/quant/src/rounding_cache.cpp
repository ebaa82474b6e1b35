// The adaptive-rounding cache's file format (haq/quant/rounding_cache.h).
#include "haq/quant/rounding_cache.h"

#include <cmath>
#include <cstring>

#include "haq/core/error.h"
#include "haq/core/hash.h"

namespace haq::quant {

namespace {

constexpr char kMagic[8] = {'H', 'A', 'Q', 'R', 'C', 'A', 'C', 'H'};
constexpr uint64_t kHeaderBytes = 8 + 4 + 8;
constexpr uint64_t kFixedEntryBytes = 8 + 4 + 4 + 4 + 4 + 8 + 8 + 3 * 8 + 2 * 8;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads the file front to back; every failure names the byte offset.
class Cursor {
 public:
  Cursor(const std::string& bytes, size_t end, const std::string& file) : b_(bytes), end_(end), file_(file) {}
  size_t offset() const { return at_; }
  size_t left() const { return end_ - at_; }
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + at_, sizeof v);
    at_ += sizeof v;
    return v;
  }
  const char* take(size_t n, const char* what) {
    need(n, what);
    const char* p = b_.data() + at_;
    at_ += n;
    return p;
  }
  template <typename... Args>
  [[noreturn]] void bad(size_t at, fmt::format_string<Args...> format, Args&&... args) const {
    fail(ErrorKind::io, file_, fmt::format("byte {}", at), "not a valid haq rounding cache: {}",
         fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  void need(size_t n, const char* what) const {
    if (n > left()) bad(at_, "truncated: {} needs {} bytes, {} are left", what, n, left());
  }
  const std::string& b_;
  size_t end_, at_ = 0;
  const std::string& file_;
};

}  // namespace

uint64_t rounding_cache_entry_bytes(const std::string& name, int64_t channels, int64_t per_channel) {
  return kFixedEntryBytes + name.size() + static_cast<uint64_t>(channels) * static_cast<uint64_t>(per_channel) +
         4 * static_cast<uint64_t>(channels);
}

std::string write_rounding_cache(const std::vector<RoundingCacheEntry>& entries) {
  std::string out(kMagic, 8);
  put<uint32_t>(out, kRoundingCacheVersion);
  put<uint64_t>(out, entries.size());
  for (const RoundingCacheEntry& e : entries) {
    const QuantizedWeights& q = e.weights;
    put<uint64_t>(out, e.key);
    put<uint32_t>(out, e.layer);
    put<uint32_t>(out, static_cast<uint32_t>(e.name.size()));
    out += e.name;
    put<int32_t>(out, e.w_bits);
    put<int32_t>(out, e.a_bits);
    put<int64_t>(out, q.channels);
    put<int64_t>(out, q.per_channel);
    out.append(reinterpret_cast<const char*>(q.values.data()), q.values.size());
    out.append(reinterpret_cast<const char*>(q.scales.data()), q.scales.size() * sizeof(float));
    put<int64_t>(out, e.stats.weights);
    put<int64_t>(out, e.stats.flipped);
    put<int64_t>(out, e.stats.kept_nearest);
    put<double>(out, e.stats.error_nearest);
    put<double>(out, e.stats.error_adaround);
  }
  put<uint64_t>(out, Hash64().bytes(out.data(), out.size()).value());
  return out;
}

RoundingCacheFile parse_rounding_cache(const std::string& bytes, const std::string& file) {
  RoundingCacheFile f;
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kMagic, 8) != 0)
    fail(ErrorKind::io, file, "byte 0", "not a haq rounding cache (it does not start with \"HAQRCACH\")");
  if (bytes.size() < kHeaderBytes + 8)
    fail(ErrorKind::io, file, fmt::format("byte {}", bytes.size()),
         "not a valid haq rounding cache: truncated: {} bytes, a cache has at least {}", bytes.size(),
         kHeaderBytes + 8);
  Cursor c(bytes, bytes.size() - 8, file);
  c.take(8, "the magic");
  const uint32_t version = c.get<uint32_t>("the format version");
  if (version != kRoundingCacheVersion) {
    f.other_version = true;
    return f;
  }
  uint64_t stored = 0;
  std::memcpy(&stored, bytes.data() + bytes.size() - 8, 8);
  if (Hash64().bytes(bytes.data(), bytes.size() - 8).value() != stored)
    fail(ErrorKind::io, file, fmt::format("byte {}", bytes.size() - 8),
         "not a valid haq rounding cache: the checksum does not match the contents (damaged)");
  const size_t count_at = c.offset();
  const uint64_t count = c.get<uint64_t>("the entry count");
  if (count > c.left() / kFixedEntryBytes)
    c.bad(count_at, "{} entries cannot fit in the {} bytes left", count, c.left());
  f.entries.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    RoundingCacheEntry e;
    e.key = c.get<uint64_t>("an entry's key");
    e.layer = c.get<uint32_t>("an entry's layer");
    const uint32_t name_len = c.get<uint32_t>("an entry's name length");
    e.name.assign(c.take(name_len, "an entry's name"), name_len);
    const size_t bits_at = c.offset();
    e.w_bits = c.get<int32_t>("an entry's w_bits");
    e.a_bits = c.get<int32_t>("an entry's a_bits");
    if (e.w_bits < 2 || e.w_bits > 8 || e.a_bits < 0 || e.a_bits > 8)
      c.bad(bits_at, "entry {}: w_bits {} / a_bits {} out of range (2..8 / 0..8)", i, e.w_bits, e.a_bits);
    QuantizedWeights& q = e.weights;
    q.bits = e.w_bits;
    const size_t dims_at = c.offset();
    q.channels = c.get<int64_t>("an entry's channels");
    q.per_channel = c.get<int64_t>("an entry's elements per channel");
    if (q.channels <= 0 || q.per_channel <= 0 ||
        static_cast<uint64_t>(q.per_channel) > c.left() / static_cast<uint64_t>(q.channels))
      c.bad(dims_at, "entry {}: {} x {} levels cannot fit in the {} bytes left", i, q.channels, q.per_channel,
            c.left());
    const size_t n = static_cast<size_t>(q.channels * q.per_channel);
    const size_t levels_at = c.offset();
    const char* levels = c.take(n, "an entry's levels");
    q.values.assign(reinterpret_cast<const int8_t*>(levels), reinterpret_cast<const int8_t*>(levels) + n);
    const int32_t top = signed_max_level(e.w_bits);
    for (size_t k = 0; k < n; ++k)
      if (q.values[k] < -top || q.values[k] > top)
        c.bad(levels_at + k, "entry {}: level {} outside [-{}, {}] of {} bits", i, q.values[k], top, top,
              e.w_bits);
    const size_t scales_at = c.offset();
    const char* scales = c.take(static_cast<size_t>(q.channels) * sizeof(float), "an entry's scales");
    q.scales.resize(static_cast<size_t>(q.channels));
    std::memcpy(q.scales.data(), scales, q.scales.size() * sizeof(float));
    for (size_t k = 0; k < q.scales.size(); ++k)
      if (!std::isfinite(q.scales[k]) || q.scales[k] < 0)
        c.bad(scales_at + 4 * k, "entry {}: scale {} is not a finite value >= 0", i, q.scales[k]);
    e.stats.weights = c.get<int64_t>("an entry's statistics");
    e.stats.flipped = c.get<int64_t>("an entry's statistics");
    e.stats.kept_nearest = c.get<int64_t>("an entry's statistics");
    e.stats.error_nearest = c.get<double>("an entry's statistics");
    e.stats.error_adaround = c.get<double>("an entry's statistics");
    f.entries.push_back(std::move(e));
  }
  if (c.left() != 0) c.bad(c.offset(), "{} bytes after the last entry", c.left());
  return f;
}

}  // namespace haq::quant
