// The output policy on the command line (issue 17): haq writes only regular
// files, never onto one of the run's inputs, and one writer at a time per
// output folder; a refusal is exit 2 before any work and harms nothing.
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "run_haq.h"
#include "test_paths.h"
#include "tiny_search.h"

using Catch::Matchers::Contains;
using haq::test::read_text;
using haq::test::run_haq;
using haq::test::scratch_dir;
using haq::test::source_path;
namespace fs = std::filesystem;

namespace {

const char* kW4a8 = R"({"layers": [{"name": "/fc1/Gemm", "w_bits": 4, "a_bits": 8},
      {"name": "/fc2/Gemm", "w_bits": 4, "a_bits": 8}, {"name": "/fc3/Gemm", "w_bits": 4, "a_bits": 8}]})";

/// A child process that holds an flock on `dir` until the object dies.
struct ForeignLock {
  pid_t pid = -1;
  int done[2] = {-1, -1};
  explicit ForeignLock(const fs::path& dir) {
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    REQUIRE(::pipe(done) == 0);
    pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
      char c = 'r';
      if (fd < 0 || ::flock(fd, LOCK_EX) != 0) ::_exit(1);
      (void)!::write(ready[1], &c, 1);
      (void)!::read(done[0], &c, 1);
      ::_exit(0);
    }
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    ::close(ready[1]);
  }
  ~ForeignLock() {
    char c = 'd';
    (void)!::write(done[1], &c, 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(done[0]);
    ::close(done[1]);
  }
};

}  // namespace

TEST_CASE("haq export --out onto its own model, a link or a FIFO: exit 2, nothing harmed", "[outputs]") {
  auto dir = scratch_dir("e2e-outputs-export");
  fs::copy_file(source_path("models/fmnist-mlp.onnx"), dir / "m.onnx");
  const std::string model_bytes = read_text((dir / "m.onnx").string());
  std::ofstream(dir / "w4a8.json") << kW4a8;
  auto export_to = [&](const fs::path& out) {
    return run_haq({"export", (dir / "m.onnx").string(), "--policy", (dir / "w4a8.json").string(), "--data",
                    "fashion-mnist", "--out", out.string(), "--calib", "16"},
                   60);
  };
  auto self = export_to(dir / "m.onnx");
  CHECK(self.exit_code == 2);
  CHECK_THAT(self.err, Contains("haq: error: " + (dir / "m.onnx").string() + ": is one of this run's inputs"));
  CHECK(read_text((dir / "m.onnx").string()) == model_bytes);
  // The policy is an input too.
  const std::string policy_bytes = read_text((dir / "w4a8.json").string());
  auto onto_policy = export_to(dir / "w4a8.json");
  CHECK(onto_policy.exit_code == 2);
  CHECK(read_text((dir / "w4a8.json").string()) == policy_bytes);

  std::ofstream(dir / "user.txt") << "the user's file";
  fs::create_symlink(dir / "user.txt", dir / "link.onnx");
  auto link = export_to(dir / "link.onnx");
  CHECK(link.exit_code == 2);
  CHECK_THAT(link.err, Contains("is a symbolic link"));
  CHECK(fs::is_symlink(dir / "link.onnx"));
  CHECK(read_text((dir / "user.txt").string()) == "the user's file");

  REQUIRE(::mkfifo((dir / "pipe.onnx").c_str(), 0644) == 0);
  auto fifo = export_to(dir / "pipe.onnx");
  CHECK(fifo.exit_code == 2);  // not -9: it did not block
  CHECK_THAT(fifo.err, Contains("not a regular file"));
  CHECK(fs::is_fifo(dir / "pipe.onnx"));
}

TEST_CASE("haq simulate --table-out onto a link or the profile: exit 2", "[outputs]") {
  auto dir = scratch_dir("e2e-outputs-simulate");
  fs::copy_file(source_path("hardware-profiles/bismo-edge.json"), dir / "p.json");
  const std::string profile_bytes = read_text((dir / "p.json").string());
  const std::string mlp = source_path("models/fmnist-mlp.onnx");
  auto onto_profile = run_haq({"simulate", mlp, "--hw", (dir / "p.json").string(), "--bits", "w8a8",
                               "--table-out", (dir / "p.json").string()});
  CHECK(onto_profile.exit_code == 2);
  CHECK_THAT(onto_profile.err, Contains("is one of this run's inputs"));
  CHECK(read_text((dir / "p.json").string()) == profile_bytes);
  fs::create_symlink(dir / "p.json", dir / "t.csv");
  auto link = run_haq({"simulate", mlp, "--hw", (dir / "p.json").string(), "--bits", "w8a8", "--table-out",
                       (dir / "t.csv").string()});
  CHECK(link.exit_code == 2);
  CHECK_THAT(link.err, Contains("is a symbolic link"));
  CHECK(read_text((dir / "p.json").string()) == profile_bytes);
}

