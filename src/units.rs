//! Units of the policy language: rates, sizes, times, probabilities.
//!
//! One rule for rates, unlike tc: `bit`/`bps` and their prefixed forms are **bits** per
//! second; bytes per second only with a capital `B` (`2MBps`). SI prefixes are powers of
//! 1000, `Ki`/`Mi`/`Gi`/`Ti` powers of 1024. qosctl never passes a user's unit through to
//! tc: [`Rate::tc`] always renders bits.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Why a unit string did not parse, and the fix when one is obvious.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitError {
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for UnitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "; {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnitError {}

fn err(message: impl Into<String>, hint: Option<String>) -> UnitError {
    UnitError {
        message: message.into(),
        hint,
    }
}

/// Splits "1.5gbit" into (1.5, "gbit"). The number must be a plain non-negative decimal.
fn split_number(s: &str) -> Option<(f64, &str)> {
    let s = s.trim();
    let end = s
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return None;
    }
    // A digit string too long for f64 parses as infinity: callers report "too large".
    let v: f64 = num.parse().ok()?;
    Some((v, unit.trim()))
}

/// A rate in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Rate(pub u64);

impl Rate {
    pub const fn from_bits(bits: u64) -> Rate {
        Rate(bits)
    }
    pub const fn from_bytes(bytes: u64) -> Rate {
        Rate(bytes.saturating_mul(8))
    }
    pub const fn bits(self) -> u64 {
        self.0
    }
    /// What the kernel stores: whole bytes per second, rounded down.
    pub const fn kernel_bytes(self) -> u64 {
        self.0 / 8
    }
    /// Equal once the kernel has stored both (33333bit and 33328bit are the same rate).
    pub fn same_in_kernel(self, other: Rate) -> bool {
        self.kernel_bytes() == other.kernel_bytes()
    }
    /// The tc argument: exact, in bits, so tc's own byte units never come into play.
    pub fn tc(self) -> String {
        format!("{}bit", self.kernel_bytes() * 8)
    }
    /// What iproute2's `sprint_rate` prints for this rate in text output (SI, no `-iec`).
    /// Used to compare a desired rate with one read back from tc's text form.
    pub fn tc_text_rounded(self) -> Rate {
        let mut r = self.kernel_bytes() * 8;
        let mut mult = 1u64;
        for _ in 0..4 {
            if r < 1000 {
                break;
            }
            if !r.is_multiple_of(1000) && r < 1000 * 1000 {
                break;
            }
            r /= 1000;
            mult *= 1000;
        }
        Rate(r * mult)
    }

    pub fn parse(s: &str) -> Result<Rate, UnitError> {
        s.parse()
    }
}

impl fmt::Display for Rate {
    /// Human form with the largest SI prefix that keeps it exact to 3 decimals: `20mbit`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        for (div, unit) in [
            (1_000_000_000_000u64, "tbit"),
            (1_000_000_000, "gbit"),
            (1_000_000, "mbit"),
            (1_000, "kbit"),
        ] {
            if b >= div {
                let whole = b / div;
                let frac = b % div;
                if frac == 0 {
                    return write!(f, "{whole}{unit}");
                }
                // Up to 3 decimals when that is exact.
                let milli = div / 1000;
                if milli > 0 && frac.is_multiple_of(milli) {
                    let s = format!("{:03}", frac / milli);
                    return write!(f, "{whole}.{}{unit}", s.trim_end_matches('0'));
                }
            }
        }
        write!(f, "{b}bit")
    }
}

