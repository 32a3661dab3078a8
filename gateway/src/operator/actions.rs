//! What operators change, each change and its audit row in one transaction: plan and limits,
//! modules, role, disabling, reset links, and review pauses. `actor` is the operator's email,
//! or [`crate::audit::CLI`] for `wag admin`.
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use crate::{
    accounts::{Account, Module, Role},
    audit::{self, Change},
    db::WriteTxn,
    entities::{account, instance},
    error::{Error, Result},
    plans::Plan,
    time,
};

/// A change to an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountChange {
    /// The plan and, when given, reviewed per-account limits (0 removes an override).
    Plan {
        plan: Plan,
        daily: Option<i64>,
        monthly: Option<i64>,
    },
    /// Reviewed limits on the current plan (0 removes an override).
    Limits {
        daily: Option<i64>,
        monthly: Option<i64>,
    },
    Module {
        module: Module,
        enabled: bool,
    },
    /// Both modules at once (the portal's form).
    Modules {
        api: bool,
        threecx: bool,
    },
    Disabled(bool),
    Role(Role),
}

impl AccountChange {
    fn action(self) -> &'static str {
        match self {
            AccountChange::Plan { .. } => "set_plan",
            AccountChange::Limits { .. } => "set_limits",
            AccountChange::Module { .. } | AccountChange::Modules { .. } => "set_module",
            AccountChange::Disabled(true) => "disable_user",
            AccountChange::Disabled(false) => "enable_user",
            AccountChange::Role(_) => "set_role",
        }
    }

    /// The part of the account this change touches, as the audit log shows it.
    fn describe(self, account: &Account) -> String {
        match self {
            AccountChange::Plan { .. } | AccountChange::Limits { .. } => plan_text(account),
            AccountChange::Module { .. } | AccountChange::Modules { .. } => modules_text(account),
            AccountChange::Disabled(_) => if account.disabled { "disabled" } else { "enabled" }.into(),
            AccountChange::Role(_) => account.role.as_str().into(),
        }
    }
}

/// "growth (1000/day, 20000/month)"
pub fn plan_text(account: &Account) -> String {
    let limits = account
        .limits()
        .map(|l| format!("{}/day, {}/month", l.daily, l.monthly))
        .unwrap_or_else(|| "no sending".into());
    format!("{} ({limits})", account.plan.as_str())
}

pub fn modules_text(account: &Account) -> String {
    format!("api {}, 3cx {}", account.api_enabled, account.threecx_enabled)
}

/// Applies `change` to the account and records it; an account already in that state is left
/// alone and nothing is recorded.
pub async fn change_account(
    db: &sea_orm::DatabaseConnection,
    actor: &str,
    account_id: i64,
    change: AccountChange,
) -> Result<Account> {
    let txn = crate::db::begin_write(db).await?;
    let account = change_account_in(&txn, actor, account_id, change).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(account)
}

/// [`change_account`] inside the caller's write transaction (ended with `cache::epoch::commit`:
/// the API path keeps accounts in memory).
pub(crate) async fn change_account_in(
    txn: &WriteTxn,
    actor: &str,
    account_id: i64,
    change: AccountChange,
) -> Result<Account> {
    let model = account::Entity::find_by_id(account_id).one(txn).await?.ok_or(Error::NotFound)?;
    let before = Account::from(model.clone());
    let mut active: account::ActiveModel = model.into();
    let limits = |active: &mut account::ActiveModel, daily: Option<i64>, monthly: Option<i64>| -> Result<()> {
        if let Some(d) = daily {
            active.daily_limit_override = Set(limit_override(d, "daily")?);
        }
        if let Some(m) = monthly {
            active.monthly_limit_override = Set(limit_override(m, "monthly")?);
        }
        Ok(())
    };
    match change {
        AccountChange::Plan { plan, daily, monthly } => {
            active.plan = Set(plan.as_str().into());
            limits(&mut active, daily, monthly)?;
        }
        AccountChange::Limits { daily, monthly } => limits(&mut active, daily, monthly)?,
        AccountChange::Module { module: Module::Api, enabled } => active.api_enabled = Set(enabled),
        AccountChange::Module { module: Module::ThreeCx, enabled } => active.threecx_enabled = Set(enabled),
        AccountChange::Modules { api, threecx } => {
            active.api_enabled = Set(api);
            active.threecx_enabled = Set(threecx);
        }
        AccountChange::Disabled(disabled) => {
            if disabled == before.disabled {
                return Ok(before);
            }
            active.disabled_at = Set(disabled.then(time::now));
        }
        AccountChange::Role(role) => active.role = Set(role.as_str().into()),
    }
    if !active.is_changed() {
        return Ok(before);
    }
    let after = Account::from(active.update(txn).await?);
    if after == before {
        return Ok(after);
    }
    let (was, now) = (change.describe(&before), change.describe(&after));
    audit::record(
        txn,
        Change {
            actor,
            action: change.action(),
            account_id: Some(account_id),
            instance_id: None,
            before: Some(was),
            after: Some(now),
        },
    )
    .await?;
    crate::cache::epoch::mark(txn).await?;
    Ok(after)
}

