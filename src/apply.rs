//! `qosctl apply`: validate, read, plan, run one `tc -batch`, read back and verify.
//! On failure, restore every device of the plan to the state read before the apply.

use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Write;
use std::time::Instant;

use crate::cli::{ApplyArgs, Global};
use crate::link::Links;
use crate::model::{Desired, DeviceState, Parent};
use crate::plan::{self, DevicePlan, LinkChange, Obj, Op, Plan};
use crate::rollback;
use crate::tc::{read, Tc};
use crate::Exit;

pub fn run(global: &Global, args: &ApplyArgs) -> Result<Exit> {
    // The lock and the device reads start before the policy is parsed, when that is
    // plainly possible (src/prefetch.rs): a no-op re-apply then waits for one, not both.
    let early = (!args.dry_run && args.state.is_none())
        .then(|| crate::prefetch::Prefetch::start(global, &args.policy))
        .flatten();
    let (desired, warnings) = crate::policy::load_with_warnings(&args.policy)?;
    eprint!("{warnings}");
    let mut out = std::io::stdout().lock();
    apply_prefetched(global, args, desired, &mut out, early).map(|a| a.exit)
}

/// What an apply did, for callers that word their own report (`watch`).
#[derive(Debug, Clone, Copy)]
pub struct Applied {
    pub exit: Exit,
    /// tc commands run (0 when in sync).
    pub commands: usize,
}

impl Applied {
    fn new(exit: Exit, commands: usize) -> Applied {
        Applied { exit, commands }
    }
}

/// The apply of an already loaded policy, printing the plan and result to `out`: `run`
/// for the command line, and the library entry `watch` calls on every re-converge.
pub fn apply_loaded(
    global: &Global,
    args: &ApplyArgs,
    desired: Desired,
    out: &mut dyn Write,
) -> Result<Applied> {
    apply_prefetched(global, args, desired, out, None)
}

