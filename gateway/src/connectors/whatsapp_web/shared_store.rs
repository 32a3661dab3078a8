//! An instance's WhatsApp Web keys and session state in the shared PostgreSQL database, for
//! servers that run as a cluster: the instance's next owner opens the same linked device.
//!
//! The client reads its store on every message, so reads are served from memory (the crate's
//! own in-memory store, loaded once when the session opens); every change is written through
//! to the `whatsapp_keys` table before the call returns, as the file store would. Only the
//! instance's owner at the session's epoch may write: each statement checks the owner row (and
//! holds it shared, so a take-over waits for a write in flight or skips the instance for a
//! tick), and a write refused that way fails, which stops the stale client from acting on it.
//! Values are sealed with ChaCha20-Poly1305 under a key derived from the master key, bound to
//! their row (instance, kind, key) so a value cannot be moved to another row or instance.
use std::{collections::HashMap, sync::Arc};

use chacha20poly1305::{
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
    ChaCha20Poly1305, Nonce,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};
use whatsapp_rust::{
    bytes::Bytes,
    wacore::{
        appstate::{hash::HashState, processor::AppStateMutationMAC},
        store::{
            error::{Result, StoreError},
            traits::{
                AppStateSyncKey, AppSyncStore, DeviceListRecord, DeviceStore, LidPnMappingEntry, MsgSecretEntry,
                MsgSecretStore, PendingInboundKey, PendingInboundRow, ProtocolStore, SignalStore, TcTokenEntry,
            },
            Device, InMemoryBackend,
        },
    },
};

use crate::{config::MasterKey, connectors::SessionFence};

/// The database and the sealing key, shared by every instance's store on this server.
pub struct KeyVault {
    db: DatabaseConnection,
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for KeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyVault(shared database)")
    }
}

impl KeyVault {
    pub fn new(db: DatabaseConnection, master: &MasterKey) -> KeyVault {
        let mut mac = crate::secrets::hmac_sha256(&master.0);
        hmac::Mac::update(&mut mac, b"wag whatsapp-web keys v1");
        let key: [u8; 32] = hmac::Mac::finalize(mac).into_bytes().into();
        KeyVault { db, cipher: ChaCha20Poly1305::new((&key).into()) }
    }

    /// Removes everything kept for the instance (it was deleted or unlinked).
    pub async fn forget(&self, instance_id: &str) -> crate::error::Result<()> {
        let sql = "DELETE FROM whatsapp_keys WHERE instance_id = $1";
        self.db
            .execute_raw(Statement::from_sql_and_values(self.db.get_database_backend(), sql, [instance_id.into()]))
            .await?;
        Ok(())
    }

    /// Whether `fence` still owns the instance (a failed check counts as no).
    pub async fn holds(&self, instance_id: &str, fence: &SessionFence) -> bool {
        crate::cluster::ownership::holds(&self.db, instance_id, &fence.node_id, fence.epoch).await.unwrap_or(false)
    }

    /// Drops everything kept for the instance (WhatsApp ended the link), if `fence` still owns
    /// it; nothing needs loading first.
    pub async fn wipe(&self, instance_id: &str, fence: Option<&SessionFence>) -> Result<()> {
        let mut values: Vec<Value> = vec![instance_id.into()];
        let fence = fence_sql(fence, &mut values);
        let sql = format!("DELETE FROM whatsapp_keys WHERE instance_id = $1{fence}");
        let db = &self.db;
        db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values))
            .await
            .map_err(db_error)?;
        Ok(())
    }

    fn seal(&self, row: &RowKey<'_>, plain: &[u8]) -> Result<Vec<u8>> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = row.bound();
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad: &aad })
            .map_err(|_| StoreError::Validation("sealing a stored key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, row: &RowKey<'_>, stored: &[u8]) -> Result<Vec<u8>> {
        let broken = || StoreError::Validation("a stored key cannot be opened (another master key?)".into());
        if stored.len() < 12 {
            return Err(broken());
        }
        let (nonce, sealed) = stored.split_at(12);
        let aad = row.bound();
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: sealed, aad: &aad }).map_err(|_| broken())
    }
}

