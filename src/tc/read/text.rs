//! Values as tc's text printers write them (`sprint_rate`, `sprint_size`, `sprint_time`).
//! Their units are tc's, not the policy's: `Kb` here is 1024 bytes, `Kbit` 1000 bits.

use crate::units::{Rate, Size, Time};

fn split_num(s: &str) -> Option<(f64, &str)> {
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.' || *c == '-'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(end);
    let v: f64 = n.parse().ok()?;
    (v.is_finite() && v >= 0.0).then_some((v, unit))
}

/// `6Mbit`, `1500Kbit`, `33328bit`, `40Gbit` (SI, as `sprint_rate` prints without `-iec`;
/// the IEC forms `Kibit`… are accepted too).
pub fn rate(s: &str) -> Option<Rate> {
    let (v, unit) = split_num(s.trim())?;
    let mult: f64 = match unit {
        "bit" => 1.0,
        "Kbit" | "kbit" => 1e3,
        "Mbit" | "mbit" => 1e6,
        "Gbit" | "gbit" => 1e9,
        "Tbit" | "tbit" => 1e12,
        "Kibit" => 1024.0,
        "Mibit" => 1024.0 * 1024.0,
        "Gibit" => 1024.0 * 1024.0 * 1024.0,
        "Tibit" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "bps" => 8.0,
        _ => return None,
    };
    Some(Rate((v * mult).round() as u64))
}

/// `1600b`, `10Kb`, `2Mb`, also with the cell suffix `-d` adds (`10Kb/1`).
pub fn size(s: &str) -> Option<Size> {
    let s = s.trim();
    let s = s.split_once('/').map(|(a, _)| a).unwrap_or(s);
    let (v, unit) = split_num(s)?;
    let mult: f64 = match unit {
        "b" | "" => 1.0,
        "Kb" => 1024.0,
        "Mb" => 1024.0 * 1024.0,
        "Gb" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some(Size((v * mult).round() as u64))
}

/// `50.0ms`, `1.2s`, `500us`, `20ns`.
pub fn time(s: &str) -> Option<Time> {
    let (v, unit) = split_num(s.trim())?;
    let mult: f64 = match unit {
        "s" | "sec" => 1e9,
        "ms" | "msec" => 1e6,
        "us" | "usec" => 1e3,
        "ns" | "nsec" => 1.0,
        _ => return None,
    };
    Some(Time((v * mult).round() as u64))
}

/// `0x10`, `10` (hex either way: tc prints handles, marks and masks in hex).
pub fn hex(s: &str) -> Option<u64> {
    let s = s.trim();
    let d = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    u64::from_str_radix(d, 16).ok()
}

/// The word after `key` in a whitespace-split token list.
pub fn after<'a>(tokens: &[&'a str], key: &str) -> Option<&'a str> {
    tokens
        .iter()
        .position(|t| *t == key)
        .and_then(|i| tokens.get(i + 1))
        .copied()
}

/// Collapses all runs of whitespace to one space.
pub fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tc_text_units() {
        assert_eq!(rate("1500Kbit"), Some(Rate(1_500_000)));
        assert_eq!(rate("33328bit"), Some(Rate(33_328)));
        assert_eq!(rate("40Gbit"), Some(Rate(40_000_000_000)));
        assert_eq!(rate("5"), None);
        assert_eq!(size("10Kb/1"), Some(Size(10_240)));
        assert_eq!(size("15337b"), Some(Size(15_337)));
        assert_eq!(size("1x"), None);
        assert_eq!(time("50.0ms"), Some(Time(50_000_000)));
        assert_eq!(time("1.2s"), Some(Time(1_200_000_000)));
        assert_eq!(time("500us"), Some(Time(500_000)));
        assert_eq!(hex("0x14"), Some(20));
        assert_eq!(hex("ffff"), Some(0xffff));
    }
}
