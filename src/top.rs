//! `qosctl top`: a live table of every class and qdisc, busiest first, refreshed in place
//! (like LibreQoS's lqtop or top). Rates are measured by qosctl ([`crate::rates`]).
//!
//! On a terminal it takes the alternate screen in raw mode, so `q` quits without Enter and
//! the shell's screen comes back afterwards. The terminal is restored on every way out:
//! `q`, Esc or Ctrl-C (a key in raw mode), SIGINT/SIGTERM/SIGHUP from outside (flags polled
//! between frames), an error, and a panic (a hook restores before the message prints).
//! Without a terminal it prints `--count` snapshots (default one) and exits.

use anyhow::{Context, Result};
use comfy_table::{presets, Cell, CellAlignment, Table};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, queue, terminal};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cli::{Global, TopArgs};
use crate::model::{DeviceState, Parent};
use crate::rates::{self, Key, Measured, Object, Sample};
use crate::show::{name_all, no_tree, target_devices};
use crate::tc::Tc;
use crate::units::Rate;
use crate::Exit;

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub device: String,
    pub handle: String,
    /// The policy path, else the kind (`htb`, `fq_codel`, `class`).
    pub name: String,
    pub rate: Measured,
    /// What bounds the rate: a class's ceil, a tbf's rate.
    pub ceil: Option<Rate>,
    pub backlog_bytes: u64,
    pub backlog_packets: u64,
}

pub fn run(global: &Global, args: &TopArgs) -> Result<Exit> {
    let tc = Tc::locate(global)?;
    let desired = match &args.policy {
        Some(p) => Some(crate::policy::load(p)?),
        None => None,
    };
    let devices = target_devices(&tc, &args.devices, desired.as_ref())?;
    if devices.is_empty() {
        println!("{}: nothing to watch.", no_tree(tc.netns.as_deref()));
        return Ok(Exit::Ok);
    }
    let mut frames = Frames {
        tc,
        devices,
        desired,
        last: None,
    };
    if crate::term::stdout_is_terminal() {
        interactive(&mut frames, args)
    } else {
        snapshots(&mut frames, args)
    }
}

struct Frames {
    tc: Tc,
    devices: Vec<String>,
    desired: Option<crate::model::Desired>,
    last: Option<Sample>,
}

impl Frames {
    /// Reads the counters; rows from the difference to the previous read (none the first time).
    fn next(&mut self) -> Result<Option<Vec<Row>>> {
        let mut now = rates::sample(&self.tc, &self.devices)?;
        for t in &mut now.devices {
            name_all(std::slice::from_mut(&mut t.state), self.desired.as_ref());
        }
        let rows = self.last.as_ref().map(|before| {
            let m = rates::measure(before, &now);
            rows(now.devices.iter().map(|t| &t.state), &m)
        });
        self.last = Some(now);
        Ok(rows)
    }
}

/// The rows of `states` that have a measurement, busiest first.
pub fn rows<'a>(
    states: impl Iterator<Item = &'a DeviceState>,
    m: &std::collections::BTreeMap<Key, Measured>,
) -> Vec<Row> {
    let mut out = Vec::new();
    for st in states {
        let key = |o: Object| (st.device.clone(), o);
        for q in &st.qdiscs {
            let (Some(rate), Some(s)) = (m.get(&key(Object::Qdisc(q.handle))), &q.stats) else {
                continue;
            };
            let ceil = match &q.kind {
                crate::model::QdiscKind::Tbf(t) => Some(t.rate),
                _ => None,
            };
            // Unnamed qdiscs go by their kind; the ingress one says so (it sees the other way).
            let kind = q.kind.kind_name().to_string();
            let unnamed = if q.parent == Parent::Ingress {
                format!("{kind} (ingress)")
            } else {
                kind
            };
            out.push(Row {
                device: st.device.clone(),
                handle: q.handle.to_string(),
                name: q.name.clone().unwrap_or(unnamed),
                rate: *rate,
                ceil,
                backlog_bytes: s.backlog_bytes,
                backlog_packets: s.backlog_packets,
            });
        }
        for c in &st.classes {
            let (Some(rate), Some(s)) = (m.get(&key(Object::Class(c.handle))), &c.stats) else {
                continue;
            };
            out.push(Row {
                device: st.device.clone(),
                handle: c.handle.to_string(),
                name: c.name.clone().unwrap_or_else(|| "class".into()),
                rate: *rate,
                ceil: Some(c.ceil),
                backlog_bytes: s.backlog_bytes,
                backlog_packets: s.backlog_packets,
            });
        }
    }
    out.sort_by(|a, b| {
        b.rate
            .bits_per_s
            .total_cmp(&a.rate.bits_per_s)
            .then_with(|| a.device.cmp(&b.device))
            .then_with(|| a.handle.cmp(&b.handle))
    });
    out
}

