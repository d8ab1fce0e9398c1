# ratechange.sh — sourced by the cases that change a class's rate under a running TCP flow.
# rate_change_run LABEL OLD_MBIT NEW_MBIT CMD: a flow to port 5201 (the case marks it into class
# 1:10 on veth0) runs 10 s; the class's byte and drop counters are sampled every ~0.5 s on the
# guest clock; CMD (a raw tc or a qosctl command line) runs 3.5 s into the flow.
# Why the class counter and not iperf3's intervals: iperf3's receiver reports at 5mbit alternate
# 9.4 / 0 Mbit/s under TCG (its reads are batched), which would look like stalls that are not
# there; the counter is what the kernel actually sent, on the same clock as the change.
# Checks: no 0.5 s interval stalls (each carries >= 25 % of the lower rate); the intervals before
# the change carry the old rate ±10 %, those from 1 s after it the new rate ±10 % (0.5 s samples
# are noisier than whole-flow averages); the interval that starts within 1 s of the change is at
# the new rate (see below for rate increases).
rate_change_run() {
  local n=$1 old=$2 new=$3 cmd=$4 t0 tch tdone rc d0 d1 q0 q1 i
  if no_traffic; then   # still make the change: the rest of the case depends on it
    eval "$cmd" > "$RAW/$n-change.txt" 2>&1 && pass "$n: change command" "'$cmd' exit 0" ||
      fail "$n: change command" "'$cmd' failed: $(head -c 300 "$RAW/$n-change.txt")"
    return 0
  fi
  iperf3 -c $PEER -p 5201 -t 10 -J > "$RAW/$n.json" 2> "$RAW/$n.err" &
  local pid=$!
  sleep 0.7   # iperf3 start-up under TCG
  d0=$(class_stat veth0 1:10 dropped); q0=$(qdisc_stat veth0 10: dropped)
  t0=$(uptime_s)
  : > "$RAW/$n.samples"
  # one tc call per sample: each tc run costs ~30 ms under TCG
  for i in $(seq 1 16); do
    echo "$(uptime_s) $(class_stat veth0 1:10 bytes)" >> "$RAW/$n.samples"
    if [ "$i" = 6 ]; then
      tch=$(uptime_s)
      eval "$cmd" > "$RAW/$n-change.txt" 2>&1; rc=$?
      tdone=$(uptime_s)
      echo "$tch CHANGE" >> "$RAW/$n.samples"
      # a sample right after the command: intervals from here on are entirely after the change
      echo "$(uptime_s) $(class_stat veth0 1:10 bytes)" >> "$RAW/$n.samples"
      tc -s -d class show dev veth0 classid 1:10 > "$RAW/$n-class-after-change.txt" 2>&1
    fi
    [ "$i" = 9 ] && tc -s -d class show dev veth0 classid 1:10 > "$RAW/$n-class-1s-after.txt" 2>&1
    kill -0 $pid 2> /dev/null || break
    sleep 0.45
  done
  wait $pid
  d1=$(class_stat veth0 1:10 dropped); q1=$(qdisc_stat veth0 10: dropped)
  if [ "$rc" = 0 ]; then pass "$n: rate change command" "'$cmd' exit 0, took $(calc "$tdone - $tch") s"
  else fail "$n: rate change command" "'$cmd' exit $rc: $(head -c 300 "$RAW/$n-change.txt")"; fi
  # intervals "START END MBPS" relative to the change (negative = before it)
  # the last sample may be after the flow ended: drop it
  sed -i '$d' "$RAW/$n.samples"
  awk -v c="$tch" '$2 == "CHANGE" { next }
      NR > 1 && pt != "" { printf "%.2f %.2f %.3f\n", pt - c, $1 - c, ($2 - pb) * 8 / ($1 - pt) / 1e6 }
      { pt = $1; pb = $2 }' "$RAW/$n.samples" > "$RAW/$n.iv"
  note "$n: ${old}mbit -> ${new}mbit while a TCP flow runs; class 1:10 Mbit/s (wire) per ~0.5 s, t relative to the change:" \
       "$(awk '{ printf "[%+.1f..%+.1f] %.2f  ", $1, $2, $3 }' "$RAW/$n.iv")"
  note "$n: class 1:10 drop counter $d0 -> $d1 (+$((d1 - d0)) packets), its leaf qdisc 10: $q0 -> $q1 (+$((q1 - q0))); iperf3 retransmits $(jq -r '.end.sum_sent.retransmits // "?"' "$RAW/$n.json" 2> /dev/null)," \
       "goodput $(jq -r '.end.sum_received.bits_per_second / 1e6' "$RAW/$n.json" 2> /dev/null) Mbit/s"
  local low=$old
  awk -v a="$new" -v b="$old" 'BEGIN { exit !(a < b) }' && low=$new
  in_range "$n: slowest interval, Mbit/s (no stall: >= 25 % of ${low}mbit)" \
    "$(awk 'NR == 1 || $3 < m { m = $3 } END { print m }' "$RAW/$n.iv")" "$(calc "$low * 0.25")" 100000
  near "$n: intervals before the change, Mbit/s (±10 % of ${old})" \
    "$(awk '$2 <= 0 && $1 >= -2.5 { s += $3; k++ } END { if (k) printf "%.3f", s / k }' "$RAW/$n.iv")" "$old" 10
  near "$n: intervals from 1 s after the change, Mbit/s (±10 % of ${new})" \
    "$(awk '$1 >= 1.0 { s += $3; k++ } END { if (k) printf "%.3f", s / k }' "$RAW/$n.iv")" "$new" 10
  # within a second: the first interval that starts after the command returned (it starts at the
  # command's own duration) must start within 1 s of the change and be at the new rate (±15 %:
  # a 0.5 s interval is timed around tc calls of ~30 ms, and the class's 16k burst is 5 % of
  # 0.5 s at 5mbit) when the rate went down; when it went up, TCP itself needs time to grow into the new rate,
  # so that interval only has to be half way from the old rate to the new one.
  local first start lo hi
  read -r start first <<< "$(awk '$1 >= 0 { print $1, $3; exit }' "$RAW/$n.iv")"
  if awk -v a="$new" -v b="$old" 'BEGIN { exit !(a < b) }'; then lo=$(calc "$new * 0.85"); hi=$(calc "$new * 1.15")
  else lo=$(calc "$old + ($new - $old) / 2"); hi=$(calc "$new * 1.15"); fi
  # The command's own duration bounds how late the change can land: the rate must be in effect
  # within 1 s of issuing the command. qosctl reads the live state, runs one tc -batch and reads
  # back; under TCG every process start costs tens of ms: a 1-command apply took 0.37-0.41 s
  # (raw tc class change: 0.11-0.25 s). Before main's 65a290e it took 0.8-3 s. A busy host
  # slows TCG down several times: see docs/kernel-lab.md.
  in_range "$n: the change command returned (new rate in effect) after, s" "$start" 0 1.0 s
  in_range "$n: first interval after the change, Mbit/s" "$first" "$lo" "$hi"
  # changed in place: the class's byte counter never goes backwards (delete + re-add restarts it)
  local back
  back=$(awk '$2 != "CHANGE" { if (p != "" && $2 < p) b++; p = $2 } END { print b + 0 }' "$RAW/$n.samples")
  eq "$n: class byte counter never restarted across the change (in place)" "$back" 0
}
