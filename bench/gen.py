#!/usr/bin/env python3
"""Workload generator for the qosctl ISP-scale benchmark (issue 5).

One tree shape, three renderings of it, so that every method applies the same tree:

  policy.toml       qosctl policy (shape of /work/shared/POLICY.md), no marks
  policy-edit.toml  the same with one subscriber's rate changed   (expect 1 mutating command)
  policy-add.toml   the same plus one subscriber                  (expect class + leaf qdisc)
  raw.batch         `tc -batch` lines building the tree (the floor). Generated here from the
                    tree; `batch-from-plan` regenerates it from qosctl's own plan, so that the
                    floor runs exactly the commands qosctl runs.
  fireqos.conf      FireQoS config of the equivalent tree (only where FireQoS can express it)
  meta.json         counts and names the runner needs

With --match (issue 10), every subscriber class also gets one `dst` match (its own IPv4
address, see address()), raw.batch carries the u32 filters that steer them (a 256-bucket hash
table keyed on the last byte, as src/classify/layout.rs lays them out), policy-edit.toml
changes one subscriber's address instead of its rate (expect its filter only) and
policy-add.toml's new subscriber has an address too (expect class + leaf + filter).

Shape: per device, SITES sites x APS access points x SUBS subscribers (leaf classes, pfifo
leaves). Sites and access points get percentage rates; subscribers absolute ones.

Sizes (leaf classes): 1000 = 10x10x10 on 1 device; 10000 = 10x100x10 on 1 device;
100000 = 10 devices x (10x100x10). An htb qdisc has 16-bit minors (and leaf qdiscs 16-bit
majors), so at most ~65,000 classes fit on one device: 100,000 classes need several devices.

Usage:
  gen.py tree SIZE OUTDIR [--dev-prefix qb] [--explicit-ids] [--force-fireqos] [--match]
      --force-fireqos writes fireqos.conf even where FireQoS cannot express the tree (to
      show how it fails: `fireqos debug fireqos.conf` prints the tc commands it would run)
  gen.py batch-from-plan PLAN.json OUT.batch     # floor batch from `qosctl apply --dry-run --json`
  gen.py count-plan FILE                         # mutating commands in a JSON or human plan
"""

import json
import os
import sys

SHAPES = {
    # size: (devices, sites, aps per site, subscribers per ap)
    200: (1, 2, 10, 10),
    1000: (1, 10, 10, 10),
    10000: (1, 10, 100, 10),
    100000: (10, 10, 100, 10),
}

SUB_RATE_KBIT = 800
SUB_CEIL_KBIT = 2000
EDIT_RATE_KBIT = 900  # the one subscriber whose rate the edit variant changes
# Subscriber addresses (--match): 10.D.X.Y with X.Y the subscriber's index + 1, so that the
# last byte spreads the subscribers evenly over the 256 buckets of the hash table. The edit
# and add variants use X = 200/201, which no subscriber of a 10,000-per-device tree has.
EDIT_ADDR_X, ADD_ADDR_X = 200, 201
# What src/classify/layout.rs gives IPv4 /32 dst matches: priority 0x100 + 2*(302 - 32),
# hash table handle = priority, linked on the last byte of the word at 16 (dst).
MATCH_PRIO = 0x100 + 2 * (302 - 32)
FIREQOS_MAX_CLASSES = 9989  # see fireqos_limit_reason()


def shape_of(size):
    if size not in SHAPES:
        raise SystemExit(f"gen.py: unknown size {size}; known: {sorted(SHAPES)}")
    return SHAPES[size]


def pct(n):
    """Equal share of the parent for each of n children, as the policy writes it."""
    p = 100 / n
    return f"{p:g}%"


