#!/usr/bin/python3
"""Train haq's Fashion-MNIST reference models and export them to ONNX.

Run with Debian's interpreter (python3-torch, python3-onnx, numpy):

    /usr/bin/python3 scripts/train_reference_models.py --out models/

Models (all: input "input" N x 1 x 28 x 28 float32 = uint8 pixels / 255, no mean/std
normalisation; output "logits" N x 10, no softmax; dynamic batch axis):

  fmnist-mlp        Flatten -> Gemm 784x256 -> ReLU -> Gemm 256x128 -> ReLU -> Gemm 128x10
  fmnist-mobilenet  MobileNetV1-style: 3x3 stem conv, 6 depthwise-separable blocks, GAP, Linear
  fmnist-resnet     ResNet with basic blocks (Add skips, 1x1 projection shortcuts), GAP, Linear

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


# name -> (constructor, default epochs, optimiser settings, augment?)
MODELS = {
    "mlp": dict(make=MlpFM, epochs=10, opt="adam", lr=1e-3, wd=0.0, augment=False, batch=128),
    "mobilenet": dict(make=MobileNetFM, epochs=8, opt="sgd", lr=0.1, wd=4e-5, augment=False, batch=128),
    "resnet": dict(make=ResNetFM, epochs=6, opt="sgd", lr=0.1, wd=5e-4, augment=True, batch=128),
}
ORDER = ["mlp", "mobilenet", "resnet"]


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


def run_onnx_numpy(model_proto, x):
    """Evaluate the exported graph in float64 numpy; supports only the ops we emit."""
    env = {t.name: onnx.numpy_helper.to_array(t).astype(np.float64) for t in model_proto.graph.initializer}
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
        elif op == "Add":
            y = ins[0] + ins[1]
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            axis = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:axis])), -1)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = a.get("alpha", 1.0) * A @ B
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get("beta", 1.0) * ins[2]
        else:
            raise NotImplementedError(f"op {op} in numpy checker")
        env[node.output[0]] = y
    return env[model_proto.graph.output[0].name]


def export_and_check(name, model, xte, path, log):
    model.eval()
    dummy = xte[:2].clone()
    # torch warns about constant folding with PRESERVE, which only matters for a model in
    # training mode; ours is in eval mode and the numpy check below verifies the result.
    warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
    torch.onnx.export(
        model, dummy, path, export_params=True, opset_version=13, do_constant_folding=True,
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
    ops = {}
    for n in proto.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    if any(n.op_type == "BatchNormalization" and len(n.output) != 1 for n in proto.graph.node):
        raise RuntimeError(f"{path}: BatchNormalization exported in training form")
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
    return ops, max_err, size


# ----------------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--only", choices=ORDER, action="append", help="train only this model (repeatable)")
    ap.add_argument("--epochs", type=int, help="override the number of epochs")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)

    def log(msg):
        print(msg, flush=True)

    t_all = time.time()
    xtr, ytr = load_split("train")
    xte, yte = load_split("t10k")
    log(f"data: train {tuple(xtr.shape)}, test {tuple(xte.shape)} from {DATA_DIR}")
    for name in args.only or ORDER:
        cfg = MODELS[name]
        epochs = args.epochs if args.epochs is not None else cfg["epochs"]
        model, train_s, history = train(name, cfg, epochs, (xtr, ytr, xte, yte), log)
        # Keep the trained weights even if the export below fails.
        torch.save(model.state_dict(), os.path.join(tempfile.gettempdir(), f"fmnist-{name}.state.pt"))
        top1 = evaluate(model, xte, yte)
        log(f"[{name}] fp32 test top-1 {top1:.4f} on {xte.shape[0]} images; trained in {train_s:.1f} s")
        path = os.path.join(args.out, f"fmnist-{name}.onnx")
        ops, max_err, size = export_and_check(name, model, xte, path, log)
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
        with open(os.path.join(args.out, f"fmnist-{name}.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
    log(f"total time {time.time() - t_all:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
