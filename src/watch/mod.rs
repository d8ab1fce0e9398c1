//! `qosctl watch POLICY`: keeps a policy in force. Applies it at the start, then again
//! when a device of the policy appears, is re-created or comes up, when the policy file
//! changes, and on SIGHUP. Each apply is apply's own code path ([`apply_loaded`]) on the
//! devices that exist; [`schedule`] decides when, [`links`] what happened.
//!
//! One timestamped line per action on stdout (journald keeps them under systemd).

pub mod links;
pub mod schedule;

use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::apply::apply_loaded;
use crate::cli::{ApplyArgs, Global, WatchArgs};
use crate::model::Desired;
use crate::Exit;
use links::{Change, Ip, LinkMsg, Links};
use schedule::Schedule;

/// How often the policy file's metadata is looked at. Polling, not inotify: it sees an
/// editor's write-and-rename and a file on any filesystem alike, and 4 stats a second
/// cost nothing.
const POLL: Duration = Duration::from_millis(250);

enum Event {
    Link(LinkMsg),
    MonitorEnded(String),
    PolicyChanged,
    Hangup,
    Stop(&'static str),
}

/// One line on stdout, timestamped. A closed stdout does not stop the watch.
fn log(msg: &str) {
    let _ = writeln!(
        std::io::stdout(),
        "{} watch: {msg}",
        crate::confirm::stamp()
    );
}

/// A multi-line error (tc's message, the restore result) as one log line.
fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn run(global: &Global, args: &WatchArgs) -> Result<Exit> {
    // A mistyped path is an error now; an invalid policy is not: it is retried, and
    // applied once the file is fixed.
    if !args.policy.is_file() {
        bail!("policy {}: no such file", args.policy.display());
    }
    crate::apply::require_net_admin()?;
    let ip = Ip::locate(global.netns.clone())?;
    let (tx, rx) = mpsc::channel();
    // The monitor starts before the dump, so no event falls between the two.
    let events = tx.clone();
    let ended = tx.clone();
    let mut monitor = ip.monitor(
        move |m| {
            let _ = events.send(Event::Link(m));
        },
        move |err| {
            let _ = ended.send(Event::MonitorEnded(err));
        },
    )?;
    forward_signals(tx.clone())?;
    poll_policy(args.policy.clone(), tx);
    let mut w = Watcher {
        global,
        policy: &args.policy,
        ip,
        links: Links::default(),
        schedule: Schedule::default(),
        devices: BTreeSet::new(),
        missing: BTreeSet::new(),
        warnings: String::new(),
    };
    w.links.reset(&w.ip.dump()?);
    // Known before the first apply, so that the events meanwhile are not ignored.
    if let Ok(d) = crate::policy::load(&args.policy) {
        w.devices = d.devices.into_iter().map(|d| d.state.device).collect();
    }
    log(&format!(
        "started: policy {}{}",
        args.policy.display(),
        match &global.netns {
            Some(n) => format!(", network namespace {n}"),
            None => String::new(),
        }
    ));
    w.schedule.trigger(Instant::now(), "start".into(), true);
    let result = w.serve(&rx);
    let _ = monitor.kill();
    let _ = monitor.wait();
    result
}

/// SIGHUP re-applies; SIGINT and SIGTERM stop the watch cleanly.
fn forward_signals(tx: Sender<Event>) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        for sig in signals.forever() {
            let ev = match sig {
                SIGHUP => Event::Hangup,
                SIGINT => Event::Stop("SIGINT"),
                _ => Event::Stop("SIGTERM"),
            };
            if tx.send(ev).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// Sends PolicyChanged when the file's size, mtime or inode changes (or it vanishes).
fn poll_policy(path: PathBuf, tx: Sender<Event>) {
    use std::os::unix::fs::MetadataExt;
    let stat = move |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.len(), m.mtime(), m.mtime_nsec(), m.ino()))
    };
    std::thread::spawn(move || {
        let mut seen = stat(&path);
        loop {
            std::thread::sleep(POLL);
            let now = stat(&path);
            if now != seen {
                seen = now;
                if tx.send(Event::PolicyChanged).is_err() {
                    break;
                }
            }
        }
    });
}

