//! One instance: overview, connect (QR code and link controls) and settings tabs.
use leptos::prelude::*;
use leptos_meta::Meta;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use crate::{
    layout::{fn_path, CsrfField, PortalLayout},
    pages::{
        instances::{InstanceRow, StatusBadge},
        not_found::NotFoundBody,
    },
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub status_label: String,
    pub detail: Option<String>,
    pub at: String,
}

/// The link state as the connect tab shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkView {
    AwaitingScan { qr_svg: String, expires_in_secs: i64 },
    AwaitingPairCode { code: String, expires_in_secs: i64 },
    Starting,
    Idle { reason: String },
    Connected { phone: Option<String>, name: Option<String> },
    Disconnected { reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManageData {
    pub instance: InstanceRow,
    pub history: Vec<HistoryRow>,
    pub link: Option<LinkView>,
    pub is_sandbox: bool,
    /// Whether the connector links by phone number too (a code typed into the phone).
    pub pair_code_linking: bool,
    /// The server's clock when the page was read (unix seconds), for waits the page shows.
    pub now: i64,
}

#[cfg(feature = "ssr")]
fn qr_svg(code: &str) -> Result<String, gateway::Error> {
    let qr = qrcode::QrCode::new(code.as_bytes()).map_err(|e| gateway::Error::Internal(format!("QR code: {e}")))?;
    Ok(qr.render::<qrcode::render::svg::Color>().min_dimensions(240, 240).quiet_zone(true).build())
}

/// `None` when the instance does not exist for this account.
#[server(prefix = "/_fn", endpoint = "instances/manage")]
pub async fn get_manage_data(id: String, with_link: bool) -> Result<Option<ManageData>, ServerFnError> {
    use crate::server_util::*;
    use gateway::{connectors::LinkState, instances, Error};
    let user = require_user()?;
    let state = app_state()?;
    let instance = match instances::find(&state.db, user.account_id, &id).await {
        Ok(i) => i,
        Err(Error::NotFound) => return Ok(None),
        Err(e) => return Err(read_error("load instance", e)),
    };
    let history = instances::status_history(&state.db, user.account_id, &id, 10)
        .await
        .map_err(|e| read_error("load instance history", e))?
        .into_iter()
        .map(|c| HistoryRow {
            status_label: c.status.label().into(),
            detail: c.detail,
            at: gateway::time::display(c.changed_at),
        })
        .collect();
    let link = if with_link {
        let link_state = state.registry.link_state(&instance).await.map_err(|e| read_error("read link state", e))?;
        Some(match link_state {
            LinkState::AwaitingScan { code, expires_at } => LinkView::AwaitingScan {
                qr_svg: qr_svg(&code).map_err(|e| read_error("render QR code", e))?,
                expires_in_secs: (expires_at - gateway::time::now()).max(0),
            },
            LinkState::AwaitingPairCode { code, expires_at } => {
                LinkView::AwaitingPairCode { code, expires_in_secs: (expires_at - gateway::time::now()).max(0) }
            }
            LinkState::Starting => LinkView::Starting,
            LinkState::Idle { reason } => LinkView::Idle { reason },
            LinkState::Connected { phone, name } => LinkView::Connected { phone, name },
            LinkState::Disconnected { reason } => LinkView::Disconnected { reason },
        })
    } else {
        None
    };
    Ok(Some(ManageData {
        is_sandbox: instance.connector == gateway::connectors::sandbox::NAME,
        pair_code_linking: instance.connector == "whatsapp-web",
        now: gateway::time::now(),
        instance: instance.into(),
        history,
        link,
    }))
}

/// The link-control actions of the connect tab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkCommand {
    SimulateScan,
    Disconnect,
    Reconnect,
    Logout,
}