/// Row kinds. Short, fixed names: they are part of the primary key and of what a value is
/// sealed to.
mod ns {
    pub const DEVICE: &str = "device";
    pub const IDENTITY: &str = "identity";
    pub const SESSION: &str = "session";
    pub const PREKEY: &str = "prekey";
    pub const SIGNED_PREKEY: &str = "signed_prekey";
    pub const SENDER_KEY: &str = "sender_key";
    pub const SYNC_KEY: &str = "sync_key";
    pub const LATEST_SYNC_KEY: &str = "latest_sync";
    pub const VERSION: &str = "version";
    pub const MUTATION_MAC: &str = "mutation_mac";
    pub const SENDER_KEY_DEVICE: &str = "skd";
    pub const LID: &str = "lid";
    pub const BASE_KEY: &str = "base_key";
    pub const DEVICE_LIST: &str = "device_list";
    pub const GROUP_META: &str = "group_meta";
    pub const TC_TOKEN: &str = "tc_token";
    pub const SENT: &str = "sent";
    pub const PENDING: &str = "pending";
    pub const MSG_SECRET: &str = "msg_secret";
}

/// Separates the parts of a composite key (never part of a JID or message id).
const SEP: char = '\u{1f}';
const MAX_KEY: usize = 255;

struct RowKey<'a> {
    instance_id: &'a str,
    ns: &'static str,
    grp: String,
    k: String,
}

impl RowKey<'_> {
    fn bound(&self) -> Vec<u8> {
        [self.instance_id, self.ns, &self.grp, &self.k].join("\u{0}").into_bytes()
    }
}

/// A row to write: its key, plain value and prune time.
struct Put {
    ns: &'static str,
    grp: String,
    k: String,
    v: Vec<u8>,
    ts: i64,
}

fn put(ns: &'static str, grp: impl Into<String>, k: impl Into<String>, v: Vec<u8>) -> Put {
    Put { ns, grp: grp.into(), k: k.into(), v, ts: 0 }
}

fn db_error(e: sea_orm::DbErr) -> StoreError {
    StoreError::Database(Box::new(e))
}

fn json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| StoreError::Serialization(Box::new(e)))
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Serialization(Box::new(e)))
}

fn joined(a: &str, b: &str) -> String {
    format!("{a}{SEP}{b}")
}

fn split(k: &str) -> Result<(&str, &str)> {
    k.split_once(SEP).ok_or_else(|| StoreError::Validation("a stored composite key has no separator".into()))
}

fn fenced() -> StoreError {
    StoreError::Database("this server no longer runs the instance at this epoch; the write was refused".into())
}

