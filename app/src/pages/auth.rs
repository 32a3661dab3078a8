//! Sign up, log in, log out.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    context::{kept_field, page_context},
    layout::{fn_path, CsrfField, PlainLayout},
};

#[server(prefix = "/_fn", endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let state = app_state()?;
    let ip = page_context().client_ip;
    let devices = gateway::login_throttle::DeviceKey::derive(&state.config.master_key);
    let secure = state.config.public_base_url.starts_with("https://");
    let device = device_cookie(secure).and_then(|cookie| devices.device_for(&cookie, &email));
    match gateway::accounts::authenticate(&state.db, &email, &password, &ip, device.as_deref()).await {
        Ok(account) => {
            sign_in(&account).await?;
            finish(Flash::success("You are logged in."), &safe_next(next.as_deref())).await
        }
        Err(e) => {
            // The email comes back so a mistyped password costs one field; the password never does.
            let refused = Flash::error(user_message("login", &e)).with_fields(kept_login(&email, next.as_deref()));
            finish(refused, "/login").await
        }
    }
}

#[server(prefix = "/_fn", endpoint = "signup")]
pub async fn signup(email: String, password: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    use gateway::accounts::{self, Email, NewAccount, NewPassword, Role};
    let state = app_state()?;
    // What a refused sign-up shows again: the email, never the password.
    let kept = vec![("email".to_string(), email.clone())];
    let refused = |message: String| Flash::error(message).with_fields(kept.clone());
    if !state.config.registration_enabled {
        return finish(Flash::error("Sign-up is closed on this server. Ask your operator for an account."), "/signup")
            .await;
    }
    let parsed = Email::parse(&email).and_then(|email| Ok((email, NewPassword::parse(&password)?)));
    let (email, password) = match parsed {
        Ok(v) => v,
        Err(e) => return finish(refused(user_message("signup", &e)), "/signup").await,
    };
    let client_ip = crate::context::page_context().client_ip;
    if let Err(e) = gateway::login_throttle::count_sign_up(&state.db, &client_ip).await {
        return finish(refused(user_message("signup", &e)), "/signup").await;
    }
    let new = NewAccount {
        email,
        password,
        role: Role::Customer,
        plan: state.config.default_plan,
        api_enabled: true,
        threecx_enabled: false,
    };
    match accounts::create(&state.db, new).await {
        Ok(account) => {
            tracing::info!(account_id = account.id, "account created by sign-up");
            sign_in(&account).await?;
            finish(
                Flash::success("Welcome to WA Gateway. Create an API key and an instance to get started."),
                "/dashboard",
            )
            .await
        }
        Err(e) => finish(refused(user_message("signup", &e)), "/signup").await,
    }
}

#[server(prefix = "/_fn", endpoint = "logout")]
pub async fn logout() -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let session = session().await?;
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "ending a session failed");
    }
    finish(Flash::success("You are logged out."), "/login").await
}

/// The login fields a refused login shows again (the login page also keeps where it was going).
#[cfg(feature = "ssr")]
fn kept_login(email: &str, next: Option<&str>) -> Vec<(String, String)> {
    let mut kept = vec![("email".to_string(), email.to_string())];
    if let Some(next) = next.filter(|n| !n.is_empty()) {
        kept.push(("next".to_string(), next.to_string()));
    }
    kept
}

/// Starts a fresh session for `account`: a new session id (so a planted id is useless) and a
/// new CSRF token.
#[cfg(feature = "ssr")]
async fn sign_in(account: &gateway::accounts::Account) -> Result<(), ServerFnError> {
    use crate::{context::session_keys, server_util::session};
    let session = session().await?;
    let store_error = |e: tower_sessions::session::Error| {
        tracing::error!(error = %e, "writing the session failed");
        ServerFnError::new(gateway::error::INTERNAL_MESSAGE)
    };
    session.cycle_id().await.map_err(store_error)?;
    session.insert(session_keys::ACCOUNT_ID, account.id).await.map_err(store_error)?;
    session.insert(session_keys::PASSWORD_CHANGED_AT, account.password_changed_at).await.map_err(store_error)?;
    session.insert(session_keys::CSRF, new_csrf_token()).await.map_err(store_error)?;
    remember_device(account);
    Ok(())
}

