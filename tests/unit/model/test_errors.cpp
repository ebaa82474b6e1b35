// Bad input: every error is a haq::Error of the right kind that names the file
// and the place (node, initializer, input) and says what was expected.
#include <cmath>
#include <fstream>
#include <limits>

#include <catch2/catch.hpp>

#include "haq/core/error.h"
#include "haq/core/files.h"
#include "onnx_builder.h"
#include "test_paths.h"

using haq::Error;
using haq::ErrorKind;
using haq::model::import_onnx_bytes;
using haq::test::ModelBuilder;
using haq::test::set_ints;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

/// The error an import throws (fails the test when none is thrown).
Error import_error(const std::string& bytes, const std::string& source = "bad.onnx") {
  try {
    import_onnx_bytes(bytes, source);
  } catch (const Error& e) {
    return e;
  }
  FAIL("no error thrown");
  return Error(ErrorKind::internal, "", "", "");
}
Error import_error(const ModelBuilder& b, const std::string& source = "bad.onnx") {
  return import_error(b.bytes(), source);
}

ModelBuilder relu_model(int64_t opset = 13) {
  ModelBuilder b(opset);
  b.input("x", {1, 4});
  b.node("Relu", {"x"}, {"y"}, "relu");
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("unparseable bytes are model errors naming the file") {
  Error empty = import_error(std::string());
  CHECK(empty.kind() == ErrorKind::model);
  CHECK_THAT(std::string(empty.what()), StartsWith("bad.onnx: "));
  CHECK_THAT(empty.message(), Contains("empty"));

  std::string noise(257, '\0');
  uint32_t x = 12345;
  for (auto& c : noise) c = static_cast<char>((x = x * 1103515245u + 12345u) >> 16);
  CHECK(import_error(noise).kind() == ErrorKind::model);

  ModelBuilder b(13);
  b.input("x", {1, 64});
  b.init_random("w", {16, 64}, 1);
  b.node("MatMul", {"x", "w"}, {"y"});
  b.output("y");
  const std::string full = b.bytes();
  for (size_t cut : {full.size() / 2, full.size() - 3}) {
    Error e = import_error(full.substr(0, cut));
    CHECK(e.kind() == ErrorKind::model);
    CHECK(e.file() == "bad.onnx");
  }
}

TEST_CASE("the default-domain opset must exist and be within 6..18") {
  ModelBuilder none = relu_model();
  none.model().mutable_opset_import(0)->set_domain("com.example");
  Error e = import_error(none);
  CHECK(e.kind() == ErrorKind::model);
  CHECK_THAT(e.message(), Contains("no opset for the default ONNX domain"));
  for (int64_t opset : {5, 19}) {
    Error o = import_error(relu_model(opset));
    CHECK(o.kind() == ErrorKind::unsupported);
    CHECK_THAT(o.message(), Contains(std::to_string(opset)) && Contains("6..18"));
  }
}

TEST_CASE("an unsupported op names the node, op, opset and the supported ops") {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.node("Relu", {"x"}, {"a"}, "relu");
  b.node("Hardmax", {"a"}, {"y"}, "my_hardmax");
  b.output("y");
  Error e = import_error(b);
  CHECK(e.kind() == ErrorKind::unsupported);
  CHECK(e.where() == "node 'my_hardmax' (Hardmax)");
  CHECK_THAT(e.message(), Contains("'Hardmax' (opset 13) is not supported"));
  CHECK_THAT(e.message(), Contains("Conv") && Contains("MatMul") && Contains("ReduceMean") && Contains("Unsqueeze"));

  ModelBuilder ms(13);
  ms.input("x", {1, 4});
  auto& n = ms.node("Gelu", {"x"}, {"y"}, "gelu");
  n.set_domain("com.microsoft");
  ms.output("y");
  ms.model().add_opset_import()->set_domain("com.microsoft");
  Error m = import_error(ms);
  CHECK(m.kind() == ErrorKind::unsupported);
  CHECK(m.where() == "node 'gelu' (com.microsoft.Gelu)");
}

TEST_CASE("an input that nothing produces names the node and the input") {
  ModelBuilder b(13);
  b.input("x", {1, 3, 4, 4});
  b.node("Conv", {"x", "conv1.weight"}, {"y"}, "conv1");
  b.output("y");
  Error e = import_error(b);
  CHECK(e.kind() == ErrorKind::model);
  CHECK(e.where() == "node 'conv1' (Conv)");
  CHECK_THAT(e.message(), Contains("'conv1.weight'") && Contains("missing initializer"));
}

TEST_CASE("a cycle is a model error naming a node on it") {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.node("Add", {"x", "c"}, {"a"}, "first");
  b.node("Relu", {"a"}, {"c"}, "second");
  b.node("Relu", {"a"}, {"y"}, "out");
  b.output("y");
  Error e = import_error(b);
  CHECK(e.kind() == ErrorKind::model);
  CHECK(e.where() == "node 'first' (Add)");
  CHECK_THAT(e.message(), Contains("cycle"));
}

TEST_CASE("zero, symbolic and negative dims are rejected") {
  ModelBuilder zero(13);
  zero.input("x", {1, 0});
  zero.node("Relu", {"x"}, {"y"});
  zero.output("y");
  Error z = import_error(zero);
  CHECK(z.where() == "input 'x'");
  CHECK_THAT(z.message(), Contains("dim 1 is 0"));

  ModelBuilder sym(13);
  sym.input("x", {1, -1});  // a symbolic dim that is not the batch
  sym.node("Relu", {"x"}, {"y"});
  sym.output("y");
  Error s = import_error(sym);
  CHECK(s.kind() == ErrorKind::unsupported);
  CHECK_THAT(s.message(), Contains("only the batch dim"));

  ModelBuilder neg(13);
  neg.input("x", {1, 2});
  neg.init("w", {2, -2}, {});
  neg.node("MatMul", {"x", "w"}, {"y"});
  neg.output("y");
  Error n = import_error(neg);
  CHECK(n.where() == "initializer 'w'");
  CHECK_THAT(n.message(), Contains("negative"));
}

TEST_CASE("absurd initializer sizes are refused before allocating, short data too") {
  ModelBuilder huge(13);
  huge.input("x", {1, 4});
  auto& t = huge.init("w", {1 << 20, 1 << 20}, {});
  t.set_raw_data("abcd");
  huge.node("MatMul", {"x", "w"}, {"y"});
  huge.output("y");
  Error h = import_error(huge);
  CHECK(h.kind() == ErrorKind::model);
  CHECK(h.where() == "initializer 'w'");
  CHECK_THAT(h.message(), Contains("2^31"));

  ModelBuilder short_raw(13);
  short_raw.input("x", {1, 4});
  auto& s = short_raw.init("w", {4, 2}, {});
  s.set_raw_data(std::string(20, '\0'));  // 8 floats need 32 bytes
  short_raw.node("MatMul", {"x", "w"}, {"y"});
  short_raw.output("y");
  Error r = import_error(short_raw);
  CHECK(r.where() == "initializer 'w'");
  CHECK_THAT(r.message(), Contains("raw_data has 20 bytes") && Contains("need 32"));

  ModelBuilder few(13);
  few.input("x", {1, 4});
  few.init("w", {4, 2}, {1, 2, 3});
  few.node("MatMul", {"x", "w"}, {"y"});
  few.output("y");
  CHECK_THAT(import_error(few).message(), Contains("float_data has 3 values"));
}

TEST_CASE("a graph input that redeclares an initializer must agree with it") {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.input("w", {4, 3});  // IR<4 style, but the initializer is [4,2]
  b.init_random("w", {4, 2}, 1);
  b.node("MatMul", {"x", "w"}, {"y"});
  b.output("y");
  Error e = import_error(b);
  CHECK(e.where() == "initializer 'w'");
  CHECK_THAT(e.message(), Contains("[4, 3]") && Contains("[4, 2]"));
  // agreeing declarations are fine and not reported as inputs
  ModelBuilder ok(13);
  ok.input("x", {1, 4});
  ok.input("w", {4, 2});
  ok.init_random("w", {4, 2}, 1);
  ok.node("MatMul", {"x", "w"}, {"y"});
  ok.output("y");
  auto g = ok.import();
  CHECK(g.inputs.size() == 1);
  CHECK(g.layers.size() == 1);
}

TEST_CASE("an op-level inconsistency names the node") {
  ModelBuilder b(13);
  b.input("x", {1, 3, 8, 8});
  b.init_random("w", {4, 2, 3, 3}, 1);  // expects 2 input channels
  b.node("Conv", {"x", "w"}, {"y"}, "conv");
  b.output("y");
  Error e = import_error(b);
  CHECK(e.kind() == ErrorKind::model);
  CHECK(e.where() == "node 'conv' (Conv)");
  CHECK_THAT(e.message(), Contains("channels"));

  ModelBuilder r(13);
  r.input("x", {1, 6});
  r.init_i64("shape", {2}, {4, -1});
  r.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
  r.output("y");
  Error re = import_error(r);
  CHECK(re.where() == "node 'reshape' (Reshape)");
  CHECK_THAT(re.message(), Contains("cannot reshape"));
}

namespace {

/// y = x @ w with w [4, 2] stored externally in `location` at `offset`.
ModelBuilder external_model(const std::string& location, int64_t offset, int64_t length = -1) {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  auto& t = b.init("w", {4, 2}, {});
  t.set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    auto* kv = t.add_external_data();
    kv->set_key(k);
    kv->set_value(v);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  if (length >= 0) add("length", std::to_string(length));
  b.node("MatMul", {"x", "w"}, {"y"}, "mm");
  b.output("y");
  return b;
}

void write_floats(const std::filesystem::path& p, int64_t offset, const std::vector<float>& v) {
  std::ofstream out(p, std::ios::binary);
  std::string pad(static_cast<size_t>(offset), 'x');
  out.write(pad.data(), static_cast<std::streamsize>(pad.size()));
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
}

}  // namespace

TEST_CASE("external data is read from the model's folder, confined to it") {
  auto dir = haq::test::scratch_dir("model_external");
  std::filesystem::create_directories(dir / "m" / "sub");
  const std::string source = (dir / "m" / "model.onnx").string();
  write_floats(dir / "m" / "sub" / "w.bin", 16, {1, 2, 3, 4, 5, 6, 7, 8});
  write_floats(dir / "secret.bin", 0, {1, 2, 3, 4, 5, 6, 7, 8});

  SECTION("a good location at an offset") {
    auto g = import_onnx_bytes(external_model("sub/w.bin", 16, 32).bytes(), source);
    REQUIRE(g.layers.size() == 1);
    // canonical weight is the transpose of [[1,2],[3,4],[5,6],[7,8]]
    CHECK(g.constants.at(g.layers[0].weight).f32 == std::vector<float>{1, 3, 5, 7, 2, 4, 6, 8});
  }
  SECTION("escaping with ..") {
    Error e = import_error(external_model("../secret.bin", 0), source);
    CHECK(e.kind() == ErrorKind::model);
    CHECK(e.where() == "initializer 'w'");
    CHECK_THAT(e.message(), Contains("escapes the model's folder"));
    Error e2 = import_error(external_model("sub/../../secret.bin", 0), source);
    CHECK_THAT(e2.message(), Contains("escapes"));
  }
  SECTION("an absolute path") {
    Error e = import_error(external_model((dir / "secret.bin").string(), 0), source);
    CHECK(e.where() == "initializer 'w'");
    CHECK_THAT(e.message(), Contains("absolute"));
  }
  SECTION("a missing file") {
    Error e = import_error(external_model("sub/nope.bin", 0), source);
    CHECK(e.kind() == ErrorKind::io);
    CHECK(e.where() == "initializer 'w'");
    CHECK_THAT(e.message(), Contains("cannot open external data file"));
  }
  SECTION("a file shorter than offset + length") {
    Error e = import_error(external_model("sub/w.bin", 40), source);
    CHECK(e.kind() == ErrorKind::model);
    CHECK_THAT(e.message(), Contains("48 bytes") && Contains("offset 40"));
  }
  SECTION("a length that disagrees with the dims") {
    Error e = import_error(external_model("sub/w.bin", 16, 28), source);
    CHECK_THAT(e.message(), Contains("length is 28 bytes") && Contains("need 32"));
  }
}

TEST_CASE("import_onnx reports a missing file as an io error") {
  try {
    haq::model::import_onnx("/nonexistent/model.onnx");
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK(e.file() == "/nonexistent/model.onnx");
  }
}

TEST_CASE("non-constant weights and extra outputs are unsupported, naming the node") {
  ModelBuilder b(13);
  b.input("x", {1, 3, 4, 4});
  b.input("w", {2, 3, 1, 1});
  b.node("Conv", {"x", "w"}, {"y"}, "conv");
  b.output("y");
  Error e = import_error(b);
  CHECK(e.kind() == ErrorKind::unsupported);
  CHECK(e.where() == "node 'conv' (Conv)");
  CHECK_THAT(e.message(), Contains("must be a constant"));

  ModelBuilder m(13);
  m.input("x", {1, 3, 4, 4});
  auto& pool = m.node("MaxPool", {"x"}, {"y", "idx"}, "pool");
  set_ints(pool, "kernel_shape", {2, 2});
  m.output("y");
  m.output("idx");
  m.graph().mutable_output(1)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
  Error p = import_error(m);
  CHECK(p.kind() == ErrorKind::unsupported);
  CHECK(p.where() == "node 'pool' (MaxPool)");
}

TEST_CASE("every truncation and every byte flip of a model gives a result or a haq::Error, never a crash") {
  const std::string full = haq::read_file(haq::test::source_path("tests/data/model/unsorted.onnx"));
  int errors = 0, ok = 0;
  auto attempt = [&](const std::string& bytes) {
    try {
      import_onnx_bytes(bytes, "fuzz.onnx");
      ++ok;
    } catch (const Error& e) {
      CHECK(e.kind() != ErrorKind::internal);
      CHECK(e.file() == "fuzz.onnx");
      ++errors;
    }
  };
  for (size_t cut = 0; cut < full.size(); ++cut) attempt(full.substr(0, cut));
  for (size_t i = 0; i < full.size(); ++i) {
    std::string flipped = full;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x5a);
    attempt(flipped);
  }
  CHECK(errors > static_cast<int>(full.size()));  // most damage is detected
  CHECK(ok + errors == static_cast<int>(2 * full.size()));
}

