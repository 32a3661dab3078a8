//! whatsapp-rust's inbound durability hook. With it registered the client acknowledges a
//! message to WhatsApp only after [`DurableInbound::on_messages`] returns `Ok`, and it calls the
//! hook again with the same messages when WhatsApp redelivers them (after an error, a crash or a
//! lost connection). So the hook returns only once the messages are stored with their events —
//! through the instance's lane, in the same transaction as whatever else it gathered — and an
//! error leaves them unacknowledged for WhatsApp to deliver again. Storing is idempotent by the
//! provider's message id, so a redelivery is stored once.
use std::sync::{Arc, Weak};

use whatsapp_rust::{types::events::InboundMessage as WaInbound, Client, InboundDurabilityHook};

use super::{events, ClientContext, Inner};
use crate::connectors::{ConnectorEvent, EventKind};

pub(super) struct DurableInbound {
    pub(super) inner: Weak<Inner>,
}

#[async_trait::async_trait]
impl InboundDurabilityHook for DurableInbound {
    async fn on_messages(&self, client: Arc<Client>, batch: &[WaInbound]) -> whatsapp_rust::anyhow::Result<()> {
        let Some(inner) = self.inner.upgrade() else {
            whatsapp_rust::anyhow::bail!("the session is closed");
        };
        let ctx = ClientContext(&client);
        let mut received = Vec::with_capacity(batch.len());
        for message in batch {
            // Our own echoes, reactions and the like have nothing to store: acknowledged as they are.
            if let Some(inbound) = events::inbound_message(message, &ctx).await {
                received.push(ConnectorEvent {
                    instance_id: inner.instance_id.clone(),
                    kind: EventKind::MessageReceived(inbound),
                });
            }
        }
        inner.events.record(received).await.map_err(|e| {
            tracing::warn!(instance_id = %inner.instance_id, error = %e, "inbound messages not stored; WhatsApp will deliver them again");
            whatsapp_rust::anyhow::anyhow!(e)
        })
    }
}
