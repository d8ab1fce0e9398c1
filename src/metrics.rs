//! `qosctl metrics`: the counters of every qdisc and class in the Prometheus text
//! exposition format (version 0.0.4), printed once for node_exporter's textfile collector
//! or served over HTTP with `--listen` for a scraper.
//!
//! The series are raw counters (`_total`), not rates: Prometheus computes rates itself
//! (`rate(qosctl_class_bytes_total[1m]) * 8` is bits per second), and counters survive a
//! missed scrape where a rate would not. The configured rate and ceil of each class are
//! gauges beside them, so a share of ceil is one division in PromQL.

use anyhow::Result;
use std::fmt::Write as _;
use std::io::Write as _;

use crate::cli::{Global, MetricsArgs};
use crate::model::{Class, DeviceState, Handle, Parent, Qdisc, Stats};
use crate::show::{name_all, target_devices};
use crate::tc::read::read_device;
use crate::tc::Tc;
use crate::Exit;

/// The content type of the text format, as Prometheus asks for it.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn run(global: &Global, args: &MetricsArgs) -> Result<Exit> {
    let tc = Tc::locate(global)?;
    let desired = match &args.policy {
        Some(p) => Some(crate::policy::load(p)?),
        None => None,
    };
    let scrape = || -> Result<String> {
        let devices = target_devices(&tc, &args.devices, desired.as_ref())?;
        let mut states = devices
            .iter()
            .map(|d| read_device(&tc, d))
            .collect::<Result<Vec<_>>>()?;
        name_all(&mut states, desired.as_ref());
        Ok(render(&states, desired.is_some()))
    };
    match &args.listen {
        None => {
            let text = scrape()?;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(Exit::Ok)
        }
        Some(addr) => serve(addr, scrape),
    }
}

