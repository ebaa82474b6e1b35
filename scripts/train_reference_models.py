#!/usr/bin/python3
"""Train haq's Fashion-MNIST reference models and export them to ONNX.

Run with Debian's interpreter (python3-torch, python3-onnx, numpy):

    /usr/bin/python3 scripts/train_reference_models.py --out models/

Models (all: input "input" N x 1 x 28 x 28 float32 = uint8 pixels / 255, no mean/std
normalisation; output "logits" N x 10, no softmax; dynamic batch axis):

  fmnist-mlp        Flatten -> Gemm 784x256 -> ReLU -> Gemm 256x128 -> ReLU -> Gemm 128x10
  fmnist-mobilenet  MobileNetV1-style: 3x3 stem conv, 6 depthwise-separable blocks, GAP, Linear
  fmnist-resnet     ResNet with basic blocks (Add skips, 1x1 projection shortcuts), GAP, Linear

The corpus (`--models corpus`, written to models/corpus/ unless --out is given): small
models whose exports exercise the ops of common architectures, each checked by ctest
against ONNX Runtime in fp32 and for its W8A8 accuracy (tests/unit/engine/test_corpus.cpp):

  fmnist-mobilenetv2   inverted residuals (1x1 expand, 3x3 depthwise, linear 1x1 projection,
                       Add skips), ReLU6 = Clip(0, 6)
  fmnist-mobilenetv3   HardSwish and ReLU, squeeze-excitation (GAP, 1x1, ReLU, 1x1,
                       HardSigmoid, Mul), opset 14
  fmnist-efficientnet  MBConv with SiLU (Sigmoid + Mul) and squeeze-excitation
  fmnist-inception     Inception blocks: 1x1, 1x1-3x3, 1x1-3x3-3x3 and pool-1x1 branches
                       joined by Concat
  fmnist-bn18          pre-activation ResNet at opset 18 whose BatchNormalization nodes
                       follow the input, an Add or a Concat, so no importer can fold them
  fmnist-shufflenetv2  ShuffleNetV2 units: torch.chunk (Slice with Shape-derived ends) and a
                       channel shuffle (Reshape, 5-D Transpose, Reshape)
  fmnist-lenet-prelu   LeNet-5 with Tanh and PReLU, opset 9
  fmnist-vit           small ViT (7x7 patch-embedding Conv, 2 pre-LN encoder blocks, 4 heads,
                       erf GELU MLP, mean pooling) at opset 17 (LayerNormalization op)
  fmnist-vit-op13      the same trained ViT exported at opset 13 (LayerNorm written out)

--reuse-trained exports the weights a previous run kept in the temporary folder instead of
training again (e.g. after changing only the export or its checks).

BatchNormalization nodes are kept in the exported graph (haq's importer folds them):
the model is put in eval mode and exported with TrainingMode.PRESERVE, which skips
torch's eval-mode Conv+BN fusion pass while still emitting inference-mode BN.

After export, each ONNX file is checked with onnx.checker and run through a small numpy
reference evaluator (onnxruntime is not available for Debian's python); its logits are
compared with PyTorch's on a test batch. A JSON next to each model records the PyTorch
fp32 test top-1 on the full 10k test split, the training settings and the logits for
the first few test images (so C++ tests can check their own inference against them).
"""

import argparse
import gzip
import json
import math
import os
import sys
import tempfile
import time
import warnings

# On a machine shared with other jobs, OpenMP threads that spin at barriers waste their
# time slices; sleeping waiters keep 2-thread training efficient. Must precede torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnx.numpy_helper  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
SEED = 20261122
NUM_REF_LOGITS = 8  # test images whose logits go into the JSON sidecar


# ----------------------------------------------------------------------------- data