struct Watcher<'a> {
    global: &'a Global,
    policy: &'a Path,
    ip: Ip,
    links: Links,
    schedule: Schedule,
    /// The devices of the policy as last loaded.
    devices: BTreeSet<String>,
    /// Devices of the policy absent at the last apply (said once, not on every apply).
    missing: BTreeSet<String>,
    warnings: String,
}

impl Watcher<'_> {
    fn serve(&mut self, rx: &mpsc::Receiver<Event>) -> Result<Exit> {
        loop {
            let wait = self
                .schedule
                .due()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            match rx.recv_timeout(wait) {
                Ok(Event::Link(m)) => self.link(&m),
                Ok(Event::PolicyChanged) => {
                    self.schedule
                        .trigger(Instant::now(), "policy changed".into(), true)
                }
                Ok(Event::Hangup) => self.schedule.trigger(Instant::now(), "SIGHUP".into(), true),
                Ok(Event::Stop(sig)) => {
                    log(&format!("stopping ({sig})"));
                    return Ok(Exit::Ok);
                }
                Ok(Event::MonitorEnded(err)) => bail!("`ip -o monitor link` ended: {err}"),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => bail!("event sources ended"),
            }
            if self.schedule.due().is_some_and(|d| d <= Instant::now()) {
                self.apply();
            }
        }
    }

    fn link(&mut self, m: &LinkMsg) {
        let Some(change) = self.links.observe(m) else {
            return;
        };
        if !self.devices.contains(&m.name) {
            return;
        }
        if change == Change::Deleted {
            log(&format!("{} deleted: unshaped until it returns", m.name));
        } else {
            let reason = format!("{} {}", m.name, change.describe());
            self.schedule.trigger(Instant::now(), reason, false);
        }
    }

    /// Runs the apply that is due and logs its one line.
    fn apply(&mut self) {
        let what = self.schedule.take().join(", ");
        // Events can be lost (a full socket buffer); a fresh dump is the truth.
        if let Ok(d) = self.ip.dump() {
            self.links.reset(&d);
        }
        match self.apply_present() {
            Ok(Some((commands, took))) => {
                self.schedule.succeeded();
                let did = match commands {
                    0 => "in sync (0 commands)".to_string(),
                    1 => format!("applied 1 command ({:.1} ms)", took.as_secs_f64() * 1e3),
                    n => format!("applied {n} commands ({:.1} ms)", took.as_secs_f64() * 1e3),
                };
                log(&format!("{what} -> {did}{}", self.waiting()));
            }
            Ok(None) => {
                self.schedule.succeeded();
                log(&format!("{what} -> nothing to apply{}", self.waiting()));
            }
            Err(e) => {
                let delay = self.schedule.failed(Instant::now());
                log(&format!(
                    "{what} -> apply failed ({} in a row), retrying in {}s: {}",
                    self.schedule.failures(),
                    delay.as_secs(),
                    one_line(&e)
                ));
            }
        }
    }

    /// Loads the policy and applies it to the devices that exist. None when none does.
    fn apply_present(&mut self) -> Result<Option<(usize, Duration)>> {
        let (desired, warnings) = crate::policy::load_with_warnings(self.policy)?;
        if warnings != self.warnings {
            eprint!("{warnings}");
            self.warnings = warnings;
        }
        self.devices = desired
            .devices
            .iter()
            .map(|d| d.state.device.clone())
            .collect();
        let (present, absent): (Vec<_>, Vec<_>) = desired
            .devices
            .into_iter()
            .partition(|d| self.links.exists(&d.state.device));
        self.missing = absent.into_iter().map(|d| d.state.device).collect();
        if present.is_empty() {
            return Ok(None);
        }
        let args = ApplyArgs {
            policy: self.policy.to_path_buf(),
            ..ApplyArgs::default()
        };
        let started = Instant::now();
        let sub = Desired { devices: present };
        let applied = apply_loaded(self.global, &args, sub, &mut std::io::sink())?;
        Ok(Some((applied.commands, started.elapsed())))
    }

    fn waiting(&self) -> String {
        if self.missing.is_empty() {
            return String::new();
        }
        let names: Vec<&str> = self.missing.iter().map(String::as_str).collect();
        format!("; waiting for {} (absent)", names.join(", "))
    }
}
