//! The instance list and creation.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layout::{fn_path, CopyableId, CsrfField, PortalLayout};

/// One instance as pages show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub id: String,
    pub name: String,
    pub connector: String,
    /// How the portal names the connector, e.g. "WhatsApp Web (linked device of your phone)".
    pub connector_label: String,
    pub status: String,
    pub status_label: String,
    pub linked_phone: Option<String>,
    pub paused: bool,
    pub review_paused: bool,
    pub review_reason: Option<String>,
    /// The operator's note from the last review and when it was left.
    pub review_note: Option<(String, String)>,
    /// WhatsApp suspended or ended the link (temporary ban, forced logout): shown loudly.
    pub connection_alert: Option<String>,
    pub created: String,
    pub status_changed: String,
}

#[cfg(feature = "ssr")]
impl From<gateway::instances::Instance> for InstanceRow {
    fn from(i: gateway::instances::Instance) -> Self {
        InstanceRow {
            status: i.status.as_str().into(),
            status_label: i.status.label().into(),
            created: gateway::time::display(i.created_at),
            status_changed: gateway::time::display(i.status_changed_at),
            connector_label: gateway::connectors::label(&i.connector).into(),
            id: i.id,
            name: i.name,
            connector: i.connector,
            linked_phone: i.linked_phone,
            paused: i.paused,
            review_paused: i.review_paused,
            review_reason: i.review_reason,
            review_note: i.review_note.map(|n| (n, i.review_note_at.map(gateway::time::display).unwrap_or_default())),
            connection_alert: i.connection_alert,
        }
    }
}

#[component]
pub fn StatusBadge(row: InstanceRow) -> impl IntoView {
    view! {
        <span class=format!("badge badge-{}", row.status)>{row.status_label}</span>
        {row.paused.then(|| view! { " " <span class="badge badge-paused">"Paused"</span> })}
        {row.review_paused.then(|| view! { " " <span class="badge badge-paused">"Paused for review"</span> })}
        {row.connection_alert.is_some().then(|| view! { " " <span class="badge badge-alert">"Action needed"</span> })}
    }
}

#[server(prefix = "/_fn", endpoint = "instances/list")]
pub async fn list_instances() -> Result<Vec<InstanceRow>, ServerFnError> {
    use crate::server_util::*;
    let user = require_user()?;
    let state = app_state()?;
    let list =
        gateway::instances::list(&state.db, user.account_id).await.map_err(|e| read_error("list instances", e))?;
    Ok(list.into_iter().map(InstanceRow::from).collect())
}

/// A connector the customer may choose for a new instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorChoice {
    pub name: String,
    pub label: String,
}

/// The connectors enabled on this server, the default first.
#[server(prefix = "/_fn", endpoint = "instances/connectors")]
pub async fn instance_connectors() -> Result<Vec<ConnectorChoice>, ServerFnError> {
    use crate::server_util::*;
    require_user()?;
    let state = app_state()?;
    Ok(state
        .registry
        .connector_names()
        .into_iter()
        .map(|name| ConnectorChoice { name: name.into(), label: gateway::connectors::label(name).into() })
        .collect())
}

#[server(prefix = "/_fn", endpoint = "instances/create")]
pub async fn create_instance(name: String, connector: Option<String>) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let enabled = state.registry.connector_names();
    let connector = match connector.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        Some(chosen) => match enabled.iter().find(|n| **n == chosen) {
            Some(name) => *name,
            None => return finish(Flash::error("That connector is not available on this server."), "/instances").await,
        },
        None => match enabled.first() {
            Some(name) => *name,
            None => return finish(Flash::error("No connector is enabled on this server."), "/instances").await,
        },
    };
    let cap = Some(state.config.caps.instances);
    match gateway::instances::create_capped(&state.db, user.account_id, &name, connector, cap).await {
        Ok(instance) => {
            tracing::info!(account_id = user.account_id, instance_id = %instance.id, connector, "instance created");
            // Straight to linking: a new instance is useless until it is connected.
            let text = if connector == gateway::connectors::sandbox::NAME {
                format!(
                    "Instance \"{}\" created. It is a sandbox: link it with Simulate scan, no phone needed.",
                    instance.name
                )
            } else {
                format!("Instance \"{}\" created. Link it to your phone below.", instance.name)
            };
            finish(Flash::success(text), &format!("/instances/{}/manage?tab=connect", instance.id)).await
        }
        Err(e) => finish(Flash::error(user_message("create instance", &e)), "/instances").await,
    }
}

