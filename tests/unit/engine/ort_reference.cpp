#include "ort_reference.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "e2e/run_haq.h"
#include "test_paths.h"

namespace haq::test {

namespace {

std::string find_node() {
  const char* path = std::getenv("PATH");
  std::stringstream ss(path ? path : "/usr/bin:/usr/local/bin");
  std::string dir;
  while (std::getline(ss, dir, ':')) {
    auto p = std::filesystem::path(dir) / "node";
    if (std::filesystem::exists(p)) return p.string();
  }
  return "";
}

void write_floats(const std::filesystem::path& p, const std::vector<float>& v) {
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

std::vector<float> read_floats(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary | std::ios::ate);
  std::vector<float> v(static_cast<size_t>(f.tellg()) / 4);
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  return v;
}

}  // namespace

void require_onnx_runtime() {
  if (find_node().empty()) FAIL("node (nodejs) is not on PATH: ONNX Runtime is the fp32 reference");
  if (!std::filesystem::exists(source_path("tests/ort/node_modules/onnxruntime-node")))
    FAIL("tests/ort/node_modules/onnxruntime-node is missing: run `npm install --ignore-scripts` in "
         "tests/ort (scripts/test.sh does this)");
}

std::vector<float> run_onnx_runtime(const std::string& model, const std::vector<float>& input,
                                    const std::vector<int64_t>& shape, const std::filesystem::path& dir) {
  require_onnx_runtime();
  std::string dims;
  for (auto s : shape) dims += (dims.empty() ? "" : ",") + std::to_string(s);
  write_floats(dir / "input.bin", input);
  std::filesystem::remove(dir / "output.bin");
  auto r = run_program(find_node(), {source_path("tests/ort/run_ort.js"), model, (dir / "input.bin").string(), dims,
                                     (dir / "output.bin").string(), "--threads", "1"},
                       300);
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return read_floats(dir / "output.bin");
}

double worst_relative_difference(const std::vector<float>& ours, const std::vector<float>& ref,
                                 int64_t classes) {
  REQUIRE(ours.size() == ref.size());
  REQUIRE(classes > 0);
  double worst = 0;
  for (size_t n = 0; n + classes <= ref.size(); n += static_cast<size_t>(classes)) {
    double scale = 1e-6;
    for (int64_t c = 0; c < classes; ++c) scale = std::max(scale, double(std::fabs(ref[n + c])));
    for (int64_t c = 0; c < classes; ++c)
      worst = std::max(worst, std::fabs(double(ours[n + c]) - ref[n + c]) / scale);
  }
  return worst;
}

}  // namespace haq::test