class Tree:
    """The tree with handles allocated the way the raw batch and the policy (with
    --explicit-ids) both use them: minors 2.. in depth-first order (1 is the root class)."""

    def __init__(self, size, dev_prefix="qb"):
        self.size = size
        self.devices, self.sites, self.aps, self.subs = shape_of(size)
        self.dev_prefix = dev_prefix
        # The interface rate: 1mbit per subscriber, so that percentages resolve exactly.
        self.leaves_per_dev = self.sites * self.aps * self.subs
        self.root_kbit = self.leaves_per_dev * 1000

    def dev(self, d):
        return f"{self.dev_prefix}{d}"

    def alias(self, d):
        return f"isp{d}"

    def walk(self, d):
        """Yields (kind, name, minor, parent_minor, rate_kbit, ceil_kbit, pct_rate, pct_ceil)
        depth-first for device d."""
        minor = 1
        site_kbit = self.root_kbit // self.sites
        ap_kbit = site_kbit // self.aps
        for s in range(self.sites):
            minor += 1
            site_minor = minor
            yield ("site", f"site{s}", site_minor, 1, site_kbit, self.root_kbit,
                   pct(self.sites), "100%")
            for a in range(self.aps):
                minor += 1
                ap_minor = minor
                # An AP may borrow up to a tenth of the interface: "10%" of the site's ceil,
                # which is the interface rate.
                yield ("ap", f"ap{s}-{a}", ap_minor, site_minor, ap_kbit, self.root_kbit // 10,
                       pct(self.aps), "10%")
                for u in range(self.subs):
                    minor += 1
                    yield ("sub", f"sub{s}-{a}-{u}", minor, ap_minor, SUB_RATE_KBIT,
                           SUB_CEIL_KBIT, None, None)

    def address(self, d, k):
        """The address of device d's subscriber number k (0-based, in walk order)."""
        k += 1
        return f"10.{d}.{k >> 8}.{k & 255}"

    def subscribers(self, d):
        """(name, minor, address) of every subscriber of device d, in walk order."""
        k = 0
        for kind, name, minor, *_ in self.walk(d):
            if kind == "sub":
                yield name, minor, self.address(d, k)
                k += 1

    def default_leaf(self):
        return "sub0-0-0"

    def edited_leaf(self):
        # A subscriber in the middle of the tree, not the default one.
        return f"sub{self.sites // 2}-{self.aps // 2}-{self.subs // 2}"

    def added_leaf(self):
        return f"sub0-0-{self.subs}"

    def minor_of(self, d, name):
        for kind, n, minor, *_ in self.walk(d):
            if n == name:
                return minor
        raise KeyError(name)

    def last_minor(self, d):
        return 1 + self.sites * (1 + self.aps * (1 + self.subs))


def hx(n):
    return f"{n:x}"


def write_policy(tree, path, explicit_ids, variant, match=False):
    """variant: 'base', 'edit', 'add'. match: every subscriber gets a `dst` match."""
    out = []
    w = out.append
    w("# Generated by bench/gen.py: qosctl ISP-scale benchmark, "
      f"{tree.size} subscriber classes, variant {variant}.")
    w("# No marks: this kernel lacks the fw classifier.")
    for d in range(tree.devices):
        a = tree.alias(d)
        w("")
        w(f"[interfaces.{a}]")
        w(f'device = "{tree.dev(d)}"')
        w(f'rate = "{tree.root_kbit}kbit"')
        w(f'default = "{tree.default_leaf()}"')
        w('leaf = "pfifo"')
        cur_site = cur_ap = None
        addrs = {n: a for n, _, a in tree.subscribers(d)} if match else {}
        if match and d == 0:
            if variant == "edit":
                addrs[tree.edited_leaf()] = f"10.{d}.{EDIT_ADDR_X}.1"
            addrs[tree.added_leaf()] = f"10.{d}.{ADD_ADDR_X}.1"
        for kind, name, minor, parent, rate, ceil, prate, pceil in tree.walk(d):
            if kind == "site":
                cur_site = name
                key = f"interfaces.{a}.classes.{name}"
                w("")
                w(f"[{key}]")
                w(f'rate = "{prate}"')
                w(f'ceil = "{pceil}"')
            elif kind == "ap":
                cur_ap = name
                key = f"interfaces.{a}.classes.{cur_site}.classes.{name}"
                w(f"[{key}]")
                w(f'rate = "{prate}"')
                w(f'ceil = "{pceil}"')
            else:
                key = f"interfaces.{a}.classes.{cur_site}.classes.{cur_ap}.classes.{name}"
                r = rate
                if variant == "edit" and d == 0 and name == tree.edited_leaf() and not match:
                    r = EDIT_RATE_KBIT
                w(f"[{key}]")
                w(f'rate = "{r}kbit"')
                w(f'ceil = "{ceil}kbit"')
            if explicit_ids:
                w(f"id = 0x{minor:x}")
            if name in addrs:
                w(f"[[{key}.match]]")
                w(f'dst = "{addrs[name]}"')
            if variant == "add" and d == 0 and kind == "sub" and name == f"sub0-0-{tree.subs - 1}":
                # The added subscriber goes right after the last one of ap0-0. Its AP has
                # room: an AP gets 1mbit per subscriber, subscribers 800kbit each.
                key = f"interfaces.{a}.classes.site0.classes.ap0-0.classes.{tree.added_leaf()}"
                w(f"[{key}]")
                w(f'rate = "{SUB_RATE_KBIT}kbit"')
                w(f'ceil = "{SUB_CEIL_KBIT}kbit"')
                if explicit_ids:
                    w(f"id = 0x{tree.last_minor(d) + 1:x}")
                if match:
                    w(f"[[{key}.match]]")
                    w(f'dst = "{addrs[tree.added_leaf()]}"')
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def batch_lines(tree):
    """The tc commands that build the tree on empty devices: root qdisc, root class, every
    class, every leaf qdisc. Rates in bits, as qosctl emits them."""
    for d in range(tree.devices):
        dev = tree.dev(d)
        default_minor = tree.minor_of(d, tree.default_leaf())
        yield f"qdisc add dev {dev} root handle 1: htb default {hx(default_minor)}"
        r = tree.root_kbit * 1000
        yield f"class add dev {dev} parent 1: classid 1:1 htb rate {r}bit ceil {r}bit"
        for kind, name, minor, parent, rate, ceil, *_ in tree.walk(d):
            yield (f"class add dev {dev} parent 1:{hx(parent)} classid 1:{hx(minor)} htb "
                   f"rate {rate * 1000}bit ceil {ceil * 1000}bit")
            if kind == "sub":
                yield f"qdisc add dev {dev} parent 1:{hx(minor)} handle {hx(minor)}: pfifo"


