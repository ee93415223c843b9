//! Which diagnoser to use, chosen by flag, then environment, then default.

use super::cassette::Replies;
use super::error::DiagnosisError;
use std::fmt;
use std::time::Duration;

/// Environment variables the diagnoser reads.
pub const ENV_BACKEND: &str = "DEMO_HOST_DIAGNOSER";
pub const ENV_MODEL: &str = "DEMO_HOST_MODEL";
pub const ENV_ANTHROPIC_KEY: &str = "ANTHROPIC_API_KEY";
pub const ENV_ANTHROPIC_BASE_URL: &str = "ANTHROPIC_BASE_URL";
pub const ENV_OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
pub const ENV_OPENAI_KEY: &str = "OPENAI_API_KEY";

pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
pub const DEFAULT_ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// A local Ollama, the most common OpenAI-compatible server.
pub const DEFAULT_OPENAI_BASE_URL: &str = "http://127.0.0.1:11434";

/// An API key. It prints as `***` everywhere; only the HTTP layer reads it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The key itself, for the request header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// Offline, deterministic, evidence-based reasoning in the host.
    Builtin,
    /// Anthropic Messages API.
    Anthropic {
        model: String,
        api_key: Secret,
        base_url: String,
    },
    /// Any OpenAI-compatible `/v1/chat/completions` server (Ollama, llama.cpp, vLLM).
    OpenAi {
        base_url: String,
        model: String,
        api_key: Option<Secret>,
    },
}

/// Command-line choices; each overrides its environment variable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiagnoserFlags {
    /// `builtin`, `anthropic` or `openai`.
    pub backend: Option<String>,
    pub model: Option<String>,
    pub base_url: Option<String>,
}

impl BackendConfig {
    /// Flags first, then the process environment, then the builtin default.
    pub fn from_env_and_flags(flags: &DiagnoserFlags) -> Result<Self, DiagnosisError> {
        Self::from_lookup(flags, |k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// As [`Self::from_env_and_flags`] with an explicit environment (tests).
    pub fn from_lookup(
        flags: &DiagnoserFlags,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, DiagnosisError> {
        let backend = flags
            .backend
            .clone()
            .or_else(|| env(ENV_BACKEND))
            .unwrap_or_else(|| "builtin".into());
        let model = flags.model.clone().or_else(|| env(ENV_MODEL));
        match backend.trim().to_ascii_lowercase().as_str() {
            "builtin" => Ok(BackendConfig::Builtin),
            "anthropic" => {
                let api_key = env(ENV_ANTHROPIC_KEY).map(Secret::new).ok_or_else(|| {
                    DiagnosisError::Config(format!(
                        "the anthropic diagnoser needs an API key in {ENV_ANTHROPIC_KEY}"
                    ))
                })?;
                Ok(BackendConfig::Anthropic {
                    model: model.unwrap_or_else(|| DEFAULT_ANTHROPIC_MODEL.into()),
                    api_key,
                    base_url: flags
                        .base_url
                        .clone()
                        .or_else(|| env(ENV_ANTHROPIC_BASE_URL))
                        .unwrap_or_else(|| DEFAULT_ANTHROPIC_BASE_URL.into()),
                })
            }
            "openai" => Ok(BackendConfig::OpenAi {
                base_url: flags
                    .base_url
                    .clone()
                    .or_else(|| env(ENV_OPENAI_BASE_URL))
                    .unwrap_or_else(|| DEFAULT_OPENAI_BASE_URL.into()),
                model: model.ok_or_else(|| {
                    DiagnosisError::Config(format!(
                        "the openai diagnoser needs a model: pass --model or set {ENV_MODEL} (e.g. llama3.1)"
                    ))
                })?,
                api_key: env(ENV_OPENAI_KEY).map(Secret::new),
            }),
            other => Err(DiagnosisError::Config(format!(
                "unknown diagnoser `{other}`: choose builtin, anthropic or openai ({ENV_BACKEND})"
            ))),
        }
    }

    /// Short name for the panel and journal, e.g. `anthropic:claude-sonnet-4-5`.
    pub fn label(&self) -> String {
        match self {
            BackendConfig::Builtin => "builtin".into(),
            BackendConfig::Anthropic { model, .. } => format!("anthropic:{model}"),
            BackendConfig::OpenAi { model, .. } => format!("openai:{model}"),
        }
    }

    /// Whether the window leaves this machine (masking applies only then).
    pub fn is_remote(&self) -> bool {
        !matches!(self, BackendConfig::Builtin)
    }
}

/// How one diagnosis is asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagnoseOptions {
    pub timeout: Duration,
    /// Replace node names and addresses before a window leaves the machine,
    /// and restore them in the answer.
    pub mask_identities: bool,
    /// Where model requests go: the network, recorded, or a cassette (`--record-replies`, `--replay-replies`).
    pub replies: Replies,
}

impl Default for DiagnoseOptions {
    fn default() -> Self {
        DiagnoseOptions {
            timeout: Duration::from_secs(60),
            mask_identities: false,
            replies: Replies::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn builtin_is_the_default() {
        let cfg = BackendConfig::from_lookup(&DiagnoserFlags::default(), env(&[])).unwrap();
        assert_eq!(cfg, BackendConfig::Builtin);
    }

    #[test]
    fn environment_selects_anthropic_and_flags_override_it() {
        let vars = [
            (ENV_BACKEND, "anthropic"),
            (ENV_ANTHROPIC_KEY, "k-123"),
            (ENV_MODEL, "m-env"),
        ];
        let cfg = BackendConfig::from_lookup(&DiagnoserFlags::default(), env(&vars)).unwrap();
        assert_eq!(
            cfg,
            BackendConfig::Anthropic {
                model: "m-env".into(),
                api_key: Secret::new("k-123"),
                base_url: DEFAULT_ANTHROPIC_BASE_URL.into()
            }
        );
        let flags = DiagnoserFlags {
            backend: Some("openai".into()),
            model: Some("llama3.1".into()),
            base_url: Some("http://127.0.0.1:8080".into()),
        };
        let cfg = BackendConfig::from_lookup(&flags, env(&vars)).unwrap();
        assert_eq!(
            cfg,
            BackendConfig::OpenAi {
                base_url: "http://127.0.0.1:8080".into(),
                model: "llama3.1".into(),
                api_key: None
            }
        );
    }

    #[test]
    fn missing_key_model_or_unknown_backend_say_what_to_do() {
        let e = BackendConfig::from_lookup(
            &DiagnoserFlags::default(),
            env(&[(ENV_BACKEND, "anthropic")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains(ENV_ANTHROPIC_KEY), "{e}");
        let e =
            BackendConfig::from_lookup(&DiagnoserFlags::default(), env(&[(ENV_BACKEND, "openai")]))
                .unwrap_err();
        assert!(e.to_string().contains("--model"), "{e}");
        let e =
            BackendConfig::from_lookup(&DiagnoserFlags::default(), env(&[(ENV_BACKEND, "gpt")]))
                .unwrap_err();
        assert!(
            e.to_string().contains("builtin, anthropic or openai"),
            "{e}"
        );
    }

    #[test]
    fn secret_prints_as_stars() {
        let s = Secret::new("sk-live-abc");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "sk-live-abc");
    }
}
