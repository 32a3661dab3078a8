//! Status changes of many messages in one transaction: a read of their rows, one UPDATE per
//! kind of change, the failure counts, and one multi-row insert of the events of every source.
use std::collections::{BTreeMap, HashMap, HashSet};

use sea_orm::{
    sea_query::{Expr, LockType},
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
};

use super::{status_events, MessageStatus};
use crate::{
    entities::message,
    error::Result,
    events::{self, EventKind, Source},
    time,
};

/// What became of an `accepted` message.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Settlement<'a> {
    /// The provider took it, under this id.
    Sent { provider_message_id: &'a str },
    /// It did not go out (or may not have): the stable reason.
    Failed { error: &'a str },
}

/// Moves each `accepted` message on, with its events (`message.sent` or `message.failed`, then
/// `message.status_updated`), inside the caller's transaction. Answers, per item, whether this
/// call moved it: false when it had left `accepted` already (the reconciler settled it after a
/// crash), and then nothing about it changes.
pub(crate) async fn settle_many<C: ConnectionTrait>(
    conn: &C,
    items: &[(i64, Source<'_>, Settlement<'_>)],
) -> Result<Vec<bool>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let rows = accepted_rows(conn, items.iter().map(|(id, _, _)| *id)).await?;
    let now = time::now();
    let mut moved = vec![false; items.len()];
    let mut sent: Vec<(i64, String)> = Vec::new();
    let mut failed: Vec<(i64, String)> = Vec::new();
    let mut done = HashSet::new();
    for (index, (id, _, settlement)) in items.iter().enumerate() {
        if !rows.contains_key(id) || !done.insert(*id) {
            continue;
        }
        moved[index] = true;
        match settlement {
            Settlement::Sent { provider_message_id } => sent.push((*id, provider_message_id.to_string())),
            Settlement::Failed { error } => failed.push((*id, error.chars().take(255).collect())),
        }
    }
    update_status(conn, MessageStatus::Sent, message::Column::ProviderMessageId, &sent, now).await?;
    update_status(conn, MessageStatus::Failed, message::Column::Error, &failed, now).await?;

    let mut failures: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    // Events by source, each source's in the order of the items.
    let mut by_source: Vec<(Source<'_>, Vec<(EventKind, serde_json::Map<String, serde_json::Value>)>)> = Vec::new();
    for (index, (id, source, settlement)) in items.iter().enumerate() {
        if !moved[index] {
            continue;
        }
        let row = &rows[id];
        let events = match settlement {
            Settlement::Sent { .. } => status_events(row, MessageStatus::Sent, Some(EventKind::MessageSent), &[]),
            Settlement::Failed { error } => {
                let hour = row.created_at - row.created_at.rem_euclid(3600);
                *failures.entry((row.account_id, hour)).or_default() += 1;
                let error: String = error.chars().take(255).collect();
                let extra = [("error", serde_json::json!(error))];
                status_events(row, MessageStatus::Failed, Some(EventKind::MessageFailed), &extra)
            }
        };
        let same = |s: &Source<'_>| s.account_id == source.account_id && s.instance_id == source.instance_id;
        match by_source.iter_mut().find(|(s, _)| same(s)) {
            Some((_, list)) => list.extend(events),
            None => by_source.push((*source, events)),
        }
    }
    for ((account_id, hour), n) in failures {
        crate::message_stats::count_failed_n(conn, account_id, hour, n).await?;
    }
    events::emit_batch(conn, by_source).await?;
    Ok(moved)
}

/// The rows among `ids` still `accepted`, locked until the transaction ends (PostgreSQL, MySQL).
async fn accepted_rows<C: ConnectionTrait>(
    conn: &C,
    ids: impl Iterator<Item = i64>,
) -> Result<HashMap<i64, message::Model>> {
    let ids: Vec<i64> = ids.collect();
    let mut found = HashMap::with_capacity(ids.len());
    for condition in crate::db::bulk::one_of(conn.get_database_backend(), message::Column::Id, &ids) {
        let mut query = message::Entity::find()
            .filter(condition)
            .filter(message::Column::Status.eq(MessageStatus::Accepted.as_str()));
        if conn.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            query = query.lock(LockType::Update);
        }
        found.extend(query.all(conn).await?.into_iter().map(|row| (row.id, row)));
    }
    Ok(found)
}

/// One UPDATE for many messages: `status`, and `column` set per message (a CASE on the id).
async fn update_status<C: ConnectionTrait>(
    conn: &C,
    status: MessageStatus,
    column: message::Column,
    values: &[(i64, String)],
    now: i64,
) -> Result<()> {
    if values.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // One statement joined to the values as arrays, whatever their number.
        let (ids, values): (Vec<i64>, Vec<String>) = values.iter().cloned().unzip();
        let sql = format!(
            "UPDATE messages AS m SET status = $1, \"{}\" = v.value, updated_at = $2 \
             FROM unnest($3::bigint[], $4::text[]) AS v(id, value) WHERE m.id = v.id AND m.status = $5",
            sea_orm::IdenStatic::as_str(&column)
        );
        let values =
            [status.as_str().into(), now.into(), ids.into(), values.into(), MessageStatus::Accepted.as_str().into()];
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values))
            .await?;
        return Ok(());
    }
    for chunk in crate::db::shaped_chunks(&values, crate::db::INSERT_CHUNK) {
        let mut cases =
            chunk.iter().map(|(id, value)| (Expr::col(message::Column::Id).eq(*id), Expr::val(value.clone())));
        let Some((first_when, first_then)) = cases.next() else { continue };
        let mut case = Expr::case(first_when, first_then);
        for (when, then) in cases {
            case = case.case(when, then);
        }
        message::Entity::update_many()
            .col_expr(message::Column::Status, Expr::value(status.as_str()))
            .col_expr(column, case.finally(Expr::col(column)).into())
            .col_expr(message::Column::UpdatedAt, Expr::value(now))
            .filter(message::Column::Id.is_in(chunk.iter().map(|(id, _)| *id)))
            .filter(message::Column::Status.eq(MessageStatus::Accepted.as_str()))
            .exec(conn)
            .await?;
    }
    Ok(())
}