/// [`apply_loaded`] with the lock and reads [`crate::prefetch`] may have started.
fn apply_prefetched(
    global: &Global,
    args: &ApplyArgs,
    desired: Desired,
    mut out: &mut dyn Write,
    early: Option<crate::prefetch::Prefetch>,
) -> Result<Applied> {
    if args.dry_run {
        return dry_run(global, args, &desired, out);
    }

    if args.state.is_some() {
        bail!("--state plans against saved state and changes nothing: add --dry-run");
    }
    let tc = Tc::locate(global)?;
    require_net_admin()?;
    // Held until we return: two applies never interleave their read-plan-write.
    let (lock, early, listing) = match early {
        Some(p) => (p.lock, Some(p.reads), Some(p.ifbs)),
        None => (lock(global)?, None, None),
    };
    crate::confirm::refuse_if_pending(global)?;
    // From here a Ctrl-C or kill (TERM/HUP) stops tc and restores instead of leaving a
    // half-applied tree.
    crate::child::catch_signals()?;
    // The ifbs: which exist, which are missing, which are left over; a missing `ip`, or
    // an ifb name taken by a device qosctl did not make, stops here.
    let listing = listing.unwrap_or_else(|| crate::link::Listing::start(tc.netns.as_deref()));
    let links = Links::judge(listing, &desired)?;
    let before = read_before(&tc, &desired, early).map_err(interrupted_before)?;
    let mut plan = make_plan(&desired, &before);
    with_links(&mut plan, &links);

    if plan.is_empty() {
        return print_in_sync(&mut out, args, &plan);
    }

    // Refused before anything changed when the plan would replace what qosctl did not
    // create (src/foreign.rs), unless --force adopts it.
    let found = crate::foreign::find(&desired, &before, &plan);
    if !found.is_empty() && !args.force {
        print_plan(&mut out, args.json, &plan, &plan.commands(), &found, false)?;
        return Err(crate::foreign::refusal(&found));
    }

    // Refused here, before anything changed, if a failure could lose what qosctl cannot
    // re-create; and the exact pre-apply dump, which the restore must reproduce.
    let commands = rollback::batch_order(&plan, &before, tc.netns.as_deref())?;
    // The ifbs the tree needs come first: a kernel without ifb stops the apply here,
    // before any tc command. They are not in the snapshot: a failed apply deletes them.
    let created = links.create_missing()?;
    let snap = snapshot_after_links(&tc, &desired, &before, &links, &created)?;

    // A plan of class changes only reads those classes back in the same tc process,
    // after the changes (see changed_classes).
    let reread = changed_classes(&plan);
    let batch = with_rereads(&commands, reread.as_deref());
    if let Some(s) = crate::child::pending() {
        bail!(
            "interrupted by {} before anything was changed",
            crate::child::signal_name(s)
        );
    }
    let started = Instant::now();
    let printed = tc.batch_with(&["-d"], &batch);
    if let Err(e) = &printed {
        let restore = restore(&tc.uninterruptible(), &desired, &before, &snap);
        let undo = (!created.is_empty()).then(|| links.delete(&created));
        bail!(failure_message(e, commands.len(), restore, undo, &created));
    }
    // The hooks of removed ingress trees are gone with the batch: now their ifbs. Not while
    // a rollback may still come (--confirm-within): it would put back a hook redirecting
    // to a deleted ifb. Then the next apply deletes them.
    if args.confirm_within.is_none() {
        links
            .delete_stale()
            .context("the tc batch was applied, but an ifb qosctl made could not be deleted")?;
    }
    let elapsed = started.elapsed();

    // The batch went through: a signal from now on no longer stops the verification.
    let printed = printed.ok();
    let reread = reread.as_deref().zip(printed.as_deref());
    verify(&tc, &desired, &plan, &before, reread, commands.len())?;

    print_applied(&mut out, args.json, &plan, &commands, &found, elapsed)?;
    if args.confirm_within.is_some() {
        let w = crate::confirm::Waiter {
            desired: &desired,
            before: &before,
            snap: &snap,
            created: &created,
        };
        crate::confirm::arm(global, args, &tc, &w, &lock)?;
    }
    // The plan is not empty here: Changes with --detailed-exitcode, else Ok.
    let exit = exit_for(&plan, args.detailed_exitcode);
    Ok(Applied::new(exit, commands.len()))
}

/// The report of an apply that found nothing to change.
fn print_in_sync(mut out: &mut dyn Write, args: &ApplyArgs, plan: &Plan) -> Result<Applied> {
    let commands = Vec::new();
    if args.confirm_within.is_some() {
        eprintln!("Nothing changed, so no rollback is armed.");
    }
    if args.json {
        let j = ApplyJson {
            plan: PlanJson::new(plan, &commands),
            applied: 0,
            verified: true,
        };
        serde_json::to_writer_pretty(&mut out, &j)?;
        writeln!(out)?;
    } else {
        print_plan(&mut out, false, plan, &commands, &[], false)?;
    }
    Ok(Applied::new(Exit::Ok, 0))
}

/// The exact pre-apply dump of the devices that existed before (the ifbs this apply just
/// created are not in it: a failed apply deletes them instead). If it cannot be taken,
/// those ifbs are deleted again and nothing else has changed.
fn snapshot_after_links(
    tc: &Tc,
    desired: &Desired,
    before: &[DeviceState],
    links: &Links,
    created: &[String],
) -> Result<Vec<rollback::DeviceDump>> {
    let devices: Vec<String> = desired
        .devices
        .iter()
        .map(|d| d.state.device.clone())
        .filter(|d| !created.contains(d))
        .collect();
    // The planning read says which devices have an ingress-side qdisc (and so filters
    // there to dump).
    let ingress = |dev: &str| {
        before
            .iter()
            .any(|b| b.device == dev && b.qdiscs.iter().any(|q| q.parent == Parent::Ingress))
    };
    rollback::snapshot(tc, &devices, ingress).map_err(|e| {
        let _ = links.delete(created);
        interrupted_before(e)
    })
}

