#!/usr/bin/env python3
"""Every algorithm of the family on the same job, one after another, in one run: a markdown table
(stdout) and one JSON object (--json FILE, or stderr's last line).

  python3 tools/algorithms_table.py [--lapwing .build/release/lapwing] [--epochs 10] [--json out.json]
                                    [--algorithms a,b,...] [-- extra lapwing run options]

The job (issue #9's acceptance): Fashion-MNIST, mlp:784-256-10, batch 16, 2 workers (3 for
backup-workers with --backups 1, two replicas for lap-sgd and lpp-sgd), --lr 0.02 --nesterov,
10 epochs, seed 1. Columns: test accuracy, training seconds, samples/s, bytes exchanged per
sample (every exchange path's bytes over the samples trained), rounds of the coordinator.
"""
import argparse, json, shutil, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--lapwing", default=".build/release/lapwing")
ap.add_argument("--data", default="idx:/usr/share/datasets/fashion-mnist")
ap.add_argument("--model", default="mlp:784-256-10")
ap.add_argument("--epochs", type=float, default=10)
ap.add_argument("--algorithms", default="")
ap.add_argument("--json", default="")
ap.add_argument("extra", nargs="*")
args = ap.parse_args()

# The options each algorithm gets beyond the common ones: its shape, not tuned knobs.
shape = {
    "hogwild": ["--workers", "2"],
    "lap-sgd": ["--workers", "2", "--replicas", "2"],
    "lpp-sgd": ["--workers", "2", "--replicas", "2"],
    "minibatch": ["--workers", "2"],
    "local-sgd": ["--workers", "2"],
    "hier-avg": ["--workers", "2"],
    "slowmo": ["--workers", "2"],
    "overlap-local": ["--workers", "2"],
    "backup-workers": ["--workers", "3", "--backups", "1"],
}
names = [a for a in args.algorithms.split(",") if a] or list(shape)
common = ["--data", args.data, "--model", args.model, "--epochs", str(args.epochs), "--batch", "16",
          "--lr", "0.02", "--nesterov", "--seed", "1", *args.extra]
rows = []
for name in names:
    out = tempfile.mkdtemp(prefix="lapwing-table-")
    t0 = time.perf_counter()
    r = subprocess.run([args.lapwing, "run", "--json", "--output-dir", out, "--algorithm", name, *shape.get(name, []), *common],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0:
        rows.append({"algorithm": name, "error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"})
        print(f"{name}: failed: {rows[-1]['error']}", file=sys.stderr)
        continue
    s = json.loads(r.stdout.strip().splitlines()[-1])
    exchanged = s.get("bytesExchanged") or 0
    rows.append({
        "algorithm": name, "options": " ".join(shape.get(name, [])), "knobs": s.get("knobs"),
        "test_accuracy": s["testAccuracy"], "train_seconds": round(s["trainSeconds"], 2),
        "wall_seconds": round(wall, 2), "samples_per_second": round(s["samplesPerSecond"]),
        "bytes_exchanged": exchanged, "bytes_per_sample": round(exchanged / max(1, s["samples"]), 1),
        "cross_node_bytes": s.get("crossNodeBytes"), "rounds": s["averagingRounds"], "epochs": s["epochs"],
    })
    print(f"{name}: {100 * s['testAccuracy']:.2f}% in {s['trainSeconds']:.1f} s", file=sys.stderr)

print("| algorithm | options | test accuracy | train s | samples/s | bytes exchanged / sample | rounds |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    if "error" in r:
        print(f"| {r['algorithm']} | failed: {r['error']} | | | | | |")
    else:
        print(f"| {r['algorithm']} | {r['options']} | {100 * r['test_accuracy']:.2f}% | {r['train_seconds']} | "
              f"{r['samples_per_second']:,} | {r['bytes_per_sample']:,} | {r['rounds']} |")
report = {"job": common, "rows": rows}
if args.json:
    with open(args.json, "w") as f:
        json.dump(report, f, indent=1)
else:
    print(json.dumps(report), file=sys.stderr)
