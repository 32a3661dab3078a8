//! Sign-up, login, logout, wrong passwords, CSRF, session rotation, password change.
use reqwest::StatusCode;

use crate::common::{spawn_app, spawn_app_with, unique_email, Backend, Options, PASSWORD};

on_every_database!(
    signup_login_logout,
    wrong_password_and_unknown_email_answer_the_same,
    repeated_failures_lock_the_email,
    csrf_token_is_required_on_every_server_function,
    session_id_rotates_at_login,
    logout_invalidates_the_old_cookie,
    password_change_ends_other_sessions,
    registration_can_be_closed,
    sign_ups_from_one_network_are_limited,
    pages_forbid_inline_script_and_https_pins_cookies_to_the_host,
    the_owners_browser_is_not_locked_out_by_someone_elses_guesses,
);

async fn signup_login_logout(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = unique_email("owner");
    let browser = app.browser();

    let landing = browser.get("/").await;
    assert_eq!(landing.status, StatusCode::OK);
    assert!(landing.body.contains("WA Gateway"));

    let signed_up = browser.signup(&email, PASSWORD).await;
    assert_eq!(signed_up.status, StatusCode::FOUND);
    assert_eq!(signed_up.location.as_deref(), Some("/dashboard"));
    let dashboard = browser.get("/dashboard").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.body.contains(&email), "dashboard shows who is signed in");
    assert!(dashboard.body.contains("Starter"), "sign-ups get the default plan");
    assert!(dashboard.body.contains("0 / 100"), "today's usage against the daily limit");

    let duplicate = app.browser().signup(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(duplicate.location.as_deref(), Some("/signup"));

    let logged_out = browser.logout().await;
    assert_eq!(logged_out.location.as_deref(), Some("/login"));
    let after = browser.get("/dashboard").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert!(after.location.unwrap().starts_with("/login?next="));

    let logged_in = browser.login(&email, PASSWORD).await;
    assert_eq!(logged_in.location.as_deref(), Some("/dashboard"));
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK);

    // `next` only follows same-site paths; control characters and other hosts go to the dashboard.
    for (next, expected) in [
        ("/api-keys", "/api-keys"),
        ("/\na", "/dashboard"),
        ("/\t/evil.example", "/dashboard"),
        ("//evil.example", "/dashboard"),
    ] {
        let other = app.browser();
        let landed = other
            .submit("/login", "/_fn/login", &[("email", email.as_str()), ("password", PASSWORD), ("next", next)])
            .await;
        assert_eq!(landed.location.as_deref(), Some(expected), "next={next:?}");
    }
    app.finish().await;
}

async fn wrong_password_and_unknown_email_answer_the_same(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = unique_email("user");
    app.browser().signup(&email, PASSWORD).await;

    let wrong = app.browser();
    let posted = wrong.login(&email, "not the password").await;
    assert_eq!(posted.location.as_deref(), Some("/login"));
    let wrong_page = wrong.get("/login").await;
    assert!(wrong_page.body.contains("The email or password is not correct."));
    assert_eq!(wrong.get("/dashboard").await.status, StatusCode::SEE_OTHER, "not signed in");

    let unknown = app.browser();
    let posted = unknown.login(&unique_email("nobody"), "not the password").await;
    assert_eq!(posted.location.as_deref(), Some("/login"));
    assert!(unknown.get("/login").await.body.contains("The email or password is not correct."));
    app.finish().await;
}

async fn repeated_failures_lock_the_email(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = unique_email("target");
    app.browser().signup(&email, PASSWORD).await;
    let attacker = app.browser();
    for _ in 0..10 {
        attacker.login(&email, "guess guess guess").await;
    }
    // Even the right password is refused while the email is locked.
    let browser = app.browser();
    browser.login(&email, PASSWORD).await;
    let page = browser.get("/login").await;
    assert!(page.body.contains("Too many failed sign-in attempts"), "{}", page.body);
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    app.finish().await;
}

