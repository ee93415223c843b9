//! Cassettes of model calls (`--record-replies`, `--replay-replies`,
//! `eval --rescore`): recorded against the local provider that checks both
//! APIs' request shapes, replayed with the provider unreachable, refused with
//! the differing field named, and keys kept out; plus a committed campaign
//! (`tests/data/cassette-campaign`) re-scored offline to its committed figures.

use crate::model_support::*;
use demo_host::diagnosis::cassette::{Replies, FILE_NAME};
use demo_host::diagnosis::{diagnose, BackendConfig, DiagnoseOptions, Diagnosis, DiagnosisError};
use demo_host::eval::campaign::CampaignReport;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn with(replies: Replies) -> DiagnoseOptions {
    DiagnoseOptions { replies, ..opts() }
}

/// Records one diagnosis of `cfg` (served by `reply`), then replays it with
/// the provider gone: the replay equals the recording and opened no socket.
async fn record_then_replay(reply: Reply, cfg: impl Fn(&str) -> BackendConfig) -> PathBuf {
    let dir = tempfile::tempdir().expect("tempdir").keep();
    let server = Server::start(reply).await;
    let recorded = run(
        &cfg(&server.base),
        &with(Replies::record(&dir).expect("record")),
    )
    .await
    .0
    .expect("recorded diagnosis");
    assert_eq!(server.seen.lock().expect("lock").len(), 1);
    let base = server.base.clone();
    drop(server);

    let replayed: Diagnosis = run(&cfg(&base), &with(Replies::replay(&dir).expect("replay")))
        .await
        .0
        .expect("replayed diagnosis");
    assert_eq!(
        replayed, recorded,
        "the replay is the recorded diagnosis, latency and tokens included"
    );
    assert!(recorded
        .model_call
        .is_some_and(|c| c.input_tokens.is_some()));
    dir
}

fn cassette(dir: &Path) -> (String, Vec<Value>) {
    let text = std::fs::read_to_string(dir.join(FILE_NAME)).expect("cassette written");
    let entries = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("an entry per line"))
        .collect();
    (text, entries)
}

