//! From one poll of PD (and metrics) to nodes, metrics and invariant verdicts.
//! Pure: no I/O, so every verdict is tested on PD's JSON directly.

use crate::pd::{MemberHealth, RegionsInfo, StoreInfo, StoresInfo};
use plugin_api::{
    AnomalyClass, ComponentKind, Invariant, InvariantStatus, Metric, NodeHealth, NodeStatus,
};

/// Invariant names, shared with the chapters and the glossary.
pub const STORE_DOWN: &str = "store down";
pub const LEADER_BALANCE: &str = "leader balance";
pub const REGIONS_WITHOUT_LEADER: &str = "regions without leader";
pub const PD_HEALTHY: &str = "pd healthy";
pub const P99_LATENCY: &str = "p99 latency";
pub const DISK_USAGE: &str = "disk usage";

/// The bounds the invariants check against.
#[derive(Debug, Clone, PartialEq)]
pub struct Bounds {
    /// Largest allowed deviation of a store's leader (or region) count from the mean, as a fraction of the mean.
    pub balance_fraction: f64,
    /// Deviations of at most this many leaders are never an imbalance (small clusters).
    pub balance_slack: f64,
    /// p99 latency bound under load (the original: 100 ms).
    pub p99_ms: f64,
    /// Largest used fraction of a store's disk (the original: 70 %).
    pub disk_used: f64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            balance_fraction: 0.5,
            balance_slack: 3.0,
            p99_ms: 100.0,
            disk_used: 0.70,
        }
    }
}

/// Cluster throughput and latency, from TiKV's metrics or the load generator.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadView {
    pub qps: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Where the figures come from ("tikv metrics", "go-ycsb").
    pub source: String,
}

/// One poll's raw results; errors are kept as text.
#[derive(Debug, Clone)]
pub struct Observation {
    pub at_ms: u64,
    pub pd_url: String,
    pub stores: Result<StoresInfo, String>,
    /// The last store list PD gave, to show the stores as unknown while PD is away.
    pub last_stores: Option<StoresInfo>,
    pub members: Result<Vec<MemberHealth>, String>,
    /// The last member list PD gave: a PD that stops answering keeps its
    /// ids (shown down), so what depends on it still names it.
    pub last_members: Option<Vec<MemberHealth>>,
    pub regions: Result<RegionsInfo, String>,
    pub load: Option<LoadView>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub nodes: Vec<NodeHealth>,
    pub metrics: Vec<Metric>,
    pub invariants: Vec<Invariant>,
}

pub fn store_node_id(id: u64) -> String {
    format!("store-{id}")
}

/// PD's state name as a node status. An Up store whose heartbeats stopped is
/// `Disconnected` (and `Down` only after max-store-down-time): both count as down.
pub fn node_status(state_name: &str) -> NodeStatus {
    match state_name {
        "Up" => NodeStatus::Up,
        "Disconnected" | "Down" => NodeStatus::Down,
        "Offline" => NodeStatus::Degraded,
        _ => NodeStatus::Unknown,
    }
}

pub fn is_down(state_name: &str) -> bool {
    matches!(state_name, "Disconnected" | "Down")
}

fn invariant(name: &str, class: AnomalyClass, at_ms: u64) -> Invariant {
    Invariant {
        name: name.into(),
        status: InvariantStatus::Unknown,
        detail: String::new(),
        since_ms: at_ms,
        class,
        components: Vec::new(),
        observed: None,
        bound: None,
        ..Default::default()
    }
}

fn verdict(violated: bool) -> InvariantStatus {
    if violated {
        InvariantStatus::Violated
    } else {
        InvariantStatus::Ok
    }
}

