//! `apply --confirm-within TIME` and `qosctl confirm`: a router's `commit confirmed`.
//!
//! After a successful apply, the state read before it is saved (root-only, under
//! [`DIR`]) and a detached process is forked: its own session (setsid), no controlling
//! terminal, stdio on /dev/null and a log. Unless `qosctl confirm` removes the record in
//! time, it restores the saved state through apply's own restore path, so a change that cut
//! off the SSH session that made it undoes itself even though that session is gone.
//!
//! Order: one pending change per network namespace. While it waits, `apply` (and `watch`'s
//! applies) are refused with the way out; `confirm` keeps it, `confirm --rollback` undoes
//! it now. The record and the rollback both happen under apply's lock, so a `confirm`
//! racing the deadline either keeps the change or finds it already rolled back, never half.

use anyhow::{bail, Context, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::cli::{ApplyArgs, ConfirmArgs, Global};
use crate::model::{Desired, DeviceState};
use crate::rollback::DeviceDump;
use crate::tc::Tc;
use crate::Exit;

/// Where pending changes are recorded: tmpfs, so a reboot (which empties tc anyway)
/// leaves no stale record; mode 0700, since the record holds the full tc state.
pub const DIR: &str = "/run/qosctl/confirm";

/// What is known about a pending change without its saved state (`before` is skipped).
#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    version: u32,
    netns: Option<String>,
    /// The detached process that rolls back.
    pid: i32,
    policy: PathBuf,
    devices: Vec<String>,
    /// Milliseconds since the Unix epoch.
    applied_ms: u64,
    deadline_ms: u64,
}

/// The record as written: [`Meta`] plus the state read before the apply.
#[derive(Serialize)]
struct Record<'a> {
    #[serde(flatten)]
    meta: &'a Meta,
    before: &'a [DeviceState],
}

/// Where one namespace's record and log live. Keyed by the namespace's identity (the
/// device and inode of `/run/netns/NAME`, which `tc -n NAME` enters, or of qosctl's own
/// namespace): two spellings of one namespace share a record, and a namespace deleted and
/// made again under its name does not inherit one. Computed once per process, so the
/// rollback process keeps its paths even if the namespace goes away.
struct Slot {
    record: PathBuf,
    log: PathBuf,
}

impl Slot {
    fn of(global: &Global) -> Slot {
        // The same identity as apply's lock, so every spelling of a namespace is one slot.
        let key = match crate::lock::netns_identity(global.netns.as_deref()) {
            Ok((dev, ino)) => format!("net-{dev}-{ino}"),
            // tc will say the namespace does not exist; nothing can be pending there.
            Err(_) => format!("absent-{}", global.netns.as_deref().unwrap_or("host")),
        }
        .replace('/', "_");
        Slot {
            record: Path::new(DIR).join(format!("{key}.json")),
            log: Path::new(DIR).join(format!("{key}.log")),
        }
    }
}

