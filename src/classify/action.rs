//! The tc actions qosctl attaches to filters: `mirred` (the ingress redirect to an ifb),
//! `police` (drop above a rate), `connmark` / `ctinfo` (restore the conntrack mark before
//! the redirect, so that marks classify downloads too). Each renders its tc arguments and
//! is read back from `tc -j` and from the text form.
//!
//! This machine's kernel has mirred only; police, connmark and ctinfo are refused there
//! ("Failed to load TC action module") and are proven in the kernel lab (tests/klab/).
//! Their JSON carries no parameters (iproute2 prints police's rate, burst and mtu as text
//! only, `print_police` in tc/m_police.c): what is read back from JSON is the kind and the
//! control actions, the numbers come from the text form.

use std::fmt;

use serde::{Serialize, Serializer};

use super::matcher::{Dscp, Family};
use crate::tc::read::json::J;
use crate::tc::read::text;
use crate::units::{Rate, Size};

/// What an action does with a packet when it is done with it (tc's CONTROL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Go on with the next action of the filter.
    Pipe,
    /// Accept: classification ends successfully.
    Ok,
    Drop,
    /// The packet left (mirred redirect).
    Stolen,
    Continue,
    Reclassify,
}

impl Control {
    pub fn tc(self) -> &'static str {
        match self {
            Control::Pipe => "pipe",
            Control::Ok => "ok",
            Control::Drop => "drop",
            Control::Stolen => "stolen",
            Control::Continue => "continue",
            Control::Reclassify => "reclassify",
        }
    }
    pub fn parse(s: &str) -> Option<Control> {
        Some(match s {
            "pipe" => Control::Pipe,
            "ok" | "pass" => Control::Ok,
            "drop" | "shot" => Control::Drop,
            "stolen" => Control::Stolen,
            "continue" => Control::Continue,
            "reclassify" => Control::Reclassify,
            _ => return None,
        })
    }
}

/// `police rate R burst B mtu M conform-exceed EXCEED/CONFORM`.
#[derive(Debug, Clone, PartialEq)]
pub struct Police {
    pub rate: Rate,
    /// Bucket size in bytes. The kernel keeps it as time at `rate`, so the value read back
    /// differs slightly (compare with a tolerance, as htb bursts).
    pub burst: Size,
    /// Largest packet that can conform; `None` = tc's default (2 KiB: larger packets are
    /// dropped even below the rate, which is why OVS passes 65535).
    pub mtu: Option<Size>,
    pub exceed: Control,
    pub conform: Control,
}

impl Police {
    /// A policer alone on an ingress filter: above the rate drop, below it accept.
    pub fn drop_above(rate: Rate, burst: Size) -> Police {
        Police {
            rate,
            burst,
            mtu: Some(Size(65535)),
            exceed: Control::Drop,
            conform: Control::Ok,
        }
    }
}

/// Where `connmark`/`ctinfo` restore from: the conntrack entry's mark (`ctinfo cpmark
/// MASK` copies the masked mark; `connmark` copies all of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restore {
    Connmark,
    Ctinfo { mask: u32 },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `mirred egress redirect dev IFB` (or `mirror`).
    Mirred {
        redirect: bool,
        egress: bool,
        dev: String,
    },
    Police(Police),
    /// `connmark zone Z pipe` / `ctinfo cpmark MASK zone Z pipe`.
    RestoreMark {
        how: Restore,
        zone: u16,
    },
    /// `pedit ex munge ip dsfield set V retain 0xfc pipe` (IPv4) or `… ip6 traffic_class …`
    /// (IPv6): rewrites the six DSCP bits, keeps the two ECN bits (a class's `set_dscp`).
    SetDscp {
        family: Family,
        dscp: Dscp,
    },
    /// `csum iph`: recomputes the IPv4 header checksum after a rewrite. (IPv6 has none, and
    /// the traffic class is not in the TCP/UDP pseudo-header, so IPv6 needs no csum.)
    Csum,
    /// A kind qosctl does not write (gact, skbedit, …): shown, never kept.
    Other {
        kind: String,
    },
}

