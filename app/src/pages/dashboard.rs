//! The dashboard: plan, today's and this month's usage against the limits, instances.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{
    layout::PortalLayout,
    pages::{
        instances::{InstanceRow, InstanceTable},
        limit_request::{LimitRequestCard, LimitRequestRow},
    },
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardData {
    pub plan_name: String,
    /// (daily, monthly); `None` without an active plan.
    pub limits: Option<(i64, i64)>,
    pub used_today: i64,
    pub used_this_month: i64,
    pub api_enabled: bool,
    pub threecx_enabled: bool,
    pub instances: Vec<InstanceRow>,
    /// Send decisions of the last 7 days: allowed, flagged, blocked.
    pub decisions: (u64, u64, u64),
    /// The getting-started steps (key, linked instance, test message, webhook), shown until the
    /// first message is sent; `None` after that.
    pub first_steps: Option<[bool; 4]>,
    /// The newest request for a higher reviewed limit, with its outcome.
    pub limit_request: Option<LimitRequestRow>,
}

#[server(prefix = "/_fn", endpoint = "dashboard")]
pub async fn get_dashboard() -> Result<DashboardData, ServerFnError> {
    use crate::server_util::*;
    let user = require_user()?;
    let state = app_state()?;
    let account = gateway::accounts::find_by_id(&state.db, user.account_id)
        .await
        .map_err(|e| read_error("load account", e))?
        .ok_or_else(|| ServerFnError::new("Please log in."))?;
    let usage = gateway::usage::current(&state.db, account.id, chrono::Utc::now())
        .await
        .map_err(|e| read_error("load usage", e))?;
    let instances =
        gateway::instances::list(&state.db, account.id).await.map_err(|e| read_error("list instances", e))?;
    let summary = gateway::policy_log::summary(&state.db, account.id, gateway::time::now() - 7 * 24 * 3600)
        .await
        .map_err(|e| read_error("policy summary", e))?;
    let progress =
        gateway::onboarding::progress(&state.db, account.id).await.map_err(|e| read_error("onboarding", e))?;
    let first_steps = (!progress.message_sent).then_some([
        progress.key_created,
        progress.instance_linked,
        progress.message_sent,
        progress.webhook_added,
    ]);
    let limit_request = gateway::limit_requests::latest(&state.db, account.id)
        .await
        .map_err(|e| read_error("limit request", e))?
        .map(|r| LimitRequestRow::from_request(&r, &account.email));
    Ok(DashboardData {
        limit_request,
        first_steps,
        decisions: (summary.allowed, summary.flagged, summary.blocked),
        plan_name: account.plan.display_name().into(),
        limits: account.limits().map(|l| (l.daily, l.monthly)),
        used_today: usage.today,
        used_this_month: usage.this_month,
        api_enabled: account.api_enabled,
        threecx_enabled: account.threecx_enabled,
        instances: instances.into_iter().map(InstanceRow::from).collect(),
    })
}

#[component]
pub fn DashboardPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| get_dashboard());
    view! {
        <PortalLayout title="Dashboard" current="/dashboard">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! { <DashboardView d/> }.into_any(),
                        Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                    }
                })}
            </Suspense>
        </PortalLayout>
    }
}

#[component]
fn UsageStat(label: &'static str, used: i64, limit: Option<i64>, period: &'static str) -> impl IntoView {
    let (value, sub, percent) = match limit {
        Some(limit) if limit > 0 => {
            let percent = (used * 100 / limit).clamp(0, 100);
            (format!("{used} / {limit}"), format!("{} left {period}", (limit - used).max(0)), percent)
        }
        _ => (used.to_string(), "No active plan".to_string(), 0),
    };
    let meter_class = if percent > 80 { "meter meter-warn" } else { "meter" };
    view! {
        <div class="stat">
            <div class="stat-label">{label}</div>
            <div class="stat-value">{value}</div>
            <div class=meter_class role="meter" aria-valuemin="0" aria-valuemax="100" aria-valuenow=percent.to_string() aria-label=label>
                // An SVG attribute, not an inline style: the portal's CSP allows no inline styles.
                <svg class="meter-bar" viewBox="0 0 100 8" preserveAspectRatio="none" aria-hidden="true">
                    <rect class="meter-fill" width=percent.to_string() height="8"></rect>
                </svg>
            </div>
            <div class="stat-sub">{sub}</div>
        </div>
    }
}

