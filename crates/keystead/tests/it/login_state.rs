//! The rules around one login: state (single use, browser-bound, 10 min),
//! login codes (single use, 60 s, PKCE), return_to and a disabled config.

use keystead_crypto::hashing::token_hash;
use keystead_store::{now_unix, LoginCodeRow, LoginStateRow, SignInStore, Store};

use crate::browser::{basic_partner, pkce, session, Browser, Outcome, RETURN_TO};
use crate::kit::{http_raw, idp, Server};

fn partner() -> crate::kit::Partner {
    basic_partner(Server::shared())
}

fn page_error(o: &Outcome) -> (u16, String) {
    match o {
        Outcome::Page {
            status,
            error_header,
            ..
        } => (*status, error_header.clone().unwrap_or_default()),
        other => panic!("expected an error page, got {other:?}"),
    }
}

/// Runs a login up to (not including) the callback; returns its URL.
fn until_callback(b: &Browser, p: &crate::kit::Partner) -> (String, crate::browser::Pkce) {
    let pk = pkce();
    let (_, cb) = b.follow_until(&b.start_url(p, RETURN_TO, &pk, "erin"), |u| {
        u.contains("/auth/custom_oidc/callback")
    });
    (cb.expect("reached the callback"), pk)
}

#[test]
fn state_is_single_use() {
    let p = partner();
    let b = Browser::new(Server::shared());
    let (cb, _) = until_callback(&b, &p);
    assert!(b.follow(&cb).login_code().starts_with("klc_"));
    let (status, code) = page_error(&b.follow(&cb));
    assert_eq!((status, code.as_str()), (400, "state_invalid"));
}

#[test]
fn state_from_another_browser_is_rejected() {
    let p = partner();
    let (cb, _) = until_callback(&Browser::new(Server::shared()), &p);
    let other = Browser::new(Server::shared());
    assert_eq!(page_error(&other.follow(&cb)).1, "state_invalid");
}

#[test]
fn unknown_or_missing_state_is_rejected() {
    let b = Browser::new(Server::shared());
    let base = format!("{}/auth/custom_oidc/callback", Server::shared().url);
    assert_eq!(
        page_error(&b.follow(&format!("{base}?code=x&state=nope"))).1,
        "state_invalid"
    );
    assert_eq!(
        page_error(&b.follow(&format!("{base}?code=x"))).1,
        "state_invalid"
    );
    assert_eq!(page_error(&b.follow(&base)).1, "state_invalid");
}

fn server_store(server: &Server) -> (tokio::runtime::Runtime, Store) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = rt
        .block_on(Store::connect(&format!(
            "sqlite://{}",
            server.data_dir.join("keystead.db").display()
        )))
        .unwrap();
    (rt, store)
}

#[test]
fn expired_state_is_rejected() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    let (rt, store) = server_store(&server);
    let now = now_unix();
    let browser_id = "b".repeat(40);
    rt.block_on(store.insert_login_state(&LoginStateRow {
        state_hash: token_hash("old-state"),
        partner_id: p.partner_id.clone(),
        browser_hash: token_hash(&browser_id),
        issuer: idp().issuer("main"),
        return_to: RETURN_TO.into(),
        app_state: None,
        app_code_challenge: pkce().challenge,
        nonce: "n".into(),
        pkce_verifier: "v".into(),
        created_at: now - 700,
        expires_at: now - 100,
        error_to: None,
        test_id: None,
    }))
    .unwrap();
    let url = format!(
        "{}/auth/custom_oidc/callback?code=x&state=old-state",
        server.url
    );
    let r = http_raw(
        "GET",
        &url,
        Some(("cookie", format!("ks_browser={browser_id}"))),
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.text.contains("state_invalid"));
}

