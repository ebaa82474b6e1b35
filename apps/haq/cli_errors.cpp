// Command-line mistakes in haq's form, with "did you mean" (see cli_errors.h).
#include "cli_errors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>

namespace haq::app {

size_t edit_distance(const std::string& a, const std::string& b) {
  // Optimal string alignment: Levenshtein plus swaps of adjacent letters,
  // the commonest typing mistake.
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[n][m];
}

std::optional<std::string> closest_match(const std::string& word,
                                         const std::vector<std::string>& candidates) {
  if (word.empty()) return std::nullopt;
  // A unique prefix ("--dat" for "--data") is what the user most likely meant.
  std::vector<std::string> prefixed;
  for (const auto& c : candidates)
    if (c.size() > word.size() && c.compare(0, word.size(), word) == 0) prefixed.push_back(c);
  if (prefixed.size() == 1) return prefixed.front();
  const size_t limit = std::max<size_t>(1, word.size() / 3);
  std::optional<std::string> best;
  size_t best_d = limit + 1;
  for (const auto& c : candidates) {  // ties: the first in the given order
    const size_t dist = edit_distance(word, c);
    if (dist < best_d) {
      best_d = dist;
      best = c;
    }
  }
  if (!best && !prefixed.empty()) return prefixed.front();
  return best;
}

namespace {

std::vector<std::string> long_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::Option* o : app.get_options())
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
  return names;
}

bool has_long_name(const CLI::App& app, const std::string& name) {
  for (const CLI::Option* o : app.get_options())
    for (const auto& l : o->get_lnames())
      if ("--" + l == name) return true;
  return false;
}

std::string did_you_mean(const std::optional<std::string>& m) {
  return m ? fmt::format("; did you mean '{}'?", *m) : std::string();
}

}  // namespace

std::optional<std::string> find_unknown_name(const CLI::App& app, int argc,
                                             const char* const* argv) {
  const CLI::App* sub = nullptr;
  std::vector<std::string> sub_names;
  for (const CLI::App* s :
       const_cast<CLI::App&>(app).get_subcommands([](CLI::App*) { return true; }))
    sub_names.push_back(s->get_name());
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;  // the rest is positional
    if (word.size() > 2 && word.compare(0, 2, "--") == 0) {
      const std::string name = word.substr(0, word.find('='));
      const CLI::App& scope = sub ? *sub : app;
      if (has_long_name(scope, name) || (sub && has_long_name(app, name))) continue;
      const std::string help = sub ? "haq " + sub->get_name() : std::string("haq");
      return fmt::format("unknown option '{}'{}\nRun '{} --help' for the options and examples.",
                         name, did_you_mean(closest_match(name, long_names(scope))), help);
    }
    if (!sub && !word.empty() && word[0] != '-') {
      for (const CLI::App* s :
           const_cast<CLI::App&>(app).get_subcommands([](CLI::App*) { return true; }))
        if (s->get_name() == word) sub = s;
      if (!sub)
        return fmt::format("unknown subcommand '{}'{}\nRun 'haq --help' for the subcommands.", word,
                           did_you_mean(closest_match(word, sub_names)));
    }
  }
  return std::nullopt;
}

std::string parse_error_message(const CLI::App& app, const CLI::ParseError& e) {
  std::string where = "haq";
  for (const CLI::App* s : const_cast<CLI::App&>(app).get_subcommands())
    where = "haq " + s->get_name();
  std::string what = e.what();
  if (what == "A subcommand is required") {
    std::vector<std::string> names;
    for (const CLI::App* s :
         const_cast<CLI::App&>(app).get_subcommands([](CLI::App*) { return true; }))
      names.push_back(s->get_name());
    what = fmt::format("a subcommand is required: one of {}", fmt::join(names, ", "));
  }
  return fmt::format("haq: error: {}\nRun '{} --help' for the options and examples.\n", what,
                     where);
}

}  // namespace haq::app
