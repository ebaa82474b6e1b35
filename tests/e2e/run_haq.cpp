#include "run_haq.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace haq::test {

namespace {

using Clock = std::chrono::steady_clock;

// Runs `program args...` with stdout/stderr captured; SIGKILLs it at
// `deadline`, or as soon as `kill_when` returns true (polled every ~20 ms).
// After a kill the pipes are drained, so everything written before it is kept.
RunResult run_until(const std::string& program, const std::vector<std::string>& args,
                    Clock::time_point deadline, const std::function<bool()>& kill_when) {
  int out_pipe[2], err_pipe[2];
  if (pipe(out_pipe) != 0 || pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    close(out_pipe[0]); close(err_pipe[0]); close(out_pipe[1]); close(err_pipe[1]);
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(program.c_str()));
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  close(out_pipe[1]);
  close(err_pipe[1]);
  RunResult r;
  bool out_open = true, err_open = true, killed = false;
  Clock::time_point drain_until;
  char buf[65536];
  while (out_open || err_open) {
    // A killed child's own children (of a script) may hold the pipes: stop draining after a while.
    if (killed && Clock::now() > drain_until) break;
    pollfd fds[2] = {{out_open ? out_pipe[0] : -1, POLLIN, 0}, {err_open ? err_pipe[0] : -1, POLLIN, 0}};
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
    if (!killed && (ms <= 0 || (kill_when && kill_when()))) {
      kill(pid, SIGKILL);
      killed = true;
      drain_until = Clock::now() + std::chrono::seconds(2);
    }
    if (killed) ms = 100;  // drain what was written before the kill
    else if (kill_when) ms = std::min(ms, 20);
    if (poll(fds, 2, std::max(ms, 0)) < 0) continue;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) { (i == 0 ? out_open : err_open) = false; continue; }
      (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
    }
  }
  close(out_pipe[0]);
  close(err_pipe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) r.exit_code = -WTERMSIG(status);
  if (killed && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) r.exit_code = -9;
  return r;
}

}  // namespace

RunResult run_program(const std::string& program, const std::vector<std::string>& args, int timeout_s) {
  return run_until(program, args, Clock::now() + std::chrono::seconds(timeout_s), {});
}

RunResult run_haq(const std::vector<std::string>& args, int timeout_s) {
  return run_program(HAQ_BINARY, args, timeout_s);
}

RunResult run_haq_limited(const std::string& limits, const std::vector<std::string>& args, int timeout_s) {
  std::vector<std::string> sh_args = {"-c", limits + "\nexec \"$0\" \"$@\"", HAQ_BINARY};
  sh_args.insert(sh_args.end(), args.begin(), args.end());
  return run_program("/bin/sh", sh_args, timeout_s);
}

RunResult run_haq_killed_when(const std::vector<std::string>& args, const std::function<bool()>& kill_when,
                              int timeout_s) {
  return run_until(HAQ_BINARY, args, Clock::now() + std::chrono::seconds(timeout_s), kill_when);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

#if defined(__SANITIZE_ADDRESS__)
#define HAQ_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAQ_TEST_ASAN 1
#endif
#endif

std::string memory_limit_4gib() {
#ifdef HAQ_TEST_ASAN
  return "export ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=4096:"
         "allocator_may_return_null=0:hard_rss_limit_mb=4096\"";
#else
  return "ulimit -v 4194304";
#endif
}

}  // namespace haq::test
