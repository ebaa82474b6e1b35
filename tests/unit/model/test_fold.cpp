// Constant folding and opset normalisation.
#include <limits>

#include <catch2/catch.hpp>

#include "haq/core/error.h"

#include "onnx_builder.h"

using haq::model::DType;
using haq::model::Graph;
using haq::test::count_op;
using haq::test::ModelBuilder;
using haq::test::set_float;
using haq::test::set_int;
using haq::test::set_ints;
using haq::test::set_tensor_f32;
using haq::test::set_tensor_i64;

TEST_CASE("the Shape->Gather->Unsqueeze->Concat->Reshape chain of x.view(x.size(0), -1) folds") {
  for (int64_t opset : {11, 13}) {
    DYNAMIC_SECTION("opset " << opset) {
      ModelBuilder b(opset);
      b.input("x", {-1, 2, 3, 4});
      b.node("Shape", {"x"}, {"s"}, "shape");
      auto& zero = b.node("Constant", {}, {"zero"}, "zero");
      set_tensor_i64(zero, "value", {}, {0});
      auto& gather = b.node("Gather", {"s", "zero"}, {"n"}, "gather");
      set_int(gather, "axis", 0);
      if (opset >= 13) {
        b.init_i64("axes0", {1}, {0});
        b.node("Unsqueeze", {"n", "axes0"}, {"n1"}, "unsq");
      } else {
        set_ints(b.node("Unsqueeze", {"n"}, {"n1"}, "unsq"), "axes", {0});
      }
      b.init_i64("minus1", {1}, {-1});
      auto& cat = b.node("Concat", {"n1", "minus1"}, {"shape2"}, "concat");
      set_int(cat, "axis", 0);
      b.node("Reshape", {"x", "shape2"}, {"y"}, "reshape");
      b.output("y");
      for (int64_t batch : {1, 7}) {
        Graph g = b.import(batch);
        REQUIRE(g.nodes.size() == 1);
        CHECK(g.nodes[0].op == "Reshape");
        const auto& shape = g.constants.at(g.nodes[0].inputs[1]);
        CHECK(shape.dtype == DType::i64);
        CHECK(shape.i64 == std::vector<int64_t>{batch, -1});
        CHECK(g.outputs[0].shape == std::vector<int64_t>{batch, 24});
        CHECK(g.original_op_counts.at("Gather") == 1);
      }
    }
  }
}

TEST_CASE("Constant, ConstantOfShape, Cast and arithmetic on constants fold") {
  ModelBuilder b(13);
  b.input("x", {1, 3});
  auto& c = b.node("Constant", {}, {"two"}, "c");
  set_float(c, "value_float", 2.f);
  auto& cos = b.node("ConstantOfShape", {"dims"}, {"ones"}, "cos");
  b.init_i64("dims", {2}, {1, 3});
  set_tensor_f32(cos, "value", {1}, {1.5f});
  b.node("Mul", {"ones", "two"}, {"threes"}, "mul");       // 3.0
  b.node("Add", {"threes", "two"}, {"fives"}, "add");      // 5.0
  b.node("Sub", {"fives", "ones"}, {"three5"}, "sub");     // 3.5
  b.node("Div", {"three5", "two"}, {"k"}, "div");          // 1.75
  b.init_i64("ints", {3}, {7, -7, 9});
  b.init_i64("two_i", {}, {2});
  b.node("Div", {"ints", "two_i"}, {"q"}, "idiv");        // 3, -3, 4 (truncation)
  auto& cast = b.node("Cast", {"q"}, {"qf"}, "cast");
  set_int(cast, "to", 1);
  b.node("Add", {"x", "k"}, {"t"}, "use_k");
  b.node("Mul", {"t", "qf"}, {"y"}, "use_q");
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 2);
  CHECK(g.nodes[0].op == "Add");
  CHECK(g.nodes[1].op == "Mul");
  const auto& k = g.constants.at(g.nodes[0].inputs[1]);
  CHECK(k.dims == std::vector<int64_t>{1, 3});
  CHECK(k.f32 == std::vector<float>{1.75f, 1.75f, 1.75f});
  const auto& qf = g.constants.at(g.nodes[1].inputs[1]);
  CHECK(qf.dtype == DType::f32);
  CHECK(qf.f32 == std::vector<float>{3.f, -3.f, 4.f});
}

