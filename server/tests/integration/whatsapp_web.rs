//! The `whatsapp-web` connector around the protocol: choosing it, the CLI, what a ban or a
//! forced logout looks like in the portal and in events. Nothing here talks to WhatsApp: the
//! connect tab (which starts a real client) is not opened.
use gateway::connectors::{ConnectorEvent, EventKind};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::common::{spawn_app, spawn_app_with, unique_email, Backend, Options, PASSWORD};

on_every_database!(choosing_the_connector_and_loud_alerts, the_cli_creates_whatsapp_web_instances);

async fn choosing_the_connector_and_loud_alerts(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("ww"), PASSWORD).await;

    let page = browser.get("/instances").await;
    assert!(page.body.contains(r#"<option value="sandbox">"#), "the default, listed first");
    assert!(page.body.contains(r#"<option value="whatsapp-web">"#));
    assert!(page.body.find("value=\"sandbox\"") < page.body.find("value=\"whatsapp-web\""));

    let refused = browser
        .submit("/instances", "/_fn/instances/create", &[("name", "Pigeon"), ("connector", "carrier-pigeon")])
        .await;
    assert_eq!(refused.location.as_deref(), Some("/instances"));
    assert!(browser.get("/instances").await.body.contains("That connector is not available"));

    let default_id = browser.create_instance("Default line").await;
    let posted = browser
        .submit("/instances", "/_fn/instances/create", &[("name", "Phone line"), ("connector", "whatsapp-web")])
        .await;
    assert!(posted.location.as_deref().is_some_and(|l| l.ends_with("/manage?tab=connect")), "{:?}", posted.location);
    let instances = gateway::entities::instance::Entity::find().all(&app.conn).await.unwrap();
    let connector_of = |id: &str| instances.iter().find(|i| i.id == id).map(|i| i.connector.clone());
    assert_eq!(connector_of(&default_id).as_deref(), Some("sandbox"), "no choice made: the sandbox");
    let phone_line = instances.iter().find(|i| i.name == "Phone line").expect("created");
    assert_eq!(phone_line.connector, "whatsapp-web");
    let id = phone_line.id.clone();

    let overview = browser.get(&format!("/instances/{id}/manage")).await;
    assert!(overview.body.contains("WhatsApp Web (linked device of your phone)"), "the portal names the connector");
    assert!(!overview.body.contains("banner-loud"));

    // WhatsApp bans the number for two hours: the registry records what the session reports.
    let registry = app.running.as_ref().unwrap().state.registry.clone();
    let until = gateway::time::now() + 7200;
    let ban = EventKind::TemporarilyBanned {
        reason: "101: you sent too many messages to people who don't have you in their address books".into(),
        until: Some(until),
    };
    registry.handle_event(&ConnectorEvent { instance_id: id.clone(), kind: ban }).await.unwrap();

    let events = gateway::entities::event::Entity::find()
        .filter(gateway::entities::event::Column::InstanceId.eq(id.clone()))
        .order_by_asc(gateway::entities::event::Column::Id)
        .all(&app.conn)
        .await
        .unwrap();
    let last = events.last().expect("an event");
    assert_eq!(last.kind, "instance.connection_updated");
    let payload: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
    assert!(payload["detail"].as_str().unwrap().contains("too many messages"), "{payload}");

    assert!(payload["detail"].as_str().unwrap().contains(&gateway::time::rfc3339(until)), "{payload}");

    // Banned again while already disconnected: no status change, but the event still goes out.
    let again = EventKind::TemporarilyBanned { reason: "102: too many people blocked you".into(), until: Some(until) };
    registry.handle_event(&ConnectorEvent { instance_id: id.clone(), kind: again }).await.unwrap();
    let last = gateway::entities::event::Entity::find()
        .filter(gateway::entities::event::Column::InstanceId.eq(id.clone()))
        .order_by_desc(gateway::entities::event::Column::Id)
        .one(&app.conn)
        .await
        .unwrap()
        .unwrap();
    let payload: serde_json::Value = serde_json::from_str(&last.payload).unwrap();
    assert_eq!(
        (last.kind.as_str(), payload["state"].as_str()),
        ("instance.connection_updated", Some("temporarily_banned"))
    );
    assert_eq!(payload["banned_until"], gateway::time::rfc3339(until));
    assert!(payload["detail"].as_str().unwrap().contains("blocked you"));

    let manage = browser.get(&format!("/instances/{id}/manage")).await;
    assert!(manage.body.contains("banner-loud"), "shown loudly on the instance page");
    assert!(manage.body.contains("blocked you"), "the latest reason");
    let dashboard = browser.get("/dashboard").await;
    assert!(dashboard.body.contains("banner-loud"), "and on the dashboard");
    assert!(dashboard.body.contains("Phone line"));
    assert!(browser.get("/instances").await.body.contains("Action needed"));

    // Connected again: the alert goes.
    let connected = EventKind::Connected { phone: Some("+966500000009".into()) };
    registry.handle_event(&ConnectorEvent { instance_id: id.clone(), kind: connected }).await.unwrap();
    assert!(!browser.get("/dashboard").await.body.contains("banner-loud"));

    // Pausing stops sending only: the number stays linked and connected.
    let settings = format!("/instances/{id}/manage?tab=settings");
    browser.submit(&settings, "/_fn/instances/pause", &[("id", id.as_str()), ("paused", "true")]).await;
    let row = gateway::entities::instance::Entity::find_by_id(id.clone()).one(&app.conn).await.unwrap().unwrap();
    assert!(row.paused);
    assert_eq!((row.status.as_str(), row.linked_phone.as_deref()), ("connected", Some("+966500000009")));

    // The phone removes the linked device: a forced logout, loud too, and in the events.
    let removed = EventKind::LoggedOut { reason: "the phone removed this linked device".into(), forced: true };
    registry.handle_event(&ConnectorEvent { instance_id: id.clone(), kind: removed }).await.unwrap();
    let disconnected = gateway::entities::event::Entity::find()
        .filter(gateway::entities::event::Column::InstanceId.eq(id.clone()))
        .filter(gateway::entities::event::Column::Kind.eq("instance.disconnected"))
        .one(&app.conn)
        .await
        .unwrap()
        .expect("instance.disconnected");
    let payload: serde_json::Value = serde_json::from_str(&disconnected.payload).unwrap();
    assert_eq!(payload["logged_out"], true);
    assert!(payload["reason"].as_str().unwrap().contains("removed this linked device"));
    let manage = browser.get(&format!("/instances/{id}/manage")).await;
    assert!(manage.body.contains("banner-loud") && manage.body.contains("WhatsApp ended the link"));

    // A logout from the portal is the customer's own doing: not an alarm.
    let sandbox_out = EventKind::LoggedOut { reason: "Logged out from the portal.".into(), forced: false };
    registry.handle_event(&ConnectorEvent { instance_id: default_id.clone(), kind: sandbox_out }).await.unwrap();
    assert!(!browser.get(&format!("/instances/{default_id}/manage")).await.body.contains("banner-loud"));

    let deleted = browser
        .submit(&format!("/instances/{id}/manage?tab=settings"), "/_fn/instances/delete", &[("id", id.as_str())])
        .await;
    assert_eq!(deleted.location.as_deref(), Some("/instances"));
    assert_eq!(browser.get(&format!("/instances/{id}/manage")).await.status, StatusCode::NOT_FOUND);
    app.finish().await;
}

async fn the_cli_creates_whatsapp_web_instances(backend: Backend) {
    let options = Options {
        sandbox_enabled: false,
        // Repeated here because the CLI runs get only these.
        env: vec![("WAG_SANDBOX_ENABLED", "false".into()), ("WAG_WHATSAPP_WEB_ENABLED", "true".into())],
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let email = unique_email("ww-cli");
    assert!(app.wag(&["admin", "create-user", "--email", &email, "--password", PASSWORD]).success);
    let out =
        app.wag(&["admin", "create-instance", "--email", &email, "--name", "Phone", "--connector", "whatsapp-web"]);
    assert!(out.success, "{out:?}");
    let id = out.last_line();
    let row = gateway::entities::instance::Entity::find_by_id(id.clone()).one(&app.conn).await.unwrap().unwrap();
    assert_eq!(row.connector, "whatsapp-web");

    let sandbox = app.wag(&["admin", "create-instance", "--email", &email, "--name", "Sandbox"]);
    assert!(!sandbox.success);
    assert!(sandbox.stderr.contains("sandbox connector is not enabled"), "{}", sandbox.stderr);
    assert!(sandbox.stderr.contains("Enabled: whatsapp-web"), "{}", sandbox.stderr);

    // With the sandbox off, the portal offers WhatsApp Web alone and says so.
    let browser = app.browser();
    browser.login(&email, PASSWORD).await;
    let page = browser.get("/instances").await;
    assert!(page.body.contains("Connector: WhatsApp Web"), "{}", page.body);
    assert!(!page.body.contains("<select id=\"instance-connector\""));
    app.finish().await;
}
