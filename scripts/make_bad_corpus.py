#!/usr/bin/python3
"""Make the hostile-input corpus tests/data/bad/ and its MANIFEST.tsv (issue 7).

Every case is one small file (or, for datasets, one small folder) that haq must
reject with exit 2 and a message naming the file and the place: the ONNX node,
the JSON pointer or the sample index. tests/e2e/test_bad_corpus.cpp runs the
command of each MANIFEST.tsv row and checks exactly that, under `ulimit -v` so
that an absurd size in a header cannot be allocated.

MANIFEST.tsv columns (tab-separated, '#' lines are comments):
  file      the bad file, relative to tests/data/bad/ (the file the message must name)
  command   how the test feeds it to haq:
              inspect   haq inspect FILE
              profile   haq simulate models/fmnist-mlp.onnx --hw FILE --table-out T
              policy    haq simulate models/fmnist-mlp.onnx --hw bismo-edge --policy FILE --table-out T
              check     haq check FILE --model models/fmnist-mlp.onnx --hw bismo-edge --data fashion-mnist
              idx       haq eval models/fmnist-mlp.onnx --data DIR-OF-FILE --samples 8 --calib 8
              npy       haq eval models/fmnist-mlp.onnx --data DIR/x.npy,DIR/y.npy --samples 8 --calib 8
  expected  a substring stderr must contain (the place and what is wrong)

Four ONNX files here come from scripts/make_model_fixtures.py (truncated.onnx,
unknown_op.onnx, missing_initializer.onnx, external_escape.onnx); this script
lists them in the manifest but does not rewrite them.

Run with Debian's interpreter: /usr/bin/python3 scripts/make_bad_corpus.py
Deterministic: re-running gives the same bytes.
"""
import gzip
import json
import os
import shutil
import struct

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
BAD = os.path.join(ROOT, "tests", "data", "bad")
FROM_FIXTURES = {"truncated.onnx", "unknown_op.onnx", "missing_initializer.onnx", "external_escape.onnx"}

CASES = []  # (file, command, expected substring)


def case(name, command, expected, names=None):
    """One manifest row; `names` is the file the message names when it is not `name` itself."""
    assert "\t" not in expected and "\n" not in expected
    CASES.append((name, command, expected) + ((names,) if names else ()))


