//! What the two model backends share: posting a request, turning HTTP
//! failures into [`DiagnosisError`]s, and reading a body that is either an
//! SSE stream or a plain JSON reply (servers that ignore `stream`).
//!
//! Every body is read through its byte stream up to a limit (`docs/limits.md`),
//! never whole: the server may be any endpoint, including a local model that
//! loops. The client does not decompress (reqwest's `gzip`/`brotli`/`deflate`
//! features are off and it sends no `Accept-Encoding`), so the limits count
//! the bytes that arrive and there is no decompression bomb to defuse.
//!
//! Requests go through [`Replies`]: the network, the network recorded to a
//! cassette, or a cassette alone (`cassette.rs`).

use super::cassette::{self, Entry, Recorder, Replies};
use super::config::Secret;
use super::error::DiagnosisError;
use super::report::excerpt;
use super::sse::{SseDecoder, SseError, SseEvent};
use futures::stream::BoxStream;
use futures::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
    /// An event stream, still arriving.
    Stream(Incoming),
    /// A plain JSON reply, read in full after `latency_ms`.
    Json { value: Value, latency_ms: u64 },
}

/// A reply's bytes as they arrive, from the network or a cassette; when
/// recording, every byte read is kept and the call is written to the cassette
/// once the reply is read (or dropped part way, e.g. by a timeout).
pub struct Incoming {
    chunks: BoxStream<'static, Result<Vec<u8>, reqwest::Error>>,
    started: Instant,
    /// A replayed call's recorded latency, reported in place of the replay's own.
    replayed_ms: Option<u64>,
    tape: Option<Box<Tape>>,
}

/// The call being recorded: its entry, and the bytes read so far.
struct Tape {
    recorder: Arc<Recorder>,
    entry: Entry,
    bytes: Vec<u8>,
    /// The API key, blanked out of the reply should a server echo it.
    key: Option<Secret>,
}

impl Tape {
    /// Writes the call with its latency and its reply, the key blanked.
    fn write(mut self, latency_ms: u64) -> Result<(), cassette::CassetteError> {
        self.entry.reply.latency_ms = latency_ms;
        let mut bytes = std::mem::take(&mut self.bytes);
        if let Some(key) = self
            .key
            .as_ref()
            .map(Secret::expose)
            .filter(|k| !k.is_empty())
        {
            bytes = blank(&bytes, key.as_bytes());
        }
        self.entry.reply.set_bytes(bytes);
        self.recorder.write(&self.entry)
    }
}

