//! Cassettes: every model request of a run or campaign and the reply it got,
//! kept in one JSON Lines file so a campaign with a model backend can be
//! replayed, and re-scored, with no model in reach (`docs/eval.md`).
//!
//! An entry holds the request's method, path and JSON body (never a header,
//! so never a key) and the reply's status, content type and raw bytes. It is
//! keyed by a hash of the canonical body plus how many earlier requests of the
//! same trial had that hash, so a replay serves each request its own reply and
//! refuses, naming the first differing JSON field, one it never saw.

mod diff;

pub use diff::{first_difference, Difference};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The cassette's file name inside the `--record-replies` / `--replay-replies` directory.
pub const FILE_NAME: &str = "cassette.jsonl";

/// The trial label of the calls of a `demo-host run` (a campaign labels each
/// call with its trial's journal, e.g. `trials/crash-001.json`).
pub const RUN: &str = "run";

/// One model call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The trial it belongs to: its journal relative to the campaign's
    /// directory, or [`RUN`].
    pub trial: String,
    /// `xxh3-128:` and the hash of the canonical request body.
    pub key: String,
    /// How many earlier requests of this trial had the same key.
    pub seq: usize,
    pub request: Request,
    pub reply: Reply,
}

/// What was sent, without its headers (the key travels in a header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub method: String,
    /// The URL's path only: a base URL's host and credentials stay out.
    pub path: String,
    pub body: Value,
}

/// What came back, as it arrived.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    /// `Retry-After` in seconds, when the server sent one (a 429).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// The body or event stream, when it is UTF-8 (model replies are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body as base64, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// From sending the request to the last byte read: a replayed call reports it as its latency.
    pub latency_ms: u64,
}

impl Reply {
    pub fn new(status: u16, content_type: Option<String>, retry_after_s: Option<u64>) -> Reply {
        Reply {
            status,
            content_type,
            retry_after_s,
            body: None,
            body_base64: None,
            latency_ms: 0,
        }
    }

