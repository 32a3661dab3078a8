//! Delivery receipts, many of one instance in one transaction: one read of the messages they
//! name, one UPDATE, and one multi-row insert of their events. A busy sender gets two receipts
//! per message; one transaction each would cost more than the send itself.
use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    sea_query::{Expr, LockType},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
};

use super::{status_events, MessageStatus};
use crate::{
    connectors::DeliveryStatus,
    entities::message,
    error::Result,
    events::{self, EventKind, Source},
    time,
};

/// What a receipt did: `None` when no message of the instance has its provider id (yet: a
/// receipt can overtake the write of the id), else the status it moved the message to, if any
/// (receipts never move a status backwards).
pub type Applied = Option<Option<MessageStatus>>;

/// Applies the instance's receipts in order, in one transaction.
pub async fn apply_receipts(
    db: &DatabaseConnection,
    instance_id: &str,
    receipts: &[(&str, DeliveryStatus)],
) -> Result<Vec<Applied>> {
    if receipts.is_empty() {
        return Ok(Vec::new());
    }
    let txn = crate::db::begin_write(db).await?;
    match apply_in(&txn, instance_id, receipts).await {
        Ok((applied, changed)) => {
            if changed {
                crate::db::commit_and_wake(txn).await?;
            } else {
                txn.commit().await?;
            }
            Ok(applied)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

async fn apply_in<C: ConnectionTrait>(
    txn: &C,
    instance_id: &str,
    receipts: &[(&str, DeliveryStatus)],
) -> Result<(Vec<Applied>, bool)> {
    let mut rows = rows_by_provider_id(txn, instance_id, receipts.iter().map(|(id, _)| *id)).await?;
    let mut applied = Vec::with_capacity(receipts.len());
    let mut events = Vec::new();
    let mut moved: BTreeMap<i64, MessageStatus> = BTreeMap::new();
    let mut failures: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    for (provider_message_id, status) in receipts {
        let Some(row) = rows.get_mut(*provider_message_id) else {
            applied.push(None);
            continue;
        };
        let current = MessageStatus::from_db(&row.status);
        let next = MessageStatus::from(*status);
        if !current.may_become(next) {
            applied.push(Some(None));
            continue;
        }
        // A read receipt that overtook the delivery receipt implies delivered: say both, in order.
        if next == MessageStatus::Read && current < MessageStatus::Delivered {
            events.extend(status_events(row, MessageStatus::Delivered, Some(EventKind::MessageDelivered), &[]));
        }
        let (specific, extra) = match next {
            MessageStatus::Delivered => (Some(EventKind::MessageDelivered), vec![]),
            MessageStatus::Read => (Some(EventKind::MessageRead), vec![]),
            MessageStatus::Failed => {
                let hour = row.created_at - row.created_at.rem_euclid(3600);
                *failures.entry((row.account_id, hour)).or_default() += 1;
                (Some(EventKind::MessageFailed), vec![("error", serde_json::json!("reported failed by WhatsApp"))])
            }
            _ => (None, vec![]),
        };
        events.extend(status_events(row, next, specific, &extra));
        row.status = next.as_str().to_string();
        moved.insert(row.id, next);
        applied.push(Some(Some(next)));
    }
    if moved.is_empty() {
        return Ok((applied, false));
    }
    update_statuses(txn, &moved).await?;
    for ((account_id, hour), n) in failures {
        crate::message_stats::count_failed_n(txn, account_id, hour, n).await?;
    }
    let account_id = rows.values().next().map(|r| r.account_id).unwrap_or_default();
    let instance = crate::entities::instance::Entity::find_by_id(instance_id.to_string()).one(txn).await?;
    let name = instance.map(|i| i.name).unwrap_or_default();
    let source = Source { account_id, instance_id, instance_name: &name };
    events::emit_many(txn, source, events).await?;
    Ok((applied, true))
}

/// The instance's messages with these provider ids, locked until the transaction ends
/// (PostgreSQL, MySQL; SQLite's write transaction excludes other writers).
async fn rows_by_provider_id<'a, C: ConnectionTrait>(
    txn: &C,
    instance_id: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<String, message::Model>> {
    let mut ids: Vec<&str> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in crate::db::shaped_chunks(&ids, crate::db::INSERT_CHUNK) {
        let mut query = message::Entity::find()
            .filter(message::Column::InstanceId.eq(instance_id))
            .filter(message::Column::ProviderMessageId.is_in(chunk.iter().copied()));
        if txn.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            query = query.lock(LockType::Update);
        }
        for row in query.all(txn).await? {
            if let Some(id) = row.provider_message_id.clone() {
                found.insert(id, row);
            }
        }
    }
    Ok(found)
}

/// One UPDATE for every message the receipts moved: its last status (a CASE on the id).
async fn update_statuses<C: ConnectionTrait>(txn: &C, moved: &BTreeMap<i64, MessageStatus>) -> Result<()> {
    let now = time::now();
    let moved: Vec<(i64, MessageStatus)> = moved.iter().map(|(id, s)| (*id, *s)).collect();
    for chunk in crate::db::shaped_chunks(&moved, crate::db::INSERT_CHUNK) {
        let mut cases = chunk.iter().map(|(id, s)| (Expr::col(message::Column::Id).eq(*id), Expr::val(s.as_str())));
        let Some((when, then)) = cases.next() else { continue };
        let mut case = Expr::case(when, then);
        for (when, then) in cases {
            case = case.case(when, then);
        }
        message::Entity::update_many()
            .col_expr(message::Column::Status, case.finally(Expr::col(message::Column::Status)).into())
            .col_expr(message::Column::UpdatedAt, Expr::value(now))
            .filter(message::Column::Id.is_in(chunk.iter().map(|(id, _)| *id)))
            .exec(txn)
            .await?;
    }
    Ok(())
}
