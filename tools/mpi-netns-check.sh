#!/usr/bin/env bash
# Two "machines" on this box: two network namespaces joined by a veth pair, Open MPI over TCP
# between them (issue #15). Runs one job across both (lapwing run --mpi under mpirun, rank 0 in
# the first namespace, rank 1 in the second, started through an "rsh agent" that enters the
# namespace), then a second job whose rank-1 side is killed mid-training (every process in its
# namespace, as if the machine died): the other side must end with the reason and its model
# written; then a third job with a short --mpi-timeout whose link is cut mid-training (both ends
# of the veth pair set down: TCP stalls, no process dies): both sides must end on their own soon
# after the timeout, each failed with the timeout's reason and its model written.
# Prints one JSON object; exits 0 when every check holds. Needs root, iproute2 and
# Open MPI (tools/install-deps.sh). Touches only its own namespaces, veth pair and addresses
# (10.251.N.1-2/24), removed on exit whatever happens.
#
#   tools/mpi-netns-check.sh [path/to/lapwing]      (default: .build/release/lapwing)
set -euo pipefail
cd "$(dirname "$0")/.."
lapwing=$(realpath "${1:-.build/release/lapwing}")
data=idx:/usr/share/datasets/fashion-mnist
tag=lwn$$
nsa=${tag}a nsb=${tag}b
net=10.251.$(( $$ % 250 ))
ipa=$net.1 ipb=$net.2
work=$(mktemp -d /tmp/lapwing-netns.XXXXXX)

. tools/netns-pair.sh
cleanup() {
  netns_pair_down
  rm -f /dev/shm/lapwing."$tag"-*
  rm -rf "$work"
}
trap cleanup EXIT
for c in ip mpirun unshare; do command -v $c >/dev/null || { echo "mpi-netns-check: $c is not installed (tools/install-deps.sh)" >&2; exit 2; }; done

netns_pair_up

# mpirun's "ssh": runs the daemon's command line in the namespace that owns the address, with a
# host name of its own (Open MPI tells nodes apart by name).
cat > "$work/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in $ipa) ns=$nsa;; $ipb) ns=$nsb;; *) echo "agent: unknown host \$host" >&2; exit 255;; esac
exec ip netns exec \$ns unshare --uts sh -c "hostname \$ns; \$*"
AGENT
chmod +x "$work/agent"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# mpirun in the first namespace; rank 0 there, rank 1 in the second (TCP only: no shared memory).
launch() { # id epochs [more lapwing run options]   (ALGORITHM=NAME: another than lap-sgd)
  ip netns exec "$nsa" unshare --uts sh -c "hostname $nsa; exec mpirun -n 2 --host $ipa:1,$ipb:1 \
    --mca plm_rsh_agent $work/agent --mca btl tcp,self --mca btl_tcp_if_include $net.0/24 \
    --mca oob_tcp_if_include $net.0/24 $lapwing run --mpi --json --job-id $1 --output-dir $work/$1 \
    --data $data --model mlp:784-256-10 --algorithm ${ALGORITHM:-lap-sgd} --workers 1 --epochs $2 --eval-every 0.25 ${3:-}"
}

# Waits (at most 60 s) until rank 0 of job $1 has evaluated twice.
await_evals() {
  local metrics=$work/$1/metrics.jsonl
  for _ in $(seq 600); do
    [ -f "$metrics" ] && [ "$(wc -l < "$metrics")" -ge 2 ] && return 0
    sleep 0.1
  done
}

# Whether a Lapwing process (lapwing, lw-host, lw-bridge, lw-worker...; not a zombie) runs in
# namespace $1.
lapwing_runs_in() {
  local p s
  for p in $(ip netns pids "$1" 2>/dev/null); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    case $s in *"(lapwing) "[!Z]* | *"(lw-"*") "[!Z]*) return 0 ;; esac
  done
  return 1
}

since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$1" "$(date +%s.%N)"; }

# 1. The job across the two namespaces.
t0=$(date +%s.%N)
launch "$tag-ok" 1 > "$work/ok.out" 2> "$work/ok.err" || { cat "$work/ok.err" >&2; echo "mpi-netns-check: the job failed" >&2; exit 1; }
t1=$(date +%s.%N)
ok=$(tail -1 "$work/ok.out")

