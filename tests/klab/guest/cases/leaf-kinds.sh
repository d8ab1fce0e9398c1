# Every leaf kind (fq_codel, cake, sfq, pfifo, bfifo; netem has its own case) through qosctl:
# apply -> read back with plain tc -> re-apply changes nothing -> change in place -> reset.
P1=$POL/leaves-1.toml P2=$POL/leaves-2.toml
q_step "check leaves-1" 0 check "$P1"
q_must "apply leaves-1" apply "$P1"

has "root htb, default class 1:20" "$(root_line veth0)" "htb 1:" "default 0x20"
class_has "root class 1:1 carries the interface rate" veth0 1:1 "rate 100Mbit" "ceil 100Mbit"
for c in 10 11 12 13 14 20; do class_has "class 1:$c" veth0 1:$c "parent 1:1" "leaf $c:" "rate 10Mbit" "ceil 100Mbit"; done
same_qdisc "fq_codel leaf reads back as set" veth0 10: fq_codel target 10ms interval 200ms limit 2000 flows 512 ecn
same_qdisc "cake leaf reads back as set" veth0 11: cake bandwidth 8mbit diffserv4
same_qdisc "sfq leaf reads back as set" veth0 12: sfq perturb 10
same_qdisc "pfifo leaf reads back as set" veth0 13: pfifo limit 500
same_qdisc "bfifo leaf reads back as set" veth0 14: bfifo limit 65536
eq "default leaf of class other is fq_codel" "$(qdisc_line veth0 20: | awk '{ print $2 }')" fq_codel
fw_is "fw filters: one per mark" veth0 "0x10 1:10;0x11 1:11;0x12 1:12;0x13 1:13;0x14 1:14;"
converged "leaves-1" "$P1"

# traffic through every leaf, marked by nftables: each leaf qdisc counts exactly our pings
for m in 10 11 12 13 14; do
  marks_reset; mark_icmp 0x$m
  p0=$(qdisc_stat veth0 $m: pkts)
  ping -c 20 -i 0.02 -W 1 $PEER > "$RAW/ping-$m.txt" 2>&1
  eq "20 pings marked 0x$m pass leaf $m: ($(qdisc_line veth0 $m: | awk '{ print $2 }'))" "$(( $(qdisc_stat veth0 $m: pkts) - p0 ))" 20
done
b10=$(qdisc_stat veth0 10: bytes) c10=$(class_stat veth0 1:10 bytes) b11=$(qdisc_stat veth0 11: bytes)

q_must "apply leaves-2 (change in place)" apply "$P2"
class_has "class 1:10 rate changed in place" veth0 1:10 "rate 15Mbit" "ceil 100Mbit"
# ecn = false must reach the kernel as noecn: fq_codel's own default is ecn on
same_qdisc "fq_codel changed (flows unchanged: fq_codel refuses a change that sends flows)" veth0 10: fq_codel target 5ms interval 100ms limit 1000 flows 512 noecn
same_qdisc "cake changed" veth0 11: cake bandwidth 20mbit diffserv3
same_qdisc "sfq changed (sfq has no change operation: qosctl must delete + add it)" veth0 12: sfq perturb 5
same_qdisc "pfifo changed" veth0 13: pfifo limit 800
same_qdisc "bfifo -> pfifo (kind change)" veth0 14: pfifo limit 300
counter_kept "fq_codel 10: counters survive the change (in place)" "$b10" "$(qdisc_stat veth0 10: bytes)"
counter_kept "class 1:10 counters survive the change (in place)" "$c10" "$(class_stat veth0 1:10 bytes)"
counter_kept "cake 11: counters survive the change (in place)" "$b11" "$(qdisc_stat veth0 11: bytes)"
converged "leaves-2" "$P2"
pending "leaves-1 differs from the live leaves-2 state" "$P1"
reset_done "leaves" "$P2" veth0