TEST_CASE("Identity and Dropout disappear, also in front of a graph output") {
  ModelBuilder b(12);
  b.input("x", {1, 4});
  b.node("Identity", {"x"}, {"a"}, "id");
  b.node("Relu", {"a"}, {"r"}, "relu");
  b.node("Dropout", {"r"}, {"y", "mask"}, "drop");
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 1);
  CHECK(g.nodes[0].op == "Relu");
  CHECK(g.nodes[0].inputs[0] == "x");
  CHECK(g.nodes[0].outputs[0] == "y");  // renamed to the graph output
  CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 4});
  CHECK(g.original_op_counts.at("Dropout") == 1);
}

TEST_CASE("Gather, Squeeze, Transpose and Reshape on constants fold, Gather on activations runs") {
  ModelBuilder b(13);
  b.input("x", {2, 3});
  b.init("table", {3, 2}, {1, 2, 3, 4, 5, 6});
  b.init_i64("idx", {2}, {2, -3});
  auto& gth = b.node("Gather", {"table", "idx"}, {"rows"}, "gather_const");  // [[5,6],[1,2]]
  set_int(gth, "axis", 0);
  auto& tr = b.node("Transpose", {"rows"}, {"rows_t"}, "tr");                 // [[5,1],[6,2]]
  set_ints(tr, "perm", {1, 0});
  b.init_i64("shape", {3}, {1, 4, 1});
  b.node("Reshape", {"rows_t", "shape"}, {"r3"}, "rs");
  b.init_i64("sq_axes", {1}, {-1});
  b.node("Squeeze", {"r3", "sq_axes"}, {"r2"}, "sq");                          // [1,4]
  b.init_i64("col", {}, {1});
  auto& g2 = b.node("Gather", {"x", "col"}, {"xc"}, "gather_act");            // [2]
  set_int(g2, "axis", 1);
  b.output("r2");
  b.output("xc");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 1);
  CHECK(g.nodes[0].name == "gather_act");
  CHECK(g.shape("xc") == std::vector<int64_t>{2});
  const auto& r2 = g.constants.at("r2");
  CHECK(r2.dims == std::vector<int64_t>{1, 4});
  CHECK(r2.f32 == std::vector<float>{5, 1, 6, 2});
}

TEST_CASE("Squeeze/Unsqueeze axes: opset 11 attribute and opset 13 input normalise alike") {
  for (int64_t opset : {11, 13}) {
    DYNAMIC_SECTION("opset " << opset) {
      ModelBuilder b(opset);
      b.input("x", {1, 3, 1, 1});
      if (opset >= 13) {
        b.init_i64("axes", {2}, {-1, 2});
        b.node("Squeeze", {"x", "axes"}, {"s"}, "sq");
        b.init_i64("uaxes", {1}, {0});
        b.node("Unsqueeze", {"s", "uaxes"}, {"y"}, "unsq");
      } else {
        set_ints(b.node("Squeeze", {"x"}, {"s"}, "sq"), "axes", {-1, 2});
        set_ints(b.node("Unsqueeze", {"s"}, {"y"}, "unsq"), "axes", {0});
      }
      b.output("y");
      Graph g = b.import();
      REQUIRE(g.nodes.size() == 2);
      CHECK(g.nodes[0].inputs.size() == 1);
      CHECK(g.nodes[0].get_ints("axes") == std::vector<int64_t>{2, 3});
      CHECK(g.nodes[1].inputs.size() == 1);
      CHECK(g.nodes[1].get_ints("axes") == std::vector<int64_t>{0});
      CHECK(g.shape("s") == std::vector<int64_t>{1, 3});
      CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 1, 3});
    }
  }
}

TEST_CASE("Clip min/max: opset 7 attributes and opset 11/13 inputs normalise to float attributes") {
  for (int64_t opset : {7, 11, 13}) {
    DYNAMIC_SECTION("opset " << opset) {
      ModelBuilder b(opset);
      b.input("x", {1, 4});
      if (opset < 11) {
        auto& n = b.node("Clip", {"x"}, {"y"}, "relu6");
        set_float(n, "min", 0.f);
        set_float(n, "max", 6.f);
        b.node("Clip", {"y"}, {"z"}, "open");
      } else {
        b.init("lo", {}, {0.f});
        b.init("hi", {}, {6.f});
        b.node("Clip", {"x", "lo", "hi"}, {"y"}, "relu6");
        b.node("Clip", {"y"}, {"z"}, "open");
      }
      b.output("z");
      Graph g = b.import();
      REQUIRE(g.nodes.size() == 2);
      CHECK(g.nodes[0].inputs.size() == 1);
      CHECK(g.nodes[0].get_float("min", -1) == 0.f);
      CHECK(g.nodes[0].get_float("max", -1) == 6.f);
      CHECK(g.nodes[1].get_float("min", 0) == std::numeric_limits<float>::lowest());
      CHECK(g.nodes[1].get_float("max", 0) == std::numeric_limits<float>::max());
      CHECK(g.constants.empty());
    }
  }
}

