//! Exact counters under concurrency, on every database: a row per (key, window) and an atomic
//! conditional `UPDATE … SET n = n + 1 WHERE … AND n < limit`. Racing requests never read and
//! then write; the database admits exactly `limit` of them.
use sea_orm::{
    sea_query::{Alias, Expr, OnConflict, Query, SimpleExpr},
    ConnectionTrait, DbErr, ExprTrait, Value,
};

/// Where a counter lives: a table, its key columns with their values, and the count column.
pub struct Counter {
    pub table: &'static str,
    pub keys: Vec<(&'static str, Value)>,
    pub count_column: &'static str,
}

impl Counter {
    fn key_condition(&self) -> SimpleExpr {
        self.keys
            .iter()
            .map(|(col, value)| Expr::col(Alias::new(*col)).eq(value.clone()))
            .reduce(|a, b| a.and(b))
            // No key columns would be a programming error: match nothing rather than every row.
            .unwrap_or_else(|| Expr::val(false).into())
    }

    async fn ensure_row<C: ConnectionTrait>(&self, db: &C) -> Result<(), DbErr> {
        let mut insert = Query::insert();
        let key_columns: Vec<Alias> = self.keys.iter().map(|(c, _)| Alias::new(*c)).collect();
        let mut columns = key_columns.clone();
        columns.push(Alias::new(self.count_column));
        let mut values: Vec<SimpleExpr> = self.keys.iter().map(|(_, v)| Expr::val(v.clone())).collect();
        values.push(Expr::val(0));
        insert
            .into_table(Alias::new(self.table))
            .columns(columns)
            .values_panic(values)
            .on_conflict(OnConflict::columns(key_columns.clone()).do_nothing_on(key_columns).to_owned());
        db.execute(&insert).await?;
        Ok(())
    }

    /// Takes one unit if fewer than `limit` are taken; the count after taking it, or `None`
    /// when the limit is reached. The window's row exists after its first unit, so the usual
    /// case is one statement.
    pub async fn try_take<C: ConnectionTrait>(&self, db: &C, limit: i64) -> Result<Option<i64>, DbErr> {
        if let Some(count) = self.take_existing(db, limit).await? {
            return Ok(Some(count));
        }
        // No row yet, or the limit is reached: make sure of the row and ask again.
        self.ensure_row(db).await?;
        self.take_existing(db, limit).await
    }

    async fn take_existing<C: ConnectionTrait>(&self, db: &C, limit: i64) -> Result<Option<i64>, DbErr> {
        let count = Alias::new(self.count_column);
        let mut update = Query::update();
        update
            .table(Alias::new(self.table))
            .value(count.clone(), Expr::col(count.clone()).add(1))
            .and_where(self.key_condition())
            .and_where(Expr::col(count.clone()).lt(limit));
        if db.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            // No RETURNING on MySQL: read the count back inside the same transaction.
            if db.execute(&update).await?.rows_affected() != 1 {
                return Ok(None);
            }
            return self.current(db).await.map(Some);
        }
        update.returning_col(count);
        match db.query_one(&update).await? {
            Some(row) => Ok(Some(i64::from(row.try_get_by_index::<i32>(0)?))),
            None => Ok(None),
        }
    }

    /// Gives one unit back (a refused or failed send).
    pub async fn give_back<C: ConnectionTrait>(&self, db: &C) -> Result<(), DbErr> {
        let count = Alias::new(self.count_column);
        let mut update = Query::update();
        update
            .table(Alias::new(self.table))
            .value(count.clone(), Expr::col(count.clone()).sub(1))
            .and_where(self.key_condition())
            .and_where(Expr::col(count).gt(0));
        db.execute(&update).await?;
        Ok(())
    }

    /// Adds `delta` (negative gives units back; the count never goes below zero), making the
    /// row when there is none.
    pub async fn add<C: ConnectionTrait>(&self, db: &C, delta: i64) -> Result<(), DbErr> {
        if delta == 0 {
            return Ok(());
        }
        let count = Alias::new(self.count_column);
        let sum = Expr::col(count.clone()).add(delta);
        let clamped = Expr::case(sum.clone().lt(0), 0).finally(sum);
        let mut update = Query::update();
        update.table(Alias::new(self.table)).value(count, clamped).and_where(self.key_condition());
        if db.execute(&update).await?.rows_affected() == 1 || delta < 0 {
            return Ok(());
        }
        self.ensure_row(db).await?;
        db.execute(&update).await?;
        Ok(())
    }

    /// The current count (0 when the row does not exist yet).
    pub async fn current<C: ConnectionTrait>(&self, db: &C) -> Result<i64, DbErr> {
        let mut select = Query::select();
        select.column(Alias::new(self.count_column)).from(Alias::new(self.table)).and_where(self.key_condition());
        let row = db.query_one(&select).await?;
        match row {
            Some(row) => Ok(i64::from(row.try_get_by_index::<i32>(0)?)),
            None => Ok(0),
        }
    }
}

/// The key of a counter row as a tuple of its key columns' values, for [`Counters`].
pub trait CounterKey: Clone + Eq + std::hash::Hash + sea_orm::TryGetableMany {
    fn values(&self) -> Vec<Value>;
}

