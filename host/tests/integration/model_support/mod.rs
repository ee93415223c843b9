//! A fake model provider on a loopback port for the backend tests: it records
//! each request (path, headers, JSON body) and answers as told, in both APIs'
//! formats; plus the window, answer and streams those tests share.

#![allow(dead_code)]

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use demo_host::diagnosis::{
    builtin, diagnose, BackendConfig, DiagnoseOptions, Diagnosis, DiagnosisError,
    ObservationWindow, Secret, ANSWER_NAME,
};
use futures::StreamExt;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const KEY: &str = "sk-test-0123456789-secret";
pub const MODEL: &str = "test-model";

/// What the fake provider answers.
#[derive(Clone)]
pub enum Reply {
    /// An event stream, sent in these chunks.
    Sse(Vec<String>),
    /// A JSON body with this status and extra headers.
    Json(u16, Value, Vec<(&'static str, String)>),
    /// Accept the request and never answer.
    Hang,
    /// These bytes as they are, with this status, content type and headers.
    Raw(u16, &'static str, Vec<u8>, Vec<(&'static str, String)>),
    /// A body that never ends: `head`, then `repeat` again and again, `every` apart.
    Endless {
        status: u16,
        content_type: &'static str,
        head: String,
        repeat: String,
        every: Option<Duration>,
    },
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Clone)]
pub struct Fake {
    pub reply: Reply,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

pub async fn handle(
    State(fake): State<Fake>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    fake.seen.lock().expect("lock").push(Seen {
        path: uri.path().to_string(),
        headers,
        body,
    });
    match fake.reply {
        Reply::Sse(chunks) => {
            let stream = futures::stream::iter(chunks.into_iter().map(Ok::<_, Infallible>));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .expect("response")
        }
        Reply::Json(status, value, headers) => {
            let mut r = Response::builder()
                .status(StatusCode::from_u16(status).expect("status"))
                .header("content-type", "application/json");
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(value.to_string())).expect("response")
        }
        Reply::Hang => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        Reply::Raw(status, content_type, bytes, headers) => {
            let mut r = Response::builder()
                .status(StatusCode::from_u16(status).expect("status"))
                .header("content-type", content_type);
            for (k, v) in headers {
                r = r.header(k, v);
            }
            r.body(Body::from(bytes)).expect("response")
        }
        Reply::Endless {
            status,
            content_type,
            head,
            repeat,
            every,
        } => {
            let rest = futures::stream::unfold((), move |()| {
                let repeat = repeat.clone();
                async move {
                    if let Some(d) = every {
                        tokio::time::sleep(d).await;
                    }
                    Some((Ok::<_, Infallible>(repeat), ()))
                }
            });
            let stream = futures::stream::once(async move { Ok(head) }).chain(rest);
            Response::builder()
                .status(StatusCode::from_u16(status).expect("status"))
                .header("content-type", content_type)
                .body(Body::from_stream(stream))
                .expect("response")
        }
    }
}

/// A provider on a free loopback port; stops with the test's runtime.
pub struct Server {
    pub base: String,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub async fn start(reply: Reply) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fake = Fake {
            reply,
            seen: Arc::clone(&seen),
        };
        let app = Router::new()
            .route("/v1/messages", post(handle))
            .route("/v1/chat/completions", post(handle))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Server { base, seen, task }
    }

    pub fn only_request(&self) -> Seen {
        let seen = self.seen.lock().expect("lock");
        assert_eq!(seen.len(), 1, "exactly one request expected");
        seen[0].clone()
    }
}

pub fn window() -> ObservationWindow {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/scenarios/ratelimiter-node-down.json"
    );
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("scenario")).expect("json");
    serde_json::from_value(v["window"].clone()).expect("window")
}

/// A plausible model answer: the builtin's diagnosis in the answer schema.
pub fn answer() -> (Diagnosis, String) {
    let d = builtin::diagnose(&window());
    let text = d.answer_json().to_string();
    (d, text)
}

pub fn anthropic(base: &str) -> BackendConfig {
    BackendConfig::Anthropic {
        model: MODEL.into(),
        api_key: Secret::new(KEY),
        base_url: base.into(),
    }
}

pub fn openai(base: &str, key: bool) -> BackendConfig {
    BackendConfig::OpenAi {
        base_url: base.into(),
        model: MODEL.into(),
        api_key: key.then(|| Secret::new(KEY)),
    }
}

pub fn opts() -> DiagnoseOptions {
    DiagnoseOptions {
        timeout: Duration::from_secs(10),
        mask_identities: false,
        ..DiagnoseOptions::default()
    }
}

pub async fn run(
    cfg: &BackendConfig,
    o: &DiagnoseOptions,
) -> (Result<Diagnosis, DiagnosisError>, String) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let result = diagnose(cfg, &window(), o, tx).await;
    let mut streamed = String::new();
    while let Ok(chunk) = rx.try_recv() {
        streamed.push_str(&chunk);
    }
    (result, streamed)
}

pub fn assert_no_key(e: &DiagnosisError) {
    assert!(!e.to_string().contains(KEY), "key in message: {e}");
    assert!(!format!("{e:?}").contains(KEY), "key in debug: {e:?}");
}

pub fn sse(event: &str, data: Value) -> String {
    format!("event: {event}\ndata: {data}\n\n")
}

/// The Messages API's streamed tool call, split into small `input_json_delta`s.
pub fn anthropic_stream(answer: &str) -> Vec<String> {
    let mut chunks = vec![
        sse(
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": MODEL, "content": [], "stop_reason": null, "usage": {"input_tokens": 900, "output_tokens": 1}}}),
        ),
        sse(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": ANSWER_NAME, "input": {}}}),
        ),
        sse("ping", json!({"type": "ping"})),
    ];
    let chars: Vec<char> = answer.chars().collect();
    for piece in chars.chunks(40) {
        let partial: String = piece.iter().collect();
        chunks.push(sse(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": partial}}),
        ));
    }
    chunks.push(sse(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    chunks.push(sse("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 400}})));
    chunks.push(sse("message_stop", json!({"type": "message_stop"})));
    chunks
}

/// Chat-completions chunks carrying the answer as `delta.content`.
pub fn openai_stream(answer: &str, done: bool) -> Vec<String> {
    let mut chunks = vec![format!(
        "data: {}\n\n",
        json!({"id": "c1", "object": "chat.completion.chunk", "model": MODEL, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]})
    )];
    let chars: Vec<char> = answer.chars().collect();
    for piece in chars.chunks(40) {
        let content: String = piece.iter().collect();
        chunks.push(format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": MODEL, "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]})
        ));
    }
    if done {
        chunks.push(format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        ));
        // What `stream_options.include_usage` adds: a last chunk without choices.
        chunks.push(format!(
            "data: {}\n\n",
            json!({"id": "c1", "object": "chat.completion.chunk", "model": MODEL, "choices": [], "usage": {"prompt_tokens": 700, "completion_tokens": 250, "total_tokens": 950}})
        ));
        chunks.push("data: [DONE]\n\n".into());
    }
    chunks
}
