//! /inbound-logs: messages received by the account's numbers, newest first, with filters and
//! keyset pagination ("Older" follows the last id shown), so it stays fast with millions of rows.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::layout::PortalLayout;

pub const PAGE_SIZE: u64 = 50;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundQuery {
    pub instance: Option<String>,
    pub phone: Option<String>,
    pub text: Option<String>,
    /// YYYY-MM-DD, UTC, inclusive
    pub from: Option<String>,
    /// YYYY-MM-DD, UTC, inclusive
    pub to: Option<String>,
    /// Where the page starts (see `gateway::inbound::Cursor`).
    pub before: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundRow {
    pub id: i64,
    pub received: String,
    pub instance: String,
    pub from: String,
    pub kind: String,
    pub body: String,
    pub media: Option<String>,
    pub group_id: Option<String>,
    pub opt_out: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundPage {
    pub rows: Vec<InboundRow>,
    /// The `before` of the next (older) page, when there is one.
    pub older: Option<String>,
    /// Set when filters stopped at the end of their scan window before the page was full.
    pub window_note: Option<String>,
    pub instances: Vec<(String, String)>,
    pub error: Option<String>,
}

#[server(prefix = "/_fn", endpoint = "inbound/list")]
pub async fn list_inbound(query: InboundQuery) -> Result<InboundPage, ServerFnError> {
    use crate::server_util::*;
    use gateway::inbound::{self, LogFilter};
    let user = require_user()?;
    let state = app_state()?;
    let instances =
        gateway::instances::list(&state.db, user.account_id).await.map_err(|e| read_error("list instances", e))?;
    let names: Vec<(String, String)> = instances.iter().map(|i| (i.id.clone(), i.name.clone())).collect();
    let day = |text: &Option<String>, end: bool| -> Result<Option<i64>, ()> {
        match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
                .map(|d| {
                    let d = if end { d.succ_opt().unwrap_or(d) } else { d };
                    Some(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc().timestamp())
                })
                .map_err(|_| ()),
        }
    };
    let (from, until) = match (day(&query.from, false), day(&query.to, true)) {
        (Ok(f), Ok(u)) => (f, u),
        _ => {
            return Ok(InboundPage {
                rows: vec![],
                older: None,
                window_note: None,
                instances: names,
                error: Some("Dates are written as YYYY-MM-DD.".into()),
            });
        }
    };
    let before = match query.before.as_deref() {
        Some(text) => inbound::Cursor::parse(&state.db, user.account_id, text)
            .await
            .map_err(|e| read_error("inbound log cursor", e))?,
        None => None,
    };
    let filter = LogFilter {
        instance_id: query.instance.clone().filter(|i| !i.is_empty()),
        phone: gateway::log_page::PhoneFilter::parse(query.phone.as_deref()),
        text: query.text.clone(),
        from,
        until,
        before,
    };
    let page =
        inbound::log(&state.db, user.account_id, &filter, PAGE_SIZE).await.map_err(|e| read_error("inbound log", e))?;
    let older = page.older.map(|c| c.to_string());
    let window_note =
        page.window_ended.then(|| super::log_links::window_note(gateway::log_page::SCAN_WINDOW, "messages"));
    let rows = page.rows;
    let name_of =
        |id: &str| names.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone()).unwrap_or_else(|| id.to_string());
    let rows = rows
        .into_iter()
        .map(|r| InboundRow {
            id: r.id,
            received: gateway::time::display(r.received_at),
            instance: name_of(&r.instance_id),
            from: r.from_phone.clone().unwrap_or_else(|| r.from_address.clone()),
            kind: r.kind.clone(),
            body: r.body.clone(),
            media: r.media_mime_type.as_ref().map(|mime| {
                let size = r.media_bytes.map(|b| format!(", {} KB", b.saturating_add(1023) / 1024)).unwrap_or_default();
                let name = r.media_file_name.clone().map(|n| format!("{n} · ")).unwrap_or_default();
                format!("{name}{mime}{size}")
            }),
            group_id: r.group_id,
            opt_out: r.opt_out,
        })
        .collect();
    Ok(InboundPage { rows, older, window_note, instances: names, error: None })
}