def write_bytes(rel, data):
    path = os.path.join(BAD, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def write_text(rel, text):
    write_bytes(rel, text.encode())


# ---------------------------------------------------------------- ONNX

def model_of(nodes, inputs, outputs, initializers=(), opset=13, extra_opsets=()):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, list(initializers))
    opsets = [helper.make_opsetid("", opset)] if opset is not None else []
    opsets += [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(graph, producer_name="make_bad_corpus", opset_imports=opsets)
    m.ir_version = 8
    return m


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def weight(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def gemm_model(w, x_shape=(1, 4), name="fc"):
    """x -> Gemm(transB=1) -> y, the weight given as a TensorProto."""
    node = helper.make_node("Gemm", ["x", w.name], ["y"], name=name, transB=1)
    return model_of([node], [vi("x", list(x_shape))], [vi("y", None)], [w])


def save(rel, model):
    write_bytes(rel, model.SerializeToString())


def onnx_cases():
    # Not protobuf at all, or a broken one.
    case("truncated.onnx", "inspect", "not a valid ONNX model")
    write_bytes("empty.onnx", b"")
    case("empty.onnx", "inspect", "empty file")
    write_bytes("random_bytes.onnx", np.random.default_rng(1).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    case("random_bytes.onnx", "inspect", "not a valid ONNX model")
    # ModelProto field 7 (graph) holding a text string instead of a GraphProto message.
    text = b"this is a string, not a graph"
    write_bytes("string_as_graph.onnx", b"\x08\x08" + b"\x3a" + bytes([len(text)]) + text)
    case("string_as_graph.onnx", "inspect", "not a valid ONNX model")
    # Field 7 with the varint wire type: protobuf keeps it as an unknown field, so no graph.
    write_bytes("graph_wrong_wire_type.onnx", b"\x08\x08" + b"\x38\x05" + b"\x42\x04\x0a\x00\x10\x0d")
    case("graph_wrong_wire_type.onnx", "inspect", "graph: the model has no graph")

    # Wrong field types inside a well-formed protobuf.
    const = helper.make_node("Constant", [], ["c"], name="const_w")
    const.attribute.append(helper.make_attribute("value", "a string, not a tensor"))
    save("constant_string_value.onnx", model_of(
        [const, helper.make_node("MatMul", ["x", "c"], ["y"], name="fc")], [vi("x", [1, 4])], [vi("y", None)]))
    case("constant_string_value.onnx", "inspect", "node 'const_w' (Constant): attribute 'value' must be a tensor")
    conv = helper.make_node("Conv", ["x", "conv.weight"], ["y"], name="conv")
    conv.attribute.append(helper.make_attribute("strides", "2,2"))
    save("conv_strides_string.onnx", model_of([conv], [vi("x", [1, 2, 8, 8])], [vi("y", None)],
                                              [weight("conv.weight", (4, 2, 3, 3))]))
    case("conv_strides_string.onnx", "inspect", "node 'conv' (Conv)")
    sw = helper.make_tensor("fc.weight", TensorProto.STRING, [3, 4], [b"w"] * 12)
    save("string_initializer.onnx", gemm_model(sw))
    case("string_initializer.onnx", "inspect", "'fc.weight'")
    # A node name that is not UTF-8 (found by fuzz_onnx: JSON outputs cannot
    # hold it). Python's protobuf refuses such a string, so the serialized
    # bytes are patched.
    data = gemm_model(weight("fc.weight", (3, 4)), name="fc.NOT-UTF8").SerializeToString()
    assert data.count(b"fc.NOT-UTF8") == 1
    write_bytes("name_not_utf8.onnx", data.replace(b"fc.NOT-UTF8", b"fc.\xff\xfeT-UTF8"))
    case("name_not_utf8.onnx", "inspect", "node 0: name 'fc.\\xff\\xfeT-UTF8' is not valid UTF-8")

    # Graph structure.
    save("cycle.onnx", model_of([
        helper.make_node("Add", ["x", "b"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Gemm", ["b", "fc.weight"], ["y"], name="fc", transB=1)],
        [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))]))
    case("cycle.onnx", "inspect", "the graph has a cycle through this node")
    save("missing_graph_input.onnx", model_of([
        helper.make_node("Relu", ["z"], ["a"], name="relu_z"),
        helper.make_node("Gemm", ["a", "fc.weight"], ["y"], name="fc", transB=1)],
        [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))]))
    case("missing_graph_input.onnx", "inspect", "node 'relu_z' (Relu): input 'z'")
    case("missing_initializer.onnx", "inspect", "node 'fc' (MatMul): input 'fc.weight'")
    save("duplicate_output.onnx", model_of([
        helper.make_node("Relu", ["x"], ["a"], name="relu_1"),
        helper.make_node("Sigmoid", ["x"], ["a"], name="sigmoid_1"),
        helper.make_node("Gemm", ["a", "fc.weight"], ["y"], name="fc", transB=1)],
        [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))]))
    case("duplicate_output.onnx", "inspect", "node 'sigmoid_1' (Sigmoid)")

    # Dims: negative, zero, absurd.
    save("negative_dim_input.onnx", gemm_model(weight("fc.weight", (3, 4)), x_shape=(1, -4)))
    case("negative_dim_input.onnx", "inspect", "input 'x'")
    save("zero_dim_input.onnx", model_of(
        [helper.make_node("Conv", ["x", "conv.weight"], ["y"], name="conv")],
        [vi("x", [1, 2, 0, 8])], [vi("y", None)], [weight("conv.weight", (4, 2, 3, 3))]))
    case("zero_dim_input.onnx", "inspect", "input 'x'")
    neg = weight("fc.weight", (3, 4))
    neg.dims[0] = -3
    save("negative_dim_initializer.onnx", gemm_model(neg))
    case("negative_dim_initializer.onnx", "inspect", "initializer 'fc.weight'")
    zero = numpy_helper.from_array(np.zeros((0, 4), np.float32), "fc.weight")
    save("zero_dim_initializer.onnx", gemm_model(zero))
    case("zero_dim_initializer.onnx", "inspect", "node 'fc' (Gemm): output 'y' would have shape [1, 0]")
    huge = onnx.TensorProto()
    huge.name, huge.data_type = "fc.weight", TensorProto.FLOAT
    huge.dims.extend([1 << 20, 1 << 20])  # 2^40 elements, 4 TiB of floats
    huge.raw_data = bytes(16)
    save("huge_initializer.onnx", gemm_model(huge, x_shape=(1, 1 << 20)))
    case("huge_initializer.onnx", "inspect", "initializer 'fc.weight'")
    overflow = onnx.TensorProto()
    overflow.name, overflow.data_type = "fc.weight", TensorProto.FLOAT
    overflow.dims.extend([1 << 62, 1 << 62, 16])  # the element count overflows 64 bits
    overflow.raw_data = bytes(16)
    save("overflow_dims_initializer.onnx", gemm_model(overflow))
    case("overflow_dims_initializer.onnx", "inspect", "initializer 'fc.weight'")
    save("conv_kernel_larger_than_input.onnx", model_of(
        [helper.make_node("Conv", ["x", "conv.weight"], ["y"], name="conv")],
        [vi("x", [1, 1, 2, 2])], [vi("y", None)], [weight("conv.weight", (1, 1, 5, 5))]))
    case("conv_kernel_larger_than_input.onnx", "inspect", "node 'conv' (Conv)")

    # External data: missing, escaping, absolute, short.
    def external(rel, location, length=48):
        t = onnx.TensorProto()
        t.CopyFrom(weight("fc.weight", (3, 4)))
        t.ClearField("raw_data")
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", "0"), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        save(rel, gemm_model(t))

    external("external_missing.onnx", "no_such_file.bin")
    case("external_missing.onnx", "inspect", "initializer 'fc.weight': cannot open external data file")
    case("external_escape.onnx", "inspect", "initializer 'fc.weight': external data location '../escape.bin' escapes")
    external("external_absolute.onnx", "/etc/hostname")
    case("external_absolute.onnx", "inspect", "initializer 'fc.weight': external data location '/etc/hostname' is absolute")
    external("external_short.onnx", "external_short.bin")
    write_bytes("external_short.bin", bytes(8))  # the tensor needs 48
    case("external_short.onnx", "inspect", "initializer 'fc.weight': external data file 'external_short.bin' has 8 bytes")

    # Layers that do not fit their inputs.
    save("conv_channel_mismatch.onnx", model_of(
        [helper.make_node("Conv", ["x", "conv.weight"], ["y"], name="conv")],
        [vi("x", [1, 3, 8, 8])], [vi("y", None)], [weight("conv.weight", (4, 2, 3, 3))]))
    case("conv_channel_mismatch.onnx", "inspect", "node 'conv' (Conv)")
    save("gemm_k_mismatch.onnx", gemm_model(weight("fc.weight", (3, 5))))
    case("gemm_k_mismatch.onnx", "inspect", "node 'fc' (Gemm)")

    # Ops and opsets.
    case("unknown_op.onnx", "inspect", "node 'hardmax_1' (Hardmax): op 'Hardmax' (opset 13) is not supported")
    custom = helper.make_node("FancyGelu", ["x"], ["a"], name="gelu", domain="com.example")
    save("custom_domain_op.onnx", model_of(
        [custom, helper.make_node("Gemm", ["a", "fc.weight"], ["y"], name="fc", transB=1)],
        [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))], extra_opsets=[("com.example", 1)]))
    case("custom_domain_op.onnx", "inspect", "node 'gelu' (com.example.FancyGelu): op 'com.example.FancyGelu' (opset 1) is not supported")
    save("opset_too_new.onnx", model_of([helper.make_node("Gemm", ["x", "fc.weight"], ["y"], name="fc", transB=1)],
                                        [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))], opset=99))
    case("opset_too_new.onnx", "inspect", "opset_import: default-domain opset 99 is outside the supported range")
    save("opset_too_old.onnx", model_of([helper.make_node("Gemm", ["x", "fc.weight"], ["y"], name="fc", transB=1)],
                                        [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))], opset=1))
    case("opset_too_old.onnx", "inspect", "opset_import: default-domain opset 1 is outside the supported range")
    save("no_default_opset.onnx", model_of([helper.make_node("Gemm", ["x", "fc.weight"], ["y"], name="fc", transB=1)],
                                           [vi("x", [1, 4])], [vi("y", None)], [weight("fc.weight", (3, 4))],
                                           opset=None, extra_opsets=[("com.example", 1)]))
    case("no_default_opset.onnx", "inspect", "opset_import: no opset for the default ONNX domain")


