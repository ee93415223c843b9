//! Peer registration: each node keeps a key with a TTL alive in Redis, so the
//! list of nodes is whoever heartbeated recently.

use super::{Node, StoreError};
use crate::wire::{keys, NodeInfo};
use std::sync::Arc;

pub async fn heartbeat_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(node.heartbeat_every);
    loop {
        tick.tick().await;
        let info = NodeInfo {
            id: node.id.clone(),
            address: node.advertise.clone(),
            mode: node.mode.get().as_str().into(),
            instance: node.instance,
            heartbeat_ms: crate::now_ms(),
        };
        let Ok(json) = serde_json::to_string(&info) else {
            continue;
        };
        let ttl = node.heartbeat_every.as_millis() as u64 * 5;
        let mut conn = node.conns().heartbeat.clone();
        let _ = node
            .redis(
                node.heartbeat_every,
                redis::cmd("SET")
                    .arg(keys::node(&node.id))
                    .arg(json)
                    .arg("PX")
                    .arg(ttl)
                    .query_async::<()>(&mut conn),
            )
            .await;
    }
}

/// The registered peers, read-only (SCAN + MGET, only string keys of the node pattern).
pub async fn list(node: &Node) -> Result<Vec<NodeInfo>, StoreError> {
    let mut conn = node.conns().read.clone();
    let mut cursor: u64 = 0;
    let mut names: Vec<String> = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = node
            .redis(
                node.redis_timeout,
                redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(keys::NODE_PATTERN)
                    .arg("COUNT")
                    .arg(100)
                    .arg("TYPE")
                    .arg("string")
                    .query_async(&mut conn),
            )
            .await?;
        names.extend(batch);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    if names.is_empty() {
        return Ok(vec![]);
    }
    let values: Vec<Option<String>> = node
        .redis(
            node.redis_timeout,
            redis::cmd("MGET").arg(&names).query_async(&mut conn),
        )
        .await?;
    let mut nodes: Vec<NodeInfo> = values
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_str(&v).ok())
        .collect();
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(nodes)
}