/// Answers `GET /metrics` with a fresh scrape until killed. A failed read of tc is a 500
/// carrying the error, so the scraper marks the target down and says why.
fn serve(addr: &str, scrape: impl Fn() -> Result<String>) -> Result<Exit> {
    let server = tiny_http::Server::http(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let local = server
        .server_addr()
        .to_ip()
        .map_or(addr.to_string(), |a| a.to_string());
    eprintln!("qosctl metrics: serving http://{local}/metrics");
    let header = |v: &str| {
        tiny_http::Header::from_bytes(&b"Content-Type"[..], v.as_bytes())
            .expect("a static header is valid")
    };
    for req in server.incoming_requests() {
        let path = req.url().split('?').next().unwrap_or("");
        let resp = match (req.method(), path) {
            (tiny_http::Method::Get | tiny_http::Method::Head, "/metrics") => match scrape() {
                Ok(text) => {
                    tiny_http::Response::from_string(text).with_header(header(CONTENT_TYPE))
                }
                Err(e) => tiny_http::Response::from_string(format!("error: {e:#}\n"))
                    .with_status_code(500),
            },
            (_, "/") => tiny_http::Response::from_string("qosctl metrics exporter: see /metrics\n"),
            _ => {
                tiny_http::Response::from_string("not found: see /metrics\n").with_status_code(404)
            }
        };
        // A scraper that hung up is its problem, not a reason to stop serving.
        let _ = req.respond(resp);
    }
    Ok(Exit::Ok)
}

/// One metric family: name suffix, counter (else gauge), help (`OBJ` is "qdisc" or
/// "class"), and the value it reads.
type Family = (&'static str, bool, &'static str, fn(&Stats) -> u64);

#[rustfmt::skip]
const FAMILIES: [Family; 7] = [
    ("bytes_total", true, "Bytes sent by the OBJ.", |s| s.bytes),
    ("packets_total", true, "Packets sent by the OBJ.", |s| s.packets),
    ("drops_total", true, "Packets the OBJ dropped.", |s| s.drops),
    ("overlimits_total", true, "Times the OBJ held a packet back for being over its limit.", |s| s.overlimits),
    ("requeues_total", true, "Packets the OBJ requeued because the device was busy.", |s| s.requeues),
    ("backlog_bytes", false, "Bytes queued in the OBJ now.", |s| s.backlog_bytes),
    ("backlog_packets", false, "Packets queued in the OBJ now.", |s| s.backlog_packets),
];

/// Labels of one series, in a fixed order.
type Labels = Vec<(&'static str, String)>;

fn qdisc_labels(dev: &str, q: &Qdisc, with_policy: bool) -> Labels {
    let parent = match q.parent {
        Parent::Root => "root".to_string(),
        Parent::Ingress => "ingress".to_string(),
        Parent::Class(h) => h.to_string(),
    };
    let mut l = vec![
        ("device", dev.to_string()),
        ("handle", q.handle.to_string()),
        ("parent", parent),
        ("kind", q.kind.kind_name().to_string()),
    ];
    if with_policy {
        l.push(("policy", q.name.clone().unwrap_or_default()));
    }
    l
}

fn class_labels(dev: &str, c: &Class, with_policy: bool) -> Labels {
    // A class straight under the root qdisc has that qdisc (`1:`) as its parent.
    let parent = c.parent.unwrap_or(Handle::qdisc(c.handle.major));
    let mut l = vec![
        ("device", dev.to_string()),
        ("handle", c.handle.to_string()),
        ("parent", parent.to_string()),
        ("kind", "htb".to_string()),
    ];
    if with_policy {
        l.push(("policy", c.name.clone().unwrap_or_default()));
    }
    l
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

fn series(out: &mut String, name: &str, labels: &Labels, value: u64) {
    let l: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    let _ = writeln!(out, "{name}{{{}}} {value}", l.join(","));
}

fn family(out: &mut String, name: &str, help: &str, counter: bool) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(
        out,
        "# TYPE {name} {}",
        if counter { "counter" } else { "gauge" }
    );
}

/// The whole exposition for `states`; `with_policy` adds the `policy` label.
pub fn render(states: &[DeviceState], with_policy: bool) -> String {
    let mut out = String::new();
    let qdiscs: Vec<(Labels, &Stats)> = states
        .iter()
        .flat_map(|st| {
            st.qdiscs.iter().filter_map(move |q| {
                Some((qdisc_labels(&st.device, q, with_policy), q.stats.as_ref()?))
            })
        })
        .collect();
    let classes: Vec<(Labels, &Class)> = states
        .iter()
        .flat_map(|st| {
            st.classes
                .iter()
                .map(move |c| (class_labels(&st.device, c, with_policy), c))
        })
        .collect();
    for (what, objects) in [
        ("qdisc", &qdiscs),
        (
            "class",
            &classes
                .iter()
                .filter_map(|(l, c)| Some((l.clone(), c.stats.as_ref()?)))
                .collect(),
        ),
    ] {
        for (suffix, counter, help, value) in &FAMILIES {
            let name = format!("qosctl_{what}_{suffix}");
            family(&mut out, &name, &help.replace("OBJ", what), *counter);
            for (labels, stats) in objects {
                series(&mut out, &name, labels, value(stats));
            }
        }
    }
    for (suffix, help, value) in [
        (
            "configured_rate_bytes_per_second",
            "The rate guaranteed to the class (htb rate)",
            (|c: &Class| c.rate.0 / 8) as fn(&Class) -> u64,
        ),
        (
            "configured_ceil_bytes_per_second",
            "The most the class may send, borrowing included (htb ceil)",
            |c: &Class| c.ceil.0 / 8,
        ),
    ] {
        let name = format!("qosctl_class_{suffix}");
        family(&mut out, &name, help, false);
        for (labels, c) in &classes {
            series(&mut out, &name, labels, value(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QdiscKind;
    use crate::units::Rate;

    #[test]
    fn series_carry_labels_and_escaped_values() {
        let st = DeviceState {
            device: "a0".into(),
            qdiscs: vec![Qdisc {
                handle: Handle::qdisc(1),
                parent: Parent::Root,
                kind: QdiscKind::Pfifo { limit: None },
                name: Some("we\"ird\\".into()),
                stats: Some(Stats {
                    bytes: 42,
                    backlog_packets: 3,
                    ..Stats::default()
                }),
            }],
            classes: vec![Class {
                stats: Some(Stats::default()),
                ..Class::new(Handle::new(1, 0x10), None, Rate(8_000), Rate(16_000))
            }],
            ..DeviceState::default()
        };
        let bare = render(std::slice::from_ref(&st), false);
        assert!(
            bare.contains("qosctl_qdisc_bytes_total{device=\"a0\",handle=\"1:\",parent=\"root\",kind=\"pfifo\"} 42\n"),
            "without --policy there is no policy label:\n{bare}"
        );
        let text = render(&[st], true);
        assert!(text.contains(
            "qosctl_qdisc_bytes_total{device=\"a0\",handle=\"1:\",parent=\"root\",kind=\"pfifo\",policy=\"we\\\"ird\\\\\"} 42\n"
        ), "{text}");
        assert!(text.contains("# TYPE qosctl_qdisc_backlog_packets gauge\n"));
        assert!(text.contains("# TYPE qosctl_class_drops_total counter\n"));
        assert!(text.contains(
            "qosctl_class_configured_ceil_bytes_per_second{device=\"a0\",handle=\"1:10\",parent=\"1:\",kind=\"htb\",policy=\"\"} 2000\n"
        ), "{text}");
    }
}
