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
    pub phone: Option<crate::log_page::PhoneFilter>,
    /// Words the message text contains.
    pub text: Option<String>,
    pub from: Option<i64>,
    pub until: Option<i64>,
    /// Keyset pagination: rows received before this one.
    pub before: Option<Cursor>,
}

/// A position in the inbound log, which is ordered by receipt time (then id). Written in links
/// as `<received_at>.<id>`; a bare id (older links) is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub received_at: i64,
    pub id: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.received_at, self.id)
    }
}

impl Cursor {
    /// Reads a cursor from a link; a bare id is found in the account's log (`None` when it is
    /// not there: the page starts from the newest).
    pub async fn parse(db: &DatabaseConnection, account_id: i64, text: &str) -> Result<Option<Cursor>> {
        let text = text.trim();
        if let Some((at, id)) = text.split_once('.') {
            return Ok(match (at.parse(), id.parse()) {
                (Ok(received_at), Ok(id)) => Some(Cursor { received_at, id }),
                _ => None,
            });
        }
        let Ok(id) = text.parse::<i64>() else { return Ok(None) };
        let row = inbound_message::Entity::find_by_id(id)
            .filter(inbound_message::Column::AccountId.eq(account_id))
            .one(db)
            .await?;
        Ok(row.map(|r| Cursor { received_at: r.received_at, id: r.id }))
    }
}

pub type LogPage = crate::log_page::Page<LogRow, Cursor>;

/// Rows strictly before `cursor` in (received_at, id) order, written so that every database
/// serves it as one index range: `received_at <= at` bounds the range, the rest skips the rows
/// of the same second already shown.
fn before(cursor: Cursor) -> sea_orm::Condition {
    use inbound_message::Column::{Id, ReceivedAt};
    sea_orm::Condition::all()
        .add(ReceivedAt.lte(cursor.received_at))
        .add(sea_orm::Condition::any().add(ReceivedAt.lt(cursor.received_at)).add(Id.lt(cursor.id)))
}

/// The cursor's row and the rows after it: the lower bound of a scan window.
fn not_before(cursor: Cursor) -> sea_orm::Condition {
    use inbound_message::Column::{Id, ReceivedAt};
    sea_orm::Condition::all()
        .add(ReceivedAt.gte(cursor.received_at))
        .add(sea_orm::Condition::any().add(ReceivedAt.gt(cursor.received_at)).add(Id.gte(cursor.id)))
}

/// Newest first, `limit` rows, by keyset on (received_at, id), the last columns of the index
/// that fits: (account, sender, received_at, id) for an exact number, else (account, instance,
/// received_at, id), else (account, received_at, id); dates are a range of the same index.
/// Words of the text and a part of a number are applied within the scan window (see
/// `log_page`), so page 10,000 costs the same as page 1.
pub async fn log(db: &DatabaseConnection, account_id: i64, filter: &LogFilter, limit: u64) -> Result<LogPage> {
    log_within(db, account_id, filter, limit, crate::log_page::SCAN_WINDOW).await
}

/// `log` with a scan window of `window` rows.
pub async fn log_within(
    db: &DatabaseConnection,
    account_id: i64,
    filter: &LogFilter,
    limit: u64,
    window: u64,
) -> Result<LogPage> {
    use crate::log_page::PhoneFilter;
    use inbound_message::Column;
    let mut range = inbound_message::Entity::find().filter(Column::AccountId.eq(account_id));
    let mut residual = sea_orm::Condition::all();
    let instance = filter.instance_id.as_deref().filter(|i| !i.is_empty());
    match &filter.phone {
        Some(PhoneFilter::Exact(phone)) => {
            range = range.filter(Column::FromPhone.eq(phone.as_str()));
            if let Some(instance) = instance {
                residual = residual.add(Column::InstanceId.eq(instance));
            }
        }
        other => {
            if let Some(instance) = instance {
                range = range.filter(Column::InstanceId.eq(instance));
            }
            if let Some(PhoneFilter::Contains(digits)) = other {
                residual = residual.add(Column::FromPhone.contains(digits.as_str()));
            }
        }
    }
    if let Some(text) = filter.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        residual = residual.add(Column::Body.contains(text));
    }
    if let Some(from) = filter.from {
        range = range.filter(Column::ReceivedAt.gte(from));
    }
    if let Some(until) = filter.until {
        range = range.filter(Column::ReceivedAt.lt(until));
    }
    if let Some(cursor) = filter.before {
        range = range.filter(before(cursor));
    }
    let index = match (&filter.phone, instance) {
        (Some(PhoneFilter::Exact(_)), _) => "idx_inbound_phone_received",
        (_, Some(_)) => "idx_inbound_instance_received",
        _ => "idx_inbound_received",
    };
    let mut range = crate::log_page::ranged(db, range, index);
    let newest_first =
        |q: sea_orm::Select<inbound_message::Entity>| q.order_by_desc(Column::ReceivedAt).order_by_desc(Column::Id);
    let mut window_end = None;
    if !residual.is_empty() {
        window_end = newest_first(range.clone().select_only().column(Column::ReceivedAt).column(Column::Id))
            .offset(window.max(1) - 1)
            .limit(1)
            .into_tuple::<(i64, i64)>()
            .one(db)
            .await?
            .map(|(received_at, id)| Cursor { received_at, id });
        if let Some(end) = window_end {
            // The window's rows: not before its last one.
            range = range.filter(not_before(end));
        }
    }
    let rows = newest_first(range.filter(residual))
        .limit(limit + 1)
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
        .collect();
    Ok(LogPage::assemble(rows, limit, |r: &LogRow| Cursor { received_at: r.received_at, id: r.id }, window_end))
}