TEST_CASE("ReduceMean axes: opset 13 attribute and opset 18 input normalise alike") {
  for (int64_t opset : {13, 18}) {
    DYNAMIC_SECTION("opset " << opset) {
      ModelBuilder b(opset);
      b.input("x", {2, 3, 4, 5});
      if (opset >= 18) {
        b.init_i64("axes", {2}, {-1, -2});
        auto& n = b.node("ReduceMean", {"x", "axes"}, {"y"}, "gap");
        set_int(n, "keepdims", 0);
      } else {
        auto& n = b.node("ReduceMean", {"x"}, {"y"}, "gap");
        set_ints(n, "axes", {-1, -2});
        set_int(n, "keepdims", 0);
      }
      b.node("ReduceMean", {"y"}, {"z"}, "all");  // no axes: all, keepdims 1
      b.output("z");
      Graph g = b.import();
      REQUIRE(g.nodes.size() == 2);
      CHECK(g.nodes[0].inputs.size() == 1);
      CHECK(g.nodes[0].get_ints("axes") == std::vector<int64_t>{2, 3});
      CHECK(g.nodes[0].get_int("keepdims", 1) == 0);
      CHECK(g.shape("y") == std::vector<int64_t>{2, 3});
      CHECK(g.nodes[1].get_ints("axes") == std::vector<int64_t>{0, 1});
      CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 1});
    }
  }
}

TEST_CASE("Pad: opset 7 attributes and opset 11/18 inputs normalise to pads/value/mode") {
  for (int64_t opset : {7, 11, 18}) {
    DYNAMIC_SECTION("opset " << opset) {
      ModelBuilder b(opset);
      b.input("x", {1, 2, 3, 3});
      if (opset < 11) {
        auto& n = b.node("Pad", {"x"}, {"y"}, "pad");
        set_ints(n, "pads", {0, 0, 1, 2, 0, 0, 1, 2});
        set_float(n, "value", 0.5f);
      } else if (opset < 18) {
        b.init_i64("pads", {8}, {0, 0, 1, 2, 0, 0, 1, 2});
        b.init("v", {}, {0.5f});
        b.node("Pad", {"x", "pads", "v"}, {"y"}, "pad");
      } else {
        b.init_i64("pads", {4}, {1, 2, 1, 2});
        b.init("v", {}, {0.5f});
        b.init_i64("axes", {2}, {2, -1});
        b.node("Pad", {"x", "pads", "v", "axes"}, {"y"}, "pad");
      }
      b.output("y");
      Graph g = b.import();
      REQUIRE(g.nodes.size() == 1);
      CHECK(g.nodes[0].inputs.size() == 1);
      CHECK(g.nodes[0].get_ints("pads") == std::vector<int64_t>{0, 0, 1, 2, 0, 0, 1, 2});
      CHECK(g.nodes[0].get_float("value", 0) == 0.5f);
      CHECK(g.nodes[0].get_string("mode") == "constant");
      CHECK(g.outputs[0].shape == std::vector<int64_t>{1, 2, 5, 7});
    }
  }
}

TEST_CASE("defaults are written out as attributes for the engine") {
  ModelBuilder b(13);
  b.input("x", {1, 3, 4, 4});
  b.node("LeakyRelu", {"x"}, {"a"}, "lrelu");
  b.node("HardSigmoid", {"a"}, {"b"}, "hsig");
  b.node("Softmax", {"b"}, {"c"}, "softmax");
  auto& pool = b.node("AveragePool", {"c"}, {"d"}, "avg");
  set_ints(pool, "kernel_shape", {3, 3});
  set_int(pool, "ceil_mode", 1);
  set_ints(pool, "strides", {2, 2});
  b.node("Transpose", {"d"}, {"e"}, "tr");
  b.node("Flatten", {"e"}, {"y"}, "flat");
  b.output("y");
  Graph g = b.import();
  REQUIRE(g.nodes.size() == 6);
  CHECK(g.nodes[0].get_float("alpha", 0) == Approx(0.01f));
  CHECK(g.nodes[1].get_float("alpha", 0) == Approx(0.2f));
  CHECK(g.nodes[1].get_float("beta", 0) == Approx(0.5f));
  CHECK(g.nodes[2].get_int("axis", -1) == 3);
  // ceil mode: (4 - 3) / 2 rounded up, + 1 = 2 (floor would give 1)
  CHECK(g.nodes[3].get_ints("pads") == std::vector<int64_t>{0, 0, 0, 0});
  CHECK(g.shape("d") == std::vector<int64_t>{1, 3, 2, 2});
  CHECK(g.nodes[4].get_ints("perm") == std::vector<int64_t>{3, 2, 1, 0});
  CHECK(g.shape("e") == std::vector<int64_t>{2, 2, 3, 1});
  CHECK(g.nodes[5].get_int("axis", -1) == 1);
  CHECK(g.outputs[0].shape == std::vector<int64_t>{2, 6});
}

