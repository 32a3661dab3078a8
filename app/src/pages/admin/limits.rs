//! /admin/limit-requests: customers' requests for higher reviewed limits. Waiting ones, oldest
//! first, with approve (setting the limits, which the operator may change) and decline (with a
//! reason the customer reads); and the decided ones, newest first.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::shared::{is_operator, LoadError, Table};
use crate::{
    layout::{fn_path, CsrfField, PortalLayout},
    pages::{limit_request::LimitRequestRow, not_found::NotFound},
};

#[cfg(feature = "ssr")]
const PAGE_SIZE: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitRequestsPage {
    pub status: String,
    pub rows: Vec<LimitRequestRow>,
    /// The id to continue after, when there may be more.
    pub next_after: Option<i64>,
}

#[server(prefix = "/_fn", endpoint = "admin/limit-requests")]
pub async fn list_limit_requests(status: String, after: Option<i64>) -> Result<LimitRequestsPage, ServerFnError> {
    use crate::server_util::*;
    use gateway::limit_requests::{self, Status};
    super::shared::require_operator()?;
    let state = app_state()?;
    let status = Status::parse(&status).unwrap_or(Status::Pending);
    let found = limit_requests::list(&state.db, status, after, PAGE_SIZE)
        .await
        .map_err(|e| read_error("list limit requests", e))?;
    let next_after = (found.len() as u64 == PAGE_SIZE).then(|| found.last().map(|r| r.id)).flatten();
    let mut ids: Vec<i64> = found.iter().map(|r| r.account_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let emails =
        gateway::operator::accounts::emails(&state.db, ids).await.map_err(|e| read_error("account emails", e))?;
    Ok(LimitRequestsPage {
        status: status.as_str().into(),
        rows: found
            .iter()
            .map(|r| LimitRequestRow::from_request(r, emails.get(&r.account_id).map_or("", String::as_str)))
            .collect(),
        next_after,
    })
}

#[server(prefix = "/_fn", endpoint = "admin/limit-requests/decide")]
pub async fn decide_limit_request(
    id: i64,
    decision: String,
    daily_limit: Option<String>,
    monthly_limit: Option<String>,
    note: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::limit_requests::{self, Decision};
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    let back = "/admin/limit-requests";
    let note = note.unwrap_or_default();
    let decided = match decision.as_str() {
        "approve" => {
            let limits = limit_requests::parse_limits(
                daily_limit.as_deref().unwrap_or_default(),
                monthly_limit.as_deref().unwrap_or_default(),
            );
            match limits {
                Ok((daily, monthly)) => {
                    let note = Some(note.as_str()).filter(|n| !n.trim().is_empty());
                    limit_requests::decide(&state.db, &operator.email, id, Decision::Approve { daily, monthly, note })
                        .await
                }
                Err(e) => Err(e),
            }
        }
        "decline" => limit_requests::decide(&state.db, &operator.email, id, Decision::Decline { reason: &note }).await,
        _ => Err(gateway::Error::invalid("Choose approve or decline.")),
    };
    match decided {
        Ok(r) => {
            let text = match r.granted {
                Some((d, m)) => format!("Approved: the account's limits are now {d} a day and {m} a month."),
                None => "Declined: the customer sees your reason on the dashboard.".to_string(),
            };
            finish(Flash::success(text), back).await
        }
        Err(gateway::Error::NotFound) => finish(Flash::error("No such request."), back).await,
        Err(e) => finish(Flash::error(user_message("decide limit request", &e)), back).await,
    }
}

#[component]
pub fn AdminLimitRequestsPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let (status, after) = use_query_map().with_untracked(|q| {
        (q.get("status").unwrap_or_else(|| "pending".into()), q.get("after").and_then(|a| a.parse::<i64>().ok()))
    });
    let data = Resource::new(|| (), {
        let status = status.clone();
        move |_| list_limit_requests(status.clone(), after)
    });
    let chosen = status.clone();
    let tab = move |value: &'static str, label: &'static str| {
        let current = chosen == value;
        view! { <a class="tab" href=format!("/admin/limit-requests?status={value}") aria-current=current.then_some("page")>{label}</a> }
    };
    view! {
        <PortalLayout title="Limit requests" current="/admin/limit-requests" lead="Customers ask for higher reviewed limits from their dashboard. Approving sets the account's daily and monthly limits; the customer sees the outcome on the dashboard.">
            <nav class="tabs" aria-label="Requests">
                {tab("pending", "Waiting")}
                {tab("approved", "Approved")}
                {tab("declined", "Declined")}
            </nav>
            <section class="card">
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(page) if page.rows.is_empty() => view! {
                                <div class="empty-state"><p><strong>"No requests here."</strong></p></div>
                            }.into_any(),
                            Ok(page) => {
                                let next = page.next_after.map(|after| format!("/admin/limit-requests?status={}&after={after}", page.status));
                                view! {
                                    {if page.status == "pending" {
                                        view! { <WaitingList rows=page.rows/> }.into_any()
                                    } else {
                                        view! { <DecidedTable rows=page.rows/> }.into_any()
                                    }}
                                    {next.map(|href| view! { <p><a class="btn btn-secondary" href=href>"Next page"</a></p> })}
                                }.into_any()
                            }
                            Err(e) => view! { <LoadError message=e.to_string()/> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </PortalLayout>
    }
    .into_any()
}

#[component]
fn WaitingList(rows: Vec<LimitRequestRow>) -> impl IntoView {
    rows.into_iter()
        .map(|r| {
            let id = r.id.to_string();
            let (approve_id, decline_id) = (format!("approve-{}", r.id), format!("decline-{}", r.id));
            view! {
                <article class="review-item">
                    <h3>
                        <a href=format!("/admin/accounts/{}", r.account_id)>{r.account_email.clone()}</a>
                        {format!(": {} a day, {} a month", r.requested_daily, r.requested_monthly)}
                    </h3>
                    <dl class="details">
                        <dt>"Use case"</dt><dd class="pre-wrap">{r.use_case.clone()}</dd>
                        <dt>"Expected volume"</dt><dd>{r.expected_volume.clone()}</dd>
                        <dt>"Asked"</dt><dd>{r.created.clone()}</dd>
                    </dl>
                    <div class="actions-row">
                        <form class="form form-inline" method="post" action={fn_path::<DecideLimitRequest>()}>
                            <CsrfField/>
                            <input type="hidden" name="id" value=id.clone()/>
                            <input type="hidden" name="decision" value="approve"/>
                            <div class="field">
                                <label for=format!("{approve_id}-daily")>"Daily limit"</label>
                                <input id=format!("{approve_id}-daily") name="daily_limit" inputmode="numeric" required value=r.requested_daily.to_string()/>
                            </div>
                            <div class="field">
                                <label for=format!("{approve_id}-monthly")>"Monthly limit"</label>
                                <input id=format!("{approve_id}-monthly") name="monthly_limit" inputmode="numeric" required value=r.requested_monthly.to_string()/>
                            </div>
                            <div class="field">
                                <label for=format!("{approve_id}-note")>"Note (optional)"</label>
                                <input id=format!("{approve_id}-note") name="note" maxlength="1000"/>
                            </div>
                            <button type="submit" class="btn btn-primary">"Approve"</button>
                        </form>
                        <form class="form form-inline" method="post" action={fn_path::<DecideLimitRequest>()}>
                            <CsrfField/>
                            <input type="hidden" name="id" value=id/>
                            <input type="hidden" name="decision" value="decline"/>
                            <div class="field">
                                <label for=format!("{decline_id}-reason")>"Reason for the customer"</label>
                                <input id=format!("{decline_id}-reason") name="note" required maxlength="1000"/>
                            </div>
                            <button type="submit" class="btn btn-danger">"Decline"</button>
                        </form>
                    </div>
                </article>
            }
        })
        .collect_view()
}

/// Requests with their outcome (also on the account page).
#[component]
pub fn DecidedTable(rows: Vec<LimitRequestRow>) -> impl IntoView {
    view! {
        <Table headers=&["Account", "Asked", "When", "Outcome", "By", "Note"]>
            {rows.into_iter().map(|r| {
                let outcome = match (r.status.as_str(), r.granted) {
                    ("approved", Some((d, m))) => format!("approved: {d}/day, {m}/month"),
                    (status, _) => status.to_string(),
                };
                view! {
                    <tr>
                        <td data-label="Account"><a href=format!("/admin/accounts/{}", r.account_id)>{r.account_email}</a></td>
                        <td data-label="Asked">{format!("{}/day, {}/month", r.requested_daily, r.requested_monthly)}</td>
                        <td data-label="When">{r.decided.unwrap_or(r.created)}</td>
                        <td data-label="Outcome">{outcome}</td>
                        <td data-label="By">{r.decided_by.unwrap_or_default()}</td>
                        <td data-label="Note">{r.decision_note.unwrap_or_default()}</td>
                    </tr>
                }
            }).collect_view()}
        </Table>
    }
}
