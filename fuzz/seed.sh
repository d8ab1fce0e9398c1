#!/usr/bin/env bash
# Builds the seed corpora of the fuzz targets in fuzz/seeds/<target>/ (not committed; the
# committed, minimized corpus is fuzz/corpus/<target>/, see docs/fuzzing.md):
#   policy  - every policy in the repository (examples, test fixtures, kernel-lab cases)
#   reader  - every captured tc output (tests/fixtures/tc, and TC_FIXTURES if given)
#   planner - each golden differ case: policy NUL qdisc NUL class NUL filter-1: NUL filter-ffff:
set -euo pipefail
cd "$(dirname "$0")/.."
out=fuzz/seeds
rm -rf "$out"; mkdir -p "$out"/{policy,reader,planner}
n=0
for f in examples/*.toml tests/klab/policies/*.toml tests/fixtures/plan/*/policy.toml \
         tests/fixtures/plan/*/setup.toml $(find tests/fixtures/policy -type f); do
  [ -f "$f" ] && cp "$f" "$out/policy/$((n++))"
done
for d in tests/fixtures/tc ${TC_FIXTURES:-}; do
  find "$d" -type f ! -name '*.md' ! -name '*.sh' ! -name CAPTURED -size -200k |
    while read -r f; do cp "$f" "$out/reader/$(sha1sum "$f" | cut -c1-16)"; done
done
for c in tests/fixtures/plan/*/; do
  [ -f "$c/policy.toml" ] || continue
  dev=$(find "$c/live" -mindepth 1 -maxdepth 1 -type d | head -n1)
  [ -n "$dev" ] || continue
  part() { for f in "$@"; do [ -f "$dev/$f" ] && { cat "$dev/$f"; return; }; done; true; }
  { cat "$c/policy.toml"; printf '\0'; part qdisc.json; printf '\0'; part class.txt class.json
    printf '\0'; part filter-1.json; printf '\0'; part filter-ffff.json; } > "$out/planner/$(basename "$c")"
done
for t in policy reader planner; do echo "$t: $(ls "$out/$t" | wc -l) seeds"; done
