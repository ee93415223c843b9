//! Finding an executable the way a shell would.

use std::path::{Path, PathBuf};

/// The executable `binary` resolves to: an absolute or relative path as it
/// is, a bare name through `PATH`. `None` when nothing executable is there.
pub fn find_on_path(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        let p = PathBuf::from(binary);
        return is_executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(binary))
        .find(|p| is_executable(p))
}

/// `binary` in `dir`, where one component of `dir` may be `*` (the
/// lexically last match first: `/usr/lib/postgresql/16/bin` before `15`).
pub fn find_in(dir: &str, binary: &str) -> Option<PathBuf> {
    let Some((head, tail)) = dir.split_once("/*") else {
        let p = Path::new(dir).join(binary);
        return is_executable(&p).then_some(p);
    };
    let tail = tail.trim_start_matches('/');
    let mut entries: Vec<PathBuf> = std::fs::read_dir(if head.is_empty() { "/" } else { head })
        .ok()?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
        .into_iter()
        .rev()
        .map(|e| e.join(tail).join(binary))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_name_is_found_on_path_and_a_missing_one_is_not() {
        assert!(find_on_path("sh").is_some(), "sh is on every PATH");
        assert!(find_on_path("no-such-binary-3f9a").is_none());
    }

    #[test]
    fn a_search_directory_with_a_star_finds_the_newest_match() {
        let root = tempfile::tempdir().unwrap();
        for v in ["14", "16"] {
            let bin = root.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            let exe = bin.join("initdb");
            std::fs::write(&exe, "#!/bin/sh\n").unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let pattern = format!("{}/*/bin", root.path().display());
        assert_eq!(
            find_in(&pattern, "initdb"),
            Some(root.path().join("16/bin/initdb"))
        );
        assert_eq!(find_in(&pattern, "postgres"), None);
        let plain = format!("{}/14/bin", root.path().display());
        assert_eq!(
            find_in(&plain, "initdb"),
            Some(root.path().join("14/bin/initdb"))
        );
    }

    #[test]
    fn a_path_is_taken_as_it_is() {
        assert_eq!(find_on_path("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert!(find_on_path("/nonexistent/sh").is_none());
    }
}
