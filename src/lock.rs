//! One lock per network namespace, so that two qosctl runs that change the same kernel
//! state never interleave their read-plan-write-restore.
//!
//! - **Keyed by the namespace's identity**, the device and inode of its nsfs file, not by
//!   the spelling of `--netns`: `tc -n NAME` opens `/run/netns/NAME` (iproute2
//!   `netns_switch`), so `--netns NS` and `--netns ../netns/NS` are one namespace and one
//!   lock; without `--netns` it is qosctl's own namespace (`/proc/self/ns/net`).
//! - **In a directory only root can write**: `/run/qosctl`, created 0700; an existing one
//!   must be a real directory (not a link), owned by root (or by the user running qosctl),
//!   and writable by nobody else, or qosctl refuses to lock there.
//! - **Opened without following links** (`O_NOFOLLOW`), and must be a regular file.
//! - **A bounded wait** (`QOSCTL_LOCK_TIMEOUT` seconds, default 60), printing who holds it
//!   (the holder writes its pid, command and start time into the file).
//! - **Not left behind**: the holder removes the file before it unlocks. A waiter that then
//!   gets the lock of a removed file notices (the path no longer names its inode) and
//!   starts over, so removing never lets two holders in. A run killed with `kill -9` leaves
//!   its file; the next run locks and removes it (a stale file is never "held": flock locks
//!   die with their process).

use anyhow::{anyhow, bail, Context, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

pub const DEFAULT_DIR: &str = "/run/qosctl";
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// A held lock; released (file removed, then unlocked) on drop.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

/// The lock's descriptor, so that the `--confirm-within` rollback process can close its
/// inherited copy after fork and leave the lock to apply (src/confirm.rs).
impl std::os::fd::AsRawFd for Lock {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.file.as_raw_fd()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Remove while still holding it: see the module comment.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// `/run/netns/NAME` as `tc -n NAME` opens it (the name is appended even when it holds a
/// `/`), or qosctl's own namespace.
pub fn netns_path(netns: Option<&str>) -> PathBuf {
    match netns {
        Some(ns) => PathBuf::from(format!("/run/netns/{ns}")),
        None => PathBuf::from("/proc/self/ns/net"),
    }
}

/// (device, inode) of a network namespace, or an error in qosctl's words when `--netns`
/// names none.
pub fn netns_identity(netns: Option<&str>) -> Result<(u64, u64)> {
    let path = netns_path(netns);
    let shown = || match netns {
        Some(ns) => format!(
            "network namespace {} does not exist (no {}; see `ip netns list`)",
            crate::escape::quoted(ns),
            crate::escape::escape(&path.display().to_string())
        ),
        None => "cannot identify qosctl's own network namespace (/proc/self/ns/net)".into(),
    };
    let md = std::fs::metadata(&path).map_err(|e| anyhow!("{}: {e}", shown()))?;
    // A namespace is an nsfs inode bind-mounted there; a plain file is a leftover of a
    // failed `ip netns add`, which tc could not enter either.
    const NSFS_MAGIC: i64 = 0x6e73_6673;
    if fs_type(&path).is_some_and(|t| t != NSFS_MAGIC) {
        bail!("{}", shown().replace("does not exist", "is not mounted"));
    }
    Ok((md.dev(), md.ino()))
}

fn fs_type(path: &Path) -> Option<i64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statfs(2) into a zeroed struct we own.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        (libc::statfs(c.as_ptr(), &mut s) == 0).then_some(s.f_type as i64)
    }
}

/// The lock directory: `QOSCTL_LOCK_DIR` (for tests) or /run/qosctl, created 0700 and
/// checked: a directory (not a link), owned by root or by us, writable by no one else.
fn lock_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("QOSCTL_LOCK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        if e.kind() != std::io::ErrorKind::AlreadyExists {
            return Err(e)
                .with_context(|| format!("cannot create the lock directory {}", dir.display()));
        }
    }
    let md = std::fs::symlink_metadata(&dir)
        .with_context(|| format!("lock directory {}", dir.display()))?;
    // SAFETY: geteuid(2) cannot fail.
    let me = unsafe { libc::geteuid() };
    let why = if !md.file_type().is_dir() {
        Some("it is not a directory (a symbolic link is not followed)".to_string())
    } else if md.uid() != 0 && md.uid() != me {
        Some(format!("it is owned by uid {}, not root", md.uid()))
    } else if md.permissions().mode() & 0o022 != 0 {
        Some(format!(
            "others may write to it (mode {:o})",
            md.permissions().mode() & 0o7777
        ))
    } else {
        None
    };
    match why {
        Some(why) => bail!(
            "refusing to lock in {}: {why}; remove it (qosctl creates it owned by root, mode 0700)",
            dir.display()
        ),
        None => Ok(dir),
    }
}