/// A measured rate in tc's words, three significant digits: `9.52mbit`.
pub fn human_bits(bits: f64) -> String {
    let (v, unit) = [(1e12, "tbit"), (1e9, "gbit"), (1e6, "mbit"), (1e3, "kbit")]
        .into_iter()
        .find(|(d, _)| bits >= *d)
        .map_or((bits, "bit"), |(d, u)| (bits / d, u));
    let prec = if v >= 100.0 || unit == "bit" {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.prec$}{unit}")
}

fn human_bytes(b: u64) -> String {
    match b {
        0..1_000 => format!("{b}B"),
        1_000..1_000_000 => format!("{:.1}KB", b as f64 / 1e3),
        _ => format!("{:.1}MB", b as f64 / 1e6),
    }
}

/// The table of `rows`, at most `max_rows` of them.
pub fn table(rows: &[Row], max_rows: usize) -> Table {
    let mut t = Table::new();
    // No vertical borders: top's look, and the most room for names in 80 columns.
    t.load_preset(presets::NOTHING);
    t.set_header(crate::term::header([
        "DEV", "HANDLE", "NAME", "RATE", "%CEIL", "PKT/S", "DROP/S", "BACKLOG",
    ]));
    crate::term::fit(&mut t);
    for r in rows.iter().take(max_rows) {
        let share = r
            .ceil
            .filter(|c| c.0 > 0)
            .map(|c| 100.0 * r.rate.bits_per_s / c.0 as f64);
        let share_cell = match share {
            Some(s) if s >= 90.0 => crate::term::warn(format!("{s:.0}%"), false),
            Some(s) => Cell::new(format!("{s:.0}%")),
            None => Cell::new("-"),
        };
        let drops = format!("{:.0}", r.rate.drops_per_s);
        let drop_cell = if r.rate.drops_per_s > 0.0 {
            crate::term::warn(drops, true)
        } else {
            Cell::new(drops)
        };
        t.add_row(vec![
            // Device names and policy paths come from outside: no forged lines or escapes.
            Cell::new(crate::escape::escape(&r.device)),
            Cell::new(&r.handle),
            Cell::new(crate::escape::escape(&r.name)),
            Cell::new(human_bits(r.rate.bits_per_s)),
            share_cell,
            Cell::new(format!("{:.0}", r.rate.packets_per_s)),
            drop_cell,
            Cell::new(format!(
                "{} {}p",
                human_bytes(r.backlog_bytes),
                r.backlog_packets
            )),
        ]);
    }
    for i in 3..8 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    crate::term::shrink(&mut t, &["NAME"], &["PKT/S", "BACKLOG", "DEV"]);
    t
}

fn title(devices: &[String], interval: Duration, shown: usize, total: usize) -> String {
    let more = if shown < total {
        format!(", {shown} of {total} rows")
    } else {
        String::new()
    };
    format!(
        "qosctl top: {} device(s), every {}{more}",
        devices.len(),
        crate::units::Time(interval.as_nanos() as u64)
    )
}

/// Without a terminal: `--count` tables (default 1), each after one interval.
fn snapshots(frames: &mut Frames, args: &TopArgs) -> Result<Exit> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    frames.next()?;
    for i in 0..args.count.unwrap_or(1) {
        std::thread::sleep(args.interval);
        let rows = frames.next()?.unwrap_or_default();
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(
            out,
            "{}",
            title(&frames.devices, args.interval, rows.len(), rows.len())
        )?;
        writeln!(out, "{}", table(&rows, usize::MAX))?;
        out.flush()?;
    }
    Ok(Exit::Ok)
}

/// Raw mode and the alternate screen for as long as it lives.
struct Screen;

impl Screen {
    fn enter() -> Result<Screen> {
        terminal::enable_raw_mode().context("cannot put the terminal in raw mode")?;
        // From here on a failure must still restore, so the guard exists before the writes.
        let s = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        Ok(s)
    }
}

