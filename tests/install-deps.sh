#!/usr/bin/env bash
# Installs what the test suite needs, only what is missing. Idempotent.
set -euo pipefail
pkgs=()
command -v tc >/dev/null || pkgs+=(iproute2)
command -v iperf3 >/dev/null || pkgs+=(iperf3)
command -v setpriv >/dev/null || pkgs+=(util-linux)
command -v python3 >/dev/null || pkgs+=(python3)
command -v systemd-analyze >/dev/null || pkgs+=(systemd)   # tests/systemd.rs verifies contrib/systemd
[ -x /usr/bin/time ] || pkgs+=(time)            # bench/run.sh measures peak memory with it
command -v tmux >/dev/null || pkgs+=(tmux)              # tests/observe.rs runs top in it
command -v promtool >/dev/null || pkgs+=(prometheus)    # tests/observe.rs checks metrics with it
python3 -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)
command -v fireqos >/dev/null || pkgs+=(fireqos)   # tests/import.rs round-trips a tree FireQoS made
if [ "${#pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${pkgs[*]} (run as root to install them)" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${pkgs[@]}" >/dev/null
  fi
fi
# ansible-core (tests/ansible.rs) and prometheus_client (tests/observe.rs) from PyPI, in a
# venv of their own: Debian's python refuses pip installs into the system (PEP 668).
venv="${QOSCTL_TEST_VENV:-/opt/qosctl-tests/venv}"
if ! "$venv/bin/python" -c 'import ansible, prometheus_client' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q ansible-core prometheus_client
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
