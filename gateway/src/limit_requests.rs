//! Requests for a higher reviewed limit: a customer asks from the dashboard (daily and monthly
//! limits, the use case, the expected volume); an operator approves, setting the account's
//! reviewed limits, or declines with a reason; the customer sees the outcome on the dashboard.
//! An account has at most one request waiting (a unique key the database enforces).
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde::{Deserialize, Serialize};

use crate::{
    audit::{self, Change},
    entities::limit_request,
    error::{Error, Result},
    names::form_text,
    operator::actions::{self, AccountChange},
    time,
};

/// The most a reviewed limit can be (what the limits' columns hold).
pub const MAX_LIMIT: i64 = i32::MAX as i64;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Pending,
    Approved,
    Declined,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Declined => "declined",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "pending" => Some(Status::Pending),
            "approved" => Some(Status::Approved),
            "declined" => Some(Status::Declined),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRequest {
    pub id: i64,
    pub account_id: i64,
    pub requested_daily: i64,
    pub requested_monthly: i64,
    pub use_case: String,
    pub expected_volume: String,
    pub status: Status,
    pub decided_by: Option<String>,
    /// The operator's reason for a decline, or a note with an approval.
    pub decision_note: Option<String>,
    /// The limits set when approved (an operator may grant other values than asked).
    pub granted: Option<(i64, i64)>,
    pub created_at: i64,
    pub decided_at: Option<i64>,
}

impl From<limit_request::Model> for LimitRequest {
    fn from(m: limit_request::Model) -> Self {
        LimitRequest {
            id: m.id,
            account_id: m.account_id,
            requested_daily: m.requested_daily,
            requested_monthly: m.requested_monthly,
            use_case: m.use_case,
            expected_volume: m.expected_volume,
            status: Status::parse(&m.status).unwrap_or(Status::Pending),
            decided_by: m.decided_by,
            decision_note: m.decision_note,
            granted: m.granted_daily.zip(m.granted_monthly),
            created_at: m.created_at,
            decided_at: m.decided_at,
        }
    }
}

/// What a customer asks for, checked.
pub struct NewRequest {
    daily: i64,
    monthly: i64,
    use_case: String,
    expected_volume: String,
}

impl NewRequest {
    pub fn parse(daily: &str, monthly: &str, use_case: &str, expected_volume: &str) -> Result<NewRequest> {
        let (daily, monthly) = parse_limits(daily, monthly)?;
        let use_case = form_text(use_case);
        if use_case.chars().count() < 10 {
            return Err(Error::invalid(
                "Describe the use case in a sentence or two: what you send, to whom, and why they expect it.",
            ));
        }
        if use_case.chars().count() > 2000 {
            return Err(Error::invalid("Keep the use case under 2000 characters."));
        }
        let expected_volume = form_text(expected_volume);
        if expected_volume.is_empty() {
            return Err(Error::invalid("Give the expected volume, such as \"about 3,000 order updates a day\"."));
        }
        if expected_volume.chars().count() > 200 {
            return Err(Error::invalid("Keep the expected volume under 200 characters."));
        }
        Ok(NewRequest { daily, monthly, use_case, expected_volume })
    }
}

/// Daily and monthly limits as typed in a form: whole numbers from 1, the month at least the day.
pub fn parse_limits(daily: &str, monthly: &str) -> Result<(i64, i64)> {
    // Not a whole number counts as 0, which `check_limits` refuses with the range.
    let number = |text: &str| -> i64 {
        let digits: String = text.trim().chars().filter(|c| !matches!(c, ',' | '_' | ' ')).collect();
        digits.parse().unwrap_or(0)
    };
    check_limits(number(daily), number(monthly))
}

/// Daily and monthly limits as numbers: from 1 to [`MAX_LIMIT`], the month at least the day.
pub fn check_limits(daily: i64, monthly: i64) -> Result<(i64, i64)> {
    for (n, which) in [(daily, "daily"), (monthly, "monthly")] {
        if !(1..=MAX_LIMIT).contains(&n) {
            return Err(Error::invalid(format!("The {which} limit must be a whole number from 1 to {MAX_LIMIT}.")));
        }
    }
    if monthly < daily {
        return Err(Error::invalid("The monthly limit must be at least the daily limit."));
    }
    Ok((daily, monthly))
}

/// Files the account's request; refused while another one waits.
pub async fn submit(db: &DatabaseConnection, account_id: i64, new: NewRequest) -> Result<LimitRequest> {
    let row = limit_request::ActiveModel {
        account_id: Set(account_id),
        requested_daily: Set(new.daily),
        requested_monthly: Set(new.monthly),
        use_case: Set(new.use_case),
        expected_volume: Set(new.expected_volume),
        status: Set(Status::Pending.as_str().into()),
        pending_slot: Set(Some(1)),
        decided_by: Set(None),
        decision_note: Set(None),
        granted_daily: Set(None),
        granted_monthly: Set(None),
        created_at: Set(time::now()),
        decided_at: Set(None),
        ..Default::default()
    };
    match row.insert(db).await {
        Ok(model) => Ok(model.into()),
        Err(e) if crate::db::is_unique_violation(&e) => {
            Err(Error::invalid("Your earlier request is still waiting for review; an operator will answer it first."))
        }
        Err(e) => Err(e.into()),
    }
}

/// The account's newest request (what the dashboard shows), if any.
pub async fn latest(db: &DatabaseConnection, account_id: i64) -> Result<Option<LimitRequest>> {
    Ok(of_account(db, account_id, 1).await?.into_iter().next())
}