/// `bytes` with every occurrence of `secret` replaced by `***`.
fn blank(bytes: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(secret) {
            out.extend_from_slice(b"***");
            i += secret.len();
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

impl Incoming {
    async fn next(&mut self) -> Option<Result<Vec<u8>, reqwest::Error>> {
        let chunk = self.chunks.next().await;
        if let (Some(Ok(bytes)), Some(tape)) = (&chunk, &mut self.tape) {
            tape.bytes.extend_from_slice(bytes);
        }
        chunk
    }

    /// The call's latency; a recorded call is written to its cassette now.
    fn finish(&mut self, peer: &Peer<'_>) -> Result<u64, DiagnosisError> {
        let latency_ms = self
            .replayed_ms
            .unwrap_or_else(|| self.started.elapsed().as_millis() as u64);
        if let Some(tape) = self.tape.take() {
            tape.write(latency_ms)
                .map_err(|e| DiagnosisError::Cassette(peer.scrub(&e.to_string())))?;
        }
        Ok(latency_ms)
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(tape) = self.tape.take() {
            if let Err(e) = tape.write(self.started.elapsed().as_millis() as u64) {
                tracing::warn!("recording a model reply cut short: {e}");
            }
        }
    }
}

/// A reply's head and its body still to read.
struct Raw {
    status: u16,
    content_type: Option<String>,
    retry_after: Option<Duration>,
    incoming: Incoming,
}

/// Sends the request: to the network (recording it when asked), or to the
/// cassette, which opens no socket and never falls back to the network.
async fn send(
    peer: &Peer<'_>,
    replies: &Replies,
    url: &str,
    headers: HeaderMap,
    body: &Value,
) -> Result<Raw, DiagnosisError> {
    let started = Instant::now();
    let request = || cassette::Request {
        method: "POST".into(),
        path: reqwest::Url::parse(url)
            .map(|u| u.path().to_string())
            .unwrap_or_else(|_| url.to_string()),
        body: body.clone(),
    };
    if let Some(player) = replies.player() {
        let entry = player
            .serve(replies.trial(), &request())
            .map_err(|e| DiagnosisError::Cassette(e.to_string()))?;
        let bytes = entry.reply.bytes().map_err(|e| {
            DiagnosisError::Cassette(format!("{}: {} of {e}", player.path().display(), entry.key))
        })?;
        let chunks = futures::stream::iter([Ok(bytes)]).boxed();
        return Ok(Raw {
            status: entry.reply.status,
            content_type: entry.reply.content_type.clone(),
            retry_after: entry.reply.retry_after_s.map(Duration::from_secs),
            incoming: Incoming {
                chunks,
                started,
                replayed_ms: Some(entry.reply.latency_ms),
                tape: None,
            },
        });
    }
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
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let content_type = header(CONTENT_TYPE);
    let retry_after = header(RETRY_AFTER)
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let status = response.status().as_u16();
    let tape = replies.recorder().map(|recorder| {
        let mut entry = recorder.begin(replies.trial(), request());
        entry.reply = cassette::Reply::new(
            status,
            content_type.clone(),
            retry_after.map(|d| d.as_secs()),
        );
        Box::new(Tape {
            recorder: Arc::clone(recorder),
            entry,
            bytes: Vec::new(),
            key: peer.key.cloned(),
        })
    });
    Ok(Raw {
        status,
        content_type,
        retry_after,
        incoming: Incoming {
            chunks: response
                .bytes_stream()
                .map(|c| c.map(|b| b.to_vec()))
                .boxed(),
            started,
            replayed_ms: None,
            tape,
        },
    })
}

/// Posts a request through `replies` (`docs/eval.md`): the only place the
/// backends send HTTP, so both APIs record and replay alike.
pub async fn post(
    peer: &Peer<'_>,
    replies: &Replies,
    url: &str,
    headers: HeaderMap,
    body: &Value,
) -> Result<Body, DiagnosisError> {
    let Raw {
        status,
        content_type,
        retry_after,
        mut incoming,
    } = send(peer, replies, url, headers, body).await?;
    if !(200..300).contains(&status) {
        // A body cut at the limit is still worth its start: the message leads.
        let text = match read_up_to(&mut incoming, MAX_ERROR_BODY_BYTES).await {
            Ok((bytes, _)) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(_) => String::new(),
        };
        incoming.finish(peer)?;
        return Err(status_error(peer, status, retry_after, &text));
    }
    let is_stream = content_type
        .as_deref()
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if is_stream {
        return Ok(Body::Stream(incoming));
    }
    let (bytes, complete) = read_up_to(&mut incoming, MAX_REPLY_BYTES)
        .await
        .map_err(|e| peer.malformed(format!("the reply broke off: {}", peer.transport(e))))?;
    let latency_ms = incoming.finish(peer)?;
    if !complete {
        return Err(peer.too_large("a reply", MAX_REPLY_BYTES));
    }
    let text = String::from_utf8_lossy(&bytes);
    serde_json::from_str(&text)
        .map(|value| Body::Json { value, latency_ms })
        .map_err(|e| {
            peer.malformed(format!(
                "the reply is neither an event stream nor JSON ({e}): {}",
                excerpt(&text)
            ))
        })
}

/// Reads at most `limit` bytes of a body: the bytes, and whether that was all of it.
async fn read_up_to(
    incoming: &mut Incoming,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = incoming.next().await {
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
/// `Ok(true)` (the stream's own end marker). A body that ends without it is
/// malformed. `latency_ms` gets the call's latency however reading ended.
pub async fn read_events(
    peer: &Peer<'_>,
    mut incoming: Incoming,
    latency_ms: &mut u64,
    on_event: impl FnMut(SseEvent) -> Result<bool, DiagnosisError>,
) -> Result<(), DiagnosisError> {
    let outcome = events(peer, &mut incoming, on_event).await;
    *latency_ms = incoming.finish(peer)?;
    outcome
}

async fn events(
    peer: &Peer<'_>,
    incoming: &mut Incoming,
    mut on_event: impl FnMut(SseEvent) -> Result<bool, DiagnosisError>,
) -> Result<(), DiagnosisError> {
    let mut decoder = SseDecoder::default();
    while let Some(chunk) = incoming.next().await {
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