impl FromStr for Rate {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Rate, UnitError> {
        let Some((v, unit)) = split_number(s) else {
            return Err(err(
                format!("invalid rate \"{s}\""),
                Some("write a number and a unit, e.g. \"20mbit\" or \"1.5gbit\"".into()),
            ));
        };
        if unit.is_empty() {
            return Err(err(
                format!("rate \"{s}\" has no unit"),
                Some(format!("did you mean \"{s}kbit\"?")),
            ));
        }
        // Bytes only with a capital B: "MBps", "kBps", "B/s".
        let (prefix, bytes) = if let Some(p) = unit.strip_suffix("Bps") {
            (p, true)
        } else if let Some(p) = unit.strip_suffix("B/s") {
            (p, true)
        } else if let Some(p) = unit.strip_suffix("bit") {
            (p, false)
        } else if let Some(p) = unit.strip_suffix("bps") {
            (p, false)
        } else if let Some(p) = unit.strip_suffix("BIT") {
            (p, false)
        } else {
            return Err(err(
                format!("unknown rate unit \"{unit}\" in \"{s}\""),
                Some("use bit, kbit, mbit, gbit (or kibit, mibit, gibit), bps/Mbps for bits, MBps for bytes".into()),
            ));
        };
        let mult: f64 = match prefix.to_ascii_lowercase().as_str() {
            "" => 1.0,
            "k" => 1e3,
            "m" => 1e6,
            "g" => 1e9,
            "t" => 1e12,
            "ki" => 1024.0,
            "mi" => 1024.0 * 1024.0,
            "gi" => 1024.0 * 1024.0 * 1024.0,
            "ti" => 1024.0f64.powi(4),
            _ => {
                return Err(err(
                    format!("unknown rate prefix \"{prefix}\" in \"{s}\""),
                    Some(
                        "use k, m, g, t (powers of 1000) or ki, mi, gi, ti (powers of 1024)".into(),
                    ),
                ))
            }
        };
        let bits = v * mult * if bytes { 8.0 } else { 1.0 };
        // The kernel keeps rates as 64-bit bytes per second.
        if bits >= (u64::MAX / 8) as f64 {
            return Err(err(format!("rate \"{s}\" is too large"), None));
        }
        let bits = bits.round() as u64;
        if bits < 8 {
            return Err(err(
                format!("rate \"{s}\" is below 8bit, the smallest rate the kernel can keep"),
                None,
            ));
        }
        Ok(Rate(bits))
    }
}

/// A size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Size(pub u64);

impl Size {
    pub const fn bytes(self) -> u64 {
        self.0
    }
    /// The tc argument: a bare number is bytes to tc.
    pub fn tc(self) -> String {
        self.0.to_string()
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b >= 1024 * 1024 && b.is_multiple_of(1024 * 1024) {
            write!(f, "{}MiB", b / (1024 * 1024))
        } else if b >= 1024 && b.is_multiple_of(1024) {
            write!(f, "{}KiB", b / 1024)
        } else {
            write!(f, "{b}B")
        }
    }
}

impl FromStr for Size {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Size, UnitError> {
        let Some((v, unit)) = split_number(s) else {
            return Err(err(
                format!("invalid size \"{s}\""),
                Some("write bytes, e.g. 1514, \"1514B\", \"16KiB\" or \"15kB\"".into()),
            ));
        };
        let mult: f64 =
            match unit {
                "" | "B" => 1.0,
                "kB" | "KB" => 1e3,
                "MB" => 1e6,
                "GB" => 1e9,
                "KiB" | "kiB" => 1024.0,
                "MiB" => 1024.0 * 1024.0,
                "GiB" => 1024.0 * 1024.0 * 1024.0,
                "bit" => 1.0 / 8.0,
                "kbit" => 1e3 / 8.0,
                "mbit" => 1e6 / 8.0,
                "b" | "kb" | "k" | "mb" | "m" => return Err(err(
                    format!("ambiguous size unit \"{unit}\" in \"{s}\""),
                    Some(
                        "write bytes with a capital B (\"15kB\", \"16KiB\") or bits as \"kbit\""
                            .into(),
                    ),
                )),
                _ => {
                    return Err(err(
                        format!("unknown size unit \"{unit}\" in \"{s}\""),
                        Some("use B, kB, MB, KiB, MiB (bytes) or bit, kbit (bits)".into()),
                    ))
                }
            };
        let bytes = v * mult;
        if bytes >= u32::MAX as f64 {
            return Err(err(
                format!("size \"{s}\" is too large (at most 4GiB)"),
                None,
            ));
        }
        if bytes.fract() != 0.0 {
            return Err(err(
                format!("size \"{s}\" is not a whole number of bytes"),
                None,
            ));
        }
        Ok(Size(bytes as u64))
    }
}

/// A duration in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Time(pub u64);

impl Time {
    pub const fn from_us(us: u64) -> Time {
        Time(us * 1000)
    }
    pub const fn ns(self) -> u64 {
        self.0
    }
    pub const fn us(self) -> u64 {
        self.0 / 1000
    }
    /// tc argument in microseconds (what tc's `get_time` keeps).
    pub fn tc_us(self) -> String {
        format!("{}us", self.us())
    }
    /// tc argument in nanoseconds where tc accepts them (netem's 64-bit times).
    pub fn tc_ns(self) -> String {
        if self.0.is_multiple_of(1000) {
            format!("{}us", self.0 / 1000)
        } else {
            format!("{}ns", self.0)
        }
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        if n == 0 {
            f.write_str("0ms")
        } else if n.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", n / 1_000_000_000)
        } else if n.is_multiple_of(1_000_000) {
            write!(f, "{}ms", n / 1_000_000)
        } else if n.is_multiple_of(1000) {
            write!(f, "{}us", n / 1000)
        } else {
            write!(f, "{n}ns")
        }
    }
}

