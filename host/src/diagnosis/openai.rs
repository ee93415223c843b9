//! OpenAI-compatible chat completions backend (Ollama, llama.cpp server,
//! vLLM, ...): the diagnosis schema goes in `response_format`, the answer
//! streams as `delta.content` chunks.

use super::cassette::Replies;
use super::config::{Secret, ENV_OPENAI_KEY};
use super::error::DiagnosisError;
use super::http::{event_json, post, read_events, Body, Peer, RawAnswer};
use super::prompt::Prompt;
use super::report::ANSWER_NAME;
use super::usage::ModelCall;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::{json, Value};

pub fn request_body(model: &str, prompt: &Prompt) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user},
        ],
        "stream": true,
        // The last chunk then carries the tokens used (`usage`); servers that
        // do not know the option ignore it.
        "stream_options": {"include_usage": true},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": ANSWER_NAME, "schema": prompt.schema.clone(), "strict": true},
        },
    })
}

/// `{base}/v1/chat/completions`, whether or not the base already ends in `/v1`.
pub fn endpoint(base_url: &str) -> String {
    let base = base_url.trim_end_matches('/');
    let base = base.strip_suffix("/v1").unwrap_or(base);
    format!("{base}/v1/chat/completions")
}

pub async fn ask(
    base_url: &str,
    model: &str,
    api_key: Option<&Secret>,
    replies: &Replies,
    prompt: &Prompt,
    progress: &mut (dyn FnMut(&str) + Send),
    call: &mut ModelCall,
) -> Result<RawAnswer, DiagnosisError> {
    let peer = Peer {
        backend: "openai",
        key_var: ENV_OPENAI_KEY,
        key: api_key,
    };
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(key) = api_key {
        let mut value =
            HeaderValue::from_str(&format!("Bearer {}", key.expose())).map_err(|_| {
                DiagnosisError::Config(format!(
                    "{ENV_OPENAI_KEY} contains characters a header cannot carry"
                ))
            })?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    match post(
        &peer,
        replies,
        &endpoint(base_url),
        headers,
        &request_body(model, prompt),
    )
    .await?
    {
        Body::Json {
            value: reply,
            latency_ms,
        } => {
            call.latency_ms = latency_ms;
            call.read_openai(&reply);
            if reply.get("error").is_some() {
                return Err(super::http::status_error(
                    &peer,
                    500,
                    None,
                    &reply.to_string(),
                ));
            }
            reply
                .pointer("/choices/0/message/content")
                .and_then(Value::as_str)
                .map(|t| RawAnswer::Text(t.to_string()))
                .ok_or_else(|| {
                    DiagnosisError::SchemaMismatch(
                        "the reply has no choices[0].message.content".into(),
                    )
                })
        }
        Body::Stream(incoming) => {
            let mut content = String::new();
            let mut finished = false;
            let mut latency_ms = 0;
            let outcome = read_events(&peer, incoming, &mut latency_ms, |event| {
                if event.data.trim() == "[DONE]" {
                    return Ok(true);
                }
                let data = event_json(&peer, &event)?;
                call.read_openai(&data);
                if data.get("error").is_some() {
                    return Err(super::http::status_error(
                        &peer,
                        500,
                        None,
                        &data.to_string(),
                    ));
                }
                if let Some(chunk) = data
                    .pointer("/choices/0/delta/content")
                    .and_then(Value::as_str)
                {
                    peer.append(&mut content, chunk)?;
                    progress(chunk);
                }
                if data
                    .pointer("/choices/0/finish_reason")
                    .is_some_and(|f| !f.is_null())
                {
                    finished = true;
                }
                Ok(false)
            })
            .await;
            call.latency_ms = latency_ms;
            match outcome {
                Ok(()) => {}
                // Some servers close after the final chunk without `[DONE]`.
                Err(DiagnosisError::MalformedStream(_)) if finished => {}
                Err(e) => return Err(e),
            }
            if content.trim().is_empty() {
                Err(DiagnosisError::SchemaMismatch(
                    "the model sent no content".into(),
                ))
            } else {
                Ok(RawAnswer::Text(content))
            }
        }
    }
}