pub fn assess(obs: &Observation, bounds: &Bounds) -> Assessment {
    let mut nodes = store_nodes(obs);
    nodes.extend(pd_nodes(obs));
    let mut metrics = Vec::new();
    if let Ok(stores) = &obs.stores {
        let up = stores
            .stores
            .iter()
            .filter(|s| s.store.state_name == "Up")
            .count();
        metrics.push(Metric::new(
            "stores up",
            up as f64,
            format!("of {}", stores.stores.len()),
        ));
        let sum = |f: fn(&StoreInfo) -> Option<u64>| {
            stores.stores.iter().filter_map(f).sum::<u64>() as f64
        };
        metrics.push(Metric::new(
            "leaders",
            sum(|s| s.status.as_ref()?.leader_count),
            "",
        ));
        metrics.push(Metric::new(
            "regions",
            sum(|s| s.status.as_ref()?.region_count),
            "",
        ));
    }
    if let Ok(regions) = &obs.regions {
        let leaderless = regions.regions.iter().filter(|r| !r.has_leader()).count();
        metrics.push(Metric::new("regions without leader", leaderless as f64, ""));
    }
    if let Some(load) = &obs.load {
        if let Some(qps) = load.qps {
            metrics.push(Metric::new("qps", qps, "ops/s"));
        }
        if let Some(p99) = load.p99_ms {
            metrics.push(Metric::new("p99 latency", p99, "ms"));
        }
    }
    if let Some((_, used)) = worst_disk(obs) {
        metrics.push(Metric::new("disk used", used * 100.0, "%"));
    }
    let invariants = vec![
        store_down(obs),
        leader_balance(obs, bounds),
        regions_without_leader(obs),
        pd_healthy(obs),
        p99_latency(obs, bounds),
        disk_usage(obs, bounds),
    ];
    Assessment {
        nodes,
        metrics,
        invariants,
    }
}

/// The ids of PD's members, as the stores' `depends_on`: the current
/// members, else the last known, else the generic `pd`.
fn pd_ids(obs: &Observation) -> Vec<String> {
    match (&obs.members, &obs.last_members) {
        (Ok(m), _) if !m.is_empty() => m.iter().map(|m| m.name.clone()).collect(),
        (_, Some(last)) if !last.is_empty() => last.iter().map(|m| m.name.clone()).collect(),
        _ => vec!["pd".into()],
    }
}

fn store_nodes(obs: &Observation) -> Vec<NodeHealth> {
    let (stores, known) = match (&obs.stores, &obs.last_stores) {
        (Ok(s), _) => (s, true),
        (Err(_), Some(last)) => (last, false),
        (Err(_), None) => return Vec::new(),
    };
    stores
        .stores
        .iter()
        .map(|s| {
            let mut metrics = Vec::new();
            if let Some(st) = &s.status {
                if let Some(l) = st.leader_count {
                    metrics.push(Metric::new("leaders", l as f64, ""));
                }
                if let Some(r) = st.region_count {
                    metrics.push(Metric::new("regions", r as f64, ""));
                }
                if let Some(u) = st.disk_used_fraction() {
                    metrics.push(Metric::new("disk used", u * 100.0, "%"));
                }
                if let Some(hb) = st.last_heartbeat_ms() {
                    let age = (obs.at_ms as i64 - hb).max(0) as f64 / 1000.0;
                    metrics.push(Metric::new("heartbeat age", age, "s"));
                }
            }
            NodeHealth {
                id: store_node_id(s.store.id),
                role: "tikv".into(),
                kind: ComponentKind::Member,
                depends_on: pd_ids(obs),
                address: s.store.address.clone(),
                status: if known {
                    node_status(&s.store.state_name)
                } else {
                    NodeStatus::Unknown
                },
                metrics,
                ..Default::default()
            }
        })
        .collect()
}

fn pd_nodes(obs: &Observation) -> Vec<NodeHealth> {
    let member = |m: &MemberHealth, status, stale| NodeHealth {
        id: m.name.clone(),
        role: "pd".into(),
        kind: ComponentKind::Dependency,
        address: m
            .client_urls
            .first()
            .cloned()
            .unwrap_or_else(|| obs.pd_url.clone()),
        status,
        stale,
        ..Default::default()
    };
    match &obs.members {
        Ok(members) if !members.is_empty() => members
            .iter()
            .map(|m| {
                let status = if m.health {
                    NodeStatus::Up
                } else {
                    NodeStatus::Down
                };
                member(m, status, false)
            })
            .collect(),
        _ => match &obs.last_members {
            Some(last) if !last.is_empty() => last
                .iter()
                .map(|m| member(m, NodeStatus::Down, true))
                .collect(),
            _ => vec![NodeHealth {
                id: "pd".into(),
                role: "pd".into(),
                kind: ComponentKind::Dependency,
                address: obs.pd_url.clone(),
                status: NodeStatus::Down,
                metrics: Vec::new(),
                ..Default::default()
            }],
        },
    }
}

