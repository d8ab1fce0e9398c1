//! The ifb devices that carry an interface's ingress tree: their names, creation, ownership
//! and removal, and the ingress hook that sends an interface's arriving traffic to its ifb.
//!
//! Ownership is written on the device itself, in its alias (`qosctl:ifb-for:<dev>`), because
//! qosctl keeps no state file: `reset` and `apply` list the ifbs of a namespace and touch only
//! those whose alias says qosctl made them, for which interface. A hand-made ifb (no alias,
//! or another one) is never changed or deleted, even when it has the name qosctl would use;
//! that is an error that names it.
//!
//! The name rule (documented in docs/ingress.md): `ifb-<dev>` when that fits Linux's 15
//! bytes (dev ≤ 11 bytes); else `ifb` + the first 3 and the last 4 bytes of dev + `-` + 4 hex
//! digits of a hash of the whole name, exactly 15 bytes (`enp0s31f6.100` → `ifbenp.100-xxxx`):
//! the tail keeps VLAN and port suffixes apart, the hash the rest. A hashed name has no `-`
//! right after `ifb`, so it never equals the short form of another device (unless a device
//! name itself starts with `-`). Whatever remains is caught: [`ifb_names`] refuses two
//! interfaces of one namespace with the same ifb name, and an existing device with the name
//! that is not this interface's ifb is an error ([`LinkError::NameTaken`]).

use std::path::PathBuf;

use anyhow::{Context, Result};
use thiserror::Error;

use crate::classify::action::{Action, Police, Restore};
use crate::classify::read::{U32Body, U32Filter};
use crate::model::Handle;
use crate::tc::Tc;

/// The alias that marks an ifb as qosctl's, followed by the interface it serves.
pub const ALIAS_PREFIX: &str = "qosctl:ifb-for:";
/// Linux's IFNAMSIZ - 1.
const NAME_MAX: usize = 15;
/// The pref of the redirect (and policing) filter on `ffff:`; one per interface.
pub const REDIRECT_PRIO: u16 = 1;
/// Its node in the priority's root table.
const HOOK_NODE: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LinkError {
    #[error(
        "the `ip` program (iproute2) is missing; ingress shaping creates an ifb device with it"
    )]
    IpMissing,
    #[error("this kernel cannot create ifb devices (`ip link add … type ifb`: {0})")]
    IfbUnsupported(String),
    #[error("interfaces \"{a}\" and \"{b}\" would both use the ifb name \"{name}\"")]
    Collision { a: String, b: String, name: String },
    #[error("a device \"{name}\" exists and qosctl did not create it for \"{dev}\" ({found})")]
    NameTaken {
        name: String,
        dev: String,
        found: String,
    },
    #[error("\"{0}\" is not an ifb qosctl created: not deleting it")]
    NotOurs(String),
}

impl LinkError {
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            LinkError::IpMissing => Some("install iproute2 (Debian: apt-get install iproute2)"),
            LinkError::IfbUnsupported(_) => {
                Some("load the ifb module (modprobe ifb) or use a kernel with CONFIG_IFB")
            }
            LinkError::Collision { .. } => Some("rename one of the interfaces' devices"),
            LinkError::NameTaken { .. } => {
                Some("delete or rename that device, or give qosctl another interface")
            }
            LinkError::NotOurs(_) => None,
        }
    }
}

/// The ifb name qosctl uses for `dev` (see the module docs).
pub fn ifb_name(dev: &str) -> String {
    let short = format!("ifb-{dev}");
    if short.len() <= NAME_MAX {
        return short;
    }
    // FNV-1a, 16 bits: stable across releases and platforms (std's hasher is not).
    let mut h: u32 = 0x811c_9dc5;
    for b in dev.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    let tag = format!("-{:04x}", (h ^ (h >> 16)) & 0xffff);
    let mut head = 3;
    while !dev.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = dev.len() - 4;
    while !dev.is_char_boundary(tail) {
        tail += 1;
    }
    format!("ifb{}{}{tag}", &dev[..head], &dev[tail..])
}

