//! The message log: every send the pipeline lets through, with its status lifecycle
//! accepted → sent → delivered → read, or failed. Receipts never move a status backwards.
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

use crate::{
    connectors::DeliveryStatus,
    entities::message,
    error::Result,
    events::{EventKind, Source},
    time,
};

mod batch;
mod receipts;
pub(crate) use batch::{settle_many, Settlement};
pub(crate) use receipts::Run as ReceiptRun;
pub use receipts::{apply_receipts, Applied};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Accepted => "accepted",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
            MessageStatus::Failed => "failed",
        }
    }

    pub fn from_db(text: &str) -> MessageStatus {
        match text {
            "sent" => MessageStatus::Sent,
            "delivered" => MessageStatus::Delivered,
            "read" => MessageStatus::Read,
            "failed" => MessageStatus::Failed,
            _ => MessageStatus::Accepted,
        }
    }

    /// Whether a receipt saying `next` may replace this status. Read implies delivered, so a
    /// read receipt that overtakes the delivery receipt still lands; nothing leaves `read`
    /// or `failed`, and nothing goes back.
    pub fn may_become(self, next: MessageStatus) -> bool {
        match self {
            MessageStatus::Read | MessageStatus::Failed => false,
            _ if next == MessageStatus::Failed => true,
            _ => next > self,
        }
    }
}

impl From<DeliveryStatus> for MessageStatus {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Sent => MessageStatus::Sent,
            DeliveryStatus::Delivered => MessageStatus::Delivered,
            DeliveryStatus::Read => MessageStatus::Read,
            DeliveryStatus::Failed => MessageStatus::Failed,
        }
    }
}

pub struct NewMessage<'a> {
    pub message_id: &'a str,
    pub account_id: i64,
    pub instance_id: &'a str,
    pub recipient: &'a str,
    pub purpose: &'a str,
    pub kind: &'a str,
    pub body: String,
    pub media_mime_type: Option<String>,
    pub media_file_name: Option<String>,
    pub media_bytes: Option<i64>,
    pub content_fingerprint: String,
    pub risk_score: i32,
    pub channel: &'a crate::send::Channel,
    pub idempotency_key: Option<&'a str>,
}

/// The row of a message admitted at `at`, status `accepted`.
pub(crate) fn accepted_row(new: NewMessage<'_>, at: i64) -> message::ActiveModel {
    let (conversation_id, agent_extension) = match new.channel {
        crate::send::Channel::ThreeCx { conversation_id, agent_extension } => {
            (conversation_id.clone(), agent_extension.clone())
        }
        crate::send::Channel::Api => (None, None),
    };
    message::ActiveModel {
        message_id: Set(new.message_id.into()),
        account_id: Set(new.account_id),
        instance_id: Set(new.instance_id.into()),
        recipient: Set(new.recipient.into()),
        purpose: Set(new.purpose.into()),
        kind: Set(new.kind.into()),
        body: Set(new.body),
        media_mime_type: Set(new.media_mime_type),
        media_file_name: Set(new.media_file_name),
        media_bytes: Set(new.media_bytes),
        content_fingerprint: Set(new.content_fingerprint),
        risk_score: Set(new.risk_score),
        status: Set(MessageStatus::Accepted.as_str().into()),
        provider_message_id: Set(None),
        error: Set(None),
        source: Set(new.channel.source_label().into()),
        conversation_id: Set(conversation_id),
        agent_extension: Set(agent_extension),
        idempotency_key: Set(new.idempotency_key.map(str::to_string)),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    }
}

/// Logs one message as accepted (and counts it in its hour); returns its log id. Sends are
/// admitted in batches (`send::admission`); this is for single rows.
pub async fn insert_accepted<C: sea_orm::ConnectionTrait>(db: &C, new: NewMessage<'_>) -> Result<i64> {
    let now = time::now();
    let account_id = new.account_id;
    let row = accepted_row(new, now).insert(db).await?;
    crate::message_stats::count_created_n(db, account_id, now, 1).await?;
    Ok(row.id)
}

/// The fields every message event carries.
fn message_fields(row: &message::Model) -> serde_json::Map<String, serde_json::Value> {
    crate::fields! {
        "message_id" => row.message_id,
        "log_id" => row.id,
        "to" => row.recipient,
        "purpose" => row.purpose,
        "type" => row.kind,
    }
}

