#!/usr/bin/env python3
"""lapwing-numa tune against the job as given, as one JSON object: tune a job within a budget, then
train the job as given and the tuned job file in alternating rounds (full length, same epochs),
and compare their test accuracy and wall time (medians over the rounds; wall time is the whole
`lapwing run`, loading included).

  python3 tools/bench_tune.py [--budget 60] [--rounds 3] [--bin .build/release] [-- JOB OPTIONS]

Default job: Fashion-MNIST, mlp:784-256-10, 5 epochs, every other option lapwing run's default.
The verdict holds when the tuned job's median accuracy is at most 0.5 points below the job as
given's (two runs of one configuration differ by up to 0.3 points here) and its median wall time
is no longer.
"""
import argparse, json, os, statistics as st, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--budget", type=float, default=60)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--bin", default=".build/release")
ap.add_argument("job", nargs="*")
args = ap.parse_args()
job = args.job or ["--data", "idx:/usr/share/datasets/fashion-mnist", "--model", "mlp:784-256-10", "--epochs", "5"]
lapwing, numa = os.path.join(args.bin, "lapwing"), os.path.join(args.bin, "lapwing-numa")
work = tempfile.mkdtemp(prefix="lapwing-bench-tune-")
conf = os.path.join(work, "tuned.conf")

t0 = time.time()
tune = subprocess.run([numa, "tune", "--json", "--budget", str(args.budget), "--output", conf, *job], capture_output=True, text=True)
if tune.returncode != 0:
    sys.exit(f"lapwing-numa tune failed: {tune.stderr[-2000:]}")
tuned = json.loads(tune.stdout.strip().splitlines()[-1])
tune_seconds = time.time() - t0


def run(options, tag):
    out = os.path.join(work, tag)
    start = time.time()
    r = subprocess.run([lapwing, "run", "--json", "--output-dir", out, *options], capture_output=True, text=True)
    wall = time.time() - start
    if r.returncode != 0:
        sys.exit(f"lapwing run {' '.join(options)} failed: {r.stderr[-2000:]}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    return {"accuracy": s["testAccuracy"], "wall_seconds": wall, "train_seconds": s["trainSeconds"],
            "samples_per_second": s["samplesPerSecond"]}


runs = {"as_given": [], "tuned": []}
for rnd in range(args.rounds):
    order = [("as_given", job), ("tuned", ["--config", conf])]
    for name, options in (order if rnd % 2 == 0 else order[::-1]):
        r = run(options, f"{name}-{rnd}")
        runs[name].append(r)
        print(f"round {rnd + 1}: {name}: {r['accuracy'] * 100:.2f}% in {r['wall_seconds']:.1f} s", file=sys.stderr)

med = {k: {m: st.median(x[m] for x in v) for m in ("accuracy", "wall_seconds", "train_seconds", "samples_per_second")}
       for k, v in runs.items()}
holds = med["tuned"]["accuracy"] >= med["as_given"]["accuracy"] - 0.005 and \
    med["tuned"]["wall_seconds"] <= med["as_given"]["wall_seconds"]
print(json.dumps({
    "command": " ".join(["python3", "tools/bench_tune.py", *sys.argv[1:]]),
    "job": job, "budget_seconds": args.budget, "tune_seconds": round(tune_seconds, 1),
    "chosen": tuned["chosen"], "as_given": tuned["as_given"], "tune_speedup": tuned["speedup"], "tune_notes": tuned["notes"],
    "tuned_file": open(conf).read(), "rounds": args.rounds, "runs": runs, "medians": med,
    "wall_ratio_tuned_vs_given": med["tuned"]["wall_seconds"] / med["as_given"]["wall_seconds"],
    "accuracy_difference_points": (med["tuned"]["accuracy"] - med["as_given"]["accuracy"]) * 100,
    "load_average_at_end": os.getloadavg(), "holds": holds,
}, indent=1))
