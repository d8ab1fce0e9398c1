//! Running tc as a child that cannot outlive qosctl, hang it, or flood its memory, and
//! noticing SIGINT/SIGTERM/SIGHUP during an apply so that it can restore before exiting.
//!
//! - Every child gets `PR_SET_PDEATHSIG = SIGKILL`: if qosctl dies (even by `kill -9`), the
//!   kernel kills its tc at once, so a `tc -batch` never keeps changing the kernel after the
//!   lock is gone. It runs in its own process group, so the terminal's Ctrl-C reaches
//!   qosctl only, which then stops the child itself and restores (a `--tc` wrapper's own
//!   children are killed with the group).
//! - Each child has a deadline ([`Limits::timeout`]) and a cap on what it may print
//!   ([`Limits::max_output`]); past either it is killed and the caller gets [`Stop`].

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::time::{Duration, Instant};

/// Default deadline of one tc process (a read, or a batch before its per-line allowance).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default cap on what one tc process may print on stdout (and, separately, stderr).
/// A 10,000-class tree reads as ~3.3 MB with counters; 64 MiB is 20 times that.
pub const DEFAULT_MAX_OUTPUT: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub timeout: Duration,
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: DEFAULT_TIMEOUT,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `QOSCTL_TC_TIMEOUT` (seconds, may be fractional) and
    /// `QOSCTL_TC_MAX_OUTPUT` (bytes, with an optional K/M/G suffix, powers of 1024).
    pub fn from_env() -> anyhow::Result<Limits> {
        let mut l = Limits::default();
        if let Ok(v) = std::env::var("QOSCTL_TC_TIMEOUT") {
            let secs: f64 = v
                .trim()
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| {
                    anyhow::anyhow!("QOSCTL_TC_TIMEOUT={v:?}: expected seconds > 0, e.g. 30 or 0.5")
                })?;
            l.timeout = Duration::from_secs_f64(secs);
        }
        if let Ok(v) = std::env::var("QOSCTL_TC_MAX_OUTPUT") {
            l.max_output = parse_bytes(&v).ok_or_else(|| {
                anyhow::anyhow!(
                    "QOSCTL_TC_MAX_OUTPUT={v:?}: expected bytes > 0, e.g. 67108864 or 64M"
                )
            })?;
        }
        Ok(l)
    }
}

fn parse_bytes(v: &str) -> Option<usize> {
    let v = v.trim();
    let (num, mult) = match v.char_indices().last()? {
        (i, 'k' | 'K') => (&v[..i], 1usize << 10),
        (i, 'm' | 'M') => (&v[..i], 1 << 20),
        (i, 'g' | 'G') => (&v[..i], 1 << 30),
        _ => (v, 1),
    };
    num.trim()
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
}

/// Why qosctl stopped a child before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Timeout(Duration),
    /// It printed more than this many bytes on one stream.
    Flood(usize),
    /// qosctl received this signal.
    Signal(i32),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::Timeout(d) => write!(
                f,
                "it did not finish within {:.1} s and was stopped (QOSCTL_TC_TIMEOUT sets the limit)",
                d.as_secs_f64()
            ),
            Stop::Flood(n) => write!(
                f,
                "it printed more than {n} bytes and was stopped (QOSCTL_TC_MAX_OUTPUT sets the limit)"
            ),
            Stop::Signal(s) => write!(f, "qosctl received {} and stopped it", signal_name(*s)),
        }
    }
}

pub fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum RunError {
    Spawn(std::io::Error),
    Stopped { stop: Stop, stderr: Vec<u8> },
}

static PENDING: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// From now on SIGINT, SIGTERM and SIGHUP no longer end qosctl: they are noted, and
/// [`pending`] reports them. Used by the commands that change the kernel, which then stop
/// their tc child and restore before exiting.
///
/// Each call starts a new apply: the handlers are registered once per process and the
/// flag is cleared, so in `qosctl watch` a SIGHUP that asked for the previous re-apply
/// does not make every later apply look interrupted.
pub fn catch_signals() -> anyhow::Result<()> {
    let mut first = false;
    let flag = PENDING.get_or_init(|| {
        first = true;
        Arc::new(AtomicUsize::new(0))
    });
    if first {
        for s in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            signal_hook::flag::register_usize(s, Arc::clone(flag), s as usize)?;
        }
    }
    flag.store(0, Ordering::SeqCst);
    Ok(())
}

/// The signal received since [`catch_signals`], if any.
pub fn pending() -> Option<i32> {
    let v = PENDING.get()?.load(Ordering::SeqCst);
    (v != 0).then_some(v as i32)
}

/// Runs `cmd` with `input` on stdin (else /dev/null), collecting stdout and stderr.
/// `abort_on_signal`: a signal noted by [`catch_signals`] stops the child (a restore
/// passes false: it must finish).
pub fn run(
    cmd: Command,
    input: Option<Vec<u8>>,
    limits: &Limits,
    abort_on_signal: bool,
) -> Result<Finished, RunError> {
    spawn(cmd, input, limits, abort_on_signal)?.wait()
}

/// A child started by [`spawn`]: its pipes are read by threads from the start, so several
/// can run at once (the reader starts its dumps together) and be waited for in any order.
/// Dropped before [`Running::wait`], it is killed with its process group and reaped.
pub struct Running {
    child: Option<Child>,
    rx: mpsc::Receiver<(usize, Option<Vec<u8>>)>,
    deadline: Instant,
    limits: Limits,
    abort_on_signal: bool,
}