def match_lines(tree):
    """The u32 filters of --match: per device one hash table of 256 buckets in the /32 dst
    priority, the link rule that hashes the last byte of the destination into it, and one
    rule per subscriber in its bucket (node ids numbered per bucket; qosctl derives its own
    from the keys, which costs the kernel the same)."""
    p = MATCH_PRIO
    for d in range(tree.devices):
        dev = tree.dev(d)
        f = f"filter add dev {dev} parent 1: protocol ip prio {p}"
        yield f"{f} handle {p:x}: u32 divisor 256"
        yield (f"{f} handle ::1 u32 match u32 0 0 at 16 hashkey mask 0x000000ff at 16 "
               f"link {p:x}:")
        nodes = {}
        for _, minor, addr in tree.subscribers(d):
            a = [int(x) for x in addr.split(".")]
            b = a[3]
            nodes[b] = nodes.get(b, 0) + 1
            word = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3]
            yield (f"{f} handle {p:x}:{b:x}:{nodes[b]:x} u32 ht {p:x}:{b:x}: "
                   f"match u32 0x{word:08x} 0xffffffff at 16 flowid 1:{hx(minor)}")


def fireqos_limit_reason(tree):
    """FireQoS (3.1.7) cannot express trees above ~10,000 classes on one device: it numbers
    class minors and leaf-qdisc majors with decimal counters that tc then reads as hex
    ("1:10000" is 0x10000 > 0xffff), and it adds one default class per group (8001, 8002,
    ... which collide with the running counter once it passes 8000)."""
    groups = tree.sites + tree.sites * tree.aps
    # every class, every group's implicit default class, the interface default class
    classes = tree.leaves_per_dev + groups + groups + 1
    counter_max = 10 + classes  # qdisc major counter starts at 10, +1 per class
    if counter_max > 9999 or 10 + classes > 8000:
        return (f"{classes} FireQoS classes per device: its decimal minor/major counters "
                f"would pass 8000/9999 (tc reads them as hex, max 0xffff, and group default "
                f"classes use 8001+)")
    return None


def write_fireqos(tree, path):
    out = []
    w = out.append
    w(f"# Generated by bench/gen.py: the equivalent tree for FireQoS, {tree.size} subscribers.")
    w("# balanced: every class prio 4 (priority mode would clamp prio 7 with a warning per")
    w("# class); minrate: FireQoS raises every class to 1/100 of the interface rate otherwise.")
    for d in range(tree.devices):
        w(f"interface {tree.dev(d)} {tree.alias(d)} output rate {tree.root_kbit}kbit "
          f"balanced minrate 8kbit pfifo")
        # FireQoS takes a ceil percentage of the parent's rate (not its ceil, as qosctl
        # does): write ceils absolute so that both trees are the same.
        for s in range(tree.sites):
            w(f"  class group site{s} commit {pct_int(tree.sites)} ceil {tree.root_kbit}kbit "
              f"pfifo")
            for a in range(tree.aps):
                w(f"    class group ap{s}-{a} commit {pct_int(tree.aps)} "
                  f"ceil {tree.root_kbit // 10}kbit pfifo")
                for u in range(tree.subs):
                    w(f"      class sub{s}-{a}-{u} commit {SUB_RATE_KBIT}kbit "
                      f"ceil {SUB_CEIL_KBIT}kbit pfifo")
                w("    class group end")
            w("  class group end")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def pct_int(n):
    # FireQoS does integer arithmetic on percentages.
    return f"{int(100 // n)}%"


