//! The fault proxy's tests, one binary (one module per area; `cargo test -p
//! fault-proxy --test integration MODULE` runs one).

mod api;
mod chunking;
mod common;
mod faults;
mod forwarding;
