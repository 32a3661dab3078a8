//! /admin: the operator's view of the whole gateway (admin role only; anyone else gets the same
//! 404 as for an unknown page): accounts, instances by state, messages of the last 24 hours as
//! a server-drawn chart, send decisions, the webhook backlog, and the cluster's nodes.
use leptos::prelude::*;

use super::shared::{is_operator, Table};
use crate::{layout::PortalLayout, pages::not_found::NotFound};

/// What /admin shows: [`gateway::operator::Overview`] on the server, its fields here.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdminOverview {
    pub accounts: i64,
    pub instances: Vec<(String, String, i64)>,
    pub alerts: i64,
    pub hourly: Vec<(i64, i64, i64)>,
    pub daily: Vec<(i64, i64, i64)>,
    pub decisions: (i64, i64, i64),
    pub sent_today: (i64, i64),
    pub refusals_today: Vec<(String, i64)>,
    pub threecx_refusals_today: Vec<(String, i64)>,
    pub webhook_backlog: i64,
    pub webhook_oldest_pending_secs: Option<i64>,
    pub failing_destinations: i64,
    /// (id, address, alive, heartbeat age in ms, instances owned)
    pub nodes: Vec<(String, String, bool, i64, i64)>,
    /// (instance id, owner node id, epoch)
    pub owners: Vec<(String, Option<String>, i64)>,
}

#[server(prefix = "/_fn", endpoint = "admin_overview")]
pub async fn get_admin_overview() -> Result<AdminOverview, ServerFnError> {
    use crate::server_util::*;
    super::shared::require_operator()?;
    let state = app_state()?;
    let lease_ms = state.config.cluster.as_ref().map(|c| c.lease.as_millis() as i64);
    let o = gateway::operator::overview(&state.db, gateway::time::now(), lease_ms)
        .await
        .map_err(|e| read_error("admin overview", e))?;
    Ok(AdminOverview {
        accounts: o.accounts,
        instances: o.instances,
        alerts: o.alerts,
        hourly: o.hourly,
        daily: o.daily,
        decisions: o.decisions,
        sent_today: o.sent_today,
        refusals_today: o.refusals_today,
        threecx_refusals_today: o.threecx_refusals_today,
        webhook_backlog: o.webhook_backlog,
        webhook_oldest_pending_secs: o.webhook_oldest_pending_secs,
        failing_destinations: o.failing_destinations,
        nodes: o.nodes.into_iter().map(|n| (n.id, n.address, n.alive, n.heartbeat_age_ms, n.instances_owned)).collect(),
        owners: o.owners.into_iter().map(|w| (w.instance_id, w.node_id, w.epoch)).collect(),
    })
}

#[component]
pub fn AdminPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let data = Resource::new(|| (), |_| get_admin_overview());
    view! {
        <PortalLayout title="Operator overview" current="/admin">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(o) => view! { <OverviewView o/> }.into_any(),
                        Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                    }
                })}
            </Suspense>
        </PortalLayout>
    }
    .into_any()
}