# ---------------------------------------------------------------- profiles

def base_profile():
    with open(os.path.join(ROOT, "hardware-profiles", "bismo-edge.json")) as f:
        p = json.load(f)
    p["name"] = "bad"
    p["description"] = "a copy of bismo-edge with one error (tests/data/bad)"
    p["sources"] = ["scripts/make_bad_corpus.py"]
    return p


def profile_case(name, edit, expected):
    p = base_profile()
    edit(p)
    write_text(name, json.dumps(p, indent=1) + "\n")
    case(name, "profile", expected)


def profile_cases():
    profile_case("profile_unknown_key.json", lambda p: p.update(clock_mhzz=200), "/clock_mhzz")
    profile_case("profile_unknown_nested_key.json", lambda p: p["energy"].update(leakage_pj=1), "/energy/leakage_pj")
    profile_case("profile_clock_string.json", lambda p: p.update(clock_mhz="200"), "/clock_mhz")
    profile_case("profile_batch_fraction.json", lambda p: p.update(batch=1.5), "/batch")
    profile_case("profile_precision_string.json", lambda p: p["precision"].update(w_bits="1..8"),
                 "/precision/w_bits")
    profile_case("profile_memory_array.json", lambda p: p.update(memory=[64]), "/memory")
    profile_case("profile_missing_field.json", lambda p: p["memory"].pop("dram_bits_per_cycle"),
                 "/memory/dram_bits_per_cycle")
    profile_case("profile_missing_section.json", lambda p: p.pop("energy"), "/energy")
    profile_case("profile_missing_schema.json", lambda p: p.pop("schema"), "/schema")
    profile_case("profile_dram_negative.json", lambda p: p["memory"].update(dram_bits_per_cycle=-4),
                 "/memory/dram_bits_per_cycle")
    profile_case("profile_array_zero.json", lambda p: p["bit_serial"].update(dm=0), "/bit_serial/dm")
    profile_case("profile_stages_fetch_zero.json",
                 lambda p: p["bit_serial"]["stages"].update(fetch_bits_per_cycle=0),
                 "/bit_serial/stages/fetch_bits_per_cycle")
    profile_case("profile_stages_missing_field.json",
                 lambda p: p["bit_serial"]["stages"].pop("sync_cycles"), "/bit_serial/stages/sync_cycles")
    profile_case("profile_clock_zero.json", lambda p: p.update(clock_mhz=0), "/clock_mhz")
    profile_case("profile_energy_negative.json", lambda p: p["energy"].update(dram_pj_per_bit=-1),
                 "/energy/dram_pj_per_bit")
    profile_case("profile_precision_reversed.json", lambda p: p["precision"].update(w_bits=[8, 2]),
                 "/precision/w_bits")
    profile_case("profile_precision_zero.json", lambda p: p["precision"].update(a_bits=[0, 8]),
                 "/precision/a_bits")
    profile_case("profile_precision_nine.json", lambda p: p["precision"].update(w_bits=[1, 9]),
                 "/precision/w_bits")
    profile_case("profile_precision_three.json", lambda p: p["precision"].update(w_bits=[1, 4, 8]),
                 "/precision/w_bits")
    profile_case("profile_bad_schema.json", lambda p: p.update(schema="haq.hardware/2"), "/schema")
    profile_case("profile_unknown_architecture.json", lambda p: p.update(architecture="systolic"),
                 "/architecture")
    profile_case("profile_wrong_section.json", lambda p: p.update(architecture="bit-fusion"), "/bit_serial")

    p = base_profile()
    text = json.dumps(p, indent=1)
    write_text("profile_huge_number.json", text.replace('"clock_mhz": 200', '"clock_mhz": 1e999'))
    case("profile_huge_number.json", "profile", "number 1e999 is out of range")
    write_text("profile_not_json.json", "{ schema: haq.hardware/1, name = edge }\n")
    case("profile_not_json.json", "profile", "line 1 column 3: not valid JSON")
    write_text("profile_empty.json", "")
    case("profile_empty.json", "profile", "line 1 column 1: not valid JSON")
    write_text("profile_trailing_garbage.json", text + "\n}\n")
    case("profile_trailing_garbage.json", "profile", "not valid JSON")
    write_text("profile_top_array.json", json.dumps([p]))
    case("profile_top_array.json", "profile", "/: expected an object")
    depth = 100000
    write_text("profile_deep_nesting.json",
               text.replace('"name": "bad"', '"name": ' + "[" * depth + "]" * depth))
    case("profile_deep_nesting.json", "profile", "nested deeper than 256 levels")

    # A table profile whose CSV is missing, or has a bad row.
    t = {"schema": "haq.hardware/1", "name": "bad-table", "description": "tests/data/bad", "sources": ["x"],
         "architecture": "table", "batch": 1, "clock_mhz": 200,
         "precision": {"w_bits": [2, 8], "a_bits": [2, 8]}, "table": {"csv": "no_such_table.csv"}}
    write_text("profile_table_missing_csv.json", json.dumps(t, indent=1) + "\n")
    case("profile_table_missing_csv.json", "profile", "/table/csv: no such file 'no_such_table.csv'")
    t["table"]["csv"] = "profile_table_bad_row.csv"
    write_text("profile_table_bad_row.json", json.dumps(t, indent=1) + "\n")
    write_text("profile_table_bad_row.csv",
               "layer,w_bits,a_bits,latency_s,energy_pj\n/fc1/Gemm,8,8,1e-6,100\n/fc1/Gemm,8,7,fast,100\n")
    case("profile_table_bad_row.json", "profile", "line 3: column latency_s", names="profile_table_bad_row.csv")


