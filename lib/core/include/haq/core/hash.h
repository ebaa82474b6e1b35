#pragma once
/// \file
/// A content hash for recorded inputs: policy.json records its profile's, so
/// that `haq check` notices a profile edited since the search.

#include <cstdint>
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

}  // namespace haq