/// The getting-started checklist: each step links to where it is done.
#[component]
fn FirstSteps(steps: [bool; 4], first_instance: Option<String>) -> impl IntoView {
    let instance_page = |tab: &str| match &first_instance {
        Some(id) => format!("/instances/{id}/manage?tab={tab}"),
        None => "/instances".to_string(),
    };
    let items = [
        ("Create an API key", "/api-keys".to_string(), "Your systems send with it."),
        ("Create and link an instance", instance_page("connect"), "A sandbox links with one click, no phone needed."),
        ("Send a test message", instance_page("overview"), "From the instance page, or with POST /api/send-message."),
        ("Add a webhook", instance_page("webhook"), "Received messages and receipts reach your systems."),
    ];
    let done = steps.iter().filter(|d| **d).count();
    view! {
        <section class="card checklist">
            <h2>"Get started"</h2>
            <p class="muted">{format!("{done} of 4 done. This list goes away once your first message is sent.")}</p>
            <ol>
                {items.into_iter().zip(steps).map(|((label, href, hint), done)| view! {
                    <li class={if done { "step step-done" } else { "step" }}>
                        <span class="step-mark" aria-hidden="true">{if done { "✓" } else { "" }}</span>
                        <span>
                            <a href=href>{label}</a>
                            <span class="visually-hidden">{if done { " (done)" } else { " (to do)" }}</span>
                            <br/><span class="hint">{hint}</span>
                        </span>
                    </li>
                }).collect_view()}
            </ol>
        </section>
    }
}

#[component]
fn DashboardView(d: DashboardData) -> impl IntoView {
    let connected = d.instances.iter().filter(|i| i.status == "connected").count();
    let modules = match (d.api_enabled, d.threecx_enabled) {
        (true, true) => "API and 3CX middleware",
        (true, false) => "API",
        (false, true) => "3CX middleware",
        (false, false) => "None enabled",
    };
    let alerts: Vec<_> = d.instances.iter().filter(|i| i.connection_alert.is_some()).cloned().collect();
    let first_instance = d.instances.first().map(|i| i.id.clone());
    view! {
        {d.first_steps.map(|steps| view! { <FirstSteps steps first_instance/> })}
        {(!alerts.is_empty()).then(|| view! {
            <div class="banner banner-error banner-loud" role="alert">
                <p><strong>"WhatsApp suspended or ended the link of an instance."</strong></p>
                <ul>
                    {alerts.into_iter().map(|i| view! {
                        <li><a href=format!("/instances/{}/manage", i.id)>{i.name.clone()}</a>": "{i.connection_alert.clone().unwrap_or_default()}</li>
                    }).collect_view()}
                </ul>
            </div>
        })}
        <div class="grid">
            <div class="stat">
                <div class="stat-label">"Plan"</div>
                <div class="stat-value">{d.plan_name.clone()}</div>
                <div class="stat-sub">{format!("Modules: {modules}")}</div>
            </div>
            <UsageStat label="Messages today" used=d.used_today limit=d.limits.map(|l| l.0) period="today (UTC)"/>
            <UsageStat label="Messages this month" used=d.used_this_month limit=d.limits.map(|l| l.1) period="this month (UTC)"/>
            <div class="stat">
                <div class="stat-label">"Instances"</div>
                <div class="stat-value">{format!("{connected} / {}", d.instances.len())}</div>
                <div class="stat-sub">"connected"</div>
            </div>
        </div>
        <LimitRequestCard latest=d.limit_request.clone() limits=d.limits/>
        <section class="card">
            <h2>"Responsible messaging, last 7 days"</h2>
            <p>
                {format!("{} allowed · {} flagged · {} blocked. ", d.decisions.0, d.decisions.1, d.decisions.2)}
                <a href="/responsible-messaging">"See blocked and flagged attempts"</a>
            </p>
        </section>
        <section class="card">
            <h2>"Instances"</h2>
            {if d.instances.is_empty() {
                view! {
                    <div class="empty-state">
                        <p><strong>"No instances yet."</strong></p>
                        <p><a href="/instances">"Create an instance"</a>" and link it, then "<a href="/api-keys">"create an API key"</a>" for your systems."</p>
                    </div>
                }.into_any()
            } else {
                view! { <InstanceTable rows=d.instances/> }.into_any()
            }}
        </section>
    }
}