/// How a statement narrows its rows (besides instance and kind).
enum Which<'a> {
    All,
    Keys(&'a [(String, String)]),
    Group(&'a str),
    KeysAnyGroup(&'a [String]),
    PrunedBefore(i64),
    /// Message secrets: a deadline of 0 never expires; the others go once it has passed.
    ExpiredBy(i64),
}

pub struct SharedStore {
    mem: InMemoryBackend,
    vault: Arc<KeyVault>,
    instance_id: String,
    fence: Option<SessionFence>,
}

impl SharedStore {
    /// Loads what the database holds for the instance.
    pub async fn open(vault: Arc<KeyVault>, instance_id: &str, fence: Option<SessionFence>) -> Result<SharedStore> {
        let store = SharedStore { mem: InMemoryBackend::new(), vault, instance_id: instance_id.to_string(), fence };
        let sql = "SELECT ns, grp, k, v, ts FROM whatsapp_keys WHERE instance_id = $1";
        let db = &store.vault.db;
        let rows = db
            .query_all_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, [instance_id.into()]))
            .await
            .map_err(db_error)?;
        let mut secrets = Vec::new();
        let mut latest_sync: Option<Vec<u8>> = None;
        for row in rows {
            let get = |c: &str| row.try_get::<String>("", c).map_err(db_error);
            let (ns_name, grp, k) = (get("ns")?, get("grp")?, get("k")?);
            let stored: Vec<u8> = row.try_get("", "v").map_err(db_error)?;
            let ts: i64 = row.try_get("", "ts").map_err(db_error)?;
            let Some(kind) = known_ns(&ns_name) else {
                tracing::warn!(instance_id, ns = %ns_name, "skipping a stored WhatsApp key of an unknown kind");
                continue;
            };
            let key = RowKey { instance_id, ns: kind, grp: grp.clone(), k: k.clone() };
            let v = store.vault.open(&key, &stored)?;
            store.replay(kind, &grp, &k, v, ts, &mut secrets, &mut latest_sync).await?;
        }
        if !secrets.is_empty() {
            store.mem.put_msg_secrets(secrets).await?;
        }
        // Rows come in no particular order: the latest key is set again last, so the in-memory
        // store names the same one.
        if let Some(id) = latest_sync {
            if let Some(key) = store.mem.get_sync_key(&id).await? {
                store.mem.set_sync_key(&id, key).await?;
            }
        }
        Ok(store)
    }

    #[allow(clippy::too_many_arguments)]
    async fn replay(
        &self,
        kind: &'static str,
        grp: &str,
        k: &str,
        v: Vec<u8>,
        ts: i64,
        secrets: &mut Vec<MsgSecretEntry>,
        latest_sync: &mut Option<Vec<u8>>,
    ) -> Result<()> {
        let mem = &self.mem;
        let number =
            |k: &str| k.parse::<u32>().map_err(|_| StoreError::Validation("a stored key id is not a number".into()));
        match kind {
            ns::DEVICE => mem.save(&from_json::<Device>(&v)?).await?,
            ns::IDENTITY => {
                let key: [u8; 32] =
                    v.try_into().map_err(|_| StoreError::Validation("a stored identity is not 32 bytes".into()))?;
                mem.put_identity(k, key).await?
            }
            ns::SESSION => mem.put_session(k, &v).await?,
            ns::PREKEY => mem.store_prekey(number(k)?, &v, true).await?,
            ns::SIGNED_PREKEY => mem.store_signed_prekey(number(k)?, &v).await?,
            ns::SENDER_KEY => mem.put_sender_key(k, &v).await?,
            ns::SYNC_KEY => {
                let id = hex::decode(k).map_err(|e| StoreError::Serialization(Box::new(e)))?;
                mem.set_sync_key(&id, from_json(&v)?).await?
            }
            ns::LATEST_SYNC_KEY => *latest_sync = Some(v),
            ns::VERSION => mem.set_version(k, from_json::<HashState>(&v)?).await?,
            ns::MUTATION_MAC => {
                let index_mac = hex::decode(k).map_err(|e| StoreError::Serialization(Box::new(e)))?;
                mem.put_mutation_macs(grp, 0, &[AppStateMutationMAC { index_mac, value_mac: v }]).await?
            }
            ns::SENDER_KEY_DEVICE => mem.set_sender_key_status(grp, &[(k, v.first() == Some(&1))]).await?,
            ns::LID => mem.put_lid_mapping(&from_json::<LidPnMappingEntry>(&v)?).await?,
            ns::BASE_KEY => mem.save_base_key(grp, k, &v).await?,
            ns::DEVICE_LIST => mem.update_device_list(from_json::<DeviceListRecord>(&v)?).await?,
            ns::GROUP_META => mem.put_group_metadata(k, &v).await?,
            ns::TC_TOKEN => mem.put_tc_token(k, &from_json::<TcTokenEntry>(&v)?).await?,
            ns::SENT => mem.store_sent_message(grp, k, &v).await?,
            ns::PENDING => {
                let (sender, id) = split(k)?;
                mem.store_pending_inbound(grp, sender, id, &v).await?
            }
            ns::MSG_SECRET => {
                let (sender, id) = split(k)?;
                if v.len() != 40 {
                    return Err(StoreError::Validation("a stored message secret has the wrong size".into()));
                }
                let mut secret = [0u8; 32];
                secret.copy_from_slice(&v[..32]);
                let mut message_ts = [0u8; 8];
                message_ts.copy_from_slice(&v[32..]);
                secrets.push(MsgSecretEntry {
                    chat: Arc::from(grp),
                    sender: Arc::from(sender),
                    msg_id: Arc::from(id),
                    secret,
                    expires_at: ts,
                    message_ts: i64::from_be_bytes(message_ts),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// The fence as SQL (with its values appended), or nothing on a single server.
    fn fence_sql(&self, values: &mut Vec<Value>) -> String {
        fence_sql(self.fence.as_ref(), values)
    }

    /// Writes rows (one statement); fails when the fence refuses it.
    async fn write(&self, rows: Vec<Put>) -> Result<()> {
        self.write_merging(rows, false).await
    }

    async fn write_merging(&self, rows: Vec<Put>, merge_expiry: bool) -> Result<()> {
        // A statement may not touch one row twice: the last value of a key wins.
        let mut last: HashMap<(&'static str, String, String), Put> = HashMap::with_capacity(rows.len());
        for row in rows {
            if row.grp.len() > MAX_KEY || row.k.len() > MAX_KEY {
                return Err(StoreError::Validation("a WhatsApp store key is too long to keep".into()));
            }
            last.insert((row.ns, row.grp.clone(), row.k.clone()), row);
        }
        if last.is_empty() {
            return Ok(());
        }
        let count = last.len();
        let mut values: Vec<Value> = vec![self.instance_id.as_str().into()];
        let mut tuples = Vec::with_capacity(count);
        for row in last.into_values() {
            let key = RowKey { instance_id: &self.instance_id, ns: row.ns, grp: row.grp, k: row.k };
            let sealed = self.vault.seal(&key, &row.v)?;
            let n = values.len();
            tuples.push(format!("(${}, ${}, ${}, ${}::bytea, ${}::bigint)", n + 1, n + 2, n + 3, n + 4, n + 5));
            values.extend([key.ns.into(), key.grp.into(), key.k.into(), Value::Bytes(Some(sealed)), row.ts.into()]);
        }
        let fence = self.fence_sql(&mut values);
        let ts = if merge_expiry {
            "CASE WHEN whatsapp_keys.ts = 0 OR excluded.ts = 0 THEN 0 ELSE GREATEST(whatsapp_keys.ts, excluded.ts) END"
        } else {
            "excluded.ts"
        };
        let sql = format!(
            "INSERT INTO whatsapp_keys (instance_id, ns, grp, k, v, ts) \
             SELECT $1, x.ns, x.grp, x.k, x.v, x.ts FROM (VALUES {}) AS x(ns, grp, k, v, ts) WHERE TRUE{fence} \
             ON CONFLICT (instance_id, ns, grp, k) DO UPDATE SET v = excluded.v, ts = {ts}",
            tuples.join(", ")
        );
        let db = &self.vault.db;
        let done = db
            .execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values))
            .await
            .map_err(db_error)?;
        if done.rows_affected() as usize != count {
            return Err(fenced());
        }
        Ok(())
    }

    /// Deletes rows of one kind. A fenced-off delete changes nothing (and is not an error: the
    /// next write of this stale session fails).
    async fn delete(&self, kind: &'static str, which: Which<'_>) -> Result<()> {
        let mut values: Vec<Value> = vec![self.instance_id.as_str().into(), kind.into()];
        let narrow = match which {
            Which::All => String::new(),
            Which::Keys(keys) => {
                if keys.is_empty() {
                    return Ok(());
                }
                let mut pairs = Vec::with_capacity(keys.len());
                for (grp, k) in keys {
                    values.extend([grp.as_str().into(), k.as_str().into()]);
                    pairs.push(format!("(${}, ${})", values.len() - 1, values.len()));
                }
                format!(" AND (grp, k) IN ({})", pairs.join(", "))
            }
            Which::Group(grp) => {
                values.push(grp.into());
                format!(" AND grp = ${}", values.len())
            }
            Which::KeysAnyGroup(keys) => {
                if keys.is_empty() {
                    return Ok(());
                }
                let list: Vec<String> = keys
                    .iter()
                    .map(|k| {
                        values.push(k.as_str().into());
                        format!("${}", values.len())
                    })
                    .collect();
                format!(" AND k IN ({})", list.join(", "))
            }
            Which::PrunedBefore(cutoff) => {
                values.push(cutoff.into());
                format!(" AND ts < ${}", values.len())
            }
            Which::ExpiredBy(cutoff) => {
                values.push(cutoff.into());
                format!(" AND ts <> 0 AND ts <= ${}", values.len())
            }
        };
        let fence = self.fence_sql(&mut values);
        let sql = format!("DELETE FROM whatsapp_keys WHERE instance_id = $1 AND ns = $2{narrow}{fence}");
        let db = &self.vault.db;
        db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, values))
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Drops everything kept for the instance (WhatsApp ended the link), if this session may.
    pub async fn wipe(&self) -> Result<()> {
        self.vault.wipe(&self.instance_id, self.fence.as_ref()).await
    }
}

/// The owner check a statement carries (its values appended; `$1` is the instance id), or
/// nothing on a single server.
fn fence_sql(fence: Option<&SessionFence>, values: &mut Vec<Value>) -> String {
    match fence {
        None => String::new(),
        Some(fence) => {
            values.push(fence.node_id.as_str().into());
            values.push(fence.epoch.into());
            format!(
                " AND EXISTS (SELECT 1 FROM instance_owners o WHERE o.instance_id = $1 AND o.node_id = ${} \
                 AND o.epoch = ${} FOR SHARE)",
                values.len() - 1,
                values.len()
            )
        }
    }
}

fn known_ns(name: &str) -> Option<&'static str> {
    [
        ns::DEVICE,
        ns::IDENTITY,
        ns::SESSION,
        ns::PREKEY,
        ns::SIGNED_PREKEY,
        ns::SENDER_KEY,
        ns::SYNC_KEY,
        ns::LATEST_SYNC_KEY,
        ns::VERSION,
        ns::MUTATION_MAC,
        ns::SENDER_KEY_DEVICE,
        ns::LID,
        ns::BASE_KEY,
        ns::DEVICE_LIST,
        ns::GROUP_META,
        ns::TC_TOKEN,
        ns::SENT,
        ns::PENDING,
        ns::MSG_SECRET,
    ]
    .into_iter()
    .find(|known| *known == name)
}

fn secret_value(secret: &[u8], message_ts: i64) -> Vec<u8> {
    let mut v = secret.to_vec();
    v.extend_from_slice(&message_ts.to_be_bytes());
    v
}

#[async_trait::async_trait]
impl SignalStore for SharedStore {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.write(vec![put(ns::IDENTITY, "", address, key.to_vec())]).await?;
        self.mem.put_identity(address, key).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        self.write(identities.iter().map(|(a, key)| put(ns::IDENTITY, "", a.as_ref(), key.to_vec())).collect()).await?;
        self.mem.put_identities_batch(identities).await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        self.mem.load_identity(address).await
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.delete(ns::IDENTITY, Which::Keys(&[(String::new(), address.to_string())])).await?;
        self.mem.delete_identity(address).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        self.mem.get_session(address).await
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.write(vec![put(ns::SESSION, "", address, session.to_vec())]).await?;
        self.mem.put_session(address, session).await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.write(sessions.iter().map(|(a, s)| put(ns::SESSION, "", a.as_ref(), s.to_vec())).collect()).await?;
        self.mem.put_sessions_batch(sessions).await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.delete(ns::SESSION, Which::Keys(&[(String::new(), address.to_string())])).await?;
        self.mem.delete_session(address).await
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        self.mem.has_session(address).await
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        self.mem.has_signal_state_for_user(user).await
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.write(vec![put(ns::PREKEY, "", id.to_string(), record.to_vec())]).await?;
        self.mem.store_prekey(id, record, uploaded).await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        self.write(keys.iter().map(|(id, r)| put(ns::PREKEY, "", id.to_string(), r.to_vec())).collect()).await?;
        self.mem.store_prekeys_batch(keys, uploaded).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        self.mem.load_prekey(id).await
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        self.mem.load_prekeys_batch(ids).await
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // Nothing reads the flag back (see `store_prekey`).
        self.mem.mark_prekeys_uploaded(ids).await
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete(ns::PREKEY, Which::Keys(&[(String::new(), id.to_string())])).await?;
        self.mem.remove_prekey(id).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        self.mem.get_max_prekey_id().await
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.write(vec![put(ns::SIGNED_PREKEY, "", id.to_string(), record.to_vec())]).await?;
        self.mem.store_signed_prekey(id, record).await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.mem.load_signed_prekey(id).await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        self.mem.load_all_signed_prekeys().await
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete(ns::SIGNED_PREKEY, Which::Keys(&[(String::new(), id.to_string())])).await?;
        self.mem.remove_signed_prekey(id).await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.write(vec![put(ns::SENDER_KEY, "", address, record.to_vec())]).await?;
        self.mem.put_sender_key(address, record).await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.write(sender_keys.iter().map(|(a, r)| put(ns::SENDER_KEY, "", a.as_ref(), r.to_vec())).collect()).await?;
        self.mem.put_sender_keys_batch(sender_keys).await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.mem.get_sender_key(address).await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete(ns::SENDER_KEY, Which::Keys(&[(String::new(), address.to_string())])).await?;
        self.mem.delete_sender_key(address).await
    }
}

#[async_trait::async_trait]
impl AppSyncStore for SharedStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        self.mem.get_sync_key(key_id).await
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.write(vec![
            put(ns::SYNC_KEY, "", hex::encode(key_id), json(&key)?),
            put(ns::LATEST_SYNC_KEY, "", "", key_id.to_vec()),
        ])
        .await?;
        self.mem.set_sync_key(key_id, key).await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        self.mem.get_version(name).await
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        self.write(vec![put(ns::VERSION, "", name, json(&state)?)]).await?;
        self.mem.set_version(name, state).await
    }

    async fn put_mutation_macs(&self, name: &str, version: u64, mutations: &[AppStateMutationMAC]) -> Result<()> {
        let rows = mutations
            .iter()
            .map(|m| put(ns::MUTATION_MAC, name, hex::encode(&m.index_mac), m.value_mac.clone()))
            .collect();
        self.write(rows).await?;
        self.mem.put_mutation_macs(name, version, mutations).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        self.mem.get_mutation_mac(name, index_mac).await
    }

    async fn get_mutation_macs(&self, name: &str, index_macs: &[[u8; 32]]) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        self.mem.get_mutation_macs(name, index_macs).await
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let keys: Vec<(String, String)> = index_macs.iter().map(|m| (name.to_string(), hex::encode(m))).collect();
        self.delete(ns::MUTATION_MAC, Which::Keys(&keys)).await?;
        self.mem.delete_mutation_macs(name, index_macs).await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.delete(ns::MUTATION_MAC, Which::Group(name)).await?;
        self.mem.clear_mutation_macs(name).await
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        self.mem.get_latest_sync_key_id().await
    }
}

