#!/usr/bin/env bash
# Installs Lapwing: the release binaries, the systemd units, the system user, the lapwing(1) man
# page and shell completions (both generated from the argument parser).
#   tools/install.sh [--prefix /usr/local] [--user] [--dry-run] [--uninstall]
# System mode (default, as root): binaries in PREFIX/bin, units in /etc/systemd/system, the
# lapwing user from systemd/sysusers.d, man page and completions under PREFIX/share. --user:
# binaries in ~/.local/bin, the user unit in ~/.config/systemd/user, the rest in ~/.local/share.
# systemctl daemon-reload runs only where systemd is running. Everything is generated and checked
# before anything is written, so a failure leaves nothing half-installed.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=/usr/local user=0 dry=0 uninstall=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --user) user=1; shift ;;
    --dry-run) dry=1; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ $user = 1 ]; then
  bindir="$HOME/.local/bin" unitdir="$HOME/.config/systemd/user" units=(lapwingd-user.service)
  sharedir="${XDG_DATA_HOME:-$HOME/.local/share}" confdir="${XDG_CONFIG_HOME:-$HOME/.config}/lapwing"
  systemctl=(systemctl --user)
else
  bindir="$prefix/bin" unitdir=/etc/systemd/system units=(lapwingd.service lapwingd.socket lapwingd-metrics.socket)
  sharedir="$prefix/share" confdir=/etc/lapwing systemctl=(systemctl)
  [ "$(id -u)" = 0 ] || [ $dry = 1 ] || { echo "install.sh: system install needs root (or use --user)" >&2; exit 1; }
fi
bins=(lapwingd lapwing lapwing-numa)
# Generated documentation: file in the build folder -> where it goes.
docs=(
  "man/lapwing.1:$sharedir/man/man1/lapwing.1"
  "man/lapwing-numa.1:$sharedir/man/man1/lapwing-numa.1"
  "man/lapwingd.8:$sharedir/man/man8/lapwingd.8"
  "lapwingd.conf.example:$confdir/lapwingd.conf.example"
  "README.md:$sharedir/doc/lapwing/README.md"
  "completions/lapwing.bash:$sharedir/bash-completion/completions/lapwing"
  "completions/_lapwing:$sharedir/zsh/site-functions/_lapwing"
  "completions/lapwing.fish:$sharedir/fish/vendor_completions.d/lapwing.fish"
)
gen=.build/lapwing-docs
run() { if [ $dry = 1 ]; then echo "would run: $*"; else "$@"; fi; }
systemd_running() { [ -d /run/systemd/system ]; }
reload() {
  if systemd_running; then
    if [ $user = 1 ]; then run systemctl --user daemon-reload; else run systemctl daemon-reload; fi
  fi
}

if [ $uninstall = 1 ]; then
  # Disabled and stopped first, so that no symlink of an enabled unit is left dangling.
  if systemd_running; then
    for u in "${units[@]}"; do
      [ -e "$unitdir/$u" ] && run "${systemctl[@]}" disable --now "$u" >/dev/null 2>&1 || true
    done
  fi
  for b in "${bins[@]}"; do [ -e "$bindir/$b" ] && run rm -f "$bindir/$b"; done
  for u in "${units[@]}"; do [ -e "$unitdir/$u" ] && run rm -f "$unitdir/$u"; done
  for d in "${docs[@]}"; do [ -e "${d#*:}" ] && run rm -f "${d#*:}"; done
  [ $user = 1 ] || { [ -e /etc/sysusers.d/lapwing.conf ] && run rm -f /etc/sysusers.d/lapwing.conf; }
  reload
  [ -d "$confdir" ] && run rmdir --ignore-fail-on-non-empty "$confdir"
  echo "lapwing: uninstalled (kept: the state in /var/lib/lapwing or ~/.local/state/lapwing, and $confdir/lapwingd.conf if you wrote one)"
  exit 0
fi

# Check first: every binary built, every unit present.
for b in "${bins[@]}"; do
  [ -x ".build/release/$b" ] || { echo "install.sh: .build/release/$b is missing: run 'swift build -c release' first" >&2; exit 1; }
done
for u in "${units[@]}"; do [ -f "systemd/$u" ] || { echo "install.sh: systemd/$u is missing" >&2; exit 1; }; done
# The man page and completions come from the parser itself (swift-argument-parser's plugin and
# --generate-completion-script), into the build folder first.
if [ $dry = 1 ]; then
  echo "would generate lapwing(1), lapwing-numa(1) and bash/zsh/fish completions in $gen, beside lapwingd(8)"
else
  rm -rf "$gen" && mkdir -p "$gen/man" "$gen/completions"
  swift package --allow-writing-to-directory "$gen/man" generate-manual --configuration release \
    --output-directory "$gen/man" >"$gen/generate-manual.log" 2>&1 \
    || { echo "install.sh: generating the man pages failed (log: $gen/generate-manual.log)" >&2; exit 1; }
  for sh in bash zsh fish; do
    case $sh in bash) f=lapwing.bash ;; zsh) f=_lapwing ;; fish) f=lapwing.fish ;; esac
    .build/release/lapwing --generate-completion-script $sh > "$gen/completions/$f"
  done
  # Written by hand, not generated: lapwingd(8) (for its configuration, files and signals) and
  # the example configuration.
  cp docs/lapwingd.8 "$gen/man/lapwingd.8"
  cp systemd/lapwingd.conf.example "$gen/lapwingd.conf.example"
  cp README.md "$gen/README.md"
  for d in "${docs[@]}"; do
    [ -s "$gen/${d%%:*}" ] || { echo "install.sh: $gen/${d%%:*} was not generated" >&2; exit 1; }
  done
fi

run install -d "$bindir" "$unitdir"
for b in "${bins[@]}"; do run install -m 0755 ".build/release/$b" "$bindir/$b"; done
for u in "${units[@]}"; do
  if [ $user = 1 ]; then
    run install -m 0644 "systemd/$u" "$unitdir/$u"
  elif [ $dry = 1 ]; then
    echo "would write $unitdir/$u with ExecStart from $bindir"
  else
    sed "s|/usr/local/bin/|$bindir/|g; s|/usr/local/share/|$sharedir/|g" "systemd/$u" > "$unitdir/$u.tmp" && mv "$unitdir/$u.tmp" "$unitdir/$u"
  fi
done
for d in "${docs[@]}"; do run install -D -m 0644 "$gen/${d%%:*}" "${d#*:}"; done
if [ $user = 0 ]; then
  run install -d /etc/sysusers.d
  run install -m 0644 systemd/sysusers.d/lapwing.conf /etc/sysusers.d/lapwing.conf
  run systemd-sysusers /etc/sysusers.d/lapwing.conf
fi
reload
if [ $user = 1 ]; then
  echo "lapwing: installed; start it with: systemctl --user enable --now lapwingd-user"
else
  echo "lapwing: installed; start it with: systemctl enable --now lapwingd.socket (add users to group lapwing);"
  echo "  Prometheus metrics on 127.0.0.1:9464: systemctl enable --now lapwingd-metrics.socket (before lapwingd starts)"
fi
