//! Owns the live connector session of every instance in this process and records what the
//! sessions report. Sessions are opened lazily on first use, so an instance created by another
//! process (the `wag admin` CLI, a second server) works here without a restart.
use std::{collections::HashMap, sync::Arc};

use sea_orm::DatabaseConnection;
use tokio::sync::{mpsc, Mutex};

use super::{
    sandbox::{self, SandboxSession},
    Connector, ConnectorError, ConnectorEvent, ConnectorSession, EventKind, InstanceBoot, LinkState,
};
use crate::{
    error::{Error, Result},
    instances::{self, Instance, InstanceStatus},
};

const EVENT_BUFFER: usize = 1024;
const RECEIPT_RETRIES: u32 = 20;
const RECEIPT_RETRY_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

pub struct Registry {
    db: DatabaseConnection,
    connectors: HashMap<&'static str, Arc<dyn Connector>>,
    /// Connector names in the order given.
    order: Vec<&'static str>,
    sessions: Mutex<HashMap<String, Arc<dyn ConnectorSession>>>,
    events: mpsc::Sender<ConnectorEvent>,
}

impl Registry {
    /// Builds the registry and the receiver its event loop ([`Registry::run_events`]) drains.
    pub fn new(
        db: DatabaseConnection,
        connectors: Vec<Arc<dyn Connector>>,
    ) -> (Arc<Registry>, mpsc::Receiver<ConnectorEvent>) {
        let (tx, rx) = mpsc::channel(EVENT_BUFFER);
        let order = connectors.iter().map(|c| c.name()).collect();
        let connectors = connectors.into_iter().map(|c| (c.name(), c)).collect();
        (Arc::new(Registry { db, connectors, order, sessions: Mutex::new(HashMap::new()), events: tx }), rx)
    }

