//! Where a session reports what happens: the bounded queue of its instance's lane in the
//! registry. Sending waits while the queue is full (backpressure reaches the connector instead of
//! an event being dropped), and [`EventSink::record`] also waits until the events are stored,
//! which is what lets whatsapp-web acknowledge a message to WhatsApp only once it is ours.
use std::collections::VecDeque;

use tokio::sync::{mpsc, oneshot};

use super::ConnectorEvent;

/// Why events were not stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unrecorded {
    /// The lane is gone (shutdown, instance removed) before it stored them.
    #[error("the instance's event lane is closed")]
    Closed,
    /// The database kept refusing them with an error that retrying does not cure.
    #[error("storing the events failed: {0}")]
    Failed(String),
}

/// Events handed over together, and who waits for them to be stored.
pub(crate) struct Report {
    pub(crate) events: Vec<ConnectorEvent>,
    pub(crate) done: Option<oneshot::Sender<Result<(), Unrecorded>>>,
}

impl Report {
    pub(crate) fn answer(self, outcome: Result<(), Unrecorded>) {
        if let Some(done) = self.done {
            // The waiter may have given up (a cancelled request): the events are stored anyway.
            let _ = done.send(outcome);
        }
    }
}

#[derive(Clone)]
pub struct EventSink(mpsc::Sender<Report>);

impl EventSink {
    /// A sink and the reader of what is sent into it (the registry's lanes, or a test).
    pub fn channel(capacity: usize) -> (EventSink, Reports) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (EventSink(tx), Reports { rx, pending: VecDeque::new() })
    }

    /// Queues one event; waits while the queue is full, not for the event to be stored.
    pub async fn send(&self, event: ConnectorEvent) -> Result<(), Unrecorded> {
        self.0.send(Report { events: vec![event], done: None }).await.map_err(|_| Unrecorded::Closed)
    }

    /// Queues events and waits until they are stored, in one transaction where they are
    /// messages (with whatever else the lane gathered). Cancelling the wait does not unqueue them.
    pub async fn record(&self, events: Vec<ConnectorEvent>) -> Result<(), Unrecorded> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, stored) = oneshot::channel();
        self.0.send(Report { events, done: Some(done) }).await.map_err(|_| Unrecorded::Closed)?;
        stored.await.map_err(|_| Unrecorded::Closed)?
    }
}

/// The reading end of an [`EventSink`].
pub struct Reports {
    rx: mpsc::Receiver<Report>,
    pending: VecDeque<ConnectorEvent>,
}

impl Reports {
    /// The next event, one at a time, for readers that do not store them (tests): a waiting
    /// [`EventSink::record`] is told they were stored as soon as they are read.
    pub async fn recv(&mut self) -> Option<ConnectorEvent> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            let mut report = self.rx.recv().await?;
            self.pending.extend(std::mem::take(&mut report.events));
            report.answer(Ok(()));
        }
    }

    pub(crate) async fn next(&mut self) -> Option<Report> {
        self.rx.recv().await
    }

    pub(crate) fn try_next(&mut self) -> Option<Report> {
        self.rx.try_recv().ok()
    }

    /// No more sends get in; what is queued can still be read.
    pub(crate) fn close(&mut self) {
        self.rx.close();
    }
}
