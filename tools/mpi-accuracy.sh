#!/usr/bin/env bash
# Accuracy of a job across two MPI ranks against one machine with the same total workers
# (issue #15): Fashion-MNIST mlp:784-256-10, one machine with 2 workers (on 2 replicas), then
# mpirun -n 2 with one worker per rank. Prints one JSON object per repetition.
#
#   tools/mpi-accuracy.sh [EPOCHS] [REPETITIONS] [ALGORITHM]   (defaults: 6 3 lap-sgd; build first)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-6} reps=${2:-3} algorithm=${3:-lap-sgd}
lapwing=.build/release/lapwing
out=$(mktemp -d /tmp/lapwing-mpi-accuracy.XXXXXX)
trap 'rm -rf "$out"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
common=(--json --data idx:/usr/share/datasets/fashion-mnist --model mlp:784-256-10 --algorithm "$algorithm" --epochs "$epochs" --lr 0.02)
# lap-sgd and lpp-sgd share one replica per node unless told; the others keep one per worker.
case $algorithm in lap-sgd|lpp-sgd) replicas=(--replicas 2);; *) replicas=();; esac
for i in $(seq "$reps"); do
  one=$($lapwing run "${common[@]}" --workers 2 "${replicas[@]}" --output-dir "$out/one" | tail -1)
  two=$(mpirun -n 2 --oversubscribe $lapwing run --mpi "${common[@]}" --workers 1 --output-dir "$out/two" | tail -1)
  python3 -c '
import json, sys
one, two = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({"algorithm": one["algorithm"], "epochs": float(sys.argv[3]),
  "oneMachine": {"accuracy": one["testAccuracy"], "seconds": round(one["trainSeconds"], 2)},
  "twoRanks": {"accuracy": two["testAccuracy"], "seconds": round(two["trainSeconds"], 2), "rank0Epochs": round(two["epochs"], 3),
               "rounds": two["machineRounds"], "bytesPerRound": two["machineBytesPerRound"], "bytes": two["machineBytes"],
               "bridgeSeconds": round(two["machineSeconds"], 3)}}))' "$one" "$two" "$epochs"
done
