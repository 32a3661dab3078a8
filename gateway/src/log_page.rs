//! What the log pages (messages, inbound messages) share so that a page costs the same at row
//! ten million as at row one: each page is one short range of an index that matches its
//! filters, continued from the last row shown (keyset), never an OFFSET or a COUNT.
//!
//! Filters no index serves (a status, a part of a number, words of the text) are applied to a
//! window of at most [`SCAN_WINDOW`] rows of the indexed range. When the window ends before the
//! page is full, the page says so and its "older" link continues after the window, so a rare
//! match costs the visitor a click instead of costing the database a scan of the whole history.
use sea_orm::{
    sea_query::{
        extension::mysql::{IndexHintScope, MySqlSelectStatementExt},
        Alias,
    },
    ConnectionTrait, DatabaseBackend, EntityTrait, QueryTrait, Select,
};
use serde::{Deserialize, Serialize};

/// Index entries one page may look at for filters that no index serves.
pub const SCAN_WINDOW: u64 = 5_000;

/// Makes MySQL/MariaDB read a page as a range of `index` (the one its filters were chosen for).
/// Asked for whole rows, MariaDB 10.11 otherwise reads a keyset page (`account_id = ? AND id <
/// ?`) by `ref` on the account prefix and walks back from the account's newest row to the
/// cursor: 16 s for a page in the middle of 10,000,000 messages, 1.1 s in 1,000,000 inbound
/// ones. PostgreSQL and SQLite choose the range themselves, and their SQL has no index hints.
pub(crate) fn ranged<E: EntityTrait>(conn: &impl ConnectionTrait, mut select: Select<E>, index: &str) -> Select<E> {
    if conn.get_database_backend() == DatabaseBackend::MySql {
        QueryTrait::query(&mut select).force_index(Alias::new(index), IndexHintScope::All);
    }
    select
}

/// A number filter: a whole E.164 number is looked up exactly (on an index); anything else is
/// matched as a part of the number within the scan window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PhoneFilter {
    Exact(String),
    Contains(String),
}

impl PhoneFilter {
    pub fn parse(text: Option<&str>) -> Option<PhoneFilter> {
        let text = text.map(str::trim).filter(|t| !t.is_empty())?;
        if let Some(phone) = crate::send::phone::Phone::parse(text) {
            return Some(PhoneFilter::Exact(phone.as_str().to_string()));
        }
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(PhoneFilter::Contains(digits))
    }
}

/// One page of a log, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T, K> {
    pub rows: Vec<T>,
    /// The cursor of the next, older page, when there may be one.
    pub older: Option<K>,
    /// The page stopped at the end of the scan window before it was full: older rows were not
    /// looked at yet.
    pub window_ended: bool,
}

impl<T, K> Page<T, K> {
    /// Builds the page from up to `limit + 1` matching rows (the extra one says there are more)
    /// and, when residual filters used a window, the key of the window's last row.
    pub fn assemble(mut rows: Vec<T>, limit: u64, key: impl Fn(&T) -> K, window_end: Option<K>) -> Self {
        let limit = limit as usize;
        if rows.len() > limit {
            rows.truncate(limit);
            let older = rows.last().map(&key);
            return Page { rows, older, window_ended: false };
        }
        match window_end {
            Some(end) => Page { rows, older: Some(end), window_ended: true },
            None => Page { rows, older: None, window_ended: false },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_exact_and_parts_are_contained() {
        assert_eq!(PhoneFilter::parse(Some(" +966 50 123 4567 ")), Some(PhoneFilter::Exact("+966501234567".into())));
        assert_eq!(PhoneFilter::parse(Some("4479")), Some(PhoneFilter::Contains("4479".into())));
        assert_eq!(PhoneFilter::parse(Some("+44")), Some(PhoneFilter::Contains("44".into())));
        assert_eq!(PhoneFilter::parse(Some("  ")), None);
        assert_eq!(PhoneFilter::parse(Some("abc")), None);
    }

    #[test]
    fn a_full_page_continues_after_its_last_row_and_a_short_one_after_the_window() {
        let full = Page::assemble(vec![9, 8, 7], 2, |r| *r, Some(1));
        assert_eq!((full.rows, full.older, full.window_ended), (vec![9, 8], Some(8), false));
        let short = Page::assemble(vec![9], 2, |r| *r, Some(3));
        assert_eq!((short.rows, short.older, short.window_ended), (vec![9], Some(3), true));
        let last = Page::<i32, i32>::assemble(vec![9], 2, |r| *r, None);
        assert_eq!((last.rows, last.older, last.window_ended), (vec![9], None, false));
    }
}
