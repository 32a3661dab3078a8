//! The task that owns an instance's client: builds it, notices when it stops without being asked,
//! and decides from what the client reported whether to rebuild it, wait, or leave it stopped.
use std::{sync::atomic::Ordering, sync::Arc, time::Duration};

use tokio::{sync::oneshot, task::JoinHandle};

use super::{Inner, Phase};
use crate::{
    connectors::{ConnectorEvent, EventKind},
    time,
};

/// How the supervisor's client ended, judged from the phase its events left behind.
enum Ending {
    /// WhatsApp ended the link: wipe the store and wait for the customer.
    Unlinked,
    /// Nothing to retry by itself (codes ran out, replaced, refused).
    Park,
    /// Come back after the ban.
    Ban(Option<i64>),
    /// Stopped for no reason it reported: rebuild after a pause.
    Crash,
}

/// Times in a row an owner takes its session back from a connection that replaced it.
const RECLAIMS: u32 = 3;

/// How long the events that explain a stop may trail it.
const ENDING_GRACE: Duration = Duration::from_secs(2);

pub(super) async fn supervise(inner: Arc<Inner>, mut stop: oneshot::Receiver<()>) {
    let mut failures = 0u32;
    let mut reclaims = 0u32;
    // A ban recorded before this session opened (by this server before a restart, or by the
    // instance's previous owner) is waited out before connecting: reconnecting mid-ban is
    // what WhatsApp punishes.
    if inner.banned_at_open.swap(false, Ordering::Relaxed) {
        if let Phase::Banned { until: Some(until), .. } = inner.phase() {
            let wait = (until - time::now()).max(0) as u64;
            tracing::info!(instance_id = %inner.instance_id, wait_secs = wait, "waiting out a temporary ban before connecting");
            if wait_or_stop(Duration::from_secs(wait), &mut stop).await {
                return;
            }
            inner.set_phase(Phase::Starting);
        }
    }
    loop {
        let bot = match inner.build_bot().await {
            Ok(bot) => bot,
            Err(e) => {
                failures += 1;
                tracing::error!(instance_id = %inner.instance_id, error = %e, failures, "starting the WhatsApp client failed");
                if wait_or_stop(inner.settings.restart_delay(failures), &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let mut handle = bot.spawn();
        let client = handle.client();
        if inner.boot_linked.swap(false, Ordering::Relaxed) && client.pn().is_none() {
            // Linked by the database's account, but the keys are gone (a lost or restored data
            // folder): say so instead of showing a connected instance that can do nothing.
            let kind = EventKind::LoggedOut {
                reason: "the session file of this linked device is missing; link the phone again".into(),
                forced: true,
            };
            let _ = inner.events.send(ConnectorEvent { instance_id: inner.instance_id.clone(), kind }).await;
        }
        if client.pn().is_some() && inner.phase() == Phase::Starting {
            inner.set_phase(Phase::Reconnecting);
        }
        inner.set_client(Some(client.clone()));
        let started = tokio::time::Instant::now();
        let stopped = tokio::select! {
            _ = &mut stop => true,
            _ = &mut handle => false,
        };
        if stopped {
            if tokio::time::timeout(inner.settings.stop_timeout, handle.shutdown()).await.is_err() {
                tracing::warn!(instance_id = %inner.instance_id, "the WhatsApp client did not stop in time");
            }
            inner.set_client(None);
            return;
        }
        inner.set_client(None);
        // The client's events reach us on a task of their own and can trail its end: give the
        // last ones (logged out, banned, replaced) a moment to land before judging why it
        // stopped. Holding `client` keeps that task able to deliver them.
        let deadline = tokio::time::Instant::now() + ENDING_GRACE;
        while !matches!(inner.phase(), Phase::LoggedOut { .. } | Phase::Idle { .. } | Phase::Banned { .. })
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(client);
        let ending = match inner.phase() {
            Phase::LoggedOut { .. } => Ending::Unlinked,
            Phase::Idle { .. } => Ending::Park,
            Phase::Banned { until, .. } => Ending::Ban(until),
            _ => Ending::Crash,
        };
        match ending {
            Ending::Unlinked => {
                inner.wipe_store().await;
                return;
            }
            Ending::Park => {
                // Replaced while this node owns the instance: the other connection is a stale
                // node's (paused past its lease, resumed before it fenced itself). It stops
                // within the lease; ours comes back after it, a bounded number of times.
                if started.elapsed() > inner.settings.restart_max {
                    reclaims = 0;
                }
                if inner.replaced.swap(false, Ordering::Relaxed) && reclaims < RECLAIMS && inner.still_owner().await {
                    reclaims += 1;
                    tracing::warn!(instance_id = %inner.instance_id, reclaims, "another connection replaced this owner's session; taking it back");
                    inner.set_phase(Phase::Reconnecting);
                    if wait_or_stop(inner.settings.restart_first, &mut stop).await {
                        return;
                    }
                    continue;
                }
                return;
            }
            Ending::Ban(until) => {
                failures = 0;
                let wait = until.map_or(3600, |u| (u - time::now()).max(60)) as u64;
                if wait_or_stop(Duration::from_secs(wait), &mut stop).await {
                    return;
                }
            }
            Ending::Crash => {
                // A client that ran a good while before stopping starts the count over.
                if started.elapsed() > inner.settings.restart_max {
                    failures = 0;
                }
                failures += 1;
                inner.restarts.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(instance_id = %inner.instance_id, failures, "the WhatsApp client stopped by itself; restarting");
                inner.set_phase(Phase::Reconnecting);
                if wait_or_stop(inner.settings.restart_delay(failures), &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps, unless told to stop first (then `true`).
async fn wait_or_stop(wait: Duration, stop: &mut oneshot::Receiver<()>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(wait) => false,
        _ = stop => true,
    }
}

pub(super) struct Supervisor {
    pub(super) stop: oneshot::Sender<()>,
    pub(super) task: JoinHandle<()>,
}