    /// The enabled connectors, the default for new instances first.
    pub fn connector_names(&self) -> Vec<&'static str> {
        self.order.clone()
    }

    pub fn has_connector(&self, name: &str) -> bool {
        self.connectors.contains_key(name)
    }

    /// Records events until every sender is gone or `shutdown` fires.
    pub async fn run_events(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<ConnectorEvent>,
        mut shutdown: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    Some(event) => {
                        if let Err(e) = self.handle_event(&event).await {
                            tracing::error!(instance_id = %event.instance_id, error = %e, "recording a connector event failed");
                        }
                    }
                    None => return,
                },
                _ = shutdown.changed() => {
                    // The sessions are closed by now: record what they reported last.
                    while let Ok(event) = rx.try_recv() {
                        if let Err(e) = self.handle_event(&event).await {
                            tracing::error!(instance_id = %event.instance_id, error = %e, "recording a connector event failed");
                        }
                    }
                    return;
                }
            }
        }
    }

    /// The one place connector events change stored state.
    pub async fn handle_event(&self, event: &ConnectorEvent) -> Result<()> {
        let id = event.instance_id.as_str();
        match &event.kind {
            EventKind::Connected { phone } => {
                instances::record_status(
                    &self.db,
                    id,
                    InstanceStatus::Connected,
                    Some(phone.clone()),
                    Some("connected"),
                )
                .await?;
                instances::set_connection_alert(&self.db, id, None).await?;
            }
            EventKind::Disconnected { reason } => {
                instances::record_status(&self.db, id, InstanceStatus::Disconnected, None, Some(reason)).await?;
            }
            EventKind::LoggedOut { reason, forced } => {
                instances::record_status(&self.db, id, InstanceStatus::Unlinked, Some(None), Some(reason)).await?;
                if *forced {
                    let alert = format!("WhatsApp ended the link to the phone: {reason}");
                    instances::set_connection_alert(&self.db, id, Some(&alert)).await?;
                }
            }
            EventKind::TemporarilyBanned { reason, until } => {
                let detail = match until {
                    Some(until) => {
                        format!("Temporarily banned by WhatsApp until {}: {reason}", crate::time::rfc3339(*until))
                    }
                    None => format!("Temporarily banned by WhatsApp: {reason}"),
                };
                let changed =
                    instances::record_status(&self.db, id, InstanceStatus::Disconnected, None, Some(&detail)).await?;
                let alert = match until {
                    Some(until) => format!(
                        "Temporarily banned by WhatsApp: {reason}. Sending is possible again after {}.",
                        crate::time::display(*until)
                    ),
                    None => detail.clone(),
                };
                instances::set_connection_alert(&self.db, id, Some(&alert)).await?;
                // A ban must reach the customer's systems even when the status was already
                // "disconnected" and so no status event went out.
                if changed.is_none() {
                    if let Some(instance) = instances::find_for_connector(&self.db, id).await? {
                        let fields = crate::fields! {
                            "status" => instance.status.as_str(),
                            "state" => "temporarily_banned",
                            "detail" => detail,
                            "banned_until" => until.map(crate::time::rfc3339),
                        };
                        self.emit_instance_event(
                            &instance,
                            crate::events::EventKind::InstanceConnectionUpdated,
                            fields,
                        )
                        .await?;
                    }
                }
            }
            EventKind::MessageStatus { provider_message_id, status, just_sent, .. } => {
                let known =
                    crate::message_log::apply_receipt_if_known(&self.db, id, provider_message_id, *status).await?;
                if known.is_none() && *just_sent {
                    // The receipt overtook the write of the message's provider id: try again
                    // shortly rather than lose it.
                    let (db, id, provider_message_id, status) =
                        (self.db.clone(), id.to_string(), provider_message_id.clone(), *status);
                    tokio::spawn(async move {
                        for _ in 0..RECEIPT_RETRIES {
                            tokio::time::sleep(RECEIPT_RETRY_WAIT).await;
                            match crate::message_log::apply_receipt_if_known(&db, &id, &provider_message_id, status)
                                .await
                            {
                                Ok(Some(_)) => return,
                                Ok(None) => continue,
                                Err(e) => {
                                    tracing::error!(instance_id = %id, error = %e, "applying a receipt failed");
                                    return;
                                }
                            }
                        }
                        tracing::debug!(instance_id = %id, "receipt for an unknown message dropped");
                    });
                }
            }
            EventKind::QrUpdated { code, expires_at } => {
                if let Some(instance) = instances::find_for_connector(&self.db, id).await? {
                    let fields = crate::fields! {"qr_code" => code, "expires_at" => crate::time::rfc3339(*expires_at)};
                    self.emit_instance_event(&instance, crate::events::EventKind::InstanceQrUpdated, fields).await?;
                }
            }
            EventKind::MessageReceived(message) => {
                if let Some(instance) = instances::find_for_connector(&self.db, id).await? {
                    crate::inbound::receive(&self.db, &instance, message).await?;
                }
            }
            EventKind::Call { from, missed, at } => {
                if let Some(instance) = instances::find_for_connector(&self.db, id).await? {
                    crate::inbound::call(&self.db, &instance, from, *missed, *at).await?;
                }
            }
            EventKind::GroupUpdated { group_id, change } => {
                if let Some(instance) = instances::find_for_connector(&self.db, id).await? {
                    crate::inbound::group_updated(&self.db, &instance, group_id, change).await?;
                }
            }
            EventKind::ConnectionUpdated { state } => {
                tracing::debug!(instance_id = %id, state, "connection state reported");
                if let Some(instance) = instances::find_for_connector(&self.db, id).await? {
                    let fields = crate::fields! {"status" => instance.status.as_str(), "state" => state};
                    self.emit_instance_event(&instance, crate::events::EventKind::InstanceConnectionUpdated, fields)
                        .await?;
                }
            }
        }
        Ok(())
    }

    async fn emit_instance_event(
        &self,
        instance: &Instance,
        kind: crate::events::EventKind,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        let source = crate::events::Source {
            account_id: instance.account_id,
            instance_id: &instance.id,
            instance_name: &instance.name,
        };
        let txn = crate::db::begin_write(&self.db).await?;
        crate::events::emit(&txn, source, kind, fields).await?;
        crate::db::commit_and_wake(txn).await?;
        Ok(())
    }

    /// The instance's session in this process, opened on first use.
    pub async fn session(&self, instance: &Instance) -> Result<Arc<dyn ConnectorSession>> {
        let mut sessions = self.sessions.lock().await;
        if let Some(session) = sessions.get(&instance.id) {
            return Ok(session.clone());
        }
        let connector = self.connectors.get(instance.connector.as_str()).ok_or_else(|| {
            Error::invalid(format!("The {} connector is not enabled on this server.", instance.connector))
        })?;
        let boot = InstanceBoot {
            instance_id: instance.id.clone(),
            status: instance.status,
            linked_phone: instance.linked_phone.clone(),
        };
        let session = connector.open(boot, self.events.clone()).await.map_err(connector_error)?;
        sessions.insert(instance.id.clone(), session.clone());
        Ok(session)
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
        Ok(self.session(instance).await?.link_state().await)
    }

    pub async fn disconnect(&self, instance: &Instance) -> Result<()> {
        let kind = self.session(instance).await?.disconnect().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    pub async fn reconnect(&self, instance: &Instance) -> Result<()> {
        let kind = self.session(instance).await?.reconnect().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    pub async fn logout(&self, instance: &Instance) -> Result<()> {
        let kind = self.session(instance).await?.logout().await.map_err(connector_error)?;
        self.apply(instance, kind).await
    }

    /// Links by phone number: the code the customer types into the phone.
    pub async fn request_pair_code(&self, instance: &Instance, phone: &str) -> Result<String> {
        let phone = crate::send::phone::Phone::parse(phone).ok_or_else(|| {
            Error::invalid("Enter the phone's number in international format, starting with + and the country code.")
        })?;
        self.session(instance).await?.request_pair_code(phone.as_str()).await.map_err(connector_error)
    }

    /// The sandbox's stand-in for scanning the QR code with a phone.
    pub async fn simulate_scan(&self, instance: &Instance) -> Result<()> {
        if instance.connector != sandbox::NAME {
            return Err(Error::invalid("Only sandbox instances can be linked without a phone."));
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
        if !matches!(self.link_state(instance).await?, LinkState::Connected { .. }) {
            return Err(Error::Refused("The sandbox instance is not connected. Link it first.".into()));
        }
        self.apply(instance, kind).await
    }

    /// Ends the instance's session here and drops what its connector stored (the instance was
    /// deleted). A linked device is unlinked from the phone first, where the connector can.
    pub async fn remove(&self, instance_id: &str) {
        // Out of the map first: the lock must not be held while the session talks to WhatsApp.
        let removed = self.sessions.lock().await.remove(instance_id);
        if let Some(session) = removed {
            if let Err(e) = session.logout().await {
                tracing::debug!(instance_id, error = %e, "logging out a deleted instance failed");
            }
            session.close().await;
        }
        for connector in self.connectors.values() {
            connector.forget(instance_id).await;
        }
    }

    /// Closes every session, all at once: a real connector's clean stop takes a few seconds each.
    pub async fn shutdown(&self) {
        let sessions: Vec<_> = self.sessions.lock().await.drain().map(|(_, s)| s).collect();
        futures::future::join_all(sessions.iter().map(|s| s.close())).await;
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
