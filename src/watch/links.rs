//! Link events of one network namespace, from `ip -o monitor link` (and a dump with
//! `ip -o link show` to start from), turned into the transitions that need an apply.
//!
//! Why a child `ip` rather than a netlink socket of our own: iproute2 is already required
//! (tc), `ip -n NS` enters a namespace exactly as `tc -n NS` does (no setns in our
//! process, no unsafe), it prints one flushed line per message, and it needs no async
//! runtime. The price is parsing its one-line format, which is stable across iproute2
//! versions: `IDX: NAME[@PEER]: <FLAGS> … state STATE …`, `Deleted ` in front on removal.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// One line of `ip -o link` / `ip -o monitor link`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMsg {
    pub deleted: bool,
    pub index: u32,
    pub name: String,
    /// Administratively up and with carrier: traffic can flow.
    pub running: bool,
}

/// Parses one line; None for lines that are not a link message.
pub fn parse(line: &str) -> Option<LinkMsg> {
    let (deleted, rest) = match line.strip_prefix("Deleted ") {
        Some(r) => (true, r),
        None => (false, line),
    };
    let (index, rest) = rest.split_once(": ")?;
    let index = index.trim().parse().ok()?;
    let (name, rest) = rest.split_once(": ")?;
    // `a0@b0`, `a0@if5`, `a0@NONE`: the peer is not part of the name.
    let name = name.split('@').next()?.to_string();
    let flags = rest.strip_prefix('<')?.split_once('>')?.0;
    let has = |f: &str| flags.split(',').any(|x| x == f);
    Some(LinkMsg {
        deleted,
        index,
        name,
        running: has("UP") && has("LOWER_UP") && !has("NO-CARRIER"),
    })
}

/// Why a device of the policy needs an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Appeared,
    ReCreated,
    CameUp,
    /// Not a reason to apply; logged so the user sees why shaping is absent.
    Deleted,
}

impl Change {
    pub fn describe(self) -> &'static str {
        match self {
            Change::Appeared => "appeared",
            Change::ReCreated => "re-created",
            Change::CameUp => "came up",
            Change::Deleted => "deleted",
        }
    }
}

/// The links of the namespace, by name: index and whether running.
#[derive(Debug, Default)]
pub struct Links {
    by_name: HashMap<String, (u32, bool)>,
    /// Names deleted since the start, so a return reads "re-created", not "appeared".
    gone: std::collections::HashSet<String>,
}

impl Links {
    /// Replaces what is known with a full dump (no transitions: the caller applies anyway).
    pub fn reset(&mut self, dump: &[LinkMsg]) {
        self.by_name = dump
            .iter()
            .map(|m| (m.name.clone(), (m.index, m.running)))
            .collect();
    }

    pub fn exists(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Takes one event in; returns the transition it is for its device, if any. Events
    /// that change nothing we care about (an address, an mtu, the apply's own qdisc
    /// change, a repeat of the same state) return None: that is why an apply can never
    /// trigger another one.
    pub fn observe(&mut self, m: &LinkMsg) -> Option<Change> {
        if m.deleted {
            return match self.by_name.get(&m.name) {
                Some((i, _)) if *i == m.index => {
                    self.by_name.remove(&m.name);
                    self.gone.insert(m.name.clone());
                    Some(Change::Deleted)
                }
                _ => None,
            };
        }
        // A rename: the index moves to its new name.
        self.by_name
            .retain(|n, (i, _)| *i != m.index || *n == m.name);
        let prev = self.by_name.insert(m.name.clone(), (m.index, m.running));
        match prev {
            None if self.gone.remove(&m.name) => Some(Change::ReCreated),
            None => Some(Change::Appeared),
            Some((i, _)) if i != m.index => Some(Change::ReCreated),
            Some((_, false)) if m.running => Some(Change::CameUp),
            Some(_) => None,
        }
    }
}

/// How to run `ip`, in the namespace of `--netns`.
#[derive(Debug, Clone)]
pub struct Ip {
    path: PathBuf,
    netns: Option<String>,
}

impl Ip {
    pub fn locate(netns: Option<String>) -> Result<Ip> {
        let path = which::which("ip").context(
            "ip not found on PATH: qosctl watch reads link events with `ip monitor`; \
             install iproute2 (Debian: apt-get install iproute2)",
        )?;
        Ok(Ip { path, netns })
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(ns) = &self.netns {
            c.args(["-n", ns]);
        }
        c.args(args);
        c
    }