// ---- parameters that make NaN or inf by construction (issue 15) -------------

namespace {

/// x [1, 2, 4, 4] -> Conv(weight, bias) -> BatchNormalization(scale, b, mean, var) -> y.
ModelBuilder conv_bn(const std::vector<float>& var, float eps, std::vector<float> weight = {}) {
  ModelBuilder b(13);
  b.input("x", {1, 2, 4, 4});
  if (weight.empty()) b.init_random("w", {2, 2, 3, 3}, 3);
  else b.init("w", {2, 2, 3, 3}, weight);
  b.init("cb", {2}, {0.1f, -0.1f});
  b.node("Conv", {"x", "w", "cb"}, {"c"}, "conv");
  b.init("s", {2}, {1.f, 2.f});
  b.init("bb", {2}, {0.f, 0.5f});
  b.init("m", {2}, {0.2f, 0.1f});
  b.init("v", {2}, var);
  auto& bn = b.node("BatchNormalization", {"c", "s", "bb", "m", "v"}, {"y"}, "bn");
  haq::test::set_float(bn, "epsilon", eps);
  b.output("y");
  return b;
}

/// x [1, 4] -> Gemm(w [3, 4], c [3], transB) -> y.
ModelBuilder gemm(const std::vector<float>& w, const std::vector<float>& c, float alpha = 1.f, float beta = 1.f) {
  ModelBuilder b(13);
  b.input("x", {1, 4});
  b.init("w", {3, 4}, w);
  b.init("c", {3}, c);
  auto& n = b.node("Gemm", {"x", "w", "c"}, {"y"}, "fc");
  haq::test::set_int(n, "transB", 1);
  haq::test::set_float(n, "alpha", alpha);
  haq::test::set_float(n, "beta", beta);
  b.output("y");
  return b;
}

std::vector<float> ramp(size_t n, float scale = 0.1f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = scale * (static_cast<float>(i % 7) - 3.f);
  return v;
}

}  // namespace

