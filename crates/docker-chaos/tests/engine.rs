//! docker-chaos against this machine's real Docker engine, with stand-in containers.

mod common;

use docker_chaos::{Action, ChaosError, Selector, Undo};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn containers_are_found_by_compose_labels_not_names() {
    let Some((engine, project)) =
        common::project("containers_are_found_by_compose_labels_not_names").await
    else {
        return;
    };
    let other = common::project("containers_are_found_by_compose_labels_not_names")
        .await
        .unwrap()
        .1;
    let a0 = project.service("tikv0", None).await.unwrap();
    let a1 = project.service("tikv1", None).await.unwrap();
    // Same service name in another project must not be picked up.
    other.service("tikv1", None).await.unwrap();

    let all = engine
        .find(&Selector::project(project.name()))
        .await
        .unwrap();
    let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, vec![a0.id.as_str(), a1.id.as_str()]);

    let one = engine
        .find_running(&Selector::service(project.name(), "tikv1"))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].id, a1.id);
    assert_eq!(one[0].service.as_deref(), Some("tikv1"));
    assert_eq!(one[0].project.as_deref(), Some(project.name()));
    assert!(
        one[0].answers_to("tikv1"),
        "the service name maps to the container"
    );
    assert!(!one[0].answers_to("tikv0"));

    let err = engine
        .find_running(&Selector::service(project.name(), "tikv9"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ChaosError::NoRunningContainer { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("no running container with labels"),
        "{err}"
    );
    assert!(
        err.to_string().contains("com.docker.compose.service=tikv9"),
        "{err}"
    );
}

#[tokio::test]
async fn sigkill_is_undone_from_a_json_record_in_a_later_step() {
    let Some((engine, project)) =
        common::project("sigkill_is_undone_from_a_json_record_in_a_later_step").await
    else {
        return;
    };
    let c = project.service("tikv2", None).await.unwrap();
    let undo = engine.kill(&c).await.unwrap();
    assert_eq!(undo.action, Action::Kill);
    let dead = engine.wait_stopped(&c.id, WAIT).await.unwrap();
    assert!(!dead.running);
    let err = engine
        .find_running(&Selector::service(project.name(), "tikv2"))
        .await
        .unwrap_err();
    assert!(matches!(err, ChaosError::NoRunningContainer { .. }));

    let replayed = Undo::from_json(&undo.to_json()).unwrap();
    assert_eq!(replayed, undo);
    let back = engine.undo(&replayed, WAIT).await.unwrap();
    assert!(back.is_live());
    // Undo is idempotent: replaying it again leaves the container running.
    assert!(engine.undo(&replayed, WAIT).await.unwrap().is_live());
}

#[tokio::test]
async fn pause_and_stop_are_undone() {
    let Some((engine, project)) = common::project("pause_and_stop_are_undone").await else {
        return;
    };
    let c = project.service("pd", None).await.unwrap();
    let undo = engine.pause(&c).await.unwrap();
    assert!(engine.inspect(&c.id).await.unwrap().paused);
    assert!(engine
        .find_running(&Selector::project(project.name()))
        .await
        .is_err());
    assert!(engine.undo(&undo, WAIT).await.unwrap().is_live());

    let undo = engine.stop(&c, Duration::from_secs(1)).await.unwrap();
    assert!(!engine.wait_stopped(&c.id, WAIT).await.unwrap().running);
    assert!(engine.undo(&undo, WAIT).await.unwrap().is_live());
}

#[tokio::test]
async fn restart_and_wait_brings_a_killed_container_back() {
    let Some((engine, project)) =
        common::project("restart_and_wait_brings_a_killed_container_back").await
    else {
        return;
    };
    let c = project.service("tikv0", None).await.unwrap();
    engine.kill(&c).await.unwrap();
    engine.wait_stopped(&c.id, WAIT).await.unwrap();
    assert!(engine
        .restart_and_wait(&c.id, WAIT)
        .await
        .unwrap()
        .is_live());
    // A running container is restarted in place and comes back running.
    assert!(engine
        .restart_and_wait(&c.id, WAIT)
        .await
        .unwrap()
        .is_live());
}

#[tokio::test]
async fn network_disconnect_is_undone_with_its_alias() {
    let Some((engine, project)) =
        common::project("network_disconnect_is_undone_with_its_alias").await
    else {
        return;
    };
    let net = project.network("default").await.unwrap();
    let c = project.service("tikv1", Some(&net)).await.unwrap();
    assert!(c.answers_to("tikv1"));
    let undo = engine.disconnect(&c, &net).await.unwrap();
    assert_eq!(undo.network.as_deref(), Some(net.as_str()));
    assert!(undo.aliases.contains(&"tikv1".to_string()), "{undo:?}");
    assert!(engine
        .inspect(&c.id)
        .await
        .unwrap()
        .networks
        .iter()
        .all(|n| n.network != net));

    let back = engine
        .undo(&Undo::from_json(&undo.to_json()).unwrap(), WAIT)
        .await
        .unwrap();
    let attachment = back
        .networks
        .iter()
        .find(|n| n.network == net)
        .expect("reconnected");
    assert!(
        attachment.aliases.contains(&"tikv1".to_string()),
        "{attachment:?}"
    );

    let err = engine
        .disconnect(&back, "not-a-network-of-it")
        .await
        .unwrap_err();
    assert!(matches!(err, ChaosError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("not attached"), "{err}");
}

#[tokio::test]
async fn logs_return_the_last_lines_a_container_wrote() {
    let Some((engine, project)) =
        common::project("logs_return_the_last_lines_a_container_wrote").await
    else {
        return;
    };
    let script =
        "for i in 1 2 3; do echo line $i; done; echo oops >&2; exec /bin/busybox sleep 3600";
    let c = project
        .service_with_cmd("ycsb", None, &["/bin/busybox", "sh", "-c", script])
        .await
        .unwrap();
    // stdout and stderr reach the log through separate pipes: their order is not guaranteed.
    let mut text = String::new();
    let deadline = std::time::Instant::now() + WAIT;
    while text.lines().count() < 4 && std::time::Instant::now() < deadline {
        text = engine.logs(&c.id, 10).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        vec!["line 1", "line 2", "line 3", "oops"],
        "{text:?}"
    );
    let tail = engine.logs(&c.id, 2).await.unwrap();
    assert_eq!(tail.lines().count(), 2, "tail limits the lines: {tail:?}");
}
