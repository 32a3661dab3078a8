//! Statements over many rows or keys at once. A batch's statement count is what a group-commit
//! transaction costs: every statement is a round trip, and on a busy machine each round trip
//! waits for two processes to be scheduled. So on PostgreSQL a batch of any size is one
//! statement: rows travel as one array per column (`INSERT … SELECT * FROM unnest($1::text[],
//! …)`) and key lists as one array (`col = ANY($1)`), and the statement text, hence its prepared
//! plan, is the same whatever the size. SQLite and MySQL take multi-row VALUES and IN lists cut
//! into pieces of a few shapes ([`super::shaped_chunks`]).
use sea_orm::{
    sea_query::{ArrayType, Expr, OnConflict, PgFunc, SimpleExpr},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, ExprTrait, IdenStatic, Iterable,
    Statement, Value,
};

use super::{shaped_chunks, INSERT_CHUNK};

/// Inserts `rows` (all with the same columns set), at most `chunk` per statement where rows go
/// as VALUES lists.
pub async fn insert<E, C>(conn: &C, rows: &[E::ActiveModel], chunk: usize) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Clone + Send,
    C: ConnectionTrait,
{
    insert_inner::<E, C>(conn, rows, chunk, None).await
}

/// Like [`insert`], leaving alone the rows whose `key` (a unique key) is taken already. Rows
/// must not repeat a key among themselves.
pub async fn insert_new<E, C>(conn: &C, rows: &[E::ActiveModel], key: &[E::Column]) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Clone + Send,
    C: ConnectionTrait,
{
    insert_inner::<E, C>(conn, rows, INSERT_CHUNK, Some(key)).await
}