    /// Every link of the namespace now.
    pub fn dump(&self) -> Result<Vec<LinkMsg>> {
        let out = self
            .command(&["-o", "link", "show"])
            .stdin(Stdio::null())
            .output()
            .context("could not run `ip -o link show`")?;
        if !out.status.success() {
            bail!(
                "`ip -o link show` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(parse)
            .collect())
    }

    /// Starts `ip -o monitor link`; each parsed line goes to `each`, on a thread, until
    /// the child ends (then `ended` is called once, with its stderr).
    pub fn monitor(
        &self,
        each: impl Fn(LinkMsg) + Send + 'static,
        ended: impl FnOnce(String) + Send + 'static,
    ) -> Result<Child> {
        let mut child = self
            .command(&["-o", "monitor", "link"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("could not start `ip -o monitor link`")?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(m) = parse(&line) {
                    each(m);
                }
            }
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
            ended(err.trim().to_string());
        });
        Ok(child)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines as iproute2 6.1 printed them on this machine for `ip link set a0 down/up`,
    // `ip link del a0` and re-creating the pair.
    const UP: &str = "3: a0@b0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc htb state UP group default \\    link/ether b6:30:14:f9:ce:ef brd ff:ff:ff:ff:ff:ff";
    const DOWN: &str = "3: a0@b0: <BROADCAST,MULTICAST> mtu 1500 qdisc htb state DOWN group default \\    link/ether b6:30:14:f9:ce:ef brd ff:ff:ff:ff:ff:ff";
    const NOCARRIER: &str = "3: a0@b0: <NO-CARRIER,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc htb state LOWERLAYERDOWN group default";
    const DELETED: &str = "Deleted 3: a0@NONE: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN group default \\    link/ether b6:30:14:f9:ce:ef brd ff:ff:ff:ff:ff:ff";
    const NEW: &str =
        "5: a0@b0: <BROADCAST,MULTICAST,M-DOWN> mtu 1500 qdisc noop state DOWN group default";

    #[test]
    fn lines_of_ip_monitor_are_parsed() {
        assert_eq!(
            parse(UP),
            Some(LinkMsg {
                deleted: false,
                index: 3,
                name: "a0".into(),
                running: true
            })
        );
        assert!(!parse(DOWN).unwrap().running);
        assert!(!parse(NOCARRIER).unwrap().running);
        let d = parse(DELETED).unwrap();
        assert!(d.deleted && d.index == 3 && d.name == "a0");
        assert_eq!(parse("lo: nothing"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn only_transitions_that_need_an_apply_are_reported() {
        let mut l = Links::default();
        l.reset(&[parse(UP).unwrap()]);
        // The same state again (the apply's own change, an mtu): nothing.
        assert_eq!(l.observe(&parse(UP).unwrap()), None);
        assert_eq!(l.observe(&parse(DOWN).unwrap()), None);
        assert_eq!(l.observe(&parse(NOCARRIER).unwrap()), None);
        assert_eq!(l.observe(&parse(UP).unwrap()), Some(Change::CameUp));
        assert_eq!(l.observe(&parse(DELETED).unwrap()), Some(Change::Deleted));
        assert!(!l.exists("a0"));
        assert_eq!(l.observe(&parse(NEW).unwrap()), Some(Change::ReCreated));
        let up5 = UP.replacen("3:", "5:", 1);
        assert_eq!(l.observe(&parse(&up5).unwrap()), Some(Change::CameUp));
        // A new index under a known name without a delete seen: re-created.
        let up7 = UP.replacen("3:", "7:", 1);
        assert_eq!(l.observe(&parse(&up7).unwrap()), Some(Change::ReCreated));
        // A delete of an index that is not the current one changes nothing.
        assert_eq!(l.observe(&parse(DELETED).unwrap()), None);
        let other = UP.replacen("a0@b0", "eth9", 1).replacen("3:", "9:", 1);
        assert_eq!(l.observe(&parse(&other).unwrap()), Some(Change::Appeared));
    }
}
