#!/usr/bin/env bash
# Lapwing's NUMA code on real multi-node machines: boots a Debian 12 guest under QEMU with NODES
# NUMA nodes (default: 2, then 4; one vCPU and one memory backend per node), copies the release
# binaries in (with the Swift runtime they link), and checks from inside:
#   - `lapwing-numa topology` shows NODES nodes and its placement spreads the workers over them;
#   - a lap-sgd job with one worker and one replica per node: each replica's pages on its node
#     (`lapwing-numa arena`: move_pages/get_mempolicy per replica; the host's numa_maps for the
#     arena), each worker pinned to and running on the CPU the placement gave it, on its node;
#   - the job's per-node copies of the training data (--node-data auto): one per node, every page
#     on its node (the host's numa_maps), each worker reading only its node's copy (its numa_maps);
#   - `lapwing-numa bench`: local and remote figures for every pair of nodes, pages on their nodes.
# The guest runs a check script as PID 1 (no systemd) that prints what it saw between markers on
# the serial console and powers off; this script checks it. KVM if it works, else TCG (said so).
# Needs root, network access to a Debian mirror (first run only) and a release build:
#   swift build -c release && sudo tools/numa-vm-check.sh [--root DIR] [--keep] [NODES...]
# The guest's root file system (debootstrap, with linux-image-amd64) is cached in DIR (default
# /var/tmp/lapwing-numa-vm-root). Not part of tools/test.sh: it boots a VM per node count.
set -euo pipefail
cd "$(dirname "$0")/.."
root=/var/tmp/lapwing-numa-vm-root keep=0 counts=()
while [ $# -gt 0 ]; do
  case "$1" in
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    [2-8]) counts+=("$1"); shift ;;
    *) echo "numa-vm-check: unknown argument '$1' (NODES is 2..8)" >&2; exit 2 ;;
  esac