TEST_CASE("BatchNormalization with var + epsilon <= 0 is a model error naming the node and the channel") {
  for (bool fold : {true, false}) {
    INFO("fold " << fold);
    try {
      conv_bn({0.5f, -1e-5f}, 1e-5f).import(1, fold);  // 0 exactly
      FAIL("no error");
    } catch (const Error& e) {
      CHECK(e.kind() == ErrorKind::model);
      CHECK_THAT(std::string(e.what()),
                 StartsWith("test.onnx: node 'bn' (BatchNormalization): channel 1: variance -1e-05 + epsilon 1e-05 is not positive"));
    }
    try {
      conv_bn({-2.f, 0.5f}, 1e-5f).import(1, fold);
      FAIL("no error");
    } catch (const Error& e) {
      CHECK_THAT(std::string(e.what()), Contains("node 'bn' (BatchNormalization): channel 0: variance -2"));
    }
  }
  // A positive variance, or a zero one with a positive epsilon, imports.
  CHECK_NOTHROW(conv_bn({0.f, 0.5f}, 1e-5f).import());
  // A NaN epsilon.
  CHECK_THAT(std::string(import_error(conv_bn({0.5f, 0.5f}, std::nanf(""))).what()),
             Contains("attribute 'epsilon' is nan; it must be finite"));
}

