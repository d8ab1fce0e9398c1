#!/bin/bash
# build.sh CACHE_DIR — assemble a throw-away "kernel lab" for Linux traffic-control tests:
# a stock Debian kernel (vmlinuz + uncompressed vmlinux for fast PVH boot) and an initramfs with
# busybox, bash, tc/ip, iperf3, kmod and the tc/netdev kernel modules.
# Nothing is installed on the host: packages are fetched with `apt-get download` through a private
# apt state under CACHE_DIR and unpacked with `dpkg-deb -x`. Idempotent: finished parts are reused.
#
# Environment knobs (all optional):
#   KLAB_SUITE=bookworm|bookworm-backports   kernel source (default bookworm: 6.1 LTS; backports: 6.12)
#   KLAB_FLAVOUR=amd64|cloud-amd64           kernel flavour (default amd64; cloud-amd64 has no 9p, so no --share)
#   KLAB_KERNEL_PKG=linux-image-...          explicit kernel package (overrides suite/flavour resolution)
#   KLAB_IPROUTE2=host|backports             tc/ip for the guest: the host's (default) or iproute2 from
#                                            bookworm-backports (6.15; its `tc -j` also covers classes/fw)
#   KLAB_TC / KLAB_IP                        explicit tc / ip binaries (default: the host's /usr/sbin/tc, /usr/sbin/ip)
#   KLAB_EXTRA_BINS="path ..."               more binaries to copy into the guest (with their libraries); a path
#                                            that exists in the unpacked KLAB_EXTRA_PKGS is taken from there,
#                                            otherwise from the host (default: qosctl's tier needs nft and jq)
#   KLAB_EXTRA_PKGS="pkg ..."                more bookworm packages to fetch and unpack into the guest userland
#                                            (default: nftables and its libraries, jq, mawk; not installed on the host)
#   KLAB_EXTRA_MODULES="mod ..."             more kernel modules to put into the initramfs and load at boot
#                                            (default: nf_tables, so `nft ... meta mark set` works in the guest)
# qosctl's copy: the initramfs is rebuilt by itself when this script, init or the KLAB_EXTRA_* lists change
# (a stamp in the lab directory), so a CI cache never runs a stale guest.
#   KLAB_MIRROR / KLAB_SECURITY_MIRROR       Debian mirrors (default: the ones this host's apt uses)
#   KLAB_REBUILD=1                           rebuild the initramfs even if it exists
#   KLAB_KEEP_UNPACKED=1                     keep the unpacked kernel tree (~400 MB) after the build
# Result: CACHE_DIR/<lab>/{vmlinuz,vmlinux,initramfs.cpio.gz,manifest.txt,initramfs.files} with
# <lab> = <kver>, or <kver>-iproute2-<version> for KLAB_IPROUTE2=backports; CACHE_DIR/current -> <lab>.
# The lab directory is printed on stdout.
set -euo pipefail

die() { echo "build.sh: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

[ $# -ge 1 ] || die "usage: build.sh CACHE_DIR"
mkdir -p "$1"
CACHE=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

SUITE=${KLAB_SUITE:-bookworm}
FLAVOUR=${KLAB_FLAVOUR:-amd64}
IPR=${KLAB_IPROUTE2:-host}
. "$HERE/mirrors.sh"
TC_BIN=${KLAB_TC:-/usr/sbin/tc}
IP_BIN=${KLAB_IP:-/usr/sbin/ip}
ARCH_LIB=x86_64-linux-gnu
for t in apt-get apt-cache dpkg-deb ldd xz gzip find; do command -v "$t" >/dev/null || die "missing host tool: $t"; done
case $IPR in host|backports) ;; *) die "KLAB_IPROUTE2 must be host or backports" ;; esac

# ---------- private apt state (the host's apt configuration and lists are not touched) ----------
APTDIR=$CACHE/apt
DEBS=$CACHE/debs
mkdir -p "$APTDIR/lists/partial" "$DEBS"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
cat > "$APTDIR/sources.list" <<EOF
deb [signed-by=$KEYRING] $MIRROR bookworm main
deb [signed-by=$KEYRING] $MIRROR bookworm-updates main
deb [signed-by=$KEYRING] $SECMIRROR bookworm-security main
deb [signed-by=$KEYRING] $MIRROR bookworm-backports main
EOF
APT=(-o Dir::Etc::sourcelist="$APTDIR/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::lists="$APTDIR/lists"
     -o Dir::Cache::archives="$APTDIR/archives" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
     -o Acquire::Languages=none -o Debug::NoLocking=1 -q)