#[server(prefix = "/_fn", endpoint = "instances/link")]
pub async fn link_action(id: String, action: LinkCommand) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let back = format!("/instances/{id}/manage?tab=connect");
    let instance = match gateway::instances::find(&state.db, user.account_id, &id).await {
        Ok(i) => i,
        Err(e) => return finish(Flash::error(user_message("link action", &e)), "/instances").await,
    };
    let registry = &state.registry;
    let sandbox = instance.connector == gateway::connectors::sandbox::NAME;
    let (result, done) = match action {
        LinkCommand::SimulateScan => {
            (registry.simulate_scan(&instance).await, "Scan simulated: the instance is connected.")
        }
        LinkCommand::Disconnect => {
            (registry.disconnect(&instance).await, "Disconnected. The link is kept; reconnect at any time.")
        }
        LinkCommand::Reconnect if sandbox => (registry.reconnect(&instance).await, "Reconnected."),
        LinkCommand::Reconnect => {
            (registry.reconnect(&instance).await, "Connecting to WhatsApp. This page shows the result in a moment.")
        }
        LinkCommand::Logout if sandbox => {
            (registry.logout(&instance).await, "Number unlinked. Scan a new QR code to link a phone again.")
        }
        LinkCommand::Logout => (
            registry.logout(&instance).await,
            "Number unlinked: the gateway is removed from the phone's linked devices and its session keys are deleted.",
        ),
    };
    match result {
        Ok(()) => {
            tracing::info!(account_id = user.account_id, instance_id = %instance.id, ?action, "instance link action");
            finish(Flash::success(done), &back).await
        }
        Err(e) => finish(Flash::error(user_message("link action", &e)), &back).await,
    }
}

/// Linking by phone number: WhatsApp gives a code the customer types into the phone.
#[server(prefix = "/_fn", endpoint = "instances/pair-code")]
pub async fn request_pair_code(id: String, phone: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let back = format!("/instances/{id}/manage?tab=connect");
    let instance = match gateway::instances::find(&state.db, user.account_id, &id).await {
        Ok(i) => i,
        Err(e) => return finish(Flash::error(user_message("pair code", &e)), "/instances").await,
    };
    match state.registry.request_pair_code(&instance, &phone).await {
        Ok(code) => {
            tracing::info!(account_id = user.account_id, instance_id = %instance.id, "pair code requested");
            finish(Flash::success(format!("Enter the code {code} on the phone.")), &back).await
        }
        Err(e) => finish(Flash::error(user_message("pair code", &e)), &back).await,
    }
}

#[server(prefix = "/_fn", endpoint = "instances/rename")]
pub async fn rename_instance(id: String, name: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    match gateway::instances::rename(&state.db, user.account_id, &id, &name).await {
        Ok(i) => {
            finish(
                Flash::success(format!("Renamed to \"{}\".", i.name)),
                &format!("/instances/{id}/manage?tab=settings"),
            )
            .await
        }
        Err(gateway::Error::NotFound) => finish(Flash::error("Not found."), "/instances").await,
        Err(e) => {
            finish(Flash::error(user_message("rename instance", &e)), &format!("/instances/{id}/manage?tab=settings"))
                .await
        }
    }
}

#[server(prefix = "/_fn", endpoint = "instances/pause")]
pub async fn set_instance_paused(id: String, paused: bool) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    match gateway::instances::set_paused(&state.db, user.account_id, &id, paused).await {
        Ok(_) => {
            let text =
                if paused { "Instance paused: it sends nothing until you resume it." } else { "Instance resumed." };
            finish(Flash::success(text), &format!("/instances/{id}/manage?tab=settings")).await
        }
        Err(e) => finish(Flash::error(user_message("pause instance", &e)), "/instances").await,
    }
}