impl Action {
    /// The redirect qosctl puts on an interface's ingress.
    pub fn redirect_to(dev: &str) -> Action {
        Action::Mirred {
            redirect: true,
            egress: true,
            dev: dev.to_string(),
        }
    }

    /// The tc arguments, starting with `action`.
    pub fn tc_args(&self) -> String {
        match self {
            Action::Mirred {
                redirect,
                egress,
                dev,
            } => format!(
                "action mirred {} {} dev {dev}",
                if *egress { "egress" } else { "ingress" },
                if *redirect { "redirect" } else { "mirror" }
            ),
            Action::Police(p) => {
                let mut s = format!("action police rate {} burst {}", p.rate.tc(), p.burst.tc());
                if let Some(m) = p.mtu {
                    s.push_str(&format!(" mtu {}", m.tc()));
                }
                s.push_str(&format!(
                    " conform-exceed {}/{}",
                    p.exceed.tc(),
                    p.conform.tc()
                ));
                s
            }
            Action::RestoreMark { how, zone } => match how {
                Restore::Connmark => format!("action connmark zone {zone} pipe"),
                Restore::Ctinfo { mask } => {
                    format!("action ctinfo cpmark {mask:#x} zone {zone} pipe")
                }
            },
            Action::SetDscp { family, dscp } => {
                let field = match family {
                    Family::V4 => "ip dsfield",
                    Family::V6 => "ip6 traffic_class",
                };
                format!(
                    "action pedit ex munge {field} set {:#04x} retain 0xfc pipe",
                    dscp.value() << 2
                )
            }
            Action::Csum => "action csum iph".to_string(),
            Action::Other { kind } => format!("action {kind}"),
        }
    }
}

impl Serialize for Action {
    /// As `show` words it (`redirect to ifb-eth0`): the JSON of plans and of `show --json`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for Action {
    /// In the policy's words, for `show`: `redirect to ifb-eth0`, `police 1mbit burst 16KiB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Mirred {
                redirect: true,
                dev,
                ..
            } => write!(f, "redirect to {dev}"),
            Action::Mirred { dev, .. } => write!(f, "mirror to {dev}"),
            Action::Police(p) => write!(f, "police {} burst {}", p.rate, p.burst),
            Action::RestoreMark {
                how: Restore::Connmark,
                ..
            } => f.write_str("restore conntrack mark"),
            Action::RestoreMark {
                how: Restore::Ctinfo { mask },
                ..
            } => write!(f, "restore conntrack mark {mask:#x}"),
            Action::SetDscp { dscp, .. } => write!(f, "set dscp {dscp}"),
            Action::Csum => f.write_str("fix checksum"),
            Action::Other { kind } => write!(f, "action {kind}"),
        }
    }
}

/// Actions from the words [`Action::tc_args`] writes (`action mirred egress redirect dev
/// ifb0 action police …`): how a saved state (`show --json`, a confirm record) gives its
/// actions back. Words of a kind qosctl does not write are `Action::Other`.
pub fn from_tc_args(s: &str) -> Vec<Action> {
    let w: Vec<&str> = s.split_whitespace().collect();
    let mut out = Vec::new();
    for part in w.split(|x| *x == "action").filter(|p| !p.is_empty()) {
        out.push(args_action(part));
    }
    out
}