#[tokio::test]
async fn anthropic_stream_is_recorded_and_replayed_without_the_key() {
    let (_, text) = answer();
    let dir = record_then_replay(Reply::Sse(anthropic_stream(&text)), anthropic).await;
    let (raw, entries) = cassette(&dir);
    assert!(!raw.contains(KEY), "the API key reached the cassette");
    assert_eq!(entries.len(), 1);
    let e = &entries[0];
    assert_eq!(e["trial"], "run");
    assert_eq!(e["seq"], 0);
    assert!(e["key"]
        .as_str()
        .is_some_and(|k| k.starts_with("xxh3-128:")));
    assert_eq!(e["request"]["method"], "POST");
    assert_eq!(e["request"]["path"], "/v1/messages");
    assert_eq!(e["request"]["body"]["model"], MODEL);
    assert_eq!(e["reply"]["status"], 200);
    assert_eq!(e["reply"]["content_type"], "text/event-stream");
    assert_eq!(
        e["reply"]["body"].as_str(),
        Some(anthropic_stream(&text).concat().as_str()),
        "the stream's bytes as they arrived"
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test]
async fn openai_stream_and_json_replies_are_recorded_and_replayed_without_the_key() {
    let (_, text) = answer();
    let dir = record_then_replay(Reply::Sse(openai_stream(&text, true)), |b| openai(b, true)).await;
    let (raw, entries) = cassette(&dir);
    assert!(!raw.contains(KEY), "the API key reached the cassette");
    assert_eq!(entries[0]["request"]["path"], "/v1/chat/completions");
    assert_eq!(entries[0]["request"]["body"]["stream"], true);
    std::fs::remove_dir_all(dir).expect("cleanup");

    let whole = json!({"id": "c1", "object": "chat.completion", "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 700, "completion_tokens": 250}});
    let dir = record_then_replay(Reply::Json(200, whole, vec![]), |b| openai(b, true)).await;
    let (_, entries) = cassette(&dir);
    assert_eq!(entries[0]["reply"]["content_type"], "application/json");
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[tokio::test]
async fn an_error_reply_is_replayed_as_the_same_error_and_an_echoed_key_is_blanked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body =
        json!({"error": {"message": format!("bad key {KEY}"), "type": "invalid_request_error"}});
    let server = Server::start(Reply::Json(400, body, vec![])).await;
    let cfg = openai(&server.base, true);
    let live = run(&cfg, &with(Replies::record(dir.path()).expect("record")))
        .await
        .0
        .expect_err("a 400");
    drop(server);
    let replayed = run(&cfg, &with(Replies::replay(dir.path()).expect("replay")))
        .await
        .0
        .expect_err("the same 400");
    assert_eq!(replayed, live);
    let (raw, _) = cassette(dir.path());
    assert!(
        !raw.contains(KEY),
        "an echoed key reached the cassette: {raw}"
    );
    assert!(raw.contains("bad key ***"), "{raw}");
}

#[tokio::test]
async fn a_changed_request_is_refused_naming_the_field_and_never_sent() {
    let (_, text) = answer();
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(Reply::Sse(anthropic_stream(&text))).await;
    run(
        &anthropic(&server.base),
        &with(Replies::record(dir.path()).expect("record")),
    )
    .await
    .0
    .expect("recorded");

    let other = BackendConfig::Anthropic {
        model: "another-model".into(),
        api_key: demo_host::diagnosis::Secret::new(KEY),
        base_url: server.base.clone(),
    };
    let replay = with(Replies::replay(dir.path()).expect("replay"));
    let e = run(&other, &replay).await.0.expect_err("refused");
    let DiagnosisError::Cassette(message) = &e else {
        panic!("a replay error, not {e:?}")
    };
    assert!(message.contains("at $.model"), "{message}");
    assert!(
        message.contains(&format!("\"{MODEL}\"")) && message.contains("\"another-model\""),
        "expected and got are both named: {message}"
    );

    // The same model with a different window: the prompt's text differs.
    let mut window = window();
    window.snapshots.pop();
    let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
    let e = diagnose(&anthropic(&server.base), &window, &replay, tx)
        .await
        .expect_err("refused");
    let message = e.to_string();
    assert!(message.contains("at $.messages[0].content"), "{message}");
    assert!(
        message.chars().count() < 800,
        "long values are cut: {message}"
    );
    assert_eq!(
        server.seen.lock().expect("lock").len(),
        1,
        "only the recording reached the provider; the refused replays did not"
    );
}

/// `demo-host run --headless` of the example plugin with the openai backend.
fn headless_run(dir: &Path, base: &str, replies: &[&str]) -> (std::process::Output, Value) {
    let journal = dir.join(format!("run-{}.json", replies[0].trim_start_matches("--")));
    let out = crate::report_support::run_bounded(
        crate::report_support::demo_host(&dir.join("state"))
            .args(["run", "--plugin", "plugins/example", "--headless"])
            .args([
                "--countdown",
                "0",
                "--diagnoser",
                "openai",
                "--model",
                MODEL,
            ])
            .args(["--llm-url", base])
            .args(replies)
            .arg("--journal")
            .arg(&journal),
        // The first run may build the example plugin.
        std::time::Duration::from_secs(600),
    );
    let journal = std::fs::read_to_string(&journal)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    (out, journal)
}

/// A live run recorded, then a second live run replayed from that recording:
/// its windows carry its own times, so its request differs and the diagnosis
/// fails naming the field; the provider is never asked in its place.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_is_recorded_and_a_new_run_cannot_pass_for_it() {
    let mut answer: Value = serde_json::from_str(&answer().1).expect("answer");
    answer["anomaly"] = json!("replica divergence");
    let server = Server::start(Reply::Sse(openai_stream(&answer.to_string(), true))).await;
    let base = server.base.clone();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().to_path_buf();
    let tape = work.join("cassette");
    let ((recorded, journal), (replayed, replayed_journal)) =
        tokio::task::spawn_blocking(move || {
            let c = tape.to_str().expect("utf-8 path");
            let recorded = headless_run(&work, &base, &["--record-replies", c]);
            let replayed = headless_run(&work, &base, &["--replay-replies", c]);
            (recorded, replayed)
        })
        .await
        .expect("join");
    // The answer may miss the run's component (the run then fails its
    // expectation): what matters here is that it was asked, answered and recorded.
    assert!(
        journal["diagnoses"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "the recorded run kept its diagnosis:\n{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let asked = server.seen.lock().expect("lock").len();
    assert!(asked >= 1, "the run asked the model");
    let (raw, entries) = cassette(&dir.path().join("cassette"));
    assert_eq!(entries.len(), asked, "one entry per call");
    assert!(entries.iter().all(|e| e["trial"] == "run"));
    assert!(!raw.contains(KEY));
    assert_eq!(
        journal["diagnoses"][0]["diagnosis"]["anomaly"],
        "replica divergence"
    );

    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&replayed.stderr),
        replayed_journal
    );
    assert!(
        text.contains("does not match its recording") && text.contains("at $.messages"),
        "the replayed run's diagnosis fails naming the field:\n{text}"
    );
    assert_eq!(
        server.seen.lock().expect("lock").len(),
        asked,
        "the replayed run sent nothing to the provider"
    );
}

/// The committed campaign: two partition trials of the example plugin
/// diagnosed by `openai:test-model`, its journals, report and cassette.
fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cassette-campaign")
}

fn figures(report: &CampaignReport) -> Value {
    let mut v = serde_json::to_value(report).expect("json");
    // What a re-score changes by design: when it ran, and its note.
    for k in ["started_ms", "ended_ms", "notes"] {
        v["campaign"].as_object_mut().expect("campaign").remove(k);
    }
    v
}

#[test]
fn a_committed_campaign_is_rescored_offline_to_its_committed_figures() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("rescored");
    let run = crate::report_support::run_bounded(
        crate::report_support::demo_host(&dir.path().join("state"))
            .args(["eval", "--rescore"])
            .arg(fixture().join("campaign"))
            .arg("--replay-replies")
            .arg(fixture().join("cassette"))
            .arg("--out")
            .arg(&out),
        std::time::Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "rescore failed:\n{stderr}");
    let committed = crate::report_support::campaign::read_report(&fixture().join("campaign"));
    let rescored = crate::report_support::campaign::read_report(&out);
    assert_eq!(figures(&rescored), figures(&committed));
    assert!(rescored.trials.iter().any(|t| t.model_call.is_some()));
    assert!(rescored
        .campaign
        .notes
        .iter()
        .any(|n| n.contains("re-scored offline")));
    for f in ["report.md", "report.html"] {
        assert!(out.join(f).is_file(), "{f} written");
    }
}

