#!/usr/bin/python3
"""Converts IDX files (MNIST, Fashion-MNIST) to .npy pairs, standard library only.

    scripts/idx_to_npy.py OUT [--idx DIR] [--count N] [--dtype uint8|float32]

Writes OUT/x_train.npy, y_train.npy, x_test.npy, y_test.npy: images N x 28 x 28
(uint8, or float32 divided by 255), labels int64 (N,). --count keeps the first N
of each split (0: all). --idx defaults to Debian's dataset-fashion-mnist folder.
For trying haq's .npy input (docs/datasets.md) on data that is at hand.
"""
import argparse
import array
import gzip
import os
import struct
import sys


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise SystemExit("%s: not an unsigned-byte IDX file" % path)
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return dims, data[4 + 4 * ndim:]


def find(folder, stem):
    for name in (stem, stem + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise SystemExit("%s: no %s[.gz]" % (folder, stem))


def write_npy(path, descr, shape, payload):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
        descr, ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else ""))
    pad = 64 - (10 + len(header) + 1) % 64
    header += " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--idx", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--dtype", choices=("uint8", "float32"), default="uint8")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        dims, pixels = read_idx(find(a.idx, prefix + "-images-idx3-ubyte"))
        ldims, labels = read_idx(find(a.idx, prefix + "-labels-idx1-ubyte"))
        n = dims[0] if a.count <= 0 else min(a.count, dims[0])
        per = dims[1] * dims[2]
        pixels, labels = pixels[:n * per], labels[:n]
        if a.dtype == "uint8":
            write_npy(os.path.join(a.out, "x_%s.npy" % split), "|u1", (n, dims[1], dims[2]), pixels)
        else:
            values = array.array("f", (p / 255.0 for p in pixels))
            if sys.byteorder != "little":
                values.byteswap()
            write_npy(os.path.join(a.out, "x_%s.npy" % split), "<f4", (n, dims[1], dims[2]), values.tobytes())
        ints = array.array("q", list(labels))
        if sys.byteorder != "little":
            ints.byteswap()
        write_npy(os.path.join(a.out, "y_%s.npy" % split), "<i8", (n,), ints.tobytes())
        print("%s: %d images %dx%d -> %s/x_%s.npy, y_%s.npy" % (split, n, dims[1], dims[2], a.out, split, split))


if __name__ == "__main__":
    main()
