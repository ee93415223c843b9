//! A plugin file copied into sealed memory before anything reads it.
//!
//! The original is never mapped: a build that truncates or rewrites it while
//! the host maps it would turn the next read of a vanished page into SIGBUS.
//! It is copied with `read`/`copy_file_range` (a truncated file just ends
//! early), and the checks, the hash and `dlopen` all read the copy, whose
//! seals forbid shrinking or writing it. In memory, not on disk: no cache
//! directory fills up with old builds, and the copy is not throttled behind a
//! build's dirty pages.

use std::ffi::CString;
use std::fs::{File, Metadata};
use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Largest plugin file copied: a debug build with symbols is ~60 MB, so 1 GiB
/// is a wrong file, and its copy would live in memory until exit.
pub const MAX_LIBRARY_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("it is more than {MAX_LIBRARY_BYTES} bytes; is it the right file?")]
    TooLarge,
    #[error("it changed while it was being copied")]
    Changed,
}

/// The sealed copy; closed on drop unless [`SealedCopy::keep`] hands it to `dlopen`.
pub struct SealedCopy {
    mem: File,
}

impl SealedCopy {
    /// Copies `file` (opened from `path`) into a sealed memory file named
    /// `name`. A file replaced or rewritten during the copy is [`CopyError::Changed`].
    pub fn of(path: &Path, file: File, name: &str) -> Result<Self, CopyError> {
        let before = file.metadata()?;
        let name = CString::new(name).map_err(std::io::Error::other)?;
        // SAFETY: a valid C string; the descriptor is owned by `mem` at once.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        // SAFETY: `fd` was just created and nothing else owns it.
        let mut mem = unsafe { File::from_raw_fd(fd) };
        let copied = std::io::copy(&mut (&file).take(MAX_LIBRARY_BYTES + 1), &mut mem)?;
        if copied > MAX_LIBRARY_BYTES {
            return Err(CopyError::TooLarge);
        }
        // Rewritten in place (the open file's size or time moved) or replaced
        // (the path names another file now): the copy may hold parts of both.
        let unchanged = |after: &Metadata| {
            after.ino() == before.ino()
                && after.dev() == before.dev()
                && after.len() == before.len()
                && after.mtime() == before.mtime()
                && after.mtime_nsec() == before.mtime_nsec()
        };
        let now_at_path = std::fs::metadata(path)?;
        if copied != before.len() || !unchanged(&file.metadata()?) || !unchanged(&now_at_path) {
            return Err(CopyError::Changed);
        }
        let seals =
            libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(mem.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(Self { mem })
    }

    /// The copy's bytes, mapped read-only.
    pub fn map(&self) -> std::io::Result<memmap2::Mmap> {
        // SAFETY: the seals forbid shrinking or writing the file for as long
        // as it exists, so no page of the map can vanish or change under it.
        unsafe { memmap2::Mmap::map(&self.mem) }
    }

    /// Keeps the copy open for good and returns the path to `dlopen` (`/proc/self/fd/N`).
    pub fn keep(self) -> PathBuf {
        // Never closed: glibc's `dlopen` knows a loaded library by its path name,
        // so a reused descriptor number would bring back the old library; and the
        // library stays mapped until exit anyway (abi_stable never unloads).
        let fd = self.mem.into_raw_fd();
        PathBuf::from(format!("/proc/self/fd/{fd}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;
    use std::time::{Duration, Instant};

    fn copy_of(path: &Path) -> Result<SealedCopy, CopyError> {
        SealedCopy::of(path, File::open(path)?, "test")
    }

    #[test]
    fn the_copy_holds_the_bytes_and_cannot_be_rewritten_or_shrunk() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("libplugin.so");
        std::fs::write(&src, b"checked bytes").unwrap();
        let copy = copy_of(&src).unwrap();
        assert_eq!(&copy.map().unwrap()[..], b"checked bytes");
        let path = copy.keep();
        assert!(path.starts_with("/proc/self/fd"), "{}", path.display());
        assert_eq!(std::fs::read(&path).unwrap(), b"checked bytes");
        let mut w = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert!(w.write_all(b"x").is_err(), "the seals forbid writes");
        assert!(w.set_len(1).is_err(), "the seals forbid shrinking");
    }

    #[test]
    fn a_file_replaced_during_the_copy_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("libplugin.so");
        std::fs::write(&src, b"old build").unwrap();
        let opened = File::open(&src).unwrap();
        // A build replaces the file between the open and the copy.
        std::fs::remove_file(&src).unwrap();
        std::fs::write(&src, b"new build").unwrap();
        assert!(matches!(
            SealedCopy::of(&src, opened, "test"),
            Err(CopyError::Changed)
        ));
        assert_eq!(&copy_of(&src).unwrap().map().unwrap()[..], b"new build");
    }

    /// What a mapped original risked: a build truncating and rewriting the
    /// file while it is read. Every copy either holds a whole file or is
    /// refused; none crashes the process.
    #[test]
    fn a_file_truncated_and_rewritten_while_copied_never_crashes() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("libplugin.so");
        let whole = vec![0x5a_u8; 8 << 20];
        std::fs::write(&src, &whole).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let (src, stop, whole) = (src.clone(), stop.clone(), whole.clone());
            std::thread::spawn(move || {
                let mut rewrites = 0_u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let mut f = std::fs::OpenOptions::new().write(true).open(&src).unwrap();
                    f.set_len(0).unwrap();
                    f.write_all(&whole).unwrap();
                    rewrites += 1;
                }
                rewrites
            })
        };
        let (mut whole_copies, mut refused) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(60);
        while whole_copies + refused < 200 && Instant::now() < deadline {
            match copy_of(&src) {
                Ok(copy) => {
                    // The file's only settled states: just truncated, or whole.
                    let len = copy.map().map_or(0, |m| m.len());
                    assert!(len == 0 || len == whole.len(), "a torn copy of {len} bytes");
                    whole_copies += 1;
                }
                Err(CopyError::Changed) => refused += 1,
                Err(e) => panic!("{e}"),
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rewrites = writer.join().unwrap();
        assert!(
            rewrites > 0,
            "the file was never rewritten during the copies"
        );
        assert_eq!(whole_copies + refused, 200, "copies did not finish in time");
    }
}
