#pragma once
// Paths for tests: the source tree (fixtures, models) and a scratch folder.
#include <filesystem>
#include <string>

namespace haq::test {
inline std::string source_path(const std::string& rel) {
  // append, not operator+ on a temporary: GCC 12 warns falsely (-Warray-bounds) on that.
  std::string p = HAQ_SOURCE_DIR;
  return p.append("/").append(rel);
}
/// A fresh, empty scratch folder for one test.
inline std::filesystem::path scratch_dir(const std::string& name) {
  std::filesystem::path p = std::filesystem::path(HAQ_TEST_TMP) / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}
}  // namespace haq::test
