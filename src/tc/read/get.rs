//! Typed getters for the members of tc's JSON objects, in the model's units.

use super::json::J;
use crate::units::{Prob, Size, Time};

pub fn u32_of(o: &J, k: &str) -> Option<u32> {
    o.get(k)
        .and_then(J::as_u64)
        .and_then(|v| u32::try_from(v).ok())
}

pub fn size_of(o: &J, k: &str) -> Option<Size> {
    o.get(k).and_then(J::as_u64).map(Size)
}

/// Microseconds, as tc prints codel's and tbf's times.
pub fn us_of(o: &J, k: &str) -> Option<Time> {
    o.get(k)
        .and_then(J::as_u64)
        .map(|us| Time(us.saturating_mul(1000)))
}

/// netem prints every time as float seconds (`"delay":0.01`, `"min-delay":0.002`).
pub fn secs_of(o: &J, k: &str) -> Option<Time> {
    o.get(k)?
        .as_f64()
        .filter(|s| *s >= 0.0 && *s < 1e9)
        .map(|s| Time((s * 1e9).round() as u64))
}

pub fn prob_of(o: &J, k: &str) -> Option<Prob> {
    o.get(k).and_then(J::as_f64).map(Prob)
}
