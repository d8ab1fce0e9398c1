# netem jitter distributions through qosctl: uniform (tc's default, no table) and normal, same
# delay 40ms and jitter 10ms. Uniform keeps every RTT inside delay±jitter; normal (σ = jitter)
# puts ~32 % outside. 400 pings each, judged on delay±(jitter+3ms): TCG adds rare stalls of a
# few ms (measured: 0 to 3 of 119 uniform RTTs at +2.6..+5.6 ms beyond the jitter), and normal
# still has 19.4 % beyond 1.3σ. Bounds: uniform ≤ 8 % (stalls only); normal at least the lower
# end of the 99.99 % binomial interval of 19.4 % (stalls only add to it). With 119 pings and a
# fixed 12 % the normal check had a ~2.6 % chance of failing by sampling alone.
P=$POL/netem-uniform.toml
q_step "check netem-uniform" 0 check "$P"
q_must "apply netem-uniform" apply "$P"
same_qdisc "uniform: no distribution table" veth0 34: netem delay 40ms 10ms
same_qdisc "normal" veth0 35: netem delay 40ms 10ms distribution normal
converged "netem-uniform" "$P"
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
if traffic; then
  for m in 34 35; do
    marks_reset; mark_icmp 0x$m
    ping_times j$m 400 0.01
    n=$(grep -c . "$RAW/j$m.rtt")
    out=$(awk -v b="$base" '{ d = $1 - b; if (d < 27 || d > 53) o++ } END { printf "%.3f", o / NR }' "$RAW/j$m.rtt")
    note "0x$m: $n RTTs, fraction outside 40ms±(10+3)ms: $out"
    if [ $m = 34 ]; then in_range "uniform jitter: fraction of RTTs outside delay±(jitter+3ms) (≤ 8 %: TCG stalls only)" "$out" 0 0.08
    else
      read -r lo _ <<< "$(binom_bounds "$n" 0.1936 0.9999)"
      in_range "normal jitter: fraction of RTTs outside delay±(jitter+3ms) (N(0,σ): 19.4 %; ≥ 99.99 % binomial lower bound of $n)" \
        "$out" "$(calc "$lo / $n")" 1
    fi
  done
fi
reset_done "netem-uniform" "$P" veth0
