#!/usr/bin/env bash
# The main job, from a clean clone on a fresh Debian 12 machine: installs what Lapwing needs,
# builds it, trains an MLP on Fashion-MNIST with LAP-SGD (forked Hogwild workers on per-node
# replicas in shared memory, averaged in place), shows progress and the result, and checks the
# exported model in Python.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
echo "lapwing: building (release)..." >&2
swift build -c release --product lapwing 2>&1 | grep -E "error|warning:|Build" >&2 || true
out=lapwing-runs/demo
rm -rf "$out"
.build/release/lapwing run --data idx:/usr/share/datasets/fashion-mnist --model mlp:784-256-10 \
  --algorithm lap-sgd --workers "${WORKERS:-2}" --replicas 2 --epochs "${EPOCHS:-5}" --output-dir "$out"
echo "lapwing: the exported model, scored again by numpy alone:" >&2
python3 tools/eval_model.py "$out/model.safetensors" --data idx:/usr/share/datasets/fashion-mnist
