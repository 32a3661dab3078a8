//! The instance's webhook tab: destinations (URL, chosen events, enabled), the signing secret
//! (shown once, rotatable with the old one valid 24 h more), a test event, and the delivery log
//! with replay.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layout::{fn_path, CsrfField};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryView {
    pub event_id: String,
    pub event_kind: String,
    pub status: String,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub created: String,
    /// When it goes again, for a delivery that failed and waits for a retry.
    pub next_retry: Option<String>,
    pub payload: String,
    pub last_response: Option<String>,
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub previous_secret_valid_until: Option<String>,
    pub deliveries: Vec<DeliveryView>,
    /// The link to the next older page of deliveries, when there is one.
    pub older: Option<String>,
    /// The link back to the newest deliveries, when this is an older page.
    pub newest: Option<String>,
}

/// Deliveries shown per page of a destination's log.
#[cfg(feature = "ssr")]
const DELIVERIES_PER_PAGE: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookTabData {
    pub destinations: Vec<DestinationView>,
    /// Every event name with whether the spec recommends it.
    pub all_events: Vec<(String, bool)>,
}

/// `log` names the destination whose deliveries are paged back to `before` (a delivery id);
/// the others show their newest.
#[server(prefix = "/_fn", endpoint = "webhooks/list")]
pub async fn get_webhooks(
    instance_id: String,
    log: Option<String>,
    before: Option<i64>,
) -> Result<WebhookTabData, ServerFnError> {
    use crate::server_util::*;
    use gateway::{events::EventKind, time::display, webhooks::destinations};
    let user = require_user()?;
    let state = app_state()?;
    let instance = gateway::instances::find(&state.db, user.account_id, &instance_id)
        .await
        .map_err(|e| read_error("find instance", e))?;
    let mut views = Vec::new();
    for d in destinations::list(&state.db, user.account_id, &instance.id)
        .await
        .map_err(|e| read_error("list webhooks", e))?
    {
        let before = before.filter(|_| log.as_deref() == Some(d.id.as_str()));
        let mut rows =
            destinations::recent_deliveries(&state.db, user.account_id, &d.id, DELIVERIES_PER_PAGE as u64 + 1, before)
                .await
                .map_err(|e| read_error("list deliveries", e))?;
        let tab = format!("/instances/{}/manage?tab=webhook", super::log_links::encode(&instance.id));
        let older = super::log_links::cut_page(
            &mut rows,
            DELIVERIES_PER_PAGE,
            |r| r.id,
            |last| format!("{tab}&log={}&before={last}", super::log_links::encode(&d.id)),
        );
        let newest = before.map(|_| tab.clone());
        let deliveries = rows
            .into_iter()
            .map(|r| DeliveryView {
                next_retry: (r.status == "pending" && r.attempts > 0).then(|| display(r.next_attempt_at)),
                event_id: r.event_id,
                event_kind: r.event_kind,
                status: r.status,
                attempts: r.attempts,
                last_status_code: r.last_status_code,
                created: display(r.created_at),
                payload: pretty_json(&r.payload),
                last_response: r.last_response,
                last_error: r.last_error,
            })
            .collect();
        views.push(DestinationView {
            events: d.events.iter().map(|k| k.as_str().to_string()).collect(),
            failing_since: d.failing_since.map(display),
            previous_secret_valid_until: d.previous_secret_valid_until.map(display),
            id: d.id,
            url: d.url,
            enabled: d.enabled,
            disabled_reason: d.disabled_reason,
            deliveries,
            older,
            newest,
        });
    }
    Ok(WebhookTabData {
        destinations: views,
        all_events: EventKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), EventKind::RECOMMENDED.contains(k)))
            .collect(),
    })
}

/// The payload as a person reads it: indented, or as stored if it is not JSON.
#[cfg(feature = "ssr")]
fn pretty_json(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| text.to_string())
}

/// Where the tab's forms return: only a well-formed id goes into the redirect.
#[cfg(feature = "ssr")]
fn back(instance_id: &str) -> String {
    if gateway::ids::is_id("inst", instance_id) {
        format!("/instances/{instance_id}/manage?tab=webhook")
    } else {
        "/instances".to_string()
    }
}

