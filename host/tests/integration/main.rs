//! The host's integration tests, one binary (each binary links the host
//! again): one module per area, `cargo test -p demo-host --test integration
//! MODULE` runs one.

mod diagnosis_backends;
mod eval_matrix;
mod model_cassettes;
mod model_support;
mod report_campaign;
mod report_html;
mod report_support;
mod score_properties;
