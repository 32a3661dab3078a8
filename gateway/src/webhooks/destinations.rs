//! Webhook destinations: a URL per instance with the events it wants, a signing secret
//! (encrypted at rest; the previous one stays valid 24 h after a rotation), and whether it is
//! enabled. URLs are checked at save time here and again at connect time by the worker.
use std::collections::HashMap;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

pub(crate) use super::cache::destinations_changed;
use super::signing;
use crate::{
    config::MasterKey,
    entities::{webhook_delivery, webhook_destination},
    error::{Error, Result},
    events::EventKind,
    ids, net_guard, secrets, time,
};

pub const ROTATION_GRACE_SECS: i64 = 24 * 3600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Destination {
    pub id: String,
    pub instance_id: String,
    pub url: String,
    pub events: Vec<EventKind>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<i64>,
    pub previous_secret_valid_until: Option<i64>,
    pub created_at: i64,
}

fn parse_events(text: &str) -> Vec<EventKind> {
    text.split(',').filter_map(EventKind::parse).collect()
}

impl From<webhook_destination::Model> for Destination {
    fn from(m: webhook_destination::Model) -> Self {
        let now = time::now();
        Destination {
            events: parse_events(&m.events),
            id: m.id,
            instance_id: m.instance_id,
            url: m.url,
            enabled: m.enabled,
            disabled_reason: m.disabled_reason,
            failing_since: m.failing_since,
            previous_secret_valid_until: m.previous_secret_expires_at.filter(|t| *t > now),
            created_at: m.created_at,
        }
    }
}

/// The setting that lets destinations on private addresses through (see `config`), named in the
/// refusal so a developer trying a localhost receiver knows what to change.
pub const PRIVATE_TARGETS_SETTING: &str = "WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS";

/// Checks a destination URL: http(s), a host, no credentials, and (unless allowed) a host that
/// resolves only to public addresses.
pub async fn check_url(text: &str, allow_private: bool) -> Result<String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|_| Error::invalid("Enter a full URL, such as https://crm.example.com/hooks/whatsapp."))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid("The URL must start with https:// (or http://)."));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid("Put no user name or password in the URL; verify our signature instead."));
    }
    let host = url.host_str().ok_or_else(|| Error::invalid("The URL has no host."))?;
    if url.as_str().len() > 2048 {
        return Err(Error::invalid("The URL is longer than 2048 characters."));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    match net_guard::resolve(net_guard::bare_host(host), port, allow_private).await {
        Ok(_) => Ok(url.to_string()),
        Err(net_guard::GuardError::Unresolvable) => Err(Error::invalid("The URL's host could not be found.")),
        Err(net_guard::GuardError::PrivateAddress) => Err(Error::invalid(format!(
            "The URL points to a private, loopback or link-local address; webhooks go to public addresses only. \
             For development, the server's operator can allow private targets with {PRIVATE_TARGETS_SETTING}=true \
             (allow_private_webhook_targets = true in the config file)."
        ))),
    }
}

pub fn parse_event_list(names: &[String]) -> Result<Vec<EventKind>> {
    let mut kinds = Vec::new();
    for name in names.iter().flat_map(|n| n.split(',')).map(str::trim).filter(|n| !n.is_empty()) {
        let kind = EventKind::parse(name).ok_or_else(|| Error::invalid(format!("Unknown event {name:?}.")))?;
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    if kinds.is_empty() {
        return Err(Error::invalid("Choose at least one event."));
    }
    Ok(kinds)
}

fn join(kinds: &[EventKind]) -> String {
    kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(",")
}

/// Creates the instance's destination for this URL, or replaces its events and enables it.
/// Returns the secret when a new destination was made (shown to the customer).
pub async fn create_or_replace(
    db: &DatabaseConnection,
    key: &MasterKey,
    account_id: i64,
    instance_id: &str,
    url: &str,
    kinds: &[EventKind],
    cap: Option<u64>,
) -> Result<(Destination, Option<String>)> {
    let existing = webhook_destination::Entity::find()
        .filter(webhook_destination::Column::AccountId.eq(account_id))
        .filter(webhook_destination::Column::InstanceId.eq(instance_id))
        .filter(webhook_destination::Column::Url.eq(url))
        .filter(webhook_destination::Column::IntegrationId.is_null())
        .one(db)
        .await?;
    if let Some(row) = existing {
        let mut active: webhook_destination::ActiveModel = row.into();
        active.events = Set(join(kinds));
        active.enabled = Set(true);
        active.disabled_reason = Set(None);
        active.failing_since = Set(None);
        let updated = active.update(db).await?;
        destinations_changed();
        return Ok((updated.into(), None));
    }
    let txn = crate::db::begin_write(db).await?;
    if let Some(cap) = cap {
        crate::caps::check(&txn, account_id, crate::caps::Capped::WebhookDestinations, cap).await?;
    }
    let (row, secret) = insert(&txn, key, NewRow { account_id, instance_id, url, kinds, integration_id: None }).await?;
    txn.commit().await?;
    Ok((row.into(), Some(secret)))
}

/// A destination to create, enabled, with a new signing secret.
pub(crate) struct NewRow<'a> {
    pub account_id: i64,
    pub instance_id: &'a str,
    pub url: &'a str,
    pub kinds: &'a [EventKind],
    /// The 3CX integration that owns it, if any.
    pub integration_id: Option<&'a str>,
}

