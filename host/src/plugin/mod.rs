//! Plugins: finding them, checking them, loading them, and calling them safely.

pub mod elf;
pub mod loader;
pub mod locate;
pub mod log_cap;
pub mod prerequisites;
pub mod sanitize;
pub mod sealed;
pub mod session;
pub mod vocabulary;

/// The environment a config selects: its `env=`, else `default` (a plugin's first).
pub fn environment(config: &str, default: Option<&str>) -> Option<String> {
    plugin_api::Config::parse(config)
        .ok()
        .and_then(|c| c.get("env").map(str::to_string))
        .or_else(|| default.map(str::to_string))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_environment_is_the_configs_else_the_default() {
        assert_eq!(
            super::environment("env=compose", Some("local")).as_deref(),
            Some("compose")
        );
        assert_eq!(
            super::environment("mode=strict", Some("local")).as_deref(),
            Some("local")
        );
        assert_eq!(super::environment("", None), None);
    }
}