/// ` --netns X` for the commands a message tells the user to run.
fn netns_arg(global: &Global) -> String {
    match &global.netns {
        Some(n) => format!(" --netns {n}"),
        None => String::new(),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn at(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// An RFC 3339 timestamp of now, for log lines.
pub fn stamp() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn read_meta(path: &Path) -> Result<Option<Meta>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("unreadable confirm record {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// True while the rollback process of `meta` runs (a pid reused by another program
/// does not count: its name must be ours).
/// A zombie (exited, not yet reaped) is not alive either.
fn waiter_alive(meta: &Meta) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", meta.pid)).unwrap_or_default();
    // "PID (COMM) STATE …"; COMM may hold spaces, so split at the last ')'.
    let Some((head, tail)) = stat.rsplit_once(')') else {
        return false;
    };
    let comm = head.split_once('(').map(|(_, c)| c).unwrap_or("");
    let state = tail.split_whitespace().next().unwrap_or("Z");
    comm == "qosctl" && !matches!(state, "Z" | "X")
}

/// Refuses a change while another awaits confirmation in this namespace. Called by
/// apply under its lock; a record whose rollback process is gone is stale and removed.
pub fn refuse_if_pending(global: &Global) -> Result<()> {
    let slot = Slot::of(global);
    let Some(meta) = read_meta(&slot.record)? else {
        return Ok(());
    };
    if !waiter_alive(&meta) {
        let _ = std::fs::remove_file(&slot.record);
        eprintln!(
            "note: removed a stale confirm record (its rollback process {} is gone)",
            meta.pid
        );
        return Ok(());
    }
    let ns = netns_arg(global);
    bail!(
        "a change applied with --confirm-within is awaiting confirmation ({}): policy {}, \
         applied {}, rollback process {}; it rolls back at {}.\n\
         Run `qosctl{ns} confirm` to keep it, or `qosctl{ns} confirm --rollback` to undo it now, \
         then apply again.",
        match &global.netns {
            Some(n) => format!("network namespace {n}"),
            None => "host namespace".to_string(),
        },
        meta.policy.display(),
        at(meta.applied_ms),
        meta.pid,
        at(meta.deadline_ms),
    )
}

/// Records the pre-apply state and forks the detached rollback process. Called by apply
/// after a verified change, still under its lock (`lock`, closed in the child so the
/// lock is released when apply returns).
pub fn arm(
    global: &Global,
    args: &ApplyArgs,
    tc: &Tc,
    w: &Waiter<'_>,
    lock: &impl AsRawFd,
) -> Result<()> {
    let Waiter {
        desired, before, ..
    } = *w;
    let within = args.confirm_within.expect("called with --confirm-within");
    let slot = Slot::of(global);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(DIR)
        .with_context(|| format!("cannot create {DIR}"))?;
    let applied_ms = now_ms();
    let mut meta = Meta {
        version: 1,
        netns: global.netns.clone(),
        pid: 0,
        policy: std::fs::canonicalize(&args.policy).unwrap_or_else(|_| args.policy.clone()),
        devices: desired
            .devices
            .iter()
            .map(|d| d.state.device.clone())
            .collect(),
        applied_ms,
        deadline_ms: applied_ms + within.ns() / 1_000_000,
    };
    // The child waits on this pipe until the record names it: before that, a missing
    // record would look like a confirmation.
    let (ready_r, ready_w) = nix::unistd::pipe().context("pipe")?;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: qosctl is single-threaded here (tc's stdin writer thread was joined), so
    // the child may run ordinary code.
    // Signals stay blocked from before the fork until the child has its handlers: a
    // SIGTERM in between would otherwise kill it before it could roll back.
    let mut mask = nix::sys::signal::SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        mask.add(sig);
    }
    let mut old = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_BLOCK,
        Some(&mask),
        Some(&mut old),
    )?;
    let forked = unsafe { fork() };
    if !matches!(forked, Ok(ForkResult::Child)) {
        nix::sys::signal::pthread_sigmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&old),
            None,
        )?;
    }
    match forked.context("fork for the rollback process")? {
        ForkResult::Child => {
            drop(ready_w);
            let _ = nix::unistd::close(lock.as_raw_fd());
            let code = waiter(global, &slot, tc, w, ready_r, &old);
            // _exit: the parent's buffered stdout and atexit work are not ours to run.
            unsafe { nix::libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(ready_r);
            meta.pid = child.as_raw();
            let written = write_record(&slot.record, &meta, before);
            drop(ready_w);
            if let Err(e) = written {
                let _ = kill(child, Signal::SIGKILL);
                return Err(e);
            }
            eprintln!(
                "Rollback armed: unless `qosctl{} confirm` runs by {} (within {}), the \
                 interfaces return to the state read before this apply (rollback process {}, \
                 log {}).",
                netns_arg(global),
                at(meta.deadline_ms),
                within,
                child,
                slot.log.display()
            );
            Ok(())
        }
    }
}

/// Writes the record atomically (temporary file, then rename), mode 0600.
fn write_record(path: &Path, meta: &Meta, before: &[DeviceState]) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    serde_json::to_writer_pretty(&mut f, &Record { meta, before })?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Detaches from the session that started it: new session (no controlling terminal, so
/// no hangup), stdin /dev/null, stdout and stderr appended to the log, cwd /.
fn detach(slot: &Slot) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    nix::unistd::setsid()?;
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
    let log = open(
        &slot.log,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
        Mode::from_bits_truncate(0o600),
    )?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&log)?;
    nix::unistd::dup2_stderr(&log)?;
    std::env::set_current_dir("/")?;
    Ok(())
}

/// Deletes the ifbs the unconfirmed apply created; the words for the rollback's report.
fn delete_created(global: &Global, created: &[String]) -> Result<String> {
    if created.is_empty() {
        return Ok(String::new());
    }
    let ip = crate::link::Ip::locate(global.netns.clone())?;
    ip.delete_ifbs(created)?;
    Ok(format!(
        "; deleted the ifb it had created: {}",
        created.join(", ")
    ))
}

/// What the rollback process puts back: the pre-apply state, and the ifbs the apply created
/// (deleted after the restore: they did not exist before).
#[derive(Clone, Copy)]
pub struct Waiter<'a> {
    pub desired: &'a Desired,
    pub before: &'a [DeviceState],
    pub snap: &'a [DeviceDump],
    pub created: &'a [String],
}