#[test]
fn rescoring_with_a_cassette_of_another_request_names_the_difference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cassette = dir.path().join("cassette");
    std::fs::create_dir_all(&cassette).expect("mkdir");
    let text = std::fs::read_to_string(fixture().join("cassette").join(FILE_NAME)).expect("read");
    // The recording as a different model would have been asked.
    let changed: String = text
        .lines()
        .map(|l| {
            let mut e: Value = serde_json::from_str(l).expect("entry");
            e["request"]["body"]["model"] = json!("another-model");
            format!("{e}\n")
        })
        .collect();
    std::fs::write(cassette.join(FILE_NAME), changed).expect("write");
    let run = crate::report_support::run_bounded(
        crate::report_support::demo_host(&dir.path().join("state"))
            .args(["eval", "--rescore"])
            .arg(fixture().join("campaign"))
            .arg("--replay-replies")
            .arg(&cassette)
            .arg("--out")
            .arg(dir.path().join("rescored")),
        std::time::Duration::from_secs(120),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success(), "a mismatch must fail:\n{stderr}");
    assert!(stderr.contains("at $.model"), "{stderr}");
    assert!(stderr.contains("another-model"), "{stderr}");
    assert!(!dir.path().join("rescored/report.json").exists());
}

/// Regenerates the committed campaign: a real campaign of the example plugin
/// with the openai backend on the local provider, recorded. Run by hand
/// (`cargo test -p demo-host --test integration model_cassettes -- --ignored`) when the
/// journal or cassette format changes.
#[tokio::test(flavor = "multi_thread")]
#[ignore]
async fn regenerate_the_committed_campaign() {
    // A well-formed answer (the builtin's, in the schema) naming the example's partition.
    let mut answer: Value = serde_json::from_str(&answer().1).expect("answer");
    answer["anomaly"] = json!("replica divergence");
    answer["class"] = json!("state_divergence");
    answer["affected_components"] = json!(["replica-2"]);
    answer["confidence"] = json!(0.7);
    let server = Server::start(Reply::Sse(openai_stream(&answer.to_string(), true))).await;
    let target = fixture();
    let _ = std::fs::remove_dir_all(&target);
    let cassette = target.join("cassette");
    let base = server.base.clone();
    let work = tempfile::tempdir().expect("tempdir");
    let scratch = work.path().to_path_buf();
    let (output, report_dir) = tokio::task::spawn_blocking(move || {
        crate::report_support::campaign::eval_example(
            &scratch,
            &[
                "--faults",
                "partition",
                "--trials",
                "2",
                "--seed",
                "3",
                "--diagnoser",
                "openai",
                "--model",
                MODEL,
                "--llm-url",
                &base,
                "--record-replies",
                cassette.to_str().expect("utf-8 path"),
            ],
        )
    })
    .await
    .expect("join");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let campaign = target.join("campaign");
    std::fs::create_dir_all(campaign.join("trials")).expect("mkdir");
    std::fs::copy(report_dir.join("report.json"), campaign.join("report.json")).expect("copy");
    for t in crate::report_support::campaign::read_report(&report_dir).trials {
        let rel = t.journal.expect("journal");
        std::fs::copy(report_dir.join(&rel), campaign.join(&rel)).expect("copy journal");
    }
}
