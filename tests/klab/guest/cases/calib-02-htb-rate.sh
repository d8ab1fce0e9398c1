# HTB classes of 10mbit and 50mbit deliver their rate (TCP, raw tc). Two measures: the class's own
# byte counter (wire bytes, what HTB shapes) over 3.5 s of a running flow, and iperf3's receiver
# goodput converted to wire rate (x (MSS+66)/MSS: Ethernet+IP+TCP-with-timestamps headers).
# burst 16k: with tc's default burst (1600b = 1 MTU) HTB under-delivers under TCG's coarse timers
# (measured: 10mbit -> 9.80, 50mbit -> 46.35 on the class counter); 16k is ~3 ms at 50mbit.
htb_root veth0 1gbit
tc class add dev veth0 parent 1:1 classid 1:10 htb rate 10mbit ceil 10mbit burst 16k cburst 16k
tc class add dev veth0 parent 1:1 classid 1:50 htb rate 50mbit ceil 50mbit burst 16k cburst 16k
tc class add dev veth0 parent 1:1 classid 1:99 htb rate 500mbit ceil 1gbit
tc qdisc add dev veth0 parent 1:10 handle 10: fq_codel
tc qdisc add dev veth0 parent 1:50 handle 50: fq_codel
mark_tcp 5201 0x10; mark_tcp 5202 0x50
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x50 fw classid 1:50
for c in 10:5201 50:5202; do
  r=${c%%:*} p=${c##*:}
  measure_rate htb-$r $p 1:$r $r
  check_rate "HTB ${r}mbit class" "$r"
done
