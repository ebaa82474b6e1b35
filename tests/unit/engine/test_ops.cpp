// The op registry (haq/model/ops.h) against the parts that use it: the
// importer's list, the engine's kernels and docs/ops.md.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "haq/engine/engine.h"
#include "haq/model/ops.h"
#include "test_paths.h"

using namespace haq;

TEST_CASE("op registry: sorted, unique, and the importer's supported list") {
  const auto& r = model::op_registry();
  REQUIRE(r.size() >= 40);
  std::vector<std::string> names;
  for (const auto& d : r) {
    INFO(d.name);
    CHECK(d.since >= 6);
    CHECK(d.until <= 18);
    CHECK(d.since <= d.until);
    CHECK(model::find_op(d.name) == &d);
    names.push_back(d.name);
  }
  CHECK(std::is_sorted(names.begin(), names.end()));
  CHECK(std::adjacent_find(names.begin(), names.end()) == names.end());
  CHECK(model::supported_ops() == names);
  CHECK(model::find_op("Hardmax") == nullptr);
  CHECK(model::find_op("HardSwish")->since == 14);
  CHECK(model::find_op("Relu")->fusable == model::Fusable::relu);
  CHECK(model::find_op("Clip")->fusable == model::Fusable::clip);
}

// No drift: every op the importer can keep has an engine kernel, and the
// engine has no kernel for an op the importer refuses.
TEST_CASE("op registry: every op that reaches the engine has a kernel, and no kernel is unreachable") {
  const auto kernels = engine::kernel_ops();
  const std::set<std::string> k(kernels.begin(), kernels.end());
  for (const auto& d : model::op_registry()) {
    INFO(d.name);
    // Folded ops never reach the engine, except an Identity kept between a
    // graph input and a graph output.
    if (d.stage != model::OpStage::folded || d.name == "Identity") CHECK(k.count(d.name) == 1);
  }
  for (const auto& name : kernels) {
    INFO(name);
    CHECK(model::find_op(name) != nullptr);
  }
}

TEST_CASE("op registry: non-negativity rules") {
  auto node = [](const std::string& op, size_t inputs) {
    model::Node n;
    n.op = op;
    for (size_t i = 0; i < inputs; ++i) n.inputs.push_back("x" + std::to_string(i));
    return n;
  };
  auto yes = [](size_t) { return true; };
  auto no = [](size_t) { return false; };
  auto first = [](size_t i) { return i == 0; };
  CHECK(model::output_nonneg(node("Relu", 1), no));
  CHECK_FALSE(model::output_nonneg(node("Tanh", 1), yes));
  CHECK(model::output_nonneg(node("MaxPool", 1), yes));
  CHECK_FALSE(model::output_nonneg(node("MaxPool", 1), no));
  CHECK_FALSE(model::output_nonneg(node("Add", 2), first));
  CHECK(model::output_nonneg(node("Add", 2), yes));
  CHECK(model::output_nonneg(node("Max", 2), first));
  CHECK_FALSE(model::output_nonneg(node("Sub", 2), yes));
  auto clip = node("Clip", 1);
  clip.attrs["min"].kind = model::Attribute::Kind::f;
  clip.attrs["min"].f = 0.f;
  CHECK(model::output_nonneg(clip, no));
  clip.attrs["min"].f = -0.5f;
  CHECK_FALSE(model::output_nonneg(clip, yes));
  auto pad = node("Pad", 1);
  pad.attrs["value"].kind = model::Attribute::Kind::f;
  pad.attrs["value"].f = -1.f;
  CHECK_FALSE(model::output_nonneg(pad, yes));
  auto conv = node("Conv", 3);
  conv.layer = 0;
  CHECK_FALSE(model::output_nonneg(conv, yes));
}

TEST_CASE("docs/ops.md holds the registry's op table") {
  std::ifstream f(test::source_path("docs/ops.md"));
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string doc = ss.str();
  const std::string marker = "<!-- ops table -->\n";
  const auto at = doc.find(marker);
  REQUIRE(at != std::string::npos);
  INFO("regenerate docs/ops.md as it says (haq inspect --ops)");
  CHECK(doc.substr(at + marker.size()) == model::op_table_markdown());
}
