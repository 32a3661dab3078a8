//! Customer webhooks: destinations per instance, durable at-least-once delivery of the
//! normalized events they chose, signed in the Standard Webhooks scheme.
pub mod destinations;
pub mod signing;
pub mod worker;

static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// New deliveries were committed: delivery workers in this process look at once.
pub fn wake() {
    WAKE.notify_waiters();
}
