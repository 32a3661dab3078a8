//! An admitted message's way out: the connector call, bounded by a timeout, then the settle
//! transaction, retried until it holds. Runs in its own task (see `inflight`).
use std::time::Duration;

use super::{
    admission::Ticket,
    phone::Phone,
    settle::{self, Outcome},
};
use crate::{
    connectors::{registry::Handover, ConnectorError, OutgoingMessage},
    error::Result,
    instances::{Instance, InstanceStatus},
    policy::{Assessment, Decision},
    state::AppState,
};

pub(crate) struct Delivery {
    pub state: AppState,
    pub instance: Instance,
    pub ticket: Ticket,
    /// Taken when handed to the connector (media can be large: it is not copied).
    pub outgoing: Option<OutgoingMessage>,
    pub phone: Phone,
    /// The Idempotency-Key the send was admitted under.
    pub key: Option<String>,
}

pub(crate) enum Finished {
    Sent { message_id: String, log_id: i64, remaining_today: i64, assessment: Assessment, decision: Decision },
    Failed { log_id: i64 },
}

/// What the connector said.
enum Handed {
    Accepted(String),
    /// Certainly not sent; the stable reason customers see.
    Refused(&'static str),
    /// Perhaps sent: the connector did not answer in time.
    Unknown(&'static str),
}

impl Delivery {
    pub(crate) async fn run(mut self) -> Result<Finished> {
        let _running = self.state.sends.running(self.ticket.log_id);
        crate::faults::crash_point("send.after_admission");
        let handed = match self.outgoing.take() {
            Some(outgoing) => self.hand_over(outgoing).await,
            None => Handed::Refused("provider_unavailable"),
        };
        crate::faults::crash_point("send.after_connector");
        let log_id = self.ticket.log_id;
        let (outcome, finished) = match handed {
            Handed::Accepted(provider_message_id) => {
                let answer = self.state.answers.sent(&self.ticket.message_id, log_id);
                let finished = Finished::Sent {
                    message_id: self.ticket.message_id.clone(),
                    log_id,
                    remaining_today: self.ticket.reservation.remaining_today,
                    assessment: self.ticket.assessment.clone(),
                    decision: self.ticket.decision,
                };
                (Outcome::Sent { provider_message_id, answer }, finished)
            }
            Handed::Refused(reason) => (Outcome::Refused { reason }, Finished::Failed { log_id }),
            Handed::Unknown(reason) => {
                let answer = self.state.answers.send_failed(log_id);
                (Outcome::Unknown { reason, answer }, Finished::Failed { log_id })
            }
        };
        let job = settle::Job {
            ticket: self.ticket.clone(),
            instance_id: self.instance.id.clone(),
            instance_name: self.instance.name.clone(),
            phone: self.phone.clone(),
            key: self.key.clone(),
            outcome,
        };
        let queues = &self.state.queues;
        retrying("settle a send", log_id, || async {
            crate::faults::fail_point("send.settle")?;
            queues.settle.submit(job.clone()).await
        })
        .await;
        Ok(finished)
    }

    async fn hand_over(&self, outgoing: OutgoingMessage) -> Handed {
        let instance_id = &self.instance.id;
        // An instance that was never linked (or was logged out) has nobody to send as; opening
        // its session would only start offering link codes.
        if self.instance.status == InstanceStatus::Unlinked {
            return Handed::Refused("instance_not_connected");
        }
        let limit = Duration::from_secs(self.state.config.send.timeout_secs);
        // Here, or at the server that runs the instance's connection. Customers see a stable
        // reason; the provider's own words go to the log only.
        match self.state.registry.hand_over(&self.instance, outgoing, limit).await {
            Handover::Sent(receipt) => Handed::Accepted(receipt.provider_message_id),
            Handover::Refused(e) => {
                tracing::warn!(instance_id = %instance_id, log_id = self.ticket.log_id, error = %e, "connector refused a send");
                Handed::Refused(match e {
                    ConnectorError::NotConnected => "instance_not_connected",
                    ConnectorError::Rejected(_) => "recipient_rejected",
                    ConnectorError::NotOnWhatsApp => "recipient_not_on_whatsapp",
                    ConnectorError::RateLimited => "provider_rate_limited",
                    ConnectorError::Unavailable(_) | ConnectorError::Unsupported(_) => "provider_unavailable",
                })
            }
            Handover::NoConnection(e) => {
                tracing::warn!(instance_id = %instance_id, error = %e, "no connector session for a send");
                Handed::Refused("provider_unavailable")
            }
            Handover::Unknown(e) => {
                tracing::warn!(instance_id = %instance_id, log_id = self.ticket.log_id, error = %e, "the connector did not answer a send in time");
                Handed::Unknown("provider_timeout")
            }
        }
    }
}

/// Settling must hold once the connector has answered: a failed attempt (the database away,
/// a deadlock) is tried again with a growing pause until it does.
async fn retrying<'a, F, Fut>(what: &str, log_id: i64, attempt: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>> + 'a,
{
    let mut pause = Duration::from_millis(20);
    let mut failures = 0u32;
    loop {
        match attempt().await {
            Ok(()) => return,
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_power_of_two() {
                    tracing::error!(log_id, failures, error = %e, "could not {what}; trying again");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}
