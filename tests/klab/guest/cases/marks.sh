# marks -> fw filters through qosctl: one and several marks per class; then a mark moved to
# another class and a mark removed. nftables marks real packets; class counters prove where they go.
P1=$POL/marks-1.toml P2=$POL/marks-2.toml
q_step "check marks-1" 0 check "$P1"
q_must "apply marks-1" apply "$P1"
fw_is "fw filters: 0x10->a, 0x20+0x21->b, 0x30->c" veth0 "0x10 1:10;0x20 1:20;0x21 1:20;0x30 1:30;"
converged "marks-1" "$P1"
# send_marked MARK N: N pings marked MARK; prints the packet deltas of classes 1:10..1:40
send_marked() {
  local c before=() after=() out=
  for c in 10 20 30 40; do before+=("$(class_stat veth0 1:$c pkts)"); done
  marks_reset; mark_icmp "$1"
  ping -c "$2" -i 0.02 -W 1 $PEER > /dev/null 2>&1
  for c in 10 20 30 40; do after+=("$(class_stat veth0 1:$c pkts)"); done
  for c in 0 1 2 3; do out+="$(( after[c] - before[c] )) "; done
  echo "${out% }"
}
eq "0x10 -> class a only (packets into a b c d)" "$(send_marked 0x10 15)" "15 0 0 0"
eq "0x20 -> class b" "$(send_marked 0x20 15)" "0 15 0 0"
eq "0x21 -> class b (second mark of b)" "$(send_marked 0x21 15)" "0 15 0 0"
eq "0x30 -> class c" "$(send_marked 0x30 15)" "0 0 15 0"
eq "unknown mark 0x99 -> default class d" "$(send_marked 0x99 15)" "0 0 0 15"
c20=$(class_stat veth0 1:20 bytes)

q_must "apply marks-2 (0x21 moved b->c, 0x30 removed)" apply "$P2"
fw_is "fw filters after the move" veth0 "0x10 1:10;0x20 1:20;0x21 1:30;"
eq "0x21 -> class c now" "$(send_marked 0x21 15)" "0 0 15 0"
eq "0x20 still -> class b" "$(send_marked 0x20 15)" "0 15 0 0"
eq "removed 0x30 -> default class d" "$(send_marked 0x30 15)" "0 0 0 15"
counter_kept "class b kept its counters (classes untouched by a filter change)" "$c20" "$(class_stat veth0 1:20 bytes)"
converged "marks-2" "$P2"
pending "marks-1 differs" "$P1"
reset_done "marks" "$P2" veth0
