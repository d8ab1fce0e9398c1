//! One value of a type: strings, booleans, integers, and values with units (rates, sizes,
//! times, probabilities, percentages of the parent's rate).

use std::str::FromStr;

use super::{at, track, Walker};
use crate::policy::node::{Key, Node, Value};
use crate::policy::problem::{Place, Problem};
use crate::policy::schema::RateSpec;
use crate::units::{Prob, Rate, Size, Time, UnitError};

impl Walker {
    pub fn string(&mut self, key: &Key, node: &Node) -> Option<String> {
        match &node.value {
            Value::String(s) => Some(s.clone()),
            _ => {
                self.wrong_type(key, node, "a string");
                None
            }
        }
    }

    pub fn boolean(&mut self, key: &Key, node: &Node) -> Option<bool> {
        match &node.value {
            Value::Boolean(b) => Some(*b),
            _ => {
                self.wrong_type(key, node, "true or false");
                None
            }
        }
    }

    /// An integer in `lo..=hi`.
    pub fn int(&mut self, key: &Key, node: &Node, lo: i64, hi: i64) -> Option<i64> {
        let k = &key.name;
        match &node.value {
            Value::Integer(i) if (lo..=hi).contains(i) => Some(*i),
            Value::Integer(i) => {
                let p = Problem::IntOutOfRange {
                    key: k,
                    value: *i,
                    lo,
                    hi,
                };
                self.report(at(key, node), p);
                None
            }
            Value::Float(f) if *f > i64::MAX as f64 || *f < i64::MIN as f64 => {
                self.report(at(key, node), Problem::FloatOutOfRange { key: k, lo, hi });
                None
            }
            _ => {
                self.wrong_type(key, node, "an integer");
                None
            }
        }
    }

    pub fn u32(&mut self, key: &Key, node: &Node) -> Option<u32> {
        self.int(key, node, 0, u32::MAX as i64).map(|v| v as u32)
    }

    /// A unit string; a bare number gets the unit parser's "did you mean" for its text.
    fn unit<T: FromStr<Err = UnitError>>(
        &mut self,
        key: &Key,
        node: &Node,
        example: &str,
    ) -> Option<T> {
        let owned;
        let text: &str = match &node.value {
            Value::String(s) => s,
            Value::Integer(i) => {
                owned = i.to_string();
                &owned
            }
            Value::Float(f) => {
                owned = f.to_string();
                &owned
            }
            _ => {
                self.not_unit_string(key, node, example);
                return None;
            }
        };
        match text.parse::<T>() {
            Ok(v) if matches!(node.value, Value::String(_)) => Some(v),
            // A bare number that happens to parse (a size in bytes is fine, see `size`).
            Ok(_) => {
                self.not_unit_string(key, node, example);
                None
            }
            Err(e) => {
                self.report(at(key, node), Problem::Unit(e));
                None
            }
        }
    }

    fn not_unit_string(&mut self, key: &Key, node: &Node, example: &str) {
        let (key_name, found) = (&key.name, &node.value);
        let p = Problem::NotUnitString {
            key: key_name,
            example,
            found,
        };
        self.report(at(key, node), p);
    }

    pub fn rate(&mut self, key: &Key, node: &Node) -> Option<Rate> {
        if let Value::String(s) = &node.value {
            if s.trim_end().ends_with('%') {
                self.report(
                    at(key, node),
                    Problem::PercentNotAbsolute { key: &key.name },
                );
                return None;
            }
        }
        self.unit::<Rate>(key, node, "20mbit")
    }

    pub fn time(&mut self, key: &Key, node: &Node) -> Option<Time> {
        self.unit::<Time>(key, node, "10ms")
    }

    pub fn prob(&mut self, key: &Key, node: &Node) -> Option<Prob> {
        self.unit::<Prob>(key, node, "1%")
    }

    /// A size: a unit string, or a bare integer of bytes.
    pub fn size(&mut self, key: &Key, node: &Node) -> Option<Size> {
        match &node.value {
            Value::Integer(i) if *i >= 0 && *i < u32::MAX as i64 => Some(Size(*i as u64)),
            Value::Integer(i) => {
                self.report(at(key, node), Problem::SizeOutOfRange { value: *i });
                None
            }
            Value::String(_) => self.unit::<Size>(key, node, "16KiB"),
            _ => {
                self.wrong_type(key, node, "a size like \"16KiB\" or a number of bytes");
                None
            }
        }
    }

    /// `"40%"`, `{ percent = 40, min = "1mbit", max = "20mbit" }` or an absolute rate.
    pub fn rate_spec(&mut self, key: &Key, node: &Node) -> Option<RateSpec> {
        match &node.value {
            Value::String(s) if s.trim_end().ends_with('%') => {
                let num = s.trim().trim_end_matches('%').trim();
                let Some(p) = parse_plain_number(num) else {
                    self.report(at(key, node), Problem::InvalidPercentage { text: s });
                    return None;
                };
                self.percent(key, node, p).map(|percent| RateSpec::Pct {
                    percent,
                    min: None,
                    max: None,
                })
            }
            Value::Table(_) => self.rate_spec_table(key, node),
            _ => self.rate(key, node).map(RateSpec::Abs),
        }
    }

    /// `{ percent = 40, min = "1mbit", max = "20mbit" }`.
    fn rate_spec_table(&mut self, key: &Key, node: &Node) -> Option<RateSpec> {
        let place = Place::Value(&key.name);
        let entries = self.table(key, node, &["percent", "min", "max"], place)?;
        let mut percent = None;
        let (mut min, mut max) = (None, None);
        let mut ok = true;
        for (k, n) in entries {
            match k.name.as_str() {
                "percent" => {
                    let p = match &n.value {
                        Value::Integer(i) => self.percent(k, n, *i as f64),
                        Value::Float(f) => self.percent(k, n, *f),
                        _ => {
                            self.wrong_type(k, n, "a number like 40");
                            None
                        }
                    };
                    percent = track(&mut ok, p);
                }
                "min" => min = track(&mut ok, self.rate(k, n)),
                "max" => max = track(&mut ok, self.rate(k, n)),
                _ => ok = false,
            }
        }
        if !ok {
            return None;
        }
        let Some(percent) = percent else {
            self.report(at(key, node), Problem::PercentMissing { key: &key.name });
            return None;
        };
        if let (Some(lo), Some(hi)) = (min, max) {
            if lo > hi {
                let p = Problem::MinAboveMax {
                    key: &key.name,
                    min: lo,
                    max: hi,
                };
                self.report(at(key, node), p);
                return None;
            }
        }
        Some(RateSpec::Pct { percent, min, max })
    }

    fn percent(&mut self, key: &Key, node: &Node, p: f64) -> Option<f64> {
        if p > 0.0 && p <= 100.0 {
            Some(p)
        } else {
            self.report(at(key, node), Problem::PercentOutside { percent: p });
            None
        }
    }

    /// A string that must be one of `choices`.
    pub fn one_of(&mut self, k: &Key, n: &Node, choices: &[&str]) -> Option<String> {
        let s = self.string(k, n)?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let p = Problem::UnknownChoice {
            key: &k.name,
            value: &s,
            choices,
        };
        self.report(at(k, n), p);
        None
    }
}

/// A plain non-negative decimal ("40", "12.5"): no signs, exponents or inf.
fn parse_plain_number(s: &str) -> Option<f64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}
