//! Reads QPS and p99 latency from TiKV's Prometheus endpoints, as rates between two polls.

use crate::assess::LoadView;
use crate::prom::{self, quantile, TikvScrape};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct MetricsReader {
    http: reqwest::Client,
    endpoints: Vec<String>,
    last: Mutex<Option<(Instant, TikvScrape)>>,
}

impl MetricsReader {
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Result<MetricsReader, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(MetricsReader {
            http,
            endpoints,
            last: Mutex::new(None),
        })
    }

    pub fn configured(&self) -> bool {
        !self.endpoints.is_empty()
    }

    /// Scrapes every endpoint; `None` when none is configured or none answered with TiKV series.
    pub async fn read(&self) -> Option<LoadView> {
        if self.endpoints.is_empty() {
            return None;
        }
        let bodies = futures::future::join_all(self.endpoints.iter().map(|url| async move {
            let response = self.http.get(url).send().await.ok()?;
            if !response.status().is_success() {
                return None;
            }
            response.text().await.ok()
        }))
        .await;
        let mut scrape = TikvScrape::default();
        let mut answered = 0;
        for body in bodies.into_iter().flatten() {
            scrape.add(&prom::parse(&body));
            answered += 1;
        }
        if answered == 0 || (scrape.commands_total.is_none() && scrape.grpc_buckets.is_empty()) {
            return None;
        }
        let now = Instant::now();
        let previous = self.last.lock().ok()?.replace((now, scrape.clone()));
        let (qps, buckets) = match previous {
            Some((at, before)) if now > at => {
                let dt = (now - at).as_secs_f64();
                let qps = match (scrape.commands_total, before.commands_total) {
                    (Some(a), Some(b)) if a >= b => Some((a - b) / dt),
                    _ => None,
                };
                (qps, scrape.buckets_since(&before))
            }
            _ => (None, scrape.grpc_buckets.clone()),
        };
        Some(LoadView {
            qps,
            p99_ms: quantile(0.99, &buckets).map(|s| s * 1000.0),
            source: format!("TiKV metrics from {answered} endpoint(s)"),
        })
    }
}
