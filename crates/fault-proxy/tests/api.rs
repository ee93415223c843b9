//! The HTTP control API over a real socket (the router in this process), and
//! the `fault-proxy` binary as its own process: bound ports printed, routes
//! forwarding, faults through HTTP, a clean exit on SIGTERM.

mod common;

use common::*;
use fault_proxy::{api, Proxy};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use tokio::io::AsyncWriteExt;

struct Api {
    base: String,
    http: reqwest::Client,
    _server: AbortOnDrop,
}

impl Api {
    async fn start() -> (Api, Proxy) {
        let proxy = Proxy::with_seed(1);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let router = api::router(proxy.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        let api = Api {
            base,
            http: reqwest::Client::new(),
            _server: AbortOnDrop(server),
        };
        (api, proxy)
    }

    /// Sends `body` (raw text, as a client might) and returns status and JSON (Null when empty).
    async fn call(&self, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.expect("the API answers");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
        };
        (status, json)
    }
}

#[tokio::test]
async fn routes_and_faults_through_http() {
    let (echo, _echo) = plain_echo().await;
    let (api, proxy) = Api::start().await;
    let body = json!({"name": "redis-1", "upstream": echo.to_string()}).to_string();
    let (status, route) = api.call("POST", "/routes", Some(&body)).await;
    assert_eq!(status, 201, "{route}");
    let listen: SocketAddr = route["listen"]
        .as_str()
        .expect("listen")
        .parse()
        .expect("addr");
    assert_ne!(listen.port(), 0, "the picked port is reported");
    assert_eq!(route["enabled"], true);

    let fault = r#"{"kind":"blackhole","direction":"downstream","name":"cut"}"#;
    let (status, added) = api
        .call("POST", "/routes/redis-1/faults", Some(fault))
        .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(added["name"], "cut");
    assert_eq!(added["direction"], "downstream");
    let latency = r#"{"kind":"latency","delay_ms":5,"jitter_ms":1}"#;
    let (status, added) = api
        .call("POST", "/routes/redis-1/faults", Some(latency))
        .await;
    assert_eq!(
        (status, added["name"].as_str()),
        (201, Some("latency_both"))
    );
    let (_, faults) = api.call("GET", "/routes/redis-1/faults", None).await;
    assert_eq!(faults.as_array().map(Vec::len), Some(2), "{faults}");
    assert_eq!(proxy.route("redis-1").expect("route").faults.len(), 2);

    // The fault acts on the data: the answer is held until it is deleted.
    let mut s = connect(listen).await;
    s.write_all(b"hi").await.expect("write");
    assert!(read_within(&mut s, QUIET).await.is_none(), "held by `cut`");
    let (status, _) = api.call("DELETE", "/routes/redis-1/faults/cut", None).await;
    assert_eq!(status, 204);
    assert_eq!(read_n(&mut s, 2).await, b"hi");

    let (status, r) = api
        .call("PATCH", "/routes/redis-1", Some(r#"{"enabled":false}"#))
        .await;
    assert_eq!((status, &r["enabled"]), (200, &json!(false)), "{r}");
    let (status, _) = api.call("POST", "/reset", None).await;
    assert_eq!(status, 204);
    let (_, routes) = api.call("GET", "/routes", None).await;
    assert_eq!(routes[0]["enabled"], true, "{routes}");
    assert_eq!(routes[0]["faults"], json!([]), "{routes}");
    let (status, _) = api.call("DELETE", "/routes/redis-1", None).await;
    assert_eq!(status, 204);
    assert!(proxy.routes().is_empty());
}

/// Method, path, body; the status, code and words expected.
type Case<'a> = (&'a str, String, Option<String>, u16, &'a str, &'a str);

#[tokio::test]
async fn bad_input_gets_a_4xx_that_says_what_is_wrong() {
    let (echo, _echo) = plain_echo().await;
    let (api, proxy) = Api::start().await;
    let body = json!({"name": "r", "upstream": echo.to_string()}).to_string();
    assert_eq!(api.call("POST", "/routes", Some(&body)).await.0, 201);
    let taken = proxy.listen_addr("r").expect("addr").to_string();
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/routes/nope/faults".into(),
            Some(r#"{"kind":"blackhole"}"#.into()),
            404,
            "unknown_route",
            "unknown route `nope`",
        ),
        (
            "GET",
            "/routes/nope".into(),
            None,
            404,
            "unknown_route",
            "nope",
        ),
        (
            "DELETE",
            "/routes/r/faults/ghost".into(),
            None,
            404,
            "unknown_fault",
            "no fault named `ghost`",
        ),
        (
            "POST",
            "/routes/r/faults".into(),
            Some(r#"{"kind":"latency","delay_ms":-5}"#.into()),
            422,
            "invalid_body",
            "delay_ms must be",
        ),
        (
            "POST",
            "/routes/r/faults".into(),
            Some(r#"{"kind":"wobble"}"#.into()),
            422,
            "invalid_body",
            "unknown fault kind `wobble`",
        ),
        (
            "POST",
            "/routes/r/faults".into(),
            Some(r#"{"kind":"blackhole","fraction":2}"#.into()),
            422,
            "invalid_body",
            "fraction must be within 0..=1",
        ),
        (
            "POST",
            "/routes/r/faults".into(),
            Some(r#"{"kind":"bandwidth","bytes_per_sec":0}"#.into()),
            422,
            "invalid_body",
            "at least 1",
        ),
        (
            "POST",
            "/routes/r/faults".into(),
            Some(r#"{"kind": "latency", "delay_ms": 5"#.into()),
            400,
            "malformed_json",
            "EOF",
        ),
        (
            "POST",
            "/routes".into(),
            Some("not json".into()),
            400,
            "malformed_json",
            "expected",
        ),
        (
            "POST",
            "/routes".into(),
            Some(body.clone()),
            409,
            "duplicate_route",
            "already exists",
        ),
        (
            "POST",
            "/routes".into(),
            Some(json!({"name": "bad name", "upstream": "x:1"}).to_string()),
            422,
            "invalid_route",
            "bad name",
        ),
        (
            "POST",
            "/routes".into(),
            Some(json!({"name": "u", "upstream": "no-port"}).to_string()),
            422,
            "invalid_route",
            "no-port",
        ),
        (
            "POST",
            "/routes".into(),
            Some(json!({"name": "b", "listen": taken, "upstream": "x:1"}).to_string()),
            409,
            "bind_failed",
            &taken,
        ),
        (
            "PATCH",
            "/routes/r".into(),
            Some(r#"{"enable":true}"#.into()),
            422,
            "invalid_body",
            "enable",
        ),
        (
            "GET",
            "/proxies".into(),
            None,
            404,
            "no_endpoint",
            "GET /proxies",
        ),
    ];
    for (method, path, body, want_status, want_code, want_text) in cases {
        let (status, err) = api.call(method, &path, body.as_deref()).await;
        let what = format!("{method} {path} {body:?}: {status} {err}");
        assert_eq!(status, want_status, "{what}");
        assert_eq!(err["code"], want_code, "{what}");
        let message = err["error"].as_str().unwrap_or_default();
        assert!(message.contains(want_text), "{what}");
    }
    let dup = r#"{"kind":"blackhole"}"#;
    assert_eq!(api.call("POST", "/routes/r/faults", Some(dup)).await.0, 201);
    let (status, err) = api.call("POST", "/routes/r/faults", Some(dup)).await;
    assert_eq!(
        (status, &err["code"]),
        (409, &json!("duplicate_fault")),
        "{err}"
    );
    // Nothing refused was half-applied.
    assert_eq!(proxy.routes().len(), 1);
    assert_eq!(proxy.route("r").expect("route").faults.len(), 1);
}

/// The binary, killed and reaped when dropped (also when the test fails).
struct Bin(Child);

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_binary_prints_its_ports_serves_the_api_and_exits_on_sigterm() {
    let (echo, _echo) = plain_echo().await;
    let mut bin = Bin(Command::new(env!("CARGO_BIN_EXE_fault-proxy"))
        .args(["--listen-api", "127.0.0.1:0", "--route"])
        .arg(format!("echo=127.0.0.1:0={echo}"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("fault-proxy starts"));
    let stdout = bin.0.stdout.take().expect("stdout");
    let lines = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .take(2)
            .collect::<Result<Vec<_>, _>>()
    });
    let lines = tokio::time::timeout(DEADLINE, lines)
        .await
        .expect("it prints its ports")
        .expect("reader")
        .expect("lines");
    let field = |prefix: &str, i: usize| -> SocketAddr {
        let line = lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` line in {lines:?}"));
        line.split(' ')
            .nth(i)
            .expect("addr")
            .parse()
            .expect("an address")
    };
    let route = field("route echo ", 2);
    let api = field("api ", 1);
    let mut s = connect(route).await;
    round_trip(&mut s, b"through the binary").await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("http://{api}/routes/echo/faults"))
        .json(&json!({"kind": "blackhole"}))
        .send()
        .await
        .expect("api");
    assert_eq!(resp.status().as_u16(), 201);
    s.write_all(b"held").await.expect("write");
    assert!(
        read_within(&mut s, QUIET).await.is_none(),
        "held by the blackhole"
    );
    let resp = http
        .post(format!("http://{api}/reset"))
        .send()
        .await
        .expect("api");
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(read_n(&mut s, 4).await, b"held");

    // SIGTERM: a clean exit, as a container's PID 1 must.
    let pid = libc::pid_t::try_from(bin.0.id()).expect("pid");
    // SAFETY: kill(2) on our own child, which is not reaped yet.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::task::spawn_blocking(move || {
        let status = bin.0.wait();
        (status, bin)
    });
    let (status, _bin) = tokio::time::timeout(DEADLINE, status)
        .await
        .expect("it exits")
        .expect("join");
    assert!(status.expect("wait").success(), "exit 0 on SIGTERM");
}

#[test]
fn the_binary_refuses_a_bad_route_with_a_clear_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_fault-proxy"))
        .args([
            "--listen-api",
            "127.0.0.1:0",
            "--route",
            "redis=127.0.0.1:0",
        ])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("name=LISTEN=UPSTREAM"), "{err}");
}
