//! A live subject: a session of a loaded plugin whose log lines become the
//! engine's actions, and the environment it runs in. Used at start and on a
//! swap, so both create sessions the same way.

use crate::engine::Action;
use crate::plugin::loader::LoadedPlugin;
use crate::plugin::session::{Session, Timeouts};
use anyhow::{Context, Result};
use tokio::sync::mpsc::UnboundedSender;

/// The environment named by `env=` in the config, else the plugin's first.
pub fn environment(plugin: &LoadedPlugin, config: &str) -> String {
    crate::plugin::environment(
        config,
        plugin
            .description
            .info
            .environments
            .first()
            .map(String::as_str),
    )
    .unwrap_or_else(|| "default".into())
}

/// Creates a session whose plugin log lines become actions on `tx`.
pub async fn create_session(
    plugin: LoadedPlugin,
    config: &str,
    tx: &UnboundedSender<Action>,
) -> Result<Session> {
    let log_tx = tx.clone();
    let id = plugin.description.info.id.clone();
    Session::create(
        plugin,
        config,
        Timeouts::default(),
        move |level, message| {
            let _ = log_tx.send(Action::Log {
                at_ms: plugin_api::now_ms(),
                level,
                source: "plugin",
                message: message.to_string(),
            });
        },
    )
    .await
    .with_context(|| format!("creating an instance of plugin `{id}` with config `{config}`"))
}
