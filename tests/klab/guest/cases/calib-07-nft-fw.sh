# Marks set by nftables (`meta mark set`) are matched by tc fw filters: class counters prove it.
htb_root veth0 100mbit 99
for c in 10 20 99; do tc class add dev veth0 parent 1:1 classid 1:$c htb rate 10mbit ceil 100mbit; done
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x20 fw classid 1:20
mark_icmp 0x10
mark_udp 9999 0x20
ping -c 37 -i 0.02 $PEER > /dev/null
for i in $(seq 23); do echo x > /dev/udp/$PEER/9999; done
eq "ICMP echo requests marked 0x10 counted in class 1:10" "$(class_stat veth0 1:10 pkts)" 37
in_range "UDP packets marked 0x20 counted in class 1:20" "$(class_stat veth0 1:20 pkts)" 23 23
in_range "unmarked packets in default class 1:99 (ARP etc.)" "$(class_stat veth0 1:99 pkts)" 0 10
