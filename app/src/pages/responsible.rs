//! /responsible-messaging: the account's blocked and flagged send attempts with reasons, newest
//! first, 50 per page (keyset: "Older attempts" follows the last id shown).
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::layout::PortalLayout;

pub const PAGE_SIZE: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConcernRow {
    pub at: String,
    pub instance_id: String,
    pub recipient: String,
    pub purpose: String,
    pub decision: String,
    pub error_code: Option<String>,
    pub risk_score: i32,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponsibleData {
    pub allowed: u64,
    pub flagged: u64,
    pub blocked: u64,
    pub concerns: Vec<ConcernRow>,
    /// The `before` of the next (older) page, when there is one.
    pub older: Option<i64>,
}

#[server(prefix = "/_fn", endpoint = "responsible/list")]
pub async fn get_responsible(before: Option<i64>) -> Result<ResponsibleData, ServerFnError> {
    use crate::server_util::*;
    use gateway::{policy_log, time};
    let user = require_user()?;
    let state = app_state()?;
    let summary = policy_log::summary(&state.db, user.account_id, time::now() - 7 * 24 * 3600)
        .await
        .map_err(|e| read_error("policy summary", e))?;
    let mut concerns = policy_log::recent_concerns(&state.db, user.account_id, before, PAGE_SIZE + 1)
        .await
        .map_err(|e| read_error("policy log", e))?;
    let older = (concerns.len() as u64 > PAGE_SIZE).then(|| concerns[PAGE_SIZE as usize - 1].id);
    concerns.truncate(PAGE_SIZE as usize);
    Ok(ResponsibleData {
        allowed: summary.allowed,
        flagged: summary.flagged,
        blocked: summary.blocked,
        concerns: concerns
            .into_iter()
            .map(|c| ConcernRow {
                at: time::display(c.created_at),
                instance_id: c.instance_id.unwrap_or_default(),
                recipient: c.recipient_masked,
                purpose: c.purpose,
                decision: c.decision,
                error_code: c.error_code,
                risk_score: c.risk_score,
                reasons: c.reasons.into_iter().map(|r| r.detail).collect(),
            })
            .collect(),
        older,
    })
}

#[component]
pub fn ResponsiblePage() -> impl IntoView {
    let before = use_query_map().with_untracked(|q| q.get("before").and_then(|b| b.parse::<i64>().ok()));
    let data = Resource::new(|| (), move |_| get_responsible(before));
    view! {
        <PortalLayout title="Responsible messaging" current="/responsible-messaging"
            lead="Every send is checked for its purpose, opt-outs, content, fair-use limits and speed. Attempts that were blocked or flagged are listed here.">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! {
                            <div class="grid">
                                <div class="stat"><div class="stat-label">"Allowed (7 days)"</div><div class="stat-value">{d.allowed}</div></div>
                                <div class="stat"><div class="stat-label">"Flagged (7 days)"</div><div class="stat-value">{d.flagged}</div><div class="stat-sub">"sent, with a concern"</div></div>
                                <div class="stat"><div class="stat-label">"Blocked (7 days)"</div><div class="stat-value">{d.blocked}</div></div>
                            </div>
                            <section class="card">
                                <h2>"Blocked and flagged attempts"</h2>
                                <ConcernTable rows=d.concerns/>
                                {d.older.map(|id| view! { <p><a class="btn btn-secondary" href=format!("/responsible-messaging?before={id}")>"Older attempts →"</a></p> })}
                                <p class="hint">"See "<a href="/docs/responsible-messaging">"Responsible messaging"</a>" for what each check means and how to fix a block."</p>
                            </section>
                        }.into_any(),
                        Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                    }
                })}
            </Suspense>
        </PortalLayout>
    }
}

/// What an outcome code means, in words; the code itself is shown beside it for the API's sake.
pub fn outcome_label(error_code: Option<&str>, decision: &str) -> &'static str {
    match (error_code, decision) {
        (Some("policy_violation"), _) => "Blocked: content policy",
        (Some("recipient_suppressed"), _) => "Blocked: recipient opted out or blocked",
        (Some("message_purpose_required"), _) => "Blocked: no message purpose",
        (Some("message_purpose_not_allowed"), _) => "Blocked: purpose not allowed",
        (Some("instance_paused_for_review"), _) => "Blocked: instance paused for review",
        (Some("daily_message_limit_exceeded"), _) => "Blocked: daily limit reached",
        (Some("monthly_message_limit_exceeded"), _) => "Blocked: monthly limit reached",
        (Some("sending_throttled"), _) => "Slowed down: sending too fast",
        (Some("gateway_send_failed"), _) => "Passed the checks, delivery failed",
        (None, "flag") => "Sent, with a concern",
        (None, "allow") => "Allowed",
        _ => "Blocked",
    }
}

/// The reasons of a decision: the first on one line, all of them behind a toggle.
#[component]
fn Reasons(reasons: Vec<String>) -> impl IntoView {
    match reasons.as_slice() {
        [] => view! { "—" }.into_any(),
        [only] => view! { <span>{only.clone()}</span> }.into_any(),
        [first, rest @ ..] => {
            let summary = format!("{first} (+{} more)", rest.len());
            view! {
                <details class="reasons">
                    <summary>{summary}</summary>
                    <ul>{reasons.into_iter().map(|r| view! { <li>{r}</li> }).collect_view()}</ul>
                </details>
            }
            .into_any()
        }
    }
}

#[component]
fn ConcernTable(rows: Vec<ConcernRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <div class="empty-state"><p><strong>"Nothing blocked or flagged."</strong></p></div> }
            .into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"When"</th><th>"Outcome"</th><th>"Recipient"</th><th>"Purpose"</th><th>"Risk"</th><th>"Reasons"</th><th>"Instance"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|r| {
                        let code = r.error_code.clone().unwrap_or_else(|| r.decision.clone());
                        let label = outcome_label(r.error_code.as_deref(), &r.decision);
                        view! {
                            <tr>
                                <td data-label="When">{r.at}</td>
                                <td class="cell-status" data-label="Outcome">{label}<br/><span class="mono muted">{code}</span></td>
                                <td class="mono" data-label="Recipient">{r.recipient}</td>
                                <td data-label="Purpose">{r.purpose}</td>
                                <td data-label="Risk">{r.risk_score}</td>
                                <td data-label="Reasons"><Reasons reasons=r.reasons/></td>
                                <td class="mono" data-label="Instance">{r.instance_id}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }.into_any()
}