/// The batch: the plan's commands, then a `class show` of each changed class when the plan
/// only changes classes.
fn with_rereads(
    commands: &[String],
    reread: Option<&[(String, crate::model::Handle)]>,
) -> Vec<String> {
    let mut batch = commands.to_vec();
    if let Some(r) = reread {
        batch.extend(
            r.iter()
                .map(|(dev, h)| format!("class show dev {dev} classid {h}")),
        );
    }
    batch
}

/// Reads back and verifies convergence, naming any object and field that differs: from
/// the batch's own `class show` output when it re-read the changed classes, else with a
/// full read.
fn verify(
    tc: &Tc,
    desired: &Desired,
    plan: &Plan,
    before: &[DeviceState],
    reread: Option<(&[(String, crate::model::Handle)], &str)>,
    commands: usize,
) -> Result<()> {
    let after = match reread {
        Some((r, out)) => patch_classes(plan, before, r, out)?,
        None => read_all(&tc.uninterruptible(), desired)?,
    };
    if let Some(s) = crate::child::pending() {
        eprintln!(
            "note: {} arrived after the batch had completed; finishing the apply",
            crate::child::signal_name(s)
        );
    }
    let rest = make_plan(desired, &after);
    if !rest.is_empty() {
        bail!(
            "applied {commands} commands, but the kernel does not match the policy:\n{}",
            mismatches(&crate::escape::plan_for_display(&rest))
        );
    }
    Ok(())
}

/// `apply --dry-run`: the plan (against the kernel, or saved state with --state), and where
/// a real apply would stop; nothing is changed.
fn dry_run(
    global: &Global,
    args: &ApplyArgs,
    desired: &Desired,
    mut out: &mut dyn Write,
) -> Result<Applied> {
    // --state: saved state instead of the kernel; no tc is located or run.
    let (live, links) = match &args.state {
        Some(s) => (
            crate::state::for_plan(&crate::state::Source::new(s), desired)?,
            Links::default(),
        ),
        None => {
            let tc = Tc::locate(global)?;
            let links = Links::find(global.netns.as_deref(), desired)?;
            (read_all(&tc, desired)?, links)
        }
    };
    let mut plan = make_plan(desired, &live);
    with_links(&mut plan, &links);
    let found = crate::foreign::find(desired, &live, &plan);
    let order = rollback::batch_order(&plan, &live, global.netns.as_deref());
    if !found.is_empty() && !args.force {
        eprintln!(
            "note: apply would stop here: {}",
            crate::foreign::refusal(&found)
        );
    } else if let Err(e) = &order {
        eprintln!("note: apply would stop here: {e:#}");
    }
    let commands = order.unwrap_or_else(|_| plan.commands());
    print_plan(&mut out, args.json, &plan, &commands, &found, args.force)?;
    Ok(Applied::new(exit_for(&plan, args.detailed_exitcode), 0))
}

/// The error of a failed batch: where tc stopped and why, the kernel's words, a hint, and
/// what the restore (and the deletion of the ifbs this apply created) achieved.
fn failure_message(
    e: &crate::tc::BatchError,
    n: usize,
    restore: Result<String>,
    undo: Option<Result<()>>,
    created: &[String],
) -> String {
    let mut msg = match (&e.command, e.line, e.stop) {
        (_, _, Some(crate::child::Stop::Signal(s))) => format!(
            "interrupted by {} while tc -batch ran the {} commands of the plan: tc was stopped\n",
            crate::child::signal_name(s),
            n
        ),
        (_, _, Some(stop)) => format!("tc -batch of {} commands: {stop}\n", n),
        (Some(cmd), Some(line), None) => {
            format!("tc failed at line {line} of {} of the batch:\n  {cmd}\n", n)
        }
        _ => "tc -batch failed:\n".to_string(),
    };
    for l in e.stderr.lines().filter(|l| !l.trim().is_empty()) {
        msg.push_str(&format!("  {}\n", l.trim()));
    }
    if let Some(h) = kernel_hint(&e.stderr, e.command.as_deref().unwrap_or("")) {
        msg.push_str(&format!("hint: {h}\n"));
    }
    match restore {
        Ok(m) => msg.push_str(&m),
        Err(r) => msg.push_str(&format!(
            "RESTORE INCOMPLETE, the interfaces are not as they were before the apply: {r:#}"
        )),
    }
    if let Some(undo) = undo {
        match undo {
            Ok(()) => msg.push_str(&format!(
                "\ndeleted the ifb device{} this apply had created: {}",
                if created.len() == 1 { "" } else { "s" },
                created.join(", ")
            )),
            Err(d) => msg.push_str(&format!("\nRESTORE INCOMPLETE: {d:#}")),
        }
    }
    msg
}

