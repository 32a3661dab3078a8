//! Instances in the portal: create, manage tabs, linking on the sandbox, settings.
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::common::{spawn_app, unique_email, Backend, PASSWORD};

on_every_database!(instance_lifecycle_in_the_portal, api_keys_are_shown_once_and_stored_hashed);

async fn instance_lifecycle_in_the_portal(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("inst"), PASSWORD).await;

    let empty = browser.get("/instances").await;
    assert!(empty.body.contains("No instances yet."));
    let bad = browser.submit("/instances", "/_fn/instances/create", &[("name", "   ")]).await;
    assert_eq!(bad.location.as_deref(), Some("/instances"));
    assert!(browser.get("/instances").await.body.contains("Give the instance a name"));

    let id = browser.create_instance("Support line").await;
    assert!(id.starts_with("inst_"), "{id}");
    let manage = format!("/instances/{id}/manage");

    let overview = browser.get(&manage).await;
    assert_eq!(overview.status, StatusCode::OK);
    assert!(overview.body.contains("Not linked"));
    assert!(overview.body.contains("sandbox"));
    assert!(overview.body.contains("tab=webhook"), "the webhook tab is there");

    let connect = browser.get(&format!("{manage}?tab=connect")).await;
    assert!(connect.body.contains("<svg"), "a QR code is drawn");
    assert!(connect.body.contains("http-equiv=\"refresh\""), "the page refreshes itself without JavaScript");
    assert!(connect.body.contains("Simulate scan"));

    let scan = browser
        .submit(
            &format!("{manage}?tab=connect"),
            "/_fn/instances/link",
            &[("id", id.as_str()), ("action", "simulate_scan")],
        )
        .await;
    assert_eq!(scan.location.as_deref(), Some(format!("{manage}?tab=connect").as_str()));
    let linked = browser.get(&format!("{manage}?tab=connect")).await;
    assert!(linked.body.contains("badge-connected"), "{}", linked.body);
    assert!(linked.body.contains("+1555"));

    browser
        .submit(
            &format!("{manage}?tab=connect"),
            "/_fn/instances/link",
            &[("id", id.as_str()), ("action", "disconnect")],
        )
        .await;
    assert!(browser.get(&format!("{manage}?tab=connect")).await.body.contains("Reconnect"));
    browser
        .submit(
            &format!("{manage}?tab=connect"),
            "/_fn/instances/link",
            &[("id", id.as_str()), ("action", "reconnect")],
        )
        .await;
    assert!(browser.get(&format!("{manage}?tab=connect")).await.body.contains("badge-connected"));
    browser
        .submit(&format!("{manage}?tab=connect"), "/_fn/instances/link", &[("id", id.as_str()), ("action", "logout")])
        .await;
    assert!(browser.get(&format!("{manage}?tab=connect")).await.body.contains("Simulate scan"), "a new scan is needed");

    // Every status change is recorded with its time.
    let history = gateway::entities::instance_status_change::Entity::find()
        .filter(gateway::entities::instance_status_change::Column::InstanceId.eq(id.clone()))
        .all(&app.conn)
        .await
        .unwrap();
    let statuses: Vec<_> = history.iter().map(|h| h.status.as_str()).collect();
    assert_eq!(statuses, ["unlinked", "connected", "disconnected", "connected", "unlinked"]);
    assert!(history.iter().all(|h| h.changed_at > 0));

    let settings = format!("{manage}?tab=settings");
    browser.submit(&settings, "/_fn/instances/rename", &[("id", id.as_str()), ("name", "Billing line")]).await;
    assert!(browser.get(&manage).await.body.contains("Billing line"));
    browser.submit(&settings, "/_fn/instances/pause", &[("id", id.as_str()), ("paused", "true")]).await;
    assert!(browser.get(&settings).await.body.contains("Resume instance"));
    browser.submit(&settings, "/_fn/instances/pause", &[("id", id.as_str()), ("paused", "false")]).await;
    assert!(browser.get(&settings).await.body.contains("Pause instance"));

    let deleted = browser.submit(&settings, "/_fn/instances/delete", &[("id", id.as_str())]).await;
    assert_eq!(deleted.location.as_deref(), Some("/instances"));
    assert_eq!(browser.get(&manage).await.status, StatusCode::NOT_FOUND);
    app.finish().await;
}

async fn api_keys_are_shown_once_and_stored_hashed(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("keys"), PASSWORD).await;
    assert!(browser.get("/api-keys").await.body.contains("No API keys yet."));

    let key = browser.create_api_key("ERP").await;
    assert!(key.starts_with("wag_") && key.len() == 44, "{key}");
    let again = browser.get("/api-keys").await;
    assert!(!again.body.contains(&key), "the full key is shown exactly once");
    assert!(again.body.contains("ERP"));
    assert!(again.body.contains(&key[..12]), "the list shows the prefix");

    let rows = gateway::entities::api_key::Entity::find().all(&app.conn).await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.key_hash, gateway::api_keys::hash_key(&key));
    assert_eq!(row.prefix, key[..12]);
    for column in [&row.id, &row.name, &row.prefix, &row.key_hash] {
        assert!(!column.contains(&key[12..]), "no column holds the secret part");
    }
    // Nor does the session table keep it once it was shown.
    let sessions = gateway::entities::session::Entity::find().all(&app.conn).await.unwrap();
    assert!(sessions.iter().all(|s| !s.data.contains(&key)));
    app.finish().await;
}