/// The events of a status change: the specific one (`message.sent`…) if any, then
/// `message.status_updated`.
fn status_events(
    row: &message::Model,
    status: MessageStatus,
    specific: Option<EventKind>,
    extra: &[(&str, serde_json::Value)],
) -> Vec<(EventKind, serde_json::Map<String, serde_json::Value>)> {
    let mut fields = message_fields(row);
    for (key, value) in extra {
        fields.insert((*key).to_string(), value.clone());
    }
    let mut events = Vec::with_capacity(2);
    if let Some(kind) = specific {
        events.push((kind, fields.clone()));
    }
    fields.insert("status".into(), serde_json::json!(status.as_str()));
    events.push((EventKind::MessageStatusUpdated, fields));
    events
}

/// The message did not go out (or may not have): `message.failed`, inside the caller's
/// transaction. False when the message had already left `accepted`.
pub async fn mark_failed<C: sea_orm::ConnectionTrait>(
    conn: &C,
    source: Source<'_>,
    log_id: i64,
    error: &str,
) -> Result<bool> {
    let moved = settle_many(conn, &[(log_id, source, Settlement::Failed { error })]).await?;
    Ok(moved.first().copied().unwrap_or(false))
}

/// Messages still `accepted` that were created before `before`: sends a crash interrupted.
pub async fn stale_accepted(db: &DatabaseConnection, before: i64, limit: u64) -> Result<Vec<message::Model>> {
    use sea_orm::{QueryOrder, QuerySelect};
    Ok(message::Entity::find()
        // An accepted message has neither a provider id nor an error yet: saying so lets
        // PostgreSQL use its partial index of exactly those rows (`idx_messages_unsettled`,
        // which receipts never touch, so their updates stay HOT).
        .filter(message::Column::ProviderMessageId.is_null())
        .filter(message::Column::Error.is_null())
        .filter(message::Column::Status.eq(MessageStatus::Accepted.as_str()))
        .filter(message::Column::CreatedAt.lt(before))
        .order_by_asc(message::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Applies a receipt for a provider message id of an instance. Returns the new status when it
/// changed; receipts for unknown messages or that would go backwards change nothing. The
/// change and its events are one transaction.
pub async fn apply_receipt(
    db: &DatabaseConnection,
    instance_id: &str,
    provider_message_id: &str,
    status: DeliveryStatus,
) -> Result<Option<MessageStatus>> {
    match apply_receipt_if_known(db, instance_id, provider_message_id, status).await? {
        Some(changed) => Ok(changed),
        None => Ok(None),
    }
}

/// Like `apply_receipt`, but `None` when no message has this provider id (yet: a receipt can
/// overtake the write that records the id), so the caller may try again shortly.
pub async fn apply_receipt_if_known(
    db: &DatabaseConnection,
    instance_id: &str,
    provider_message_id: &str,
    status: DeliveryStatus,
) -> Result<Option<Option<MessageStatus>>> {
    let mut applied = apply_receipts(db, instance_id, &[(provider_message_id, status)]).await?;
    Ok(applied.pop().flatten())
}

/// How many distinct recipients got this exact content from the account since `since`.
pub async fn distinct_recipients_with_fingerprint(
    db: &DatabaseConnection,
    account_id: i64,
    fingerprint: &str,
    since: i64,
) -> Result<i64> {
    use sea_orm::{sea_query::Expr, ExprTrait, QuerySelect};
    let count: Option<i64> = message::Entity::find()
        .select_only()
        .column_as(Expr::col(message::Column::Recipient).count_distinct(), "n")
        .filter(message::Column::AccountId.eq(account_id))
        .filter(message::Column::ContentFingerprint.eq(fingerprint))
        .filter(message::Column::CreatedAt.gte(since))
        .into_tuple()
        .one(db)
        .await?;
    Ok(count.unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(Accepted.may_become(Sent));
        assert!(Sent.may_become(Delivered));
        assert!(Sent.may_become(Read), "a read receipt first implies delivered");
        assert!(Delivered.may_become(Read));
        assert!(!Read.may_become(Delivered));
        assert!(!Delivered.may_become(Sent));
        assert!(Sent.may_become(Failed));
        assert!(!Failed.may_become(Sent));
        assert!(!Read.may_become(Failed));
    }
}

/// One sent (or attempted) message as the portal lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRow {
    pub id: i64,
    pub message_id: String,
    pub instance_id: String,
    pub recipient: String,
    pub purpose: String,
    pub kind: String,
    pub body: String,
    pub media_file_name: Option<String>,
    pub status: String,
    pub error: Option<String>,
    /// `api` or `3cx`.
    pub source: String,
    pub conversation_id: Option<String>,
    pub agent_extension: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    pub instance_id: Option<String>,
    pub phone: Option<crate::log_page::PhoneFilter>,
    pub status: Option<String>,
    /// Keyset pagination: rows with an id below this.
    pub before: Option<i64>,
}

pub type LogPage = crate::log_page::Page<LogRow, i64>;

/// The newest `limit` rows matching the filter (see `page`).
pub async fn log(db: &DatabaseConnection, account_id: i64, filter: &LogFilter, limit: u64) -> Result<Vec<LogRow>> {
    Ok(page(db, account_id, filter, limit).await?.rows)
}

/// Newest first, by keyset on the id. The range comes from the index that fits: (account,
/// recipient, id) for an exact number, else (account, instance, id), else (account, id); the
/// status and a part of a number are applied within the scan window (see `log_page`).
pub async fn page(db: &DatabaseConnection, account_id: i64, filter: &LogFilter, limit: u64) -> Result<LogPage> {
    page_within(db, account_id, filter, limit, crate::log_page::SCAN_WINDOW).await
}

/// `page` with a scan window of `window` rows.
pub async fn page_within(
    db: &DatabaseConnection,
    account_id: i64,
    filter: &LogFilter,
    limit: u64,
    window: u64,
) -> Result<LogPage> {
    use crate::log_page::PhoneFilter;
    use sea_orm::{QueryOrder, QuerySelect};
    let mut range = message::Entity::find().filter(message::Column::AccountId.eq(account_id));
    let mut residual = sea_orm::Condition::all();
    let instance = filter.instance_id.as_deref().filter(|i| !i.is_empty());
    match &filter.phone {
        Some(PhoneFilter::Exact(phone)) => {
            range = range.filter(message::Column::Recipient.eq(phone.as_str()));
            if let Some(instance) = instance {
                residual = residual.add(message::Column::InstanceId.eq(instance));
            }
        }
        other => {
            if let Some(instance) = instance {
                range = range.filter(message::Column::InstanceId.eq(instance));
            }
            if let Some(PhoneFilter::Contains(digits)) = other {
                residual = residual.add(message::Column::Recipient.contains(digits.as_str()));
            }
        }
    }
    if let Some(status) = filter.status.as_deref().filter(|s| !s.is_empty()) {
        residual = residual.add(message::Column::Status.eq(status));
    }
    if let Some(before) = filter.before {
        range = range.filter(message::Column::Id.lt(before));
    }
    let index = match (&filter.phone, instance) {
        (Some(PhoneFilter::Exact(_)), _) => "idx_messages_recipient",
        (_, Some(_)) => "idx_messages_instance",
        _ => "idx_messages_account",
    };
    let mut range = crate::log_page::ranged(db, range, index);
    let mut window_end = None;
    if !residual.is_empty() {
        window_end = range
            .clone()
            .select_only()
            .column(message::Column::Id)
            .order_by_desc(message::Column::Id)
            .offset(window.max(1) - 1)
            .limit(1)
            .into_tuple::<i64>()
            .one(db)
            .await?;
        if let Some(end) = window_end {
            range = range.filter(message::Column::Id.gte(end));
        }
    }
    let rows = range
        .filter(residual)
        .order_by_desc(message::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?
        .into_iter()
        .map(|m| LogRow {
            id: m.id,
            message_id: m.message_id,
            instance_id: m.instance_id,
            recipient: m.recipient,
            purpose: m.purpose,
            kind: m.kind,
            body: m.body,
            media_file_name: m.media_file_name,
            status: m.status,
            error: m.error,
            source: m.source,
            conversation_id: m.conversation_id,
            agent_extension: m.agent_extension,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
        .collect();
    Ok(LogPage::assemble(rows, limit, |r: &LogRow| r.id, window_end))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRate {
    pub total: u64,
    pub failed: u64,
}

/// Messages of the account created in [from, until) and how many of them failed, from the
/// maintained hourly counts (see `message_stats`).
pub async fn failure_rate(db: &DatabaseConnection, account_id: i64, from: i64, until: i64) -> Result<FailureRate> {
    crate::message_stats::failure_rate(db, account_id, from, until).await
}
