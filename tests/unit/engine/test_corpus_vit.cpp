// Corpus models fmnist-vit and fmnist-vit-op13 (models/corpus/,
// `scripts/train_reference_models.py --models vit,vit-op13`): one trained small
// ViT (7x7 patch-embedding Conv, 16 tokens of 64, 2 pre-LN encoder blocks with 4
// heads, GELU MLP, mean over the tokens) exported twice: at opset 17 with the
// LayerNormalization op, and at opset 13 where LayerNorm is written out
// (ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add). GELU is the erf form in both;
// the attention is Q.K^T and A.V, MatMuls of two activations, and the token
// Linears are 3-D MatMul + Add. The two checks of every corpus model
// (corpus_checks.h); W8A8 is quant::uniform_policy(g, 8, 8) whatever layers the
// engine makes quantizable (attention matmuls in fp32 or in int8).
#include <catch2/catch.hpp>

#include "corpus_checks.h"

using namespace haq::test;

TEST_CASE("corpus fmnist-vit: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-vit", {"LayerNormalization", "Erf", "Softmax", "MatMul"});
  CHECK(import_corpus_at(corpus_model("fmnist-vit"), 1).opset == 17);
}
TEST_CASE("corpus fmnist-vit: W8A8 top-1 within 0.5 points of fp32") { check_w8a8_keeps_top1("fmnist-vit"); }

TEST_CASE("corpus fmnist-vit-op13: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-vit-op13", {"Pow", "Sqrt", "ReduceMean", "Erf", "Softmax", "MatMul"});
  CHECK(import_corpus_at(corpus_model("fmnist-vit-op13"), 1).opset == 13);
}
TEST_CASE("corpus fmnist-vit-op13: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-vit-op13");
}
