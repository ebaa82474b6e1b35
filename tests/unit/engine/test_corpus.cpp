// The model corpus (models/corpus/, `scripts/train_reference_models.py
// --models corpus`): small Fashion-MNIST models whose exports exercise the
// ops of common architectures (ReLU6 = Clip(0, 6), HardSwish, squeeze-
// excitation, SiLU, Concat branches, BatchNormalization no importer can
// fold). Per model, two tests: haq's fp32 logits equal ONNX Runtime's within
// 1e-4 relative on a batch of real test images, and W8A8 (every layer 8/8,
// calibrated as `haq eval` calibrates by default) keeps top-1 within 0.5
// points of fp32 on the first 2000 test images.
#include <catch2/catch.hpp>

#include "corpus_checks.h"

using namespace haq::test;

TEST_CASE("corpus fmnist-mobilenetv2: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-mobilenetv2", {"Clip", "Add"});
}
TEST_CASE("corpus fmnist-mobilenetv2: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-mobilenetv2");
}

TEST_CASE("corpus fmnist-mobilenetv3: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-mobilenetv3", {"HardSwish", "HardSigmoid", "Mul", "GlobalAveragePool"});
}
TEST_CASE("corpus fmnist-mobilenetv3: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-mobilenetv3");
}

TEST_CASE("corpus fmnist-efficientnet: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-efficientnet", {"Sigmoid", "Mul", "Add"});
}
TEST_CASE("corpus fmnist-efficientnet: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-efficientnet");
}

TEST_CASE("corpus fmnist-inception: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-inception", {"Concat", "MaxPool", "AveragePool"});
}
TEST_CASE("corpus fmnist-inception: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-inception");
}

// BatchNormalization after the input, an Add and a Concat: the engine runs it.
TEST_CASE("corpus fmnist-bn18: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-bn18", {"BatchNormalization", "Concat", "Add"});
  CHECK(import_corpus_at(corpus_model("fmnist-bn18"), 1).opset == 18);
}
TEST_CASE("corpus fmnist-bn18: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-bn18");
}
