//! What the two model backends share: posting a request, turning HTTP
//! failures into [`DiagnosisError`]s, and reading a body that is either an
//! SSE stream or a plain JSON reply (servers that ignore `stream`).
//!
//! Every body is read through its byte stream up to a limit (`docs/limits.md`),
//! never whole: the server may be any endpoint, including a local model that
//! loops. The client does not decompress (reqwest's `gzip`/`brotli`/`deflate`
//! features are off and it sends no `Accept-Encoding`), so the limits count
//! the bytes that arrive and there is no decompression bomb to defuse.

use super::config::Secret;
use super::error::DiagnosisError;
use super::report::excerpt;
use super::sse::{SseDecoder, SseError, SseEvent};
use futures::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use std::time::Duration;

/// Largest reply text (the streamed answer, or a non-streamed body) read:
/// `max_tokens` 4096 makes a real answer ~16 KiB, so 1 MiB is a model stuck
/// repeating itself, stopped well before it costs memory.
pub const MAX_REPLY_BYTES: usize = 1024 * 1024;
/// Most of an error body read: only its message (at most 200 characters) is
/// shown, and it comes first in both APIs' error bodies.
pub const MAX_ERROR_BODY_BYTES: usize = 64 * 1024;

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

    pub fn too_large(&self, what: &'static str, limit: usize) -> DiagnosisError {
        DiagnosisError::ReplyTooLarge {
            backend: self.backend.into(),
            what,
            limit,
        }
    }

    /// Appends a streamed chunk to the reply text, up to [`MAX_REPLY_BYTES`].
    pub fn append(&self, reply: &mut String, chunk: &str) -> Result<(), DiagnosisError> {
        if reply.len() + chunk.len() > MAX_REPLY_BYTES {
            return Err(self.too_large("a reply", MAX_REPLY_BYTES));
        }
        reply.push_str(chunk);
        Ok(())
    }

    fn sse(&self, e: SseError) -> DiagnosisError {
        match e {
            SseError::LineTooLong { limit } => self.too_large("a line of its event stream", limit),
            SseError::EventTooLarge { limit } => self.too_large("one event", limit),
        }
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
        // A body cut at the limit is still worth its start: the message leads.
        let text = match read_up_to(response, MAX_ERROR_BODY_BYTES).await {
            Ok((bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => String::new(),
        };
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
    let (bytes, complete) = read_up_to(response, MAX_REPLY_BYTES)
        .await
        .map_err(|e| peer.malformed(format!("the reply broke off: {}", peer.transport(e))))?;
    if !complete {
        return Err(peer.too_large("a reply", MAX_REPLY_BYTES));
    }
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(&text).map(Body::Json).map_err(|e| {
        peer.malformed(format!(
            "the reply is neither an event stream nor JSON ({e}): {}",
            excerpt(&text)
        ))
    })
}

/// Reads at most `limit` bytes of a body: the bytes, and whether that was all of it.
async fn read_up_to(
    response: reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut stream = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let room = limit - out.len();
        if chunk.len() > room {
            out.extend_from_slice(&chunk[..room]);
            return Ok((out, false));
        }
        out.extend_from_slice(&chunk);
    }
    Ok((out, true))
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
        for event in decoder.push(&chunk).map_err(|e| peer.sse(e))? {
            if on_event(event)? {
                return Ok(());
            }
        }
    }
    for event in decoder.finish().map_err(|e| peer.sse(e))? {
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
