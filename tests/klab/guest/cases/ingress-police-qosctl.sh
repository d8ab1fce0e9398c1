# Ingress policing through qosctl: `police = { rate = "1mbit", burst = "64KiB" }` on
# [interfaces.veth0.ingress] is one u32 match-all hook on veth0's ingress qdisc with action
# police, no ifb. A download (iperf3 -R: the peer sends, the packets arrive at veth0's ingress)
# gets the rate in TCP goodput (±10 %; the 64 KiB bucket adds at most 35 kbit/s over 15 s) and
# the policer's drop counter grows. A new rate changes the hook in place (one command); reset
# removes the ingress qdisc.
P1=$POL/ingress-police-1.toml P2=$POL/ingress-police-2.toml
q_step "check ingress-police-1" 0 check "$P1"
q_must "apply ingress-police-1" apply "$P1"
tc -s filter show dev veth0 parent ffff: > "$RAW/police-1.txt"
tc -j -s filter show dev veth0 parent ffff: > "$RAW/filter-ffff.json"
tc -j -s -d qdisc show dev veth0 > "$RAW/qdisc.json"
has "police read back in text" "$(tr '\n' ' ' < "$RAW/police-1.txt")" "u32" "rate 1Mbit" "mtu 64Kb" "action drop"
eq "a policer needs no ifb" "$(ip -o link show type ifb | grep -c 'ifb-veth0')" 0
converged "ingress-police-1" "$P1"
if ! no_traffic; then
  g=$(tcp_mbps police-down 5201 15 -R)
  near "policed download: TCP goodput, Mbit/s (1 mbit ±10 %)" "$g" 1 10 " Mbit/s"
  drops=$(tc -s -j filter show dev veth0 parent ffff: |
    jq '[.[].options.actions[]? | select(.kind == "police") | .stats.drops] | add // 0')
  in_range "the policer dropped packets" "$drops" 1 1000000000
fi
q_step "a new police rate is one command" 0 apply --dry-run --json "$P2"
eq "the plan of the new rate" "$(jq -r '.commands | length' "$QOUT")" 1
q_must "apply ingress-police-2" apply "$P2"
has "police changed in place" "$(tc -s filter show dev veth0 parent ffff: | tr '\n' ' ')" "rate 2Mbit"
eq "still one hook" "$(tc filter show dev veth0 parent ffff: | grep -c 'police')" 1
converged "ingress-police-2" "$P2"
q_step "ingress-police: qosctl reset" 0 reset "$P2"
eq "no ingress qdisc after reset" "$(tc qdisc show dev veth0 | grep -c ingress)" 0
