//! The edges where I/O happens: the effect executor, the health poller, and
//! the two loops (interactive and headless) that feed actions into the engine.

pub mod effects;
pub mod headless;
pub mod interactive;
pub mod poller;
pub mod subject;
