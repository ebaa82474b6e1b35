#pragma once
/// \file
/// Content hashes: policy.json records its profile's, so that `haq check`
/// notices a profile edited since the search; the adaptive-rounding cache
/// keys its entries by what they were computed from.

#include <cstdint>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace haq {

/// FNV-1a (64 bits) of `bytes`, as "fnv1a64:" and 16 hex digits. Not a
/// cryptographic hash: it detects edits, not forgeries.
inline std::string content_hash(const std::string& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("fnv1a64:{:016x}", h);
}

/// A streaming 64-bit hash of bytes, eight at a time (several GB/s: the
/// adaptive-rounding cache hashes a model's calibration matrices, up to a
/// GiB). The same bytes fed in the same pieces give the same value on every
/// little-endian machine. Not a cryptographic hash.
class Hash64 {
 public:
  Hash64& bytes(const void* data, size_t n) {
    const auto* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    if (n > i) std::memcpy(&tail, p + i, n - i);
    mix(tail ^ (uint64_t{n - i} << 56));
    mix(uint64_t{n});
    return *this;
  }
  Hash64& u64(uint64_t v) { return bytes(&v, 8); }
  Hash64& f64(double v) { return bytes(&v, 8); }
  Hash64& str(const std::string& s) { return bytes(s.data(), s.size()); }
  /// The hash of everything fed so far (a splitmix64 finalizer of the state).
  uint64_t value() const {
    uint64_t z = h_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }

 private:
  void mix(uint64_t w) {
    w *= 0x87c37b91114253d5ull;
    w = (w << 31) | (w >> 33);
    w *= 0x4cf5ad432745937full;
    h_ ^= w;
    h_ = ((h_ << 27) | (h_ >> 37)) * 5 + 0x52dce729;
  }
  uint64_t h_ = 0x9e3779b97f4a7c15ull;
};

}  // namespace haq
