//! The reconciler: a message still `accepted` long after admission was being sent when a
//! process died. Whether WhatsApp got it cannot be known, so it is never sent again: it
//! becomes `failed` with the error `interrupted` (and `message.failed` is emitted), its quota
//! unit stays taken, and its Idempotency-Key answers `gateway_send_failed` from then on.
use std::time::Duration;

use tokio::sync::watch;

use crate::{error::Result, events::Source, instances, message_log, state::AppState, time};

const BATCH: u64 = 200;

/// Runs at start and then every half of `WAG_SEND_RECONCILE_AFTER_SECS` until shutdown.
pub async fn run(state: AppState, mut shutdown: watch::Receiver<bool>) {
    let every = Duration::from_secs((state.config.send.reconcile_after_secs as u64 / 2).max(1));
    loop {
        match settle_interrupted(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(messages = n, "settled sends interrupted by a crash as failed (interrupted)"),
            Err(e) => tracing::error!(error = %e, "reconciling interrupted sends failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Settles every interrupted send found now; returns how many.
pub async fn settle_interrupted(state: &AppState) -> Result<u64> {
    let before = time::now() - state.config.send.reconcile_after_secs;
    let mut settled = 0;
    let mut skipped = std::collections::HashSet::new();
    loop {
        let rows = message_log::stale_accepted(&state.db, before, BATCH + skipped.len() as u64).await?;
        let fresh: Vec<_> = rows.into_iter().filter(|r| !skipped.contains(&r.id)).collect();
        if fresh.is_empty() {
            return Ok(settled);
        }
        for row in fresh {
            // Still being sent by this process (a settle retrying while the database is away).
            if state.sends.is_running(row.id) {
                skipped.insert(row.id);
                continue;
            }
            let name = instances::find_for_connector(&state.db, &row.instance_id).await?.map(|i| i.name);
            let source = Source {
                account_id: row.account_id,
                instance_id: &row.instance_id,
                instance_name: name.as_deref().unwrap_or_default(),
            };
            let txn = crate::db::begin_write(&state.db).await?;
            let outcome = async {
                if message_log::mark_failed(&txn, source, row.id, "interrupted").await? {
                    if let Some(key) = &row.idempotency_key {
                        let answer = state.answers.send_failed(row.id);
                        crate::send::idempotency::complete(&txn, row.account_id, key, 502, &answer).await?;
                    }
                    return Ok(true);
                }
                Ok::<_, crate::Error>(false)
            }
            .await;
            match outcome {
                Ok(changed) => {
                    crate::db::commit_and_wake(txn).await?;
                    if changed {
                        settled += 1;
                    }
                }
                Err(e) => {
                    let _ = txn.rollback().await;
                    return Err(e);
                }
            }
        }
    }
}
