//! /reset-password?token=…: the page of a one-time reset link an operator handed over. Using it
//! sets a new password and ends every session of the account; it works once, for an hour.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::layout::{fn_path, CsrfField, PlainLayout};

#[server(prefix = "/_fn", endpoint = "reset-password")]
pub async fn reset_password(token: String, password: String) -> Result<(), ServerFnError> {
    use crate::{context::Flash, server_util::*};
    let state = app_state()?;
    match gateway::password_reset::redeem(&state.db, &token, &password).await {
        Ok(account) => {
            tracing::info!(account_id = account.id, "password set with a reset link");
            // This browser's session (if any) ended with the change, like every other.
            if let Ok(session) = session().await {
                let _ = session.flush().await;
            }
            finish(Flash::success("Your password is set. Log in with it."), "/login").await
        }
        Err(e) => {
            let back = format!("/reset-password?token={}", urlencoding_token(&token));
            finish(Flash::error(user_message("reset password", &e)), &back).await
        }
    }
}

/// Tokens are hex; anything else is dropped rather than echoed into a URL.
#[cfg(feature = "ssr")]
fn urlencoding_token(token: &str) -> String {
    token.chars().filter(char::is_ascii_hexdigit).take(128).collect()
}

#[server(prefix = "/_fn", endpoint = "reset-link-usable")]
pub async fn reset_link_usable(token: String) -> Result<bool, ServerFnError> {
    use crate::server_util::*;
    let state = app_state()?;
    gateway::password_reset::usable(&state.db, &token).await.map_err(|e| read_error("check reset link", e))
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let token = use_query_map().with_untracked(|q| q.get("token")).unwrap_or_default();
    let check = {
        let token = token.clone();
        Resource::new(move || token.clone(), reset_link_usable)
    };
    view! {
        <PlainLayout title="Set a new password">
            <section class="auth-card">
                <h1>"Set a new password"</h1>
                <Suspense fallback=|| view! { <p class="muted">"Checking the link…"</p> }>
                    {move || {
                        let token = token.clone();
                        Suspend::new(async move {
                            match check.await {
                                Ok(true) => view! {
                                    <form class="form" method="post" action={fn_path::<ResetPassword>()}>
                                        <CsrfField/>
                                        <input type="hidden" name="token" value=token/>
                                        <div class="field">
                                            <label for="password">"New password"</label>
                                            <input id="password" name="password" type="password" autocomplete="new-password" minlength="10" required/>
                                            <p class="hint">"At least 10 characters. Every session of this account ends when it is set."</p>
                                        </div>
                                        <button type="submit" class="btn btn-primary">"Set password"</button>
                                    </form>
                                }.into_any(),
                                _ => view! {
                                    <div class="banner banner-error" role="alert">
                                        <p>"This reset link is not valid any more (it was used, or an hour has passed). Ask the operator of this gateway for a new one."</p>
                                    </div>
                                    <p><a href="/login">"Log in"</a></p>
                                }.into_any(),
                            }
                        })
                    }}
                </Suspense>
            </section>
        </PlainLayout>
    }
}
