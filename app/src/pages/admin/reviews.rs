//! /admin/reviews: the review queue. Instances paused for responsible-messaging review, oldest
//! first, with the blocked sends before the pause (masked numbers, reasons, scores); resume, or
//! keep paused with a note the customer sees on the instance.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    fleet::{FleetRowView, ReviewInstance},
    shared::{is_operator, LoadError, Table},
};
use crate::{
    layout::{fn_path, CsrfField, PortalLayout},
    pages::not_found::NotFound,
};

#[cfg(feature = "ssr")]
const QUEUE_SIZE: u64 = 100;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    pub at: String,
    pub recipient: String,
    pub purpose: String,
    pub score: i32,
    /// (code, detail)
    pub reasons: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingView {
    pub row: FleetRowView,
    pub paused_at: String,
    pub blocks: Vec<BlockView>,
}

#[server(prefix = "/_fn", endpoint = "admin/reviews")]
pub async fn get_review_queue() -> Result<Vec<WaitingView>, ServerFnError> {
    use crate::server_util::*;
    super::shared::require_operator()?;
    let state = app_state()?;
    let queue = gateway::operator::fleet::review_queue(&state.db, QUEUE_SIZE)
        .await
        .map_err(|e| read_error("read review queue", e))?;
    Ok(queue
        .into_iter()
        .map(|w| WaitingView {
            paused_at: super::shared::when(w.row.instance.review_paused_at),
            blocks: w
                .blocks
                .into_iter()
                .map(|b| BlockView {
                    at: gateway::time::display(b.at),
                    recipient: b.recipient_masked,
                    purpose: b.purpose,
                    score: b.risk_score,
                    reasons: b.reasons.into_iter().map(|r| (r.code, r.detail)).collect(),
                })
                .collect(),
            row: FleetRowView::from_row(w.row),
        })
        .collect())
}

#[component]
pub fn AdminReviewsPage() -> impl IntoView {
    if !is_operator() {
        return view! { <NotFound/> }.into_any();
    }
    let data = Resource::new(|| (), |_| get_review_queue());
    view! {
        <PortalLayout title="Review queue" current="/admin/reviews" lead="Instances paused for responsible-messaging review, oldest first. Their sends answer 423 instance_paused_for_review until you resume them.">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match data.await {
                        Ok(queue) if queue.is_empty() => view! {
                            <section class="card"><div class="empty-state"><p><strong>"Nothing waits for review."</strong></p></div></section>
                        }.into_any(),
                        Ok(queue) => queue.into_iter().map(|w| view! { <Waiting w/> }).collect_view().into_any(),
                        Err(e) => view! { <LoadError message=e.to_string()/> }.into_any(),
                    }
                })}
            </Suspense>
        </PortalLayout>
    }
    .into_any()
}

#[component]
fn Waiting(w: WaitingView) -> impl IntoView {
    let instance = w.row.instance.clone();
    let id = instance.id.clone();
    view! {
        <section class="card">
            <h2>{instance.name.clone()}" "<code>{id.clone()}</code></h2>
            <dl class="details">
                <dt>"Account"</dt><dd><a href=format!("/admin/accounts/{}", w.row.account_id)>{w.row.account_email.clone()}</a></dd>
                <dt>"Paused"</dt><dd>{w.paused_at.clone()}</dd>
                <dt>"Reason"</dt><dd>{instance.review_reason.clone().unwrap_or_default()}</dd>
                <dt>"Recent sends"</dt><dd>{w.row.failed.clone()}</dd>
                {instance.review_note.clone().map(|(note, at)| view! { <dt>"Your last note"</dt><dd>{format!("{note} ({at})")}</dd> })}
            </dl>
            {if w.blocks.is_empty() {
                view! { <p class="muted">"No content-policy block before the pause: an operator paused it."</p> }.into_any()
            } else {
                view! {
                    <Table headers=&["When", "Recipient", "Purpose", "Score", "Reasons"]>
                        {w.blocks.into_iter().map(|b| view! {
                            <tr>
                                <td data-label="When">{b.at}</td>
                                <td class="mono" data-label="Recipient">{b.recipient}</td>
                                <td data-label="Purpose">{b.purpose}</td>
                                <td data-label="Score">{b.score}</td>
                                <td data-label="Reasons">
                                    <ul class="plain">
                                        {b.reasons.into_iter().map(|(code, detail)| view! { <li><code>{code}</code>" "{detail}</li> }).collect_view()}
                                    </ul>
                                </td>
                            </tr>
                        }).collect_view()}
                    </Table>
                }.into_any()
            }}
            <div class="actions-row">
                <form class="form form-inline" method="post" action={fn_path::<ReviewInstance>()}>
                    <CsrfField/>
                    <input type="hidden" name="id" value=id.clone()/>
                    <input type="hidden" name="action" value="resume"/>
                    <input type="hidden" name="back" value="/admin/reviews"/>
                    <div class="field">
                        <label for=format!("resume-note-{id}")>"Note for the customer (optional)"</label>
                        <input id=format!("resume-note-{id}") name="note" maxlength="1000"/>
                    </div>
                    <button type="submit" class="btn btn-primary">"Resume"</button>
                </form>
                <form class="form form-inline" method="post" action={fn_path::<ReviewInstance>()}>
                    <CsrfField/>
                    <input type="hidden" name="id" value=id.clone()/>
                    <input type="hidden" name="action" value="keep"/>
                    <input type="hidden" name="back" value="/admin/reviews"/>
                    <div class="field">
                        <label for=format!("keep-note-{id}")>"Why it stays paused (the customer sees it)"</label>
                        <input id=format!("keep-note-{id}") name="note" required maxlength="1000"/>
                    </div>
                    <button type="submit" class="btn btn-danger">"Keep paused"</button>
                </form>
            </div>
        </section>
    }
}
