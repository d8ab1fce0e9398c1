# classifier = "flower" through qosctl (this machine's kernel has no cls_flower; the lab's
# has): the policy's matches become flower filters (keys by name), read back with plain tc;
# re-applies are empty; one class's address changed is exactly one mutating command
# (`filter replace`), after which the kernel holds the new key and steers the new address;
# two classes swapping addresses is delete + add of both (a replace onto a key another
# live filter holds is not relied on);
# traffic lands in its class by dst (IPv4 and IPv6), by DSCP (ip_tos) and by protocol and
# port; set_dscp rewrites the DSCP (counted on the peer); an import carries
# classifier = "flower" and re-applies with 0 commands; switching the interface to u32
# replaces the filters. UDP datagrams and pings, not iperf3: the checks hold in both tc
# variants.
if qosctl --version | grep -q fake; then
  note "the self-test stand-in has no flower backend: case skipped"
  pass "match-flower" "skipped under the self-test stand-in"
  exit 0
fi
P1=$POL/match-flower-1.toml P2=$POL/match-flower-2.toml P3=$POL/match-flower-3.toml
P4=$POL/match-flower-4.toml
for a in 10.0.0.3/24 10.0.0.4/24 10.0.0.5/24; do ip -n peer addr add $a dev veth1; done
ip addr add fd00:78::1/64 dev veth0 nodad
ip -n peer addr add fd00:78::4/64 dev veth1 nodad
ip -n peer addr add fd00:78::6/64 dev veth1 nodad
trap 'nft delete table inet qxo; ip addr del fd00:78::1/64 dev veth0
  ip -n peer addr del fd00:78::4/64 dev veth1; ip -n peer addr del fd00:78::6/64 dev veth1
  for a in 10.0.0.3/24 10.0.0.4/24 10.0.0.5/24; do ip -n peer addr del $a dev veth1; done' EXIT
# DSCP CS5 on what we send to port 7100 (the guest's busybox ping has no -Q): set on the
# output hook, before the qdisc classifies it.
nft add table inet qxo
nft 'add chain inet qxo out { type filter hook output priority 0; }'
nft add rule inet qxo out udp dport 7100 ip dscp set cs5
nft add rule inet qxo out udp dport 7100 ip6 dscp set cs5
pn() { ip netns exec peer nft "$@"; }
pn add table inet qxf
pn 'add chain inet qxf input { type filter hook input priority 0; }'
pn add rule inet qxf input ip dscp ef udp dport 7005 counter comment '"ef4"'
pn add rule inet qxf input udp dport 7005 counter comment '"sent"'
count() {
  pn list chain inet qxf input | awk -v c="\"$1\"" '{
      for (i = 1; i < NF; i++) if ($i == "comment" && $(i + 1) == c)
        for (j = 1; j < NF; j++) if ($j == "packets") { print $(j + 1); exit } }'
}
send() { local i; for i in $(seq "$3"); do echo x > "/dev/udp/$1/$2"; done; sleep 1; }
# steered LABEL CLASSID N CMD...: CMD sends N packets, all counted by class CLASSID.
# SLACK=K before it: up to K neighbour probes may land there too (ARP goes to the default
# class, an IPv6 neighbour solicitation to the class of its destination).
steered() {
  local l=$1 c=$2 n=$3 b; shift 3
  b=$(class_stat veth0 "$c" pkts); "$@"
  in_range "$l" "$(( $(class_stat veth0 "$c" pkts) - b ))" "$n" "$((n + ${SLACK:-0}))" " packets in $c"
}

q_step "check match-flower-1" 0 check "$P1"
has "check names the classifier" "$(head -n1 "$QOUT")" "flower"
q_must "apply match-flower-1" apply "$P1"
tc -s -j filter show dev veth0 parent 1: > "$RAW/filter-1.json" 2>&1
tc -s filter show dev veth0 parent 1: > "$RAW/filter-1.txt" 2>&1
t=$(tr -s ' \n\t' ' ' < "$RAW/filter-1.txt")
has "flower filters by name, read back by plain tc" "$t" "flower" "dst_ip 10.0.0.3" \
  "dst_ip 10.0.0.4" "dst_ip fd00:78::4" "ip_proto udp" "dst_port 7001-7009" "ip_proto tcp" \
  "dst_port 5201" "pedit" "csum"
lacks "no u32 filter on veth0" "$t" "u32"
has "the dscp match is ip_tos with the six DSCP bits" "$(jq -c '[.[].options.keys | select(.ip_tos != null) | "\(.ip_tos)/\(.ip_tos_mask)"] | unique' "$RAW/filter-1.json")" '["160/fc"]'
q show veth0 > /dev/null
cp "$QOUT" "$RAW/show-1.txt"
has "show speaks the policy's words" "$(tr -s ' \n\t' ' ' < "$QOUT")" "dst 10.0.0.3/32" \
  "dst fd00:78::4/128" "dport 7001-7009," "set dscp EF," "dscp CS5" "proto tcp dport 5201"
lacks "show has no foreign filter" "$(tr -s ' \n\t' ' ' < "$QOUT")" "foreign"
converged "match-flower-1" "$P1"

