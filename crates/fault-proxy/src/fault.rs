//! What a fault is: its kind, the direction it acts on, the fraction of
//! connections it applies to, and the checks that keep a bad one out. One wire
//! format (flat JSON, see docs/network-faults.md) serves the HTTP API and the
//! typed API alike, so both reject the same input with the same words.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest delay, timeout or reset delay accepted: beyond it a typo
/// (`500000` for `500`) is far more likely than intent.
pub const MAX_MS: f64 = 24.0 * 3600.0 * 1000.0;

/// Which bytes a fault acts on, seen from the client of the route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Client → server (requests).
    Upstream,
    /// Server → client (responses).
    Downstream,
    /// Both ways. The default: a network fault (a partition, a slow link) is
    /// symmetric unless told otherwise. Toxiproxy defaults to downstream.
    #[default]
    Both,
}

impl Direction {
    /// Whether a fault in direction `self` acts on the pump of direction `pump`
    /// (`Upstream` or `Downstream`).
    pub fn covers(self, pump: Direction) -> bool {
        self == Direction::Both || self == pump
    }

    fn label(self) -> &'static str {
        match self {
            Direction::Upstream => "upstream",
            Direction::Downstream => "downstream",
            Direction::Both => "both",
        }
    }
}

/// What a fault does. Delays are in milliseconds as `f64` (sub-millisecond
/// delays are allowed); [`Fault::validate`] rejects negative, NaN and absurd ones.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultKind {
    /// Each chunk is held `delay_ms` ± a uniform draw of up to `jitter_ms`
    /// (never below 0), order kept.
    Latency { delay_ms: f64, jitter_ms: f64 },
    /// At most `bytes_per_sec` forwarded per second.
    Bandwidth { bytes_per_sec: u64 },
    /// Nothing is forwarded and nothing closes: a partition. The proxy stops
    /// reading, so the sender's buffers fill as they would behind a dead link,
    /// and what was held flows once the fault is removed.
    Blackhole,
    /// Nothing is forwarded, and the connection is closed `after_ms` after the
    /// fault began to apply to it (Toxiproxy's `timeout`); `0` holds forever.
    Timeout { after_ms: f64 },
    /// The connection is reset (RST: SO_LINGER 0, then close) `after_ms` after
    /// the fault began to apply to it. The direction says who gets the RST:
    /// downstream the client, upstream the server, both both.
    ResetPeer { after_ms: f64 },
}

impl FaultKind {
    pub fn name(&self) -> &'static str {
        match self {
            FaultKind::Latency { .. } => "latency",
            FaultKind::Bandwidth { .. } => "bandwidth",
            FaultKind::Blackhole => "blackhole",
            FaultKind::Timeout { .. } => "timeout",
            FaultKind::ResetPeer { .. } => "reset_peer",
        }
    }
}

/// The kinds a fault can have, as the wire format names them.
pub const KINDS: [&str; 5] = ["latency", "bandwidth", "blackhole", "timeout", "reset_peer"];

/// One fault on a route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Wire", into = "Wire")]
pub struct Fault {
    /// Unique per route; the handle to remove it by. `None` on input gets
    /// `<kind>_<direction>` (e.g. `latency_downstream`).
    pub name: Option<String>,
    pub kind: FaultKind,
    pub direction: Direction,
    /// The share of connections it applies to, drawn once per connection.
    pub fraction: f64,
}

impl Fault {
    /// A fault on both directions of every connection.
    pub fn new(kind: FaultKind) -> Fault {
        Fault {
            name: None,
            kind,
            direction: Direction::Both,
            fraction: 1.0,
        }
    }

    pub fn latency(delay_ms: f64, jitter_ms: f64) -> Fault {
        Fault::new(FaultKind::Latency {
            delay_ms,
            jitter_ms,
        })
    }

    pub fn bandwidth(bytes_per_sec: u64) -> Fault {
        Fault::new(FaultKind::Bandwidth { bytes_per_sec })
    }

    pub fn blackhole() -> Fault {
        Fault::new(FaultKind::Blackhole)
    }

    pub fn timeout(after_ms: f64) -> Fault {
        Fault::new(FaultKind::Timeout { after_ms })
    }

