//! Customer webhooks: destinations per instance, durable at-least-once delivery of the
//! normalized events they chose, signed in the Standard Webhooks scheme.
//!
//! The delivery engine (see `worker`) is split by what each part holds: `wake` (new work
//! notifications), `claim` (leasing due deliveries in batches), `scheduler` (fair shares and
//! caps, in memory), `cache` (destinations and their decrypted secrets), `client` (the pooled,
//! SSRF-guarded HTTP client), `attempt` (one request and what it means), `settle` (writing
//! outcomes in batches).
mod attempt;
mod cache;
mod claim;
mod client;
pub mod destinations;
mod lane;
mod scheduler;
mod settle;
pub mod signing;
pub(crate) mod wake;
pub mod worker;

pub use wake::wake;