# ---------------------------------------------------------------- policies

LAYERS = ["/fc1/Gemm", "/fc2/Gemm", "/fc3/Gemm"]  # models/fmnist-mlp.onnx


def policy_case(name, edit, expected):
    p = {"schema": "haq.policy/1", "layers": [{"name": n, "w_bits": 8, "a_bits": 8} for n in LAYERS]}
    edit(p)
    write_text(name, json.dumps(p, indent=1) + "\n")
    case(name, "policy", expected)


def policy_cases():
    policy_case("policy_unknown_layer.json", lambda p: p["layers"][1].update(name="/fc9/Gemm"), "/layers/1")
    for tag, bits in (("0", 0), ("9", 9), ("minus1", -1), ("3.5", 3.5), ("string", "8"), ("null", None),
                      ("huge", 1e30)):
        policy_case(f"policy_w_bits_{tag}.json", lambda p, b=bits: p["layers"][2].update(w_bits=b),
                    "/layers/2/w_bits")
    policy_case("policy_a_bits_9.json", lambda p: p["layers"][0].update(a_bits=9), "/layers/0/a_bits")
    policy_case("policy_missing_layer.json", lambda p: p["layers"].pop(1), "/fc2/Gemm")
    policy_case("policy_duplicate_layer.json", lambda p: p["layers"].append(dict(p["layers"][0])), "/layers/3")
    policy_case("policy_bad_schema.json", lambda p: p.update(schema="haq.policy/9"), "/schema")
    policy_case("policy_layers_object.json", lambda p: p.update(layers={"fc1": 8}), "/layers")
    policy_case("policy_no_layers.json", lambda p: p.pop("layers"), "/layers")
    policy_case("policy_layer_without_name.json", lambda p: p["layers"][1].pop("name"), "/layers/1")
    policy_case("policy_fp32_string.json", lambda p: p["layers"][0].update(fp32="yes"), "/layers/0/fp32")
    policy_case("policy_missing_bits.json", lambda p: p["layers"][0].pop("a_bits"), "/layers/0")
    write_text("policy_not_json.json", "layers: [fc1 w8a8]\n")
    case("policy_not_json.json", "policy", "not valid JSON")
    write_text("policy_empty.json", "")
    case("policy_empty.json", "policy", "not valid JSON")
    write_text("policy_w_bits_overflow.json", json.dumps(
        {"layers": [{"name": n, "w_bits": 8, "a_bits": 8} for n in LAYERS]}).replace('"w_bits": 8', '"w_bits": 1e999', 1))
    case("policy_w_bits_overflow.json", "policy", "1e999")
    # Valid layers and a deeply nested extra key: the parser keeps extra keys
    # (copied recursively), which overflowed the stack before the depth limit.
    depth = 100000
    write_text("policy_deep_nesting.json", json.dumps(
        {"layers": [{"name": n, "w_bits": 8, "a_bits": 8} for n in LAYERS]})[:-1] +
        ', "note": ' + "[" * depth + "]" * depth + "}")
    case("policy_deep_nesting.json", "policy", "nested deeper than 256 levels")
    write_text("policy_top_array.json", json.dumps([{"name": LAYERS[0], "w_bits": 8, "a_bits": 8}]))
    case("policy_top_array.json", "policy", "/: expected a JSON object")
    # haq check reads a policy with its own, lenient parser: the same hostile JSON.
    case("policy_not_json.json", "check", "line 1 column 1: not valid JSON")
    case("policy_w_bits_overflow.json", "check", "number 1e999 is out of range")
    case("policy_deep_nesting.json", "check", "nested deeper than 256 levels")


