//! A node's row: registered at start with a new id per boot, its heartbeat renewed every third
//! of the lease, marked stopped when it leaves.
use sea_orm::{ConnectionTrait, DatabaseConnection};

use super::{statement, NOW_MS};
use crate::error::Result;

pub async fn register(db: &DatabaseConnection, id: &str, address: &str) -> Result<()> {
    let sql = format!(
        "INSERT INTO cluster_nodes (id, address, started_at, heartbeat_at, stopped_at) VALUES ($1, $2, {NOW_MS}, {NOW_MS}, NULL)"
    );
    db.execute_raw(statement(db, sql, vec![id.into(), address.into()])).await?;
    Ok(())
}

/// Renews the heartbeat; `false` when the row is gone or marked stopped.
pub async fn heartbeat(db: &DatabaseConnection, id: &str) -> Result<bool> {
    let sql = format!("UPDATE cluster_nodes SET heartbeat_at = {NOW_MS} WHERE id = $1 AND stopped_at IS NULL");
    Ok(db.execute_raw(statement(db, sql, vec![id.into()])).await?.rows_affected() == 1)
}

/// Leaves the cluster: the node is stopped and its instances are free for the others at once.
pub async fn leave(db: &DatabaseConnection, id: &str) -> Result<()> {
    let sql = "UPDATE instance_owners SET node_id = NULL WHERE node_id = $1".to_string();
    db.execute_raw(statement(db, sql, vec![id.into()])).await?;
    let sql = format!("UPDATE cluster_nodes SET stopped_at = {NOW_MS} WHERE id = $1");
    db.execute_raw(statement(db, sql, vec![id.into()])).await?;
    Ok(())
}

/// Nodes whose lease is current.
pub async fn live_count(db: &DatabaseConnection, lease_ms: i64) -> Result<i64> {
    let sql =
        format!("SELECT COUNT(*) AS n FROM cluster_nodes WHERE stopped_at IS NULL AND heartbeat_at > {NOW_MS} - $1");
    let row = db.query_one_raw(statement(db, sql, vec![lease_ms.into()])).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
}

/// Milliseconds until the lease of the first other live node runs out unless it renews. A node
/// wakes just after that moment rather than up to a tick later, so a dead node's instances move
/// within about the lease (a live node renews every third of it and so never wakes anyone).
pub async fn next_expiry_ms(db: &DatabaseConnection, id: &str, lease_ms: i64) -> Result<Option<i64>> {
    let sql = format!(
        "SELECT MIN(heartbeat_at) + $2 - {NOW_MS} AS ms FROM cluster_nodes \
         WHERE id <> $1 AND stopped_at IS NULL AND heartbeat_at > {NOW_MS} - $2"
    );
    let row = db.query_one_raw(statement(db, sql, vec![id.into(), lease_ms.into()])).await?;
    Ok(row.map(|r| r.try_get::<Option<i64>>("", "ms")).transpose()?.flatten())
}