/// The report of an apply that went through: JSON, or the plan and one line.
fn print_applied(
    out: &mut impl Write,
    json: bool,
    plan: &Plan,
    commands: &[String],
    found: &[crate::foreign::Foreign],
    elapsed: std::time::Duration,
) -> Result<()> {
    if json {
        let j = ApplyJson {
            plan: PlanJson::new(plan, commands).with_foreign(found),
            applied: commands.len(),
            verified: true,
        };
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}",
            plan::render_human(&crate::escape::plan_for_display(plan))
        )?;
        write!(out, "{}", crate::foreign::render(found, true))?;
        writeln!(
            out,
            "Applied {} command{} in one tc -batch ({:.1} ms); read back: in sync.",
            commands.len(),
            if commands.len() == 1 { "" } else { "s" },
            elapsed.as_secs_f64() * 1000.0
        )?;
    }
    Ok(())
}

/// The plan as the dry run and a refused apply print it: JSON (operations, tc lines and
/// the foreign objects) or the human plan with its "Foreign state" section.
fn print_plan(
    out: &mut impl Write,
    json: bool,
    plan: &Plan,
    commands: &[String],
    found: &[crate::foreign::Foreign],
    forced: bool,
) -> Result<()> {
    if json {
        let j = PlanJson::new(plan, commands).with_foreign(found);
        serde_json::to_writer_pretty(&mut *out, &j)?;
        writeln!(out)?;
    } else {
        write!(
            out,
            "{}{}",
            plan::render_human(&crate::escape::plan_for_display(plan)),
            crate::foreign::render(found, forced)
        )?;
    }
    Ok(())
}

/// A read before the batch that a signal stopped: say so, nothing was changed yet.
fn interrupted_before(e: anyhow::Error) -> anyhow::Error {
    match crate::child::pending() {
        Some(s) => anyhow::anyhow!(
            "interrupted by {} before anything was changed",
            crate::child::signal_name(s)
        ),
        None => e,
    }
}

/// What a kernel refusal usually means, for the messages people hit most.
fn kernel_hint(stderr: &str, command: &str) -> Option<String> {
    if stderr.contains("Specified qdisc kind is unknown")
        || stderr.contains("Specified qdisc not found")
    {
        let kind = command
            .split_whitespace()
            .skip_while(|w| *w != "handle")
            .nth(2)
            .unwrap_or("this");
        return Some(format!(
            "this kernel has no {kind} qdisc: load it (modprobe sch_{kind}) or choose another leaf"
        ));
    }
    if stderr.contains("cannot mix duplicating netems") {
        return Some(
            "this kernel refuses a netem with duplicate next to other netems on one interface: \
             put the duplicating netem on an interface of its own, or drop duplicate"
                .to_string(),
        );
    }
    if stderr.contains("TC classifier not found") {
        // The kind follows `prio N` and, where given, `handle H`.
        let w: Vec<&str> = command.split_whitespace().collect();
        let at = w
            .iter()
            .position(|x| *x == "prio")
            .map_or(w.len(), |i| i + 2);
        let at = if w.get(at) == Some(&"handle") {
            at + 2
        } else {
            at
        };
        let kind = w.get(at).copied().unwrap_or("this");
        if kind == "flower" {
            return Some(
                "this kernel has no flower classifier: load it (modprobe cls_flower), or \
                 remove classifier = \"flower\" from the interface (u32 is on every kernel)"
                    .to_string(),
            );
        }
        return Some(format!(
            "this kernel has no {kind} classifier: load it (modprobe cls_{kind}); marks need cls_fw"
        ));
    }
    None
}