TEST_CASE("non-finite weights, biases, statistics and operands are model errors naming the node and the element") {
  std::vector<float> w = ramp(12);
  w[5] = std::numeric_limits<float>::quiet_NaN();
  Error e = import_error(gemm(w, {0, 0, 0}));
  CHECK(e.kind() == ErrorKind::model);
  CHECK_THAT(std::string(e.what()),
             StartsWith("bad.onnx: node 'fc' (Gemm): initializer 'w' (input 1) holds nan at element 5"));
  CHECK_THAT(std::string(import_error(gemm(ramp(12), {0, std::numeric_limits<float>::infinity(), 0})).what()),
             Contains("initializer 'c' (input 2) holds inf at element 1"));
  std::vector<float> cw = ramp(36);
  cw[35] = -std::numeric_limits<float>::infinity();
  CHECK_THAT(std::string(import_error(conv_bn({0.5f, 0.5f}, 1e-5f, cw)).what()),
             Contains("node 'conv' (Conv): initializer 'w' (input 1) holds -inf at element 35"));
  // BatchNormalization statistics.
  {
    ModelBuilder b = conv_bn({0.5f, 0.5f}, 1e-5f);
    b.graph().mutable_initializer(2)->set_float_data(1, std::numeric_limits<float>::quiet_NaN());  // "s"
    CHECK_THAT(std::string(import_error(b).what()), Contains("node 'bn' (BatchNormalization): initializer 's' (input 1) holds nan"));
  }
  // An Add operand.
  {
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init("k", {4}, {1.f, std::numeric_limits<float>::infinity(), 0.f, 0.f});
    b.node("Add", {"x", "k"}, {"y"}, "add");
    b.output("y");
    CHECK_THAT(std::string(import_error(b).what()), Contains("node 'add' (Add): initializer 'k' (input 1) holds inf at element 1"));
  }
  // A constant divisor with a zero.
  {
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init("k", {4}, {1.f, 2.f, 0.f, 4.f});
    b.node("Div", {"x", "k"}, {"y"}, "div");
    b.output("y");
    CHECK_THAT(std::string(import_error(b).what()), Contains("node 'div' (Div): the divisor 'k' (input 1) is 0 at element 2"));
  }
  // Clip bounds may be infinite: no NaN comes of them.
  {
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init("lo", {}, {-std::numeric_limits<float>::infinity()});
    b.init("hi", {}, {6.f});
    b.node("Clip", {"x", "lo", "hi"}, {"y"}, "clip");
    b.output("y");
    CHECK_NOTHROW(b.import());
  }
}