/// The ifb names of all interfaces of one namespace, refusing two that would share one.
pub fn ifb_names(devs: &[&str]) -> Result<Vec<String>, LinkError> {
    let names: Vec<String> = devs.iter().map(|d| ifb_name(d)).collect();
    for (i, n) in names.iter().enumerate() {
        if let Some(j) = names[..i].iter().position(|m| m == n) {
            if devs[i] != devs[j] {
                return Err(LinkError::Collision {
                    a: devs[j].to_string(),
                    b: devs[i].to_string(),
                    name: n.clone(),
                });
            }
        }
    }
    Ok(names)
}

/// An ifb device found in a namespace, with what its alias says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ifb {
    pub name: String,
    /// The interface it serves when qosctl made it; `None` for a foreign ifb.
    pub owner: Option<String>,
    pub up: bool,
}

/// Runs `ip` in the policy's namespace. `ip` takes `-n NS` exactly as tc does, so the same
/// runner serves (its errors name the command and quote the kernel's message).
pub struct Ip(Tc);

impl Ip {
    /// `ip` on PATH; [`LinkError::IpMissing`] when there is none.
    pub fn locate(netns: Option<String>) -> Result<Ip, LinkError> {
        let path = which::which("ip").map_err(|_| LinkError::IpMissing)?;
        Ok(Ip::new(path, netns))
    }

    pub fn new(path: impl Into<PathBuf>, netns: Option<String>) -> Ip {
        Ip(Tc::new(path, netns))
    }

    /// Every ifb of the namespace (`ip -j link show type ifb`).
    pub fn ifbs(&self) -> Result<Vec<Ifb>> {
        parse_ifbs(&self.0.run(&IFB_LISTING)?)
    }

    /// The ifbs qosctl created, with the interface each serves.
    pub fn owned_ifbs(&self) -> Result<Vec<Ifb>> {
        Ok(self
            .ifbs()?
            .into_iter()
            .filter(|i| i.owner.is_some())
            .collect())
    }

    /// Makes sure `dev`'s ifb exists, is marked as qosctl's and is up; returns its name.
    /// Nothing else is touched: called before any tc change, a failure here (no `ip`, no
    /// ifb support, the name taken by a foreign device) leaves the system as it was.
    pub fn ensure_ifb(&self, dev: &str) -> Result<String> {
        let name = ifb_name(dev);
        match ours(&self.ifbs()?, &name, dev)? {
            Some(i) => {
                if !i.up {
                    self.0.run(&["link", "set", "dev", &name, "up"])?;
                }
            }
            None => self.create_ifb(&name, dev)?,
        }
        Ok(name)
    }

    /// Creates `name` as `dev`'s ifb, marked as qosctl's and up. The caller has seen that
    /// no ifb of that name exists; any other device of that name is [`LinkError::NameTaken`].
    fn create_ifb(&self, name: &str, dev: &str) -> Result<()> {
        let alias = format!("{ALIAS_PREFIX}{dev}");
        if let Err(e) = self.0.run(&["link", "add", name, "type", "ifb"]) {
            let msg = format!("{e:#}");
            if msg.contains("Unknown device type") {
                return Err(LinkError::IfbUnsupported(last_line(&msg)).into());
            }
            if msg.contains("File exists") {
                // Another kind of device with that name (a veth, a dummy…).
                return Err(LinkError::NameTaken {
                    name: name.into(),
                    dev: dev.into(),
                    found: "it is not an ifb".into(),
                }
                .into());
            }
            return Err(e);
        }
        // txqueuelen 1000 as on an Ethernet device: an ifb's default is 32, and leaf qdiscs
        // without a limit (pfifo) take their depth from it.
        if let Err(e) = self.0.run(&[
            "link",
            "set",
            "dev",
            name,
            "alias",
            &alias,
            "txqueuelen",
            "1000",
            "up",
        ]) {
            // Never leave an unmarked ifb behind: it would look foreign to the next run.
            let _ = self.0.run(&["link", "del", "dev", name]);
            return Err(e).with_context(|| format!("marking {name} as qosctl's"));
        }
        Ok(())
    }

    /// Whether a link of that name exists (of any kind).
    pub fn exists(&self, name: &str) -> bool {
        self.0.run(&["link", "show", "dev", name]).is_ok()
    }

    /// Deletes `name` if and only if it is an ifb whose alias says qosctl made it.
    pub fn delete_ifb(&self, name: &str) -> Result<()> {
        self.delete_ifbs(&[name.to_string()])
    }