[ "$(id -u)" = 0 ] && APT+=(-o APT::Sandbox::User=root)
BPO=(-o APT::Default-Release=bookworm-backports)
APT_UPDATED=
apt_update() { [ -n "$APT_UPDATED" ] && return 0; log "apt-get update (private lists in $APTDIR)"; apt-get "${APT[@]}" update >&2; APT_UPDATED=1; }
deb_of() { compgen -G "$DEBS/${1}_*.deb" | head -n1; }
# fetch PKG [apt options...]: apt-get download PKG into $DEBS unless a .deb of it is cached
fetch() {
  local p=$1; shift
  [ -n "$(deb_of "$p")" ] && return 0
  apt_update
  (cd "$DEBS" && apt-get "${APT[@]}" "$@" download "$p" >&2)
  [ -n "$(deb_of "$p")" ] || die "download of $p failed"
}
# unpack PKG DIR: dpkg-deb -x the cached .deb of PKG into DIR (once)
unpack() { [ -d "$2" ] && return 0; log "unpacking $1"; rm -rf "$2.tmp"; mkdir -p "$2.tmp"; dpkg-deb -x "$(deb_of "$1")" "$2.tmp"; mv "$2.tmp" "$2"; }

# ---------- which kernel ----------
REL=(); [ "$SUITE" = bookworm-backports ] && REL=("${BPO[@]}")
if [ -n "${KLAB_KERNEL_PKG:-}" ]; then
  KPKG=$KLAB_KERNEL_PKG
elif [ -s "$CACHE/resolved-$SUITE-$FLAVOUR" ]; then
  KPKG=$(cat "$CACHE/resolved-$SUITE-$FLAVOUR")        # reuse the first resolution: repeatable
