//! A minimal server-sent-events decoder: bytes in, `(event, data)` out.
//!
//! Both model APIs stream SSE; only `event:` and `data:` fields matter here.
//! The server is not trusted: each byte is scanned once (the decoder keeps
//! where its newline search stopped), and a line or an event past its limit
//! is an error rather than a buffer that grows for as long as the server
//! keeps sending.

/// Longest line accepted. One SSE line carries one delta of a few tokens, or
/// at most a whole answer (`max_tokens` 4096, ~16 KiB of JSON, escaped);
/// 64 KiB is four times that.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Largest data of one event (its `data:` lines joined): 1 MiB, the size of a
/// whole reply (see `http::MAX_REPLY_BYTES`), so no single event can exceed it.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, empty when absent.
    pub event: String,
    /// The `data:` lines joined with newlines.
    pub data: String,
}

/// A stream past one of the decoder's limits; the stream is unusable after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("a line of the event stream is longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("one event's data is larger than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// Feed it chunks as they arrive; it returns the events each chunk completes.
#[derive(Debug)]
pub struct SseDecoder {
    buffer: Vec<u8>,
    /// How far `buffer` is known to hold no newline: the next search starts here.
    scanned: usize,
    event: String,
    data: String,
    /// Whether a `data:` field was seen (an empty one counts).
    has_data: bool,
    max_line: usize,
    max_event: usize,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::with_limits(MAX_LINE_BYTES, MAX_EVENT_BYTES)
    }
}

impl SseDecoder {
    /// A decoder with its own limits (tests use small ones).
    pub fn with_limits(max_line: usize, max_event: usize) -> Self {
        SseDecoder {
            buffer: Vec::new(),
            scanned: 0,
            event: String::new(),
            data: String::new(),
            has_data: false,
            max_line,
            max_event,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.buffer.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(found) = self.buffer[self.scanned..].iter().position(|b| *b == b'\n') {
            let end = self.scanned + found;
            let line = take_line(&self.buffer[start..end]);
            if line.len() > self.max_line {
                return Err(SseError::LineTooLong {
                    limit: self.max_line,
                });
            }
            let line = String::from_utf8_lossy(line).into_owned();
            self.line(&line, &mut out)?;
            start = end + 1;
            self.scanned = start;
        }
        self.scanned = self.buffer.len();
        // The unfinished tail came in with this chunk (a newline was found in it,
        // or nothing was drained), so moving it costs at most the chunk's length.
        if start > 0 {
            self.buffer.drain(..start);
            self.scanned -= start;
        }
        if take_line(&self.buffer).len() > self.max_line {
            return Err(SseError::LineTooLong {
                limit: self.max_line,
            });
        }
        Ok(out)
    }

    /// Flushes a last event that was not followed by a blank line.
    pub fn finish(&mut self) -> Result<Vec<SseEvent>, SseError> {
        let mut out = Vec::new();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            self.scanned = 0;
            let line = String::from_utf8_lossy(take_line(&rest)).into_owned();
            self.line(&line, &mut out)?;
        }
        self.dispatch(&mut out);
        Ok(out)
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                let joined = self.data.len() + usize::from(self.has_data) + value.len();
                if joined > self.max_event {
                    return Err(SseError::EventTooLarge {
                        limit: self.max_event,
                    });
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        if !std::mem::take(&mut self.has_data) {
            self.event.clear();
            return;
        }
        out.push(SseEvent {
            event: std::mem::take(&mut self.event),
            data: std::mem::take(&mut self.data),
        });
    }
}

/// A line without its `\r` (CRLF line ends).
fn take_line(bytes: &[u8]) -> &[u8] {
    bytes.strip_suffix(b"\r").unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn events_split_across_chunks_and_crlf() {
        let mut d = SseDecoder::default();
        let mut got = d.push(b"event: a\r\ndata: {\"x\"").unwrap();
        assert!(got.is_empty());
        got.extend(d.push(b":1}\r\n\r\n: comment\n\ndata: [DONE]").unwrap());
        got.extend(d.finish().unwrap());
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
        let mut got = d.push(&bytes[..arrow + 1]).unwrap();
        got.extend(d.push(&bytes[arrow + 1..]).unwrap());
        assert_eq!(got[0].data, "up → down");
    }

    #[test]
    fn multi_line_data_is_joined() {
        let mut d = SseDecoder::default();
        let got = d.push(b"data: one\ndata: two\n\n").unwrap();
        assert_eq!(got[0].data, "one\ntwo");
    }

    #[test]
    fn a_line_past_the_limit_is_an_error_before_its_end_arrives() {
        let mut d = SseDecoder::with_limits(16, 1024);
        assert_eq!(d.push(b"data: 0123456789").unwrap(), vec![]);
        assert_eq!(
            d.push(b"abc"),
            Err(SseError::LineTooLong { limit: 16 }),
            "19 bytes without a newline are refused before the newline arrives"
        );
        let mut d = SseDecoder::with_limits(16, 1024);
        assert_eq!(
            d.push(b"data: 0123456789abc\n"),
            Err(SseError::LineTooLong { limit: 16 })
        );
        // Exactly at the limit, CR not counted, is fine.
        let mut d = SseDecoder::with_limits(16, 1024);
        let got = d.push(b"data: 0123456789\r\n\r\n").unwrap();
        assert_eq!(got[0].data, "0123456789");
    }

    #[test]
    fn an_event_past_the_limit_is_an_error() {
        let mut d = SseDecoder::with_limits(64, 10);
        assert!(d.push(b"data: 01234\n").is_ok());
        assert_eq!(
            d.push(b"data: 56789\n"),
            Err(SseError::EventTooLarge { limit: 10 }),
            "5 + newline + 5 = 11 bytes"
        );
        let mut d = SseDecoder::with_limits(64, 10);
        let got = d.push(b"data: 01234\ndata: 5678\n\n").unwrap();
        assert_eq!(got[0].data, "01234\n5678", "exactly 10 bytes fit");
    }

    #[test]
    fn a_long_line_in_one_byte_chunks_is_scanned_once() {
        // Quadratic re-scanning of 64 KiB would be 2^31 byte visits; this counts
        // the decoder's own work instead of timing it: the buffer never holds
        // more than the unfinished line, and every event still comes out.
        let line = format!("data: {}\n\n", "x".repeat(MAX_LINE_BYTES - 6));
        let mut d = SseDecoder::default();
        let mut got = Vec::new();
        for b in line.as_bytes() {
            got.extend(d.push(std::slice::from_ref(b)).unwrap());
            assert_eq!(
                d.scanned,
                d.buffer.len(),
                "the search resumes where it stopped"
            );
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].data.len(), MAX_LINE_BYTES - 6);
    }

