//! /admin/accounts: search accounts by email and page through them; /admin/accounts/:id: one
//! account in full, with the operator's actions (plan and limits, modules, disable or enable,
//! a password-reset link) and its audit rows.
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use serde::{Deserialize, Serialize};

use super::{
    audit::{AuditRow, AuditTable},
    shared::{is_operator, LoadError, Section, Table},
};
use crate::{
    layout::{fn_path, CsrfField, PortalLayout},
    pages::limit_request::LimitRequestRow,
    pages::not_found::NotFound,
};

#[cfg(feature = "ssr")]
const PAGE_SIZE: u64 = 50;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountListRow {
    pub id: i64,
    pub email: String,
    pub role: String,
    pub plan: String,
    pub limits: String,
    pub disabled: bool,
    pub created: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountList {
    pub rows: Vec<AccountListRow>,
    /// The id to continue after, when there may be more.
    pub next_after: Option<i64>,
}

#[cfg(feature = "ssr")]
fn limits_text(account: &gateway::accounts::Account) -> String {
    account.limits().map(|l| format!("{}/day · {}/month", l.daily, l.monthly)).unwrap_or_else(|| "no sending".into())
}

#[server(prefix = "/_fn", endpoint = "admin/accounts")]
pub async fn list_accounts(query: String, after: Option<i64>) -> Result<AccountList, ServerFnError> {
    use crate::server_util::*;
    super::shared::require_operator()?;
    let state = app_state()?;
    let found = gateway::operator::accounts::search(&state.db, &query, after, PAGE_SIZE)
        .await
        .map_err(|e| read_error("search accounts", e))?;
    let next_after = (found.len() as u64 == PAGE_SIZE).then(|| found.last().map(|a| a.id)).flatten();
    Ok(AccountList {
        rows: found
            .iter()
            .map(|a| AccountListRow {
                id: a.id,
                email: a.email.clone(),
                role: a.role.as_str().into(),
                plan: a.plan.display_name().into(),
                limits: limits_text(a),
                disabled: a.disabled,
                created: gateway::time::display(a.created_at),
            })
            .collect(),
        next_after,
    })
}

#[component]
pub fn AdminAccountsPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let (query, after) = use_query_map()
        .with_untracked(|q| (q.get("q").unwrap_or_default(), q.get("after").and_then(|a| a.parse::<i64>().ok())));
    let data = Resource::new(|| (), {
        let query = query.clone();
        move |_| list_accounts(query.clone(), after)
    });
    view! {
        <PortalLayout title="Accounts" current="/admin/accounts" lead="Every account on this gateway. Open one to change its plan, limits or modules, disable it, or create a password-reset link.">
            <section class="card">
                <form class="form form-inline" method="get" action="/admin/accounts">
                    <div class="field">
                        <label for="account-search">"Email contains"</label>
                        <input id="account-search" name="q" type="search" value=query.clone() autocomplete="off"/>
                    </div>
                    <button type="submit" class="btn btn-secondary">"Search"</button>
                </form>
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        let query = query.clone();
                        Suspend::new(async move {
                            match data.await {
                                Ok(list) if list.rows.is_empty() => view! {
                                    <div class="empty-state"><p><strong>"No account matches."</strong></p></div>
                                }.into_any(),
                                Ok(list) => view! { <AccountTable list query/> }.into_any(),
                                Err(e) => view! { <LoadError message=e.to_string()/> }.into_any(),
                            }
                        })
                    }}
                </Suspense>
            </section>
        </PortalLayout>
    }
    .into_any()
}

#[component]
fn AccountTable(list: AccountList, query: String) -> impl IntoView {
    view! {
        <Table headers=&["Email", "Role", "Plan", "Limits", "State", "Created"]>
            {list.rows.into_iter().map(|a| view! {
                <tr>
                    <td data-label="Email"><a href=format!("/admin/accounts/{}", a.id)>{a.email}</a></td>
                    <td data-label="Role">{a.role}</td>
                    <td data-label="Plan">{a.plan}</td>
                    <td data-label="Limits">{a.limits}</td>
                    <td data-label="State">{if a.disabled { "disabled" } else { "active" }}</td>
                    <td data-label="Created">{a.created}</td>
                </tr>
            }).collect_view()}
        </Table>
        {list.next_after.map(|after| {
            let href = format!("/admin/accounts?q={}&after={after}", encode(&query));
            view! { <p><a class="btn btn-secondary" href=href>"Next page"</a></p> }
        })}
    }
}

