//! /suppressed-recipients: the account's suppression list — search, block a number, unblock
//! with confirmation — and the log of changes.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::layout::{fn_path, CsrfField, PortalLayout};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionRow {
    pub id: i64,
    pub phone: String,
    pub reason: String,
    pub source: String,
    pub created_by: String,
    pub created: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRow {
    pub phone: String,
    pub action: String,
    pub reason: String,
    pub changed_by: String,
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuppressionPage {
    pub rows: Vec<SuppressionRow>,
    pub changes: Vec<ChangeRow>,
    pub reasons: Vec<(String, String)>,
}

#[cfg(feature = "ssr")]
const PAGE_SIZE: u64 = 200;

#[server(prefix = "/_fn", endpoint = "suppressions/list")]
pub async fn list_suppressions(search: Option<String>) -> Result<SuppressionPage, ServerFnError> {
    use crate::server_util::*;
    use gateway::{suppressions, time::display};
    let user = require_user()?;
    let state = app_state()?;
    let rows = suppressions::list(&state.db, user.account_id, search.as_deref(), PAGE_SIZE)
        .await
        .map_err(|e| read_error("list suppressions", e))?;
    let changes = suppressions::recent_changes(&state.db, user.account_id, 20)
        .await
        .map_err(|e| read_error("list suppression changes", e))?;
    Ok(SuppressionPage {
        rows: rows
            .into_iter()
            .map(|s| SuppressionRow {
                id: s.id,
                phone: s.phone,
                reason: s.reason,
                source: s.source,
                created_by: s.created_by,
                created: display(s.created_at),
            })
            .collect(),
        changes: changes
            .into_iter()
            .map(|c| ChangeRow {
                phone: c.phone,
                action: c.action,
                reason: c.reason,
                changed_by: c.changed_by,
                at: display(c.changed_at),
            })
            .collect(),
        reasons: suppressions::REASONS.iter().map(|(c, l)| (c.to_string(), l.to_string())).collect(),
    })
}

#[server(prefix = "/_fn", endpoint = "suppressions/add")]
pub async fn add_suppression(phone: String, reason: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::{send::phone::Phone, suppressions};
    let user = require_user()?;
    let state = app_state()?;
    let back = "/suppressed-recipients";
    let Some(parsed) = Phone::parse(&phone) else {
        return finish(Flash::error("Enter the number in international format, such as +966501234567."), back).await;
    };
    let reason = match suppressions::parse_reason(&reason) {
        Ok(r) => r,
        Err(e) => return finish(Flash::error(user_message("add suppression", &e)), back).await,
    };
    match suppressions::add(&state.db, user.account_id, &parsed, reason, "portal", &user.email).await {
        Ok(true) => {
            tracing::info!(account_id = user.account_id, recipient = %parsed.masked(), "recipient suppressed from the portal");
            finish(Flash::success(format!("{} is blocked: sends to it are refused.", parsed.as_str())), back).await
        }
        Ok(false) => finish(Flash::success(format!("{} was already on the list.", parsed.as_str())), back).await,
        Err(e) => finish(Flash::error(user_message("add suppression", &e)), back).await,
    }
}

#[server(prefix = "/_fn", endpoint = "suppressions/remove")]
pub async fn remove_suppression(id: i64) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let back = "/suppressed-recipients";
    match gateway::suppressions::remove(&state.db, user.account_id, id, &user.email).await {
        Ok(removed) => {
            tracing::info!(account_id = user.account_id, "recipient unblocked from the portal");
            finish(Flash::success(format!("{} was removed from the list.", removed.phone)), back).await
        }
        Err(e) => finish(Flash::error(user_message("remove suppression", &e)), back).await,
    }
}

#[component]
pub fn SuppressionsPage() -> impl IntoView {
    let search = use_query_map().with_untracked(|q| q.get("q")).filter(|q| !q.trim().is_empty());
    let data = Resource::new(|| (), {
        let search = search.clone();
        move |_| list_suppressions(search.clone())
    });
    view! {
        <PortalLayout title="Suppressed recipients" current="/suppressed-recipients"
            lead="Numbers on this list receive nothing from your account: the send API answers recipient_suppressed.">
            <section class="card">
                <h2>"Block a number"</h2>
                <Suspense fallback=|| ()>
                    {move || Suspend::new(async move {
                        let reasons = data.await.map(|d| d.reasons).unwrap_or_default();
                        view! {
                            <form class="form form-inline" method="post" action={fn_path::<AddSuppression>()}>
                                <CsrfField/>
                                <div class="field">
                                    <label for="block-phone">"Phone number"</label>
                                    <input id="block-phone" name="phone" required placeholder="+966501234567" inputmode="tel"/>
                                </div>
                                <div class="field">
                                    <label for="block-reason">"Reason"</label>
                                    <select id="block-reason" name="reason">
                                        {reasons.into_iter().map(|(code, label)| view! { <option value=code>{label}</option> }).collect_view()}
                                    </select>
                                </div>
                                <button type="submit" class="btn btn-primary">"Block number"</button>
                            </form>
                        }
                    })}
                </Suspense>
            </section>
            <section class="card">
                <h2>"The list"</h2>
                <form class="form form-inline" method="get" action="/suppressed-recipients">
                    <div class="field">
                        <label for="search">"Search by number"</label>
                        <input id="search" name="q" value=search.clone().unwrap_or_default() inputmode="tel"/>
                    </div>
                    <button type="submit" class="btn btn-secondary">"Search"</button>
                </form>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(page) if page.rows.is_empty() => view! {
                                <div class="empty-state"><p><strong>"No suppressed recipients."</strong></p><p>"Numbers you block appear here; sends to them are refused."</p></div>
                            }.into_any(),
                            Ok(page) => view! { <SuppressionTable rows=page.rows/> <ChangeLog changes=page.changes/> }.into_any(),
                            Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </PortalLayout>
    }
}

#[component]
fn SuppressionTable(rows: Vec<SuppressionRow>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"Number"</th><th>"Reason"</th><th>"Source"</th><th>"Added"</th><th>"By"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|row| view! {
                        <tr>
                            <td class="mono" data-label="Number">{row.phone.clone()}</td>
                            <td data-label="Reason">{row.reason.clone()}</td>
                            <td data-label="Source">{row.source.clone()}</td>
                            <td data-label="Added">{row.created.clone()}</td>
                            <td data-label="By">{row.created_by.clone()}</td>
                            <td class="actions">
                                <details class="confirm">
                                    <summary class="btn btn-danger">"Remove"</summary>
                                    <form class="inline" method="post" action={fn_path::<RemoveSuppression>()}>
                                        <CsrfField/>
                                        <input type="hidden" name="id" value=row.id.to_string()/>
                                        <p>{format!("Allow messages to {} again?", row.phone)}</p>
                                        <button type="submit" class="btn btn-danger">"Yes, remove from the list"</button>
                                    </form>
                                </details>
                            </td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn ChangeLog(changes: Vec<ChangeRow>) -> impl IntoView {
    view! {
        <h2>"Recent changes"</h2>
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"When"</th><th>"Number"</th><th>"Change"</th><th>"Reason"</th><th>"By"</th></tr></thead>
                <tbody>
                    {changes.into_iter().map(|c| view! {
                        <tr><td data-label="When">{c.at}</td><td class="mono" data-label="Number">{c.phone}</td><td class="cell-status" data-label="Change">{c.action}</td><td data-label="Reason">{c.reason}</td><td data-label="By">{c.changed_by}</td></tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
