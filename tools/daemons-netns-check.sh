#!/usr/bin/env bash
# Two "machines" on this box, each with its own daemon (issue #15, the daemons' path): two network
# namespaces joined by a veth pair, a user-mode lapwingd in each (its own XDG_RUNTIME_DIR and
# XDG_STATE_HOME: the namespaces share the file system; Open MPI's TCP settings in its
# environment, which its job hosts inherit). From the root namespace, `lapwing submit --hosts A,B`
# queues rank 0 on A's daemon and rank 1 on B's through an "rsh agent" (LAPWING_RSH) that runs
# `lapwing` in the host's namespace; the two ranks meet at rank 0's ompi-server and train
# local-sgd across the link. Checks: both ranks succeeded; rank 0's summary counts two machines,
# a machine round per average and the last, the model's bytes per round; its accuracy; each
# daemon's job wrote its model; no ompi-server nor job process is left in either namespace.
# Then B's daemon is told AcrossMachines = no (its configuration file, SIGHUP): a second submit
# fails with B's reason, and its rank 0, already started on A, is cancelled there and leaves
# nothing running; then A's too: a third submit is refused at rank 0, B's daemon never asked.
# Prints one JSON object; exits 0 when every check holds. Needs root, iproute2 and Open MPI
# (tools/install-deps.sh). Touches only its own namespaces, veth pair, addresses
# (10.253.N.1-2/24), daemons and folder, removed on exit whatever happens.
#
#   tools/daemons-netns-check.sh [path/to/lapwing [path/to/lapwingd]]
#       (default: .build/release/lapwing, and the lapwingd beside it)
set -euo pipefail
cd "$(dirname "$0")/.."
lapwing=$(realpath "${1:-.build/release/lapwing}")
lapwingd=$(realpath "${2:-$(dirname "$lapwing")/lapwingd}")
bin=$(dirname "$lapwing")
data=idx:/usr/share/datasets/fashion-mnist
tag=lwd$$
nsa=${tag}a nsb=${tag}b
net=10.253.$(( $$ % 250 ))
ipa=$net.1 ipb=$net.2
work=$(mktemp -d /tmp/lapwing-daemons.XXXXXX)
chmod 755 "$work"
# The model's float32 values: what one machine round puts on the wire (mlp:784-256-10).
model_bytes=$(( 203530 * 4 ))
bound=180
# Every wait is bounded: the daemons' start (30 s each), the job ($bound s, the submit's wait for
# rank 0's ompi-server within it: --mpi-timeout 60), the processes' end and each SIGHUP (30 s),
# the refused submits (60 s each): the whole at most about 430 s.

# Stops both daemons (SIGTERM: their running jobs are interrupted cleanly), waits a while for
# them to go, then kills whatever is left in the namespaces and removes them.
. tools/netns-pair.sh
cleanup() {
  for p in ${daemon_a:-} ${daemon_b:-}; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 200); do
    { [ -n "${daemon_a:-}" ] && kill -0 "$daemon_a" 2>/dev/null; } || { [ -n "${daemon_b:-}" ] && kill -0 "$daemon_b" 2>/dev/null; } || break
    sleep 0.1
  done
  netns_pair_down
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM
for c in ip ompi-server unshare python3; do
  command -v $c >/dev/null || { echo "daemons-netns-check: $c is not installed (tools/install-deps.sh)" >&2; exit 2; }
done
for b in "$lapwing" "$lapwingd"; do [ -x "$b" ] || { echo "daemons-netns-check: $b: no such program (swift build -c release)" >&2; exit 2; }; done

netns_pair_up

# Each machine's daemon folders: its runtime directory (the control socket), its state, its
# configuration file and its log.
for m in a b; do
  mkdir -m 700 -p "$work/$m/run" "$work/$m/state"
  printf '[Scheduling]\nAcrossMachines = yes\n' > "$work/$m/lapwingd.conf"
done

