//! What the server counts for Prometheus (`GET /metrics`, off unless configured). One registry
//! per server, not a process-wide recorder: tests run several servers in one process, and an
//! operator scraping a node sees that node. Counters are bumped where the work happens; the
//! gauges that describe stored state (webhook backlog, instances by state) are read from the
//! database when scraped, with indexed or grouped queries, never per request.
//!
//! No label holds a phone number, key, account email or id: outcomes are error codes, routes are
//! templates, instances are counted by connector and state.
use std::sync::atomic::AtomicU64;

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};
use sea_orm::DatabaseConnection;

use crate::error::Result;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    send_requests: Family<Labels, Counter>,
    send_duration: Histogram,
    inbound_messages: Counter,
    webhook_deliveries: Family<Labels, Counter>,
    threecx_requests: Family<Labels, Counter>,
    http_requests: Family<Labels, Counter>,
    webhook_backlog: Gauge,
    webhook_oldest_pending: Gauge<f64, AtomicU64>,
    instances: Family<Labels, Gauge>,
    node_instances: Gauge,
}

impl Metrics {
    /// `node`: this server's node id when it is one of several.
    pub fn new(node: Option<&str>) -> Metrics {
        let mut registry = match node {
            Some(id) => Registry::with_labels([("node".into(), id.to_string().into())].into_iter()),
            None => Registry::default(),
        };
        let send_requests = Family::<Labels, Counter>::default();
        registry.register(
            "wag_send_requests",
            "Send requests answered, by outcome: sent, dry_run, or the error code",
            send_requests.clone(),
        );
        // 1 ms to about 33 s.
        let send_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register("wag_send_duration_seconds", "Time to answer a send request", send_duration.clone());
        let inbound_messages = Counter::default();
        registry.register(
            "wag_inbound_messages",
            "Inbound messages stored (a redelivered message counts once)",
            inbound_messages.clone(),
        );
        let webhook_deliveries = Family::<Labels, Counter>::default();
        registry.register(
            "wag_webhook_deliveries",
            "Webhook delivery attempts by result: delivered, retry (failed, tried again later) or failed (given up)",
            webhook_deliveries.clone(),
        );
        let threecx_requests = Family::<Labels, Counter>::default();
        registry.register(
            "wag_threecx_requests",
            "3CX integration requests by outcome: ok, recorded, sent, skipped:<reason>, or the error code",
            threecx_requests.clone(),
        );
        let http_requests = Family::<Labels, Counter>::default();
        registry.register("wag_http_requests", "HTTP requests by route template and status", http_requests.clone());
        let webhook_backlog = Gauge::default();
        registry.register("wag_webhook_backlog", "Webhook deliveries waiting to be delivered", webhook_backlog.clone());
        let webhook_oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "wag_webhook_oldest_pending_seconds",
            "Age of the oldest webhook delivery still waiting",
            webhook_oldest_pending.clone(),
        );
        let instances = Family::<Labels, Gauge>::default();
        registry.register("wag_instances", "Instances by connector and state", instances.clone());
        let node_instances = Gauge::default();
        if node.is_some() {
            registry.register(
                "wag_node_instances_owned",
                "Instances whose connection this node runs",
                node_instances.clone(),
            );
        }
        Metrics {
            registry,
            send_requests,
            send_duration,
            inbound_messages,
            webhook_deliveries,
            threecx_requests,
            http_requests,
            webhook_backlog,
            webhook_oldest_pending,
            instances,
            node_instances,
        }
    }

    pub fn send_answered(&self, outcome: &str, seconds: f64) {
        self.send_requests.get_or_create(&vec![("outcome", outcome.to_string())]).inc();
        self.send_duration.observe(seconds);
    }

    pub fn inbound_stored(&self, new_messages: u64) {
        self.inbound_messages.inc_by(new_messages);
    }

    /// `result`: delivered, retry or failed.
    pub fn webhook_attempt(&self, result: &'static str) {
        self.webhook_deliveries.get_or_create(&vec![("result", result.to_string())]).inc();
    }

    pub fn threecx_answered(&self, outcome: &str) {
        self.threecx_requests.get_or_create(&vec![("outcome", outcome.to_string())]).inc();
    }

    /// `route`: the matched route template (`/api/send-message`, `/instances/{id}`), never the
    /// raw path.
    pub fn http_answered(&self, route: &str, status: u16) {
        self.http_requests.get_or_create(&vec![("route", route.to_string()), ("status", status.to_string())]).inc();
    }

    /// The Prometheus text exposition, with the stored-state gauges read now. `owned`: the
    /// instances this node runs (several servers only).
    pub async fn render(&self, db: &DatabaseConnection, owned: Option<usize>) -> Result<String> {
        let (backlog, oldest) = crate::operator::webhook_backlog(db, crate::time::now()).await?;
        self.webhook_backlog.set(backlog);
        self.webhook_oldest_pending.set(oldest.unwrap_or(0) as f64);
        self.instances.clear();
        for (connector, state, n) in crate::operator::instances_by_state(db).await? {
            self.instances.get_or_create(&vec![("connector", connector), ("state", state)]).inc_by(n);
        }
        if let Some(owned) = owned {
            self.node_instances.set(owned as i64);
        }
        let mut out = String::new();
        encode(&mut out, &self.registry).map_err(|e| crate::Error::Internal(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_carry_only_their_labels() {
        let metrics = Metrics::new(Some("node_1"));
        metrics.send_answered("sent", 0.004);
        metrics.send_answered("daily_message_limit_exceeded", 0.002);
        metrics.http_answered("/api/send-message", 200);
        let mut out = String::new();
        encode(&mut out, &metrics.registry).unwrap();
        assert!(out.contains("wag_send_requests_total{node=\"node_1\",outcome=\"sent\"} 1"), "{out}");
        assert!(out.contains("wag_send_duration_seconds_count{node=\"node_1\"} 2"), "{out}");
        assert!(out.contains("wag_node_instances_owned"), "{out}");
    }
}
