#!/usr/bin/python3
"""Export torchvision's MobileNetV2, ResNet-18 and ResNet-50 architectures to ONNX.

Random weights (seeded), input 1x3x224x224 with a dynamic batch axis, opset 13.
For simulator and speed work; the files (up to ~100 MB) are generated on demand
into models/generated/ (gitignored) and never committed.

Run with Debian's interpreter, which has python3-torch and python3-torchvision:
    /usr/bin/python3 scripts/export_torchvision.py [--out models/generated] [--only resnet50]
"""
import argparse
import os
import sys
import time

import torch
import torchvision


MODELS = {
    "mobilenet_v2": torchvision.models.mobilenet_v2,
    "resnet18": torchvision.models.resnet18,
    "resnet50": torchvision.models.resnet50,
}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(here, "..", "models", "generated"))
    parser.add_argument("--only", choices=sorted(MODELS), action="append")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.only or sorted(MODELS):
        torch.manual_seed(args.seed)
        model = MODELS[name](weights=None).eval()  # random init, seeded
        x = torch.randn(1, 3, 224, 224)
        path = os.path.join(args.out, name + ".onnx")
        start = time.time()
        torch.onnx.export(model, x, path, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, do_constant_folding=True)
        print(f"{path}: {os.path.getsize(path) / 1e6:.1f} MB in {time.time() - start:.1f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
