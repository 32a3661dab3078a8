//! Delivery receipts. A busy sender gets two receipts per message; one transaction each would
//! cost more than the send itself. So the receipts of many instances are applied in one
//! transaction (group commit: each instance's lane hands its run of receipts to one writer,
//! see `db::group_commit`): one read of the messages they name, one UPDATE, one read of the
//! instances' names, and one multi-row insert of the events of them all.
use std::collections::{BTreeMap, HashMap};

use sea_orm::{
    sea_query::{Expr, LockType},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, QueryFilter, QuerySelect,
};

use super::{status_events, MessageStatus};
use crate::{
    connectors::DeliveryStatus,
    db::WriteTxn,
    entities::{instance, message},
    error::Result,
    events::{self, EventKind, Source},
    time,
};

/// What a receipt did: `None` when no message of the instance has its provider id (yet: a
/// receipt can overtake the write of the id), else the status it moved the message to, if any
/// (receipts never move a status backwards).
pub type Applied = Option<Option<MessageStatus>>;

/// The receipts of one instance, in the order they came.
#[derive(Clone, Debug)]
pub(crate) struct Run {
    pub instance_id: String,
    pub receipts: Vec<(String, DeliveryStatus)>,
}

#[async_trait::async_trait]
impl crate::db::group_commit::Work for Run {
    type Answer = Vec<Applied>;
    const WAKES_WEBHOOKS: bool = true;

    async fn run(txn: &WriteTxn, runs: &[&Run]) -> Result<Vec<Vec<Applied>>> {
        Ok(apply_runs(txn, runs).await?.0)
    }
}

