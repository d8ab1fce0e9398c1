# [[….match]] + set_dscp through qosctl: packets steered by address, protocol and port leave
# with the class's DSCP (pedit + csum), counted on the peer by nftables after the peer's IP
# layer checked their header checksum (a bad one is dropped before the input hook), IPv4 and
# IPv6; a `dscp` match steers a flow into its class; changing set_dscp changes the filters in
# place; re-applies are empty.
P1=$POL/match-dscp-1.toml P2=$POL/match-dscp-2.toml
ip addr add fd00:77::1/64 dev veth0 nodad
ip -n peer addr add fd00:77::2/64 dev veth1 nodad
trap 'ip addr del fd00:77::1/64 dev veth0; ip -n peer addr del fd00:77::2/64 dev veth1' EXIT
# Counters on the peer, one rule per (family, DSCP, port), told apart by their comment;
# `sent` counts every datagram we send.
pn() { ip netns exec peer nft "$@"; }
pn add table inet qxd
pn 'add chain inet qxd input { type filter hook input priority 0; }'
pn add rule inet qxd input ip dscp ef udp dport 7001 counter comment '"ef4"'
pn add rule inet qxd input ip dscp af41 udp dport 7002 counter comment '"af4"'
pn add rule inet qxd input ip6 dscp ef udp dport 7001 counter comment '"ef6"'
pn add rule inet qxd input ip dscp cs1 udp dport 7001 counter comment '"cs1_4"'
pn add rule inet qxd input udp dport '{ 7001, 7002 }' counter comment '"sent"'
pn list chain inet qxd input > "$RAW/nft-rules.txt" 2>&1
count() {
  pn list chain inet qxd input | awk -v c="\"$1\"" '{
      for (i = 1; i < NF; i++) if ($i == "comment" && $(i + 1) == c)
        for (j = 1; j < NF; j++) if ($j == "packets") { print $(j + 1); exit } }'
}
send() { local i; for i in $(seq "$3"); do echo x > "/dev/udp/$1/$2"; done; sleep 1; }

q_step "check match-dscp-1" 0 check "$P1"
q_must "apply match-dscp-1" apply "$P1"
tc -s -j filter show dev veth0 parent 1: > "$RAW/filter-1.json" 2>&1
tc -s filter show dev veth0 parent 1: > "$RAW/filter-1.txt" 2>&1
has "the IPv4 filter of ef rewrites dsfield and fixes the checksum" \
  "$(tr -s ' \n\t' ' ' < "$RAW/filter-1.txt")" "pedit" "csum"
converged "match-dscp-1" "$P1"

# Warm the neighbour entries first so that no datagram waits in a queue while we count.
send $PEER 9 3; send fd00:77::2 9 3
send $PEER 7001 50; send $PEER 7002 40; send fd00:77::2 7001 30
eq "IPv4 udp/7001: 50 datagrams arrive as EF with a valid header checksum" "$(count ef4)" 50
eq "IPv4 udp/7002: 40 datagrams arrive as AF41" "$(count af4)" 40
eq "IPv6 udp/7001: 30 datagrams arrive as EF" "$(count ef6)" 30
eq "every datagram arrived (none dropped for a bad checksum)" "$(count sent)" 120
in_range "class ef counted its 80 datagrams" \
  "$(class_stat veth0 1:10 pkts)" 80 80

# A dscp match: iperf3 sets CS5 on its packets; the flow lands in voice, not in other.
if traffic; then
  b30=$(class_stat veth0 1:30 bytes) b40=$(class_stat veth0 1:40 bytes)
  iperf3 -c $PEER -p 5203 -t 2 --dscp CS5 > "$RAW/iperf-cs5.txt" 2>&1
  d30=$(( $(class_stat veth0 1:30 bytes) - b30 )) d40=$(( $(class_stat veth0 1:40 bytes) - b40 ))
  if [ "$d30" -gt 300000 ] && [ "$d40" -lt $((d30 / 20)) ]; then
    pass "dscp CS5 steers the flow into voice" "voice $d30 bytes, other $d40 bytes"
  else
    fail "dscp CS5 steers the flow into voice" "voice $d30 bytes, other $d40 bytes"
  fi
fi

# set_dscp EF -> CS1 on ef: its filters change in place (replace), nothing else.
q apply --dry-run --json "$P2" > /dev/null
cp "$QOUT" "$RAW/plan-2.json"
eq "match-dscp-2: only ef's filters change, in place" \
  "$(jq -r '[.commands[] | split(" ")[1]] | unique | join(",")' "$QOUT" 2> /dev/null)" "replace"
q_must "apply match-dscp-2" apply "$P2"
tc -s -j filter show dev veth0 parent 1: > "$RAW/filter-2.json" 2>&1
send $PEER 7001 25
pn list chain inet qxd input > "$RAW/nft-counters.txt" 2>&1
eq "IPv4 udp/7001 now arrives as CS1" "$(count cs1_4)" 25
eq "and no longer as EF" "$(count ef4)" 50
converged "match-dscp-2" "$P2"
q_step "reset" 0 reset "$P2"
eq "veth0 back to the kernel default" "$(root_kind veth0)" "noqueue"
pn delete table inet qxd
