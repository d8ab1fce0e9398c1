#!/bin/bash
# install-qemu.sh — install qemu-system-x86 on this (Debian 12) host; needs root. The only host change
# the lab needs. Prefers bookworm-backports (QEMU 10.0: ~1 s faster boots than 7.2, and it does not
# remove a backports qemu-utils that the image may already have); falls back to bookworm (QEMU 7.2).
# Backports is reached through a private sources list: /etc/apt is not modified.
# KLAB_DRY_RUN=1 only simulates (apt-get -s).
set -euo pipefail
if command -v qemu-system-x86_64 >/dev/null && [ -z "${KLAB_DRY_RUN:-}" ]; then
  echo "install-qemu.sh: $(qemu-system-x86_64 --version | head -n1) already installed"; exit 0
fi
[ "$(id -u)" = 0 ] || { echo "install-qemu.sh: needs root" >&2; exit 1; }
SIM=(); [ -n "${KLAB_DRY_RUN:-}" ] && SIM=(-s)
export DEBIAN_FRONTEND=noninteractive
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/lists/partial"
K=/usr/share/keyrings/debian-archive-keyring.gpg
. "$(dirname "${BASH_SOURCE[0]}")/lab/mirrors.sh"
M=$MIRROR S=$SECMIRROR
printf 'deb [signed-by=%s] %s %s main\n' "$K" "$M" bookworm "$K" "$M" bookworm-updates "$K" "$S" bookworm-security "$K" "$M" bookworm-backports > "$T/sources.list"
APT=(-o Dir::Etc::sourcelist="$T/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::lists="$T/lists"
     -o Acquire::Languages=none -q)
if apt-get "${APT[@]}" update >&2 &&
   apt-get "${APT[@]}" "${SIM[@]}" install -y --no-install-recommends -t bookworm-backports qemu-system-x86; then
  :
else
  echo "install-qemu.sh: backports failed, using bookworm's qemu-system-x86" >&2
  apt-get update >&2
  apt-get "${SIM[@]}" install -y --no-install-recommends qemu-system-x86
fi
[ -n "${KLAB_DRY_RUN:-}" ] || qemu-system-x86_64 --version | head -n1