# LAPWING_RSH: `agent HOST word...` runs the words (each shell-quoted by the CLI, as ssh needs)
# in the namespace that owns HOST's address, as that machine's user would: its daemon's folders,
# this build's lapwing first on PATH, no LAPWING_SOCKET from the caller.
cat > "$work/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case \$host in
  $ipa) ns=$nsa m=$work/a;;
  $ipb) ns=$nsb m=$work/b;;
  *) echo "agent: unknown host \$host" >&2; exit 255;;
esac
exec ip netns exec \$ns env -u LAPWING_SOCKET XDG_RUNTIME_DIR=\$m/run XDG_STATE_HOME=\$m/state PATH=$bin:\$PATH sh -c "\$*"
AGENT
chmod +x "$work/agent"
agent() { "$work/agent" "$@"; }

# A machine's daemon, in its namespace with a host name of its own (Open MPI tells nodes apart
# by name), TCP on the pair's network only. Prints its pid.
start_daemon() { # namespace folder
  ip netns exec "$1" unshare --uts sh -c "hostname $1; exec env -u LAPWING_SOCKET XDG_RUNTIME_DIR=$2/run \
    XDG_STATE_HOME=$2/state OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl=tcp,self \
    OMPI_MCA_btl_tcp_if_include=$net.0/24 OMPI_MCA_oob_tcp_if_include=$net.0/24 \
    $lapwingd --user --config $2/lapwingd.conf" >> "$2/lapwingd.log" 2>&1 < /dev/null &
  echo $!
}
daemon_a=$(start_daemon "$nsa" "$work/a")
daemon_b=$(start_daemon "$nsb" "$work/b")
# Waits (at most 30 s) until the daemon behind host $1 (pid $2) answers.
await_daemon() {
  for _ in $(seq 300); do
    agent "$1" lapwing version 2>/dev/null | grep -q '^lapwingd [0-9]' && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.1
  done
  echo "daemons-netns-check: the daemon of $1 did not answer within 30 s, or ended:" >&2
  cat "$work"/*/lapwingd.log >&2
  exit 1
}
await_daemon "$ipa" "$daemon_a"
await_daemon "$ipb" "$daemon_b"

now() { date +%s.%N; }
since() { python3 -c "import sys; print(round(float(sys.argv[2]) - float(sys.argv[1]), 2))" "$1" "$(now)"; }

# Whether a process named $2 (its /proc comm, e.g. "ompi-server"; not a zombie) runs in
# namespace $1. Without $2: any Lapwing job process (lapwing, lw-host, lw-bridge, lw-worker...;
# not the daemon).
runs_in() {
  local p s
  for p in $(ip netns pids "$1" 2>/dev/null); do
    s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
    if [ -n "${2:-}" ]; then
      case $s in *"($2) "[!Z]*) return 0 ;; esac
    else
      case $s in *"(lapwing) "[!Z]* | *"(lw-"*") "[!Z]*) return 0 ;; esac
    fi
  done
  return 1
}

# 1. The job across the two machines, through their daemons.
t0=$(now)
LAPWING_RSH=$work/agent "$lapwing" submit --hosts "$ipa,$ipb" --json --data "$data" --model mlp:784-256-10 \
  --algorithm local-sgd --workers 1 --epochs 1 --batch 16 --mpi-timeout 60 > "$work/submit.out" 2> "$work/submit.err" \
  || { cat "$work/submit.err" "$work"/*/lapwingd.log >&2; echo "daemons-netns-check: lapwing submit --hosts failed" >&2; exit 1; }
submitted=$(since "$t0")
read -r job_a job_b < <(python3 - "$work/submit.out" "$ipa" "$ipb" <<'PY'
import json, sys
ranks = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["ranks"]
assert [r["host"] for r in ranks] == sys.argv[2:4], ranks
print(ranks[0]["job"], ranks[1]["job"])
PY
) || { cat "$work/submit.out" >&2; echo "daemons-netns-check: submit --hosts --json printed no ranks of hosts $ipa, $ipb" >&2; exit 1; }

