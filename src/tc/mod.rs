//! Finding and running tc: `show` commands that read state, and one `tc -batch` for all
//! changes. Every error names the command that failed and carries tc's own message.

pub mod read;
pub mod render;

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::cli::Global;

/// How to run tc: which binary, in which network namespace.
#[derive(Debug, Clone)]
pub struct Tc {
    pub path: PathBuf,
    pub netns: Option<String>,
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
}

impl BatchError {
    fn describe(&self) -> String {
        let msg = self.stderr.trim();
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
        Ok(Tc {
            path,
            netns: global.netns.clone(),
        })
    }

    pub fn new(path: impl Into<PathBuf>, netns: Option<String>) -> Tc {
        Tc {
            path: path.into(),
            netns,
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
        let out = self
            .base()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("could not run `{}`", self.display(args)))?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.display(args),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        String::from_utf8(out.stdout)
            .with_context(|| format!("`{}` printed invalid UTF-8", self.display(args)))
    }

    /// Runs all `lines` in one `tc -batch -` process. tc stops at the first failure and
    /// reports its line number; earlier lines have changed the kernel.
    pub fn batch(&self, lines: &[String]) -> std::result::Result<(), BatchError> {
        self.batch_with(&[], lines).map(|_| ())
    }

    /// `tc OPTS -batch -`, returning what it printed: the output of any `show` lines
    /// in the batch (apply reads back what it changed in the same process).
    pub fn batch_with(
        &self,
        opts: &[&str],
        lines: &[String],
    ) -> std::result::Result<String, BatchError> {
        if lines.is_empty() {
            return Ok(String::new());
        }
        let spawn_err = |e: std::io::Error| BatchError {
            line: None,
            command: None,
            stderr: format!("could not run {}: {e}", self.display(&["-batch", "-"])),
            applied: 0,
        };
        let mut child = self
            .base()
            .args(opts)
            .args(["-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_err)?;
        let mut input = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
        for l in lines {
            input.push_str(l);
            input.push('\n');
        }
        // Write from a thread: tc may print (and fill the pipe) before reading all input.
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(spawn_err)?;
        let _ = writer.join();
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
        })
    }
}

fn display_path(p: &Path) -> String {
    // `tc` reads better than `/usr/sbin/tc` in messages when it is the one on PATH.
    match (p.file_name(), which::which("tc")) {
        (Some(n), Ok(found)) if found == p => n.to_string_lossy().into_owned(),
        _ => p.display().to_string(),
    }
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
