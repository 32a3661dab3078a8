//! The normalized events of the spec ("Supported Webhook Events"). Each is stored as a flat JSON
//! object — `event`, `event_id`, `instance_id`, `instance_name`, the event's own fields,
//! `timestamp` — in the same transaction as the change that caused it, so none is ever lost:
//! /api/events reads them in order, and webhook delivery fans out from them.
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{entities::event, error::Result, ids, time};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "message.received")]
    MessageReceived,
    #[serde(rename = "message.sent")]
    MessageSent,
    #[serde(rename = "message.failed")]
    MessageFailed,
    #[serde(rename = "recipient.opted_out")]
    RecipientOptedOut,
    #[serde(rename = "instance.connected")]
    InstanceConnected,
    #[serde(rename = "instance.disconnected")]
    InstanceDisconnected,
    #[serde(rename = "instance.connection_updated")]
    InstanceConnectionUpdated,
    #[serde(rename = "instance.qr_updated")]
    InstanceQrUpdated,
    #[serde(rename = "message.delivered")]
    MessageDelivered,
    #[serde(rename = "message.read")]
    MessageRead,
    #[serde(rename = "message.status_updated")]
    MessageStatusUpdated,
    #[serde(rename = "conversation.updated")]
    ConversationUpdated,
    #[serde(rename = "call.received")]
    CallReceived,
    #[serde(rename = "call.missed")]
    CallMissed,
    #[serde(rename = "group.message_received")]
    GroupMessageReceived,
    #[serde(rename = "group.updated")]
    GroupUpdated,
}

impl EventKind {
    /// All sixteen, in the spec's order.
    pub const ALL: [EventKind; 16] = [
        EventKind::MessageReceived,
        EventKind::MessageSent,
        EventKind::MessageFailed,
        EventKind::RecipientOptedOut,
        EventKind::InstanceConnected,
        EventKind::InstanceDisconnected,
        EventKind::InstanceConnectionUpdated,
        EventKind::InstanceQrUpdated,
        EventKind::MessageDelivered,
        EventKind::MessageRead,
        EventKind::MessageStatusUpdated,
        EventKind::ConversationUpdated,
        EventKind::CallReceived,
        EventKind::CallMissed,
        EventKind::GroupMessageReceived,
        EventKind::GroupUpdated,
    ];

    /// The spec's "Recommended Events".
    pub const RECOMMENDED: [EventKind; 4] =
        [EventKind::MessageReceived, EventKind::MessageSent, EventKind::MessageFailed, EventKind::RecipientOptedOut];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::MessageReceived => "message.received",
            EventKind::MessageSent => "message.sent",
            EventKind::MessageFailed => "message.failed",
            EventKind::RecipientOptedOut => "recipient.opted_out",
            EventKind::InstanceConnected => "instance.connected",
            EventKind::InstanceDisconnected => "instance.disconnected",
            EventKind::InstanceConnectionUpdated => "instance.connection_updated",
            EventKind::InstanceQrUpdated => "instance.qr_updated",
            EventKind::MessageDelivered => "message.delivered",
            EventKind::MessageRead => "message.read",
            EventKind::MessageStatusUpdated => "message.status_updated",
            EventKind::ConversationUpdated => "conversation.updated",
            EventKind::CallReceived => "call.received",
            EventKind::CallMissed => "call.missed",
            EventKind::GroupMessageReceived => "group.message_received",
            EventKind::GroupUpdated => "group.updated",
        }
    }

    pub fn parse(text: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == text.trim())
    }
}

/// Whose event it is.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub account_id: i64,
    pub instance_id: &'a str,
    pub instance_name: &'a str,
}

/// Stores one event inside the caller's transaction and returns its `event_id`.
///
/// Call it inside a write transaction. Its place in the account's stream (what /api/events
/// pages by) is its id on SQLite, where transactions commit one at a time in id order; on
/// PostgreSQL and MySQL the event sequencer gives it a position once it has committed, so a
/// reader can never pass over an event that commits late (see `event_sequencer`).
pub async fn emit<C: ConnectionTrait>(
    conn: &C,
    source: Source<'_>,
    kind: EventKind,
    fields: Map<String, Value>,
) -> Result<String> {
    let mut stored = emit_many(conn, source, vec![(kind, fields)]).await?;
    stored.pop().ok_or_else(|| crate::Error::Internal("an emitted event has no id".into()))
}