# 1b. local-sgd across the two namespaces: the lockstep machine level over TCP.
ALGORITHM=local-sgd launch "$tag-lock" 1 > "$work/lock.out" 2> "$work/lock.err" || { cat "$work/lock.err" >&2; echo "mpi-netns-check: the local-sgd job failed" >&2; exit 1; }
lock=$(tail -1 "$work/lock.out")

# 1c. The same job without mpirun: each namespace starts its own rank, and the two meet through a
# rendezvous file (the namespaces share the file system): rank 0's ompi-server, singletons, TCP.
rank_alone() { # namespace rank
  ip netns exec "$1" unshare --uts sh -c "hostname $1; exec env OMPI_MCA_btl=tcp,self \
    OMPI_MCA_btl_tcp_if_include=$net.0/24 OMPI_MCA_oob_tcp_if_include=$net.0/24 $lapwing run --mpi --json \
    --mpi-rendezvous $work/rendezvous --mpi-rank $2 --mpi-ranks 2 --job-id $tag-rv --output-dir $work/$tag-rv \
    --data $data --model mlp:784-256-10 --algorithm local-sgd --workers 1 --epochs 1 --eval-every 0.25"
}
rank_alone "$nsb" 1 > "$work/rv1.out" 2> "$work/rv1.err" &
rv1_pid=$!
rank_alone "$nsa" 0 > "$work/rv.out" 2> "$work/rv.err" || { cat "$work/rv.err" >&2; echo "mpi-netns-check: the job without mpirun failed" >&2; exit 1; }
wait "$rv1_pid" || { cat "$work/rv1.err" >&2; echo "mpi-netns-check: rank 1 without mpirun failed" >&2; exit 1; }
rv=$(tail -1 "$work/rv.out")
[ -e "$work/rendezvous" ] && rv_left=1 || rv_left=0

# 2. The same job, its second "machine" killed once rank 0 has evaluated twice.
launch "$tag-kill" 6 > "$work/kill.out" 2> "$work/kill.err" &
mpirun_pid=$!
await_evals "$tag-kill"
killed=$(ip netns pids "$nsb" | wc -l)
kill -9 $(ip netns pids "$nsb")
wait "$mpirun_pid" && mpirun_status=0 || mpirun_status=$?
summary=$work/$tag-kill/summary.json
for _ in $(seq 600); do [ -f "$summary" ] && break; sleep 0.1; done

# 3. The same job with a short --mpi-timeout, its link cut (both ends down) once rank 0 has
# evaluated twice: every process lives on, TCP stalls. Each side's time to end after the cut: no
# Lapwing process left in its namespace (mpirun and the remote daemon may still wait for each
# other: they are not Lapwing's, and are removed on exit).
cut_timeout=8
launch "$tag-cut" 6 "--mpi-timeout $cut_timeout" > "$work/cut.out" 2> "$work/cut.err" &
cut_pid=$!
await_evals "$tag-cut"
ip -n "$nsa" link set "${tag}x" down
ip -n "$nsb" link set "${tag}y" down
cut=$(date +%s.%N)
ended_a="" ended_b=""
for _ in $(seq $(( (cut_timeout + 60) * 10 ))); do
  [ -z "$ended_a" ] && ! lapwing_runs_in "$nsa" && ended_a=$(since "$cut")
  [ -z "$ended_b" ] && ! lapwing_runs_in "$nsb" && ended_b=$(since "$cut")
  [ -n "$ended_a" ] && [ -n "$ended_b" ] && break
  sleep 0.1
done
kill -0 "$cut_pid" 2>/dev/null && cut_mpirun="still waiting" || cut_mpirun="ended"

python3 - "$ok" "$summary" "$work/$tag-kill/model.safetensors" "$killed" "$mpirun_status" "$t0" "$t1" \
  "$cut_timeout" "$work/$tag-cut" "$ended_a" "$ended_b" "$cut_mpirun" "$lock" "$rv" "$rv_left" <<'PY'