#[component]
fn OverviewView(o: AdminOverview) -> impl IntoView {
    let instances: i64 = o.instances.iter().map(|(_, _, n)| n).sum();
    let connected: i64 = o.instances.iter().filter(|(_, s, _)| s == "connected").map(|(_, _, n)| n).sum();
    let sent_24h: i64 = o.hourly.iter().map(|(_, total, _)| total).sum();
    let failed_24h: i64 = o.hourly.iter().map(|(_, _, failed)| failed).sum();
    let oldest = match o.webhook_oldest_pending_secs {
        Some(secs) => format!("oldest waiting {secs} s"),
        None => "nothing waiting".to_string(),
    };
    view! {
        <div class="grid">
            <div class="stat">
                <div class="stat-label">"Accounts"</div>
                <div class="stat-value">{o.accounts}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Instances connected"</div>
                <div class="stat-value">{format!("{connected} / {instances}")}</div>
                <div class="stat-sub">{format!("{} with a connection alert", o.alerts)}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Messages, last 24 h"</div>
                <div class="stat-value">{sent_24h}</div>
                <div class="stat-sub">{format!("{failed_24h} failed")}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Webhook backlog"</div>
                <div class="stat-value">{o.webhook_backlog}</div>
                <div class="stat-sub">{format!("{oldest}; {} failing destinations", o.failing_destinations)}</div>
            </div>
        </div>
        <section class="card">
            <h2>"Messages per hour, last 24 hours (UTC)"</h2>
            <BarChart bars=o.hourly.clone() label="Messages per hour"/>
            <p class="muted">
                {format!(
                    "Send decisions: {} allowed · {} flagged · {} blocked.",
                    o.decisions.0, o.decisions.1, o.decisions.2
                )}
            </p>
        </section>
        <section class="card">
            <h2>"Messages per day, last 7 days (UTC)"</h2>
            <BarChart bars=o.daily.clone() label="Messages per day"/>
            <p class="muted">
                {o.daily.iter().map(|(day, total, failed)| {
                    format!("{}: {total} ({failed} failed)", day_label(*day))
                }).collect::<Vec<_>>().join(" · ")}
            </p>
        </section>
        <section class="card">
            <h2>"Sends today (UTC)"</h2>
            <Table headers=&["Where", "Outcome", "Count"]>
                <tr><td>"Send API and 3CX"</td><td>"sent"</td><td>{o.sent_today.0 - o.sent_today.1}</td></tr>
                <tr><td>"Send API and 3CX"</td><td>"failed after sending"</td><td>{o.sent_today.1}</td></tr>
                {o.refusals_today.into_iter().map(|(code, n)| view! {
                    <tr><td>"Send API"</td><td><code>{code}</code></td><td>{n}</td></tr>
                }).collect_view()}
                {o.threecx_refusals_today.into_iter().map(|(outcome, n)| view! {
                    <tr><td>"3CX webhook"</td><td><code>{outcome}</code></td><td>{n}</td></tr>
                }).collect_view()}
            </Table>
            <p class="hint">"Refusals are counted by error code; a code appears once something was refused with it today."</p>
        </section>
        <section class="card">
            <h2>"Instances by state"</h2>
            <Table headers=&["Connector", "State", "Instances"]>
                {o.instances.into_iter().map(|(connector, state, n)| view! {
                    <tr><td>{connector}</td><td>{state}</td><td>{n}</td></tr>
                }).collect_view()}
            </Table>
        </section>
        {(!o.nodes.is_empty()).then(|| view! {
            <section class="card">
                <h2>"Cluster nodes"</h2>
                <Table headers=&["Node", "Address", "Alive", "Heartbeat age", "Instances owned"]>
                    {o.nodes.into_iter().map(|(id, address, alive, age_ms, owned)| view! {
                        <tr>
                            <td><code>{id}</code></td>
                            <td>{address}</td>
                            <td>{if alive { "yes" } else { "no" }}</td>
                            <td>{format!("{:.1} s", age_ms as f64 / 1000.0)}</td>
                            <td>{owned}</td>
                        </tr>
                    }).collect_view()}
                </Table>
                <details>
                    <summary>{format!("Owner and epoch of each of {} instances", o.owners.len())}</summary>
                    <Table headers=&["Instance", "Owner node", "Epoch"]>
                        {o.owners.into_iter().map(|(instance, node, epoch)| view! {
                            <tr>
                                <td><code>{instance}</code></td>
                                <td>{node.unwrap_or_else(|| "(none)".into())}</td>
                                <td>{epoch}</td>
                            </tr>
                        }).collect_view()}
                    </Table>
                </details>
            </section>
        })}
    }
}

/// "Mon 23 Nov" for a UTC day start.
fn day_label(day_start: i64) -> String {
    chrono::DateTime::from_timestamp(day_start, 0).map(|d| d.format("%a %d %b").to_string()).unwrap_or_default()
}

/// Bars drawn on the server as SVG (no script, no inline style): failed messages in the darker
/// part at the bottom of each bar. `bars` are (start, total, failed).
#[component]
fn BarChart(bars: Vec<(i64, i64, i64)>, label: &'static str) -> impl IntoView {
    let peak = bars.iter().map(|(_, total, _)| *total).max().unwrap_or(0).max(1);
    let width = (bars.len() * 10).max(10);
    let label =
        format!("{label}: {}", bars.iter().map(|(_, total, _)| total.to_string()).collect::<Vec<_>>().join(", "));
    view! {
        <svg class="chart" viewBox=format!("0 0 {width} 60") preserveAspectRatio="none" role="img" aria-label=label>
            {bars.into_iter().enumerate().map(|(i, (_, total, failed))| {
                let height = total * 56 / peak;
                let failed_height = failed.min(total) * 56 / peak;
                let x = (i * 10 + 1).to_string();
                view! {
                    <rect class="chart-bar" x=x.clone() y=(58 - height).to_string() width="8" height=height.to_string()></rect>
                    <rect class="chart-bar-failed" x=x y=(58 - failed_height).to_string() width="8" height=failed_height.to_string()></rect>
                }
            }).collect_view()}
        </svg>
    }
}
