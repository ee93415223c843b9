//! A headless TiKV demo with the real binary against a PD fixture that serves
//! PD's JSON over HTTP and follows real (stand-in) store containers: the store
//! container is SIGKILLed through the Docker API, PD reports it Disconnected
//! and then Down, and the run must detect and diagnose "store down".

use docker_chaos::standin::StandinProject;
use docker_chaos::Engine;
use e2e_tests::*;
use serde_json::Value;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subject_tikv::fixture::{FixtureOptions, PdFixture};

#[test]
fn a_killed_store_is_detected_and_diagnosed_as_store_down() {
    // The fixture runs a runtime of its own: only the Docker calls run on this one.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let engine = match rt.block_on(Engine::connect()) {
        Ok(e) => e,
        Err(e) => {
            docker_chaos::standin::skip(
                "a_killed_store_is_detected_and_diagnosed_as_store_down",
                format!("no Docker engine answers: {e}"),
            );
            return;
        }
    };
    let lib = plugin_library("tikv");
    let project = rt
        .block_on(async {
            let project =
                StandinProject::create(&engine, &format!("e2etikv{}", std::process::id())).await?;
            let net = project.network("default").await?;
            for svc in ["tikv0", "tikv1", "tikv2"] {
                project.service(svc, Some(&net)).await?;
            }
            docker_chaos::Result::Ok(project)
        })
        .unwrap();
    let mut opts = FixtureOptions::three_stores();
    opts.docker_project = Some(project.name().to_string());
    opts.disconnect_after = Duration::ZERO;
    opts.down_after = Duration::from_millis(500);
    let pd = Arc::new(PdFixture::start(opts).unwrap());

    // Watch PD's view while the demo runs: the store must go Down mid-run.
    let seen_down = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let states_seen = Arc::new(Mutex::new(Vec::new()));
    let watcher = {
        let (pd, seen_down, stop, states_seen) = (
            pd.clone(),
            seen_down.clone(),
            stop.clone(),
            states_seen.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let states = pd.states();
                if states.values().any(|s| s == "Down") {
                    seen_down.store(true, Ordering::SeqCst);
                }
                let mut seen = states_seen.lock().unwrap();
                for s in states.values() {
                    if !seen.contains(s) {
                        seen.push(s.clone());
                    }
                }
                drop(seen);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let state = tempfile::tempdir().unwrap();
    let journal_path = state.path().join("journal.json");
    let config = format!("pd={} project={} load=off", pd.url(), project.name());
    let output = demo_host(state.path())
        .args([
            "run",
            "--headless",
            "--no-build",
            "--countdown",
            "0",
            "--plugin",
        ])
        .arg(lib)
        .args(["--config", &config])
        .arg("--journal")
        .arg(&journal_path)
        .stderr(Stdio::inherit())
        .output()
        .expect("demo-host runs");
    stop.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "exit {}:\n{stdout}", output.status);

    let journal: Value = serde_json::from_slice(&std::fs::read(&journal_path).unwrap()).unwrap();
    assert_eq!(journal["outcome"], "passed", "{:#}", journal["failures"]);
    let detection = journal["detections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["invariant"] == "store down")
        .expect("a detection chapter");
    assert!(detection["detected_ms"].is_u64(), "{detection}");
    let killed = journal["chaos_windows"][0]["targets"]
        .as_array()
        .unwrap()
        .clone();
    let run = &journal["diagnoses"][0];
    assert!(
        run["diagnosis"]["anomaly"]
            .as_str()
            .unwrap()
            .contains("store down"),
        "{run:#}"
    );
    assert_eq!(
        run["score"]["component_ok"], true,
        "named the killed store {killed:?}: {:#}",
        run["diagnosis"]["affected_components"]
    );
    assert!(
        seen_down.load(Ordering::SeqCst),
        "PD reported the store Down mid-run; states seen: {:?}",
        states_seen.lock().unwrap()
    );
    assert!(
        pd.states().values().all(|s| s == "Up"),
        "every store is Up at the end: {:?}",
        pd.states()
    );
}
