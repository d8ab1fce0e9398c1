#!/bin/bash
# flower-versions.sh — how tests/fixtures/tc/kernel-lab-*-iproute2-<v>-flower/ were made: qosctl's
# flower filters (tests/klab/policies/match-flower-1.toml, then -2.toml) applied in the kernel lab
# (its own tc, iproute2 6.1) and dumped by the tc of every iproute2 release in TCDIR.
#
#   tests/klab/capture/flower-versions.sh TCDIR OUTDIR
#
# TCDIR holds tc binaries named tc-<version>, built from the release tags of iproute2 with
# `git archive v5.4.0 | tar -x; ./configure; make SUBDIRS="lib tc" CCOPTS="-O2 -pipe -fcommon"`
# on Debian 12: dynamically linked against libc and libm only, which the lab's guest has (a
# static tc cannot find its filter modules and prints `[Unknown filter]`). OUTDIR gets one
# directory per version with filter-1.json, filter-1.txt and filter-2.json. Not part of the
# tier: it needs those binaries, which the repository does not carry. Needs root and qemu,
# like the tier, and the tier's static qosctl (KLAB_QOSCTL, default: where the tier builds it).
set -euo pipefail
TCDIR=$(cd "${1:?usage: flower-versions.sh TCDIR OUTDIR}" && pwd)
OUTDIR=${2:?usage: flower-versions.sh TCDIR OUTDIR}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
KLAB_QOSCTL=${KLAB_QOSCTL:-${CARGO_TARGET_DIR:-$ROOT/target}/x86_64-unknown-linux-gnu/release/qosctl}
[ -x "$KLAB_QOSCTL" ] || { echo "flower-versions.sh: no static qosctl at $KLAB_QOSCTL: run tests/klab/run-tier.sh once, or set KLAB_QOSCTL" >&2; exit 3; }
export KLAB_QOSCTL
WORK=$(mktemp -d /tmp/qx-flower-capture.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# A copy of the tier whose only case is the capture, with the binaries inside its guest tree.
cp -r "$HERE" "$WORK/klab"
rm -f "$WORK/klab/guest/cases/"*.sh
cp "$HERE/capture/guest-flower-versions.sh" "$WORK/klab/guest/cases/capture-flower.sh"
mkdir -p "$WORK/klab/guest/tcbin"
cp "$TCDIR"/tc-* "$WORK/klab/guest/tcbin/"
rc=0
bash "$WORK/klab/run-tier.sh" --iproute2 host --traffic-on none --calib-on none --out "$WORK/out" \
  --no-build capture-flower || rc=$?
mkdir -p "$OUTDIR"
cp -r "$WORK/out/host/out/raw/capture-flower/." "$OUTDIR/"
exit $rc