/// A query-string value, percent-encoded.
pub(super) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'@') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    pub id: i64,
    pub email: String,
    pub role: String,
    /// starter, growth, scale or none
    pub plan: String,
    pub plan_name: String,
    pub limits: String,
    pub daily_override: Option<i64>,
    pub monthly_override: Option<i64>,
    pub used_today: i64,
    pub used_this_month: i64,
    pub api_enabled: bool,
    pub threecx_enabled: bool,
    pub disabled: bool,
    pub created: String,
    /// (id, name, connector, state, connection alert)
    pub instances: Vec<(String, String, String, String, Option<String>)>,
    /// (name, prefix, created, last used, revoked)
    pub keys: Vec<(String, String, String, String, bool)>,
    /// (when, instance, masked recipient, decision, error code, score, reasons)
    pub concerns: Vec<(String, String, String, String, String, i32, String)>,
    pub limit_requests: Vec<LimitRequestRow>,
    pub audit: Vec<AuditRow>,
    /// Whether this is the signed-in operator's own account (it cannot disable itself).
    pub is_self: bool,
}

#[server(prefix = "/_fn", endpoint = "admin/account")]
pub async fn get_account(id: i64) -> Result<Option<AccountView>, ServerFnError> {
    use super::shared::when;
    use crate::server_util::*;
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    let d = match gateway::operator::accounts::detail(&state.db, id).await {
        Ok(d) => d,
        Err(gateway::Error::NotFound) => return Ok(None),
        Err(e) => return Err(read_error("load account", e)),
    };
    let a = &d.account;
    Ok(Some(AccountView {
        id: a.id,
        email: a.email.clone(),
        role: a.role.as_str().into(),
        plan: a.plan.as_str().into(),
        plan_name: a.plan.display_name().into(),
        limits: limits_text(a),
        daily_override: a.daily_limit_override,
        monthly_override: a.monthly_limit_override,
        used_today: d.used_today,
        used_this_month: d.used_this_month,
        api_enabled: a.api_enabled,
        threecx_enabled: a.threecx_enabled,
        disabled: a.disabled,
        created: gateway::time::display(a.created_at),
        instances: d
            .instances
            .iter()
            .map(|i| {
                let state = if i.review_paused { "paused for review" } else { i.status.label() };
                (i.id.clone(), i.name.clone(), i.connector.clone(), state.to_string(), i.connection_alert.clone())
            })
            .collect(),
        keys: d
            .keys
            .iter()
            .map(|k| {
                let created = gateway::time::display(k.created_at);
                (k.name.clone(), k.prefix.clone(), created, when(k.last_used_at), k.revoked_at.is_some())
            })
            .collect(),
        concerns: d
            .concerns
            .iter()
            .map(|c| {
                let reasons = c.reasons.iter().map(|r| r.code.clone()).collect::<Vec<_>>().join(", ");
                (
                    gateway::time::display(c.created_at),
                    c.instance_id.clone().unwrap_or_default(),
                    c.recipient_masked.clone(),
                    c.decision.clone(),
                    c.error_code.clone().unwrap_or_default(),
                    c.risk_score,
                    reasons,
                )
            })
            .collect(),
        limit_requests: d.limit_requests.iter().map(|r| LimitRequestRow::from_request(r, &a.email)).collect(),
        audit: d.audit.into_iter().map(AuditRow::from_entry).collect(),
        is_self: operator.account_id == a.id,
    }))
}

/// Where an account action returns.
#[cfg(feature = "ssr")]
fn account_page(id: i64) -> String {
    format!("/admin/accounts/{id}")
}

/// Ends an account action: the banner says what happened, or why nothing did.
#[cfg(feature = "ssr")]
async fn done(
    result: gateway::Result<gateway::accounts::Account>,
    id: i64,
    what: &str,
    ok: impl FnOnce(&gateway::accounts::Account) -> String,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    match result {
        Ok(account) => finish(Flash::success(ok(&account)), &account_page(id)).await,
        Err(gateway::Error::NotFound) => finish(Flash::error("No such account."), "/admin/accounts").await,
        Err(e) => finish(Flash::error(user_message(what, &e)), &account_page(id)).await,
    }
}