fn args_action(w: &[&str]) -> Action {
    let other = || Action::Other {
        kind: w.first().unwrap_or(&"?").to_string(),
    };
    match w {
        ["mirred", dir, how, "dev", dev, ..] => Action::Mirred {
            redirect: *how == "redirect",
            egress: *dir == "egress",
            dev: dev.to_string(),
        },
        ["police", ..] => {
            let (exceed, conform) = after(w, "conform-exceed")
                .and_then(|a| a.split_once('/'))
                .map(|(e, c)| (Control::parse(e), Control::parse(c)))
                .unwrap_or((None, None));
            Action::Police(Police {
                rate: after(w, "rate").and_then(text::rate).unwrap_or(Rate(0)),
                burst: after(w, "burst").and_then(text::size).unwrap_or(Size(0)),
                mtu: after(w, "mtu").and_then(text::size),
                exceed: exceed.unwrap_or(Control::Drop),
                conform: conform.unwrap_or(Control::Ok),
            })
        }
        ["connmark", ..] => Action::RestoreMark {
            how: Restore::Connmark,
            zone: after(w, "zone").and_then(|z| z.parse().ok()).unwrap_or(0),
        },
        ["ctinfo", ..] => Action::RestoreMark {
            how: Restore::Ctinfo {
                mask: after(w, "cpmark")
                    .and_then(text::hex)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(u32::MAX),
            },
            zone: after(w, "zone").and_then(|z| z.parse().ok()).unwrap_or(0),
        },
        ["pedit", "ex", "munge", fam, _, "set", v, ..] => {
            let family = if *fam == "ip6" {
                Family::V6
            } else {
                Family::V4
            };
            match text::hex(v).and_then(|v| Dscp::new((v >> 2) as u8)) {
                Some(dscp) => Action::SetDscp { family, dscp },
                None => other(),
            }
        }
        ["csum", "iph", ..] => Action::Csum,
        _ => other(),
    }
}

/// The `"actions"` array of a filter's JSON options.
pub fn from_json(actions: Option<&J>) -> Vec<Action> {
    let Some(list) = actions.and_then(J::as_array) else {
        return Vec::new();
    };
    list.iter().map(json_action).collect()
}

fn json_action(a: &J) -> Action {
    let kind = a.get("kind").and_then(J::as_str).unwrap_or("?");
    let controls: Vec<Control> = a
        .get_all("control_action")
        .filter_map(|c| c.get("type").and_then(J::as_str).and_then(Control::parse))
        .collect();
    match kind {
        "mirred" => Action::Mirred {
            redirect: a.get("mirred_action").and_then(J::as_str) == Some("redirect"),
            egress: a.get("direction").and_then(J::as_str) != Some("ingress"),
            dev: a
                .get("to_dev")
                .and_then(J::as_str)
                .unwrap_or_default()
                .to_string(),
        },
        // Rate, burst and mtu are text only; 0 marks "not read" (compare through text).
        "police" => Action::Police(Police {
            rate: Rate(0),
            burst: Size(0),
            mtu: None,
            exceed: controls.first().copied().unwrap_or(Control::Drop),
            conform: controls.get(1).copied().unwrap_or(Control::Ok),
        }),
        "connmark" => Action::RestoreMark {
            how: Restore::Connmark,
            zone: zone(a),
        },
        "ctinfo" => Action::RestoreMark {
            how: Restore::Ctinfo {
                mask: a
                    .get("cpmark")
                    .and_then(J::as_hex)
                    .and_then(|v| u32::try_from(v).ok())
                    .unwrap_or(u32::MAX),
            },
            zone: zone(a),
        },
        "pedit" => {
            let keys: Vec<(Option<String>, i64, u32, u32)> = a
                .get("keys")
                .and_then(J::as_array)
                .unwrap_or(&[])
                .iter()
                .map(|k| {
                    let hex = |n: &str| {
                        k.get(n)
                            .and_then(J::as_hex)
                            .and_then(|v| u32::try_from(v).ok())
                            .unwrap_or(0)
                    };
                    (
                        k.get("htype").and_then(J::as_str).map(str::to_string),
                        k.get("offset").and_then(J::as_i64).unwrap_or(-1),
                        hex("val"),
                        hex("mask"),
                    )
                })
                .collect();
            pedit_dscp(&keys).unwrap_or(Action::Other {
                kind: "pedit".into(),
            })
        }
        "csum" => match a.get("csum").and_then(J::as_str) {
            Some("iph") | None => Action::Csum,
            Some(_) => Action::Other {
                kind: "csum".into(),
            },
        },
        other => Action::Other {
            kind: other.to_string(),
        },
    }
}

