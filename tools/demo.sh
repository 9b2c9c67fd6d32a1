#!/usr/bin/env bash
# The main job, from a clean clone on a fresh Debian 12 machine: installs what Lapwing needs,
# builds it, starts a user-mode lapwingd if none is running, submits an MLP on Fashion-MNIST
# with LAP-SGD (forked Hogwild workers on per-node replicas in shared memory, averaged in place),
# watches its progress to the end, exports the model and scores it again with numpy alone.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
echo "lapwing: building (release)..." >&2
swift build -c release 2>&1 | grep -E "error|warning:|Build" >&2 || true
bin=.build/release
if ! "$bin/lapwing" version 2>/dev/null | grep -q '^lapwingd [0-9]'; then
  state="${XDG_STATE_HOME:-$HOME/.local/state}/lapwing"
  mkdir -p "$state"
  echo "lapwing: starting a user-mode daemon (log: $state/lapwingd.log)" >&2
  nohup "$bin/lapwingd" --user >>"$state/lapwingd.log" 2>&1 &
  for _ in $(seq 100); do "$bin/lapwing" version 2>/dev/null | grep -q '^lapwingd [0-9]' && break; sleep 0.1; done
fi
"$bin/lapwing" version
job=$("$bin/lapwing" submit --data idx:/usr/share/datasets/fashion-mnist --model mlp:784-256-10 \
  --algorithm lap-sgd --workers "${WORKERS:-2}" --replicas 2 --epochs "${EPOCHS:-10}" --nesterov)
"$bin/lapwing" watch "$job"
mkdir -p lapwing-runs
"$bin/lapwing" export "$job" -o "lapwing-runs/$job.safetensors"
echo "lapwing: the exported model, scored again by numpy alone:" >&2
python3 tools/eval_model.py "lapwing-runs/$job.safetensors" --data idx:/usr/share/datasets/fashion-mnist
