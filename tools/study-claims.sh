#!/usr/bin/env bash
# Runs the studies of docs/study.md, one per claim of the papers Lapwing implements, in the
# foreground (no daemon needed) with the release build, and copies each study's table.md,
# table.csv and plots into docs/study/NAME/ (the jobs' metrics stay in $OUT, default
# /tmp/lapwing-study-claims). Usage: tools/study-claims.sh [NAME...] (default: all of them).
# Names: fmnist-all debian-all batch period heterogeneous straggler compression hier overlap
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-/tmp/lapwing-study-claims}"
fm="idx:/usr/share/datasets/fashion-mnist"
ds="${SHARED:-../shared}/data/debian-sections"
mlp=(--data "$fm" --model mlp:784-256-10 --seed 1)
study() {
  local name=$1; shift
  rm -rf "$out/$name"
  echo "== $name: lapwing study $*" >&2
  local t0=$SECONDS
  .build/release/lapwing study --foreground --output-dir "$out/$name" "$@" >/dev/null
  echo "== $name: $((SECONDS - t0)) s (load average: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
  mkdir -p "docs/study/$name"
  cp "$out/$name"/table.md "$out/$name"/table.csv "$out/$name"/*.svg "docs/study/$name/"
}
run() {
  case $1 in
    fmnist-all) study fmnist-all "${mlp[@]}" --workers 2 --algorithms all --epochs 10 --eval-every 0.5 ;;
    debian-all) study debian-all --data "libsvm:$ds/debian-sections.train.gz,$ds/debian-sections.test.gz" --model softmax \
        --workers 2 --algorithms all --epochs 3 --batch 64 --lr 30 --momentum 0 --lr-schedule linear --eval-every 0.25 ;;
    batch) study batch "${mlp[@]}" --workers 2 --algorithms lap-sgd,minibatch --sweep batch=16,128 --epochs 5 --eval-every 0.5 ;;
    period) study period "${mlp[@]}" --workers 2 --algorithms local-sgd,slowmo --sweep period=1,4,16,64 --epochs 5 --eval-every 0.5 ;;
    heterogeneous) study heterogeneous "${mlp[@]}" --workers 2 --algorithms minibatch,local-sgd --period 16 \
        --sweep data-split=iid,label-skew:0.1 --epochs 5 --eval-every 0.5 ;;
    straggler) study straggler "${mlp[@]}" --algorithms minibatch,backup-workers --workers 3 \
        --sweep straggler=none,2:20 --epochs 2 --eval-every 0.25 ;;
    compression) study compression "${mlp[@]}" --workers 2 --algorithms local-sgd --period 4 --sweep compress=none,qsgd:4,dq,sketch \
        --epochs 5 --eval-every 0.5 ;;
    hier) study hier "${mlp[@]}" --algorithms local-sgd,hier-avg --workers 4 --groups 2 --global-period 4 \
        --sweep period=4,16 --epochs 5 --eval-every 0.5 ;;
    overlap) study overlap "${mlp[@]}" --workers 2 --algorithms local-sgd,overlap-local --period 2 --epochs 5 --eval-every 0.5 ;;
    *) echo "study-claims: unknown study $1" >&2; exit 2 ;;
  esac
}
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(fmnist-all debian-all batch period heterogeneous straggler compression hier overlap)
for n in "${names[@]}"; do run "$n"; done
