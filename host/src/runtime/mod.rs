//! The edges where I/O happens: the effect executor, the health poller, and
//! the two loops (interactive and headless) that feed actions into the engine;
//! the interactive loop's key bindings (`keys`) and terminal setup and restore
//! (`terminal`).

pub mod effects;
pub mod headless;
pub mod interactive;
pub mod keys;
pub mod poller;
pub mod subject;
pub mod terminal;
