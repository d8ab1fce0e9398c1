# Guest side of tests/klab/capture/flower-versions.sh: applies match-flower-1 and -2 with qosctl
# (the lab's tc) and dumps the filters with every tc in guest/tcbin, into raw/<case>/<version>/.
P1=$POL/match-flower-1.toml P2=$POL/match-flower-2.toml
dump() {
  local t v
  for t in "$KLAB_SHARE"/guest/tcbin/tc-*; do
    v=${t##*/tc-}
    mkdir -p "$RAW/$v"
    "$t" -V > "$RAW/$v/version.txt" 2>&1
    "$t" -s -j filter show dev veth0 parent 1: > "$RAW/$v/filter-$1.json" 2>&1
    [ "$1" = 2 ] || "$t" -s filter show dev veth0 parent 1: > "$RAW/$v/filter-$1.txt" 2>&1
    if [ -s "$RAW/$v/filter-$1.json" ]; then pass "tc $v dumped step $1" "$(wc -c < "$RAW/$v/filter-$1.json") bytes"
    else fail "tc $v dumped step $1" "empty"; fi
  done
}
q_must "apply match-flower-1" apply "$P1"
dump 1
q_must "apply match-flower-2" apply "$P2"
dump 2
