//! Operations that need an instance's live connection (a send, a link code, unlinking, the
//! sandbox's controls), handed by the server a request reached to the node that runs the
//! connection, over HTTP signed with a key derived from the shared master key. Admission,
//! idempotency and settling of a send stay with the server that took the request: only the
//! hand-over to WhatsApp travels, and it is never sent again by this module.
use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::NOW_MS;
use crate::{
    config::MasterKey,
    connectors::{ConnectorError, EventKind, LinkState, OutgoingMessage},
};

pub const PATH: &str = "/internal/cluster/connector";
pub const SIGNATURE_HEADER: &str = "x-wag-cluster-signature";
/// A signed call is taken within this many seconds of its timestamp, once.
const FRESH_SECS: i64 = 60;

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Send { message: OutgoingMessage },
    LinkState,
    RequestPairCode { phone: String },
    Disconnect,
    Reconnect,
    Logout,
    SimulateScan,
    SandboxDeliver { kind: EventKind },
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Call {
    /// Unique per call: the owner takes each once.
    pub id: String,
    pub instance_id: String,
    pub op: Op,
}

/// A connector's refusal of a send, as it travels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum SendRefusal {
    NotConnected,
    Rejected(String),
    NotOnWhatsApp,
    RateLimited,
    Unavailable(String),
}

impl From<ConnectorError> for SendRefusal {
    fn from(e: ConnectorError) -> Self {
        match e {
            ConnectorError::NotConnected => SendRefusal::NotConnected,
            ConnectorError::Rejected(r) => SendRefusal::Rejected(r),
            ConnectorError::NotOnWhatsApp => SendRefusal::NotOnWhatsApp,
            ConnectorError::RateLimited => SendRefusal::RateLimited,
            ConnectorError::Unavailable(r) => SendRefusal::Unavailable(r),
            ConnectorError::Unsupported(what) => SendRefusal::Unavailable(format!("unsupported: {what}")),
        }
    }
}

impl From<SendRefusal> for ConnectorError {
    fn from(e: SendRefusal) -> Self {
        match e {
            SendRefusal::NotConnected => ConnectorError::NotConnected,
            SendRefusal::Rejected(r) => ConnectorError::Rejected(r),
            SendRefusal::NotOnWhatsApp => ConnectorError::NotOnWhatsApp,
            SendRefusal::RateLimited => ConnectorError::RateLimited,
            SendRefusal::Unavailable(r) => ConnectorError::Unavailable(r),
        }
    }
}

/// A domain error of the owner's registry, as it travels (internal details stay in its log).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    Invalid(String),
    Refused(String),
    Internal,
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::NotFound => Failure::NotFound,
            crate::Error::Invalid(m) => Failure::Invalid(m),
            crate::Error::Refused(m) => Failure::Refused(m),
            other => {
                tracing::error!(error = %other, "a forwarded connector call failed");
                Failure::Internal
            }
        }
    }
}

impl From<Failure> for crate::Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NotFound => crate::Error::NotFound,
            Failure::Invalid(m) => crate::Error::Invalid(m),
            Failure::Refused(m) => crate::Error::Refused(m),
            Failure::Internal => crate::Error::Internal("the owning server could not do it".into()),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Reply {
    Sent {
        provider_message_id: String,
    },
    SendRefused {
        refusal: SendRefusal,
    },
    /// The owner's connection gave no answer in time: the message may have gone out.
    SendUnknown {
        reason: String,
    },
    LinkState {
        state: LinkState,
    },
    PairCode {
        code: String,
    },
    Done,
    Failed {
        failure: Failure,
    },
    /// The receiving node does not run the instance (it moved meanwhile).
    NotOwner,
}

/// Why a call did not come back with a reply.
#[derive(Debug, PartialEq, Eq)]
pub enum Trouble {
    /// No live node owns the instance right now.
    NoOwner,
    /// It never reached the owner: nothing was done.
    NotDelivered(String),
    /// It may have reached the owner and been done (a send may have gone out).
    Unknown(String),
}

/// The signing key: derived from the master key for this one purpose.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl ClusterKey {
    pub fn derive(master: &MasterKey) -> ClusterKey {
        let mut mac = crate::secrets::hmac_sha256(&master.0);
        mac.update(b"wag cluster calls v1");
        ClusterKey(mac.finalize().into_bytes().into())
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = crate::secrets::hmac_sha256(&self.0);
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        format!("t={timestamp},v1={}", hex::encode(self.mac(timestamp, body).finalize().into_bytes()))
    }

    /// Whether `header` signs `body` and is fresh at `now` (compared in constant time).
    pub fn verify(&self, header: &str, body: &[u8], now: i64) -> bool {
        let mut timestamp = None;
        let mut signature = None;
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
                Some(("v1", v)) => signature = hex::decode(v).ok(),
                _ => {}
            }
        }
        let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return false };
        if now.checked_sub(timestamp).is_none_or(|age| age.unsigned_abs() > FRESH_SECS as u64) {
            return false;
        }
        self.mac(timestamp, body).verify_slice(&signature).is_ok()
    }
}

/// Call ids taken within the freshness window: a captured call is not done twice.
#[derive(Default)]
pub struct Taken(Mutex<HashMap<String, Instant>>);

impl Taken {
    /// `true` the first time `id` is seen within the window.
    pub fn first(&self, id: &str) -> bool {
        let mut taken = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let window = Duration::from_secs(2 * FRESH_SECS as u64);
        if taken.len() > 10_000 {
            taken.retain(|_, at| at.elapsed() < window);
        }
        match taken.get(id) {
            Some(at) if at.elapsed() < window => false,
            _ => {
                taken.insert(id.to_string(), Instant::now());
                true
            }
        }
    }
}

