//! The plain-Rust data model that plugins and the host work with.
//!
//! Nothing here is FFI-safe on purpose: these are ordinary types with `String`,
//! `Vec` and `Option`. The [`crate::ffi`] module mirrors them with abi_stable
//! types and is the one place that translates between both.

mod chaos;
mod description;
mod health;
mod remedy;

pub use chaos::*;
pub use description::*;
pub use health::*;
pub use remedy::*;

/// Unix time in milliseconds, the clock every timestamp in the model uses.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