/// A limit field: empty means "no override" (the plan's limit).
#[cfg(feature = "ssr")]
fn optional_limit(text: &str, which: &str) -> gateway::Result<i64> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        gateway::Error::invalid(format!("The {which} limit must be a positive whole number, or empty for the plan's."))
    })
}

#[server(prefix = "/_fn", endpoint = "admin/account/plan")]
pub async fn set_account_plan(
    id: i64,
    plan: String,
    daily_limit: String,
    monthly_limit: String,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::operator::actions::{self, AccountChange};
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    let Some(plan) = gateway::plans::Plan::parse(&plan) else {
        return finish(Flash::error("Choose starter, growth, scale or none."), &account_page(id)).await;
    };
    let limits =
        optional_limit(&daily_limit, "daily").and_then(|d| Ok((d, optional_limit(&monthly_limit, "monthly")?)));
    let (daily, monthly) = match limits {
        Ok(l) => l,
        Err(e) => return finish(Flash::error(user_message("set plan", &e)), &account_page(id)).await,
    };
    let change = AccountChange::Plan { plan, daily: Some(daily), monthly: Some(monthly) };
    let result = actions::change_account(&state.db, &operator.email, id, change).await;
    done(result, id, "set plan", |a| format!("{} is on {}: {}.", a.email, a.plan.display_name(), limits_text(a))).await
}

#[server(prefix = "/_fn", endpoint = "admin/account/modules")]
pub async fn set_account_modules(id: i64, api: Option<String>, threecx: Option<String>) -> Result<(), ServerFnError> {
    use crate::server_util::*;
    use gateway::operator::actions::{self, AccountChange};
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    let change = AccountChange::Modules { api: api.is_some(), threecx: threecx.is_some() };
    let result = actions::change_account(&state.db, &operator.email, id, change).await;
    done(result, id, "set modules", |a| {
        let on = |b: bool| if b { "on" } else { "off" };
        format!("Modules of {}: API {}, 3CX {}.", a.email, on(a.api_enabled), on(a.threecx_enabled))
    })
    .await
}

#[server(prefix = "/_fn", endpoint = "admin/account/disabled")]
pub async fn set_account_disabled(id: i64, disable: bool) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::operator::actions::{self, AccountChange};
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    if disable && operator.account_id == id {
        return finish(Flash::error("You cannot disable your own account."), &account_page(id)).await;
    }
    let result = actions::change_account(&state.db, &operator.email, id, AccountChange::Disabled(disable)).await;
    done(result, id, "disable account", |a| {
        if a.disabled {
            format!("{} is disabled: its API keys and sign-in are refused, and its sessions have ended.", a.email)
        } else {
            format!("{} is enabled again.", a.email)
        }
    })
    .await
}

#[server(prefix = "/_fn", endpoint = "admin/account/role")]
pub async fn set_account_role(id: i64, role: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::{
        accounts::Role,
        operator::actions::{self, AccountChange},
    };
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    let Some(role) = Role::parse(&role) else {
        return finish(Flash::error("Choose operator or customer."), &account_page(id)).await;
    };
    if operator.account_id == id && role != Role::Admin {
        return finish(Flash::error("You cannot take the operator role from yourself."), &account_page(id)).await;
    }
    let result = actions::change_account(&state.db, &operator.email, id, AccountChange::Role(role)).await;
    done(result, id, "set role", |a| match a.role {
        Role::Admin => format!("{} is an operator now, from its next page.", a.email),
        Role::Customer => format!("{} is a customer now, from its next page.", a.email),
    })
    .await
}

#[server(prefix = "/_fn", endpoint = "admin/account/reset-link")]
pub async fn create_reset_link(id: i64) -> Result<(), ServerFnError> {
    use crate::{
        context::{Flash, SecretKind},
        server_util::*,
    };
    let operator = super::shared::require_operator()?;
    let state = app_state()?;
    match gateway::operator::actions::reset_link(&state.db, &operator.email, id).await {
        Ok(token) => {
            let link = format!("{}/reset-password?token={token}", state.config.public_base_url);
            let flash = Flash::success(
                "A password-reset link, shown this once: good for an hour and one use. Hand it to the customer yourself (no email is sent).",
            )
            .with_secret(SecretKind::ResetLink, link);
            finish(flash, &account_page(id)).await
        }
        Err(gateway::Error::NotFound) => finish(Flash::error("No such account."), "/admin/accounts").await,
        Err(e) => finish(Flash::error(user_message("create reset link", &e)), &account_page(id)).await,
    }
}