/// A limit as stored: 0 clears the override; otherwise a positive number that fits the column.
fn limit_override(value: i64, which: &str) -> Result<Option<i32>> {
    if value == 0 {
        return Ok(None);
    }
    match i32::try_from(value) {
        Ok(v) if v > 0 => Ok(Some(v)),
        _ => Err(Error::invalid(format!(
            "The {which} limit must be a positive whole number below 2147483648 (0 removes the override)."
        ))),
    }
}

/// A one-time password-reset link's token for the account (see `password_reset`), recorded
/// without the token.
pub async fn reset_link(db: &sea_orm::DatabaseConnection, actor: &str, account_id: i64) -> Result<String> {
    let txn = crate::db::begin_write(db).await?;
    if account::Entity::find_by_id(account_id).one(&txn).await?.is_none() {
        return Err(Error::NotFound);
    }
    let token = crate::password_reset::create(&txn, account_id).await?;
    let after = Some("link created (1 hour, once)".to_string());
    let change = Change {
        actor,
        action: "reset_password_link",
        account_id: Some(account_id),
        instance_id: None,
        before: None,
        after,
    };
    audit::record(&txn, change).await?;
    txn.commit().await?;
    Ok(token)
}

/// What became of a review action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reviewed {
    Done,
    /// The instance was not in the state the action needs (already paused, not paused).
    Unchanged,
}

/// A reason or note for the customer: trimmed, no control characters but line breaks, at most
/// `max` characters (a pause reason is shown in a banner and kept in 255).
fn review_text(text: &str, what: &str, max: usize) -> Result<String> {
    let text = crate::names::form_text(text);
    if text.is_empty() {
        return Err(Error::invalid(format!("Write {what}: the customer's team reads it on the instance.")));
    }
    if text.chars().count() > max {
        return Err(Error::invalid(format!("Keep {what} under {max} characters.")));
    }
    Ok(text)
}

async fn instance_in(txn: &WriteTxn, instance_id: &str) -> Result<instance::Model> {
    instance::Entity::find_by_id(instance_id.trim().to_string()).one(txn).await?.ok_or(Error::NotFound)
}

/// Pauses an instance for responsible-messaging review: its sends answer 423 until resumed.
pub async fn pause_instance(
    db: &sea_orm::DatabaseConnection,
    actor: &str,
    instance_id: &str,
    reason: &str,
) -> Result<Reviewed> {
    let reason = review_text(reason, "a reason", 255)?;
    let txn = crate::db::begin_write(db).await?;
    let found = instance_in(&txn, instance_id).await?;
    if !crate::instances::pause_for_review_in(&txn, &found.id, &reason).await? {
        return Ok(Reviewed::Unchanged);
    }
    let change = Change {
        actor,
        action: "pause_instance",
        account_id: Some(found.account_id),
        instance_id: Some(&found.id),
        before: Some("running".into()),
        after: Some(format!("paused for review: {reason}")),
    };
    audit::record(&txn, change).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(Reviewed::Done)
}

/// Lifts a review pause, leaving `note` for the customer when one is given.
pub async fn resume_instance(
    db: &sea_orm::DatabaseConnection,
    actor: &str,
    instance_id: &str,
    note: Option<&str>,
) -> Result<Reviewed> {
    let note = match note.map(str::trim).filter(|n| !n.is_empty()) {
        Some(note) => Some(review_text(note, "the note", 1000)?),
        None => None,
    };
    let txn = crate::db::begin_write(db).await?;
    let found = instance_in(&txn, instance_id).await?;
    if !crate::instances::resume_from_review_in(&txn, &found.id, note.as_deref()).await? {
        return Ok(Reviewed::Unchanged);
    }
    let before = found.review_reason.map(|r| format!("paused for review: {r}"));
    let after = match &note {
        Some(note) => format!("running; note: {note}"),
        None => "running".into(),
    };
    let change = Change {
        actor,
        action: "resume_instance",
        account_id: Some(found.account_id),
        instance_id: Some(&found.id),
        before,
        after: Some(after),
    };
    audit::record(&txn, change).await?;
    crate::cache::epoch::commit(txn).await?;
    Ok(Reviewed::Done)
}

/// Keeps an instance paused after a review, with a note the customer sees on it.
pub async fn keep_paused(
    db: &sea_orm::DatabaseConnection,
    actor: &str,
    instance_id: &str,
    note: &str,
) -> Result<Reviewed> {
    let note = review_text(note, "the note", 1000)?;
    let txn = crate::db::begin_write(db).await?;
    let found = instance_in(&txn, instance_id).await?;
    if !crate::instances::note_review_in(&txn, &found.id, &note).await? {
        return Ok(Reviewed::Unchanged);
    }
    let change = Change {
        actor,
        action: "keep_paused",
        account_id: Some(found.account_id),
        instance_id: Some(&found.id),
        before: found.review_note.map(|n| format!("note: {n}")),
        after: Some(format!("still paused; note: {note}")),
    };
    audit::record(&txn, change).await?;
    txn.commit().await?;
    Ok(Reviewed::Done)
}
