//! The walker: reads the spanned TOML tree (`node`) into the policy's types (`schema`),
//! collecting every problem instead of stopping at the first.
//!
//! - `cursor.rs`: tables and their keys (unknown keys, "did you mean").
//! - `fields.rs`: one value of a type: strings, integers, rates, sizes, times, percentages.
//! - `interface.rs`: the policy and its interfaces.
//! - `tree.rs`: a tree (egress or ingress, read the same way) and its classes.
//! - `leaf.rs`: leaf qdisc kinds and their options.
//! - `matches.rs`: a class's `[[….match]]` entries and `set_dscp`.
//!
//! netem's table has its own file, `policy/netem.rs`.

mod cursor;
mod fields;
mod interface;
mod leaf;
mod matches;
mod tree;

use super::diag::Diagnostic;
use super::node::{Key, Node, Span};
use super::problem::Problem;

/// Collects diagnostics while walking; every reader returns `None` after reporting.
#[derive(Default)]
pub struct Walker {
    pub diags: Vec<Diagnostic>,
}

impl Walker {
    pub fn push(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    /// Reports `problem` at `span`.
    pub fn report(&mut self, span: Span, problem: Problem<'_>) {
        self.diags.push(problem.at(span));
    }
}

/// Where to point for a value: the value itself, else its key.
pub fn at(key: &Key, node: &Node) -> Span {
    node.span.clone().or_else(|| key.span.clone())
}

pub fn find<'n>(entries: &'n [(Key, Node)], name: &str) -> Option<(&'n Key, &'n Node)> {
    entries
        .iter()
        .find(|(k, _)| k.name == name)
        .map(|(k, n)| (k, n))
}

/// `v`, noting in `ok` whether it was read: a table whose every field must parse (a rate
/// with min and max, a slot) is dropped as a whole when one did not.
pub fn track<T>(ok: &mut bool, v: Option<T>) -> Option<T> {
    *ok &= v.is_some();
    v
}

#[cfg(test)]
mod tests {
    use super::Walker;
    use crate::policy::node;
    use crate::policy::schema::{Direction, IFACE_KEYS, INGRESS_KEYS, TREE_KEYS};
    use crate::units::Rate;

    fn walk(src: &str) -> (crate::policy::schema::Policy, Vec<String>) {
        let mut w = Walker::default();
        let policy = w.policy(&node::parse(src).unwrap());
        (policy, w.diags.into_iter().map(|d| d.message).collect())
    }

    #[test]
    fn ingress_is_read_as_a_tree_with_its_own_problems() {
        let (policy, errors) = walk(
            "[interfaces.wan]\nrate = \"20mbit\"\n[interfaces.wan.ingress]\nrate = \"100mbit\"\n\
             default = \"video\"\nbogus = 1\nrestore_mark = \"ctinfo\"\n\
             police = { rate = \"90mbit\" }\n\
             [interfaces.wan.ingress.classes.video]\nrate = \"50%\"\n",
        );
        assert_eq!(
            errors,
            [
                "unknown key \"bogus\" in the ingress of interface \"wan\"",
                "police needs a \"burst\"",
            ]
        );
        let iface = &policy.interfaces[0];
        assert_eq!(iface.egress.direction, Direction::Egress);
        assert_eq!(
            iface.egress.rate.as_ref().map(|r| r.v),
            Some(Rate::from_bits(20_000_000))
        );
        let ingress = iface.ingress.as_ref().expect("ingress is read");
        assert!(
            ingress.police.is_none(),
            "a police without burst is dropped"
        );
        assert_eq!(
            ingress.restore.as_ref().map(|r| r.v),
            Some(Some(crate::classify::action::Restore::Ctinfo {
                mask: u32::MAX
            }))
        );
        let ingress = &ingress.tree;
        assert_eq!(ingress.direction, Direction::Ingress);
        assert_eq!(
            ingress.rate.as_ref().map(|r| r.v),
            Some(Rate::from_bits(100_000_000))
        );
        assert_eq!(
            ingress.default.as_ref().map(|d| d.v.as_str()),
            Some("video")
        );
        assert_eq!(ingress.classes.len(), 1);
        assert_eq!(ingress.classes[0].path, "video");
        assert_eq!(
            iface.name(Direction::Ingress).header(),
            "interfaces.wan.ingress"
        );
        assert_eq!(
            iface.name(Direction::Ingress).to_string(),
            "the ingress of interface \"wan\""
        );
    }

    #[test]
    fn an_interface_is_its_device_its_egress_tree_and_its_ingress() {
        let mut keys = vec!["device"];
        keys.extend_from_slice(TREE_KEYS);
        keys.extend(["ingress", "classifier"]);
        assert_eq!(IFACE_KEYS, keys.as_slice());
        let mut ingress = TREE_KEYS.to_vec();
        ingress.extend(["police", "restore_mark"]);
        assert_eq!(INGRESS_KEYS, ingress.as_slice());
    }
}