async fn csrf_token_is_required_on_every_server_function(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("csrf"), PASSWORD).await;

    // No token, a wrong token, and another session's token are all refused, and nothing changes.
    let missing = browser.post_raw("/api-keys", "/_fn/api-keys/create", &[("name", "sneaky")]).await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong =
        browser.post_raw("/api-keys", "/_fn/api-keys/create", &[("name", "sneaky"), ("csrf_token", "00")]).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let other = app.browser();
    let other_token = other.get("/login").await.csrf_token().unwrap();
    let foreign = browser
        .post_raw("/api-keys", "/_fn/api-keys/create", &[("name", "sneaky"), ("csrf_token", other_token.as_str())])
        .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN);
    assert!(!browser.get("/api-keys").await.body.contains("sneaky"));

    // Login and sign-up forms are protected too (login CSRF).
    let anonymous = app.browser();
    let login = anonymous.post_raw("/login", "/_fn/login", &[("email", "a@example.com"), ("password", "x")]).await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    let logout = browser.post_raw("/dashboard", "/_fn/logout", &[]).await;
    assert_eq!(logout.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::OK, "still signed in");
    app.finish().await;
}

fn session_cookie(set_cookie: &[String]) -> Option<String> {
    set_cookie
        .iter()
        .find(|c| c.starts_with("wag_session="))
        .map(|c| c.split(';').next().unwrap().trim_start_matches("wag_session=").to_string())
}

async fn session_id_rotates_at_login(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = unique_email("rotate");
    app.browser().signup(&email, PASSWORD).await;

    let browser = app.browser();
    // The login form needs no session: its CSRF token is bound to a cookie of its own.
    let login_page = browser.get("/login").await;
    assert_eq!(session_cookie(&login_page.set_cookie), None, "no session for a signed-out page view");
    let cookie = login_page.set_cookie.iter().find(|c| c.starts_with("wag_csrf=")).expect("the CSRF cookie");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http base URL: {cookie}");
    // A failed attempt leaves its message in a session: the id an attacker could plant.
    let failed = browser.login(&email, "wrong password").await;
    let before = session_cookie(&failed.set_cookie).expect("a session for the failed attempt's message");

    let logged_in = browser.login(&email, PASSWORD).await;
    let after = session_cookie(&logged_in.set_cookie).expect("a new session id at login");
    assert_ne!(before, after);

    // The pre-login id is worth nothing now.
    let planted = app.api();
    let response =
        planted.get(app.url("/dashboard")).header("cookie", format!("wag_session={before}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.finish().await;
}

async fn logout_invalidates_the_old_cookie(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    let signed_up = browser.signup(&unique_email("bye"), PASSWORD).await;
    let cookie = session_cookie(&signed_up.set_cookie).expect("session cookie");
    let replay = |cookie: String| {
        let client = app.api();
        let url = app.url("/dashboard");
        async move { client.get(url).header("cookie", format!("wag_session={cookie}")).send().await.unwrap().status() }
    };
    assert_eq!(replay(cookie.clone()).await, StatusCode::OK);
    browser.logout().await;
    assert_eq!(replay(cookie).await, StatusCode::SEE_OTHER, "the old cookie no longer signs in");
    app.finish().await;
}

async fn password_change_ends_other_sessions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = unique_email("pw");
    let first = app.browser();
    first.signup(&email, PASSWORD).await;
    let second = app.browser();
    second.login(&email, PASSWORD).await;
    assert_eq!(second.get("/dashboard").await.status, StatusCode::OK);

    let mismatch = first
        .submit(
            "/account",
            "/_fn/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new secret"),
                ("confirm_password", "something else"),
            ],
        )
        .await;
    assert_eq!(mismatch.location.as_deref(), Some("/account"));
    assert!(first.get("/account").await.body.contains("differ"));

    first
        .submit(
            "/account",
            "/_fn/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "a brand new secret"),
                ("confirm_password", "a brand new secret"),
            ],
        )
        .await;
    assert!(first.get("/account").await.body.contains("Password changed"));
    assert_eq!(first.get("/dashboard").await.status, StatusCode::OK, "this browser stays signed in");
    assert_eq!(second.get("/dashboard").await.status, StatusCode::SEE_OTHER, "the other browser is signed out");

    let again = app.browser();
    again.login(&email, PASSWORD).await;
    assert_eq!(again.get("/dashboard").await.status, StatusCode::SEE_OTHER, "the old password no longer works");
    again.login(&email, "a brand new secret").await;
    assert_eq!(again.get("/dashboard").await.status, StatusCode::OK);
    app.finish().await;
}

