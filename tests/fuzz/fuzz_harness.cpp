#include "fuzz_harness.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "haq/core/error.h"

namespace haq::fuzz {

namespace fs = std::filesystem;

namespace {

/// Owns the scratch folder; removes it when the process exits normally.
struct ScratchDir {
  fs::path path;
  ScratchDir() {
    std::error_code ec;
    fs::path base = fs::is_directory("/dev/shm", ec) && access("/dev/shm", W_OK) == 0
                        ? fs::path("/dev/shm")
                        : fs::temp_directory_path();
    path = base / ("haq-fuzz-" + std::to_string(getpid()));
    fs::remove_all(path, ec);
    fs::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

const fs::path& work_dir() {
  static ScratchDir dir;
  return dir.path;
}

void write_bytes(const fs::path& path, const uint8_t* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) throw std::runtime_error("haq fuzz: cannot write " + path.string());
}

TwoParts split_two(const uint8_t* data, size_t size) {
  TwoParts p;
  if (size < 4) return p;
  const uint32_t n = uint32_t{data[0]} | (uint32_t{data[1]} << 8) | (uint32_t{data[2]} << 16) |
                     (uint32_t{data[3]} << 24);
  const size_t rest = size - 4;
  p.first = data + 4;
  p.first_size = n % (rest + 1);
  p.second = p.first + p.first_size;
  p.second_size = rest - p.first_size;
  return p;
}

Outcome classify_current_error() {
  try {
    throw;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::internal)
      throw std::logic_error(std::string("internal error (a bug): ") + e.what());
    if (e.file().empty())
      throw std::logic_error(std::string("error names no file: ") + e.what());
    return Outcome{false, e.what()};
  }
}

int fuzz_entry(Outcome (*target)(const uint8_t*, size_t), const uint8_t* data, size_t size) {
  try {
    target(data, size);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "haq fuzz: escaped exception: %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "haq fuzz: escaped a non-std exception\n");
    std::abort();
  }
  return 0;
}

}  // namespace haq::fuzz
