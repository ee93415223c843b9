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
        let message = message.into();
        // The one place every host and plugin line passes: `--log-file` sees it here.
        match level {
            Level::Debug => tracing::debug!(source, at_ms, "{message}"),
            Level::Info => tracing::info!(source, at_ms, "{message}"),
            Level::Warn => tracing::warn!(source, at_ms, "{message}"),
            Level::Error => tracing::error!(source, at_ms, "{message}"),
        }
        self.entries.push_back(LogEntry {
            at_ms,
            level,
            source,
            message,
        });
    }

    /// Adds a line unless the same source said the same thing among the last
    /// entries: a plugin may report one line through its logger, as a snapshot
    /// event and as a step's result.
    pub fn push_unique(
        &mut self,
        at_ms: u64,
        level: Level,
        source: &'static str,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let seen = self
            .entries
            .iter()
            .rev()
            .take(50)
            .any(|e| e.source == source && e.message == message);
        if !seen {
            self.push(at_ms, level, source, message);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_repeated_by_the_same_source_is_kept_once() {
        let mut log = EventLog::default();
        log.push_unique(1, Level::Info, "plugin", "limit set");
        log.push_unique(2, Level::Info, "plugin", "limit set");
        log.push_unique(3, Level::Info, "host", "limit set");
        assert_eq!(log.len(), 2);
    }
}