    /// Keeps `bytes` as text when it is UTF-8, else as base64.
    pub fn set_bytes(&mut self, bytes: Vec<u8>) {
        use base64::Engine as _;
        match String::from_utf8(bytes) {
            Ok(text) => self.body = Some(text),
            Err(e) => {
                self.body_base64 =
                    Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()))
            }
        }
    }

    /// The body's bytes as they arrived.
    pub fn bytes(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        match (&self.body, &self.body_base64) {
            (Some(text), _) => Ok(text.clone().into_bytes()),
            (None, Some(b64)) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| format!("body_base64 is not base64: {e}")),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// The canonical form's hash: serde_json writes object keys sorted (its maps
/// are ordered), so equal bodies hash equal whatever order they were built in.
pub fn key_of(body: &Value) -> String {
    let canonical = serde_json::to_vec(body).unwrap_or_default();
    format!("xxh3-128:{:032x}", xxhash_rust::xxh3::xxh3_128(&canonical))
}

#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cannot {what} {path}: {err}")]
    Io {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    #[error("{path} line {line} is not a cassette entry: {err}")]
    Parse {
        path: PathBuf,
        line: usize,
        err: serde_json::Error,
    },
    #[error("{path} holds no recorded call of {trial} (it has calls of {known}); was it recorded from this campaign?")]
    NoTrial {
        path: PathBuf,
        trial: String,
        known: String,
    },
    #[error("request {n} of {trial} does not match its recording in {path}: at {}, the recording has {} but this request has {}", .diff.path, .diff.expected, .diff.got)]
    Mismatch {
        path: PathBuf,
        trial: String,
        n: usize,
        diff: Box<Difference>,
    },
    #[error("{trial} asks the same request a {}th time, but {path} recorded it {recorded} time(s)", .recorded + 1)]
    Exhausted {
        path: PathBuf,
        trial: String,
        recorded: usize,
    },
}

/// Where a model request goes: the network, the network with every call
/// recorded, or a cassette and never the network.
#[derive(Clone, Default)]
pub struct Replies {
    mode: Mode,
    trial: Arc<str>,
}

#[derive(Clone, Default)]
enum Mode {
    #[default]
    Live,
    Record(Arc<Recorder>),
    Replay(Arc<Player>),
}

impl Replies {
    /// Records into `dir/cassette.jsonl`, created (or emptied) now.
    pub fn record(dir: &Path) -> Result<Replies, CassetteError> {
        Ok(Replies {
            mode: Mode::Record(Arc::new(Recorder::create(dir)?)),
            trial: RUN.into(),
        })
    }

    /// Serves replies from `dir/cassette.jsonl`, read now.
    pub fn replay(dir: &Path) -> Result<Replies, CassetteError> {
        Ok(Replies {
            mode: Mode::Replay(Arc::new(Player::open(dir)?)),
            trial: RUN.into(),
        })
    }

    /// The same cassette, for the calls of one trial.
    pub fn for_trial(&self, trial: &str) -> Replies {
        Replies {
            mode: self.mode.clone(),
            trial: trial.into(),
        }
    }

    pub fn trial(&self) -> &str {
        &self.trial
    }

    pub(crate) fn recorder(&self) -> Option<&Arc<Recorder>> {
        match &self.mode {
            Mode::Record(r) => Some(r),
            _ => None,
        }
    }

    pub(crate) fn player(&self) -> Option<&Player> {
        match &self.mode {
            Mode::Replay(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Debug for Replies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.mode {
            Mode::Live => write!(f, "live"),
            Mode::Record(r) => write!(f, "record {} ({})", r.path.display(), self.trial),
            Mode::Replay(p) => write!(f, "replay {} ({})", p.path.display(), self.trial),
        }
    }
}

/// Two options are the same when they use the same cassette for the same trial.
impl PartialEq for Replies {
    fn eq(&self, other: &Self) -> bool {
        let same = match (&self.mode, &other.mode) {
            (Mode::Live, Mode::Live) => true,
            (Mode::Record(a), Mode::Record(b)) => Arc::ptr_eq(a, b),
            (Mode::Replay(a), Mode::Replay(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        same && self.trial == other.trial
    }
}

impl Eq for Replies {}

/// Appends entries to a cassette as calls finish.
pub struct Recorder {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// Requests seen per (trial, key), for each entry's `seq`.
    seen: Mutex<HashMap<(String, String), usize>>,
}

impl Recorder {
    fn create(dir: &Path) -> Result<Recorder, CassetteError> {
        let path = dir.join(FILE_NAME);
        let io = |what, err| CassetteError::Io {
            what,
            path: path.clone(),
            err,
        };
        std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        let file = std::fs::File::create(&path).map_err(|e| io("create", e))?;
        Ok(Recorder {
            file: Mutex::new(file),
            seen: Mutex::default(),
            path,
        })
    }

    /// The entry of a request about to be sent, its reply still empty.
    pub fn begin(&self, trial: &str, request: Request) -> Entry {
        let key = key_of(&request.body);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let n = seen.entry((trial.to_string(), key.clone())).or_insert(0);
        let seq = *n;
        *n += 1;
        Entry {
            trial: trial.to_string(),
            key,
            seq,
            request,
            reply: Reply::new(0, None, None),
        }
    }

    /// Appends one finished entry as one line.
    pub fn write(&self, entry: &Entry) -> Result<(), CassetteError> {
        let mut line = serde_json::to_vec(entry).map_err(|e| CassetteError::Io {
            what: "encode an entry of",
            path: self.path.clone(),
            err: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)
            .and_then(|()| file.flush())
            .map_err(|err| CassetteError::Io {
                what: "write to",
                path: self.path.clone(),
                err,
            })
    }
}

/// Serves a cassette's replies, each at most once.
pub struct Player {
    path: PathBuf,
    entries: Vec<Entry>,
    /// Replies served per (trial, key).
    served: Mutex<HashMap<(String, String), usize>>,
    /// Requests asked per trial, to find the recording a stray request stands for.
    asked: Mutex<HashMap<String, usize>>,
}

impl Player {
    fn open(dir: &Path) -> Result<Player, CassetteError> {
        let path = dir.join(FILE_NAME);
        let text = std::fs::read_to_string(&path).map_err(|err| CassetteError::Io {
            what: "read",
            path: path.clone(),
            err,
        })?;
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let mut entry: Entry =
                serde_json::from_str(line).map_err(|err| CassetteError::Parse {
                    path: path.clone(),
                    line: i + 1,
                    err,
                })?;
            // The recorded body is the truth; a key edited apart from it is not trusted.
            entry.key = key_of(&entry.request.body);
            entries.push(entry);
        }
        Ok(Player {
            path,
            entries,
            served: Mutex::default(),
            asked: Mutex::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The recorded reply of this request of `trial`, or why there is none.
    pub fn serve(&self, trial: &str, request: &Request) -> Result<&Entry, CassetteError> {
        let n = {
            let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
            let n = asked.entry(trial.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let of_trial: Vec<&Entry> = self.entries.iter().filter(|e| e.trial == trial).collect();
        if of_trial.is_empty() {
            let mut known: Vec<&str> = self.entries.iter().map(|e| e.trial.as_str()).collect();
            known.dedup();
            return Err(CassetteError::NoTrial {
                path: self.path.clone(),
                trial: trial.to_string(),
                known: match known.len() {
                    0 => "none".into(),
                    k if k > 3 => format!("{} and {} more", known[..3].join(", "), k - 3),
                    _ => known.join(", "),
                },
            });
        }
        let key = key_of(&request.body);
        let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        let count = served.entry((trial.to_string(), key.clone())).or_insert(0);
        let same: Vec<&Entry> = of_trial.iter().copied().filter(|e| e.key == key).collect();
        let Some(entry) = same.iter().find(|e| e.seq == *count).copied() else {
            if !same.is_empty() {
                return Err(CassetteError::Exhausted {
                    path: self.path.clone(),
                    trial: trial.to_string(),
                    recorded: same.len(),
                });
            }
            // The recording this request stands in for: the trial's n-th.
            let expected = of_trial[(n - 1).min(of_trial.len() - 1)];
            let diff =
                first_difference(&expected.request.body, &request.body).unwrap_or(Difference {
                    path: "$".into(),
                    expected: format!("hash {}", expected.key),
                    got: format!("hash {key}"),
                });
            return Err(self.mismatch(trial, n, diff));
        };
        for (field, want, got) in [
            ("the method", &entry.request.method, &request.method),
            ("the path", &entry.request.path, &request.path),
        ] {
            if want != got {
                let diff = Difference {
                    path: field.into(),
                    expected: want.clone(),
                    got: got.clone(),
                };
                return Err(self.mismatch(trial, n, diff));
            }
        }
        *count += 1;
        Ok(entry)
    }

    fn mismatch(&self, trial: &str, n: usize, diff: Difference) -> CassetteError {
        CassetteError::Mismatch {
            path: self.path.clone(),
            trial: trial.to_string(),
            n,
            diff: Box::new(diff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> Request {
        Request {
            method: "POST".into(),
            path: "/v1/messages".into(),
            body,
        }
    }

    #[test]
    fn the_key_does_not_depend_on_the_order_keys_were_built_in() {
        let a: Value = serde_json::from_str(r#"{"model":"m","stream":true}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"stream":true,"model":"m"}"#).unwrap();
        assert_eq!(key_of(&a), key_of(&b));
        assert_ne!(key_of(&a), key_of(&json!({"model": "n", "stream": true})));
    }

    #[test]
    fn a_recording_is_served_once_per_request_then_refused() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Replies::record(dir.path()).unwrap();
        let recorder = rec.recorder().unwrap();
        for (trial, text) in [("t1", "a"), ("t1", "b"), ("t2", "c")] {
            let mut e = recorder.begin(trial, request(json!({"q": 1})));
            e.reply = Reply::new(200, Some("application/json".into()), None);
            e.reply.set_bytes(text.as_bytes().to_vec());
            recorder.write(&e).unwrap();
        }
        let play = Replies::replay(dir.path()).unwrap();
        let player = play.player().unwrap();
        let body = |e: &Entry| e.reply.body.clone().unwrap();
        assert_eq!(
            body(player.serve("t1", &request(json!({"q": 1}))).unwrap()),
            "a"
        );
        assert_eq!(
            body(player.serve("t2", &request(json!({"q": 1}))).unwrap()),
            "c"
        );
        assert_eq!(
            body(player.serve("t1", &request(json!({"q": 1}))).unwrap()),
            "b"
        );
        let e = player.serve("t1", &request(json!({"q": 1}))).unwrap_err();
        assert!(
            matches!(e, CassetteError::Exhausted { recorded: 2, .. }),
            "{e}"
        );
        let e = player.serve("t3", &request(json!({"q": 1}))).unwrap_err();
        assert!(e.to_string().contains("no recorded call of t3"), "{e}");
    }

    #[test]
    fn a_changed_request_is_refused_naming_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let rec = Replies::record(dir.path()).unwrap();
        let recorder = rec.recorder().unwrap();
        let mut e = recorder.begin(RUN, request(json!({"messages": [{"content": "x"}]})));
        e.reply = Reply::new(200, None, None);
        recorder.write(&e).unwrap();
        let play = Replies::replay(dir.path()).unwrap();
        let e = play
            .player()
            .unwrap()
            .serve(RUN, &request(json!({"messages": [{"content": "y"}]})))
            .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("$.messages[0].content"), "{text}");
        assert!(text.contains("\"x\"") && text.contains("\"y\""), "{text}");
    }

    #[test]
    fn bytes_that_are_not_utf8_survive_as_base64() {
        let mut r = Reply::new(200, None, None);
        r.set_bytes(vec![0xff, 0x00, 0x41]);
        assert!(r.body.is_none());
        assert_eq!(r.bytes().unwrap(), vec![0xff, 0x00, 0x41]);
    }
}
