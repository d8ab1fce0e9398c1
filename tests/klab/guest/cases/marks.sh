# marks -> fw filters through qosctl: one and several marks per class; then a mark moved to
# another class and a mark removed. nftables marks real packets; class counters prove where they go.
P1=$POL/marks-1.toml P2=$POL/marks-2.toml
q_step "check marks-1" 0 check "$P1"
q_must "apply marks-1" apply "$P1"
fw_is "fw filters: 0x10->a, 0x20+0x21->b, 0x30->c" veth0 "0x10 1:10;0x20 1:20;0x21 1:20;0x30 1:30;"
converged "marks-1" "$P1"
# routed LABEL MARK WANT_CLASS: 15 pings marked MARK (nftables) land in WANT_CLASS and in no other
# class. The default class d (1:40) may see up to 3 more packets than we sent: ARP and other
# unmarked traffic of the guest goes there too.
routed() {
  local c want=$3 d got=() bad=
  declare -A before
  for c in 1:10 1:20 1:30 1:40; do before[$c]=$(class_stat veth0 $c pkts); done
  marks_reset; mark_icmp "$2"
  ping -c 15 -i 0.02 -W 1 $PEER > /dev/null 2>&1
  for c in 1:10 1:20 1:30 1:40; do
    d=$(( $(class_stat veth0 $c pkts) - ${before[$c]} )); got+=("$c:$d")
    local lo=0 hi=0
    [ "$c" = "$want" ] && lo=15 hi=15
    [ "$c" = 1:40 ] && hi=$((hi + 3))
    [ "$d" -ge "$lo" ] && [ "$d" -le "$hi" ] || bad+="$c "
  done
  if [ -z "$bad" ]; then pass "$1" "packets per class: ${got[*]}"
  else fail "$1" "packets per class: ${got[*]} (want 15 in $want only; wrong: $bad)"; fi
}
routed "0x10 -> class a" 0x10 1:10
routed "0x20 -> class b" 0x20 1:20
routed "0x21 -> class b (second mark of b)" 0x21 1:20
routed "0x30 -> class c" 0x30 1:30
routed "unknown mark 0x99 -> default class d" 0x99 1:40
c20=$(class_stat veth0 1:20 bytes)

q_must "apply marks-2 (0x21 moved b->c, 0x30 removed)" apply "$P2"
fw_is "fw filters after the move" veth0 "0x10 1:10;0x20 1:20;0x21 1:30;"
routed "0x21 -> class c now" 0x21 1:30
routed "0x20 still -> class b" 0x20 1:20
routed "removed 0x30 -> default class d" 0x30 1:40
counter_kept "class b kept its counters (classes untouched by a filter change)" "$c20" "$(class_stat veth0 1:20 bytes)"
converged "marks-2" "$P2"
pending "marks-1 differs" "$P1"
reset_done "marks" "$P2" veth0
