//! API keys: create (shown once), list, revoke.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::layout::{fn_path, when, CsrfField, PortalLayout};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: Option<String>,
    pub revoked: Option<String>,
}

#[server(prefix = "/_fn", endpoint = "api-keys/list")]
pub async fn list_api_keys() -> Result<Vec<ApiKeyRow>, ServerFnError> {
    use crate::server_util::*;
    use gateway::time::display;
    let user = require_user()?;
    let state = app_state()?;
    let keys = gateway::api_keys::list(&state.db, user.account_id).await.map_err(|e| read_error("list api keys", e))?;
    Ok(keys
        .into_iter()
        .map(|k| ApiKeyRow {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created: display(k.created_at),
            last_used: k.last_used_at.map(display),
            revoked: k.revoked_at.map(display),
        })
        .collect())
}

#[server(prefix = "/_fn", endpoint = "api-keys/create")]
pub async fn create_api_key(name: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    let cap = Some(state.config.caps.api_keys);
    match gateway::api_keys::create_capped(&state.db, user.account_id, &name, cap).await {
        Ok(created) => {
            tracing::info!(account_id = user.account_id, key_id = %created.info.id, "API key created");
            let mut flash = Flash::success(format!(
                "API key \"{}\" created. Copy this key now. It will not be shown again.",
                created.info.name
            ));
            flash = flash.with_secret(crate::context::SecretKind::ApiKey, created.secret);
            finish(flash, "/api-keys").await
        }
        Err(e) => finish(Flash::error(user_message("create api key", &e)), "/api-keys").await,
    }
}

#[server(prefix = "/_fn", endpoint = "api-keys/revoke")]
pub async fn revoke_api_key(key_id: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let user = require_user()?;
    let state = app_state()?;
    match gateway::api_keys::revoke(&state.db, user.account_id, &key_id).await {
        Ok(info) => {
            tracing::info!(account_id = user.account_id, key_id = %info.id, "API key revoked");
            finish(
                Flash::success(format!("API key \"{}\" revoked. Requests using it are now refused.", info.name)),
                "/api-keys",
            )
            .await
        }
        Err(e) => finish(Flash::error(user_message("revoke api key", &e)), "/api-keys").await,
    }
}

#[component]
pub fn ApiKeysPage() -> impl IntoView {
    let keys = Resource::new(|| (), |_| list_api_keys());
    view! {
        <PortalLayout title="API Keys" current="/api-keys"
            lead="Your systems send messages with these keys: Authorization: Bearer YOUR_API_KEY.">
            <section class="card">
                <h2>"Create an API key"</h2>
                <form class="form form-inline" method="post" action={fn_path::<CreateApiKey>()}>
                    <CsrfField/>
                    <div class="field">
                        <label for="key-name">"Key name"</label>
                        <input id="key-name" name="name" maxlength="60" required placeholder="ERP invoices"/>
                    </div>
                    <button type="submit" class="btn btn-primary">"Create API key"</button>
                </form>
                <p class="hint">"The full key is shown once, right after it is created. WA Gateway keeps only a fingerprint of it."</p>
            </section>
            <section class="card">
                <h2>"Your keys"</h2>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || Suspend::new(async move {
                        match keys.await {
                            Ok(rows) if rows.is_empty() => view! {
                                <div class="empty-state"><p><strong>"No API keys yet."</strong></p><p>"Create one above and store it in the system that will send messages."</p></div>
                            }.into_any(),
                            Ok(rows) => view! { <KeyTable rows/> }.into_any(),
                            Err(e) => view! { <div class="banner banner-error" role="alert">{e.to_string()}</div> }.into_any(),
                        }
                    })}
                </Suspense>
            </section>
        </PortalLayout>
    }
}

#[component]
fn KeyTable(rows: Vec<ApiKeyRow>) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table">
                <thead><tr><th>"Name"</th><th>"Key"</th><th>"Created"</th><th>"Last used"</th><th>"Status"</th><th><span class="visually-hidden">"Actions"</span></th></tr></thead>
                <tbody>
                    {rows.into_iter().map(|row| {
                        let revoked = row.revoked.is_some();
                        view! {
                            <tr>
                                <td data-label="Name">{row.name.clone()}</td>
                                <td class="mono" data-label="Key">{format!("{}…", row.prefix)}</td>
                                <td data-label="Created">{row.created.clone()}</td>
                                <td data-label="Last used">{when(row.last_used.clone())}</td>
                                <td class="cell-status" data-label="Status">{if revoked {
                                    view! { <span class="badge badge-revoked">{format!("Revoked {}", row.revoked.clone().unwrap_or_default())}</span> }.into_any()
                                } else {
                                    view! { <span class="badge badge-active">"Active"</span> }.into_any()
                                }}</td>
                                <td class="actions">
                                    {(!revoked).then(|| view! {
                                        <details class="confirm">
                                            <summary class="btn btn-danger">"Revoke"</summary>
                                            <form class="inline" method="post" action={fn_path::<RevokeApiKey>()}>
                                                <CsrfField/>
                                                <input type="hidden" name="key_id" value=row.id.clone()/>
                                                <p>{format!("Revoke \"{}\"? Systems using it stop working at once.", row.name)}</p>
                                                <button type="submit" class="btn btn-danger">"Yes, revoke this key"</button>
                                            </form>
                                        </details>
                                    })}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
