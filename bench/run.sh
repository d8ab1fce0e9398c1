#!/bin/bash
# The qosctl ISP-scale benchmark (issue 5). Run as root from the repository:
#
#   bench/run.sh                      # sizes 1000,10000; 3 runs each; a few minutes
#   bench/run.sh --sizes 1000,10000,100000 --runs 5
#
# Options:
#   --sizes LIST        subscriber classes per variant: 200, 1000, 10000, 100000
#   --runs N            runs per figure (the median is reported)        [3]
#   --slow-runs N       runs of the slow methods (tc per command, FireQoS) [1]
#   --qosctl PATH       qosctl binary [built here with `cargo build --release`]
#   --percmd-max N      largest size measured one tc process per command [10000]
#   --no-fireqos        skip FireQoS
#   --json FILE         write every sample as JSON
#   --keep              keep the generated workloads (path printed at the end)
#   --verify-fireqos    run FireQoS once under strace and list every program it ran
#   --match             the issue-10 workload: every subscriber class has a `dst` match
#                       (bench/gen.py --match); the edit changes one address
#   --throughput        instead of the table: forwarding throughput (iperf3, UDP 64-byte
#                       datagrams and TCP) through 10,000 dst matches vs 10, in namespaces
#                       NS-c/NS-s0/NS-s1 around NS as a router; bench/throughput.py.
#                       --runs rounds; --raw-tc applies the trees with tc -batch instead;
#                       --seconds N per iperf3 run [3]; --modes udp64,tcp (either or both);
#                       --tput-sizes BIG,SMALL [10000,10]; --linear: the control, no hash
#                       table (tc -batch, every rule in one list; BIG at most 4000)
#   --compare OLD_BIN   instead of the table: this qosctl (new) and OLD_BIN side by side,
#                       interleaved, on the first size of --sizes (first apply, no-op,
#                       check, and the tc dumps the reader runs); bench/compare.py.
#                       --runs first applies each, --fast-runs N no-op/check runs [25]
#
# Everything happens in a network namespace of its own (qx-bench-PID) with veth pairs
# qb0/qb0p ... created inside it; the host's interfaces are never touched. The namespace
# and the work directory are removed on any exit (trap).

set -euo pipefail
# The tracked bench/__pycache__ must not change with every run.
export PYTHONDONTWRITEBYTECODE=1

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
SIZES=1000,10000
RUNS=3
SLOW_RUNS=1
QOSCTL=
PERCMD_MAX=10000
NO_FIREQOS=
JSON=
KEEP=
VERIFY_FIREQOS=
COMPARE=
FAST_RUNS=25
MATCH=
THROUGHPUT=
RAW_TC=
SECONDS_PER_RUN=3
MODES=udp64,tcp
TPUT_SIZES=10000,10
LINEAR=

die() { echo "bench/run.sh: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
	case "$1" in
		--sizes) SIZES="${2:?--sizes needs a list, e.g. 1000,10000}"; shift ;;
		--runs) RUNS="${2:?--runs needs a number}"; shift ;;
		--slow-runs) SLOW_RUNS="${2:?--slow-runs needs a number}"; shift ;;
		--qosctl) QOSCTL="${2:?--qosctl needs a path}"; shift ;;
		--percmd-max) PERCMD_MAX="${2:?--percmd-max needs a number}"; shift ;;
		--no-fireqos) NO_FIREQOS=--no-fireqos ;;
		--json) JSON="${2:?--json needs a file}"; shift ;;
		--keep) KEEP=1 ;;
		--verify-fireqos) VERIFY_FIREQOS=1 ;;
		--match) MATCH=--match ;;
		--throughput) THROUGHPUT=1 ;;
		--raw-tc) RAW_TC=--raw ;;
		--seconds) SECONDS_PER_RUN="${2:?--seconds needs a number}"; shift ;;
		--tput-sizes) TPUT_SIZES="${2:?--tput-sizes needs BIG,SMALL}"; shift ;;
		--linear) LINEAR=--linear ;;
		--modes) MODES="${2:?--modes needs udp64, tcp or udp64,tcp}"; shift ;;
		--fast-runs) FAST_RUNS="${2:?--fast-runs needs a number}"; shift ;;
		--compare) COMPARE="${2:?--compare needs the old qosctl binary}"; shift ;;
		-h|--help) sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) die "unknown option '$1' (see --help)" ;;
	esac
	shift
done

[ "$(id -u)" = 0 ] || die "needs root (it creates a network namespace); run it with sudo"
command -v tc >/dev/null || die "tc not found: apt-get install iproute2"
command -v python3 >/dev/null || die "python3 not found"
[ -x /usr/bin/time ] || die "/usr/bin/time not found (peak memory): apt-get install time"
if [ -z "$NO_FIREQOS" ] && ! command -v fireqos >/dev/null; then
	echo "bench/run.sh: fireqos not found (apt-get install fireqos): FireQoS rows skipped" >&2
	NO_FIREQOS=--no-fireqos
fi

