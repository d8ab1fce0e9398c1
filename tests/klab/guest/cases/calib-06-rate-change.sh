# A class's rate changed (tc class change) while a TCP flow runs through it: per-0.5 s throughput
# from the class counter, the drop counter, no stall, the new rate effective within a second.
htb_root veth0 100mbit 99
tc class add dev veth0 parent 1:1 classid 1:10 htb rate 20mbit ceil 20mbit burst 16k cburst 16k
tc class add dev veth0 parent 1:1 classid 1:99 htb rate 50mbit ceil 100mbit
tc qdisc add dev veth0 parent 1:10 handle 10: fq_codel
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10
mark_tcp 5201 0x10
. "$KLAB_SHARE/guest/ratechange.sh"
rate_change_run raw 20 5 'tc class change dev veth0 parent 1:1 classid 1:10 htb rate 5mbit ceil 5mbit burst 16k cburst 16k'
rate_change_run raw-up 5 15 'tc class change dev veth0 parent 1:1 classid 1:10 htb rate 15mbit ceil 15mbit burst 16k cburst 16k'