#[test]
fn login_code_is_single_use_and_needs_the_right_verifier() {
    let p = partner();
    let b = Browser::new(Server::shared());
    let (o, pk) = b.login(&p, "frank");
    let code = o.login_code();
    let s = session(&p, &code, &pk.verifier);
    assert_eq!(s.status, 200, "{}", s.text);
    let again = session(&p, &code, &pk.verifier);
    assert_eq!((again.status, again.code()), (400, "login_code_invalid"));

    let (o, _) = b.login(&p, "frank");
    let wrong = session(&p, &o.login_code(), &pkce().verifier);
    assert_eq!((wrong.status, wrong.code()), (400, "pkce_invalid"));

    let (o, pk) = b.login(&p, "frank");
    let other_partner = partner();
    let s = session(&other_partner, &o.login_code(), &pk.verifier);
    assert_eq!(
        s.code(),
        "login_code_invalid",
        "a code only works for its own app"
    );
}

#[test]
fn expired_login_code_is_rejected() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    let (o, pk) = Browser::new(&server).login(&p, "gina");
    let user_id = {
        let s = session(&p, &o.login_code(), &pk.verifier);
        s.json["user"]["id"].as_str().unwrap().to_string()
    };
    let (rt, store) = server_store(&server);
    let verifier = pkce();
    let row = LoginCodeRow {
        partner_id: p.partner_id.clone(),
        user_id,
        code_challenge: verifier.challenge.clone(),
    };
    rt.block_on(store.insert_login_code(&token_hash("klc_old"), &row, now_unix() - 61, 60))
        .unwrap();
    let s = session(&p, "klc_old", &verifier.verifier);
    assert_eq!(s.code(), "login_code_invalid");
}

#[test]
fn return_to_must_be_allowed_exactly() {
    let p = partner();
    let b = Browser::new(Server::shared());
    for bad in [
        "https://evil.example",
        "//evil.example",
        "javascript:alert(1)",
        "https://app.example.test/auth/done/extra",
        "https://app.example.test:8443/auth/done",
        "http://app.example.test/auth/done",
        "https://app.example.test/auth/done#frag",
        "",
    ] {
        let (status, code) = page_error(&b.follow(&b.start_url(&p, bad, &pkce(), "h")));
        assert_eq!(
            (status, code.as_str()),
            (400, "return_to_not_allowed"),
            "{bad}"
        );
    }
    // the query may differ; a native app scheme works when listed
    let o = b.follow(&b.start_url(&p, &format!("{RETURN_TO}?tab=2"), &pkce(), "h"));
    assert!(o.param("login_code").is_some(), "{o:?}");
    assert_eq!(o.param("tab").as_deref(), Some("2"));
    let o = b.follow(&b.start_url(&p, "myapp://callback", &pkce(), "h"));
    assert!(o.param("login_code").is_some(), "{o:?}");
}

#[test]
fn pkce_is_required_from_the_app() {
    let p = partner();
    let b = Browser::new(Server::shared());
    let base = format!(
        "{}/auth/custom_oidc/start?api_key={}&return_to={RETURN_TO}",
        Server::shared().url,
        p.publishable_key
    );
    for q in [
        "",
        "&code_challenge=short&code_challenge_method=S256",
        &format!(
            "&code_challenge={}&code_challenge_method=plain",
            pkce().challenge
        ),
    ] {
        assert_eq!(
            page_error(&b.follow(&format!("{base}{q}"))).1,
            "pkce_invalid",
            "{q}"
        );
    }
}

#[test]
fn disabled_config_refuses_to_start() {
    let p = partner();
    let r = p.call("PUT", "/v1/partner/custom-oidc", Some(serde_json::json!({
        "issuer": idp().issuer("main"), "client_id": "x", "button_label": "Acme", "enabled": false,
    })));
    assert_eq!(r.status, 200);
    let b = Browser::new(Server::shared());
    let (status, code) = page_error(&b.follow(&b.start_url(&p, RETURN_TO, &pkce(), "h")));
    assert_eq!((status, code.as_str()), (400, "custom_oidc_disabled"));
    let unknown = b.follow(&format!(
        "{}/auth/custom_oidc/start?api_key=pk_nope",
        Server::shared().url
    ));
    assert_eq!(page_error(&unknown).1, "unauthorized");
}

