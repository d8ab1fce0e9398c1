//! The policy file and its interfaces: a device, an egress tree written inline, and an
//! ingress tree under `ingress`.

use super::{at, find, Walker};
use crate::classify::action::{Police, Restore};
use crate::policy::diag::did_you_mean;
use crate::policy::node::{Key, Node};
use crate::policy::problem::{Place, Problem};
use crate::policy::schema::{
    invalid_device_name, Direction, Ingress, Interface, Policy, Sp, TreeName, IFACE_KEYS,
    INGRESS_KEYS, POLICE_KEYS, RESTORE_CHOICES, TOP_KEYS,
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
        let mut classifier = crate::classify::Classifier::default();
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
                "classifier" => {
                    if let Some(name) = self.string(k, n) {
                        match name.parse() {
                            Ok(c) => classifier = c,
                            Err(()) => {
                                self.report(at(k, n), Problem::UnknownClassifier { name: &name })
                            }
                        }
                    }
                }
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
            classifier,
        })
    }

    /// `[interfaces.X.ingress]`: a tree read like the egress one (it is built on the
    /// interface's ifb device), a policer and the mark restore of the ingress hook.
    fn ingress(&mut self, key: &Key, node: &Node, alias: &str) -> Option<Ingress> {
        let name = TreeName {
            alias,
            direction: Direction::Ingress,
        };
        let entries = self.table(key, node, INGRESS_KEYS, Place::Tree(name))?;
        let tree = self.tree(entries, Direction::Ingress, key.span.clone());
        let mut ingress = Ingress {
            tree,
            police: None,
            restore: None,
        };
        for (k, n) in entries {
            match k.name.as_str() {
                "police" => {
                    ingress.police = self.police(k, n).map(|v| Sp { span: at(k, n), v });
                }
                "restore_mark" => {
                    ingress.restore = self.one_of(k, n, RESTORE_CHOICES).map(|how| Sp {
                        span: at(k, n),
                        v: match how.as_str() {
                            "connmark" => Some(Restore::Connmark),
                            "ctinfo" => Some(Restore::Ctinfo { mask: u32::MAX }),
                            _ => None,
                        },
                    });
                }
                _ => {}
            }
        }
        Some(ingress)
    }

    /// `police = { rate = "…", burst = "…" }`: both are needed (the burst decides how a
    /// policer treats TCP, so there is no default to guess).
    fn police(&mut self, key: &Key, node: &Node) -> Option<Police> {
        let entries = self.table(key, node, POLICE_KEYS, Place::Named("police"))?;
        let (mut rate, mut burst, mut ok) = (None, None, true);
        for (k, n) in entries {
            match k.name.as_str() {
                "rate" => {
                    rate = self.rate(k, n);
                    ok &= rate.is_some();
                }
                "burst" => {
                    burst = self.size(k, n);
                    ok &= burst.is_some();
                }
                _ => {}
            }
        }
        for (k, missing) in [
            ("rate", find(entries, "rate")),
            ("burst", find(entries, "burst")),
        ] {
            if missing.is_none() {
                self.report(at(key, node), Problem::PoliceMissing { key: k });
                ok = false;
            }
        }
        let (Some(rate), Some(burst), true) = (rate, burst, ok) else {
            return None;
        };
        Some(Police::drop_above(rate, burst))
    }
}
