//! Plain SQL for the operator's cross-tenant reads, written once with `$n` placeholders.
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};

use crate::error::Result;

pub(crate) fn statement(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        DatabaseBackend::Postgres => sql.to_string(),
        // `$n` placeholders, used in order, are `?` elsewhere.
        _ => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            while let Some(c) = chars.next() {
                if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                    while chars.peek().is_some_and(char::is_ascii_digit) {
                        chars.next();
                    }
                    out.push('?');
                } else {
                    out.push(c);
                }
            }
            out
        }
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `SUM(column)` as a 64-bit integer on every database (MySQL sums to DECIMAL).
pub(crate) fn sum(db: &DatabaseConnection, column: &str) -> String {
    match db.get_database_backend() {
        DatabaseBackend::MySql => format!("CAST(SUM({column}) AS SIGNED)"),
        _ => format!("CAST(SUM({column}) AS BIGINT)"),
    }
}

pub(crate) async fn one_i64(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Result<i64> {
    let row = db.query_one_raw(statement(db, sql, values)).await?;
    Ok(row.map(|r| r.try_get_by_index::<Option<i64>>(0)).transpose()?.flatten().unwrap_or(0))
}

/// A LIKE pattern matching `text` anywhere, its wildcards taken literally (escaped with `!`).
pub(crate) fn contains_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '!') {
            out.push('!');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn like_wildcards_are_literal() {
        assert_eq!(super::contains_pattern("a_b%c!"), "%a!_b!%c!!%");
    }
}