    /// Deletes `names`, ifbs qosctl made, judged from one listing of the links; refuses
    /// (before deleting any) if one is not qosctl's.
    pub fn delete_ifbs(&self, names: &[String]) -> Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let owned = self.owned_ifbs()?;
        if let Some(n) = names.iter().find(|n| !owned.iter().any(|i| &i.name == *n)) {
            return Err(LinkError::NotOurs(n.clone()).into());
        }
        // Every one is tried: one that fails does not keep the others.
        let errs: Vec<String> = names
            .iter()
            .filter_map(|n| {
                let e = self.0.run(&["link", "del", "dev", n]).err()?;
                Some(format!("{n}: {e:#}"))
            })
            .collect();
        if !errs.is_empty() {
            anyhow::bail!("deleting ifb devices: {}", errs.join("; "));
        }
        Ok(())
    }
}

/// The arguments of the listing of a namespace's ifbs.
const IFB_LISTING: [&str; 5] = ["-j", "link", "show", "type", "ifb"];

/// The listing of a namespace's ifbs, started (or `ip` missing): an apply starts it together
/// with the planning read's tc dumps, not after them, and [`Links::judge`] reads it. Under
/// emulation (the kernel lab) every process start costs tens of ms, so `ip` is not started
/// when the kernel says no ifb of the namespace is qosctl's ([`crate::netlink`]): then only
/// a policy with an ingress tree needs the listing (to see a foreign ifb with its ifb's
/// name), and [`Links::judge`] runs it for that one.
pub struct Listing {
    /// `None` for the listing: no ifb of the namespace is qosctl's.
    ip: Result<(Ip, Option<crate::tc::Started>), LinkError>,
}

impl Listing {
    /// Starts `ip -j link show type ifb` in the namespace, unless no ifb there is qosctl's.
    /// Call from the main thread (see [`crate::child::spawn`]).
    pub fn start(netns: Option<&str>) -> Listing {
        Listing {
            ip: Ip::locate(netns.map(str::to_string)).map(|ip| {
                // Not sure there is none (no right to enter the namespace, say): list.
                let none = matches!(crate::netlink::has_own_ifb(netns), Ok(false));
                let started = (!none).then(|| ip.0.start(&IFB_LISTING));
                (ip, started)
            }),
        }
    }
}

/// The ifbs of one apply, found before anything changes: which of the policy's ifbs exist
/// already (qosctl's, for the right interface), and which ifbs qosctl made for interfaces
/// of the policy that no longer have an ingress tree (they are deleted after the batch).
#[derive(Default)]
pub struct Links {
    ip: Option<Ip>,
    /// The policy's ifbs that exist (each checked to be qosctl's, for its interface).
    pub existing: Vec<(String, String)>,
    /// Those of them that are down (a down ifb drops what is redirected to it): set up
    /// with the creation of the missing ones.
    pub down: Vec<String>,
    /// The policy's ifbs to create: (ifb, interface).
    pub missing: Vec<(String, String)>,
    /// qosctl's ifbs of policy interfaces without an ingress tree: (ifb, interface).
    pub stale: Vec<(String, String)>,
}

impl Links {
    /// Looks at the namespace's links. `ip` is needed only when the policy has an ingress
    /// tree; without one a missing `ip` just means no ifb is looked for.
    pub fn find(netns: Option<&str>, desired: &crate::model::Desired) -> Result<Links> {
        Links::judge(Listing::start(netns), desired)
    }

