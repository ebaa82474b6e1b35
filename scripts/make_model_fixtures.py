#!/usr/bin/python3
"""Make the small ONNX fixtures the model tests use (committed; each < 100 KB).

tests/data/model/
  dynamic_convnet.onnx  PyTorch export (opset 13, dynamic batch) of a tiny conv net
                        with Conv+BN, depthwise conv, ReLU6, MaxPool and
                        x.view(x.size(0), -1), so the Shape->Gather->Unsqueeze->
                        Concat->Reshape chain and BatchNormalization nodes appear.
  unsorted.onnx         a small conv/Gemm model whose nodes are stored in reverse
                        order (valid ONNX needs topological order; real files
                        sometimes are not).
tests/data/bad/         one failure each, for the CLI's e2e tests:
  unknown_op.onnx, missing_initializer.onnx, external_escape.onnx (location
  '../escape.bin'), truncated.onnx (the first half of unsorted.onnx).

Run with Debian's interpreter: /usr/bin/python3 scripts/make_model_fixtures.py
Seeded; re-running gives the same files.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL_DIR = os.path.join(ROOT, "tests", "data", "model")
BAD_DIR = os.path.join(ROOT, "tests", "data", "bad")


class TinyNet(torch.nn.Module):
    """1x12x12 -> conv3x3(8)+BN+ReLU6 -> dw3x3 s2 +BN+ReLU6 -> pw(16) -> maxpool2 -> view -> fc(10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.dw = torch.nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(8)
        self.pw = torch.nn.Conv2d(8, 16, 1)
        self.pool = torch.nn.MaxPool2d(2)
        self.fc = torch.nn.Linear(16 * 3 * 3, 10)

    def forward(self, x):
        x = torch.nn.functional.relu6(self.bn1(self.conv1(x)))
        x = torch.nn.functional.relu6(self.bn2(self.dw(x)))
        x = self.pool(torch.relu(self.pw(x)))
        x = x.view(x.size(0), -1)
        return self.fc(x)


def export_dynamic_convnet(path):
    torch.manual_seed(7)
    net = TinyNet()
    with torch.no_grad():  # non-trivial BN statistics so folding is visible
        for bn in (net.bn1, net.bn2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(1, 1, 12, 12)
    torch.onnx.export(net, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)


def unsorted_model():
    rng = np.random.default_rng(3)
    w = numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "conv.weight")
    b = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "conv.bias")
    fw = numpy_helper.from_array(rng.standard_normal((3, 4 * 3 * 3)).astype(np.float32), "fc.weight")
    fb = numpy_helper.from_array(rng.standard_normal(3).astype(np.float32), "fc.bias")
    nodes = [
        helper.make_node("Conv", ["x", "conv.weight", "conv.bias"], ["c"], name="conv", strides=[2, 2]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["y"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        list(reversed(nodes)), "unsorted",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 7, 7])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        [w, b, fw, fb])
    return helper.make_model(graph, producer_name="make_model_fixtures", opset_imports=[helper.make_opsetid("", 13)])


def tiny_graph(nodes, initializers):
    graph = helper.make_graph(nodes, "bad", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializers)
    return helper.make_model(graph, producer_name="make_model_fixtures", opset_imports=[helper.make_opsetid("", 13)])


def main():
    os.makedirs(MODEL_DIR, exist_ok=True)
    os.makedirs(BAD_DIR, exist_ok=True)
    export_dynamic_convnet(os.path.join(MODEL_DIR, "dynamic_convnet.onnx"))
    onnx.save(unsorted_model(), os.path.join(MODEL_DIR, "unsorted.onnx"))

    w = numpy_helper.from_array(np.arange(8, dtype=np.float32).reshape(4, 2), "fc.weight")
    onnx.save(tiny_graph([helper.make_node("Relu", ["x"], ["a"], name="relu"),
                          helper.make_node("Hardmax", ["a"], ["y"], name="hardmax_1")], []),
              os.path.join(BAD_DIR, "unknown_op.onnx"))
    onnx.save(tiny_graph([helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="fc")], []),
              os.path.join(BAD_DIR, "missing_initializer.onnx"))
    ext = onnx.TensorProto()
    ext.CopyFrom(w)
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../escape.bin"), ("offset", "0"), ("length", "32")):
        entry = ext.external_data.add()
        entry.key, entry.value = k, v
    onnx.save(tiny_graph([helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="fc")], [ext]),
              os.path.join(BAD_DIR, "external_escape.onnx"))
    data = unsorted_model().SerializeToString()
    with open(os.path.join(BAD_DIR, "truncated.onnx"), "wb") as f:
        f.write(data[: len(data) // 2])
    for d in (MODEL_DIR, BAD_DIR):
        for name in sorted(os.listdir(d)):
            size = os.path.getsize(os.path.join(d, name))
            assert size < 100_000, name
            print(f"{os.path.relpath(os.path.join(d, name), ROOT)}: {size} bytes")


if __name__ == "__main__":
    main()
