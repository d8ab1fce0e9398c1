# Ingress policing with the arguments qosctl renders (link::IngressHook, police only; the line
# below is pinned to the library's rendering by the unit test link::tests::klab_police_case):
# 1 mbit, burst 12500 B, mtu 65535, drop above the rate (the kernel does not dump a conform
# result of "ok" (0), so the text says "action drop", not "drop/ok"). A download (iperf3 -R: the peer sends,
# the packets arrive at veth0's ingress) must never get more than the rate, and the policer
# must drop. Goodput below the rate is noted, not judged: TCP through a policer with a 0.1 s
# bucket runs below the rate (how far depends on RTT and TCG timers); calibrate before judging.
tc qdisc add dev veth0 handle ffff: ingress
tc filter add dev veth0 parent ffff: protocol all prio 1 handle ::1 u32 match u32 0 0 action police rate 1000000bit burst 12500 mtu 65535 conform-exceed drop/ok
tc -s filter show dev veth0 parent ffff: > "$RAW/police-before.txt"
has "police read back in text" "$(tr '\n' ' ' < "$RAW/police-before.txt")" "rate 1Mbit" "mtu 64Kb" "action drop"
if ! no_traffic; then
  g=$(tcp_mbps police-down 5201 8 -R)
  note "policed download: iperf3 goodput $g Mbit/s (police rate 1 mbit)"
  in_range "policed download goodput never above the rate (+10 %)" "$g" 0.05 1.1 " Mbit/s"
  drops=$(tc -s -j filter show dev veth0 parent ffff: |
    jq '[.[].options.actions[]? | select(.kind == "police") | .stats.drops] | add // 0')
  in_range "the policer dropped packets" "$drops" 1 1000000000
fi