    /// [`Links::find`] from a listing started earlier.
    pub fn judge(listing: Listing, desired: &crate::model::Desired) -> Result<Links> {
        let wanted: Vec<(&str, &str)> = desired
            .devices
            .iter()
            .filter_map(|d| Some((d.state.device.as_str(), d.ifb_for.as_deref()?)))
            .collect();
        let (ip, started) = match listing.ip {
            Ok(found) => found,
            Err(e) if !wanted.is_empty() => return Err(e.into()),
            Err(_) => return Ok(Links::default()),
        };
        let listed = match started {
            Some(s) => s.output().and_then(|out| parse_ifbs(&out)),
            None if !wanted.is_empty() => ip.ifbs(),
            // Only qosctl's ifbs matter without an ingress tree: there are none.
            None => Ok(Vec::new()),
        };
        let ifbs = match listed {
            Ok(i) => i,
            // `ip -n NS` needs more than tc's `-n` (it remounts /sys), so a dry run by a user
            // who may only enter the namespace gets here: without an ingress tree in the
            // policy there is nothing to create, and left-over ifbs are just not looked for.
            Err(_) if wanted.is_empty() => return Ok(Links::default()),
            Err(e) => return Err(e),
        };
        let mut links = Links::default();
        for (name, dev) in &wanted {
            match ours(&ifbs, name, dev)? {
                Some(i) => {
                    links.existing.push((name.to_string(), dev.to_string()));
                    if !i.up {
                        links.down.push(name.to_string());
                    }
                }
                None if ip.exists(name) => {
                    return Err(LinkError::NameTaken {
                        name: name.to_string(),
                        dev: dev.to_string(),
                        found: "it is not an ifb".into(),
                    }
                    .into())
                }
                None => links.missing.push((name.to_string(), dev.to_string())),
            }
        }
        let policy_devs: Vec<&str> = desired
            .devices
            .iter()
            .filter(|d| d.ifb_for.is_none())
            .map(|d| d.state.device.as_str())
            .collect();
        for i in &ifbs {
            let Some(owner) = i.owner.as_deref() else {
                continue;
            };
            let wanted_here = wanted.iter().any(|(n, _)| *n == i.name);
            if policy_devs.contains(&owner) && !wanted_here {
                links.stale.push((i.name.clone(), owner.to_string()));
            }
        }
        links.ip = Some(ip);
        Ok(links)
    }

    /// The interface an existing ifb of the policy serves.
    pub fn existing_for(&self, ifb: &str) -> Option<&str> {
        self.existing
            .iter()
            .find(|(n, _)| n == ifb)
            .map(|(_, d)| d.as_str())
    }

    /// Creates the missing ifbs, before any tc command. On a failure the ones created here
    /// are deleted again, so the system is as it was. Returns the ifbs created.
    pub fn create_missing(&self) -> Result<Vec<String>> {
        let mut created = Vec::new();
        let Some(ip) = &self.ip else {
            return Ok(created);
        };
        for name in &self.down {
            ip.0.run(&["link", "set", "dev", name, "up"])
                .with_context(|| {
                    format!("setting qosctl's ifb {name} up; nothing else was changed")
                })?;
        }
        for (name, dev) in &self.missing {
            match ip.create_ifb(name, dev) {
                Ok(()) => created.push(name.clone()),
                Err(e) => {
                    let undo = self.delete(&created);
                    let mut e =
                        e.context(format!("creating the ifb of {dev}; nothing was changed"));
                    if let Err(u) = undo {
                        e = e.context(format!(
                            "and deleting the ifbs created so far failed: {u:#}"
                        ));
                    }
                    return Err(e.context(format!("ifb {name}")));
                }
            }
        }
        Ok(created)
    }

    /// Deletes ifbs qosctl created (refusing any other, [`Ip::delete_ifbs`]).
    pub fn delete(&self, names: &[String]) -> Result<()> {
        let Some(ip) = &self.ip else {
            return Ok(());
        };
        ip.delete_ifbs(names)
    }

    /// Deletes the stale ifbs (after the batch removed their interfaces' hooks).
    pub fn delete_stale(&self) -> Result<()> {
        let names: Vec<String> = self.stale.iter().map(|(n, _)| n.clone()).collect();
        self.delete(&names)
    }
}

/// `dev`'s ifb `name` among the listed ifbs: `Some` when it is there and qosctl made it for
/// `dev`, `None` when there is no ifb of that name; an ifb of that name that is foreign or
/// another interface's is [`LinkError::NameTaken`].
fn ours<'a>(ifbs: &'a [Ifb], name: &str, dev: &str) -> Result<Option<&'a Ifb>, LinkError> {
    match ifbs.iter().find(|i| i.name == name) {
        Some(i) if i.owner.as_deref() == Some(dev) => Ok(Some(i)),
        Some(i) => Err(LinkError::NameTaken {
            found: match &i.owner {
                Some(o) => format!("its alias says it is for \"{o}\""),
                None => "it has no qosctl alias".into(),
            },
            name: name.into(),
            dev: dev.into(),
        }),
        None => Ok(None),
    }
}

