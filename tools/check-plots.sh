#!/usr/bin/env bash
# Checks Lapwing's plots the way a person sees them (issue #12): renders every SVG of a study
# (or `lapwing plot`) directory to PNG in headless Chromium and checks that each PNG shows a
# chart: enough non-white pixels, and coloured ones (the lines), not only the grey axes.
# Usage: tools/check-plots.sh [DIR]   (default: a fresh two-job study on heart_scale, made with
# the release build in a temporary directory). Installs chromium and python3-pil with apt when
# they are missing (this script only; CI does not run it). Prints one JSON object per plot and
# exits 1 when a plot renders blank.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null || ! /usr/bin/python3 -c "import PIL" 2>/dev/null; then
  echo "check-plots: installing chromium and python3-pil..." >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium python3-pil >&2
fi
work=$(mktemp -d /tmp/lapwing-check-plots.XXXXXX)
trap 'rm -rf "$work"' EXIT
dir="${1:-}"
if [ -z "$dir" ]; then
  dir="$work/study"
  .build/release/lapwing study --foreground --data libsvm:/usr/share/doc/liblinear-tools/examples/heart_scale \
    --model logistic --algorithms hogwild,local-sgd --period 4 --workers 2 --epochs 400 --lr 0.1 --eval-every 40 \
    --output-dir "$dir" >/dev/null
fi
shopt -s nullglob
svgs=("$dir"/*.svg)
[ ${#svgs[@]} -gt 0 ] || { echo "check-plots: no .svg in $dir" >&2; exit 1; }
status=0
for svg in "${svgs[@]}"; do
  png="$work/$(basename "$svg" .svg).png"
  # The SVGs are 880x480; --screenshot writes the page at --window-size.
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=880,480 \
    --screenshot="$png" "file://$(realpath "$svg")" >/dev/null 2>&1 || true
  /usr/bin/python3 - "$svg" "$png" <<'PY' || status=1
import json, os, sys
from PIL import Image
svg, png = sys.argv[1], sys.argv[2]
if not os.path.exists(png):
    print(json.dumps({"plot": svg, "ok": False, "why": "chromium wrote no PNG"})); sys.exit(1)
img = Image.open(png).convert("RGB")
pixels = list(img.getdata())
ink = sum(1 for r, g, b in pixels if min(r, g, b) < 240)
colour = sum(1 for r, g, b in pixels if max(r, g, b) - min(r, g, b) > 60)
ok = ink / len(pixels) > 0.01 and colour > 200
print(json.dumps({"plot": os.path.basename(svg), "png": f"{img.width}x{img.height}", "ink": round(ink / len(pixels), 4),
                  "coloured_pixels": colour, "ok": ok}))
sys.exit(0 if ok else 1)
PY
done
exit $status
