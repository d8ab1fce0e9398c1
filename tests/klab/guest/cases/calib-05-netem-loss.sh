# netem loss p on >= 2,000 packets: the lost count lies in the exact 99.99 % binomial interval.
for p in 10 2; do
  tc qdisc add dev veth0 root handle 1: netem loss ${p}%
  read -r sent recv <<< "$(ping_loss loss-$p 2000 0.005)"
  lost=$((sent - recv))
  read -r lo hi <<< "$(binom_bounds "$sent" "0.$(printf '%02d' $p)" 0.9999)"
  drops=$(qdisc_stat veth0 1: dropped)
  note "netem loss $p%: $sent sent, $lost lost ($(calc "$lost * 100 / $sent") %), 99.99 % bound [$lo, $hi], netem drop counter $drops"
  in_range "netem loss $p%: packets sent" "$sent" 2000 2000
  in_range "netem loss $p%: lost of $sent, 99.99 % binomial bound" "$lost" "$lo" "$hi"
  tc qdisc del dev veth0 root
done