fn query_from_url() -> InboundQuery {
    use_query_map().with_untracked(|q| InboundQuery {
        instance: q.get("instance"),
        phone: q.get("phone"),
        text: q.get("text"),
        from: q.get("from"),
        to: q.get("to"),
        before: q.get("before"),
    })
}

/// The URL of the next page: the same filters, older rows.
fn older_href(query: &InboundQuery, before: &str) -> String {
    let filters = [
        ("instance", &query.instance),
        ("phone", &query.phone),
        ("text", &query.text),
        ("from", &query.from),
        ("to", &query.to),
    ];
    super::log_links::older_href("/inbound-logs", before, &filters)
}

#[component]
pub fn InboundLogsPage() -> impl IntoView {
    let query = query_from_url();
    let data = Resource::new(|| (), {
        let query = query.clone();
        move |_| list_inbound(query.clone())
    });
    let q = query.clone();
    view! {
        <PortalLayout title="Inbound logs" current="/inbound-logs" lead="Messages your WhatsApp numbers received, newest first.">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let q = q.clone();
                    Suspend::new(async move {
                        match data.await {
                            Ok(page) => view! { <InboundView page query=q/> }.into_any(),
                            Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </PortalLayout>
    }
}

#[component]
fn InboundView(page: InboundPage, query: InboundQuery) -> impl IntoView {
    let selected = query.instance.clone().unwrap_or_default();
    let older = page.older.as_deref().map(|before| older_href(&query, before));
    let window_note = page.window_note.clone();
    view! {
        <section class="card">
            <form class="form form-inline" method="get" action="/inbound-logs">
                <div class="field">
                    <label for="f-instance">"Instance"</label>
                    <select id="f-instance" name="instance">
                        <option value="">"All instances"</option>
                        {page.instances.into_iter().map(|(id, name)| {
                            let is_selected = id == selected;
                            view! { <option value=id selected=is_selected>{name}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="f-phone">"Phone"</label>
                    <input id="f-phone" name="phone" inputmode="tel" value=query.phone.clone().unwrap_or_default()/>
                </div>
                <div class="field">
                    <label for="f-text">"Text contains"</label>
                    <input id="f-text" name="text" value=query.text.clone().unwrap_or_default()/>
                </div>
                <div class="field">
                    <label for="f-from">"From (UTC)"</label>
                    <input id="f-from" name="from" type="date" value=query.from.clone().unwrap_or_default()/>
                </div>
                <div class="field">
                    <label for="f-to">"To (UTC)"</label>
                    <input id="f-to" name="to" type="date" value=query.to.clone().unwrap_or_default()/>
                </div>
                <button type="submit" class="btn btn-secondary">"Filter"</button>
            </form>
            {page.error.map(|e| view! { <div class="banner banner-error" role="alert"><p>{e}</p></div> })}
        </section>
        <section class="card">
            {if page.rows.is_empty() {
                view! {
                    <div class="empty-state">
                        <p><strong>"No messages."</strong></p>
                        <p>"Messages people send to your connected numbers appear here. With a sandbox instance, try POST /api/sandbox/inbound."</p>
                    </div>
                }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table">
                            <thead><tr><th>"Received"</th><th>"Instance"</th><th>"From"</th><th>"Type"</th><th>"Message"</th></tr></thead>
                            <tbody>
                                {page.rows.into_iter().map(|r| view! {
                                    <tr>
                                        <td data-label="Received">{r.received}</td>
                                        <td data-label="Instance">{r.instance}</td>
                                        <td class="mono" data-label="From">{r.from}</td>
                                        <td data-label="Type">
                                            {r.kind}
                                            {r.group_id.map(|g| view! { <br/><span class="muted">{format!("group {g}")}</span> })}
                                            {r.opt_out.then(|| view! { <br/><span class="badge badge-revoked">"Opt-out"</span> })}
                                        </td>
                                        <td data-label="Message">
                                            {r.body}
                                            {r.media.map(|m| view! { <br/><span class="muted">{m}</span> })}
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            {window_note.map(|note| view! { <p class="hint">{note}</p> })}
            {older.map(|href| view! { <p><a class="btn btn-secondary" href=href>"Older messages →"</a></p> })}
        </section>
    }
}