#[component]
pub fn AdminAccountPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let id = use_params_map().with_untracked(|p| p.get("id")).and_then(|id| id.parse::<i64>().ok());
    let data = Resource::new(
        || (),
        move |_| async move {
            match id {
                Some(id) => get_account(id).await,
                None => Ok(None),
            }
        },
    );
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(Some(view)) => view! {
                        <PortalLayout title=view.email.clone() current="/admin/accounts">
                            <AccountDetail a=view/>
                        </PortalLayout>
                    }.into_any(),
                    Ok(None) => view! { <NotFound/> }.into_any(),
                    Err(e) => view! {
                        <PortalLayout title="Account" current="/admin/accounts"><LoadError message=e.to_string()/></PortalLayout>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
    .into_any()
}

#[component]
fn AccountDetail(a: AccountView) -> impl IntoView {
    let id = a.id.to_string();
    let plans = [("starter", "Starter"), ("growth", "Growth"), ("scale", "Scale"), ("none", "No plan")];
    let plan = a.plan.clone();
    view! {
        {a.disabled.then(|| view! {
            <div class="banner banner-error" role="status"><p>"This account is disabled: its API keys and portal sign-in are refused."</p></div>
        })}
        <div class="grid">
            <div class="stat">
                <div class="stat-label">"Plan"</div>
                <div class="stat-value">{a.plan_name.clone()}</div>
                <div class="stat-sub">{a.limits.clone()}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Messages today"</div>
                <div class="stat-value">{a.used_today}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Messages this month"</div>
                <div class="stat-value">{a.used_this_month}</div>
            </div>
            <div class="stat">
                <div class="stat-label">"Role"</div>
                <div class="stat-value">{a.role.clone()}</div>
                <div class="stat-sub">{format!("since {}", a.created)}</div>
            </div>
        </div>
        <section class="card">
            <h2>"Plan and reviewed limits"</h2>
            <form class="form" method="post" action={fn_path::<SetAccountPlan>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id.clone()/>
                <div class="field">
                    <label for="plan">"Plan"</label>
                    <select id="plan" name="plan">
                        {plans.into_iter().map(|(value, label)| {
                            let selected = value == plan;
                            view! { <option value=value selected=selected>{label}</option> }
                        }).collect_view()}
                    </select>
                </div>
                <div class="field">
                    <label for="daily-limit">"Reviewed daily limit"</label>
                    <input id="daily-limit" name="daily_limit" inputmode="numeric" value=a.daily_override.map(|d| d.to_string()).unwrap_or_default()/>
                    <p class="hint">"Empty: the plan's limit."</p>
                </div>
                <div class="field">
                    <label for="monthly-limit">"Reviewed monthly limit"</label>
                    <input id="monthly-limit" name="monthly_limit" inputmode="numeric" value=a.monthly_override.map(|m| m.to_string()).unwrap_or_default()/>
                    <p class="hint">"Empty: the plan's limit."</p>
                </div>
                <button type="submit" class="btn btn-primary">"Save plan and limits"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Modules"</h2>
            <form class="form" method="post" action={fn_path::<SetAccountModules>()}>
                <CsrfField/>
                <input type="hidden" name="id" value=id.clone()/>
                <div class="field">
                    <label for="module-api" class="checkbox">
                        <input id="module-api" type="checkbox" name="api" value="on" checked=a.api_enabled/>
                        " API (send and receive through the JSON API)"
                    </label>
                    <label for="module-3cx" class="checkbox">
                        <input id="module-3cx" type="checkbox" name="threecx" value="on" checked=a.threecx_enabled/>
                        " 3CX middleware"
                    </label>
                </div>
                <button type="submit" class="btn btn-primary">"Save modules"</button>
            </form>
        </section>
        <section class="card">
            <h2>"Access"</h2>
            <div class="actions-row">
                <form class="inline" method="post" action={fn_path::<CreateResetLink>()}>
                    <CsrfField/>
                    <input type="hidden" name="id" value=id.clone()/>
                    <button type="submit" class="btn btn-secondary">"Create a password-reset link"</button>
                </form>
                {(!a.is_self).then(|| {
                    let (to, label) = if a.role == "admin" { ("customer", "Make a customer") } else { ("admin", "Make an operator") };
                    view! {
                        <details class="confirm">
                            <summary class="btn btn-secondary">{label}</summary>
                            <form class="inline" method="post" action={fn_path::<SetAccountRole>()}>
                                <CsrfField/>
                                <input type="hidden" name="id" value=id.clone()/>
                                <input type="hidden" name="role" value=to/>
                                <p>{if to == "admin" { "Operators see every account and can change them." } else { "The account loses the operator console." }}</p>
                                <button type="submit" class="btn btn-primary">{format!("Yes, {}", label.to_lowercase())}</button>
                            </form>
                        </details>
                    }
                })}
                {if a.disabled {
                    view! {
                        <form class="inline" method="post" action={fn_path::<SetAccountDisabled>()}>
                            <CsrfField/>
                            <input type="hidden" name="id" value=id.clone()/>
                            <input type="hidden" name="disable" value="false"/>
                            <button type="submit" class="btn btn-primary">"Enable the account"</button>
                        </form>
                    }.into_any()
                } else if a.is_self {
                    view! { <p class="muted">"This is your own account: another operator can disable it."</p> }.into_any()
                } else {
                    view! {
                        <details class="confirm">
                            <summary class="btn btn-danger">"Disable the account"</summary>
                            <form class="inline" method="post" action={fn_path::<SetAccountDisabled>()}>
                                <CsrfField/>
                                <input type="hidden" name="id" value=id.clone()/>
                                <input type="hidden" name="disable" value="true"/>
                                <p>"Its API keys and sign-in are refused and its sessions end; nothing is deleted."</p>
                                <button type="submit" class="btn btn-danger">"Yes, disable it"</button>
                            </form>
                        </details>
                    }.into_any()
                }}
            </div>
        </section>
        <Section title="Instances" empty="No instances." is_empty=a.instances.is_empty()>
            <Table headers=&["Instance", "Connector", "State", "Alert"]>
                {a.instances.clone().into_iter().map(|(id, name, connector, state, alert)| view! {
                    <tr>
                        <td data-label="Instance">{name}" "<code>{id}</code></td>
                        <td data-label="Connector">{connector}</td>
                        <td data-label="State">{state}</td>
                        <td data-label="Alert">{alert.unwrap_or_default()}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </Section>
        <Section title="API keys" empty="No API keys." is_empty=a.keys.is_empty()>
            <Table headers=&["Name", "Prefix", "Created", "Last used", "State"]>
                {a.keys.clone().into_iter().map(|(name, prefix, created, last_used, revoked)| view! {
                    <tr>
                        <td data-label="Name">{name}</td>
                        <td data-label="Prefix"><code>{format!("{prefix}…")}</code></td>
                        <td data-label="Created">{created}</td>
                        <td data-label="Last used">{last_used}</td>
                        <td data-label="State">{if revoked { "revoked" } else { "active" }}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </Section>
        <Section title="Recent blocked and flagged sends" empty="None." is_empty=a.concerns.is_empty()>
            <Table headers=&["When", "Instance", "Recipient", "Decision", "Code", "Score", "Reasons"]>
                {a.concerns.clone().into_iter().map(|(at, instance, recipient, decision, code, score, reasons)| view! {
                    <tr>
                        <td data-label="When">{at}</td>
                        <td data-label="Instance"><code>{instance}</code></td>
                        <td class="mono" data-label="Recipient">{recipient}</td>
                        <td data-label="Decision">{decision}</td>
                        <td data-label="Code">{code}</td>
                        <td data-label="Score">{score}</td>
                        <td data-label="Reasons">{reasons}</td>
                    </tr>
                }).collect_view()}
            </Table>
        </Section>
        <Section title="Limit requests" empty="This account has not asked for a higher limit." is_empty=a.limit_requests.is_empty()>
            <super::limits::DecidedTable rows=a.limit_requests.clone()/>
        </Section>
        <section class="card">
            <h2>"Audit log"</h2>
            <AuditTable rows=a.audit/>
        </section>
    }
}