# ---------------------------------------------------------------- issue 17

def issue17_cases():
    """Duplicate JSON keys, an fp32 layer with bits, pooling pads, Clip bounds,
    int64 overflow in folding, control characters in names, an IDX header
    above the 1 GiB bound."""
    x = vi("x", [1, 1, 8, 8])
    save("maxpool_pad_reaches_kernel.onnx", model_of(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[2, 2], pads=[2, 0, 0, 0])],
        [x], [vi("y", None)]))
    case("maxpool_pad_reaches_kernel.onnx", "inspect", "node 'pool' (MaxPool): pads [2, 0, 0, 0] reach the kernel's extent 2")
    save("avgpool_pad_reaches_kernel.onnx", model_of(
        [helper.make_node("AveragePool", ["x"], ["y"], name="pool", kernel_shape=[3, 3], pads=[3, 3, 3, 3])],
        [x], [vi("y", None)]))
    case("avgpool_pad_reaches_kernel.onnx", "inspect", "node 'pool' (AveragePool): pads [3, 3, 3, 3] reach the kernel's extent 3")
    save("clip_min_above_max.onnx", model_of(
        [helper.make_node("Clip", ["x", "lo", "hi"], ["y"], name="clip")], [x], [vi("y", None)],
        [numpy_helper.from_array(np.array(1, np.float32), "lo"), numpy_helper.from_array(np.array(-1, np.float32), "hi")]))
    case("clip_min_above_max.onnx", "inspect", "node 'clip' (Clip): min 1 is greater than max -1")
    # Shape arithmetic: 2^62 x 4 would wrap to 0 in int64 (and, through a
    # double, to -2^63): the fold is exact and refuses it.
    save("shape_mul_overflow.onnx", model_of(
        [helper.make_node("Mul", ["a", "b"], ["shape"], name="mul"),
         helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        [x], [vi("y", None)],
        [numpy_helper.from_array(np.array([1 << 62, 1], np.int64), "a"),
         numpy_helper.from_array(np.array([4, 1], np.int64), "b")]))
    case("shape_mul_overflow.onnx", "inspect",
         "node 'mul' (Mul): Mul of the integer constants 4611686018427387904 and 4 overflows 64 bits")
    # A float extent beyond int64 cast to an integer shape.
    save("cast_float_beyond_int64.onnx", model_of(
        [helper.make_node("Cast", ["f"], ["shape"], name="cast", to=TensorProto.INT64),
         helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")],
        [x], [vi("y", None)], [numpy_helper.from_array(np.array([1e19, 1], np.float32), "f")]))
    case("cast_float_beyond_int64.onnx", "inspect", "node 'cast' (Cast): value 1e+19 does not fit a 64-bit integer")
    # A NUL, an escape sequence and a newline in a node name: printed escaped.
    save("name_control_chars.onnx", model_of(
        [helper.make_node("Hardmax", ["x"], ["y"], name="bad\x00name\x1b[31m\nend")], [vi("x", [1, 4])], [vi("y", None)]))
    case("name_control_chars.onnx", "inspect", "node 'bad\\x00name\\x1b[31m\\x0aend' (Hardmax)")

    text = json.dumps(base_profile(), indent=1)
    write_text("profile_duplicate_key.json", text.replace('"clock_mhz": 200', '"clock_mhz": 200, "clock_mhz": 100'))
    case("profile_duplicate_key.json", "profile", '/clock_mhz: duplicate key "clock_mhz"')
    write_text("profile_duplicate_nested_key.json",
               text.replace('"dram_bits_per_cycle": ', '"dram_bits_per_cycle": 64, "dram_bits_per_cycle": ', 1))
    case("profile_duplicate_nested_key.json", "profile", '/memory/dram_bits_per_cycle: duplicate key')
    p = {"schema": "haq.policy/1", "layers": [{"name": n, "w_bits": 8, "a_bits": 8} for n in LAYERS]}
    write_text("policy_duplicate_key.json",
               json.dumps(p, indent=1).replace('"w_bits": 8', '"w_bits": 8, "w_bits": 2', 2).replace(
                   '"w_bits": 8, "w_bits": 2', '"w_bits": 8', 1))
    case("policy_duplicate_key.json", "policy", '/layers/1/w_bits: duplicate key "w_bits"')
    case("policy_duplicate_key.json", "check", '/layers/1/w_bits: duplicate key "w_bits"')
    policy_case("policy_fp32_with_bits.json", lambda p: p["layers"][0].update(fp32=True, w_bits=9),
                '/layers/0/w_bits: a layer with "fp32": true has no bits, got 9')

    # A gzip IDX whose header claims 2 GiB: refused before reading, whatever
    # the stream holds (a 2 MB bomb would hold it).
    n = 10
    bomb = gzip.compress(idx([2048, 1024, 1024], bytes(4096)), mtime=0)
    idx_case("idx_gzip_claims_2gib", bomb, idx([n], labels(n)), IMG,
             "more than the 1 GiB an IDX file may hold")


# ---------------------------------------------------------------- datasets

def idx(dims, payload, magic_type=0x08):
    head = bytes([0, 0, magic_type, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + payload


def images(n, h=28, w=28):
    return np.random.default_rng(n).integers(0, 256, n * h * w, dtype=np.uint8).tobytes()


def labels(n, bad_at=None, bad=None):
    lab = np.arange(n, dtype=np.uint8) % 10
    if bad_at is not None:
        lab[bad_at] = bad
    return lab.tobytes()


def idx_case(folder, imgs, labs, bad, expected, train=None):
    """A folder with the test split (and, for checks made once both splits are
    loaded, a train split `train` = (images, labels)); `bad` names the bad file
    ("" for the folder itself)."""
    write_bytes(f"{folder}/t10k-images-idx3-ubyte", imgs)
    if labs is not None:
        write_bytes(f"{folder}/t10k-labels-idx1-ubyte", labs)
    if train is not None:
        write_bytes(f"{folder}/train-images-idx3-ubyte", train[0])
        write_bytes(f"{folder}/train-labels-idx1-ubyte", train[1])
    case(f"{folder}/{bad}" if bad else folder, "idx", expected)


IMG = "t10k-images-idx3-ubyte"
LAB = "t10k-labels-idx1-ubyte"


def npy(descr, shape, data, fortran=False, version=1):
    d = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
        descr, "True" if fortran else "False",
        ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    pre = 10 if version == 1 else 12
    d += " " * ((64 - (pre + len(d) + 1) % 64) % 64) + "\n"
    size = struct.pack("<H", len(d)) if version == 1 else struct.pack("<I", len(d))
    return b"\x93NUMPY" + bytes([version, 0]) + size + d.encode() + data


def npy_case(folder, x, y, bad, expected):
    write_bytes(f"{folder}/x.npy", x)
    write_bytes(f"{folder}/y.npy", y)
    case(f"{folder}/{bad}", "npy", expected)


def dataset_cases():
    n = 10
    good_img, good_lab = idx([n, 28, 28], images(n)), idx([n], labels(n))
    bad_magic = bytearray(good_img)
    bad_magic[1] = ord("Z")
    idx_case("idx_bad_magic", bytes(bad_magic), good_lab, IMG, "header: bad magic number")
    idx_case("idx_float_type", idx([n, 28, 28], images(n), magic_type=0x0D), good_lab, IMG, "header")
    idx_case("idx_truncated", good_img[: len(good_img) - 784 * 6 - 100], good_lab, IMG, "image 3: truncated")
    idx_case("idx_truncated_header", good_img[:6], good_lab, IMG, "header: truncated")
    idx_case("idx_wrong_ndims", idx([n * 784], images(n)), good_lab, IMG, "header")
    idx_case("idx_count_mismatch", idx([n - 1, 28, 28], images(n - 1)), good_lab, LAB,
             "count mismatch: 10 labels, but")
    train = (good_img, good_lab)
    # Labels are read knowing the model's number of outputs: the error names
    # the labels file and the sample.
    idx_case("idx_label_out_of_range", good_img, idx([n], labels(n, 4, 200)), LAB,
             "sample 4: label 200 out of range 0..9", train=train)
    # The image size needs the model, so it is checked after loading and
    # names the dataset (the folder), not one of its files.
    idx_case("idx_wrong_image_size", idx([n, 32, 32], images(n, 32, 32)), good_lab, "",
             "the samples are 1x32x32", train=(idx([n, 32, 32], images(n, 32, 32)), good_lab))
    idx_case("idx_huge_header", idx([1 << 24, 1 << 16, 1 << 16], bytes(64)), good_lab, IMG, "header:")
    idx_case("idx_missing_labels", good_img, None, "", "no test split: expected t10k-images-idx3-ubyte and "
             "t10k-labels-idx1-ubyte")

    x = npy("|u1", [n, 28, 28], images(n))
    y = npy("<i8", [n], np.arange(n, dtype="<i8").tobytes())
    npy_case("npy_bad_magic", b"\x93NUMPX" + x[6:], y, "x.npy", "not a .npy file")
    npy_case("npy_bad_header", x.replace(b"'shape'", b"'shapE'"), y, "x.npy", "header")
    npy_case("npy_unsupported_version", x[:6] + b"\x07" + x[7:], y, "x.npy", "header: unsupported .npy format version 7")
    npy_case("npy_header_len_huge", x[:8] + b"\xff\xff" + x[10:200], y, "x.npy", "header: truncated")
    npy_case("npy_wrong_dtype", npy("<f8", [n, 28, 28], bytes(n * 784 * 8)), y, "x.npy", "bad dtype '<f8'")
    npy_case("npy_label_dtype", x, npy("<c8", [n], bytes(n * 8)), "y.npy", "header")
    npy_case("npy_fortran_order", npy("|u1", [n, 28, 28], images(n), fortran=True), y, "x.npy", "fortran")
    npy_case("npy_shape_mismatch", npy("|u1", [n + 2, 28, 28], images(n + 2)), y, "y.npy",
             "count mismatch: 10 labels, but")
    npy_case("npy_truncated", x[: len(x) - 784 * 3], y, "x.npy", "truncated")
    npy_case("npy_huge_shape", npy("|u1", [1 << 40, 28, 28], bytes(64)), y, "x.npy",
             "header: shape (1099511627776, 28, 28) is too large")
    npy_case("npy_label_negative", x, npy("<i8", [n], np.array([0, 1, 2, -1] + [0] * (n - 4), "<i8").tobytes()),
             "y.npy", "sample 3: label -1 out of range")
    npy_case("npy_wrong_image_size", npy("|u1", [n, 3, 32, 32], images(n * 3, 32, 32)), y, "x.npy", "3x32x32")


def main():
    # Regenerate everything this script owns, keep the fixtures' files.
    if os.path.isdir(BAD):
        for name in os.listdir(BAD):
            if name in FROM_FIXTURES:
                continue
            path = os.path.join(BAD, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
    os.makedirs(BAD, exist_ok=True)
    onnx_cases()
    profile_cases()
    policy_cases()
    dataset_cases()
    issue17_cases()
    for name in FROM_FIXTURES:
        assert os.path.exists(os.path.join(BAD, name)), f"{name}: run scripts/make_model_fixtures.py first"
    with open(os.path.join(BAD, "MANIFEST.tsv"), "w") as f:
        f.write("# Generated by scripts/make_bad_corpus.py; see its docstring for the columns.\n")
        f.write("# file\tcommand\texpected\n")
        for row in CASES:
            f.write("\t".join(row) + "\n")
    total = 0
    for dirpath, _, files in os.walk(BAD):
        for name in files:
            size = os.path.getsize(os.path.join(dirpath, name))
            assert size < 300_000, name
            total += size
    kinds = {}
    for _, command, *_ in CASES:
        kinds[command] = kinds.get(command, 0) + 1
    print(f"{len(CASES)} cases ({', '.join(f'{k} {v}' for k, v in kinds.items())}), {total} bytes")


if __name__ == "__main__":
    main()