/// Starts `cmd` as [`run`] does, without waiting for it. Call it from the main thread
/// only: the child's PR_SET_PDEATHSIG is tied to the thread that forks it.
pub fn spawn(
    mut cmd: Command,
    input: Option<Vec<u8>>,
    limits: &Limits,
    abort_on_signal: bool,
) -> Result<Running, RunError> {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure only calls async-signal-safe functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            // Tied to the forking thread: qosctl spawns tc from its main thread only.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // qosctl died between fork and prctl: do not run at all.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("qosctl exited"));
            }
            Ok(())
        });
    }
    cmd.process_group(0)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        // From a thread: tc may print (and fill the pipe) before reading all input.
        std::thread::spawn(move || stdin.write_all(&input));
    }
    let (tx, rx) = mpsc::channel();
    let cap = limits.max_output;
    let out = child.stdout.take().expect("piped");
    let err = child.stderr.take().expect("piped");
    roomy(&out);
    let tx2 = tx.clone();
    std::thread::spawn(move || tx.send((0, slurp(out, cap))));
    std::thread::spawn(move || tx2.send((1, slurp(err, cap))));
    Ok(Running {
        child: Some(child),
        rx,
        deadline: started + limits.timeout,
        limits: limits.clone(),
        abort_on_signal,
    })
}

impl Running {
    /// Waits for the child to exit (or stops it: deadline, flood, signal) and returns
    /// what it printed.
    pub fn wait(mut self) -> Result<Finished, RunError> {
        let mut child = self.child.take().expect("waited once");
        let (limits, deadline) = (&self.limits, self.deadline);
        let abort_on_signal = self.abort_on_signal;
        let mut got: [Option<Vec<u8>>; 2] = [None, None];
        let check = |abort: bool| -> Option<Stop> {
            if abort_on_signal {
                if let Some(s) = pending() {
                    return Some(Stop::Signal(s));
                }
            }
            (abort && Instant::now() >= deadline).then_some(Stop::Timeout(limits.timeout))
        };
        while got.iter().any(Option::is_none) {
            if let Some(stop) = check(true) {
                return Err(kill(child, stop, got[1].take()));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok((i, Some(v))) => got[i] = Some(v),
                Ok((i, None)) => {
                    let e = if i == 1 { None } else { got[1].take() };
                    return Err(kill(child, Stop::Flood(limits.max_output), e));
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Both pipes are closed: the child is exiting (or hangs without its pipes).
        let mut nap = Duration::from_micros(50);
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) => {}
                Err(e) => return Err(RunError::Spawn(e)),
            }
            if let Some(stop) = check(true) {
                return Err(kill(child, stop, got[1].take()));
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(20));
        };
        Ok(Finished {
            status,
            stdout: got[0].take().unwrap_or_default(),
            stderr: got[1].take().unwrap_or_default(),
        })
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = self.child.take() {
            // Not needed after all (a read that started it ahead found it useless, or
            // failed first): it must not outlive the caller's interest.
            kill(child, Stop::Signal(libc::SIGKILL), None);
        }
    }
}

/// The pipe a child prints its dump into, enlarged to [`PIPE_BYTES`] (best effort: the
/// kernel may refuse, then the pipe stays as it is).
fn roomy(out: &std::process::ChildStdout) {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a pipe descriptor this process owns; no memory is passed.
    unsafe {
        libc::fcntl(
            out.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            PIPE_BYTES as libc::c_int,
        );
    }
}

/// How much a child's stdout pipe holds: more than tc prints in [`NAP`] (~150 kB/ms).
const PIPE_BYTES: usize = 1 << 20;
/// How long the reader waits once it has emptied the pipe. tc writes one object per
/// write(2): a reader that blocks on the empty pipe is woken for each (30,000 context
/// switches for the three dumps of 10,000 classes and matches, paid by tc and qosctl);
/// napping lets the output gather in the pipe and be taken in large reads.
const NAP: Duration = Duration::from_micros(500);

/// Reads a pipe to its end; None once it passes `cap` bytes (then stops reading).
fn slurp(mut r: impl Read, cap: usize) -> Option<Vec<u8>> {
    let mut v = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Some(v),
            Ok(n) => {
                if v.len() + n > cap {
                    return None;
                }
                v.extend_from_slice(&buf[..n]);
                if n < buf.len() / 4 {
                    std::thread::sleep(NAP);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Some(v),
        }
    }
}

/// Kills the child and its process group (a wrapper script's own children), and reaps it.
fn kill(mut child: Child, stop: Stop, stderr: Option<Vec<u8>>) -> RunError {
    // SAFETY: plain kill(2) on the group this child leads (process_group(0)).
    unsafe {
        libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
    RunError::Stopped {
        stop,
        stderr: stderr.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_limits_take_suffixes() {
        assert_eq!(parse_bytes("64M"), Some(64 << 20));
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("2k"), Some(2048));
        assert_eq!(parse_bytes("0"), None);
        assert_eq!(parse_bytes("x"), None);
    }

    #[test]
    fn a_hanging_child_is_stopped_at_the_deadline() {
        let l = Limits {
            timeout: Duration::from_millis(300),
            max_output: 1 << 20,
        };
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 20"]);
        let t = Instant::now();
        let r = run(c, None, &l, false);
        assert!(matches!(
            r,
            Err(RunError::Stopped {
                stop: Stop::Timeout(_),
                ..
            })
        ));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_flooding_child_is_stopped_at_the_cap() {
        let l = Limits {
            timeout: Duration::from_secs(20),
            max_output: 1 << 20,
        };
        let mut c = Command::new("sh");
        c.args(["-c", "yes flood"]);
        let r = run(c, None, &l, false);
        assert!(matches!(
            r,
            Err(RunError::Stopped {
                stop: Stop::Flood(_),
                ..
            })
        ));
    }
}
