#pragma once
// Command-line mistakes, found before CLI11 parses so every one reads
// `haq: error: ...` with a suggestion: a misspelled option or subcommand
// gets "did you mean", whatever else is missing or wrong on the line.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

namespace haq::app {

/// Edit distance (insertions, deletions, substitutions, adjacent swaps).
size_t edit_distance(const std::string& a, const std::string& b);

/// The candidate closest to `word` if it is close enough to be a likely typo
/// (a unique prefix, or at most a third of the word's letters wrong, >= 1).
std::optional<std::string> closest_match(const std::string& word,
                                         const std::vector<std::string>& candidates);

/// The first unknown subcommand or `--option` on the command line, as a
/// message ("unknown option '--dat'; did you mean '--data'?" and a line
/// naming the subcommand's --help),
/// or nothing if every word is known. Checks only names: values and
/// positionals are left to CLI11.
std::optional<std::string> find_unknown_name(const CLI::App& app, int argc,
                                             const char* const* argv);

/// The message of a CLI11 parse error in haq's form: "haq: error: WHAT" plus
/// a line naming the help of the subcommand that failed.
std::string parse_error_message(const CLI::App& app, const CLI::ParseError& e);

}  // namespace haq::app
