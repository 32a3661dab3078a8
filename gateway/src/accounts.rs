//! Accounts: sign-up, password login, password change, plans and module switches.
//! One login per account; `role` tells customers from operators.
use std::sync::OnceLock;

use argon2::{
    password_hash::{phc::PasswordHash, PasswordHasher, PasswordVerifier},
    Argon2,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use serde::{Deserialize, Serialize};

use crate::{
    entities::account,
    error::{Error, Result},
    login_throttle,
    plans::{effective_limits, Limits, Plan},
    time,
};

/// A syntactically valid, lower-cased email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Email> {
        let email = text.trim().to_ascii_lowercase();
        let bad = || Error::invalid("Enter a valid email address.");
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = email.split_once('@').ok_or_else(bad)?;
        if local.is_empty()
            || domain.contains('@')
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
        {
            return Err(bad());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy; only ever held long enough to hash it.
pub struct NewPassword(String);

pub const MIN_PASSWORD_LEN: usize = 10;

impl NewPassword {
    pub fn parse(text: &str) -> Result<NewPassword> {
        let chars = text.chars().count();
        if chars < MIN_PASSWORD_LEN {
            return Err(Error::invalid(format!("Choose a password of at least {MIN_PASSWORD_LEN} characters.")));
        }
        if chars > 128 {
            return Err(Error::invalid("Choose a password of at most 128 characters."));
        }
        Ok(NewPassword(text.to_string()))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Admin => "admin",
        }
    }
    /// `admin` or `customer`, as an operator types it.
    pub fn parse(text: &str) -> Option<Role> {
        match text.trim().to_ascii_lowercase().as_str() {
            "admin" => Some(Role::Admin),
            "customer" => Some(Role::Customer),
            _ => None,
        }
    }

    fn from_db(text: &str) -> Role {
        if text == "admin" {
            Role::Admin
        } else {
            Role::Customer
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    Api,
    ThreeCx,
}

impl Module {
    pub fn parse(text: &str) -> Option<Module> {
        match text.trim().to_ascii_lowercase().as_str() {
            "api" => Some(Module::Api),
            "3cx" => Some(Module::ThreeCx),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub id: i64,
    pub email: String,
    pub role: Role,
    pub plan: Plan,
    pub daily_limit_override: Option<i64>,
    pub monthly_limit_override: Option<i64>,
    pub api_enabled: bool,
    pub threecx_enabled: bool,
    pub created_at: i64,
    pub password_changed_at: i64,
    /// Disabled by an operator: API keys and portal sign-in are refused.
    pub disabled: bool,
}

/// What a disabled account's API calls and sign-in attempts are told.
pub const DISABLED: &str = "This account is disabled. Contact the operator of this gateway.";

impl Account {
    pub fn limits(&self) -> Option<Limits> {
        effective_limits(self.plan, self.daily_limit_override, self.monthly_limit_override)
    }
}

impl From<account::Model> for Account {
    fn from(m: account::Model) -> Self {
        Account {
            id: m.id,
            email: m.email,
            role: Role::from_db(&m.role),
            plan: Plan::parse(&m.plan).unwrap_or(Plan::None),
            daily_limit_override: m.daily_limit_override.map(i64::from),
            monthly_limit_override: m.monthly_limit_override.map(i64::from),
            api_enabled: m.api_enabled,
            threecx_enabled: m.threecx_enabled,
            created_at: m.created_at,
            password_changed_at: m.password_changed_at,
            disabled: m.disabled_at.is_some(),
        }
    }
}

pub struct NewAccount {
    pub email: Email,
    pub password: NewPassword,
    pub role: Role,
    pub plan: Plan,
    pub api_enabled: bool,
    pub threecx_enabled: bool,
}

pub async fn create(db: &DatabaseConnection, new: NewAccount) -> Result<Account> {
    if find_model_by_email(db, new.email.as_str()).await?.is_some() {
        return Err(Error::invalid("An account with this email address already exists."));
    }
    let hash = hash_password(new.password).await?;
    let now = time::now();
    let model = account::ActiveModel {
        email: Set(new.email.0),
        password_hash: Set(hash),
        role: Set(new.role.as_str().into()),
        plan: Set(new.plan.as_str().into()),
        daily_limit_override: Set(None),
        monthly_limit_override: Set(None),
        api_enabled: Set(new.api_enabled),
        threecx_enabled: Set(new.threecx_enabled),
        created_at: Set(now),
        password_changed_at: Set(now),
        ..Default::default()
    };
    match model.insert(db).await {
        Ok(m) => Ok(m.into()),
        // Lost a race with a concurrent sign-up for the same address.
        Err(e) if crate::db::is_unique_violation(&e) => {
            Err(Error::invalid("An account with this email address already exists."))
        }
        Err(e) => Err(e.into()),
    }
}

async fn find_model_by_email(db: &DatabaseConnection, email: &str) -> Result<Option<account::Model>> {
    Ok(account::Entity::find().filter(account::Column::Email.eq(email)).one(db).await?)
}

pub async fn find_by_id(db: &DatabaseConnection, id: i64) -> Result<Option<Account>> {
    Ok(account::Entity::find_by_id(id).one(db).await?.map(Account::from))
}

pub async fn find_by_email(db: &DatabaseConnection, email: &str) -> Result<Option<Account>> {
    let email = Email::parse(email)?;
    Ok(find_model_by_email(db, email.as_str()).await?.map(Account::from))
}

pub const LOGIN_FAILED: &str = "The email or password is not correct.";

/// Checks an email and password. Unknown emails and wrong passwords answer the same text after
/// the same argon2 work; repeated failures per email and per client address are slowed and then
/// refused for a while (see `login_throttle`).
/// Checks a sign-in. `device` is the throttle key of the browser's device cookie when it holds
/// a valid one for this email (`login_throttle::DeviceKey`): its failures count against the
/// device, so a lock someone else caused on the email does not shut its owner out.
pub async fn authenticate(
    db: &DatabaseConnection,
    email_text: &str,
    password: &str,
    client_ip: &str,
    device: Option<&str>,
) -> Result<Account> {
    let email_key = login_throttle::email_key(email_text);
    let subject_key = device.map(str::to_string).unwrap_or_else(|| email_key.clone());
    let ip_key = login_throttle::address_key(client_ip);
    login_throttle::check_and_delay(db, &subject_key, &ip_key).await?;

    let model = match Email::parse(email_text) {
        Ok(email) => find_model_by_email(db, email.as_str()).await?,
        Err(_) => None,
    };
    let stored_hash = model.as_ref().map(|m| m.password_hash.clone());
    let ok = verify_password(password.to_string(), stored_hash).await?;
    match (ok, model) {
        (true, Some(m)) => {
            // The device's own count starts over; a lock others caused on the email stays.
            login_throttle::clear(db, &subject_key).await?;
            // Said only after the password was right: a guess learns nothing from it.
            if m.disabled_at.is_some() {
                return Err(Error::Refused(DISABLED.into()));
            }
            Ok(m.into())
        }
        _ => {
            login_throttle::record_failure(db, &subject_key, &ip_key).await?;
            Err(Error::Refused(LOGIN_FAILED.into()))
        }
    }
}

pub async fn change_password(db: &DatabaseConnection, account_id: i64, current: &str, new: &str) -> Result<()> {
    let model = account::Entity::find_by_id(account_id).one(db).await?.ok_or(Error::NotFound)?;
    if !verify_password(current.to_string(), Some(model.password_hash.clone())).await? {
        return Err(Error::invalid("The current password is not correct."));
    }
    let new = NewPassword::parse(new)?;
    let hash = hash_password(new).await?;
    // Strictly increasing, so sessions signed in during the same second are still told apart.
    let changed_at = time::now().max(model.password_changed_at + 1);
    let mut active: account::ActiveModel = model.into();
    active.password_hash = Set(hash);
    active.password_changed_at = Set(changed_at);
    active.update(db).await?;
    Ok(())
}

/// Every account, oldest first (for `wag admin list-users`; an operator's listing, not a page
/// a request renders).
pub async fn list_all(db: &DatabaseConnection) -> Result<Vec<Account>> {
    use sea_orm::QueryOrder;
    Ok(account::Entity::find()
        .order_by_asc(account::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(Account::from)
        .collect())
}

fn argon2() -> Argon2<'static> {
    // argon2id with the crate's default (OWASP-recommended) cost.
    Argon2::default()
}

/// Password hashes computed at once, at most: each takes 19 MiB and a core for a fraction of a
/// second, so a flood of sign-ins or sign-ups waits its turn instead of taking the memory.
const HASH_SLOTS: usize = 4;
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(HASH_SLOTS);
/// The most hashes seen running at once (for the test of the cap).
#[cfg(test)]
static HASHING_PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Runs one argon2 computation on the blocking pool, when one of the [`HASH_SLOTS`] is free.
async fn hashing<T: Send + 'static>(work: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    let _slot = HASHING.acquire().await.map_err(|_| Error::Internal("the hashing slots are closed".into()))?;
    #[cfg(test)]
    HASHING_PEAK.fetch_max(HASH_SLOTS - HASHING.available_permits(), std::sync::atomic::Ordering::Relaxed);
    tokio::task::spawn_blocking(work).await.map_err(|e| Error::Internal(format!("hashing task: {e}")))?
}

/// The argon2id hash of a new password (for a reset, which checks no current password).
pub(crate) async fn hash_new_password(password: NewPassword) -> Result<String> {
    hash_password(password).await
}

async fn hash_password(password: NewPassword) -> Result<String> {
    hashing(move || {
        // A random salt is drawn by the hasher itself.
        argon2()
            .hash_password(password.0.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    })
    .await
}

/// A hash of a random password, made once, so unknown emails cost the same work as known ones.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password: [u8; 16] = rand::random();
        argon2().hash_password(&password).expect("argon2 with default parameters").to_string()
    })
}

async fn verify_password(password: String, stored: Option<String>) -> Result<bool> {
    hashing(move || {
        let known = stored.is_some();
        let hash_text = stored.unwrap_or_else(|| dummy_hash().to_string());
        let parsed = PasswordHash::new(&hash_text)
            .map_err(|e| Error::Internal(format!("stored password hash unreadable: {e}")))?;
        let matches = argon2().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(known && matches)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ops@Example.COM ").unwrap().as_str(), "ops@example.com");
        for bad in ["", "no-at.example.com", "a@b", "a@@b.com", "a b@c.com", "@example.com", "a@example.com."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_hashing_takes_turns() {
        let stored = hash_password(NewPassword::parse("long enough pass").unwrap()).await.unwrap();
        let checks: Vec<_> = (0..3 * HASH_SLOTS)
            .map(|n| {
                let stored = stored.clone();
                tokio::spawn(async move { verify_password(format!("guess number {n}"), Some(stored)).await })
            })
            .collect();
        for check in checks {
            assert!(!check.await.unwrap().unwrap());
        }
        let peak = HASHING_PEAK.load(std::sync::atomic::Ordering::Relaxed);
        assert!((1..=HASH_SLOTS).contains(&peak), "at most {HASH_SLOTS} at once, saw {peak}");
        assert!(verify_password("long enough pass".into(), Some(stored)).await.unwrap());
    }

    #[test]
    fn passwords_need_a_minimum_length() {
        assert!(NewPassword::parse("short").is_err());
        assert!(NewPassword::parse("long enough pass").is_ok());
        assert!(NewPassword::parse(&"x".repeat(129)).is_err());
    }
}
