//! Values the shell completions offer, computed when the user presses Tab: the network
//! namespaces (`ip netns list`) for `--netns`, and the interfaces (`ip -o link show`, in
//! the namespace given by `--netns` earlier on the line) for device arguments.
//!
//! The shells call `qosctl` itself to complete (clap_complete's dynamic engine, see
//! `main.rs` and the scripts in completions/), so the lists are always current. Nothing
//! here may fail loudly: without `ip`, there is simply nothing to offer.

use clap_complete::engine::CompletionCandidate;
use std::process::{Command, Stdio};

fn ip(args: &[&str]) -> String {
    Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `ip netns list` prints `name (id: 3)` or just `name`, one a line.
pub fn parse_netns(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `ip -o link show` prints `2: eth0@if3: <BROADCAST,...> ...`, one device a line.
pub fn parse_links(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| !n.is_empty())
        .collect()
}

/// The value of `--netns` on the command line being completed, if any. While completing,
/// the process's arguments are the words the user typed (after `--`).
fn netns_on_line() -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    let words = args.iter().skip_while(|a| *a != "--").skip(1);
    let mut prev_was_flag = false;
    let mut found = None;
    for w in words {
        if prev_was_flag {
            found = Some(w.clone());
        }
        prev_was_flag = w == "--netns";
        if let Some(v) = w.strip_prefix("--netns=") {
            found = Some(v.to_string());
        }
    }
    found.filter(|n| !n.is_empty())
}

pub fn netns() -> Vec<CompletionCandidate> {
    parse_netns(&ip(&["netns", "list"]))
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

pub fn devices() -> Vec<CompletionCandidate> {
    let out = match netns_on_line() {
        Some(ns) => ip(&["-n", &ns, "-o", "link", "show"]),
        None => ip(&["-o", "link", "show"]),
    };
    parse_links(&out)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_from_ip() {
        assert_eq!(parse_netns("blue (id: 0)\nred\n"), ["blue", "red"]);
        let links = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue\n\
                     7: a0@b0: <BROADCAST,MULTICAST> mtu 1500 qdisc htb\n";
        assert_eq!(parse_links(links), ["lo", "a0"]);
    }
}