fn store_down(obs: &Observation) -> Invariant {
    let mut inv = invariant(STORE_DOWN, AnomalyClass::NodeDown, obs.at_ms);
    inv.bound = Some(0.0);
    match &obs.stores {
        Err(e) => inv.detail = format!("store states unknown: {e}"),
        Ok(stores) => {
            let down: Vec<&StoreInfo> = stores
                .stores
                .iter()
                .filter(|s| is_down(&s.store.state_name))
                .collect();
            inv.status = verdict(!down.is_empty());
            inv.observed = Some(down.len() as f64);
            inv.detail = if down.is_empty() {
                let live = stores
                    .stores
                    .iter()
                    .filter(|s| s.store.state_name == "Up")
                    .count();
                format!("{live} of {} stores Up", stores.stores.len())
            } else {
                down.iter()
                    .map(|s| {
                        format!(
                            "{} at {} is {}",
                            store_node_id(s.store.id),
                            s.store.address,
                            s.store.state_name
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            inv.components = down
                .iter()
                .flat_map(|s| [store_node_id(s.store.id), s.store.address.clone()])
                .collect();
        }
    }
    inv
}

/// The Up stores whose count deviates from the mean beyond the bound, and the worst deviation.
fn imbalance(counts: &[(&StoreInfo, f64)], bounds: &Bounds) -> (Vec<String>, f64) {
    if counts.len() < 2 {
        return (Vec::new(), 0.0);
    }
    let mean = counts.iter().map(|c| c.1).sum::<f64>() / counts.len() as f64;
    if mean <= 0.0 {
        return (Vec::new(), 0.0);
    }
    let mut worst = 0.0f64;
    let mut off = Vec::new();
    for (s, c) in counts {
        let dev = (c - mean).abs();
        worst = worst.max(dev / mean);
        if dev > bounds.balance_slack && dev / mean > bounds.balance_fraction {
            off.push(store_node_id(s.store.id));
        }
    }
    (off, worst)
}

fn leader_balance(obs: &Observation, bounds: &Bounds) -> Invariant {
    let mut inv = invariant(LEADER_BALANCE, AnomalyClass::Imbalance, obs.at_ms);
    inv.bound = Some(bounds.balance_fraction);
    let Ok(stores) = &obs.stores else {
        inv.detail = "unknown while PD does not answer".into();
        return inv;
    };
    let up: Vec<&StoreInfo> = stores
        .stores
        .iter()
        .filter(|s| s.store.state_name == "Up")
        .collect();
    let counts = |f: fn(&StoreInfo) -> Option<u64>| -> Vec<(&StoreInfo, f64)> {
        up.iter().filter_map(|s| Some((*s, f(s)? as f64))).collect()
    };
    let leaders = counts(|s| s.status.as_ref()?.leader_count);
    let regions = counts(|s| s.status.as_ref()?.region_count);
    if leaders.len() < 2 {
        inv.detail = "fewer than two Up stores report leader counts".into();
        return inv;
    }
    let (lead_off, lead_worst) = imbalance(&leaders, bounds);
    let (reg_off, reg_worst) = imbalance(&regions, bounds);
    let describe = |c: &[(&StoreInfo, f64)]| {
        c.iter()
            .map(|(s, n)| format!("{} {n}", store_node_id(s.store.id)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    inv.observed = Some(lead_worst.max(reg_worst));
    inv.status = verdict(!lead_off.is_empty() || !reg_off.is_empty());
    inv.detail = format!(
        "leaders: {}; regions: {} (largest deviation {:.0}% of the mean, bound {:.0}%)",
        describe(&leaders),
        describe(&regions),
        lead_worst.max(reg_worst) * 100.0,
        bounds.balance_fraction * 100.0
    );
    let mut components = lead_off;
    components.extend(
        reg_off
            .into_iter()
            .filter(|id| !components.contains(id))
            .collect::<Vec<_>>(),
    );
    inv.components = components;
    inv
}

fn regions_without_leader(obs: &Observation) -> Invariant {
    let mut inv = invariant(REGIONS_WITHOUT_LEADER, AnomalyClass::Other, obs.at_ms);
    inv.bound = Some(0.0);
    match &obs.regions {
        Err(e) => inv.detail = format!("regions unknown: {e}"),
        Ok(regions) => {
            let ids: Vec<u64> = regions
                .regions
                .iter()
                .filter(|r| !r.has_leader())
                .map(|r| r.id)
                .collect();
            inv.status = verdict(!ids.is_empty());
            inv.observed = Some(ids.len() as f64);
            inv.detail = if ids.is_empty() {
                format!("all {} regions have a leader", regions.regions.len())
            } else {
                format!(
                    "{} of {} regions are electing a leader",
                    ids.len(),
                    regions.regions.len()
                )
            };
            inv.components = ids
                .iter()
                .take(10)
                .map(|id| format!("region-{id}"))
                .collect();
        }
    }
    inv
}

fn pd_healthy(obs: &Observation) -> Invariant {
    let mut inv = invariant(PD_HEALTHY, AnomalyClass::DependencyDown, obs.at_ms);
    inv.bound = Some(0.0);
    let mut problems = Vec::new();
    let mut components = Vec::new();
    match &obs.members {
        Err(e) => {
            problems.push(e.clone());
            components = pd_ids(obs);
            components.push(obs.pd_url.clone());
        }
        Ok(members) if members.is_empty() => {
            problems.push("PD reports no members".into());
            components = vec!["pd".to_string(), obs.pd_url.clone()];
        }
        Ok(members) => {
            for m in members.iter().filter(|m| !m.health) {
                problems.push(format!("member {} unhealthy", m.name));
                components.push(m.name.clone());
            }
        }
    }
    if let Err(e) = &obs.stores {
        problems.push(e.clone());
        if components.is_empty() {
            components = vec!["pd".to_string(), obs.pd_url.clone()];
        }
    }
    inv.status = verdict(!problems.is_empty());
    inv.observed = Some(problems.len() as f64);
    inv.detail = if problems.is_empty() {
        match &obs.members {
            Ok(m) => format!("{} PD member(s) healthy", m.len()),
            Err(_) => String::new(),
        }
    } else {
        problems.join("; ")
    };
    inv.components = components;
    inv
}

fn p99_latency(obs: &Observation, bounds: &Bounds) -> Invariant {
    let mut inv = invariant(P99_LATENCY, AnomalyClass::LatencySpike, obs.at_ms);
    inv.bound = Some(bounds.p99_ms);
    match obs.load.as_ref().and_then(|l| Some((l.p99_ms?, &l.source))) {
        None => inv.detail = "no latency figures: start the load or configure metrics=".into(),
        Some((p99, source)) => {
            inv.status = verdict(p99 > bounds.p99_ms);
            inv.observed = Some(p99);
            inv.detail = format!("p99 {p99:.1} ms ({source}), bound {} ms", bounds.p99_ms);
            inv.components = vec!["tikv".into()];
        }
    }
    inv
}

fn worst_disk(obs: &Observation) -> Option<(&StoreInfo, f64)> {
    let stores = obs.stores.as_ref().ok()?;
    stores
        .stores
        .iter()
        .filter_map(|s| Some((s, s.status.as_ref()?.disk_used_fraction()?)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

fn disk_usage(obs: &Observation, bounds: &Bounds) -> Invariant {
    let mut inv = invariant(DISK_USAGE, AnomalyClass::CapacityExhausted, obs.at_ms);
    inv.bound = Some(bounds.disk_used * 100.0);
    let Some((worst, used)) = worst_disk(obs) else {
        inv.detail = "no store reports capacity and available space".into();
        return inv;
    };
    let full: Vec<&StoreInfo> = obs
        .stores
        .as_ref()
        .map(|s| {
            s.stores
                .iter()
                .filter(|s| {
                    s.status
                        .as_ref()
                        .and_then(|st| st.disk_used_fraction())
                        .is_some_and(|u| u > bounds.disk_used)
                })
                .collect()
        })
        .unwrap_or_default();
    inv.status = verdict(!full.is_empty());
    inv.observed = Some(used * 100.0);
    inv.detail = format!(
        "fullest disk: {} at {:.1}% used, bound {:.0}%",
        store_node_id(worst.store.id),
        used * 100.0,
        bounds.disk_used * 100.0
    );
    inv.components = full
        .iter()
        .flat_map(|s| [store_node_id(s.store.id), s.store.address.clone()])
        .collect();
    inv
}
