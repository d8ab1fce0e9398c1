//! docs/ci.md's commands, run exactly as written, on this machine, which has none of the
//! router's devices. The commands are read from the doc's `# ci-commands` block, and the
//! GitHub and GitLab jobs in the doc must contain each of them, so the doc cannot drift.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The fenced blocks of a markdown file: (info string, body).
fn blocks(md: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(String, String)> = None;
    for line in md.lines() {
        match (&mut cur, line.strip_prefix("```")) {
            (None, Some(info)) => cur = Some((info.trim().to_string(), String::new())),
            (Some(_), Some(_)) => out.push(cur.take().unwrap()),
            (Some((_, body)), None) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    out
}

fn doc() -> (Vec<String>, Vec<(String, String)>) {
    let md = std::fs::read_to_string(root().join("docs/ci.md")).expect("docs/ci.md");
    let all = blocks(&md);
    let cmds: Vec<String> = all
        .iter()
        .find(|(info, body)| info == "sh" && body.starts_with("# ci-commands\n"))
        .expect("docs/ci.md has a ```sh block starting with `# ci-commands`")
        .1
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    assert!(cmds.len() >= 2, "{cmds:?}");
    (cmds, all)
}

#[test]
fn the_jobs_run_exactly_the_documented_commands() {
    let (cmds, all) = doc();
    let yaml: Vec<&String> = all
        .iter()
        .filter(|(i, _)| i == "yaml")
        .map(|(_, b)| b)
        .collect();
    assert_eq!(yaml.len(), 2, "one GitHub and one GitLab job");
    let github = yaml
        .iter()
        .find(|b| b.contains("runs-on:"))
        .expect("GitHub job");
    let gitlab = yaml
        .iter()
        .find(|b| b.contains("script:"))
        .expect("GitLab job");
    let github_lines: Vec<&str> = github.lines().map(str::trim).collect();
    let gitlab_lines: Vec<&str> = gitlab.lines().map(str::trim).collect();
    for c in &cmds {
        assert!(
            github_lines.contains(&c.as_str()),
            "GitHub job lacks `{c}`:\n{github}"
        );
        assert!(
            gitlab_lines.contains(&format!("- {c}").as_str()),
            "GitLab job lacks `- {c}`:\n{gitlab}"
        );
    }
}

/// A policy repository in a temporary directory: the PR's policy and the saved state.
fn repo(policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::copy(
        root().join("tests/fixtures/state/router.json"),
        dir.path().join("state/router.json"),
    )
    .unwrap();
    std::fs::write(dir.path().join("policy.toml"), policy).unwrap();
    dir
}

/// Runs the documented commands under `bash -e` (what a GitHub `run:` block does) with
/// qosctl and a `tc` that records any start and fails first on PATH. As root, the commands
/// run as nobody: CI needs no privileges.
fn run_doc_commands(dir: &Path) -> Output {
    let (cmds, _) = doc();
    let bin = dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    common::qosctl_for_anyone(&bin);
    let tc = bin.join("tc");
    std::fs::write(
        &tc,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nexit 1\n",
            dir.join("tc-was-run").display()
        ),
    )
    .unwrap();
    set_mode(&tc, 0o755);
    set_mode(dir, 0o777);
    set_mode(&dir.join("state"), 0o755);
    let path = format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", bin.display());
    let mut c = if common::is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "bash"]);
        c
    } else {
        Command::new("bash")
    };
    c.args(["-e", "-c", &cmds.join("\n")])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", dir)
        .output()
        .expect("run bash")
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_pull_request_prints_the_plan_against_the_saved_state() {
    // The PR: voice gets 15% instead of 10%, and lan's bfifo a larger limit.
    let policy = std::fs::read_to_string(root().join("tests/fixtures/state/router-policy.toml"))
        .unwrap()
        .replace("rate = \"10%\"", "rate = \"15%\"")
        .replace("limit = \"64KiB\"", "limit = \"128KiB\"");
    let dir = repo(&policy);
    let out = run_doc_commands(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        !dir.path().join("tc-was-run").exists(),
        "tc was started: {:?}",
        std::fs::read_to_string(dir.path().join("tc-was-run"))
    );
    assert!(
        stdout.contains("wan/voice") && stdout.contains("rate 1.9mbit -> 2.85mbit"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lan/all  limit 64KiB -> 128KiB"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Plan: 0 to add, 2 to change, 0 to remove."),
        "{stdout}"
    );
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["in_sync"], false);
    assert_eq!(plan["commands"].as_array().unwrap().len(), 2, "{plan}");
}

#[test]
fn an_unchanged_policy_is_in_sync_with_the_saved_state() {
    let policy =
        std::fs::read_to_string(root().join("tests/fixtures/state/router-policy.toml")).unwrap();
    let dir = repo(&policy);
    let out = run_doc_commands(dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("In sync: nothing to change."), "{stdout}");
}

#[test]
fn an_invalid_policy_fails_the_job_with_the_error_in_the_file() {
    let policy = std::fs::read_to_string(root().join("tests/fixtures/state/router-policy.toml"))
        .unwrap()
        .replace("rate = \"19mbit\"", "rate = 19000");
    let dir = repo(&policy);
    let out = run_doc_commands(dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("policy.toml:4:8: error:"), "{stderr}");
    assert!(out.stdout.is_empty(), "check --quiet stops the job first");
    assert!(!dir.path().join("plan.json").exists());
}