fn exit_for(plan: &Plan, detailed: bool) -> Exit {
    if detailed && !plan.is_empty() {
        Exit::Changes
    } else {
        Exit::Ok
    }
}

/// Live state of every device the policy names. Any missing device is an error before
/// anything is changed anywhere.
pub fn read_all(tc: &Tc, desired: &Desired) -> Result<Vec<DeviceState>> {
    for d in &desired.devices {
        crate::tc::check_device_name(&d.state.device)
            .with_context(|| format!("interface {}", crate::escape::escape(&d.alias)))?;
    }
    desired
        .devices
        .iter()
        .map(|d| finish_read(d, read::start_config(tc, &d.state.device)))
        .collect()
}

/// The state before the apply: the reads [`crate::prefetch`] started, if they are of the
/// policy's devices, else read now.
fn read_before(
    tc: &Tc,
    desired: &Desired,
    early: Option<crate::prefetch::Reads>,
) -> Result<Vec<DeviceState>> {
    match early.and_then(|r| r.finish(desired, finish_read)) {
        Some(read) => read,
        None => read_all(tc, desired),
    }
}

/// One device's planning read, its error naming the interface.
fn finish_read(d: &crate::model::DesiredDevice, read: read::Pending) -> Result<DeviceState> {
    match read.finish() {
        // An ingress tree's ifb that apply has not created yet: the kernel default.
        Err(e) if d.ifb_for.is_some() && format!("{e:#}").contains("does not exist") => {
            Ok(DeviceState {
                device: d.state.device.clone(),
                ..DeviceState::default()
            })
        }
        r => r.with_context(|| {
            format!(
                "interface {} ({})",
                crate::escape::escape(&d.alias),
                d.state.device
            )
        }),
    }
}

/// The `ip link` steps of the plan: ifbs to create (on the devices that are theirs) and
/// left-over ifbs to delete (one device plan each, with no tc operation).
pub fn with_links(plan: &mut Plan, links: &Links) {
    for (name, dev) in &links.missing {
        if let Some(d) = plan.devices.iter_mut().find(|d| &d.device == name) {
            d.link = Some(LinkChange::Create {
                ifb_for: dev.clone(),
            });
        }
    }
    for name in &links.down {
        if let Some(d) = plan.devices.iter_mut().find(|d| &d.device == name) {
            let ifb_for = links.existing_for(name).unwrap_or_default().to_string();
            d.link = Some(LinkChange::Up { ifb_for });
        }
    }
    for (name, dev) in &links.stale {
        plan.devices.push(DevicePlan {
            device: name.clone(),
            alias: None,
            ops: Vec::new(),
            goes_with: Vec::new(),
            link: Some(LinkChange::Delete {
                ifb_for: dev.clone(),
            }),
        });
    }
}

pub fn make_plan(desired: &Desired, live: &[DeviceState]) -> Plan {
    Plan {
        devices: desired
            .devices
            .iter()
            .zip(live)
            .map(|(d, l)| {
                let ops = plan::diff_device(&d.state, l);
                DevicePlan {
                    device: d.state.device.clone(),
                    alias: Some(d.alias.clone()),
                    goes_with: plan::goes_with(&ops, l),
                    ops,
                    link: None,
                }
            })
            .collect(),
    }
}

/// Plans that only change classes (the everyday edit) are verified by reading just those
/// classes back, with `class show … classid` lines at the end of the same `tc -batch`, and
/// patching them into the state read before: the rest was equal then, and an htb class
/// change touches nothing else. That keeps an edit of one class on a 10,000-class tree
/// close to a no-op's cost. Any other plan is verified by reading the devices in full (None).
fn changed_classes(plan: &Plan) -> Option<Vec<(String, crate::model::Handle)>> {
    const MAX: usize = 256;
    let mut v = Vec::new();
    for d in &plan.devices {
        for op in &d.ops {
            match op {
                Op::Change {
                    obj: Obj::Class(c), ..
                } => v.push((d.device.clone(), c.handle)),
                _ => return None,
            }
        }
    }
    (v.len() <= MAX).then_some(v)
}

