//! What must stay true when things go wrong (issue 13): qosctl killed or interrupted mid
//! batch, devices with names tc's batch reader would split, two applies racing for the
//! lock, a hanging or flooding tc, and a failure injected at every line of real batches.
//! Each test works in a throw-away network namespace (`common::Netns`); needs root.

mod common;
use common::{is_root, Netns};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

macro_rules! need_root {
    () => {
        if !is_root() {
            eprintln!("SKIP: {} needs root (network namespaces)", module_path!());
            return;
        }
    };
}

fn real_tc() -> PathBuf {
    which::which("tc").expect("tc is missing: tests/install-deps.sh must install it")
}

fn run(cmd: &[&str]) -> Output {
    Command::new(cmd[0])
        .args(&cmd[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn ok(cmd: &[&str]) -> String {
    let o = run(cmd);
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A namespace with its veth pair, a scratch directory and helpers to run qosctl in it.
struct Lab {
    ns: Netns,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        Lab {
            ns: Netns::with_veth(tag),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn name(&self) -> &str {
        &self.ns.0
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn script(&self, name: &str, body: &str) -> PathBuf {
        let p = self.write(name, body);
        ok(&["chmod", "+x", p.to_str().unwrap()]);
        p
    }

    /// A tc that feeds its batch to the real tc one line per 50 ms: a batch of 40 lines
    /// takes 2 s, so a test can act while it runs. `exec` keeps tc the direct child of
    /// qosctl (the process that gets the parent-death signal).
    fn slow_tc(&self) -> PathBuf {
        let body = format!(
            "#!/bin/bash\nfor a in \"$@\"; do\n  if [ \"$a\" = -batch ]; then\n    exec '{tc}' \"$@\" < <(while IFS= read -r l; do printf '%s\\n' \"$l\"; sleep 0.05; done)\n  fi\ndone\nexec '{tc}' \"$@\"\n",
            tc = real_tc().display()
        );
        self.script("tc-slow", &body)
    }

    fn qosctl_cmd(&self, tc: Option<&Path>, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qosctl"));
        c.arg("--netns").arg(self.name());
        if let Some(tc) = tc {
            c.arg("--tc").arg(tc);
        }
        c.args(args);
        c
    }

    fn qosctl(&self, tc: Option<&Path>, args: &[&str]) -> Output {
        self.qosctl_cmd(tc, args).output().expect("run qosctl")
    }

    fn apply(&self, p: &Path) -> Output {
        self.qosctl(None, &["apply", p.to_str().unwrap()])
    }

    fn in_sync(&self, p: &Path) -> bool {
        let o = self.qosctl(
            None,
            &[
                "apply",
                "--dry-run",
                "--detailed-exitcode",
                p.to_str().unwrap(),
            ],
        );
        assert!(matches!(o.status.code(), Some(0 | 2)), "{}", text(&o));
        o.status.code() == Some(0)
    }

    fn tc(&self, args: &[&str]) -> String {
        let mut v = vec!["tc", "-n", self.name()];
        v.extend_from_slice(args);
        ok(&v)
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", self.name()];
        v.extend_from_slice(args);
        ok(&v)
    }

    /// Everything tc shows of `dev` but counters, as a set of entries (an entry is a line
    /// and the indented lines under it): the kernel's dump order is not state.
    fn dump(&self, dev: &str) -> BTreeSet<String> {
        let mut set = BTreeSet::new();
        for args in [
            &["-d", "qdisc", "show", "dev", dev][..],
            &["-d", "class", "show", "dev", dev],
            &["-d", "filter", "show", "dev", dev],
            &["-d", "filter", "show", "dev", dev, "parent", "ffff:"],
        ] {
            let out = self.tc(args);
            let mut cur = String::new();
            for l in out.lines() {
                if !l.starts_with([' ', '\t']) && !cur.is_empty() {
                    set.insert(std::mem::take(&mut cur));
                }
                cur.push_str(l.trim_end());
                cur.push('\n');
            }
            if !cur.is_empty() {
                set.insert(cur);
            }
        }
        set
    }
}

/// `n` leaf classes under one root, rates `rate_kbit` each: 2n+2 batch lines from scratch.
fn classes(dev: &str, n: usize, rate_kbit: usize) -> String {
    let mut s = format!(
        "[interfaces.lab]\ndevice = \"{dev}\"\nrate = \"100mbit\"\ndefault = \"c1\"\nleaf = \"pfifo\"\n"
    );
    for i in 1..=n {
        s += &format!(
            "[interfaces.lab.classes.c{i}]\nid = {}\nrate = \"{}kbit\"\nceil = \"50mbit\"\n",
            0x10 + i,
            rate_kbit + i
        );
    }
    s
}

/// Processes whose command line names this namespace (a tc -n NS still running).
fn tc_children_of(ns: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == ns) && args.iter().any(|a| a == "-batch") {
            found.push(format!("{pid}: {}", args.join(" ")));
        }
    }
    found
}

/// Waits until `f` holds, at most `secs`.
fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn kill_9_mid_batch_leaves_no_tc_running_and_the_next_apply_converges() {
    need_root!();
    let lab = Lab::new("kill9");
    let p = lab.write("p.toml", &classes("a0", 20, 1000));
    let slow = lab.slow_tc();
    let mut child = lab
        .qosctl_cmd(Some(&slow), &["apply", p.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn qosctl");
    // Mid batch: some classes are in, most are not.
    assert!(
        wait_for(20, || lab
            .tc(&["class", "show", "dev", "a0"])
            .lines()
            .count()
            >= 3),
        "the batch never started"
    );
    child.kill().expect("kill -9"); // SIGKILL
    let _ = child.wait();
    assert!(
        wait_for(2, || tc_children_of(lab.name()).is_empty()),
        "tc outlived qosctl: {:?}",
        tc_children_of(lab.name())
    );
    let classes_then = lab.tc(&["class", "show", "dev", "a0"]);
    assert!(
        classes_then.lines().count() < 22,
        "the batch had finished before the kill: the test proves nothing"
    );
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        lab.tc(&["class", "show", "dev", "a0"]),
        classes_then,
        "something kept changing the kernel after qosctl died"
    );
    let o = lab.apply(&p);
    assert!(o.status.success(), "{}", text(&o));
    assert!(lab.in_sync(&p));
}

/// Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or SIGTERM while
/// the batch runs: qosctl stops tc, restores, and says so.
fn signal_mid_batch_restores(tag: &str, sig: i32, name: &str) {
    let lab = Lab::new(tag);
    let base = lab.write("base.toml", &classes("a0", 4, 2000));
    assert!(lab.apply(&base).status.success());
    let before = lab.dump("a0");
    let p = lab.write("p.toml", &classes("a0", 20, 1000));
    let slow = lab.slow_tc();
    let child = {
        use std::os::unix::process::CommandExt;
        lab.qosctl_cmd(Some(&slow), &["apply", p.to_str().unwrap()])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn qosctl")
    };
    assert!(
        wait_for(20, || lab.dump("a0") != before),
        "the batch never started"
    );
    // SAFETY: kill(2) on the process group the child leads.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), sig) }, 0);
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        err.contains(&format!("interrupted by {name}")),
        "{}",
        text(&o)
    );
    assert!(err.contains("restored"), "{}", text(&o));
    assert!(tc_children_of(lab.name()).is_empty());
    assert_eq!(lab.dump("a0"), before, "not restored after {name}");
    assert!(lab.in_sync(&base));
}

#[test]
fn sigint_to_the_process_group_mid_batch_restores_and_says_so() {
    need_root!();
    signal_mid_batch_restores("sigint", libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_mid_batch_restores_and_says_so() {
    need_root!();
    signal_mid_batch_restores("sigterm", libc::SIGTERM, "SIGTERM");
}

/// Names Linux accepts but tc's batch reader would split or cut, each next to the device
/// it would turn into ("\"d1\"" -> d1, "d2#x" -> d2, ...).
const ODD: [(&str, &str); 5] = [
    ("\"d1\"", "d1"),
    ("d2#x", "d2"),
    ("'d3'", "d3"),
    ("d4\\", "d4"),
    ("d5\u{1}", "d5"),
];

#[test]
fn device_names_tc_batch_would_misread_are_refused_and_nothing_changes() {
    need_root!();
    let lab = Lab::new("odd");
    for (i, (odd, plain)) in ODD.iter().enumerate() {
        lab.ip(&[
            "link",
            "add",
            "name",
            odd,
            "type",
            "veth",
            "peer",
            "name",
            &format!("q{i}"),
        ]);
        lab.ip(&[
            "link",
            "add",
            "name",
            plain,
            "type",
            "veth",
            "peer",
            "name",
            &format!("r{i}"),
        ]);
        // A tree on the look-alike, which a misread name would change or reset.
        lab.tc(&[
            "qdisc", "add", "dev", plain, "root", "handle", "1:", "htb", "default", "1",
        ]);
    }
    let devs: Vec<&str> = ODD.iter().flat_map(|(o, p)| [*o, *p]).collect();
    let dumps = |lab: &Lab| -> Vec<BTreeSet<String>> { devs.iter().map(|d| lab.dump(d)).collect() };
    let before = dumps(&lab);
    for (odd, _) in ODD {
        let toml_name = odd
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\u{1}', "\\u0001");
        let p = lab.write("odd.toml", &classes(&toml_name, 2, 1000));
        for args in [
            &["apply", p.to_str().unwrap()][..],
            &["apply", "--dry-run", p.to_str().unwrap()],
            &["reset", p.to_str().unwrap()],
            &["reset", "--dev", odd],
        ] {
            let o = lab.qosctl(None, args);
            assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
            let err = stderr(&o);
            assert!(err.contains("cannot be used"), "{args:?}: {err}");
            assert!(
                !err.contains('\u{1}'),
                "control character printed raw: {err:?}"
            );
        }
        assert_eq!(dumps(&lab), before, "{odd:?}: a device changed");
    }
    // A name with other punctuation is fine, and only it changes.
    let fine = "d.6-x+y@z";
    lab.ip(&[
        "link", "add", "name", fine, "type", "veth", "peer", "name", "s6",
    ]);
    let p = lab.write("fine.toml", &classes(fine, 2, 1000));
    let o = lab.apply(&p);
    assert!(o.status.success(), "{}", text(&o));
    assert!(lab.in_sync(&p));
    assert!(lab.tc(&["class", "show", "dev", fine]).contains("1:11"));
    assert_eq!(dumps(&lab), before, "a device other than {fine} changed");
    let o = lab.qosctl(None, &["reset", "--dev", fine]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!lab.tc(&["qdisc", "show", "dev", fine]).contains("htb"));
}

/// A slow tc that logs `start PID` and `end PID` around each batch: overlapping batches
/// of two applies show as two starts in a row.
fn logging_slow_tc(lab: &Lab) -> (PathBuf, PathBuf) {
    let log = lab.dir.path().join("order.log");
    let body = format!(
        "#!/bin/bash\nfor a in \"$@\"; do\n  if [ \"$a\" = -batch ]; then\n    echo \"start $$\" >> '{log}'\n    '{tc}' \"$@\" < <(while IFS= read -r l; do printf '%s\\n' \"$l\"; sleep 0.03; done)\n    rc=$?\n    echo \"end $$\" >> '{log}'\n    exit $rc\n  fi\ndone\nexec '{tc}' \"$@\"\n",
        log = log.display(),
        tc = real_tc().display()
    );
    (lab.script("tc-order", &body), log)
}

fn lock_file_of(ns: &str) -> PathBuf {
    let id = qosctl::lock::netns_identity(Some(ns)).expect("namespace identity");
    qosctl::lock::lock_path(Path::new(qosctl::lock::DEFAULT_DIR), id)
}

#[test]
fn two_spellings_of_one_namespace_take_turns() {
    need_root!();
    let lab = Lab::new("race");
    let (tc, log) = logging_slow_tc(&lab);
    let mut rounds = 0;
    for (i, spellings) in [
        [lab.name().to_string(), format!("../netns/{}", lab.name())],
        [format!("../netns/{}", lab.name()), lab.name().to_string()],
        [lab.name().to_string(), format!("./{}", lab.name())],
    ]
    .iter()
    .enumerate()
    {
        // Different trees, so that interleaved batches would collide ("File exists").
        let a = lab.write("a.toml", &classes("a0", 12, 1000 + i));
        let b = lab.write("b.toml", &classes("a0", 12, 3000 + i));
        let _ = std::fs::remove_file(&log);
        let spawn = |ns: &str, p: &Path| {
            Command::new(env!("CARGO_BIN_EXE_qosctl"))
                .args(["--netns", ns, "--tc", tc.to_str().unwrap(), "apply"])
                .arg(p)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        };
        let first = spawn(&spellings[0], &a);
        let second = spawn(&spellings[1], &b);
        let (o1, o2) = (
            first.wait_with_output().unwrap(),
            second.wait_with_output().unwrap(),
        );
        assert!(o1.status.success(), "{}", text(&o1));
        assert!(o2.status.success(), "{}", text(&o2));
        let order = std::fs::read_to_string(&log).unwrap();
        let kinds: Vec<&str> = order
            .lines()
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        assert_eq!(
            kinds,
            ["start", "end", "start", "end"],
            "batches overlapped: {order}"
        );
        let waited = [&o1, &o2]
            .iter()
            .filter(|o| stderr(o).contains("waiting for another qosctl"))
            .count();
        assert_eq!(waited, 1, "{}\n{}", text(&o1), text(&o2));
        assert!(
            lab.in_sync(&a) != lab.in_sync(&b),
            "the end state is neither policy"
        );
        rounds += 1;
    }
    assert_eq!(rounds, 3);
    assert!(!lock_file_of(lab.name()).exists(), "lock file left behind");
}

#[test]
fn a_held_lock_is_waited_for_with_a_bound_and_names_its_holder() {
    need_root!();
    let lab = Lab::new("held");
    let p = lab.write("p.toml", &classes("a0", 20, 1000));
    let q = lab.write("q.toml", &classes("a0", 20, 2000));
    let slow = lab.slow_tc();
    let holder = lab
        .qosctl_cmd(Some(&slow), &["apply", p.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(wait_for(10, || lock_file_of(lab.name()).exists()));
    let t = Instant::now();
    let o = lab
        .qosctl_cmd(None, &["apply", q.to_str().unwrap()])
        .env("QOSCTL_LOCK_TIMEOUT", "0.5")
        .output()
        .unwrap();
    let waited = t.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = stderr(&o);
    assert!(err.contains(&format!("pid {}", holder.id())), "{err}");
    assert!(err.contains("waited 0.5 s"), "{err}");
    assert!(err.contains("QOSCTL_LOCK_TIMEOUT"), "{err}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    let o = holder.wait_with_output().unwrap();
    assert!(o.status.success());
    assert!(lab.in_sync(&p), "the locked-out apply changed something");
}

#[test]
fn a_symlink_at_the_lock_path_is_not_followed() {
    need_root!();
    let lab = Lab::new("symlink");
    let p = lab.write("p.toml", &classes("a0", 2, 1000));
    let target = lab.dir.path().join("chosen-by-someone-else");
    let lock = lock_file_of(lab.name());
    let _ = std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
        .create(qosctl::lock::DEFAULT_DIR);
    std::os::unix::fs::symlink(&target, &lock).expect("plant symlink");
    let o = lab.apply(&p);
    let _ = std::fs::remove_file(&lock);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("symbolic link"), "{}", text(&o));
    assert!(!target.exists(), "the lock followed the link");
    assert!(
        !lab.tc(&["qdisc", "show", "dev", "a0"]).contains("htb"),
        "applied without the lock"
    );

    // A lock directory others may write to is refused too.
    let open = lab.dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    ok(&["chmod", "1777", open.to_str().unwrap()]);
    let o = lab
        .qosctl_cmd(None, &["apply", p.to_str().unwrap()])
        .env("QOSCTL_LOCK_DIR", &open)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        stderr(&o).contains("others may write to it"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
}

/// A tc that misbehaves once (`how`: shell run in place of the first `-batch`, or of the
/// first read matching `read_pat`), and is the real tc otherwise.
fn bad_tc(lab: &Lab, name: &str, batch: Option<&str>, read: Option<(&str, &str)>) -> PathBuf {
    let marker = lab.dir.path().join(format!("{name}.done"));
    let tc = real_tc();
    let mut body = format!(
        "#!/bin/bash\nREAL='{}'\nM='{}'\n",
        tc.display(),
        marker.display()
    );
    if let Some((pat, how)) = read {
        body += &format!(
            "if [ ! -e \"$M\" ] && [[ \"$*\" == *'{pat}'* ]]; then touch \"$M\"; {how}; fi\n"
        );
    }
    if let Some(how) = batch {
        body += &format!(
            "for a in \"$@\"; do if [ \"$a\" = -batch ] && [ ! -e \"$M\" ]; then touch \"$M\"; {how}; fi; done\n"
        );
    }
    body += "exec \"$REAL\" \"$@\"\n";
    lab.script(name, &body)
}

#[test]
fn a_hanging_or_flooding_tc_is_stopped_with_a_clear_error_and_a_restore() {
    need_root!();
    let lab = Lab::new("bounds");
    let base = lab.write("base.toml", &classes("a0", 4, 2000));
    assert!(lab.apply(&base).status.success());
    let before = lab.dump("a0");
    let p = lab.write("p.toml", &classes("a0", 10, 1000));
    // The batch applies 3 lines, then hangs (or floods); a read hangs (or floods).
    let cases = [
        (
            "batch-hang",
            Some("head -n 3 | \"$REAL\" \"$@\"; exec sleep 1000.5"),
            None,
            "did not finish within 1.0 s",
        ),
        (
            "batch-flood",
            Some("head -n 3 | \"$REAL\" \"$@\"; exec yes flood"),
            None,
            "printed more than 1048576 bytes",
        ),
        (
            "read-hang",
            None,
            Some(("class show", "exec sleep 1000.5")),
            "did not finish within 1.0 s",
        ),
        (
            "read-flood",
            None,
            Some(("qdisc show", "exec yes '['")),
            "printed more than 1048576 bytes",
        ),
    ];
    for (name, batch, read, says) in cases {
        let tc = bad_tc(&lab, name, batch, read);
        let t = Instant::now();
        let o = lab
            .qosctl_cmd(Some(&tc), &["apply", p.to_str().unwrap()])
            .env("QOSCTL_TC_TIMEOUT", "1")
            .env("QOSCTL_TC_MAX_OUTPUT", "1M")
            .output()
            .unwrap();
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{name}: {:?}",
            t.elapsed()
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", text(&o));
        let err = stderr(&o);
        assert!(err.contains(says), "{name}: {err}");
        if batch.is_some() {
            assert!(err.contains("restored"), "{name}: {err}");
        }
        assert_eq!(lab.dump("a0"), before, "{name}: not restored");
        let leftovers: Vec<String> = tc_children_of("1000.5");
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
    }
}

#[test]
fn policy_paths_that_are_not_regular_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("policy.fifo");
    ok(&["mkfifo", fifo.to_str().unwrap()]);
    for (path, says) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
        (dir.path(), "a directory"),
    ] {
        for cmd in ["check", "apply"] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_qosctl"))
                .args(
                    [cmd, "--dry-run"]
                        .iter()
                        .take(if cmd == "check" { 1 } else { 2 }),
                )
                .arg(path)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let done = wait_for(10, || child.try_wait().unwrap().is_some());
            if !done {
                let _ = child.kill();
            }
            let o = child.wait_with_output().unwrap();
            assert!(done, "{cmd} {}: still running after 10 s", path.display());
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert!(stderr(&o).contains(says), "{}", text(&o));
        }
    }
}

#[test]
fn a_missing_namespace_is_named_before_tc_runs() {
    need_root!();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("ran.log");
    let tc = dir.path().join("tc-log");
    std::fs::write(
        &tc,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            real_tc().display()
        ),
    )
    .unwrap();
    ok(&["chmod", "+x", tc.to_str().unwrap()]);
    let p = dir.path().join("p.toml");
    std::fs::write(&p, classes("a0", 2, 1000)).unwrap();
    let ns = format!("qx-nosuch-{}", std::process::id());
    for args in [
        &["apply", p.to_str().unwrap()][..],
        &["apply", "--dry-run", p.to_str().unwrap()],
        &["show"],
        &["reset", "--dev", "a0"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_qosctl"))
            .args(["--netns", &ns, "--tc", tc.to_str().unwrap()])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        assert!(
            stderr(&o).contains(&format!("network namespace \"{ns}\" does not exist")),
            "{args:?}: {}",
            text(&o)
        );
    }
    assert!(
        !log.exists(),
        "tc ran: {}",
        std::fs::read_to_string(&log).unwrap()
    );
}

#[test]
fn names_with_control_characters_cannot_forge_plan_lines() {
    need_root!();
    let lab = Lab::new("forge");
    // Class names with control characters are refused by the policy check; interface
    // keys (aliases) are not, so they are escaped where printed.
    let alias = "\"lab\\n+ qdisc 1: root FORGED\\u001b[2K\"";
    let policy = format!(
        "[interfaces.{alias}]\ndevice = \"a0\"\nrate = \"10mbit\"\ndefault = \"x\"\nleaf = \"pfifo\"\n[interfaces.{alias}.classes.x]\nrate = \"1mbit\"\n"
    );
    let p = lab.write("forge.toml", &policy);
    let o = lab.qosctl(None, &["apply", "--dry-run", p.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.contains("lab\\n+ qdisc 1: root FORGED"), "{out}");
    assert!(
        !out.lines()
            .any(|l| l.trim_start().starts_with("+ qdisc 1: root FORGED")),
        "a forged line: {out}"
    );
    assert!(!out.contains('\u{1b}'), "raw escape sequence: {out:?}");
    let o = lab.apply(&p);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        !out.contains('\u{1b}') && !out.contains("\n+ qdisc 1: root FORGED"),
        "{out:?}"
    );
    let o = lab.qosctl(None, &["show", "--policy", p.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        out.contains("(policy: lab\\n+ qdisc 1: root FORGED"),
        "{out}"
    );
    assert!(
        !out.contains('\u{1b}') && !out.contains("\n+ qdisc 1: root FORGED"),
        "{out:?}"
    );
}

#[test]
fn check_escapes_control_characters_of_interface_keys_in_its_errors() {
    // `check` quotes the interface key in its messages ("interface \"…\" has …"); a key
    // holding a newline and an escape sequence must not forge a diagnostic line.
    let dir = tempfile::tempdir().unwrap();
    let alias = "\"lab\\np.toml:1:1: error: FORGED\\u001b[2K\"";
    let policy = format!("[interfaces.{alias}]\ndevice = \"a0\"\nrate = \"10mbit\"\nbogus = 1\n");
    let p = dir.path().join("p.toml");
    std::fs::write(&p, policy).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_qosctl"))
        .args(["check", p.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains(
            "unknown key \"bogus\" in interface \"lab\\np.toml:1:1: error: FORGED\\x1b[2K\""
        ),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "raw escape sequence: {err:?}");
    assert!(
        !err.lines()
            .any(|l| l.starts_with("p.toml:1:1: error: FORGED")),
        "a forged line: {err}"
    );
}

#[test]
fn dry_run_in_a_namespace_works_without_root_for_whoever_may_enter_it() {
    need_root!();
    let setpriv =
        which::which("setpriv").expect("setpriv is missing: tests/install-deps.sh must install it");
    let lab = Lab::new("nonroot");
    ok(&["chmod", "755", lab.dir.path().to_str().unwrap()]);
    let p = lab.write("p.toml", &classes("a0", 2, 1000));
    ok(&["chmod", "644", p.to_str().unwrap()]);
    let qosctl = common::qosctl_for_anyone(lab.dir.path());
    let nobody = |caps: bool| {
        let mut c = Command::new(&setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        if caps {
            c.args(["--inh-caps=+sys_admin", "--ambient-caps=+sys_admin"]);
        }
        c.arg(&qosctl)
            .args([
                "--netns",
                lab.name(),
                "apply",
                "--dry-run",
                "--detailed-exitcode",
            ])
            .arg(&p)
            .output()
            .unwrap()
    };
    let o = nobody(true);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("+ class 1:11"),
        "{}",
        text(&o)
    );
    let o = nobody(false);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("needs CAP_SYS_ADMIN"), "{}", text(&o));
    assert!(stderr(&o).contains("sudo"), "{}", text(&o));
}

#[test]
fn reset_with_one_missing_device_resets_the_others_and_names_it() {
    need_root!();
    let lab = Lab::new("resetmiss");
    let two = format!(
        "{}{}",
        classes("a0", 2, 1000),
        classes("b0", 2, 1000).replace("interfaces.lab", "interfaces.peer")
    )
    .replace("device = \"b0\"", "device = \"nosuchdev0\"");
    let p = lab.write("two.toml", &two);
    lab.tc(&["qdisc", "add", "dev", "a0", "root", "handle", "1:", "htb"]);
    let o = lab.qosctl(None, &["reset", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(stderr(&o).contains("nosuchdev0"), "{}", text(&o));
    assert!(
        stderr(&o).contains("1 of 2 devices not reset"),
        "{}",
        text(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("a0: removed"),
        "{}",
        text(&o)
    );
    assert!(!lab.tc(&["qdisc", "show", "dev", "a0"]).contains("htb"));
}

/// A tc that, for the first `-batch` only (the apply's, not the restore's), runs lines
/// 1..k-1 of it and then a line that fails ("Cannot find device"), k = $FAULT_AT.
fn faulty_tc(lab: &Lab) -> PathBuf {
    let body = format!(
        "#!/bin/bash\nfor a in \"$@\"; do\n  if [ \"$a\" = -batch ] && [ -n \"$FAULT_AT\" ] && [ ! -e \"$FAULT_MARK\" ]; then\n    touch \"$FAULT_MARK\"\n    exec '{tc}' \"$@\" < <(head -n $((FAULT_AT - 1)); echo 'qdisc add dev qx-no-such-dev root pfifo')\n  fi\ndone\nexec '{tc}' \"$@\"\n",
        tc = real_tc().display()
    );
    lab.script("tc-faulty", &body)
}

/// One class of a generated policy: id, rate (kbit), optional burst and cburst, leaf.
struct C(
    usize,
    usize,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

fn tree(iface_burst: Option<&str>, default: usize, cs: &[C]) -> String {
    let mut s = "[interfaces.lab]\ndevice = \"a0\"\nrate = \"100mbit\"\n".to_string();
    s += &format!("default = \"c{default}\"\nleaf = \"pfifo\"\n");
    if let Some(b) = iface_burst {
        s += &format!("burst = \"{b}\"\ncburst = \"{b}\"\n");
    }
    for C(id, kbit, burst, cburst, leaf) in cs {
        s += &format!(
            "[interfaces.lab.classes.c{id}]\nid = {}\nrate = \"{kbit}kbit\"\nceil = \"80mbit\"\n",
            0x10 + id
        );
        if let Some(b) = burst {
            s += &format!("burst = \"{b}\"\n");
        }
        if let Some(b) = cburst {
            s += &format!("cburst = \"{b}\"\n");
        }
        s += &format!("leaf = {leaf}\n");
    }
    s
}

const LEAVES: [&str; 3] = [
    "\"pfifo\"",
    "{ kind = \"bfifo\", limit = \"64KiB\" }",
    "{ kind = \"tbf\", rate = \"5mbit\", burst = \"20KiB\", latency = \"50ms\" }",
];

/// The state before each fault: policy `a` applied, a class burst set by hand (which no
/// policy manages), and foreign objects qosctl cannot re-create: an ingress qdisc with a
/// u32 mirred filter, and a u32 filter on the htb root steering to a class both keep.
fn set_up(lab: &Lab, a: &Path, ingress: bool, root_filter: bool) {
    let _ = run(&["tc", "-n", lab.name(), "qdisc", "del", "dev", "a0", "root"]);
    let _ = run(&[
        "tc",
        "-n",
        lab.name(),
        "qdisc",
        "del",
        "dev",
        "a0",
        "ingress",
    ]);
    let o = lab.apply(a);
    assert!(o.status.success(), "{}", text(&o));
    lab.tc(&[
        "class", "change", "dev", "a0", "parent", "1:1", "classid", "1:12", "htb", "rate",
        "1002kbit", "ceil", "80mbit", "burst", "16362b", "cburst", "9999b",
    ]);
    if ingress {
        lab.tc(&["qdisc", "add", "dev", "a0", "ingress"]);
        lab.tc(&[
            "filter", "add", "dev", "a0", "parent", "ffff:", "protocol", "all", "prio", "10",
            "u32", "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", "b0",
        ]);
    }
    if root_filter {
        lab.tc(&[
            "filter",
            "add",
            "dev",
            "a0",
            "parent",
            "1:",
            "protocol",
            "ip",
            "prio",
            "5",
            "u32",
            "match",
            "ip",
            "dst",
            "10.9.9.9/32",
            "flowid",
            "1:11",
        ]);
    }
}

fn batch_len(lab: &Lab, p: &Path) -> usize {
    let o = lab.qosctl(None, &["apply", "--dry-run", "--json", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("plan json");
    v["commands"].as_array().expect("commands").len()
}

#[test]
fn a_failure_at_every_line_of_real_batches_restores_the_kernel_exactly() {
    need_root!();
    let lab = Lab::new("faults");
    let tc = faulty_tc(&lab);
    let base: Vec<C> = (1..=12)
        .map(|i| {
            let (b, cb) = match i % 3 {
                0 => (Some("20KiB"), Some("30KiB")),
                1 => (Some("9000B"), None),
                _ => (None, None),
            };
            C(i, 1000 + i, b, cb, LEAVES[i % 3])
        })
        .collect();
    let a = lab.write("a.toml", &tree(Some("16362B"), 1, &base));
    // Change 1..8 (rates, bursts, leaf kinds), remove 9..12, add 13..30; and without the
    // interface burst, so the root class loses the burst it had.
    let mut next: Vec<C> = (1..=8)
        .map(|i| {
            C(
                i,
                2000 + i,
                if i % 2 == 0 { Some("12KiB") } else { None },
                None,
                LEAVES[(i + 1) % 3],
            )
        })
        .collect();
    next.extend((13..=30).map(|i| {
        C(
            i,
            500 + i,
            if i % 4 == 0 { Some("15KiB") } else { None },
            None,
            LEAVES[i % 3],
        )
    }));
    let b = lab.write("b.toml", &tree(None, 1, &next));
    // The same change of classes, and a new default class: the root is rebuilt.
    let c = lab.write("c.toml", &tree(Some("20KiB"), 13, &next));

    let mut faults = 0;
    let mut bad = Vec::new();
    // Refused up front, nothing changed: a rebuild deletes the root qdisc and with it a
    // foreign root filter; and two foreign removals cannot both be the last command.
    for (p, says) in [
        (&c, "u32 filter prio 5 on 1:"),
        (&b, "one of several such removals"),
    ] {
        set_up(&lab, &a, true, true);
        let before = lab.dump("a0");
        // --force: the foreign objects are meant to be adopted; what is refused here is
        // the order (safety), not the adoption (tests/foreign.rs).
        let o = lab.qosctl(None, &["apply", "--force", p.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(stderr(&o).contains("refusing to apply"), "{}", text(&o));
        assert!(stderr(&o).contains(says), "{}", text(&o));
        assert_eq!(lab.dump("a0"), before, "a refused apply changed something");
    }

    for (name, p, ingress, root_filter) in [
        ("change-remove-add, foreign ingress", &b, true, false),
        ("change-remove-add, foreign root filter", &b, false, true),
        ("rebuild, foreign ingress", &c, true, false),
    ] {
        set_up(&lab, &a, ingress, root_filter);
        let n = batch_len(&lab, p);
        assert!(n >= 45, "{name}: only {n} commands");
        for k in 1..=n {
            let before = lab.dump("a0");
            let mark = lab.dir.path().join(format!("fault-{name}-{k}"));
            let o = lab
                .qosctl_cmd(Some(&tc), &["apply", "--force", p.to_str().unwrap()])
                .env("FAULT_AT", k.to_string())
                .env("FAULT_MARK", &mark)
                .output()
                .unwrap();
            faults += 1;
            let after = lab.dump("a0");
            let err = stderr(&o);
            let exact = after == before;
            let says = err.contains("restored: every interface reads back exactly");
            if o.status.code() != Some(1)
                || !exact
                || !says
                || !err.contains(&format!("line {k} of {n}"))
            {
                let gone: Vec<_> = before.difference(&after).collect();
                let new: Vec<_> = after.difference(&before).collect();
                bad.push(format!("{name} k={k}/{n}: exact={exact} says={says}\n{err}\ngone: {gone:#?}\nnew: {new:#?}"));
                set_up(&lab, &a, ingress, root_filter);
            }
        }
        eprintln!("{name}: {n} faults, {} not exact so far", bad.len());
        // And without a fault the plan applies and converges, foreign objects removed last.
        let o = lab.qosctl(None, &["apply", "--force", p.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", text(&o));
        assert!(lab.in_sync(p), "{name}");
    }
    assert!(
        bad.is_empty(),
        "{} of {faults} faults not restored exactly:\n{}",
        bad.len(),
        bad.join("\n\n")
    );
    eprintln!("{faults} faults injected, all restored exactly");
}
