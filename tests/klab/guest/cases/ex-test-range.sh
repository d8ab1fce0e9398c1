# The test-range example: interface-level netem only, on two devices of one policy, plus the far
# side (veth1 in netns "peer") through `qosctl --netns peer`. RTT = base + both delays; loss of
# 5 % on 2,000 pings within its 99.99 % binomial bound; then changed in place and reset.
P1=$POL/ex-test-range.toml P2=$POL/ex-test-range-2.toml PP=$POL/ex-test-range-peer.toml
if traffic; then base=$(rtt_ms base 30 0.1); note "baseline RTT $base ms"; fi
q_step "check" 0 check "$P1"
q_must "apply ex-test-range" apply "$P1"
q_must "apply the far side with --netns peer" --netns peer apply "$PP"
same_qdisc "veth0 root netem" veth0 root netem delay 100ms 2ms loss 5%
same_qdisc "dummy0 root netem" dummy0 root netem delay 1s loss 50%
same_qdisc "veth1 (netns peer) root netem" peer/veth1 root netem delay 30ms
eq "root netns untouched by --netns peer: veth0 has one root qdisc" "$(tc qdisc show dev veth0 | grep -c ' root ')" 1
converged "ex-test-range" "$P1"
q_step "ex-test-range-peer: in sync with --netns peer" 0 --netns peer apply --dry-run --detailed-exitcode "$PP"

if traffic; then
  # veth0 adds 2 ms of uniform jitter; two netem timers (veth0's, veth1's) each fire late under TCG
  ping_times d130 60 0.05
  jitter_delay "RTT - baseline = 100ms (veth0, jitter 2ms) + 30ms (veth1)" d130 "$base" 130 2 0 2
fi
if traffic; then
  read -r sent recv <<< "$(ping_loss loss5 2000 0.005)"
  lost=$((sent - recv)); read -r lo hi <<< "$(binom_bounds "$sent" 0.05 0.9999)"
  note "loss 5 %: $sent sent, $lost lost, 99.99 % binomial bound [$lo, $hi]"
  in_range "lost of $sent pings within the 99.99 % binomial bound of 5 %" "$lost" "$lo" "$hi"
fi

q_must "apply ex-test-range-2 (veth0 60ms, 1 %)" apply "$P2"
same_qdisc "veth0 root netem changed" veth0 root netem delay 60ms loss 1%
same_qdisc "dummy0 unchanged" dummy0 root netem delay 1s loss 50%
if traffic; then
  # no jitter: ±2 ms, and LATE_MS more above for the second netem timer (jitter_delay)
  ping_times d90 30 0.1
  jitter_delay "RTT - baseline = 60ms + 30ms" d90 "$base" 90 0 0 2
fi
converged "ex-test-range-2" "$P2"
reset_done "ex-test-range" "$P2" veth0 dummy0
q_step "reset the far side with --netns peer" 0 --netns peer reset "$PP"
eq "veth1 in netns peer back to the kernel default" "$(root_kind veth1 peer)" noqueue
