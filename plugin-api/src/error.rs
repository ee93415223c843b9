//! The error a plugin returns across the ABI.

use serde::{Deserialize, Serialize};

/// What went wrong inside a plugin call, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum PluginError {
    /// The configuration string or a parameter is wrong; the message says how to fix it.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Something the plugin needs is missing (a binary, a service); the message says what to install.
    #[error("missing prerequisite: {0}")]
    Missing(String),
    /// The plugin does not offer this operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The plugin code panicked; the panic was caught inside the plugin.
    #[error("plugin panicked: {0}")]
    Panicked(String),
    /// Any other failure.
    #[error("{0}")]
    Failed(String),
}

impl PluginError {
    pub fn failed(msg: impl std::fmt::Display) -> Self {
        PluginError::Failed(msg.to_string())
    }

    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        PluginError::InvalidInput(msg.to_string())
    }
}

pub type PluginResult<T> = Result<T, PluginError>;