#[component]
pub fn InstancesPage() -> impl IntoView {
    let instances = Resource::new(|| (), |_| list_instances());
    let connectors = Resource::new(|| (), |_| instance_connectors());
    view! {
        <PortalLayout title="Instances" current="/instances"
            lead="Each instance is one WhatsApp number connected to WA Gateway.">
            <section class="card">
                <h2>"Create an instance"</h2>
                <form class="form form-inline" method="post" action={fn_path::<CreateInstance>()}>
                    <CsrfField/>
                    <div class="field">
                        <label for="instance-name">"Instance name"</label>
                        <input id="instance-name" name="name" maxlength="60" required placeholder="Support line"/>
                    </div>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            let choices = connectors.await.unwrap_or_default();
                            view! { <ConnectorField choices/> }
                        })}
                    </Suspense>
                    <button type="submit" class="btn btn-primary">"Create instance"</button>
                </form>
                <p class="hint">"The sandbox is a simulated WhatsApp for trying every path without a phone. WhatsApp Web links the instance to your own WhatsApp number as a linked device: "<a href="/docs/connect">"read how linking works and what it means for the number"</a>"."</p>
            </section>
            <section class="card">
                <h2>"Your instances"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match instances.await {
                            Ok(rows) if rows.is_empty() => view! {
                                <div class="empty-state"><p><strong>"No instances yet."</strong></p><p>"Create one above, then link it on its Connect tab."</p></div>
                            }.into_any(),
                            Ok(rows) => view! { <InstanceTable rows/> }.into_any(),
                            Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </PortalLayout>
    }
}

/// The connector choice; a lone connector is stated rather than offered.
#[component]
fn ConnectorField(choices: Vec<ConnectorChoice>) -> impl IntoView {
    match choices.as_slice() {
        [] => view! { <p class="hint">"No connector is enabled on this server."</p> }.into_any(),
        [only] => view! {
            <input type="hidden" name="connector" value=only.name.clone()/>
            <p class="hint">{format!("Connector: {}", only.label)}</p>
        }
        .into_any(),
        _ => view! {
            <div class="field">
                <label for="instance-connector">"Connector"</label>
                <select id="instance-connector" name="connector">
                    {choices.into_iter().map(|c| view! { <option value=c.name.clone()>{c.label.clone()}</option> }).collect_view()}
                </select>
            </div>
        }
        .into_any(),
    }
}

#[component]
pub fn InstanceTable(rows: Vec<InstanceRow>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"Name"</th><th>"Instance ID"</th><th>"Status"</th><th>"Number"</th><th>"Connector"</th><th>"Created"</th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|row| {
                        let href = format!("/instances/{}/manage", row.id);
                        view! {
                            <tr>
                                <td data-label="Name"><a href=href>{row.name.clone()}</a></td>
                                <td data-label="Instance ID"><CopyableId text=row.id.clone()/></td>
                                <td class="cell-status" data-label="Status"><StatusBadge row=row.clone()/></td>
                                <td class="mono" data-label="Number">{row.linked_phone.clone().unwrap_or_else(|| "—".into())}</td>
                                <td title=row.connector_label.clone() data-label="Connector">{row.connector.clone()}</td>
                                <td data-label="Created">{row.created.clone()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