/// The kernel's words from a failed run's message (`` `ip …` failed (exit status: 2): MSG ``).
fn last_line(msg: &str) -> String {
    let last = msg.lines().last().unwrap_or(msg);
    last.rsplit_once("): ")
        .map_or(last, |(_, m)| m)
        .trim()
        .to_string()
}

/// `ip -j link show type ifb` → the ifbs, their owners and whether they are up.
pub fn parse_ifbs(out: &str) -> Result<Vec<Ifb>> {
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(out).context("`ip -j link show` printed invalid JSON")?;
    let list = v
        .as_array()
        .context("`ip -j link show`: expected an array")?;
    Ok(list
        .iter()
        .filter_map(|l| {
            let name = l.get("ifname")?.as_str()?.to_string();
            let owner = l
                .get("ifalias")
                .and_then(|a| a.as_str())
                .and_then(|a| a.strip_prefix(ALIAS_PREFIX))
                .filter(|o| !o.is_empty())
                .map(str::to_string);
            let up = l
                .get("flags")
                .and_then(|f| f.as_array())
                .is_some_and(|f| f.iter().any(|x| x.as_str() == Some("UP")));
            Some(Ifb { name, owner, up })
        })
        .collect())
}

/// `qdisc add dev X handle ffff: ingress`.
pub fn ingress_qdisc_args(dev: &str) -> String {
    format!("qdisc add dev {dev} handle ffff: ingress")
}

/// What qosctl hangs on an interface's ingress: one match-all u32 filter whose actions
/// restore the conntrack mark (optional), police (optional) and redirect to the ifb
/// (optional: policing alone has no ifb).
#[derive(Debug, Clone, PartialEq)]
pub struct IngressHook {
    pub restore: Option<(Restore, u16)>,
    pub police: Option<Police>,
    pub ifb: Option<String>,
}

impl IngressHook {
    /// The redirect of an ingress tree.
    pub fn redirect(ifb: &str) -> IngressHook {
        IngressHook {
            restore: None,
            police: None,
            ifb: Some(ifb.to_string()),
        }
    }

    fn actions(&self) -> Vec<Action> {
        let mut v = Vec::new();
        if let Some((how, zone)) = self.restore {
            v.push(Action::RestoreMark { how, zone });
        }
        if let Some(p) = &self.police {
            let mut p = p.clone();
            if self.ifb.is_some() {
                // Conforming packets go on to the redirect.
                p.conform = crate::classify::action::Control::Pipe;
            }
            v.push(Action::Police(p));
        }
        if let Some(ifb) = &self.ifb {
            v.push(Action::redirect_to(ifb));
        }
        v
    }

    /// The hook as the model's filter kind: a u32 action filter (match-all at node 1, no
    /// class) with the hook's actions.
    pub fn filter_kind(&self) -> crate::model::FilterKind {
        crate::kind::filter::u32::match_all(self.actions())
    }

    fn filter_args(&self) -> String {
        let acts: Vec<String> = self.actions().iter().map(Action::tc_args).collect();
        format!("u32 match u32 0 0 {}", acts.join(" "))
    }

    /// `filter add dev X parent ffff: protocol all prio 1 handle ::1 u32 match u32 0 0
    /// action …`. The node is fixed (`::1`) so that the hook is one known filter.
    pub fn tc_add(&self, dev: &str) -> String {
        format!(
            "filter add dev {dev} parent ffff: protocol all prio {REDIRECT_PRIO} handle ::{HOOK_NODE:x} {}",
            self.filter_args()
        )
    }

    /// Changes the live hook's actions in place (`filter replace` with the handle the kernel
    /// gave it, e.g. `800::1`: without a handle u32 would add a second filter).
    pub fn tc_replace(&self, dev: &str, live: &U32Filter) -> String {
        format!(
            "filter replace dev {dev} parent ffff: protocol all prio {REDIRECT_PRIO} handle {} {}",
            live.handle,
            self.filter_args()
        )
    }

