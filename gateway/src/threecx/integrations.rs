//! 3CX integrations: one per instance, owned by an account. The webhook secret is kept only as
//! a hash; the HMAC secret is encrypted with the master key (it is needed to verify). Every
//! finder takes the owner's account id, except `find_for_webhook`, whose caller proves itself
//! with the secret.
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};

use super::{
    allowlist::IpAllowlist,
    signature,
    templates::{CallEvent, Template, Templates},
};
use crate::{
    accounts::Account,
    config::MasterKey,
    entities::{threecx_cooldown, threecx_integration, threecx_request},
    error::{Error, Result},
    instances, secrets, time,
};

pub const DEFAULT_WINDOW_HOURS: i32 = 24;
pub const MAX_WINDOW_HOURS: i32 = 168;
pub const MAX_BUSINESS_NAME_CHARS: usize = 120;
const MIN_HMAC_SECRET_CHARS: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Integration {
    pub id: String,
    pub account_id: i64,
    pub instance_id: String,
    pub enabled: bool,
    pub outbound_enabled: bool,
    pub call_event_enabled: bool,
    pub strict_window: bool,
    pub window_hours: i32,
    pub ip_allowlist: IpAllowlist,
    pub hmac_required: bool,
    pub has_hmac_secret: bool,
    /// The first characters of the webhook secret.
    pub secret_hint: String,
    pub business_name: String,
    pub destination_id: Option<String>,
    pub templates: Templates,
    pub created_at: i64,
    secret_hash: String,
    sealed_hmac_secret: Option<String>,
}

impl From<threecx_integration::Model> for Integration {
    fn from(m: threecx_integration::Model) -> Self {
        Integration {
            // Stored lists were validated when saved; a row edited by hand loses bad entries
            // rather than opening the integration to everyone.
            ip_allowlist: IpAllowlist::parse(&m.ip_allowlist).unwrap_or_else(|_| {
                tracing::error!(integration_id = %m.id, "stored 3CX IP allowlist is unreadable");
                IpAllowlist::parse("0.0.0.0/32").unwrap_or_default()
            }),
            has_hmac_secret: m.hmac_secret.is_some(),
            templates: Templates::from_json(&m.templates),
            id: m.id,
            account_id: m.account_id,
            instance_id: m.instance_id,
            enabled: m.enabled,
            outbound_enabled: m.outbound_enabled,
            call_event_enabled: m.call_event_enabled,
            strict_window: m.strict_window,
            window_hours: m.window_hours,
            hmac_required: m.hmac_required,
            secret_hint: m.secret_hint,
            business_name: m.business_name,
            destination_id: m.destination_id,
            created_at: m.created_at,
            secret_hash: m.secret_hash,
            sealed_hmac_secret: m.hmac_secret,
        }
    }
}

impl Integration {
    pub fn secret_matches(&self, presented: &str) -> bool {
        signature::secret_matches(presented, &self.secret_hash)
    }

    pub fn hmac_secret(&self, key: &MasterKey) -> Result<Option<String>> {
        self.sealed_hmac_secret.as_deref().map(|s| secrets::decrypt(key, s)).transpose()
    }

    pub fn window_secs(&self) -> i64 {
        i64::from(self.window_hours) * 3600
    }
}

/// Secrets made now, shown to the customer once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSecrets {
    pub webhook_secret: String,
    pub hmac_secret: Option<String>,
}

pub struct NewIntegration {
    pub instance_id: String,
    pub business_name: String,
    pub ip_allowlist: IpAllowlist,
    /// Some: HMAC signing is required with this secret (given, or generated when empty).
    pub hmac_secret: Option<String>,
}

fn check_business_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::invalid("Enter the business name customers know you by (templates use it)."));
    }
    if name.chars().count() > MAX_BUSINESS_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(Error::invalid(format!(
            "The business name is one line of at most {MAX_BUSINESS_NAME_CHARS} characters."
        )));
    }
    Ok(name.to_string())
}

fn check_hmac_secret(given: &str) -> Result<String> {
    let given = given.trim();
    if given.is_empty() {
        return Ok(signature::new_hmac_secret());
    }
    if given.chars().count() < MIN_HMAC_SECRET_CHARS
        || given.len() > 256
        || !given.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Error::invalid(format!(
            "An HMAC secret is {MIN_HMAC_SECRET_CHARS} to 256 visible ASCII characters (leave it empty to generate one)."
        )));
    }
    Ok(given.to_string())
}

pub fn module_off() -> Error {
    Error::Refused("3CX Middleware is not enabled for this account. Ask your operator to enable it.".into())
}

