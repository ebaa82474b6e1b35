// Corpus model fmnist-lenet-prelu (models/corpus/, `scripts/train_reference_models.py
// --models lenet-prelu`): LeNet-5 at opset 9 with Tanh after the first conv and
// the first Linear, PReLU (per-channel slopes N x 16 x 1 x 1, per-feature N x 84)
// after the second conv and the second Linear, AveragePool. The two checks of
// every corpus model (corpus_checks.h).
#include <catch2/catch.hpp>

#include "corpus_checks.h"

using namespace haq::test;

TEST_CASE("corpus fmnist-lenet-prelu: fp32 equals ONNX Runtime") {
  check_fp32_equals_onnx_runtime("fmnist-lenet-prelu", {"PRelu", "Tanh", "AveragePool"});
  CHECK(import_corpus_at(corpus_model("fmnist-lenet-prelu"), 1).opset == 9);
}
TEST_CASE("corpus fmnist-lenet-prelu: W8A8 top-1 within 0.5 points of fp32") {
  check_w8a8_keeps_top1("fmnist-lenet-prelu");
}
