# lib.sh — sourced by every guest case (bash, root, inside the kernel-lab VM).
#
# Topology (from the lab's /init): veth0 10.0.0.1/24 in the root netns <-> veth1 10.0.0.2/24 in
# netns "peer"; dummy0; ifb0, ifb1. Traffic is sent from the root netns to the peer, so everything
# we shape sits on veth0 egress. iperf3 servers listen in "peer" on ports 5201..5204 (main.sh).
#
# Results: every check appends one line "PASS|FAIL<TAB>case<TAB>check<TAB>detail" to
# $KLAB_OUT/results.tsv and echoes it to the console; raw tool output goes to $KLAB_OUT/raw/.
# A case "fails" if it records any FAIL, exits non-zero, or records nothing at all (main.sh).

: "${CASE:?CASE must name the running case}"
: "${KLAB_OUT:?}"
RAW=$KLAB_OUT/raw/$CASE
mkdir -p "$RAW"
PEER=10.0.0.2
POL=${KLAB_POLICIES:-$KLAB_SHARE/policies}

# ---------- results ----------
_result() {
  printf '%s\t%s\t%s\t%s\n' "$1" "$CASE" "$2" "$3" >> "$KLAB_OUT/results.tsv"
  printf '%s [%s] %s: %s\n' "$1" "$CASE" "$2" "$3"
}
pass() { _result PASS "$1" "$2"; }
fail() { _result FAIL "$1" "$2"; }
# fatal LABEL DETAIL: a step the rest of the case depends on failed; stop the case here.
fatal() { _result FAIL "$1" "$2"; exit 1; }
note() { printf 'NOTE [%s] %s\n' "$CASE" "$*"; printf 'NOTE\t%s\t%s\t\n' "$CASE" "$*" >> "$KLAB_OUT/results.tsv"; }

# in_range LABEL VALUE LO HI [UNIT]: numeric check; an empty or non-numeric VALUE fails.
in_range() {
  local l=$1 v=$2 lo=$3 hi=$4 u=${5:-}
  if [[ $v =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] &&
     awk -v v="$v" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(v >= lo && v <= hi) }'; then
    pass "$l" "$v$u (expected $lo..$hi$u)"
  else
    fail "$l" "${v:-<no value>}$u (expected $lo..$hi$u)"
  fi
}
# near LABEL VALUE WANT TOL_PERCENT [UNIT]: VALUE within ±TOL % of WANT.
near() {
  local lo hi
  lo=$(awk -v w="$3" -v t="$4" 'BEGIN { printf "%.4f", w * (1 - t / 100) }')
  hi=$(awk -v w="$3" -v t="$4" 'BEGIN { printf "%.4f", w * (1 + t / 100) }')
  in_range "$1" "$2" "$lo" "$hi" "${5:-}"
}
# eq LABEL GOT WANT
eq() { if [ "$2" = "$3" ]; then pass "$1" "$2"; else fail "$1" "got '$2', want '$3'"; fi; }
# calc EXPR: floating point arithmetic (awk), e.g. calc "$a / $b"
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }

# traffic: true unless this run reads back only (KLAB_TRAFFIC=0: the second tc variant, where
# the kernel and so the traffic are the same, and only tc's output format differs).
traffic() { [ "${KLAB_TRAFFIC:-1}" != 0 ]; }
_skipped=0
no_traffic() { traffic && return 1; [ $_skipped = 1 ] || note "traffic checks skipped in this variant (KLAB_TRAFFIC=0)"; _skipped=1; return 0; }

