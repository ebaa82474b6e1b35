#pragma once
/// \file
/// Seeded randomness. One user seed; each component derives its own engine
/// from (seed, component name) so that adding a component never changes the
/// stream another one sees. Never std::random_device or rand().

#include <cstdint>
#include <random>
#include <string_view>

namespace haq {

/// A 64-bit seed derived from a user seed and a component name (SplitMix64 over FNV-1a).
uint64_t derive_seed(uint64_t seed, std::string_view component);

/// The engine a component should use.
inline std::mt19937_64 make_rng(uint64_t seed, std::string_view component) {
  return std::mt19937_64(derive_seed(seed, component));
}

}  // namespace haq