/// The pre-apply state with the classes that were read back in place of the old ones.
fn patch_classes(
    plan: &Plan,
    before: &[DeviceState],
    changed: &[(String, crate::model::Handle)],
    printed: &str,
) -> Result<Vec<DeviceState>> {
    // Text on every iproute2 version (no -j), and each line names its class: the classes
    // of several devices are told apart by the order they were asked for.
    let fresh = read::parse_classes(printed).context("reading back the changed classes")?;
    let mut after = before.to_vec();
    for (d, state) in plan.devices.iter().zip(after.iter_mut()) {
        let mine: Vec<_> = changed
            .iter()
            .filter(|(dev, _)| *dev == d.device)
            .map(|(_, h)| *h)
            .collect();
        state.classes.retain(|c| !mine.contains(&c.handle));
    }
    // Assign each fresh class to the device whose changed handle it is, in batch order.
    let mut it = changed.iter();
    for c in fresh {
        let dev = it
            .by_ref()
            .find(|(_, h)| *h == c.handle)
            .map(|(dev, _)| dev.clone());
        if let Some(dev) = dev {
            if let Some(state) = after.iter_mut().find(|s| s.device == dev) {
                state.classes.push(c);
            }
        }
    }
    Ok(after)
}

/// Puts every device back as it was read before the apply, through the same differ, then
/// compares tc's full dump with the one taken before the batch: the message says
/// "restored" only if they are equal, and names every entry that differs otherwise.
/// Also the rollback of an unconfirmed `--confirm-within` change (src/confirm.rs).
pub fn restore(
    tc: &Tc,
    desired: &Desired,
    before: &[DeviceState],
    snap: &[rollback::DeviceDump],
) -> Result<String> {
    let now = read_all(tc, desired)?;
    let targets = rollback::restore_targets(before, snap);
    let mut lines = Vec::new();
    for ((t, n), b) in targets.iter().zip(&now).zip(before) {
        for op in plan::diff_device(t, n) {
            if !rollback::writes_foreign(&op) && !rollback::untouched(&op, b, n) {
                lines.push(plan::command(&t.device, &op));
            }
        }
    }
    let ran = tc.batch(&lines);
    let devices: Vec<String> = snap.iter().map(|d| d.device.clone()).collect();
    // Expected as before the apply; whatever the restore left is dumped in any case.
    let again = rollback::snapshot(tc, &devices, |dev| {
        snap.iter().any(|d| d.device == dev && d.has_ingress_side())
    })?;
    let diffs = rollback::differences(snap, &again);
    if diffs.is_empty() {
        let compared: usize = snap.iter().map(|d| d.entries.len()).sum();
        return Ok(format!(
            "restored: every interface reads back exactly as before the apply \
             ({compared} tc entries compared after {} restore command{})",
            lines.len(),
            if lines.len() == 1 { "" } else { "s" }
        ));
    }
    let why = match ran {
        Err(e) => format!("the restore batch failed ({e}); "),
        Ok(()) => String::new(),
    };
    bail!(
        "{why}what differs from before the apply:\n  {}",
        diffs.join("\n  ")
    )
}

fn op_obj(op: &Op) -> &Obj {
    match op {
        Op::Add { obj, .. } | Op::Change { obj, .. } | Op::Remove { obj, .. } => obj,
    }
}

