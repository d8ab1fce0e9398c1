# `qosctl import` round trip on the kinds this machine's kernel lacks: an htb tree made by raw
# tc with fq_codel, sfq and netem leaves and fw marks (prio 1, protocol all, as a policy writes
# them), and an interface-level netem on dummy0. The imported policy must be complete (exit 0)
# and in sync with the kernel it came from (0 commands). No traffic: this is about read-back.
if qosctl --version | grep -q fake; then
  note "the self-test stand-in has no import: case skipped"
  pass "import round trip" "skipped under the self-test stand-in"
  exit 0
fi
htb_root veth0 100mbit 30
tc class add dev veth0 parent 1:1 classid 1:10 htb rate 10mbit ceil 50mbit prio 1
tc class add dev veth0 parent 1:1 classid 1:20 htb rate 20mbit burst 16k cburst 16k prio 2
tc class add dev veth0 parent 1:1 classid 1:30 htb rate 5mbit ceil 100mbit quantum 3000
tc qdisc add dev veth0 parent 1:10 handle 10: fq_codel target 2ms interval 50ms
tc qdisc add dev veth0 parent 1:20 handle 20: sfq perturb 10
tc qdisc add dev veth0 parent 1:30 handle 30: netem delay 20ms 5ms 25% distribution normal loss 1%
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10
tc filter add dev veth0 parent 1: protocol all prio 1 handle 0x20 fw classid 1:20
tc qdisc add dev dummy0 root handle 1: netem delay 100ms loss 5% rate 1mbit
P=$RAW/imported.toml
qosctl import veth0 dummy0 > "$P" 2> "$RAW/import.stderr"; rc=$?
sed 's/^/  | /' "$P"
eq "import exit code (0 = complete)" "$rc" 0
in_sync "imported policy is in sync with the tree it came from" "$P"
applied=$(qosctl apply --json "$P" 2> "$RAW/apply.stderr" | jq -r '.applied')
eq "apply of the imported policy runs 0 commands" "$applied" 0
