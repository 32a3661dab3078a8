//! /admin/audit: every operator action, newest first (who, what, which account and instance,
//! before → after, when). The account page shows the same table for one account.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use super::shared::{is_operator, LoadError, Table};
use crate::{layout::PortalLayout, pages::not_found::NotFound};

#[cfg(feature = "ssr")]
const PAGE_SIZE: u64 = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub account_id: Option<i64>,
    pub instance_id: Option<String>,
    pub before: Option<String>,
    pub after: Option<String>,
}

impl AuditRow {
    #[cfg(feature = "ssr")]
    pub fn from_entry(e: gateway::audit::Entry) -> AuditRow {
        AuditRow {
            id: e.id,
            at: gateway::time::display(e.at),
            actor: e.actor,
            action: e.action,
            account_id: e.account_id,
            instance_id: e.instance_id,
            before: e.before,
            after: e.after,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub next_before: Option<i64>,
}

#[server(prefix = "/_fn", endpoint = "admin/audit")]
pub async fn get_audit(before: Option<i64>) -> Result<AuditPage, ServerFnError> {
    use crate::server_util::*;
    super::shared::require_operator()?;
    let state = app_state()?;
    let rows =
        gateway::audit::page(&state.db, None, before, PAGE_SIZE).await.map_err(|e| read_error("read audit log", e))?;
    let next_before = (rows.len() as u64 == PAGE_SIZE).then(|| rows.last().map(|r| r.id)).flatten();
    Ok(AuditPage { rows: rows.into_iter().map(AuditRow::from_entry).collect(), next_before })
}

#[component]
pub fn AdminAuditPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let before = use_query_map().with_untracked(|q| q.get("before").and_then(|b| b.parse::<i64>().ok()));
    let data = Resource::new(|| (), move |_| get_audit(before));
    view! {
        <PortalLayout title="Audit log" current="/admin/audit" lead="Every operator action, from the portal (by the operator's email) and from wag admin (as cli). Rows are only ever added.">
            <section class="card">
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match data.await {
                            Ok(page) => view! {
                                <AuditTable rows=page.rows/>
                                {page.next_before.map(|b| view! {
                                    <p><a class="btn btn-secondary" href=format!("/admin/audit?before={b}")>"Older entries"</a></p>
                                })}
                            }.into_any(),
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
pub fn AuditTable(rows: Vec<AuditRow>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No operator action recorded yet."</p> }.into_any();
    }
    view! {
        <Table headers=&["When", "Who", "Action", "Account", "Instance", "Before", "After"]>
            {rows.into_iter().map(|r| view! {
                <tr>
                    <td data-label="When">{r.at}</td>
                    <td data-label="Who">{r.actor}</td>
                    <td data-label="Action"><code>{r.action}</code></td>
                    <td data-label="Account">{r.account_id.map(|id| view! { <a href=format!("/admin/accounts/{id}")>{id}</a> })}</td>
                    <td data-label="Instance">{r.instance_id.map(|id| view! { <code>{id}</code> })}</td>
                    <td data-label="Before">{r.before.unwrap_or_default()}</td>
                    <td data-label="After">{r.after.unwrap_or_default()}</td>
                </tr>
            }).collect_view()}
        </Table>
    }
    .into_any()
}