TEST_CASE("non-finite Gemm alpha/beta, LRN size 0 and folded overflows are model errors naming the node") {
  const float inf = std::numeric_limits<float>::infinity();
  CHECK_THAT(std::string(import_error(gemm(ramp(12), {0, 0, 0}, inf)).what()),
             Contains("node 'fc' (Gemm): attribute 'alpha' is inf; it must be finite"));
  CHECK_THAT(std::string(import_error(gemm(ramp(12), {0, 0, 0}, 1.f, std::nanf(""))).what()),
             Contains("node 'fc' (Gemm): attribute 'beta' is nan; it must be finite"));
  // Finite alpha whose product with the weights overflows float32.
  CHECK_THAT(std::string(import_error(gemm(ramp(12, 1e30f), {0, 0, 0}, 1e30f)).what()),
             Contains("node 'fc': the layer's folded weight"));
  {
    ModelBuilder b(13);
    b.input("x", {1, 4, 3, 3});
    auto& n = b.node("LRN", {"x"}, {"y"}, "lrn");
    haq::test::set_int(n, "size", 0);
    b.output("y");
    Error e = import_error(b);
    CHECK(e.kind() == ErrorKind::model);
    CHECK_THAT(std::string(e.what()), Contains("node 'lrn' (LRN): LRN size 0 must be at least 1"));
  }
}

