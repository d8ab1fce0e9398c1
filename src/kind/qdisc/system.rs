//! Qdiscs qosctl does not write: the kernel's own defaults, the ingress hook's qdiscs
//! and anything foreign. They are read so that they can be shown and removed.

use super::QdiscKind;
use crate::model::{Handle, Parent};

/// The kind word of the ingress qdisc.
pub const INGRESS: &str = "ingress";

/// What the kernel attaches by itself: handle 0: (noqueue, pfifo_fast, mq and its
/// per-queue children, a default fq_codel) and noqueue under any handle. None of it was
/// configured by anyone; to qosctl it is "nothing".
pub fn is_kernel_default(kind: &str, handle: Handle) -> bool {
    handle.major == 0 || kind == "noqueue"
}

/// A kind word the registry does not hold.
pub fn unmanaged(kind: &str) -> QdiscKind {
    match kind {
        INGRESS => QdiscKind::Ingress,
        other => QdiscKind::Other {
            kind: other.to_string(),
        },
    }
}

/// `qdisc del` for a qdisc on a hook: `root`, `ingress` or `clsact` (both hang on the
/// ingress hook and are deleted by their own word), or by parent and handle.
pub fn del_words(parent: Parent, kind: &QdiscKind, handle: Handle) -> String {
    match (parent, kind) {
        (Parent::Root, _) => "root".into(),
        (Parent::Ingress, QdiscKind::Other { kind }) if kind == "clsact" => "clsact".into(),
        (Parent::Ingress, _) => INGRESS.into(),
        (Parent::Class(p), _) => format!("parent {p} handle {handle}"),
    }
}
