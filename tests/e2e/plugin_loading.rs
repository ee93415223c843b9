//! Loading plugins through the real ABI: several subjects in one process, a
//! rebuilt plugin swapped in without restart, and every refusal with its message.

use demo_host::plugin::loader::{LoadError, Loader};
use demo_host::plugin::locate::{self, BuildPolicy, LocateError};
use demo_host::plugin::session::{CallError, Session, Timeouts};
use e2e_tests::*;
use plugin_api::{InvariantStatus, Level, PluginError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn loader() -> (Loader, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Loader::new(), dir)
}

fn must_fail(loader: &Loader, path: &std::path::Path) -> LoadError {
    match loader.load(path) {
        Ok(p) => panic!("{} loaded as {:?}", path.display(), p),
        Err(e) => e,
    }
}

#[test]
fn both_subjects_and_the_example_load_in_one_process() {
    let (loader, _dir) = loader();
    let mut ids = Vec::new();
    for name in ["example", "ratelimiter", "tikv"] {
        let plugin = loader
            .load(&plugin_library(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let d = &plugin.description;
        assert_eq!(d.info.id, name);
        assert_eq!(d.info.api_version, plugin_api::API_VERSION);
        assert!(!d.chapters.is_empty(), "{name} has chapters");
        assert!(!d.chaos_actions.is_empty(), "{name} has chaos actions");
        assert!(
            plugin.copy.starts_with("/proc/self/fd"),
            "loaded from its copy in memory, not {}",
            plugin.copy.display()
        );
        ids.push(d.info.id.clone());
    }
    assert_eq!(loader.loaded_count(), 3);
    assert_eq!(ids, ["example", "ratelimiter", "tikv"]);
}

#[test]
fn an_unchanged_file_is_not_loaded_twice() {
    let (loader, _dir) = loader();
    let lib = plugin_library("example");
    let first = loader.load(&lib).unwrap();
    let second = loader.load(&lib).unwrap();
    assert_eq!(first.hash, second.hash);
    assert_eq!(second.load_time, Duration::ZERO);
    assert_eq!(loader.loaded_count(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rebuilt_plugin_at_the_same_path_is_swapped_in() {
    let (loader, dir) = loader();
    let first_build = build_tagged_example("swap-a");
    let second_build = build_tagged_example("swap-b");
    let path = dir.path().join("libsubject_example.so");

    std::fs::copy(&first_build, &path).unwrap();
    let old = loader.load(&path).unwrap();
    assert!(
        old.description.info.version.ends_with("+swap-a"),
        "{}",
        old.description.info.version
    );
    let old_session = Session::create(old.clone(), "", Timeouts::default(), |_, _| {})
        .await
        .unwrap();
    old_session.setup().await.unwrap();
    assert!(old_session.health().await.is_ok());

    // A developer rebuilds the plugin in place; the host swaps without restarting.
    std::fs::copy(&second_build, &path).unwrap();
    let new = loader.load(&path).unwrap();
    assert_ne!(old.hash, new.hash);
    assert!(
        new.description.info.version.ends_with("+swap-b"),
        "{}",
        new.description.info.version
    );
    old_session.teardown().await.unwrap();
    drop(old_session);
    let new_session = Session::create(new, "", Timeouts::default(), |_, _| {})
        .await
        .unwrap();
    new_session.setup().await.unwrap();
    let health = new_session.health().await.unwrap();
    assert_eq!(health.nodes.len(), 3);
    new_session.teardown().await.unwrap();
    assert_eq!(loader.loaded_count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_truncating_the_plugin_file_under_a_session_does_not_crash_the_host() {
    use std::io::Write as _;
    let (loader, dir) = loader();
    let path = dir.path().join("libsubject_example.so");
    let build = std::fs::read(plugin_library("example")).unwrap();
    std::fs::write(&path, &build).unwrap();
    let plugin = loader.load(&path).unwrap();
    let session = Session::create(plugin, "", Timeouts::default(), |_, _| {})
        .await
        .unwrap();
    session.setup().await.unwrap();
    // A build rewrites the file in place: truncated, then half written, then whole.
    let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(0).unwrap();
    assert!(
        session.health().await.is_ok(),
        "the session runs its own copy"
    );
    assert!(
        matches!(must_fail(&loader, &path), LoadError::NotAPlugin { .. }),
        "an empty file is no plugin"
    );
    file.write_all(&build[..build.len() / 2]).unwrap();
    let half = must_fail(&loader, &path);
    assert!(
        session.health().await.is_ok(),
        "after a load of half a file: {half}"
    );
    file.write_all(&build[build.len() / 2..]).unwrap();
    let whole = loader.load(&path).unwrap();
    assert_eq!(
        whole.load_time,
        Duration::ZERO,
        "the same build, known by its hash"
    );
    session.teardown().await.unwrap();
}

#[test]
fn a_missing_path_says_so() {
    let (loader, dir) = loader();
    let missing = dir.path().join("nope.so");
    assert!(matches!(
        must_fail(&loader, &missing),
        LoadError::NotFound(_)
    ));
    let err = locate::resolve(&missing, BuildPolicy::Never).unwrap_err();
    assert!(matches!(err, LocateError::NotFound { .. }));
    assert!(err.to_string().contains("demo-host list"), "{err}");
}

#[test]
fn a_directory_without_a_plugin_says_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README"), "nothing here").unwrap();
    let err = locate::resolve(dir.path(), BuildPolicy::Never).unwrap_err();
    assert!(matches!(err, LocateError::NoPluginInDir(_)), "{err}");
    assert!(err.to_string().contains("holds no plugin"), "{err}");
}

#[test]
fn an_unbuilt_plugin_crate_names_the_build_command() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[package]\nname = \"subject-unbuilt\"\nversion = \"0.1.0\"\n\n[lib]\ncrate-type = [\"cdylib\"]\n",
    )
    .unwrap();
    let err = locate::resolve(dir.path(), BuildPolicy::Never).unwrap_err();
    assert!(
        err.to_string().contains("cargo build -p subject-unbuilt"),
        "{err}"
    );
}

#[test]
fn a_plugin_crate_directory_resolves_to_its_library() {
    plugin_library("ratelimiter");
    let lib = locate::resolve(
        &workspace_root().join("plugins/ratelimiter"),
        BuildPolicy::Never,
    )
    .unwrap();
    assert!(
        lib.ends_with("libsubject_ratelimiter.so"),
        "{}",
        lib.display()
    );
}

#[test]
fn a_file_that_is_not_elf_is_refused_before_dlopen() {
    let (loader, dir) = loader();
    let path = dir.path().join("notes.so");
    std::fs::write(&path, "just text").unwrap();
    let err = must_fail(&loader, &path);
    assert!(err.to_string().contains("is not an ELF file"), "{err}");
}

#[test]
fn an_elf_for_another_architecture_is_refused() {
    let (loader, dir) = loader();
    let mut bytes = std::fs::read(plugin_library("example")).unwrap();
    // e_machine, at offset 18 of the ELF header: claim aarch64 (or x86-64 on aarch64 hosts).
    let other: u16 = if cfg!(target_arch = "aarch64") {
        62
    } else {
        183
    };
    bytes[18..20].copy_from_slice(&other.to_le_bytes());
    let path = dir.path().join("libsubject_foreign.so");
    std::fs::write(&path, bytes).unwrap();
    let err = must_fail(&loader, &path).to_string();
    assert!(err.contains("ELF file for"), "{err}");
    assert!(err.contains("this host runs on"), "{err}");
}

#[test]
fn an_executable_is_refused() {
    let (loader, _dir) = loader();
    let me = std::env::current_exe().unwrap();
    let err = must_fail(&loader, &me).to_string();
    assert!(err.contains("is an executable program"), "{err}");
}

#[test]
fn a_shared_library_without_the_root_module_is_refused() {
    let (loader, dir) = loader();
    let src = dir.path().join("plain.c");
    std::fs::write(&src, "int answer(void) { return 42; }\n").unwrap();
    let lib = dir.path().join("libplain.so");
    let status = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .expect("cc runs");
    assert!(status.success());
    let err = must_fail(&loader, &lib).to_string();
    assert!(err.contains("without the demo-host root module"), "{err}");
    assert!(err.contains("export_subject!"), "{err}");
}

#[test]
fn a_plugin_built_against_another_major_plugin_api_is_refused_naming_both_versions() {
    let (loader, _dir) = loader();
    let lib = build_example_against("api-major", "1.0.0", |s| s.to_string());
    let err = must_fail(&loader, &lib);
    assert!(
        matches!(err, LoadError::IncompatibleVersion { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("plugin-api 1.0.0"), "{msg}");
    assert!(
        msg.contains(&format!("plugin-api {}", plugin_api::API_VERSION)),
        "{msg}"
    );
}

#[test]
fn a_plugin_built_against_plugin_api_0_1_is_refused_naming_both_versions() {
    let (loader, _dir) = loader();
    let lib = build_example_against("api-0.1", "0.1.0", |s| s.to_string());
    let err = must_fail(&loader, &lib);
    assert!(
        matches!(err, LoadError::IncompatibleVersion { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("plugin-api 0.1.0"), "{msg}");
    assert!(msg.contains("plugin-api 0.2"), "{msg}");
}

/// Remediation is an optional export beside the root module: a plugin built
/// by a plugin-api without it (no `demo_host_remediation_v1` symbol) loads,
/// offers no remedies, and asking it for one is a clear error.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_built_without_remediation_loads_and_offers_no_remedies() {
    let (loader, _dir) = loader();
    let lib = build_example_patched("api-no-remedies", plugin_api::API_VERSION, |file, s| {
        let cut = |s: &str, from: &str, to: &str| -> String {
            let start = s
                .find(from)
                .unwrap_or_else(|| panic!("{file}: no `{from}`"));
            let end = start
                + s[start..]
                    .find(to)
                    .unwrap_or_else(|| panic!("{file}: no `{to}`"));
            format!("{}{}", &s[..start], &s[end + to.len()..])
        };
        match file {
            // The export macro without the remediation symbol: the plugin as a
            // plugin-api without remediation built it.
            "export.rs" => cut(
                s,
                "        /// The remediation capability (see `plugin_api::ffi::RemediationMod`).",
                "        }\n        }\n",
            ),
            _ => s.to_string(),
        }
    });
    let plugin = loader
        .load(&lib)
        .expect("a plugin without remediation loads");
    assert!(plugin.description.remedies.is_empty());
    let session = Session::create(plugin, "", Timeouts::default(), |_, _| {})
        .await
        .unwrap();
    let err = session
        .remediate("restart-replica", vec![], "replica-3")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Plugin { err: PluginError::Unsupported(m), .. } if m.contains("without remediation")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_remedies_fix_its_faults_while_they_are_still_active() {
    let (loader, _dir) = loader();
    let plugin = loader.load(&plugin_library("example")).unwrap();
    let ids: Vec<&str> = plugin
        .description
        .remedies
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(ids, ["resync-replica", "restart-replica"]);
    let session = Session::create(plugin, "", Timeouts::default(), |_, _| {})
        .await
        .unwrap();
    session.setup().await.unwrap();
    let status = |h: &plugin_api::HealthSnapshot, name: &str| {
        h.invariants
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.status)
    };
    let until = |name: &'static str, want: InvariantStatus| {
        let session = session.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            loop {
                let h = session.health().await.unwrap();
                if status(&h, name) == Some(want) {
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{name} never became {want:?}: {h:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    // A crash: restarting the replica brings it back, the fault still recorded as active.
    let crash = session.inject("crash", vec![]).await.unwrap();
    until("replicas up", InvariantStatus::Violated).await;
    let outcome = session
        .remediate("restart-replica", vec![], &crash.targets[0])
        .await
        .unwrap();
    assert!(outcome.summary.contains("restarted"), "{}", outcome.summary);
    assert!(outcome.undo.is_empty(), "a restart changes nothing lasting");
    until("replicas up", InvariantStatus::Ok).await;
    // A partition of a minute: the resync makes the replica agree long before it ends.
    let partition = session
        .inject(
            "partition",
            vec![("duration_ms".into(), plugin_api::ParamValue::Int(60_000))],
        )
        .await
        .unwrap();
    until("replicas agree", InvariantStatus::Violated).await;
    session
        .remediate("resync-replica", vec![], &partition.targets[0])
        .await
        .unwrap();
    until("replicas agree", InvariantStatus::Ok).await;
    // Bad targets and remedies are the plugin's clear errors.
    let err = session
        .remediate("restart-replica", vec![], "replica-99")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no replica `replica-99`"), "{err}");
    let err = session
        .remediate("reboot-world", vec![], "")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("this subject offers: resync-replica, restart-replica"),
        "{err}"
    );
    session.recover(&crash.fault_id).await.unwrap();
    session.recover(&partition.fault_id).await.unwrap();
    session.teardown().await.unwrap();
}

#[test]
fn a_plugin_whose_types_differ_in_layout_is_refused() {
    let (loader, _dir) = loader();
    // Same version number, but two fields of a boundary struct in another order: a layout break.
    let lib = build_example_against("api-layout", plugin_api::API_VERSION, |s| {
        let patched = s.replace(
            "name: RString, value: f64, unit: RString, kind: FfiMetricKind, worse: FfiWorse,",
            "name: RString, unit: RString, value: f64, kind: FfiMetricKind, worse: FfiWorse,",
        );
        assert_ne!(patched, s, "the patch applies to ffi.rs");
        patched
    });
    let err = must_fail(&loader, &lib);
    assert!(matches!(err, LoadError::LayoutMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("layout mismatch"), "{msg}");
    assert!(
        msg.contains("expected value: f64, found unit: RString"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panicking_plugin_call_becomes_an_error_and_the_instance_lives_on() {
    let (loader, _dir) = loader();
    let plugin = loader.load(&plugin_library("example")).unwrap();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let session = Session::create(
        plugin,
        "test_hooks=true",
        Timeouts::default(),
        move |level, msg| {
            sink.lock().unwrap().push((level, msg.to_string()));
        },
    )
    .await
    .unwrap();
    session.setup().await.unwrap();
    let err = session.run_step("panic").await.unwrap_err();
    assert!(err.is_panic(), "{err}");
    assert!(
        err.to_string()
            .contains("example plugin was asked to panic"),
        "{err}"
    );
    // The host goes on and so does the plugin.
    let health = session.health().await.unwrap();
    assert!(health
        .invariants
        .iter()
        .all(|i| i.status != InvariantStatus::Unknown));
    session.teardown().await.unwrap();
    assert!(lines
        .lock()
        .unwrap()
        .iter()
        .any(|(l, m)| *l == Level::Info && m.contains("writer started")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_plugin_call_times_out_and_the_host_goes_on() {
    let (loader, _dir) = loader();
    let plugin = loader.load(&plugin_library("example")).unwrap();
    let timeouts = Timeouts {
        step: Duration::from_millis(300),
        ..Timeouts::default()
    };
    let session = Session::create(plugin, "test_hooks=true", timeouts, |_, _| {})
        .await
        .unwrap();
    session.setup().await.unwrap();
    let err = session.run_step("hang").await.unwrap_err();
    assert!(
        matches!(err, CallError::TimedOut { call: "step", .. }),
        "{err}"
    );
    assert!(err.to_string().contains("did not return within"), "{err}");
    assert!(session.health().await.is_ok());
    session.teardown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_config_and_bad_parameters_are_plugin_errors_with_advice() {
    let (loader, _dir) = loader();
    let plugin = loader.load(&plugin_library("example")).unwrap();
    let err = Session::create(
        plugin.clone(),
        "colour=blue",
        Timeouts::default(),
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("unknown config key `colour`"),
        "{err}"
    );
    let session = Session::create(plugin, "", Timeouts::default(), |_, _| {})
        .await
        .unwrap();
    let err = session
        .inject(
            "partition",
            vec![("duration_ms".into(), plugin_api::ParamValue::Int(5))],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Plugin { err: PluginError::InvalidInput(m), .. } if m.contains("out of range")),
        "{err}"
    );
    let err = session.inject("meteor", vec![]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("this subject offers: partition, crash"),
        "{err}"
    );
}
