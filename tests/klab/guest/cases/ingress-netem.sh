# Ingress netem through qosctl: netem alone under [interfaces.veth0.ingress] is the root qdisc
# of ifb-veth0, which qosctl creates (alias qosctl:ifb-for:veth0) and redirects veth0's
# arrivals to. The echo replies arrive at veth0, so the delay shows in ping RTT (±2 ms);
# a new delay changes the netem in place; then netem on the default class of an ingress tree;
# reset deletes the ifb and the delay is gone.
P1=$POL/ingress-netem-1.toml P2=$POL/ingress-netem-2.toml
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
q_step "check ingress-netem-1" 0 check "$P1"
q_must "apply ingress-netem-1" apply "$P1"
eq "ifb-veth0 created, marked as qosctl's" "$(ip -j link show dev ifb-veth0 | jq -r '.[0].ifalias')" "qosctl:ifb-for:veth0"
same_qdisc "ifb-veth0 root netem reads back as set" ifb-veth0 root netem delay 30ms
has "the hook redirects to the ifb" "$(tc filter show dev veth0 parent ffff: | tr '\n' ' ')" "u32" "(Egress Redirect to device ifb-veth0)"
converged "ingress-netem-1" "$P1"
if traffic; then
  r=$(rtt_ms d30 30 0.1)
  in_range "ingress netem delay 30ms: median RTT - baseline, ms (±2)" "$(calc "$r - $base")" 28 32
fi
q_must "apply ingress-netem-2 (change in place)" apply "$P2"
same_qdisc "ifb-veth0 root netem changed" ifb-veth0 root netem delay 10ms
if traffic; then
  r=$(rtt_ms d10 30 0.1)
  in_range "ingress netem delay 10ms: median RTT - baseline, ms (±2)" "$(calc "$r - $base")" 8 12
fi
converged "ingress-netem-2" "$P2"
# netem on a class of an ingress tree (the ifb's root becomes htb).
P3=$POL/ingress-netem-3.toml
q_must "apply ingress-netem-3 (netem on the default class)" apply "$P3"
eq "ifb-veth0 root is htb now" "$(root_kind ifb-veth0)" htb
has "class slow's leaf is netem delay 20ms" "$(qdisc_line ifb-veth0 10:)" "netem" "parent 1:10" "delay 20ms"
if traffic; then
  r=$(rtt_ms c20 30 0.1)
  in_range "ingress class netem delay 20ms: median RTT - baseline, ms (±2)" "$(calc "$r - $base")" 18 22
fi
converged "ingress-netem-3" "$P3"
q_step "ingress-netem: qosctl reset" 0 reset "$P3"
eq "reset deleted ifb-veth0" "$(ip -o link show type ifb | grep -c 'ifb-veth0')" 0
eq "the lab's own ifbs are untouched" "$(ip -o link show type ifb | grep -cE ': ifb[01]:')" 2
if traffic; then
  r=$(rtt_ms after-reset 30 0.1)
  in_range "after reset: median RTT - baseline, ms (no delay left)" "$(calc "$r - $base")" -1 1
fi
