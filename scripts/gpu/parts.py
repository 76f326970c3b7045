"""Helpers of scripts/gpu/verify that need more than the shell, run by the GPU machine's
own Python (standard library only):

  parts.py store STORE PART_DIR...    keep each carried part (chunk, offset, index)
  parts.py unpack STORE ROOT          unpack every component whose bytes have all arrived
                                      and are not unpacked yet; print their names
  parts.py plates A.jsonl B.jsonl TOL `vigil plate --json` outputs of two engines agree:
                                      the same plates and vehicles, numbers within TOL
  parts.py eval A.json B.json         two `vigil eval --json` reports give the same table
  parts.py dmon FILE                  mean and peak GPU, memory-copy and NVDEC load from
                                      `nvidia-smi dmon -s u` output
"""

import hashlib
import io
import json
import os
import shutil
import sys
import tarfile


def fail(message):
    print(f"parts.py: {message}", file=sys.stderr)
    sys.exit(1)


def store(store_dir, part_dirs):
    os.makedirs(os.path.join(store_dir, "chunks"), exist_ok=True)
    for part in part_dirs:
        with open(os.path.join(part, "offset")) as f:
            offset = int(f.read().strip())
        shutil.copyfile(os.path.join(part, "chunk"), os.path.join(store_dir, "chunks", f"{offset:012d}"))
        shutil.copyfile(os.path.join(part, "index"), os.path.join(store_dir, "index"))
        print(f"stored the part at byte {offset}")


def index_of(store_dir):
    path = os.path.join(store_dir, "index")
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as f:
        for line in f:
            name, offset, size, sha = line.split()
            out.append((name, int(offset), int(size), sha))
    return out


def read_range(store_dir, start, size):
    """The bytes [start, start + size) of the stream, or None if a chunk is missing."""
    chunks = sorted(int(n) for n in os.listdir(os.path.join(store_dir, "chunks")))
    out, at, end = io.BytesIO(), start, start + size
    for offset in chunks:
        length = os.path.getsize(os.path.join(store_dir, "chunks", f"{offset:012d}"))
        if offset + length <= at or offset >= end:
            continue
        if offset > at:
            return None
        with open(os.path.join(store_dir, "chunks", f"{offset:012d}"), "rb") as f:
            f.seek(at - offset)
            take = min(end, offset + length) - at
            out.write(f.read(take))
            at += take
        if at >= end:
            break
    return out.getvalue() if at >= end else None


def unpack(store_dir, root):
    done_dir = os.path.join(store_dir, "unpacked")
    os.makedirs(done_dir, exist_ok=True)
    os.makedirs(root, exist_ok=True)
    for name, offset, size, sha in index_of(store_dir):
        if os.path.exists(os.path.join(done_dir, name)):
            continue
        data = read_range(store_dir, offset, size)
        if data is None:
            continue
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            fail(f"component {name}: SHA-256 {got}, the index says {sha}: a part is damaged")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
            try:
                tar.extractall(root, filter="tar")
            except TypeError:  # Python before 3.11.4 has no filters
                tar.extractall(root)
        open(os.path.join(done_dir, name), "w").close()
        print(name)


def plates(a_path, b_path, tolerance):
    """Per image: the same plates (text, lines, colour) with confidences and boxes within
    `tolerance` (boxes relative to 1000 px, i.e. TOL * 1000 pixels at most)."""

    def load(path):
        out = {}
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    out[os.path.basename(r["image"])] = r
        return out

    a, b = load(a_path), load(b_path)
    if set(a) != set(b):
        fail(f"different images: {sorted(set(a) ^ set(b))[:5]}")
    worst, problems = 0.0, []
    for image in sorted(a):
        pa, pb = a[image].get("plates", []), b[image].get("plates", [])
        if len(pa) != len(pb):
            problems.append(f"{image}: {len(pa)} plates against {len(pb)}")
            continue
        for x, y in zip(pa, pb):
            if (x["text"], x["lines"], x["colour"]) != (y["text"], y["lines"], y["colour"]):
                problems.append(f"{image}: read {x['text']!r} against {y['text']!r}")
                continue
            diffs = [abs(x["confidence"] - y["confidence"])]
            diffs += [abs(p - q) / 1000.0 for p, q in zip(x["plate_box"], y["plate_box"])]
            vx, vy = x.get("vehicle"), y.get("vehicle")
            if (vx is None) != (vy is None) or (vx and vx["class"] != vy["class"]):
                problems.append(f"{image}: read on {vx and vx['class']} against {vy and vy['class']}")
                continue
            if vx:
                diffs.append(abs(vx["score"] - vy["score"]))
                diffs += [abs(p - q) / 1000.0 for p, q in zip(vx["bbox"], vy["bbox"])]
            worst = max(worst, max(diffs))
            if max(diffs) > tolerance:
                problems.append(f"{image}: {x['text']} differs by {max(diffs):.2e}")
    n = sum(len(r.get("plates", [])) for r in a.values())
    print(f"{len(a)} images, {n} plates; largest difference {worst:.2e} (tolerance {tolerance})")
    if problems:
        fail("; ".join(problems[:10]))


def eval_table(a_path, b_path):
    """The table the scenario eval prints: every rule's counts, plates, identities."""

    def table(path):
        with open(path) as f:
            r = json.load(f)
        return {
            "rules": r["rules"],
            "plates": r["plates"],
            "identity": r["identity"],
            "frames": r["frames"],
        }

    a, b = table(a_path), table(b_path)
    for key in a:
        if a[key] != b[key]:
            fail(f"{key} differs:\n  {json.dumps(a[key], sort_keys=True)}\n  {json.dumps(b[key], sort_keys=True)}")
    print("the same table: " + json.dumps({k: a[k] for k in ("plates", "identity")}, sort_keys=True))


def dmon(path):
    cols, rows = None, []
    with open(path) as f:
        for line in f:
            if line.startswith("# gpu") or line.startswith("#gpu"):
                cols = line.lstrip("#").split()
            elif cols and not line.startswith("#") and line.strip():
                values = line.split()
                rows.append(dict(zip(cols, values)))
    if not rows:
        fail(f"{path}: no samples")
    out = []
    for key in ("sm", "mem", "dec", "enc"):
        vals = [float(r[key]) for r in rows if r.get(key, "-").replace(".", "", 1).isdigit()]
        if vals:
            out.append(f"{key} {sum(vals) / len(vals):.0f} % mean, {max(vals):.0f} % peak")
    print(f"{len(rows)} samples: " + "; ".join(out))


def main(argv):
    if len(argv) < 2:
        fail(__doc__)
    verb, args = argv[1], argv[2:]
    if verb == "store" and len(args) >= 2:
        store(args[0], args[1:])
    elif verb == "unpack" and len(args) == 2:
        unpack(*args)
    elif verb == "plates" and len(args) == 3:
        plates(args[0], args[1], float(args[2]))
    elif verb == "eval" and len(args) == 2:
        eval_table(*args)
    elif verb == "dmon" and len(args) == 1:
        dmon(args[0])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
