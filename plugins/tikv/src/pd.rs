//! PD's HTTP API: the JSON it returns and a client with short timeouts.
//!
//! Field names follow PD's `pkg/response/store.go`, `pkg/response/region.go` and
//! `server/api/health.go`. Every field a poll does not strictly need is optional,
//! and unknown fields are ignored, so older and newer PD versions both parse.

use crate::units::{parse_bytes, parse_go_duration_s, parse_rfc3339_ms};
use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// `GET /pd/api/v1/stores`.
#[derive(Debug, Clone, Deserialize)]
pub struct StoresInfo {
    #[serde(default)]
    pub count: usize,
    #[serde(default, deserialize_with = "null_as_default")]
    pub stores: Vec<StoreInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StoreInfo {
    pub store: MetaStore,
    #[serde(default)]
    pub status: Option<StoreStatus>,
}

/// metapb.Store flattened with PD's `state_name`.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaStore {
    pub id: u64,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub status_address: Option<String>,
    /// `Up`, `Disconnected`, `Down`, `Offline`, `Tombstone` (PD derives the middle two).
    #[serde(default)]
    pub state_name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct StoreStatus {
    #[serde(default, deserialize_with = "byte_size")]
    pub capacity: Option<f64>,
    #[serde(default, deserialize_with = "byte_size")]
    pub available: Option<f64>,
    #[serde(default, deserialize_with = "byte_size")]
    pub used_size: Option<f64>,
    #[serde(default)]
    pub leader_count: Option<u64>,
    #[serde(default)]
    pub region_count: Option<u64>,
    #[serde(default)]
    pub last_heartbeat_ts: Option<String>,
    #[serde(default)]
    pub uptime: Option<String>,
}

impl StoreStatus {
    /// Unix ms of the last heartbeat, when PD reported a readable one.
    pub fn last_heartbeat_ms(&self) -> Option<i64> {
        self.last_heartbeat_ts.as_deref().and_then(parse_rfc3339_ms)
    }

    pub fn uptime_s(&self) -> Option<f64> {
        self.uptime.as_deref().and_then(parse_go_duration_s)
    }

    /// Fraction of the disk in use: (capacity - available) / capacity.
    pub fn disk_used_fraction(&self) -> Option<f64> {
        match (self.capacity, self.available) {
            (Some(c), Some(a)) if c > 0.0 => Some(((c - a) / c).clamp(0.0, 1.0)),
            _ => None,
        }
    }
}

/// One element of `GET /pd/api/v1/health`.
#[derive(Debug, Clone, Deserialize)]
pub struct MemberHealth {
    pub name: String,
    #[serde(default)]
    pub member_id: u64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub client_urls: Vec<String>,
    #[serde(default)]
    pub health: bool,
}

/// `GET /pd/api/v1/regions`.
#[derive(Debug, Clone, Deserialize)]
pub struct RegionsInfo {
    #[serde(default)]
    pub count: usize,
    #[serde(default, deserialize_with = "null_as_default")]
    pub regions: Vec<RegionInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RegionInfo {
    pub id: u64,
    /// PD writes `{}` (or a peer with store 0) while the region elects a leader.
    #[serde(default)]
    pub leader: Option<Peer>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Peer {
    #[serde(default)]
    pub id: u64,
    #[serde(default)]
    pub store_id: u64,
}

impl RegionInfo {
    pub fn has_leader(&self) -> bool {
        self.leader.as_ref().is_some_and(|p| p.store_id != 0)
    }
}

fn null_as_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// PD writes sizes as go-units strings; older versions and tools write plain numbers.
fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Number(f64),
        Text(String),
    }
    Ok(match Option::<Size>::deserialize(d)? {
        Some(Size::Number(n)) => Some(n),
        Some(Size::Text(t)) => parse_bytes(&t),
        None => None,
    })
}

/// What went wrong asking PD.
#[derive(Debug, thiserror::Error)]
pub enum PdError {
    #[error("PD at {url} does not answer: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("PD at {url} answered HTTP {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("PD at {url} answered something that is not PD's JSON: {detail}")]
    Garbage { url: String, detail: String },
}

/// A PD HTTP client. Requests time out quickly so a slow PD cannot stall a health poll.
#[derive(Debug, Clone)]
pub struct PdClient {
    /// PD's own address, which errors name.
    base: String,
    /// Where the requests go: `base`, or a proxy route to it.
    send_to: String,
    http: reqwest::Client,
}

impl PdClient {
    pub fn new(base: &str, timeout: Duration) -> Result<PdClient, String> {
        let base = base.trim().trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(format!(
                "PD address `{base}` must start with http:// (for example http://127.0.0.1:2379)"
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(PdClient {
            send_to: base.clone(),
            base,
            http,
        })
    }

    /// Sends the requests to `route` (a proxy route to the same PD, e.g.
    /// `http://127.0.0.1:40113`); errors still name PD's own address.
    pub fn through(self, route: &str) -> PdClient {
        PdClient {
            send_to: route.trim_end_matches('/').to_string(),
            ..self
        }
    }

    /// PD's own address (not the route the requests may go through).
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, PdError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: reqwest::Error| PdError::Unreachable {
            url: url.clone(),
            detail: if e.is_timeout() {
                "timed out".to_string()
            } else {
                e.to_string()
            },
        };
        let response = self
            .http
            .get(format!("{}{path}", self.send_to))
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.text().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(PdError::Status {
                url,
                status: status.as_u16(),
                body: body.chars().take(200).collect(),
            });
        }
        serde_json::from_str(&body).map_err(|e| PdError::Garbage {
            url,
            detail: e.to_string(),
        })
    }

    pub async fn stores(&self) -> Result<StoresInfo, PdError> {
        self.get("/pd/api/v1/stores").await
    }

    pub async fn health(&self) -> Result<Vec<MemberHealth>, PdError> {
        self.get("/pd/api/v1/health").await
    }

    pub async fn regions(&self) -> Result<RegionsInfo, PdError> {
        self.get("/pd/api/v1/regions").await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_in_election_has_no_leader() {
        let r: RegionInfo = serde_json::from_str(r#"{"id":7,"leader":{}}"#).unwrap();
        assert!(!r.has_leader());
        let r: RegionInfo = serde_json::from_str(r#"{"id":7,"leader":{"role_name":""}}"#).unwrap();
        assert!(!r.has_leader());
        let r: RegionInfo = serde_json::from_str(r#"{"id":7}"#).unwrap();
        assert!(!r.has_leader());
        let r: RegionInfo =
            serde_json::from_str(r#"{"id":7,"leader":{"id":9,"store_id":2,"role_name":"Voter"}}"#)
                .unwrap();
        assert!(r.has_leader());
    }

    #[test]
    fn sizes_parse_from_strings_and_numbers() {
        let s: StoreStatus = serde_json::from_str(
            r#"{"capacity":"100GiB","available":25769803776,"used_size":"1.5GiB"}"#,
        )
        .unwrap();
        assert_eq!(s.capacity, Some(100.0 * 1024f64.powi(3)));
        assert!((s.disk_used_fraction().unwrap() - 0.76).abs() < 1e-9);
        let s: StoreStatus = serde_json::from_str("{}").unwrap();
        assert_eq!(s.disk_used_fraction(), None);
    }
}
