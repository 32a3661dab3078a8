//! One transaction for a batch of inbound messages of one instance: the rows, the opt-outs, the
//! conversation windows and every event, with a handful of statements for the whole batch
//! instead of a handful per message.
use std::collections::{HashMap, HashSet};

use sea_orm::{sea_query::OnConflict, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};
use serde_json::{json, Map, Value};

use super::{kind_name, sender_phone, Received, OPT_OUT_REASON};
use crate::{
    connectors::InboundMessage,
    entities::{conversation, inbound_message},
    error::Result,
    events::{emit_many, EventKind, Source},
    fields,
    instances::Instance,
    optout,
    send::phone::Phone,
    suppressions, time,
};

/// The stored form of a provider's message id (the column holds 128 characters).
fn stored_id(message: &InboundMessage) -> String {
    message.provider_message_id.chars().take(128).collect()
}

/// Writes the batch inside `txn` and answers, per message in order, whether it was new.
pub(super) async fn store<C: ConnectionTrait>(
    txn: &C,
    instance: &Instance,
    messages: &[&InboundMessage],
) -> Result<Vec<Received>> {
    if txn.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        // Taken before looking for earlier copies, so two writers of this instance (another
        // server during a hand-over) cannot both find a message new. The instance's row, not the
        // account's: an account's other instances store their batches at the same time.
        crate::entities::instance::Entity::find_by_id(instance.id.clone()).lock_exclusive().one(txn).await?;
    }
    let ids: Vec<String> = messages.iter().map(|m| stored_id(m)).collect();
    let earlier = stored_before(txn, &instance.id, &ids).await?;

    // Which messages are new, and what each answer is; a message twice in the batch counts once.
    let mut fresh: Vec<(usize, Option<Phone>, bool)> = Vec::new();
    let mut answers: Vec<Option<Received>> = vec![None; messages.len()];
    let mut first_in_batch: HashMap<&str, usize> = HashMap::new();
    for (index, message) in messages.iter().enumerate() {
        let id = ids[index].as_str();
        if let Some(opted_out) = earlier.get(id) {
            answers[index] = Some(Received { opted_out: *opted_out, new: false });
            continue;
        }
        if let Some(first) = first_in_batch.get(id) {
            let opted_out = fresh.iter().find(|(i, _, _)| i == first).is_some_and(|(_, _, o)| *o);
            answers[index] = Some(Received { opted_out, new: false });
            continue;
        }
        first_in_batch.insert(id, index);
        let phone = sender_phone(&message.from);
        let is_group = message.group_id.is_some();
        let opted_out = !is_group && phone.is_some() && optout::is_opt_out(message.text.as_deref().unwrap_or_default());
        answers[index] = Some(Received { opted_out, new: true });
        fresh.push((index, phone, opted_out));
    }
    if fresh.is_empty() {
        return Ok(answers.into_iter().flatten().collect());
    }

    let now = time::now();
    let rows: Vec<inbound_message::ActiveModel> = fresh
        .iter()
        .map(|(index, phone, opted_out)| {
            let message = messages[*index];
            let media = message.media.as_ref();
            inbound_message::ActiveModel {
                account_id: Set(instance.account_id),
                instance_id: Set(instance.id.clone()),
                provider_message_id: Set(ids[*index].clone()),
                from_phone: Set(phone.as_ref().map(|p| p.as_str().to_string())),
                from_address: Set(message.from.address.chars().take(128).collect()),
                group_id: Set(message.group_id.as_ref().map(|g| g.chars().take(128).collect())),
                kind: Set(kind_name(media.map(|m| m.kind)).into()),
                body: Set(message.text.clone().unwrap_or_default()),
                media_mime_type: Set(media.map(|m| m.mime_type.clone())),
                media_file_name: Set(media.and_then(|m| m.file_name.clone())),
                media_bytes: Set(media.and_then(|m| m.size_bytes).and_then(|b| i64::try_from(b).ok())),
                opt_out: Set(*opted_out),
                sent_at: Set(message.sent_at),
                received_at: Set(now),
                ..Default::default()
            }
        })
        .collect();
    for chunk in crate::db::shaped_chunks(&rows, crate::db::INSERT_CHUNK) {
        inbound_message::Entity::insert_many(chunk.to_vec()).exec_without_returning(txn).await?;
    }

    let mut events = Vec::with_capacity(fresh.len() * 2);
    let mut windows: Vec<&Phone> = Vec::new();
    let mut window_seen: HashSet<&str> = HashSet::new();
    for (index, phone, opted_out) in &fresh {
        let message = messages[*index];
        let text = message.text.clone().unwrap_or_default();
        events.push(received_event(message, phone.as_ref(), &text));
        let (Some(phone), None) = (phone, &message.group_id) else { continue };
        events.push((
            EventKind::ConversationUpdated,
            fields! {
                "phone" => phone.as_str(),
                "last_inbound_at" => time::rfc3339(now),
            },
        ));
        if window_seen.insert(phone.as_str()) {
            windows.push(phone);
        }
        // Only a new suppression is news; repeated STOPs change nothing.
        if *opted_out
            && suppressions::add_in(txn, instance.account_id, phone, OPT_OUT_REASON, "opt_out", "recipient").await?
        {
            events.push((
                EventKind::RecipientOptedOut,
                fields! {
                    "from" => phone.as_str(),
                    "reason" => OPT_OUT_REASON,
                    "message_text" => text,
                },
            ));
        }
    }
    touch_conversations(txn, instance, &windows, now).await?;
    let source = Source { account_id: instance.account_id, instance_id: &instance.id, instance_name: &instance.name };
    emit_many(txn, source, events).await?;
    Ok(answers.into_iter().flatten().collect())
}

