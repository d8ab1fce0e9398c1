//! When `watch` applies: a pure state machine over instants, so its bounds are tested
//! without a kernel.
//!
//! - **Debounce.** A trigger starts a pending apply. It runs once no trigger came for
//!   [`QUIET`], but at most [`MAX_WAIT`] after the first one: a burst is one apply, and a
//!   device that flaps for ever is still re-shaped at least every `MAX_WAIT`, never more
//!   often than that while the burst lasts (≤ 1 + burst length / `MAX_WAIT` applies).
//! - **Backoff.** A failed apply is retried after 1 s, 2 s, 4 s … up to [`MAX_BACKOFF`].
//!   Link events during the backoff join the pending retry (they cannot make it sooner: a
//!   flapping link must not turn a failing policy into a spin). A changed policy file or
//!   a SIGHUP is new input from a person: it resets the backoff and applies after the
//!   debounce.

use std::time::{Duration, Instant};

pub const QUIET: Duration = Duration::from_millis(200);
pub const MAX_WAIT: Duration = Duration::from_secs(1);
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct Schedule {
    first: Option<Instant>,
    last: Option<Instant>,
    /// Why the pending apply runs, in order, without repeats (for its log line).
    reasons: Vec<String>,
    failures: u32,
    retry_at: Option<Instant>,
}

impl Schedule {
    /// A reason to apply. `resets_backoff`: a policy change or SIGHUP.
    pub fn trigger(&mut self, now: Instant, reason: String, resets_backoff: bool) {
        self.first.get_or_insert(now);
        self.last = Some(now);
        if !self.reasons.contains(&reason) {
            self.reasons.push(reason);
        }
        if resets_backoff {
            self.retry_at = None;
        }
    }

    /// When the next apply is due, if one is.
    pub fn due(&self) -> Option<Instant> {
        let debounced = match (self.first, self.last) {
            (Some(f), Some(l)) => Some((l + QUIET).min(f + MAX_WAIT)),
            _ => None,
        };
        match (debounced, self.retry_at) {
            (Some(d), Some(r)) => Some(d.max(r)),
            (d, r) => d.or(r),
        }
    }

    /// Starts the apply that is due: returns its reasons and clears them.
    pub fn take(&mut self) -> Vec<String> {
        self.first = None;
        self.last = None;
        self.retry_at = None;
        let mut r = std::mem::take(&mut self.reasons);
        if r.is_empty() {
            r.push("retry".to_string());
        }
        r
    }

    /// Failures in a row so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The apply taken last succeeded.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = None;
    }

    /// The apply taken last failed: schedules the retry and returns its delay.
    pub fn failed(&mut self, now: Instant) -> Duration {
        self.failures += 1;
        let delay = FIRST_BACKOFF
            .saturating_mul(1 << (self.failures - 1).min(16))
            .min(MAX_BACKOFF);
        self.retry_at = Some(now + delay);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a schedule over events at the given offsets (ms) and counts applies until
    /// `end_ms`, every apply succeeding or failing as `ok` says.
    fn applies(events_ms: &[u64], end_ms: u64, ok: bool, link: bool) -> Vec<u64> {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut s = Schedule::default();
        let mut done = Vec::new();
        let mut ev = events_ms.iter().peekable();
        let mut now = 0;
        while now <= end_ms {
            while ev.peek().is_some_and(|&&e| e <= now) {
                s.trigger(at(*ev.next().unwrap()), "x".into(), !link);
            }
            if s.due().is_some_and(|d| d <= at(now)) {
                s.take();
                done.push(now);
                if ok {
                    s.succeeded();
                } else {
                    s.failed(at(now));
                }
            }
            now += 1;
        }
        done
    }

    #[test]
    fn a_burst_is_one_apply_after_the_quiet_time() {
        assert_eq!(applies(&[0, 10, 50, 120], 5000, true, true), vec![320]);
    }

    #[test]
    fn a_flapping_link_applies_at_most_once_per_max_wait() {
        // 200 events (100 flaps) in 10 s, one every 50 ms: never quiet for 200 ms.
        let ev: Vec<u64> = (0..200).map(|i| i * 50).collect();
        let done = applies(&ev, 12_000, true, true);
        assert!(done.len() <= 11, "{done:?}");
        // Once per MAX_WAIT while the burst lasts; the last one QUIET after it ends.
        let during = &done[..done.len() - 1];
        assert!(during.windows(2).all(|w| w[1] - w[0] >= 1000), "{done:?}");
        assert_eq!(done.last(), Some(&(199 * 50 + 200)));
    }

    #[test]
    fn failures_back_off_exponentially_even_under_link_events() {
        let ev: Vec<u64> = (0..600).map(|i| i * 50).collect();
        let done = applies(&ev, 30_000, false, true);
        let gaps: Vec<u64> = done.windows(2).map(|w| w[1] - w[0]).collect();
        // Each retry waits its backoff (plus at most one debounce of the events).
        for (gap, backoff) in gaps.iter().zip([1000, 2000, 4000, 8000]) {
            assert!((backoff..backoff + 1000).contains(gap), "{done:?}");
        }
        assert!(done.len() <= 6, "{done:?}");
    }

    #[test]
    fn a_retry_runs_without_new_events_and_a_policy_change_skips_the_backoff() {
        let t0 = Instant::now();
        let mut s = Schedule::default();
        s.trigger(t0, "start".into(), true);
        s.take();
        assert_eq!(s.failed(t0), FIRST_BACKOFF);
        assert_eq!(s.due(), Some(t0 + FIRST_BACKOFF));
        assert_eq!(s.take(), vec!["retry".to_string()]);
        assert_eq!(s.failed(t0), 2 * FIRST_BACKOFF);
        s.trigger(t0, "policy changed".into(), true);
        assert_eq!(s.due(), Some(t0 + QUIET));
        for _ in 0..20 {
            s.failed(t0);
        }
        assert_eq!(s.due(), Some(t0 + MAX_BACKOFF));
    }
}