async fn insert_inner<E, C>(
    conn: &C,
    rows: &[E::ActiveModel],
    chunk: usize,
    ignore_taken: Option<&[E::Column]>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Clone + Send,
    C: ConnectionTrait,
{
    if rows.is_empty() {
        return Ok(());
    }
    if conn.get_database_backend() == DbBackend::Postgres {
        let suffix = match ignore_taken {
            Some(key) => {
                let names: Vec<String> = key.iter().map(|c| format!("\"{}\"", c.as_str())).collect();
                format!(" ON CONFLICT ({}) DO NOTHING", names.join(", "))
            }
            None => String::new(),
        };
        conn.execute_raw(unnest_insert::<E>(rows, &suffix)?).await?;
        return Ok(());
    }
    for piece in shaped_chunks(rows, chunk.min(INSERT_CHUNK)) {
        let mut insert = E::insert_many(piece.to_vec());
        if let Some(key) = ignore_taken {
            insert = insert
                .on_conflict(OnConflict::columns(key.iter().copied()).do_nothing_on(key.iter().copied()).to_owned());
        }
        insert.exec_without_returning(conn).await?;
    }
    Ok(())
}

/// PostgreSQL: inserts `rows` with one statement and reads back `returning` (a column list, as
/// SQL) of every row, in no promised order.
pub async fn insert_returning<E, C>(
    conn: &C,
    rows: &[E::ActiveModel],
    returning: &str,
) -> Result<Vec<sea_orm::QueryResult>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
    C: ConnectionTrait,
{
    conn.query_all_raw(unnest_insert::<E>(rows, &format!(" RETURNING {returning}"))?).await
}

/// `INSERT INTO t (c…) SELECT … FROM unnest($1::type[], …)`, one array per column set in the
/// first row. The driver binds arrays without NULL elements, so a nullable column travels as its
/// values (a NULL as the type's zero) and a `boolean[]` saying which are NULL.
fn unnest_insert<E>(rows: &[E::ActiveModel], suffix: &str) -> Result<Statement, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E>,
{
    let Some(first) = rows.first() else {
        return Err(DbErr::Custom("an insert of no rows".into()));
    };
    let columns: Vec<E::Column> = E::Column::iter().filter(|c| first.get(*c).is_set()).collect();
    let mut names = Vec::with_capacity(columns.len());
    let mut picks = Vec::with_capacity(columns.len());
    let mut arrays = Vec::new();
    let mut aliases = Vec::new();
    let mut values = Vec::new();
    for column in &columns {
        let nullable = column.def().is_null();
        let mut cells = Vec::with_capacity(rows.len());
        let mut nulls = Vec::with_capacity(if nullable { rows.len() } else { 0 });
        for row in rows {
            let Some(value) = row.get(*column).into_value() else {
                return Err(DbErr::Custom(format!("a row lacks column {}", column.as_str())));
            };
            let (value, null) = split_null(value)?;
            if null && !nullable {
                return Err(DbErr::Custom(format!("NULL in column {}", column.as_str())));
            }
            cells.push(value);
            if nullable {
                nulls.push(Value::Bool(Some(null)));
            }
        }
        let element = cells[0].array_type();
        let cell = format!("u{}", aliases.len());
        names.push(format!("\"{}\"", column.as_str()));
        arrays.push(format!("${}::{}[]", values.len() + 1, pg_type(&element)?));
        aliases.push(cell.clone());
        values.push(Value::Array(element, Some(Box::new(cells))));
        if nullable {
            let null = format!("u{}", aliases.len());
            arrays.push(format!("${}::boolean[]", values.len() + 1));
            aliases.push(null.clone());
            values.push(Value::Array(ArrayType::Bool, Some(Box::new(nulls))));
            picks.push(format!("CASE WHEN {null} THEN NULL ELSE {cell} END"));
        } else {
            picks.push(cell);
        }
    }
    let sql = format!(
        "INSERT INTO \"{}\" ({}) SELECT {} FROM unnest({}) AS u({}){suffix}",
        E::default().table_name(),
        names.join(", "),
        picks.join(", "),
        arrays.join(", "),
        aliases.join(", ")
    );
    Ok(Statement::from_sql_and_values(DbBackend::Postgres, sql, values))
}

/// A value and whether it is NULL; a NULL becomes its type's zero (the array keeps its type).
fn split_null(value: Value) -> Result<(Value, bool), DbErr> {
    Ok(match value {
        Value::Bool(None) => (Value::Bool(Some(false)), true),
        Value::SmallInt(None) => (Value::SmallInt(Some(0)), true),
        Value::Int(None) => (Value::Int(Some(0)), true),
        Value::BigInt(None) => (Value::BigInt(Some(0)), true),
        Value::Double(None) => (Value::Double(Some(0.0)), true),
        Value::String(None) => (Value::String(Some(String::new())), true),
        Value::Bool(Some(_))
        | Value::SmallInt(Some(_))
        | Value::Int(Some(_))
        | Value::BigInt(Some(_))
        | Value::Double(Some(_))
        | Value::String(Some(_)) => (value, false),
        other => return Err(DbErr::Custom(format!("no array insert for {other:?}"))),
    })
}

fn pg_type(element: &ArrayType) -> Result<&'static str, DbErr> {
    Ok(match element {
        ArrayType::Bool => "boolean",
        ArrayType::SmallInt => "smallint",
        ArrayType::Int => "integer",
        ArrayType::BigInt => "bigint",
        ArrayType::Double => "double precision",
        ArrayType::String => "text",
        other => return Err(DbErr::Custom(format!("no array insert for {other:?} columns"))),
    })
}

/// `column IN values` as few conditions as the database allows: one `= ANY($1)` on
/// PostgreSQL, IN lists of shaped pieces elsewhere. Each condition selects its share; callers
/// run one statement per condition.
pub fn one_of<T>(backend: DbBackend, column: impl ColumnTrait, values: &[T]) -> Vec<SimpleExpr>
where
    T: Clone + Into<Value> + sea_orm::sea_query::ValueType,
{
    if values.is_empty() {
        return Vec::new();
    }
    if backend == DbBackend::Postgres {
        let array = Value::Array(T::array_type(), Some(Box::new(values.iter().cloned().map(Into::into).collect())));
        return vec![Expr::col(column).eq(PgFunc::any(Expr::val(array)))];
    }
    shaped_chunks(values, INSERT_CHUNK).map(|piece| column.is_in(piece.iter().cloned())).collect()
}

#[cfg(test)]
mod tests {
    use sea_orm::{ConnectionTrait, Database, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};

    use crate::entities::{contacted_recipient, message};

    /// A scratch database, and how to remove it.
    enum Scratch {
        Sqlite(std::path::PathBuf),
        Postgres { admin: DatabaseConnection, name: String },
    }

    impl Scratch {
        async fn remove(self) {
            match self {
                Scratch::Sqlite(dir) => drop(std::fs::remove_dir_all(dir)),
                Scratch::Postgres { admin, name } => {
                    let _ = admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
                }
            }
        }
    }