#[async_trait::async_trait]
impl ProtocolStore for SharedStore {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        self.mem.get_sender_key_devices(group_jid).await
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let rows =
            entries.iter().map(|(d, ok)| put(ns::SENDER_KEY_DEVICE, group_jid, *d, vec![u8::from(*ok)])).collect();
        self.write(rows).await?;
        self.mem.set_sender_key_status(group_jid, entries).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete(ns::SENDER_KEY_DEVICE, Which::Group(group_jid)).await?;
        self.mem.clear_sender_key_devices(group_jid).await
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        let keys: Vec<String> = device_jids.iter().map(|d| d.to_string()).collect();
        self.delete(ns::SENDER_KEY_DEVICE, Which::KeysAnyGroup(&keys)).await?;
        self.mem.delete_sender_key_device_rows(device_jids).await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.delete(ns::SENDER_KEY_DEVICE, Which::All).await?;
        self.mem.clear_all_sender_key_devices().await
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.mem.get_lid_mapping(lid).await
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        self.mem.get_pn_mapping(phone).await
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        self.put_lid_mappings(std::slice::from_ref(entry)).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        self.mem.put_lid_mappings(entries).await?;
        // What the in-memory store kept (it may merge with what it knew) is what is written.
        let mut rows = Vec::with_capacity(entries.len());
        for entry in entries {
            if let Some(kept) = self.mem.get_lid_mapping(&entry.lid).await? {
                rows.push(put(ns::LID, "", kept.lid.clone(), json(&kept)?));
            }
        }
        self.write(rows).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.mem.get_all_lid_mappings().await
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.write(vec![put(ns::BASE_KEY, address, message_id, base_key.to_vec())]).await?;
        self.mem.save_base_key(address, message_id, base_key).await
    }

    async fn has_same_base_key(&self, address: &str, message_id: &str, current_base_key: &[u8]) -> Result<bool> {
        self.mem.has_same_base_key(address, message_id, current_base_key).await
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete(ns::BASE_KEY, Which::Keys(&[(address.to_string(), message_id.to_string())])).await?;
        self.mem.delete_base_key(address, message_id).await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        self.update_device_lists(vec![record]).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let users: Vec<String> = records.iter().map(|r| r.user.clone()).collect();
        self.mem.update_device_lists(records).await?;
        let mut rows = Vec::with_capacity(users.len());
        for user in users {
            if let Some(kept) = self.mem.get_devices(&user).await? {
                rows.push(put(ns::DEVICE_LIST, "", user, json(&kept)?));
            }
        }
        self.write(rows).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        self.mem.get_devices(user).await
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.delete(ns::DEVICE_LIST, Which::Keys(&[(String::new(), user.to_string())])).await?;
        self.mem.delete_devices(user).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.mem.get_group_metadata(group_jid).await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.write(vec![put(ns::GROUP_META, "", group_jid, blob.to_vec())]).await?;
        self.mem.put_group_metadata(group_jid, blob).await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete(ns::GROUP_META, Which::Keys(&[(String::new(), group_jid.to_string())])).await?;
        self.mem.delete_group_metadata(group_jid).await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        self.mem.get_tc_token(jid).await
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.write(vec![put(ns::TC_TOKEN, "", jid, json(entry)?)]).await?;
        self.mem.put_tc_token(jid, entry).await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.delete(ns::TC_TOKEN, Which::Keys(&[(String::new(), jid.to_string())])).await?;
        self.mem.delete_tc_token(jid).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        self.mem.get_all_tc_token_jids().await
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // Which tokens are stale is the in-memory store's judgement; the rows follow it.
        let before = self.mem.get_all_tc_token_jids().await?;
        let removed = self.mem.delete_expired_tc_tokens(token_cutoff, sender_cutoff).await?;
        if removed > 0 {
            let after: std::collections::HashSet<String> =
                self.mem.get_all_tc_token_jids().await?.into_iter().collect();
            let gone: Vec<(String, String)> =
                before.into_iter().filter(|j| !after.contains(j)).map(|j| (String::new(), j)).collect();
            self.delete(ns::TC_TOKEN, Which::Keys(&gone)).await?;
        }
        Ok(removed)
    }

    async fn touch_tc_token_sender_timestamp(&self, jid: &str, sender_timestamp: i64) -> Result<()> {
        self.mem.touch_tc_token_sender_timestamp(jid, sender_timestamp).await?;
        self.write_tc_token_back(jid).await
    }

    async fn store_received_tc_token(&self, jid: &str, token: &[u8], token_timestamp: i64) -> Result<()> {
        self.mem.store_received_tc_token(jid, token, token_timestamp).await?;
        self.write_tc_token_back(jid).await
    }

    async fn store_sent_message(&self, chat_jid: &str, message_id: &str, payload: &[u8]) -> Result<()> {
        let mut row = put(ns::SENT, chat_jid, message_id, payload.to_vec());
        row.ts = crate::time::now();
        self.write(vec![row]).await?;
        self.mem.store_sent_message(chat_jid, message_id, payload).await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        let taken = self.mem.take_sent_message(chat_jid, message_id).await?;
        if taken.is_some() {
            self.delete(ns::SENT, Which::Keys(&[(chat_jid.to_string(), message_id.to_string())])).await?;
        }
        Ok(taken)
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete(ns::SENT, Which::PrunedBefore(cutoff_timestamp)).await?;
        self.mem.delete_expired_sent_messages(cutoff_timestamp).await
    }

    async fn store_pending_inbound(&self, chat: &str, sender: &str, id: &str, message: &[u8]) -> Result<()> {
        self.store_pending_inbound_batch(&[PendingInboundRow { chat, sender, id, message }]).await
    }

    async fn get_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<Option<Vec<u8>>> {
        self.mem.get_pending_inbound(chat, sender, id).await
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete_pending_inbound_batch(&[PendingInboundKey { chat, sender, id }]).await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete(ns::PENDING, Which::PrunedBefore(cutoff_timestamp)).await?;
        self.mem.delete_expired_pending_inbound(cutoff_timestamp).await
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let now = crate::time::now();
        let puts = rows
            .iter()
            .map(|r| {
                let mut row = put(ns::PENDING, r.chat, joined(r.sender, r.id), r.message.to_vec());
                row.ts = now;
                row
            })
            .collect();
        self.write(puts).await?;
        self.mem.store_pending_inbound_batch(rows).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        let rows: Vec<(String, String)> = keys.iter().map(|k| (k.chat.to_string(), joined(k.sender, k.id))).collect();
        self.delete(ns::PENDING, Which::Keys(&rows)).await?;
        self.mem.delete_pending_inbound_batch(keys).await
    }
}

