//! Owns the live connector session of every instance in this process and records what the
//! sessions report, through one lane per instance (see `lanes`). Sessions are opened lazily on
//! first use, so an instance created by another process (the `wag admin` CLI, a second server)
//! works here without a restart.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex as StdMutex},
    time::Duration,
};

use sea_orm::DatabaseConnection;
use tokio::{sync::Mutex, time::Instant};

use super::{
    lanes::Lanes,
    sandbox::{self, SandboxSession},
    Connector, ConnectorError, ConnectorEvent, ConnectorSession, EventKind, EventSink, InstanceBoot, LinkState,
    Unrecorded,
};
use crate::{
    error::{Error, Result},
    instances::{self, Instance},
};

/// What a server that does not run an instance's connection says of it.
const ELSEWHERE: &str =
    "This instance's connection runs on another server of this gateway right now. Try again in a few seconds.";
/// What it says when the server that runs it cannot be reached.
const UNREACHABLE: &str =
    "The server that runs this instance's connection cannot be reached right now. Try again in a few seconds.";

/// How long a stopping server gives the lanes to store what is queued.
const LANES_CLOSE_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Registry {
    db: DatabaseConnection,
    connectors: HashMap<&'static str, Arc<dyn Connector>>,
    /// Connector names in the order given.
    order: Vec<&'static str>,
    sessions: Mutex<HashMap<String, Arc<dyn ConnectorSession>>>,
    lanes: Lanes,
    /// Sessions opened to link a phone that hold a live client meanwhile, by instance id.
    attempts: StdMutex<HashMap<String, Attempt>>,
    link_limits: LinkLimits,
    /// With several servers: what this node owns, and how it reaches the owners of the rest.
    cluster: std::sync::OnceLock<ClusterLink>,
}

/// A node's link to the cluster: connections are opened only for the instances it owns; what
/// needs another instance's connection is forwarded to its owner.
pub struct ClusterLink {
    pub node_id: String,
    pub owned: Arc<crate::cluster::node::Owned>,
    pub forwarder: crate::cluster::forward::Forwarder,
    /// Calls from other nodes already taken (each is done once).
    pub taken: crate::cluster::forward::Taken,
    pub key: crate::cluster::forward::ClusterKey,
    /// Instances known to have an owner row: no claim is tried for them again.
    pub placed: StdMutex<std::collections::HashSet<String>>,
}

/// How a send's hand-over to WhatsApp ended.
pub enum Handover {
    Sent(super::SentMessage),
    Refused(ConnectorError),
    /// Nothing was handed over: no connection to hand it to (here or at the owner).
    NoConnection(String),
    /// No answer in time: it may have gone out.
    Unknown(String),
}

/// How long a forwarded link action may take.
const FORWARD_LIMIT: Duration = Duration::from_secs(30);

/// Bounds on link attempts of connectors that hold a live client while waiting for a phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkLimits {
    /// Attempts one account may have running at once.
    pub per_account: usize,
    /// An attempt nobody looked at (connect tab, pairing code) for this long is stopped.
    pub idle: Duration,
}

impl From<crate::config::AccountCaps> for LinkLimits {
    fn from(caps: crate::config::AccountCaps) -> Self {
        LinkLimits { per_account: caps.live_link_attempts, idle: caps.link_idle }
    }
}

struct Attempt {
    account_id: i64,
    last_seen: Instant,
}

impl Registry {
    /// A registry without bounds on link attempts (tests, tools); `wag serve` uses
    /// [`Registry::with_link_limits`].
    pub fn new(db: DatabaseConnection, connectors: Vec<Arc<dyn Connector>>) -> Arc<Registry> {
        Self::with_link_limits(db, connectors, LinkLimits { per_account: usize::MAX, idle: Duration::MAX })
    }

    pub fn with_link_limits(
        db: DatabaseConnection,
        connectors: Vec<Arc<dyn Connector>>,
        link_limits: LinkLimits,
    ) -> Arc<Registry> {
        let order = connectors.iter().map(|c| c.name()).collect();
        let connectors = connectors.into_iter().map(|c| (c.name(), c)).collect();
        let lanes = Lanes::new(db.clone());
        Arc::new(Registry {
            db,
            connectors,
            order,
            sessions: Mutex::new(HashMap::new()),
            lanes,
            attempts: StdMutex::new(HashMap::new()),
            link_limits,
            cluster: std::sync::OnceLock::new(),
        })
    }