    /// SSE text built from lines that fit small limits, with every kind of line.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let line = prop_oneof![
            "data: [a-z→{}\" ]{0,12}".prop_map(|s| s.into_bytes()),
            "event: [a-z_]{1,8}".prop_map(|s| s.into_bytes()),
            Just(b"data".to_vec()),
            Just(b": keep-alive".to_vec()),
            Just(Vec::new()),
            Just(b"id: 7".to_vec()),
        ];
        let ending = prop_oneof![Just(b"\n".to_vec()), Just(b"\r\n".to_vec())];
        prop::collection::vec((line, ending), 0..40).prop_map(|lines| {
            lines
                .into_iter()
                .flat_map(|(mut l, e)| {
                    l.extend(e);
                    l
                })
                .collect()
        })
    }

    /// Everything a decoder makes of `bytes` pushed in pieces cut at `cuts`.
    fn decode(
        bytes: &[u8],
        cuts: &[usize],
        limits: (usize, usize),
    ) -> Result<Vec<SseEvent>, SseError> {
        let mut d = SseDecoder::with_limits(limits.0, limits.1);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut out = Vec::new();
        let mut from = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            out.extend(d.push(&bytes[from..p])?);
            from = p;
        }
        out.extend(d.finish()?);
        Ok(out)
    }

    proptest! {
        #[test]
        fn every_chunking_gives_the_same_events(
            bytes in stream(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
        ) {
            let whole = decode(&bytes, &[], (64, 4096));
            prop_assert!(whole.is_ok());
            prop_assert_eq!(decode(&bytes, &cuts, (64, 4096)), whole);
        }

        #[test]
        fn every_chunking_gives_the_same_verdict_under_tight_limits(
            bytes in stream(),
            cuts in prop::collection::vec(any::<usize>(), 0..12),
            max_line in 4usize..24,
            max_event in 4usize..40,
        ) {
            // Either the same events, or the same limit hit (the events before it
            // may have come out of earlier chunks, so only the error is compared).
            let whole = decode(&bytes, &[], (max_line, max_event));
            let cut = decode(&bytes, &cuts, (max_line, max_event));
            match (&whole, &cut) {
                (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "{:?} vs {:?}", whole, cut),
            }
        }
    }
}
