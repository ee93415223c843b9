//! demo-host: a terminal host for narrated chaos demos of distributed systems.
//!
//! `plugin` finds, checks, loads and calls subject plugins; `engine` is the
//! demo's plain state and rules; `runtime` is where I/O happens; `ui` draws the
//! state; `journal` records a run. The binary (`main.rs`) only wires them.

// The host never panics on a plugin's behalf, and a plugin never panics on its own: no unwrap outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used))]

pub mod app;
pub mod cli;
pub mod diagnosis;
pub mod engine;
pub mod eval;
pub mod journal;
pub mod leftovers;
pub mod plugin;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod text;
pub mod ui;
