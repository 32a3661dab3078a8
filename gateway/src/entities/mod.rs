//! sea-orm entities, one per table. Only `gateway` uses them; other crates see domain types.
pub mod account;
pub mod api_key;
pub mod instance;
pub mod instance_status_change;
pub mod login_throttle;
pub mod session;
pub mod usage_counter;
