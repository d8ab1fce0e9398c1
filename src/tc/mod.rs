//! Finding and running tc: `show` commands that read state, and one `tc -batch` for all
//! changes. Every error names the command that failed and carries tc's own message.

pub mod read;
pub mod render;

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::child::{self, Limits, RunError, Stop};
use crate::cli::Global;

/// How to run tc: which binary, in which network namespace.
#[derive(Debug, Clone)]
pub struct Tc {
    pub path: PathBuf,
    pub netns: Option<String>,
    /// Deadline and output cap of each tc process (see [`crate::child`]).
    pub limits: Limits,
    /// Whether a caught SIGINT/SIGTERM stops the running tc (false while restoring).
    pub abort_on_signal: bool,
}

/// A failed `tc -batch`: the line tc stopped at (1-based, when it said) and its stderr.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", self.describe())]
pub struct BatchError {
    pub line: Option<usize>,
    pub command: Option<String>,
    pub stderr: String,
    /// Lines of the batch that ran before the failure (they changed the kernel).
    pub applied: usize,
    /// qosctl stopped tc itself (deadline, flood, signal): how far it got is unknown.
    pub stop: Option<Stop>,
}

impl BatchError {
    fn describe(&self) -> String {
        let msg = self.stderr.trim();
        if let Some(stop) = &self.stop {
            return format!("tc -batch: {stop}");
        }
        match &self.command {
            Some(c) => format!("tc failed on `{c}`: {msg}"),
            None => format!("tc -batch failed: {msg}"),
        }
    }
}

impl Tc {
    /// `--tc PATH`, else `tc` on PATH; a clear error when there is none.
    pub fn locate(global: &Global) -> Result<Tc> {
        let path = match &global.tc {
            Some(p) => {
                if !p.exists() {
                    bail!("--tc {}: no such file", p.display());
                }
                p.clone()
            }
            None => which::which("tc").context(
                "tc not found on PATH: install iproute2 (Debian: apt-get install iproute2) or pass --tc PATH",
            )?,
        };
        // A missing namespace in qosctl's words, before any tc runs.
        if let Some(ns) = &global.netns {
            crate::lock::netns_identity(Some(ns))?;
        }
        Ok(Tc {
            path,
            netns: global.netns.clone(),
            limits: Limits::from_env()?,
            abort_on_signal: true,
        })
    }

    pub fn new(path: impl Into<PathBuf>, netns: Option<String>) -> Tc {
        Tc {
            path: path.into(),
            netns,
            limits: Limits::default(),
            abort_on_signal: true,
        }
    }

    /// The same tc, not stopped by signals: for the restore, which must run to its end.
    pub fn uninterruptible(&self) -> Tc {
        Tc {
            abort_on_signal: false,
            ..self.clone()
        }
    }

    fn base(&self) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(ns) = &self.netns {
            c.arg("-n").arg(ns);
        }
        c
    }

    /// The command as a user would type it, for messages.
    pub fn display(&self, args: &[&str]) -> String {
        let mut s = display_path(&self.path);
        if let Some(ns) = &self.netns {
            s.push_str(" -n ");
            s.push_str(ns);
        }
        for a in args {
            s.push(' ');
            s.push_str(a);
        }
        s
    }

    /// Runs `tc ARGS` and returns stdout; an error names the command and quotes stderr.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        self.start(args).output()
    }

    /// Starts `tc ARGS` without waiting: [`Started::output`] then returns what
    /// [`Tc::run`] would have, so several reads can run at once. Dropped unread, the
    /// process is killed. Call from the main thread (see [`child::spawn`]).
    pub fn start(&self, args: &[&str]) -> Started {
        let mut cmd = self.base();
        cmd.args(args);
        Started {
            tc: self.clone(),
            args: args.iter().map(|a| a.to_string()).collect(),
            running: child::spawn(cmd, None, &self.limits, self.abort_on_signal),
        }
    }
}

/// A `tc` read started by [`Tc::start`].
pub struct Started {
    tc: Tc,
    args: Vec<String>,
    running: std::result::Result<child::Running, RunError>,
}

impl Started {
    /// Waits for it: stdout, or an error that names the command and quotes stderr.
    pub fn output(self) -> Result<String> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let args = args.as_slice();
        let tc = &self.tc;
        let out = match self.running.and_then(child::Running::wait) {
            Ok(out) => out,
            Err(RunError::Spawn(e)) => {
                return Err(e).with_context(|| format!("could not run `{}`", tc.display(args)))
            }
            Err(RunError::Stopped { stop, .. }) => {
                return Err(anyhow!("`{}`: {stop}", tc.display(args)))
            }
        };
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if let (Some(ns), true) = (&tc.netns, cannot_enter(&stderr)) {
                bail!(
                    "cannot enter network namespace {}: that needs CAP_SYS_ADMIN (reading it \
                     needs nothing else, not even CAP_NET_ADMIN): run as root (sudo qosctl …), \
                     or grant the capability (e.g. setpriv --inh-caps=+sys_admin \
                     --ambient-caps=+sys_admin qosctl …); tc said: {}",
                    crate::escape::quoted(ns),
                    stderr.trim()
                );
            }
            bail!(
                "`{}` failed ({}): {}",
                tc.display(args),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8(out.stdout)
            .with_context(|| format!("`{}` printed invalid UTF-8", tc.display(args)))
    }
}

impl Tc {
    /// Runs all `lines` in one `tc -batch -` process. tc stops at the first failure and
    /// reports its line number; earlier lines have changed the kernel.
    pub fn batch(&self, lines: &[String]) -> std::result::Result<(), BatchError> {
        self.batch_with(&[], lines).map(|_| ())
    }

