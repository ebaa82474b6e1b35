// Corpus model fmnist-shufflenetv2 (models/corpus/, `scripts/train_reference_models.py
// --models shufflenetv2`): ShuffleNetV2 units whose torch.chunk exports as Slice
// nodes with Shape-derived ends, and a channel shuffle Reshape -> 5-D Transpose ->
// Reshape whose shapes PyTorch computes from Shape; both fold at import for a
// fixed batch. The two checks of every corpus model (corpus_checks.h).
#include <catch2/catch.hpp>

#include "corpus_checks.h"

using namespace haq::test;

TEST_CASE("corpus fmnist-shufflenetv2: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-shufflenetv2", {"Slice", "Transpose", "Concat"});
}
TEST_CASE("corpus fmnist-shufflenetv2: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-shufflenetv2");
}
