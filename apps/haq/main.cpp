// haq: the command line. Parses, calls the library, maps errors to exit
// codes: 0 success, 1 a check or budget failed, 2 bad input, 3 internal error.

#include <algorithm>
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include <fmt/format.h>

#include "cli_errors.h"
#include "command.h"
#include "haq/core/error.h"
#include "haq/core/openmp.h"
#include "haq/core/version.h"

namespace haq::app {
std::vector<Command>& command_registry() {
  static std::vector<Command> registry;
  return registry;
}
}  // namespace haq::app

int main(int argc, char** argv) {
  // Passive OpenMP waiting unless the user set OMP_WAIT_POLICY; it must be in
  // the environment before the OpenMP runtime loads, so this may re-execute
  // haq (haq/core/openmp.h).
  haq::ensure_passive_omp_wait(argv);
  using namespace haq::app;
  CLI::App app{"haq: hardware-aware mixed-precision quantization (HAQ) for ONNX models.\n"
               "Searches per-layer weight/activation bitwidths with reinforcement learning,\n"
               "using latency/energy simulators of bit-flexible accelerators and real\n"
               "integer kernels (oneDNN) for accuracy.",
               "haq"};
  app.set_version_flag("--version", std::string("haq ") + haq::version());
  app.require_subcommand(1);
  app.footer("Run 'haq <subcommand> --help' for the options and examples of each.\n"
             "Exit codes: 0 success, 1 a check or budget failed, 2 bad input, 3 internal error.");

  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const Command& a, const Command& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, Run>> subs;
  for (const auto& c : registry) {
    CLI::App* sub = app.add_subcommand(c.name);
    subs.emplace_back(sub, c.setup(*sub));
    // No option takes an empty value (`--bits ""` is not the default w8a8).
    for (CLI::Option* o : sub->get_options())
      if (o->get_type_size_max() > 0) o->check(non_empty_value());
  }

  // Names first: a misspelled option is reported as such (with a
  // suggestion), not as the required option it failed to set.
  const bool wants_help = std::any_of(argv + 1, argv + argc, [](const char* a) {
    return std::string(a) == "--help" || std::string(a) == "-h" || std::string(a) == "--version";
  });
  if (auto unknown = find_unknown_name(app, argc, argv); unknown && !wants_help) {
    fmt::print(stderr, "haq: error: {}\n", *unknown);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "{}", parse_error_message(app, e));
    return 2;
  }

  try {
    for (auto& [sub, run] : subs)
      if (sub->parsed()) return run();
    return 2;
  } catch (const haq::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "haq: error: {}\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    fmt::print(stderr, "haq: error: out of memory\n");
    return 3;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    fmt::print(stderr, "haq: internal error: {}\n", e.what());
    return 3;
  }
}