    /// `tc OPTS -batch -`, returning what it printed: the output of any `show` lines
    /// in the batch (apply reads back what it changed in the same process).
    /// Its deadline is [`Limits::timeout`] plus 1 ms per line (a 20,000-line batch of a
    /// 10,000-class tree gets 50 s by default).
    pub fn batch_with(
        &self,
        opts: &[&str],
        lines: &[String],
    ) -> std::result::Result<String, BatchError> {
        if lines.is_empty() {
            return Ok(String::new());
        }
        // Last line of defence: never send a line tc would split other than meant.
        if let Some((n, l, why)) = lines.iter().enumerate().find_map(|(n, l)| {
            let why = if l.chars().any(char::is_control) {
                Some("it holds a control character")
            } else {
                l.split(' ')
                    .filter(|w| !w.is_empty())
                    .find_map(batch_word_problem)
            };
            why.map(|why| (n + 1, l, why))
        }) {
            return Err(BatchError {
                line: Some(n),
                command: Some(format!("tc {}", crate::escape::escape(l))),
                stderr: format!("qosctl refused to send this line: {why}"),
                applied: 0,
                stop: None,
            });
        }
        let failed = |stderr: String, stop: Option<Stop>| BatchError {
            line: None,
            command: None,
            stderr,
            applied: 0,
            stop,
        };
        let mut input = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            input.push_str(l);
            input.push('\n');
        }
        let mut cmd = self.base();
        cmd.args(opts).args(["-batch", "-"]);
        let limits = Limits {
            timeout: self.limits.timeout + std::time::Duration::from_millis(lines.len() as u64),
            ..self.limits.clone()
        };
        let out = match child::run(cmd, Some(input.into_bytes()), &limits, self.abort_on_signal) {
            Ok(out) => out,
            Err(RunError::Spawn(e)) => {
                let msg = format!("could not run {}: {e}", self.display(&["-batch", "-"]));
                return Err(failed(msg, None));
            }
            Err(RunError::Stopped { stop, stderr }) => {
                return Err(failed(
                    String::from_utf8_lossy(&stderr).into_owned(),
                    Some(stop),
                ))
            }
        };
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let line = failed_line(&stderr);
        let command = line
            .and_then(|n| lines.get(n - 1))
            .map(|l| format!("tc {l}"));
        Err(BatchError {
            applied: line.map(|n| n - 1).unwrap_or(0),
            line,
            command,
            stderr: strip_failed_line(&stderr),
            stop: None,
        })
    }
}

/// Why `tc -batch` would not pass `word` through as one argument, if it would not.
///
/// iproute2's batch reader (lib/utils.c `getcmdline` + `makeargs`) cuts every line at the
/// first `#` (a comment, even inside quotes), joins a line ending in `\` with the next,
/// splits words at space, tab, CR and LF, and takes a word that begins with `'` or `"` up
/// to the next such quote, without the quotes (iproute2 before 4.15 splits with strtok and
/// knows no quotes at all). So no quoting carries a `#`, and quoting would mean different
/// things to different tc versions: qosctl refuses these words instead of quoting them.
/// Linux device names cannot hold whitespace, `/` or `:`, but may hold all of these.
pub fn batch_word_problem(word: &str) -> Option<&'static str> {
    if word.is_empty() {
        Some("it is empty")
    } else if word.contains('#') {
        Some("tc -batch reads '#' as the start of a comment")
    } else if word.starts_with(['\'', '"']) {
        Some("tc -batch strips a leading quote and reads up to the next one")
    } else if word.contains(['\'', '"']) {
        Some("tc -batch gives quotes a meaning, which differs between iproute2 versions")
    } else if word.contains('\\') {
        Some("tc -batch joins a line ending in '\\' with the next one")
    } else if word.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("tc -batch splits words at whitespace, and control characters would garble messages")
    } else {
        None
    }
}

/// A device name qosctl can put in a `tc -batch` line, or an error that says why not.
pub fn check_device_name(dev: &str) -> Result<()> {
    match batch_word_problem(dev) {
        None => Ok(()),
        Some(why) => bail!(
            "device name {} cannot be used: {why}, so tc would act on another device or fail; \
             rename the device (ip link set dev NAME name NEWNAME) or leave it out of the policy",
            crate::escape::quoted(dev)
        ),
    }
}

fn display_path(p: &Path) -> String {
    // `tc` reads better than `/usr/sbin/tc` in messages when it is the one on PATH.
    match (p.file_name(), which::which("tc")) {
        (Some(n), Ok(found)) if found == p => n.to_string_lossy().into_owned(),
        _ => p.display().to_string(),
    }
}

/// tc could not setns(2) into the namespace (iproute2 `netns_switch`).
fn cannot_enter(stderr: &str) -> bool {
    stderr.contains("setting the network namespace") && stderr.contains("Operation not permitted")
}

/// `Command failed -:5` → 5.
fn failed_line(stderr: &str) -> Option<usize> {
    stderr.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Command failed ")?;
        rest.rsplit(':').next()?.trim().parse().ok()
    })
}

/// tc's stderr without its own line counter and without the harmless htb quantum
/// warning (tc prints it with exit 0 for every class whose rate/r2q exceeds 200000).
fn strip_failed_line(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.trim().starts_with("Command failed "))
        .filter(|l| !(l.contains("quantum of class") && l.contains("is big")))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_line_is_read_from_tc_stderr() {
        // iproute2-6.1/10-b1-kernel-error-plain.out.stderr, read from stdin.
        let e = "RTNETLINK answers: File exists\nCommand failed -:3\n";
        assert_eq!(failed_line(e), Some(3));
        assert_eq!(strip_failed_line(e), "RTNETLINK answers: File exists");
        assert_eq!(failed_line("Command line is not complete."), None);
    }
}