TEST_CASE("Softmax before opset 13: the 2-D flattening form is accepted on any axis") {
  for (int64_t axis : {1, 2, -1}) {
    DYNAMIC_SECTION("axis " << axis) {
      ModelBuilder b(11);
      b.input("x", {2, 10, 3, 3});
      set_int(b.node("Softmax", {"x"}, {"y"}, "sm"), "axis", axis);
      b.output("y");
      Graph g = b.import();
      REQUIRE(g.nodes.size() == 1);
      CHECK(g.nodes[0].get_int("axis", -9) == (axis < 0 ? axis + 4 : axis));
      CHECK(g.outputs[0].shape == std::vector<int64_t>{2, 10, 3, 3});
    }
  }
}

namespace {
std::string import_error(const ModelBuilder& b) {
  try {
    (void)b.import();
  } catch (const haq::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("integer shape arithmetic folds exactly in int64 and refuses overflow", "[issue17]") {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  // Exact above 2^53: Max(2^63-1, 5) is 2^63-1 (through a double it became
  // 2^63 and then -2^63), and (2^53+1) - 2^53 is 1 (a double gives 0 or 2).
  {
    ModelBuilder b(13);
    b.input("x", {2, 3});
    b.init_i64("big", {1}, {kMax});
    b.init_i64("five", {1}, {5});
    b.init_i64("off", {1}, {kMax - 6});
    b.node("Max", {"big", "five"}, {"m"}, "max");
    b.node("Sub", {"m", "off"}, {"six"}, "sub");  // 6
    b.init_i64("p", {1}, {(int64_t{1} << 53) + 1});
    b.init_i64("q", {1}, {int64_t{1} << 53});
    b.node("Sub", {"p", "q"}, {"one"}, "sub2");  // 1
    b.node("Mul", {"six", "one"}, {"shape"}, "mul");
    b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
    b.output("y");
    const Graph g = b.import();
    CHECK(g.shape("y") == std::vector<int64_t>{6});
  }
  for (const char* op : {"Mul", "Add", "Sub"}) {
    DYNAMIC_SECTION(op) {
      ModelBuilder b(13);
      b.input("x", {1, 4});
      b.init_i64("a", {2}, {op[0] == 'S' ? -(int64_t{1} << 62) * 2 : int64_t{1} << 62, 1});
      b.init_i64("b", {2}, {op[0] == 'M' ? 4 : (op[0] == 'A' ? kMax : 1), 4});
      b.node(op, {"a", "b"}, {"shape"}, "arith");
      b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
      b.output("y");
      const std::string e = import_error(b);
      CHECK_THAT(e, Catch::Contains(std::string("node 'arith' (") + op + "): " + op + " of the integer constants"));
      CHECK_THAT(e, Catch::Contains("overflows 64 bits (element 0)"));
      if (op[0] != 'S') CHECK(e.find("-922") == std::string::npos);  // never a wrapped extent
    }
  }
  {
    // A float beyond int64 cast to an integer shape.
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init("f", {2}, {1e19f, 1.f});
    set_int(b.node("Cast", {"f"}, {"shape"}, "cast"), "to", 7);
    b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
    b.output("y");
    CHECK_THAT(import_error(b), Catch::Contains("node 'cast' (Cast): value 1e+19 does not fit a 64-bit integer"));
  }
}

TEST_CASE("Max and Min of constants propagate NaN whatever the operand order", "[issue17]") {
  for (const bool nan_first : {true, false}) {
    DYNAMIC_SECTION("nan first: " << nan_first) {
      ModelBuilder b(13);
      b.input("x", {1, 2});
      b.init("nan", {2}, {std::numeric_limits<float>::quiet_NaN(), 1.f});
      b.init("one", {2}, {1.f, 1.f});
      b.node("Max", nan_first ? std::vector<std::string>{"nan", "one"} : std::vector<std::string>{"one", "nan"},
             {"m"}, "max");
      b.node("Add", {"x", "m"}, {"y"}, "add");
      b.output("y");
      // The folded NaN reaches Add, whose operands must be finite.
      CHECK_THAT(import_error(b), Catch::Contains("node 'add' (Add)"));
      CHECK_THAT(import_error(b), Catch::Contains("holds nan at element 0"));
    }
  }
}