fn restore() {
    let _ = execute!(
        std::io::stdout(),
        cursor::Show,
        terminal::LeaveAlternateScreen
    );
    let _ = terminal::disable_raw_mode();
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
    }
}

fn is_quit(k: &KeyEvent) -> bool {
    matches!(
        k.code,
        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc
    ) || (k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL))
}

fn interactive(frames: &mut Frames, args: &TopArgs) -> Result<Exit> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .context("cannot install a signal handler")?;
    }
    let _screen = Screen::enter()?;
    let mut rows: Option<Vec<Row>> = frames.next()?;
    let mut frames_drawn = 0u64;
    loop {
        draw(frames, args, rows.as_deref())?;
        if rows.is_some() {
            frames_drawn += 1;
            if args.count.is_some_and(|n| frames_drawn >= n) {
                return Ok(Exit::Ok);
            }
        }
        // Wait out the interval in short polls: keys and signals answer within 100 ms.
        let due = Instant::now() + args.interval;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(Exit::Ok);
            }
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if event::poll(left.min(Duration::from_millis(100)))? {
                match event::read()? {
                    Event::Key(k) if is_quit(&k) => return Ok(Exit::Ok),
                    Event::Resize(..) => draw(frames, args, rows.as_deref())?,
                    _ => {}
                }
            }
        }
        rows = frames.next()?;
    }
}

fn draw(frames: &Frames, args: &TopArgs, rows: Option<&[Row]>) -> Result<()> {
    let (_, height) = terminal::size().unwrap_or((80, 24));
    let mut out = std::io::stdout().lock();
    queue!(
        out,
        cursor::MoveTo(0, 0),
        terminal::Clear(terminal::ClearType::All)
    )?;
    let text = match rows {
        None => format!(
            "{}\r\nmeasuring for {}...  (q quits)",
            title(&frames.devices, args.interval, 0, 0),
            crate::units::Time(args.interval.as_nanos() as u64)
        ),
        Some(rows) => {
            // Title, header, its rule, and one free line at the bottom.
            let fit = usize::from(height).saturating_sub(4).max(1);
            let t = table(rows, fit);
            let mut s = title(
                &frames.devices,
                args.interval,
                fit.min(rows.len()),
                rows.len(),
            );
            s.push_str("  (q quits)");
            for l in t.lines() {
                s.push_str("\r\n");
                s.push_str(&l);
            }
            s
        }
    };
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Class, Handle, Stats};

    fn measured(bits: f64, drops: f64) -> Measured {
        Measured {
            bits_per_s: bits,
            packets_per_s: bits / 12_000.0,
            drops_per_s: drops,
            overlimits_per_s: 0.0,
        }
    }

    #[test]
    fn rows_are_sorted_by_rate_and_named_by_the_policy() {
        let class = |minor: u16, name: Option<&str>| Class {
            name: name.map(str::to_string),
            stats: Some(Stats::default()),
            ..Class::new(Handle::new(1, minor), None, Rate(1), Rate(10_000_000))
        };
        let st = DeviceState {
            device: "a0".into(),
            classes: vec![class(0x10, Some("wan/voice")), class(0x20, None)],
            ..DeviceState::default()
        };
        let mut m = std::collections::BTreeMap::new();
        m.insert(
            ("a0".to_string(), Object::Class(Handle::new(1, 0x10))),
            measured(1e6, 0.0),
        );
        m.insert(
            ("a0".to_string(), Object::Class(Handle::new(1, 0x20))),
            measured(9.5e6, 3.0),
        );
        let r = rows([&st].into_iter(), &m);
        assert_eq!(r[0].handle, "1:20");
        assert_eq!(r[1].name, "wan/voice");
        let t = table(&r, usize::MAX).to_string();
        let first = t.lines().nth(1).unwrap();
        assert!(first.contains("9.50mbit") && first.contains("95%"), "{t}");
        let t = table(&r, 1).to_string();
        assert!(!t.contains("wan/voice"), "only one row fits:\n{t}");
    }

    #[test]
    fn rates_read_like_tc() {
        assert_eq!(human_bits(9_523_000.0), "9.52mbit");
        assert_eq!(human_bits(95_230_000.0), "95.2mbit");
        assert_eq!(human_bits(999.0), "999bit");
        assert_eq!(human_bits(1.25e9), "1.25gbit");
    }
}