# Warm the neighbour entries first so that no datagram waits in a queue while we count.
send 10.0.0.3 9 2; send 10.0.0.4 9 2; send 10.0.0.5 9 2; send fd00:78::4 9 2; send $PEER 7005 2
send fd00:78::6 9 2
steered "udp to 10.0.0.3 lands in class a" 1:10 20 send 10.0.0.3 9 20
steered "udp to 10.0.0.4 lands in class b" 1:20 15 send 10.0.0.4 9 15
SLACK=3 steered "udp to fd00:78::4 lands in class b (IPv6)" 1:20 12 send fd00:78::4 9 12
SLACK=3 steered "udp to 10.0.0.5 (no match) lands in other" 1:60 10 send 10.0.0.5 9 10
steered "udp marked CS5 lands in voice (ip_tos)" 1:40 16 send $PEER 7100 16
SLACK=3 steered "udp marked CS5 lands in voice (IPv6 traffic class)" 1:40 14 send fd00:78::6 7100 14
b=$(count ef4)
steered "udp to 10.0.0.2:7005 lands in ef" 1:30 30 send $PEER 7005 30
eq "and arrives as EF with a valid header checksum" "$(( $(count ef4) - b ))" 30
b=$(class_stat veth0 1:50 pkts)
timeout 3 bash -c "exec 3<> /dev/tcp/$PEER/5201" 2> /dev/null
in_range "a tcp connection to port 5201 lands in web" "$(( $(class_stat veth0 1:50 pkts) - b ))" 1 100

# One address changed: exactly one mutating command, a `filter replace` of its handle.
q apply --dry-run --json "$P2" > /dev/null
cp "$QOUT" "$RAW/plan-2.json"
eq "match-flower-2: one command" "$(jq -r '.commands | length' "$QOUT" 2> /dev/null)" 1
has "match-flower-2: it is a filter replace with the new key" \
  "$(jq -r '.commands[0]' "$QOUT" 2> /dev/null)" "filter replace" "flower dst_ip 10.0.0.5/32"
q_must "apply match-flower-2" apply "$P2"
tc -s -j filter show dev veth0 parent 1: > "$RAW/filter-2.json" 2>&1
t=$(tc filter show dev veth0 parent 1: | tr -s ' \n\t' ' ')
has "the kernel holds the new key" "$t" "dst_ip 10.0.0.5"
lacks "and not the old one" "$t" "10.0.0.3"
steered "udp to 10.0.0.5 now lands in class a" 1:10 20 send 10.0.0.5 9 20
SLACK=3 steered "udp to 10.0.0.3 now lands in other" 1:60 10 send 10.0.0.3 9 10
converged "match-flower-2" "$P2"

# Two classes swap addresses. A flower replace onto a key that another filter of the
# priority still holds is measured here, not relied on (the kernel's fl_change either
# refuses it or keeps both keys in its hash table until the other goes): qosctl plans
# delete + add of both, the deletes first.
tc filter replace dev veth0 parent 1: protocol ip prio 796 handle 0x100001 flower \
  dst_ip 10.0.0.4/32 classid 1:10 > "$RAW/raw-replace.txt" 2>&1 && rc=0 || rc=$?
note "raw tc: replace of class a's filter onto class b's live key 10.0.0.4 exited $rc: $(tr '\n' ' ' < "$RAW/raw-replace.txt")"
tc -j filter show dev veth0 parent 1: > "$RAW/filter-raw-replace.json" 2>&1
q_must "apply match-flower-2 again (undoes the raw replace)" apply "$P2"
in_sync "match-flower-2 again: in sync" "$P2"
q apply --dry-run --json "$P4" > /dev/null
cp "$QOUT" "$RAW/plan-4.json"
eq "match-flower-4: two deletes, then two adds" \
  "$(jq -r '[.commands[] | split(" ")[1]] | join(",")' "$QOUT" 2> /dev/null)" "del,del,add,add"
q_must "apply match-flower-4" apply "$P4"
steered "udp to 10.0.0.4 now lands in class a" 1:10 12 send 10.0.0.4 9 12
steered "udp to 10.0.0.5 now lands in class b" 1:20 12 send 10.0.0.5 9 12
converged "match-flower-4" "$P4"

# import: the flower tree comes back as a policy with classifier = "flower", in sync.
I=$RAW/imported.toml
qosctl import veth0 > "$I" 2> "$RAW/import.stderr"; rc=$?
sed 's/^/  | /' "$I"
eq "import exit code (0 = complete)" "$rc" 0
has "the imported policy says classifier = \"flower\"" "$(tr -s ' \n' ' ' < "$I")" 'classifier = "flower"'
in_sync "imported policy is in sync with the tree it came from" "$I"
eq "apply of the imported policy runs 0 commands" \
  "$(qosctl apply --json "$I" 2> "$RAW/apply-import.stderr" | jq -r '.applied')" 0

# Back to u32: the flower filters go, u32 filters take their place, traffic steers the same.
q apply --dry-run --json "$P3" > /dev/null
cp "$QOUT" "$RAW/plan-3.json"
q_must "apply match-flower-3 (classifier u32)" apply "$P3"
t=$(tc filter show dev veth0 parent 1: | tr -s ' \n\t' ' ')
has "u32 filters now" "$t" "u32"
lacks "and no flower filter" "$t" "flower"
steered "udp to 10.0.0.5 still lands in class a (u32)" 1:10 20 send 10.0.0.5 9 20
converged "match-flower-3" "$P3"
q_step "reset" 0 reset "$P3"
eq "veth0 back to the kernel default" "$(root_kind veth0)" "noqueue"
pn delete table inet qxf
