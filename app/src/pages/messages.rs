//! /messages: what the account sent, newest first, with each message's status lifecycle
//! (accepted → sent → delivered → read, or failed), filters, keyset pagination, and the
//! failed-delivery rate of the last 24 hours and 7 days (the spec asks to monitor it).
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use serde::{Deserialize, Serialize};

use crate::layout::PortalLayout;

pub const PAGE_SIZE: u64 = 50;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesQuery {
    pub instance: Option<String>,
    pub phone: Option<String>,
    pub status: Option<String>,
    pub before: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRow {
    pub sent: String,
    pub message_id: String,
    pub instance: String,
    pub to: String,
    pub purpose: String,
    /// "API", or "3CX" with the agent extension and conversation id when given.
    pub source: String,
    pub body: String,
    pub status: String,
    pub error: Option<String>,
    pub updated: String,
}

/// One bar of the chart: a day (UTC) and its failure rate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayRate {
    pub day: String,
    pub total: u64,
    pub failed: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesPage {
    pub rows: Vec<MessageRow>,
    pub older: Option<i64>,
    /// Set when filters stopped at the end of their scan window before the page was full.
    pub window_note: Option<String>,
    pub instances: Vec<(String, String)>,
    /// (total, failed) of the last 24 hours and of the last 7 days.
    pub last_day: (u64, u64),
    pub last_week: (u64, u64),
    pub days: Vec<DayRate>,
}

#[server(prefix = "/_fn", endpoint = "messages/list")]
pub async fn list_messages(query: MessagesQuery) -> Result<MessagesPage, ServerFnError> {
    use crate::server_util::*;
    use gateway::message_log::{self, LogFilter};
    let user = require_user()?;
    let state = app_state()?;
    let db = &state.db;
    let instances = gateway::instances::list(db, user.account_id).await.map_err(|e| read_error("list instances", e))?;
    let names: Vec<(String, String)> = instances.iter().map(|i| (i.id.clone(), i.name.clone())).collect();
    let filter = LogFilter {
        instance_id: query.instance.clone().filter(|i| !i.is_empty()),
        phone: gateway::log_page::PhoneFilter::parse(query.phone.as_deref()),
        status: query.status.clone(),
        before: query.before,
    };
    let page =
        message_log::page(db, user.account_id, &filter, PAGE_SIZE).await.map_err(|e| read_error("message log", e))?;
    let older = page.older;
    let window_note =
        page.window_ended.then(|| super::log_links::window_note(gateway::log_page::SCAN_WINDOW, "messages"));
    let name_of =
        |id: &str| names.iter().find(|(i, _)| i == id).map(|(_, n)| n.clone()).unwrap_or_else(|| id.to_string());
    let now = gateway::time::now();
    let rate = |from: i64, until: i64| message_log::failure_rate(db, user.account_id, from, until);
    let day = rate(now - 86_400, now + 1).await.map_err(|e| read_error("failure rate", e))?;
    let week = rate(now - 7 * 86_400, now + 1).await.map_err(|e| read_error("failure rate", e))?;
    let today_start = now - now.rem_euclid(86_400);
    let mut days = Vec::new();
    for back in (0..7).rev() {
        let start = today_start - back * 86_400;
        let r = rate(start, start + 86_400).await.map_err(|e| read_error("failure rate", e))?;
        days.push(DayRate {
            day: gateway::time::to_datetime(start).format("%a %d").to_string(),
            total: r.total,
            failed: r.failed,
        });
    }
    Ok(MessagesPage {
        rows: page
            .rows
            .into_iter()
            .map(|r| MessageRow {
                sent: gateway::time::display(r.created_at),
                updated: gateway::time::display(r.updated_at),
                instance: name_of(&r.instance_id),
                message_id: r.message_id,
                to: r.recipient,
                purpose: r.purpose,
                source: source_label(&r.source, r.agent_extension.as_deref(), r.conversation_id.as_deref()),
                body: match r.media_file_name {
                    Some(name) if r.body.is_empty() => format!("[{}] {name}", r.kind),
                    Some(name) => format!("[{}] {name} — {}", r.kind, r.body),
                    None => r.body,
                },
                status: r.status,
                error: r.error,
            })
            .collect(),
        older,
        window_note,
        instances: names,
        last_day: (day.total, day.failed),
        last_week: (week.total, week.failed),
        days,
    })
}

fn percent((total, failed): (u64, u64)) -> String {
    if total == 0 {
        "—".into()
    } else {
        format!("{:.1} %", failed as f64 * 100.0 / total as f64)
    }
}

#[component]
pub fn MessagesPage() -> impl IntoView {
    let query = use_query_map().with_untracked(|q| MessagesQuery {
        instance: q.get("instance"),
        phone: q.get("phone"),
        status: q.get("status"),
        before: q.get("before").and_then(|b| b.parse().ok()),
    });
    let data = Resource::new(|| (), {
        let query = query.clone();
        move |_| list_messages(query.clone())
    });
    view! {
        <PortalLayout title="Messages" current="/messages" lead="What your instances sent, with each message's delivery status.">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || {
                    let query = query.clone();
                    Suspend::new(async move {
                        match data.await {
                            Ok(page) => view! { <MessagesView page query/> }.into_any(),
                            Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </PortalLayout>
    }
}

/// Bars of the daily failure rate, drawn on the server as SVG (no script needed).
#[component]
fn FailureChart(days: Vec<DayRate>) -> impl IntoView {
    let width = 40 * days.len();
    let bars = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let pct = if d.total == 0 { 0.0 } else { d.failed as f64 * 100.0 / d.total as f64 };
            let height = (pct * 0.8).max(if d.failed > 0 { 2.0 } else { 0.0 });
            let x = i * 40 + 8;
            let label = format!("{}: {} of {} failed", d.day, d.failed, d.total);
            view! {
                <g>
                    <title>{label}</title>
                    <rect x=x.to_string() y=format!("{:.1}", 85.0 - height) width="24" height=format!("{height:.1}") fill="#b91c1c"></rect>
                    <text x=(x + 12).to_string() y="99" text-anchor="middle" font-size="9" fill="#6b7280">{d.day.clone()}</text>
                </g>
            }
        })
        .collect_view();
    view! {
        <svg class="chart" role="img" aria-label="Failed deliveries per day, last 7 days" viewBox=format!("0 0 {width} 102") width=width.to_string() height="102">
            <line x1="0" y1="85" x2=width.to_string() y2="85" stroke="#d1d5db"></line>
            {bars}
        </svg>
    }
}

#[component]
fn MessagesView(page: MessagesPage, query: MessagesQuery) -> impl IntoView {
    let selected = query.instance.clone().unwrap_or_default();
    let status = query.status.clone().unwrap_or_default();
    let older = page.older.map(|before| {
        let filters = [("instance", &query.instance), ("phone", &query.phone), ("status", &query.status)];
        super::log_links::older_href("/messages", &before.to_string(), &filters)
    });
    let window_note = page.window_note.clone();
    view! {
        <div class="grid">
            <div class="stat">
                <div class="stat-label">"Failed, last 24 hours"</div>
                <div class="stat-value">{percent(page.last_day)}</div>
                <div class="stat-sub">{format!("{} of {} messages", page.last_day.1, page.last_day.0)}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Failed, last 7 days"</div>
                <div class="stat-value">{percent(page.last_week)}</div>
                <div class="stat-sub">{format!("{} of {} messages", page.last_week.1, page.last_week.0)}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Failed per day"</div>
                <FailureChart days=page.days/>
            </div>
        </div>
        <section class="card">
            <form class="form form-inline" method="get" action="/messages">
                <div class="field">
                    <label for="m-instance">"Instance"</label>
                    <select id="m-instance" name="instance">
                        <option value="">"All instances"</option>
                        {page.instances.into_iter().map(|(id, name)| {
                            let is_selected = id == selected;
                            view! { <option value=id selected=is_selected>{name}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="m-phone">"Recipient"</label>
                    <input id="m-phone" name="phone" inputmode="tel" value=query.phone.clone().unwrap_or_default()/>
                </div>
                <div class="field">
                    <label for="m-status">"Status"</label>
                    <select id="m-status" name="status">
                        {["", "accepted", "sent", "delivered", "read", "failed"].into_iter().map(|s| {
                            let label = if s.is_empty() { "Any status" } else { s };
                            view! { <option value=s selected=s == status>{label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <button type="submit" class="btn btn-secondary">"Filter"</button>
            </form>
        </section>
        <section class="card">
            {if page.rows.is_empty() {
                view! { <div class="empty-state"><p><strong>"No messages."</strong></p><p>"Messages sent with POST /api/send-message appear here."</p></div> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table">
                            <thead><tr><th>"Sent"</th><th>"Instance"</th><th>"To"</th><th>"Purpose"</th><th>"Source"</th><th>"Message"</th><th>"Status"</th></tr></thead>
                            <tbody>
                                {page.rows.into_iter().map(|r| {
                                    let badge = match r.status.as_str() {
                                        "failed" => "badge badge-revoked",
                                        "read" | "delivered" => "badge badge-connected",
                                        _ => "badge badge-unlinked",
                                    };
                                    view! {
                                        <tr>
                                            <td data-label="Sent">{r.sent}<br/><crate::layout::CopyableId text=r.message_id/></td>
                                            <td data-label="Instance">{r.instance}</td>
                                            <td class="mono" data-label="To">{r.to}</td>
                                            <td data-label="Purpose">{r.purpose}</td>
                                            <td data-label="Source">{r.source}</td>
                                            <td data-label="Message">{r.body}</td>
                                            <td class="cell-status" data-label="Status">
                                                <span class=badge>{r.status}</span>
                                                {r.error.map(|e| view! { <br/><span class="muted">{e}</span> })}
                                                <br/><span class="muted">{format!("since {}", r.updated)}</span>
                                            </td>
                                        </tr>
                                    }
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

/// How the log names where a message came from.
#[cfg(feature = "ssr")]
fn source_label(source: &str, agent_extension: Option<&str>, conversation_id: Option<&str>) -> String {
    match source {
        "3cx" => {
            let mut label = "3CX".to_string();
            if let Some(ext) = agent_extension {
                label.push_str(&format!(" · ext {ext}"));
            }
            if let Some(conversation) = conversation_id {
                label.push_str(&format!(" · {conversation}"));
            }
            label
        }
        _ => "API".to_string(),
    }
}
