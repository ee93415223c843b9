//! The host's event log: chaos, invariant changes, plugin lines and errors.

use plugin_api::Level;
use serde::Serialize;
use std::collections::VecDeque;

/// Most entries kept; older ones are dropped (the journal keeps its own record).
const CAPACITY: usize = 2000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LogEntry {
    pub at_ms: u64,
    pub level: Level,
    /// Where the line comes from: `host`, `chaos`, `invariant`, `plugin`, `diagnosis`.
    pub source: &'static str,
    pub message: String,
}

#[derive(Debug, Default, Clone)]
pub struct EventLog {
    entries: VecDeque<LogEntry>,
}

impl EventLog {
    pub fn push(
        &mut self,
        at_ms: u64,
        level: Level,
        source: &'static str,
        message: impl Into<String>,
    ) {
        if self.entries.len() == CAPACITY {
            self.entries.pop_front();
        }
        self.entries.push_back(LogEntry {
            at_ms,
            level,
            source,
            message: message.into(),
        });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &LogEntry> {
        self.entries.iter()
    }

    /// Entries whose source or message contains `filter` (case-insensitive).
    pub fn filtered<'a>(
        &'a self,
        filter: &'a str,
    ) -> impl DoubleEndedIterator<Item = &'a LogEntry> + 'a {
        let needle = filter.to_lowercase();
        self.entries.iter().filter(move |e| {
            needle.is_empty()
                || e.message.to_lowercase().contains(&needle)
                || e.source.contains(needle.as_str())
        })
    }
}
