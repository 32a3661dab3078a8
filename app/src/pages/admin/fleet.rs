//! /admin/instances: every instance across tenants, by state: owner account, connector, status
//! and alerts, the last message received and the last one delivered, the failed share of its
//! recent sends; pause for review or resume.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::shared::{is_operator, LoadError, Table};
use crate::{
    layout::{fn_path, CsrfField, PortalLayout},
    pages::{
        instances::{InstanceRow, StatusBadge},
        not_found::NotFound,
    },
};

#[cfg(feature = "ssr")]
const PAGE_SIZE: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRowView {
    pub instance: InstanceRow,
    pub account_id: i64,
    pub account_email: String,
    pub last_inbound: String,
    pub last_sent: String,
    /// "3 of 100 failed"
    pub failed: String,
}

#[cfg(feature = "ssr")]
impl FleetRowView {
    pub fn from_row(r: gateway::operator::fleet::FleetRow) -> FleetRowView {
        use super::shared::when;
        let failed = if r.recent_total == 0 {
            "no sends yet".to_string()
        } else {
            let percent = r.recent_failed * 100 / r.recent_total;
            format!("{} of the last {} failed ({percent} %)", r.recent_failed, r.recent_total)
        };
        FleetRowView {
            account_id: r.instance.account_id,
            account_email: r.account_email,
            last_inbound: when(r.last_inbound_at),
            last_sent: when(r.last_sent_at),
            failed,
            instance: InstanceRow::from(r.instance),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetPage {
    pub rows: Vec<FleetRowView>,
    pub next_after: Option<String>,
}

#[server(prefix = "/_fn", endpoint = "admin/instances")]
pub async fn list_fleet(state_filter: String, after: Option<String>) -> Result<FleetPage, ServerFnError> {
    use crate::server_util::*;
    use gateway::operator::fleet::{self, StateFilter};
    super::shared::require_operator()?;
    let state = app_state()?;
    let rows = fleet::instances(&state.db, StateFilter::parse(&state_filter), after.as_deref(), PAGE_SIZE)
        .await
        .map_err(|e| read_error("list instances", e))?;
    let next_after = (rows.len() as u64 == PAGE_SIZE).then(|| rows.last().map(|r| r.instance.id.clone())).flatten();
    Ok(FleetPage { rows: rows.into_iter().map(FleetRowView::from_row).collect(), next_after })
}

/// Pauses (`pause` with a reason) or resumes (with an optional note) an instance; `back` is the
/// operator page to return to.
#[server(prefix = "/_fn", endpoint = "admin/instances/review")]
pub async fn review_instance(
    id: String,
    action: String,
    note: Option<String>,
    back: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::operator::actions::{self, Reviewed};
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    // Only back to an operator page.
    let back = back.filter(|b| b.starts_with("/admin/")).unwrap_or_else(|| "/admin/instances".into());
    let note = note.unwrap_or_default();
    let result = match action.as_str() {
        "pause" => actions::pause_instance(&state.db, &operator.email, &id, &note).await,
        "resume" => actions::resume_instance(&state.db, &operator.email, &id, Some(&note)).await,
        "keep" => actions::keep_paused(&state.db, &operator.email, &id, &note).await,
        _ => Err(gateway::Error::invalid("Choose pause, resume or keep paused.")),
    };
    let flash = match (action.as_str(), result) {
        ("pause", Ok(Reviewed::Done)) => Flash::success("Paused for review: its sends answer 423 until it is resumed."),
        ("resume", Ok(Reviewed::Done)) => Flash::success("Resumed: the instance sends again."),
        (_, Ok(Reviewed::Done)) => Flash::success("Kept paused; the customer sees your note on the instance."),
        ("pause", Ok(Reviewed::Unchanged)) => Flash::error("That instance was already paused for review."),
        (_, Ok(Reviewed::Unchanged)) => Flash::error("That instance is not paused for review."),
        (_, Err(gateway::Error::NotFound)) => Flash::error("No such instance."),
        (_, Err(e)) => Flash::error(user_message("review instance", &e)),
    };
    finish(flash, &back).await
}

#[component]
pub fn AdminInstancesPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let (filter, after) = use_query_map().with_untracked(|q| (q.get("state").unwrap_or_default(), q.get("after")));
    let data = Resource::new(|| (), {
        let filter = filter.clone();
        move |_| list_fleet(filter.clone(), after.clone())
    });
    let chosen = filter.clone();
    let tab = move |value: &'static str, label: &'static str| {
        let current = chosen == value;
        let href =
            if value.is_empty() { "/admin/instances".to_string() } else { format!("/admin/instances?state={value}") };
        view! { <a class="tab" href=href aria-current=current.then_some("page")>{label}</a> }
    };
    view! {
        <PortalLayout title="All instances" current="/admin/instances" lead="Every instance of every account. The failed share counts each instance's last 100 messages.">
            <nav class="tabs" aria-label="Instance state">
                {tab("", "All")}
                {tab("connected", "Connected")}
                {tab("disconnected", "Disconnected")}
                {tab("unlinked", "Not linked")}
                {tab("alert", "Banned or logged out")}
                {tab("paused_for_review", "Paused for review")}
            </nav>
            <section class="card">
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        let filter = filter.clone();
                        Suspend::new(async move {
                            match data.await {
                                Ok(page) if page.rows.is_empty() => view! {
                                    <div class="empty-state"><p><strong>"No instances here."</strong></p></div>
                                }.into_any(),
                                Ok(page) => {
                                    let next = page.next_after.map(|after| format!("/admin/instances?state={filter}&after={}", super::accounts::encode(&after)));
                                    view! {
                                        <FleetTable rows=page.rows/>
                                        {next.map(|href| view! { <p><a class="btn btn-secondary" href=href>"Next page"</a></p> })}
                                    }.into_any()
                                }
                                Err(e) => view! { <LoadError message=e.to_string()/> }.into_any(),
                            }
                        })
                    }}
                </Suspense>
            </section>
        </PortalLayout>
    }
    .into_any()
}

