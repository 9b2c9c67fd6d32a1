#!/usr/bin/env python3
"""Training benchmark: Lapwing beside the baselines in ../shared/peers, in one run, as one JSON object.

  python3 tools/bench_training.py [--lapwing .build/release/lapwing] [--shared ../shared]
                                  [--peers-python /tmp/peers/bin/python] [--epochs 2]

Cases (issue #3):
  mlp    mlp:784-256-10 on Fashion-MNIST, batch 16, 2 processes, same lr/momentum/epochs:
         Lapwing hogwild vs PyTorch Hogwild (torch_hogwild.py): samples/s ratio and test accuracy.
  sparse softmax on debian-sections with 2 workers vs fastText (2 threads, 5 epochs): time to accuracy.
Averaging bandwidth vs memcpy is measured by lapwing-bench (same run of this script).
Peers are installed outside the repo: python3 -m venv /tmp/peers && /tmp/peers/bin/pip install torch numpy fasttext-numpy2
"""
import argparse, gzip, json, os, shutil, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument("--lapwing", default=".build/release/lapwing")
ap.add_argument("--bench", default=".build/release/lapwing-bench")
ap.add_argument("--shared", default="../shared")
ap.add_argument("--peers-python", default="/tmp/peers/bin/python")
ap.add_argument("--epochs", type=float, default=2)
args = ap.parse_args()
report = {"machine": {"cpus": os.cpu_count()}}


def lapwing(*a):
    out = tempfile.mkdtemp(prefix="lapwing-bench-")
    t0 = time.perf_counter()
    r = subprocess.run([args.lapwing, "run", "--json", "--output-dir", out, *a], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    if r.returncode != 0:
        sys.exit(f"lapwing run {' '.join(a)} failed: {r.stderr}")
    s = json.loads(r.stdout.strip().splitlines()[-1])
    return {"samples_per_second": round(s["samplesPerSecond"], 1), "train_seconds": round(s["trainSeconds"], 3),
            "wall_seconds_with_loading": round(wall, 3), "test_accuracy": s["testAccuracy"],
            "test_loss": s["testLoss"], "epochs": s["epochs"], "algorithm": s["algorithm"], "blas": s["blas"]}


def peer(script, *a):
    r = subprocess.run([args.peers_python, os.path.join(args.shared, "peers", script), *a], capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"exit {r.returncode}"}
    return json.loads(r.stdout.strip().splitlines()[-1])


e = str(args.epochs)
mlp = ["--data", "idx:/usr/share/datasets/fashion-mnist", "--model", "mlp:784-256-10", "--workers", "2", "--batch", "16",
       "--epochs", e, "--lr", "0.05", "--momentum", "0.9", "--lr-schedule", "constant", "--eval-every", "0"]
case = {
    "lapwing_lap_sgd": lapwing(*mlp, "--algorithm", "lap-sgd", "--replicas", "2"),
    "lapwing_hogwild": lapwing(*mlp, "--algorithm", "hogwild"),
    "torch_hogwild": peer("torch_hogwild.py", "--procs", "2", "--batch", "16", "--epochs", e, "--lr", "0.05",
                          "--momentum", "0.9", "--model", "mlp:784-256-10"),
}
torch = case["torch_hogwild"]
if "samples_per_second" in torch:
    for name in ("lapwing_lap_sgd", "lapwing_hogwild"):
        case[name]["speedup_vs_torch"] = round(case[name]["samples_per_second"] / torch["samples_per_second"], 2)
        case[name]["accuracy_minus_torch"] = round(case[name]["test_accuracy"] - torch["test_accuracy"], 4)
report["mlp_batch16_2procs"] = case

ds = os.path.join(args.shared, "data", "debian-sections")
if os.path.isdir(ds):
    train, test = os.path.join(ds, "debian-sections.train.gz"), os.path.join(ds, "debian-sections.test.gz")
    ours = lapwing("--data", f"libsvm:{train},{test}", "--model", "softmax", "--algorithm", "hogwild", "--workers", "2",
                   "--batch", "1", "--epochs", "5", "--lr", "2", "--momentum", "0", "--lr-schedule", "linear",
                   "--eval-every", "0")
    tmp = tempfile.mkdtemp(prefix="lapwing-ft-")
    txt = []
    for name in ("train", "test"):
        p = os.path.join(tmp, name + ".txt")
        with gzip.open(os.path.join(ds, f"debian-sections.{name}.txt.gz"), "rb") as f, open(p, "wb") as g:
            shutil.copyfileobj(f, g)
        txt.append(p)
    ft = peer("fasttext_text.py", txt[0], txt[1], "--threads", "2", "--epochs", "5")
    shutil.rmtree(tmp, ignore_errors=True)
    case = {"lapwing_softmax": ours, "fasttext": ft}
    if "train_seconds" in ft:
        case["time_ratio_train"] = round(ours["train_seconds"] / ft["train_seconds"], 3)
    report["debian_sections_softmax_2workers"] = case
else:
    report["debian_sections_softmax_2workers"] = {"skipped": f"{ds} not found"}

if os.path.exists(args.bench):
    r = subprocess.run([args.bench, "--seconds", "1", "--shared", args.shared], capture_output=True, text=True)
    if r.returncode == 0:
        report["averaging_vs_memcpy"] = json.loads(r.stdout)["averaging"]
print(json.dumps(report, indent=1, sort_keys=True))