else
  apt_update
  KPKG=$(apt-cache "${APT[@]}" "${REL[@]}" depends "linux-image-$FLAVOUR" |
         awk '$1=="Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
  [ -n "$KPKG" ] || die "cannot resolve linux-image-$FLAVOUR in $SUITE"
  echo "$KPKG" > "$CACHE/resolved-$SUITE-$FLAVOUR"
fi
KVER=${KPKG#linux-image-}; KVER=${KVER%-unsigned}        # Debian: package linux-image-<kver>[-unsigned]
log "kernel package: $KPKG"

# ---------- userland packages (bookworm) and optional iproute2 from backports ----------
USERPKGS=(busybox-static kmod libkmod2 iperf3 libiperf0 libsctp1)
command -v cpio >/dev/null || USERPKGS+=(cpio)
# nftables brings its libraries explicitly: ldd resolves them in the unpacked userland, not on the host
EXTRA_PKGS=${KLAB_EXTRA_PKGS-nftables libnftables1 libnftnl11 libmnl0 libjansson4 libedit2 libbsd0 libmd0 libgmp10 libxtables12 jq libjq1 libonig5 mawk}
EXTRA_BINS=${KLAB_EXTRA_BINS-/usr/sbin/nft /usr/bin/jq /usr/bin/mawk}
EXTRA_MODULES=${KLAB_EXTRA_MODULES-nfnetlink nf_tables nft_ct nf_conntrack}
read -r -a _xp <<< "$EXTRA_PKGS"; USERPKGS+=("${_xp[@]}")
for p in "${USERPKGS[@]}"; do fetch "$p"; done
UL=$CACHE/unpacked/userland
if [ "$(cat "$UL/.done" 2>/dev/null)" != "${USERPKGS[*]}" ]; then
  rm -rf "$UL"; mkdir -p "$UL"
  for p in "${USERPKGS[@]}"; do dpkg-deb -x "$(deb_of "$p")" "$UL"; done
  echo "${USERPKGS[*]}" > "$UL/.done"
fi
LABTAG='' IPRDIR=''
if [ "$IPR" = backports ]; then
  fetch iproute2 "${BPO[@]}"
  IPRVER=$(dpkg-deb -f "$(deb_of iproute2)" Version)
  IPRDIR=$CACHE/unpacked/iproute2-$IPRVER
  unpack iproute2 "$IPRDIR"
  for d in usr/sbin sbin usr/bin bin; do [ -x "$IPRDIR/$d/tc" ] && { TC_BIN=$IPRDIR/$d/tc; break; }; done
  for d in usr/sbin sbin usr/bin bin; do [ -x "$IPRDIR/$d/ip" ] && { IP_BIN=$IPRDIR/$d/ip; break; }; done
  LABTAG=-iproute2-${IPRVER%%-*}
fi
[ -x "$TC_BIN" ] && [ -x "$IP_BIN" ] || die "need tc and ip binaries: $TC_BIN $IP_BIN"
ULLIB=$UL/lib/$ARCH_LIB:$UL/usr/lib/$ARCH_LIB
KMOD=$UL/bin/kmod
CPIO=$(command -v cpio || echo "$UL/bin/cpio")
# kmod picks the tool (depmod, modprobe) from argv[0]
depmod_() { (export LD_LIBRARY_PATH=$ULLIB; exec -a depmod "$KMOD" "$@"); }
modprobe_() { (export LD_LIBRARY_PATH=$ULLIB; exec -a modprobe "$KMOD" "$@"); }

KOUT=$CACHE/kernel/$KVER          # kernel images, shared by all labs of this kernel
OUT=$CACHE/$KVER$LABTAG           # lab = kernel + initramfs
INITRD=$OUT/initramfs.cpio.gz
KROOT=$CACHE/unpacked/$KPKG
need_tree() {                     # download + unpack + depmod the kernel package (only when needed)
  fetch "$KPKG" "${REL[@]}"
  unpack "$KPKG" "$KROOT"
  [ -d "$KROOT/lib/modules" ] || ln -sfn usr/lib "$KROOT/lib"   # depmod -b wants BASE/lib/modules
  [ -d "$KROOT/lib/modules/$KVER" ] || die "$KPKG has no lib/modules/$KVER"
  [ -s "$KROOT/lib/modules/$KVER/modules.dep" ] || { log "depmod $KVER"; depmod_ -b "$KROOT" "$KVER"; }
}
mkdir -p "$KOUT" "$OUT"

# ---------- kernel images; vmlinux = uncompressed ELF booted via PVH (skips ~4 s of decompression under TCG) ----------
if [ ! -s "$KOUT/vmlinuz" ] || [ ! -s "$KOUT/config" ]; then
  need_tree
  cp "$KROOT/boot/vmlinuz-$KVER" "$KOUT/vmlinuz"; cp "$KROOT/boot/config-$KVER" "$KOUT/config"
fi
if [ ! -s "$KOUT/vmlinux" ] && [ ! -e "$KOUT/no-vmlinux" ]; then
  if grep -q '^CONFIG_PVH=y' "$KOUT/config"; then
    # find the compressed payload inside the bzImage and decompress it
    for magic in xz:$'\xfd7zXZ\x00' zstd:$'\x28\xb5\x2f\xfd' gzip:$'\x1f\x8b\x08\x00'; do
      off=$(LC_ALL=C grep -abo -m1 "${magic#*:}" "$KOUT/vmlinuz" | head -n1 | cut -d: -f1 || true)
      [ -n "$off" ] || continue
      case ${magic%%:*} in
        xz)   tail -c +$((off + 1)) "$KOUT/vmlinuz" | xz -dc --single-stream > "$KOUT/vmlinux.tmp" 2>/dev/null || true ;;
        zstd) tail -c +$((off + 1)) "$KOUT/vmlinuz" | zstd -dc > "$KOUT/vmlinux.tmp" 2>/dev/null || true ;;
        gzip) tail -c +$((off + 1)) "$KOUT/vmlinuz" | gzip -dc > "$KOUT/vmlinux.tmp" 2>/dev/null || true ;;
      esac
      if [ "$(head -c4 "$KOUT/vmlinux.tmp" 2>/dev/null)" = $'\x7fELF' ]; then mv "$KOUT/vmlinux.tmp" "$KOUT/vmlinux"; break; fi
      rm -f "$KOUT/vmlinux.tmp"
    done
  fi
  [ -s "$KOUT/vmlinux" ] || { touch "$KOUT/no-vmlinux"; log "no vmlinux; run.sh will boot the bzImage (slower)"; }