    pub fn reset_peer(after_ms: f64) -> Fault {
        Fault::new(FaultKind::ResetPeer { after_ms })
    }

    pub fn named(mut self, name: impl Into<String>) -> Fault {
        self.name = Some(name.into());
        self
    }

    pub fn direction(mut self, direction: Direction) -> Fault {
        self.direction = direction;
        self
    }

    pub fn fraction(mut self, fraction: f64) -> Fault {
        self.fraction = fraction;
        self
    }

    /// The name it is known by on its route.
    pub fn effective_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}_{}", self.kind.name(), self.direction.label()))
    }

    /// Rejects what cannot be meant: negative, NaN or absurd delays, a
    /// fraction outside 0..=1, a bandwidth of 0 (a blackhole says that), an
    /// empty name.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::InvalidFault(why));
        if !(0.0..=1.0).contains(&self.fraction) {
            return bad(format!(
                "fraction must be within 0..=1, got {}",
                self.fraction
            ));
        }
        if self.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return bad("the name must not be empty".into());
        }
        let ms = |field: &str, v: f64| -> Result<(), Error> {
            if !(0.0..=MAX_MS).contains(&v) {
                return Err(Error::InvalidFault(format!(
                    "{field} must be a number of milliseconds within 0..={MAX_MS}, got {v}"
                )));
            }
            Ok(())
        };
        match self.kind {
            FaultKind::Latency {
                delay_ms,
                jitter_ms,
            } => {
                ms("delay_ms", delay_ms)?;
                ms("jitter_ms", jitter_ms)?;
            }
            FaultKind::Bandwidth { bytes_per_sec: 0 } => {
                return bad(
                    "bytes_per_sec must be at least 1 (use a blackhole to stop all data)".into(),
                );
            }
            FaultKind::Bandwidth { .. } | FaultKind::Blackhole => {}
            FaultKind::Timeout { after_ms } | FaultKind::ResetPeer { after_ms } => {
                ms("after_ms", after_ms)?;
            }
        }
        Ok(())
    }
}

/// Milliseconds (validated) as a [`Duration`].
pub(crate) fn ms(v: f64) -> Duration {
    Duration::from_secs_f64(v.clamp(0.0, MAX_MS) / 1000.0)
}

/// The flat JSON shape: `{"kind": "latency", "delay_ms": 50, "jitter_ms": 5,
/// "direction": "downstream", "fraction": 1, "name": "slow-redis"}`.
/// Unknown fields are refused so that a typo (`jiter_ms`) is not silently a
/// fault without jitter.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    kind: String,
    #[serde(default)]
    direction: Direction,
    #[serde(default = "one")]
    fraction: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delay_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    jitter_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes_per_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after_ms: Option<f64>,
}

fn one() -> f64 {
    1.0
}

impl TryFrom<Wire> for Fault {
    type Error = String;

    fn try_from(w: Wire) -> Result<Fault, String> {
        let allowed: &[&str] = match w.kind.as_str() {
            "latency" => &["delay_ms", "jitter_ms"],
            "bandwidth" => &["bytes_per_sec"],
            "blackhole" => &[],
            "timeout" | "reset_peer" => &["after_ms"],
            other => {
                return Err(format!(
                    "unknown fault kind `{other}`; known kinds: {}",
                    KINDS.join(", ")
                ))
            }
        };
        let given = [
            ("delay_ms", w.delay_ms.is_some()),
            ("jitter_ms", w.jitter_ms.is_some()),
            ("bytes_per_sec", w.bytes_per_sec.is_some()),
            ("after_ms", w.after_ms.is_some()),
        ];
        if let Some((field, _)) = given.iter().find(|(f, g)| *g && !allowed.contains(f)) {
            return Err(format!("a {} fault has no field `{field}`", w.kind));
        }
        let need = |v: Option<f64>, field: &str| {
            v.ok_or_else(|| format!("a {} fault needs `{field}`", w.kind))
        };
        let kind = match w.kind.as_str() {
            "latency" => FaultKind::Latency {
                delay_ms: need(w.delay_ms, "delay_ms")?,
                jitter_ms: w.jitter_ms.unwrap_or(0.0),
            },
            "bandwidth" => FaultKind::Bandwidth {
                bytes_per_sec: w
                    .bytes_per_sec
                    .ok_or("a bandwidth fault needs `bytes_per_sec`")?,
            },
            "blackhole" => FaultKind::Blackhole,
            "timeout" => FaultKind::Timeout {
                after_ms: need(w.after_ms, "after_ms")?,
            },
            _ => FaultKind::ResetPeer {
                after_ms: w.after_ms.unwrap_or(0.0),
            },
        };
        let fault = Fault {
            name: w.name,
            kind,
            direction: w.direction,
            fraction: w.fraction,
        };
        fault.validate().map_err(|e| e.to_string())?;
        Ok(fault)
    }
}

