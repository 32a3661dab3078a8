//! sea-orm entities, one per table. Only `gateway` uses them; other crates see domain types.
pub mod account;
pub mod api_key;
pub mod contacted_recipient;
pub mod conversation;
pub mod event;
pub mod idempotency_key;
pub mod inbound_message;
pub mod instance;
pub mod instance_status_change;
pub mod login_throttle;
pub mod message;
pub mod policy_decision;
pub mod rate_window;
pub mod session;
pub mod suppression;
pub mod suppression_change;
pub mod usage_counter;
