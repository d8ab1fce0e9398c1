//! Leaf qdiscs: `leaf = "fq_codel"` or `leaf = { kind = "fq_codel", target = "5ms" }`, one
//! reader per kind.

use super::{at, find, Walker};
use crate::model::{Cake, FqCodel, Netem, QdiscKind, Sfq};
use crate::policy::netem;
use crate::policy::node::{Key, Node, Span, Value};
use crate::policy::problem::{Place, Problem};
use crate::policy::schema::{Leaf, Sp};

type Opts<'e> = [&'e (Key, Node)];

const CAKE_DIFFSERV: &[&str] = &[
    "besteffort",
    "diffserv3",
    "diffserv4",
    "diffserv8",
    "precedence",
];
const CAKE_FLOW_MODES: &[&str] = &[
    "flowblind",
    "srchost",
    "dsthost",
    "hosts",
    "flows",
    "dual-srchost",
    "dual-dsthost",
    "triple-isolate",
];

impl Walker {
    pub(crate) fn leaf(&mut self, key: &Key, node: &Node) -> Option<Sp<Leaf>> {
        let span = at(key, node);
        let (kind, kind_span, entries): (String, Span, &[(Key, Node)]) = match &node.value {
            Value::String(s) => (s.clone(), span.clone(), &[]),
            Value::Table(t) => {
                let Some((kk, kn)) = find(t, "kind") else {
                    self.report(span, Problem::LeafWithoutKind);
                    return None;
                };
                (self.string(kk, kn)?, at(kk, kn), t)
            }
            _ => {
                self.wrong_type(key, node, "a qdisc kind like \"fq_codel\" or a table");
                return None;
            }
        };
        let opts: Vec<&(Key, Node)> = entries.iter().filter(|(k, _)| k.name != "kind").collect();
        let what = Place::Leaf(&kind);
        let leaf = match kind.as_str() {
            "pfifo" => {
                let mut limit = None;
                for (k, n) in self.known(&opts, &["limit"], what) {
                    limit = self.u32(k, n);
                }
                Leaf::Kind(QdiscKind::Pfifo { limit })
            }
            "bfifo" => {
                let mut limit = None;
                for (k, n) in self.known(&opts, &["limit"], what) {
                    limit = self.size(k, n);
                }
                Leaf::Kind(QdiscKind::Bfifo { limit })
            }
            "tbf" => self.tbf(&opts, what, &span),
            "fq_codel" => Leaf::Kind(QdiscKind::FqCodel(self.fq_codel(&opts, what))),
            "cake" => Leaf::Kind(QdiscKind::Cake(self.cake(&opts, what))),
            "sfq" => Leaf::Kind(QdiscKind::Sfq(self.sfq(&opts, what))),
            "netem" => Leaf::Kind(QdiscKind::Netem(Box::new(
                self.netem_leaf(key, node, &opts)?,
            ))),
            other => {
                self.report(kind_span, Problem::UnknownLeafKind { kind: other });
                return None;
            }
        };
        Some(Sp { span, v: leaf })
    }

    fn tbf(&mut self, opts: &Opts, what: Place, span: &Span) -> Leaf {
        let (mut rate, mut burst, mut limit, mut latency) = (None, None, None, None);
        for (k, n) in self.known(opts, &["rate", "burst", "limit", "latency"], what) {
            match k.name.as_str() {
                "rate" => rate = self.rate(k, n),
                "burst" => burst = self.size(k, n),
                "limit" => limit = self.size(k, n),
                _ => latency = self.time(k, n),
            }
        }
        if limit.is_some() && latency.is_some() {
            self.report(span.clone(), Problem::TbfLimitAndLatency);
        }
        Leaf::Tbf {
            rate,
            burst,
            limit,
            latency,
        }
    }

    fn fq_codel(&mut self, opts: &Opts, what: Place) -> FqCodel {
        let mut q = FqCodel::default();
        let keys = [
            "limit",
            "flows",
            "target",
            "interval",
            "quantum",
            "ecn",
            "memory_limit",
        ];
        for (k, n) in self.known(opts, &keys, what) {
            match k.name.as_str() {
                "limit" => q.limit = self.u32(k, n),
                "flows" => q.flows = self.u32(k, n),
                "target" => q.target = self.time(k, n),
                "interval" => q.interval = self.time(k, n),
                "quantum" => q.quantum = self.size(k, n),
                "ecn" => q.ecn = self.boolean(k, n),
                _ => q.memory_limit = self.size(k, n),
            }
        }
        q
    }

    fn cake(&mut self, opts: &Opts, what: Place) -> Cake {
        let mut q = Cake::default();
        let keys = [
            "bandwidth",
            "diffserv",
            "flow_mode",
            "rtt",
            "nat",
            "wash",
            "ack_filter",
            "overhead",
        ];
        for (k, n) in self.known(opts, &keys, what) {
            match k.name.as_str() {
                "bandwidth" => q.bandwidth = self.rate(k, n),
                "diffserv" => q.diffserv = self.one_of(k, n, CAKE_DIFFSERV),
                "flow_mode" => q.flow_mode = self.one_of(k, n, CAKE_FLOW_MODES),
                "rtt" => q.rtt = self.time(k, n),
                "nat" => q.nat = self.boolean(k, n),
                "wash" => q.wash = self.boolean(k, n),
                "ack_filter" => q.ack_filter = self.boolean(k, n),
                _ => q.overhead = self.int(k, n, -64, 256).map(|v| v as i32),
            }
        }
        q
    }

    fn sfq(&mut self, opts: &Opts, what: Place) -> Sfq {
        let mut q = Sfq::default();
        for (k, n) in self.known(opts, &["perturb", "limit", "quantum"], what) {
            match k.name.as_str() {
                "perturb" => q.perturb = self.time(k, n),
                "limit" => q.limit = self.u32(k, n),
                _ => q.quantum = self.size(k, n),
            }
        }
        q
    }

    /// `leaf = { kind = "netem", delay = "10ms" }` is the class's `netem` spelled as a leaf;
    /// the options are netem's.
    fn netem_leaf(&mut self, key: &Key, node: &Node, opts: &Opts) -> Option<Netem> {
        let fake = Node {
            span: node.span.clone(),
            value: Value::Table(opts.iter().map(|e| (*e).clone()).collect()),
        };
        netem::parse(self, key, &fake).map(|n| n.v)
    }

    pub(crate) fn netem(&mut self, key: &Key, node: &Node) -> Option<Sp<Netem>> {
        netem::parse(self, key, node)
    }
}
