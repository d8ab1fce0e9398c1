# The home-router example (policies/ex-home-router.toml): percentages of a 40mbit uplink, a nested
# class with netem. Applied, read back, and each mark gets its class's rate (alone: its ceil)
# and the backup class its delay; then changed in place and reset.
P1=$POL/ex-home-router.toml P2=$POL/ex-home-router-2.toml
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
q_step "check" 0 check "$P1"
q_must "apply ex-home-router" apply "$P1"
has "root htb, default bulk/rest 1:32" "$(root_line veth0)" "htb 1:" "default 0x32"
class_has "root class 40mbit" veth0 1:1 "rate 40Mbit" "ceil 40Mbit"
class_has "voice 10%/25%" veth0 1:10 "parent 1:1" "prio 0" "rate 4Mbit" "ceil 10Mbit"
class_has "video 30%/50%" veth0 1:20 "parent 1:1" "prio 1" "rate 12Mbit" "ceil 20Mbit"
class_has "bulk 60%/80%" veth0 1:30 "parent 1:1" "rate 24Mbit" "ceil 32Mbit"
class_has "bulk/backup 25% of bulk, ceil 25% of bulk's ceil" veth0 1:31 "parent 1:30" "leaf 31:" "rate 6Mbit" "ceil 8Mbit"
class_has "bulk/rest 75%/100%" veth0 1:32 "parent 1:30" "leaf 32:" "rate 18Mbit" "ceil 32Mbit"
same_qdisc "backup's netem" veth0 31: netem limit 5000 delay 40ms
for h in 10: 20: 32:; do eq "leaf $h is the default fq_codel" "$(qdisc_line veth0 $h | awk '{ print $2 }')" fq_codel; done
fw_is "fw filters" veth0 "0x10 1:10;0x20 1:20;0x31 1:31;"
converged "ex-home-router" "$P1"

mark_rate "voice (0x10) alone borrows up to its ceil 10mbit" 0x10 1:10 10
mark_rate "video (0x20) alone borrows up to its ceil 20mbit" 0x20 1:20 20
mark_rate "backup (0x31) alone, ceil 8mbit" 0x31 1:31 8
mark_rate "unmarked -> bulk/rest, ceil 32mbit" 0x0 1:32 32
mark_delay "backup (0x31) netem 40ms" 0x31 40 "$base"
mark_delay "voice (0x10) has no delay" 0x10 0 "$base"

q_must "apply ex-home-router-2 (voice 8/12mbit, video 8mbit, backup 80ms)" apply "$P2"
class_has "voice changed" veth0 1:10 "rate 8Mbit" "ceil 12Mbit"
class_has "video changed" veth0 1:20 "rate 8Mbit" "ceil 20Mbit"
same_qdisc "backup's netem changed" veth0 31: netem limit 5000 delay 80ms
mark_rate "voice (0x10) alone, new ceil 12mbit" 0x10 1:10 12
mark_delay "backup (0x31) netem now 80ms" 0x31 80 "$base"
converged "ex-home-router-2" "$P2"
reset_done "ex-home-router" "$P2" veth0
