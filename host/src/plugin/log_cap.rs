//! A cap on how many log lines a plugin may send: a plugin logging in a
//! tight loop would otherwise fill the event log (and, in headless runs,
//! stdout) faster than anyone reads it and push the host's own lines out.
//! Past [`MAX_LOG_LINES_PER_SECOND`] in one second the rest of that second's
//! lines are dropped, and one warning (once per instance) names the plugin
//! and the limit.

use super::sanitize::{Kind, Warning};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Log lines kept per plugin instance in one second. The subjects here log
/// a few lines per chapter; a hundred a second is a screenful of event log.
pub const MAX_LOG_LINES_PER_SECOND: u32 = 100;

/// Counts one instance's log lines in the current one-second window.
#[derive(Debug)]
pub struct LogCap {
    limit: u32,
    window: Mutex<(Instant, u32)>,
}

impl Default for LogCap {
    fn default() -> Self {
        LogCap::new(MAX_LOG_LINES_PER_SECOND)
    }
}

impl LogCap {
    pub fn new(limit: u32) -> Self {
        LogCap {
            limit,
            window: Mutex::new((Instant::now(), 0)),
        }
    }

    /// Whether a line arriving now is kept; when it is the first dropped, the
    /// warning to give (the caller's `Warned` gives it once per instance).
    pub fn admit(&self, plugin: &str) -> (bool, Option<Warning>) {
        self.admit_at(plugin, Instant::now())
    }

    fn admit_at(&self, plugin: &str, now: Instant) -> (bool, Option<Warning>) {
        let mut guard = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let (start, count) = &mut *guard;
        if now.duration_since(*start) >= Duration::from_secs(1) {
            *start = now;
            *count = 0;
        }
        *count = count.saturating_add(1);
        if *count <= self.limit {
            return (true, None);
        }
        let warning = (*count == self.limit + 1).then(|| Warning {
            kind: Kind::TooMany("log lines"),
            message: format!(
                "plugin `{plugin}` sent more than {limit} log lines in one second; the host drops the rest of that second's (limit: {limit} log lines per second, see docs/limits.md)",
                limit = self.limit
            ),
        });
        (false, warning)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_limit_are_dropped_until_the_next_second() {
        let cap = LogCap::new(3);
        let t0 = Instant::now();
        let kept: Vec<bool> = (0..10).map(|_| cap.admit_at("p", t0).0).collect();
        assert_eq!(kept.iter().filter(|k| **k).count(), 3);
        assert!(kept[..3].iter().all(|k| *k));
        assert!(
            cap.admit_at("p", t0 + Duration::from_secs(1)).0,
            "a new second"
        );
    }

    #[test]
    fn a_flood_over_several_seconds_keeps_the_limit_in_each() {
        let cap = LogCap::new(5);
        let t0 = Instant::now();
        // 40 lines in each of three seconds, 10 ms apart within a second.
        let kept: Vec<usize> = (0..3u64)
            .map(|second| {
                (0..40u64)
                    .filter(|k| {
                        let at = t0 + Duration::from_secs(second) + Duration::from_millis(k * 10);
                        cap.admit_at("p", at).0
                    })
                    .count()
            })
            .collect();
        assert_eq!(kept, [5, 5, 5]);
    }

    #[test]
    fn the_first_line_dropped_carries_the_warning_naming_plugin_and_limit() {
        let cap = LogCap::new(2);
        let t0 = Instant::now();
        let warnings: Vec<Warning> = (0..6).filter_map(|_| cap.admit_at("noisy", t0).1).collect();
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].message.contains("`noisy`"));
        assert!(warnings[0]
            .message
            .contains("limit: 2 log lines per second"));
    }
}
