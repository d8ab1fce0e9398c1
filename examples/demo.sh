#!/usr/bin/env bash
# qosctl's main job, shown without touching this machine's interfaces: builds qosctl,
# makes a throw-away network namespace with a veth pair, checks and applies
# examples/namespace-demo.toml there, shows what changed, edits one rate, re-applies,
# and deletes the namespace (also on failure or Ctrl-C). Needs cargo, iproute2 and root.
#
# Run it as yourself: it builds as you (root's PATH under sudo usually lacks ~/.cargo/bin),
# then runs the namespace part through sudo. As root it needs no sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --qosctl ]; then
  q=$2   # re-run under sudo with the binary built before
else
  if ! command -v cargo > /dev/null; then
    echo "demo.sh: cargo is not on PATH; run examples/demo.sh as the user who has Rust" \
      "(not under sudo): it builds as you and asks sudo for the namespace part" >&2
    exit 1
  fi
  cargo build --release --quiet
  q=$(cd "${CARGO_TARGET_DIR:-target}/release" && pwd)/qosctl
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo > /dev/null; then
      echo "demo.sh: built $q; the namespace part needs root: run examples/demo.sh as root" >&2
      exit 1
    fi
    exec sudo "$0" --qosctl "$q"
  fi
fi
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