# ---------- qosctl ----------
# q ARGS...: run qosctl, keep stdout+stderr in $RAW/qosctl-N.txt, echo them, return its status.
QN=0
q() {
  QN=$((QN + 1))
  local f=$RAW/qosctl-$QN.txt rc
  qosctl "$@" > "$f" 2>&1; rc=$?
  { echo "\$ qosctl $* -> exit $rc"; sed 's/^/  | /' "$f"; } | head -n 60
  QRC=$rc QOUT=$f
  return $rc
}
# q_step LABEL WANT_RC ARGS...: run qosctl and record PASS/FAIL on its exit status. An apply or
# reset that is "not implemented yet" is a FAIL like any other (the tier must not go green early).
q_step() {
  local l=$1 want=$2; shift 2
  q "$@"
  if [ "$QRC" = "$want" ]; then
    pass "$l" "qosctl $* exited $QRC"
  else
    fail "$l" "qosctl $* exited $QRC, want $want: $(grep -m1 -i 'error' "$QOUT" || head -c 200 "$QOUT")"
    return 1
  fi
}
# q_must LABEL ARGS...: like q_step with exit 0, but the case stops when it fails.
q_must() { local l=$1; shift; q_step "$l" 0 "$@" || exit 1; }
# in_sync LABEL POLICY: a re-plan of POLICY must be empty (dry run, detailed exit code 0).
in_sync() { q_step "$1" 0 apply --dry-run --detailed-exitcode "$2"; }
# pending LABEL POLICY: a re-plan of POLICY must not be empty (detailed exit code 2).
pending() { q_step "$1" 2 apply --dry-run --detailed-exitcode "$2"; }

# ---------- reading tc state with plain tc (independent of qosctl's reader) ----------
# qdisc_line DEV HANDLE [NS]: the `tc -d qdisc show` line of qdisc HANDLE ("10:"), whitespace squeezed.
qdisc_line() {
  if [ -n "${3:-}" ]; then tc -n "$3" -d qdisc show dev "$1"; else tc -d qdisc show dev "$1"; fi |
    awk -v h="$2" '$1 == "qdisc" && $3 == h { $1 = $1; print; exit }'
}
# class_line DEV CLASSID: the `tc -d class show` line of class CLASSID ("1:10").
class_line() { tc -d class show dev "$1" | awk -v h="$2" '$1 == "class" && $3 == h { $1 = $1; print; exit }'; }
# fw_filters DEV: "mark classid" per fw filter on the root qdisc, sorted. Text output: fw JSON is
# broken in iproute2 6.1, and the text form is the same in every version we run.
fw_filters() {
  tc filter show dev "$1" | awk '/ fw / { m = ""; c = ""
      for (i = 1; i <= NF; i++) { if ($i == "handle") m = $(i + 1); if ($i == "classid" || $i == "flowid") c = $(i + 1) }
      if (m != "") print m, c }' | sort | tr '\n' ';'
}
# has LABEL TEXT WORDS...: TEXT contains each of WORDS (space-separated token sequences).
has() {
  local l=$1 s=$2 t=" $2 " w miss=
  shift 2
  for w in "$@"; do case $t in *" $w "*) ;; *) miss+="'$w' " ;; esac; done
  if [ -z "$miss" ]; then pass "$l" "$s"; else fail "$l" "missing $miss in: $s"; fi
}
# lacks LABEL TEXT WORDS...: TEXT contains none of WORDS.
lacks() {
  local l=$1 s=$2 t=" $2 " w bad=
  shift 2
  for w in "$@"; do case $t in *" $w "*) bad+="'$w' " ;; esac; done
  if [ -z "$bad" ]; then pass "$l" "none of $* in: $s"; else fail "$l" "unexpected $bad in: $s"; fi
}
# root_kind DEV [NS]: the kind of the root qdisc ("noqueue" when nothing is configured on a veth).
root_kind() {
  if [ -n "${2:-}" ]; then tc -n "$2" qdisc show dev "$1"; else tc qdisc show dev "$1"; fi |
    awk '$1 == "qdisc" && / root / { print $2; exit }'
}
# class_stat DEV CLASSID FIELD: bytes|pkts|dropped|overlimits from `tc -s class show`.
class_stat() {
  tc -s class show dev "$1" | awk -v h="$2" -v f="$3" '
    $1 == "class" { cur = ($3 == h) }
    cur && $1 == "Sent" { gsub(/[(),]/, " "); split("", v)
      for (i = 1; i <= NF; i++) { if ($i == "Sent") v["bytes"] = $(i + 1); if ($i == "bytes") v["pkts"] = $(i + 1)
        if ($i == "dropped") v["dropped"] = $(i + 1); if ($i == "overlimits") v["overlimits"] = $(i + 1) }
      print v[f] + 0; exit }'
}
# qdisc_stat DEV HANDLE FIELD: bytes|pkts|dropped|overlimits from `tc -s qdisc show`.
qdisc_stat() {
  tc -s qdisc show dev "$1" | awk -v h="$2" -v f="$3" '
    $1 == "qdisc" { cur = ($3 == h) }
    cur && $1 == "Sent" { gsub(/[(),]/, " ")
      for (i = 1; i <= NF; i++) { if ($i == "Sent") v["bytes"] = $(i + 1); if ($i == "bytes") v["pkts"] = $(i + 1)
        if ($i == "dropped") v["dropped"] = $(i + 1); if ($i == "overlimits") v["overlimits"] = $(i + 1) }
      print v[f] + 0; exit }'
}