    /// Reads qosctl's hook back from a u32 filter on `ffff:`: a match-all rule whose actions
    /// are (restore)? (police)? (redirect)?. Anything else is not the hook (a foreign filter).
    pub fn from_live(f: &U32Filter) -> Option<IngressHook> {
        let U32Body::Rule {
            keys,
            link: None,
            actions,
            ..
        } = &f.body
        else {
            return None;
        };
        if f.protocol != "all" || keys.iter().any(|k| k.mask != 0) {
            return None;
        }
        if f.parent.is_some_and(|p| p != Handle::INGRESS) {
            return None;
        }
        hook_from_actions(actions)
    }
}

/// Whether `f` (a live filter of `dev`) is qosctl's ingress hook on it: on `ffff:` at
/// [`REDIRECT_PRIO`], protocol all, in the hook's shape, redirecting (if at all) to `dev`'s
/// own ifb.
pub fn is_own_hook(f: &crate::model::Filter, dev: &str) -> bool {
    f.parent == Handle::INGRESS
        && f.prio == REDIRECT_PRIO
        && f.protocol == "all"
        && hook_of(&f.kind).is_some_and(|h| h.ifb.is_none_or(|i| i == ifb_name(dev)))
}

/// The hook a filter kind holds, if it is one: a u32 match-all at node 1 (the u32 reader
/// gives `FilterKind::U32` only to qosctl's shapes) whose actions are (restore)? (police)?
/// (redirect)?, with a policer or a redirect.
pub fn hook_of(k: &crate::model::FilterKind) -> Option<IngressHook> {
    use crate::kind::filter::u32::{place, Body};
    let crate::model::FilterKind::U32 {
        handle,
        body: Body::Rule { keys, .. },
        actions,
    } = k
    else {
        return None;
    };
    if !keys.iter().all(|k| k.mask == 0)
        || place(handle) != crate::classify::layout::Place::Root(HOOK_NODE)
    {
        return None;
    }
    hook_from_actions(actions)
}

