# Lab baseline without any qdisc: raw veth throughput and ping RTT under TCG. Every other
# measurement is judged against numbers taken in the same boot, so this only checks sanity.
tput=$(tcp_mbps baseline 5201 3)
in_range "baseline TCP Mbit/s (no qdisc)" "$tput" 100 100000
base=$(rtt_ms base-rtt 30 0.1)
in_range "baseline ping RTT median ms" "$base" 0 5
mss=$(jq -r '.start.tcp_mss_default' "$RAW/baseline.json")
in_range "TCP MSS bytes (wire factor assumes 66 header bytes)" "$mss" 1400 1460
