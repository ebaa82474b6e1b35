#pragma once
// Runs the built haq binary and captures its exit code, stdout and stderr.
#include <functional>
#include <string>
#include <vector>

namespace haq::test {
struct RunResult {
  int exit_code = -1;
  std::string out, err;
};
/// Runs `haq args...` (no shell), with a timeout in seconds (killed -> exit_code -9).
RunResult run_haq(const std::vector<std::string>& args, int timeout_s = 120);
/// The whole content of a file ("" if it cannot be read).
std::string read_text(const std::string& path);
/// Runs any program the same way.
RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_s = 120);
/// Runs `haq args...` through /bin/sh after the shell commands `limits`
/// (e.g. "ulimit -v 4194304" or "ulimit -f 8; trap '' XFSZ"), so the
/// limits hold for haq itself. A signal death gives exit_code -SIGNAL.
RunResult run_haq_limited(const std::string& limits, const std::vector<std::string>& args, int timeout_s = 120);
/// The `limits` for at most 4 GiB of memory: `ulimit -v`, or under ASan
/// (whose shadow memory needs terabytes of address space, so `ulimit -v`
/// would stop haq before main) the allocator's bound, where an allocation
/// above it is a report and an abort.
std::string memory_limit_4gib();
/// Runs `haq args...` and SIGKILLs it as soon as `kill_when()` (polled about
/// every 20 ms) returns true, or at the timeout; exit_code -9 if it was killed.
RunResult run_haq_killed_when(const std::vector<std::string>& args, const std::function<bool()>& kill_when,
                              int timeout_s = 120);
}  // namespace haq::test
