//! The operator's side of the gateway, across tenants: the overview, account and instance
//! listings, the review queue, and the actions operators take (each one audited in the
//! transaction that makes it). The portal's /admin pages and `wag admin` both use these.
pub mod accounts;
pub mod actions;
pub mod fleet;
mod overview;
mod sql;

pub use overview::{instances_by_state, overview, webhook_backlog, Overview};