/// Creates an integration with outbound and call events on, strict window mode on (24 h) and
/// every template enabled with its default text.
pub async fn create(
    db: &DatabaseConnection,
    key: &MasterKey,
    account: &Account,
    new: NewIntegration,
) -> Result<(Integration, NewSecrets)> {
    if !account.threecx_enabled {
        return Err(module_off());
    }
    let instance = match instances::find(db, account.id, new.instance_id.trim()).await {
        Err(Error::NotFound) => return Err(Error::invalid("No instance of this account has that id.")),
        other => other?,
    };
    let business_name = check_business_name(&new.business_name)?;
    let taken = threecx_integration::Entity::find()
        .filter(threecx_integration::Column::InstanceId.eq(instance.id.as_str()))
        .one(db)
        .await?;
    if taken.is_some() {
        return Err(Error::invalid("This instance already has a 3CX integration; edit that one."));
    }
    let hmac_secret = new.hmac_secret.as_deref().map(check_hmac_secret).transpose()?;
    let webhook_secret = signature::new_webhook_secret();
    let now = time::now();
    let row = threecx_integration::ActiveModel {
        id: Set(signature::new_integration_id()),
        account_id: Set(account.id),
        instance_id: Set(instance.id.clone()),
        enabled: Set(true),
        outbound_enabled: Set(true),
        call_event_enabled: Set(true),
        strict_window: Set(true),
        window_hours: Set(DEFAULT_WINDOW_HOURS),
        ip_allowlist: Set(new.ip_allowlist.to_text()),
        hmac_required: Set(hmac_secret.is_some()),
        hmac_secret: Set(hmac_secret.as_deref().map(|s| secrets::encrypt(key, s)).transpose()?),
        secret_hash: Set(signature::hash_secret(&webhook_secret)),
        secret_hint: Set(signature::hint(&webhook_secret)),
        business_name: Set(business_name),
        destination_id: Set(None),
        templates: Set(Templates::defaults().to_json()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await;
    let row = match row {
        Ok(row) => row,
        // The unique index on the instance: another create won the race.
        Err(_)
            if threecx_integration::Entity::find()
                .filter(threecx_integration::Column::InstanceId.eq(instance.id.as_str()))
                .one(db)
                .await?
                .is_some() =>
        {
            return Err(Error::invalid("This instance already has a 3CX integration; edit that one."));
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(account_id = account.id, integration_id = %row.id, instance_id = %instance.id, "3CX integration created");
    Ok((row.into(), NewSecrets { webhook_secret, hmac_secret }))
}

pub async fn list(db: &DatabaseConnection, account_id: i64) -> Result<Vec<Integration>> {
    Ok(threecx_integration::Entity::find()
        .filter(threecx_integration::Column::AccountId.eq(account_id))
        .order_by_asc(threecx_integration::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(Integration::from)
        .collect())
}

async fn find_row(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<threecx_integration::Model> {
    threecx_integration::Entity::find_by_id(id.to_string())
        .filter(threecx_integration::Column::AccountId.eq(account_id))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// The row inside a write transaction, locked on PostgreSQL/MySQL (SQLite's write transaction
/// already excludes other writers), for read-modify-write changes.
pub(crate) async fn locked_row<C: ConnectionTrait>(
    conn: &C,
    account_id: i64,
    id: &str,
) -> Result<threecx_integration::Model> {
    let mut query = threecx_integration::Entity::find_by_id(id.to_string())
        .filter(threecx_integration::Column::AccountId.eq(account_id));
    if conn.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
        query = query.lock_exclusive();
    }
    query.one(conn).await?.ok_or(Error::NotFound)
}

pub async fn find(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<Integration> {
    Ok(find_row(db, account_id, id).await?.into())
}

/// For the webhook endpoint: the integration named in the URL, whoever owns it. The caller must
/// check the secret before acting on it.
pub async fn find_for_webhook(db: &DatabaseConnection, id: &str) -> Result<Option<Integration>> {
    if !id.starts_with("tcx_") || id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Ok(None);
    }
    Ok(threecx_integration::Entity::find_by_id(id.to_string()).one(db).await?.map(Integration::from))
}

/// The switches and fields of the settings form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    pub outbound_enabled: bool,
    pub call_event_enabled: bool,
    pub strict_window: bool,
    pub window_hours: i32,
    pub ip_allowlist: IpAllowlist,
    pub hmac_required: bool,
    pub business_name: String,
}

/// Saves the settings. Requiring HMAC without a secret generates one, returned to be shown once.
pub async fn update_settings(
    db: &DatabaseConnection,
    key: &MasterKey,
    account_id: i64,
    id: &str,
    settings: Settings,
) -> Result<Option<String>> {
    let row = find_row(db, account_id, id).await?;
    if !(1..=MAX_WINDOW_HOURS).contains(&settings.window_hours) {
        return Err(Error::invalid(format!("The conversation window is 1 to {MAX_WINDOW_HOURS} hours.")));
    }
    let business_name = check_business_name(&settings.business_name)?;
    let mut new_hmac = None;
    let mut active: threecx_integration::ActiveModel = row.clone().into();
    if settings.hmac_required && row.hmac_secret.is_none() {
        let secret = signature::new_hmac_secret();
        active.hmac_secret = Set(Some(secrets::encrypt(key, &secret)?));
        new_hmac = Some(secret);
    }
    active.enabled = Set(settings.enabled);
    active.outbound_enabled = Set(settings.outbound_enabled);
    active.call_event_enabled = Set(settings.call_event_enabled);
    active.strict_window = Set(settings.strict_window);
    active.window_hours = Set(settings.window_hours);
    active.ip_allowlist = Set(settings.ip_allowlist.to_text());
    active.hmac_required = Set(settings.hmac_required);
    active.business_name = Set(business_name);
    active.updated_at = Set(time::now());
    active.update(db).await?;
    Ok(new_hmac)
}

/// A new webhook secret; the old one stops working at once.
pub async fn rotate_secret(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<String> {
    let row = find_row(db, account_id, id).await?;
    let secret = signature::new_webhook_secret();
    let mut active: threecx_integration::ActiveModel = row.into();
    active.secret_hash = Set(signature::hash_secret(&secret));
    active.secret_hint = Set(signature::hint(&secret));
    active.updated_at = Set(time::now());
    active.update(db).await?;
    Ok(secret)
}

/// Sets the HMAC secret: the given one, or a generated one when `given` is empty.
pub async fn set_hmac_secret(
    db: &DatabaseConnection,
    key: &MasterKey,
    account_id: i64,
    id: &str,
    given: &str,
) -> Result<String> {
    let row = find_row(db, account_id, id).await?;
    let secret = check_hmac_secret(given)?;
    let mut active: threecx_integration::ActiveModel = row.into();
    active.hmac_secret = Set(Some(secrets::encrypt(key, &secret)?));
    active.updated_at = Set(time::now());
    active.update(db).await?;
    Ok(secret)
}

pub async fn update_template(
    db: &DatabaseConnection,
    account_id: i64,
    id: &str,
    event: CallEvent,
    enabled: bool,
    text: &str,
) -> Result<Template> {
    let text = super::templates::validate(text)?;
    // The five templates share one column: read and write it under the row lock so saves of
    // different templates do not undo each other.
    let txn = crate::db::begin_write(db).await?;
    let row = match locked_row(&txn, account_id, id).await {
        Ok(row) => row,
        Err(e) => {
            txn.rollback().await?;
            return Err(e);
        }
    };
    let mut templates = Templates::from_json(&row.templates);
    let template = Template { enabled, text };
    templates.set(event, template.clone());
    let mut active: threecx_integration::ActiveModel = row.into();
    active.templates = Set(templates.to_json());
    active.updated_at = Set(time::now());
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(template)
}

/// Whether the integration forwards inbound messages now: it is enabled and its account has
/// the 3CX module.
pub(crate) async fn forwards<C: ConnectionTrait>(conn: &C, account_id: i64, id: &str) -> Result<bool> {
    let enabled = threecx_integration::Entity::find_by_id(id.to_string())
        .filter(threecx_integration::Column::AccountId.eq(account_id))
        .one(conn)
        .await?
        .is_some_and(|i| i.enabled);
    if !enabled {
        return Ok(false);
    }
    Ok(crate::entities::account::Entity::find_by_id(account_id).one(conn).await?.is_some_and(|a| a.threecx_enabled))
}

pub(crate) async fn set_destination_id<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    destination: Option<&str>,
) -> Result<()> {
    threecx_integration::Entity::update_many()
        .col_expr(threecx_integration::Column::DestinationId, Expr::value(destination.map(str::to_string)))
        .filter(threecx_integration::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

/// Removes an integration's own rows (destination, queued deliveries, request log, cooldowns,
/// signatures seen) inside the caller's transaction.
async fn remove_rows<C: ConnectionTrait>(conn: &C, row: &threecx_integration::Model) -> Result<()> {
    let owned: Vec<String> = crate::entities::webhook_destination::Entity::find()
        .filter(crate::entities::webhook_destination::Column::IntegrationId.eq(row.id.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|d| d.id)
        .collect();
    crate::webhooks::destinations::delete_with_deliveries(conn, owned).await?;
    threecx_request::Entity::delete_many()
        .filter(threecx_request::Column::IntegrationId.eq(row.id.as_str()))
        .exec(conn)
        .await?;
    threecx_cooldown::Entity::delete_many()
        .filter(threecx_cooldown::Column::IntegrationId.eq(row.id.as_str()))
        .exec(conn)
        .await?;
    crate::entities::threecx_signature::Entity::delete_many()
        .filter(crate::entities::threecx_signature::Column::IntegrationId.eq(row.id.as_str()))
        .exec(conn)
        .await?;
    threecx_integration::Entity::delete_by_id(row.id.clone()).exec(conn).await?;
    Ok(())
}

pub async fn delete(db: &DatabaseConnection, account_id: i64, id: &str) -> Result<()> {
    let row = find_row(db, account_id, id).await?;
    let txn = crate::db::begin_write(db).await?;
    remove_rows(&txn, &row).await?;
    txn.commit().await?;
    Ok(())
}

/// The instance is being deleted: its integration goes with it.
pub async fn delete_for_instance<C: ConnectionTrait>(conn: &C, instance_id: &str) -> Result<()> {
    let rows = threecx_integration::Entity::find()
        .filter(threecx_integration::Column::InstanceId.eq(instance_id))
        .all(conn)
        .await?;
    for row in rows {
        remove_rows(conn, &row).await?;
    }
    Ok(())
}
