//! Several `wag serve` processes on one PostgreSQL database. Each server is a node: it registers
//! a row with a heartbeat in the database's clock (`membership`), and each instance's live
//! connection runs on exactly one node, recorded with an epoch that grows at every change of
//! owner (`ownership`). A node takes its fair share of instances that have no live owner, gives
//! back what is over its share when another node joins, and stops its clients before its lease
//! can run out when it cannot renew it (`node`). Only PostgreSQL: the statements use its clock,
//! `SKIP LOCKED` and `RETURNING`.
pub mod forward;
pub mod membership;
pub mod node;
pub mod ownership;

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use crate::error::Result;

/// The database's clock in milliseconds: every node judges leases by the same clock.
pub(crate) const NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint";

/// A PostgreSQL statement with `$n` values.
pub(crate) fn statement(db: &DatabaseConnection, sql: String, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(db.get_database_backend(), sql, values)
}

/// The `n` column of a one-row `SELECT COUNT(*) AS n`.
pub(crate) async fn count(db: &DatabaseConnection, sql: String, values: Vec<Value>) -> Result<i64> {
    let row = db.query_one_raw(statement(db, sql, values)).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
}

/// A node as `wag admin cluster` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeView {
    pub id: String,
    pub address: String,
    pub alive: bool,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub heartbeat_age_ms: i64,
    pub instances_owned: i64,
}

/// An instance's owner and epoch.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct OwnerView {
    pub instance_id: String,
    pub node_id: Option<String>,
    pub epoch: i64,
}

/// Nodes that have not left, newest first, with whether their lease is current.
pub async fn nodes(db: &DatabaseConnection, lease_ms: i64) -> Result<Vec<NodeView>> {
    let sql = format!(
        "SELECT n.id, n.address, {NOW_MS} - n.heartbeat_at AS age, \
         (SELECT COUNT(*) FROM instance_owners o WHERE o.node_id = n.id) AS owned \
         FROM cluster_nodes n WHERE n.stopped_at IS NULL ORDER BY n.started_at DESC, n.id"
    );
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    rows.into_iter()
        .map(|row| {
            let age: i64 = row.try_get("", "age")?;
            Ok(NodeView {
                id: row.try_get("", "id")?,
                address: row.try_get("", "address")?,
                alive: age < lease_ms,
                heartbeat_age_ms: age,
                instances_owned: row.try_get("", "owned")?,
            })
        })
        .collect()
}

/// Every instance's owner row.
pub async fn owners(db: &DatabaseConnection) -> Result<Vec<OwnerView>> {
    let sql = "SELECT instance_id, node_id, epoch FROM instance_owners ORDER BY instance_id";
    let rows = db.query_all_raw(Statement::from_string(db.get_database_backend(), sql)).await?;
    rows.into_iter()
        .map(|row| {
            Ok(OwnerView {
                instance_id: row.try_get("", "instance_id")?,
                node_id: row.try_get("", "node_id")?,
                epoch: row.try_get("", "epoch")?,
            })
        })
        .collect()
}