#[server(prefix = "/_fn", endpoint = "webhooks/add")]
pub async fn add_webhook(instance_id: String, url: String, events: Option<Vec<String>>) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::webhooks::destinations;
    let user = require_user()?;
    let state = app_state()?;
    let here = back(&instance_id);
    let events = events.unwrap_or_default();
    // A refused form comes back as it was sent: the URL and the chosen events.
    let kept: Vec<(String, String)> = std::iter::once(("url".to_string(), url.clone()))
        .chain(events.iter().map(|e| ("events".to_string(), e.clone())))
        .chain(std::iter::once(("form".to_string(), "add-webhook".to_string())))
        .collect();
    let result = async {
        let instance = gateway::instances::find(&state.db, user.account_id, &instance_id).await?;
        let url = destinations::check_url(&url, state.config.webhooks.allow_private).await?;
        let kinds = destinations::parse_event_list(&events)?;
        destinations::create_or_replace(
            &state.db,
            &state.config.master_key,
            user.account_id,
            &instance.id,
            &url,
            &kinds,
            Some(state.config.caps.webhook_destinations),
        )
        .await
    }
    .await;
    match result {
        Ok((d, Some(secret))) => {
            tracing::info!(account_id = user.account_id, destination_id = %d.id, "webhook destination created");
            let mut flash =
                Flash::success("Destination added. Copy its signing secret now: it is shown only this once.");
            flash = flash.with_secret(crate::context::SecretKind::WebhookSecret, secret);
            finish(flash, &here).await
        }
        Ok((_, None)) => {
            finish(
                Flash::success("This URL was already a destination: its events were replaced and it is enabled."),
                &here,
            )
            .await
        }
        Err(e) => finish(Flash::error(user_message("add webhook", &e)).with_fields(kept), &here).await,
    }
}

#[server(prefix = "/_fn", endpoint = "webhooks/events")]
pub async fn set_webhook_events(
    instance_id: String,
    id: String,
    events: Option<Vec<String>>,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::webhooks::destinations;
    let user = require_user()?;
    let state = app_state()?;
    let here = back(&instance_id);
    let result = async {
        match destinations::find(&state.db, user.account_id, &id).await? {
            d if d.instance_id == instance_id => {}
            _ => return Err(gateway::Error::NotFound),
        }
        let kinds = destinations::parse_event_list(&events.unwrap_or_default())?;
        destinations::set_events(&state.db, user.account_id, &id, &kinds).await
    }
    .await;
    match result {
        Ok(d) => {
            let names: Vec<&str> = d.events.iter().map(|k| k.as_str()).collect();
            finish(Flash::success(format!("Events saved: {}.", names.join(", "))), &here).await
        }
        Err(gateway::Error::NotFound) => finish(Flash::error("Not found."), &here).await,
        Err(e) => finish(Flash::error(user_message("set webhook events", &e)), &here).await,
    }
}

/// What a destination form button asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationCommand {
    Enable,
    Disable,
    Rotate,
    Test,
    Delete,
}

#[server(prefix = "/_fn", endpoint = "webhooks/destination")]
pub async fn webhook_action(instance_id: String, id: String, command: DestinationCommand) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::webhooks::destinations;
    let user = require_user()?;
    let state = app_state()?;
    let here = back(&instance_id);
    let destination = match destinations::find(&state.db, user.account_id, &id).await {
        Ok(d) if d.instance_id == instance_id => d,
        Ok(_) => return finish(Flash::error("Not found."), &here).await,
        Err(e) => return finish(Flash::error(user_message("webhook action", &e)), &here).await,
    };
    let db = &state.db;
    let outcome: Result<Flash, gateway::Error> = match command {
        DestinationCommand::Enable => destinations::set_enabled(db, user.account_id, &id, true).await.map(|_| Flash::success("Destination enabled.")),
        DestinationCommand::Disable => {
            destinations::set_enabled(db, user.account_id, &id, false).await.map(|_| Flash::success("Destination disabled: it receives nothing until enabled."))
        }
        DestinationCommand::Rotate => destinations::rotate(db, &state.config.master_key, user.account_id, &id).await.map(|secret| {
            let mut f = Flash::success("New signing secret. The previous one keeps signing for 24 hours. Copy the new one now: it is shown only this once.");
            f = f.with_secret(crate::context::SecretKind::WebhookSecret, secret);
            f
        }),
        DestinationCommand::Test => {
            let payload = serde_json::json!({
                "event": "webhook.test",
                "event_id": gateway::ids::new_id("evt"),
                "instance_id": destination.instance_id,
                "message": "A test event from WA Gateway.",
                "timestamp": gateway::time::rfc3339(gateway::time::now()),
            });
            let event_id = payload["event_id"].as_str().unwrap_or_default().to_string();
            destinations::queue(db, &id, user.account_id, &event_id, "webhook.test", &payload.to_string())
                .await
                .map(|_| Flash::success("Test event queued; its delivery appears in the log below."))
        }
        DestinationCommand::Delete => destinations::delete(db, user.account_id, &id).await.map(|_| Flash::success("Destination deleted.")),
    };
    match outcome {
        Ok(flash) => finish(flash, &here).await,
        Err(e) => finish(Flash::error(user_message("webhook action", &e)), &here).await,
    }
}

