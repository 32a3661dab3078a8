//! Settling admitted messages once the connector has answered, many in one transaction (group
//! commit, see `db::group_commit`): their status and events, the contact records, the quota given back
//! for what certainly did not go out, and the Idempotency-Keys' answers.
use std::collections::BTreeMap;

use sea_orm::{sea_query::Expr, ConnectionTrait, EntityTrait, QueryFilter};

use super::{admission::Ticket, idempotency, phone::Phone, throttle};
use crate::{
    entities::policy_decision,
    error::Result,
    events::Source,
    message_log::{self, Settlement},
    time, usage,
};

/// What the connector said about one message.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// WhatsApp took it. `answer` is the 200 body a retry with the key gets.
    Sent { provider_message_id: String, answer: String },
    /// Certainly not sent: the quota and the new recipient's place are given back and the key
    /// is freed for a retry.
    Refused { reason: &'static str },
    /// The connector did not answer in time: the message may have gone out. It is failed, but
    /// the quota stays taken and the key keeps `answer`, so nothing can send it twice.
    Unknown { reason: &'static str, answer: String },
}

/// One message to settle.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub ticket: Ticket,
    pub instance_id: String,
    pub instance_name: String,
    pub phone: Phone,
    pub key: Option<String>,
    pub outcome: Outcome,
}

impl Job {
    fn source(&self) -> Source<'_> {
        Source {
            account_id: self.ticket.account_id,
            instance_id: &self.instance_id,
            instance_name: &self.instance_name,
        }
    }
}

/// Settles `jobs` inside `txn`.
pub(crate) async fn settle_all<C: ConnectionTrait>(txn: &C, jobs: &[&Job]) -> Result<()> {
    let items: Vec<(i64, Source<'_>, Settlement<'_>)> = jobs
        .iter()
        .map(|job| {
            let settlement = match &job.outcome {
                Outcome::Sent { provider_message_id, .. } => Settlement::Sent { provider_message_id },
                Outcome::Refused { reason } | Outcome::Unknown { reason, .. } => Settlement::Failed { error: reason },
            };
            (job.ticket.log_id, job.source(), settlement)
        })
        .collect();
    let moved = message_log::settle_many(txn, &items).await?;

    let mut refunds: BTreeMap<(i64, String, String), i64> = BTreeMap::new();
    let mut releases: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut failed_decisions = Vec::new();
    let mut contacts = Vec::new();
    for (job, moved) in jobs.iter().zip(moved) {
        match &job.outcome {
            Outcome::Sent { .. } => {
                if !moved {
                    tracing::warn!(log_id = job.ticket.log_id, "a send settled after the reconciler had closed it");
                }
                contacts.push((job.instance_id.as_str(), &job.phone));
            }
            Outcome::Refused { .. } => {
                if moved {
                    let r = &job.ticket.reservation;
                    *refunds.entry((r.account_id, "day".into(), r.day.clone())).or_default() -= 1;
                    *refunds.entry((r.account_id, "month".into(), r.month.clone())).or_default() -= 1;
                    if let Some(window) = job.ticket.throttle.new_recipient_window() {
                        *releases.entry(window.clone()).or_default() -= 1;
                    }
                }
                failed_decisions.push(job.ticket.log_id);
            }
            Outcome::Unknown { .. } => failed_decisions.push(job.ticket.log_id),
        }
    }
    usage::COUNTERS.add(txn, &refunds.into_iter().collect::<Vec<_>>()).await?;
    throttle::WINDOWS.add(txn, &releases.into_iter().collect::<Vec<_>>()).await?;
    throttle::record_contacts(txn, &contacts, time::now()).await?;
    mark_decisions_failed(txn, &failed_decisions).await?;
    let mut answers = Vec::new();
    let mut released = Vec::new();
    for job in jobs {
        let Some(key) = job.key.as_deref() else { continue };
        let account_id = job.ticket.account_id;
        match &job.outcome {
            Outcome::Sent { answer, .. } => {
                answers.push(idempotency::Answer { account_id, key, status: 200, body: answer })
            }
            Outcome::Unknown { answer, .. } => {
                answers.push(idempotency::Answer { account_id, key, status: 502, body: answer })
            }
            Outcome::Refused { .. } => released.push((account_id, key)),
        }
    }
    idempotency::complete_many(txn, &answers).await?;
    idempotency::release_many(txn, &released).await?;
    Ok(())
}

/// The allowed decisions of messages that did not deliver say so (`gateway_send_failed`).
async fn mark_decisions_failed<C: ConnectionTrait>(txn: &C, log_ids: &[i64]) -> Result<()> {
    for condition in crate::db::bulk::one_of(txn.get_database_backend(), policy_decision::Column::MessageLogId, log_ids)
    {
        policy_decision::Entity::update_many()
            .col_expr(policy_decision::Column::ErrorCode, Expr::value("gateway_send_failed"))
            .filter(condition)
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl crate::db::group_commit::Work for Job {
    type Answer = ();
    const WAKES_WEBHOOKS: bool = true;

    async fn run(txn: &crate::db::WriteTxn, jobs: &[&Job]) -> Result<Vec<()>> {
        settle_all(txn, jobs).await?;
        Ok(vec![(); jobs.len()])
    }

    fn before_commit() -> Result<()> {
        crate::faults::fail_point("send.settle.commit")
    }
}
