//! The plugin's config string (`env=compose pd=http://127.0.0.1:2379 ...`).

use plugin_api::{Config, PluginError, PluginResult};
use std::path::{Path, PathBuf};

pub const KEYS: &[&str] = &[
    "env",
    "pd",
    "project",
    "compose_file",
    "metrics",
    "docker",
    "load",
    "fault_proxy",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Env {
    /// compose/tikv/docker-compose.yml: PD, three TiKV, go-ycsb under the `load` profile.
    Compose,
    /// `tiup playground` on this machine.
    Local,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TikvConfig {
    pub env: Env,
    pub pd: String,
    pub project: String,
    pub compose_file: PathBuf,
    /// Prometheus endpoints of TiKV (and PD) to read QPS and p99 from.
    pub metrics: Vec<String>,
    /// Off: no Docker at all; chaos actions report Unsupported (fixture-only runs).
    pub docker: bool,
    /// Off: the load steps only say that no load runs (runs against the PD fixture, where no TiKV serves go-ycsb).
    pub load: bool,
    /// On (the default, for an http:// PD): the plugin reaches PD through a
    /// route of an in-process fault proxy, which `pd-partition` cuts.
    pub fault_proxy: bool,
}

impl TikvConfig {
    /// Reads the config; `library_dir` locates the default compose file next to a checkout.
    pub fn from_config(config: &Config, library_dir: &Path) -> PluginResult<TikvConfig> {
        config.reject_unknown(KEYS)?;
        let env = match config.get_or("env", "compose") {
            "compose" => Env::Compose,
            "local" => Env::Local,
            other => {
                return Err(PluginError::invalid(format!(
                    "environment `{other}` is not offered; use env=compose (Docker) or env=local (tiup playground)"
                )))
            }
        };
        let pd = config
            .get_or("pd", "http://127.0.0.1:2379")
            .trim_end_matches('/')
            .to_string();
        if !(pd.starts_with("http://") || pd.starts_with("https://")) {
            return Err(PluginError::invalid(format!(
                "config `pd={pd}` must be an http:// URL of PD's client port, for example pd=http://127.0.0.1:2379"
            )));
        }
        let project = config.get_or("project", "tikv").to_string();
        if project.is_empty()
            || !project
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PluginError::invalid(format!(
                "config `project={project}` is not a compose project name (letters, digits, - and _)"
            )));
        }
        let compose_file = match config.get("compose_file") {
            Some(f) => PathBuf::from(f),
            None => docker_chaos::compose::find_file(
                library_dir,
                Path::new("compose/tikv/docker-compose.yml"),
            ),
        };
        let metrics: Vec<String> = config
            .get("metrics")
            .unwrap_or("")
            .split(['+', ','])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        if let Some(bad) = metrics
            .iter()
            .find(|m| !m.starts_with("http://") && !m.starts_with("https://"))
        {
            return Err(PluginError::invalid(format!(
                "metrics endpoint `{bad}` must be an http:// URL, e.g. metrics=http://127.0.0.1:20180/metrics+http://127.0.0.1:20181/metrics"
            )));
        }
        let docker = match config.get_or("docker", "on") {
            "on" | "true" | "yes" => true,
            "off" | "false" | "no" => false,
            other => {
                return Err(PluginError::invalid(format!(
                    "config `docker={other}` takes on or off (off: no chaos, PD fixture runs)"
                )))
            }
        };
        let load = match config.get_or("load", "ycsb") {
            "ycsb" | "on" => true,
            "off" => false,
            other => {
                return Err(PluginError::invalid(format!(
                    "config `load={other}` takes ycsb (run go-ycsb) or off (no load, for PD fixture runs)"
                )))
            }
        };
        let fault_proxy = match config.get_or("fault_proxy", "on") {
            "on" => true,
            "off" => false,
            other => {
                return Err(PluginError::invalid(format!(
                    "config `fault_proxy={other}` takes on or off (off: the plugin reaches PD directly, and pd-partition is unsupported)"
                )))
            }
        };
        Ok(TikvConfig {
            env,
            load,
            fault_proxy,
            pd,
            project,
            compose_file,
            metrics,
            docker,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PluginResult<TikvConfig> {
        TikvConfig::from_config(&Config::parse(text).unwrap(), Path::new("/nonexistent"))
    }

    #[test]
    fn defaults_and_plus_separated_metrics() {
        let c = parse("").unwrap();
        assert_eq!(
            (c.env, c.pd.as_str(), c.project.as_str(), c.docker),
            (Env::Compose, "http://127.0.0.1:2379", "tikv", true)
        );
        let c = parse("env=local metrics=http://127.0.0.1:20180/metrics+http://127.0.0.1:20181/metrics docker=off").unwrap();
        assert_eq!(c.env, Env::Local);
        assert_eq!(c.metrics.len(), 2);
        assert!(!c.docker);
        assert!(c.load);
        assert!(!parse("load=off").unwrap().load);
        assert!(c.fault_proxy && !parse("fault_proxy=off").unwrap().fault_proxy);
        assert!(parse("fault_proxy=maybe")
            .unwrap_err()
            .to_string()
            .contains("on or off"));
    }

    #[test]
    fn mistakes_are_named_with_the_fix() {
        let e = parse("env=k8s").unwrap_err().to_string();
        assert!(e.contains("env=compose") && e.contains("env=local"), "{e}");
        assert!(parse("pd=127.0.0.1:2379")
            .unwrap_err()
            .to_string()
            .contains("http://"));
        assert!(parse("load=java").unwrap_err().to_string().contains("ycsb"));
        assert!(parse("docker=maybe")
            .unwrap_err()
            .to_string()
            .contains("on or off"));
        assert!(parse("metrics=localhost:20180")
            .unwrap_err()
            .to_string()
            .contains("http:// URL"));
        assert!(parse("stores=3")
            .unwrap_err()
            .to_string()
            .contains("unknown config key `stores`"));
    }
}
