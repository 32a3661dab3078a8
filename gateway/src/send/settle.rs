//! Settling an admitted message in one transaction once the connector has answered: its status
//! and events, the contact record, the quota, and the Idempotency-Key's answer.
use sea_orm::DatabaseConnection;

use super::{admission::Ticket, idempotency::KeyedRequest, phone::Phone, throttle};
use crate::{error::Result, events::Source, instances::Instance, message_log, policy_log, time, usage};

pub(crate) struct Settle<'a> {
    pub db: &'a DatabaseConnection,
    pub instance: &'a Instance,
    pub ticket: &'a Ticket,
    pub phone: &'a Phone,
    pub keyed: Option<&'a KeyedRequest>,
}

impl Settle<'_> {
    fn source(&self) -> Source<'_> {
        Source {
            account_id: self.ticket.account_id,
            instance_id: &self.instance.id,
            instance_name: &self.instance.name,
        }
    }

    /// WhatsApp took the message. `answer` is the 200 body a retry with the key gets.
    pub async fn sent(&self, provider_message_id: &str, answer: &str) -> Result<()> {
        crate::faults::fail_point("send.settle")?;
        let txn = crate::db::begin_write(self.db).await?;
        let result = async {
            if !message_log::mark_sent(&txn, self.source(), self.ticket.log_id, provider_message_id).await? {
                // The reconciler got there first (this process was stuck longer than it waits).
                tracing::warn!(log_id = self.ticket.log_id, "a send settled after the reconciler had closed it");
            }
            throttle::record_contact(&txn, &self.instance.id, self.phone, time::now()).await?;
            if let Some(keyed) = self.keyed {
                super::idempotency::complete(&txn, self.ticket.account_id, &keyed.key, 200, answer).await?;
            }
            Ok(())
        }
        .await;
        finish(txn, result).await
    }

    /// WhatsApp (or the connector) refused it: nothing went out, so the quota and the new
    /// recipient's place are given back and the key is freed for a retry.
    pub async fn refused(&self, reason: &str) -> Result<()> {
        crate::faults::fail_point("send.settle")?;
        let txn = crate::db::begin_write(self.db).await?;
        let result = async {
            if message_log::mark_failed(&txn, self.source(), self.ticket.log_id, reason).await? {
                usage::refund(&txn, &self.ticket.reservation).await?;
                throttle::release(&txn, &self.ticket.throttle).await?;
            }
            policy_log::mark_send_failed(&txn, self.ticket.policy_id, "gateway_send_failed").await?;
            if let Some(keyed) = self.keyed {
                super::idempotency::release(&txn, self.ticket.account_id, &keyed.key).await?;
            }
            Ok(())
        }
        .await;
        finish(txn, result).await
    }

    /// The connector did not answer in time: the message may have gone out. It is failed,
    /// but the quota stays taken and the key keeps this answer, so nothing can send it twice.
    pub async fn unknown(&self, reason: &str, answer: &str) -> Result<()> {
        crate::faults::fail_point("send.settle")?;
        let txn = crate::db::begin_write(self.db).await?;
        let result = async {
            message_log::mark_failed(&txn, self.source(), self.ticket.log_id, reason).await?;
            policy_log::mark_send_failed(&txn, self.ticket.policy_id, "gateway_send_failed").await?;
            if let Some(keyed) = self.keyed {
                super::idempotency::complete(&txn, self.ticket.account_id, &keyed.key, 502, answer).await?;
            }
            Ok(())
        }
        .await;
        finish(txn, result).await
    }
}

async fn finish(txn: crate::db::WriteTxn, result: Result<()>) -> Result<()> {
    match result {
        Ok(()) => {
            if let Err(e) = crate::faults::fail_point("send.settle.commit") {
                let _ = txn.rollback().await;
                return Err(e);
            }
            txn.commit().await?;
            crate::webhooks::wake();
            Ok(())
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}