    /// A fresh migrated database: SQLite, and PostgreSQL when WAG_TEST_POSTGRES_URL is set.
    async fn databases() -> Vec<(DatabaseConnection, Scratch)> {
        let name = format!("wag_bulk_{}", crate::ids::new_id("t").to_ascii_lowercase());
        let dir = std::env::temp_dir().join(&name);
        let sqlite = crate::db::open(&format!("sqlite://{}?mode=rwc", dir.join("wag.db").display())).await.unwrap();
        let mut all = vec![(sqlite, Scratch::Sqlite(dir))];
        match std::env::var("WAG_TEST_POSTGRES_URL") {
            Ok(server) => {
                let admin = Database::connect(server.as_str()).await.unwrap();
                admin.execute_unprepared(&format!("CREATE DATABASE {name}")).await.unwrap();
                let (base, _) = server.rsplit_once('/').unwrap();
                let db = crate::db::open(&format!("{base}/{name}")).await.unwrap();
                all.push((db, Scratch::Postgres { admin, name }));
            }
            Err(_) => eprintln!("bulk statements on PostgreSQL not tested: WAG_TEST_POSTGRES_URL is not set"),
        }
        all
    }

    fn row(n: i64, media: bool) -> message::ActiveModel {
        message::ActiveModel {
            message_id: Set(format!("msg_bulk{n}")),
            account_id: Set(1),
            instance_id: Set("inst_bulk".into()),
            recipient: Set(format!("+1555000{n:04}")),
            purpose: Set("transactional".into()),
            kind: Set(if media { "image" } else { "text" }.into()),
            body: Set(String::new()),
            media_mime_type: Set(media.then(|| "image/png".to_string())),
            media_file_name: Set(media.then(String::new)),
            media_bytes: Set(media.then_some(0)),
            content_fingerprint: Set("f".into()),
            risk_score: Set(0),
            status: Set("accepted".into()),
            provider_message_id: Set(None),
            error: Set(None),
            source: Set("api".into()),
            conversation_id: Set(None),
            agent_extension: Set(None),
            idempotency_key: Set(None),
            created_at: Set(n),
            updated_at: Set(n),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn rows_keep_their_nulls_and_zeros_and_lists_find_every_key() {
        for (db, scratch) in databases().await {
            let backend = db.get_database_backend();
            // NULLs beside the zero values a NULL travels as (empty text, 0).
            let rows: Vec<message::ActiveModel> = (0..37).map(|n| row(n, n % 3 == 0)).collect();
            super::insert::<message::Entity, _>(&db, &rows, 8).await.unwrap();
            let stored = message::Entity::find().order_by_asc(message::Column::CreatedAt).all(&db).await.unwrap();
            assert_eq!(stored.len(), 37, "{backend:?}");
            for (n, m) in stored.iter().enumerate() {
                let media = n % 3 == 0;
                assert_eq!(m.message_id, format!("msg_bulk{n}"), "{backend:?}: rows in order");
                assert_eq!(m.media_mime_type.as_deref(), media.then_some("image/png"), "{backend:?}");
                assert_eq!(m.media_file_name.as_deref(), media.then_some(""), "{backend:?}: '' is not NULL");
                assert_eq!(m.media_bytes, media.then_some(0), "{backend:?}: 0 is not NULL");
                assert_eq!(m.provider_message_id, None, "{backend:?}");
            }

            let ids: Vec<i64> = stored.iter().map(|m| m.id).filter(|id| id % 2 == 0).collect();
            let mut found = Vec::new();
            for condition in super::one_of(backend, message::Column::Id, &ids) {
                found.extend(
                    message::Entity::find().filter(condition).all(&db).await.unwrap().into_iter().map(|m| m.id),
                );
            }
            found.sort_unstable();
            assert_eq!(found, ids, "{backend:?}: every listed key, no other");

            let contact = |phone: &str| contacted_recipient::ActiveModel {
                instance_id: Set("inst_bulk".into()),
                phone: Set(phone.into()),
                first_contacted_at: Set(1),
            };
            let key = [contacted_recipient::Column::InstanceId, contacted_recipient::Column::Phone];
            super::insert_new::<contacted_recipient::Entity, _>(&db, &[contact("+1"), contact("+2")], &key)
                .await
                .unwrap();
            super::insert_new::<contacted_recipient::Entity, _>(&db, &[contact("+2"), contact("+3")], &key)
                .await
                .unwrap();
            assert_eq!(contacted_recipient::Entity::find().all(&db).await.unwrap().len(), 3, "{backend:?}");
            db.close().await.ok();
            scratch.remove().await;
        }
    }
}
