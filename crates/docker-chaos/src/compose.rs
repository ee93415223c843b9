//! Bringing a compose project up and down with the `docker-compose` command
//! (v1, as Debian packages it; the Docker API has no notion of a compose file).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(
        "docker-compose is not installed: install it (Debian: `apt-get install docker-compose`)"
    )]
    Missing,
    #[error("cannot run docker-compose: {0}")]
    Spawn(std::io::Error),
    #[error("`docker-compose {args}` failed: {tail}")]
    Failed {
        args: String,
        /// The last lines of its output.
        tail: String,
        /// It failed to pull an image (no registry, or a missing local image).
        pull_failed: bool,
    },
}

/// A compose project: its file, its name, and variables for the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    pub file: PathBuf,
    pub name: String,
    pub env: Vec<(String, String)>,
}

impl Project {
    /// `docker-compose -f <file> -p <name> <args>`; its output, or an error with its last lines.
    pub fn run(&self, args: &[&str]) -> Result<String, ComposeError> {
        if !on_path("docker-compose") {
            return Err(ComposeError::Missing);
        }
        let out = Command::new("docker-compose")
            .arg("-f")
            .arg(&self.file)
            .args(["-p", &self.name])
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .map_err(ComposeError::Spawn)?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return Ok(text);
        }
        let mut tail: Vec<&str> = text.lines().rev().take(6).collect();
        tail.reverse();
        Err(ComposeError::Failed {
            args: args.join(" "),
            tail: tail.join(" | "),
            pull_failed: ["Pulling ", "pull access denied", "manifest", "not found"]
                .iter()
                .any(|m| text.contains(m)),
        })
    }
}

/// Whether `program` is an executable on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// `relative` (e.g. `compose/tikv/docker-compose.yml`) in the nearest ancestor of
/// `start` that has it (a plugin library sits in target/<profile>/ of its checkout),
/// else `relative` itself, resolved against the working directory.
pub fn find_file(start: &Path, relative: &Path) -> PathBuf {
    start
        .ancestors()
        .map(|dir| dir.join(relative))
        .find(|p| p.is_file())
        .unwrap_or_else(|| relative.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_compose_file_is_found_above_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("compose/x/docker-compose.yml");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "services: {}\n").unwrap();
        let lib_dir = dir.path().join("target/debug");
        std::fs::create_dir_all(&lib_dir).unwrap();
        assert_eq!(
            find_file(&lib_dir, Path::new("compose/x/docker-compose.yml")),
            file
        );
        assert_eq!(
            find_file(&lib_dir, Path::new("nope.yml")),
            PathBuf::from("nope.yml")
        );
    }
}
