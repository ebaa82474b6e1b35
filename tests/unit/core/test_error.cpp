#include <catch2/catch.hpp>

#include "haq/core/error.h"

using haq::Error;
using haq::ErrorKind;

TEST_CASE("Error joins file, place and message") {
  Error e(ErrorKind::profile, "bismo.json", "/memory/dram_bits_per_cycle", "expected a positive integer, got -4");
  CHECK(std::string(e.what()) == "bismo.json: /memory/dram_bits_per_cycle: expected a positive integer, got -4");
  CHECK(e.exit_code() == 2);
  Error no_place(ErrorKind::io, "x.onnx", "", "cannot open");
  CHECK(std::string(no_place.what()) == "x.onnx: cannot open");
}

TEST_CASE("Error gains context while unwinding") {
  Error e(ErrorKind::model, "", "initializer 'w'", "short data");
  Error outer = e.with_context("node 'conv1' (Conv)").with_file("m.onnx");
  CHECK(std::string(outer.what()) == "m.onnx: node 'conv1' (Conv): initializer 'w': short data");
}

TEST_CASE("internal errors exit 3, HAQ_ASSERT throws internal") {
  CHECK(Error(ErrorKind::internal, "", "", "x").exit_code() == 3);
  try {
    HAQ_ASSERT(1 + 1 == 3);
    FAIL("no throw");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::internal);
  }
}

TEST_CASE("Error escapes control characters of names: a NUL does not cut the message", "[issue17]") {
  const std::string name("fc\0x\x1b[31m\n", 10);
  Error e(ErrorKind::model, "m.onnx", "node '" + name + "' (Gemm)", "bad " + name);
  const std::string what = e.what();
  CHECK(what == "m.onnx: node 'fc\\x00x\\x1b[31m\\x0a' (Gemm): bad fc\\x00x\\x1b[31m\\x0a");
  CHECK(std::string(what.c_str()) == what);  // no NUL left
  CHECK(e.where() == "node '" + name + "' (Gemm)");  // the parts themselves are kept
}