async fn registration_can_be_closed(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Options { registration_enabled: false, ..Options::default() }).await else {
        return;
    };
    let browser = app.browser();
    let page = browser.get("/signup").await;
    assert!(page.body.contains("Sign-up is closed"));
    let token = browser.get("/login").await.csrf_token().unwrap();
    // A hand-made post is refused too.
    let posted = browser
        .post_raw(
            "/signup",
            "/_fn/signup",
            &[("email", "x@example.com"), ("password", PASSWORD), ("csrf_token", token.as_str())],
        )
        .await;
    assert_eq!(posted.location.as_deref(), Some("/signup"));
    assert_eq!(browser.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    app.finish().await;
}

async fn sign_ups_from_one_network_are_limited(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for n in 0..10 {
        let signed_up = app.browser().signup(&unique_email(&format!("many{n}")), PASSWORD).await;
        assert_eq!(signed_up.location.as_deref(), Some("/dashboard"), "sign-up {n}");
    }
    let browser = app.browser();
    let email = unique_email("one-too-many");
    let refused = browser.signup(&email, PASSWORD).await;
    assert_eq!(refused.location.as_deref(), Some("/signup"));
    let page = browser.get("/signup").await;
    assert!(page.body.contains(gateway::login_throttle::SIGN_UP_LOCKED_MESSAGE), "the page says why");
    assert!(gateway::accounts::find_by_email(&app.conn, &email).await.unwrap().is_none(), "no account was made");
    app.finish().await;
}