    /// The enabled connectors, the default for new instances first.
    pub fn connector_names(&self) -> Vec<&'static str> {
        self.order.clone()
    }

    pub fn has_connector(&self, name: &str) -> bool {
        self.connectors.contains_key(name)
    }

    /// Stores one connector event now, outside the instance's lane (portal actions, tests).
    pub async fn handle_event(&self, event: &ConnectorEvent) -> Result<()> {
        super::record::event(&self.db, event).await
    }

    /// Where the instance's session reports events: its lane, started on first use.
    pub fn sink(&self, instance_id: &str) -> EventSink {
        self.lanes.sink(instance_id)
    }

    /// With several servers, connections are opened only for the instances this node owns.
    /// Counts what the lanes store (inbound messages) in `metrics`.
    pub fn count_with(&self, metrics: Arc<crate::metrics::Metrics>) {
        self.lanes.count_with(metrics);
    }

    pub fn join_cluster(&self, link: ClusterLink) {
        self.lanes.fence_with(super::lanes::Fence { node_id: link.node_id.clone(), owned: link.owned.clone() });
        let _ = self.cluster.set(link);
    }

    pub fn cluster(&self) -> Option<&ClusterLink> {
        self.cluster.get()
    }

    /// Whether this process may run the instance's connection (always, on a single server).
    pub fn owns(&self, instance_id: &str) -> bool {
        self.cluster.get().is_none_or(|link| link.owned.epoch(instance_id).is_some())
    }

    /// The way to the instance's owner, when another node runs its connection. An instance
    /// nobody owns yet (just created) is taken here at once.
    async fn remote(&self, instance_id: &str) -> Option<&crate::cluster::forward::Forwarder> {
        let link = self.cluster.get().filter(|link| link.owned.epoch(instance_id).is_none())?;
        if link.placed.lock().unwrap_or_else(|p| p.into_inner()).contains(instance_id) {
            return Some(&link.forwarder);
        }
        match crate::cluster::ownership::claim_new(&self.db, &link.node_id, instance_id).await {
            Ok(Some(epoch)) => {
                link.owned.set(instance_id, Some(epoch));
                None
            }
            Ok(None) => {
                let mut placed = link.placed.lock().unwrap_or_else(|p| p.into_inner());
                if placed.len() >= 100_000 {
                    placed.clear();
                }
                placed.insert(instance_id.to_string());
                Some(&link.forwarder)
            }
            Err(e) => {
                tracing::warn!(instance_id, error = %e, "claiming a new instance failed");
                Some(&link.forwarder)
            }
        }
    }

    /// Forwards a link action to the instance's owner and reads its reply.
    async fn forwarded(
        &self,
        forwarder: &crate::cluster::forward::Forwarder,
        instance_id: &str,
        op: crate::cluster::forward::Op,
    ) -> Result<crate::cluster::forward::Reply> {
        use crate::cluster::forward::{Reply, Trouble};
        match forwarder.call(instance_id, op, FORWARD_LIMIT).await {
            Ok(Reply::Failed { failure }) => Err(failure.into()),
            Ok(reply) => Ok(reply),
            Err(trouble) => {
                tracing::warn!(instance_id, ?trouble, "a link action for another server's instance failed");
                Err(Error::Refused(match trouble {
                    Trouble::Unknown(_) => "The server that runs this instance did not answer in time. Check the instance before trying again.".into(),
                    _ => UNREACHABLE.into(),
                }))
            }
        }
    }

    /// Forwards an action whose reply is `Done`.
    async fn forwarded_done(
        &self,
        forwarder: &crate::cluster::forward::Forwarder,
        instance_id: &str,
        op: crate::cluster::forward::Op,
    ) -> Result<()> {
        match self.forwarded(forwarder, instance_id, op).await? {
            crate::cluster::forward::Reply::Done => Ok(()),
            other => Err(Error::Internal(format!("unexpected reply from the owning server: {other:?}"))),
        }
    }

    /// Hands a send to the instance's connection, here or at the node that runs it, waiting at
    /// most `limit`. Never tries twice.
    pub async fn hand_over(&self, instance: &Instance, message: super::OutgoingMessage, limit: Duration) -> Handover {
        use crate::cluster::forward::{Op, Reply, Trouble};
        if let Some(forwarder) = self.remote(&instance.id).await {
            return match forwarder.call(&instance.id, Op::Send { message }, limit).await {
                Ok(Reply::Sent { provider_message_id }) => Handover::Sent(super::SentMessage { provider_message_id }),
                Ok(Reply::SendRefused { refusal }) => Handover::Refused(refusal.into()),
                Ok(Reply::SendUnknown { reason }) => Handover::Unknown(reason),
                Ok(Reply::Failed { failure }) => Handover::NoConnection(format!("{failure:?}")),
                Ok(other) => Handover::Unknown(format!("unexpected reply: {other:?}")),
                Err(Trouble::Unknown(e)) => Handover::Unknown(e),
                Err(trouble) => Handover::NoConnection(format!("{trouble:?}")),
            };
        }
        let session = match self.session(instance).await {
            Ok(session) => session,
            Err(e) => return Handover::NoConnection(e.to_string()),
        };
        match tokio::time::timeout(limit, session.send(message)).await {
            Ok(Ok(sent)) => Handover::Sent(sent),
            Ok(Err(e)) => Handover::Refused(e),
            Err(_) => Handover::Unknown("no answer in time".into()),
        }
    }

    /// The instance's session in this process, opened on first use.
    pub async fn session(&self, instance: &Instance) -> Result<Arc<dyn ConnectorSession>> {
        if !self.owns(&instance.id) {
            return Err(Error::Refused(ELSEWHERE.into()));
        }
        let mut sessions = self.sessions.lock().await;
        if let Some(session) = sessions.get(&instance.id) {
            if let Some(attempt) = self.attempts().get_mut(&instance.id) {
                attempt.last_seen = Instant::now();
            }
            return Ok(session.clone());
        }
        let connector = self.connectors.get(instance.connector.as_str()).ok_or_else(|| {
            Error::invalid(format!("The {} connector is not enabled on this server.", instance.connector))
        })?;
        let is_attempt = connector.links_with_live_client() && instance.status == instances::InstanceStatus::Unlinked;
        if is_attempt {
            self.make_room_for_attempt(&mut sessions, instance.account_id).await?;
        }
        let fence = self.cluster.get().and_then(|link| {
            let epoch = link.owned.epoch(&instance.id)?;
            Some(super::SessionFence { node_id: link.node_id.clone(), epoch })
        });
        let banned_until = if connector.links_with_live_client() {
            instances::banned_until(&self.db, &instance.id).await?.filter(|until| *until > crate::time::now())
        } else {
            None
        };
        let boot = InstanceBoot {
            instance_id: instance.id.clone(),
            status: instance.status,
            linked_phone: instance.linked_phone.clone(),
            fence,
            banned_until,
        };
        let session = connector.open(boot, self.lanes.sink(&instance.id)).await.map_err(connector_error)?;
        sessions.insert(instance.id.clone(), session.clone());
        if is_attempt {
            let attempt = Attempt { account_id: instance.account_id, last_seen: Instant::now() };
            self.attempts().insert(instance.id.clone(), attempt);
        }
        Ok(session)
    }

    fn attempts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Attempt>> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Before an account starts another link attempt: attempts that linked meanwhile stop
    /// counting, idle ones are stopped, and if the account still has its fill, it is refused.
    async fn make_room_for_attempt(
        &self,
        sessions: &mut HashMap<String, Arc<dyn ConnectorSession>>,
        account_id: i64,
    ) -> Result<()> {
        let mine: Vec<(String, bool)> = self
            .attempts()
            .iter()
            .filter(|(_, a)| a.account_id == account_id)
            .map(|(id, a)| (id.clone(), a.last_seen.elapsed() >= self.link_limits.idle))
            .collect();
        let mut running = 0;
        for (instance_id, idle) in mine {
            let Some(session) = sessions.get(&instance_id).cloned() else {
                self.attempts().remove(&instance_id);
                continue;
            };
            if matches!(session.link_state().await, LinkState::Connected { .. }) {
                self.attempts().remove(&instance_id);
            } else if idle {
                self.attempts().remove(&instance_id);
                sessions.remove(&instance_id);
                session.close().await;
                tracing::info!(instance_id, "stopped an idle link attempt");
            } else {
                running += 1;
            }
        }
        if running >= self.link_limits.per_account {
            return Err(Error::Refused(format!(
                "This account is already linking {running} phones. Finish or leave one of them first: a link \
                 attempt nobody looks at stops after {} minutes.",
                self.link_limits.idle.as_secs().div_ceil(60)
            )));
        }
        Ok(())
    }

    /// Stops link attempts nobody has looked at for the idle time; linked ones stop counting.
    /// `wag serve` runs this every few seconds.
    pub async fn stop_idle_link_attempts(&self) {
        let idle: Vec<String> = self
            .attempts()
            .iter()
            .filter(|(_, a)| a.last_seen.elapsed() >= self.link_limits.idle)
            .map(|(id, _)| id.clone())
            .collect();
        for instance_id in idle {
            let session = self.sessions.lock().await.get(&instance_id).cloned();
            let linked = match &session {
                Some(session) => matches!(session.link_state().await, LinkState::Connected { .. }),
                None => false,
            };
            // Looked at again (or linked) while this ran: keep it.
            let still_idle =
                self.attempts().get(&instance_id).is_some_and(|a| a.last_seen.elapsed() >= self.link_limits.idle);
            if !still_idle && !linked {
                continue;
            }
            self.attempts().remove(&instance_id);
            if linked {
                continue;
            }
            let removed = {
                let mut sessions = self.sessions.lock().await;
                match (sessions.get(&instance_id), &session) {
                    (Some(now), Some(seen)) if Arc::ptr_eq(now, seen) => sessions.remove(&instance_id),
                    _ => None,
                }
            };
            if let Some(session) = removed {
                session.close().await;
                tracing::info!(instance_id, "stopped an idle link attempt");
            }
        }
    }

    /// Link attempts running now (for tests and metrics).
    pub fn link_attempts(&self) -> usize {
        self.attempts().len()
    }

    /// Opens the sessions of linked instances, so real connectors reconnect after a restart.
    pub async fn start_linked(&self) -> Result<()> {
        for instance in instances::list_linked(&self.db).await? {
            if !self.has_connector(&instance.connector) {
                continue;
            }
            if let Err(e) = self.session(&instance).await {
                tracing::warn!(instance_id = %instance.id, error = %e, "could not resume instance");
            }
        }
        Ok(())
    }

    pub async fn link_state(&self, instance: &Instance) -> Result<LinkState> {
        if let Some(forwarder) = self.remote(&instance.id).await {
            return match self.forwarded(forwarder, &instance.id, crate::cluster::forward::Op::LinkState).await {
                Ok(crate::cluster::forward::Reply::LinkState { state }) => Ok(state),
                Ok(_) | Err(_) => Ok(LinkState::Disconnected { reason: UNREACHABLE.into() }),
            };
        }
        Ok(self.session(instance).await?.link_state().await)
    }

    /// Ends the instance's session here without unlinking it: another node runs it now.
    pub async fn close_session(&self, instance_id: &str) {
        let removed = self.sessions.lock().await.remove(instance_id);
        self.attempts().remove(instance_id);
        // The next session here gets a lane of its own, checked against its own epoch; this
        // one's lane ends once the closed session lets go of it.
        self.lanes.remove(instance_id);
        if let Some(session) = removed {
            session.close().await;
        }
    }

    pub async fn disconnect(&self, instance: &Instance) -> Result<()> {
        if let Some(forwarder) = self.remote(&instance.id).await {
            return self.forwarded_done(forwarder, &instance.id, crate::cluster::forward::Op::Disconnect).await;
        }
        let kind = self.session(instance).await?.disconnect().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    pub async fn reconnect(&self, instance: &Instance) -> Result<()> {
        if let Some(forwarder) = self.remote(&instance.id).await {
            return self.forwarded_done(forwarder, &instance.id, crate::cluster::forward::Op::Reconnect).await;
        }
        let kind = self.session(instance).await?.reconnect().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    pub async fn logout(&self, instance: &Instance) -> Result<()> {
        if let Some(forwarder) = self.remote(&instance.id).await {
            return self.forwarded_done(forwarder, &instance.id, crate::cluster::forward::Op::Logout).await;
        }
        let kind = self.session(instance).await?.logout().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    /// Links by phone number: the code the customer types into the phone.
    pub async fn request_pair_code(&self, instance: &Instance, phone: &str) -> Result<String> {
        let phone = crate::send::phone::Phone::parse(phone).ok_or_else(|| {
            Error::invalid("Enter the phone's number in international format, starting with + and the country code.")
        })?;
        if let Some(forwarder) = self.remote(&instance.id).await {
            let op = crate::cluster::forward::Op::RequestPairCode { phone: phone.as_str().to_string() };
            return match self.forwarded(forwarder, &instance.id, op).await? {
                crate::cluster::forward::Reply::PairCode { code } => Ok(code),
                other => Err(Error::Internal(format!("unexpected reply from the owning server: {other:?}"))),
            };
        }
        self.session(instance).await?.request_pair_code(phone.as_str()).await.map_err(connector_error)
    }

    /// The sandbox's stand-in for scanning the QR code with a phone.
    pub async fn simulate_scan(&self, instance: &Instance) -> Result<()> {
        if instance.connector != sandbox::NAME {
            return Err(Error::invalid("Only sandbox instances can be linked without a phone."));
        }
        if let Some(forwarder) = self.remote(&instance.id).await {
            return self.forwarded_done(forwarder, &instance.id, crate::cluster::forward::Op::SimulateScan).await;
        }
        let session = self.session(instance).await?;
        let sandbox = session
            .as_any()
            .downcast_ref::<SandboxSession>()
            .ok_or_else(|| Error::Internal("sandbox instance without a sandbox session".into()))?;
        let kind = sandbox.simulate_scan().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    /// What the sandbox's simulated phone network delivers to a connected sandbox instance
    /// (an inbound message, a call, a group change), recorded before this returns.
    pub async fn sandbox_deliver(&self, instance: &Instance, kind: EventKind) -> Result<()> {
        if instance.connector != sandbox::NAME {
            return Err(Error::invalid("Only sandbox instances take simulated traffic."));
        }
        if let Some(forwarder) = self.remote(&instance.id).await {
            let op = crate::cluster::forward::Op::SandboxDeliver { kind };
            return self.forwarded_done(forwarder, &instance.id, op).await;
        }
        if !matches!(self.link_state(instance).await?, LinkState::Connected { .. }) {
            return Err(Error::Refused("The sandbox instance is not connected. Link it first.".into()));
        }
        // Through the lane, so concurrent deliveries share a transaction.
        let event = ConnectorEvent { instance_id: instance.id.clone(), kind };
        self.lanes
            .sink(&instance.id)
            .record(vec![event])
            .await
            .map_err(|e: Unrecorded| Error::Internal(format!("storing a sandbox delivery: {e}")))
    }

    /// Ends the instance's session here and drops what its connector stored (the instance was
    /// deleted). A linked device is unlinked from the phone first, where the connector can.
    pub async fn remove(&self, instance_id: &str) {
        // Out of the map first: the lock must not be held while the session talks to WhatsApp.
        let removed = self.sessions.lock().await.remove(instance_id);
        self.attempts().remove(instance_id);
        if let Some(session) = removed {
            if let Err(e) = session.logout().await {
                tracing::debug!(instance_id, error = %e, "logging out a deleted instance failed");
            }
            session.close().await;
        }
        self.lanes.remove(instance_id);
        for connector in self.connectors.values() {
            connector.forget(instance_id).await;
        }
    }

    /// Closes every session, all at once (a real connector's clean stop takes a few seconds
    /// each), then lets the lanes store what the sessions reported last.
    pub async fn shutdown(&self) {
        let sessions: Vec<_> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        futures::future::join_all(sessions.iter().map(|s| s.close())).await;
        drop(sessions);
        self.lanes.close(LANES_CLOSE_LIMIT).await;
    }

    async fn apply(&self, instance: &Instance, kind: EventKind) -> Result<()> {
        self.handle_event(&ConnectorEvent { instance_id: instance.id.clone(), kind }).await
    }
}

fn connector_error(e: ConnectorError) -> Error {
    match e {
        ConnectorError::NotConnected => Error::invalid("The instance is not linked to a phone yet."),
        ConnectorError::Unsupported(_) => Error::invalid(e.to_string()),
        other => {
            // The provider's own words are for the log, not for customers.
            tracing::warn!(error = %other, "connector action failed");
            Error::Refused("The WhatsApp connection reported a problem. Please try again shortly.".into())
        }
    }
}

/// The cluster node's hands: it runs the connections of the instances it owns.
#[async_trait::async_trait]
impl crate::cluster::node::Runner for Registry {
    async fn run(&self, instance_id: &str, epoch: i64) {
        let instance = match instances::find_for_connector(&self.db, instance_id).await {
            Ok(Some(instance)) => instance,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(instance_id, error = %e, "reading an instance this node took failed");
                return;
            }
        };
        // Unlinked instances open their connection when someone links them.
        if instance.status == instances::InstanceStatus::Unlinked || !self.has_connector(&instance.connector) {
            return;
        }
        if let Err(e) = self.session(&instance).await {
            tracing::warn!(instance_id, epoch, error = %e, "could not start an instance this node took");
        }
    }

    async fn stop(&self, instance_id: &str) {
        self.close_session(instance_id).await;
    }
}