/// Stores several events of one source inside the caller's transaction, in the order given.
/// Returns the `event_id`s. The same rules as [`emit`] apply.
pub async fn emit_many<C: ConnectionTrait>(
    conn: &C,
    source: Source<'_>,
    events: Vec<(EventKind, Map<String, Value>)>,
) -> Result<Vec<String>> {
    let mut stored = emit_batch(conn, vec![(source, events)]).await?;
    Ok(stored.pop().unwrap_or_default())
}

/// Stores the events of several sources inside the caller's transaction, each source's in the
/// order given, with one multi-row insert for all the events and one for their webhook
/// deliveries (whose destinations are read with one query): what a batch of inbound messages
/// or receipts of many instances costs, instead of a handful of statements per source. Returns
/// the `event_id`s per source. The same rules as [`emit`] apply.
pub async fn emit_batch<C: ConnectionTrait>(
    conn: &C,
    batches: Vec<(Source<'_>, Vec<(EventKind, Map<String, Value>)>)>,
) -> Result<Vec<Vec<String>>> {
    let now = time::now();
    let timestamp = time::rfc3339(now);
    let mut stored = Vec::with_capacity(batches.iter().map(|(_, events)| events.len()).sum());
    let mut counts = Vec::with_capacity(batches.len());
    for (source, events) in batches {
        counts.push(events.len());
        for (kind, fields) in events {
            let event_id = ids::new_id("evt");
            let mut payload = Map::new();
            payload.insert("event".into(), Value::String(kind.as_str().into()));
            payload.insert("event_id".into(), Value::String(event_id.clone()));
            payload.insert("instance_id".into(), Value::String(source.instance_id.into()));
            payload.insert("instance_name".into(), Value::String(source.instance_name.into()));
            for (key, value) in fields {
                payload.insert(key, value);
            }
            payload.insert("timestamp".into(), Value::String(timestamp.clone()));
            stored.push(crate::webhooks::destinations::NewEvent {
                account_id: source.account_id,
                instance_id: source.instance_id.into(),
                kind,
                event_id,
                payload: Value::Object(payload).to_string(),
            });
        }
    }
    if stored.is_empty() {
        return Ok(counts.into_iter().map(|_| Vec::new()).collect());
    }
    let rows: Vec<event::ActiveModel> = stored
        .iter()
        .map(|e| event::ActiveModel {
            event_id: Set(e.event_id.clone()),
            account_id: Set(e.account_id),
            instance_id: Set(e.instance_id.clone()),
            kind: Set(e.kind.as_str().into()),
            payload: Set(e.payload.clone()),
            created_at: Set(now),
            ..Default::default()
        })
        .collect();
    crate::db::bulk::insert::<event::Entity, _>(conn, &rows, crate::db::INSERT_CHUNK).await?;
    crate::webhooks::destinations::fan_out(conn, &stored).await?;
    let mut ids = stored.into_iter().map(|e| e.event_id);
    Ok(counts.into_iter().map(|n| ids.by_ref().take(n).collect()).collect())
}

/// Builds an event's own fields: `fields!{"from" => phone, "reason" => "…"}`.
#[macro_export]
macro_rules! fields {
    ($($key:literal => $value:expr),* $(,)?) => {{
        let mut map = serde_json::Map::new();
        $( map.insert($key.to_string(), serde_json::json!($value)); )*
        map
    }};
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEvent {
    /// The cursor of this event in its account's stream.
    pub cursor: i64,
    pub kind: String,
    pub payload: String,
}

/// The account's events after `cursor`, oldest first: by id on SQLite, by position elsewhere
/// (an event not yet given its position is not shown yet).
pub async fn after(db: &DatabaseConnection, account_id: i64, cursor: i64, limit: u64) -> Result<Vec<StoredEvent>> {
    crate::event_sequencer::before_reading(db, account_id).await?;
    let by_id = db.get_database_backend() == sea_orm::DatabaseBackend::Sqlite;
    let place = if by_id { event::Column::Id } else { event::Column::Position };
    Ok(event::Entity::find()
        .filter(event::Column::AccountId.eq(account_id))
        .filter(place.gt(cursor))
        .order_by_asc(place)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| StoredEvent {
            cursor: if by_id { m.id } else { m.position.unwrap_or(m.id) },
            kind: m.kind,
            payload: m.payload,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_kinds_round_trip() {
        assert_eq!(EventKind::ALL.len(), 16);
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(EventKind::parse("message.unknown"), None);
    }
}
