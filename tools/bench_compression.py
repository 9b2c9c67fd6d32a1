#!/usr/bin/env python3
"""Compressed exchange against exchange whole, in one run (issue #10's acceptance): one JSON object
(--json FILE, and stdout's last line) and a markdown table on stderr.

  python3 tools/bench_compression.py [--build .build/release] [--epochs 10] [--throughput-runs 3]
                                     [--algorithms local-sgd,lap-sgd] [--compressors none,qsgd:4,dq,sketch]
                                     [--json out.json] [--skip-training] [--skip-kernels]

1. Training: Fashion-MNIST mlp:784-256-10, batch 16, 2 workers, 2 replicas, --lr 0.02 (Nesterov),
   seed 1, every algorithm x compressor: test accuracy, bytes exchanged and the ratio to the same
   algorithm exchanging whole, rounds, bytes per round, training seconds, samples/s.
2. Throughput: lap-sgd with and without dq, 2 epochs, --throughput-runs pairs run alternately
   (the machine is shared and noisy), ratio of the median samples/s.
3. Kernels: `lapwing-bench compression` and `lapwing-bench sketch` (their JSON, GB/s of the
   float bytes beside a memcpy of the same bytes, in the same process).
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--build", default=".build/release")
ap.add_argument("--data", default="idx:/usr/share/datasets/fashion-mnist")
ap.add_argument("--model", default="mlp:784-256-10")
ap.add_argument("--epochs", type=float, default=10)
ap.add_argument("--algorithms", default="local-sgd,lap-sgd")
ap.add_argument("--compressors", default="none,qsgd:4,dq,sketch")
ap.add_argument("--throughput-runs", type=int, default=3)
ap.add_argument("--json", default="")
ap.add_argument("--skip-training", action="store_true")
ap.add_argument("--skip-kernels", action="store_true")
args = ap.parse_args()
lapwing = os.path.join(args.build, "lapwing")
bench = os.path.join(args.build, "lapwing-bench")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(algorithm, compressor, epochs):
    out = tempfile.mkdtemp(prefix="lapwing-compress-")
    cmd = [lapwing, "run", "--json", "--output-dir", out, "--data", args.data, "--model", args.model,
           "--algorithm", algorithm, "--workers", "2", "--replicas", "2", "--epochs", str(epochs), "--batch", "16",
           "--lr", "0.02", "--seed", "1", "--compress", compressor]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    s["wallSeconds"] = wall
    return s


report = {"job": {"data": args.data, "model": args.model, "workers": 2, "replicas": 2, "batch": 16, "lr": 0.02,
                  "epochs": args.epochs, "seed": 1}, "training": [], "throughput": None, "kernels": {}}

if not args.skip_training:
    for algorithm in [a for a in args.algorithms.split(",") if a]:
        whole = None
        for compressor in [c for c in args.compressors.split(",") if c]:
            s = run(algorithm, compressor, args.epochs)
            b = s.get("bytesExchanged") or 0
            if compressor == "none":
                whole = s
            row = {
                "algorithm": algorithm, "compress": compressor, "test_accuracy": s["testAccuracy"],
                "bytes_exchanged": b, "rounds": s["averagingRounds"],
                "bytes_per_round": round(b / max(1, s["averagingRounds"])),
                "train_seconds": round(s["trainSeconds"], 2), "wall_seconds": round(s["wallSeconds"], 2),
                "samples_per_second": round(s["samplesPerSecond"]),
            }
            if whole is not None and compressor != "none":
                wb = whole.get("bytesExchanged") or 0
                row["bytes_ratio"] = round(wb / max(1, b), 2)
                row["bytes_per_round_ratio"] = round(
                    (wb / max(1, whole["averagingRounds"])) / max(1, row["bytes_per_round"]), 2)
                row["accuracy_delta_points"] = round(100 * (s["testAccuracy"] - whole["testAccuracy"]), 2)
            report["training"].append(row)
            log(f"{algorithm:10} {compressor:7} acc {100 * s['testAccuracy']:.2f}%  bytes {b / 1e6:10.1f} MB"
                f"  x{row.get('bytes_ratio', 1):6}  rounds {row['rounds']:6}  {row['train_seconds']:6} s")

    if args.throughput_runs > 0:
        rates = {"none": [], "dq": []}
        for _ in range(args.throughput_runs):
            for c in ("none", "dq"):
                rates[c].append(run("lap-sgd", c, 2)["samplesPerSecond"])
        ratio = statistics.median(rates["dq"]) / statistics.median(rates["none"])
        report["throughput"] = {"algorithm": "lap-sgd", "epochs": 2, "runs": args.throughput_runs,
                                "samples_per_second": {k: [round(v) for v in vs] for k, vs in rates.items()},
                                "dq_over_none_median": round(ratio, 3)}
        log(f"lap-sgd samples/s, dq over none (median of {args.throughput_runs} alternating pairs): {ratio:.3f}")

if not args.skip_kernels:
    for kind in ("compression", "sketch"):
        r = subprocess.run([bench, kind], capture_output=True, text=True)
        if r.returncode == 0:
            report["kernels"][kind] = json.loads(r.stdout)
        else:
            report["kernels"][kind] = {"error": r.stderr.strip()[-300:]}

if report["training"]:
    log("\n| algorithm | --compress | test accuracy | bytes exchanged | vs none | bytes/round | rounds | train s |")
    log("|---|---|---|---|---|---|---|---|")
    for r in report["training"]:
        log(f"| {r['algorithm']} | {r['compress']} | {100 * r['test_accuracy']:.2f}% | {r['bytes_exchanged'] / 1e6:.1f} MB"
            f" | {('%.1fx' % r['bytes_ratio']) if 'bytes_ratio' in r else '1x'} | {r['bytes_per_round'] / 1e3:.0f} kB"
            f" | {r['rounds']} | {r['train_seconds']} |")

text = json.dumps(report, sort_keys=True)
if args.json:
    with open(args.json, "w") as f:
        f.write(json.dumps(report, indent=1, sort_keys=True) + "\n")
print(text)
