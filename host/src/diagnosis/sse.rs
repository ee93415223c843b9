//! A minimal server-sent-events decoder: bytes in, `(event, data)` out.
//!
//! Both model APIs stream SSE; only `event:` and `data:` fields matter here.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines joined with newlines.
    pub data: String,
}

/// Feed it chunks as they arrive; it returns the events each chunk completes.
#[derive(Debug, Default)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseDecoder {
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            self.line(line, &mut out);
        }
        out
    }

    /// Flushes a last event that was not followed by a blank line.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            let line = String::from_utf8_lossy(&rest)
                .trim_end_matches('\r')
                .to_string();
            self.line(&line, &mut out);
        }
        self.dispatch(&mut out);
        out
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => self.data.push(value.to_string()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if self.data.is_empty() {
            self.event.clear();
            return;
        }
        out.push(SseEvent {
            event: std::mem::take(&mut self.event),
            data: std::mem::take(&mut self.data).join("\n"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut d = SseDecoder::default();
        let mut got = d.push(b"event: a\r\ndata: {\"x\"");
        assert!(got.is_empty());
        got.extend(d.push(b":1}\r\n\r\n: comment\n\ndata: [DONE]"));
        got.extend(d.finish());
        assert_eq!(
            got,
            vec![
                SseEvent {
                    event: "a".into(),
                    data: "{\"x\":1}".into()
                },
                SseEvent {
                    event: String::new(),
                    data: "[DONE]".into()
                },
            ]
        );
    }

    #[test]
    fn a_character_split_across_chunks_survives() {
        let bytes = "data: up → down\n\n".as_bytes();
        let arrow = bytes.iter().position(|b| *b == 0xe2).unwrap();
        let mut d = SseDecoder::default();
        let mut got = d.push(&bytes[..arrow + 1]);
        got.extend(d.push(&bytes[arrow + 1..]));
        assert_eq!(got[0].data, "up → down");
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut d = SseDecoder::default();
        let got = d.push(b"data: one\ndata: two\n\n");
        assert_eq!(got[0].data, "one\ntwo");
    }
}
