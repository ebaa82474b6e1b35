#!/usr/bin/python3
"""Make the small ONNX fixtures of the ops added for issue 16 (committed; each < 100 KB).

Untrained (seeded random weights): the tests compare haq's fp32 outputs with
ONNX Runtime's on the same input, which needs no training.

tests/data/model/
  vit_tiny_op17.onnx      PyTorch export (opset 17, dynamic batch) of a small vision
                          transformer: patch-embedding Conv, a class token expanded to
                          the batch, position embedding, 2 pre-LN encoder blocks
                          (LayerNormalization, 4 heads reshaped with x.shape, q.k^T
                          and A.v MatMuls of two activations, Softmax, GELU as Erf),
                          and a Linear head on the class token. Shape arithmetic
                          (Shape -> Gather -> Mul/Div -> Concat -> Reshape/Expand)
                          folds at import for the fixed batch.
  vit_tiny_op13.onnx      the same network at opset 13, where LayerNorm is exported as
                          ReduceMean/Sub/Pow/Sqrt/Div/Mul/Add.
  shufflenet_tiny.onnx    opset 13: ShuffleNetV2-style units (torch.chunk -> Slice on
                          x.shape, torch.split -> Split,
                          channel shuffle by view/transpose/view on x.shape), a strided
                          and a negative-index slice (Slice with steps), Hardtanh.
  lenet_prelu_op9.onnx    a LeNet-5 (narrowed) with Tanh and PReLU at opset 9 (PRelu
                          slope broadcast over channels, and one shared slope).
  zoo_like_resnet.onnx    written with onnx.helper, op for op like the ONNX zoo's
                          ResNet-50 (opset 9; Conv, BatchNormalization, Relu, MaxPool,
                          Sum of the residual, GlobalAveragePool, Flatten, Gemm) and
                          the zoo ShuffleNet's Reshape/Transpose channel shuffle: the
                          zoo files in Debian's libonnx-testdata are download stubs.
  seg_resize_op13.onnx    a segmentation-head-like net (encoder of two strided Convs, decoder
                          upsampling by F.interpolate(scale_factor=2, mode='nearest') and
                          (mode='bilinear', align_corners=False), a 1x1 Conv of per-pixel
                          class scores, global average pooling into logits) at opset 13:
                          Resize with scales, asymmetric/floor and pytorch_half_pixel. Trained
                          for one epoch on Fashion-MNIST (so that W8A8 can be compared).
  seg_resize_op11.onnx    the same weights with F.interpolate(size=...) at opset 11 (Resize
                          with sizes and an empty scales input).
  seg_resize_op10.onnx    the same weights at opset 10 (Resize-10: X and scales, asymmetric).
  seg_resize_op9.onnx     the same weights at opset 9 (Upsample).

Run with Debian's interpreter: /usr/bin/python3 scripts/make_op_fixtures.py
Seeded; re-running gives the same files.
"""
import math
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
MODEL_DIR = os.path.join(ROOT, "tests", "data", "model")


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        a = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(C // self.heads))
        a = a.softmax(dim=-1)
        x = (a @ v).transpose(1, 2).reshape(B, N, C)
        return self.proj(x)


class Block(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.ln1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyViT(nn.Module):
    def __init__(self, dim=16, heads=4, hidden=32, patch=7, classes=10):
        super().__init__()
        self.embed = nn.Conv2d(1, dim, patch, stride=patch)
        self.cls = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos = nn.Parameter(torch.randn(1, (28 // patch) ** 2 + 1, dim) * 0.5)
        self.blocks = nn.Sequential(Block(dim, heads, hidden), Block(dim, heads, hidden))
        self.ln = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1) + self.pos
        x = self.ln(self.blocks(x))
        return self.head(x[:, 0])


def shuffle(x, groups):
    B, C, H, W = x.shape
    return x.view(B, groups, C // groups, H, W).transpose(1, 2).reshape(B, C, H, W)


class ShuffleUnit(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c // 2
        self.pw1 = nn.Conv2d(h, h, 1)
        self.dw = nn.Conv2d(h, h, 3, padding=1, groups=h)
        self.pw2 = nn.Conv2d(h, h, 1)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        b = self.pw2(self.dw(F.relu(self.pw1(b))))
        return shuffle(torch.cat([a, F.relu(b)], dim=1), 2)


class TinyShuffleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.u1 = ShuffleUnit(8)
        self.u2 = ShuffleUnit(8)
        self.fc = nn.Linear(8 * 4 * 3, 10)

    def forward(self, x):
        x = F.hardtanh(self.stem(x))          # 8 x 14 x 14
        x = self.u2(self.u1(x))
        x1, x2 = torch.split(x, [3, 5], dim=1)  # Split with sizes
        x = torch.cat([x2, x1 * 0.5], dim=1)
        x = x[:, :, ::2, 1::2]                # 7 x 7, steps
        x = x[:, :, -4:, 2:-2]                # 4 x 3, negative starts and ends
        return self.fc(x.flatten(1))


class LeNetPReLU(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.a1 = nn.PReLU(6)
        self.c2 = nn.Conv2d(6, 8, 5)
        self.f1 = nn.Linear(8 * 5 * 5, 48)
        self.a3 = nn.PReLU()
        self.f2 = nn.Linear(48, 32)
        self.f3 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.avg_pool2d(self.a1(self.c1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.c2(x)), 2)
        x = x.view(x.size(0), -1)
        x = self.a3(self.f1(x))
        return self.f3(torch.tanh(self.f2(x)))


class SegResize(nn.Module):
    """Encoder-decoder with a classification read-out: 28 -> 14 -> 7 -> 14 (nearest) -> 28 (bilinear)."""

    def __init__(self, sizes=False):
        super().__init__()
        self.sizes = sizes
        self.e1 = nn.Conv2d(1, 8, 3, stride=2, padding=1)
        self.e2 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.d1 = nn.Conv2d(16, 8, 3, padding=1)
        self.d2 = nn.Conv2d(8 + 1, 8, 3, padding=1)
        self.cls = nn.Conv2d(8, 10, 1)

    def up(self, x, mode):
        kw = {} if mode == "nearest" else {"align_corners": False}
        if self.sizes:
            return F.interpolate(x, size=(x.shape[2] * 2, x.shape[3] * 2), mode=mode, **kw)
        return F.interpolate(x, scale_factor=2, mode=mode, **kw)

    def forward(self, x):
        y = F.relu(self.e2(F.relu(self.e1(x))))         # 16 x 7 x 7
        y = F.relu(self.d1(self.up(y, "nearest")))       # 8 x 14 x 14
        y = self.up(y, "bilinear")                       # 8 x 28 x 28
        y = F.relu(self.d2(torch.cat([y, x], dim=1)))    # the input as a skip connection
        return self.cls(y).mean(dim=(2, 3))


def read_idx(path):
    import gzip
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def train_seg(net, seed):
    """One epoch of Adam on Fashion-MNIST (pixels / 255), one thread."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    root = "/usr/share/datasets/fashion-mnist"
    x = torch.from_numpy(read_idx(f"{root}/train-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(read_idx(f"{root}/train-labels-idx1-ubyte.gz").astype(np.int64))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    perm = torch.randperm(x.shape[0])
    for i in range(0, x.shape[0], 128):
        idx = perm[i:i + 128]
        opt.zero_grad()
        F.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()
    net.eval()
    xt = torch.from_numpy(read_idx(f"{root}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255.0).unsqueeze(1)
    yt = torch.from_numpy(read_idx(f"{root}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    with torch.no_grad():
        acc = (net(xt).argmax(1) == yt).float().mean().item()
    print(f"seg_resize: {100 * acc:.2f} % on the 10k test images (PyTorch)")
    return net


def randomise(net, seed):
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "weight" in name and p.dim() == 1 and "a" not in name.split(".")[-2:-1][0][:1]:
                p.uniform_(0.5, 1.5)  # LayerNorm scales
            elif p.dim() == 1 and p.numel() > 1 and "weight" in name:
                p.uniform_(0.05, 0.4)  # PReLU slopes
            elif "bias" in name:
                p.uniform_(-0.2, 0.2)
    net.eval()
    return net


def export(net, path, opset):
    x = torch.rand(2, 1, 28, 28)
    torch.onnx.export(net, x, path, opset_version=opset, input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=False)


def zoo_like_resnet(path):
    """Two bottleneck-free residual stages as the zoo's ResNet-50 writes them (Sum, opset 9) and its
    ShuffleNet's Reshape/Transpose/Reshape shuffle."""
    rng = np.random.default_rng(16)
    inits = []

    def w(name, shape, scale=0.3):
        inits.append(numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name))
        return name

    def bn(name, c):
        inits.append(numpy_helper.from_array(rng.uniform(0.5, 1.5, c).astype(np.float32), name + "_s"))
        inits.append(numpy_helper.from_array(rng.uniform(-0.2, 0.2, c).astype(np.float32), name + "_b"))
        inits.append(numpy_helper.from_array(rng.uniform(-0.2, 0.2, c).astype(np.float32), name + "_m"))
        inits.append(numpy_helper.from_array(rng.uniform(0.5, 2.0, c).astype(np.float32), name + "_v"))
        return [name + "_s", name + "_b", name + "_m", name + "_v"]

    n = []
    n.append(helper.make_node("Conv", ["data", w("conv0_w", (8, 1, 3, 3))], ["c0"], name="conv0", pads=[1, 1, 1, 1]))
    n.append(helper.make_node("BatchNormalization", ["c0"] + bn("bn0", 8), ["b0"], name="bn0", epsilon=1e-5))
    n.append(helper.make_node("Relu", ["b0"], ["r0"], name="relu0"))
    n.append(helper.make_node("MaxPool", ["r0"], ["p0"], name="pool0", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]))
    x = "p0"
    for k in range(2):
        n.append(helper.make_node("Conv", [x, w(f"s{k}a_w", (8, 8, 3, 3), 0.1)], [f"s{k}a"], name=f"s{k}conv_a",
                                  pads=[1, 1, 1, 1]))
        n.append(helper.make_node("BatchNormalization", [f"s{k}a"] + bn(f"s{k}bn_a", 8), [f"s{k}ab"],
                                  name=f"s{k}bn_a"))
        n.append(helper.make_node("Relu", [f"s{k}ab"], [f"s{k}ar"], name=f"s{k}relu_a"))
        n.append(helper.make_node("Conv", [f"s{k}ar", w(f"s{k}b_w", (8, 8, 3, 3), 0.1)], [f"s{k}b"],
                                  name=f"s{k}conv_b", pads=[1, 1, 1, 1]))
        n.append(helper.make_node("BatchNormalization", [f"s{k}b"] + bn(f"s{k}bn_b", 8), [f"s{k}bb"],
                                  name=f"s{k}bn_b"))
        n.append(helper.make_node("Sum", [x, f"s{k}bb"], [f"s{k}sum"], name=f"s{k}sum"))
        n.append(helper.make_node("Relu", [f"s{k}sum"], [f"s{k}out"], name=f"s{k}relu"))
        x = f"s{k}out"
    # The zoo ShuffleNet's shuffle: Reshape to groups, Transpose, Reshape back (constant shapes).
    inits.append(numpy_helper.from_array(np.array([0, 2, 4, 14, 14], np.int64), "shape_g"))
    inits.append(numpy_helper.from_array(np.array([0, 8, 14, 14], np.int64), "shape_c"))
    n.append(helper.make_node("Reshape", [x, "shape_g"], ["g5"], name="shuffle_reshape"))
    n.append(helper.make_node("Transpose", ["g5"], ["g5t"], name="shuffle_transpose", perm=[0, 2, 1, 3, 4]))
    n.append(helper.make_node("Reshape", ["g5t", "shape_c"], ["sh"], name="shuffle_back"))
    n.append(helper.make_node("Sum", ["sh", x, "sh"], ["tri"], name="sum3"))
    n.append(helper.make_node("GlobalAveragePool", ["tri"], ["gap"], name="gap"))
    n.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"))
    n.append(helper.make_node("Gemm", ["flat", w("fc_w", (10, 8)), w("fc_b", (10,))], ["logits"], name="fc",
                              transB=1))
    graph = helper.make_graph(n, "zoo_like_resnet",
                              [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["N", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])], inits)
    m = helper.make_model(graph, producer_name="make_op_fixtures", opset_imports=[helper.make_opsetid("", 9)])
    m.ir_version = 4
    onnx.checker.check_model(m)
    onnx.save(m, path)


def main():
    os.makedirs(MODEL_DIR, exist_ok=True)
    torch.manual_seed(16)
    vit = randomise(TinyViT(), 16)
    export(vit, os.path.join(MODEL_DIR, "vit_tiny_op17.onnx"), 17)
    export(vit, os.path.join(MODEL_DIR, "vit_tiny_op13.onnx"), 13)
    torch.manual_seed(17)
    export(randomise(TinyShuffleNet(), 17), os.path.join(MODEL_DIR, "shufflenet_tiny.onnx"), 13)
    torch.manual_seed(18)
    export(randomise(LeNetPReLU(), 18), os.path.join(MODEL_DIR, "lenet_prelu_op9.onnx"), 9)
    zoo_like_resnet(os.path.join(MODEL_DIR, "zoo_like_resnet.onnx"))
    seg = train_seg(SegResize(), 19)
    export(seg, os.path.join(MODEL_DIR, "seg_resize_op13.onnx"), 13)
    export(seg, os.path.join(MODEL_DIR, "seg_resize_op10.onnx"), 10)
    export(seg, os.path.join(MODEL_DIR, "seg_resize_op9.onnx"), 9)
    seg.sizes = True
    export(seg, os.path.join(MODEL_DIR, "seg_resize_op11.onnx"), 11)


if __name__ == "__main__":
    main()
