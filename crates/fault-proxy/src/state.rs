//! A route's fault set as its connections see it, and what it means for one
//! connection: which faults apply (drawn once per connection and fault) and
//! the combined effect on each direction. The set is published through a
//! `tokio::sync::watch`, so that open connections see every change and read
//! it only when it changes, never per chunk.

use crate::fault::{ms, Direction, Fault, FaultKind};
use rand::{Rng, SeedableRng};
use std::time::Duration;

/// A fault as installed on a route.
#[derive(Debug, Clone)]
pub(crate) struct Active {
    /// Unique within the proxy: with the connection's id and the seed it
    /// decides whether a partial fault applies to that connection.
    pub serial: u64,
    pub name: String,
    pub fault: Fault,
}

/// What a route's connections observe.
#[derive(Debug, Clone)]
pub(crate) struct RouteState {
    pub enabled: bool,
    pub faults: Vec<Active>,
}

/// One connection's identity for the draws.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnCtx {
    pub id: u64,
    pub seed: u64,
}

impl ConnCtx {
    /// Whether `a` applies to this connection. Drawn from a RNG seeded by
    /// (seed, connection, fault), so the answer is the same for both
    /// directions and every time it is asked, without shared state, and a
    /// run with a fixed seed picks the same connections again.
    pub fn applies(&self, a: &Active) -> bool {
        let f = a.fault.fraction;
        if f >= 1.0 {
            return true;
        }
        if f <= 0.0 {
            return false;
        }
        self.rng(a.serial).random::<f64>() < f
    }

    /// A RNG for this connection and `stream` (a fault serial, or a pump's jitter).
    pub fn rng(&self, stream: u64) -> rand::rngs::StdRng {
        let mixed = self.seed
            ^ self.id.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ stream.wrapping_mul(0xC2B2_AE3D_27D4_EB4F).rotate_left(31);
        rand::rngs::StdRng::seed_from_u64(mixed)
    }

    /// The faults of `state` that apply to this connection.
    pub fn applying<'a>(&self, state: &'a RouteState) -> impl Iterator<Item = &'a Active> + 'a {
        let me = *self;
        state.faults.iter().filter(move |a| me.applies(a))
    }
}

/// The combined effect of the applying faults on one direction.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Effect {
    /// Forward nothing (blackhole, timeout, a disabled route).
    pub hold: bool,
    /// Delay and jitter, summed over latency faults.
    pub latency: Option<(Duration, Duration)>,
    /// The tightest bandwidth limit, bytes/s.
    pub bandwidth: Option<u64>,
}

impl Effect {
    pub fn of(state: &RouteState, pump: Direction, conn: &ConnCtx) -> Effect {
        let mut e = Effect {
            hold: !state.enabled,
            ..Effect::default()
        };
        for a in conn
            .applying(state)
            .filter(|a| a.fault.direction.covers(pump))
        {
            match a.fault.kind {
                FaultKind::Latency {
                    delay_ms,
                    jitter_ms,
                } => {
                    let (d, j) = e.latency.unwrap_or_default();
                    e.latency = Some((d + ms(delay_ms), j + ms(jitter_ms)));
                }
                FaultKind::Bandwidth { bytes_per_sec } => {
                    e.bandwidth = Some(e.bandwidth.map_or(bytes_per_sec, |b| b.min(bytes_per_sec)));
                }
                FaultKind::Blackhole | FaultKind::Timeout { .. } => e.hold = true,
                FaultKind::ResetPeer { .. } => {}
            }
        }
        e
    }

    /// No fault touches the bytes: the pump may copy straight through.
    pub fn is_clear(&self) -> bool {
        *self == Effect::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(faults: Vec<Fault>) -> RouteState {
        RouteState {
            enabled: true,
            faults: faults
                .into_iter()
                .enumerate()
                .map(|(i, fault)| Active {
                    serial: i as u64,
                    name: fault.effective_name(),
                    fault,
                })
                .collect(),
        }
    }

    #[test]
    fn effects_combine_per_direction() {
        let s = state(vec![
            Fault::latency(10.0, 2.0).direction(Direction::Downstream),
            Fault::latency(5.0, 0.0),
            Fault::bandwidth(1000),
            Fault::bandwidth(500).direction(Direction::Upstream),
            Fault::reset_peer(100.0),
        ]);
        let c = ConnCtx { id: 1, seed: 7 };
        let down = Effect::of(&s, Direction::Downstream, &c);
        assert_eq!(
            down.latency,
            Some((Duration::from_millis(15), Duration::from_millis(2)))
        );
        assert_eq!(down.bandwidth, Some(1000));
        assert!(!down.hold);
        let up = Effect::of(&s, Direction::Upstream, &c);
        assert_eq!(up.latency, Some((Duration::from_millis(5), Duration::ZERO)));
        assert_eq!(up.bandwidth, Some(500));
        let held = state(vec![Fault::timeout(0.0).direction(Direction::Upstream)]);
        assert!(Effect::of(&held, Direction::Upstream, &c).hold);
        assert!(Effect::of(&held, Direction::Downstream, &c).is_clear());
        let disabled = RouteState {
            enabled: false,
            faults: vec![],
        };
        assert!(Effect::of(&disabled, Direction::Downstream, &c).hold);
    }

    #[test]
    fn fractions_pick_connections_reproducibly() {
        let s = state(vec![Fault::blackhole().fraction(0.3)]);
        let picked = |seed| -> Vec<bool> {
            (0..1000)
                .map(|id| ConnCtx { id, seed }.applies(&s.faults[0]))
                .collect()
        };
        let a = picked(42);
        assert_eq!(a, picked(42), "the same seed picks the same connections");
        assert_ne!(a, picked(43), "another seed picks others");
        let share = a.iter().filter(|p| **p).count();
        assert!((200..400).contains(&share), "about 30% picked: {share}");
        for (fraction, want) in [(0.0, 0), (1.0, 1000)] {
            let s = state(vec![Fault::blackhole().fraction(fraction)]);
            let n = (0..1000)
                .filter(|id| ConnCtx { id: *id, seed: 1 }.applies(&s.faults[0]))
                .count();
            assert_eq!(n, want, "fraction {fraction}");
        }
    }
}