#[test]
fn the_browser_binding_cookie_is_httponly_and_lax() {
    let p = partner();
    let b = Browser::new(Server::shared());
    let url = b.start_url(&p, RETURN_TO, &pkce(), "h");
    let r = reqwest::blocking_free_get(&url);
    let cookie = r
        .iter()
        .find(|c| c.starts_with("ks_browser="))
        .expect("binding cookie set");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/auth/custom_oidc"), "{cookie}");
}

#[test]
fn the_browser_binding_is_minted_by_the_server_never_adopted() {
    let p = partner();
    let b = Browser::new(Server::shared());
    let planted = "a".repeat(43);
    let url = b.start_url(&p, RETURN_TO, &pkce(), "h");
    let cookies = reqwest::get_with_cookie(&url, &format!("ks_browser={planted}"));
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("ks_browser="))
        .expect("binding cookie set");
    assert!(
        !cookie.contains(&planted),
        "adopted the client's value: {cookie}"
    );
    // and a state started with a planted value does not complete with it
    let (cb, _) = until_callback(&b, &p);
    let r = http_raw(
        "GET",
        &cb,
        Some(("cookie", format!("ks_browser={planted}"))),
        None,
    );
    assert_eq!(r.status, 400);
    assert!(r.text.contains("state_invalid"), "{}", r.text);
}

#[test]
fn an_https_deployment_uses_a_host_prefixed_secure_cookie() {
    let server = Server::start(crate::kit::ServerOpts {
        public_url_env: false,
        env: vec![("KEYSTEAD_PUBLIC_URL", "https://keystead.test")],
        ..Default::default()
    });
    let p = basic_partner(&server);
    let b = Browser::new(&server);
    let cookies = reqwest::blocking_free_get(&b.start_url(&p, RETURN_TO, &pkce(), "h"));
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("__Host-ks_browser="))
        .unwrap_or_else(|| panic!("no __Host- cookie in {cookies:?}"));
    for part in ["Path=/;", "Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(part), "{part} missing: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    // the plain name is not read on an https deployment
    let state = "s".repeat(43);
    let url = format!(
        "{}/auth/custom_oidc/callback?code=x&state={state}",
        server.url
    );
    let value = cookie.split(';').next().unwrap().split_once('=').unwrap().1;
    let r = http_raw(
        "GET",
        &url,
        Some(("cookie", format!("ks_browser={value}"))),
        None,
    );
    assert!(r.text.contains("state_invalid"));
}

#[test]
fn return_to_carrying_keysteads_own_parameters_is_refused() {
    let p = partner();
    let b = Browser::new(Server::shared());
    for bad in [
        "login_code=klc_evil",
        "state=x",
        "error=access_denied",
        "error_description=x",
    ] {
        let url = b.start_url(&p, &format!("{RETURN_TO}?{bad}"), &pkce(), "h");
        let (status, code) = page_error(&b.follow(&url));
        assert_eq!(
            (status, code.as_str()),
            (400, "return_to_not_allowed"),
            "{bad}"
        );
    }
    // another query is fine, and comes back with keystead's parameters after it
    let pk = pkce();
    let o = b.follow(&b.start_url(&p, &format!("{RETURN_TO}?tab=2"), &pk, "h"));
    assert!(o.login_code().starts_with("klc_"), "{o:?}");
    assert_eq!(o.param("tab").as_deref(), Some("2"));
}

mod reqwest {
    /// The Set-Cookie headers of one GET sent with `cookie`.
    pub fn get_with_cookie(url: &str, cookie: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = ::reqwest::Client::builder()
                .redirect(::reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let r = c.get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 302);
            r.headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect()
        })
    }

    /// The Set-Cookie headers of one GET, without following redirects.
    pub fn blocking_free_get(url: &str) -> Vec<String> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let c = ::reqwest::Client::builder()
                .redirect(::reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let r = c.get(url).send().await.unwrap();
            assert_eq!(r.status().as_u16(), 302);
            r.headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect()
        })
    }
}
