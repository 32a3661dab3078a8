//! Another account's objects are "not found" on every route that takes an id.
use reqwest::StatusCode;
use serde_json::json;

use crate::common::{spawn_app, unique_email, Backend, PASSWORD};

on_every_database!(another_accounts_objects_are_not_found);

async fn another_accounts_objects_are_not_found(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let alice = app.browser();
    let alice_email = unique_email("alice");
    alice.signup(&alice_email, PASSWORD).await;
    let alice_instance = alice.create_instance("Alice line").await;
    let alice_key = alice.create_api_key("Alice ERP").await;
    let alice_account = gateway::accounts::find_by_email(&app.conn, &alice_email).await.unwrap().unwrap();
    let alice_key_id = gateway::api_keys::list(&app.conn, alice_account.id).await.unwrap()[0].id.clone();

    let mallory = app.browser();
    mallory.signup(&unique_email("mallory"), PASSWORD).await;
    let mallory_key = mallory.create_api_key("Mallory").await;

    // Pages.
    for tab in ["overview", "connect", "settings"] {
        let page = mallory.get(&format!("/instances/{alice_instance}/manage?tab={tab}")).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "tab {tab}");
        assert!(!page.body.contains("Alice line"));
    }
    assert!(!mallory.get("/instances").await.body.contains("Alice line"));
    assert!(!mallory.get("/api-keys").await.body.contains("Alice ERP"));
    assert!(!mallory.get("/dashboard").await.body.contains("Alice line"));

    // Server functions with an id.
    let id = alice_instance.as_str();
    let manage = "/instances";
    for (action, fields) in [
        ("/_fn/instances/link", vec![("id", id), ("action", "simulate_scan")]),
        ("/_fn/instances/rename", vec![("id", id), ("name", "Owned")]),
        ("/_fn/instances/pause", vec![("id", id), ("paused", "true")]),
        ("/_fn/instances/delete", vec![("id", id)]),
        ("/_fn/api-keys/revoke", vec![("key_id", alice_key_id.as_str())]),
    ] {
        let posted = mallory.submit(manage, action, &fields).await;
        assert!(posted.status.is_redirection(), "{action}");
        let banner = mallory.get(posted.location.as_deref().unwrap()).await;
        assert!(banner.body.contains("Not found."), "{action} answers not found");
    }
    let alice_view = alice.get(&format!("/instances/{alice_instance}/manage")).await;
    assert_eq!(alice_view.status, StatusCode::OK, "Alice's instance still exists");
    assert!(alice_view.body.contains("Alice line"), "not renamed");
    assert!(alice_view.body.contains("Not linked"), "not linked by Mallory");
    assert!(!alice_view.body.contains("badge-paused"), "not paused");

    // The server function behind the manage page answers "not found" for Mallory as well.
    let token = mallory.get("/instances").await.csrf_token().unwrap();
    let read = mallory
        .client
        .post(app.url("/_fn/instances/manage"))
        .form(&[("id", id), ("with_link", "false"), ("csrf_token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.text().await.unwrap(), "null");

    // The API: Mallory's key cannot reach Alice's instance; Alice's key still works.
    let api = app.api();
    let link = |key: String| {
        api.post(app.url("/api/sandbox/link")).bearer_auth(key).json(&json!({"instance_id": alice_instance})).send()
    };
    let refused = link(mallory_key).await.unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "invalid_instance");
    assert_eq!(link(alice_key).await.unwrap().status(), StatusCode::OK, "Alice's key was not revoked");
    app.finish().await;
}
