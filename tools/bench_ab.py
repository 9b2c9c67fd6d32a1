#!/usr/bin/env python3
"""Two builds of lapwing on the same job, in alternating order, as one JSON object: CPU seconds per
100k samples (user + sys of the whole process tree: workers, host, coordinator) and samples/s,
medians over the rounds, and the ratio of the new build's CPU per sample to the old one's. CPU per
sample moves far less than samples/s on a shared, noisy machine.

  python3 tools/bench_ab.py --old /path/to/old/lapwing [--new .build/release/lapwing]
                            [--rounds 4] [--epochs 3] [--algorithms hogwild,lap-sgd]

The job: bench_training.py's mlp case (Fashion-MNIST, mlp:784-256-10, batch 16, 2 workers, lr 0.05
constant, lap-sgd with 2 replicas), without evaluations, heavy-ball momentum (the old default).
"""
import argparse, json, resource, statistics as st, subprocess, tempfile, shutil

ap = argparse.ArgumentParser()
ap.add_argument("--old", required=True)
ap.add_argument("--new", default=".build/release/lapwing")
ap.add_argument("--rounds", type=int, default=4)
ap.add_argument("--epochs", type=float, default=3)
ap.add_argument("--algorithms", default="hogwild,lap-sgd")
args = ap.parse_args()


def run(binary, algo, heavy_ball_flag):
    extra = ["--replicas", "2"] if algo == "lap-sgd" else []
    out = tempfile.mkdtemp(prefix="lapwing-ab-")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    r = subprocess.run([binary, "run", "--data", "idx:/usr/share/datasets/fashion-mnist", "--model", "mlp:784-256-10",
                        "--algorithm", algo, "--workers", "2", *extra, "--epochs", str(args.epochs), "--batch", "16",
                        "--lr", "0.05", "--lr-schedule", "constant", "--eval-every", "0", *heavy_ball_flag, "--json",
                        "--output-dir", out], capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0:
        raise SystemExit(f"{binary} run --algorithm {algo} failed: {r.stderr}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / s["samples"] * 1e5, s["samplesPerSecond"]


def heavy_ball(binary):
    # Builds that default to Nesterov take --no-nesterov; older ones are heavy ball already.
    h = subprocess.run([binary, "run", "--help"], capture_output=True, text=True).stdout
    return ["--no-nesterov"] if "--no-nesterov" in h else []


flags = {"old": heavy_ball(args.old), "new": heavy_ball(args.new)}
res = {}
for rnd in range(args.rounds):
    for algo in args.algorithms.split(","):
        for which in (["old", "new"] if rnd % 2 == 0 else ["new", "old"]):
            res.setdefault((which, algo), []).append(run(getattr(args, which), algo, flags[which]))
report = {}
for algo in args.algorithms.split(","):
    o, n = res[("old", algo)], res[("new", algo)]
    report[algo] = {
        "old_cpu_seconds_per_100k_samples": round(st.median(x[0] for x in o), 3),
        "new_cpu_seconds_per_100k_samples": round(st.median(x[0] for x in n), 3),
        "old_samples_per_second": round(st.median(x[1] for x in o)),
        "new_samples_per_second": round(st.median(x[1] for x in n)),
        "cpu_per_sample_new_over_old": round(st.median(x[0] for x in n) / st.median(x[0] for x in o), 3),
        "rounds": args.rounds,
    }
print(json.dumps(report, indent=1, sort_keys=True))