impl From<Fault> for Wire {
    fn from(f: Fault) -> Wire {
        let mut w = Wire {
            name: f.name,
            kind: f.kind.name().into(),
            direction: f.direction,
            fraction: f.fraction,
            delay_ms: None,
            jitter_ms: None,
            bytes_per_sec: None,
            after_ms: None,
        };
        match f.kind {
            FaultKind::Latency {
                delay_ms,
                jitter_ms,
            } => {
                w.delay_ms = Some(delay_ms);
                w.jitter_ms = Some(jitter_ms);
            }
            FaultKind::Bandwidth { bytes_per_sec } => w.bytes_per_sec = Some(bytes_per_sec),
            FaultKind::Blackhole => {}
            FaultKind::Timeout { after_ms } | FaultKind::ResetPeer { after_ms } => {
                w.after_ms = Some(after_ms)
            }
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Fault, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn the_wire_format_round_trips() {
        for f in [
            Fault::latency(50.0, 5.0).direction(Direction::Downstream),
            Fault::bandwidth(1 << 20).named("slow").fraction(0.5),
            Fault::blackhole().direction(Direction::Upstream),
            Fault::timeout(0.0),
            Fault::reset_peer(100.0),
        ] {
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(parse(&json).unwrap(), f, "{json}");
        }
        let f = parse(r#"{"kind":"latency","delay_ms":50}"#).unwrap();
        assert_eq!(f, Fault::latency(50.0, 0.0));
        assert_eq!(f.effective_name(), "latency_both");
    }

    #[test]
    fn bad_faults_are_refused_with_what_is_wrong() {
        let cases = [
            (r#"{"kind":"latency","delay_ms":-5}"#, "delay_ms must be"),
            (
                r#"{"kind":"latency","delay_ms":5,"jitter_ms":-1}"#,
                "jitter_ms must be",
            ),
            (r#"{"kind":"latency"}"#, "needs `delay_ms`"),
            (r#"{"kind":"lag","delay_ms":5}"#, "unknown fault kind `lag`"),
            (
                r#"{"kind":"latency","delay_ms":5,"jiter_ms":1}"#,
                "jiter_ms",
            ),
            (
                r#"{"kind":"blackhole","delay_ms":5}"#,
                "has no field `delay_ms`",
            ),
            (r#"{"kind":"bandwidth","bytes_per_sec":0}"#, "at least 1"),
            (
                r#"{"kind":"blackhole","fraction":1.5}"#,
                "fraction must be within 0..=1",
            ),
            (r#"{"kind":"blackhole","direction":"sideways"}"#, "sideways"),
            (r#"{"kind":"timeout","after_ms":1e12}"#, "after_ms must be"),
        ];
        for (json, want) in cases {
            let err = parse(json).expect_err(json);
            assert!(err.contains(want), "{json}: {err}");
        }
        let nan = Fault::latency(f64::NAN, 0.0).validate().unwrap_err();
        assert!(nan.to_string().contains("delay_ms"), "{nan}");
        assert!(Fault::blackhole().fraction(-0.1).validate().is_err());
        assert!(Fault::blackhole().named(" ").validate().is_err());
    }

    #[test]
    fn directions_cover_their_pumps() {
        use Direction::*;
        assert!(Both.covers(Upstream) && Both.covers(Downstream));
        assert!(Upstream.covers(Upstream) && !Upstream.covers(Downstream));
        assert!(Downstream.covers(Downstream) && !Downstream.covers(Upstream));
    }
}