import json, os, sys
ok = json.loads(sys.argv[1])
lock = json.loads(sys.argv[13])
rv, rv_left = json.loads(sys.argv[14]), sys.argv[15] == "1"
path, model, killed, status = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
kill = json.load(open(path)) if os.path.exists(path) else None
cut_timeout, cut_dir, cut_mpirun = float(sys.argv[8]), sys.argv[9], sys.argv[12]
# Each side ends within the timeout (its wait began at most a round before the cut) and a margin
# for its host to stop its workers and write its model on a loaded box.
margin = 30
def side(rank, ended):
    d = cut_dir if rank == 0 else f"{cut_dir}/rank-{rank}"
    s = json.load(open(f"{d}/summary.json")) if os.path.exists(f"{d}/summary.json") else None
    return {"endedSecondsAfterCut": float(ended) if ended else None, "outcome": s and s["outcome"], "reason": s and s.get("reason"),
            "epochs": s and s["epochs"], "machineRounds": s and s.get("machineRounds"), "modelWritten": os.path.exists(f"{d}/model.safetensors")}
cut = [side(0, sys.argv[10]), side(1, sys.argv[11])]
checks = {
    "job across namespaces completed": ok["outcome"] == "completed" and ok["machines"] == 2,
    "bytes per round = model size": ok["machineBytesPerRound"] == 203530 * 4 and ok["machineBytes"] == ok["machineRounds"] * 203530 * 4,
    "local-sgd across namespaces completed, a machine round per average and the last": lock["outcome"] == "completed"
        and lock["machines"] == 2 and lock["machineRounds"] == lock["averagingRounds"] + 1
        and lock["machineBytes"] == lock["machineRounds"] * 203530 * 4,
    "ranks without mpirun met through the rendezvous file and completed": rv["outcome"] == "completed" and rv["machines"] == 2
        and rv["machineRounds"] == rv["averagingRounds"] + 1 and not rv_left,
    "survivor wrote its summary": kill is not None,
    "survivor failed with the bridge's reason": kill is not None and kill["outcome"] == "failed" and "MPI ended the job's ranks" in (kill.get("reason") or ""),
    "survivor wrote its model": os.path.exists(model),
    "mpirun reported the failure": status != 0,
    "cut: both sides ended on their own, after the timeout and within a margin": all(
        c["endedSecondsAfterCut"] is not None and cut_timeout - 1 <= c["endedSecondsAfterCut"] <= cut_timeout + margin for c in cut),
    "cut: both sides failed with the timeout's reason": all(
        c["outcome"] == "failed" and "--mpi-timeout" in (c["reason"] or "") and "no answer from the other machines" in c["reason"] for c in cut),
    "cut: both sides wrote their models": all(c["modelWritten"] for c in cut),
}
print(json.dumps({
    "job": {k: ok[k] for k in ("outcome", "testAccuracy", "machines", "machineRounds", "machineBytesPerRound", "machineBytes", "machineSeconds", "trainSeconds")},
    "wallSeconds": round(float(sys.argv[7]) - float(sys.argv[6]), 2),
    "lockstep": {k: lock[k] for k in ("algorithm", "outcome", "testAccuracy", "machineRounds", "averagingRounds", "machineBytes", "machineSeconds", "trainSeconds")}
        | {"msPerRound": round(1000 * lock["machineSeconds"] / max(1, lock["machineRounds"]), 2)},
    "withoutLauncher": {k: rv[k] for k in ("algorithm", "outcome", "testAccuracy", "machineRounds", "machineSeconds", "trainSeconds")}
        | {"rendezvousFileLeft": rv_left},
    "kill": {"processesKilled": killed, "mpirunStatus": status, "survivorOutcome": kill and kill["outcome"], "survivorReason": kill and kill.get("reason"),
             "survivorEpochs": kill and kill["epochs"], "survivorAccuracy": kill and kill.get("testAccuracy"), "modelWritten": os.path.exists(model)},
    "cut": {"mpiTimeout": cut_timeout, "boundSeconds": cut_timeout + margin, "mpirun": cut_mpirun, "ranks": cut},
    "checks": checks,
}, indent=2))
sys.exit(0 if all(checks.values()) else 1)
PY