# ---------- marking packets the way users do: nftables ----------
nft_init() {
  nft list table inet qx > /dev/null 2>&1 && return 0
  nft add table inet qx && nft 'add chain inet qx out { type filter hook output priority 0; }'
}
# mark_tcp PORT MARK: TCP to the peer on PORT (both directions of the iperf3 control+data
# connections leave veth0 with this mark).
mark_tcp() { nft_init && nft add rule inet qx out ip daddr $PEER tcp dport "$1" meta mark set "$2"; }
mark_udp() { nft_init && nft add rule inet qx out ip daddr $PEER udp dport "$1" meta mark set "$2"; }
mark_icmp() { nft_init && nft add rule inet qx out ip daddr $PEER icmp type echo-request meta mark set "$1"; }

# ---------- traffic ----------
# tcp_mbps NAME PORT SECS [iperf3 args]: receiver-side TCP goodput in Mbit/s (first second omitted).
tcp_mbps() {
  local n=$1 p=$2 s=$3; shift 3
  iperf3 -c $PEER -p "$p" -t "$s" -O 1 -J "$@" > "$RAW/$n.json" 2> "$RAW/$n.err"
  jq -r '.end.sum_received.bits_per_second / 1e6 | . * 100 | round / 100' "$RAW/$n.json" 2> /dev/null
}
# tcp_pair NAME SECS PORT_A PORT_B: two concurrent flows; prints "MBPS_A MBPS_B".
tcp_pair() {
  local n=$1 s=$2
  iperf3 -c $PEER -p "$3" -t "$s" -O 1 -J > "$RAW/$n-a.json" 2> "$RAW/$n-a.err" &
  local pa=$!
  iperf3 -c $PEER -p "$4" -t "$s" -O 1 -J > "$RAW/$n-b.json" 2> "$RAW/$n-b.err" &
  local pb=$!
  wait $pa $pb
  echo "$(jq -r '.end.sum_received.bits_per_second / 1e6 | . * 100 | round / 100' "$RAW/$n-a.json" 2> /dev/null)" \
       "$(jq -r '.end.sum_received.bits_per_second / 1e6 | . * 100 | round / 100' "$RAW/$n-b.json" 2> /dev/null)"
}
# ping_times NAME COUNT INTERVAL: per-packet RTTs (ms) into $RAW/NAME.rtt, first packet dropped
# (ARP and cold caches make it 10-25 ms under TCG).
ping_times() {
  ping -c "$2" -i "$3" -W 2 $PEER > "$RAW/$1.txt" 2>&1
  awk -F'time=' 'NF > 1 { split($2, a, " "); print a[1] }' "$RAW/$1.txt" | tail -n +2 > "$RAW/$1.rtt"
}
# median FILE: median of the numbers in FILE.
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { if (NR == 0) exit 1; if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
# rtt_ms NAME [COUNT] [INTERVAL]: median ping RTT in ms (median: TCG adds rare multi-ms stalls).
rtt_ms() { ping_times "$1" "${2:-30}" "${3:-0.1}"; median "$RAW/$1.rtt"; }
# jitter_delay LABEL NAME BASE_MS WANT_MS JITTER_MS [CORR] [TIMERS]: the median of the RTTs in
# $RAW/NAME.rtt (from ping_times) minus BASE_MS is WANT_MS within ±(2 ms + 3 standard errors of
# that median), plus LATE_MS more above it for each netem timer past the first on the path.
# 2 ms is the tolerance of every delay check (TCG noise; each netem timer fires 0.3-0.5 ms late
# under TCG on an idle host). The standard error of a median of n RTTs whose delay is spread by
# JITTER_MS is 1.2533·σ/√n for a normal σ = JITTER_MS, and less for uniform jitter
# (JITTER_MS/√n), so this bound holds for both. netem's delay correlation CORR (a fraction)
# makes successive delays alike: n is replaced by n·(1-CORR)/(1+CORR). Without this term a ±2 ms
# bound on 39 RTTs with 5 ms normal jitter (standard error ~1 ms) failed about one run in twenty.
jitter_delay() {
  local f=$RAW/$2.rtt n r tol up
  n=$(grep -c . "$f"); r=$(median "$f")
  tol=$(awk -v n="$n" -v j="$5" -v c="${6:-0}" \
    'BEGIN { ne = n * (1 - c) / (1 + c); printf "%.2f", 2 + 3 * 1.2533 * j / sqrt(ne) }')
  up=$(awk -v t="$tol" -v k="${7:-1}" -v l="$LATE_MS" 'BEGIN { printf "%.2f", t + (k - 1) * l }')
  note "$2: $n RTTs, median $r ms, baseline $3 ms, tolerance -$tol/+$up ms"
  in_range "$1: median RTT - baseline, ms (-$tol/+$up: 2 ms + 3 standard errors of the median of $n${7:+, + $LATE_MS ms late per extra netem timer})" \
    "$(calc "$r - $3")" "$(calc "$4 - $tol")" "$(calc "$4 + $up")"
}
# LATE_MS: how late one more netem timer on a ping's path may fire, on top of the 2 ms every delay
# check allows. Timers fire late, never early, so only the upper bound grows. On a loaded CI host
# (its lab VM ran 25 % slower than ours) the two timers of ex-test-range (veth0's and the far
# side's) together came 2.3 and 4.2 ms above the set delays, while every one-timer check stayed
# within 2 ms; on our host the 60 + 30 ms check came 1.9 ms above, at the edge of ±2.
LATE_MS=2
# ping_loss NAME COUNT INTERVAL: prints "SENT RECEIVED".
ping_loss() {
  ping -c "$2" -i "$3" -W 1 -q $PEER > "$RAW/$1.txt" 2>&1
  awk '/packets transmitted/ { print $1, $4 }' "$RAW/$1.txt"
}
# binom_bounds N P CONF: the central CONF interval [lo, hi] of Binomial(N, P), exact (pmf summed
# in log space so (1-p)^n does not underflow); prints "LO HI".
binom_bounds() {
  awk -v n="$1" -v p="$2" -v c="$3" 'BEGIN {
    a = (1 - c) / 2; lp = log(p); lq = log(1 - p); lc = 0; cdf = 0; lo = -1
    for (k = 0; k <= n; k++) {
      if (k > 0) lc += log(n - k + 1) - log(k)
      cdf += exp(lc + k * lp + (n - k) * lq)
      if (lo < 0 && cdf > a) lo = k
      if (cdf >= 1 - a) { hi = k; break }
    }
    print lo, hi }'
}
# flow_intervals NAME PORT SECS: run one TCP flow with 0.5 s reports; the receiver's per-interval
# Mbit/s (from --get-server-output) go to $RAW/NAME.iv as "START END MBPS" lines.
flow_intervals() {
  iperf3 -c $PEER -p "$2" -t "$3" -i 0.5 -J --get-server-output > "$RAW/$1.json" 2> "$RAW/$1.err"
  jq -r '(.server_output_json.intervals // .intervals)[] | .sum | "\(.start) \(.end) \(.bits_per_second / 1e6)"' \
    "$RAW/$1.json" > "$RAW/$1.iv" 2> /dev/null
}
# uptime_s: seconds since boot, 2 decimals (busybox date has no %N).
uptime_s() { cut -d' ' -f1 /proc/uptime; }

