//! The policy file and its interfaces: a device, an egress tree written inline, and an
//! ingress tree under `ingress`.

use super::{at, find, Walker};
use crate::policy::diag::did_you_mean;
use crate::policy::node::{Key, Node};
use crate::policy::problem::{Place, Problem};
use crate::policy::schema::{
    invalid_device_name, Direction, Interface, Policy, Sp, Tree, TreeName, IFACE_KEYS, TOP_KEYS,
    TREE_KEYS,
};

impl Walker {
    pub fn policy(&mut self, root: &Node) -> Policy {
        let mut policy = Policy::default();
        let Some(entries) = root.as_table() else {
            return policy;
        };
        for (k, n) in entries {
            if TOP_KEYS.contains(&k.name.as_str()) {
                continue;
            }
            if n.as_table().is_some() && did_you_mean(&k.name, TOP_KEYS).is_none() {
                // `[wan]` instead of `[interfaces.wan]`.
                self.report(k.span.clone(), Problem::TopLevelTable { key: &k.name });
            } else {
                self.unknown_key(k, TOP_KEYS, Place::Policy);
            }
        }
        let Some((ik, inode)) = find(entries, "interfaces") else {
            self.report(None, Problem::NoInterface);
            return policy;
        };
        let Some(ifaces) = inode.as_table() else {
            self.wrong_type(ik, inode, "a table of interfaces ([interfaces.NAME])");
            return policy;
        };
        if ifaces.is_empty() {
            self.report(at(ik, inode), Problem::NoInterfaceInTable);
        }
        for (k, n) in ifaces {
            if let Some(i) = self.interface(k, n) {
                policy.interfaces.push(i);
            }
        }
        policy
    }

    fn interface(&mut self, key: &Key, node: &Node) -> Option<Interface> {
        let entries = self.table(key, node, IFACE_KEYS, Place::Interface(&key.name))?;
        let mut device = Sp {
            span: key.span.clone(),
            v: key.name.clone(),
        };
        let mut device_given = false;
        let mut ingress = None;
        for (k, n) in entries {
            match k.name.as_str() {
                "device" => {
                    if let Some(d) = self.string(k, n) {
                        device = Sp {
                            span: at(k, n),
                            v: d,
                        };
                    }
                    device_given = true;
                }
                "ingress" => ingress = Some(self.ingress(k, n, &key.name)),
                _ => {}
            }
        }
        if let Some(why) = invalid_device_name(&device.v) {
            let defaulted_from = (!device_given).then_some(key.name.as_str());
            let p = Problem::InvalidDevice {
                device: &device.v,
                why,
                defaulted_from,
            };
            self.report(device.span.clone(), p);
        }
        let egress = self.tree(entries, Direction::Egress, key.span.clone());
        Some(Interface {
            alias: key.name.clone(),
            key_span: key.span.clone(),
            device,
            egress,
            ingress: ingress.flatten(),
        })
    }

    /// `[interfaces.X.ingress]`: read as a tree like the egress one, so that wiring it (an
    /// ifb device) needs no second reader. Until then the one "not supported yet" error is
    /// all it reports, as before: its own problems are dropped with the tree.
    fn ingress(&mut self, key: &Key, node: &Node, alias: &str) -> Option<Tree> {
        let before = self.diags.len();
        let name = TreeName {
            alias,
            direction: Direction::Ingress,
        };
        let tree = self
            .table(key, node, TREE_KEYS, Place::Tree(name))
            .map(|entries| self.tree(entries, Direction::Ingress, key.span.clone()));
        self.diags.truncate(before);
        self.report(key.span.clone(), Problem::IngressNotSupported);
        tree
    }
}
