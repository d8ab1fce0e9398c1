#!/usr/bin/env bash
# Installs every program the test suite, the benchmark's smoke run and tests/run-all.sh run
# on this host, only what is missing. Idempotent. Debian 12 (apt-get); needs root to install.
#
# One `need PROGRAM PACKAGE` line per program. tests/deps.rs checks that every program a
# test asks for with `common::require` has a line here, so this list cannot fall behind.
# The kernel-lab guest brings its own nft, jq, iperf3 and busybox (unpacked from .debs by
# tests/klab/lab/build.sh, never installed on the host); qemu comes from
# tests/klab/install-qemu.sh (run-all.sh passes --install).
set -euo pipefail
pkgs=()
need() { command -v "$1" >/dev/null 2>&1 || pkgs+=("$2"); }

need tc iproute2            # everything: qosctl runs it, tests read back with it
need ip iproute2            # network namespaces and veth pairs
need ss iproute2            # tests/kernel.rs waits for iperf3's listening socket
need ping iputils-ping      # tests/show.rs sends traffic through a class
need iperf3 iperf3          # tests/kernel.rs: a rate changed under a live flow
need setpriv util-linux     # tests/kernel.rs: apply without CAP_NET_ADMIN
need python3 python3        # bench/run.sh (tests/bench_smoke.rs)
need /usr/bin/time time     # bench/run.sh measures peak memory with it
need cc gcc                 # cargo's linker
need xz xz-utils            # tests/klab/lab/build.sh unpacks the Debian kernel image
need file file              # tests/klab/run-tier.sh checks that qosctl is static
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || pkgs+=(libc6-dev)   # the klab tier's static qosctl

need systemd-analyze systemd   # tests/systemd.rs verifies contrib/systemd
need tmux tmux              # tests/observe.rs runs top in it
need promtool prometheus    # tests/observe.rs checks metrics with it
need fireqos fireqos        # tests/import.rs round-trips a tree FireQoS made
need strace strace          # bench/run.sh --verify-fireqos traces what FireQoS runs
need ps procps              # tests/observe.rs finds top's pid in its tmux pane
need kill procps            # tests/confirm.rs, watch.rs, observe.rs, systemd.rs send signals
need man man-db             # tests/cli_docs.rs: pages the man pages refer to are installed
need groff groff-base       # tests/cli_docs.rs renders the policy page without warnings
python3 -c 'import ensurepip' 2>/dev/null || pkgs+=(python3-venv)   # the venv below

if [ "${#pkgs[@]}" -gt 0 ]; then
  # sort -u: several programs come from one package
  mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${pkgs[*]} (run as root to install them)" >&2
  else
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
    echo "installed: ${pkgs[*]}"
  fi
fi
# ansible-playbook and ansible-doc (ansible-core; tests/ansible.rs) and prometheus_client
# (tests/observe.rs) from PyPI, in a venv of their own: Debian's python refuses pip installs
# into the system (PEP 668). Checked by the programs the tests run, not by an import: a venv
# whose entry points are missing must be repaired, not kept.
venv="${QOSCTL_TEST_VENV:-/opt/qosctl-tests/venv}"
if ! { [ -x "$venv/bin/python" ] && [ -x "$venv/bin/ansible-playbook" ] && [ -x "$venv/bin/ansible-doc" ] &&
       "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; }; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade ansible-core prometheus_client
  for p in ansible-playbook ansible-doc; do
    [ -x "$venv/bin/$p" ] || { echo "install-deps: $venv/bin/$p is missing after pip install ansible-core" >&2; exit 1; }
  done
  echo "installed: ansible-core (ansible-playbook, ansible-doc), prometheus_client in $venv"
fi
# rustfmt and clippy: run-all.sh runs `cargo fmt --check` and `cargo clippy`. With rustup they
# are components; a toolchain from Debian's packages (no rustup) brings them as packages.
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
else
  for c in cargo-fmt:rustfmt cargo-clippy:rust-clippy; do
    command -v "${c%%:*}" >/dev/null 2>&1 || echo "no rustup: install ${c#*:} (apt-get) or rustup" >&2
  done
fi
