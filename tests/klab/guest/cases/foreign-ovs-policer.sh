# Foreign state: the ingress policers that Open vSwitch and Neutron put on a VM's tap, made with
# real tc exactly as they make them (this machine's kernel lacks act_police and cls_matchall, the
# lab's has both). Each must make `qosctl apply` stop before changing anything, and the plan must
# name it as OVS's or Neutron's policer; `--force` then adopts (removes) it.
#   ovs-matchall      lib/netdev-linux.c tc_add_matchall_policer (OVS >= 2.13, with or without
#                     hw-offload): ingress ffff:, matchall prio 1 (TC_RESERVED_PRIORITY_POLICE),
#                     handle 1, protocol all, police action, exceed drop, conform TC_ACT_UNSPEC
#                     (which tc prints as "continue"), mtu 65535
#   ovs-basic         tc_add_policer, OVS's fallback when cls_matchall is missing: basic prio 49
#                     with the same police action
#   ovs-basic-legacy  tc_add_policer of older OVS (and what its comment still documents):
#                     `basic police rate …kbit burst …k mtu 65535 drop`, the police option
#                     (TCA_BASIC_POLICE) rather than an action
#   neutron-u32       neutron/agent/linux/tc_lib.py _add_policy_filter (linuxbridge agent QoS
#                     bandwidth limit, egress of the VM): u32 prio 49 match 0/0 police … mtu
#                     65535 drop flowid :1, through pyroute2 as the u32 police option
#   neutron-u32-act   the same rule with the police as an action (how pyroute2 may encode it)
# Rates as OVS computes them for ingress_policing_rate=10000 (kbit/s) and its default burst of
# 8000 kbit (8000 * 1024 / 8 = 1024000 bytes). The dumps are saved under raw/ for the reader's
# fixtures (tests/fixtures/tc/ovs-policer/).
if qosctl --version | grep -q fake; then
  note "the self-test stand-in has no foreign-state check: case skipped"
  pass "OVS/Neutron policer refused" "skipped under the self-test stand-in"
  exit 0
fi
P=$POL/rate-change-1.toml
dump() {
  tc qdisc show dev veth0
  tc class show dev veth0
  tc filter show dev veth0
  tc filter show dev veth0 parent ffff:
}
police="police rate 10000kbit burst 1024000 mtu 65535"
forms=(ovs-matchall ovs-basic ovs-basic-legacy neutron-u32 neutron-u32-act)
declare -A cmd=(
  [ovs-matchall]="protocol all prio 1 handle 1 matchall action $police conform-exceed drop/continue"
  [ovs-basic]="protocol all prio 49 basic action $police conform-exceed drop/continue"
  [ovs-basic-legacy]="protocol all prio 49 basic $police drop"
  [neutron-u32]="protocol all prio 49 u32 match u32 0 0 $police drop flowid :1"
  [neutron-u32-act]="protocol all prio 49 u32 match u32 0 0 action $police conform-exceed drop flowid :1"
)
declare -A who=(
  [ovs-matchall]="Open vSwitch" [ovs-basic]="Open vSwitch" [ovs-basic-legacy]="Open vSwitch"
  [neutron-u32]="Neutron" [neutron-u32-act]="Neutron"
)
for f in "${forms[@]}"; do
  tc qdisc del dev veth0 ingress 2> /dev/null
  tc qdisc add dev veth0 handle ffff: ingress
  # shellcheck disable=SC2086  # the rule is a word list on purpose
  if ! tc filter add dev veth0 parent ffff: ${cmd[$f]}; then
    fail "$f: tc made the policer" "tc filter add … ${cmd[$f]} failed"
    continue
  fi
  tc -j filter show dev veth0 parent ffff: > "$RAW/$f.json"
  tc filter show dev veth0 parent ffff: > "$RAW/$f.txt"
  tc -s -j filter show dev veth0 parent ffff: > "$RAW/$f-s.json"
  tc -s filter show dev veth0 parent ffff: > "$RAW/$f-s.txt"
  tc -j qdisc show dev veth0 > "$RAW/qdisc.json"
  has "$f: the kernel holds a policer" "$(tr '\n' ' ' < "$RAW/$f.txt")" "rate 10Mbit"
  before=$(dump)
  q_step "$f: dry run shows changes pending" 2 apply --dry-run --detailed-exitcode "$P"
  if grep -q "apply refuses without --force" "$QOUT" && grep -q "${who[$f]}" "$QOUT" &&
    grep -q "policer" "$QOUT"; then
    pass "$f: the plan names ${who[$f]}'s policer" "$(grep -A2 '  ! ' "$QOUT" | tr -s ' \n' ' ')"
  else
    fail "$f: the plan names ${who[$f]}'s policer" "$(tr -s ' \n' ' ' < "$QOUT" | head -c 600)"
  fi
  q_step "$f: apply refuses" 1 apply "$P"
  if grep -q "nothing was changed" "$QOUT"; then
    pass "$f: the refusal says nothing was changed" "$(grep -m1 refusing "$QOUT")"
  else
    fail "$f: the refusal says nothing was changed" "$(tr -s ' \n' ' ' < "$QOUT" | head -c 600)"
  fi
  eq "$f: veth0 reads back as before the refused apply" "$(dump)" "$before"
done
# Adopted: --force replaces the last one; the ingress side is gone and the policy is in sync.
q_step "--force adopts the policer" 0 apply --force "$P"
lacks "the policer is gone after --force" "$(tc qdisc show dev veth0 | tr '\n' ' ')" "ingress"
in_sync "in sync after --force" "$P"