/// Gives the browser a device cookie for the account it just signed in to (see
/// `gateway::login_throttle::DeviceKey`): a lock others cause on the email will not shut it out.
#[cfg(feature = "ssr")]
fn remember_device(account: &gateway::accounts::Account) {
    use crate::server_util::app_state;
    let (Ok(state), Some(response)) = (app_state(), use_context::<leptos_axum::ResponseOptions>()) else { return };
    let secure = state.config.public_base_url.starts_with("https://");
    let value = gateway::login_throttle::DeviceKey::derive(&state.config.master_key).issue(&account.email);
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        gateway::login_throttle::device_cookie_name(secure),
        gateway::login_throttle::DEVICE_COOKIE_DAYS * 86_400,
        if secure { "; Secure" } else { "" }
    );
    match http::HeaderValue::from_str(&cookie) {
        Ok(value) => response.append_header(http::header::SET_COOKIE, value),
        Err(e) => tracing::error!(error = %e, "a device cookie was not a valid header"),
    }
}

/// The request's device cookie, if it sent one.
#[cfg(feature = "ssr")]
fn device_cookie(secure: bool) -> Option<String> {
    let parts = use_context::<http::request::Parts>()?;
    crate::server_util::cookie_value(&parts.headers, gateway::login_throttle::device_cookie_name(secure))
}

#[cfg(feature = "ssr")]
pub fn new_csrf_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Only same-site paths are followed after login, so a link cannot bounce users elsewhere.
#[cfg(feature = "ssr")]
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            path.to_string()
        }
        _ => "/dashboard".to_string(),
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let ctx = page_context();
    let next = use_query_map().with_untracked(|q| q.get("next")).or_else(|| kept_field("next")).unwrap_or_default();
    let email = kept_field("email").unwrap_or_default();
    view! {
        <PlainLayout title="Log in">
            <section class="auth-card">
                <h1>"Log in"</h1>
                <form class="form" method="post" action={fn_path::<Login>()}>
                    <CsrfField/>
                    <input type="hidden" name="next" value=next/>
                    <div class="field">
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" autocomplete="username" required value=email/>
                    </div>
                    <div class="field">
                        <label for="password">"Password"</label>
                        <input id="password" name="password" type="password" autocomplete="current-password" required/>
                    </div>
                    <button type="submit" class="btn btn-primary">"Log in"</button>
                </form>
                {ctx.registration_enabled.then(|| view! {
                    <p class="auth-alt">"New here? " <a href="/signup">"Create an account"</a></p>
                })}
            </section>
        </PlainLayout>
    }
}

#[component]
pub fn SignupPage() -> impl IntoView {
    let ctx = page_context();
    let email = kept_field("email").unwrap_or_default();
    view! {
        <PlainLayout title="Create account">
            <section class="auth-card">
                <h1>"Create your account"</h1>
                {if ctx.registration_enabled {
                    view! {
                        <form class="form" method="post" action={fn_path::<Signup>()}>
                            <CsrfField/>
                            <div class="field">
                                <label for="email">"Email"</label>
                                <input id="email" name="email" type="email" autocomplete="username" required value=email/>
                            </div>
                            <div class="field">
                                <label for="password">"Password"</label>
                                <input id="password" name="password" type="password" autocomplete="new-password"
                                    minlength=gateway_min_password() required/>
                                <p class="hint">{format!("At least {} characters.", gateway_min_password())}</p>
                            </div>
                            <p class="hint">
                                "WA Gateway is for transactional, operational, support, authentication and internal-team messages. By creating an account you accept the "
                                <a href="/acceptable-use">"acceptable use policy"</a>"."
                            </p>
                            <button type="submit" class="btn btn-primary">"Create account"</button>
                        </form>
                    }.into_any()
                } else {
                    view! { <p>"Sign-up is closed on this server. Ask your operator for an account."</p> }.into_any()
                }}
                <p class="auth-alt">"Already have an account? " <a href="/login">"Log in"</a></p>
            </section>
        </PlainLayout>
    }
}

/// Mirrors the domain's password policy for the form hint (the domain enforces it).
fn gateway_min_password() -> usize {
    10
}