/// (restore)? (police)? (redirect)?, with a policer or a redirect: the hook's actions.
fn hook_from_actions(actions: &[Action]) -> Option<IngressHook> {
    let mut hook = IngressHook {
        restore: None,
        police: None,
        ifb: None,
    };
    let mut it = actions.iter().peekable();
    if let Some(Action::RestoreMark { how, zone }) = it.peek() {
        hook.restore = Some((*how, *zone));
        it.next();
    }
    if let Some(Action::Police(p)) = it.peek() {
        hook.police = Some(p.clone());
        it.next();
    }
    if let Some(Action::Mirred {
        redirect: true,
        egress: true,
        dev,
    }) = it.peek()
    {
        hook.ifb = Some(dev.clone());
        it.next();
    }
    (it.next().is_none() && (hook.ifb.is_some() || hook.police.is_some())).then_some(hook)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Rate, Size};

    #[test]
    fn names_are_valid_predictable_and_distinct() {
        assert_eq!(ifb_name("eth0"), "ifb-eth0");
        assert_eq!(ifb_name("enp0s31f6"), "ifb-enp0s31f6");
        assert_eq!(ifb_name("abcdefghijk"), "ifb-abcdefghijk"); // 11 bytes: still short
                                                                // Pinned: the rule is part of the interface (a renamed ifb would be a new one).
        let long = ifb_name("enp0s31f6.100");
        assert!(long.starts_with("ifbenp.100-"), "{long}");
        assert_eq!(long, ifb_name("enp0s31f6.100"));
        // Every name fits and is valid, also with multi-byte characters.
        for dev in [
            "abcdefghijkl",
            "enp0s31f6.4094",
            "veth1234567890a",
            "wlané0123456",
            "ééééééé",
        ] {
            let n = ifb_name(dev);
            assert!(
                n.len() <= 15 && !n.contains('/') && !n.contains(char::is_whitespace),
                "{dev} -> {n}"
            );
        }
        // 4094 VLANs of one NIC: all distinct.
        let devs: Vec<String> = (1..=4094).map(|v| format!("enp0s31f6.{v}")).collect();
        let refs: Vec<&str> = devs.iter().map(String::as_str).collect();
        let names = ifb_names(&refs).expect("distinct");
        let uniq: std::collections::HashSet<&String> = names.iter().collect();
        assert_eq!(uniq.len(), 4094);
    }

    #[test]
    fn collisions_are_refused() {
        // Same head, same tail: only the 16-bit hash separates them; find a colliding pair.
        let mut seen = std::collections::HashMap::new();
        let pair = (0..100_000u32)
            .map(|i| format!("abc{i:07}wxyz"))
            .find_map(|d| {
                let n = ifb_name(&d);
                seen.insert(n, d.clone()).map(|other| (other, d))
            })
            .expect("a 16-bit hash collides within 100,000 names");
        let err = ifb_names(&[&pair.0, "eth0", &pair.1]).unwrap_err();
        assert!(matches!(err, LinkError::Collision { .. }), "{err}");
        // The same interface twice (egress and ingress of one device) is no collision.
        assert!(ifb_names(&["eth0", "eth0"]).is_ok());
    }

    #[test]
    fn ownership_comes_from_the_alias() {
        let out = r#"[{"ifindex":2,"ifname":"ifb-x","flags":["BROADCAST","NOARP","UP","LOWER_UP"],"mtu":1500,"ifalias":"qosctl:ifb-for:eth0"},{"ifindex":3,"ifname":"ifb-y","flags":["BROADCAST","NOARP"]},{"ifindex":4,"ifname":"ifb0","flags":[],"ifalias":"someone else"}]"#;
        let got = parse_ifbs(out).unwrap();
        assert_eq!(
            got,
            vec![
                Ifb {
                    name: "ifb-x".into(),
                    owner: Some("eth0".into()),
                    up: true
                },
                Ifb {
                    name: "ifb-y".into(),
                    owner: None,
                    up: false
                },
                Ifb {
                    name: "ifb0".into(),
                    owner: None,
                    up: false
                },
            ]
        );
        assert!(parse_ifbs("").unwrap().is_empty());
    }

    #[test]
    fn hook_arguments() {
        let h = IngressHook::redirect("ifb-eth0");
        assert_eq!(
            h.tc_add("eth0"),
            "filter add dev eth0 parent ffff: protocol all prio 1 handle ::1 u32 match u32 0 0 action mirred egress redirect dev ifb-eth0"
        );
        let full = IngressHook {
            restore: Some((Restore::Ctinfo { mask: 0xffff_ffff }, 0)),
            police: Some(Police::drop_above(Rate(3_000_000), Size(37_500))),
            ifb: Some("ifb-eth0".into()),
        };
        assert_eq!(
            full.tc_add("eth0"),
            "filter add dev eth0 parent ffff: protocol all prio 1 handle ::1 u32 match u32 0 0 \
             action ctinfo cpmark 0xffffffff zone 0 pipe \
             action police rate 3000000bit burst 37500 mtu 65535 conform-exceed drop/pipe \
             action mirred egress redirect dev ifb-eth0"
        );
        let police_only = IngressHook {
            restore: None,
            police: Some(Police::drop_above(Rate(1_000_000), Size(12_500))),
            ifb: None,
        };
        assert!(police_only
            .tc_add("tap0")
            .ends_with("u32 match u32 0 0 action police rate 1000000bit burst 12500 mtu 65535 conform-exceed drop/ok"));
        assert_eq!(
            ingress_qdisc_args("eth0"),
            "qdisc add dev eth0 handle ffff: ingress"
        );
    }

    /// The kernel-lab case uses exactly the line the library renders.
    #[test]
    fn klab_police_case() {
        let case = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/klab/guest/cases/ingress-police.sh"
        ))
        .unwrap();
        let hook = IngressHook {
            restore: None,
            police: Some(Police::drop_above(Rate(1_000_000), Size(12_500))),
            ifb: None,
        };
        let line = format!("tc {}", hook.tc_add("veth0"));
        assert!(case.lines().any(|l| l == line), "{line}");
    }

    #[test]
    fn the_hook_reads_back_from_every_fixture_version() {
        for v in [
            "5.4.0", "5.5.0", "5.10.0", "5.15.0", "6.1.0", "6.8.0", "7.1.0",
        ] {
            let out = std::fs::read_to_string(format!(
                "{}/tests/fixtures/tc/by-version/{v}/filter-v1-ingress-s.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            let fs = crate::classify::read::parse(&out).unwrap();
            let hooks: Vec<IngressHook> = fs.iter().filter_map(IngressHook::from_live).collect();
            assert_eq!(hooks, vec![IngressHook::redirect("ifb0")], "{v}");
        }
    }
}
