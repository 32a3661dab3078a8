//! WhatsApp instances: one connected number each, owned by one account. Every lookup that a
//! customer can reach takes the account id, so another account's instance is `NotFound`.
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{
    entities::{instance, instance_status_change},
    error::{Error, Result},
    ids, time,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// Not linked to a phone yet (or logged out): the connect tab offers a QR code.
    Unlinked,
    Connected,
    /// Linked, but the session is down (disconnected by the customer or by the network).
    Disconnected,
}

impl InstanceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::Unlinked => "unlinked",
            InstanceStatus::Connected => "connected",
            InstanceStatus::Disconnected => "disconnected",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            InstanceStatus::Unlinked => "Not linked",
            InstanceStatus::Connected => "Connected",
            InstanceStatus::Disconnected => "Disconnected",
        }
    }

    pub fn from_db(text: &str) -> InstanceStatus {
        match text {
            "connected" => InstanceStatus::Connected,
            "disconnected" => InstanceStatus::Disconnected,
            _ => InstanceStatus::Unlinked,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub id: String,
    pub account_id: i64,
    pub name: String,
    pub connector: String,
    pub status: InstanceStatus,
    pub linked_phone: Option<String>,
    /// Paused by the customer from the settings tab.
    pub paused: bool,
    /// Paused by the gateway or an operator for responsible-messaging review; only an operator
    /// lifts it.
    pub review_paused: bool,
    pub review_reason: Option<String>,
    pub review_paused_at: Option<i64>,
    /// The operator's note from the last review (kept after a resume, replaced by the next), so
    /// the customer reads why an instance stays paused or what to watch after it was resumed.
    pub review_note: Option<String>,
    pub review_note_at: Option<i64>,
    /// Set when WhatsApp itself suspended or ended the link (a temporary ban, a forced logout);
    /// cleared when the instance connects again.
    pub connection_alert: Option<String>,
    pub connection_alert_at: Option<i64>,
    pub created_at: i64,
    pub status_changed_at: i64,
}

impl From<instance::Model> for Instance {
    fn from(m: instance::Model) -> Self {
        Instance {
            status: InstanceStatus::from_db(&m.status),
            id: m.id,
            account_id: m.account_id,
            name: m.name,
            connector: m.connector,
            linked_phone: m.linked_phone,
            paused: m.paused,
            review_paused: m.review_paused,
            review_reason: m.review_reason,
            review_paused_at: m.review_paused_at,
            review_note: m.review_note,
            review_note_at: m.review_note_at,
            connection_alert: m.connection_alert,
            connection_alert_at: m.connection_alert_at,
            created_at: m.created_at,
            status_changed_at: m.status_changed_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    pub status: InstanceStatus,
    pub detail: Option<String>,
    pub changed_at: i64,
}

pub fn parse_name(text: &str) -> Result<String> {
    crate::names::display_name(text, "Give the instance a name, such as \"Support line\".", "Instance names")
}

pub async fn create(db: &DatabaseConnection, account_id: i64, name: &str, connector: &str) -> Result<Instance> {
    create_capped(db, account_id, name, connector, None).await
}

/// Creates an instance unless the account already holds `cap` of them (see `caps`).
pub async fn create_capped(
    db: &DatabaseConnection,
    account_id: i64,
    name: &str,
    connector: &str,
    cap: Option<u64>,
) -> Result<Instance> {
    let name = parse_name(name)?;
    let now = time::now();
    let id = ids::new_id("inst");
    let txn = crate::db::begin_write(db).await?;
    if let Some(cap) = cap {
        crate::caps::check(&txn, account_id, crate::caps::Capped::Instances, cap).await?;
    }
    let model = instance::ActiveModel {
        id: Set(id.clone()),
        account_id: Set(account_id),
        name: Set(name),
        connector: Set(connector.to_string()),
        status: Set(InstanceStatus::Unlinked.as_str().into()),
        linked_phone: Set(None),
        paused: Set(false),
        created_at: Set(now),
        status_changed_at: Set(now),
        review_paused: Set(false),
        review_reason: Set(None),
        review_paused_at: Set(None),
        connection_alert: Set(None),
        connection_alert_at: Set(None),
        review_note: Set(None),
        review_note_at: Set(None),
    }
    .insert(&txn)
    .await?;
    insert_change(&txn, &id, InstanceStatus::Unlinked, Some("created"), now).await?;
    txn.commit().await?;
    Ok(model.into())
}

pub async fn list(db: &DatabaseConnection, account_id: i64) -> Result<Vec<Instance>> {
    Ok(instance::Entity::find()
        .filter(instance::Column::AccountId.eq(account_id))
        .order_by_asc(instance::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Instance::from)
        .collect())
}

/// The account's instance with this id, or `NotFound` (also for another account's instance).
pub async fn find(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<Instance> {
    if !ids::is_id("inst", id) {
        return Err(Error::NotFound);
    }
    instance::Entity::find_by_id(id.to_string())
        .filter(instance::Column::AccountId.eq(account_id))
        .one(db)
        .await?
        .map(Instance::from)
        .ok_or(Error::NotFound)
}

/// For connectors and workers, which act for the instance itself rather than for a customer.
pub async fn find_for_connector(db: &DatabaseConnection, id: &str) -> Result<Option<Instance>> {
    Ok(instance::Entity::find_by_id(id.to_string()).one(db).await?.map(Instance::from))
}

/// Instances a starting server should bring back up (linked ones).
pub async fn list_linked(db: &DatabaseConnection) -> Result<Vec<Instance>> {
    Ok(instance::Entity::find()
        .filter(instance::Column::Status.ne(InstanceStatus::Unlinked.as_str()))
        .all(db)
        .await?
        .into_iter()
        .map(Instance::from)
        .collect())
}

pub async fn rename(db: &DatabaseConnection, account_id: i64, id: &str, name: &str) -> Result<Instance> {
    let name = parse_name(name)?;
    let current = find(db, account_id, id).await?;
    let mut active: instance::ActiveModel = instance::ActiveModel { id: Set(current.id), ..Default::default() };
    active.name = Set(name);
    update_cached(db, active).await
}

pub async fn set_paused(db: &DatabaseConnection, account_id: i64, id: &str, paused: bool) -> Result<Instance> {
    let current = find(db, account_id, id).await?;
    let mut active: instance::ActiveModel = instance::ActiveModel { id: Set(current.id), ..Default::default() };
    active.paused = Set(paused);
    update_cached(db, active).await
}

/// Writes a change that the send path keeps in memory, with the change counter.
async fn update_cached(db: &DatabaseConnection, active: instance::ActiveModel) -> Result<Instance> {
    let txn = crate::db::begin_write(db).await?;
    let updated = active.update(&txn).await?;
    crate::cache::epoch::mark(&txn).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(updated.into())
}

pub async fn delete(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<()> {
    let current = find(db, account_id, id).await?;
    let txn = crate::db::begin_write(db).await?;
    instance_status_change::Entity::delete_many()
        .filter(instance_status_change::Column::InstanceId.eq(current.id.clone()))
        .exec(&txn)
        .await?;
    // Its webhook destinations go with it, and their queued deliveries are cancelled, so
    // nothing of a deleted instance is sent afterwards.
    let destinations: Vec<String> = crate::entities::webhook_destination::Entity::find()
        .filter(crate::entities::webhook_destination::Column::InstanceId.eq(current.id.clone()))
        .all(&txn)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    crate::webhooks::destinations::delete_with_deliveries(&txn, destinations).await?;
    crate::threecx::integrations::delete_for_instance(&txn, &current.id).await?;
    // Its owner row with several servers (the table is there, empty, on one server).
    let backend = sea_orm::ConnectionTrait::get_database_backend(&txn);
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => "DELETE FROM instance_owners WHERE instance_id = $1",
        _ => "DELETE FROM instance_owners WHERE instance_id = ?",
    };
    let owner_row = sea_orm::Statement::from_sql_and_values(backend, sql, vec![current.id.clone().into()]);
    sea_orm::ConnectionTrait::execute_raw(&txn, owner_row).await?;
    instance::Entity::delete_by_id(current.id).exec(&txn).await?;
    crate::cache::epoch::mark(&txn).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(())
}

/// Records a status change reported by the instance's connector, with its time, in one
/// transaction. Returns `None` when the instance is gone or the status is unchanged.
pub async fn record_status(
    db: &DatabaseConnection,
    id: &str,
    status: InstanceStatus,
    linked_phone: Option<Option<String>>,
    detail: Option<&str>,
) -> Result<Option<Instance>> {
    let txn = crate::db::begin_write(db).await?;
    // Early answers roll back at once: a dropped transaction would keep its lock until its
    // pooled connection is used again.
    let Some(current) = instance::Entity::find_by_id(id.to_string()).one(&txn).await? else {
        txn.rollback().await?;
        return Ok(None);
    };
    let phone_changes = linked_phone.as_ref().is_some_and(|p| p != &current.linked_phone);
    if current.status == status.as_str() && !phone_changes {
        txn.rollback().await?;
        return Ok(None);
    }
    let now = time::now();
    let previous = InstanceStatus::from_db(&current.status);
    let mut active: instance::ActiveModel = current.into();
    active.status = Set(status.as_str().into());
    active.status_changed_at = Set(now);
    if let Some(phone) = linked_phone {
        active.linked_phone = Set(phone);
    }
    let updated = active.update(&txn).await?;
    insert_change(&txn, id, status, detail, now).await?;
    emit_status_events(&txn, &updated, previous, status, detail).await?;
    crate::cache::epoch::mark(&txn).await?;
    crate::cache::epoch::commit(txn).await?;
    crate::event_sequencer::wake();
    crate::webhooks::wake();
    Ok(Some(updated.into()))
}

/// The end of a temporary ban WhatsApp announced for the instance, if one was recorded.
/// Read only when a live client is about to connect, so it is not part of [`Instance`].
pub async fn banned_until(db: &DatabaseConnection, id: &str) -> Result<Option<i64>> {
    use sea_orm::ConnectionTrait;
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => "SELECT banned_until FROM instances WHERE id = $1",
        _ => "SELECT banned_until FROM instances WHERE id = ?",
    };
    let row = db.query_one_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [id.into()])).await?;
    Ok(row.map(|r| r.try_get::<Option<i64>>("", "banned_until")).transpose()?.flatten())
}

/// Records (`Some`) or clears (`None`) the end of a temporary ban, so that neither a restarted
/// server nor the instance's next owner in a cluster connects before it.
pub async fn set_banned_until(db: &DatabaseConnection, id: &str, until: Option<i64>) -> Result<()> {
    use sea_orm::ConnectionTrait;
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => "UPDATE instances SET banned_until = $1 WHERE id = $2",
        _ => "UPDATE instances SET banned_until = ? WHERE id = ?",
    };
    db.execute_raw(sea_orm::Statement::from_sql_and_values(backend, sql, [until.into(), id.into()])).await?;
    Ok(())
}

