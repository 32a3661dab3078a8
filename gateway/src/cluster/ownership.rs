//! Which node runs each instance's live connection. A node takes instances without a live
//! owner (new ones, those of a dead or departed node) up to its fair share, each take raising
//! the instance's epoch; it gives back what is over its share (plus one, so two nodes do not
//! hand an instance back and forth) once its clients for them are stopped.
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, Value};

use super::{count, statement, NOW_MS};
use crate::error::Result;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    pub instance_id: String,
    pub epoch: i64,
}

/// What a round of balancing changed for this node.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Balance {
    pub gained: Vec<Owned>,
    /// Over this node's share: stop their clients, then [`release`] them.
    pub surplus: Vec<String>,
}

fn owned_rows(rows: Vec<sea_orm::QueryResult>) -> Result<Vec<Owned>> {
    rows.into_iter()
        .map(|row| Ok(Owned { instance_id: row.try_get("", "instance_id")?, epoch: row.try_get("", "epoch")? }))
        .collect()
}

/// The instances this node owns now, as the database says.
pub async fn owned_by(db: &DatabaseConnection, node_id: &str) -> Result<Vec<Owned>> {
    let sql = "SELECT instance_id, epoch FROM instance_owners WHERE node_id = $1 ORDER BY instance_id".to_string();
    owned_rows(db.query_all_raw(statement(db, sql, vec![node_id.into()])).await?)
}

/// Takes this node's share of instances without a live owner; names its surplus.
pub async fn balance(db: &DatabaseConnection, node_id: &str, lease_ms: i64) -> Result<Balance> {
    let total = count(db, "SELECT COUNT(*) AS n FROM instances".into(), vec![]).await?;
    let live = super::membership::live_count(db, lease_ms).await?.max(1);
    let share = (total + live - 1) / live;
    let mine =
        count(db, "SELECT COUNT(*) AS n FROM instance_owners WHERE node_id = $1".into(), vec![node_id.into()]).await?;
    let mut result = Balance::default();
    if mine < share {
        let mut want = share - mine;
        // Instances nobody has owned yet.
        let sql = format!(
            "INSERT INTO instance_owners (instance_id, node_id, epoch, since) \
             SELECT i.id, $1, 1, {NOW_MS} FROM instances i \
             WHERE NOT EXISTS (SELECT 1 FROM instance_owners o WHERE o.instance_id = i.id) \
             ORDER BY i.id LIMIT $2 ON CONFLICT (instance_id) DO NOTHING RETURNING instance_id, epoch"
        );
        let fresh = owned_rows(db.query_all_raw(statement(db, sql, vec![node_id.into(), want.into()])).await?)?;
        want -= fresh.len() as i64;
        result.gained.extend(fresh);
        if want > 0 {
            // Instances whose owner left or stopped renewing its lease; rows another node is
            // taking at this moment are skipped, not waited for.
            let sql = format!(
                "UPDATE instance_owners o SET node_id = $1, epoch = o.epoch + 1, since = {NOW_MS} \
                 WHERE o.instance_id IN ( \
                   SELECT f.instance_id FROM instance_owners f \
                   LEFT JOIN cluster_nodes n ON n.id = f.node_id AND n.stopped_at IS NULL AND n.heartbeat_at > {NOW_MS} - $2 \
                   WHERE n.id IS NULL ORDER BY f.instance_id LIMIT $3 FOR UPDATE OF f SKIP LOCKED) \
                 RETURNING o.instance_id, o.epoch"
            );
            let values = vec![node_id.into(), lease_ms.into(), want.into()];
            result.gained.extend(owned_rows(db.query_all_raw(statement(db, sql, values)).await?)?);
        }
    } else if mine > share + 1 {
        let sql =
            "SELECT instance_id, epoch FROM instance_owners WHERE node_id = $1 ORDER BY instance_id DESC LIMIT $2"
                .into();
        let surplus =
            owned_rows(db.query_all_raw(statement(db, sql, vec![node_id.into(), (mine - share).into()])).await?)?;
        result.surplus = surplus.into_iter().map(|o| o.instance_id).collect();
    }
    Ok(result)
}

/// Takes an instance nobody has owned yet (created a moment ago) for this node, so that the
/// first request for it need not wait for a node's tick. `None` when it has an owner row.
pub async fn claim_new(db: &DatabaseConnection, node_id: &str, instance_id: &str) -> Result<Option<i64>> {
    let sql = format!(
        "INSERT INTO instance_owners (instance_id, node_id, epoch, since) \
         SELECT i.id, $1, 1, {NOW_MS} FROM instances i WHERE i.id = $2 \
         ON CONFLICT (instance_id) DO NOTHING RETURNING epoch"
    );
    let row = db.query_one_raw(statement(db, sql, vec![node_id.into(), instance_id.into()])).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "epoch")).transpose()?)
}

/// Gives instances back (their clients here are stopped): any live node may take them.
pub async fn release(db: &DatabaseConnection, node_id: &str, instance_ids: &[String]) -> Result<()> {
    if instance_ids.is_empty() {
        return Ok(());
    }
    let sql = "UPDATE instance_owners SET node_id = NULL WHERE node_id = $1 AND instance_id = ANY($2)".to_string();
    let ids: Vec<Value> = instance_ids.iter().map(|id| Value::from(id.as_str())).collect();
    let array = Value::Array(sea_orm::sea_query::ArrayType::String, Some(Box::new(ids)));
    db.execute_raw(statement(db, sql, vec![node_id.into(), array])).await?;
    Ok(())
}

/// Whether `node_id` still owns the instance at `epoch`: a node that lost it (its lease ran out
/// while it was paused) must not write what only the owner may.
pub async fn holds<C: ConnectionTrait>(conn: &C, instance_id: &str, node_id: &str, epoch: i64) -> Result<bool> {
    let sql = "SELECT COUNT(*) AS n FROM instance_owners WHERE instance_id = $1 AND node_id = $2 AND epoch = $3";
    let statement = Statement::from_sql_and_values(
        conn.get_database_backend(),
        sql,
        vec![instance_id.into(), node_id.into(), epoch.into()],
    );
    let row = conn.query_one_raw(statement).await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0) == 1)
}
