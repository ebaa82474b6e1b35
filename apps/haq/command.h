#pragma once
// A subcommand: its file defines the options and what runs. Each cmd_*.cpp
// registers itself with a static HAQ_REGISTER_COMMAND, so adding a command
// touches no other file.

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <functional>
#include <string>
#include <vector>

namespace haq::app {

/// What a parsed subcommand runs; returns the exit code (0 ok, 1 check failed).
using Run = std::function<int()>;

struct Command {
  std::string name;
  int order;  ///< position in `haq --help`
  /// Adds options to `sub` and returns what to run once parsed.
  std::function<Run(CLI::App& sub)> setup;
};

std::vector<Command>& command_registry();

/// The integer `text` spells exactly (digits after an optional '-': no '+',
/// blanks, fraction or exponent), if it is within long long.
inline std::optional<long long> parse_exact_integer(const std::string& text) {
  long long v = 0;
  const char* end = text.data() + text.size();
  const auto r = std::from_chars(text.data(), end, v);
  if (text.empty() || r.ec != std::errc() || r.ptr != end) return std::nullopt;
  return v;
}

/// What a rejected option value was, for "got ...".
inline std::string shown_value(const std::string& text) {
  if (text.empty()) return "an empty value";
  return text.size() > 40 ? text.substr(0, 37) + "..." : text;
}

/// Integers in lo..hi, checked on the text before CLI11 converts it, worded
/// as the config reader words the same key ("--episodes: expected an
/// integer in 1..1000000, got 0"; CLI11's own ranges print doubles in full
/// and let a negative number wrap into an unsigned option). An open range
/// reads "a non-negative integer" unless `full_bounds`.
inline CLI::Validator int_in(long long lo, long long hi, bool full_bounds = false) {
  const bool open = hi == std::numeric_limits<long long>::max() && !full_bounds;
  const std::string want = !open ? "an integer in " + std::to_string(lo) + ".." + std::to_string(hi)
                           : lo == 0 ? std::string("a non-negative integer")
                           : lo == 1 ? std::string("a positive integer")
                                     : "an integer >= " + std::to_string(lo);
  const std::string bounds = open ? ">=" + std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
  return CLI::Validator(
      [lo, hi, want](std::string& text) -> std::string {
        const auto v = parse_exact_integer(text);
        if (v && *v >= lo && *v <= hi) return {};
        return "expected " + want + ", got " + shown_value(text);
      },
      bounds);
}

/// Integers >= `lo`.
inline CLI::Validator at_least(long long lo) { return int_in(lo, std::numeric_limits<long long>::max()); }

/// A seed: 0..2^63-1, the range a config file's "seed" accepts.
inline CLI::Validator seed_value() { return int_in(0, std::numeric_limits<long long>::max(), true); }

/// A finite number (no nan, inf or trailing text).
inline CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        double v = 0;
        size_t used = 0;
        try {
          v = std::stod(text, &used);
        } catch (const std::exception&) {
          used = 0;
        }
        if (!text.empty() && used == text.size() && std::isfinite(v)) return {};
        return "expected a finite number, got " + shown_value(text);
      },
      "NUMBER");
}

/// No option or positional takes "" (`--bits ""` is not w8a8, `--out ""` not
/// the current folder): added to every option by main().
inline CLI::Validator non_empty_value() {
  return CLI::Validator(
      [](std::string& text) -> std::string { return text.empty() ? "expected a value, got an empty one" : ""; },
      "");
}

inline bool register_command(Command c) {
  command_registry().push_back(std::move(c));
  return true;
}

}  // namespace haq::app

#define HAQ_REGISTER_COMMAND(NAME, ORDER, SETUP) \
  static const bool haq_registered_##NAME = ::haq::app::register_command({#NAME, ORDER, SETUP})