def cmd_tree(args):
    if len(args) < 2:
        raise SystemExit(__doc__)
    size = int(args[0])
    outdir = args[1]
    dev_prefix = "qb"
    explicit = False
    force_fireqos = False
    match = False
    rest = args[2:]
    while rest:
        a = rest.pop(0)
        if a == "--dev-prefix" and rest:
            dev_prefix = rest.pop(0)
        elif a == "--explicit-ids":
            explicit = True
        elif a == "--force-fireqos":
            force_fireqos = True
        elif a == "--match":
            match = True
        else:
            raise SystemExit(f"gen.py tree: unknown argument {a!r}")
    tree = Tree(size, dev_prefix)
    os.makedirs(outdir, exist_ok=True)
    for variant in ("base", "edit", "add"):
        name = "policy.toml" if variant == "base" else f"policy-{variant}.toml"
        write_policy(tree, os.path.join(outdir, name), explicit, variant, match)
    lines = list(batch_lines(tree))
    if match:
        lines += list(match_lines(tree))
    with open(os.path.join(outdir, "raw.batch"), "w") as f:
        f.write("\n".join(lines) + "\n")
    reason = fireqos_limit_reason(tree)
    if match:
        reason = "the --match workload has no FireQoS rendering"
    if reason is None or force_fireqos:
        write_fireqos(tree, os.path.join(outdir, "fireqos.conf"))
    meta = {
        "size": size,
        "devices": [tree.dev(d) for d in range(tree.devices)],
        "shape": {"devices": tree.devices, "sites": tree.sites, "aps": tree.aps,
                  "subscribers": tree.subs},
        "classes_per_device": 1 + tree.sites * (1 + tree.aps * (1 + tree.subs)),
        "leaf_qdiscs_per_device": tree.leaves_per_dev,
        "raw_batch_lines": len(lines),
        "match": match,
        "edited_leaf": tree.edited_leaf(),
        "added_leaf": tree.added_leaf(),
        "fireqos": None if reason else "fireqos.conf",
        "fireqos_unsupported": reason,
    }
    with open(os.path.join(outdir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


# ---- reading qosctl's plan -------------------------------------------------------------

# Keys under which a plan entry may carry its tc batch line, most specific first. The plan
# JSON is being written while this benchmark is; read it tolerantly.
LINE_KEYS = ("batch", "line", "tc", "command", "cmd")


def plan_commands(text):
    """The mutating commands of a plan: a JSON document with a top-level `commands` array
    (entries are batch lines, or objects holding one), else a human plan whose change lines
    start with `+`, `~` or `-`. Returns (count, batch lines or None, how it was read)."""
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for key in ("commands", "batch", "operations", "ops"):
            arr = doc.get(key)
            if isinstance(arr, list):
                lines = []
                for e in arr:
                    if isinstance(e, str):
                        lines.append(e)
                    elif isinstance(e, dict):
                        for k in LINE_KEYS:
                            if isinstance(e.get(k), str):
                                lines.append(e[k])
                                break
                ok = len(lines) == len(arr)
                return len(arr), (lines if ok else None), f"json:{key}"
    count = 0
    for line in text.splitlines():
        s = line.lstrip()
        if s[:1] in ("+", "~", "-") and s[1:2] == " ":
            count += 1
    return count, None, "text"


def strip_tc(line):
    # tc -batch lines must not start with "tc".
    parts = line.split()
    if parts and os.path.basename(parts[0]) == "tc":
        parts = parts[1:]
        # `-n NS` belongs to the process, not to the line.
        if parts[:1] == ["-n"]:
            parts = parts[2:]
    return " ".join(parts)


def cmd_batch_from_plan(args):
    if len(args) != 2:
        raise SystemExit(__doc__)
    with open(args[0]) as f:
        text = f.read()
    n, lines, how = plan_commands(text)
    if lines is None:
        raise SystemExit(f"gen.py: {args[0]}: cannot read batch lines from the plan "
                         f"({how}, {n} commands); expected a top-level `commands` array of "
                         f"tc batch lines or objects with one of {LINE_KEYS}")
    with open(args[1], "w") as f:
        f.write("\n".join(strip_tc(l) for l in lines) + "\n")
    print(n)


def cmd_count_plan(args):
    if len(args) != 1:
        raise SystemExit(__doc__)
    with open(args[0]) as f:
        n, _, how = plan_commands(f.read())
    print(n, how)


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, args = argv[0], argv[1:]
    if cmd == "tree":
        cmd_tree(args)
    elif cmd == "batch-from-plan":
        cmd_batch_from_plan(args)
    elif cmd == "count-plan":
        cmd_count_plan(args)
    else:
        raise SystemExit(f"gen.py: unknown command {cmd!r}\n{__doc__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
