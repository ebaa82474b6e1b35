#pragma once
// Runs the built haq binary and captures its exit code, stdout and stderr.
#include <string>
#include <vector>

namespace haq::test {
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
/// Runs `haq args...` (no shell), with a timeout in seconds (killed -> exit_code -9).
RunResult run_haq(const std::vector<std::string>& args, int timeout_s = 120);
/// Runs any program the same way.
RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_s = 120);
}  // namespace haq::test
