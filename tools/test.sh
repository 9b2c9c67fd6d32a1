#!/usr/bin/env bash
# The whole test suite, from a clean clone: installs what it needs, builds, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
swift build --build-tests 2>&1 | grep -v '^\[' || true
swift test --skip-build 2>&1
