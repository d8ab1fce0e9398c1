#!/bin/bash
# run-tier.sh — qosctl's kernel-lab test tier: boots a stock Debian kernel under QEMU (TCG) and runs
# the guest cases in tests/klab/guest/cases/ against the static qosctl build, with real traffic.
#
#   tests/klab/run-tier.sh [options] [CASE_PATTERN...]
#     --install           install qemu-system-x86 first if missing (root; Debian mirrors only)
#     --iproute2 LIST     guest tc variants, comma separated: host (6.1), backports (6.15)
#                         [default: host,backports]
#     --calib-on LIST     variants that also run the raw-tc calibration cases (calib-*), which
#                         only measure the kernel and the lab, not qosctl [default: host]
#     --traffic-on LIST   variants whose feature cases also send traffic (rates, delays, loss);
#                         the others only read back, which is what differs between tc
#                         versions (the kernel is the same) [default: host; "all" for both]
#     --out DIR           results directory [default: target/klab]
#     --no-build          use the qosctl binary already built (or $KLAB_QOSCTL)
#     --fake-qosctl       SELF-TEST of the tier: run the cases against tests/klab/fake/qosctl, which
#                         does with raw tc what each tier policy means; proves that the cases'
#                         expectations can pass on this kernel. Never a verdict on qosctl.
#   CASE_PATTERN: shell globs over case names (e.g. 'calib-*' 'leaf-*'); default: every case.
#
# Environment: CARGO_TARGET_DIR (where the static build goes, default target/), KLAB_CACHE (lab cache, default $HOME/.cache/qosctl-klab; keep it between CI runs),
# KLAB_QOSCTL (a prebuilt static qosctl), KLAB_VM_TIMEOUT (seconds per VM, default 900),
# KLAB_CASE_TIMEOUT (seconds per case, default 240). One VM at a time: TCG takes both cores.
#
# Exit status: 0 = every case passed in every variant; 1 = a case failed; 77 = skipped (no root or
# no qemu and no --install); anything else = the lab itself failed (see the log).
# Output: OUT/<variant>/{results.tsv,cases.tsv,logs/,raw/,console.log} and OUT/summary.txt.
set -euo pipefail
# the whole script is one function, read before it runs: editing this file during a
# 15-minute run must not change the running script under its feet
main() {
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
LAB=$HERE/lab
INSTALL=0 VARIANTS=host,backports CALIB_ON=host TRAFFIC_ON=host OUT=$ROOT/target/klab BUILD=1 FAKE=0
while [ $# -gt 0 ]; do
  case $1 in
    --install) INSTALL=1; shift ;;
    --iproute2) VARIANTS=$2; shift 2 ;;
    --calib-on) CALIB_ON=$2; shift 2 ;;
    --traffic-on) TRAFFIC_ON=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --fake-qosctl) FAKE=1; BUILD=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    -*) echo "run-tier.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) break ;;
  esac
done
PATTERNS=("$@")
log() { echo "run-tier.sh: $*" >&2; }
now() { date +%s.%N; }
T0=$(now)

if [ "$(id -u)" != 0 ]; then
  echo "SKIP: kernel-lab tier needs root (qemu-system-x86 install and 9p share)" >&2; exit 77
fi
if ! command -v qemu-system-x86_64 > /dev/null; then
  if [ $INSTALL = 1 ]; then "$HERE/install-qemu.sh" >&2
  else echo "SKIP: qemu-system-x86_64 missing; run tests/klab/install-qemu.sh or pass --install" >&2; exit 77; fi
fi

CACHE=${KLAB_CACHE:-$HOME/.cache/qosctl-klab}
mkdir -p "$CACHE" "$OUT"
OUT=$(cd "$OUT" && pwd)

# the guest has no glibc beyond what tc needs: qosctl goes in statically linked
if [ $FAKE = 1 ]; then
  QOSCTL=$HERE/fake/qosctl
  log "SELF-TEST: the cases run against the raw-tc stand-in $QOSCTL, not against qosctl"
elif [ -n "${KLAB_QOSCTL:-}" ]; then
  QOSCTL=$KLAB_QOSCTL