impl CounterKey for (String, i64) {
    fn values(&self) -> Vec<Value> {
        vec![self.0.clone().into(), self.1.into()]
    }
}

impl CounterKey for (i64, String, String) {
    fn values(&self) -> Vec<Value> {
        vec![self.0.into(), self.1.clone().into(), self.2.clone().into()]
    }
}

/// Many counters of one table at once, for a batch: one statement makes the missing rows, one
/// reads (and locks) them all, one adds every difference. On PostgreSQL one upsert makes, locks
/// and reads them.
pub struct Counters {
    pub table: &'static str,
    pub key_columns: &'static [&'static str],
    pub count_column: &'static str,
}

impl Counters {
    fn condition(&self, keys: &[Vec<Value>]) -> SimpleExpr {
        keys.iter()
            .map(|values| {
                self.key_columns
                    .iter()
                    .zip(values)
                    .map(|(col, value)| Expr::col(Alias::new(*col)).eq(value.clone()))
                    .reduce(|a, b| a.and(b))
                    .unwrap_or_else(|| Expr::val(false).into())
            })
            .reduce(|a, b| a.or(b))
            .unwrap_or_else(|| Expr::val(false).into())
    }

    /// The counts of `keys` (rows made first), locked until the transaction ends (PostgreSQL,
    /// MySQL; SQLite's write transaction excludes other writers).
    pub async fn lock<C: ConnectionTrait, K: CounterKey>(
        &self,
        db: &C,
        keys: &[K],
    ) -> Result<std::collections::HashMap<K, i64>, DbErr> {
        let mut counts = std::collections::HashMap::with_capacity(keys.len());
        let mut distinct = std::collections::HashSet::with_capacity(keys.len());
        let keys: Vec<&K> = keys.iter().filter(|k| distinct.insert(*k)).collect();
        let width = self.key_columns.len();
        for chunk in crate::db::shaped_chunks(&keys, 64) {
            let values: Vec<Vec<Value>> = chunk.iter().map(|k| k.values()).collect();
            let columns: Vec<Alias> = self.key_columns.iter().map(|c| Alias::new(*c)).collect();
            let mut insert = Query::insert();
            let mut all_columns = columns.clone();
            all_columns.push(Alias::new(self.count_column));
            insert.into_table(Alias::new(self.table)).columns(all_columns.clone());
            for row in &values {
                let mut exprs: Vec<SimpleExpr> = row.iter().map(|v| Expr::val(v.clone()).into()).collect();
                exprs.push(Expr::val(0).into());
                insert.values_panic(exprs);
            }
            if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
                // One statement makes, locks and reads the rows: an upsert that leaves the
                // count as it is locks the existing row like SELECT … FOR UPDATE.
                let count = Alias::new(self.count_column);
                insert.on_conflict(
                    OnConflict::columns(columns.clone())
                        .value(count.clone(), Expr::col((Alias::new(self.table), count)))
                        .to_owned(),
                );
                insert.returning(Query::returning().columns(all_columns));
                for row in db.query_all(&insert).await? {
                    let key = K::try_get_many_by_index(&row)?;
                    counts.insert(key, i64::from(row.try_get_by_index::<i32>(width)?));
                }
                continue;
            }
            insert.on_conflict(OnConflict::columns(columns.clone()).do_nothing_on(columns.clone()).to_owned());
            db.execute(&insert).await?;

            let mut select = Query::select();
            select.columns(columns).column(Alias::new(self.count_column)).from(Alias::new(self.table));
            select.and_where(self.condition(&values));
            if db.get_database_backend() != sea_orm::DatabaseBackend::Sqlite {
                select.lock(sea_orm::sea_query::LockType::Update);
            }
            for row in db.query_all(&select).await? {
                let key = K::try_get_many_by_index(&row)?;
                let count = i64::from(row.try_get_by_index::<i32>(width)?);
                counts.insert(key, count);
            }
        }
        Ok(counts)
    }

    /// Adds each difference (negative ones give units back; no count goes below zero). The
    /// rows must exist ([`Counters::lock`] made them).
    pub async fn add<C: ConnectionTrait, K: CounterKey>(&self, db: &C, deltas: &[(K, i64)]) -> Result<(), DbErr> {
        let deltas: Vec<&(K, i64)> = deltas.iter().filter(|(_, d)| *d != 0).collect();
        for chunk in crate::db::shaped_chunks(&deltas, 64) {
            let keys: Vec<Vec<Value>> = chunk.iter().map(|(k, _)| k.values()).collect();
            let count = Alias::new(self.count_column);
            let mut case = sea_orm::sea_query::CaseStatement::new();
            for (values, (_, delta)) in keys.iter().zip(chunk) {
                case = case.case(self.condition(std::slice::from_ref(values)), *delta);
            }
            let sum = Expr::col(count.clone()).add(case.finally(0));
            let clamped = Expr::case(sum.clone().lt(0), 0).finally(sum);
            let mut update = Query::update();
            update.table(Alias::new(self.table)).value(count, clamped).and_where(self.condition(&keys));
            db.execute(&update).await?;
        }
        Ok(())
    }
}
