//! The inbound path: a message, call or group change reported by an instance's connector is
//! stored, an opt-out request suppresses its sender, the conversation window is moved, and each
//! step's event is written — all in one transaction, so none can be lost or half-done.
use sea_orm::{
    sea_query::OnConflict, ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{
    connectors::{InboundMessage, MediaKind, Sender},
    entities::{conversation, inbound_message},
    error::Result,
    events::{emit, EventKind, Source},
    fields,
    instances::Instance,
    optout,
    send::phone::Phone,
    suppressions, time,
};

pub const OPT_OUT_REASON: &str = "recipient_requested_stop";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub id: i64,
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

pub async fn receive(db: &DatabaseConnection, instance: &Instance, message: &InboundMessage) -> Result<Received> {
    let existing = inbound_message::Entity::find()
        .filter(inbound_message::Column::InstanceId.eq(instance.id.as_str()))
        .filter(inbound_message::Column::ProviderMessageId.eq(message.provider_message_id.as_str()))
        .one(db)
        .await?;
    if let Some(row) = existing {
        return Ok(Received { id: row.id, opted_out: row.opt_out, new: false });
    }
    let phone = sender_phone(&message.from);
    let text = message.text.clone().unwrap_or_default();
    let is_group = message.group_id.is_some();
    let opted_out = !is_group && phone.is_some() && optout::is_opt_out(&text);
    let now = time::now();
    let media = message.media.as_ref();

    let txn = crate::db::begin_write(db).await?;
    let row = inbound_message::ActiveModel {
        account_id: Set(instance.account_id),
        instance_id: Set(instance.id.clone()),
        provider_message_id: Set(message.provider_message_id.chars().take(128).collect()),
        from_phone: Set(phone.as_ref().map(|p| p.as_str().to_string())),
        from_address: Set(message.from.address.chars().take(128).collect()),
        group_id: Set(message.group_id.as_ref().map(|g| g.chars().take(128).collect())),
        kind: Set(kind_name(media.map(|m| m.kind)).into()),
        body: Set(text.clone()),
        media_mime_type: Set(media.map(|m| m.mime_type.clone())),
        media_file_name: Set(media.and_then(|m| m.file_name.clone())),
        media_bytes: Set(media.and_then(|m| m.size_bytes).and_then(|b| i64::try_from(b).ok())),
        opt_out: Set(opted_out),
        sent_at: Set(message.sent_at),
        received_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;

    let source = Source { account_id: instance.account_id, instance_id: &instance.id, instance_name: &instance.name };
    let mut message_fields = fields! {
        "message_id" => message.provider_message_id,
        "from" => phone.as_ref().map(|p| p.as_str()),
        "from_address" => message.from.address,
        "type" => kind_name(media.map(|m| m.kind)),
        "text" => text,
        "sent_at" => time::rfc3339(message.sent_at),
    };
    if let Some(m) = media {
        message_fields.insert("mime_type".into(), serde_json::json!(m.mime_type));
        message_fields.insert("file_name".into(), serde_json::json!(m.file_name));
        message_fields.insert("media_size".into(), serde_json::json!(m.size_bytes));
    }
    if let Some(group) = &message.group_id {
        message_fields.insert("group_id".into(), serde_json::json!(group));
        emit(&txn, source, EventKind::GroupMessageReceived, message_fields).await?;
    } else {
        emit(&txn, source, EventKind::MessageReceived, message_fields).await?;
    }

    if let (Some(phone), false) = (&phone, is_group) {
        touch_conversation(&txn, instance, phone, now).await?;
        emit(
            &txn,
            source,
            EventKind::ConversationUpdated,
            fields! {
                "phone" => phone.as_str(),
                "last_inbound_at" => time::rfc3339(now),
            },
        )
        .await?;
        // Only a new suppression is news; repeated STOPs change nothing.
        if opted_out
            && suppressions::add_in(&txn, instance.account_id, phone, OPT_OUT_REASON, "opt_out", "recipient").await?
        {
            emit(
                &txn,
                source,
                EventKind::RecipientOptedOut,
                fields! {
                    "from" => phone.as_str(),
                    "reason" => OPT_OUT_REASON,
                    "message_text" => text,
                },
            )
            .await?;
        }
    }
    crate::db::commit_and_wake(txn).await?;
    if opted_out {
        tracing::info!(account_id = instance.account_id, instance_id = %instance.id, "recipient opted out");
    }
    Ok(Received { id: row.id, opted_out, new: true })
}

async fn touch_conversation<C: sea_orm::ConnectionTrait>(
    conn: &C,
    instance: &Instance,
    phone: &Phone,
    at: i64,
) -> Result<()> {
    let row = conversation::ActiveModel {
        instance_id: Set(instance.id.clone()),
        phone: Set(phone.as_str().into()),
        account_id: Set(instance.account_id),
        last_inbound_at: Set(at),
    };
    conversation::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([conversation::Column::InstanceId, conversation::Column::Phone])
                .update_column(conversation::Column::LastInboundAt)
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
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