else
  QOSCTL=${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/release/qosctl
  if [ $BUILD = 1 ]; then
    t=$(now)
    (cd "$ROOT" && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
      --target x86_64-unknown-linux-gnu --bin qosctl) >&2
    log "static qosctl built in $(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }') s"
  fi
fi
[ -x "$QOSCTL" ] || { log "no qosctl binary at $QOSCTL"; exit 3; }
[ $FAKE = 1 ] || file -b "$QOSCTL" 2> /dev/null | grep -q 'static' || log "warning: $QOSCTL does not look statically linked"

: > "$OUT/summary.txt"
overall=0
IFS=, read -r -a VLIST <<< "$VARIANTS"
for v in "${VLIST[@]}"; do
  case $v in host|backports) ;; *) log "bad --iproute2 variant '$v' (host or backports)"; exit 2 ;; esac
  t=$(now)
  labdir=$(KLAB_IPROUTE2=$v "$LAB/build.sh" "$CACHE" 2> "$OUT/build-$v.log") ||
    { log "lab build failed ($v); see $OUT/build-$v.log"; cat "$OUT/build-$v.log" >&2; exit 3; }
  tb=$(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  log "lab $v ready in ${tb}s: $labdir"

  share=$OUT/$v
  rm -rf "$share"; mkdir -p "$share/bin" "$share/guest" "$share/policies" "$share/out"
  cp "$QOSCTL" "$share/bin/qosctl"
  cp -r "$HERE/guest/." "$share/guest/"
  cp "$HERE/policies/"*.toml "$share/policies/" 2> /dev/null || true
  traffic=0
  if [ "$TRAFFIC_ON" = all ] || [[ ,$TRAFFIC_ON, == *,$v,* ]]; then traffic=1; fi
  printf 'KLAB_TRAFFIC=%s\nKLAB_CASE_TIMEOUT=%s\n' "$traffic" "${KLAB_CASE_TIMEOUT:-240}" > "$share/config"

  pats=("${PATTERNS[@]}")
  if [ ${#pats[@]} = 0 ]; then
    # default: everything, but the calibration cases only where asked (they measure the lab)
    if [[ ,$CALIB_ON, == *,$v,* ]]; then pats=('*'); else pats=('*' '!calib-*'); fi
  fi
  t=$(now)
  set +e
  "$LAB/run.sh" -t "${KLAB_VM_TIMEOUT:-900}" -s "$share" -k "$(basename "$labdir")" -l "$share/console.log" \
    "$CACHE" "$share/guest/main.sh" "${pats[@]}" > /dev/null
  rc=$?
  set -e
  tv=$(awk -v a="$t" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
  res=$share/out/results.tsv
  {
    echo "== iproute2=$v lab=$(basename "$labdir") traffic=$traffic vm=${tv}s exit=$rc"
    sed -n 's/^/   /p' "$share/out/guest-versions.txt" 2> /dev/null
    if [ -s "$share/out/cases.tsv" ]; then
      awk -F'\t' '{ printf "   %s %-28s %3d passed %3d failed checks %6.1fs\n", $1, $2, $3, $4, $5 }' "$share/out/cases.tsv"
    fi
    if [ -s "$res" ]; then
      awk -F'\t' '$1 == "FAIL" { printf "   FAIL [%s] %s: %s\n", $2, $3, $4 }' "$res"
    fi
  } | tee -a "$OUT/summary.txt"
  case $rc in
    0) ;;
    124) log "VM timed out ($v); console: $share/console.log"; overall=1 ;;
    125|126) log "VM failed ($v, rc=$rc); console: $share/console.log"; overall=1 ;;
    *) overall=1 ;;
  esac
  [ -s "$share/out/cases.tsv" ] || { log "no case ran ($v)"; overall=1; }
done
total=$(awk -v a="$T0" -v b="$(now)" 'BEGIN { printf "%.0f", b - a }')
if [ $overall = 0 ]; then verdict=PASS; else verdict=FAIL; fi
[ $FAKE = 1 ] && verdict="$verdict (SELF-TEST with the fake qosctl: says nothing about qosctl)"
echo "== kernel-lab tier: $verdict in ${total}s (results in $OUT)" | tee -a "$OUT/summary.txt"
exit $overall
}
main "$@"
