#!/usr/bin/env python3
"""Control-plane benchmark: 200 concurrent clients doing `status` and `list` against a user-mode
lapwingd while a 2-worker job trains, beside the same job without that load. One JSON object.

  python3 tools/bench_control.py [--lapwing .build/release/lapwing] [--lapwingd .build/release/lapwingd]
                                 [--clients 200] [--epochs 8] [--rounds 2]

The clients are `lapwing-bench control-load`: one process, one thread and one epoll set holding
--clients connections to the daemon, each sending `status` and `list` in turn every --interval
seconds (jittered 0.5-1.5x), as people watching jobs would, and waiting for each reply. It runs
on the same cores as the job and reports its own CPU time beside the daemon's. Quiet and loaded
runs alternate (--rounds pairs); the slowdown compares their median samples/s.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--lapwing", default=".build/release/lapwing")
ap.add_argument("--lapwingd", default=".build/release/lapwingd")
ap.add_argument("--bench", default=".build/release/lapwing-bench", help="runs the clients (control-load)")
ap.add_argument("--clients", type=int, default=200)
ap.add_argument("--epochs", default="8")
ap.add_argument("--rounds", type=int, default=2, help="quiet/loaded pairs to run")
ap.add_argument("--interval", type=float, default=1.0, help="seconds between one client's requests")
args = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="lapwing-bench-control-")
env = dict(os.environ, XDG_RUNTIME_DIR=tmp + "/run", XDG_STATE_HOME=tmp + "/state")
os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
sock_path = env["XDG_RUNTIME_DIR"] + "/lapwing/control.sock"


def cpu(pid):
    """CPU seconds (user + system) process `pid` has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_job(load):
    r = subprocess.run([args.lapwing, "submit", "--json", "--data", "idx:/usr/share/datasets/fashion-mnist",
                        "--model", "mlp:784-256-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
                        "--epochs", args.epochs, "--eval-every", "0"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"submit failed: {r.stderr}")
    job = json.loads(r.stdout)["id"]
    d0 = cpu(daemon.pid)
    gen = subprocess.Popen([args.bench, "control-load", "--socket", sock_path, "--job", job, "--clients", str(args.clients),
                            "--interval", str(args.interval)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           text=True) if load else None
    w = subprocess.run([args.lapwing, "watch", job, "--json"], env=env, capture_output=True, text=True)
    d1 = cpu(daemon.pid)
    generated = {}
    if gen:
        out, _ = gen.communicate("")  # closing its stdin ends the load
        if gen.returncode != 0:
            sys.exit(f"control-load failed (exit {gen.returncode})")
        generated = json.loads(out)
    summary = json.loads(w.stdout.strip().splitlines()[-1])
    out = {"samples_per_second": summary.get("samplesPerSecond"), "test_accuracy": summary.get("testAccuracy"),
           "train_seconds": summary.get("trainSeconds"),
           # CPU seconds the daemon used meanwhile (the load generator reports its own).
           "daemon_cpu_s": round(d1 - d0, 3)}
    if gen:
        out.update({"clients": generated["clients"], "connected": generated["connected"],
                    "interval_s": generated["interval_s"], "requests": generated["requests"],
                    "errors": generated["errors"], "p50_ms": generated["p50_ms"], "p99_ms": generated["p99_ms"],
                    "max_ms": generated["max_ms"], "load_generator_cpu_s": round(generated["cpu_s"], 3)})
    return out


daemon = subprocess.Popen([args.lapwingd, "--user"], env=env, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        if os.path.exists(sock_path):
            break
        time.sleep(0.05)
    # Alternate quiet and loaded runs, so that drift in a shared machine's speed hits both alike.
    quiet, loaded = [], []
    for _ in range(args.rounds):
        quiet.append(run_job(load=False))
        loaded.append(run_job(load=True))
    rate = lambda runs: statistics.median(r["samples_per_second"] for r in runs)
    print(json.dumps({"without_load": quiet, "with_load": loaded,
                      "pair_slowdowns": [round(1 - l["samples_per_second"] / q["samples_per_second"], 4)
                                         for q, l in zip(quiet, loaded)],
                      "slowdown": round(1 - rate(loaded) / rate(quiet), 4)},
                     indent=1, sort_keys=True))
finally:
    daemon.terminate()
    daemon.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
