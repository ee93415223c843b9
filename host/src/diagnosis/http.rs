//! What the two model backends share: posting a request, turning HTTP
//! failures into [`DiagnosisError`]s, and reading a body that is either an
//! SSE stream or a plain JSON reply (servers that ignore `stream`).

use super::config::Secret;
use super::error::DiagnosisError;
use super::report::excerpt;
use super::sse::{SseDecoder, SseEvent};
use futures::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// A model's raw answer, before the schema check.
#[derive(Debug, Clone, PartialEq)]
pub enum RawAnswer {
    /// Text that must be exactly one JSON object.
    Text(String),
    /// A JSON value the API already parsed (a tool call's input).
    Json(Value),
}

/// Who we are talking to, for error messages.
pub struct Peer<'a> {
    pub backend: &'static str,
    pub key_var: &'static str,
    pub key: Option<&'a Secret>,
}

impl Peer<'_> {
    /// Removes the key from any text a server sent back, in case it echoed it.
    pub fn scrub(&self, text: &str) -> String {
        match self.key {
            Some(k) if !k.expose().is_empty() => text.replace(k.expose(), "***"),
            _ => text.to_string(),
        }
    }

    pub fn transport(&self, e: reqwest::Error) -> DiagnosisError {
        DiagnosisError::Transport {
            backend: self.backend.into(),
            message: self.scrub(&e.to_string()),
        }
    }

    pub fn malformed(&self, what: impl AsRef<str>) -> DiagnosisError {
        DiagnosisError::MalformedStream(self.scrub(what.as_ref()))
    }
}

/// The reply body once the status was good.
pub enum Body {
    Stream(reqwest::Response),
    Json(Value),
}

pub async fn post(
    peer: &Peer<'_>,
    url: &str,
    headers: HeaderMap,
    body: &Value,
) -> Result<Body, DiagnosisError> {
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| peer.transport(e))?;
    let response = client
        .post(url)
        .headers(headers)
        .json(body)
        .send()
        .await
        .map_err(|e| peer.transport(e))?;
    let status = response.status();
    if !status.is_success() {
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = response.text().await.unwrap_or_default();
        return Err(status_error(peer, status.as_u16(), retry_after, &text));
    }
    let is_stream = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_stream {
        return Ok(Body::Stream(response));
    }
    let text = response.text().await.map_err(|e| peer.transport(e))?;
    serde_json::from_str(&text).map(Body::Json).map_err(|e| {
        peer.malformed(format!(
            "the reply is neither an event stream nor JSON ({e}): {}",
            excerpt(&text)
        ))
    })
}

/// Maps an HTTP failure to its error, with the server's own message when it gave one.
pub fn status_error(
    peer: &Peer<'_>,
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> DiagnosisError {
    let message = peer.scrub(&server_message(body));
    let backend = peer.backend.to_string();
    match status {
        401 => DiagnosisError::Unauthorized {
            backend,
            key_var: peer.key_var,
        },
        429 => DiagnosisError::RateLimited {
            backend,
            retry_after,
        },
        500..=599 => DiagnosisError::Server {
            backend,
            status,
            message,
        },
        _ => DiagnosisError::Rejected {
            backend,
            status,
            message,
        },
    }
}

/// `error.message` of a JSON error body (both APIs use it), else the body's start.
pub fn server_message(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("error").filter(|e| e.is_string()))
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| {
            let e = excerpt(body);
            if e.is_empty() {
                "no details given".into()
            } else {
                e
            }
        })
}

/// Feeds every SSE event of a streamed body to `on_event` until it returns
/// `Ok(true)` (the stream's own end marker). A body that ends without it is malformed.
pub async fn read_events(
    peer: &Peer<'_>,
    response: reqwest::Response,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, DiagnosisError>,
) -> Result<(), DiagnosisError> {
    let mut decoder = SseDecoder::default();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk
            .map_err(|e| peer.malformed(format!("the stream broke off: {}", peer.transport(e))))?;
        for event in decoder.push(&chunk) {
            if on_event(event)? {
                return Ok(());
            }
        }
    }
    for event in decoder.finish() {
        if on_event(event)? {
            return Ok(());
        }
    }
    Err(peer.malformed("the stream ended before its end marker"))
}

/// Parses one event's data as JSON.
pub fn event_json(peer: &Peer<'_>, event: &SseEvent) -> Result<Value, DiagnosisError> {
    serde_json::from_str(&event.data).map_err(|e| {
        peer.malformed(format!(
            "an event is not JSON ({e}): {}",
            excerpt(&event.data)
        ))
    })
}
