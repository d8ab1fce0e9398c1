# Marks in the download direction: nftables marks echo requests to the peer with 0x10 on the way
# out and saves the mark on the connection (ct mark set meta mark, postrouting); the echo
# replies arrive at veth0, where qosctl's hook restores the conntrack mark (action connmark,
# the default for ingress marks) before redirecting to ifb-veth0, whose fw filter steers them
# into class "marked" (1:10). Unmarked replies go to "other" (1:20). Then the same with
# restore_mark = "ctinfo", switched in place.
P=$POL/ingress-marks.toml
q_step "check ingress-marks" 0 check "$P"
q_must "apply ingress-marks" apply "$P"
has "the hook restores the mark, then redirects" "$(tc filter show dev veth0 parent ffff: | tr '\n' ' ')" "connmark" "(Egress Redirect to device ifb-veth0)"
fw_is "fw filter 0x10 -> 1:10 on the ifb" ifb-veth0 "0x10 1:10;"
converged "ingress-marks" "$P"
nft add table inet qi
nft 'add chain inet qi out { type filter hook output priority 0; }'
nft 'add chain inet qi post { type filter hook postrouting priority 0; }'
nft add rule inet qi out ip daddr $PEER icmp type echo-request meta mark set 0x10
nft add rule inet qi post meta mark != 0 ct mark set meta mark
m0=$(class_stat ifb-veth0 1:10 pkts) o0=$(class_stat ifb-veth0 1:20 pkts)
ping -c 15 -i 0.05 -W 1 $PEER > "$RAW/ping-marked.txt" 2>&1
m1=$(class_stat ifb-veth0 1:10 pkts) o1=$(class_stat ifb-veth0 1:20 pkts)
in_range "15 replies to marked requests land in class marked (1:10)" "$((m1 - m0))" 15 15
in_range "and none in class other (1:20; ARP may add up to 3)" "$((o1 - o0))" 0 3
nft flush table inet qi
p0=$(class_stat ifb-veth0 1:10 pkts) u0=$(class_stat ifb-veth0 1:20 pkts)
# A new flow (another ICMP id): its conntrack entry has no mark.
ping -c 15 -i 0.05 -W 1 $PEER > "$RAW/ping-unmarked.txt" 2>&1
in_range "unmarked replies land in class other (1:20)" "$(( $(class_stat ifb-veth0 1:20 pkts) - u0 ))" 15 18
in_range "and not in class marked" "$(( $(class_stat ifb-veth0 1:10 pkts) - p0 ))" 0 0
# The same with ctinfo: the hook's actions change in place (one command), marks still count.
P2=$POL/ingress-marks-ctinfo.toml
q_step "restore_mark ctinfo: one command" 0 apply --dry-run --json "$P2"
eq "the plan of the ctinfo switch" "$(jq -r '.commands | length' "$QOUT")" 1
q_must "apply ingress-marks-ctinfo" apply "$P2"
has "the hook restores with ctinfo" "$(tc filter show dev veth0 parent ffff: | tr '\n' ' ')" "ctinfo" "(Egress Redirect to device ifb-veth0)"
converged "ingress-marks-ctinfo" "$P2"
nft add rule inet qi out ip daddr $PEER icmp type echo-request meta mark set 0x10
nft add rule inet qi post meta mark != 0 ct mark set meta mark
m0=$(class_stat ifb-veth0 1:10 pkts)
ping -c 15 -i 0.05 -W 1 $PEER > "$RAW/ping-ctinfo.txt" 2>&1
in_range "ctinfo: 15 replies to marked requests land in class marked (1:10)" "$(( $(class_stat ifb-veth0 1:10 pkts) - m0 ))" 15 15
nft delete table inet qi
q_step "ingress-marks: qosctl reset" 0 reset "$P2"
eq "reset deleted ifb-veth0" "$(ip -o link show type ifb | grep -c 'ifb-veth0')" 0
