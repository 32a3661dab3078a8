//! "Send a test message" on an instance's overview: the same guarded pipeline as
//! POST /api/send-message, with a dry run that shows the decision and its reasons without
//! sending.
use leptos::prelude::*;

use crate::{
    context::kept_field,
    layout::{fn_path, CsrfField},
};

/// Where the form returns: the instance's overview, whose banner shows the answer.
#[cfg(feature = "ssr")]
fn back(instance_id: &str) -> String {
    if gateway::ids::is_id("inst", instance_id) {
        format!("/instances/{instance_id}/manage?tab=overview")
    } else {
        "/instances".to_string()
    }
}

#[server(prefix = "/_fn", endpoint = "instances/test-send")]
pub async fn test_send(
    instance_id: String,
    phone: String,
    message: String,
    purpose: String,
    dry_run: Option<String>,
) -> Result<(), ServerFnError> {
    use crate::{context::Flash, pages::responsible::outcome_label, server_util::*};
    use gateway::send::{phone::Phone, Channel, Outcome, SendRequest, Sender};
    let user = require_user()?;
    let state = app_state()?;
    let here = back(&instance_id);
    let dry_run = dry_run.is_some();
    // What was typed comes back with every answer, so a dry run can be followed by a real send
    // (or an edit) without typing it again.
    let mut kept = vec![
        ("phone".to_string(), phone.clone()),
        ("message".to_string(), message.clone()),
        ("purpose".to_string(), purpose.clone()),
    ];
    if dry_run {
        kept.push(("dry_run".to_string(), "on".to_string()));
    }
    let Some(account) =
        gateway::accounts::find_by_id(&state.db, user.account_id).await.map_err(|e| read_error("load account", e))?
    else {
        return Err(ServerFnError::new("Please log in."));
    };
    let Some(phone) = Phone::parse(phone.trim()) else {
        let refused = Flash::error("Enter the phone number in international form, such as +9665XXXXXXXX.");
        return finish(refused.with_fields(kept), &here).await;
    };
    if message.trim().is_empty() {
        return finish(Flash::error("Write the message to send.").with_fields(kept), &here).await;
    }
    let request = SendRequest {
        instance_id: instance_id.clone(),
        phone,
        message: Some(message),
        purpose: Some(serde_json::Value::String(purpose)),
        media: None,
        dry_run,
        channel: Channel::Api,
    };
    let flash = match (Sender { state: &state }).send(&account, request, None).await {
        Ok(Ok(Outcome::DryRun(d))) => {
            let decision = match d.decision {
                gateway::policy::Decision::Allow => "it would be sent",
                gateway::policy::Decision::Flag => "it would be sent, flagged with a concern",
                gateway::policy::Decision::Block => "it would be blocked",
            };
            Flash::success(format!(
                "Dry run, nothing was sent: {decision}. Risk score {}. Reasons: {}",
                d.assessment.score,
                reasons_text(d.assessment.reasons.iter().map(|r| r.detail.as_str()))
            ))
        }
        Ok(Ok(Outcome::Sent(sent))) => {
            tracing::info!(account_id = user.account_id, instance_id = %instance_id, message_id = %sent.message_id, "test message sent from the portal");
            Flash::success(format!(
                "Sent: message {} (risk score {}). Follow it on the Messages page.",
                sent.message_id, sent.assessment.score
            ))
        }
        Ok(Ok(Outcome::Earlier(_))) => Flash::error(gateway::error::INTERNAL_MESSAGE),
        Ok(Err(refusal)) => {
            let reasons = refusal.reasons();
            let mut text = format!(
                "{}{} ({}). Risk score {}.",
                if dry_run { "Dry run, nothing was sent: " } else { "" },
                outcome_label(Some(refusal.code()), "block"),
                refusal.code(),
                refusal.risk_score()
            );
            if !reasons.is_empty() {
                text.push_str(&format!(" Reasons: {}", reasons_text(reasons.iter().map(|r| r.detail.as_str()))));
            }
            Flash::error(text)
        }
        Err(e) => Flash::error(user_message("test send", &e)),
    };
    finish(flash.with_fields(kept), &here).await
}

#[cfg(feature = "ssr")]
fn reasons_text<'a>(reasons: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = reasons.collect();
    if all.is_empty() {
        "none.".to_string()
    } else {
        format!("{}.", all.join("; "))
    }
}

const PURPOSES: [(&str, &str); 5] = [
    ("transactional", "Transactional"),
    ("operational", "Operational"),
    ("support", "Support"),
    ("internal_team", "Internal team"),
    ("authentication", "Authentication"),
];

#[component]
pub fn TestSendForm(instance_id: String, is_sandbox: bool) -> impl IntoView {
    let phone = kept_field("phone").unwrap_or_default();
    let message = kept_field("message").unwrap_or_default();
    let purpose = kept_field("purpose").unwrap_or_else(|| "transactional".into());
    let dry_run = kept_field("dry_run").is_some();
    view! {
        <section class="card" id="test-send">
            <h2>"Send a test message"</h2>
            <p class="hint">
                "Goes through every check of POST /api/send-message and counts toward your limits. Tick the dry run to see the decision and its reasons without sending."
                {is_sandbox.then_some(" This is a sandbox: nothing leaves the server, and any number works.")}
            </p>
            <form class="form" method="post" action={fn_path::<TestSend>()}>
                <CsrfField/>
                <input type="hidden" name="instance_id" value=instance_id/>
                <div class="field">
                    <label for="test-phone">"Phone number"</label>
                    <input id="test-phone" name="phone" type="tel" required placeholder="+9665XXXXXXXX" autocomplete="off" value=phone/>
                </div>
                <div class="field">
                    <label for="test-message">"Message"</label>
                    <textarea id="test-message" name="message" required maxlength="4096">{message}</textarea>
                </div>
                <div class="field">
                    <label for="test-purpose">"Purpose"</label>
                    <select id="test-purpose" name="purpose">
                        {PURPOSES.into_iter().map(|(value, label)| view! {
                            <option value=value selected={purpose == value}>{label}</option>
                        }).collect_view()}
                    </select>
                </div>
                <label for="test-dry-run" class="checkbox">
                    <input id="test-dry-run" type="checkbox" name="dry_run" value="on" checked=dry_run/>
                    " Dry run: check only, send nothing"
                </label>
                <button type="submit" class="btn btn-primary">"Send test message"</button>
            </form>
        </section>
    }
}
