# Every netem field of POLICY.md through qosctl, read back against tc's own rendering of the same
# parameters; the change drops fields that must not stay behind. (uniform vs normal jitter: its
# own case, netem-uniform.)
P1=$POL/netem-1.toml P2=$POL/netem-2.toml
q_step "check netem-1" 0 check "$P1"
q_must "apply netem-1" apply "$P1"
same_qdisc "n1: delay/jitter/corr/normal, loss+corr, corrupt+corr, reorder+corr+gap, limit, ecn" veth0 31: \
  netem limit 2000 delay 30ms 5ms 25% distribution normal loss random 1% 10% corrupt 0.1% 5% reorder 5% 50% gap 3 ecn
# POLICY h/k: as model.rs says, the values are what tc calls 1-h / 1-k (loss in bad / good state)
same_qdisc "n2: pareto, Gilbert-Elliott loss, rate, slot" veth0 32: \
  netem delay 10ms 2ms distribution pareto loss gemodel 1% 10% 30% 0.1% rate 5mbit slot 1ms 5ms packets 10 bytes 15360
same_qdisc "n3: paretonormal" veth0 33: netem delay 40ms 10ms distribution paretonormal
same_qdisc "n5: normal" veth0 35: netem delay 40ms 10ms distribution normal
# tc 6.1 sends a duplicate correlation only together with another correlation (it forgets to
# mark the correlation attribute present): the reference names delay correlation 0 to get it
same_qdisc "dummy0 root: duplicate with correlation" dummy0 root netem delay 10ms 0ms 0% duplicate 5% 10%
fw_is "fw filters" veth0 "0x31 1:31;0x32 1:32;0x33 1:33;0x35 1:35;"
converged "netem-1" "$P1"

# traffic: the delay shows in RTT
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
marks_reset; mark_icmp 0x31
if traffic; then
  # 200 pings (4 s): with 5 ms of normal jitter, the median of 40 had a standard error of ~1 ms
  ping_times n1 200 0.02
  jitter_delay "n1 30ms (normal jitter 5ms, correlation 25 %)" n1 "$base" 30 5 0.25
fi
c31=$(qdisc_stat veth0 31: bytes)

q_must "apply netem-2 (change)" apply "$P2"
same_qdisc "n1 reduced to delay 60ms loss 2%: nothing stale" veth0 31: netem delay 60ms loss 2%
same_qdisc "n2: random loss, new rate, no slot" veth0 32: netem delay 10ms loss 3% rate 8mbit
same_qdisc "dummy0: duplicate without correlation" dummy0 root netem delay 10ms duplicate 1%
note "n1 counter before/after the change: $c31 -> $(qdisc_stat veth0 31: bytes) (ecn true->false cannot be changed in place: a restart is allowed)"
converged "netem-2" "$P2"

# A duplicating netem next to other netems: current kernels refuse the tree. check warns; apply
# fails, says why and how to fix it, and leaves veth0 exactly as it was, although the batch had
# already changed n1's rate (20 -> 30mbit) before the kernel refused the netem.
P3=$POL/netem-3-dupmix.toml
q_step "check netem-3-dupmix: valid, with a warning (exit 0)" 0 check "$P3"
has "check warns about the duplicating netem" "$(grep -m1 'warning:' "$QOUT")" 'class "n2" duplicates packets,'
state() { tc -d qdisc show dev veth0; tc -d class show dev veth0; fw_filters veth0; }
before=$(state)
q_step "apply netem-3-dupmix: refused by the kernel (exit 1)" 1 apply "$P3"
has "apply shows the kernel's refusal and the fix" "$(tr '\n' ' ' < "$QOUT")" \
  'cannot mix duplicating netems' 'this kernel refuses a netem with duplicate' 'restored: every interface reads back exactly'
eq "veth0 exactly as before the refused apply (n1 back at 20mbit)" "$(state)" "$before"
in_sync "netem-2 still in sync after the refused apply" "$P2"
reset_done "netem" "$P2" veth0 dummy0
