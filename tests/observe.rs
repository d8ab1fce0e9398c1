//! Watching a shaper under load, on a real kernel: `show --interval`, `top` and `metrics`
//! against an iperf3 flow between two private namespaces through an htb class (root only).
//!
//! `top` runs inside tmux at 80 columns, the way a person over SSH sees it; metrics are
//! checked by Prometheus' own tools (`promtool check metrics`, the `prometheus_client`
//! parser).

mod common;
use common::traffic::{need, run, shaped_pair, QOSCTL};

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// iperf3's receiver rate, bits per second.
fn iperf3_rate(child: Child) -> f64 {
    let out = child.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 -J");
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap_or_else(|| panic!("no receiver rate in {v}"))
}

/// The measured rate (`rate_measured_bps`) of the class named `name` in `show --json`
/// output, bits per second.
fn measured_rate(json: &serde_json::Value, name: &str) -> f64 {
    fn find<'a>(v: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
        match v {
            serde_json::Value::Object(m) => {
                let named = m.get("name").and_then(|n| n.as_str()) == Some(name);
                if named && (m.contains_key("ceil") || m.contains_key("ceil_bps")) {
                    return Some(v);
                }
                m.values().find_map(|x| find(x, name))
            }
            serde_json::Value::Array(a) => a.iter().find_map(|x| find(x, name)),
            _ => None,
        }
    }
    let class = find(json, name).unwrap_or_else(|| panic!("no class {name} in {json}"));
    let stats = class.get("stats").unwrap_or(class);
    stats["rate_measured_bps"]
        .as_f64()
        .unwrap_or_else(|| panic!("no measured rate in {class}"))
}

#[test]
fn measured_rate_matches_iperf3() {
    let Some((pair, _dir, policy)) = shaped_pair("rate") else {
        return;
    };
    // Without --interval the class's "rate now" is the kernel estimator's: off for htb.
    let flow = pair.flow(8);
    std::thread::sleep(Duration::from_millis(2500));
    let json = run(pair
        .qosctl()
        .args(["show", "--json", "--interval", "2s", "-p"])
        .arg(&policy));
    let table = run(pair
        .qosctl()
        .args(["show", "--interval", "1s", "-p"])
        .arg(&policy));
    let iperf = iperf3_rate(flow);
    let measured = measured_rate(&serde_json::from_str(&json).unwrap(), "up/bulk");
    let err = (measured - iperf).abs() / iperf;
    eprintln!(
        "iperf3 {iperf:.0} bit/s, qosctl measured {measured:.0} bit/s ({:.2} %)",
        err * 100.0
    );
    assert!(
        (8e6..11e6).contains(&iperf),
        "the flow is not shaped to 10mbit: {iperf}"
    );
    assert!(err <= 0.05, "measured {measured} vs iperf3 {iperf}");
    let row = table
        .lines()
        .find(|l| l.contains("up/bulk") && l.contains("10mbit"))
        .unwrap_or_else(|| panic!("no bulk class row in\n{table}"));
    let rate_now = row.rsplit('│').nth(1).unwrap().trim();
    assert!(
        rate_now.ends_with("bit") && !rate_now.starts_with('0'),
        "rate now of bulk is {rate_now:?}:\n{table}"
    );
}

/// A tmux server of its own (`-L`), killed on drop.
struct Tmux(String);

