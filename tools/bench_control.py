#!/usr/bin/env python3
"""Control-plane benchmark: 200 concurrent clients doing `status` and `list` against a user-mode
lapwingd while a 2-worker job trains, beside the same job without that load. One JSON object.

  python3 tools/bench_control.py [--lapwing .build/release/lapwing] [--lapwingd .build/release/lapwingd]
                                 [--clients 200] [--epochs 3]

Speaks protocol v1 (docs/protocol.md) directly: 4-byte big-endian length + JSON, hello first.
Reports p50/p99 request latency and the job's samples/s with and without the load. Each client
sends a request every --interval seconds (jittered), as people watching jobs would; the load
generator runs on the same cores as the job.
"""
import argparse, json, os, random, shutil, socket, struct, subprocess, sys, tempfile, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--lapwing", default=".build/release/lapwing")
ap.add_argument("--lapwingd", default=".build/release/lapwingd")
ap.add_argument("--clients", type=int, default=200)
ap.add_argument("--epochs", default="3")
ap.add_argument("--interval", type=float, default=1.0, help="seconds between one client's requests")
args = ap.parse_args()

tmp = tempfile.mkdtemp(prefix="lapwing-bench-control-")
env = dict(os.environ, XDG_RUNTIME_DIR=tmp + "/run", XDG_STATE_HOME=tmp + "/state")
os.makedirs(env["XDG_RUNTIME_DIR"], mode=0o700)
sock_path = env["XDG_RUNTIME_DIR"] + "/lapwing/control.sock"


def frame(obj):
    b = json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b


def read_frame(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            raise EOFError
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            raise EOFError
        body += chunk
    return json.loads(body)


def connect():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.sendall(frame({"type": "hello", "version": 1, "client": "bench_control"}))
    read_frame(s)
    return s


def run_job(load):
    r = subprocess.run([args.lapwing, "submit", "--json", "--data", "idx:/usr/share/datasets/fashion-mnist",
                        "--model", "mlp:784-256-10", "--algorithm", "lap-sgd", "--workers", "2", "--replicas", "2",
                        "--epochs", args.epochs, "--eval-every", "0"], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"submit failed: {r.stderr}")
    job = json.loads(r.stdout)["id"]
    latencies, errors, stop = [], [0], threading.Event()
    lock = threading.Lock()

    def client(k):
        try:
            s = connect()
        except OSError:
            with lock:
                errors[0] += 1
            return
        i = 0
        while not stop.is_set():
            verb = "status" if i % 2 == 0 else "list"
            req = {"type": "request", "id": i, "verb": verb, "args": {"job": job} if verb == "status" else {}}
            t0 = time.perf_counter()
            s.sendall(frame(req))
            resp = read_frame(s)
            dt = time.perf_counter() - t0
            with lock:
                latencies.append(dt)
                if not resp.get("ok"):
                    errors[0] += 1
            i += 1
            time.sleep(args.interval * (0.5 + random.random()))
        s.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(args.clients)] if load else []
    for t in threads:
        t.start()
    w = subprocess.run([args.lapwing, "watch", job, "--json"], env=env, capture_output=True, text=True)
    stop.set()
    for t in threads:
        t.join()
    summary = json.loads(w.stdout.strip().splitlines()[-1])
    out = {"samples_per_second": summary.get("samplesPerSecond"), "test_accuracy": summary.get("testAccuracy")}
    if load:
        latencies.sort()
        out.update({"clients": args.clients, "interval_s": args.interval, "requests": len(latencies), "errors": errors[0],
                    "p50_ms": round(1000 * latencies[len(latencies) // 2], 3),
                    "p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 3)})
    return out


daemon = subprocess.Popen([args.lapwingd, "--user"], env=env, stderr=subprocess.DEVNULL)
try:
    for _ in range(200):
        if os.path.exists(sock_path):
            break
        time.sleep(0.05)
    quiet = run_job(load=False)
    loaded = run_job(load=True)
    print(json.dumps({"without_load": quiet, "with_load": loaded,
                      "slowdown": round(1 - loaded["samples_per_second"] / quiet["samples_per_second"], 4)},
                     indent=1, sort_keys=True))
finally:
    daemon.terminate()
    daemon.wait(timeout=30)
    shutil.rmtree(tmp, ignore_errors=True)