# ---------- raw tc setups shared by calibration cases ----------
# htb_root DEV RATE [DEFAULT_MINOR] [ROOT_BURST]: root htb 1: and root class 1:1 at RATE. The root
# class gets burst 16k unless ROOT_BURST says otherwise: a class that borrows is limited by its
# parent's bucket too, and with tc's default burst (1 MTU) that under-delivers under TCG.
htb_root() {
  tc qdisc add dev "$1" root handle 1: htb default "${3:-99}" &&
  tc class add dev "$1" parent 1: classid 1:1 htb rate "$2" ceil "$2" ${4:-burst 16k cburst 16k}
}
# class_rate DEV CLASSID SECS: the class's own byte counter over SECS seconds, in Mbit/s on the wire
# (what HTB shapes: Ethernet + IP + TCP headers included).
class_rate() {
  local b0 b1 t0 t1
  b0=$(class_stat "$1" "$2" bytes); t0=$(uptime_s)
  sleep "$3"
  b1=$(class_stat "$1" "$2" bytes); t1=$(uptime_s)
  calc "($b1 - $b0) * 8 / ($t1 - $t0) / 1e6"
}
# flow_class_rate NAME PORT DEV CLASSID: a 6 s TCP flow to PORT; the class's wire rate measured from
# 1.5 s to 5.0 s (after slow start, before the end); prints "WIRE_MBPS GOODPUT_MBPS".
flow_class_rate() {
  iperf3 -c $PEER -p "$2" -t 6 -J > "$RAW/$1.json" 2> "$RAW/$1.err" &
  local pid=$! w
  sleep 1.5
  w=$(class_rate "$3" "$4" 3.5)
  wait $pid
  echo "$w $(jq -r '.end.sum_received.bits_per_second / 1e6 | . * 100 | round / 100' "$RAW/$1.json" 2> /dev/null)"
}
# within VALUE WANT TOL_PERCENT: true if VALUE is within ±TOL % of WANT.
within() { [ -n "$1" ] && awk -v v="$1" -v w="$2" -v t="$3" 'BEGIN { exit !(v >= w * (1 - t / 100) && v <= w * (1 + t / 100)) }'; }
# measure_rate NAME PORT CLASSID WANT_MBIT: flow_class_rate on veth0; when the class counter is
# off by more than 5 %, measure once more (TCG timing suffers when the host is busy; see
# docs/kernel-lab.md) and keep the second. Sets MR_W (class counter, wire Mbit/s), MR_G (iperf3
# goodput), MR_JSON and MR_FIRST (the first wire value when a second try was needed).
measure_rate() {
  local try
  MR_FIRST=
  for try in 1 2; do
    read -r MR_W MR_G <<< "$(flow_class_rate "$1-$try" "$2" veth0 "$3")"
    MR_JSON=$RAW/$1-$try.json
    within "$MR_W" "$4" 5 && break
    [ $try = 1 ] && MR_FIRST=$MR_W
  done
}
# check_rate LABEL WANT_MBIT: judge the last measure_rate. The class counter (the wire rate HTB
# delivers) within ±5 %; iperf3's goodput converted to wire rate (x (MSS+66)/MSS) within ±10 %
# as a cross-check from the receiver's side (it also moves with TCP's own dynamics).
check_rate() {
  local mss gw
  mss=$(jq -r '.start.tcp_mss_default // 1448' "$MR_JSON" 2> /dev/null)
  gw=$(calc "${MR_G:-0} * ($mss + 66) / $mss")
  [ -n "$MR_FIRST" ] && note "$1: first try $MR_FIRST Mbit/s was outside ±5 %; second try judged"
  note "$1: class counter $MR_W Mbit/s on the wire; iperf3 goodput $MR_G Mbit/s = $gw Mbit/s on the wire"
  near "$1: class counter, wire Mbit/s (±5 % of $2)" "$MR_W" "$2" 5
  near "$1: iperf3 goodput as wire Mbit/s (±10 % of $2)" "$gw" "$2" 10
}
# share_check CLASS_A CLASS_B LINK_MBIT SHARE_A: flows to 5201 (marked into A) and 5202 (into B)
# saturate both; A's part of the link is SHARE_A ±5 % (relative) and the link is full ±5 %; then
# A alone borrows up to the link (its ceil) ±5 %. Class counters over 3.5 s of running flows.
share_check() {
  local a b try
  for try in 1 2; do
    read -r a b <<< "$(share_measure "$1" "$2" "$try")"
    within "$(calc "$a / ($a + $b)")" "$4" 5 && within "$(calc "$a + $b")" "$3" 5 && break
    [ $try = 1 ] && note "both saturated, first try: $a / $b Mbit/s outside ±5 %; measuring once more"
  done
  note "both saturated: class $1 $a Mbit/s, class $2 $b Mbit/s (wire, class counters);" \
       "goodput $(jq -r '.end.sum_received.bits_per_second / 1e6' "$RAW/share-a-$try.json") / $(jq -r '.end.sum_received.bits_per_second / 1e6' "$RAW/share-b-$try.json") Mbit/s"
  near "share of class $1 when both saturate (±5 % of $4)" "$(calc "$a / ($a + $b)")" "$4" 5
  near "link total when both saturate, wire Mbit/s (±5 % of $3)" "$(calc "$a + $b")" "$3" 5
  marks_reset; mark_tcp 5201 0x10
  measure_rate borrow 5201 "$1" "$3"
  check_rate "class $1 alone borrows up to its ceil $3mbit" "$3"
}
# share_measure CLASS_A CLASS_B TRY: prints the two classes' wire Mbit/s over 3.5 s of two flows.
share_measure() {
  iperf3 -c $PEER -p 5201 -t 7 -J > "$RAW/share-a-$3.json" 2> "$RAW/share-a-$3.err" &
  local p1=$!
  iperf3 -c $PEER -p 5202 -t 7 -J > "$RAW/share-b-$3.json" 2> "$RAW/share-b-$3.err" &
  local p2=$!
  sleep 2
  local a0 b0 t0 a1 b1 t1
  a0=$(class_stat veth0 "$1" bytes); b0=$(class_stat veth0 "$2" bytes); t0=$(uptime_s)
  sleep 3.5
  a1=$(class_stat veth0 "$1" bytes); b1=$(class_stat veth0 "$2" bytes); t1=$(uptime_s)
  wait $p1 $p2
  echo "$(calc "($a1 - $a0) * 8 / ($t1 - $t0) / 1e6") $(calc "($b1 - $b0) * 8 / ($t1 - $t0) / 1e6")"
}

