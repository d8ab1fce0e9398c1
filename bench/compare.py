#!/usr/bin/env python3
"""Two qosctl binaries side by side on one workload (bench/run.sh --compare OLD_BIN).

Not meant to be run by hand: bench/run.sh owns the namespace. For each run i, every binary
in turn (the order alternates run by run) does, on the same devices:

  first   the root qdiscs are deleted (not timed), then `qosctl apply policy.toml` (--runs)

then, on the applied tree, --fast-runs times each (these are cheap, and noisier):

  noop    `qosctl apply policy.toml` again (the plan must be empty: it is counted first)
  check   `qosctl check --quiet policy.toml` (parse, validate, resolve)

and, once per fast run, `dumps`: the three `tc -j -d ... show` processes qosctl's reader runs on a
device holding the tree (qdisc, class, filter on the root qdisc), back to back. That is what
the no-op re-apply cannot avoid: its target is a ratio to it.

Interleaving puts both binaries under the same load; the result is the median of the run-by-
run ratios NEW/OLD (and each binary's medians). A ratio within the runs' own spread is noise.
"""

import argparse
import json
import os
import resource
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import first_lines, log, run, tc_dumps  # noqa: E402

FIGURES = ("first", "noop", "check")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd):
    """(wall seconds, CPU seconds of the process and the children it waited for, process).
    On a shared machine the CPU time is the steadier figure: other jobs stretch the wall
    time of whichever binary they happen to overlap."""
    c0 = children_cpu()
    dt, p = run(cmd, check=False)
    return (dt, children_cpu() - c0), p


class Compare:
    def __init__(self, a):
        self.a = a
        self.ns = a.netns
        self.tc = a.tc
        self.bins = [tuple(b.split("=", 1)) for b in a.bin]
        meta = json.load(open(os.path.join(a.workload, "meta.json")))
        self.devs = meta["devices"]
        self.meta = meta
        self.policy = os.path.join(a.workload, "policy.toml")

    def reset(self):
        for d in self.devs:
            run([self.tc, "-n", self.ns, "qdisc", "del", "dev", d, "root"], check=False)

    def q(self, qosctl, *args):
        return [qosctl, "--netns", self.ns, "--tc", self.tc] + list(args)

    def apply(self, qosctl):
        dt, p = timed(self.q(qosctl, "apply", self.policy))
        if p.returncode != 0:
            raise SystemExit(f"compare: {qosctl} apply failed: {first_lines(p.stderr)}")
        return dt

    def noop_count(self, qosctl):
        _, p = run(self.q(qosctl, "apply", self.policy, "--dry-run", "--json"), check=False)
        if p.returncode not in (0, 2):
            raise SystemExit(f"compare: {qosctl} dry run failed: {first_lines(p.stderr)}")
        return len(json.loads(p.stdout).get("commands", []))

    def check(self, qosctl):
        dt, p = timed([qosctl, "check", "--quiet", self.policy])
        if p.returncode != 0:
            raise SystemExit(f"compare: {qosctl} check failed: {first_lines(p.stderr)}")
        return dt

    def dumps(self):
        """The reader's three dumps of every device, as separate tc processes."""
        c0 = children_cpu()
        return tc_dumps(self.tc, self.ns, self.devs), children_cpu() - c0

    def measure(self):
        T = {label: {f: [] for f in FIGURES} for label, _ in self.bins}
        T["tc"] = {"dumps": []}
        counts = {}
        # The first apply takes seconds (the kernel's class adds): --runs of it. Then, on
        # the tree the last one left, the cheap figures get --fast-runs, for a steadier median.
        for i in range(self.a.runs):
            for label, path in self.order(i):
                log(f"  first apply {i + 1}/{self.a.runs}: {label}")
                self.reset()
                T[label]["first"].append(self.apply(path))
        for label, path in self.bins:
            counts[label] = self.noop_count(path)
        for i in range(self.a.fast_runs):
            log(f"  no-op, check, dumps {i + 1}/{self.a.fast_runs}")
            for label, path in self.order(i):
                T[label]["noop"].append(self.apply(path))
                T[label]["check"].append(self.check(path))
            T["tc"]["dumps"].append(self.dumps())
        self.reset()
        return T, counts

    def order(self, i):
        """The binaries, in alternating order run by run (neither always goes first)."""
        return self.bins if i % 2 == 0 else list(reversed(self.bins))

def report(c, T, counts):
    labels = [label for label, _ in c.bins]
    new, old = labels[0], labels[-1]
    m = c.meta
    out = [f"{m['size']:,} subscriber classes ({m['classes_per_device']:,} classes, "
           f"{m['leaf_qdiscs_per_device']:,} leaf qdiscs per device, {len(m['devices'])} "
           f"device(s)); {c.a.runs} interleaved first applies, {c.a.fast_runs} no-op/check/"
           f"dump runs; medians; ratio = median of run-by-run {new}/{old}"]
    for i, what in ((0, "wall time"), (1, "CPU time (user+sys, with the tc children)")):
        out += ["", what] + table(T, labels, i)
    out.append("")
    for i, what in ((0, "wall"), (1, "CPU")):
        d = statistics.median(x[i] for x in T["tc"]["dumps"])
        out.append(f"no-op / tc dumps ({what}, medians): " + ", ".join(
            f"{lab} {statistics.median(x[i] for x in T[lab]['noop']) / d:.2f}x"
            for lab in labels))
    out.append("no-op plan (mutating commands): "
               + ", ".join(f"{lab} {counts[lab]}" for lab in labels))
    return "\n".join(out)


def table(T, labels, i):
    """Rows of one measure (0 wall, 1 CPU): each binary's median, the paired ratio, spreads."""
    new, old = labels[0], labels[-1]
    ms = lambda x: f"{x * 1000:.1f} ms"  # noqa: E731
    spread = lambda ts: f"{min(ts) * 1000:.0f}-{max(ts) * 1000:.0f} ms"  # noqa: E731
    head = ["figure"] + labels + [f"ratio {new}/{old}", f"{old} spread", f"{new} spread"]
    rows = []
    for f in FIGURES:
        xs, ys = [x[i] for x in T[new][f]], [y[i] for y in T[old][f]]
        ratio = statistics.median(x / y for x, y in zip(xs, ys) if y > 0)
        rows.append([f] + [ms(statistics.median(x[i] for x in T[lab][f])) for lab in labels]
                    + [f"{ratio:.3f}", spread(ys), spread(xs)])
    rows.append(["tc dumps", ms(statistics.median(x[i] for x in T["tc"]["dumps"]))])
    wid = [max(len(r[k]) if k < len(r) else 0 for r in rows + [head]) for k in range(len(head))]
    return ["  " + "  ".join((r[k] if k < len(r) else "").ljust(wid[k])
                             for k in range(len(head))).rstrip() for r in [head] + rows]

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--netns", required=True)
    ap.add_argument("--workload", required=True, help="a bench/gen.py tree directory")
    ap.add_argument("--bin", action="append", required=True,
                    help="LABEL=PATH; first the new binary, last the old one")
    ap.add_argument("--runs", type=int, default=5, help="first applies per binary")
    ap.add_argument("--fast-runs", type=int, default=25,
                    help="no-op re-applies, checks and dumps per binary")
    ap.add_argument("--tc", default="tc")
    ap.add_argument("--json")
    a = ap.parse_args()
    c = Compare(a)
    T, counts = c.measure()
    print(report(c, T, counts))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"times": T, "noop_commands": counts, "meta": c.meta}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
