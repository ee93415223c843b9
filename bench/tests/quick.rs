//! CI smoke test: `demo-bench --quick` runs every group against the real
//! processes and writes a row for each. It asserts that the suite works, never
//! how fast anything is (speed is judged only by a full run on a quiet machine).
//!
//! Builds the measured artifacts beside the test binary when they are missing
//! (`cargo test` builds the plugins as rlibs only).

use std::path::Path;
use std::process::Command;

const GROUPS: [&str; 8] = [
    "1 detection",
    "2 node throughput",
    "3 burst generator",
    "4 plugin ABI",
    "5 host",
    "6 builtin diagnosis",
    "7 fault proxy",
    "8 scale",
];

#[test]
fn quick_run_writes_a_row_for_every_group() {
    let exe = Path::new(env!("CARGO_BIN_EXE_demo-bench"));
    let target = exe.parent().expect("target dir");
    // `cargo test` builds the plugins as rlibs only: build what the suite measures.
    let artifacts = [
        "ratelimiter-node",
        "libsubject_ratelimiter.so",
        "libsubject_example.so",
        "demo-host",
    ];
    if artifacts.iter().any(|a| !target.join(a).is_file()) {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "-p",
            "ratelimiter-node",
            "-p",
            "subject-ratelimiter",
            "-p",
            "subject-example",
            "-p",
            "demo-host",
        ]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build.current_dir(workspace).status().expect("cargo runs");
        assert!(status.success(), "building the measured artifacts failed");
    }
    for artifact in artifacts {
        assert!(
            target.join(artifact).is_file(),
            "{artifact} is not built in {}",
            target.display()
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("BENCHMARKS.md");
    std::fs::write(&out, "# Benchmarks\n\nhand-written text above\n").expect("seed file");
    // Output to files and a deadline: a group that hangs fails this test in
    // bounded time, naming the group it was in, instead of stalling CI.
    let (err_path, out_path) = (dir.path().join("stderr"), dir.path().join("stdout"));
    let mut child = Command::new(exe)
        .args(["--quick", "--out"])
        .arg(&out)
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("demo-bench runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15 * 60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for demo-bench") {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let Some(status) = status else {
        panic!("demo-bench --quick did not finish within 15 minutes; it was killed. Its last lines:\n{stderr}");
    };
    assert!(
        status.success(),
        "demo-bench --quick failed:\n{stderr}\n{stdout}"
    );

    let md = std::fs::read_to_string(&out).expect("the table was written");
    assert!(
        md.starts_with("# Benchmarks\n\nhand-written text above\n"),
        "the text around the table is kept:\n{md}"
    );
    assert!(
        md.contains("- command: `cargo run -p demo-bench -- --quick --out"),
        "the exact command is recorded:\n{md}"
    );
    assert!(
        md.contains("- machine: ") && md.contains("- date: 20"),
        "machine and date are recorded:\n{md}"
    );
    for group in GROUPS {
        let rows: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with(&format!("| {group} |")))
            .collect();
        assert!(!rows.is_empty(), "group `{group}` wrote no row:\n{md}");
        for row in &rows {
            assert!(
                !row.contains("(group failed)"),
                "group `{group}` failed: {row}"
            );
            let cells: Vec<&str> = row.split(" | ").map(str::trim).collect();
            let measured = cells
                .get(2)
                .is_some_and(|result| *result != "-" && !result.is_empty());
            let skipped = cells.last().is_some_and(|v| v.starts_with("skipped: "))
                && stderr.contains("SKIPPED");
            assert!(
                measured || skipped,
                "group `{group}` wrote a row with neither a result nor a reason to skip: {row}"
            );
        }
    }
    assert!(
        stdout
            .lines()
            .next()
            .is_some_and(|l| l.starts_with("group")),
        "a table is printed:\n{stdout}"
    );
}