/// Portal pages answer a Content-Security-Policy without inline script or style and carry none;
/// behind https the cookies are `__Host-` cookies and HSTS is on, for pages and the API alike.
async fn pages_forbid_inline_script_and_https_pins_cookies_to_the_host(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let browser = app.browser();
    browser.signup(&unique_email("csp"), PASSWORD).await;
    let instance = browser.create_instance("Support line").await;
    for path in
        ["/", "/login", "/dashboard", "/instances", &format!("/instances/{instance}/manage?tab=connect"), "/docs"]
    {
        let response = app.api().get(app.url(path)).send().await.unwrap();
        let csp = response.headers().get("content-security-policy").map(|v| v.to_str().unwrap().to_string());
        let csp = csp.unwrap_or_else(|| panic!("{path}: no CSP"));
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        assert!(response.headers().get("strict-transport-security").is_none(), "plain http: no HSTS");
        // The only inline scripts are Leptos's own, and they carry this response's nonce.
        let page = response.text().await.unwrap();
        for (at, _) in page.match_indices("<script").filter(|(at, _)| !page[*at..].starts_with("<script src=")) {
            let nonce = page[at..].strip_prefix("<script nonce=\"").and_then(|rest| rest.split('"').next());
            let nonce = nonce.unwrap_or_else(|| panic!("{path}: an inline script without a nonce"));
            assert!(nonce.len() >= 16 && csp.contains(&format!("'nonce-{nonce}'")), "{path}: {csp}");
        }
        assert!(!page.contains(" style=\""), "{path} has an inline style");
        let signed_in = browser.get(path).await.body;
        assert!(!signed_in.contains(" style=\""), "{path} has an inline style");
    }
    app.finish().await;

    let env = vec![("WAG_PUBLIC_BASE_URL", "https://wa.example.com".to_string())];
    let Some(app) = spawn_app_with(backend, Options { env, ..Options::default() }).await else { return };
    let client = app.api();
    for path in ["/login", "/healthz", "/api/send-message"] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers().get("strict-transport-security").map(|v| v.to_str().unwrap().to_string()),
            Some("max-age=31536000".to_string()),
            "{path}"
        );
    }
    let login = client.get(app.url("/signup")).send().await.unwrap();
    let csrf_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-wag_csrf="))
        .expect("a __Host- CSRF cookie");
    assert!(csrf_cookie.contains("; Secure") && csrf_cookie.contains("Path=/") && !csrf_cookie.contains("Domain"));
    let nonce = csrf_cookie.split(';').next().unwrap().to_string();
    let body = login.text().await.unwrap();
    let marker = "name=\"csrf_token\" value=\"";
    let start = body.find(marker).unwrap() + marker.len();
    let token = &body[start..start + body[start..].find('"').unwrap()];
    let email = unique_email("host");
    let signed_up = client
        .post(app.url("/_fn/signup"))
        .header("accept", "text/html")
        .header("referer", app.url("/signup"))
        .header("cookie", &nonce)
        .form(&[("email", email.as_str()), ("password", PASSWORD), ("csrf_token", token)])
        .send()
        .await
        .unwrap();
    assert!(signed_up.status().is_redirection(), "{}", signed_up.status());
    assert_eq!(signed_up.headers().get("location").unwrap(), "/dashboard");
    let session = signed_up
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("__Host-wag_session="))
        .expect("a __Host- session cookie");
    assert!(session.contains("Secure") && session.contains("Path=/") && !session.contains("Domain"), "{session}");
    // The plain name is not taken in its place: a cookie a sibling subdomain planted is ignored.
    let session_value = session.split(';').next().unwrap().trim_start_matches("__Host-wag_session=").to_string();
    let planted = client
        .get(app.url("/dashboard"))
        .header("cookie", format!("wag_session={session_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(planted.status(), StatusCode::SEE_OTHER);
    let real = client
        .get(app.url("/dashboard"))
        .header("cookie", format!("__Host-wag_session={session_value}"))
        .send()
        .await
        .unwrap();
    assert_eq!(real.status(), StatusCode::OK);
    app.finish().await;
}

/// A browser that signed in before holds a device cookie: someone else's guesses lock the email
/// for every other browser, not for it; its own mistakes count against it alone.
async fn the_owners_browser_is_not_locked_out_by_someone_elses_guesses(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let email = unique_email("owner");
    let owner = app.browser();
    let signed_up = owner.signup(&email, PASSWORD).await;
    let cookie = signed_up.set_cookie.iter().find(|c| c.starts_with("wag_device=")).expect("a device cookie");
    assert!(cookie.contains("HttpOnly") && cookie.contains("Max-Age=31536000"), "{cookie}");
    owner.logout().await;

    let attacker = app.browser();
    for _ in 0..10 {
        attacker.login(&email, "guess guess guess").await;
    }
    attacker.login(&email, PASSWORD).await;
    assert!(attacker.get("/login").await.body.contains("Too many failed sign-in attempts"));
    assert_eq!(attacker.get("/dashboard").await.status, StatusCode::SEE_OTHER, "locked for other browsers");

    owner.login(&email, PASSWORD).await;
    assert_eq!(owner.get("/dashboard").await.status, StatusCode::OK, "the owner's browser signs in");
    owner.logout().await;

    // A device cookie for another email, or a forged one, counts for nothing.
    let other = app.browser();
    other.signup(&unique_email("other"), PASSWORD).await;
    other.logout().await;
    other.login(&email, PASSWORD).await;
    assert_eq!(other.get("/dashboard").await.status, StatusCode::SEE_OTHER);

    // The owner's own mistakes lock the owner's device after ten.
    for _ in 0..10 {
        owner.login(&email, "my old password").await;
    }
    owner.login(&email, PASSWORD).await;
    assert!(owner.get("/login").await.body.contains("Too many failed sign-in attempts"));
    assert_eq!(owner.get("/dashboard").await.status, StatusCode::SEE_OTHER);
    app.finish().await;
}