def read_idx(path):
    """Parse a gzipped IDX file (big-endian header, uint8 payload) into a numpy array."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        raise ValueError(f"{path}: payload size {len(raw) - offset} != {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_split(prefix):
    images = read_idx(os.path.join(DATA_DIR, f"{prefix}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{prefix}-labels-idx1-ubyte.gz"))
    # The input convention of every model: float32 pixels / 255, shape N x 1 x 28 x 28.
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


def augment(x, gen):
    """Random crop with 2-pixel zero padding plus random horizontal flip, per sample."""
    n, _, h, w = x.shape
    pad = 2
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen)
    rows = (torch.arange(h).view(1, h, 1) + dy.view(n, 1, 1)).expand(n, h, w)
    flip = torch.rand(n, generator=gen) < 0.5
    # For flipped samples the column read for output column j is dx + (w - 1 - j).
    cols = torch.where(
        flip.view(n, 1, 1),
        (w - 1 - torch.arange(w)).view(1, 1, w) + dx.view(n, 1, 1),
        (torch.arange(w)).view(1, 1, w) + dx.view(n, 1, 1),
    ).expand(n, h, w)
    batch = torch.arange(n).view(n, 1, 1).expand(n, h, w)
    return padded[batch, 0, rows, cols].unsqueeze(1).contiguous()


# ----------------------------------------------------------------------------- models


def conv_bn_relu(cin, cout, k, stride, groups=1):
    return [
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


class MobileNetFM(nn.Module):
    """MobileNetV1-style: stem + depthwise-separable (dw 3x3 + pw 1x1) blocks."""

    # (in, out, stride of the depthwise conv); spatial 28 -> 14 -> 7
    BLOCKS = [(32, 64, 2), (64, 96, 1), (96, 128, 2), (128, 128, 1), (128, 128, 1), (128, 128, 1)]

    def __init__(self):
        super().__init__()
        layers = conv_bn_relu(1, 32, 3, 1)
        for cin, cout, stride in self.BLOCKS:
            layers += conv_bn_relu(cin, cin, 3, stride, groups=cin)
            layers += conv_bn_relu(cin, cout, 1, 1)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.BLOCKS[-1][1], 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        skip = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + skip)


class ResNetFM(nn.Module):
    """CIFAR-style ResNet: stem, 3 stages x 2 basic blocks, GAP, Linear."""

    STAGES = [(16, 1), (32, 2), (64, 2)]  # (width, stride of first block); 28 -> 14 -> 7
    STEM = 16

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn_relu(1, self.STEM, 3, 1))
        blocks = []
        cin = self.STEM
        for width, stride in self.STAGES:
            blocks.append(BasicBlock(cin, width, stride))
            blocks.append(BasicBlock(width, width, 1))
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


class MlpFM(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 256)
        self.fc2 = nn.Linear(256, 128)
        self.fc3 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


# ----------------------------------------------------------------------------- corpus models


def conv_bn_act(cin, cout, k, stride, act, groups=1):
    """Conv (no bias) + BN + the activation module `act` (a class), or none if act is None."""
    layers = [nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return layers


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand + ReLU6, 3x3 depthwise + ReLU6, linear 1x1 projection."""

    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = conv_bn_act(cin, hidden, 1, 1, nn.ReLU6) if expand != 1 else []
        layers += conv_bn_act(hidden, hidden, 3, stride, nn.ReLU6, groups=hidden)
        layers += conv_bn_act(hidden, cout, 1, 1, None)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV2FM(nn.Module):
    """MobileNetV2-style: stem, inverted residual blocks, 1x1 head conv, GAP, Linear."""

    # (expansion, out channels, stride); spatial 28 -> 14 (stem) -> 7
    BLOCKS = [(1, 16, 1), (4, 24, 2), (4, 24, 1), (4, 40, 1), (4, 40, 1)]
    STEM, HEAD = 16, 128

    def __init__(self):
        super().__init__()
        layers = conv_bn_act(1, self.STEM, 3, 2, nn.ReLU6)
        cin = self.STEM
        for expand, cout, stride in self.BLOCKS:
            layers.append(InvertedResidual(cin, cout, stride, expand))
            cin = cout
        layers += conv_bn_act(cin, self.HEAD, 1, 1, nn.ReLU6)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.HEAD, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class SqueezeExcite(nn.Module):
    """Channel gate: GAP, 1x1 conv, `act`, 1x1 conv, `gate`, times the input."""

    def __init__(self, channels, squeezed, act, gate):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = act()
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = gate()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MobileNetV3Block(nn.Module):
    """1x1 expand, kxk depthwise, optional SE (ReLU, HardSigmoid), linear 1x1 projection."""

    def __init__(self, cin, hidden, cout, k, stride, se, act):
        super().__init__()
        layers = conv_bn_act(cin, hidden, 1, 1, act) if hidden != cin else []
        layers += conv_bn_act(hidden, hidden, k, stride, act, groups=hidden)
        if se:
            layers.append(SqueezeExcite(hidden, max(8, hidden // 4), nn.ReLU, nn.Hardsigmoid))
        layers += conv_bn_act(hidden, cout, 1, 1, None)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class MobileNetV3FM(nn.Module):
    """MobileNetV3-style: HardSwish stem, V3 blocks (ReLU or HardSwish, some with SE),
    1x1 head conv + HardSwish, GAP, Linear + HardSwish, Linear."""

    # (kernel, expanded channels, out channels, SE, activation, stride); 28 -> 14 (stem) -> 7
    BLOCKS = [(3, 16, 16, True, nn.ReLU, 1), (3, 64, 24, False, nn.ReLU, 2),
              (3, 72, 24, False, nn.ReLU, 1), (5, 96, 40, True, nn.Hardswish, 1),
              (5, 120, 40, True, nn.Hardswish, 1)]
    STEM, HEAD, HIDDEN = 16, 160, 128

    def __init__(self):
        super().__init__()
        layers = conv_bn_act(1, self.STEM, 3, 2, nn.Hardswish)
        cin = self.STEM
        for k, hidden, cout, se, act, stride in self.BLOCKS:
            layers.append(MobileNetV3Block(cin, hidden, cout, k, stride, se, act))
            cin = cout
        layers += conv_bn_act(cin, self.HEAD, 1, 1, nn.Hardswish)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(self.HEAD, self.HIDDEN), nn.Hardswish(),
                                        nn.Linear(self.HIDDEN, 10))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class MBConv(nn.Module):
    """EfficientNet block: 1x1 expand + SiLU, kxk depthwise + SiLU, SE (SiLU, Sigmoid),
    linear 1x1 projection, Add skip where the shapes match."""

    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        hidden = cin * expand
        layers = conv_bn_act(cin, hidden, 1, 1, nn.SiLU) if expand != 1 else []
        layers += conv_bn_act(hidden, hidden, k, stride, nn.SiLU, groups=hidden)
        layers.append(SqueezeExcite(hidden, max(4, cin // 4), nn.SiLU, nn.Sigmoid))
        layers += conv_bn_act(hidden, cout, 1, 1, None)
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return x + y if self.residual else y


class EfficientNetFM(nn.Module):
    """EfficientNet-style: SiLU stem, MBConv blocks, 1x1 head conv + SiLU, GAP, Linear."""

    # (expansion, kernel, out channels, stride); 28 -> 14 (stem) -> 7
    BLOCKS = [(1, 3, 16, 1), (4, 3, 24, 2), (4, 3, 24, 1), (4, 5, 32, 1)]
    STEM, HEAD = 16, 128

    def __init__(self):
        super().__init__()
        layers = conv_bn_act(1, self.STEM, 3, 2, nn.SiLU)
        cin = self.STEM
        for expand, k, cout, stride in self.BLOCKS:
            layers.append(MBConv(cin, cout, k, stride, expand))
            cin = cout
        layers += conv_bn_act(cin, self.HEAD, 1, 1, nn.SiLU)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.HEAD, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class InceptionBlock(nn.Module):
    """Four parallel branches joined by Concat: 1x1; 1x1-3x3; 1x1-3x3-3x3 (the factorised
    5x5); 3x3 pool (max or average, stride 1) then 1x1."""

    def __init__(self, cin, b1, b3red, b3, b5red, b5, pool_proj, pool):
        super().__init__()
        self.b1 = nn.Sequential(*conv_bn_relu(cin, b1, 1, 1))
        self.b3 = nn.Sequential(*conv_bn_relu(cin, b3red, 1, 1), *conv_bn_relu(b3red, b3, 3, 1))
        self.b5 = nn.Sequential(*conv_bn_relu(cin, b5red, 1, 1), *conv_bn_relu(b5red, b5, 3, 1),
                                *conv_bn_relu(b5, b5, 3, 1))
        self.pool = pool
        self.bp = nn.Sequential(*conv_bn_relu(cin, pool_proj, 1, 1))
        self.out_channels = b1 + b3 + b5 + pool_proj

    def forward(self, x):
        return torch.cat([self.b1(x), self.b3(x), self.b5(x), self.bp(self.pool(x))], 1)


class InceptionFM(nn.Module):
    """Inception-style: stride-2 stem, an Inception block (max-pool branch) at 14x14,
    MaxPool, two Inception blocks (max-pool, then average-pool branch) at 7x7, GAP, Linear."""

    STEM = 24

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(*conv_bn_relu(1, self.STEM, 3, 2))  # 28 -> 14
        self.a = InceptionBlock(self.STEM, 16, 16, 24, 8, 12, 12, nn.MaxPool2d(3, stride=1, padding=1))
        self.b = InceptionBlock(self.a.out_channels, 24, 24, 32, 8, 16, 16,
                                nn.MaxPool2d(3, stride=1, padding=1))
        self.pool2 = nn.MaxPool2d(3, stride=2, padding=1)  # 14 -> 7
        self.c = InceptionBlock(self.b.out_channels, 32, 32, 48, 12, 24, 24,
                                # count_include_pad=False exports one AveragePool; the default
                                # exports a Pad before it.
                                nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.c.out_channels, 10)

    def forward(self, x):
        x = self.a(self.stem(x))
        x = self.c(self.b(self.pool2(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, Add with the input (or a
    1x1 projection of the first BN-ReLU's output). Its first BN reads the block input,
    which is an Add (or the stem conv feeding the skip as well): nothing to fold it into."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or cin != cout:
            self.shortcut = nn.Conv2d(cin, cout, 1, stride=stride, bias=False)

    def forward(self, x):
        pre = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + (x if self.shortcut is None else self.shortcut(pre))


class PreActBN18FM(nn.Module):
    """Pre-activation ResNet exported at opset 18: BN on the input image, stem conv, three
    pre-activation blocks, a dense layer (Concat of the features and a 3x3 conv of them),
    BN + ReLU on the Concat, GAP, Linear."""

    STAGES = [(16, 1), (32, 2), (48, 2)]  # (width, stride); 28 -> 14 (stem) -> 7 -> 4
    STEM, GROWTH = 16, 16

    def __init__(self):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(1)
        self.stem = nn.Conv2d(1, self.STEM, 3, stride=2, padding=1, bias=False)
        blocks = []
        cin = self.STEM
        for width, stride in self.STAGES:
            blocks.append(PreActBlock(cin, width, stride))
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.bn_dense = nn.BatchNorm2d(cin)
        self.dense = nn.Conv2d(cin, self.GROWTH, 3, padding=1, bias=False)
        self.bn_out = nn.BatchNorm2d(cin + self.GROWTH)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin + self.GROWTH, 10)

    def forward(self, x):
        x = self.blocks(self.stem(self.bn_in(x)))
        x = torch.cat([x, self.dense(F.relu(self.bn_dense(x)))], 1)
        return self.fc(torch.flatten(self.pool(F.relu(self.bn_out(x))), 1))


class ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit. Stride 1: torch.chunk splits the channels in two halves, the
    second goes through 1x1-BN-ReLU, 3x3 depthwise-BN, 1x1-BN-ReLU, Concat with the first.
    Stride 2: both branches see the input (left: 3x3 depthwise s2-BN, 1x1-BN-ReLU).
    Then a channel shuffle of two groups (reshape, transpose, reshape)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.stride = stride
        half = cout // 2
        bin_ = cin if stride == 2 else cin // 2
        if stride == 2:
            self.left = nn.Sequential(*conv_bn_act(cin, cin, 3, 2, None, groups=cin),
                                      *conv_bn_act(cin, half, 1, 1, nn.ReLU))
        self.right = nn.Sequential(*conv_bn_act(bin_, half, 1, 1, nn.ReLU),
                                   *conv_bn_act(half, half, 3, stride, None, groups=half),
                                   *conv_bn_act(half, half, 1, 1, nn.ReLU))

    def forward(self, x):
        if self.stride == 1:
            a, b = torch.chunk(x, 2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        n, c, h, w = out.shape
        return out.reshape(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)


class ShuffleNetV2FM(nn.Module):
    """ShuffleNetV2-style: stride-2 stem (28 -> 14), a stride-2 unit (14 -> 7) then three
    stride-1 units, 1x1 head conv, GAP, Linear."""

    STEM, WIDTH, HEAD = 24, 64, 128

    def __init__(self):
        super().__init__()
        layers = conv_bn_act(1, self.STEM, 3, 2, nn.ReLU)
        layers.append(ShuffleUnit(self.STEM, self.WIDTH, 2))
        layers += [ShuffleUnit(self.WIDTH, self.WIDTH, 1) for _ in range(3)]
        layers += conv_bn_act(self.WIDTH, self.HEAD, 1, 1, nn.ReLU)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.HEAD, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class LeNetPReLUFM(nn.Module):
    """LeNet-5: conv 5x5 (pad 2) 1->6, Tanh, AvgPool 2; conv 5x5 6->16, PReLU (per channel),
    AvgPool 2; Flatten; Linear 400->120, Tanh; Linear 120->84, PReLU (per feature);
    Linear 84->10. Exported at opset 9."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.act2 = nn.PReLU(16)
        self.pool2 = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.act4 = nn.PReLU(84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = self.pool1(torch.tanh(self.conv1(x)))
        x = self.pool2(self.act2(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(self.act4(self.fc2(torch.tanh(self.fc1(x)))))


class EncoderBlock(nn.Module):
    """Pre-LN transformer encoder block: x + MHSA(LN(x)), then x + MLP(LN(x)) with GELU (erf).
    The attention is written out (Linear qkv, reshape to heads, Q.K^T / sqrt(d), Softmax,
    .V, merge heads, Linear), as most hand-written ViTs do."""

    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, n, c = x.shape
        h = self.heads
        qkv = self.qkv(self.ln1(x)).reshape(b, n, 3, h, c // h).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-2, -1) * (1.0 / math.sqrt(c // h)), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, c))
        return x + self.fc2(self.act(self.fc1(self.ln2(x))))


class ViTFM(nn.Module):
    """Small ViT: 7x7 patch-embedding Conv (1 -> 64, stride 7: 4 x 4 = 16 tokens), learned
    position embedding, 2 pre-LN encoder blocks (4 heads, MLP 128 with GELU), final
    LayerNorm, mean over the tokens, Linear."""

    PATCH, DIM, HEADS, MLP, DEPTH = 7, 64, 4, 128, 2

    def __init__(self):
        super().__init__()
        tokens = (28 // self.PATCH) ** 2
        self.embed = nn.Conv2d(1, self.DIM, self.PATCH, stride=self.PATCH)
        self.pos = nn.Parameter(torch.zeros(1, tokens, self.DIM))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*[EncoderBlock(self.DIM, self.HEADS, self.MLP) for _ in range(self.DEPTH)])
        self.ln = nn.LayerNorm(self.DIM)
        self.head = nn.Linear(self.DIM, 10)

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        x = self.ln(self.blocks(x))
        return self.head(x.mean(dim=1))


# name -> (constructor, default epochs, optimiser settings, augment?)
MODELS = {
    "mlp": dict(make=MlpFM, epochs=10, opt="adam", lr=1e-3, wd=0.0, augment=False, batch=128),
    "mobilenet": dict(make=MobileNetFM, epochs=8, opt="sgd", lr=0.1, wd=4e-5, augment=False, batch=128),
    "resnet": dict(make=ResNetFM, epochs=6, opt="sgd", lr=0.1, wd=5e-4, augment=True, batch=128),
}
ORDER = ["mlp", "mobilenet", "resnet"]

# The corpus. `opset`: the export's opset (the reference models use 13); 18 is newer than
# this torch can export, see export_and_check.
CORPUS = {
    "mobilenetv2": dict(make=MobileNetV2FM, epochs=2, opt="sgd", lr=0.1, wd=4e-5, augment=False, batch=128,
                        opset=13),
    "mobilenetv3": dict(make=MobileNetV3FM, epochs=2, opt="sgd", lr=0.1, wd=4e-5, augment=False, batch=128,
                        opset=14),
    "efficientnet": dict(make=EfficientNetFM, epochs=2, opt="sgd", lr=0.1, wd=4e-5, augment=False, batch=128,
                         opset=13),
    "inception": dict(make=InceptionFM, epochs=2, opt="sgd", lr=0.1, wd=5e-4, augment=False, batch=128,
                      opset=13),
    "bn18": dict(make=PreActBN18FM, epochs=3, opt="sgd", lr=0.1, wd=5e-4, augment=False, batch=128,
                 opset=18),
    "shufflenetv2": dict(make=ShuffleNetV2FM, epochs=2, opt="sgd", lr=0.1, wd=4e-5, augment=False, batch=128,
                         opset=13),
    "lenet-prelu": dict(make=LeNetPReLUFM, epochs=6, opt="adamw", lr=2e-3, wd=1e-4, augment=False, batch=128,
                        opset=9),
    "vit": dict(make=ViTFM, epochs=3, opt="adamw", lr=2e-3, wd=0.05, augment=False, batch=128, opset=17),
    # The same trained ViT exported at opset 13: no LayerNormalization op before opset 17, so
    # torch writes LayerNorm out (ReduceMean, Sub, Pow, Sqrt, Div, Mul, Add).
    "vit-op13": dict(make=ViTFM, weights_of="vit", epochs=3, opt="adamw", lr=2e-3, wd=0.05, augment=False,
                     batch=128, opset=13),
}
CORPUS_ORDER = ["mobilenetv2", "mobilenetv3", "efficientnet", "inception", "bn18", "shufflenetv2", "lenet-prelu",
                "vit", "vit-op13"]


def _clips_are_relu6(proto):
    """True if every Clip has the constant bounds 0 and 6 (ReLU6, as torchvision exports)."""
    consts = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer}
    for n in proto.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = onnx.numpy_helper.to_array(n.attribute[0].t)
    for n in proto.graph.node:
        if n.op_type != "Clip":
            continue
        bounds = [float(consts[i]) if i in consts else None for i in list(n.input[1:3])]
        if bounds != [0.0, 6.0]:
            return f"{n.name} has bounds {bounds}, not [0, 6]"
    return True


def _unfoldable_batchnorms(proto):
    """True if some BatchNormalization reads no Conv/Gemm output, or one that other nodes
    read too: an importer must then run it as a node rather than fold it."""
    producer = {o: n for n in proto.graph.node for o in n.output}
    readers = {}
    for n in proto.graph.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    kept = [n.name for n in proto.graph.node if n.op_type == "BatchNormalization" and (
        n.input[0] not in producer or producer[n.input[0]].op_type not in ("Conv", "Gemm")
        or readers[n.input[0]] > 1)]
    return True if len(kept) >= 3 else f"only {kept} cannot be folded"


def _channel_shuffles(proto):
    """True if the graph has the channel shuffle of each ShuffleNet unit: a 5-D Transpose
    swapping the group and channel axes, between two Reshapes."""
    shuffles = [n for n in proto.graph.node if n.op_type == "Transpose"
                and list(onnx.helper.get_attribute_value(n.attribute[0])) == [0, 2, 1, 3, 4]]
    return True if len(shuffles) == 4 else f"{len(shuffles)} channel shuffles, not 4"


def _matmuls_of_two_activations(proto):
    """True if the 4 attention MatMuls (Q.K^T and A.V of 2 blocks) read no initializer."""
    inits = {t.name for t in proto.graph.initializer}
    act = [n for n in proto.graph.node if n.op_type == "MatMul" and not (set(n.input) & inits)]
    return True if len(act) == 4 else f"{len(act)} MatMuls of two activations, not 4"


# Per corpus model, the ops its export must contain (and a check of them, or None).
CORPUS_OPS = {
    "mobilenetv2": {"Clip": _clips_are_relu6, "Add": None},
    "mobilenetv3": {"HardSwish": None, "HardSigmoid": None, "Mul": None, "GlobalAveragePool": None},
    "efficientnet": {"Sigmoid": None, "Mul": None},
    "inception": {"Concat": None, "MaxPool": None, "AveragePool": None},
    "bn18": {"BatchNormalization": _unfoldable_batchnorms, "Concat": None, "Add": None},
    # torch.chunk exports as Slice nodes whose ends come from Shape (Shape, Gather, Div, ...).
    "shufflenetv2": {"Slice": None, "Shape": None, "Transpose": _channel_shuffles, "Reshape": None,
                     "Concat": None},
    "lenet-prelu": {"PRelu": None, "Tanh": None, "AveragePool": None},
    "vit": {"LayerNormalization": None, "Erf": None, "Softmax": None, "MatMul": _matmuls_of_two_activations,
            "Transpose": None, "Reshape": None},
    "vit-op13": {"ReduceMean": None, "Pow": None, "Sqrt": None, "Erf": None, "Softmax": None,
                 "MatMul": _matmuls_of_two_activations},
}
MODELS.update(CORPUS)
# Ops whose schema opset 18 changed (Reduce*, Split, Pad, Resize, ...): an opset-17 graph
# without them means the same at opset 18.
CHANGED_IN_OPSET_18 = {"ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax", "ReduceMean",
                       "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare", "Split", "Pad", "Resize",
                       "ScatterElements", "ScatterND", "LpPool", "Col2Im", "CenterCropPad", "BitwiseAnd",
                       "BitwiseOr", "BitwiseXor", "BitwiseNot", "GroupNormalization", "Mish",
                       "OptionalHasElement", "OptionalGetElement"}


def count_quantizable(model):
    return sum(1 for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))


def count_params(model):
    return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------- training


@torch.no_grad()
def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch):
        correct += (model(x[i : i + batch]).argmax(1) == y[i : i + batch]).sum().item()
    return correct / x.shape[0]


def train(name, cfg, epochs, data, log):
    xtr, ytr, xte, yte = data
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED + 1)  # shuffles and augmentation
    model = cfg["make"]()
    batch = cfg["batch"]
    steps_per_epoch = math.ceil(xtr.shape[0] / batch)
    total_steps = epochs * steps_per_epoch
    if cfg["opt"] == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["wd"])
        warmup = 0
    elif cfg["opt"] == "adamw":
        # Decoupled weight decay on the weight matrices and kernels only (not on LayerNorm,
        # biases, PReLU slopes or the position embedding); half-epoch warmup, cosine decay.
        decay = [p for n, p in model.named_parameters() if p.dim() > 1 and n != "pos"]
        no_decay = [p for n, p in model.named_parameters() if p.dim() <= 1 or n == "pos"]
        opt = torch.optim.AdamW(
            [dict(params=decay, weight_decay=cfg["wd"]), dict(params=no_decay, weight_decay=0.0)],
            lr=cfg["lr"])
        warmup = steps_per_epoch // 2
    else:
        # No weight decay on BN parameters and biases.
        decay = [p for p in model.parameters() if p.dim() > 1]
        no_decay = [p for p in model.parameters() if p.dim() <= 1]
        opt = torch.optim.SGD(
            [dict(params=decay, weight_decay=cfg["wd"]), dict(params=no_decay, weight_decay=0.0)],
            lr=cfg["lr"], momentum=0.9, nesterov=True,
        )
        warmup = steps_per_epoch // 2

    def lr_at(step):
        # Linear warmup, then cosine decay to zero over the remaining steps.
        if step < warmup:
            return cfg["lr"] * (step + 1) / warmup
        t = (step - warmup) / max(1, total_steps - warmup)
        return cfg["lr"] * 0.5 * (1.0 + math.cos(math.pi * t))

    log(f"[{name}] {count_quantizable(model)} quantizable layers, {count_params(model)} params, "
        f"{epochs} epochs, batch {batch}, {cfg['opt']} lr {cfg['lr']}, augment {cfg['augment']}")
    t0 = time.time()
    step = 0
    history = []
    for epoch in range(epochs):
        model.train()
        te = time.time()
        perm = torch.randperm(xtr.shape[0], generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for i in range(0, xtr.shape[0], batch):
            idx = perm[i : i + batch]
            xb, yb = xtr[idx], ytr[idx]
            if cfg["augment"]:
                xb = augment(xb, gen)
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            loss_sum += loss.item() * yb.shape[0]
            correct += (out.argmax(1) == yb).sum().item()
            seen += yb.shape[0]
        test_acc = evaluate(model, xte, yte)
        history.append(dict(epoch=epoch + 1, train_loss=loss_sum / seen, train_acc=correct / seen,
                            test_acc=test_acc))
        log(f"[{name}] epoch {epoch + 1}/{epochs}  loss {loss_sum / seen:.4f}  "
            f"train acc {correct / seen:.4f}  test acc {test_acc:.4f}  "
            f"({time.time() - te:.1f} s, total {time.time() - t0:.1f} s)")
    train_s = time.time() - t0
    model.eval()
    return model, train_s, history


# ----------------------------------------------------------------------------- ONNX check


def _conv_nchw(x, w, b, strides, pads, group, dilations):
    n, c, h, wd = x.shape
    m, cpg, kh, kw = w.shape
    if any(d != 1 for d in dilations):
        raise NotImplementedError("dilated conv")
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    out = np.zeros((n, m, oh, ow), dtype=np.float64)
    mpg = m // group
    for g in range(group):
        xs = xp[:, g * cpg : (g + 1) * cpg]
        ws = w[g * mpg : (g + 1) * mpg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i : i + strides[0] * oh : strides[0], j : j + strides[1] * ow : strides[1]]
                out[:, g * mpg : (g + 1) * mpg] += np.einsum("nchw,mc->nmhw", patch, ws[:, :, i, j])
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def _pool_nchw(x, op, a):
    """MaxPool / AveragePool (2-D, no dilation, floor mode) of the corpus models."""
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pads = a.get("pads", [0, 0, 0, 0])
    if a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1, 1])):
        raise NotImplementedError("ceil_mode or dilated pooling")
    fill = -np.inf if op == "MaxPool" else 0.0
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])), constant_values=fill)
    ones = np.pad(np.ones(x.shape[2:]), ((pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - kh) // sh + 1
    ow = (xp.shape[3] - kw) // sw + 1
    windows = [xp[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] for i in range(kh) for j in range(kw)]
    if op == "MaxPool":
        return np.max(windows, axis=0)
    if a.get("count_include_pad", 0):
        return np.sum(windows, axis=0) / (kh * kw)
    counts = sum(ones[i : i + sh * oh : sh, j : j + sw * ow : sw] for i in range(kh) for j in range(kw))
    return np.sum(windows, axis=0) / counts


def _as_numpy(tensor):
    """An ONNX tensor as float64 (float types) or int64 (integer types: shape arithmetic)."""
    a = onnx.numpy_helper.to_array(tensor)
    return a.astype(np.float64) if a.dtype.kind == "f" else a.astype(np.int64)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _opset_of(model_proto):
    return next(i.version for i in model_proto.opset_import if i.domain in ("", "ai.onnx"))


def _shape_op(op, ins, a, opset):
    """The data-movement and shape-arithmetic ops of the corpus exports (Shape -> Gather ->
    Unsqueeze -> Concat -> Reshape, Slice, Split, Transpose, ...); None if `op` is not one."""
    if op == "Shape":
        return np.array(ins[0].shape, dtype=np.int64)
    if op == "Gather":
        return np.take(ins[0], ins[1], axis=a.get("axis", 0))
    if op == "Unsqueeze":
        axes = a["axes"] if opset < 13 else list(ins[1])
        y = ins[0]
        for ax in sorted(ax % (y.ndim + len(axes)) for ax in axes):
            y = np.expand_dims(y, ax)
        return y
    if op == "Squeeze":
        axes = a.get("axes") if opset < 13 else (list(ins[1]) if len(ins) > 1 else None)
        return np.squeeze(ins[0], axis=None if axes is None else tuple(axes))
    if op == "Reshape":
        shape = [ins[0].shape[i] if d == 0 else d for i, d in enumerate(ins[1])]
        return ins[0].reshape(shape)
    if op == "Transpose":
        return np.transpose(ins[0], a.get("perm"))
    if op == "Slice":
        if opset < 10:
            starts, ends, axes, steps = a["starts"], a["ends"], a.get("axes"), None
        else:
            starts, ends = ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else None
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else None
        axes = list(range(len(starts))) if axes is None else list(axes)
        steps = [1] * len(starts) if steps is None else list(steps)
        index = [slice(None)] * ins[0].ndim
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            index[ax] = slice(int(st), int(en), int(sp))
        return ins[0][tuple(index)]
    if op == "Cast":
        kind = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]].kind
        return ins[0].astype(np.float64 if kind == "f" else np.int64)
    if op == "Concat":
        return np.concatenate(ins, axis=a["axis"])
    if op == "Identity":
        return ins[0]
    if op == "Flatten":
        axis = a.get("axis", 1)
        return ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
    if op == "Constant":
        return _as_numpy(a["value"])
    return None


def _binary(op, x, y):
    if op == "Add":
        return x + y
    if op == "Sub":
        return x - y
    if op == "Mul":
        return x * y
    if op == "Div":
        # Integer Div (shape arithmetic) truncates.
        return np.trunc(x / y).astype(np.int64) if x.dtype.kind == "i" and y.dtype.kind == "i" else x / y
    if op == "Pow":
        return np.power(x, y)
    return None


def run_onnx_numpy(model_proto, x):
    """Evaluate the exported graph in float64 numpy; supports only the ops we emit."""
    opset = _opset_of(model_proto)
    env = {t.name: _as_numpy(t) for t in model_proto.graph.initializer}
    env[model_proto.graph.input[0].name] = x.astype(np.float64)
    for node in model_proto.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Conv":
            y = _conv_nchw(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a.get("strides", [1, 1]),
                           a.get("pads", [0, 0, 0, 0]), a.get("group", 1), a.get("dilations", [1, 1]))
        elif op == "BatchNormalization":
            xin, scale, bias, mean, var = ins
            eps = a.get("epsilon", 1e-5)
            s = (scale / np.sqrt(var + eps)).reshape(1, -1, 1, 1)
            y = (xin - mean.reshape(1, -1, 1, 1)) * s + bias.reshape(1, -1, 1, 1)
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op in ("Add", "Sub", "Mul", "Div", "Pow"):
            y = _binary(op, ins[0], ins[1])
        elif _shape_op(op, ins, a, opset) is not None:
            y = _shape_op(op, ins, a, opset)
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = a.get("alpha", 1.0) * A @ B
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "Clip":
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            y = np.minimum(np.maximum(ins[0], lo), hi)
        elif op == "Sigmoid":
            y = 1.0 / (1.0 + np.exp(-ins[0]))
        elif op == "HardSigmoid":
            y = np.clip(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5), 0.0, 1.0)
        elif op == "HardSwish":
            y = ins[0] * np.clip(ins[0] / 6.0 + 0.5, 0.0, 1.0)
        elif op in ("MaxPool", "AveragePool"):
            y = _pool_nchw(ins[0], op, a)
        elif op == "Tanh":
            y = np.tanh(ins[0])
        elif op == "PRelu":
            y = np.where(ins[0] >= 0, ins[0], ins[0] * ins[1])
        elif op == "Pad":
            # Opset 9 (pads attribute) or 11+ (pads input), constant mode with zero fill only.
            pads = a["pads"] if opset < 11 else list(ins[1])
            value = a.get("value", 0.0) if opset < 11 else (float(ins[2]) if len(ins) > 2 and ins[2] is not None
                                                            else 0.0)
            if a.get("mode", b"constant") not in (b"constant", "constant") or value != 0.0:
                raise NotImplementedError("Pad other than constant zero")
            r = ins[0].ndim
            y = np.pad(ins[0], [(pads[i], pads[i + r]) for i in range(r)])
        elif op == "MatMul":
            y = np.matmul(ins[0], ins[1])
        elif op == "Softmax":
            axis = a.get("axis", -1 if opset >= 13 else 1)
            if opset < 13 and axis != ins[0].ndim - 1:
                raise NotImplementedError("Softmax before opset 13 on a non-last axis")
            e = np.exp(ins[0] - ins[0].max(axis=axis, keepdims=True))
            y = e / e.sum(axis=axis, keepdims=True)
        elif op == "ReduceMean":
            axes = a.get("axes") if opset < 18 else (list(ins[1]) if len(ins) > 1 else None)
            y = ins[0].mean(axis=None if axes is None else tuple(axes), keepdims=bool(a.get("keepdims", 1)))
        elif op == "Sqrt":
            y = np.sqrt(ins[0])
        elif op == "Erf":
            y = _erf(ins[0])
        elif op == "LayerNormalization":
            axis = a.get("axis", -1) % ins[0].ndim
            axes = tuple(range(axis, ins[0].ndim))
            mean = ins[0].mean(axis=axes, keepdims=True)
            var = ((ins[0] - mean) ** 2).mean(axis=axes, keepdims=True)
            y = (ins[0] - mean) / np.sqrt(var + a.get("epsilon", 1e-5)) * ins[1]
            if len(ins) > 2 and ins[2] is not None:
                y = y + ins[2]
        else:
            raise NotImplementedError(f"op {op} in numpy checker")
        env[node.output[0]] = y
    return env[model_proto.graph.output[0].name]


def export_and_check(name, model, xte, path, log, opset=13):
    model.eval()
    dummy = xte[:2].clone()
    # torch warns about constant folding with PRESERVE, which only matters for a model in
    # training mode; ours is in eval mode and the numpy check below verifies the result.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
    torch.onnx.export(
        model, dummy, path, export_params=True, opset_version=min(opset, 17), do_constant_folding=True,
        training=torch.onnx.TrainingMode.PRESERVE,  # keep BN nodes; model is in eval mode
        input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
    )
    proto = onnx.load(path)
    # torch merges equal initializers and re-creates the duplicates with Identity nodes. In
    # the ResNet, the BN biases of a block's last conv and of its projection shortcut get
    # identical gradients (they meet in the Add) and start equal, so they stay equal. Give
    # each consumer its own initializer again so the graph has only compute ops.
    inits = {t.name: t for t in proto.graph.initializer}
    kept = []
    for node in proto.graph.node:
        if node.op_type == "Identity" and node.input[0] in inits:
            copy = onnx.TensorProto()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
            proto.graph.initializer.append(copy)
        else:
            kept.append(node)
    if len(kept) != len(proto.graph.node):
        del proto.graph.node[:]
        proto.graph.node.extend(kept)
        onnx.save(proto, path)
    onnx.checker.check_model(proto, full_check=True)
    if opset > 17:
        # torch 1.13 and onnx 1.12 stop at opset 17. None of our ops changed in opset 18
        # (checked here), so the opset-17 graph is the opset-18 graph: only the opset
        # import changes; ONNX Runtime (the ctest reference) checks it at 18.
        changed = sorted({n.op_type for n in proto.graph.node} & CHANGED_IN_OPSET_18)
        if changed or opset != 18:
            raise RuntimeError(f"{path}: cannot raise to opset {opset} (ops {changed})")
        for imp in proto.opset_import:
            if imp.domain in ("", "ai.onnx"):
                imp.version = opset
        onnx.save(proto, path)
    ops = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    if any(n.op_type == "BatchNormalization" and len(n.output) != 1 for n in proto.graph.node):
        raise RuntimeError(f"{path}: BatchNormalization exported in training form")
    for op, want in CORPUS_OPS.get(name, {}).items():
        if ops.get(op, 0) == 0:
            raise RuntimeError(f"{path}: no {op} node; the model exists to exercise it")
        if want is not None and want(proto) is not True:
            raise RuntimeError(f"{path}: {op}: {want(proto)}")
    batch = xte[:16]
    with torch.no_grad():
        ref = model(batch).double().numpy()
    got = run_onnx_numpy(proto, batch.numpy())
    max_err = float(np.abs(got - ref).max())
    if got.shape != ref.shape or max_err > 1e-3:
        raise RuntimeError(f"{path}: ONNX vs torch mismatch, max abs error {max_err}")
    size = os.path.getsize(path)
    log(f"[{name}] exported {path}: {size} bytes, ops {dict(sorted(ops.items()))}, "
        f"numpy-ONNX vs torch max abs diff {max_err:.2e}")
    if size >= 5 * 1024 * 1024:
        raise RuntimeError(f"{path}: {size} bytes exceeds 5 MB")
    if name in CORPUS and size >= 2 * 1024 * 1024:
        raise RuntimeError(f"{path}: {size} bytes exceeds the corpus limit of 2 MB")
    return ops, max_err, size


# ----------------------------------------------------------------------------- main


def selected_models(args):
    """The names to train, in order: --only and --models (names, `reference`, `corpus`,
    `all`); the three reference models when neither is given."""
    if not args.only and not args.models:
        return list(ORDER)
    groups = dict(reference=ORDER, corpus=CORPUS_ORDER, all=ORDER + CORPUS_ORDER)
    names = list(args.only or [])
    for item in args.models or []:
        for word in item.split(","):
            if word in groups:
                names += groups[word]
            elif word in MODELS:
                names.append(word)
            else:
                raise SystemExit(f"--models: unknown model '{word}' (choose from "
                                 f"{', '.join(list(groups) + ORDER + CORPUS_ORDER)})")
    return list(dict.fromkeys(names))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output folder (default: models, models/corpus for the corpus)")
    ap.add_argument("--only", choices=ORDER, action="append", help="train only this model (repeatable)")
    ap.add_argument("--models", action="append",
                    help="models to train, comma-separated: names (mlp, ..., mobilenetv2, ...), "
                         "reference, corpus or all (repeatable)")
    ap.add_argument("--epochs", type=int, help="override the number of epochs")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--reuse-trained", action="store_true",
                    help="export the weights an earlier run kept in the temporary folder "
                         "(fmnist-<name>.state.pt) instead of training again")
    args = ap.parse_args()
    names = selected_models(args)

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    def log(msg):
        print(msg, flush=True)

    t_all = time.time()
    trained = {}  # name -> (model, train seconds, history, epochs) trained or loaded by this run
    xtr, ytr = load_split("train")
    xte, yte = load_split("t10k")
    log(f"data: train {tuple(xtr.shape)}, test {tuple(xte.shape)} from {DATA_DIR}")
    for name in names:
        cfg = MODELS[name]
        out = args.out or ("models/corpus" if name in CORPUS else "models")
        os.makedirs(out, exist_ok=True)
        epochs = args.epochs if args.epochs is not None else cfg["epochs"]
        source = cfg.get("weights_of", name)
        state_path = os.path.join(tempfile.gettempdir(), f"fmnist-{source}.state.pt")
        if source != name or args.reuse_trained:
            # Another export of a model trained by this run or an earlier one (its weights
            # and its training record, kept next to them).
            if source not in trained and not os.path.exists(state_path):
                raise SystemExit(f"fmnist-{name}: no trained weights of '{source}' in {state_path}; "
                                 f"train '{source}' first")
            if source not in trained:
                model = cfg["make"]()
                model.load_state_dict(torch.load(state_path))
                with open(state_path + ".json") as f:
                    record = json.load(f)
                trained[source] = (model, record["train_s"], record["history"], record["epochs"])
                log(f"[{name}] weights of '{source}' from {state_path}")
            model, train_s, history, epochs = trained[source]
            model.eval()
        else:
            model, train_s, history = train(name, cfg, epochs, (xtr, ytr, xte, yte), log)
            trained[name] = (model, train_s, history, epochs)
            # Keep the trained weights even if the export below fails (--reuse-trained).
            torch.save(model.state_dict(), state_path)
            with open(state_path + ".json", "w") as f:
                json.dump(dict(train_s=train_s, history=history, epochs=epochs), f)
        top1 = evaluate(model, xte, yte)
        log(f"[{name}] fp32 test top-1 {top1:.4f} on {xte.shape[0]} images; trained in {train_s:.1f} s")
        path = os.path.join(out, f"fmnist-{name}.onnx")
        ops, max_err, size = export_and_check(name, model, xte, path, log, cfg.get("opset", 13))
        with torch.no_grad():
            ref_logits = model(xte[:NUM_REF_LOGITS]).tolist()
        meta = dict(
            model=f"fmnist-{name}.onnx", torch_version=torch.__version__, seed=SEED, epochs=epochs,
            batch=cfg["batch"], optimizer=cfg["opt"], lr=cfg["lr"], weight_decay=cfg["wd"],
            augment=cfg["augment"], threads=args.threads, train_wall_s=round(train_s, 1),
            test_top1=top1, test_images=int(xte.shape[0]), quantizable_layers=count_quantizable(model),
            params=count_params(model), onnx_ops=dict(sorted(ops.items())), onnx_bytes=size,
            onnx_vs_torch_max_abs_diff=max_err, history=history,
            input="N x 1 x 28 x 28 float32, uint8 pixels / 255, no mean/std normalisation",
            ref_test_labels=yte[:NUM_REF_LOGITS].tolist(), ref_test_logits=ref_logits,
        )
        if name in CORPUS:
            meta["opset"] = cfg["opset"]
        with open(os.path.join(out, f"fmnist-{name}.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
    log(f"total time {time.time() - t_all:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
