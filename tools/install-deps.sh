#!/usr/bin/env bash
# Installs the Debian packages Lapwing builds and runs with (idempotent, non-interactive).
# Runs as root, or through sudo when it is there.
set -euo pipefail
# Open MPI (libopenmpi-dev, openmpi-bin) for `lapwing run --mpi` and its tests; lapwing loads
# libmpi at run time, so it builds and runs without it. iproute2 for tools/mpi-netns-check.sh.
pkgs=(libnuma-dev libhwloc-dev hwloc-nox numactl libopenblas-dev zlib1g-dev
      dataset-fashion-mnist liblinear-tools systemd libopenmpi-dev openmpi-bin iproute2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
echo "lapwing: installing ${missing[*]}" >&2
as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q >/dev/null
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
# safetensors for tools/eval_model.py (the check that an exported model loads in Python).
if ! python3 -c "import numpy, safetensors" 2>/dev/null; then
  echo "lapwing: installing python safetensors" >&2
  python3 -m pip install --quiet safetensors numpy >/dev/null
fi