/// The ids among `ids` this instance already stored, with whether each was an opt-out.
async fn stored_before<C: ConnectionTrait>(
    txn: &C,
    instance_id: &str,
    ids: &[String],
) -> Result<HashMap<String, bool>> {
    let mut found = HashMap::new();
    for chunk in crate::db::shaped_chunks(&ids, crate::db::INSERT_CHUNK) {
        let rows: Vec<(String, bool)> = inbound_message::Entity::find()
            .select_only()
            .column(inbound_message::Column::ProviderMessageId)
            .column(inbound_message::Column::OptOut)
            .filter(inbound_message::Column::InstanceId.eq(instance_id))
            .filter(inbound_message::Column::ProviderMessageId.is_in(chunk.iter().map(String::as_str)))
            .into_tuple()
            .all(txn)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

fn received_event(message: &InboundMessage, phone: Option<&Phone>, text: &str) -> (EventKind, Map<String, Value>) {
    let media = message.media.as_ref();
    let mut fields = fields! {
        "message_id" => message.provider_message_id,
        "from" => phone.map(|p| p.as_str()),
        "from_address" => message.from.address,
        "type" => kind_name(media.map(|m| m.kind)),
        "text" => text,
        "sent_at" => time::rfc3339(message.sent_at),
    };
    if let Some(m) = media {
        fields.insert("mime_type".into(), json!(m.mime_type));
        fields.insert("file_name".into(), json!(m.file_name));
        fields.insert("media_size".into(), json!(m.size_bytes));
    }
    match &message.group_id {
        Some(group) => {
            fields.insert("group_id".into(), json!(group));
            (EventKind::GroupMessageReceived, fields)
        }
        None => (EventKind::MessageReceived, fields),
    }
}

/// Moves the conversation window of each phone (each once: PostgreSQL refuses a multi-row
/// upsert that touches one row twice).
async fn touch_conversations<C: ConnectionTrait>(
    conn: &C,
    instance: &Instance,
    phones: &[&Phone],
    at: i64,
) -> Result<()> {
    for chunk in crate::db::shaped_chunks(&phones, crate::db::INSERT_CHUNK) {
        let rows = chunk.iter().map(|phone| conversation::ActiveModel {
            instance_id: Set(instance.id.clone()),
            phone: Set(phone.as_str().into()),
            account_id: Set(instance.account_id),
            last_inbound_at: Set(at),
        });
        conversation::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([conversation::Column::InstanceId, conversation::Column::Phone])
                    .update_column(conversation::Column::LastInboundAt)
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}