# Each rank's record, through the agent, until both are finished (at most $bound s).
finished() { python3 -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))['state'] in ('succeeded', 'failed', 'cancelled', 'interrupted') else 1)" "$1" 2>/dev/null; }
done_a="" done_b=""
while :; do
  [ -z "$done_a" ] && agent "$ipa" lapwing status "$job_a" --json > "$work/a.json" 2>> "$work/status.err" && finished "$work/a.json" && done_a=$(since "$t0")
  [ -z "$done_b" ] && agent "$ipb" lapwing status "$job_b" --json > "$work/b.json" 2>> "$work/status.err" && finished "$work/b.json" && done_b=$(since "$t0")
  [ -n "$done_a" ] && [ -n "$done_b" ] && break
  python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > $bound else 1)" "$(since "$t0")" && break
  sleep 0.5
done

# After the job: no ompi-server (rank 0's host stops it) nor job process left in either
# namespace; waited for (at most 30 s) from the moment both records are finished.
t1=$(now)
left=""
for _ in $(seq 300); do
  left=""
  runs_in "$nsa" ompi-server && left="$left ompi-server@A"
  runs_in "$nsb" ompi-server && left="$left ompi-server@B"
  runs_in "$nsa" && left="$left job@A"
  runs_in "$nsb" && left="$left job@B"
  [ -z "$left" ] && break
  sleep 0.1
done
gone=$(since "$t1")

# Tells machine $1's daemon (a or b) to take no jobs across machines: its configuration file,
# SIGHUP; waits (at most 30 s) until its log says it read the file again.
refuse_across() { # a|b pid
  local before
  before=$(grep -c "SIGHUP: configuration read again" "$work/$1/lapwingd.log" || true)
  printf '[Scheduling]\nAcrossMachines = no\n' > "$work/$1/lapwingd.conf"
  kill -HUP "$2"
  for _ in $(seq 300); do
    [ "$(grep -c "SIGHUP: configuration read again" "$work/$1/lapwingd.log" || true)" -gt "$before" ] && return 0
    sleep 0.1
  done
}
submit_again() { # name
  LAPWING_RSH=$work/agent "$lapwing" submit --hosts "$ipa,$ipb" --json --data "$data" --model mlp:784-256-10 \
    --algorithm local-sgd --workers 1 --epochs 1 --batch 16 --mpi-timeout 60 > "$work/$1.out" 2> "$work/$1.err" && echo 0 || echo $?
}

# 2. B's daemon takes no jobs across machines: rank 0, queued on A (and started there, its
# ompi-server published), is cancelled when B refuses rank 1; the submit fails with B's reason.
refuse_across b "$daemon_b"
refused_b_status=$(submit_again refused-b)
# A's second job ends (at most 30 s) and leaves nothing running.
for _ in $(seq 300); do
  agent "$ipa" lapwing list --json > "$work/list-a.json"
  python3 -c "import json, sys; j = json.load(open(sys.argv[1])); sys.exit(0 if len(j) == 2 and j[-1]['state'] in ('succeeded', 'failed', 'cancelled', 'interrupted') else 1)" "$work/list-a.json" \
    && ! runs_in "$nsa" ompi-server && ! runs_in "$nsa" && break
  sleep 0.1
done
left_b=""
runs_in "$nsa" ompi-server && left_b="$left_b ompi-server@A"
runs_in "$nsa" && left_b="$left_b job@A"
agent "$ipb" lapwing list --json > "$work/list-b.json"

# 3. A's daemon too: rank 0 is refused, B's daemon is never asked.
refuse_across a "$daemon_a"
refused_a_status=$(submit_again refused-a)
agent "$ipa" lapwing list --json > "$work/list-a3.json"
agent "$ipb" lapwing list --json > "$work/list-b3.json"

python3 - "$work" "$model_bytes" "$bound" "$submitted" "${done_a:-}" "${done_b:-}" "$gone" "$left" "$refused_b_status" "$left_b" "$refused_a_status" "$ipa" "$ipb" <<'PY'
import json, os, sys
work, model_bytes, bound, submitted = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
done_a, done_b, gone, left = sys.argv[5], sys.argv[6], float(sys.argv[7]), sys.argv[8].split()
refused_b_status, left_b, refused_a_status = int(sys.argv[9]), sys.argv[10].split(), int(sys.argv[11])
ipa, ipb = sys.argv[12], sys.argv[13]
def load(name):
    try: return json.load(open(f"{work}/{name}"))
    except (OSError, ValueError): return None
