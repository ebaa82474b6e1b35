#include <catch2/catch.hpp>

#include <filesystem>

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