done
[ ${#counts[@]} -gt 0 ] || counts=(2 4)
[ "$(id -u)" = 0 ] || { echo "numa-vm-check: needs root" >&2; exit 1; }
for b in lapwing lapwing-numa; do
  [ -x ".build/release/$b" ] || { echo "numa-vm-check: .build/release/$b is missing (swift build -c release)" >&2; exit 1; }
done
export DEBIAN_FRONTEND=noninteractive
command -v debootstrap >/dev/null && command -v qemu-system-x86_64 >/dev/null && command -v mkfs.ext4 >/dev/null \
  || apt-get install -y -q --no-install-recommends debootstrap qemu-system-x86 e2fsprogs >/dev/null
swift_lib=$(readelf -d .build/release/lapwing-numa | sed -n 's/.*runpath: \[\([^:]*\).*/\1/p')

step() { echo "== $*" >&2; }
t_start=$(date +%s)
if [ ! -e "$root/boot/vmlinuz" ] && ! ls "$root"/boot/vmlinuz-* >/dev/null 2>&1; then
  step "debootstrap bookworm with linux-image-amd64 into $root (once)"
  rm -rf "$root.tmp"
  debootstrap --variant=minbase \
    --include=linux-image-amd64,procps,numactl,kmod,libnuma1,libhwloc15,libopenblas0-pthread,zlib1g \
    bookworm "$root.tmp" http://deb.debian.org/debian >"$root.debootstrap.log" 2>&1 \
    || { echo "numa-vm-check: debootstrap failed (log: $root.debootstrap.log)" >&2; exit 1; }
  mv "$root.tmp" "$root"
fi
kernel=$(ls "$root"/boot/vmlinuz-* | sort -V | tail -1)
initrd=$(ls "$root"/boot/initrd.img-* | sort -V | tail -1)

step "installing the binaries, the Swift runtime they link and Fashion-MNIST into the guest"
install -m 0755 .build/release/lapwing .build/release/lapwing-numa "$root/usr/local/bin/"
if [ -n "$swift_lib" ]; then
  mkdir -p "$root$swift_lib"
  for lib in $(ldd .build/release/lapwing .build/release/lapwing-numa | awk -v d="$swift_lib/" 'index($3, d) == 1 { print $3 }' | sort -u); do
    cp -u "$lib" "$root$swift_lib/"
  done
fi
mkdir -p "$root/usr/share/datasets/fashion-mnist"
cp -u /usr/share/datasets/fashion-mnist/*.gz "$root/usr/share/datasets/fashion-mnist/"
cp tools/numa-vm-guest.sh "$root/lapwing-check"
chmod 0755 "$root/lapwing-check"

work=$(mktemp -d /var/tmp/lapwing-numa-vm.XXXXXX)
qemu_pid=""
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; fi
  if [ $keep = 1 ]; then echo "numa-vm-check: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
step "making the guest's disk image"
size_mib=$(( $(du -sm "$root" | cut -f1) + 512 ))
truncate -s "${size_mib}M" "$work/disk.img"
mkfs.ext4 -q -F -L lapwing -d "$root" "$work/disk.img"

# boot N ACCEL: runs the guest to its power-off (at most 15 minutes); the serial console goes to
# $work/console-N.log. Returns qemu's status, or 3 when KVM got no guest to its check script
# within a minute (it reaches it in seconds when KVM works; here /dev/kvm opens, but a guest
# without nested virtualisation in the host's CPU hangs before the kernel prints anything).
boot() {
  # 4 GiB in all: each node holds a copy of Fashion-MNIST's training set (180 MiB) besides the rest.
  local n=$1 accel=$2 mem=$(( 4096 / $1 )) numa=() cpu=host
  [ "$accel" = tcg ] && cpu=max
  for i in $(seq 0 $((n - 1))); do
    numa+=(-object "memory-backend-ram,id=m$i,size=${mem}M" -numa "node,nodeid=$i,cpus=$i,memdev=m$i")
  done
  timeout 900 qemu-system-x86_64 -machine q35 -accel "$accel" -cpu "$cpu" -m $((mem * n))M \
    -smp "$n,sockets=$n,cores=1,threads=1" "${numa[@]}" \
    -kernel "$kernel" -initrd "$initrd" \
    -append "root=/dev/vda rw console=ttyS0 quiet loglevel=3 init=/lapwing-check panic=-1" \
    -drive "file=$work/disk.img,format=raw,if=virtio,snapshot=on" \
    -display none -serial "file:$work/console-$n.log" -monitor none -nodefaults -no-reboot \
    2>"$work/qemu-$n.err" &
  qemu_pid=$!
  if [ "$accel" = kvm ]; then
    for _ in $(seq 120); do
      grep -q '@@LW begin' "$work/console-$n.log" 2>/dev/null && break
      kill -0 "$qemu_pid" 2>/dev/null || break
      sleep 0.5
    done
    if ! grep -q '@@LW begin' "$work/console-$n.log" 2>/dev/null; then
      kill "$qemu_pid" 2>/dev/null || true
      wait "$qemu_pid" 2>/dev/null || true
      qemu_pid=""
      return 3
    fi
  fi
  local rc=0
  wait "$qemu_pid" || rc=$?
  qemu_pid=""
  return $rc
}

accel=kvm
for n in "${counts[@]}"; do
  step "booting a guest with $n NUMA nodes ($accel)"
  t0=$(date +%s)
  rc=0
  boot "$n" "$accel" || rc=$?
  if [ "$accel" = kvm ] && ! grep -q '@@LW begin' "$work/console-$n.log" 2>/dev/null; then
    why=$([ $rc = 3 ] && echo "no guest reached its check script within a minute" || head -c 300 "$work/qemu-$n.err")
    echo "numa-vm-check: KVM could not run the guest ($why); falling back to TCG (slower; the checks are about placement, not speed)" >&2
    accel=tcg
    step "booting a guest with $n NUMA nodes ($accel)"
    boot "$n" "$accel" || true
  fi
  grep -q '@@LW done' "$work/console-$n.log" || {
    echo "FAIL: the guest with $n nodes did not finish its checks; its console:" >&2
    tail -40 "$work/console-$n.log" >&2; cat "$work/qemu-$n.err" >&2; keep=1; exit 1; }
  python3 tools/numa_vm_verify.py --nodes "$n" --accel "$accel" --seconds $(( $(date +%s) - t0 )) "$work/console-$n.log" \
    || { keep=1; exit 1; }
done
echo "numa-vm-check: all checks passed for ${counts[*]} nodes ($accel) in $(( $(date +%s) - t_start )) s" >&2
