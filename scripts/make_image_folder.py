#!/usr/bin/python3
"""Writes an image folder of mixed sizes and modes for haq eval (docs/datasets.md).

    scripts/make_image_folder.py OUT [--classes 4] [--per-class 16] [--min 160] [--max 320] [--seed 0]
                             [--formats png,jpeg] [--labels]

One subfolder per class (class_0, class_1, ...), each image a random smooth
pattern of a random size between --min and --max pixels per side. PNGs are
written with the standard library only (gray, RGB, RGBA and palette PNGs in
turn); JPEGs (colour and grayscale in turn) need PIL (Debian: python3-pil), and
without it are written as PNG. --labels also writes OUT/labels.txt (one class
name per line, reversed, so that the map differs from the sorted default).
"""
import argparse
import os
import random
import struct
import sys
import zlib


def png_bytes(width, height, color_type, rows, palette=None):
    """A PNG: 8-bit, color_type 0 gray, 2 RGB, 3 palette, 6 RGBA; rows of bytes."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", bytes(v for rgb in palette for v in rgb))
    return out + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def pattern(width, height, rng):
    """An RGB image (list of rows of (r, g, b)) with a smooth gradient and a disc."""
    a, b, c = (rng.randrange(256) for _ in range(3))
    cx, cy, rad = rng.randrange(width), rng.randrange(height), rng.randrange(8, max(9, min(width, height) // 2))
    rows = []
    for y in range(height):
        row = []
        for x in range(width):
            inside = (x - cx) ** 2 + (y - cy) ** 2 < rad * rad
            r = (a + 255 * x // width) % 256
            g = (b + 255 * y // height) % 256
            bl = 255 - c if inside else c
            row.append((r, g, bl))
        rows.append(row)
    return rows


def write_png(path, rows, mode):
    h, w = len(rows), len(rows[0])
    if mode == "gray":
        data = [[(299 * r + 587 * g + 114 * b) // 1000 for r, g, b in row] for row in rows]
        blob = png_bytes(w, h, 0, data)
    elif mode == "rgba":
        data = [[v for r, g, b in row for v in (r, g, b, 128 + (r % 128))] for row in rows]
        blob = png_bytes(w, h, 6, data)
    elif mode == "palette":
        palette = [(i, 255 - i, (i * 7) % 256) for i in range(256)]
        data = [[r for r, g, b in row] for row in rows]
        blob = png_bytes(w, h, 3, data, palette)
    else:
        data = [[v for px in row for v in px] for row in rows]
        blob = png_bytes(w, h, 2, data)
    with open(path, "wb") as f:
        f.write(blob)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out")
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--per-class", type=int, default=16)
    p.add_argument("--min", type=int, default=160)
    p.add_argument("--max", type=int, default=320)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--formats", default="png,jpeg", help="comma-separated: png, jpeg")
    p.add_argument("--labels", action="store_true", help="also write OUT/labels.txt")
    a = p.parse_args()
    formats = a.formats.split(",")
    try:
        from PIL import Image  # noqa: F401 (JPEG only)
        have_pil = True
    except ImportError:
        have_pil = False
        if "jpeg" in formats:
            print("make_image_folder.py: no PIL (python3-pil): writing PNG instead of JPEG", file=sys.stderr)
    rng = random.Random(a.seed)
    png_modes = ["gray", "rgb", "rgba", "palette"]
    jpeg_modes = ["RGB", "L"]
    names = [f"class_{k}" for k in range(a.classes)]
    count = 0
    made = {"png": 0, "jpeg": 0}  # per format, so the modes cycle within each
    for k, name in enumerate(names):
        os.makedirs(os.path.join(a.out, name), exist_ok=True)
        for i in range(a.per_class):
            w, h = rng.randint(a.min, a.max), rng.randint(a.min, a.max)
            rows = pattern(w, h, rng)
            fmt = formats[(k * a.per_class + i) % len(formats)]
            base = os.path.join(a.out, name, f"{i:04d}")
            if fmt == "jpeg" and have_pil:
                img = Image.frombytes("RGB", (w, h), bytes(v for row in rows for px in row for v in px))
                img.convert(jpeg_modes[made["jpeg"] % len(jpeg_modes)]).save(base + ".jpg", quality=90)
                made["jpeg"] += 1
            else:
                write_png(base + ".png", rows, png_modes[made["png"] % len(png_modes)])
                made["png"] += 1
            count += 1
    if a.labels:
        with open(os.path.join(a.out, "labels.txt"), "w") as f:
            f.write("".join(n + "\n" for n in reversed(names)))
    print(f"{a.out}: {count} images in {a.classes} classes, {a.min}..{a.max} pixels per side", file=sys.stderr)


if __name__ == "__main__":
    main()
