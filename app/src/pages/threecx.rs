//! /integrations/3cx: the account's 3CX integrations — webhook URL and secret (shown once,
//! rotatable), switches and fields, HMAC secret, the 3CX destination for inbound messages,
//! call-event templates with a preview, and the sanitized request log.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layout::{fn_path, CsrfField, PortalLayout};

const HERE: &str = "/integrations/3cx";
const SECURITY: &str = "/integrations/3cx?tab=security";
const TEMPLATES: &str = "/integrations/3cx?tab=templates";
const FORWARDING: &str = "/integrations/3cx?tab=forwarding";

/// The page's tabs: one card per integration was too long to find anything in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    Settings,
    Security,
    Templates,
    Forwarding,
    Log,
}

impl Tab {
    const ALL: [Tab; 5] = [Tab::Settings, Tab::Security, Tab::Templates, Tab::Forwarding, Tab::Log];

    fn parse(text: Option<&str>) -> Tab {
        match text {
            Some("security") => Tab::Security,
            Some("templates") => Tab::Templates,
            Some("forwarding") => Tab::Forwarding,
            Some("log") => Tab::Log,
            _ => Tab::Settings,
        }
    }

    fn href(self) -> &'static str {
        match self {
            Tab::Settings => HERE,
            Tab::Security => SECURITY,
            Tab::Templates => TEMPLATES,
            Tab::Forwarding => FORWARDING,
            Tab::Log => "/integrations/3cx?tab=log",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Tab::Settings => "Settings",
            Tab::Security => "Security",
            Tab::Templates => "Templates",
            Tab::Forwarding => "Forwarding",
            Tab::Log => "Request log",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateView {
    pub event: String,
    pub label: String,
    pub enabled: bool,
    pub text: String,
    pub preview: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestView {
    pub at: String,
    pub event_type: String,
    pub outcome: String,
    pub status_code: i32,
    pub phone: String,
    pub latency_ms: i64,
    pub detail: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardingView {
    pub url: String,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub previous_secret_valid_until: Option<String>,
    /// (queued, event, status, attempts, last answer)
    pub deliveries: Vec<(String, String, String, i32, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntegrationView {
    pub id: String,
    pub instance_name: String,
    pub webhook_url: String,
    pub enabled: bool,
    pub outbound_enabled: bool,
    pub call_event_enabled: bool,
    pub strict_window: bool,
    pub window_hours: i32,
    pub ip_allowlist: String,
    pub hmac_required: bool,
    pub has_hmac_secret: bool,
    pub secret_hint: String,
    pub business_name: String,
    pub forwarding: Option<ForwardingView>,
    pub templates: Vec<TemplateView>,
    pub requests: Vec<RequestView>,
    /// The link to the next older page of the request log, when there is one.
    pub older_requests: Option<String>,
    /// The link back to the newest requests, when this is an older page.
    pub newest_requests: Option<String>,
}

/// Requests shown per page of an integration's request log.
#[cfg(feature = "ssr")]
const REQUESTS_PER_PAGE: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreecxData {
    pub module_enabled: bool,
    /// Instances without an integration yet: (id, name).
    pub free_instances: Vec<(String, String)>,
    pub integrations: Vec<IntegrationView>,
}

/// `log` names the integration whose request log is paged back to `before` (a request id); the
/// others show their newest.
#[server(prefix = "/_fn", endpoint = "3cx/list")]
pub async fn get_threecx(log: Option<String>, before: Option<i64>) -> Result<ThreecxData, ServerFnError> {
    use crate::server_util::*;
    use gateway::{
        threecx::{forwarding, integrations, request_log, templates},
        time::display,
    };
    let user = require_user()?;
    let state = app_state()?;
    let db = &state.db;
    let account = gateway::accounts::find_by_id(db, user.account_id)
        .await
        .map_err(|e| read_error("find account", e))?
        .ok_or_else(|| ServerFnError::new("Please log in."))?;
    let instances = gateway::instances::list(db, user.account_id).await.map_err(|e| read_error("list instances", e))?;
    let mut views = Vec::new();
    let found = integrations::list(db, user.account_id).await.map_err(|e| read_error("list 3CX integrations", e))?;
    for i in &found {
        let forwarding = match forwarding::destination(db, i).await.map_err(|e| read_error("3CX destination", e))? {
            Some(d) => {
                let deliveries = forwarding::recent_deliveries(db, &d, 10)
                    .await
                    .map_err(|e| read_error("3CX deliveries", e))?
                    .into_iter()
                    .map(|r| {
                        let answer = r.last_status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into());
                        (display(r.created_at), r.event_kind, r.status, r.attempts, answer)
                    })
                    .collect();
                Some(ForwardingView {
                    url: d.url,
                    enabled: d.enabled,
                    disabled_reason: d.disabled_reason,
                    failing_since: d.failing_since.map(display),
                    previous_secret_valid_until: d.previous_secret_valid_until.map(display),
                    deliveries,
                })
            }
            None => None,
        };
        let sample = templates::Values::sample(&i.business_name);
        let before = before.filter(|_| log.as_deref() == Some(i.id.as_str()));
        let mut rows = request_log::recent(db, user.account_id, &i.id, REQUESTS_PER_PAGE as u64 + 1, before)
            .await
            .map_err(|e| read_error("3CX request log", e))?;
        let older_requests = super::log_links::cut_page(
            &mut rows,
            REQUESTS_PER_PAGE,
            |r| r.id,
            |last| format!("{HERE}?tab=log&log={}&before={last}", super::log_links::encode(&i.id)),
        );
        let newest_requests = before.map(|_| Tab::Log.href().to_string());
        let requests = rows
            .into_iter()
            .map(|r| RequestView {
                at: display(r.received_at),
                event_type: r.event_type.unwrap_or_else(|| "—".into()),
                outcome: r.outcome,
                status_code: r.status_code,
                phone: r.phone_masked.unwrap_or_else(|| "—".into()),
                latency_ms: r.latency_ms,
                detail: r.detail.unwrap_or_default(),
            })
            .collect();
        views.push(IntegrationView {
            id: i.id.clone(),
            instance_name: instances
                .iter()
                .find(|inst| inst.id == i.instance_id)
                .map(|inst| inst.name.clone())
                .unwrap_or_else(|| i.instance_id.clone()),
            webhook_url: format!("{}/integrations/3cx/webhook/{}", state.config.public_base_url, i.id),
            enabled: i.enabled,
            outbound_enabled: i.outbound_enabled,
            call_event_enabled: i.call_event_enabled,
            strict_window: i.strict_window,
            window_hours: i.window_hours,
            ip_allowlist: i.ip_allowlist.to_text(),
            hmac_required: i.hmac_required,
            has_hmac_secret: i.has_hmac_secret,
            secret_hint: i.secret_hint.clone(),
            business_name: i.business_name.clone(),
            forwarding,
            templates: templates::CallEvent::ALL
                .into_iter()
                .map(|event| {
                    let t = i.templates.get(event);
                    TemplateView {
                        event: event.as_str().into(),
                        label: event.label().into(),
                        enabled: t.enabled,
                        preview: templates::render(&t.text, &sample),
                        text: t.text,
                    }
                })
                .collect(),
            requests,
            older_requests,
            newest_requests,
        });
    }
    let free_instances = instances
        .into_iter()
        .filter(|inst| !found.iter().any(|i| i.instance_id == inst.id))
        .map(|inst| (inst.id, inst.name))
        .collect();
    Ok(ThreecxData { module_enabled: account.threecx_enabled, free_instances, integrations: views })
}

#[server(prefix = "/_fn", endpoint = "3cx/create")]
pub async fn create_threecx(instance_id: String, business_name: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::threecx::{allowlist::IpAllowlist, integrations};
    let user = require_user()?;
    let state = app_state()?;
    let result = async {
        let account =
            gateway::accounts::find_by_id(&state.db, user.account_id).await?.ok_or(gateway::Error::NotFound)?;
        let new = integrations::NewIntegration {
            instance_id,
            business_name,
            ip_allowlist: IpAllowlist::default(),
            hmac_secret: None,
        };
        integrations::create(&state.db, &state.config.master_key, &account, new).await
    }
    .await;
    match result {
        Ok((_, secrets)) => {
            let mut flash = Flash::success(
                "Integration created. Copy its webhook secret into 3CX now: it is shown only this once.",
            );
            flash = flash.with_secret(crate::context::SecretKind::ThreecxSecret, secrets.webhook_secret);
            finish(flash, HERE).await
        }
        Err(e) => finish(Flash::error(user_message("create 3CX integration", &e)), HERE).await,
    }
}

#[allow(clippy::too_many_arguments)]
#[server(prefix = "/_fn", endpoint = "3cx/settings")]
pub async fn save_threecx_settings(
    id: String,
    enabled: Option<String>,
    outbound_enabled: Option<String>,
    call_event_enabled: Option<String>,
    strict_window: Option<String>,
    window_hours: String,
    ip_allowlist: String,
    hmac_required: Option<String>,
    business_name: String,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::threecx::{allowlist::IpAllowlist, integrations};
    let user = require_user()?;
    let state = app_state()?;
    let result = async {
        let window_hours: i32 = window_hours.trim().parse().map_err(|_| {
            gateway::Error::invalid(format!(
                "The conversation window is a whole number of hours (1 to {}).",
                integrations::MAX_WINDOW_HOURS
            ))
        })?;
        let settings = integrations::Settings {
            enabled: enabled.is_some(),
            outbound_enabled: outbound_enabled.is_some(),
            call_event_enabled: call_event_enabled.is_some(),
            strict_window: strict_window.is_some(),
            window_hours,
            ip_allowlist: IpAllowlist::parse(&ip_allowlist)?,
            hmac_required: hmac_required.is_some(),
            business_name,
        };
        integrations::update_settings(&state.db, &state.config.master_key, user.account_id, &id, settings).await
    }
    .await;
    match result {
        Ok(Some(hmac)) => {
            let mut flash = Flash::success(
                "Settings saved. HMAC signing is now required: copy this HMAC secret into your sender now, it is shown only this once.",
            );
            flash = flash.with_secret(crate::context::SecretKind::ThreecxHmacSecret, hmac);
            finish(flash, HERE).await
        }
        Ok(None) => finish(Flash::success("Settings saved."), HERE).await,
        Err(e) => finish(Flash::error(user_message("save 3CX settings", &e)), HERE).await,
    }
}

/// What an integration's command buttons ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreecxCommand {
    RotateSecret,
    RotateForwardingSecret,
    EnableForwarding,
    RemoveForwarding,
    Delete,
}

#[server(prefix = "/_fn", endpoint = "3cx/action")]
pub async fn threecx_action(id: String, command: ThreecxCommand) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::threecx::{forwarding, integrations};
    let user = require_user()?;
    let state = app_state()?;
    let (db, key, account) = (&state.db, &state.config.master_key, user.account_id);
    let outcome: Result<Flash, gateway::Error> = match command {
        ThreecxCommand::RotateSecret => integrations::rotate_secret(db, account, &id).await.map(|secret| {
            let mut f = Flash::success(
                "New webhook secret: the old one no longer works. Copy this one into 3CX now: it is shown only this once.",
            );
            f = f.with_secret(crate::context::SecretKind::ThreecxSecret, secret);
            f
        }),
        ThreecxCommand::RotateForwardingSecret => forwarding::rotate_secret(db, key, account, &id).await.map(|secret| {
            let mut f = Flash::success("New signing secret for the 3CX destination. The previous one keeps signing for 24 hours. Copy it now: it is shown only this once.");
            f = f.with_secret(crate::context::SecretKind::ThreecxForwardingSecret, secret);
            f
        }),
        ThreecxCommand::EnableForwarding => {
            forwarding::enable(db, account, &id).await.map(|_| Flash::success("Forwarding to 3CX enabled."))
        }
        ThreecxCommand::RemoveForwarding => forwarding::clear(db, account, &id)
            .await
            .map(|_| Flash::success("Forwarding removed: inbound messages are no longer sent to 3CX.")),
        ThreecxCommand::Delete => integrations::delete(db, account, &id)
            .await
            .map(|_| Flash::success("Integration deleted. Its webhook URL no longer accepts requests.")),
    };
    let back = match command {
        ThreecxCommand::RotateSecret => SECURITY,
        ThreecxCommand::RotateForwardingSecret
        | ThreecxCommand::EnableForwarding
        | ThreecxCommand::RemoveForwarding => FORWARDING,
        ThreecxCommand::Delete => HERE,
    };
    match outcome {
        Ok(flash) => finish(flash, back).await,
        Err(e) => finish(Flash::error(user_message("3CX action", &e)), back).await,
    }
}

#[server(prefix = "/_fn", endpoint = "3cx/hmac")]
pub async fn set_threecx_hmac(id: String, hmac_secret: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let generated = hmac_secret.trim().is_empty();
    match gateway::threecx::integrations::set_hmac_secret(
        &state.db,
        &state.config.master_key,
        user.account_id,
        &id,
        &hmac_secret,
    )
    .await
    {
        Ok(secret) if generated => {
            let mut f = Flash::success("New HMAC secret. Copy it into your sender now: it is shown only this once.");
            f = f.with_secret(crate::context::SecretKind::ThreecxHmacSecret, secret);
            finish(f, SECURITY).await
        }
        Ok(_) => finish(Flash::success("HMAC secret saved."), SECURITY).await,
        Err(e) => finish(Flash::error(user_message("set 3CX HMAC secret", &e)), SECURITY).await,
    }
}

#[server(prefix = "/_fn", endpoint = "3cx/forwarding")]
pub async fn set_threecx_forwarding(id: String, url: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::{threecx::forwarding, webhooks::destinations};
    let user = require_user()?;
    let state = app_state()?;
    let result = async {
        // Whose integration it is, before anything is looked up on the network.
        gateway::threecx::integrations::find(&state.db, user.account_id, &id).await?;
        let url = destinations::check_url(&url, state.config.webhooks.allow_private).await?;
        forwarding::set_url(&state.db, &state.config.master_key, user.account_id, &id, &url).await
    }
    .await;
    match result {
        Ok(Some(secret)) => {
            let mut f = Flash::success("Inbound messages are now forwarded to 3CX, signed with this secret. Copy it now: it is shown only this once.");
            f = f.with_secret(crate::context::SecretKind::ThreecxForwardingSecret, secret);
            finish(f, FORWARDING).await
        }
        Ok(None) => finish(Flash::success("3CX destination URL saved."), FORWARDING).await,
        Err(e) => finish(Flash::error(user_message("set 3CX destination", &e)), FORWARDING).await,
    }
}

#[server(prefix = "/_fn", endpoint = "3cx/template")]
pub async fn save_threecx_template(
    id: String,
    event: String,
    enabled: Option<String>,
    text: String,
    preview: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::threecx::{integrations, templates};
    let user = require_user()?;
    let state = app_state()?;
    let Some(call) = templates::CallEvent::parse(&event) else {
        return finish(Flash::error("Unknown call event."), TEMPLATES).await;
    };
    if preview.is_some() {
        let outcome = async {
            let integration = integrations::find(&state.db, user.account_id, &id).await?;
            let text = templates::validate(&text)?;
            Ok::<_, gateway::Error>(templates::render(&text, &templates::Values::sample(&integration.business_name)))
        }
        .await;
        return match outcome {
            Ok(rendered) => {
                finish(Flash::success(format!("Preview ({}, not saved): {rendered}", call.label())), TEMPLATES).await
            }
            Err(e) => finish(Flash::error(user_message("preview 3CX template", &e)), TEMPLATES).await,
        };
    }
    match integrations::update_template(&state.db, user.account_id, &id, call, enabled.is_some(), &text).await {
        Ok(_) => finish(Flash::success(format!("{} template saved.", call.label())), TEMPLATES).await,
        Err(e) => finish(Flash::error(user_message("save 3CX template", &e)), TEMPLATES).await,
    }
}

#[component]
pub fn ThreecxPage() -> impl IntoView {
    let (log, before, tab) = leptos_router::hooks::use_query_map().with_untracked(|q| {
        (q.get("log"), q.get("before").and_then(|b| b.parse::<i64>().ok()), Tab::parse(q.get("tab").as_deref()))
    });
    let data = Resource::new(|| (), move |_| get_threecx(log.clone(), before));
    view! {
        <PortalLayout title="3CX Integration" current=HERE
            lead="Connect your 3CX phone system to one WhatsApp instance: inbound messages reach your agents, agents reply inside the conversation window, and missed or after-hours calls get a controlled follow-up.">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! { <ThreecxView data=d tab/> }.into_any(),
                        Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                    }
                })}
            </Suspense>
        </PortalLayout>
    }
}