impl SharedStore {
    async fn write_tc_token_back(&self, jid: &str) -> Result<()> {
        match self.mem.get_tc_token(jid).await? {
            Some(kept) => self.write(vec![put(ns::TC_TOKEN, "", jid, json(&kept)?)]).await,
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl MsgSecretStore for SharedStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        let stored = self.mem.put_msg_secrets(entries.clone()).await?;
        let mut rows = Vec::with_capacity(entries.len());
        for entry in &entries {
            // The secret and the merged message time as the in-memory store kept them; the
            // deadline merges in the statement (0 means never).
            let kept = self.mem.get_msg_secret_with_ts(&entry.chat, &entry.sender, &entry.msg_id).await?;
            let (secret, message_ts) = kept.unwrap_or((entry.secret.to_vec(), entry.message_ts));
            let mut row = put(
                ns::MSG_SECRET,
                entry.chat.as_ref(),
                joined(&entry.sender, &entry.msg_id),
                secret_value(&secret, message_ts),
            );
            row.ts = entry.expires_at;
            rows.push(row);
        }
        self.write_merging(rows, true).await?;
        Ok(stored)
    }

    async fn get_msg_secret(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<Vec<u8>>> {
        self.mem.get_msg_secret(chat, sender, msg_id).await
    }

    async fn get_msg_secret_with_ts(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<(Vec<u8>, i64)>> {
        self.mem.get_msg_secret_with_ts(chat, sender, msg_id).await
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete(ns::MSG_SECRET, Which::ExpiredBy(cutoff_timestamp)).await?;
        self.mem.delete_expired_msg_secrets(cutoff_timestamp).await
    }
}

#[async_trait::async_trait]
impl DeviceStore for SharedStore {
    async fn save(&self, device: &Device) -> Result<()> {
        self.write(vec![put(ns::DEVICE, "", "", json(device)?)]).await?;
        self.mem.save(device).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.mem.load().await
    }

    async fn exists(&self) -> Result<bool> {
        self.mem.exists().await
    }

    async fn create(&self) -> Result<i32> {
        let id = self.mem.create().await?;
        if let Some(device) = self.mem.load().await? {
            self.write(vec![put(ns::DEVICE, "", "", json(&device)?)]).await?;
        }
        Ok(id)
    }
}