/// A pedit that rewrites exactly the six DSCP bits (one key at offset 0: IPv4 `ex munge ip
/// dsfield … retain 0xfc`, changed bits `00fc0000`; IPv6 `ex munge ip6 traffic_class …`,
/// changed bits `0fc00000`); any other pedit is not one qosctl writes.
fn pedit_dscp(keys: &[(Option<String>, i64, u32, u32)]) -> Option<Action> {
    let [(htype, 0, val, mask)] = keys else {
        return None;
    };
    let family = match (htype.as_deref(), !mask) {
        (None | Some("ipv4") | Some("network"), 0x00fc_0000) => Family::V4,
        (None | Some("ipv6") | Some("network"), 0x0fc0_0000) => Family::V6,
        _ => return None,
    };
    let shift = if family == Family::V4 { 18 } else { 22 };
    let dscp = Dscp::new(((val & !mask) >> shift) as u8)?;
    Some(Action::SetDscp { family, dscp })
}

fn zone(a: &J) -> u16 {
    a.get("zone")
        .and_then(J::as_u64)
        .and_then(|z| u16::try_from(z).ok())
        .unwrap_or(0)
}

/// Action lines of the text form (continuation lines of a filter, trimmed):
/// `action order 1: mirred (Egress Redirect to device ifb0) stolen`,
/// `action order 1:  police 0x1 rate 1Mbit burst 16Kb mtu 2Kb action drop/pipe overhead 0b`,
/// `action order 1: connmark zone 0 pipe`, `action order 1: ctinfo zone 0 pipe` with
/// ` index 1 ref 1 bind 1 cpmark 0x000000ff` on the next line.
pub fn from_text(lines: &[&str]) -> Vec<Action> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(rest) = l.strip_prefix("action order ") else {
            continue;
        };
        let body = rest.split_once(':').map(|(_, b)| b.trim()).unwrap_or("");
        let w: Vec<&str> = body.split_whitespace().collect();
        let next = lines.get(i + 1).copied().unwrap_or("");
        let action = match w.first() {
            Some(&"pedit") => text_pedit(&lines[i + 1..]),
            _ => text_action(&w, next),
        };
        out.push(action);
    }
    out
}

/// The key lines of a pedit (`key #0  at ipv4+0: val 00b80000 mask ff03ffff`, or `at 0:`
/// for the legacy header type), up to the next action.
fn text_pedit(rest: &[&str]) -> Action {
    let mut keys = Vec::new();
    for l in rest.iter().take_while(|l| !l.starts_with("action order ")) {
        let w: Vec<&str> = l.split_whitespace().collect();
        let Some(at) = after(&w, "at") else { continue };
        if !l.starts_with("key #") {
            continue;
        }
        let at = at.trim_end_matches(':');
        let (htype, off) = match at.split_once('+') {
            Some((h, o)) => (Some(h.to_string()), o),
            None => (None, at),
        };
        let hex = |k: &str| after(&w, k).and_then(|v| u32::from_str_radix(v, 16).ok());
        let (Some(val), Some(mask), Ok(off)) =
            (hex("val").or(hex("add")), hex("mask"), off.parse())
        else {
            continue;
        };
        keys.push((htype, off, val, mask));
    }
    pedit_dscp(&keys).unwrap_or(Action::Other {
        kind: "pedit".into(),
    })
}

fn after<'a>(t: &[&'a str], k: &str) -> Option<&'a str> {
    t.iter()
        .position(|x| *x == k)
        .and_then(|i| t.get(i + 1))
        .copied()
}

