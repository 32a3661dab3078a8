//! What each connector event changes in the database: instance status and alerts, receipts,
//! inbound messages, calls and group changes, with their events.
use sea_orm::DatabaseConnection;

use super::{ConnectorEvent, EventKind};
use crate::{
    error::Result,
    instances::{self, Instance, InstanceStatus},
};

const RECEIPT_RETRIES: u32 = 20;
const RECEIPT_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// The one place connector events change stored state.
pub(crate) async fn event(db: &DatabaseConnection, event: &ConnectorEvent) -> Result<()> {
    let id = event.instance_id.as_str();
    match &event.kind {
        EventKind::Connected { phone } => {
            instances::record_status(db, id, InstanceStatus::Connected, Some(phone.clone()), Some("connected")).await?;
            instances::set_banned_until(db, id, None).await?;
            instances::set_connection_alert(db, id, None).await?;
        }
        EventKind::Disconnected { reason } => {
            instances::record_status(db, id, InstanceStatus::Disconnected, None, Some(reason)).await?;
        }
        EventKind::LoggedOut { reason, forced } => {
            instances::record_status(db, id, InstanceStatus::Unlinked, Some(None), Some(reason)).await?;
            if *forced {
                let alert = format!("WhatsApp ended the link to the phone: {reason}");
                instances::set_connection_alert(db, id, Some(&alert)).await?;
            }
        }
        EventKind::TemporarilyBanned { reason, until } => {
            // Without an announced end the client waits an hour; so does the next one.
            let until_or_hour = until.unwrap_or_else(|| crate::time::now() + 3600);
            instances::set_banned_until(db, id, Some(until_or_hour)).await?;
            let detail = match until {
                Some(until) => {
                    format!("Temporarily banned by WhatsApp until {}: {reason}", crate::time::rfc3339(*until))
                }
                None => format!("Temporarily banned by WhatsApp: {reason}"),
            };
            let changed = instances::record_status(db, id, InstanceStatus::Disconnected, None, Some(&detail)).await?;
            let alert = match until {
                Some(until) => format!(
                    "Temporarily banned by WhatsApp: {reason}. Sending is possible again after {}.",
                    crate::time::display(*until)
                ),
                None => detail.clone(),
            };
            instances::set_connection_alert(db, id, Some(&alert)).await?;
            // A ban must reach the customer's systems even when the status was already
            // "disconnected" and so no status event went out.
            if changed.is_none() {
                if let Some(instance) = instances::find_for_connector(db, id).await? {
                    let fields = crate::fields! {
                        "status" => instance.status.as_str(),
                        "state" => "temporarily_banned",
                        "detail" => detail,
                        "banned_until" => until.map(crate::time::rfc3339),
                    };
                    emit_instance_event(db, &instance, crate::events::EventKind::InstanceConnectionUpdated, fields)
                        .await?;
                }
            }
        }
        EventKind::MessageStatus { provider_message_id, status, just_sent, .. } => {
            let applied =
                crate::message_log::apply_receipts(db, id, &[(provider_message_id.as_str(), *status)]).await?;
            retry_unknown(db, id, &[(provider_message_id.as_str(), *status, *just_sent)], applied);
        }
        EventKind::QrUpdated { code, expires_at } => {
            if let Some(instance) = instances::find_for_connector(db, id).await? {
                let fields = crate::fields! {"qr_code" => code, "expires_at" => crate::time::rfc3339(*expires_at)};
                emit_instance_event(db, &instance, crate::events::EventKind::InstanceQrUpdated, fields).await?;
            }
        }
        EventKind::MessageReceived(message) => {
            if let Some(instance) = instances::find_for_connector(db, id).await? {
                crate::inbound::receive(db, &instance, message).await?;
            }
        }
        EventKind::Call { from, missed, at } => {
            if let Some(instance) = instances::find_for_connector(db, id).await? {
                crate::inbound::call(db, &instance, from, *missed, *at).await?;
            }
        }
        EventKind::GroupUpdated { group_id, change } => {
            if let Some(instance) = instances::find_for_connector(db, id).await? {
                crate::inbound::group_updated(db, &instance, group_id, change).await?;
            }
        }
        EventKind::ConnectionUpdated { state } => {
            tracing::debug!(instance_id = %id, state, "connection state reported");
            if let Some(instance) = instances::find_for_connector(db, id).await? {
                let fields = crate::fields! {"status" => instance.status.as_str(), "state" => state};
                emit_instance_event(db, &instance, crate::events::EventKind::InstanceConnectionUpdated, fields).await?;
            }
        }
    }
    Ok(())
}

/// The writer that applies the receipts of every lane, many instances' in one transaction.
pub(crate) type ReceiptWriter = crate::db::group_commit::GroupCommit<crate::message_log::ReceiptRun>;

/// Applies receipts of one instance (in a transaction shared with other instances' receipts).
/// A receipt for a message just sent that names no stored message overtook the write of the
/// message's provider id: it is tried again shortly rather than lost.
pub(crate) async fn receipts(
    db: &DatabaseConnection,
    writer: &ReceiptWriter,
    instance_id: &str,
    receipts: &[(&str, crate::connectors::DeliveryStatus, bool)],
) -> Result<()> {
    let run = crate::message_log::ReceiptRun {
        instance_id: instance_id.to_string(),
        receipts: receipts.iter().map(|(id, status, _)| (id.to_string(), *status)).collect(),
    };
    let applied = writer.submit(run).await?;
    retry_unknown(db, instance_id, receipts, applied);
    Ok(())
}

/// Tries again shortly the receipts of messages just sent that named no stored message.
fn retry_unknown(
    db: &DatabaseConnection,
    instance_id: &str,
    receipts: &[(&str, crate::connectors::DeliveryStatus, bool)],
    applied: Vec<crate::message_log::Applied>,
) {
    for ((provider_message_id, status, just_sent), applied) in receipts.iter().zip(applied) {
        if applied.is_none() && *just_sent {
            tokio::spawn(retry_receipt(db.clone(), instance_id.to_string(), provider_message_id.to_string(), *status));
        }
    }
}

async fn retry_receipt(
    db: DatabaseConnection,
    id: String,
    provider_message_id: String,
    status: crate::connectors::DeliveryStatus,
) {
    // Only "not stored yet" uses up the tries; a database error is retried with backoff until
    // the receipt is applied.
    let mut unknown = 0;
    let mut backoff = crate::connectors::lanes::Backoff::default();
    while unknown < RECEIPT_RETRIES {
        tokio::time::sleep(RECEIPT_RETRY_WAIT).await;
        match crate::message_log::apply_receipt_if_known(&db, &id, &provider_message_id, status).await {
            Ok(Some(_)) => return,
            Ok(None) => unknown += 1,
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!(instance_id = %id, error = %e, retry_in_ms = wait.as_millis() as u64, "applying a receipt failed; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
    tracing::debug!(instance_id = %id, "receipt for an unknown message dropped");
}

async fn emit_instance_event(
    db: &DatabaseConnection,
    instance: &Instance,
    kind: crate::events::EventKind,
    fields: serde_json::Map<String, serde_json::Value>,
) -> Result<()> {
    let source = crate::events::Source {
        account_id: instance.account_id,
        instance_id: &instance.id,
        instance_name: &instance.name,
    };
    let txn = crate::db::begin_write(db).await?;
    crate::events::emit(&txn, source, kind, fields).await?;
    crate::db::commit_and_wake(txn).await?;
    Ok(())
}
