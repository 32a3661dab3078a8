//! /admin, the operator's overview: an operator sees the whole gateway (accounts, instances by
//! state, messages and decisions of the last 24 hours, the webhook backlog); a customer gets the
//! same 404 as for an unknown page, and the overview's server function answers nothing.
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{spawn_app, unique_email, Backend, PASSWORD};

on_every_database!(operators_see_the_gateway_customers_get_a_404);

async fn operators_see_the_gateway_customers_get_a_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let customer = app.browser();
    customer.signup(&unique_email("tenant"), PASSWORD).await;
    let key = customer.create_api_key("ERP").await;
    let instance = customer.create_instance("Front desk").await;
    let api = app.api();
    let linked =
        api.post(app.url("/api/sandbox/link")).bearer_auth(&key).json(&json!({"instance_id": instance})).send();
    assert_eq!(linked.await.unwrap().status(), StatusCode::OK);
    let send = json!({
        "instance_id": instance,
        "phone": "+966501234567",
        "message": "Your order #2041 has been shipped.",
        "message_purpose": "transactional",
    });
    let sent = api.post(app.url("/api/send-message")).bearer_auth(&key).json(&send).send().await.unwrap();
    assert_eq!(sent.status(), StatusCode::OK);

    // A customer: the page is "not found", like any unknown page; the function says nothing.
    let page = customer.get("/admin").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("Operator overview"));
    assert!(!customer.get("/dashboard").await.body.contains("href=\"/admin\""), "no operator link for customers");
    let unknown = customer.get("/no-such-page").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let called = customer.post_raw("/dashboard", "/_fn/admin_overview", &[]).await;
    assert!(!called.body.contains("accounts") && !called.body.contains("webhook_backlog"), "{}", called.body);

    // An operator.
    let email = unique_email("operator");
    let made = app.wag_with_input(&["admin", "create-user", "--email", &email, "--admin"], Some(PASSWORD));
    assert!(made.success, "{}", made.stderr);
    let operator = app.browser();
    operator.login(&email, PASSWORD).await;
    let page = operator.get("/admin").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Operator overview"));
    assert!(operator.get("/dashboard").await.body.contains("href=\"/admin\""), "operators have the link");
    let text = page.body.replace("<!-- -->", "");
    assert!(text.contains(">2</div>"), "two accounts: {text}");
    assert!(text.contains("1 / 1"), "one of one instance connected");
    assert!(text.contains("<td>sandbox</td><td>connected</td><td>1</td>"), "{text}");
    assert!(text.contains("1 allowed"), "the send's decision is counted");
    assert!(text.contains("aria-label=\"Messages per hour:"), "the chart is drawn on the server");
    app.finish().await;
}
