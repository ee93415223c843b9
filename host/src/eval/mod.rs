//! Eval campaigns: many trials per fault, scored with honest statistics.
//!
//! `stats` is the pure statistics, `trial` the plain per-trial facts taken from
//! a trial's journal, `campaign` the figures per fault and overall that a
//! campaign report shows. Rendering lives in `crate::report`.

pub mod campaign;
pub mod matrix;
pub mod plan;
pub mod rescore;
pub mod runner;
pub mod stats;
pub mod trial;