fi
for f in vmlinuz vmlinux config; do [ -e "$KOUT/$f" ] && ln -sfn "../kernel/$KVER/$f" "$OUT/$f"; done

# ---------- initramfs ----------
STAMP=$( { cat "$HERE/build.sh" "$HERE/init"; echo "$EXTRA_PKGS|$EXTRA_BINS|$EXTRA_MODULES|$TC_BIN"; } | sha256sum | cut -c1-16)
if [ -s "$INITRD" ] && [ -z "${KLAB_REBUILD:-}" ] && [ "$(cat "$OUT/stamp" 2>/dev/null)" = "$STAMP" ]; then
  log "initramfs exists: $INITRD"
else
  need_tree
  ROOT=$OUT/root
  rm -rf "$ROOT"; mkdir -p "$ROOT"
  # merged-/usr layout so that the host's library paths (/lib/..., /lib64/ld-linux...) resolve
  mkdir -p "$ROOT"/{usr/bin,usr/sbin,usr/lib/$ARCH_LIB,usr/lib64,proc,sys,dev,tmp,run,mnt/host,etc/klab,klab,root,var}
  for d in bin sbin lib lib64; do ln -s "usr/$d" "$ROOT/$d"; done
  ln -s ../run "$ROOT/var/run"

  # copy_elf SRC DEST: copy a dynamically linked binary plus every library ldd reports
  copy_elf() {
    install -D -m 0755 "$1" "$ROOT$2"
    LD_LIBRARY_PATH=$ULLIB ldd "$1" 2>/dev/null | awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\/.*ld-linux/ {print $1}' |
    while read -r lib; do
      case $lib in
        */ld-linux*) dst=/usr/lib64/$(basename "$lib") ;;
        *)           dst=/usr/lib/$ARCH_LIB/$(basename "$lib") ;;
      esac
      [ -e "$ROOT$dst" ] || install -D -m 0755 "$(readlink -f "$lib")" "$ROOT$dst"
    done
  }
  copy_elf "$TC_BIN" /usr/sbin/tc
  copy_elf "$IP_BIN" /usr/sbin/ip
  copy_elf "$KMOD" /usr/sbin/kmod
  for n in modprobe insmod rmmod lsmod modinfo depmod; do ln -s kmod "$ROOT/usr/sbin/$n"; done
  copy_elf "$UL/usr/bin/iperf3" /usr/bin/iperf3
  copy_elf "$(readlink -f /bin/bash)" /usr/bin/bash
  for b in $EXTRA_BINS; do
    if [ -e "$UL$b" ]; then copy_elf "$(readlink -f "$UL$b")" "$b"
    elif [ -e "$b" ]; then copy_elf "$(readlink -f "$b")" "$b"
    else die "KLAB_EXTRA_BINS: $b is neither in KLAB_EXTRA_PKGS nor on the host"; fi
  done
  # busybox's awk has no log()/exp() (the tier computes binomial bounds): mawk is awk when present
  [ -e "$ROOT/usr/bin/mawk" ] && ln -s mawk "$ROOT/usr/bin/awk"
  # busybox provides the rest; the real binaries copied above win over its applets
  install -m 0755 "$UL/bin/busybox" "$ROOT/usr/bin/busybox"
  "$UL/bin/busybox" --list-full | while read -r a; do
    a=usr/${a#usr/}
    [ -e "$ROOT/$a" ] || [ -L "$ROOT/$a" ] || [ -e "$ROOT/usr/sbin/${a##*/}" ] || [ -e "$ROOT/usr/bin/${a##*/}" ] ||
      { mkdir -p "$ROOT/${a%/*}"; ln -s /usr/bin/busybox "$ROOT/$a"; }
  done
  # /bin/sh is bash: Debian's busybox-static is a "standalone shell" whose ash would run its own
  # tc/ip applets instead of the real iproute2 binaries
  ln -sfn bash "$ROOT/usr/bin/sh"
  # netem distribution tables and iproute2 configuration (from the host, or from the backports package)
  if [ -d "/usr/lib/$ARCH_LIB/tc" ]; then
    mkdir -p "$ROOT/usr/lib/$ARCH_LIB/tc"; cp /usr/lib/$ARCH_LIB/tc/*.dist "$ROOT/usr/lib/$ARCH_LIB/tc/" 2>/dev/null || true
  fi
  for d in etc/iproute2 usr/share/iproute2; do
    src=${IPRDIR:-}/$d
    [ -d "$src" ] && mkdir -p "$ROOT/$d" && cp -r "$src/." "$ROOT/$d/"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOT/etc/passwd"
  printf 'root:x:0:\n' > "$ROOT/etc/group"
  printf '127.0.0.1 localhost klab\n' > "$ROOT/etc/hosts"

  # kernel modules: all of net/sched plus netdevs, the 9p share and virtio, with their dependencies
  MD=$KROOT/lib/modules/$KVER
  WANT=$(ls "$MD/kernel/net/sched" | sed -E 's/\.ko(\.[a-z]+)?$//')
  WANT+=" ifb veth dummy macvlan ipvlan 8021q bridge tun netdevsim vxlan tcp_bbr sch_fq_codel"
  WANT+=" virtio_pci virtio_net virtio_blk virtio_console 9p 9pnet_virtio $EXTRA_MODULES"
  : > "$OUT/modules.missing"
  for m in $WANT; do
    modprobe_ -C /dev/null -d "$KROOT" -S "$KVER" --show-depends "$m" 2>/dev/null || echo "$m" >> "$OUT/modules.missing"
  done | awk '$1=="insmod"{print $2}' | sort -u | while read -r ko; do
    install -D -m 0644 "$ko" "$ROOT/usr/lib/modules/$KVER/${ko#"$MD"/}"
  done
  for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -e "$MD/$f" ] && cp "$MD/$f" "$ROOT/usr/lib/modules/$KVER/"
  done
  depmod_ -b "$ROOT" "$KVER"
  # modules /init loads at boot; the rest autoload through /sbin/modprobe when tc asks for them
  PRELOAD="virtio_pci 9pnet_virtio 9p sch_netem sch_htb sch_fq_codel sch_cake sch_sfq sch_prio sch_tbf sch_ingress"
  PRELOAD+=" cls_fw cls_u32 cls_flower cls_matchall cls_basic act_police act_mirred act_skbedit act_gact ifb veth dummy"
  PRELOAD+=" $EXTRA_MODULES"
  for m in $PRELOAD; do
    if grep -qE "/$m\.ko(\.[a-z]+)?:" "$ROOT/usr/lib/modules/$KVER/modules.dep"; then echo "$m"; fi
  done > "$ROOT/etc/klab/preload"

  install -m 0755 "$HERE/init" "$ROOT/init"
  echo "$KVER" > "$ROOT/etc/klab/kver"

  log "packing initramfs"
  (cd "$ROOT" && find . | LC_ALL=C sort | "$CPIO" -o -H newc -R 0:0 --quiet | gzip -1 > "$INITRD.tmp")
  mv "$INITRD.tmp" "$INITRD"
  (cd "$ROOT" && find . ! -type d | LC_ALL=C sort) > "$OUT/initramfs.files"
  PKGS=("$KPKG" "${USERPKGS[@]}"); [ "$IPR" = backports ] && PKGS+=(iproute2)
  {
    echo "kernel_package=$KPKG"; echo "kernel_version=$KVER"
    echo "tc=$("$TC_BIN" -V 2>&1 | head -n1)"
    echo "debs:"; for p in "${PKGS[@]}"; do f=$(deb_of "$p"); echo "  $(basename "$f") $(stat -c %s "$f") bytes"; done
    echo "modules_in_initramfs=$(grep -c '\.ko' "$OUT/initramfs.files")"
    echo "modules_missing=$(tr '\n' ' ' < "$OUT/modules.missing")"
    echo "initramfs_bytes=$(stat -c %s "$INITRD")"
  } > "$OUT/manifest.txt"
  echo "$STAMP" > "$OUT/stamp"
  rm -rf "$ROOT"   # staging tree; its file list stays in initramfs.files
fi
[ -n "${KLAB_KEEP_UNPACKED:-}" ] || rm -rf "$KROOT"
ln -sfn "$(basename "$OUT")" "$CACHE/current"
log "ready: $OUT (kernel $KVER, $("$TC_BIN" -V 2>&1 | head -n1))"
echo "$OUT"
