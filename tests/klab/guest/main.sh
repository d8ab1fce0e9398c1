#!/bin/bash
# main.sh [PATTERN...] — the guest side of the kernel-lab tier: one VM boot runs many cases.
# Copied into the guest by run.sh; the share (/mnt/host = $KLAB_SHARE) holds:
#   bin/qosctl (static), guest/lib.sh, guest/cases/*.sh, policies/*.toml; out/ receives the results.
# Runs every guest/cases/*.sh whose name matches one of PATTERNs (shell globs; default: all) and
# no !PATTERN,
# each in its own bash with a clean tc/nft state and its own time limit.
# Exit status: 0 if every case passed, 1 otherwise (the host reads out/results.tsv for details).
set -u
S=${KLAB_SHARE:?the tier needs the 9p share (run.sh -s DIR)}
export KLAB_OUT=$S/out KLAB_POLICIES=$S/policies
# settings from the host (run-tier.sh): KLAB_TRAFFIC, KLAB_CASE_TIMEOUT
# shellcheck disable=SC1091
[ -f "$S/config" ] && . "$S/config"
export KLAB_TRAFFIC=${KLAB_TRAFFIC:-1}
# The binaries run from the guest's RAM, not from the share: the 9p mount has no page cache
# (sync), so every exec of the 40 MB static qosctl read it over 9p again under TCG: a
# one-command apply took 1.1-1.5 s from the share and 0.37-0.47 s from tmpfs, in one VM, and
# `qosctl --version` 0.4-0.6 s against 0.06-0.07 s. The lab measures qosctl, not the share.
BIN=$(mktemp -d /tmp/klab-bin.XXXXXX)
cp "$S"/bin/* "$BIN"/
export PATH=$BIN:$PATH
mkdir -p "$KLAB_OUT/raw" "$KLAB_OUT/logs"
: > "$KLAB_OUT/results.tsv"
: > "$KLAB_OUT/cases.tsv"
CASE_TIMEOUT=${KLAB_CASE_TIMEOUT:-240}

{ echo "kernel $(uname -r)"; tc -V; qosctl --version 2>&1; nft --version; iperf3 --version | head -n1; } |
  tee "$KLAB_OUT/guest-versions.txt"

# clean slate between cases: no qdisc trees, no marks, no leftover iperf3 clients
clean() {
  local d
  for d in veth0 dummy0 ifb0 ifb1; do
    tc qdisc del dev $d root 2> /dev/null
    tc qdisc del dev $d ingress 2> /dev/null
  done
  tc -n peer qdisc del dev veth1 root 2> /dev/null
  nft flush ruleset 2> /dev/null
  pkill -x iperf3 2> /dev/null   # clients only: the servers live in netns "peer", restarted below
  ip netns exec peer true
}
servers() {
  local p
  ip netns pids peer 2> /dev/null | xargs -r kill 2> /dev/null
  sleep 0.2
  for p in 5201 5202 5203 5204; do ip netns exec peer iperf3 -s -p $p -D; done
  sleep 0.5
}

want() {  # want NAME: NAME matches a PATTERN and no !PATTERN (no patterns: every case)
  local p hit=0
  [ ${#PATS[@]} = 0 ] && return 0
  for p in "${PATS[@]}"; do
    # shellcheck disable=SC2053  # the pattern is a glob on purpose
    case $p in
      !*) [[ $1 == ${p#!} ]] && return 1 ;;
      *) [[ $1 == $p ]] && hit=1 ;;
    esac
  done
  [ $hit = 1 ]
}
PATS=("$@")
total=0 failed=0
for f in "$S"/guest/cases/*.sh; do
  name=$(basename "$f" .sh)
  want "$name" || continue
  total=$((total + 1))
  clean; servers
  echo "=== CASE $name"
  t0=$(cut -d' ' -f1 /proc/uptime)
  CASE=$name timeout -s KILL "$CASE_TIMEOUT" bash -c '. "$1"; . "$2"' _ "$S/guest/lib.sh" "$f" \
    > "$KLAB_OUT/logs/$name.log" 2>&1
  rc=$?
  t1=$(cut -d' ' -f1 /proc/uptime)
  cat "$KLAB_OUT/logs/$name.log"
  nfail=$(awk -F'\t' -v c="$name" '$1 == "FAIL" && $2 == c' "$KLAB_OUT/results.tsv" | wc -l)
  npass=$(awk -F'\t' -v c="$name" '$1 == "PASS" && $2 == c' "$KLAB_OUT/results.tsv" | wc -l)
  if [ $rc = 137 ] || [ $rc = 124 ] || [ $rc = 143 ]; then
    printf 'FAIL\t%s\ttimeout\tkilled after %ss\n' "$name" "$CASE_TIMEOUT" >> "$KLAB_OUT/results.tsv"; nfail=$((nfail + 1))
  elif [ $rc != 0 ] && [ "$nfail" = 0 ]; then
    printf 'FAIL\t%s\texit status\tcase exited %s\n' "$name" "$rc" >> "$KLAB_OUT/results.tsv"; nfail=1
  elif [ "$npass" = 0 ] && [ "$nfail" = 0 ]; then
    printf 'FAIL\t%s\tno checks\tthe case recorded no result\n' "$name" >> "$KLAB_OUT/results.tsv"; nfail=1
  fi
  verdict=PASS; [ "$nfail" = 0 ] || { verdict=FAIL; failed=$((failed + 1)); }
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  printf '%s\t%s\t%s\t%s\t%s\n' "$verdict" "$name" "$npass" "$nfail" "$secs" >> "$KLAB_OUT/cases.tsv"
  echo "=== $verdict $name ($npass passed, $nfail failed checks, ${secs}s)"
done
clean
echo "=== guest: $((total - failed))/$total cases passed"
[ "$total" -gt 0 ] && [ "$failed" = 0 ]
