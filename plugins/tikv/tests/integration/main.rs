//! The TiKV plugin's tests, one binary (one module per area; `cargo test -p
//! subject-tikv --test integration MODULE` runs one).

mod compose_file;
mod describe;
mod fixture_binary;
mod pd_over_http;
mod pd_partition;
mod remedy;
mod store_kill;
mod support;
mod ycsb_logs;
