#!/usr/bin/env bash
# The main job, from a clean clone on a fresh Debian 12 machine: installs what Lapwing needs,
# builds it, and shows the NUMA placement Lapwing chooses for this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
echo "lapwing: building (release)..." >&2
swift build -c release --product lapwing-numa 2>&1 | grep -E "error|warning|Compiling lapwing|Build" >&2 || true
.build/release/lapwing-numa topology
