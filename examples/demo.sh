#!/usr/bin/env bash
# qosctl's main job, shown without touching this machine's interfaces: builds qosctl,
# makes a throw-away network namespace with a veth pair, checks and applies
# examples/namespace-demo.toml there, shows what changed, edits one rate, re-applies,
# and deletes the namespace (also on failure or Ctrl-C). Needs root and iproute2.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
q=${CARGO_TARGET_DIR:-target}/release/qosctl
ns="qosctl-demo-$$"

ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true; rm -f "/tmp/$ns.toml" "/run/lock/qosctl.$ns.lock"' EXIT
ip -n "$ns" link add veth0 type veth peer name veth1
ip -n "$ns" link set veth0 up
ip -n "$ns" link set veth1 up

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

step "$q" check examples/namespace-demo.toml
step "$q" --netns "$ns" apply --dry-run examples/namespace-demo.toml
step "$q" --netns "$ns" apply examples/namespace-demo.toml
step "$q" --netns "$ns" apply examples/namespace-demo.toml
step "$q" --netns "$ns" show veth0 --policy examples/namespace-demo.toml

# One edit: bulk gets 70% instead of 60%. Only that class changes, in place.
sed 's/^rate = "60%"/rate = "70%"/' examples/namespace-demo.toml >"/tmp/$ns.toml"
step "$q" --netns "$ns" apply "/tmp/$ns.toml"
step "$q" --netns "$ns" reset "/tmp/$ns.toml"
