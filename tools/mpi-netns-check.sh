#!/usr/bin/env bash
# Two "machines" on this box: two network namespaces joined by a veth pair, Open MPI over TCP
# between them (issue #15). Runs one job across both (lapwing run --mpi under mpirun, rank 0 in
# the first namespace, rank 1 in the second, started through an "rsh agent" that enters the
# namespace), then a second job whose rank-1 side is killed mid-training (every process in its
# namespace, as if the machine died): the other side must end with the reason and its model
# written. Prints one JSON object; exits 0 when every check holds. Needs root, iproute2 and
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

cleanup() {
  for ns in "$nsa" "$nsb"; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  ip link del "${tag}x" 2>/dev/null || true
  rm -f /dev/shm/lapwing."$tag"-*
  rm -rf "$work"
}
trap cleanup EXIT
for c in ip mpirun unshare; do command -v $c >/dev/null || { echo "mpi-netns-check: $c is not installed (tools/install-deps.sh)" >&2; exit 2; }; done

ip netns add "$nsa"
ip netns add "$nsb"
ip link add "${tag}x" type veth peer name "${tag}y"
ip link set "${tag}x" netns "$nsa"
ip link set "${tag}y" netns "$nsb"
ip -n "$nsa" addr add "$ipa/24" dev "${tag}x"
ip -n "$nsb" addr add "$ipb/24" dev "${tag}y"
for ns in "$nsa" "$nsb"; do ip -n "$ns" link set lo up; done
ip -n "$nsa" link set "${tag}x" up
ip -n "$nsb" link set "${tag}y" up

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
launch() { # id epochs
  ip netns exec "$nsa" unshare --uts sh -c "hostname $nsa; exec mpirun -n 2 --host $ipa:1,$ipb:1 \
    --mca plm_rsh_agent $work/agent --mca btl tcp,self --mca btl_tcp_if_include $net.0/24 \
    --mca oob_tcp_if_include $net.0/24 $lapwing run --mpi --json --job-id $1 --output-dir $work/$1 \
    --data $data --model mlp:784-256-10 --algorithm lap-sgd --workers 1 --epochs $2 --eval-every 0.25"
}

# 1. The job across the two namespaces.
t0=$(date +%s.%N)
launch "$tag-ok" 1 > "$work/ok.out" 2> "$work/ok.err" || { cat "$work/ok.err" >&2; echo "mpi-netns-check: the job failed" >&2; exit 1; }
t1=$(date +%s.%N)
ok=$(tail -1 "$work/ok.out")

# 2. The same job, its second "machine" killed once rank 0 has evaluated twice.
launch "$tag-kill" 6 > "$work/kill.out" 2> "$work/kill.err" &
mpirun_pid=$!
metrics=$work/$tag-kill/metrics.jsonl
for _ in $(seq 600); do
  [ -f "$metrics" ] && [ "$(wc -l < "$metrics")" -ge 2 ] && break
  sleep 0.1
done
killed=$(ip netns pids "$nsb" | wc -l)
kill -9 $(ip netns pids "$nsb")
wait "$mpirun_pid" && mpirun_status=0 || mpirun_status=$?
summary=$work/$tag-kill/summary.json
for _ in $(seq 600); do [ -f "$summary" ] && break; sleep 0.1; done

python3 - "$ok" "$summary" "$work/$tag-kill/model.safetensors" "$killed" "$mpirun_status" "$t0" "$t1" <<'PY'
import json, os, sys
ok = json.loads(sys.argv[1])
path, model, killed, status = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
kill = json.load(open(path)) if os.path.exists(path) else None
checks = {
    "job across namespaces completed": ok["outcome"] == "completed" and ok["machines"] == 2,
    "bytes per round = model size": ok["machineBytesPerRound"] == 203530 * 4 and ok["machineBytes"] == ok["machineRounds"] * 203530 * 4,
    "survivor wrote its summary": kill is not None,
    "survivor failed with the bridge's reason": kill is not None and kill["outcome"] == "failed" and "MPI ended the job's ranks" in (kill.get("reason") or ""),
    "survivor wrote its model": os.path.exists(model),
    "mpirun reported the failure": status != 0,
}
print(json.dumps({
    "job": {k: ok[k] for k in ("outcome", "testAccuracy", "machines", "machineRounds", "machineBytesPerRound", "machineBytes", "machineSeconds", "trainSeconds")},
    "wallSeconds": round(float(sys.argv[7]) - float(sys.argv[6]), 2),
    "kill": {"processesKilled": killed, "mpirunStatus": status, "survivorOutcome": kill and kill["outcome"], "survivorReason": kill and kill.get("reason"),
             "survivorEpochs": kill and kill["epochs"], "survivorAccuracy": kill and kill.get("testAccuracy"), "modelWritten": os.path.exists(model)},
    "checks": checks,
}, indent=2))
sys.exit(0 if all(checks.values()) else 1)
PY
