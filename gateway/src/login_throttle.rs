//! Slows and then stops password guessing. Failures are counted per email and per client
//! address in the database, so several server processes share the count.
use std::time::Duration;

use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QuerySelect, Set};

use crate::{
    entities::login_throttle,
    error::{Error, Result},
    time,
};

/// Failures are counted within this window.
const WINDOW_SECS: i64 = 15 * 60;
/// From this many failures on, each attempt waits a little longer before it is checked.
const SLOW_AFTER: i32 = 3;
const STEP_MS: u64 = 250;
const MAX_DELAY_MS: u64 = 2_000;
/// This many failures lock the email for LOCK_SECS.
const LOCK_EMAIL_AFTER: i32 = 10;
/// Addresses get more room: an office behind one NAT has many users.
const LOCK_IP_AFTER: i32 = 50;
const LOCK_SECS: i64 = 15 * 60;

pub const LOCKED_MESSAGE: &str = "Too many failed sign-in attempts. Please wait 15 minutes and try again.";

/// Sign-ups from one address (an IPv6 client: its /64) within the window; the next waits until
/// the lock ends.
const LOCK_SIGN_UPS_AFTER: i32 = 10;
pub const SIGN_UP_LOCKED_MESSAGE: &str = "Too many sign-ups from your network. Please wait 15 minutes and try again.";

/// Counts a sign-up attempt from `client_ip`, or refuses it when the address made
/// [`LOCK_SIGN_UPS_AFTER`] within 15 minutes (each costs a password hash and an account row).
pub async fn count_sign_up(db: &DatabaseConnection, client_ip: &str) -> Result<()> {
    let key = format!("signup:{}", address_key(client_ip));
    let row = login_throttle::Entity::find_by_id(key.clone()).one(db).await?;
    if row.is_some_and(|row| row.locked_until.is_some_and(|until| until > time::now())) {
        return Err(Error::Refused(SIGN_UP_LOCKED_MESSAGE.into()));
    }
    bump(db, &key, LOCK_SIGN_UPS_AFTER).await
}

/// The throttle key of an email: hashed, so typed addresses (and typos of passwords pasted into
/// the email field) are not stored.
pub fn email_key(email_text: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(email_text.trim().to_ascii_lowercase().as_bytes());
    format!("email:{}", &hex::encode(digest)[..40])
}

/// The throttle key of a client address. An IPv6 client counts by its /64: one subscriber or
/// server usually holds a whole /64 and could otherwise take a fresh address per attempt.
pub fn address_key(client_ip: &str) -> String {
    match client_ip.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("ip:{v4}"),
            None => {
                let s = v6.segments();
                format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{}", client_ip.trim()),
    }
}

/// A browser that signed in to an account before carries a device cookie for it. Its failures
/// count against that device instead of the email, so someone guessing at a victim's address
/// locks the email for themselves (and every browser without the cookie) but not the owner's
/// own browser, which is only slowed by its own mistakes and locked after ten of them.
pub struct DeviceKey([u8; 32]);

/// How long a device cookie is honoured (and kept by the browser).
pub const DEVICE_COOKIE_DAYS: i64 = 365;

impl DeviceKey {
    /// Derived from the master key for this one purpose.
    pub fn derive(master_key: &crate::config::MasterKey) -> DeviceKey {
        let mut mac = crate::secrets::hmac_sha256(&master_key.0);
        hmac::Mac::update(&mut mac, b"wag device cookie v1");
        DeviceKey(hmac::Mac::finalize(mac).into_bytes().into())
    }

    /// A new cookie value for `email`: a random device id and its signature.
    pub fn issue(&self, email_text: &str) -> String {
        let id = hex::encode(rand::random::<[u8; 16]>());
        let signature = hex::encode(hmac::Mac::finalize(self.signer(email_text, &id)).into_bytes());
        format!("{id}.{signature}")
    }

    /// The throttle key of the device, when `cookie` was issued by this server for `email`.
    pub fn device_for(&self, cookie: &str, email_text: &str) -> Option<String> {
        use hmac::Mac;
        let (id, signature) = cookie.trim().split_once('.')?;
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let signature = hex::decode(signature).ok()?;
        // Compared in constant time.
        self.signer(email_text, id).verify_slice(&signature).ok().map(|()| format!("device:{id}"))
    }

    /// The HMAC of a device id for an email.
    fn signer(&self, email_text: &str, id: &str) -> hmac::Hmac<sha2::Sha256> {
        use hmac::Mac;
        let mut mac = crate::secrets::hmac_sha256(&self.0);
        for part in [email_key(email_text).as_bytes(), b".", id.as_bytes()] {
            mac.update(part);
        }
        mac
    }
}

/// The device cookie's name; behind https a `__Host-` cookie (Secure, whole site, this host).
pub fn device_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-wag_device"
    } else {
        "wag_device"
    }
}