/// The calling side: finds the owner in the database and posts the call to it.
pub struct Forwarder {
    db: DatabaseConnection,
    key: ClusterKey,
    lease_ms: i64,
    client: reqwest::Client,
}

impl Forwarder {
    pub fn new(db: DatabaseConnection, master: &MasterKey, lease: Duration) -> Forwarder {
        // Nodes talk to each other directly, never through a proxy from the environment.
        let client = reqwest::Client::builder().no_proxy().build().unwrap_or_default();
        Forwarder { db, key: ClusterKey::derive(master), lease_ms: lease.as_millis() as i64, client }
    }

    /// The address of the live node that owns the instance.
    async fn owner_address(&self, instance_id: &str) -> crate::Result<Option<String>> {
        let sql = format!(
            "SELECT n.address FROM instance_owners o JOIN cluster_nodes n ON n.id = o.node_id \
             WHERE o.instance_id = $1 AND n.stopped_at IS NULL AND n.heartbeat_at > {NOW_MS} - $2"
        );
        let statement = Statement::from_sql_and_values(
            self.db.get_database_backend(),
            sql,
            vec![instance_id.into(), self.lease_ms.into()],
        );
        let row = self.db.query_one_raw(statement).await?;
        Ok(row.map(|r| r.try_get::<String>("", "address")).transpose()?)
    }

    /// Posts `op` to the instance's owner and waits at most `limit` for its reply. An owner
    /// that lost the instance meanwhile is asked once more, after the new owner is known.
    pub async fn call(&self, instance_id: &str, op: Op, limit: Duration) -> Result<Reply, Trouble> {
        let started = Instant::now();
        let deadline = started + limit;
        // An instance without a live owner (its node just died and its lease ran out) gets one
        // within a node's tick or two (a third of the lease each).
        let owner_wait = (Duration::from_millis(self.lease_ms as u64) * 2 / 3 + Duration::from_secs(1)).min(limit);
        let mut moved = 0;
        loop {
            let address = match self.owner_address(instance_id).await {
                Ok(Some(address)) => address,
                Ok(None) if started.elapsed() < owner_wait => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    continue;
                }
                Ok(None) => return Err(Trouble::NoOwner),
                Err(e) => return Err(Trouble::NotDelivered(format!("finding the owner: {e}"))),
            };
            let call = Call { id: crate::ids::new_id("call"), instance_id: instance_id.to_string(), op: op.clone() };
            let body = serde_json::to_vec(&call).map_err(|e| Trouble::NotDelivered(e.to_string()))?;
            let signature = self.key.sign(crate::time::now(), &body);
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
            let sent = self
                .client
                .post(format!("{address}{PATH}"))
                .header(SIGNATURE_HEADER, signature)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(left)
                .body(body)
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) if e.is_connect() => return Err(Trouble::NotDelivered(e.to_string())),
                Err(e) => return Err(Trouble::Unknown(e.to_string())),
            };
            if !response.status().is_success() {
                // Refused before anything was done (signature, body): nothing happened there.
                return Err(Trouble::NotDelivered(format!("the owner answered HTTP {}", response.status())));
            }
            match response.json::<Reply>().await {
                // The instance moved between the lookup and the call: ask its new owner.
                Ok(Reply::NotOwner) if moved < 2 => moved += 1,
                Ok(Reply::NotOwner) => return Err(Trouble::NoOwner),
                Ok(reply) => return Ok(reply),
                Err(e) => return Err(Trouble::Unknown(e.to_string())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_signed_fresh_and_taken_once() {
        let key = ClusterKey::derive(&MasterKey([3; 32]));
        let body = br#"{"id":"call_1"}"#;
        let header = key.sign(1_000, body);
        assert!(key.verify(&header, body, 1_030));
        assert!(!key.verify(&header, body, 1_061), "stale");
        assert!(!key.verify(&header, b"{}", 1_000), "another body");
        assert!(!ClusterKey::derive(&MasterKey([4; 32])).verify(&header, body, 1_000), "another key");
        assert!(!key.verify("t=1000,v1=00", body, 1_000));
        assert!(!key.verify(&format!("t={},v1=00", i64::MIN), body, 1_000));
        let taken = Taken::default();
        assert!(taken.first("call_1"));
        assert!(!taken.first("call_1"));
        assert!(taken.first("call_2"));
    }

    #[test]
    fn sends_travel_with_their_bytes() {
        let message = OutgoingMessage {
            to: "+966501234567".into(),
            content: crate::connectors::OutgoingContent::Media {
                kind: crate::connectors::MediaKind::Document,
                mime_type: "application/pdf".into(),
                file_name: Some("INV-1.pdf".into()),
                data: vec![0, 1, 2, 255],
                caption: None,
            },
        };
        let call = Call { id: "call_1".into(), instance_id: "inst_1".into(), op: Op::Send { message } };
        let text = serde_json::to_string(&call).unwrap();
        assert!(text.contains("AAEC/w=="), "{text}");
        let back: Call = serde_json::from_str(&text).unwrap();
        let Op::Send { message } = back.op else { panic!("not a send") };
        let crate::connectors::OutgoingContent::Media { data, .. } = message.content else { panic!("not media") };
        assert_eq!(data, vec![0, 1, 2, 255]);
    }
}
