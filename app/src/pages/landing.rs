//! GET /: the public landing page (also the spec's reachability check).
use leptos::prelude::*;

use crate::{context::page_context, layout::PlainLayout};

#[component]
pub fn LandingPage() -> impl IntoView {
    let ctx = page_context();
    let actions = if ctx.user.is_some() {
        view! { <a class="btn btn-primary" href="/dashboard">"Go to your dashboard"</a> }.into_any()
    } else {
        view! {
            {ctx.registration_enabled.then(|| view! { <a class="btn btn-primary" href="/signup">"Create an account"</a> })}
            <a class="btn btn-secondary" href="/login">"Log in"</a>
        }
        .into_any()
    };
    view! {
        <PlainLayout title="">
            <section class="hero">
                <h1>"WA Gateway"</h1>
                <p class="lead">"A WhatsApp gateway for transactional, operational, support, authentication and internal-team messages — with responsible-messaging guardrails built in."</p>
                <div class="hero-actions">{actions}<a class="btn btn-secondary" href="/docs">"Read the docs"</a></div>
            </section>
            <ul class="features">
                <li><h2>"Your own numbers"</h2><p>"Link WhatsApp numbers as instances and watch their status from the portal."</p></li>
                <li><h2>"A guarded send API"</h2><p>"One JSON endpoint with message purposes, opt-out suppression, content checks, exact fair-use limits and a dry run."</p></li>
                <li><h2>"Signed webhooks"</h2><p>"Received messages, receipts, opt-outs and status changes reach your CRM, ERP, n8n or Make, signed and retried until delivered."</p></li>
                <li><h2>"A sandbox to start with"</h2><p>"Try every step without a phone: sandbox instances link with one click."</p></li>
                <li><h2>"No spam cannon"</h2><p>"Marketing, cold outreach and bulk campaigns are refused by design. See the "<a href="/acceptable-use">"acceptable use policy"</a>"."</p></li>
            </ul>
        </PlainLayout>
    }
}
