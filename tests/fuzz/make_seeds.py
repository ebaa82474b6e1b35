#!/usr/bin/python3
"""Writes the hand-made fuzz seeds of tests/fuzz/corpus/<target>/ (committed,
each a few KB; every one is a VALID input, test_fuzz_regressions checks that).

scripts/fuzz.sh adds the repository's real files as further seeds
(models/*.onnx, tests/data/model/*.onnx, hardware-profiles/*.json,
configs/policies/*.json); these small ones exercise more paths per second.

Input formats (see tests/fuzz/fuzz_harness.h):
  idx, npy   4-byte little-endian length of the images file, the images file,
             then the labels file (an empty labels part: unlabeled .npy).
  profile    the profile JSON, optionally NUL + the table CSV it names.
  config     a search config (haq search --config).
  sweep      a sweep file, paths relative to the repository root.
  checkpoint one byte choosing the agent, then checkpoint/state.bin; written
             by test_fuzz_regressions '[.write-seeds]', not by this script.

Run with Debian's interpreter (python3-onnx): /usr/bin/python3 tests/fuzz/make_seeds.py
Deterministic: re-running gives the same files (gzip with mtime 0).
"""
import gzip
import json
import os
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
CORPUS = os.path.join(HERE, "corpus")
rng = np.random.default_rng(11)


