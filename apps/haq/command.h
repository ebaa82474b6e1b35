#pragma once
// A subcommand: its file defines the options and what runs. Each cmd_*.cpp
// registers itself with a static HAQ_REGISTER_COMMAND, so adding a command
// touches no other file.

#include <CLI/CLI.hpp>
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

/// Integers >= `lo`, with a message that says so (CLI11's NonNegativeNumber
/// prints the largest double in full as its bound).
inline CLI::Validator at_least(long long lo) {
  return CLI::Validator(
      [lo](std::string& text) -> std::string {
        try {
          size_t used = 0;
          const long long v = std::stoll(text, &used);
          if (used == text.size() && v >= lo) return {};
        } catch (const std::exception&) {
        }
        return "expected an integer >= " + std::to_string(lo) + ", got '" + text + "'";
      },
      "INT>=" + std::to_string(lo));
}
inline bool register_command(Command c) {
  command_registry().push_back(std::move(c));
  return true;
}

}  // namespace haq::app

#define HAQ_REGISTER_COMMAND(NAME, ORDER, SETUP) \
  static const bool haq_registered_##NAME = ::haq::app::register_command({#NAME, ORDER, SETUP})
