//! demo-host: a terminal host for narrated chaos demos of distributed systems.
//!
//! The binary (`main.rs`) only wires these modules together.

pub mod plugin;
