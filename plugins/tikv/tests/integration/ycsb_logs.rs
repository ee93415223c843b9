//! The compose load's figures come from the `ycsb` service's logs: a stand-in
//! container that prints go-ycsb's status lines is read through the Docker API.

use docker_chaos::standin::{skip, static_busybox, StandinProject};
use docker_chaos::Engine;
use plugin_api::Config;
use std::path::Path;
use std::time::{Duration, Instant};
use subject_tikv::config::TikvConfig;
use subject_tikv::load::{throughput, LoadSource};

const LINES: &str = "echo 'READ   - Takes(s): 10.0, Count: 4000, OPS: 400.0, Avg(us): 1000, Min(us): 400, Max(us): 20000, 50th(us): 900, 90th(us): 1800, 95th(us): 2100, 99th(us): 4000, 99.9th(us): 9000, 99.99th(us): 15000'; \
echo 'UPDATE - Takes(s): 10.0, Count: 1000, OPS: 100.0, Avg(us): 3000, Min(us): 900, Max(us): 40000, 50th(us): 2500, 90th(us): 5000, 95th(us): 6000, 99th(us): 180000, 99.9th(us): 30000, 99.99th(us): 39000'; \
exec /bin/busybox sleep 3600";

const TEST: &str = "go_ycsb_lines_in_the_ycsb_service_logs_become_throughput";

#[tokio::test]
async fn go_ycsb_lines_in_the_ycsb_service_logs_become_throughput() {
    let engine = match Engine::connect().await {
        Ok(e) => e,
        Err(e) => return skip(TEST, format!("no Docker engine: {e}")),
    };
    if let Err(e) = static_busybox() {
        return skip(TEST, e);
    }
    let name = format!("ycsbtest{}", std::process::id());
    let project = StandinProject::create(&engine, &name).await.unwrap();
    project
        .service_with_cmd("ycsb", None, &["/bin/busybox", "sh", "-c", LINES])
        .await
        .unwrap();
    let cfg = TikvConfig::from_config(
        &Config::parse(&format!("project={name}")).unwrap(),
        Path::new("/"),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let t = loop {
        if let Some(t) = throughput(&cfg, Some(&engine), LoadSource::Compose)
            .await
            .filter(|t| t.operations.len() == 2)
        {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no go-ycsb figures read from the logs"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(t.ops_per_s, 500.0);
    assert_eq!(t.p99_ms, Some(180.0));
    assert!(throughput(&cfg, Some(&engine), LoadSource::Idle)
        .await
        .is_none());
}
