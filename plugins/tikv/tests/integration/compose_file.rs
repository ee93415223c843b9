//! compose/tikv/docker-compose.yml agrees with what the plugin expects of it.

use std::process::Command;

const FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../compose/tikv/docker-compose.yml"
);

#[test]
fn stores_advertise_their_service_names_and_ports_stay_on_loopback() {
    let text = std::fs::read_to_string(FILE).unwrap();
    for i in 0..3 {
        // The plugin maps a store to its container through the host of the advertised address.
        assert!(text.contains(&format!("  tikv{i}:\n")), "service tikv{i}");
        assert!(
            text.contains(&format!("--advertise-addr=tikv{i}:20160")),
            "tikv{i} advertises its service name"
        );
    }
    for image in [
        "${PD_IMAGE:-pingcap/pd:v8.5.5}",
        "${TIKV_IMAGE:-pingcap/tikv:v8.5.5}",
        "${YCSB_IMAGE:-pingcap/go-ycsb:latest}",
    ] {
        assert!(text.contains(image), "{image}");
    }
    let published: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("- \"") && l.contains(':'))
        .collect();
    assert_eq!(published.len(), 4, "{published:?}");
    assert!(
        published.iter().all(|p| p.starts_with("- \"127.0.0.1:")),
        "{published:?}"
    );
    assert!(
        !text.contains("restart: always") && !text.contains("unless-stopped"),
        "a killed store must stay down"
    );
}

#[test]
fn docker_compose_reads_the_file_with_the_load_profile() {
    let Ok(out) = Command::new("docker-compose")
        .args([
            "-f",
            FILE,
            "-p",
            "tikv",
            "--profile",
            "load",
            "config",
            "--services",
        ])
        .output()
    else {
        docker_chaos::standin::skip(
            "docker_compose_reads_the_file_with_the_load_profile",
            "docker-compose is not installed",
        );
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut services: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    services.sort();
    assert_eq!(services, vec!["pd", "tikv0", "tikv1", "tikv2", "ycsb"]);
}

#[test]
fn env_down_of_a_project_that_is_not_up_succeeds() {
    use plugin_api::Subject;
    if Command::new("docker-compose")
        .arg("version")
        .output()
        .is_err()
        || Command::new("docker")
            .arg("info")
            .output()
            .map(|o| !o.status.success())
            .unwrap_or(true)
    {
        docker_chaos::standin::skip(
            "env_down_of_a_project_that_is_not_up_succeeds",
            "no docker-compose or no Docker engine",
        );
        return;
    }
    let project = format!("tikvdown{}", std::process::id());
    let config = format!("pd=http://127.0.0.1:9 project={project} compose_file={FILE}");
    let s = subject_tikv::TikvSubject::create(plugin_api::InstanceContext {
        config: plugin_api::Config::parse(&config).unwrap(),
        raw_config: config.clone(),
        library_dir: std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        log: plugin_api::Logger::discard(),
    })
    .unwrap();
    assert_eq!(
        s.run_step("env-down").unwrap(),
        format!("compose project `{project}` is down")
    );
}
