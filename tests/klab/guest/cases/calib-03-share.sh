# Two marked classes at 30 % / 70 % of a 40mbit link, both saturated, share it 30/70; with one
# idle, the other borrows up to its ceil (raw tc + nftables marks; class counters, wire rate).
htb_root veth0 40mbit
tc class add dev veth0 parent 1:1 classid 1:10 htb rate 12mbit ceil 40mbit burst 16k cburst 16k
tc class add dev veth0 parent 1:1 classid 1:20 htb rate 28mbit ceil 40mbit burst 16k cburst 16k
for c in 10 20; do tc qdisc add dev veth0 parent 1:$c handle $c: fq_codel; done
tc class add dev veth0 parent 1:1 classid 1:99 htb rate 1mbit ceil 40mbit
mark_tcp 5201 0x10; mark_tcp 5202 0x20   # share_check re-marks 5201 alone for the borrowing part
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x20 fw classid 1:20
share_check 1:10 1:20 40 0.30
# the same borrowing with the root class at tc's default burst (1600b): measured, not judged
tc class change dev veth0 parent 1: classid 1:1 htb rate 40mbit ceil 40mbit
read -r t g <<< "$(flow_class_rate borrow-rootburst 5201 veth0 1:10)"
note "class 1:10 alone, root class 1:1 at tc's default burst: $t Mbit/s wire (goodput $g) of ceil 40mbit"