#[server(prefix = "/_fn", endpoint = "webhooks/replay")]
pub async fn replay_event(instance_id: String, id: String, event_id: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let here = back(&instance_id);
    match gateway::webhooks::destinations::find(&state.db, user.account_id, &id).await {
        Ok(d) if d.instance_id == instance_id => {}
        _ => return finish(Flash::error("Not found."), &here).await,
    }
    match gateway::webhooks::destinations::replay(&state.db, user.account_id, &id, &event_id).await {
        Ok(_) => finish(Flash::success(format!("Event {event_id} queued again for this destination.")), &here).await,
        Err(e) => finish(Flash::error(user_message("replay event", &e)), &here).await,
    }
}

#[component]
pub fn WebhookTab(instance_id: String) -> impl IntoView {
    let (log, before) = leptos_router::hooks::use_query_map()
        .with_untracked(|q| (q.get("log"), q.get("before").and_then(|b| b.parse::<i64>().ok())));
    let data = Resource::new(|| (), {
        let id = instance_id.clone();
        move |_| get_webhooks(id.clone(), log.clone(), before)
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let instance_id = instance_id.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(d) => view! { <WebhookView data=d instance_id/> }.into_any(),
                        Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn WebhookView(data: WebhookTabData, instance_id: String) -> impl IntoView {
    let id_for_form = instance_id.clone();
    let all_events = data.all_events.clone();
    let kept_url = crate::context::kept_field("url").unwrap_or_default();
    // Existing destinations and their deliveries come first: they are what a returning customer
    // looks for. The form to add one follows.
    view! {
        {if data.destinations.is_empty() {
            view! { <section class="card"><div class="empty-state"><p><strong>"No destinations yet."</strong></p><p>"Events are still kept: read them in order with GET /api/events."</p></div></section> }.into_any()
        } else {
            data.destinations.into_iter().map(|d| view! { <DestinationCard d instance_id=instance_id.clone() all_events=all_events.clone()/> }).collect_view().into_any()
        }}
        <section class="card">
            <h2>"Add a destination"</h2>
            <p class="hint">"WA Gateway POSTs each chosen event as JSON, signed with Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature). See "<a href="/docs/receive">"Receive"</a>" for the events and how to verify them."</p>
            <form class="form" method="post" action={fn_path::<AddWebhook>()}>
                <CsrfField/>
                <input type="hidden" name="instance_id" value=id_for_form/>
                <div class="field">
                    <label for="webhook-url">"Destination URL"</label>
                    <input id="webhook-url" name="url" type="url" required placeholder="https://crm.example.com/hooks/whatsapp" value=kept_url/>
                </div>
                <fieldset class="field">
                    <legend>"Events"</legend>
                    {data.all_events.into_iter().enumerate().map(|(i, (name, recommended))| {
                        let field = format!("events[{i}]");
                        let id = format!("event-{i}");
                        let checked = crate::context::kept_choice("events", &name).unwrap_or(recommended);
                        view! {
                            <label for=id.clone() class="checkbox">
                                <input id=id.clone() type="checkbox" name=field value=name.clone() checked=checked/>
                                " "<span class="mono">{name}</span>{recommended.then_some(" (recommended)")}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <button type="submit" class="btn btn-primary">"Add destination"</button>
            </form>
        </section>
    }
}

#[component]
fn CommandButton(
    instance_id: String,
    id: String,
    command: &'static str,
    label: &'static str,
    class: &'static str,
) -> impl IntoView {
    view! {
        <form class="inline" method="post" action={fn_path::<WebhookAction>()}>
            <CsrfField/>
            <input type="hidden" name="instance_id" value=instance_id/>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="command" value=command/>
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

/// The destination's events, changed in place.
#[component]
fn EventsEditor(
    instance_id: String,
    id: String,
    chosen: Vec<String>,
    all_events: Vec<(String, bool)>,
) -> impl IntoView {
    view! {
        <details class="events-editor">
            <summary>"Change events"</summary>
            <form class="form" method="post" action={fn_path::<SetWebhookEvents>()}>
                <CsrfField/>
                <input type="hidden" name="instance_id" value=instance_id/>
                <input type="hidden" name="id" value=id.clone()/>
                <fieldset class="field">
                    <legend>"Events sent to this destination"</legend>
                    {all_events.into_iter().enumerate().map(|(i, (name, recommended))| {
                        let field_id = format!("events-{id}-{i}");
                        let checked = chosen.contains(&name);
                        view! {
                            <label for=field_id.clone() class="checkbox">
                                <input id=field_id.clone() type="checkbox" name=format!("events[{i}]") value=name.clone() checked=checked/>
                                " "<span class="mono">{name}</span>{recommended.then_some(" (recommended)")}
                            </label>
                        }
                    }).collect_view()}
                </fieldset>
                <button type="submit" class="btn btn-primary">"Save events"</button>
            </form>
        </details>
    }
}

#[component]
fn DestinationCard(d: DestinationView, instance_id: String, all_events: Vec<(String, bool)>) -> impl IntoView {
    let (iid, id) = (instance_id.clone(), d.id.clone());
    let button = move |command: &'static str, label: &'static str, class: &'static str| {
        view! { <CommandButton instance_id=iid.clone() id=id.clone() command label class/> }
    };
    view! {
        <section class="card">
            <h2 class="mono">{d.url.clone()}</h2>
            {d.disabled_reason.clone().map(|r| view! { <div class="banner banner-error" role="alert"><p>{format!("Disabled: {r} Fix the receiver, then enable it again.")}</p></div> })}
            {d.failing_since.clone().filter(|_| d.enabled).map(|since| view! { <div class="banner banner-error" role="alert"><p>{format!("Deliveries have been failing since {since}. After 5 days of failures the destination is disabled.")}</p></div> })}
            <dl class="details">
                <dt>"Status"</dt><dd>{if d.enabled { view! { <span class="badge badge-active">"Enabled"</span> }.into_any() } else { view! { <span class="badge badge-revoked">"Disabled"</span> }.into_any() }}</dd>
                <dt>"Events"</dt>
                <dd>
                    <span class="mono">{d.events.join(", ")}</span>
                    <EventsEditor instance_id=instance_id.clone() id=d.id.clone() chosen=d.events.clone() all_events/>
                </dd>
                <dt>"Signing secret"</dt><dd>"whsec_… (shown once when created or rotated)"{d.previous_secret_valid_until.clone().map(|t| format!("; the previous secret also signs until {t}"))}</dd>
            </dl>
            <div class="page-actions">
                {if d.enabled { button("disable", "Disable", "btn btn-secondary") } else { button("enable", "Enable", "btn btn-primary") }}
                {button("test", "Send test event", "btn btn-secondary")}
                {button("rotate", "Rotate secret", "btn btn-secondary")}
                <details class="confirm">
                    <summary class="btn btn-danger">"Delete"</summary>
                    <p>"Delete this destination? Its queued deliveries are dropped."</p>
                    {button("delete", "Yes, delete it", "btn btn-danger")}
                </details>
            </div>
            <h3>"Recent deliveries"</h3>
            {if d.deliveries.is_empty() {
                let none = if d.newest.is_some() { "No older deliveries." } else { "No deliveries yet." };
                view! { <p class="muted">{none}</p> }.into_any()
            } else {
                view! {
                    <div class="table-wrap">
                        <table class="table">
                            <thead><tr><th>"Queued"</th><th>"Event"</th><th>"Status"</th><th>"Attempts"</th><th>"Last answer"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {d.deliveries.into_iter().map(|r| view! {
                                    <tr>
                                        <td data-label="Queued">{r.created}</td>
                                        <td class="mono" data-label="Event">{r.event_kind}<br/><span class="muted">{r.event_id.clone()}</span></td>
                                        <td class="cell-status" data-label="Status">
                                            {r.status}
                                            {r.next_retry.map(|at| view! { <br/><span class="muted">{format!("next try {at}")}</span> })}
                                        </td>
                                        <td data-label="Attempts">{r.attempts}</td>
                                        <td data-label="Last answer">
                                            {r.last_status_code.map(|c| c.to_string()).unwrap_or_else(|| "—".into())}
                                            <details class="delivery-detail">
                                                <summary>"Payload and answer"</summary>
                                                <p class="hint">"Sent:"</p>
                                                <pre class="payload">{r.payload}</pre>
                                                {match (r.last_response, r.last_error) {
                                                    (_, Some(error)) => view! { <p class="hint">{format!("No answer: {error}")}</p> }.into_any(),
                                                    (Some(body), None) => view! { <p class="hint">"The receiver answered:"</p><pre class="payload">{body}</pre> }.into_any(),
                                                    (None, None) if r.attempts > 0 => view! { <p class="hint">"The receiver answered with an empty body."</p> }.into_any(),
                                                    (None, None) => view! { <p class="hint">"Not sent yet."</p> }.into_any(),
                                                }}
                                            </details>
                                        </td>
                                        <td class="actions">
                                            <form class="inline" method="post" action={fn_path::<ReplayEvent>()}>
                                                <CsrfField/>
                                                <input type="hidden" name="instance_id" value=instance_id.clone()/>
                                                <input type="hidden" name="id" value=d.id.clone()/>
                                                <input type="hidden" name="event_id" value=r.event_id/>
                                                <button type="submit" class="btn btn-secondary">"Replay"</button>
                                            </form>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any()
            }}
            <super::log_links::LogPager older=d.older newest=d.newest what="deliveries"/>
        </section>
    }
}
