//! Tracks since when each invariant has held its current status, so plugins
//! only report the status and `since_ms` stays truthful across polls.

use crate::model::{Invariant, InvariantStatus};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct SinceTracker(Mutex<HashMap<String, (InvariantStatus, u64)>>);

impl SinceTracker {
    /// Sets each invariant's `since_ms` to when its status last changed
    /// (the given `since_ms` is taken as the time of this observation).
    pub fn stamp(&self, invariants: &mut [Invariant]) {
        let mut seen = match self.0.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        for inv in invariants {
            let entry = seen
                .entry(inv.name.clone())
                .or_insert((inv.status, inv.since_ms));
            if entry.0 != inv.status {
                *entry = (inv.status, inv.since_ms);
            }
            inv.since_ms = entry.1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::AnomalyClass;

    fn inv(status: InvariantStatus, at: u64) -> Invariant {
        Invariant {
            name: "x".into(),
            status,
            detail: String::new(),
            since_ms: at,
            class: AnomalyClass::Other,
            components: vec![],
            observed: None,
            bound: None,
            ..Default::default()
        }
    }

    #[test]
    fn since_moves_only_on_status_change() {
        let t = SinceTracker::default();
        let mut a = [inv(InvariantStatus::Ok, 10)];
        t.stamp(&mut a);
        let mut b = [inv(InvariantStatus::Ok, 20)];
        t.stamp(&mut b);
        assert_eq!(b[0].since_ms, 10);
        let mut c = [inv(InvariantStatus::Violated, 30)];
        t.stamp(&mut c);
        assert_eq!(c[0].since_ms, 30);
        let mut d = [inv(InvariantStatus::Violated, 40)];
        t.stamp(&mut d);
        assert_eq!(d[0].since_ms, 30);
    }
}
