#!/usr/bin/env bash
# Runs every test of qosctl: formatting, lints, unit and golden tests, the real-kernel
# tests in throw-away network namespaces, the benchmark's smoke run, and the kernel-lab
# tier (a full Debian kernel under qemu: netem, fw, fq_codel, cake, sfq with real traffic).
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

echo "== kernel-lab tier"
rc=0
bash tests/klab/run-tier.sh --install || rc=$?
pass=0 fail=0
for r in target/klab/*/out/results.tsv; do
  [ -f "$r" ] || continue
  pass=$((pass + $(grep -c '^PASS' "$r" || true)))
  fail=$((fail + $(grep -c '^FAIL' "$r" || true)))
done
case $rc in
  0) ;;
  77) echo "SKIP: kernel-lab tier (see above)" ;;
  *) [ -f target/klab/summary.txt ] && cat target/klab/summary.txt
     echo "klab: $pass passed, $fail failed"
     exit "$rc" ;;
esac
[ -f target/klab/summary.txt ] && cat target/klab/summary.txt
echo "klab: $pass passed, $fail failed"
