# Interface-level netem without classes (the test-range case) through qosctl, with traffic:
# the delay shows in ping RTT, the loss on 2,000 pings is inside its 99.99 % binomial bound.
P1=$POL/iface-netem-1.toml P2=$POL/iface-netem-2.toml
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
q_step "check iface-netem-1" 0 check "$P1"
q_must "apply iface-netem-1" apply "$P1"
same_qdisc "veth0 root netem reads back as set" veth0 root netem delay 50ms loss 10%
eq "no classes on veth0" "$(tc class show dev veth0 | wc -l)" 0
converged "iface-netem-1" "$P1"
loss_check() {  # loss_check LABEL P_PERCENT
  no_traffic && return 0
  local sent recv lost lo hi
  read -r sent recv <<< "$(ping_loss "$1" 2000 0.005)"
  lost=$((sent - recv))
  read -r lo hi <<< "$(binom_bounds "$sent" "$(calc "$2 / 100")" 0.9999)"
  note "$1: $sent sent, $lost lost ($(calc "$lost * 100 / $sent") %), 99.99 % binomial bound for p=$2 %: [$lo, $hi]"
  in_range "$1: lost of $sent pings within the 99.99 % binomial bound of $2 %" "$lost" "$lo" "$hi"
}
if traffic; then
  r=$(rtt_ms d50 30 0.1)
  in_range "netem delay 50ms: median RTT - baseline, ms (±2)" "$(calc "$r - $base")" 48 52
fi
loss_check loss10 10
ping -c 5 -i 0.05 -W 1 $PEER > /dev/null 2>&1   # counters > 0 even without the traffic part
b=$(qdisc_stat veth0 "$(root_line veth0 | awk '{ print $3 }')" bytes)

q_must "apply iface-netem-2 (change in place)" apply "$P2"
same_qdisc "veth0 root netem changed" veth0 root netem delay 20ms 1ms loss 2%
counter_kept "root netem counters survive the change (in place)" "$b" "$(qdisc_stat veth0 "$(root_line veth0 | awk '{ print $3 }')" bytes)"
if traffic; then
  r=$(rtt_ms d20 30 0.1)
  in_range "netem delay 20ms jitter 1ms: median RTT - baseline, ms (±2)" "$(calc "$r - $base")" 18 22
fi
loss_check loss2 2
converged "iface-netem-2" "$P2"
reset_done "iface-netem" "$P2" veth0
if traffic; then
  r=$(rtt_ms after-reset 30 0.1)
  in_range "after reset: median RTT - baseline, ms (no delay left)" "$(calc "$r - $base")" -1 1
fi
