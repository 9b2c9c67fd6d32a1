#!/usr/bin/env python3
"""Scores a model exported by Lapwing (model.safetensors) on a test set, with numpy only.

Reproduces the test accuracy that `lapwing run` reports, from the file alone:
  python3 tools/eval_model.py lapwing-runs/JOB/model.safetensors --data idx:/usr/share/datasets/fashion-mnist
Layout (see README): layers.N.weight is [in, out], y = x @ W + b, ReLU between layers; the last
layer's outputs are class scores (softmax models) or one score (logistic/svm: sign, least squares: value).
Prints one JSON line: {"accuracy": ..., "rows": ..., "model": ...}.
"""
import argparse, gzip, json, os, struct, sys
import numpy as np
from safetensors.numpy import load_file
from safetensors import safe_open


def read_idx(path):
    with (gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open)(path, "rb") as f:
        data = f.read()
    _, _, ndim = struct.unpack(">HBB", data[:4])
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def idx_test(directory):
    def find(stem):
        for name in (stem, stem + ".gz"):
            p = os.path.join(directory, name)
            if os.path.exists(p):
                return p
        sys.exit(f"missing {stem}[.gz] in {directory}")
    x = read_idx(find("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    return x, y


def libsvm(path, features):
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    rows, labels = [], []
    with opener(path, "rt") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            labels.append(float(parts[0]))
            rows.append([(int(k) - 1, float(v)) for k, v in (p.split(":") for p in parts[1:] if not p.startswith("qid:"))])
    x = np.zeros((len(rows), features), dtype=np.float32)
    for i, r in enumerate(rows):
        for k, v in r:
            x[i, k] = v
    return x, np.array(labels)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--data", required=True, help="idx:DIR (its t10k test set) or libsvm:TEST")
    args = ap.parse_args()
    tensors = load_file(args.model)
    with safe_open(args.model, "np") as f:
        meta = f.metadata() or {}
    layers = sorted({int(k.split(".")[1]) for k in tensors})
    weights = [(tensors[f"layers.{l}.weight"], tensors[f"layers.{l}.bias"]) for l in layers]
    kind, _, path = args.data.partition(":")
    if kind == "idx":
        x, y = idx_test(path)
    elif kind == "libsvm":
        x, y = libsvm(path.split(",")[-1], weights[0][0].shape[0])
    else:
        sys.exit(f"--data {args.data}: use idx:DIR or libsvm:TEST")
    h = x
    for i, (w, b) in enumerate(weights):
        h = h @ w + b
        if i < len(weights) - 1:
            h = np.maximum(h, 0)
    loss = meta.get("loss", "softmax")
    if loss == "softmax":
        pred = h.argmax(1)
        truth = np.where(y < 0, 0, y).astype(np.int64)
    else:
        pred = np.where(h[:, 0] >= 0, 1, -1)
        truth = np.where(y > 0, 1, -1)
    acc = float((pred == truth).mean())
    print(json.dumps({"accuracy": round(acc, 6), "rows": int(len(y)), "model": meta.get("model"),
                      "reported": float(meta["test_accuracy"]) if "test_accuracy" in meta else None}))


if __name__ == "__main__":
    main()
