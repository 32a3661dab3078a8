#![recursion_limit = "256"]
//! The `wag` binary's library half: configuration loading, the HTTP router, background work and
//! the operator CLI. Integration tests start the same router on port 0.
pub mod admin;
pub mod anonymous_csrf;
pub mod api;
pub mod cli;
pub mod client_ip;
pub mod cluster_api;
pub mod health;
pub mod http_server;
pub mod metrics_api;
pub mod portal;
pub mod router;
pub mod serve;
pub mod static_assets;
pub mod telemetry;
