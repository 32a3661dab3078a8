//! Customer webhooks: destinations per instance, durable at-least-once delivery of the
//! normalized events they chose, signed in the Standard Webhooks scheme.
pub mod destinations;
pub mod signing;
pub mod worker;
