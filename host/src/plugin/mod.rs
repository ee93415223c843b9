//! Plugins: finding them, checking them, loading them, and calling them safely.

pub mod elf;
pub mod loader;
pub mod locate;
pub mod prerequisites;
pub mod sanitize;
pub mod session;