#[server(prefix = "/_fn", endpoint = "instances/delete")]
pub async fn delete_instance(id: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    match gateway::instances::delete(&state.db, user.account_id, &id).await {
        Ok(()) => {
            state.registry.remove(&id).await;
            tracing::info!(account_id = user.account_id, instance_id = %id, "instance deleted");
            finish(Flash::success("Instance deleted."), "/instances").await
        }
        Err(e) => finish(Flash::error(user_message("delete instance", &e)), "/instances").await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tab {
    Overview,
    Connect,
    Webhook,
    Settings,
}

impl Tab {
    fn parse(text: Option<String>) -> Tab {
        match text.as_deref() {
            Some("connect") => Tab::Connect,
            Some("settings") => Tab::Settings,
            Some("webhook") => Tab::Webhook,
            _ => Tab::Overview,
        }
    }
}

/// How long the connect tab waits for WhatsApp to hand out a link code before it gives up and
/// offers a retry: a healthy connection answers within seconds.
pub const LINK_CODE_WAIT_SECS: i64 = 90;

/// Where a wait for a link code stands: it started at `since` (carried in the page's address,
/// so it survives the page's own refreshes) and has lasted `waited` seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeWait {
    pub since: i64,
    pub waited: i64,
}

impl CodeWait {
    /// A wait that started at `since` (now when unknown, or when the address claims the future).
    pub fn at(since: Option<i64>, now: i64) -> CodeWait {
        let since = since.filter(|s| *s <= now).unwrap_or(now);
        CodeWait { since, waited: now - since }
    }
    pub fn gave_up(self) -> bool {
        self.waited >= LINK_CODE_WAIT_SECS
    }
}

#[component]
pub fn ManagePage() -> impl IntoView {
    let id = use_params_map().with_untracked(|p| p.get("id")).unwrap_or_default();
    let (tab, since) = use_query_map()
        .with_untracked(|q| (Tab::parse(q.get("tab")), q.get("since").and_then(|s| s.parse::<i64>().ok())));
    let data = Resource::new(move || (), {
        let id = id.clone();
        move |_| get_manage_data(id.clone(), tab == Tab::Connect)
    });
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(Some(data)) => view! { <ManageView data tab since/> }.into_any(),
                    Ok(None) => view! {
                        <PortalLayout title="Not found" current="/instances"><NotFoundBody/></PortalLayout>
                    }.into_any(),
                    Err(e) => view! {
                        <PortalLayout title="Instance" current="/instances">
                            <div class="banner banner-error" role="alert">{e.to_string()}</div>
                        </PortalLayout>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ManageView(data: ManageData, tab: Tab, since: Option<i64>) -> impl IntoView {
    let base = format!("/instances/{}/manage", data.instance.id);
    let tab_link = move |t: Tab, href: String, label: &'static str| {
        view! { <a class="tab" href=href aria-current=(t == tab).then_some("page")>{label}</a> }
    };
    let body = match tab {
        Tab::Overview => view! { <OverviewTab data=data.clone()/> }.into_any(),
        Tab::Connect => view! { <ConnectTab data=data.clone() since/> }.into_any(),
        Tab::Webhook => {
            view! { <crate::pages::webhook_tab::WebhookTab instance_id=data.instance.id.clone()/> }.into_any()
        }
        Tab::Settings => view! { <SettingsTab row=data.instance.clone()/> }.into_any(),
    };
    view! {
        <PortalLayout title=data.instance.name.clone() current="/instances">
            {data.instance.connection_alert.clone().map(|alert| view! {
                <div class="banner banner-error banner-loud" role="alert">
                    <p><strong>"WhatsApp suspended or ended this instance's link. "</strong>{alert}</p>
                    <p>"Nothing is sent or received until it is linked and connected again. Bans follow messages people did not expect or want: read "<a href="/docs/connect">"the ban risks"</a>" and "<a href="/docs/responsible-messaging">"responsible messaging"</a>" before sending again."</p>
                </div>
            })}
            {data.instance.review_paused.then(|| view! {
                <div class="banner banner-error" role="alert">
                    <p>
                        "This instance is paused for responsible messaging review: its sends are refused with instance_paused_for_review. "
                        {data.instance.review_reason.clone().map(|r| format!("Reason: {r} "))}
                        "Review your recent blocked attempts on the "<a href="/responsible-messaging">"Responsible messaging"</a>" page; an operator lifts the pause."
                    </p>
                    {data.instance.review_note.clone().map(|(note, at)| view! {
                        <p class="review-note"><strong>{format!("The operator's note ({at}): ")}</strong>{note}</p>
                    })}
                </div>
            })}
            {(!data.instance.review_paused).then(|| data.instance.review_note.clone()).flatten().map(|(note, at)| view! {
                <div class="banner banner-info" role="status">
                    <p><strong>{format!("An operator reviewed this instance and resumed it ({at}). ")}</strong>{note}</p>
                </div>
            })}
            <nav class="tabs" aria-label="Instance">
                {tab_link(Tab::Overview, format!("{base}?tab=overview"), "Overview")}
                {tab_link(Tab::Connect, format!("{base}?tab=connect"), "Connect")}
                {tab_link(Tab::Webhook, format!("{base}?tab=webhook"), "Webhook")}
                {tab_link(Tab::Settings, format!("{base}?tab=settings"), "Settings")}
            </nav>
            {body}
        </PortalLayout>
    }
}

#[component]
fn OverviewTab(data: ManageData) -> impl IntoView {
    let row = data.instance;
    view! {
        <section class="card">
            <dl class="details">
                <dt>"Status"</dt><dd><StatusBadge row=row.clone()/></dd>
                <dt>"Instance ID"</dt><dd><crate::layout::CopyableId text=row.id.clone()/></dd>
                <dt>"Linked number"</dt><dd class="mono">{row.linked_phone.clone().unwrap_or_else(|| "Not linked yet".into())}</dd>
                <dt>"Connector"</dt><dd>{row.connector_label.clone()}" "<span class="mono muted">{format!("({})", row.connector)}</span></dd>
                <dt>"Created"</dt><dd>{row.created.clone()}</dd>
                <dt>"Status since"</dt><dd>{row.status_changed.clone()}</dd>
            </dl>
        </section>
        <crate::pages::test_send::TestSendForm instance_id=row.id.clone() is_sandbox=data.is_sandbox/>
        <section class="card">
            <h2>"Recent status changes"</h2>
            <div class="table-wrap">
                <table class="table">
                    <thead><tr><th>"When"</th><th>"Status"</th><th>"Detail"</th></tr></thead>
                    <tbody>
                        {data.history.into_iter().map(|h| view! {
                            <tr><td data-label="When">{h.at}</td><td class="cell-status" data-label="Status">{h.status_label}</td><td data-label="Detail">{h.detail.unwrap_or_default()}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn LinkButton(id: String, action: &'static str, label: &'static str, class: &'static str) -> impl IntoView {
    view! {
        <form class="inline" method="post" action={fn_path::<LinkAction>()}>
            <CsrfField/>
            <input type="hidden" name="id" value=id/>
            <input type="hidden" name="action" value=action/>
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

#[component]
fn PairCodeForm(id: String) -> impl IntoView {
    view! {
        <details class="pair-code">
            <summary>"Link with a phone number instead"</summary>
            <p>"WhatsApp shows a code here; on the phone choose Linked devices › Link a device › Link with phone number instead, and type it in."</p>
            <form class="form form-inline" method="post" action={fn_path::<RequestPairCode>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id/>
                <div class="field">
                    <label for="pair-phone">"The phone's WhatsApp number"</label>
                    <input id="pair-phone" name="phone" type="tel" required placeholder="+9665XXXXXXXX" autocomplete="tel"/>
                </div>
                <button type="submit" class="btn btn-secondary">"Get a code"</button>
            </form>
        </details>
    }
}

#[component]
fn ConnectTab(data: ManageData, since: Option<i64>) -> impl IntoView {
    let id = data.instance.id.clone();
    let here = format!("/instances/{id}/manage?tab=connect");
    let pair = data.pair_code_linking;
    match data.link {
        Some(LinkView::AwaitingScan { qr_svg, expires_in_secs }) => {
            // Refresh a little after the code rotates, and often enough to notice the scan.
            let refresh = (expires_in_secs + 1).clamp(2, 10);
            // A sandbox has no phone to scan with: its one step is the simulated scan, offered
            // first; the code is shown only to look like the real thing.
            if data.is_sandbox {
                return view! {
                    <section class="card">
                        <h2>"Link this sandbox instance"</h2>
                        <p><span class="badge badge-unlinked">"Not linked"</span></p>
                        <p><strong>"No phone is needed."</strong>" This is a sandbox: a simulated WhatsApp for trying every path. Press Simulate scan and it is connected at once."</p>
                        <div class="page-actions">
                            <LinkButton id=id.clone() action="simulate_scan" label="Simulate scan" class="btn btn-primary"/>
                        </div>
                        <div class="qr">
                            <div inner_html=qr_svg></div>
                            <p class="qr-caption">"A simulated code: nothing scans it. It is shown so the page looks as it will for a real number."</p>
                        </div>
                    </section>
                }.into_any();
            }
            view! {
                <Meta http_equiv="refresh" content=refresh.to_string()/>
                <section class="card">
                    <h2>"Link a phone"</h2>
                    <p>"On the phone: WhatsApp › Settings › Linked devices › Link a device, then scan this code."</p>
                    <div class="qr" data-auto-refresh=refresh.to_string()>
                        <div inner_html=qr_svg></div>
                        <p class="qr-caption">{format!("This code changes in {expires_in_secs} s. The page refreshes by itself; ")}<a href=here.clone()>"reload now"</a>"."</p>
                    </div>
                    <p><span class="badge badge-unlinked">"Not linked"</span></p>
                    {pair.then(|| view! { <PairCodeForm id=id.clone()/> })}
                </section>
            }.into_any()
        }
        Some(LinkView::AwaitingPairCode { code, expires_in_secs }) => view! {
            <Meta http_equiv="refresh" content="10"/>
            <section class="card">
                <h2>"Enter this code on the phone"</h2>
                <p class="pair-code-value mono" aria-label="Pairing code">{code}</p>
                <p>"On the phone: WhatsApp › Settings › Linked devices › Link a device › Link with phone number instead, then type the code."</p>
                <p class="hint">{format!("The code is valid for about {expires_in_secs} s more. The page refreshes by itself; ")}<a href=here>"reload now"</a>"."</p>
            </section>
        }.into_any(),
        Some(LinkView::Starting) => view! { <PreparingCode id=id.clone() wait=CodeWait::at(since, data.now)/> }.into_any(),
        Some(LinkView::Idle { reason }) => view! {
            <section class="card">
                <h2>"Not linked"</h2>
                <p><span class="badge badge-unlinked">"Not linked"</span>" "{reason}</p>
                <div class="page-actions">
                    <LinkButton id=id.clone() action="reconnect" label="Show a new QR code" class="btn btn-primary"/>
                </div>
                {pair.then(|| view! { <PairCodeForm id=id.clone()/> })}
            </section>
        }.into_any(),
        Some(LinkView::Connected { phone, name }) => view! {
            <section class="card">
                <h2>"Linked"</h2>
                <p>
                    <span class="badge badge-connected">"Connected"</span>" "
                    {phone.map(|p| view! { <span class="mono">{p}</span> })}
                    {name.map(|n| view! { " · " <span>{n}</span> })}
                </p>
                <div class="page-actions">
                    <LinkButton id=id.clone() action="disconnect" label="Disconnect" class="btn btn-secondary"/>
                    <UnlinkConfirm id=id.clone()/>
                </div>
            </section>
        }.into_any(),
        Some(LinkView::Disconnected { reason }) => view! {
            <section class="card">
                <h2>"Disconnected"</h2>
                <p><span class="badge badge-disconnected">"Disconnected"</span>" "{reason}</p>
                <div class="page-actions">
                    <LinkButton id=id.clone() action="reconnect" label="Reconnect" class="btn btn-primary"/>
                    <UnlinkConfirm id=id.clone()/>
                </div>
            </section>
        }.into_any(),
        None => view! { <p class="muted">"Link state unavailable."</p> }.into_any(),
    }
}

/// Waiting for WhatsApp to hand out a link code: progress while it may still come, then a
/// clear stop with a retry instead of an endless "preparing".
#[component]
fn PreparingCode(id: String, wait: CodeWait) -> impl IntoView {
    let here = format!("/instances/{id}/manage?tab=connect");
    if wait.gave_up() {
        return view! {
            <section class="card">
                <h2>"No link code yet"</h2>
                <div class="banner banner-error" role="alert">
                    <p>{format!("WhatsApp did not hand out a link code within {LINK_CODE_WAIT_SECS} seconds. The server may not reach WhatsApp, or WhatsApp is slow to answer.")}</p>
                </div>
                <p>"Try again; if it keeps failing, ask your operator to check that the server can reach WhatsApp (web.whatsapp.com)."</p>
                <div class="page-actions">
                    <LinkButton id=id.clone() action="reconnect" label="Try again" class="btn btn-primary"/>
                </div>
            </section>
        }
        .into_any();
    }
    let next = format!("{here}&since={}", wait.since);
    view! {
        <Meta http_equiv="refresh" content=format!("3;url={next}")/>
        <section class="card" aria-busy="true">
            <h2>"Preparing a link code…"</h2>
            <p class="waiting"><span class="spinner" aria-hidden="true"></span>{format!("Asking WhatsApp for a link code: {} s so far. This usually takes a few seconds; the page gives up after {LINK_CODE_WAIT_SECS} s.", wait.waited)}</p>
            <progress max=LINK_CODE_WAIT_SECS.to_string() value=wait.waited.to_string() aria-label="Time waited for a link code"></progress>
            <p class="hint">"The page refreshes by itself; "<a href=next>"reload now"</a>"."</p>
        </section>
    }
    .into_any()
}

/// Ends the link to the phone (the connector's "log out"), named so it is not mistaken for
/// signing out of the portal.
#[component]
fn UnlinkConfirm(id: String) -> impl IntoView {
    view! {
        <details class="confirm">
            <summary class="btn btn-danger">"Unlink this number"</summary>
            <p>"Removes WA Gateway from the phone's linked devices and deletes this instance's session. You stay signed in to the portal; linking again needs a new scan."</p>
            <LinkButton id=id action="logout" label="Yes, unlink this number" class="btn btn-danger"/>
        </details>
    }
}

#[component]
fn SettingsTab(row: InstanceRow) -> impl IntoView {
    let id = row.id.clone();
    view! {
        <section class="card">
            <h2>"Name"</h2>
            <form class="form form-inline" method="post" action={fn_path::<RenameInstance>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id.clone()/>
                <div class="field">
                    <label for="rename">"Instance name"</label>
                    <input id="rename" name="name" maxlength="60" required value=row.name.clone()/>
                </div>
                <button type="submit" class="btn btn-primary">"Rename"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Pause sending"</h2>
            <p>{if row.paused { "This instance is paused: it sends nothing until you resume it. Sends answer 423 instance_paused." } else { "Pausing stops all sending from this instance (sends answer 423 instance_paused); receiving continues. A pause of your own is not counted as a blocked attempt." }}</p>
            <form class="inline" method="post" action={fn_path::<SetInstancePaused>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id.clone()/>
                <input type="hidden" name="paused" value=(!row.paused).to_string()/>
                <button type="submit" class="btn btn-secondary">{if row.paused { "Resume instance" } else { "Pause instance" }}</button>
            </form>
        </section>
        <section class="card">
            <h2>"Delete"</h2>
            <p>"Deleting removes the instance and its link. This cannot be undone."</p>
            <details class="confirm">
                <summary class="btn btn-danger">"Delete instance"</summary>
                <form class="inline" method="post" action={fn_path::<DeleteInstance>()}>
                    <CsrfField/>
                    <input type="hidden" name="id" value=id/>
                    <p>{format!("Delete \"{}\" for good?", row.name)}</p>
                    <button type="submit" class="btn btn-danger">"Yes, delete this instance"</button>
                </form>
            </details>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::{CodeWait, LINK_CODE_WAIT_SECS};

    #[test]
    fn a_wait_for_a_link_code_is_bounded() {
        let fresh = CodeWait::at(None, 1_000);
        assert_eq!(fresh, CodeWait { since: 1_000, waited: 0 });
        assert!(!fresh.gave_up());
        let carried = CodeWait::at(Some(1_000), 1_030);
        assert_eq!(carried.waited, 30);
        assert!(!carried.gave_up());
        assert!(CodeWait::at(Some(1_000), 1_000 + LINK_CODE_WAIT_SECS).gave_up());
        // An address from the future starts the wait afresh.
        assert_eq!(CodeWait::at(Some(5_000), 1_000).waited, 0);
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn preparing_a_code_shows_progress_then_gives_up_with_a_retry() {
        use leptos::prelude::*;
        let render = |wait: CodeWait| {
            Owner::new().with(|| {
                leptos_meta::provide_meta_context();
                view! { <super::PreparingCode id="inst_1".to_string() wait/> }.to_html()
            })
        };
        let waiting = render(CodeWait::at(Some(1_000), 1_030));
        assert!(waiting.contains("30 s so far") && waiting.contains("<progress"), "{waiting}");
        assert!(waiting.contains("class=\"spinner\""), "{waiting}");
        assert!(waiting.contains("since=1000"), "the wait's start is carried to the next refresh: {waiting}");
        let gave_up = render(CodeWait::at(Some(1_000), 1_000 + LINK_CODE_WAIT_SECS));
        assert!(gave_up.contains("did not hand out a link code within 90 seconds"), "{gave_up}");
        assert!(gave_up.contains(">Try again<") && gave_up.contains("value=\"reconnect\""), "{gave_up}");
        assert!(!gave_up.contains("<progress"), "no more waiting once it gave up");
    }
}