impl FromStr for Time {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Time, UnitError> {
        let Some((v, unit)) = split_number(s) else {
            return Err(err(
                format!("invalid time \"{s}\""),
                Some("write a number and a unit, e.g. \"10ms\", \"1.5s\" or \"250us\"".into()),
            ));
        };
        let mult: f64 = match unit {
            "" => {
                return Err(err(
                    format!("time \"{s}\" has no unit"),
                    Some(format!("did you mean \"{s}ms\"?")),
                ))
            }
            "s" | "sec" => 1e9,
            "ms" | "msec" => 1e6,
            "us" | "usec" | "µs" => 1e3,
            "ns" | "nsec" => 1.0,
            _ => {
                return Err(err(
                    format!("unknown time unit \"{unit}\" in \"{s}\""),
                    Some("use s, ms, us or ns".into()),
                ))
            }
        };
        let ns = v * mult;
        // netem keeps 64-bit ns, but tc's 32-bit tick fields overflow past ~4294 s.
        if ns > 4_294_967_295_000.0 {
            return Err(err(
                format!("time \"{s}\" is too large (at most 4294s)"),
                None,
            ));
        }
        Ok(Time(ns.round() as u64))
    }
}

/// A probability as a fraction 0..=1, written in percent in the policy.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Prob(pub f64);

impl Prob {
    pub fn fraction(self) -> f64 {
        self.0
    }
    pub fn percent(self) -> f64 {
        self.0 * 100.0
    }
    /// The kernel keeps probabilities as u32 fractions of 2^32-1.
    pub fn kernel(self) -> u32 {
        (self.0 * u32::MAX as f64).round() as u32
    }
    /// Equal after the kernel's u32 scaling (and tc's printing, which keeps 1e-6 %).
    pub fn same_in_kernel(self, other: Prob) -> bool {
        (self.0 - other.0).abs() < 1e-7
    }
    /// tc argument: a percentage with enough digits to survive the round trip.
    pub fn tc(self) -> String {
        let s = format!("{:.6}", self.percent());
        let s = s.trim_end_matches('0').trim_end_matches('.');
        format!("{s}%")
    }
}

impl fmt::Display for Prob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tc())
    }
}

impl FromStr for Prob {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Prob, UnitError> {
        let t = s.trim();
        let Some(num) = t.strip_suffix('%') else {
            return Err(err(
                format!("probability \"{s}\" has no %"),
                Some(format!("did you mean \"{t}%\"?")),
            ));
        };
        let Some((v, rest)) = split_number(num) else {
            return Err(err(
                format!("invalid probability \"{s}\""),
                Some("write a percentage, e.g. \"0.5%\"".into()),
            ));
        };
        if !rest.is_empty() {
            return Err(err(
                format!("invalid probability \"{s}\""),
                Some("write a percentage, e.g. \"0.5%\"".into()),
            ));
        }
        if v > 100.0 {
            return Err(err(
                format!("probability \"{s}\" is outside 0%..100%"),
                None,
            ));
        }
        Ok(Prob(v / 100.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_bits_unless_capital_b() {
        assert_eq!("20mbit".parse::<Rate>().unwrap().bits(), 20_000_000);
        assert_eq!("10Mbps".parse::<Rate>().unwrap().bits(), 10_000_000);
        assert_eq!("2MBps".parse::<Rate>().unwrap().bits(), 16_000_000);
        assert_eq!("100mibit".parse::<Rate>().unwrap().bits(), 104_857_600);
        assert_eq!("1.5gbit".parse::<Rate>().unwrap().bits(), 1_500_000_000);
        let e = "5000".parse::<Rate>().unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("did you mean \"5000kbit\"?"));
    }

    #[test]
    fn text_rounding_matches_iproute2() {
        // 06-rates-class-raw.txt: 123456789bit prints as 123456Kbit, 33333bit as 33328bit.
        assert_eq!(Rate(123_456_789).tc_text_rounded(), Rate(123_456_000));
        assert_eq!(Rate(33_333).tc_text_rounded(), Rate(33_328));
        assert_eq!(Rate(1_500_000).tc_text_rounded(), Rate(1_500_000));
        assert_eq!(Rate(50_000_000_000).tc_text_rounded(), Rate(50_000_000_000));
    }

    #[test]
    fn display_is_exact() {
        assert_eq!(Rate(20_000_000).to_string(), "20mbit");
        assert_eq!(Rate(1_500_000_000).to_string(), "1.5gbit");
        assert_eq!(Rate(33_328).to_string(), "33.328kbit");
        assert_eq!(Rate(33_333).to_string(), "33.333kbit");
        assert_eq!(Time(40_000_000).to_string(), "40ms");
        assert_eq!(Prob(0.005).tc(), "0.5%");
    }
}
