# A class's rate changed by `qosctl apply` while a TCP flow runs through it: per-0.5 s
# throughput and drop counters, no stall, the new rate within a second (same measurement as
# calib-06-rate-change, which does it with raw tc).
P1=$POL/rate-change-1.toml P2=$POL/rate-change-2.toml
q_must "apply rate-change-1" apply "$P1"
class_has "class 1:10 at 20mbit" veth0 1:10 "rate 20Mbit" "ceil 20Mbit"
mark_tcp 5201 0x10
. "$KLAB_SHARE/guest/ratechange.sh"
rate_change_run qosctl 20 5 "qosctl apply $P2"
class_has "class 1:10 now at 5mbit" veth0 1:10 "rate 5Mbit" "ceil 5Mbit"
rate_change_run qosctl-up 5 20 "qosctl apply $P1"
converged "rate-change-1" "$P1"
reset_done "rate-change" "$P1" veth0
