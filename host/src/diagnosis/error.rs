//! Why a diagnosis could not be had. Messages are shown in the panel and the
//! journal as they are, so they say what to do and never include an API key.

use std::time::Duration;
use thiserror::Error;

/// What every [`DiagnosisError::SchemaMismatch`] says, so a journal's failure
/// text tells a schema failure from the rest (a campaign's schema-failure rate).
pub const SCHEMA_MISMATCH: &str = "the reply does not match the diagnosis schema";

#[derive(Debug, Clone, PartialEq, Error)]
pub enum DiagnosisError {
    #[error("{backend} rejected the API key (HTTP 401): check {key_var}")]
    Unauthorized {
        backend: String,
        key_var: &'static str,
    },
    #[error("{backend} is rate limiting us (HTTP 429){}; wait and ask again", retry_hint(.retry_after))]
    RateLimited {
        backend: String,
        retry_after: Option<Duration>,
    },
    #[error("{backend} failed on its side (HTTP {status}): {message}")]
    Server {
        backend: String,
        status: u16,
        message: String,
    },
    #[error("{backend} refused the request (HTTP {status}): {message}")]
    Rejected {
        backend: String,
        status: u16,
        message: String,
    },
    #[error("no diagnosis within {}s; the demo can move on", .0.as_secs())]
    Timeout(Duration),
    #[error("the reply stream was malformed: {0}")]
    MalformedStream(String),
    #[error("the reply does not match the diagnosis schema: {0}")]
    SchemaMismatch(String),
    #[error("could not reach {backend}: {message}")]
    Transport { backend: String, message: String },
    /// `--replay-replies`: the cassette has no reply for this request (the
    /// message names the first JSON field that differs from the recording);
    /// or `--record-replies` could not write it.
    #[error("model reply cassette: {0}")]
    Cassette(String),
    #[error("diagnoser configuration: {0}")]
    Config(String),
    /// The server kept sending past a limit (`docs/limits.md`): a model that
    /// loops, or not a model server at all. Reading stopped there.
    #[error("{backend} sent {what} larger than {} (the host's limit); reading stopped there: is the model repeating itself?", size(*.limit))]
    ReplyTooLarge {
        backend: String,
        what: &'static str,
        limit: usize,
    },
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
pub fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * KIB;
    if bytes >= MIB && bytes % MIB == 0 {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes % KIB == 0 {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_schema_mismatch_says_so_in_its_text() {
        let e = super::DiagnosisError::SchemaMismatch("no anomaly".into());
        assert!(e.to_string().starts_with(super::SCHEMA_MISMATCH), "{e}");
    }
}
