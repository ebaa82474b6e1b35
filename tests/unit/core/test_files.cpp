#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "test_paths.h"

namespace fs = std::filesystem;

TEST_CASE("write_file_atomic round-trips and leaves no temporary") {
  auto dir = haq::test::scratch_dir("core_files");
  haq::write_file_atomic(dir / "a.txt", "hello\n");
  CHECK(haq::read_file(dir / "a.txt") == "hello\n");
  haq::write_file_atomic(dir / "a.txt", "second");
  CHECK(haq::read_file(dir / "a.txt") == "second");
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++files;
  CHECK(files == 1);
}

TEST_CASE("write_file_atomic into a missing folder fails cleanly") {
  auto dir = haq::test::scratch_dir("core_files_missing");
  CHECK_THROWS_AS(haq::write_file_atomic(dir / "no" / "a.txt", "x"), haq::Error);
  CHECK(!fs::exists(dir / "no"));
}

TEST_CASE("read_file names the file") {
  try {
    haq::read_file("/nonexistent/file.onnx");
    FAIL("no throw");
  } catch (const haq::Error& e) {
    CHECK(e.kind() == haq::ErrorKind::io);
    CHECK(std::string(e.what()).find("/nonexistent/file.onnx") == 0);
  }
}

// The output policy (issue 17): only regular files are written, never an
// input of the run; only haq's own temporaries are cleaned; one writer per folder.

TEST_CASE("write_file_atomic refuses a symlink and leaves its target alone") {
  auto dir = haq::test::scratch_dir("core_files_link");
  haq::write_file_atomic(dir / "target.txt", "keep");
  fs::create_symlink(dir / "target.txt", dir / "link.txt");
  try {
    haq::write_file_atomic(dir / "link.txt", "replaced");
    FAIL("no throw");
  } catch (const haq::Error& e) {
    CHECK(e.kind() == haq::ErrorKind::io);
    CHECK_THAT(e.what(), Catch::Matchers::Contains("symbolic link"));
  }
  CHECK(fs::is_symlink(dir / "link.txt"));
  CHECK(haq::read_file(dir / "target.txt") == "keep");
}

TEST_CASE("write_file_atomic refuses a FIFO and a folder without touching them") {
  auto dir = haq::test::scratch_dir("core_files_fifo");
  REQUIRE(::mkfifo((dir / "pipe").c_str(), 0644) == 0);
  CHECK_THROWS_WITH(haq::write_file_atomic(dir / "pipe", "x"), Catch::Matchers::Contains("not a regular file"));
  CHECK(fs::is_fifo(dir / "pipe"));
  fs::create_directory(dir / "sub");
  CHECK_THROWS_WITH(haq::write_file_atomic(dir / "sub", "x"), Catch::Matchers::Contains("is a folder"));
  CHECK(fs::is_directory(dir / "sub"));
  // Nothing else was created: no temporary left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) (void)e, ++files;
  CHECK(files == 2);
}

TEST_CASE("write_file_atomic refuses an input of the run, also through another name") {
  auto dir = haq::test::scratch_dir("core_files_input");
  haq::write_file_atomic(dir / "model.onnx", "model bytes");
  fs::create_hard_link(dir / "model.onnx", dir / "alias.onnx");
  haq::register_run_input(dir / "model.onnx");
  CHECK_THROWS_WITH(haq::write_file_atomic(dir / "model.onnx", "x"), Catch::Matchers::Contains("one of this run's inputs"));
  CHECK_THROWS_WITH(haq::write_file_atomic(dir / "alias.onnx", "x"), Catch::Matchers::Contains("one of this run's inputs"));
  CHECK(haq::read_file(dir / "model.onnx") == "model bytes");
  haq::write_file_atomic(dir / "other.onnx", "fine");  // not an input
  haq::clear_run_inputs();
  haq::write_file_atomic(dir / "model.onnx", "now allowed");
  CHECK(haq::read_file(dir / "model.onnx") == "now allowed");
}

