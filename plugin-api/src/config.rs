//! The plugin config string: `key=value` pairs separated by commas, spaces or newlines.
//!
//! Plugins are free to read it as they like; this helper gives them one format
//! with clear errors so that every subject reads the same way on the command line.

use crate::error::PluginError;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config(BTreeMap<String, String>);

impl Config {
    pub fn parse(text: &str) -> Result<Config, PluginError> {
        let mut map = BTreeMap::new();
        for item in text
            .split([',', ' ', '\n', ';'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                PluginError::invalid(format!("config item `{item}` is not of the form key=value"))
            })?;
            if k.trim().is_empty() {
                return Err(PluginError::invalid(format!(
                    "config item `{item}` has an empty key"
                )));
            }
            map.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(Config(map))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn get_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// A typed value, with an error naming the key and the text that did not parse.
    pub fn parse_or<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, PluginError> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                PluginError::invalid(format!(
                    "config `{key}={v}` does not parse as {}",
                    std::any::type_name::<T>()
                ))
            }),
        }
    }

    /// Errors on keys the plugin does not know, so typos do not pass silently.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), PluginError> {
        for k in self.0.keys() {
            if !known.contains(&k.as_str()) {
                return Err(PluginError::invalid(format!(
                    "unknown config key `{k}`; known keys: {}",
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs_and_reports_bad_items() {
        let c = Config::parse("env=local, nodes=3 poll_ms=100").unwrap();
        assert_eq!(c.get("env"), Some("local"));
        assert_eq!(c.parse_or("nodes", 1u32).unwrap(), 3);
        assert!(c
            .parse_or("env", 1u32)
            .unwrap_err()
            .to_string()
            .contains("env=local"));
        assert!(Config::parse("justaword")
            .unwrap_err()
            .to_string()
            .contains("key=value"));
        assert!(c
            .reject_unknown(&["env"])
            .unwrap_err()
            .to_string()
            .contains("unknown config key `nodes`"));
    }
}