/// Sets (`Some`) or clears (`None`) the instance's connection alert. Returns the instance when
/// the alert changed.
pub async fn set_connection_alert(db: &DatabaseConnection, id: &str, alert: Option<&str>) -> Result<Option<Instance>> {
    let Some(current) = instance::Entity::find_by_id(id.to_string()).one(db).await? else {
        return Ok(None);
    };
    let alert: Option<String> = alert.map(|a| a.chars().take(500).collect());
    if current.connection_alert == alert {
        return Ok(None);
    }
    let mut active: instance::ActiveModel = instance::ActiveModel { id: Set(current.id), ..Default::default() };
    active.connection_alert_at = Set(alert.as_ref().map(|_| time::now()));
    active.connection_alert = Set(alert);
    Ok(Some(update_cached(db, active).await?))
}

/// Instances of the account that carry a connection alert, for the dashboard.
pub async fn list_alerted(db: &DatabaseConnection, account_id: i64) -> Result<Vec<Instance>> {
    Ok(instance::Entity::find()
        .filter(instance::Column::AccountId.eq(account_id))
        .filter(instance::Column::ConnectionAlert.is_not_null())
        .all(db)
        .await?
        .into_iter()
        .map(Instance::from)
        .collect())
}

/// `instance.connection_updated` for every change, and `instance.connected` /
/// `instance.disconnected` when the instance comes up or goes down.
async fn emit_status_events<C: sea_orm::ConnectionTrait>(
    conn: &C,
    row: &instance::Model,
    previous: InstanceStatus,
    status: InstanceStatus,
    detail: Option<&str>,
) -> Result<()> {
    use crate::events::{emit, EventKind, Source};
    let source = Source { account_id: row.account_id, instance_id: &row.id, instance_name: &row.name };
    let fields = crate::fields! {
        "status" => status.as_str(),
        "previous_status" => previous.as_str(),
        "detail" => detail,
        "phone" => row.linked_phone,
    };
    emit(conn, source, EventKind::InstanceConnectionUpdated, fields).await?;
    match (previous, status) {
        (p, InstanceStatus::Connected) if p != InstanceStatus::Connected => {
            emit(conn, source, EventKind::InstanceConnected, crate::fields! {"phone" => row.linked_phone}).await?;
        }
        (InstanceStatus::Connected, s) if s != InstanceStatus::Connected => {
            let fields = crate::fields! {"reason" => detail, "logged_out" => s == InstanceStatus::Unlinked};
            emit(conn, source, EventKind::InstanceDisconnected, fields).await?;
        }
        _ => {}
    }
    Ok(())
}