/// Inserts a destination; returns it with its secret (to be shown once).
pub(crate) async fn insert<C: ConnectionTrait>(
    conn: &C,
    key: &MasterKey,
    new: NewRow<'_>,
) -> Result<(webhook_destination::Model, String)> {
    let secret = signing::new_secret();
    let row = webhook_destination::ActiveModel {
        id: Set(ids::new_id("whd")),
        account_id: Set(new.account_id),
        instance_id: Set(new.instance_id.into()),
        url: Set(new.url.into()),
        events: Set(join(new.kinds)),
        enabled: Set(true),
        secret: Set(secrets::encrypt(key, &secret)?),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        disabled_reason: Set(None),
        failing_since: Set(None),
        created_at: Set(time::now()),
        integration_id: Set(new.integration_id.map(str::to_string)),
    }
    .insert(conn)
    .await?;
    Ok((row, secret))
}

/// Deletes destinations and cancels their queued deliveries, inside the caller's transaction,
/// so nothing more is sent to them.
pub(crate) async fn delete_with_deliveries<C: ConnectionTrait>(conn: &C, ids: Vec<String>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    webhook_delivery::Entity::update_many()
        .col_expr(webhook_delivery::Column::Status, sea_orm::sea_query::Expr::value("cancelled"))
        .filter(webhook_delivery::Column::DestinationId.is_in(ids.clone()))
        .filter(webhook_delivery::Column::Status.eq("pending"))
        .exec(conn)
        .await?;
    webhook_destination::Entity::delete_many().filter(webhook_destination::Column::Id.is_in(ids)).exec(conn).await?;
    destinations_changed();
    Ok(())
}

