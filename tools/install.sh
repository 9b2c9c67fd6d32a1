#!/usr/bin/env bash
# Installs Lapwing: the release binaries, the systemd units and the system user.
#   tools/install.sh [--prefix /usr/local] [--user] [--dry-run] [--uninstall]
# System mode (default, as root): binaries in PREFIX/bin, units in /etc/systemd/system, the
# lapwing user from systemd/sysusers.d. --user: binaries in ~/.local/bin, the user unit in
# ~/.config/systemd/user. systemctl daemon-reload runs only where systemd is running.
# Everything is checked before anything is written, so a failure leaves nothing half-installed.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local user=0 dry=0 uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --user) user=1; shift ;;
    --dry-run) dry=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ $user = 1 ]; then
  bindir="$HOME/.local/bin" unitdir="$HOME/.config/systemd/user" units=(lapwingd-user.service)
else
  bindir="$prefix/bin" unitdir=/etc/systemd/system units=(lapwingd.service lapwingd.socket)
  [ "$(id -u)" = 0 ] || [ $dry = 1 ] || { echo "install.sh: system install needs root (or use --user)" >&2; exit 1; }
fi
bins=(lapwingd lapwing lapwing-numa)
run() { if [ $dry = 1 ]; then echo "would run: $*"; else "$@"; fi; }
systemd_running() { [ -d /run/systemd/system ]; }
reload() {
  if systemd_running; then
    if [ $user = 1 ]; then run systemctl --user daemon-reload; else run systemctl daemon-reload; fi
  fi
}

if [ $uninstall = 1 ]; then
  for b in "${bins[@]}"; do [ -e "$bindir/$b" ] && run rm -f "$bindir/$b"; done
  for u in "${units[@]}"; do [ -e "$unitdir/$u" ] && run rm -f "$unitdir/$u"; done
  [ $user = 1 ] || { [ -e /etc/sysusers.d/lapwing.conf ] && run rm -f /etc/sysusers.d/lapwing.conf; }
  reload
  echo "lapwing: uninstalled (the state in /var/lib/lapwing or ~/.local/state/lapwing is kept)"
  exit 0
fi

# Check first: every binary built, every unit present.
for b in "${bins[@]}"; do
  [ -x ".build/release/$b" ] || { echo "install.sh: .build/release/$b is missing: run 'swift build -c release' first" >&2; exit 1; }
done
for u in "${units[@]}"; do [ -f "systemd/$u" ] || { echo "install.sh: systemd/$u is missing" >&2; exit 1; }; done

run install -d "$bindir" "$unitdir"
for b in "${bins[@]}"; do run install -m 0755 ".build/release/$b" "$bindir/$b"; done
for u in "${units[@]}"; do
  if [ $user = 1 ]; then
    run install -m 0644 "systemd/$u" "$unitdir/$u"
  elif [ $dry = 1 ]; then
    echo "would write $unitdir/$u with ExecStart from $bindir"
  else
    sed "s|/usr/local/bin/|$bindir/|g" "systemd/$u" > "$unitdir/$u.tmp" && mv "$unitdir/$u.tmp" "$unitdir/$u"
  fi
done
if [ $user = 0 ]; then
  run install -d /etc/sysusers.d
  run install -m 0644 systemd/sysusers.d/lapwing.conf /etc/sysusers.d/lapwing.conf
  run systemd-sysusers /etc/sysusers.d/lapwing.conf
fi
reload
if [ $user = 1 ]; then
  echo "lapwing: installed; start it with: systemctl --user enable --now lapwingd-user"
else
  echo "lapwing: installed; start it with: systemctl enable --now lapwingd.socket (add users to group lapwing)"
fi
