#!/usr/bin/env python3
"""Scaling: training samples/s for W = 1 .. all cores, hogwild and lap-sgd, as one JSON object.

  python3 tools/bench_scaling.py [--lapwing .build/release/lapwing] [--shared ../shared]
                                 [--workers 1,2] [--rounds 3] [--epochs 2] [--plot FILE.svg]
                                 [--mlp-batch 16] [--cases mlp,sparse_softmax]

Cases: mlp:784-256-10 on Fashion-MNIST (dense, batch 16) and, when SHARED/data/debian-sections
exists, softmax on debian-sections (sparse, batch 1). Runs go in rounds, each round every (case,
algorithm, W) once in turn, so that all see the same machine noise; a figure is the median over
rounds, and a speedup (W against W=1) is the median of the per-round ratios. samples/s counts
training only (the job's trainSeconds), not loading.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--lapwing", default=".build/release/lapwing")
ap.add_argument("--shared", default="../shared")
ap.add_argument("--workers", default=None, help="comma-separated W values (default: 1 .. the CPUs this process may use)")
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--epochs", type=float, default=2)
ap.add_argument("--plot", default=None, help="also write an SVG plot of samples/s against W")
ap.add_argument("--mlp-batch", type=int, default=16, help="the MLP's batch (default 16)")
ap.add_argument("--cases", default=None, help="comma-separated cases to run (mlp, sparse_softmax; default: all)")
args = ap.parse_args()

cpus = len(os.sched_getaffinity(0))
ws = [int(w) for w in args.workers.split(",")] if args.workers else list(range(1, cpus + 1))
cases = {
    "mlp": ["--data", "idx:/usr/share/datasets/fashion-mnist", "--model", "mlp:784-256-10", "--batch", str(args.mlp_batch),
            "--lr", "0.05", "--momentum", "0.9", "--lr-schedule", "constant"],
}
ds = os.path.join(args.shared, "data", "debian-sections")
if os.path.isdir(ds):
    cases["sparse_softmax"] = [
        "--data", f"libsvm:{ds}/debian-sections.train.gz,{ds}/debian-sections.test.gz", "--model", "softmax",
        "--batch", "1", "--lr", "2", "--momentum", "0", "--lr-schedule", "linear"]
if args.cases:
    cases = {k: v for k, v in cases.items() if k in args.cases.split(",")}
algorithms = ["hogwild", "lap-sgd"]


def run(case, algorithm, w):
    out = tempfile.mkdtemp(prefix="lapwing-scaling-")
    try:
        r = subprocess.run([args.lapwing, "run", "--json", "--output-dir", out, *cases[case], "--algorithm", algorithm,
                            "--workers", str(w), "--epochs", str(args.epochs), "--eval-every", "0"],
                           capture_output=True, text=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0:
        sys.exit(f"lapwing run {case} {algorithm} W={w} failed: {r.stderr.strip()[-2000:]}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    return s["samplesPerSecond"], s["testAccuracy"]


samples = {(c, a, w): [] for c in cases for a in algorithms for w in ws}
accuracy = {k: [] for k in samples}
t0 = time.time()
for rnd in range(args.rounds):
    for key in samples:
        sps, acc = run(*key)
        samples[key].append(sps)
        accuracy[key].append(acc)
        print(f"round {rnd + 1}: {key[0]} {key[1]} W={key[2]}: {sps:,.0f} samples/s", file=sys.stderr)

report = {"machine": {"cpus_allowed": cpus, "load_average_at_end": os.getloadavg()}, "workers": ws,
          "rounds": args.rounds, "epochs": args.epochs, "seconds": round(time.time() - t0, 1),
          "command": " ".join(["python3"] + sys.argv), "cases": {}}
for c in cases:
    report["cases"][c] = {}
    for a in algorithms:
        rows = []
        for w in ws:
            k = (c, a, w)
            row = {"workers": w, "samples_per_second": round(statistics.median(samples[k]), 1),
                   "samples_per_second_runs": [round(x, 1) for x in samples[k]],
                   "test_accuracy": round(statistics.median(accuracy[k]), 4)}
            if w != 1 and 1 in ws:
                ratios = [x / y for x, y in zip(samples[k], samples[(c, a, 1)])]
                row["speedup_vs_1"] = round(statistics.median(ratios), 3)
                row["speedup_vs_1_runs"] = [round(x, 3) for x in ratios]
            rows.append(row)
        report["cases"][c][a] = rows
print(json.dumps(report, indent=1))

if args.plot:
    width, height, pad = 480, 320, 50
    top = max(max(r["samples_per_second"] for r in rows) for c in report["cases"].values() for rows in c.values())
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    lines = []
    for i, (c, algs) in enumerate(report["cases"].items()):
        for j, (a, rows) in enumerate(algs.items()):
            pts = " ".join(
                f"{pad + (r['workers'] - 1) / max(1, max(ws) - 1) * (width - 2 * pad):.1f},"
                f"{height - pad - r['samples_per_second'] / top * (height - 2 * pad):.1f}" for r in rows)
            colour = colours[(2 * i + j) % len(colours)]
            dash = ' stroke-dasharray="4 3"' if i else ""
            lines.append(f'<polyline fill="none" stroke="{colour}"{dash} stroke-width="2" points="{pts}"/>')
            lines.append(f'<text x="{width - pad - 120}" y="{pad + 14 * (2 * i + j)}" fill="{colour}" font-size="11">{c} {a}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
           f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>'
           f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>'
           f'<text x="{width / 2 - 40}" y="{height - 15}" font-size="12">workers W (1..{max(ws)})</text>'
           f'<text x="5" y="{pad - 10}" font-size="12">samples/s (max {top:,.0f})</text>' + "".join(lines) + "</svg>")
    with open(args.plot, "w") as f:
        f.write(svg)