/// The detached process: waits for a confirmation or the deadline, then rolls back.
/// Returns its exit code.
fn waiter(
    global: &Global,
    slot: &Slot,
    tc: &Tc,
    w: &Waiter<'_>,
    ready: std::os::fd::OwnedFd,
    unblock: &nix::sys::signal::SigSet,
) -> i32 {
    if let Err(e) = detach(slot) {
        eprintln!("{} rollback: cannot detach: {e:#}", stamp());
    }
    let asked = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    let confirmed = Arc::new(AtomicBool::new(false));
    // SIGTERM and SIGINT (a shutdown, someone killing it) roll back now rather than
    // leave an unconfirmed change; SIGHUP is ignored; SIGUSR1 is `confirm`'s nudge,
    // SIGUSR2 `confirm --rollback`'s.
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
    for (sig, flag) in [
        (SIGTERM, &term),
        (SIGINT, &term),
        (SIGUSR2, &asked),
        (SIGUSR1, &confirmed),
        (SIGHUP, &Arc::new(AtomicBool::new(false))),
    ] {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(unblock),
        None,
    );
    // Wait until the parent has written the record (it closes the pipe).
    let mut ready = std::fs::File::from(ready);
    while let Err(e) = std::io::Read::read(&mut ready, &mut [0u8; 1]) {
        if e.kind() != std::io::ErrorKind::Interrupted {
            break;
        }
    }
    let me = std::process::id() as i32;
    let ours = |m: &Option<Meta>| m.as_ref().is_some_and(|m| m.pid == me);
    if let Some(m) = read_meta(&slot.record)
        .ok()
        .flatten()
        .filter(|m| m.pid == me)
    {
        println!(
            "{} armed: {} applied; rolls back at {} unless confirmed (rollback process {me})",
            stamp(),
            m.policy.display(),
            at(m.deadline_ms)
        );
    }
    let why = loop {
        let meta = read_meta(&slot.record).ok().flatten();
        if confirmed.load(Ordering::Relaxed) || !ours(&meta) {
            println!("{} confirmed: the change stays", stamp());
            return 0;
        }
        let deadline = meta.as_ref().map(|m| m.deadline_ms).unwrap_or(0);
        if asked.load(Ordering::Relaxed) {
            break "asked by `qosctl confirm --rollback`".to_string();
        }
        if term.load(Ordering::Relaxed) {
            break "stopped by a signal before a confirmation".to_string();
        }
        if now_ms() >= deadline {
            break format!("not confirmed by {}", at(deadline));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // Under the lock: a `confirm` that got there first has removed the record.
    let _lock = match crate::apply::lock(global) {
        Ok(l) => l,
        Err(e) => {
            println!("{} rollback FAILED: {e:#}", stamp());
            return 1;
        }
    };
    if !ours(&read_meta(&slot.record).ok().flatten()) {
        println!("{} confirmed: the change stays", stamp());
        return 0;
    }
    // Uninterruptible: the SIGTERM that asked for this rollback must not stop its tc.
    let result = crate::apply::restore(&tc.uninterruptible(), w.desired, w.before, w.snap)
        .and_then(|how| delete_created(global, w.created).map(|more| how + &more));
    // The log line first, the record after: whoever sees the record gone (a
    // `qosctl confirm`, a script polling for it) must find the outcome logged. println!
    // writes each line through (stdout is line-buffered), so no flush is needed.
    let code = match result {
        Ok(how) => {
            println!(
                "{} {why}: rolled back to the state read before the apply; {how}",
                stamp()
            );
            0
        }
        Err(e) => {
            println!("{} {why}: rollback FAILED: {e:#}", stamp());
            1
        }
    };
    let _ = std::fs::remove_file(&slot.record);
    code
}

/// `qosctl confirm [--rollback]`.
pub fn run(global: &Global, args: &ConfirmArgs) -> Result<Exit> {
    let lock = crate::apply::lock(global)?;
    let slot = Slot::of(global);
    let Some(meta) = read_meta(&slot.record)? else {
        let ns = match &global.netns {
            Some(n) => format!("network namespace {n}"),
            None => "the host namespace".to_string(),
        };
        let last = std::fs::read_to_string(&slot.log)
            .ok()
            .and_then(|l| l.lines().last().map(|s| format!(" (last: {s})")))
            .unwrap_or_default();
        bail!("nothing awaits confirmation in {ns}{last}");
    };
    let pid = Pid::from_raw(meta.pid);
    if !waiter_alive(&meta) {
        std::fs::remove_file(&slot.record)?;
        println!(
            "The rollback process {pid} of the change applied {} is gone: the change stays; \
             removed its record.",
            at(meta.applied_ms)
        );
        return Ok(Exit::Ok);
    }
    if !args.rollback {
        std::fs::remove_file(&slot.record)
            .with_context(|| format!("cannot remove {}", slot.record.display()))?;
        let _ = kill(pid, Signal::SIGUSR1);
        println!(
            "Confirmed: the change applied {} ({}) stays; the rollback due {} is cancelled.",
            at(meta.applied_ms),
            meta.policy.display(),
            at(meta.deadline_ms)
        );
        return Ok(Exit::Ok);
    }
    // The rollback process needs the lock: release it, nudge, wait for the record to go.
    drop(lock);
    kill(pid, Signal::SIGUSR2).with_context(|| format!("cannot signal rollback process {pid}"))?;
    let give_up = std::time::Instant::now() + Duration::from_secs(60);
    while slot.record.exists() && std::time::Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(50));
    }
    let last = std::fs::read_to_string(&slot.log).unwrap_or_default();
    let last = last.lines().last().unwrap_or("").to_string();
    println!("{last}");
    if last.contains("rolled back") {
        Ok(Exit::Ok)
    } else {
        bail!(
            "the rollback did not report success; see {}",
            slot.log.display()
        )
    }
}