/// What still differs after an apply, one line per object and field.
pub fn mismatches(rest: &Plan) -> String {
    let mut s = String::new();
    for d in &rest.devices {
        for op in &d.ops {
            let (what, name, _) = plan::describe(op_obj(op));
            let name = if name.is_empty() {
                String::new()
            } else {
                format!(" ({name})")
            };
            match op {
                Op::Change { fields, .. } => {
                    for f in fields {
                        s.push_str(&format!(
                            "  {}: {what}{name}: {} is {}, policy wants {}\n",
                            d.device, f.field, f.live, f.desired
                        ));
                    }
                }
                Op::Add { .. } => s.push_str(&format!("  {}: {what}{name}: missing\n", d.device)),
                Op::Remove { .. } => s.push_str(&format!(
                    "  {}: {what}{name}: present, policy has none\n",
                    d.device
                )),
            }
        }
    }
    s
}

/// `--json` form of a plan: the operations per device and the exact tc lines.
#[derive(Serialize)]
pub struct PlanJson<'a> {
    pub in_sync: bool,
    pub summary: plan::Summary,
    pub devices: &'a [DevicePlan],
    /// The `tc -batch` lines, in order: what apply runs.
    pub commands: &'a [String],
    /// Objects qosctl did not create that the plan replaces (src/foreign.rs): a real
    /// apply refuses them without --force.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub foreign: &'a [crate::foreign::Foreign],
}

impl<'a> PlanJson<'a> {
    /// `commands` is `plan.commands()`, rendered once by the caller.
    pub fn new(plan: &'a Plan, commands: &'a [String]) -> Self {
        PlanJson {
            in_sync: plan.is_empty(),
            summary: plan.summary(),
            devices: &plan.devices,
            commands,
            foreign: &[],
        }
    }

    pub fn with_foreign(self, foreign: &'a [crate::foreign::Foreign]) -> Self {
        PlanJson { foreign, ..self }
    }
}

#[derive(Serialize)]
struct ApplyJson<'a> {
    plan: PlanJson<'a>,
    /// Commands run (0 when in sync).
    applied: usize,
    verified: bool,
}

/// Changing traffic control needs CAP_NET_ADMIN; say so before touching anything.
pub fn require_net_admin() -> Result<()> {
    const CAP_NET_ADMIN: u32 = 12;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok());
    match eff {
        Some(caps) if caps & (1 << CAP_NET_ADMIN) == 0 => bail!(
            "changing traffic control needs CAP_NET_ADMIN: run as root (sudo qosctl …); \
             `qosctl apply --dry-run` shows the plan without it"
        ),
        _ => Ok(()),
    }
}

/// One lock per network namespace (see [`crate::lock`]): applies to different
/// namespaces are independent, two to the same one take turns.
pub fn lock(global: &Global) -> Result<crate::lock::Lock> {
    crate::lock::lock(global.netns.as_deref())
}

#[cfg(test)]
mod tests {
    use super::kernel_hint;

    // The messages are what tc printed: the first two on this machine's kernel (no netem, no
    // cls_fw), the third in the kernel lab (Debian 6.1.192).
    #[test]
    fn kernel_messages_get_a_hint_that_names_the_fix() {
        let h = kernel_hint(
            "Error: Specified qdisc kind is unknown.\n",
            "qdisc add dev a0 parent 1:10 handle 10: netem delay 10000us",
        );
        assert_eq!(
            h.as_deref(),
            Some("this kernel has no netem qdisc: load it (modprobe sch_netem) or choose another leaf")
        );
        let h = kernel_hint(
            "Error: TC classifier not found.\nWe have an error talking to the kernel\n",
            "filter replace dev a0 parent 1: protocol all prio 1 handle 0x10 fw classid 1:10",
        );
        assert_eq!(
            h.as_deref(),
            Some("this kernel has no fw classifier: load it (modprobe cls_fw); marks need cls_fw")
        );
        let h = kernel_hint(
            "Error: netem: cannot mix duplicating netems with other netems in tree.\n",
            "qdisc change dev veth0 parent 1:32 handle 32: netem delay 10000us duplicate 1% 0%",
        )
        .expect("a hint");
        assert!(
            h.contains("put the duplicating netem on an interface of its own"),
            "{h}"
        );
        assert_eq!(
            kernel_hint("RTNETLINK answers: File exists\n", "qdisc add"),
            None
        );
    }
}
