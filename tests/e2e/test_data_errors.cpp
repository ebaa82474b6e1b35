// Bad --data through the CLI: exit 2, one line "haq: error: FILE: WHERE: WHAT"
// naming the file and the place, never a crash.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "run_haq.h"
#include "test_paths.h"

using haq::test::run_haq;
using haq::test::source_path;
namespace fs = std::filesystem;

namespace {
void write(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// IDX bytes: magic 0x0000 08 ndims, big-endian dims, `payload` bytes of 7.
std::string idx(const std::vector<uint32_t>& dims, size_t payload) {
  std::string s("\0\0\x08", 3);
  s += static_cast<char>(dims.size());
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((d >> shift) & 0xFF);
  return s + std::string(payload, '\x07');
}

/// A .npy v1 file with `descr` and `shape`, `bytes` bytes of zeros as data.
std::string npy(const std::string& descr, const std::vector<uint64_t>& shape, size_t bytes) {
  std::string dict = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < shape.size(); ++i) dict += (i ? ", " : "") + std::to_string(shape[i]);
  dict += shape.size() == 1 ? ",), }" : "), }";
  while ((10 + dict.size() + 1) % 64) dict += ' ';
  dict += '\n';
  std::string s = "\x93NUMPY\x01";
  s += '\0';
  s += static_cast<char>(dict.size() & 0xFF);
  s += static_cast<char>(dict.size() >> 8);
  return s + dict + std::string(bytes, '\0');
}

/// Runs haq eval on the bundled MLP with `data`; expects exit 2 and returns stderr.
std::string eval_error(const std::string& data) {
  auto r = run_haq({"eval", source_path("models/fmnist-mlp.onnx"), "--data", data, "--samples",
                    "50", "--calib", "16"});
  INFO("data: " << data << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.rfind("haq: error: ", 0) == 0);
  return r.err;
}
}  // namespace

TEST_CASE("haq eval: bad IDX data exits 2 naming the file and the place", "[e2e][data]") {
  fs::path dir = haq::test::scratch_dir("e2e_data_idx");
  write(dir / "t10k-labels-idx1-ubyte", idx({100}, 100));
  SECTION("truncated images") {
    write(dir / "t10k-images-idx3-ubyte", idx({100, 28, 28}, 40 * 784 + 10));
    std::string err = eval_error(dir.string());
    CHECK_THAT(
        err, Catch::Contains((dir / "t10k-images-idx3-ubyte").string() + ": image 40: truncated"));
  }
  SECTION("hostile header: 2^24 images of 2^16 x 2^16") {
    write(dir / "t10k-images-idx3-ubyte", idx({1u << 24, 1u << 16, 1u << 16}, 64));
    CHECK_THAT(eval_error(dir.string()), Catch::Contains("t10k-images-idx3-ubyte: header:"));
  }
  SECTION("bad magic") {
    std::string bytes = idx({100, 28, 28}, 100 * 784);
    bytes[1] = 'Z';
    write(dir / "t10k-images-idx3-ubyte", bytes);
    CHECK_THAT(eval_error(dir.string()),
               Catch::Contains("t10k-images-idx3-ubyte: header: bad magic number"));
  }
  SECTION("count mismatch") {
    write(dir / "t10k-images-idx3-ubyte", idx({99, 28, 28}, 99 * 784));
    CHECK_THAT(eval_error(dir.string()),
               Catch::Contains("t10k-labels-idx1-ubyte: count mismatch: 100 labels, but"));
  }
}

TEST_CASE("haq eval: bad .npy data exits 2 naming the file and the place", "[e2e][data]") {
  fs::path dir = haq::test::scratch_dir("e2e_data_npy");
  const std::string x = (dir / "x.npy").string(), y = (dir / "y.npy").string();
  write(y, npy("<i8", {10}, 80));
  SECTION("float64 images") {
    write(x, npy("<f8", {10, 1, 28, 28}, 10 * 784 * 8));
    CHECK_THAT(eval_error(x + "," + y),
               Catch::Contains(x + ": header: bad dtype '<f8' for images"));
  }
  SECTION("count mismatch") {
    write(x, npy("|u1", {12, 28, 28}, 12 * 784));
    CHECK_THAT(eval_error(x + "," + y), Catch::Contains(y + ": count mismatch: 10 labels, but"));
  }
  SECTION("wrong image size for the model") {
    write(x, npy("|u1", {10, 3, 32, 32}, 10 * 3 * 1024));
    std::string err = eval_error(x + "," + y);
    CHECK_THAT(err, Catch::Contains("3x32x32"));
    CHECK_THAT(err, Catch::Contains("x 1 x 28 x 28"));  // the model's input shape
  }
  SECTION("negative label") {
    write(x, npy("|u1", {10, 28, 28}, 10 * 784));
    std::string labels = npy("<i8", {10}, 80);
    for (size_t k = 0; k < 8; ++k)
      labels[labels.size() - 80 + 3 * 8 + k] = '\xFF';  // sample 3 = -1
    write(y, labels);
    CHECK_THAT(eval_error(x + "," + y), Catch::Contains(y + ": sample 3: label -1 out of range"));
  }
}

TEST_CASE("haq eval: missing data and corrupt images exit 2", "[e2e][data]") {
  CHECK_THAT(eval_error("/nonexistent/data"),
             Catch::Contains("/nonexistent/data: no such file or folder"));
  fs::path dir = haq::test::scratch_dir("e2e_data_images");
  fs::create_directories(dir / "shirt");
  write(dir / "shirt" / "1.png", std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  CHECK_THAT(eval_error(dir.string()),
             Catch::Contains((dir / "shirt" / "1.png").string() + ": sample 0:"));
}
