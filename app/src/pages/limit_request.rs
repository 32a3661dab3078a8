//! A customer's request for a higher reviewed limit, on the dashboard: the form, and the newest
//! request's outcome (waiting, approved with the new limits, or declined with the reason). The
//! daily_message_limit_exceeded error points here.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    context::kept_field,
    layout::{fn_path, CsrfField},
};

/// A limit request as pages show it (the customer's dashboard and the operator's pages).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRequestRow {
    pub id: i64,
    pub account_id: i64,
    pub account_email: String,
    pub requested_daily: i64,
    pub requested_monthly: i64,
    pub use_case: String,
    pub expected_volume: String,
    /// pending, approved or declined
    pub status: String,
    pub decided_by: Option<String>,
    pub decision_note: Option<String>,
    pub granted: Option<(i64, i64)>,
    pub created: String,
    pub decided: Option<String>,
}

impl LimitRequestRow {
    #[cfg(feature = "ssr")]
    pub fn from_request(r: &gateway::limit_requests::LimitRequest, account_email: &str) -> LimitRequestRow {
        LimitRequestRow {
            id: r.id,
            account_id: r.account_id,
            account_email: account_email.to_string(),
            requested_daily: r.requested_daily,
            requested_monthly: r.requested_monthly,
            use_case: r.use_case.clone(),
            expected_volume: r.expected_volume.clone(),
            status: r.status.as_str().into(),
            decided_by: r.decided_by.clone(),
            decision_note: r.decision_note.clone(),
            granted: r.granted,
            created: gateway::time::display(r.created_at),
            decided: r.decided_at.map(gateway::time::display),
        }
    }
}

#[server(prefix = "/_fn", endpoint = "limit-request")]
pub async fn request_limit(
    daily_limit: String,
    monthly_limit: String,
    use_case: String,
    expected_volume: String,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::limit_requests::{self, NewRequest};
    let user = require_user()?;
    let state = app_state()?;
    let back = "/dashboard";
    let new = match NewRequest::parse(&daily_limit, &monthly_limit, &use_case, &expected_volume) {
        Ok(new) => new,
        Err(e) => {
            let fields = vec![
                ("daily_limit".to_string(), daily_limit),
                ("monthly_limit".to_string(), monthly_limit),
                ("use_case".to_string(), use_case),
                ("expected_volume".to_string(), expected_volume),
            ];
            return finish(Flash::error(user_message("request limit", &e)).with_fields(fields), back).await;
        }
    };
    match limit_requests::submit(&state.db, user.account_id, new).await {
        Ok(request) => {
            tracing::info!(account_id = user.account_id, request_id = request.id, "higher limit requested");
            finish(Flash::success("Your request was sent. An operator reviews it; the answer shows here."), back).await
        }
        Err(e) => finish(Flash::error(user_message("request limit", &e)), back).await,
    }
}

/// The dashboard's card: the newest request's state, and the form when none is waiting.
#[component]
pub fn LimitRequestCard(latest: Option<LimitRequestRow>, limits: Option<(i64, i64)>) -> impl IntoView {
    let waiting = latest.as_ref().is_some_and(|r| r.status == "pending");
    // Open when the last form was refused, so its fields and the error are in view.
    let reopen = kept_field("use_case").is_some();
    let now = match limits {
        Some((daily, monthly)) => format!("Now: {daily} a day, {monthly} a month."),
        None => "Your account has no active plan yet.".to_string(),
    };
    view! {
        <section class="card" id="limit-request">
            <h2>"Reviewed limits"</h2>
            {latest.map(|r| view! { <LimitRequestOutcome r/> })}
            {(!waiting).then(|| view! {
                <details open=reopen>
                    <summary class="btn btn-secondary">"Request a higher reviewed limit"</summary>
                    <form class="form" method="post" action={fn_path::<RequestLimit>()}>
                        <CsrfField/>
                        <p class="hint">{format!("{now} An operator reviews the request against responsible messaging: transactional, operational, support, authentication and internal-team messages only.")}</p>
                        <div class="field">
                            <label for="limit-daily">"Daily limit you need"</label>
                            <input id="limit-daily" name="daily_limit" inputmode="numeric" required value=kept_field("daily_limit").unwrap_or_default()/>
                        </div>
                        <div class="field">
                            <label for="limit-monthly">"Monthly limit you need"</label>
                            <input id="limit-monthly" name="monthly_limit" inputmode="numeric" required value=kept_field("monthly_limit").unwrap_or_default()/>
                        </div>
                        <div class="field">
                            <label for="limit-use-case">"Use case"</label>
                            <textarea id="limit-use-case" name="use_case" rows="3" required maxlength="2000">{kept_field("use_case").unwrap_or_default()}</textarea>
                            <p class="hint">"What you send, to whom, and why they expect it (order updates to buyers, appointment reminders to patients…)."</p>
                        </div>
                        <div class="field">
                            <label for="limit-volume">"Expected volume"</label>
                            <input id="limit-volume" name="expected_volume" required maxlength="200" value=kept_field("expected_volume").unwrap_or_default()/>
                            <p class="hint">"For example: about 3,000 order updates a day, more in December."</p>
                        </div>
                        <button type="submit" class="btn btn-primary">"Send the request"</button>
                    </form>
                </details>
            })}
        </section>
    }
}

#[component]
fn LimitRequestOutcome(r: LimitRequestRow) -> impl IntoView {
    let asked = format!("{} a day, {} a month", r.requested_daily, r.requested_monthly);
    let note = r.decision_note.clone();
    match r.status.as_str() {
        "pending" => view! {
            <p class="limit-request-status" role="status">
                {format!("Your request for {asked} (sent {}) is waiting for an operator's review.", r.created)}
            </p>
        }
        .into_any(),
        "approved" => {
            let (daily, monthly) = r.granted.unwrap_or((r.requested_daily, r.requested_monthly));
            view! {
                <p class="limit-request-status" role="status">
                    <strong>"Approved: "</strong>
                    {format!("your limits are now {daily} a day and {monthly} a month (you asked for {asked}; decided {}).", r.decided.unwrap_or_default())}
                    {note.map(|n| format!(" Note: {n}"))}
                </p>
            }
            .into_any()
        }
        _ => view! {
            <p class="limit-request-status" role="status">
                <strong>"Declined: "</strong>
                {format!("your request for {asked} was declined ({}). ", r.decided.unwrap_or_default())}
                {note.map(|n| format!("Reason: {n}"))}
            </p>
        }
        .into_any(),
    }
}