if [ -z "$QOSCTL" ]; then
	echo "building qosctl (release)..." >&2
	(cd "$ROOT" && cargo build --release --quiet) ||
		die "cargo build --release failed; or pass --qosctl PATH"
	QOSCTL="$ROOT/target/release/qosctl"
fi
[ -x "$QOSCTL" ] || die "$QOSCTL: not an executable"

NS="qx-bench-$$"
WORK="$(mktemp -d /tmp/qx-bench-XXXXXX)"
cleanup() {
	local rc=$?
	ip netns del "$NS" 2>/dev/null || true
	for n in c s0 s1; do ip netns del "$NS-$n" 2>/dev/null || true; done
	if [ -n "$KEEP" ]; then
		echo "workloads kept in $WORK" >&2
	else
		rm -rf "$WORK"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ip netns add "$NS" || die "could not create network namespace $NS"
ip -n "$NS" link set lo up

if [ -n "$THROUGHPUT" ]; then
	command -v iperf3 >/dev/null || die "--throughput needs iperf3: apt-get install iperf3"
	python3 "$HERE/throughput.py" --netns "$NS" --workdir "$WORK" --qosctl "$QOSCTL" \
		--tc "$(command -v tc)" --runs "$RUNS" --seconds "$SECONDS_PER_RUN" --modes "$MODES" \
		--sizes "$TPUT_SIZES" $RAW_TC $LINEAR ${JSON:+--json "$JSON"}
	echo
	echo "machine: $(nproc) cores, $(uname -r), $(tc -V), $(iperf3 --version | head -1)"
	exit 0
fi


# One device per 10,000 subscribers of the largest variant (see bench/gen.py for why).
MAXDEV=1
for s in ${SIZES//,/ }; do
	python3 "$HERE/gen.py" tree "$s" "$WORK/$s" $MATCH >/dev/null ||
		die "could not generate the $s-class workload"
	n=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["devices"]))' \
		"$WORK/$s/meta.json")
	if [ "$n" -gt "$MAXDEV" ]; then MAXDEV=$n; fi
done
for ((i = 0; i < MAXDEV; i++)); do
	ip -n "$NS" link add "qb$i" type veth peer name "qb${i}p"
	ip -n "$NS" link set "qb$i" up
	ip -n "$NS" link set "qb${i}p" up
done

if [ -n "$VERIFY_FIREQOS" ]; then
	command -v strace >/dev/null || die "--verify-fireqos needs strace: apt-get install strace"
	s=${SIZES%%,*}
	[ -f "$WORK/$s/fireqos.conf" ] || die "no FireQoS config for size $s"
	echo "FireQoS under strace, $s classes, in netns $NS with a private /run:" >&2
	ip netns exec "$NS" unshare --mount --propagation private sh -c \
		'mount -t tmpfs qx-bench-fireqos /run && exec "$@"' fireqos \
		strace -f -qq -e trace=execve -e signal=none -s 300 -o "$WORK/strace.log" \
		fireqos -nc start "$WORK/$s/fireqos.conf" >"$WORK/fireqos.log" 2>&1 ||
		{ tail -20 "$WORK/fireqos.log" >&2; die "fireqos failed"; }
	echo "programs executed (count, program):"
	grep -o 'execve("[^"]*"' "$WORK/strace.log" | sed 's/execve("//; s/"$//' |
		sort | uniq -c | sort -rn
	echo "the other programs' arguments (not tc, cat, seq, cut, which, dirname, basename, readlink):"
	grep 'execve(' "$WORK/strace.log" |
		grep -Ev 'execve\("[^"]*/(tc|cat|seq|cut|which|dirname|basename|readlink)"' |
		sed 's/^[0-9]* *execve("[^"]*", \[//; s/\], 0x.*//' | sort | uniq -c | sort -rn
	echo "tc commands naming a device other than qb*:"
	grep 'execve("/[^"]*/tc"' "$WORK/strace.log" | grep -o '"dev", "[^"]*"' |
		grep -v '"dev", "qb' | sort | uniq -c || echo "  none"
	echo "host /run/fireqos exists afterwards: $([ -e /run/fireqos ] && echo yes || echo no)"
	exit 0
fi

if [ -n "$COMPARE" ]; then
	[ -x "$COMPARE" ] || die "$COMPARE: not an executable"
	python3 "$HERE/compare.py" --netns "$NS" --workload "$WORK/${SIZES%%,*}" --runs "$RUNS" \
		--fast-runs "$FAST_RUNS" --tc "$(command -v tc)" --bin "new=$QOSCTL" --bin "old=$COMPARE" ${JSON:+--json "$JSON"}
	echo
	echo "new: $QOSCTL; old: $COMPARE"
	echo "machine: $(nproc) cores, $(uname -r), $(tc -V)"
	exit 0
fi

python3 "$HERE/bench.py" --netns "$NS" --workdir "$WORK" --sizes "$SIZES" --runs "$RUNS" \
	--slow-runs "$SLOW_RUNS" --qosctl "$QOSCTL" --tc "$(command -v tc)" --percmd-max "$PERCMD_MAX" $NO_FIREQOS \
	${JSON:+--json "$JSON"}
echo
echo "machine: $(nproc) cores, $(uname -r), $(tc -V)"