# ---------- comparing live state with what plain tc makes of the same parameters ----------
# qdisc_opts LINE: the options of a `tc -d qdisc show` line: everything after "parent X:Y" or
# "root [refcnt N]" (so handle, parent and refcnt do not matter), with the kind in front.
qdisc_opts() {
  awk '{ k = $2; o = ""; s = 0
         for (i = 4; i <= NF; i++) {
           if (s == 0 && $i == "parent") { i++; s = 1; continue }
           if (s == 0 && $i == "root") { s = 1; if ($(i + 1) == "refcnt") i += 2; continue }
           if (s == 1) o = o " " $i }
         print k o }' <<< "$1"
}
# ref_qdisc KIND OPTS...: the options line tc prints for a qdisc made from scratch with OPTS (on
# ifb1, which nothing else uses). This is the expected read-back: a field the policy dropped
# shows up as a difference, where `tc qdisc change` would have left it stale.
ref_qdisc() {
  tc qdisc del dev ifb1 root 2> /dev/null
  tc qdisc add dev ifb1 root handle 1: "$@" > "$RAW/ref-qdisc.err" 2>&1 || { echo "REF-FAILED: $(cat "$RAW/ref-qdisc.err")"; return; }
  qdisc_opts "$(qdisc_line ifb1 1:)"
  tc qdisc del dev ifb1 root 2> /dev/null
}
# same_qdisc LABEL DEV HANDLE KIND OPTS...: the live qdisc HANDLE on DEV reads back exactly like a
# fresh KIND OPTS (DEV may be "NS/DEV" for a device in a netns; HANDLE "root" for the root qdisc).
same_qdisc() {
  local l=$1 dev=$2 h=$3 live want ns=; shift 3
  case $dev in */*) ns=${dev%/*}; dev=${dev#*/} ;; esac
  if [ "$h" = root ]; then live=$(root_line "$dev" "$ns"); else live=$(qdisc_line "$dev" "$h" "$ns"); fi
  live=$(qdisc_opts "$live"); want=$(ref_qdisc "$@")
  if [ -n "$live" ] && [ "$live" = "$want" ]; then pass "$l" "$dev $h: $live"
  else fail "$l" "$dev $h: live '${live:-<none>}' != tc's own '$want'"; fi
}
# root_line DEV [NS]: the root qdisc's line.
root_line() {
  if [ -n "${2:-}" ]; then tc -n "$2" -d qdisc show dev "$1"; else tc -d qdisc show dev "$1"; fi |
    awk '$1 == "qdisc" && / root / { $1 = $1; print; exit }'
}
# class_has LABEL DEV CLASSID WORDS...: the class line holds WORDS ("rate 10Mbit", "parent 1:1").
class_has() { local l=$1 d=$2 c=$3; shift 3; has "$l" "$(class_line "$d" "$c")" "$@"; }
# fw_is LABEL DEV "MARK CLASSID;...": the fw filters on DEV are exactly these (sorted by mark).
fw_is() { eq "$1" "$(fw_filters "$2")" "$3"; }
# marks_reset: forget every nftables mark rule (the table stays).
marks_reset() { nft flush chain inet qx out 2> /dev/null; true; }
# reset_done LABEL POLICY DEVS...: `qosctl reset POLICY`, then each DEV is back at the kernel
# default (no htb/netem root, no fw filter) and a dry run of POLICY has changes pending again.
reset_done() {
  local l=$1 p=$2 d k; shift 2
  q_step "$l: qosctl reset" 0 reset "$p"
  for d in "$@"; do
    k=$(root_kind "$d")
    case $k in htb|netem|cake|fq_codel|sfq|pfifo|bfifo|tbf) fail "$l: $d back to the kernel default" "root qdisc is still $k" ;;
      *) pass "$l: $d back to the kernel default" "root qdisc ${k:-none}" ;; esac
    eq "$l: $d has no fw filters" "$(fw_filters "$d")" ""
  done
  pending "$l: after reset, a dry run has changes pending" "$p"
}
# converged LABEL POLICY: re-applying changes nothing: dry run exit 0, and a real apply with
# --detailed-exitcode exits 0 too (it would exit 2 had it run any command).
converged() {
  in_sync "$1: dry run is in sync (exit 0)" "$2"
  q apply --dry-run --json "$2" > /dev/null
  cp "$QOUT" "$RAW/plan-$(basename "$2" .toml).json" 2> /dev/null
  eq "$1: dry run --json: no commands, in_sync" \
    "$(jq -r '"\(.commands | length) commands, in_sync \(.in_sync)"' "$QOUT" 2> /dev/null)" "0 commands, in_sync true"
  q_step "$1: apply again runs 0 mutating commands (exit 0)" 0 apply --detailed-exitcode "$2"
}
# counter_kept LABEL BEFORE AFTER: a counter did not restart (the object was changed in place,
# not deleted and re-created).
counter_kept() {
  if [ -n "$2" ] && [ -n "$3" ] && [ "$3" -ge "$2" ] && [ "$2" -gt 0 ]; then pass "$1" "$2 -> $3 bytes"
  else fail "$1" "${2:-?} -> ${3:-?} bytes (a restart means delete + re-add)"; fi
}
# mark_rate LABEL MARK CLASSID WANT_MBIT: a TCP flow marked MARK (nftables) gets WANT_MBIT.
mark_rate() {
  no_traffic && return 0
  marks_reset; mark_tcp 5201 "$2"
  measure_rate "rate-$2" 5201 "$3" "$4"
  check_rate "$1" "$4"
}
# mark_delay LABEL MARK WANT_MS BASE_MS: pings marked MARK see WANT_MS ±2 ms above BASE_MS (median).
mark_delay() {
  local r
  no_traffic && return 0
  marks_reset; mark_icmp "$2"
  r=$(rtt_ms "rtt-$2" 30 0.1)
  in_range "$1: median RTT - baseline, ms (±2)" "$(calc "$r - $4")" "$(calc "$3 - 2")" "$(calc "$3 + 2")"
}
