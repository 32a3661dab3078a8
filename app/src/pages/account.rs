//! Account settings: change the password.
use leptos::prelude::*;

use crate::{
    context::page_context,
    layout::{fn_path, CsrfField, PortalLayout},
};

#[server(prefix = "/_fn", endpoint = "account/password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    confirm_password: String,
) -> Result<(), ServerFnError> {
    use crate::{
        context::{session_keys, Flash},
        server_util::*,
    };
    let user = require_user()?;
    let state = app_state()?;
    if new_password != confirm_password {
        return finish(Flash::error("The new password and its confirmation differ."), "/account").await;
    }
    match gateway::accounts::change_password(&state.db, user.account_id, &current_password, &new_password).await {
        Ok(()) => {
            // Other sessions of this account end (they carry the old password time); this one
            // continues under a new id.
            let account = gateway::accounts::find_by_id(&state.db, user.account_id).await.ok().flatten();
            let session = session().await?;
            if let Some(account) = account {
                let _ = session.cycle_id().await;
                let _ = session.insert(session_keys::PASSWORD_CHANGED_AT, account.password_changed_at).await;
            }
            tracing::info!(account_id = user.account_id, "password changed");
            finish(Flash::success("Password changed. Other signed-in browsers have been logged out."), "/account").await
        }
        Err(e) => finish(Flash::error(user_message("change password", &e)), "/account").await,
    }
}

#[component]
pub fn AccountPage() -> impl IntoView {
    let email = page_context().user.map(|u| u.email).unwrap_or_default();
    view! {
        <PortalLayout title="Account" current="/account">
            <section class="card">
                <dl class="details"><dt>"Email"</dt><dd>{email}</dd></dl>
            </section>
            <section class="card">
                <h2>"Change password"</h2>
                <form class="form" method="post" action={fn_path::<ChangePassword>()}>
                    <CsrfField/>
                    <div class="field">
                        <label for="current-password">"Current password"</label>
                        <input id="current-password" name="current_password" type="password" autocomplete="current-password" required/>
                    </div>
                    <div class="field">
                        <label for="new-password">"New password"</label>
                        <input id="new-password" name="new_password" type="password" autocomplete="new-password" minlength="10" required/>
                        <p class="hint">"At least 10 characters."</p>
                    </div>
                    <div class="field">
                        <label for="confirm-password">"Confirm new password"</label>
                        <input id="confirm-password" name="confirm_password" type="password" autocomplete="new-password" minlength="10" required/>
                    </div>
                    <button type="submit" class="btn btn-primary">"Change password"</button>
                </form>
            </section>
        </PortalLayout>
    }
}
