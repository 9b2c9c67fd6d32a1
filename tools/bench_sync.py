#!/usr/bin/env python3
"""Synchronous algorithms' throughput and barrier cost, in one run, as one JSON object (issue #9).

  python3 tools/bench_sync.py [--lapwing .build/release/lapwing] [--epochs 1] [--repeat 2]

mlp:784-256-10 on Fashion-MNIST, batch 16, 2 workers (3 with one backup for backup-workers),
hogwild beside minibatch (and backup-workers), each run `--repeat` times interleaved, best kept:
  samples_per_second       samples / train seconds (the summary's samplesPerSecond)
  step_us                  train seconds / steps (steps: the summary's averagingRounds for the
                           synchronous ones; samples / (workers * batch) for hogwild)
  barrier_us_per_step      minibatch: seconds worker 0 waited at its two barriers a step
                           (averagingSeconds / averagingRounds): the barrier's cost, load imbalance included
  update_us_per_round      backup-workers: seconds the completing worker spent on the update a round
  minibatch_vs_hogwild     the ratio of samples/s (target >= 0.70)
"""
import argparse, json, os, shutil, subprocess, sys, tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--lapwing", default=".build/release/lapwing")
ap.add_argument("--epochs", type=float, default=1)
ap.add_argument("--repeat", type=int, default=2)
ap.add_argument("--batch", type=int, default=16)
args = ap.parse_args()


def lapwing(*a):
    out = tempfile.mkdtemp(prefix="lapwing-bench-sync-")
    r = subprocess.run([args.lapwing, "run", "--json", "--output-dir", out, *a], capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0:
        sys.exit(f"lapwing run {' '.join(a)} failed: {r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


common = ["--data", "idx:/usr/share/datasets/fashion-mnist", "--model", "mlp:784-256-10", "--batch", str(args.batch),
          "--epochs", str(args.epochs), "--lr", "0.02", "--nesterov", "--eval-every", "0"]
cases = {
    "hogwild": ["--algorithm", "hogwild", "--workers", "2"],
    "minibatch": ["--algorithm", "minibatch", "--workers", "2"],
    "backup_workers": ["--algorithm", "backup-workers", "--workers", "3", "--backups", "1"],
}
runs = {k: [] for k in cases}
for _ in range(args.repeat):
    for name, a in cases.items():
        runs[name].append(lapwing(*common, *a))

report = {"machine": {"cpus": os.cpu_count(), "loadavg": os.getloadavg()}, "batch": args.batch, "epochs": args.epochs}
for name, rs in runs.items():
    s = max(rs, key=lambda s: s["samplesPerSecond"])
    steps = s["averagingRounds"] if name != "hogwild" else s["samples"] / (s["workers"] * s["batch"])
    case = {"samples_per_second": round(s["samplesPerSecond"], 1),
            "all_samples_per_second": [round(x["samplesPerSecond"], 1) for x in rs],
            "train_seconds": round(s["trainSeconds"], 3), "steps": steps,
            "step_us": round(1e6 * s["trainSeconds"] / max(1, steps), 1), "test_accuracy": s["testAccuracy"],
            "bytes_per_sample": round(s["bytesExchanged"] / max(1, s["samples"]), 1), "workers": s["workers"]}
    if name == "minibatch":
        case["barrier_us_per_step"] = round(1e6 * s["averagingSeconds"] / max(1, s["averagingRounds"]), 1)
    if name == "backup_workers":
        case["update_us_per_round"] = round(1e6 * s["averagingSeconds"] / max(1, s["averagingRounds"]), 1)
    report[name] = case
report["minibatch_vs_hogwild"] = round(report["minibatch"]["samples_per_second"] / report["hogwild"]["samples_per_second"], 3)
print(json.dumps(report, indent=1))