pub async fn list(db: &DatabaseConnection, account_id: i64, instance_id: &str) -> Result<Vec<Destination>> {
    Ok(webhook_destination::Entity::find()
        .filter(webhook_destination::Column::AccountId.eq(account_id))
        .filter(webhook_destination::Column::InstanceId.eq(instance_id))
        // A 3CX integration's destination is managed on the 3CX page.
        .filter(webhook_destination::Column::IntegrationId.is_null())
        .order_by_asc(webhook_destination::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(Destination::from)
        .collect())
}

async fn find_row(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<webhook_destination::Model> {
    webhook_destination::Entity::find_by_id(id.to_string())
        .filter(webhook_destination::Column::AccountId.eq(account_id))
        .filter(webhook_destination::Column::IntegrationId.is_null())
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

pub async fn find(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<Destination> {
    Ok(find_row(db, account_id, id).await?.into())
}

/// The current signing secret, for the customer to copy.
pub async fn current_secret(db: &DatabaseConnection, key: &MasterKey, account_id: i64, id: &str) -> Result<String> {
    secrets::decrypt(key, &find_row(db, account_id, id).await?.secret)
}

/// A new secret; the old one keeps signing for 24 hours so receivers can switch over.
pub async fn rotate(db: &DatabaseConnection, key: &MasterKey, account_id: i64, id: &str) -> Result<String> {
    rotate_row(db, key, find_row(db, account_id, id).await?).await
}

/// Rotates the secret of a row the caller has found for its owner.
pub(crate) async fn rotate_row(
    db: &DatabaseConnection,
    key: &MasterKey,
    row: webhook_destination::Model,
) -> Result<String> {
    let secret = signing::new_secret();
    let mut active: webhook_destination::ActiveModel = row.clone().into();
    active.previous_secret = Set(Some(row.secret));
    active.previous_secret_expires_at = Set(Some(time::now() + ROTATION_GRACE_SECS));
    active.secret = Set(secrets::encrypt(key, &secret)?);
    active.update(db).await?;
    destinations_changed();
    Ok(secret)
}

pub async fn set_enabled(db: &DatabaseConnection, account_id: i64, id: &str, enabled: bool) -> Result<Destination> {
    let row = find_row(db, account_id, id).await?;
    let mut active: webhook_destination::ActiveModel = row.into();
    active.enabled = Set(enabled);
    if enabled {
        active.disabled_reason = Set(None);
        active.failing_since = Set(None);
    }
    let updated = active.update(db).await?;
    destinations_changed();
    Ok(updated.into())
}

/// Replaces the events a destination receives; its state (enabled or not) is left as it is.
pub async fn set_events(
    db: &DatabaseConnection,
    account_id: i64,
    id: &str,
    kinds: &[EventKind],
) -> Result<Destination> {
    let row = find_row(db, account_id, id).await?;
    let mut active: webhook_destination::ActiveModel = row.into();
    active.events = Set(join(kinds));
    let updated = active.update(db).await?;
    destinations_changed();
    Ok(updated.into())
}

pub async fn delete(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<()> {
    let row = find_row(db, account_id, id).await?;
    webhook_destination::Entity::delete_by_id(row.id).exec(db).await?;
    destinations_changed();
    Ok(())
}

/// An event about to be stored, as [`fan_out`] needs it.
pub(crate) struct NewEvent {
    pub account_id: i64,
    pub instance_id: String,
    pub kind: EventKind,
    pub event_id: String,
    pub payload: String,
}

/// Queues the deliveries of events (of any instances) for every enabled destination of their
/// instance that wants them: the destinations of all the instances are read with one query and
/// the deliveries written with multi-row inserts, in the events' order. A 3CX integration's
/// destination forwards only while the integration and the account's 3CX module are on.
pub(crate) async fn fan_out<C: ConnectionTrait>(conn: &C, events: &[NewEvent]) -> Result<()> {
    let mut instances: Vec<&str> = events.iter().map(|e| e.instance_id.as_str()).collect();
    instances.sort_unstable();
    instances.dedup();
    let instances: Vec<String> = instances.into_iter().map(str::to_string).collect();
    let backend = conn.get_database_backend();
    let mut destinations = Vec::new();
    for condition in crate::db::bulk::one_of(backend, webhook_destination::Column::InstanceId, &instances) {
        destinations.extend(
            webhook_destination::Entity::find()
                .filter(condition)
                .filter(webhook_destination::Column::Enabled.eq(true))
                .all(conn)
                .await?,
        );
    }
    if destinations.is_empty() {
        return Ok(());
    }
    // Per instance: (events wanted, destination id), in the order the rows came.
    let mut wanted: HashMap<String, Vec<(Vec<EventKind>, String)>> = HashMap::new();
    for destination in destinations {
        if let Some(integration_id) = &destination.integration_id {
            if !crate::threecx::integrations::forwards(conn, destination.account_id, integration_id).await? {
                continue;
            }
        }
        wanted.entry(destination.instance_id).or_default().push((parse_events(&destination.events), destination.id));
    }
    let now = time::now();
    let rows: Vec<webhook_delivery::ActiveModel> = events
        .iter()
        .flat_map(|event| {
            let targets = wanted.get(&event.instance_id).map(Vec::as_slice).unwrap_or_default();
            targets.iter().filter(|(kinds, _)| kinds.contains(&event.kind)).map(move |(_, destination_id)| {
                webhook_delivery::ActiveModel {
                    destination_id: Set(destination_id.clone()),
                    account_id: Set(event.account_id),
                    event_id: Set(event.event_id.clone()),
                    event_kind: Set(event.kind.as_str().into()),
                    payload: Set(event.payload.clone()),
                    status: Set("pending".into()),
                    attempts: Set(0),
                    next_attempt_at: Set(now),
                    locked_until: Set(0),
                    last_status_code: Set(None),
                    created_at: Set(now),
                    completed_at: Set(None),
                    ..Default::default()
                }
            })
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    crate::db::bulk::insert::<webhook_delivery::Entity, _>(conn, &rows, crate::db::INSERT_CHUNK).await?;
    super::wake::deliveries_written();
    super::wake::notify_other_processes(conn, super::wake::Notify::Throttled).await?;
    Ok(())
}

/// Queues one delivery on its own (outside any transaction: a test event) and wakes the workers.
pub async fn queue(
    db: &DatabaseConnection,
    destination_id: &str,
    account_id: i64,
    event_id: &str,
    kind: &str,
    payload: &str,
) -> Result<i64> {
    let id = insert_delivery(db, destination_id, account_id, event_id, kind, payload).await?;
    super::wake::notify_other_processes(db, super::wake::Notify::Always).await?;
    super::wake();
    Ok(id)
}

async fn insert_delivery<C: ConnectionTrait>(
    conn: &C,
    destination_id: &str,
    account_id: i64,
    event_id: &str,
    kind: &str,
    payload: &str,
) -> Result<i64> {
    let now = time::now();
    let row = webhook_delivery::ActiveModel {
        destination_id: Set(destination_id.into()),
        account_id: Set(account_id),
        event_id: Set(event_id.into()),
        event_kind: Set(kind.into()),
        payload: Set(payload.into()),
        status: Set("pending".into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        locked_until: Set(0),
        last_status_code: Set(None),
        created_at: Set(now),
        completed_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    super::wake::deliveries_written();
    Ok(row.id)
}

/// Sends an event again to one destination (the customer's "replay").
pub async fn replay(db: &DatabaseConnection, account_id: i64, destination_id: &str, event_id: &str) -> Result<i64> {
    let destination = find_row(db, account_id, destination_id).await?;
    let event = crate::entities::event::Entity::find()
        .filter(crate::entities::event::Column::EventId.eq(event_id))
        .filter(crate::entities::event::Column::AccountId.eq(account_id))
        // Only the destination's own instance's events: another instance's messages must not
        // go out signed with this destination's secret.
        .filter(crate::entities::event::Column::InstanceId.eq(destination.instance_id.as_str()))
        .one(db)
        .await?
        .ok_or(Error::NotFound)?;
    queue(db, &destination.id, account_id, &event.event_id, &event.kind, &event.payload).await
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRow {
    pub id: i64,
    pub event_id: String,
    pub event_kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub created_at: i64,
    pub next_attempt_at: i64,
    /// The JSON body sent (the customer's own event data).
    pub payload: String,
    /// The last attempt's answer: the start of the receiver's response body, or why there was
    /// none (a timeout, a refused connection).
    pub last_response: Option<String>,
    pub last_error: Option<String>,
}

/// The destination's deliveries, newest first: the most recent, or those older than the
/// delivery `before` (keyset paging on the (destination, id) index).
pub async fn recent_deliveries(
    db: &DatabaseConnection,
    account_id: i64,
    destination_id: &str,
    limit: u64,
    before: Option<i64>,
) -> Result<Vec<DeliveryRow>> {
    let destination = find_row(db, account_id, destination_id).await?;
    deliveries_of(db, &destination.id, limit, before).await
}

/// Deliveries of a destination the caller has found for its owner, newest first.
pub(crate) async fn deliveries_of(
    db: &DatabaseConnection,
    destination_id: &str,
    limit: u64,
    before: Option<i64>,
) -> Result<Vec<DeliveryRow>> {
    use sea_orm::QuerySelect;
    let mut query = webhook_delivery::Entity::find().filter(webhook_delivery::Column::DestinationId.eq(destination_id));
    if let Some(before) = before {
        query = query.filter(webhook_delivery::Column::Id.lt(before));
    }
    let rows = crate::log_page::ranged(db, query, "idx_webhook_deliveries_destination")
        .order_by_desc(webhook_delivery::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    // Each delivery's newest attempt, in one query over the page's deliveries.
    let ids: Vec<i64> = rows.iter().map(|d| d.id).collect();
    let mut last: std::collections::HashMap<i64, crate::entities::webhook_attempt::Model> =
        std::collections::HashMap::new();
    if !ids.is_empty() {
        use crate::entities::webhook_attempt;
        for attempt in webhook_attempt::Entity::find()
            .filter(webhook_attempt::Column::DeliveryId.is_in(ids))
            .order_by_asc(webhook_attempt::Column::Id)
            .all(db)
            .await?
        {
            last.insert(attempt.delivery_id, attempt);
        }
    }
    Ok(rows
        .into_iter()
        .map(|d| {
            let attempt = last.remove(&d.id);
            DeliveryRow {
                id: d.id,
                event_id: d.event_id,
                event_kind: d.event_kind,
                status: d.status,
                attempts: d.attempts,
                last_status_code: d.last_status_code,
                created_at: d.created_at,
                next_attempt_at: d.next_attempt_at,
                payload: d.payload,
                last_response: attempt.as_ref().map(|a| a.response_excerpt.clone()).filter(|r| !r.is_empty()),
                last_error: attempt.and_then(|a| a.error),
            }
        })
        .collect())
}