/// The account's newest `limit` requests.
pub async fn of_account(db: &DatabaseConnection, account_id: i64, limit: u64) -> Result<Vec<LimitRequest>> {
    Ok(limit_request::Entity::find()
        .filter(limit_request::Column::AccountId.eq(account_id))
        .order_by_desc(limit_request::Column::Id)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(LimitRequest::from)
        .collect())
}

/// Requests with `status`, waiting ones oldest first (the queue), decided ones newest first;
/// `limit` of them past the id `after`.
pub async fn list(
    db: &DatabaseConnection,
    status: Status,
    after: Option<i64>,
    limit: u64,
) -> Result<Vec<LimitRequest>> {
    let mut query = limit_request::Entity::find().filter(limit_request::Column::Status.eq(status.as_str()));
    query = match (status, after) {
        (Status::Pending, Some(after)) => query.filter(limit_request::Column::Id.gt(after)),
        (_, Some(after)) => query.filter(limit_request::Column::Id.lt(after)),
        (_, None) => query,
    };
    query = match status {
        Status::Pending => query.order_by_asc(limit_request::Column::Id),
        _ => query.order_by_desc(limit_request::Column::Id),
    };
    Ok(query.limit(limit).all(db).await?.into_iter().map(LimitRequest::from).collect())
}

/// An operator's answer.
pub enum Decision<'a> {
    /// Sets the account's reviewed limits to these (daily, monthly), with an optional note.
    Approve { daily: i64, monthly: i64, note: Option<&'a str> },
    /// Declines with a reason the customer reads.
    Decline { reason: &'a str },
}

/// Decides a waiting request: the request, the account's limits (when approved) and the audit
/// row change together, and of two operators answering at once, one finds it decided.
pub async fn decide(
    db: &DatabaseConnection,
    actor: &str,
    request_id: i64,
    decision: Decision<'_>,
) -> Result<LimitRequest> {
    let (status, granted, note) = match decision {
        Decision::Approve { daily, monthly, note } => {
            let (daily, monthly) = check_limits(daily, monthly)?;
            let note = note.map(form_text).filter(|n| !n.is_empty());
            (Status::Approved, Some((daily, monthly)), note)
        }
        Decision::Decline { reason } => {
            let reason = form_text(reason);
            if reason.is_empty() {
                return Err(Error::invalid("Give the customer a reason for declining."));
            }
            (Status::Declined, None, Some(reason))
        }
    };
    if note.as_ref().is_some_and(|n| n.chars().count() > 1000) {
        return Err(Error::invalid("Keep the note under 1000 characters."));
    }
    let now = time::now();
    let txn = crate::db::begin_write(db).await?;
    let taken = limit_request::Entity::update_many()
        .col_expr(limit_request::Column::Status, Expr::value(status.as_str()))
        .col_expr(limit_request::Column::PendingSlot, Expr::value(Option::<i16>::None))
        .col_expr(limit_request::Column::DecidedBy, Expr::value(actor.chars().take(255).collect::<String>()))
        .col_expr(limit_request::Column::DecisionNote, Expr::value(note.clone()))
        .col_expr(limit_request::Column::GrantedDaily, Expr::value(granted.map(|g| g.0)))
        .col_expr(limit_request::Column::GrantedMonthly, Expr::value(granted.map(|g| g.1)))
        .col_expr(limit_request::Column::DecidedAt, Expr::value(now))
        .filter(limit_request::Column::Id.eq(request_id))
        .filter(limit_request::Column::Status.eq(Status::Pending.as_str()))
        .exec(&txn)
        .await?;
    let row = limit_request::Entity::find_by_id(request_id).one(&txn).await?.ok_or(Error::NotFound)?;
    if taken.rows_affected != 1 {
        return Err(Error::invalid("This request was already decided."));
    }
    let summary = format!("{}/day, {}/month asked", row.requested_daily, row.requested_monthly);
    let after = match (granted, &note) {
        (Some((d, m)), _) => format!("approved: {d}/day, {m}/month"),
        (None, Some(reason)) => format!("declined: {reason}"),
        (None, None) => "declined".into(),
    };
    audit::record(
        &txn,
        Change {
            actor,
            action: "decide_limit_request",
            account_id: Some(row.account_id),
            instance_id: None,
            before: Some(format!("request {request_id}: {summary}")),
            after: Some(after),
        },
    )
    .await?;
    if let Some((daily, monthly)) = granted {
        let change = AccountChange::Limits { daily: Some(daily), monthly: Some(monthly) };
        actions::change_account_in(&txn, actor, row.account_id, change).await?;
    }
    crate::cache::epoch::mark(&txn).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(row.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_whole_numbers_with_the_month_at_least_the_day() {
        assert_eq!(parse_limits("2,000", " 40000 ").unwrap(), (2000, 40000));
        for (d, m) in [("0", "10"), ("-5", "10"), ("ten", "10"), ("100", "50"), ("1", "99999999999"), ("1.5", "9")] {
            assert!(parse_limits(d, m).is_err(), "{d} {m}");
        }
    }

    #[test]
    fn requests_need_a_use_case_and_a_volume() {
        assert!(NewRequest::parse("500", "10000", "Order updates for our shop's customers", "").is_err());
        assert!(NewRequest::parse("500", "10000", "more", "500 a day").is_err());
        assert!(NewRequest::parse("500", "10000", "Order updates for our shop's customers", "500 a day").is_ok());
    }
}
