//! What one model call took and cost, as the API reports it: the campaign's
//! model-backend figures (latency, input and output tokens) come from here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One model call: its latency, measured by the host, and its tokens where
/// the API reported them (`None` when it did not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelCall {
    /// From sending the request to the answer read in full.
    pub latency_ms: u64,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

impl ModelCall {
    /// Anthropic's `usage`: of a Messages reply, of `message_start`
    /// (`message.usage`) or of `message_delta` (output tokens so far, cumulative).
    pub fn read_anthropic(&mut self, data: &Value) {
        let Some(usage) = data
            .get("usage")
            .or_else(|| data.pointer("/message/usage"))
            .filter(|u| u.is_object())
        else {
            return;
        };
        if let Some(n) = usage.get("input_tokens").and_then(Value::as_u64) {
            self.input_tokens = Some(n);
        }
        if let Some(n) = usage.get("output_tokens").and_then(Value::as_u64) {
            self.output_tokens = Some(n);
        }
    }

    /// OpenAI's `usage` (`prompt_tokens`, `completion_tokens`): of a chat
    /// completion, or of the last chunk of a stream asked with
    /// `stream_options.include_usage` (the other chunks carry `usage: null`).
    pub fn read_openai(&mut self, data: &Value) {
        let Some(usage) = data.get("usage").filter(|u| u.is_object()) else {
            return;
        };
        if let Some(n) = usage.get("prompt_tokens").and_then(Value::as_u64) {
            self.input_tokens = Some(n);
        }
        if let Some(n) = usage.get("completion_tokens").and_then(Value::as_u64) {
            self.output_tokens = Some(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn anthropic_usage_from_a_stream_and_a_reply() {
        // The events as the Messages API streams them.
        let mut c = ModelCall::default();
        c.read_anthropic(&json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "content": [], "usage": {"input_tokens": 900, "output_tokens": 1}}}));
        c.read_anthropic(&json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{"}}));
        c.read_anthropic(&json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 400}}));
        assert_eq!((c.input_tokens, c.output_tokens), (Some(900), Some(400)));
        let mut r = ModelCall::default();
        r.read_anthropic(&json!({"id": "msg_1", "content": [], "usage": {"input_tokens": 12, "output_tokens": 34}}));
        assert_eq!((r.input_tokens, r.output_tokens), (Some(12), Some(34)));
    }

    #[test]
    fn openai_usage_from_the_last_chunk_and_a_reply() {
        let mut c = ModelCall::default();
        c.read_openai(&json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "{"}}], "usage": null}));
        assert_eq!(c, ModelCall::default(), "usage: null says nothing");
        c.read_openai(&json!({"object": "chat.completion.chunk", "choices": [], "usage": {"prompt_tokens": 700, "completion_tokens": 250, "total_tokens": 950}}));
        assert_eq!((c.input_tokens, c.output_tokens), (Some(700), Some(250)));
        let mut none = ModelCall::default();
        none.read_openai(&json!({"choices": [{"message": {"content": "{}"}}]}));
        assert_eq!((none.input_tokens, none.output_tokens), (None, None));
    }
}
