#!/usr/bin/env python3
"""Measures the ISP-scale benchmark inside a network namespace that bench/run.sh created.

Not meant to be run by hand: bench/run.sh owns the namespace (creates it, traps, deletes
it). This file only measures, prints the table and writes results.json.

Every figure is the median of --runs runs; all methods of one size are measured in the same
run, interleaved, so that the machine's noise hits them alike: the ratios are the result.
"""

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen  # noqa: E402

TARGETS = {
    "first_vs_raw": 1.15,
    "noop_vs_first": 0.05,
    "edit_vs_noop": 1.10,
    "fireqos_vs_qosctl": 50.0,
    "check_ms": 50.0,
    "apply_rss_mb": 50.0,
    # issue 10: the no-op re-apply against what it cannot avoid, tc printing the state
    "noop_vs_dumps": 1.5,
}


# One tc process per command, and FireQoS: seconds to minutes a run.
SLOW = ("percmd", "fireqos")


class Unavailable(Exception):
    """qosctl (or another method) cannot run here; the message says why."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run(cmd, check=True, stdin=None, env=None):
    """Runs cmd (a list), returns (seconds, CompletedProcess)."""
    t0 = time.perf_counter()
    p = subprocess.run(cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise RuntimeError(f"`{shlex.join(cmd)}` failed ({p.returncode}): "
                           f"{first_lines(p.stderr)}")
    return dt, p


def tc_dumps(tc, ns, devs):
    """Seconds the three dumps qosctl's reader runs for every device take, back to back,
    each its own tc process as in src/tc/read/mod.rs: `-j -d qdisc show`, `-j -d class
    show`, `-j filter show ... parent 1:`."""
    t0 = time.perf_counter()
    for d in devs:
        for what in (["-d", "qdisc", "show", "dev", d], ["-d", "class", "show", "dev", d],
                     ["filter", "show", "dev", d, "parent", "1:"]):
            run([tc, "-n", ns, "-j"] + what)
    return time.perf_counter() - t0


def first_lines(b, n=3):
    s = b.decode(errors="replace") if isinstance(b, bytes) else b
    lines = [l for l in s.strip().splitlines() if l.strip()]
    return " / ".join(lines[:n]) if lines else "(no message)"


class Bench:
    def __init__(self, a):
        self.a = a
        self.ns = a.netns
        self.tc = a.tc
        self.qosctl = a.qosctl
        self.results = {"netns": self.ns, "runs": a.runs, "slow_runs": a.slow_runs,
                        "sizes": {}}

    # ---- kernel state ------------------------------------------------------------------

    def reset(self, devs):
        for d in devs:
            # Fails on the kernel default qdisc ("handle of zero"): that is the goal state.
            subprocess.run([self.tc, "-n", self.ns, "qdisc", "del", "dev", d, "root"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def count_objects(self, devs):
        classes = qdiscs = 0
        for d in devs:
            _, p = run([self.tc, "-n", self.ns, "class", "show", "dev", d])
            classes += sum(1 for l in p.stdout.decode().splitlines() if l.startswith("class "))
            _, p = run([self.tc, "-n", self.ns, "qdisc", "show", "dev", d])
            qdiscs += sum(1 for l in p.stdout.decode().splitlines()
                          if l.startswith("qdisc ") and " noqueue " not in l)
        return {"classes": classes, "qdiscs": qdiscs}

    # ---- methods -----------------------------------------------------------------------

    def m_raw(self, batch):
        _, p = run([self.tc, "-n", self.ns, "-batch", batch], check=False)
        if p.returncode != 0:
            raise RuntimeError(f"tc -n {self.ns} -batch {batch}: {first_lines(p.stderr)}")

    def m_percmd(self, batch):
        # One tc process per command, from a shell loop: how shell-based tools apply.
        script = ('while read -r line; do tc -n "$1" $line 2>/dev/null || '
                  '{ echo "failed: tc $line" >&2; exit 1; }; done < "$2"')
        _, p = run(["bash", "-c", script, "percmd", self.ns, batch], check=False)
        if p.returncode != 0:
            raise RuntimeError(first_lines(p.stderr))

    def fireqos_cmd(self, conf, extra=()):
        # FireQoS keeps state and a lock under /run: give it a private, empty /run in its
        # own mount namespace, so that nothing of it lands on the host's filesystem. Every
        # tc/ip it runs inherits the network namespace, so it can reach no host interface.
        inner = "mount -t tmpfs qx-bench-fireqos /run && exec \"$@\""
        return (["ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation",
                 "private", "sh", "-c", inner, "fireqos"] + list(extra)
                + ["fireqos", "-nc", "start", conf])

    def m_fireqos(self, conf):
        _, p = run(self.fireqos_cmd(conf), check=False)
        if p.returncode != 0:
            raise RuntimeError("fireqos failed: " + first_lines(
                "\n".join(l for l in p.stderr.decode(errors="replace").splitlines()
                          if "ERROR" in l or "rror" in l or "tc failed" in l) or p.stderr, 4))

    def q(self, *args):
        return [self.qosctl, "--netns", self.ns, "--tc", self.tc] + list(args)

    def m_qosctl_apply(self, policy):
        _, p = run(self.q("apply", policy), check=False)
        if p.returncode != 0:
            raise Unavailable(first_lines(p.stderr))

    def plan(self, policy):
        """(mutating command count, batch lines or None, how it was read)."""
        _, p = run(self.q("apply", policy, "--dry-run", "--json"), check=False)
        if p.returncode not in (0, 2):
            raise Unavailable(first_lines(p.stderr))
        n, lines, how = gen.plan_commands(p.stdout.decode(errors="replace"))
        return n, lines, how

    # ---- timing ------------------------------------------------------------------------

    def timed(self, fn, arg, setup=None, runs=None):
        times = []
        for _ in range(runs or self.a.runs):
            if setup:
                setup()
            t0 = time.perf_counter()
            fn(arg)
            times.append(time.perf_counter() - t0)
        return times

    # ---- one size ----------------------------------------------------------------------

    def size(self, size, wdir):
        meta = json.load(open(os.path.join(wdir, "meta.json")))
        devs = meta["devices"]
        P = lambda f: os.path.join(wdir, f)  # noqa: E731
        R = {"meta": meta, "methods": {}, "counts": {}, "objects": {}, "errors": {}}
        self.results["sizes"][str(size)] = R
        reset = lambda: self.reset(devs)  # noqa: E731

        # Is qosctl apply there? Ask it for the plan against empty devices.
        reset()
        qerr = None
        floor_batch = P("raw.batch")
        R["floor_source"] = "bench/gen.py (qosctl plan unavailable)"
        try:
            n, lines, how = self.plan(P("policy.toml"))
            R["counts"]["first"] = n
            R["counts"]["plan_read_as"] = how
            if lines:
                floor_batch = P("plan.batch")
                with open(floor_batch, "w") as f:
                    f.write("\n".join(gen.strip_tc(l) for l in lines) + "\n")
                R["floor_source"] = "qosctl apply --dry-run --json (same commands)"
            else:
                R["floor_source"] = (f"bench/gen.py (plan read as {how}: no batch lines in it)")
            if n == 0:
                raise Unavailable("its plan against empty devices has 0 commands")
        except Unavailable as e:
            qerr = str(e)
        except OSError as e:
            qerr = f"{self.qosctl}: {e.strerror}"
        R["qosctl_error"] = qerr

        methods = [("raw", self.m_raw, floor_batch)]
        if size <= self.a.percmd_max:
            methods.append(("percmd", self.m_percmd, floor_batch))
        else:
            R["errors"]["percmd"] = (f"skipped above {self.a.percmd_max} classes "
                                     f"(--percmd-max): one process per command takes minutes")
        if meta["fireqos"] and not self.a.no_fireqos:
            methods.append(("fireqos", self.m_fireqos, P(meta["fireqos"])))
        elif meta["fireqos_unsupported"]:
            R["errors"]["fireqos"] = "cannot express this tree: " + meta["fireqos_unsupported"]
        elif self.a.no_fireqos:
            R["errors"]["fireqos"] = "skipped (--no-fireqos)"
        if qerr is None:
            methods.append(("first", self.m_qosctl_apply, P("policy.toml")))

        # Interleave: run i of every method, then run i+1, so that noise hits all alike.
        # The slow methods (seconds to minutes a run) get --slow-runs runs.
        times = {m[0]: [] for m in methods}
        R["runs"] = {m[0]: self.a.slow_runs if m[0] in SLOW else self.a.runs
                     for m in methods}
        for i in range(max(self.a.runs, self.a.slow_runs)):
            for name, fn, arg in methods:
                if name in R["errors"] or i >= R["runs"][name]:
                    continue
                reset()
                log(f"  {size}: {name} run {i + 1}/{R['runs'][name]}")
                t0 = time.perf_counter()
                try:
                    fn(arg)
                except (RuntimeError, Unavailable) as e:
                    R["errors"][name] = str(e)
                    continue
                times[name].append(time.perf_counter() - t0)
                if i == 0:
                    R["objects"][name] = self.count_objects(devs)
        for name, ts in times.items():
            if ts and name not in R["errors"]:
                R["methods"][name] = ts
        if "first" in R["errors"]:
            qerr = R["errors"].pop("first")
            R["qosctl_error"] = qerr

        if qerr is None:
            try:
                self.qosctl_incremental(R, P, reset)
            except Unavailable as e:
                R["qosctl_error"] = str(e)
        self.qosctl_check(R, P)
        reset()
        return R

    def qosctl_incremental(self, R, P, reset):
        base, edit, add = P("policy.toml"), P("policy-edit.toml"), P("policy-add.toml")
        reset()
        self.m_qosctl_apply(base)

        R["counts"]["noop"] = self.plan(base)[0]
        # The no-op and the dumps it reads, interleaved.
        R["methods"]["noop"], R["methods"]["dumps"] = [], []
        for _ in range(self.a.runs):
            R["methods"]["noop"] += self.timed(self.m_qosctl_apply, base, runs=1)
            R["methods"]["dumps"].append(tc_dumps(self.tc, self.ns, R["meta"]["devices"]))

        # One class's rate edited, both ways: base -> edit and edit -> base are each one
        # `class change`.
        R["counts"]["edit"] = self.plan(edit)[0]
        ts = []
        for i in range(self.a.runs):
            for pol in (edit, base):
                if pol is base and i == 0:
                    R["counts"]["edit_back"] = self.plan(base)[0]
                t0 = time.perf_counter()
                self.m_qosctl_apply(pol)
                ts.append(time.perf_counter() - t0)
        R["methods"]["edit"] = ts

        # One class added, then removed again (the removal is not timed).
        R["counts"]["add"] = self.plan(add)[0]
        ts = []
        for _ in range(self.a.runs):
            t0 = time.perf_counter()
            self.m_qosctl_apply(add)
            ts.append(time.perf_counter() - t0)
            R["counts"]["add_noop"] = self.plan(add)[0]
            R["counts"]["remove"] = self.plan(base)[0]
            self.m_qosctl_apply(base)
        R["methods"]["add"] = ts

        # Peak memory of a first apply. /usr/bin/time reports the largest of qosctl and
        # its children, and the child `tc -batch` is the larger one at this scale; so the
        # raw batch alone, and qosctl's own process (a dry run of the same first apply:
        # the same read and plan, no batch child), are measured too.
        def rss(cmd, key):
            reset()
            _, p = run(["/usr/bin/time", "-v"] + cmd, check=False)
            m = re.search(rb"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
            if p.returncode in (0, 2) and m:
                R[key] = int(m.group(1))
            else:
                R["errors"][key] = first_lines(p.stderr)

        rss(self.q("apply", base), "apply_rss_kb")
        floor = P("plan.batch") if os.path.exists(P("plan.batch")) else P("raw.batch")
        rss([self.tc, "-n", self.ns, "-batch", floor], "raw_rss_kb")
        rss(self.q("apply", base, "--dry-run"), "own_rss_kb")
        reset()

    def qosctl_check(self, R, P):
        ts = []
        try:
            # The target is parse + validate + resolve: `check --quiet`. Printing the
            # resolved tree (11,000 lines at 10,000 classes) is timed on its own.
            tree = []
            for _ in range(max(self.a.runs, 5)):
                dt, p = run([self.qosctl, "check", "--quiet", P("policy.toml")], check=False)
                if p.returncode != 0:
                    R["errors"]["check"] = first_lines(p.stderr)
                    return
                ts.append(dt)
                dt, p = run([self.qosctl, "check", P("policy.toml")], check=False)
                tree.append(dt)
        except OSError as e:
            R["errors"]["check"] = f"{self.qosctl}: {e.strerror}"
            return
        R["methods"]["check"] = ts
        R["methods"]["check_tree"] = tree


# ---- the table ------------------------------------------------------------------------

HEAD = ("method", "median", "ratio", "target")


def med(R, name):
    ts = R["methods"].get(name)
    return statistics.median(ts) if ts else None


def paired_ratio(R, a, b):
    """Median of run-by-run ratios. The methods are interleaved, so run i of both met the
    same load; on a busy machine this is steadier than the ratio of the medians."""
    xs, ys = R["methods"].get(a), R["methods"].get(b)
    if not xs or not ys or len(xs) != len(ys):
        return None
    return statistics.median(x / y for x, y in zip(xs, ys))


def fmt_s(x):
    if x is None:
        return None
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def report(results):
    out = []
    w = out.append
    sizes = sorted(results["sizes"], key=int)
    w(f"Medians of {results['runs']} runs; tc per command and FireQoS: "
      f"{results['slow_runs']} run(s) (netns {results['netns']}).")
    for s in sizes:
        R = results["sizes"][s]
        meta = R["meta"]
        qerr = R.get("qosctl_error")
        na_q = f"n/a (qosctl apply not available: {qerr})" if qerr else None
        raw, first = med(R, "raw"), med(R, "first")
        w("")
        sh = meta["shape"]
        w(f"== {int(s):,} subscriber classes: {sh['devices']} device(s) x {sh['sites']} sites x "
          f"{sh['aps']} APs x {sh['subscribers']} subscribers = "
          f"{meta['classes_per_device'] * sh['devices']:,} classes + "
          f"{meta['leaf_qdiscs_per_device'] * sh['devices']:,} leaf qdiscs; floor batch: "
          f"{R['floor_source']}")
        rows = []

        def row(label, value, ratio="", target="", note=""):
            rows.append((label, value, ratio, target, note))

        def objs(name):
            o = R["objects"].get(name)
            return f"{o['classes']} classes, {o['qdiscs']} qdiscs" if o else ""

        def val(name, na=None):
            v = fmt_s(med(R, name))
            if v is not None:
                return v
            if name in R["errors"]:
                return f"n/a ({R['errors'][name]})"
            return na or "n/a"

        def ratio(a, b, fmtx="{:.2f}x"):
            return fmtx.format(a / b) if a is not None and b else ""

        row("raw tc -batch (floor)", val("raw"), "1.00x", "", objs("raw"))
        row("tc per command", val("percmd"), ratio(med(R, "percmd"), raw), "",
            objs("percmd"))
        fq = med(R, "fireqos")
        row("FireQoS", val("fireqos"), ratio(fq, raw), "", objs("fireqos"))
        paired = paired_ratio(R, "first", "raw")
        row("qosctl first apply", val("first", na_q), ratio(first, raw),
            f"<= {TARGETS['first_vs_raw']}x raw",
            (objs("first") + (f"; per-run ratios' median {paired:.2f}x" if paired else "")))
        noop = med(R, "noop")
        c = R["counts"]
        row("qosctl no-op re-apply", val("noop", na_q),
            ratio(noop, first, "{:.1%} of first") if noop and first else "",
            "<= 5% of first, 0 cmds",
            f"{c['noop']} mutating cmds" if "noop" in c else "")
        dumps = med(R, "dumps")
        row("tc dumps (no-op floor)", val("dumps", na_q),
            ratio(noop, dumps, "no-op {:.2f}x") if noop and dumps else "",
            f"no-op <= {TARGETS['noop_vs_dumps']}x", "the reader's 3 `tc -j ... show`, interleaved")
        edit = med(R, "edit")
        matched = meta.get("match")
        add_cmds = 3 if matched else 2
        row("qosctl 1 address changed" if matched else "qosctl 1 rate edited", val("edit", na_q),
            ratio(edit, noop, "{:.2f}x no-op") if edit and noop else "",
            "<= 1.10x no-op, 1 cmd",
            f"{c['edit']} mutating cmds" if "edit" in c else "")
        row("qosctl 1 class added", val("add", na_q), "",
            "class + leaf + filter" if matched else "class + leaf qdisc",
            f"{c['add']} mutating cmds" if "add" in c else "")
        chk = med(R, "check")
        row("qosctl check -q", val("check"), "", "<= 50 ms", "parse + validate + resolve")
        row("qosctl check", val("check_tree"), "", "", "the same, printing the tree")
        rss = R.get("own_rss_kb")
        mb = lambda k: f"{R[k] / 1024:.1f} MB" if R.get(k) else (na_q or R["errors"].get(k, "n/a"))  # noqa: E731
        row("qosctl peak RSS", mb("own_rss_kb"), "", "<= 50 MB",
            "qosctl's own process (dry run of the first apply)")
        row("apply peak RSS", mb("apply_rss_kb"), "", "",
            "/usr/bin/time of apply: the larger of qosctl and its tc -batch")
        row("raw tc -batch RSS", mb("raw_rss_kb"), "", "", "the floor's tc alone")
        if fq and first:
            row("FireQoS / qosctl first", f"{fq / first:.1f}x", "", ">= 50x", "")
        # A long "n/a (why)" goes on its own line: it would push every column aside.
        short = [r for r in rows if len(r[1]) <= 12]
        wid = [max([len(r[i]) for r in short] + [len(h)]) for i, h in enumerate(HEAD)]
        w("  " + "  ".join(h.ljust(wid[i]) for i, h in enumerate(HEAD)) + "  notes")
        for r in rows:
            if len(r[1]) > 12:
                w("  " + r[0].ljust(wid[0]) + "  " + r[1]
                  + (f"  [target: {r[3]}]" if r[3] else ""))
                continue
            w("  " + "  ".join(r[i].ljust(wid[i]) for i in range(4)) + ("  " + r[4] if r[4]
                                                                           else ""))
        verdicts = []
        if first and raw:
            r = paired_ratio(R, "first", "raw") or first / raw
            verdicts.append(("first <= 1.15x raw (per-run median)",
                             r <= TARGETS["first_vs_raw"]))
        if noop and first:
            verdicts.append(("no-op <= 5% first", noop / first <= TARGETS["noop_vs_first"]))
        if "noop" in c:
            verdicts.append(("no-op 0 cmds", c["noop"] == 0))
        if noop and dumps:
            verdicts.append((f"no-op <= {TARGETS['noop_vs_dumps']}x dumps",
                             noop / dumps <= TARGETS["noop_vs_dumps"]))
        if edit and noop:
            verdicts.append(("edit <= no-op +10%", edit / noop <= TARGETS["edit_vs_noop"]))
        if "edit" in c:
            verdicts.append(("edit 1 cmd", c["edit"] == 1))
        if "add" in c:
            verdicts.append((f"add {add_cmds} cmds", c["add"] == add_cmds))
        if chk:
            verdicts.append(("check <= 50 ms", chk * 1000 <= TARGETS["check_ms"]))
        if rss:
            verdicts.append(("RSS <= 50 MB", rss / 1024 <= TARGETS["apply_rss_mb"]))
        if fq and first:
            verdicts.append(("FireQoS >= 50x", fq / first >= TARGETS["fireqos_vs_qosctl"]))
        if verdicts:
            w("  targets: " + ", ".join(f"{n}: {'met' if ok else 'MISSED'}"
                                        for n, ok in verdicts))
    if len(sizes) > 1:
        w("")
        w("Growth (time ratio between consecutive sizes):")
        for name, label in (("raw", "raw tc -batch"), ("percmd", "tc per command"),
                            ("first", "qosctl first apply"), ("noop", "qosctl no-op"),
                            ("check", "qosctl check")):
            parts = []
            for a, b in zip(sizes, sizes[1:]):
                x, y = med(results["sizes"][a], name), med(results["sizes"][b], name)
                if x and y:
                    parts.append(f"{int(a):,}->{int(b):,} {y / x:.1f}x")
            if parts:
                w(f"  {label:<20} " + ", ".join(parts))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--netns", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--qosctl", required=True)
    ap.add_argument("--tc", default="tc")
    ap.add_argument("--slow-runs", type=int, default=1)
    ap.add_argument("--percmd-max", type=int, default=10000)
    ap.add_argument("--no-fireqos", action="store_true")
    ap.add_argument("--json", help="write all samples here")
    a = ap.parse_args()
    b = Bench(a)
    for s in [int(x) for x in a.sizes.split(",") if x]:
        log(f"size {s}")
        b.size(s, os.path.join(a.workdir, str(s)))
    text = report(b.results)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(b.results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
