//! The JSON API around the sandbox: authentication, the error shape, health checks.
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::common::{spawn_app, spawn_app_with, unique_email, Backend, Options, PASSWORD};

on_every_database!(sandbox_link_through_the_api, api_errors_follow_the_spec, revoked_key_is_refused, health_checks);

async fn sandbox_link_through_the_api(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("api"), PASSWORD).await;
    let key = browser.create_api_key("CI").await;
    let instance = browser.create_instance("Sandbox line").await;

    let response = app
        .api()
        .post(app.url("/api/sandbox/link"))
        .bearer_auth(&key)
        .json(&json!({"instance_id": instance, "unknown_field": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["status"], "connected");
    assert!(body["phone"].as_str().unwrap().starts_with("+1555"));
    assert!(browser.get(&format!("/instances/{instance}/manage")).await.body.contains("badge-connected"));
    app.finish().await;
}

async fn api_errors_follow_the_spec(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    let email = unique_email("errors");
    browser.signup(&email, PASSWORD).await;
    let key = browser.create_api_key("CI").await;
    let api = app.api();
    let url = app.url("/api/sandbox/link");

    let check = |response: reqwest::Response, status: StatusCode, code: &'static str, message: &'static str| async move {
        assert_eq!(response.status(), status, "{code}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error"], code);
        assert_eq!(body["message"], message);
        assert!(body["details"].is_object());
        body
    };

    let r = api.post(&url).bearer_auth(&key).body("{}").send().await.unwrap();
    check(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "This endpoint requires application/json.")
        .await;
    let r = api.post(&url).json(&json!({})).send().await.unwrap();
    check(r, StatusCode::UNAUTHORIZED, "invalid_api_key", "A valid API key is required.").await;
    let r = api
        .post(&url)
        .bearer_auth("wag_notarealkeynotarealkeynotarealkeynotare")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    check(r, StatusCode::UNAUTHORIZED, "invalid_api_key", "A valid API key is required.").await;
    let r = api
        .post(&url)
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    check(r, StatusCode::BAD_REQUEST, "invalid_json", "Request body must be valid JSON.").await;
    let r = api.post(&url).bearer_auth(&key).json(&json!({"instance_id": ""})).send().await.unwrap();
    let body = check(
        r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_error",
        "The request payload is missing required fields.",
    )
    .await;
    assert_eq!(body["details"]["fields"], json!(["instance_id"]));
    let r = api.post(&url).bearer_auth(&key).json(&json!({"instance_id": "inst_doesnotexist"})).send().await.unwrap();
    check(r, StatusCode::NOT_FOUND, "invalid_instance", "The requested instance was not found for this API key.").await;

    // The API module switch takes effect at once.
    let off = app.wag(&["admin", "set-module", "--email", &email, "--module", "api", "--enabled", "false"]);
    assert!(off.success, "{off:?}");
    let r = api.post(&url).bearer_auth(&key).json(&json!({"instance_id": "inst_x"})).send().await.unwrap();
    check(r, StatusCode::FORBIDDEN, "module_not_enabled", "API access is not enabled for this account.").await;

    let r = api.get(app.url("/api/nothing-here")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.finish().await;
}

async fn revoked_key_is_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("revoke"), PASSWORD).await;
    let key = browser.create_api_key("Old ERP").await;
    let instance = browser.create_instance("Line").await;
    let call = || {
        app.api().post(app.url("/api/sandbox/link")).bearer_auth(&key).json(&json!({"instance_id": instance})).send()
    };
    assert_eq!(call().await.unwrap().status(), StatusCode::OK);
    let listed = browser.get("/api-keys").await;
    assert!(!listed.body.contains("Last used</th><td>—"), "last use is recorded");

    let key_id = {
        let marker = "name=\"key_id\" value=\"";
        let start = listed.body.find(marker).unwrap() + marker.len();
        listed.body[start..start + listed.body[start..].find('"').unwrap()].to_string()
    };
    let revoked = browser.submit("/api-keys", "/_fn/api-keys/revoke", &[("key_id", key_id.as_str())]).await;
    assert_eq!(revoked.location.as_deref(), Some("/api-keys"));
    assert!(browser.get("/api-keys").await.body.contains("Revoked"));

    let refused = call().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "revoked_api_key");
    assert_eq!(body["message"], "This API key has been revoked.");
    app.finish().await;
}

async fn health_checks(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Options { sandbox_enabled: false, ..Options::default() }).await else {
        return;
    };
    let api = app.api();
    let health = api.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.json::<Value>().await.unwrap()["status"], "ok");
    let ready = api.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
    let root = api.get(app.url("/")).send().await.unwrap();
    assert_eq!(root.status(), StatusCode::OK);
    assert!(root.headers().get("x-request-id").is_some());

    // The docs, the OpenAPI document and the reference page generated from it.
    let openapi: Value = api.get(app.url("/docs/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(openapi["paths"]["/api/send-message"]["post"].is_object());
    // `servers` names this server's public base URL.
    assert_eq!(openapi["servers"][0]["url"], app.url(""), "{}", openapi["servers"]);
    let browser = app.browser();
    let reference = browser.get("/docs/api").await;
    assert_eq!(reference.status, StatusCode::OK);
    assert!(reference.body.contains("POST /api/send-message") && reference.body.contains("message_purpose"));
    for page in [
        "/docs",
        "/docs/quickstart",
        "/docs/connect",
        "/docs/send",
        "/docs/responsible-messaging",
        "/docs/endpoints",
        "/docs/troubleshooting",
        "/acceptable-use",
    ] {
        let docs = browser.get(page).await;
        assert_eq!(docs.status, StatusCode::OK, "{page}");
        // Inline code carries <wbr> break hints; the text a reader sees and copies has none.
        let text = docs.body.replace("<wbr>", "");
        assert!(
            text.contains(&app.base) || page == "/acceptable-use" || page == "/docs/responsible-messaging",
            "{page} uses this server's URL"
        );
        assert!(!docs.body.contains("{{BASE_URL}}"), "{page}");
    }
    assert_eq!(browser.get("/docs/nothing-here").await.status, StatusCode::NOT_FOUND);

    // With the sandbox disabled its endpoints do not exist.
    let r = api.post(app.url("/api/sandbox/link")).json(&json!({"instance_id": "inst_x"})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_found");
    app.finish().await;
}