def out(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def two_parts(first, second):
    return struct.pack("<I", len(first)) + first + second


def w(name, *shape, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(nodes, inputs, outputs, inits, opset=14):
    g = helper.make_graph(nodes, "seed", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="haq-fuzz-seed")
    onnx.checker.check_model(m)
    return m.SerializeToString()


def onnx_seeds():
    f = TensorProto.FLOAT
    # Conv+BN+ReLU, MaxPool, depthwise Conv + Clip (ReLU6), GAP, Flatten, Gemm, Softmax.
    nodes = [
        helper.make_node("Conv", ["x", "c1w", "c1b"], ["c1"], name="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "bn_s", "bn_b", "bn_m", "bn_v"], ["b1"], name="bn1"),
        helper.make_node("Relu", ["b1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "dww"], ["d1"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=4),
        helper.make_node("Clip", ["d1", "lo", "hi"], ["k1"], name="relu6"),
        helper.make_node("GlobalAveragePool", ["k1"], ["g1"], name="gap"),
        helper.make_node("Flatten", ["g1"], ["f1"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f1", "fcw", "fcb"], ["fc"], name="fc", transB=1),
        helper.make_node("Softmax", ["fc"], ["y"], name="softmax", axis=1),
    ]
    inits = [w("c1w", 4, 1, 3, 3), w("c1b", 4), w("bn_s", 4), w("bn_b", 4), w("bn_m", 4),
             numpy_helper.from_array(np.full(4, 0.8, np.float32), "bn_v"), w("dww", 4, 1, 3, 3),
             numpy_helper.from_array(np.array(0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6, np.float32), "hi"), w("fcw", 3, 4), w("fcb", 3)]
    out("onnx", "cnn.onnx", model(nodes, [helper.make_tensor_value_info("x", f, [1, 1, 8, 8])],
                                  [helper.make_tensor_value_info("y", f, [1, 3])], inits))

    # Symbolic batch, the Shape->Gather->Unsqueeze->Concat->Reshape chain,
    # Constant, Identity, Dropout, MatMul + Add, elementwise ops, Transpose.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Constant", [], ["zero"], name="const0", value=helper.make_tensor("z", TensorProto.INT64, [], [0])),
        helper.make_node("Gather", ["s", "zero"], ["n"], name="gather", axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"], name="unsq"),
        helper.make_node("Concat", ["n1", "minus1"], ["newshape"], name="concat", axis=0),
        helper.make_node("Reshape", ["x", "newshape"], ["flat"], name="reshape"),
        helper.make_node("Identity", ["flat"], ["flat2"], name="ident"),
        helper.make_node("MatMul", ["flat2", "mw"], ["mm"], name="matmul"),
        helper.make_node("Add", ["mm", "mb"], ["mma"], name="add_bias"),
        helper.make_node("Dropout", ["mma"], ["dr"], name="dropout"),
        helper.make_node("HardSwish", ["dr"], ["hs"], name="hswish"),
        helper.make_node("Mul", ["hs", "half"], ["mu"], name="mul"),
        helper.make_node("Sub", ["mu", "half"], ["su"], name="sub"),
        helper.make_node("LeakyRelu", ["su"], ["lr"], name="lrelu", alpha=0.1),
        helper.make_node("Gemm", ["lr", "gw", "gb"], ["gm"], name="gemm", transB=1),
        helper.make_node("Sigmoid", ["gm"], ["y"], name="sigmoid"),
    ]
    inits = [i64("ax0", [0]), i64("minus1", [-1]), w("mw", 16, 6), w("mb", 6),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"), w("gw", 2, 6), w("gb", 2)]
    out("onnx", "shapes.onnx", model(nodes, [helper.make_tensor_value_info("x", f, ["N", 1, 4, 4])],
                                     [helper.make_tensor_value_info("y", f, ["N", 2])], inits))

    # Residual block: Conv, Relu, Conv, Add (skip), Relu, ReduceMean, Squeeze, Gemm.
    nodes = [
        helper.make_node("Conv", ["x", "aw", "ab"], ["a"], name="conv_a", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["ar"], name="relu_a"),
        helper.make_node("Conv", ["ar", "bw", "bb"], ["b"], name="conv_b", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "ar"], ["s"], name="skip"),
        helper.make_node("Relu", ["s"], ["sr"], name="relu_s"),
        helper.make_node("AveragePool", ["sr"], ["ap"], name="avgpool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("ReduceMean", ["ap"], ["rm"], name="mean", axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["rm", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    inits = [w("aw", 4, 2, 3, 3), w("ab", 4), w("bw", 4, 4, 3, 3), w("bb", 4), w("fw", 5, 4), w("fb", 5)]
    out("onnx", "residual.onnx", model(nodes, [helper.make_tensor_value_info("x", f, [1, 2, 6, 6])],
                                       [helper.make_tensor_value_info("y", f, [1, 5])], inits))


def idx_file(array, ndims):
    header = bytes([0, 0, 8, ndims]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_seeds():
    images = rng.integers(0, 256, size=(3, 4, 4))
    labels = np.array([0, 2, 1])
    img, lab = idx_file(images, 3), idx_file(labels, 1)
    out("idx", "plain", two_parts(img, lab))
    out("idx", "gzipped", two_parts(gzip.compress(img, mtime=0), gzip.compress(lab, mtime=0)))


def npy_file(array):
    buf = __import__("io").BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def npy_seeds():
    f4 = rng.random((3, 1, 4, 4), dtype=np.float32)
    out("npy", "f4_nchw_i8", two_parts(npy_file(f4), npy_file(np.array([1, 0, 2], np.int64))))
    u1 = rng.integers(0, 256, size=(2, 4, 4, 3)).astype(np.uint8)
    out("npy", "u1_nhwc_i4", two_parts(npy_file(u1), npy_file(np.array([3, 1], np.int32))))
    flat = rng.random((2, 6), dtype=np.float32)
    out("npy", "f4_flat_unlabeled", two_parts(npy_file(flat), b""))


def profile_seeds():
    with open(os.path.join(ROOT, "hardware-profiles", "example-table.json"), "rb") as fh:
        profile = fh.read()
    with open(os.path.join(ROOT, "hardware-profiles", "example-table.csv"), "rb") as fh:
        lines = fh.read().splitlines(keepends=True)
    # The comments, the header and a few rows: the parser does not need all.
    out("profile", "table_with_csv", profile + b"\0" + b"".join(lines[:3] + lines[3:9]))


def policy_seeds():
    with open(os.path.join(ROOT, "configs", "policies", "fmnist-resnet-w4a4-ends8.json")) as fh:
        base = json.load(fh)
    mixed = {"schema": "haq.policy/1", "model": "fmnist-resnet", "seed": 3, "layers": []}
    for i, layer in enumerate(base["layers"]):
        e = {"name": layer["name"]}
        if i == 0:
            e["fp32"] = True
        else:
            e["w_bits"], e["a_bits"] = 1 + (i * 3) % 8, 1 + (i * 5) % 8
        mixed["layers"].append(e)
    mixed["layers"].reverse()  # order in the file does not matter
    out("policy", "mixed.json", json.dumps(mixed, indent=1).encode())


def config_seeds():
    # Every key of a search config once (haq search --config).
    full = {
        "schema": "haq.search/1", "description": "every key", "model": "models/fmnist-mlp.onnx",
        "hw": "hardware-profiles/bismo-edge.json", "data": "fashion-mnist",
        "preprocess": {"scale": 255, "mean": 0.5, "std": [0.25]}, "labels": "", "metric": "top5",
        "budgets": ["latency<=0.5x", "energy<=2mJ"], "out": "runs/x", "algo": "ddpg", "seed": 7,
        "quiet": True, "episodes": 12, "time_budget": "90s", "w_bits": [2, 8], "a_bits": [4, 8],
        "eval_samples": 100, "calib_samples": 64, "test_samples": 0, "batch": 50, "select_samples": 0,
        "select_top": 2, "refine_rounds": 1, "refine_moves": 3, "max_front_points": 4,
        "ddpg": {"hidden": 16, "lr_actor": 0.001, "lr_critic": 0.01, "tau": 0.5, "discount": 1,
                 "batch": 8, "replay_per_layer": 4, "warmup": 2, "sigma": 0.5, "sigma_decay": 0.9,
                 "baseline_alpha": 0.5, "updates_per_step": 1},
    }
    out("config", "full.json", json.dumps(full, indent=1).encode())
    out("config", "preprocess_string.json",
        json.dumps({"preprocess": "scale=1,mean=0.1", "time_budget": 30, "a_bits": [3, 3]}).encode())


def sweep_seeds():
    # Paths relative to the repository root (fuzz_sweep runs there).
    sweep = {
        "schema": "haq.sweep/1", "description": "two models, two budgets",
        "models": ["models/fmnist-mlp.onnx", "models/fmnist-resnet.onnx"],
        "profiles": ["hardware-profiles/bismo-edge.json"],
        "budgets": ["latency<=0.5x", ["size<=0.4x", "energy<=0.8x"]],
        "algos": ["random", "knapsack"], "seeds": [0, 1], "data": "fashion-mnist", "episodes": 8,
        "eval_samples": 100, "calib_samples": 64, "batch": 50, "w_bits": [2, 8],
    }
    out("sweep", "small.json", json.dumps(sweep, indent=1).encode())


if __name__ == "__main__":
    onnx_seeds()
    idx_seeds()
    npy_seeds()
    profile_seeds()
    policy_seeds()
    config_seeds()
    sweep_seeds()
    # checkpoint seeds come from a search: see test_fuzz_regressions '[.write-seeds]'.
