//! The inbound path: a message, call or group change reported by an instance's connector is
//! stored, an opt-out request suppresses its sender, the conversation window is moved, and each
//! step's event is written — all in one transaction, so none can be lost or half-done. Messages
//! are stored in batches (see [`receive_many`]); the connector's lane in the registry gathers them.
mod batch;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use crate::{
    connectors::{InboundMessage, MediaKind, Sender},
    entities::{conversation, inbound_message},
    error::Result,
    events::{emit, EventKind, Source},
    fields,
    instances::Instance,
    send::phone::Phone,
    time,
};

pub const OPT_OUT_REASON: &str = "recipient_requested_stop";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub opted_out: bool,
    /// False when the connector delivered the same message again (nothing was stored twice).
    pub new: bool,
}

fn kind_name(media: Option<MediaKind>) -> &'static str {
    match media {
        None => "text",
        Some(MediaKind::Image) => "image",
        Some(MediaKind::Document) => "document",
        Some(MediaKind::Audio) => "audio",
        Some(MediaKind::Video) => "video",
    }
}

/// The sender's phone as E.164 when WhatsApp gave one we can read.
fn sender_phone(sender: &Sender) -> Option<Phone> {
    sender.phone.as_deref().and_then(Phone::parse)
}

/// Stores one inbound message (see [`receive_many`]).
pub async fn receive(db: &DatabaseConnection, instance: &Instance, message: &InboundMessage) -> Result<Received> {
    let mut received = receive_many(db, instance, &[message]).await?;
    received.pop().ok_or_else(|| crate::Error::Internal("a batch of one stored nothing".into()))
}

/// Stores inbound messages of one instance in one transaction (group commit: the inbound path
/// writes a batch at the cost of about one message), and answers for each, in order, whether it
/// was new. A message already stored (redelivered after a crash, or twice in the batch) is
/// stored once and raises its events once.
pub async fn receive_many(
    db: &DatabaseConnection,
    instance: &Instance,
    messages: &[&InboundMessage],
) -> Result<Vec<Received>> {
    let txn = crate::db::begin_write(db).await?;
    match batch::store(&txn, instance, messages).await {
        Ok(received) => {
            crate::db::commit_and_wake(txn).await?;
            let opted_out = received.iter().filter(|r| r.new && r.opted_out).count();
            if opted_out > 0 {
                tracing::info!(account_id = instance.account_id, instance_id = %instance.id, opted_out, "recipients opted out");
            }
            Ok(received)
        }
        Err(e) => {
            if let Err(rollback) = txn.rollback().await {
                tracing::warn!(instance_id = %instance.id, error = %rollback, "rolling back an inbound batch failed");
            }
            Err(e)
        }
    }
}

/// When the person last wrote to this instance (the 3CX conversation window reads this).
pub async fn last_inbound_at(db: &DatabaseConnection, instance_id: &str, phone: &Phone) -> Result<Option<i64>> {
    Ok(conversation::Entity::find_by_id((instance_id.to_string(), phone.as_str().to_string()))
        .one(db)
        .await?
        .map(|c| c.last_inbound_at))
}

pub async fn call(db: &DatabaseConnection, instance: &Instance, from: &Sender, missed: bool, at: i64) -> Result<()> {
    let source = Source { account_id: instance.account_id, instance_id: &instance.id, instance_name: &instance.name };
    let kind = if missed { EventKind::CallMissed } else { EventKind::CallReceived };
    let phone = sender_phone(from);
    let txn = crate::db::begin_write(db).await?;
    emit(
        &txn,
        source,
        kind,
        fields! {
            "from" => phone.as_ref().map(|p| p.as_str()),
            "from_address" => from.address,
            "status" => if missed { "missed" } else { "received" },
            "call_time" => time::rfc3339(at),
        },
    )
    .await?;
    crate::db::commit_and_wake(txn).await?;
    Ok(())
}

pub async fn group_updated(db: &DatabaseConnection, instance: &Instance, group_id: &str, change: &str) -> Result<()> {
    let source = Source { account_id: instance.account_id, instance_id: &instance.id, instance_name: &instance.name };
    let txn = crate::db::begin_write(db).await?;
    emit(&txn, source, EventKind::GroupUpdated, fields! {"group_id" => group_id, "change" => change}).await?;
    crate::db::commit_and_wake(txn).await?;
    Ok(())
}

/// One row of the inbound log as the portal shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRow {
    pub id: i64,
    pub instance_id: String,
    pub from_phone: Option<String>,
    pub from_address: String,
    pub group_id: Option<String>,
    pub kind: String,
    pub body: String,
    pub media_mime_type: Option<String>,
    pub media_file_name: Option<String>,
    pub media_bytes: Option<i64>,
    pub opt_out: bool,
    pub received_at: i64,
}

#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub instance_id: Option<String>,
    /// Digits the sender's number contains.
    pub phone: Option<String>,
    pub text: Option<String>,
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Keyset pagination: rows with an id below this.
    pub before: Option<i64>,
}

/// Newest first, `limit` rows, by keyset (an indexed range on the id), so page 10,000 costs the
/// same as page 1.
pub async fn log(db: &DatabaseConnection, account_id: i64, filter: &LogFilter, limit: u64) -> Result<Vec<LogRow>> {
    let mut query = inbound_message::Entity::find().filter(inbound_message::Column::AccountId.eq(account_id));
    if let Some(instance) = &filter.instance_id {
        query = query.filter(inbound_message::Column::InstanceId.eq(instance.as_str()));
    }
    if let Some(phone) = &filter.phone {
        let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            query = query.filter(inbound_message::Column::FromPhone.contains(digits.as_str()));
        }
    }
    if let Some(text) = filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        query = query.filter(inbound_message::Column::Body.contains(text));
    }
    if let Some(from) = filter.from {
        query = query.filter(inbound_message::Column::ReceivedAt.gte(from));
    }
    if let Some(until) = filter.until {
        query = query.filter(inbound_message::Column::ReceivedAt.lt(until));
    }
    if let Some(before) = filter.before {
        query = query.filter(inbound_message::Column::Id.lt(before));
    }
    Ok(query
        .order_by_desc(inbound_message::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| LogRow {
            id: m.id,
            instance_id: m.instance_id,
            from_phone: m.from_phone,
            from_address: m.from_address,
            group_id: m.group_id,
            kind: m.kind,
            body: m.body,
            media_mime_type: m.media_mime_type,
            media_file_name: m.media_file_name,
            media_bytes: m.media_bytes,
            opt_out: m.opt_out,
            received_at: m.received_at,
        })
        .collect())
}