/// Applies the instance's receipts in order, in a transaction of their own.
pub async fn apply_receipts(
    db: &DatabaseConnection,
    instance_id: &str,
    receipts: &[(&str, DeliveryStatus)],
) -> Result<Vec<Applied>> {
    if receipts.is_empty() {
        return Ok(Vec::new());
    }
    let run = Run {
        instance_id: instance_id.to_string(),
        receipts: receipts.iter().map(|(id, status)| (id.to_string(), *status)).collect(),
    };
    let txn = crate::db::begin_write(db).await?;
    match apply_runs(&txn, &[&run]).await {
        Ok((mut applied, changed)) => {
            if changed {
                crate::db::commit_and_wake(txn).await?;
            } else {
                txn.commit().await?;
            }
            Ok(applied.pop().unwrap_or_default())
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

/// Applies each run's receipts in order inside `txn`; answers per run, and whether anything
/// changed.
async fn apply_runs<C: ConnectionTrait>(txn: &C, runs: &[&Run]) -> Result<(Vec<Vec<Applied>>, bool)> {
    let mut rows = rows_by_provider_id(txn, runs).await?;
    let mut answers = Vec::with_capacity(runs.len());
    // Events per instance, each instance's in the order of its receipts.
    let mut events: Vec<(&str, Vec<(EventKind, serde_json::Map<String, serde_json::Value>)>)> = Vec::new();
    let mut moved: BTreeMap<i64, MessageStatus> = BTreeMap::new();
    let mut failures: BTreeMap<(i64, i64), i64> = BTreeMap::new();
    let mut accounts: HashMap<&str, i64> = HashMap::new();
    for run in runs {
        let mut applied = Vec::with_capacity(run.receipts.len());
        let mut run_events = Vec::new();
        for (provider_message_id, status) in &run.receipts {
            let Some(row) = rows.get_mut(&run.instance_id).and_then(|rows| rows.get_mut(provider_message_id)) else {
                applied.push(None);
                continue;
            };
            let current = MessageStatus::from_db(&row.status);
            let next = MessageStatus::from(*status);
            if !current.may_become(next) {
                applied.push(Some(None));
                continue;
            }
            // A read receipt that overtook the delivery receipt implies delivered: say both, in
            // order.
            if next == MessageStatus::Read && current < MessageStatus::Delivered {
                run_events.extend(status_events(row, MessageStatus::Delivered, Some(EventKind::MessageDelivered), &[]));
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
            run_events.extend(status_events(row, next, specific, &extra));
            row.status = next.as_str().to_string();
            moved.insert(row.id, next);
            accounts.insert(run.instance_id.as_str(), row.account_id);
            applied.push(Some(Some(next)));
        }
        if !run_events.is_empty() {
            events.push((run.instance_id.as_str(), run_events));
        }
        answers.push(applied);
    }
    if moved.is_empty() {
        return Ok((answers, false));
    }
    update_statuses(txn, &moved).await?;
    for ((account_id, hour), n) in failures {
        crate::message_stats::count_failed_n(txn, account_id, hour, n).await?;
    }
    // Read per transaction, not kept: a rename shows in the next events.
    let instances: Vec<String> = events.iter().map(|(id, _)| id.to_string()).collect();
    let mut names: HashMap<String, String> = HashMap::new();
    for condition in crate::db::bulk::one_of(txn.get_database_backend(), instance::Column::Id, &instances) {
        let found: Vec<(String, String)> = instance::Entity::find()
            .select_only()
            .column(instance::Column::Id)
            .column(instance::Column::Name)
            .filter(condition)
            .into_tuple()
            .all(txn)
            .await?;
        names.extend(found);
    }
    let batches = events
        .into_iter()
        .map(|(instance_id, list)| {
            let source = Source {
                account_id: accounts.get(instance_id).copied().unwrap_or_default(),
                instance_id,
                instance_name: names.get(instance_id).map(String::as_str).unwrap_or_default(),
            };
            (source, list)
        })
        .collect();
    events::emit_batch(txn, batches).await?;
    Ok((answers, true))
}

/// The runs' messages by instance and provider id, locked until the transaction ends
/// (PostgreSQL, MySQL; SQLite's write transaction excludes other writers).
async fn rows_by_provider_id<C: ConnectionTrait>(
    txn: &C,
    runs: &[&Run],
) -> Result<HashMap<String, HashMap<String, message::Model>>> {
    let mut ids: Vec<String> = runs.iter().flat_map(|run| run.receipts.iter().map(|(id, _)| id.clone())).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut found: HashMap<String, HashMap<String, message::Model>> = HashMap::new();
    for condition in crate::db::bulk::one_of(txn.get_database_backend(), message::Column::ProviderMessageId, &ids) {
        // By provider id alone (it leads the index): a row of an instance not among the runs
        // (two numbers' messages sharing a provider id) is read and left alone.
        let mut query = message::Entity::find().filter(condition);
        if txn.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            query = query.lock(LockType::Update);
        }
        for row in query.all(txn).await? {
            if let Some(id) = row.provider_message_id.clone() {
                found.entry(row.instance_id.clone()).or_default().insert(id, row);
            }
        }
    }
    Ok(found)
}

/// One UPDATE for every message the receipts moved: its last status (a CASE on the id).
async fn update_statuses<C: ConnectionTrait>(txn: &C, moved: &BTreeMap<i64, MessageStatus>) -> Result<()> {
    let now = time::now();
    let moved: Vec<(i64, MessageStatus)> = moved.iter().map(|(id, s)| (*id, *s)).collect();
    if txn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // One statement joined to the statuses as arrays, whatever their number.
        let ids: Vec<i64> = moved.iter().map(|(id, _)| *id).collect();
        let statuses: Vec<String> = moved.iter().map(|(_, s)| s.as_str().to_string()).collect();
        let sql = "UPDATE messages AS m SET status = v.status, updated_at = $1 \
                   FROM unnest($2::bigint[], $3::text[]) AS v(id, status) WHERE m.id = v.id";
        let values = [now.into(), ids.into(), statuses.into()];
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(sea_orm::DatabaseBackend::Postgres, sql, values))
            .await?;
        return Ok(());
    }
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