#[component]
fn ThreecxView(data: ThreecxData, tab: Tab) -> impl IntoView {
    if !data.module_enabled {
        return view! {
            <section class="card">
                <div class="empty-state">
                    <p><strong>"3CX Middleware is not enabled for this account."</strong></p>
                    <p>"Ask your operator to enable the 3CX module. "<a href="/docs/3cx">"What the 3CX middleware does"</a></p>
                </div>
            </section>
        }
        .into_any();
    }
    let create = if data.free_instances.is_empty() {
        view! {
            <p class="hint">{if data.integrations.is_empty() { "Create an instance first: an integration is bound to one instance." } else { "Every instance has an integration." }}</p>
        }
        .into_any()
    } else {
        view! {
            <form class="form form-inline" method="post" action={fn_path::<CreateThreecx>()}>
                <CsrfField/>
                <div class="field">
                    <label for="tcx-instance">"Instance"</label>
                    <select id="tcx-instance" name="instance_id">
                        {data.free_instances.into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="tcx-business">"Business name"</label>
                    <input id="tcx-business" name="business_name" required maxlength="120" placeholder="Acme Support"/>
                </div>
                <button type="submit" class="btn btn-primary">"Create integration"</button>
            </form>
        }
        .into_any()
    };
    let has_integrations = !data.integrations.is_empty();
    view! {
        {has_integrations.then(|| view! {
            <nav class="tabs" aria-label="3CX integration">
                {Tab::ALL.into_iter().map(|t| view! {
                    <a class="tab" href=t.href() aria-current=(t == tab).then_some("page")>{t.label()}</a>
                }).collect_view()}
            </nav>
        })}
        {data.integrations.into_iter().map(|i| view! { <IntegrationCard i tab/> }).collect_view()}
        <section class="card">
            <h2>"New integration"</h2>
            <p class="hint">"Replies and follow-ups go only to people who wrote to the instance first, inside the conversation window, and pass every responsible-messaging check. See "<a href="/docs/3cx">"3CX middleware"</a>"."</p>
            {create}
        </section>
    }
    .into_any()
}

#[component]
fn CommandButton(id: String, command: &'static str, label: &'static str, class: &'static str) -> impl IntoView {
    view! {
        <form class="inline" method="post" action={fn_path::<ThreecxAction>()}>
            <CsrfField/>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="command" value=command/>
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

#[component]
fn Switch(name: &'static str, id: String, checked: bool, label: &'static str) -> impl IntoView {
    let field_id = format!("{name}-{id}");
    view! {
        <label for=field_id.clone() class="checkbox">
            <input id=field_id.clone() type="checkbox" name=name value="on" checked=checked/>" "{label}
        </label>
    }
}

#[component]
fn IntegrationCard(i: IntegrationView, tab: Tab) -> impl IntoView {
    let id = i.id.clone();
    let button = {
        let id = id.clone();
        move |command: &'static str, label: &'static str, class: &'static str| {
            view! { <CommandButton id=id.clone() command label class/> }
        }
    };
    let url_id = format!("tcx-url-{}", i.id);
    let body = match tab {
        Tab::Settings => view! {
            <dl class="details">
                <dt>"Webhook URL"</dt>
                <dd>
                    <input class="secret-value mono" id=url_id.clone() readonly value=i.webhook_url.clone() aria-label="Webhook URL"/>
                    <button type="button" class="btn btn-secondary copy-button" data-copy-target=format!("#{url_id}") hidden>"Copy"</button>
                </dd>
                <dt>"Webhook secret"</dt>
                <dd><span class="mono">{i.secret_hint.clone()}</span>" (on the "<a href=SECURITY>"Security"</a>" tab)"</dd>
            </dl>
            <h3>"Settings"</h3>
            <form class="form" method="post" action={fn_path::<SaveThreecxSettings>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id.clone()/>
                <fieldset class="field">
                    <legend>"Switches"</legend>
                    <Switch name="enabled" id=id.clone() checked=i.enabled label="Enabled"/>
                    <Switch name="outbound_enabled" id=id.clone() checked=i.outbound_enabled label="Outbound replies from agents"/>
                    <Switch name="call_event_enabled" id=id.clone() checked=i.call_event_enabled label="Call events (see the Templates tab)"/>
                    <Switch name="strict_window" id=id.clone() checked=i.strict_window label="Strict conversation-window mode (recommended)"/>
                    <Switch name="hmac_required" id=id.clone() checked=i.hmac_required label="Require HMAC signatures"/>
                </fieldset>
                <div class="field">
                    <label for=format!("window-{id}")>"Conversation window (hours)"</label>
                    <input id=format!("window-{id}") name="window_hours" type="number" min="1" max="168" required value=i.window_hours.to_string()/>
                </div>
                <div class="field">
                    <label for=format!("allow-{id}")>"IP allowlist (one address or CIDR range per line; empty: any address)"</label>
                    <textarea id=format!("allow-{id}") name="ip_allowlist" placeholder="203.0.113.7\n2001:db8::/32">{i.ip_allowlist.clone()}</textarea>
                </div>
                <div class="field">
                    <label for=format!("business-{id}")>"Business name"</label>
                    <input id=format!("business-{id}") name="business_name" required maxlength="120" value=i.business_name.clone()/>
                </div>
                <button type="submit" class="btn btn-primary">"Save settings"</button>
            </form>
            <h3>"Delete"</h3>
            <div class="page-actions">
                <details class="confirm">
                    <summary class="btn btn-danger">"Delete integration"</summary>
                    <p>"Delete this integration? Its webhook URL stops working and forwarding to 3CX ends."</p>
                    {button("delete", "Yes, delete it", "btn btn-danger")}
                </details>
            </div>
        }.into_any(),
        Tab::Security => view! {
            <dl class="details">
                <dt>"Webhook secret"</dt>
                <dd><span class="mono">{i.secret_hint.clone()}</span>" (sent as X-WhatsApp-Gateway-3CX-Secret; shown in full only when created or rotated)"</dd>
                <dt>"HMAC signatures"</dt>
                <dd>{if i.hmac_required { "Required" } else { "Optional (checked when sent)" }}" · secret "{if i.has_hmac_secret { "set (shown only when created)" } else { "not set" }}</dd>
            </dl>
            <div class="page-actions">
                {button("rotate_secret", "Rotate webhook secret", "btn btn-secondary")}
            </div>
            <h3>"HMAC secret"</h3>
            <form class="form form-inline" method="post" action={fn_path::<SetThreecxHmac>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id.clone()/>
                <div class="field">
                    <label for=format!("hmac-{id}")>"Your own secret (16+ characters), or leave empty to generate one"</label>
                    <input id=format!("hmac-{id}") name="hmac_secret" type="password" autocomplete="off"/>
                </div>
                <button type="submit" class="btn btn-secondary">"Set HMAC secret"</button>
            </form>
            <p class="hint">"Whether signatures are required, and the IP allowlist, are on the "<a href=HERE>"Settings"</a>" tab."</p>
        }.into_any(),
        Tab::Templates => view! {
            <p class="hint">"Variables: {{customer_phone}}, {{agent_extension}}, {{queue}}, {{call_time}}, {{business_name}}. At most one follow-up per event type and number every 15 minutes. Call events are sent only while they are switched on in Settings."</p>
            {i.templates.into_iter().map(|t| view! { <TemplateForm id=id.clone() t/> }).collect_view()}
        }.into_any(),
        Tab::Forwarding => view! {
            <h3>"Forward inbound messages to 3CX"</h3>
            <ForwardingSection id=id.clone() forwarding=i.forwarding.clone()/>
        }.into_any(),
        Tab::Log => view! {
            <RequestLog requests=i.requests paged=i.newest_requests.is_some()/>
            <super::log_links::LogPager older=i.older_requests newest=i.newest_requests what="requests"/>
        }.into_any(),
    };
    view! {
        <section class="card">
            <h2>{format!("{} — 3CX", i.instance_name)}</h2>
            {(!i.enabled).then(|| view! { <div class="banner banner-error" role="alert"><p>"This integration is disabled: every request gets invalid_3cx_webhook."</p></div> })}
            {body}
        </section>
    }
}

#[component]
fn ForwardingSection(id: String, forwarding: Option<ForwardingView>) -> impl IntoView {
    let current = forwarding.as_ref().map(|f| f.url.clone()).unwrap_or_default();
    let form = view! {
        <form class="form form-inline" method="post" action={fn_path::<SetThreecxForwarding>()}>
            <CsrfField/>
            <input type="hidden" name="id" value=id.clone()/>
            <div class="field">
                <label for=format!("fwd-{id}")>"3CX destination webhook URL"</label>
                <input id=format!("fwd-{id}") name="url" type="url" required value=current placeholder="https://your-3cx.example.com/webhooks/whatsapp"/>
            </div>
            <button type="submit" class="btn btn-secondary">"Save URL"</button>
        </form>
    };
    let Some(f) = forwarding else {
        return view! {
            <p class="hint">"Each message.received event of this instance is POSTed to this URL, signed with Standard Webhooks headers."</p>
            {form}
        }
        .into_any();
    };
    let command = |command: &'static str, label: &'static str, class: &'static str| {
        view! { <CommandButton id=id.clone() command label class/> }
    };
    view! {
        {f.disabled_reason.clone().map(|r| view! { <div class="banner banner-error" role="alert"><p>{format!("Forwarding is disabled: {r} Fix the receiver, then enable it again.")}</p></div> })}
        {f.failing_since.clone().filter(|_| f.enabled).map(|since| view! { <div class="banner banner-error" role="alert"><p>{format!("Deliveries to 3CX have been failing since {since}.")}</p></div> })}
        {form}
        <p class="hint">"Signing secret: whsec_… (shown once when created or rotated)"{f.previous_secret_valid_until.clone().map(|t| format!("; the previous secret also signs until {t}"))}</p>
        <div class="page-actions">
            {(!f.enabled).then(|| command("enable_forwarding", "Enable forwarding", "btn btn-primary"))}
            {command("rotate_forwarding_secret", "Rotate signing secret", "btn btn-secondary")}
            {command("remove_forwarding", "Stop forwarding", "btn btn-secondary")}
        </div>
        {if f.deliveries.is_empty() {
            view! { <p class="muted">"No deliveries yet."</p> }.into_any()
        } else {
            view! {
                <div class="table-wrap">
                    <table class="table">
                        <thead><tr><th>"Queued"</th><th>"Event"</th><th>"Status"</th><th>"Attempts"</th><th>"Last answer"</th></tr></thead>
                        <tbody>
                            {f.deliveries.into_iter().map(|(at, event, status, attempts, answer)| view! {
                                <tr><td data-label="Queued">{at}</td><td class="mono" data-label="Event">{event}</td><td class="cell-status" data-label="Status">{status}</td><td data-label="Attempts">{attempts}</td><td data-label="Last answer">{answer}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
            }.into_any()
        }}
    }
    .into_any()
}

#[component]
fn TemplateForm(id: String, t: TemplateView) -> impl IntoView {
    let field = format!("tpl-{}-{id}", t.event);
    view! {
        <form class="form template-form" method="post" action={fn_path::<SaveThreecxTemplate>()}>
            <CsrfField/>
            <input type="hidden" name="id" value=id.clone()/>
            <input type="hidden" name="event" value=t.event.clone()/>
            <div class="field">
                <label for=field.clone()>{format!("{} ({})", t.label, t.event)}</label>
                <textarea id=field.clone() name="text" required maxlength="1000">{t.text.clone()}</textarea>
            </div>
            <label for=format!("{field}-on") class="checkbox">
                <input id=format!("{field}-on") type="checkbox" name="enabled" value="on" checked=t.enabled/>" Enabled"
            </label>
            <p class="hint">"Sample: "{t.preview}</p>
            <div class="page-actions">
                <button type="submit" class="btn btn-primary">"Save template"</button>
                <button type="submit" class="btn btn-secondary" name="preview" value="1">"Preview"</button>
            </div>
        </form>
    }
}

#[component]
fn RequestLog(requests: Vec<RequestView>, paged: bool) -> impl IntoView {
    if requests.is_empty() && paged {
        return view! { <p class="muted">"No older requests."</p> }.into_any();
    }
    if requests.is_empty() {
        return view! { <p class="muted">"No requests yet. Send a test event: {\"event_type\": \"test\"}."</p> }
            .into_any();
    }
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"Time"</th><th>"Event"</th><th>"Outcome"</th><th>"Status"</th><th>"Phone"</th><th>"Latency"</th><th>"Why"</th></tr></thead>
                <tbody>
                    {requests.into_iter().map(|r| view! {
                        <tr>
                            <td data-label="Time">{r.at}</td>
                            <td class="mono" data-label="Event">{r.event_type}</td>
                            <td class="cell-status mono" data-label="Outcome">{r.outcome}</td>
                            <td class="cell-status" data-label="Status">{r.status_code}</td>
                            <td class="mono" data-label="Phone">{r.phone}</td>
                            <td data-label="Latency">{format!("{} ms", r.latency_ms)}</td>
                            <td data-label="Why">{r.detail}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
