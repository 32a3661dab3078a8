//! Instances in the portal: create, manage tabs, linking on the sandbox, settings.
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::common::{spawn_app, spawn_app_with, unique_email, Backend, Options, PASSWORD};

on_every_database!(instance_lifecycle_in_the_portal, api_keys_are_shown_once_and_stored_hashed, accounts_are_capped);

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
    assert!(connect.body.contains("No phone is needed."), "a sandbox says so plainly");
    // Simulate scan is the sandbox's primary action, offered before the (simulated) code.
    let scan_button = connect.body.find(">Simulate scan<").expect("Simulate scan is offered");
    assert!(connect.body[..scan_button].rfind("btn btn-primary") > connect.body[..scan_button].rfind("<form"));
    assert!(scan_button < connect.body.find("<svg").unwrap());

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

    let posted = browser.submit("/api-keys", "/_fn/api-keys/create", &[("name", "ERP")]).await;
    assert_eq!(posted.location.as_deref(), Some("/api-keys"));
    // Between the post and the page that shows it, the key waits in the session, encrypted.
    let waiting: Vec<String> =
        gateway::entities::session::Entity::find().all(&app.conn).await.unwrap().into_iter().map(|s| s.data).collect();
    let key = browser.get("/api-keys").await.new_api_key().expect("the new key is shown");
    assert!(key.starts_with("wag_") && key.len() == 44, "{key}");
    assert!(waiting.iter().any(|data| data.contains("flash")), "the banner waited in the session");
    assert!(waiting.iter().all(|data| !data.contains(&key[12..])), "the waiting key is not plain text");
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

/// What one account may create is capped (WAG_MAX_*_PER_ACCOUNT); parallel creates cannot pass
/// a cap together.
async fn accounts_are_capped(backend: Backend) {
    let env = vec![
        ("WAG_MAX_INSTANCES_PER_ACCOUNT", "1".to_string()),
        ("WAG_MAX_API_KEYS_PER_ACCOUNT", "2".to_string()),
        ("WAG_MAX_WEBHOOKS_PER_ACCOUNT", "1".to_string()),
        ("WAG_ALLOW_PRIVATE_WEBHOOK_TARGETS", "true".to_string()),
    ];
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let browser = app.browser();
    let email = unique_email("caps");
    browser.signup(&email, PASSWORD).await;

    let instance = browser.create_instance("Only line").await;
    browser.submit("/instances", "/_fn/instances/create", &[("name", "Second line")]).await;
    let page = browser.get("/instances").await.body;
    assert!(page.contains("reached its limit of 1 instances"), "the cap is explained");
    assert!(!page.contains("Second line"));

    browser.create_api_key("First").await;
    browser.create_api_key("Second").await;
    browser.submit("/api-keys", "/_fn/api-keys/create", &[("name", "Third")]).await;
    let page = browser.get("/api-keys").await;
    assert!(page.body.contains("reached its limit of 2 active API keys"));
    assert!(page.new_api_key().is_none(), "no third key");

    let tab = format!("/instances/{instance}/manage?tab=webhook");
    for (n, expected) in [(1, true), (2, false)] {
        let url = format!("http://127.0.0.1:9/hook{n}");
        let fields = [("instance_id", instance.as_str()), ("url", url.as_str()), ("events[0]", "message.received")];
        browser.submit(&tab, "/_fn/webhooks/add", &fields).await;
        let page = browser.get(&tab).await;
        assert_eq!(page.secret("new-webhook-secret").is_some(), expected, "destination {n}");
        assert!(page.new_api_key().is_none(), "a signing secret is not shown as an API key");
        assert_eq!(page.body.contains("reached its limit of 1 webhook destinations"), !expected);
    }

    // Twelve parallel creates against a cap of three: exactly three keys.
    let account = gateway::accounts::find_by_email(&app.conn, &email).await.unwrap().unwrap();
    let other = unique_email("caps-race");
    browser.logout().await;
    browser.signup(&other, PASSWORD).await;
    let racer = gateway::accounts::find_by_email(&app.conn, &other).await.unwrap().unwrap();
    let attempts = (0..12).map(|i| {
        let conn = app.conn.clone();
        tokio::spawn(async move { gateway::api_keys::create_capped(&conn, racer.id, &format!("k{i}"), Some(3)).await })
    });
    let results: Vec<_> = futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3);
    assert!(results.iter().all(|r| r.is_ok() || matches!(r, Err(gateway::Error::Refused(_)))));
    let keys = gateway::entities::api_key::Entity::find()
        .filter(gateway::entities::api_key::Column::AccountId.eq(racer.id))
        .all(&app.conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 3);
    assert_ne!(account.id, racer.id);
    app.finish().await;
}