TEST_CASE("remove_stale_temp_files removes only haq's own temporaries") {
  auto dir = haq::test::scratch_dir("core_files_stale");
  for (const char* n : {".a.json.haq-tmp.Ab12Cd", ".a.json.tmp.Ab12Cd", ".a.json.haq-tmp.short", "b.txt"})
    std::ofstream(dir / n) << "x";
  fs::create_directory(dir / ".d.haq-tmp.Ab12Cd");  // not a regular file: kept
  CHECK(haq::is_haq_temp_name(".a.json.haq-tmp.Ab12Cd"));
  CHECK_FALSE(haq::is_haq_temp_name(".a.json.tmp.Ab12Cd"));
  haq::remove_stale_temp_files(dir);
  CHECK_FALSE(fs::exists(dir / ".a.json.haq-tmp.Ab12Cd"));
  CHECK(fs::exists(dir / ".a.json.tmp.Ab12Cd"));  // the user's own file
  CHECK(fs::exists(dir / ".a.json.haq-tmp.short"));
  CHECK(fs::exists(dir / "b.txt"));
  CHECK(fs::exists(dir / ".d.haq-tmp.Ab12Cd"));
}

TEST_CASE("lock_output_dir: a second process is refused with the holder's pid") {
  auto dir = haq::test::scratch_dir("core_files_lock");
  int ready[2], done[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(done) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The child holds the lock until the parent writes to `done`.
    int rc = 0;
    try {
      haq::OutputDirLock lock = haq::lock_output_dir(dir);
      char c = 'r';
      (void)!::write(ready[1], &c, 1);
      (void)!::read(done[0], &c, 1);
    } catch (...) {
      rc = 1;
    }
    ::_exit(rc);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  try {
    haq::OutputDirLock lock(dir);
    FAIL("no throw");
  } catch (const haq::Error& e) {
    CHECK(e.kind() == haq::ErrorKind::io);
    CHECK_THAT(e.what(), Catch::Matchers::Contains(fmt::format("(pid {})", child)));
  }
  (void)!::write(done[1], &c, 1);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  // Released with the child: this process takes it, and may take it again (nested writers).
  haq::OutputDirLock outer(dir);
  haq::OutputDirLock inner = haq::lock_output_dir(dir);
  for (int fd : {ready[0], ready[1], done[0], done[1]}) ::close(fd);
}

// The input policy (issue 17): regular files only, opened without blocking,
// bounded before reading.

TEST_CASE("read_file refuses a FIFO at once, a device and a folder") {
  auto dir = haq::test::scratch_dir("core_files_read_fifo");
  REQUIRE(::mkfifo((dir / "pipe").c_str(), 0644) == 0);
  // No writer ever opens the FIFO: a blocking open would hang here.
  CHECK_THROWS_WITH(haq::read_file(dir / "pipe"), Catch::Matchers::Contains("is a FIFO, not a regular file (expected a file)"));
  CHECK_THROWS_WITH(haq::read_file("/dev/zero"), Catch::Matchers::Contains("/dev/zero: is a device"));
  CHECK_THROWS_WITH(haq::read_file(dir), Catch::Matchers::Contains("is a folder"));
  CHECK_THROWS_WITH(haq::check_input_file(dir / "none", 10, "a profile"),
                    Catch::Matchers::Contains("no such file (expected a profile)"));
  // Through a symlink the target counts: a link to a device is a device.
  fs::create_symlink("/dev/zero", dir / "zero.json");
  CHECK_THROWS_WITH(haq::read_file(dir / "zero.json"), Catch::Matchers::Contains("is a device"));
}

TEST_CASE("read_file checks the size bound before reading") {
  auto dir = haq::test::scratch_dir("core_files_read_bound");
  haq::write_file_atomic(dir / "a.txt", "0123456789");
  CHECK(haq::read_file(dir / "a.txt", 10) == "0123456789");
  CHECK(haq::check_input_file(dir / "a.txt", 10) == 10);
  CHECK_THROWS_WITH(haq::read_file(dir / "a.txt", 9),
                    Catch::Matchers::Contains("a.txt: is 10 bytes, more than the 9 bytes haq reads as a file"));
  CHECK_THROWS_WITH(haq::check_input_file(dir / "a.txt", 9, "a checkpoint"),
                    Catch::Matchers::Contains("reads as a checkpoint"));
}