impl Tmux {
    fn start(tag: &str, cmd: &str, width: u16) -> Tmux {
        need("tmux");
        let t = Tmux(format!("qx-{tag}-{}", std::process::id()));
        let w = width.to_string();
        run(Command::new("tmux").args([
            "-L",
            &t.0,
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            &w,
            "-y",
            "24",
            cmd,
        ]));
        t
    }
    fn capture(&self, escapes: bool) -> String {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.0, "capture-pane", "-p"]);
        if escapes {
            c.arg("-e");
        }
        run(&mut c)
    }
    fn wait_for(&self, what: &str, secs: u64) -> String {
        let until = Instant::now() + Duration::from_secs(secs);
        loop {
            let s = self.capture(false);
            if s.contains(what) || Instant::now() > until {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn top_fits_80_columns_in_tmux_and_quits_on_q() {
    let Some((pair, _dir, policy)) = shaped_pair("top") else {
        return;
    };
    let flow = pair.flow(8);
    let cmd = format!(
        "{QOSCTL} --netns {} top -p {}; echo \"top exited $?\"; sleep 60",
        pair.ns,
        policy.display()
    );
    let tmux = Tmux::start("top", &cmd, 80);
    let screen = tmux.wait_for("up/bulk", 6);
    assert!(screen.contains("%CEIL"), "no table:\n{screen}");
    for l in screen.lines() {
        assert!(l.chars().count() <= 80, "wider than 80: {l:?}\n{screen}");
    }
    // Busiest first: the first data row is a 10mbit object, bulk (or the tree it is in).
    let first = screen
        .lines()
        .skip_while(|l| !l.contains("HANDLE"))
        .nth(1)
        .unwrap_or_default()
        .to_string();
    assert!(first.contains("mbit"), "first row {first:?} in\n{screen}");
    let bulk_share: f64 = screen
        .lines()
        .find(|l| l.contains("up/bulk") && l.contains('%'))
        .and_then(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_suffix('%')?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no share of ceil for up/bulk:\n{screen}"));
    assert!(
        (85.0..=115.0).contains(&bulk_share),
        "bulk is at its ceil under the flow ({bulk_share} %):\n{screen}"
    );
    for col in ["DEV", "PKT/S", "BACKLOG"] {
        assert!(screen.contains(col), "{col} fits in 80 columns:\n{screen}");
    }
    let styled = tmux.capture(true);
    assert!(
        styled.contains("\x1b[1m"),
        "bold header on a terminal:\n{styled}"
    );

    run(Command::new("tmux").args(["-L", &tmux.0, "send-keys", "q"]));
    let after = tmux.wait_for("top exited", 3);
    assert!(after.contains("top exited 0"), "q did not quit:\n{after}");
    assert!(
        !after.contains("%CEIL"),
        "the alternate screen was left, the table is gone:\n{after}"
    );
    let _ = iperf3_rate(flow);
}

/// The pid of the qosctl process in the pane (the pane runs `sh -c`, qosctl its child).
fn pane_child(tmux: &Tmux) -> String {
    let shell = run(Command::new("tmux").args(["-L", &tmux.0, "display", "-p", "#{pane_pid}"]));
    let kids =
        run(Command::new(common::require("ps")).args(["-o", "pid=", "--ppid", shell.trim()]));
    kids.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn top_restores_the_terminal_on_ctrl_c_and_sigint() {
    let Some((pair, _dir, policy)) = shaped_pair("topsig") else {
        return;
    };
    for how in ["ctrl-c", "sigint"] {
        // After top: is the terminal cooked again (icanon, echo), and did top exit cleanly?
        let cmd = format!(
            "{QOSCTL} --netns {} top --interval 200ms -p {}; echo \"top exited $?\"; \
             stty -a | tr ' ' '\\n' | grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; \
             echo; sleep 60",
            pair.ns,
            policy.display()
        );
        let tmux = Tmux::start(&format!("sig-{how}"), &cmd, 80);
        let screen = tmux.wait_for("up/voice", 5);
        assert!(screen.contains("%CEIL"), "{how}: no table:\n{screen}");
        if how == "ctrl-c" {
            run(Command::new("tmux").args(["-L", &tmux.0, "send-keys", "C-c"]));
        } else {
            let pid = pane_child(&tmux);
            run(Command::new(common::require("kill")).args(["-INT", &pid]));
        }
        let after = tmux.wait_for("echo", 3);
        assert!(after.contains("top exited 0"), "{how}:\n{after}");
        assert!(
            after.contains("icanon echo") && !after.contains("%CEIL"),
            "{how}: terminal not restored:\n{after}"
        );
    }
}

#[test]
fn top_without_a_terminal_prints_count_snapshots_and_no_colour() {
    let Some((pair, _dir, policy)) = shaped_pair("topn") else {
        return;
    };
    let out = run(pair
        .qosctl()
        .args(["top", "--interval", "200ms", "--count", "2", "-p"])
        .arg(&policy)
        .env("COLUMNS", "80"));
    assert_eq!(out.matches("qosctl top:").count(), 2, "{out}");
    assert!(out.contains("up/voice") && !out.contains('\x1b'), "{out}");
    assert!(out.lines().all(|l| l.chars().count() <= 80), "{out}");
}

#[test]
fn show_is_bold_on_a_terminal_unless_no_color() {
    let Some((pair, _dir, policy)) = shaped_pair("color") else {
        return;
    };
    for (i, (env, bold)) in [("", true), ("NO_COLOR=1 ", false)].into_iter().enumerate() {
        let cmd = format!(
            "{env}{QOSCTL} --netns {} show -p {}; echo done; sleep 60",
            pair.ns,
            policy.display()
        );
        let tmux = Tmux::start(&format!("color{i}"), &cmd, 80);
        let plain = tmux.wait_for("done", 5);
        assert!(plain.contains("up/bulk"), "{plain}");
        assert!(plain.lines().all(|l| l.chars().count() <= 80), "{plain}");
        let styled = tmux.capture(true);
        assert_eq!(styled.contains("\x1b[1m"), bold, "{env:?}:\n{styled}");
    }
}

/// A Python with `prometheus_client`: the test venv that install-deps.sh makes, or python3.
fn python_with(module: &str) -> PathBuf {
    let venv = std::env::var_os("QOSCTL_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/qosctl-tests/venv"));
    [venv.join("bin/python"), PathBuf::from("python3")]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", &format!("import {module}")])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .unwrap_or_else(|| {
            panic!("python module {module} is missing: tests/install-deps.sh must install it")
        })
}

/// Scrapes `url` and parses it with prometheus_client; returns {"name{labels}": value}.
fn scrape(python: &Path, url: &str) -> serde_json::Value {
    let script = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
with urllib.request.urlopen(sys.argv[1]) as r:
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
    text = r.read().decode()
out = {}
for fam in text_string_to_metric_families(text):
    for s in fam.samples:
        out[s.name + json.dumps(s.labels, sort_keys=True)] = s.value
    out["type:" + fam.name] = fam.type
print(json.dumps(out))
"#;
    let out = run(Command::new(python).args(["-c", script, url]));
    serde_json::from_str(&out).unwrap()
}

#[test]
fn metrics_pass_promtool_and_counters_rise_under_traffic() {
    let Some((pair, _dir, policy)) = shaped_pair("prom") else {
        return;
    };
    let promtool = need("promtool");
    let python = python_with("prometheus_client");

    let text = run(pair.qosctl().args(["metrics", "-p"]).arg(&policy));
    let mut check = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let res = check.wait_with_output().unwrap();
    assert!(
        res.status.success() && res.stdout.is_empty() && res.stderr.is_empty(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );

    let mut server = pair
        .qosctl()
        .args(["metrics", "--listen", "127.0.0.1:0", "-p"])
        .arg(&policy)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = exporter_url(&mut server);
    let flow = pair.flow(4);
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    let a = scrape(&python, &url);
    let t1 = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let t2 = Instant::now();
    let b = scrape(&python, &url);
    // Each scrape happened somewhere inside its call: take the middles.
    let secs = ((t2 + (Instant::now() - t2) / 2) - (t0 + (t1 - t0) / 2)).as_secs_f64();
    let _ = iperf3_rate(flow);
    let (status, _) = http_get(&url.replace("/metrics", "/nothing"));
    let _ = server.kill();
    let _ = server.wait();

    assert_eq!(a["type:qosctl_class_bytes"], "counter", "{a}");
    assert_eq!(a["type:qosctl_qdisc_backlog_packets"], "gauge", "{a}");
    // The bulk class's handle is derived from its name; find it by its policy label.
    let bulk = |v: &serde_json::Value| -> f64 {
        v.as_object()
            .unwrap()
            .iter()
            .find(|(k, _)| {
                k.starts_with("qosctl_class_bytes_total{") && k.contains(r#""policy": "up/bulk""#)
            })
            .map(|(_, v)| v.as_f64().unwrap())
            .unwrap_or_else(|| panic!("no bytes of up/bulk in {v}"))
    };
    let rise = bulk(&b) - bulk(&a);
    let bits = rise * 8.0 / secs;
    eprintln!("bulk bytes rose by {rise} in {secs:.3} s between two scrapes: {bits:.0} bit/s");
    assert!(
        (8.5e6..11.5e6).contains(&bits),
        "the class is shaped to 10 Mbit/s; its counter rose {rise} bytes in {secs} s"
    );
    assert_eq!(status, 404);
}

/// The URL a `metrics --listen 127.0.0.1:0` child announces on its first line of stderr.
fn exporter_url(server: &mut Child) -> String {
    let mut line = String::new();
    BufReader::new(server.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

/// A plain HTTP GET of `url` (`http://host:port/path`): status code and body.
fn http_get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = resp
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[test]
fn a_failing_scrape_is_a_500_with_tcs_message() {
    // A tc that fails the way a vanished device does: no root or kernel needed.
    let dir = tempfile::tempdir().unwrap();
    let tc = dir.path().join("tc");
    std::fs::write(
        &tc,
        "#!/bin/sh\necho 'Cannot find device \"a0\"' >&2\nexit 1\n",
    )
    .unwrap();
    run(Command::new("chmod").arg("755").arg(&tc));
    let mut server = Command::new(QOSCTL)
        .arg("--tc")
        .arg(&tc)
        .args(["metrics", "--listen", "127.0.0.1:0", "a0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = exporter_url(&mut server);
    let (status, body) = http_get(&url);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("device \"a0\" does not exist"), "{body}");
}
