#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what it needs, builds, runs every test.
# Tests run against a release build: the training tests reach their accuracy targets on real
# data, which takes seconds optimised and minutes in a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
flags=(-c release -Xswiftc -enable-testing)
echo "lapwing: building (release, with tests)..." >&2
swift build "${flags[@]}" --build-tests 2>&1 | grep -vE '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Linking|Write|Building)' || true
swift test "${flags[@]}" --skip-build "$@" 2>&1 | grep -vE '^◇ ' 

