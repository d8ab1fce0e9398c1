//! `qosctl reset`: remove the root and ingress qdiscs qosctl manages, returning the
//! devices to the kernel default. A device already at the default is fine.

use anyhow::Result;
use std::io::Write;

use crate::cli::{Global, ResetArgs};
use crate::escape::escape;
use crate::model::{DeviceState, Parent};
use crate::tc::{read, render, Tc};
use crate::Exit;

pub fn run(global: &Global, args: &ResetArgs) -> Result<Exit> {
    let devices: Vec<String> = match &args.policy {
        // An ingress tree's ifb is not reset as a device: it is deleted below, its tree
        // with it.
        Some(p) => crate::policy::load(p)?
            .devices
            .into_iter()
            .filter(|d| d.ifb_for.is_none())
            .map(|d| d.state.device)
            .collect(),
        None => args.devices.clone(),
    };
    // A name tc -batch would read as another device stops the reset before anything.
    for d in &devices {
        crate::tc::check_device_name(d)?;
    }
    let tc = Tc::locate(global)?;
    // A device that does not exist is reported (exit 1), the others are still reset:
    // resetting is what one does to get out of trouble, and one unplugged device must not
    // stand in the way.
    let mut live: Vec<DeviceState> = Vec::new();
    let mut missing = Vec::new();
    for d in &devices {
        match read::read_config(&tc, d) {
            Ok(l) => live.push(l),
            Err(e) if format!("{e:#}").contains("does not exist") => missing.push(format!("{e:#}")),
            Err(e) => return Err(e.context(format!("interface {}", escape(d)))),
        }
    }
    let mut lines = Vec::new();
    let mut report = Vec::new();
    for l in &live {
        let ours: Vec<_> = l
            .qdiscs
            .iter()
            .filter(|q| matches!(q.parent, Parent::Root | Parent::Ingress))
            .collect();
        if ours.is_empty() {
            report.push(format!(
                "{}: already at the kernel default",
                escape(&l.device)
            ));
            continue;
        }
        for q in ours {
            lines.push(render::qdisc_del(&l.device, q));
        }
        report.push(format!(
            "{}: removed {} qdisc{}, {} class{}, {} filter{}",
            escape(&l.device),
            l.qdiscs.len(),
            if l.qdiscs.len() == 1 { "" } else { "s" },
            l.classes.len(),
            if l.classes.len() == 1 { "" } else { "es" },
            l.filters.len(),
            if l.filters.len() == 1 { "" } else { "s" },
        ));
    }
    // The ifbs qosctl made for these devices (their alias says so); no other is touched.
    let ip = crate::link::Ip::locate(global.netns.clone()).ok();
    let ifbs: Vec<crate::link::Ifb> = match &ip {
        Some(ip) => ip
            .owned_ifbs()?
            .into_iter()
            .filter(|i| i.owner.as_ref().is_some_and(|o| devices.contains(o)))
            .collect(),
        None => Vec::new(),
    };
    if !lines.is_empty() || !ifbs.is_empty() {
        crate::apply::require_net_admin()?;
        let _lock = crate::apply::lock(global)?;
        crate::confirm::refuse_if_pending(global)?;
        tc.batch(&lines).map_err(anyhow::Error::new)?;
        if let Some(ip) = &ip {
            let names: Vec<String> = ifbs.iter().map(|i| i.name.clone()).collect();
            ip.delete_ifbs(&names)?;
            for i in &ifbs {
                report.push(format!(
                    "{}: deleted (the ifb qosctl created for the ingress of {})",
                    escape(&i.name),
                    escape(i.owner.as_deref().unwrap_or_default())
                ));
            }
        }
    }
    let mut out = std::io::stdout().lock();
    for r in report {
        writeln!(out, "{r}")?;
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "{} of {} device{} not reset: {}",
            missing.len(),
            devices.len(),
            if devices.len() == 1 { "" } else { "s" },
            missing.join("; ")
        );
    }
    Ok(Exit::Ok)
}
