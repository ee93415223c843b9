//! Anthropic Messages API backend: a forced tool call whose input schema is the
//! diagnosis, streamed as `input_json_delta` chunks.

use super::cassette::Replies;
use super::config::{Secret, ENV_ANTHROPIC_KEY};
use super::error::DiagnosisError;
use super::http::{event_json, post, read_events, status_error, Body, Peer, RawAnswer};
use super::prompt::Prompt;
use super::report::ANSWER_NAME;
use super::usage::ModelCall;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use serde_json::{json, Value};

pub const API_VERSION: &str = "2023-06-01";
const MAX_TOKENS: u32 = 4096;

pub fn request_body(model: &str, prompt: &Prompt) -> Value {
    json!({
        "model": model,
        "max_tokens": MAX_TOKENS,
        "system": prompt.system,
        "messages": [{"role": "user", "content": prompt.user}],
        "tools": [{
            "name": ANSWER_NAME,
            "description": "Report the structured diagnosis of the observation window.",
            "input_schema": prompt.schema.clone(),
        }],
        "tool_choice": {"type": "tool", "name": ANSWER_NAME},
        "stream": true,
    })
}

pub async fn ask(
    base_url: &str,
    model: &str,
    api_key: &Secret,
    replies: &Replies,
    prompt: &Prompt,
    progress: &mut (dyn FnMut(&str) + Send),
    call: &mut ModelCall,
) -> Result<RawAnswer, DiagnosisError> {
    let peer = Peer {
        backend: "anthropic",
        key_var: ENV_ANTHROPIC_KEY,
        key: Some(api_key),
    };
    let mut headers = HeaderMap::new();
    let mut key = HeaderValue::from_str(api_key.expose()).map_err(|_| {
        DiagnosisError::Config(format!(
            "{ENV_ANTHROPIC_KEY} contains characters a header cannot carry"
        ))
    })?;
    key.set_sensitive(true);
    headers.insert("x-api-key", key);
    headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let url = format!("{}/v1/messages", base_url.trim_end_matches('/'));
    match post(&peer, replies, &url, headers, &request_body(model, prompt)).await? {
        Body::Json {
            value: reply,
            latency_ms,
        } => {
            call.latency_ms = latency_ms;
            call.read_anthropic(&reply);
            answer_from_message(&reply)
        }
        Body::Stream(incoming) => {
            let mut tool_json = String::new();
            let mut text = String::new();
            let mut latency_ms = 0;
            let outcome = read_events(&peer, incoming, &mut latency_ms, |event| {
                let data = event_json(&peer, &event)?;
                call.read_anthropic(&data);
                match data
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or(event.event.as_str())
                {
                    "content_block_delta" => {
                        let delta = &data["delta"];
                        let chunk = match delta.get("type").and_then(Value::as_str) {
                            Some("input_json_delta") => delta
                                .get("partial_json")
                                .and_then(Value::as_str)
                                .map(|c| (c, &mut tool_json)),
                            Some("text_delta") => delta
                                .get("text")
                                .and_then(Value::as_str)
                                .map(|c| (c, &mut text)),
                            _ => None,
                        };
                        if let Some((chunk, buffer)) = chunk {
                            peer.append(buffer, chunk)?;
                            progress(chunk);
                        }
                        Ok(false)
                    }
                    "message_stop" => Ok(true),
                    "error" => Err(stream_error(&peer, &data)),
                    _ => Ok(false),
                }
            })
            .await;
            call.latency_ms = latency_ms;
            outcome?;
            if !tool_json.trim().is_empty() {
                Ok(RawAnswer::Text(tool_json))
            } else if !text.trim().is_empty() {
                Ok(RawAnswer::Text(text))
            } else {
                Err(DiagnosisError::SchemaMismatch(format!(
                    "the model did not call {ANSWER_NAME}"
                )))
            }
        }
    }
}

/// A non-streamed Messages reply: the tool call's input, else the text blocks.
fn answer_from_message(reply: &Value) -> Result<RawAnswer, DiagnosisError> {
    let blocks = reply
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| DiagnosisError::SchemaMismatch("the reply has no content".into()))?;
    if let Some(input) = blocks
        .iter()
        .find(|b| b["type"] == "tool_use" && b["name"] == ANSWER_NAME)
        .and_then(|b| b.get("input"))
    {
        return Ok(RawAnswer::Json(input.clone()));
    }
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    if text.trim().is_empty() {
        Err(DiagnosisError::SchemaMismatch(format!(
            "the model did not call {ANSWER_NAME}"
        )))
    } else {
        Ok(RawAnswer::Text(text))
    }
}

/// An `error` event inside a stream, mapped like the HTTP status it stands for.
fn stream_error(peer: &Peer<'_>, data: &Value) -> DiagnosisError {
    let kind = data
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let status = match kind {
        "authentication_error" => 401,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        "invalid_request_error" => 400,
        _ => 500,
    };
    status_error(peer, status, None, &data.to_string())
}