fn wait_limit() -> Result<Duration> {
    match std::env::var("QOSCTL_LOCK_TIMEOUT") {
        Err(_) => Ok(DEFAULT_WAIT),
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| anyhow!("QOSCTL_LOCK_TIMEOUT={v:?}: expected seconds, e.g. 60")),
    }
}

/// The lock path of a namespace identity.
pub fn lock_path(dir: &Path, id: (u64, u64)) -> PathBuf {
    dir.join(format!("netns-{:x}-{:x}.lock", id.0, id.1))
}

/// Takes the lock of the namespace `netns` names, waiting at most `QOSCTL_LOCK_TIMEOUT`.
pub fn lock(netns: Option<&str>) -> Result<Lock> {
    let id = netns_identity(netns)?;
    let path = lock_path(&lock_dir()?, id);
    let limit = wait_limit()?;
    let started = Instant::now();
    let mut said = false;
    loop {
        let mut file = match attempt(&path)? {
            Attempt::Taken(lock) => return Ok(lock),
            Attempt::Held(file) => file,
        };
        let holder = read_holder(&mut file);
        if !said {
            eprintln!(
                "waiting for another qosctl ({holder}; lock {}), at most {:.0} s…",
                path.display(),
                limit.as_secs_f64()
            );
            said = true;
        }
        if started.elapsed() >= limit {
            bail!(
                "another qosctl is changing this network namespace ({holder}); waited {} s \
                 for its lock {}, the limit (QOSCTL_LOCK_TIMEOUT sets it)",
                limit.as_secs_f64(),
                path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Takes the lock of `netns` if it is free right now; `None` when another qosctl holds it
/// (for work that may start early, `apply`'s reads: it then waits the usual way later).
pub fn try_lock(netns: Option<&str>) -> Result<Option<Lock>> {
    let id = netns_identity(netns)?;
    let path = lock_path(&lock_dir()?, id);
    Ok(match attempt(&path)? {
        Attempt::Taken(lock) => Some(lock),
        Attempt::Held(_) => None,
    })
}

enum Attempt {
    Taken(Lock),
    /// Another process holds it; the open file, to read who.
    Held(File),
}

fn attempt(path: &Path) -> Result<Attempt> {
    loop {
        let mut file = open_no_follow(path)?;
        match file.try_lock() {
            Ok(()) => {
                // Still the file at the path? (Its holder may have removed it meanwhile.)
                let same = std::fs::symlink_metadata(path)
                    .is_ok_and(|m| m.ino() == file.metadata().map(|f| f.ino()).unwrap_or(0));
                if !same {
                    continue;
                }
                write_holder(&mut file);
                return Ok(Attempt::Taken(Lock {
                    file,
                    path: path.to_path_buf(),
                }));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(Attempt::Held(file)),
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }
}

fn open_no_follow(path: &Path) -> Result<File> {
    let f = File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow!(
                    "lock file {} is a symbolic link: not following it; remove it",
                    path.display()
                )
            } else {
                anyhow!("cannot open lock file {}: {e}", path.display())
            }
        })?;
    if !f.metadata().is_ok_and(|m| m.file_type().is_file()) {
        bail!(
            "lock file {} is not a regular file; remove it",
            path.display()
        );
    }
    Ok(f)
}

fn write_holder(file: &mut File) {
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let cmd: Vec<String> = std::env::args().collect();
    let text = format!(
        "pid {} since {since} command {}\n",
        std::process::id(),
        crate::escape::escape(&cmd.join(" "))
    );
    let _ = file.set_len(0);
    let _ = file.write_all(text.as_bytes());
}

/// "pid 123, `qosctl apply p.toml`, holding it for 4 s", from the holder's file.
fn read_holder(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind();
    let _ = file.take(4096).read_to_string(&mut s);
    let mut it = s.trim().splitn(5, ' ');
    match (it.next(), it.next(), it.next(), it.next(), it.next()) {
        (Some("pid"), Some(pid), Some("since"), Some(since), rest) => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let held = since
                .parse::<u64>()
                .map(|s| format!(", holding it for {} s", now.saturating_sub(s)))
                .unwrap_or_default();
            let cmd = rest
                .and_then(|r| r.strip_prefix("command "))
                .map(|c| format!(", `{}`", crate::escape::escape(c)))
                .unwrap_or_default();
            format!("pid {}{cmd}{held}", crate::escape::escape(pid))
        }
        _ => "holder unknown".to_string(),
    }
}
