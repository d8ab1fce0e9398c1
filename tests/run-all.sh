#!/usr/bin/env bash
# Runs every test of qosctl: formatting, lints, unit and golden tests, the real-kernel
# tests in throw-away network namespaces, and the kernel-lab tier under qemu.
# It installs what it needs first (Debian packages; root), so it works on a fresh machine.
# Tests that need root or qemu say SKIP when those are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/install-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --all-targets -- -D warnings
echo "== cargo test"
cargo test --all-targets 2>&1
