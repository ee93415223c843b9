//! Command-line interface: argument definitions and the non-interactive commands.

pub mod args;
pub mod inspect;
pub mod list;
pub mod log_file;
pub mod new;
pub mod settings;
pub mod table;