#[component]
fn FleetTable(rows: Vec<FleetRowView>) -> impl IntoView {
    view! {
        <Table headers=&["Instance", "Account", "Connector", "Status", "Last received", "Last delivered", "Failed", ""]>
            {rows.into_iter().map(|r| {
                let id = r.instance.id.clone();
                let paused = r.instance.review_paused;
                view! {
                    <tr>
                        <td data-label="Instance">{r.instance.name.clone()}<br/><code>{id.clone()}</code></td>
                        <td data-label="Account"><a href=format!("/admin/accounts/{}", r.account_id)>{r.account_email}</a></td>
                        <td data-label="Connector">{r.instance.connector.clone()}</td>
                        <td data-label="Status">
                            <StatusBadge row=r.instance.clone()/>
                            {r.instance.connection_alert.clone().map(|a| view! { <br/><span class="hint">{a}</span> })}
                        </td>
                        <td data-label="Last received">{r.last_inbound}</td>
                        <td data-label="Last delivered">{r.last_sent}</td>
                        <td data-label="Failed">{r.failed}</td>
                        <td class="actions">
                            <details class="confirm">
                                <summary class=if paused { "btn btn-secondary" } else { "btn btn-danger" }>{if paused { "Resume" } else { "Pause" }}</summary>
                                <form class="inline" method="post" action={fn_path::<ReviewInstance>()}>
                                    <CsrfField/>
                                    <input type="hidden" name="id" value=id.clone()/>
                                    <input type="hidden" name="action" value=if paused { "resume" } else { "pause" }/>
                                    <input type="hidden" name="back" value="/admin/instances"/>
                                    <label for=format!("note-{id}")>{if paused { "Note for the customer (optional)" } else { "Reason (the customer sees it)" }}</label>
                                    <input id=format!("note-{id}") name="note" maxlength=if paused { "1000" } else { "255" } required=!paused/>
                                    <button type="submit" class=if paused { "btn btn-primary" } else { "btn btn-danger" }>{if paused { "Resume sending" } else { "Pause for review" }}</button>
                                </form>
                            </details>
                        </td>
                    </tr>
                }
            }).collect_view()}
        </Table>
    }
}