TEST_CASE("haq search into a folder another process writes: exit 2 naming its pid", "[outputs]") {
  auto dir = scratch_dir("e2e-outputs-lock");
  const fs::path out = dir / "out";
  fs::create_directories(out);
  const fs::path cfg = haq::test::tiny_search_config(dir, 100, 32, 100);
  {
    ForeignLock holder(out);
    auto r = run_haq(haq::test::tiny_search_args(cfg, out, 2, 1), 120);
    CHECK(r.exit_code == 2);
    CHECK_THAT(r.err, Contains(fmt::format("another haq process (pid {}) is writing to this folder", holder.pid)));
    CHECK(fs::is_empty(out));  // it wrote nothing
  }
  auto ok = run_haq(haq::test::tiny_search_args(cfg, out, 2, 1), 300);
  INFO(ok.err);
  CHECK(ok.exit_code == 0);  // the lock went with its holder
  CHECK(fs::exists(out / "policy.json"));

  // A folder as a kill during setup leaves it (no checkpoint, a cut temporary,
  // the user's own file): --resume starts anew and ends as the first run did.
  const fs::path killed = dir / "killed-in-setup";
  fs::create_directories(killed);
  std::ofstream(killed / ".config.json.haq-tmp.Ab12Cd") << "{\"cut";
  std::ofstream(killed / ".notes.tmp.Ab12Cd") << "mine";
  auto restart_args = haq::test::tiny_search_args(cfg, killed, 2, 1);
  restart_args.push_back("--resume");
  auto restart = run_haq(restart_args, 300);
  INFO(restart.err);
  CHECK(restart.exit_code == 0);
  CHECK(read_text((killed / "policy.json").string()) == read_text((out / "policy.json").string()));
  CHECK(read_text((killed / "points.csv").string()) == read_text((out / "points.csv").string()));
  CHECK_FALSE(fs::exists(killed / ".config.json.haq-tmp.Ab12Cd"));
  CHECK(read_text((killed / ".notes.tmp.Ab12Cd").string()) == "mine");

  // The input policy on the checkpoint: padding after its end, a FIFO in its place.
  const fs::path ckpt = out / "checkpoint" / "state.bin";
  REQUIRE(fs::exists(ckpt));
  const std::string saved = read_text(ckpt.string());
  auto resume_args = haq::test::tiny_search_args(cfg, out, 2, 1);
  resume_args.push_back("--resume");
  std::ofstream(ckpt, std::ios::binary | std::ios::app) << std::string(100, '\0');
  auto padded = run_haq(resume_args, 120);
  CHECK(padded.exit_code == 2);
  CHECK_THAT(padded.err, Contains(fmt::format("state.bin: 100 bytes after the end of the checkpoint ({} bytes)",
                                              saved.size())));
  fs::remove(ckpt);
  REQUIRE(::mkfifo(ckpt.c_str(), 0644) == 0);
  auto fifo = run_haq(resume_args, 120);
  CHECK(fifo.exit_code == 2);  // not -9: nothing blocks on it
  CHECK_THAT(fifo.err, Contains("state.bin: is a FIFO"));
  CHECK(fs::is_fifo(ckpt));
}

TEST_CASE("inputs that are FIFOs or devices are refused at once", "[outputs]") {
  auto dir = scratch_dir("e2e-inputs-special");
  REQUIRE(::mkfifo((dir / "m.onnx").c_str(), 0644) == 0);
  auto model = run_haq({"inspect", (dir / "m.onnx").string()}, 60);
  CHECK(model.exit_code == 2);
  CHECK_THAT(model.err, Contains("haq: error: " + (dir / "m.onnx").string() + ": is a FIFO, not a regular file (expected an ONNX model)"));
  const std::string mlp = source_path("models/fmnist-mlp.onnx");
  auto zero = run_haq({"simulate", mlp, "--hw", "/dev/zero", "--bits", "w8a8"}, 60);
  CHECK(zero.exit_code == 2);
  CHECK_THAT(zero.err, Contains("haq: error: /dev/zero: is a device"));
  REQUIRE(::mkfifo((dir / "p.json").c_str(), 0644) == 0);
  auto policy = run_haq({"simulate", mlp, "--hw", source_path("hardware-profiles/bismo-edge.json"), "--policy",
                         (dir / "p.json").string()},
                        60);
  CHECK(policy.exit_code == 2);
  CHECK_THAT(policy.err, Contains("p.json: is a FIFO"));
}