TEST_CASE("Clip with min > max, pooling pads that reach the window and overflowing shapes are model errors") {
  {  // numpy would clip everything to max; a model that says this is a mistake (issue 17)
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init("lo", {}, {6.f});
    b.init("hi", {}, {1.f});
    b.node("Clip", {"x", "lo", "hi"}, {"y"}, "clip");
    b.output("y");
    Error e = import_error(b);
    CHECK(e.kind() == ErrorKind::model);
    CHECK_THAT(std::string(e.what()), Contains("node 'clip' (Clip): min 6 is greater than max 1"));
  }
  {  // opset < 11: the bounds are attributes
    ModelBuilder b(9);
    b.input("x", {1, 4});
    auto& n = b.node("Clip", {"x"}, {"y"}, "clip");
    haq::test::set_float(n, "min", 2.f);
    haq::test::set_float(n, "max", 1.f);
    b.output("y");
    CHECK_THAT(std::string(import_error(b).what()), Contains("min 2 is greater than max 1"));
  }
  for (const char* op : {"MaxPool", "AveragePool"}) {
    ModelBuilder b(13);
    b.input("x", {1, 1, 4, 4});
    auto& n = b.node(op, {"x"}, {"y"}, "pool");
    set_ints(n, "kernel_shape", {2, 2});
    set_ints(n, "pads", {0, 2, 0, 0});
    b.output("y");
    Error e = import_error(b);
    INFO(op << ": " << e.what());
    CHECK(e.kind() == ErrorKind::model);
    CHECK_THAT(std::string(e.what()), Contains("node 'pool' (" + std::string(op) +
                                               "): pads [0, 2, 0, 0] reach the kernel's extent 2 in spatial dim 1"));
  }
  {  // pads below the kernel are fine
    ModelBuilder b(13);
    b.input("x", {1, 1, 4, 4});
    auto& n = b.node("MaxPool", {"x"}, {"y"}, "pool");
    set_ints(n, "kernel_shape", {3, 3});
    set_ints(n, "pads", {2, 2, 2, 2});
    b.output("y");
    CHECK_NOTHROW(b.import());
  }
  {  // a Reshape whose extents (each within int32) multiply past 2^63
    ModelBuilder b(13);
    b.input("x", {1, 4});
    const int64_t big = std::numeric_limits<int32_t>::max();
    b.init_i64("shape", {3}, {big, big, big});
    b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
    b.output("y");
    Error e = import_error(b);
    CHECK(e.kind() == ErrorKind::model);
    CHECK_THAT(std::string(e.what()), Contains("node 'reshape' (Reshape): the extents"));
    CHECK_THAT(std::string(e.what()), Contains("overflow 64 bits"));
  }
  {  // a dim beyond int32 is refused before ONNX's shape inference, which would allocate for it
    ModelBuilder b(13);
    b.input("x", {1, 4});
    b.init_i64("shape", {3}, {int64_t{1} << 40, int64_t{1} << 40, 4});
    b.node("Reshape", {"x", "shape"}, {"y"}, "reshape");
    b.output("y");
    Error e = import_error(b);
    CHECK(e.kind() == ErrorKind::model);
    CHECK_THAT(std::string(e.what()),
               Contains("node 'reshape' (Reshape): the shape holds 1099511627776, beyond any dim a tensor can have"));
  }
}

TEST_CASE("Gelu (an opset-20 op) is refused with a hint to export at opset 17 or 18") {
  ModelBuilder b(18);
  b.input("x", {1, 4});
  b.node("Gelu", {"x"}, {"y"}, "gelu");
  b.output("y");
  Error e = import_error(b);
  CHECK(e.kind() == ErrorKind::unsupported);
  CHECK(e.where() == "node 'gelu' (Gelu)");
  CHECK_THAT(e.message(), Contains("opset-20") && Contains("opset 17 or 18") && Contains("Erf"));
}
