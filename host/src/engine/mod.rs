//! The chapter engine: plain state, the actions that change it, and the
//! effects it asks the runtime to perform. No I/O happens here, so every rule
//! of the demo (countdowns, blocking chapters, auto-advance, incidents,
//! scoring) is unit-tested without a terminal or a plugin.

pub mod action;
pub mod chaos;
mod chapters;
mod diagnose;
mod faults;
pub mod incidents;
mod input;
pub mod log;
mod observe;
pub mod remedy;
pub mod state;
pub mod timeline;
pub mod update;

#[cfg(test)]
pub mod fixture;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod remedy_tests;
#[cfg(test)]
mod tests;

pub use action::{Action, Effect};
pub use state::{ChapterPhase, Demo, Mode};
pub use update::{start, update};