async fn insert_change<C: sea_orm::ConnectionTrait>(
    conn: &C,
    id: &str,
    status: InstanceStatus,
    detail: Option<&str>,
    at: i64,
) -> Result<()> {
    instance_status_change::ActiveModel {
        instance_id: Set(id.to_string()),
        status: Set(status.as_str().into()),
        detail: Set(detail.map(|d| d.chars().take(255).collect())),
        changed_at: Set(at),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    Ok(())
}

pub async fn status_history(
    db: &DatabaseConnection,
    account_id: i64,
    id: &str,
    limit: u64,
) -> Result<Vec<StatusChange>> {
    let instance = find(db, account_id, id).await?;
    Ok(instance_status_change::Entity::find()
        .filter(instance_status_change::Column::InstanceId.eq(instance.id))
        .order_by_desc(instance_status_change::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|m| StatusChange {
            status: InstanceStatus::from_db(&m.status),
            detail: m.detail,
            changed_at: m.changed_at,
        })
        .collect())
}

/// Pauses an instance for responsible-messaging review (automatically or by an operator).
/// Only an operator lifts it. Returns false when it was already paused for review.
pub async fn pause_for_review(db: &DatabaseConnection, id: &str, reason: &str) -> Result<bool> {
    let txn = crate::db::begin_write(db).await?;
    let paused = pause_for_review_in(&txn, id, reason).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(paused)
}

/// [`pause_for_review`] inside the caller's write transaction (which must end with
/// `cache::epoch::commit`: the API path keeps instances in memory). A new pause clears the
/// last review's note.
pub async fn pause_for_review_in<C: ConnectionTrait>(txn: &C, id: &str, reason: &str) -> Result<bool> {
    let result = instance::Entity::update_many()
        .col_expr(instance::Column::ReviewPaused, Expr::value(true))
        .col_expr(instance::Column::ReviewReason, Expr::value(reason.chars().take(255).collect::<String>()))
        .col_expr(instance::Column::ReviewPausedAt, Expr::value(time::now()))
        .col_expr(instance::Column::ReviewNote, Expr::value(Option::<String>::None))
        .col_expr(instance::Column::ReviewNoteAt, Expr::value(Option::<i64>::None))
        .filter(instance::Column::Id.eq(id))
        .filter(instance::Column::ReviewPaused.eq(false))
        .exec(txn)
        .await?;
    crate::cache::epoch::mark(txn).await?;
    Ok(result.rows_affected == 1)
}

/// Lifts a review pause (only an operator does) inside the caller's write transaction (see [`pause_for_review_in`]),
/// leaving the operator's `note` for the customer when there is one.
pub async fn resume_from_review_in<C: ConnectionTrait>(txn: &C, id: &str, note: Option<&str>) -> Result<bool> {
    let mut update = instance::Entity::update_many()
        .col_expr(instance::Column::ReviewPaused, Expr::value(false))
        .col_expr(instance::Column::ReviewReason, Expr::value(Option::<String>::None))
        .col_expr(instance::Column::ReviewPausedAt, Expr::value(Option::<i64>::None));
    if let Some(note) = note {
        update = update
            .col_expr(instance::Column::ReviewNote, Expr::value(note.to_string()))
            .col_expr(instance::Column::ReviewNoteAt, Expr::value(time::now()));
    }
    let result =
        update.filter(instance::Column::Id.eq(id)).filter(instance::Column::ReviewPaused.eq(true)).exec(txn).await?;
    crate::cache::epoch::mark(txn).await?;
    Ok(result.rows_affected == 1)
}

/// Leaves an operator's note on an instance that stays paused for review. False when the
/// instance is not paused.
pub async fn note_review_in<C: ConnectionTrait>(txn: &C, id: &str, note: &str) -> Result<bool> {
    let result = instance::Entity::update_many()
        .col_expr(instance::Column::ReviewNote, Expr::value(note.to_string()))
        .col_expr(instance::Column::ReviewNoteAt, Expr::value(time::now()))
        .filter(instance::Column::Id.eq(id))
        .filter(instance::Column::ReviewPaused.eq(true))
        .exec(txn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Instances waiting for an operator's review, oldest first.
pub async fn list_review_paused(db: &DatabaseConnection) -> Result<Vec<Instance>> {
    Ok(instance::Entity::find()
        .filter(instance::Column::ReviewPaused.eq(true))
        .order_by_asc(instance::Column::ReviewPausedAt)
        .all(db)
        .await?
        .into_iter()
        .map(Instance::from)
        .collect())
}
