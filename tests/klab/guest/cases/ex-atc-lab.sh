# The ATC-style lab example: per-profile classes (rate + netem delay) chosen by a firewall mark.
# Each mark gets its class's rate (±5 %) and its delay (±2 ms); then a profile is changed.
P1=$POL/ex-atc-lab.toml P2=$POL/ex-atc-lab-2.toml
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
q_step "check" 0 check "$P1"
q_must "apply ex-atc-lab" apply "$P1"
class_has "edge 2mbit" veth0 1:51 "rate 2Mbit" "ceil 2Mbit"
class_has "3g 5mbit" veth0 1:52 "rate 5Mbit" "ceil 5Mbit"
class_has "lte 20mbit" veth0 1:53 "rate 20Mbit" "ceil 20Mbit"
same_qdisc "edge netem" veth0 51: netem limit 2000 delay 80ms
same_qdisc "3g netem" veth0 52: netem limit 2000 delay 50ms
same_qdisc "lte netem" veth0 53: netem limit 2000 delay 20ms
fw_is "fw filters" veth0 "0x51 1:51;0x52 1:52;0x53 1:53;"
converged "ex-atc-lab" "$P1"
for p in 51:2:80 52:5:50 53:20:20; do
  IFS=: read -r m r d <<< "$p"
  mark_delay "profile 0x$m delay ${d}ms" 0x$m "$d" "$base"
  mark_rate "profile 0x$m rate ${r}mbit" 0x$m 1:$m "$r"
done
q_must "apply ex-atc-lab-2 (lte 10mbit, 40ms)" apply "$P2"
class_has "lte changed" veth0 1:53 "rate 10Mbit" "ceil 10Mbit"
same_qdisc "lte netem changed" veth0 53: netem limit 2000 delay 40ms
mark_delay "lte (0x53) delay now 40ms" 0x53 40 "$base"
mark_rate "lte (0x53) rate now 10mbit" 0x53 1:53 10
converged "ex-atc-lab-2" "$P2"
reset_done "ex-atc-lab" "$P2" veth0
