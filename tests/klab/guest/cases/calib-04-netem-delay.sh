# netem delay shows in ping RTT: median RTT minus the baseline of this boot is the set delay ±2 ms.
base=$(rtt_ms base 30 0.1)
note "baseline RTT median $base ms"
for d in 20 50; do
  tc qdisc add dev veth0 root handle 1: netem delay ${d}ms
  r=$(rtt_ms delay-$d 30 0.1)
  in_range "netem delay ${d}ms: RTT - baseline ms (±2)" "$(calc "$r - $base")" $((d - 2)) $((d + 2))
  tc qdisc del dev veth0 root
done
# the same delay on an htb leaf reached through an nftables mark
htb_root veth0 100mbit 99
tc class add dev veth0 parent 1:1 classid 1:10 htb rate 50mbit ceil 100mbit
tc class add dev veth0 parent 1:1 classid 1:99 htb rate 50mbit ceil 100mbit
tc qdisc add dev veth0 parent 1:10 handle 10: netem delay 30ms
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10
mark_icmp 0x10
r=$(rtt_ms leaf-30 30 0.1)
in_range "netem 30ms on marked leaf class: RTT - baseline ms (±2)" "$(calc "$r - $base")" 28 32
