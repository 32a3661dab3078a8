//! The instance list and creation.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layout::{fn_path, CsrfField, PortalLayout};

/// One instance as pages show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceRow {
    pub id: String,
    pub name: String,
    pub connector: String,
    pub status: String,
    pub status_label: String,
    pub linked_phone: Option<String>,
    pub paused: bool,
    pub review_paused: bool,
    pub review_reason: Option<String>,
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
            id: i.id,
            name: i.name,
            connector: i.connector,
            linked_phone: i.linked_phone,
            paused: i.paused,
            review_paused: i.review_paused,
            review_reason: i.review_reason,
        }
    }
}

#[component]
pub fn StatusBadge(row: InstanceRow) -> impl IntoView {
    view! {
        <span class=format!("badge badge-{}", row.status)>{row.status_label}</span>
        {row.paused.then(|| view! { " " <span class="badge badge-paused">"Paused"</span> })}
        {row.review_paused.then(|| view! { " " <span class="badge badge-paused">"Paused for review"</span> })}
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

#[server(prefix = "/_fn", endpoint = "instances/create")]
pub async fn create_instance(name: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    match gateway::instances::create(&state.db, user.account_id, &name, gateway::connectors::sandbox::NAME).await {
        Ok(instance) => {
            tracing::info!(account_id = user.account_id, instance_id = %instance.id, "instance created");
            finish(
                Flash::success(format!("Instance \"{}\" created. Open it to link a phone.", instance.name)),
                "/instances",
            )
            .await
        }
        Err(e) => finish(Flash::error(user_message("create instance", &e)), "/instances").await,
    }
}

#[component]
pub fn InstancesPage() -> impl IntoView {
    let instances = Resource::new(|| (), |_| list_instances());
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
                    <button type="submit" class="btn btn-primary">"Create instance"</button>
                </form>
                <p class="hint">"New instances use the sandbox connector: a simulated WhatsApp for trying every path without a phone."</p>
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
                                <td><a href=href>{row.name.clone()}</a></td>
                                <td class="mono">{row.id.clone()}</td>
                                <td><StatusBadge row=row.clone()/></td>
                                <td class="mono">{row.linked_phone.clone().unwrap_or_else(|| "—".into())}</td>
                                <td>{row.connector.clone()}</td>
                                <td>{row.created.clone()}</td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