/// `subject_key` is the email's key, or the device's when the browser proved it signed in to
/// that email before (see [`DeviceKey`]).
pub async fn check_and_delay(db: &DatabaseConnection, subject_key: &str, ip_key: &str) -> Result<()> {
    let email_key = subject_key;
    let now = time::now();
    let email = login_throttle::Entity::find_by_id(email_key.to_string()).one(db).await?;
    let ip = login_throttle::Entity::find_by_id(ip_key.to_string()).one(db).await?;
    for row in [&email, &ip].into_iter().flatten() {
        if row.locked_until.is_some_and(|until| until > now) {
            return Err(Error::Refused(LOCKED_MESSAGE.into()));
        }
    }
    let failures = [&email, &ip]
        .into_iter()
        .flatten()
        .filter(|row| row.window_started_at > now - WINDOW_SECS)
        .map(|row| row.failures)
        .max()
        .unwrap_or(0);
    if failures >= SLOW_AFTER {
        let delay = (STEP_MS * (failures - SLOW_AFTER + 1) as u64).min(MAX_DELAY_MS);
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    Ok(())
}

pub async fn record_failure(db: &DatabaseConnection, subject_key: &str, ip_key: &str) -> Result<()> {
    bump(db, subject_key, LOCK_EMAIL_AFTER).await?;
    bump(db, ip_key, LOCK_IP_AFTER).await
}

pub async fn clear(db: &DatabaseConnection, key: &str) -> Result<()> {
    login_throttle::Entity::delete_by_id(key.to_string()).exec(db).await?;
    Ok(())
}

/// Counts one failure. Read and written in one write transaction with the row locked
/// (PostgreSQL, MySQL: `FOR UPDATE`; SQLite: the one writer), so parallel wrong passwords all
/// count: a plain read-then-write lost most of 500 parallel increments.
async fn bump(db: &DatabaseConnection, key: &str, lock_after: i32) -> Result<()> {
    let now = time::now();
    let txn = crate::db::begin_write(db).await?;
    let counted = async {
        let row = login_throttle::ActiveModel {
            key: Set(key.to_string()),
            failures: Set(0),
            window_started_at: Set(now),
            locked_until: Set(None),
        };
        let pk = [login_throttle::Column::Key];
        crate::db::bulk::insert_new::<login_throttle::Entity, _>(&txn, &[row], &pk).await?;
        let mut find = login_throttle::Entity::find_by_id(key.to_string());
        if txn.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
            find = find.lock(sea_orm::sea_query::LockType::Update);
        }
        let Some(row) = find.one(&txn).await? else {
            return Err(Error::Internal("a login throttle row vanished".into()));
        };
        let fresh = row.window_started_at <= now - WINDOW_SECS || row.locked_until.is_some_and(|u| u <= now);
        let failures = if fresh { 1 } else { row.failures + 1 };
        let mut active: login_throttle::ActiveModel = row.into();
        active.failures = Set(failures);
        if fresh {
            active.window_started_at = Set(now);
            active.locked_until = Set(None);
        }
        if failures >= lock_after {
            active.locked_until = Set(Some(now + LOCK_SECS));
        }
        active.update(&txn).await?;
        Ok(())
    }
    .await;
    match counted {
        Ok(()) => Ok(txn.commit().await?),
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_address_signs_up_ten_times_in_a_window() {
        let dir = std::env::temp_dir().join(format!("wag-sign-ups-{}", crate::ids::new_id("t")));
        let db = crate::db::open(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
        for _ in 0..LOCK_SIGN_UPS_AFTER {
            count_sign_up(&db, "2001:db8:7:7::1").await.unwrap();
        }
        let refused = count_sign_up(&db, "2001:db8:7:7::99").await;
        assert!(matches!(refused, Err(Error::Refused(ref m)) if m == SIGN_UP_LOCKED_MESSAGE), "{refused:?}");
        count_sign_up(&db, "2001:db8:7:8::1").await.expect("another network signs up");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn device_cookies_are_bound_to_the_email_and_the_key() {
        let key = DeviceKey::derive(&crate::config::MasterKey([7; 32]));
        let cookie = key.issue("Owner@Example.com ");
        let device = key.device_for(&cookie, "owner@example.com").expect("the same email, any case");
        assert!(device.starts_with("device:") && device.len() == 39, "{device}");
        assert_eq!(key.device_for(&cookie, "other@example.com"), None);
        let other_server = DeviceKey::derive(&crate::config::MasterKey([8; 32]));
        assert_eq!(other_server.device_for(&cookie, "owner@example.com"), None);
        let (id, _) = cookie.split_once('.').unwrap();
        assert_eq!(key.device_for(&format!("{id}.00"), "owner@example.com"), None);
        assert_ne!(key.issue("owner@example.com"), cookie, "a new id each time");
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(address_key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
        assert_eq!(address_key("203.0.113.9"), "ip:203.0.113.9");
        assert_eq!(address_key("::ffff:203.0.113.9"), "ip:203.0.113.9");
        assert_ne!(address_key("203.0.113.9"), address_key("203.0.113.10"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_failures_all_count() {
        let dir = std::env::temp_dir().join(format!("wag-login-throttle-{}", crate::ids::new_id("t")));
        let db = crate::db::open(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
        let key = email_key("victim@example.com");
        let tries: Vec<_> = (0..200)
            .map(|_| {
                let (db, key) = (db.clone(), key.clone());
                tokio::spawn(async move { bump(&db, &key, LOCK_EMAIL_AFTER).await })
            })
            .collect();
        for attempt in tries {
            attempt.await.unwrap().unwrap();
        }
        let row = login_throttle::Entity::find_by_id(key).one(&db).await.unwrap().unwrap();
        assert_eq!(row.failures, 200, "every failure counted");
        assert!(row.locked_until.is_some_and(|until| until > time::now()), "and the email is locked");
        let _ = std::fs::remove_dir_all(dir);
    }
}
