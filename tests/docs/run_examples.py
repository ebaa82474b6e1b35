#!/usr/bin/env python3
"""Runs every command example of the user documentation, as a test.

Examples are the fenced ```sh blocks of README.md and docs/*.md, and the
"Example(s):" lines of every `haq SUBCOMMAND --help`. They run in the order
README.md, docs/*.md (sorted), then the --help examples, each block as one
bash script (set -eo pipefail, unless the block is a whole script with #!) in a scratch folder that looks like a fresh
clone (models/, configs/, hardware-profiles/, scripts/, tests/, docs/ and
build/ linked in), so outputs of an earlier example (runs/edge/policy.json)
serve the later ones and nothing is written into the repository.

`haq` in the examples is a wrapper on PATH (also $HAQ) that, with --size
small (the default, what CI runs), caps episodes and sample counts so the
whole set runs in minutes; --size full runs every example as written.

Markers, an HTML comment on the line before the block's opening fence:
  <!-- example: skip REASON -->   not run; the reason is printed
  <!-- example: exit N -->        the block must end with exit code N

A fenced block without a language tag that holds a haq command is an error:
tag commands ```sh (run) and outputs or synopses ```text (not run).

Exit 0 if every example ran as expected, 1 otherwise (each failure is named
FILE:LINE with its output), 2 on bad usage.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

SUBCOMMANDS = ("inspect", "simulate", "fit-profile", "eval", "search", "sweep", "merge", "check", "export")
COMMAND_LINE = re.compile(r"^\s*(\$\s+)?haq\s+(%s)\b" % "|".join(SUBCOMMANDS))
MARKER = re.compile(r"<!--\s*example:\s*(skip|exit)\s*(.*?)\s*-->")

# Caps of --size small: option -> largest value (0 means "all" and is capped too).
CAPS = {
    "search": {"--episodes": 4, "--eval-samples": 200, "--calib-samples": 64, "--select-samples": 300,
               "--test-samples": 300},
    "eval": {"--samples": 300, "--calib": 64},
    "export": {"--calib": 64},
}
SWEEP_CAPS = {"episodes": 4, "eval_samples": 200, "calib_samples": 64, "select_samples": 300,
              "test_samples": 300}


class Block:
    def __init__(self, source, line, text, expect=0, skip=None):
        self.source, self.line, self.text, self.expect, self.skip = source, line, text, expect, skip

    def where(self):
        return "%s:%d" % (self.source, self.line)


def doc_blocks(path, rel):
    """The ```sh blocks of a markdown file; raises ValueError for an untagged command block."""
    blocks, errors = [], []
    lines = open(path, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```(\S*)\s*(.*)$", lines[i])
        if not m:
            i += 1
            continue
        indent, info = m.group(1), m.group(2)
        start = i
        body = []
        i += 1
        while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1
        marker = MARKER.search(lines[start - 1]) if start > 0 else None
        if info in ("sh", "bash", "shell"):
            b = Block(rel, start + 1, "\n".join(body) + "\n")
            if marker and marker.group(1) == "skip":
                b.skip = marker.group(2) or "(no reason given)"
            elif marker and marker.group(1) == "exit":
                b.expect = int(marker.group(2))
            blocks.append(b)
        elif info == "" and any(COMMAND_LINE.match(l) for l in body):
            errors.append("%s:%d: a fenced block without a language holds a haq command: tag it ```sh "
                          "(an example the test runs) or ```text (output or synopsis)" % (rel, start + 1))
    return blocks, errors


def help_blocks(haq):
    """The example commands of every subcommand's --help, one block each."""
    blocks = []
    for sub in SUBCOMMANDS:
        out = subprocess.run([haq, sub, "--help"], capture_output=True, text=True).stdout
        lines = out.split("\n")
        inside, command = False, ""
        for line in lines:
            if re.match(r"^Examples?:\s*$", line):
                inside = True
                continue
            if not inside:
                continue
            if not line.startswith("  "):
                break
            command += line.strip()
            if command.endswith("\\"):
                command = command[:-1] + " "
                continue
            blocks.append(Block("haq %s --help" % sub, 0, command + "\n"))
            command = ""
    return blocks