a, b = load("a.json"), load("b.json")
sa, sb = (a or {}).get("summary") or {}, (b or {}).get("summary") or {}
meeting = (a or {}).get("machineMeeting") or {}
b_meeting = (((b or {}).get("spec") or {}).get("machine") or {}).get("meeting") or {}
refused_b_err, refused_a_err = open(f"{work}/refused-b.err").read(), open(f"{work}/refused-a.err").read()
list_a, list_b = load("list-a.json") or [], load("list-b.json") or []
list_a3, list_b3 = load("list-a3.json") or [], load("list-b3.json") or []
cancelled = list_a[-1] if len(list_a) == 2 else {}
def model_written(s):
    return bool(s.get("modelPath")) and os.path.isfile(s["modelPath"]) and os.path.getsize(s["modelPath"]) > 0
checks = {
    "both ranks finished within the bound": bool(done_a) and bool(done_b),
    "both ranks succeeded": (a or {}).get("state") == "succeeded" and (b or {}).get("state") == "succeeded"
        and sa.get("outcome") == "completed" and sb.get("outcome") == "completed",
    "rank 1 met rank 0 at its ompi-server": bool(meeting.get("server")) and b_meeting.get("server") == meeting.get("server")
        and b_meeting.get("name") == meeting.get("name"),
    "ranks 0 and 1 of two machines": sa.get("machines") == 2 and sa.get("machineRank") == 0
        and sb.get("machines") == 2 and sb.get("machineRank") == 1,
    "a machine round per average and the last": sa.get("machineRounds") is not None
        and sa.get("machineRounds") == sa.get("averagingRounds", -2) + 1 and sb.get("machineRounds") == sa.get("machineRounds"),
    "bytes per round = model size": sa.get("machineBytesPerRound") == model_bytes
        and sa.get("machineBytes") == (sa.get("machineRounds") or -1) * model_bytes,
    "accuracy at least 0.82": (sa.get("testAccuracy") or 0) >= 0.82,
    "each daemon's job wrote its model": model_written(sa) and model_written(sb),
    "no ompi-server nor job process left": not left,
    "B refused rank 1, with its reason": refused_b_status == 4 and "AcrossMachines = no" in refused_b_err
        and ipb in refused_b_err,
    "B refused: rank 0 on A cancelled, nothing left running": cancelled.get("state") == "cancelled" and not left_b
        and len(list_b) == 1,
    "A refused rank 0, with its reason; B never asked": refused_a_status == 4 and "AcrossMachines = no" in refused_a_err
        and ipa in refused_a_err and len(list_a3) == 2 and len(list_b3) == 1,
}
print(json.dumps({
    "seconds": {"submit": submitted, "rank0Finished": float(done_a) if done_a else None,
                "rank1Finished": float(done_b) if done_b else None, "bound": bound, "processesGone": gone},
    "ranks": [{"host": h, "job": r and r.get("id"), "state": r and r.get("state"), "reason": r and r.get("reason")}
              | {k: s.get(k) for k in ("outcome", "testAccuracy", "machines", "machineRank", "machineRounds", "averagingRounds",
                                       "machineBytes", "machineBytesPerRound", "machineSeconds", "trainSeconds", "modelPath")}
              for h, r, s in (("A", a, sa), ("B", b, sb))],
    "meeting": meeting,
    "left": left,
    "refusedByB": {"status": refused_b_status, "stderr": refused_b_err.strip()[-600:],
                   "rank0OnA": {k: cancelled.get(k) for k in ("id", "state", "reason")}, "left": left_b, "jobsOnB": len(list_b)},
    "refusedByA": {"status": refused_a_status, "stderr": refused_a_err.strip()[-600:], "jobsOnA": len(list_a3), "jobsOnB": len(list_b3)},
    "checks": checks,
}, indent=2))
if not all(checks.values()):
    for m in ("a", "b"):
        sys.stderr.write(f"--- daemon {m.upper()}'s log:\n" + open(f"{work}/{m}/lapwingd.log").read()[-4000:])
sys.exit(0 if all(checks.values()) else 1)
PY