fn text_action(w: &[&str], next: &str) -> Action {
    match w.first().copied() {
        Some("mirred") => {
            let words = w.join(" ");
            Action::Mirred {
                redirect: words.contains("Redirect"),
                egress: !words.contains("(Ingress"),
                dev: after(w, "device")
                    .map(|d| d.trim_end_matches(')').to_string())
                    .unwrap_or_default(),
            }
        }
        Some("police") => {
            let (exceed, conform) = after(w, "action")
                .and_then(|a| a.split_once('/').or(Some((a, "ok"))))
                .map(|(e, c)| (Control::parse(e), Control::parse(c)))
                .unwrap_or((None, None));
            Action::Police(Police {
                rate: after(w, "rate").and_then(text::rate).unwrap_or(Rate(0)),
                burst: after(w, "burst").and_then(text::size).unwrap_or(Size(0)),
                mtu: after(w, "mtu").and_then(text::size),
                exceed: exceed.unwrap_or(Control::Drop),
                conform: conform.unwrap_or(Control::Ok),
            })
        }
        Some("csum") if w.get(1) == Some(&"(iph)") => Action::Csum,
        Some(k @ ("connmark" | "ctinfo")) => {
            let zone = after(w, "zone").and_then(|z| z.parse().ok()).unwrap_or(0);
            let how = if k == "connmark" {
                Restore::Connmark
            } else {
                let n: Vec<&str> = next.split_whitespace().collect();
                let mask = after(&n, "cpmark")
                    .and_then(|m| u32::from_str_radix(m.trim_start_matches("0x"), 16).ok())
                    .unwrap_or(u32::MAX);
                Restore::Ctinfo { mask }
            };
            Action::RestoreMark { how, zone }
        }
        Some(k) => Action::Other {
            kind: k.to_string(),
        },
        None => Action::Other { kind: "?".into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        assert_eq!(
            Action::redirect_to("ifb-eth0").tc_args(),
            "action mirred egress redirect dev ifb-eth0"
        );
        let p = Police::drop_above(Rate(3_000_000), Size(37_500));
        assert_eq!(
            Action::Police(p.clone()).tc_args(),
            "action police rate 3000000bit burst 37500 mtu 65535 conform-exceed drop/ok"
        );
        let piped = Police {
            conform: Control::Pipe,
            mtu: None,
            ..p
        };
        assert_eq!(
            Action::Police(piped).tc_args(),
            "action police rate 3000000bit burst 37500 conform-exceed drop/pipe"
        );
        assert_eq!(
            Action::RestoreMark {
                how: Restore::Ctinfo { mask: 0xff },
                zone: 0
            }
            .tc_args(),
            "action ctinfo cpmark 0xff zone 0 pipe"
        );
        assert_eq!(
            Action::RestoreMark {
                how: Restore::Connmark,
                zone: 3
            }
            .tc_args(),
            "action connmark zone 3 pipe"
        );
    }

    /// The shapes of iproute2's print_pedit and print_csum (m_pedit.c, m_csum.c) for the
    /// two pedits qosctl writes, JSON and text.
    #[test]
    fn pedit_dscp_and_csum_read_back() {
        let ef: Dscp = "EF".parse().unwrap();
        let json = r#"[{"order":1,"kind":"pedit","control_action":{"type":"pipe"},"nkeys":1,"index":1,"ref":1,"bind":1,"keys":[{"htype":"ipv4","offset":0,"cmd":"set","val":"b80000","mask":"ff03ffff"}]},{"order":2,"kind":"csum","csum":"iph","control_action":{"type":"pass"},"index":1,"ref":1,"bind":1},{"order":1,"kind":"pedit","keys":[{"htype":"ipv6","offset":0,"cmd":"set","val":"b800000","mask":"f03fffff"}]},{"order":1,"kind":"pedit","keys":[{"htype":"ipv4","offset":8,"cmd":"set","val":"1","mask":"ffffff00"}]}]"#;
        let v = crate::tc::read::json::parse(json).unwrap();
        assert_eq!(
            from_json(Some(&v)),
            vec![
                Action::SetDscp {
                    family: Family::V4,
                    dscp: ef
                },
                Action::Csum,
                Action::SetDscp {
                    family: Family::V6,
                    dscp: ef
                },
                Action::Other {
                    kind: "pedit".into()
                },
            ]
        );
        let lines = [
            "action order 1:  pedit action pipe keys 1",
            "index 1 ref 1 bind 1",
            "key #0  at ipv4+0: val 00b80000 mask ff03ffff",
            "action order 2: csum (iph) action pass",
            "index 1 ref 1 bind 1",
            "action order 3:  pedit action pipe keys 1",
            "index 2 ref 1 bind 1",
            "key #0  at ipv6+0: val 0b800000 mask f03fffff",
        ];
        assert_eq!(
            from_text(&lines),
            vec![
                Action::SetDscp {
                    family: Family::V4,
                    dscp: ef
                },
                Action::Csum,
                Action::SetDscp {
                    family: Family::V6,
                    dscp: ef
                },
            ]
        );
    }

    #[test]
    fn tc_args_read_back() {
        let all = vec![
            Action::RestoreMark {
                how: Restore::Ctinfo { mask: 0xff },
                zone: 2,
            },
            Action::RestoreMark {
                how: Restore::Connmark,
                zone: 0,
            },
            Action::Police(Police::drop_above(Rate(3_000_000), Size(37_500))),
            Action::redirect_to("ifb-eth0"),
            Action::SetDscp {
                family: Family::V6,
                dscp: "AF41".parse().unwrap(),
            },
            Action::SetDscp {
                family: Family::V4,
                dscp: "EF".parse().unwrap(),
            },
            Action::Csum,
        ];
        let args: Vec<String> = all.iter().map(Action::tc_args).collect();
        assert_eq!(from_tc_args(&args.join(" ")), all);
        assert_eq!(
            all[5].tc_args(),
            "action pedit ex munge ip dsfield set 0xb8 retain 0xfc pipe"
        );
        assert_eq!(
            all[4].tc_args(),
            "action pedit ex munge ip6 traffic_class set 0x88 retain 0xfc pipe"
        );
    }

    #[test]
    fn text_forms_of_print_police_mirred_ctinfo() {
        // Line shapes of iproute2's print_police / print_mirred / print_ctinfo.
        let lines = [
            "action order 1:  police 0x1 rate 1Mbit burst 16Kb mtu 2Kb action drop/pipe overhead 0b",
            "ref 1 bind 1",
            "action order 2: mirred (Egress Redirect to device ifb0) stolen",
            "index 1 ref 1 bind 1",
            "action order 3: ctinfo zone 0 pipe",
            "index 1 ref 1 bind 1 cpmark 0x000000ff",
        ];
        let a = from_text(&lines);
        assert_eq!(
            a,
            vec![
                Action::Police(Police {
                    rate: Rate(1_000_000),
                    burst: Size(16 * 1024),
                    mtu: Some(Size(2048)),
                    exceed: Control::Drop,
                    conform: Control::Pipe,
                }),
                Action::redirect_to("ifb0"),
                Action::RestoreMark {
                    how: Restore::Ctinfo { mask: 0xff },
                    zone: 0
                },
            ]
        );
        assert_eq!(a[1].to_string(), "redirect to ifb0");
    }

    #[test]
    fn json_of_the_kernel_lab_police_and_mirred() {
        // tests/fixtures/tc/kernel-lab-*/filter-veth0-ingress-s.json: flower + police + mirred.
        let out = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/tc/kernel-lab-6.1.0-56-amd64-iproute2-6.15.0/filter-veth0-ingress-s.json"
        ))
        .unwrap();
        let v = crate::tc::read::json::parse(&out).unwrap();
        let opts = v.as_array().unwrap()[1].get("options").unwrap();
        let a = from_json(opts.get("actions"));
        assert_eq!(a.len(), 2);
        let Action::Police(p) = &a[0] else {
            panic!("{a:?}")
        };
        assert_eq!((p.exceed, p.conform), (Control::Drop, Control::Pipe));
        assert_eq!(a[1], Action::redirect_to("ifb0"));
    }
}
