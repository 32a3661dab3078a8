//! WA Gateway's domain: accounts, API keys, instances, connectors and configuration.
//! Nothing here knows about HTML or HTTP; `app` and `server` call into it.
pub mod accounts;
pub mod api_keys;
pub mod cache;
pub mod config;
pub mod connectors;
pub mod counters;
pub mod db;
pub mod entities;
pub mod error;
pub mod events;
pub mod faults;
pub mod ids;
pub mod inbound;
pub mod instances;
pub mod log_page;
pub mod login_throttle;
pub mod message_log;
pub mod message_stats;
pub mod names;
pub mod net_guard;
pub mod optout;
pub mod plans;
pub mod policy;
pub mod policy_log;
pub mod retention;
pub mod secrets;
pub mod send;
pub mod session_store;
pub mod state;
pub mod suppressions;
pub mod threecx;
pub mod time;
pub mod usage;
pub mod webhooks;

pub use error::{Error, Result};
pub use sea_orm::DatabaseConnection;
