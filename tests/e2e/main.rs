//! The workspace-level end-to-end tests, one binary: each module is one area
//! (`cargo test -p e2e-tests --test e2e MODULE` runs one). The modules run as
//! threads of this process, so whatever they share (cargo builds, Docker
//! images, a machine quiet enough for a demo's timing) is serialised in the
//! crate's library, not by running them in separate processes.

mod chapter_engine;
mod cli;
mod diagnosis_live_example;
mod diagnosis_prompt;
mod diagnosis_scenarios;
mod docker_ratelimiter;
mod exit_paths;
mod headless_ratelimiter;
mod hostile_plugin;
mod leftover_recovery;
mod plugin_loading;
mod postgres_plugin;
mod remedies_abi;
mod tui_tmux;