def shrink_sweep(path, scratch):
    """A copy of a sweep file with the small caps, next to the original's name under .examples/."""
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    for key, cap in SWEEP_CAPS.items():
        v = spec.get(key)
        spec[key] = cap if v is None or v == 0 or v > cap else v
    spec.pop("time_budget", None)
    out = os.path.join(scratch, ".examples", os.path.basename(path))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    # Examples run shards of one sweep in parallel: each writes its own
    # temporary and renames it into place, so no reader sees a half-written file.
    tmp = "%s.%d.tmp" % (out, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(spec, f, indent=2)
    os.replace(tmp, out)
    return out


def wrap(argv, scratch):
    """The arguments of the real haq with the small caps applied."""
    args = list(argv)
    sub = next((a for a in args if not a.startswith("-")), None)
    if sub == "sweep":
        i = args.index("sweep")
        if i + 1 < len(args) and args[i + 1].endswith(".json") and os.path.exists(args[i + 1]):
            args[i + 1] = shrink_sweep(args[i + 1], scratch)
        return args
    if "--help" in args or "-h" in args:
        return args
    for option, cap in CAPS.get(sub, {}).items():
        found = False
        for k, a in enumerate(args):
            if a == option and k + 1 < len(args):
                found = True
                try:
                    v = int(args[k + 1])
                    if v == 0 or v > cap:
                        args[k + 1] = str(cap)
                except ValueError:
                    pass
            elif a.startswith(option + "="):
                found = True
                try:
                    v = int(a.split("=", 1)[1])
                    if v == 0 or v > cap:
                        args[k] = "%s=%d" % (option, cap)
                except ValueError:
                    pass
        if not found:
            args += [option, str(cap)]
    return args


def prepare_scratch(root, build, scratch, size):
    if os.path.exists(scratch):
        shutil.rmtree(scratch)
    os.makedirs(os.path.join(scratch, ".bin"))
    for name in ("models", "configs", "hardware-profiles", "scripts", "tests", "docs", "bench", "README.md"):
        os.symlink(os.path.join(root, name), os.path.join(scratch, name))
    # build/ is the real build, but for build/apps/haq/haq, which is the
    # wrapper too: examples that name the binary's path are capped as well.
    os.makedirs(os.path.join(scratch, "build", "apps", "haq"))
    for name in os.listdir(build):
        if name not in ("apps", os.path.basename(scratch)):
            os.symlink(os.path.join(build, name), os.path.join(scratch, "build", name))
    wrapper = os.path.join(scratch, "build", "apps", "haq", "haq")
    real = os.path.join(build, "apps", "haq", "haq")
    with open(wrapper, "w") as f:
        if size == "full":
            f.write('#!/bin/sh\nexec "%s" "$@"\n' % real)
        else:
            f.write('#!/bin/sh\nexec "%s" "%s" --wrap "%s" "%s" "$@"\n'
                    % (sys.executable, os.path.abspath(__file__), scratch, real))
    os.chmod(wrapper, 0o755)
    os.symlink(wrapper, os.path.join(scratch, ".bin", "haq"))
    return wrapper


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--wrap":
        scratch, real = sys.argv[2], sys.argv[3]
        os.execv(real, [real] + wrap(sys.argv[4:], scratch))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap.add_argument("--build", required=True, help="the build folder (holds apps/haq/haq)")
    ap.add_argument("--scratch", help="where the examples run (default BUILD/doc-examples; emptied first)")
    ap.add_argument("--size", choices=("small", "full"), default=os.environ.get("HAQ_EXAMPLES_SIZE", "small"))
    ap.add_argument("--only", help="run only the blocks whose source contains this text (and README.md's, which the others use)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per block")
    a = ap.parse_args()
    root, build = os.path.realpath(a.root), os.path.realpath(a.build)
    real = os.path.join(build, "apps", "haq", "haq")
    if not os.access(real, os.X_OK):
        print("run_examples: %s is missing: build first" % real, file=sys.stderr)
        return 2
    scratch = os.path.realpath(a.scratch or os.path.join(build, "doc-examples"))

    blocks, errors = [], []
    docs = ["README.md"] + ["docs/" + n for n in sorted(os.listdir(os.path.join(root, "docs"))) if n.endswith(".md")]
    for rel in docs:
        b, e = doc_blocks(os.path.join(root, rel), rel)
        blocks += b
        errors += e
    blocks += help_blocks(real)
    if a.only:
        # README.md's examples stay: the others build on their outputs (runs/edge).
        blocks = [b for b in blocks if a.only in b.source or b.source == "README.md"]

    wrapper = prepare_scratch(root, build, scratch, a.size)
    env = dict(os.environ)
    env["PATH"] = os.path.join(scratch, ".bin") + os.pathsep + env.get("PATH", "")
    env["HAQ"] = wrapper
    ran = skipped = 0
    t_all = time.time()
    for b in blocks:
        if b.skip:
            print("skip  %s: %s" % (b.where(), b.skip))
            skipped += 1
            continue
        t0 = time.time()
        try:
            # A block that is a whole script (#!) runs as written; others stop at the first error.
            shell = ["bash", "-c"] if b.text.startswith("#!") else ["bash", "-eo", "pipefail", "-c"]
            p = subprocess.run(shell + [b.text], cwd=scratch, env=env,
                               capture_output=True, text=True, timeout=a.timeout)
            code, out = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            code, out = "timeout after %d s" % a.timeout, (e.stdout or b"").decode(errors="replace")
        ran += 1
        status = "ok   " if code == b.expect else "FAIL "
        print("%s %s (%.1f s): %s" % (status, b.where(), time.time() - t0, b.text.strip().split("\n")[0][:100]))
        sys.stdout.flush()
        if code != b.expect:
            tail = "\n".join(out.rstrip().split("\n")[-25:])
            errors.append("%s: exit %s, expected %d:\n%s\n--- output (last lines) ---\n%s"
                          % (b.where(), code, b.expect, b.text.rstrip(), tail))
    print("%d example blocks ran, %d skipped, %d problems, %.0f s (size %s, in %s)"
          % (ran, skipped, len(errors), time.time() - t_all, a.size, scratch))
    for e in errors:
        print("\nrun_examples: " + e, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
