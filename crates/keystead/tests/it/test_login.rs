//! Test logins (SPEC §11) against oidc-provider: the whole sign-in, every
//! check named, on a disabled config, and nothing of a real sign-in written.

use serde_json::{json, Value};

use crate::browser::{basic_partner, login_to_me, oidc_partner, Browser};
use crate::kit::{
    bad_idp, check, idp, sign_in_rows, unique, Partner, Server, ServerOpts, BAD_CLIENT_ID,
    BAD_CLIENT_SECRET, CLIENT_ID,
};

/// Creates a test login (201): `test_id` and `authorization_url`.
fn create_test(p: &Partner) -> Value {
    let created = p.call(
        "POST",
        "/v1/partner/custom-oidc/test-logins",
        Some(json!({})),
    );
    assert_eq!(created.status, 201, "{}", created.text);
    created.json
}

/// The test login `id` as the partner reads it (200).
fn test_result(p: &Partner, id: &str) -> Value {
    let r = p.call(
        "GET",
        &format!("/v1/partner/custom-oidc/test-logins/{id}"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text);
    r.json
}

/// Creates a test login, signs in at the IdP as `hint`, returns the result.
fn test_login(server: &Server, p: &Partner, hint: &str) -> Value {
    let created = create_test(p);
    let url = format!(
        "{}&login_hint={hint}",
        created["authorization_url"].as_str().unwrap()
    );
    let browser = Browser::new(server);
    let (_, landed) = browser.follow_until(&url, |u| u.contains("/auth/custom_oidc/test-result"));
    assert!(
        landed.is_some(),
        "the browser did not reach the result page"
    );
    test_result(p, created["test_id"].as_str().unwrap())
}

#[test]
fn a_test_login_on_a_disabled_config_passes_every_check_and_writes_nothing() {
    let server = Server::start(Default::default());
    let issuer = idp().issuer("main");
    let client = format!("{CLIENT_ID}-client_secret_basic");
    let p = basic_partner(&server);
    let off = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(json!({"issuer": issuer, "client_id": client, "button_label": "Acme", "enabled": false})),
    );
    assert_eq!(off.status, 200, "{}", off.text);
    let before = sign_in_rows(&server);
    let hint = unique("tl-");
    // before the browser comes back, the test is pending
    let created = create_test(&p);
    let pending = test_result(&p, created["test_id"].as_str().unwrap());
    assert_eq!(pending["status"], "pending", "{pending}");
    assert!(pending["finished_at"].is_null());
    let r = test_login(&server, &p, &hint);
    assert_eq!(r["status"], "passed", "{r:#}");
    let names: Vec<&str> = r["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 14, "{names:?}");
    for c in r["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "pass", "{c}");
    }
    assert_eq!(r["outcome"]["user"], "new");
    assert_eq!(r["claims"]["sub"], hint.as_str());
    assert_eq!(r["claim_sources"]["sub"], "id_token");
    assert!(!r.to_string().contains("eyJ"), "no raw token in the result");
    // 19 more (20 in all): still nothing written
    for _ in 0..19 {
        assert_eq!(test_login(&server, &p, &hint)["status"], "passed");
    }
    assert_eq!(
        sign_in_rows(&server),
        before,
        "a test login wrote a real sign-in's rows"
    );
    // counted as test logins, not as sign-ins
    let metrics = crate::kit::http("GET", &format!("{}/metrics", server.url), None, None);
    assert!(
        metrics
            .text
            .contains("keystead_test_logins_total{result=\"passed\"} 20\n"),
        "{}",
        metrics.text
    );
    assert!(
        !metrics.text.contains("keystead_logins_total{"),
        "{}",
        metrics.text
    );
    // after a real sign-in, the same identity is "existing" with its wallet
    let on = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": issuer, "client_id": client, "button_label": "Acme", "enabled": true}),
        ),
    );
    assert_eq!(on.status, 200);
    let (_, me) = login_to_me(&Browser::new(&server), &p, &hint);
    let r = test_login(&server, &p, &hint);
    assert_eq!(r["outcome"]["user"], "existing", "{r:#}");
    assert_eq!(r["outcome"]["user_id"], me["user"]["id"]);
    assert_eq!(
        r["outcome"]["wallets"][0]["address"],
        me["wallets"][0]["address"]
    );
    // the result page lists the checks, without the claims
    let page = crate::kit::http(
        "GET",
        &format!(
            "{}/auth/custom_oidc/test-result?test_id={}",
            server.url,
            r["test_id"].as_str().unwrap()
        ),
        None,
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.text.contains("id_token_times"), "{}", page.text);
    assert!(!page.text.contains(&hint), "claims on the page");
}

#[test]
fn a_wrong_secret_fails_token_exchange_and_skips_the_rest() {
    let server = Server::start(Default::default());
    let p = basic_partner(&server);
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc/client-secret",
        Some(json!({"client_secret": "not-the-secret"})),
    );
    assert_eq!(r.status, 204);
    let r = test_login(&server, &p, "wrong-secret-user");
    assert_eq!(r["status"], "failed", "{r:#}");
    for name in ["discovery", "authorization_response", "iss_parameter"] {
        assert_eq!(check(&r, name)["status"], "pass", "{name}: {r:#}");
    }
    let te = check(&r, "token_exchange");
    assert_eq!(te["status"], "fail");
    assert!(te["hint"].is_string(), "{te}");
    for name in ["id_token_signature", "email", "sign_in_rules"] {
        assert_eq!(check(&r, name)["status"], "skip", "{name}: {r:#}");
    }
    // another partner cannot read it
    let other = server.new_partner();
    let id = r["test_id"].as_str().unwrap();
    assert_eq!(
        other
            .call(
                "GET",
                &format!("/v1/partner/custom-oidc/test-logins/{id}"),
                None
            )
            .status,
        404
    );
}

const CHECKS: [&str; 14] = [
    "discovery",
    "authorization_response",
    "iss_parameter",
    "token_exchange",
    "id_token_signature",
    "id_token_issuer",
    "id_token_audience",
    "id_token_times",
    "nonce",
    "subject",
    "email",
    "userinfo",
    "scopes_granted",
    "sign_in_rules",
];

const CLAIM_RULES: [&str; 5] = [
    "id_token_issuer",
    "id_token_audience",
    "id_token_times",
    "nonce",
    "subject",
];

/// `failing` fails with a hint, every check before it passes, every one
/// after it is skipped; the texts of `failing` contain `words`.
fn assert_fails_at(r: &Value, failing: &str, words: &[&str]) -> Result<(), String> {
    assert_fails_after_warnings(r, failing, words, &[])
}

/// [`assert_fails_at`], with the checks in `warned` before it warning.
fn assert_fails_after_warnings(
    r: &Value,
    failing: &str,
    words: &[&str],
    warned: &[&str],
) -> Result<(), String> {
    let mut errors = Vec::new();
    if r["status"] != "failed" {
        errors.push(format!("status {}", r["status"]));
    }
    let at = CHECKS.iter().position(|n| *n == failing).unwrap();
    for (i, name) in CHECKS.iter().enumerate() {
        let c = check(r, name);
        // once the signature verified, every claim rule of the ID token is
        // checked on its own: one defect fails one of them
        let claim_rule = |n: &str| CLAIM_RULES.contains(&n);
        let want = match i.cmp(&at) {
            std::cmp::Ordering::Less if warned.contains(name) => "warn",
            std::cmp::Ordering::Less => "pass",
            std::cmp::Ordering::Equal => "fail",
            std::cmp::Ordering::Greater if claim_rule(failing) && claim_rule(name) => "pass",
            std::cmp::Ordering::Greater => "skip",
        };
        if c["status"] != want {
            errors.push(format!("{name} is {} (want {want})", c["status"]));
        }
    }
    let c = check(r, failing);
    if !c["hint"].is_string() {
        errors.push(format!("{failing} has no hint"));
    }
    let text = format!("{} {}", c["detail"], c["hint"]);
    for w in words {
        if !text.contains(w) {
            errors.push(format!("{failing}'s detail/hint lacks {w:?}: {text}"));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {r:#}", errors.join("; ")))
    }
}

fn bad_partner(scenario: &str) -> Partner {
    oidc_partner(
        Server::shared(),
        &bad_idp().issuer(scenario),
        BAD_CLIENT_ID,
        "client_secret_basic",
        Some(BAD_CLIENT_SECRET),
    )
}

#[test]
fn each_misconfiguration_fails_its_named_check_with_a_hint() {
    let server = Server::shared();
    let issuer = idp().issuer("main");
    let basic = format!("{CLIENT_ID}-client_secret_basic");
    let mut failures = Vec::new();
    let mut case = |what: &str, r: Value, failing: &str, words: &[&str]| {
        if let Err(e) = assert_fails_at(&r, failing, words) {
            failures.push(format!("{what}: {e}"));
        }
    };
    // a client id the IdP does not know: its error page, found by the probe
    let p = oidc_partner(server, &issuer, "not-registered-at-the-idp", "none", None);
    let r = test_login(server, &p, "anyone");
    case(
        "unknown client",
        r,
        "authorization_response",
        &["HTTP 400", "not-registered-at-the-idp"],
    );
    // a confidential client (client_secret_basic at the IdP) configured as
    // a public one (oidc-provider takes _basic and _post as one)
    let p = oidc_partner(server, &issuer, &basic, "none", None);
    let r = test_login(server, &p, "wrong-method-user");
    case(
        "wrong auth method",
        r,
        "token_exchange",
        &[
            "invalid_client",
            "now none",
            "registered for one auth method",
        ],
    );
    // signed by a key the JWKS does not have (after one refetch)
    let r = test_login(server, &bad_partner("unknown-kid"), "bad-user-1");
    case("unknown key", r, "id_token_signature", &["rsa-unknown"]);
    // the ID token is for another client
    let r = test_login(server, &bad_partner("wrong-aud"), "bad-user-1");
    case("wrong audience", r, "id_token_audience", &[BAD_CLIENT_ID]);
    // the IdP's clock runs 5 minutes ahead: the skew is measured
    let r = test_login(server, &bad_partner("clock-ahead-300"), "bad-user-1");
    case("clock ahead", r, "id_token_times", &["by 300 s", "NTP"]);
    let r = test_login(server, &bad_partner("nonce-mismatch"), "bad-user-1");
    case("nonce", r, "nonce", &["nonce"]);
    let r = test_login(server, &bad_partner("missing-sub"), "bad-user-1");
    case("no sub", r, "subject", &["no sub"]);
    let r = test_login(server, &bad_partner("iss-mismatch"), "bad-user-1");
    case(
        "iss in the ID token",
        r,
        "id_token_issuer",
        &["configured issuer"],
    );
    let r = test_login(server, &bad_partner("bad-sig-rs256"), "bad-user-1");
    case(
        "bad signature",
        r,
        "id_token_signature",
        &["signature does not verify"],
    );
    let r = test_login(server, &bad_partner("iss-param-mismatch"), "bad-user-1");
    case(
        "iss parameter",
        r,
        "iss_parameter",
        &["https://evil.example"],
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // the email a sign-in uses, and where it came from
    let r = test_login(server, &bad_partner("userinfo-needed"), "ui-user");
    assert_eq!(r["claim_sources"]["email"], "userinfo", "{r:#}");
    assert_eq!(check(&r, "userinfo")["status"], "pass", "{r:#}");
}

#[test]
fn an_unregistered_redirect_uri_is_found_before_the_browser_goes() {
    // this server's public URL (so its redirect URI) is not registered at
    // the IdP, which answers with its own error page and never comes back
    let server = Server::start(ServerOpts {
        public_url_env: false,
        env: vec![("KEYSTEAD_PUBLIC_URL", "http://127.0.0.1:2")],
        ..Default::default()
    });
    let issuer = idp().issuer("main");
    let p = server.new_partner();
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": issuer, "client_id": format!("{CLIENT_ID}-none"),
                    "button_label": "Acme", "token_endpoint_auth_method": "none"}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let created = create_test(&p);
    // failed at once: no need to open anything
    let r = test_result(&p, created["test_id"].as_str().unwrap());
    assert_fails_at(
        &r,
        "authorization_response",
        &[
            "register exactly http://127.0.0.1:2/auth/custom_oidc/callback",
            "redirect_uri",
        ],
    )
    .unwrap();
    // the link it gives is the result page
    assert!(
        created["authorization_url"]
            .as_str()
            .unwrap()
            .contains("/auth/custom_oidc/test-result?test_id="),
        "{created}"
    );
}

#[test]
fn an_unverified_email_warns_and_fails_the_rule_that_needs_it() {
    let server = Server::shared();
    let issuer = idp().issuer("main");
    let client = format!("{CLIENT_ID}-none");
    let p = oidc_partner(server, &issuer, &client, "none", None);
    let r = test_login(server, &p, "unverified-tl");
    assert_eq!(r["status"], "passed", "{r:#}");
    assert_eq!(check(&r, "email")["status"], "warn", "{r:#}");
    assert!(check(&r, "email")["hint"].is_string());
    assert_eq!(r["claims"]["email_verified"], false);
    assert!(r["outcome"]["would_claim"].as_array().unwrap().is_empty());
    let on = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": issuer, "client_id": client, "button_label": "Acme",
                    "token_endpoint_auth_method": "none", "enabled": true,
                    "require_verified_email": true}),
        ),
    );
    assert_eq!(on.status, 200, "{}", on.text);
    let r = test_login(server, &p, "unverified-tl");
    assert_fails_after_warnings(&r, "sign_in_rules", &["verified"], &["email"]).unwrap();
    assert_eq!(check(&r, "sign_in_rules")["code"], "sign_in_not_allowed");
    // a refused sign-in would do nothing
    assert!(r["outcome"].is_null(), "{r:#}");
    // the email comes from the ID token
    assert_eq!(r["claim_sources"]["email"], "id_token");
}

#[test]
fn test_and_real_states_never_cross() {
    let server = Server::shared();
    let issuer = idp().issuer("main");
    let client = format!("{CLIENT_ID}-none");
    let p = oidc_partner(server, &issuer, &client, "none", None);
    let created = create_test(&p);
    let start = created["authorization_url"].as_str().unwrap().to_string();
    // the test's start link, opened: the IdP gets the test's state
    let browser = Browser::new(server);
    let first = browser.get(&start);
    assert_eq!(first.status, 302, "{}", first.text);
    let to_idp = url::Url::parse(first.location.as_deref().unwrap()).unwrap();
    let test_state = to_idp
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    // the start link works once
    let again = Browser::new(server).get(&start);
    assert_eq!(again.status, 400);
    assert_eq!(again.error.as_deref(), Some("state_invalid"), "{again:?}");
    // a real sign-in's state is no test start token
    // (in another browser: a start in this one would replace its binding)
    let real = Browser::new(server).get(&browser.start_url(
        &p,
        crate::browser::RETURN_TO,
        &crate::browser::pkce(),
        "someone",
    ));
    assert_eq!(real.status, 302, "{}", real.text);
    let real_state = url::Url::parse(real.location.as_deref().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .to_string();
    let r = browser.get(&format!(
        "{}/auth/custom_oidc/test-start?t={real_state}",
        server.url
    ));
    assert_eq!(r.status, 400);
    assert_eq!(r.error.as_deref(), Some("state_invalid"), "{r:?}");
    // the test's state at the callback, in another browser: refused, and
    // the test is still pending (its state is bound to its browser)
    let r = Browser::new(server).get(&format!(
        "{}/auth/custom_oidc/callback?code=x&state={test_state}",
        server.url
    ));
    assert_eq!(r.status, 400);
    assert_eq!(r.error.as_deref(), Some("state_invalid"), "{r:?}");
    let t = test_result(&p, created["test_id"].as_str().unwrap());
    assert_eq!(t["status"], "pending");
    // in its own browser it finishes as a test, never as a sign-in: it
    // goes to the result page, with no login code for the app
    let r = browser.get(&format!(
        "{}/auth/custom_oidc/callback?code=x&state={test_state}",
        server.url
    ));
    assert_eq!(r.status, 302, "{}", r.text);
    let to = r.location.unwrap();
    assert!(to.contains("/auth/custom_oidc/test-result"), "{to}");
    assert!(!to.contains("login_code"), "{to}");
    // and used once
    let r = browser.get(&format!(
        "{}/auth/custom_oidc/callback?code=x&state={test_state}",
        server.url
    ));
    assert_eq!(r.status, 400);
    assert_eq!(r.error.as_deref(), Some("state_invalid"), "{r:?}");
}

/// `keystead oidc test-login` as a partner runs it: the URL printed, the
/// CLI waiting while the browser signs in, every check printed, exit 0;
/// `--no-wait --json`, `--id` and a failure's exit 1.
#[test]
fn the_cli_prints_the_url_waits_and_prints_every_check() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let server = Server::shared();
    let issuer = idp().issuer("main");
    let p = oidc_partner(server, &issuer, &format!("{CLIENT_ID}-none"), "none", None);
    let home = crate::kit::new_dir("home-");
    let mut child = Command::new(crate::kit::BIN)
        .args(["--server", &p.server, "oidc", "test-login"])
        .current_dir(&home)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("KEYSTEAD_SECRET_KEY", &p.secret_key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    let url = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "no URL: {printed}"
        );
        printed.push_str(&line);
        if let Some(u) = line.trim().strip_prefix("http") {
            break format!("http{u}");
        }
    };
    assert!(url.contains("/auth/custom_oidc/test-start?t="), "{url}");
    // it waits: still running while nobody has signed in
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(child.try_wait().unwrap().is_none(), "the CLI did not wait");
    let browser = Browser::new(server);
    let (_, landed) = browser.follow_until(&format!("{url}&login_hint=cli-user"), |u| {
        u.contains("/auth/custom_oidc/test-result")
    });
    assert!(landed.is_some());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{printed}{rest}\n{stderr}");
    assert!(stderr.contains("waiting for the sign-in"), "{stderr}");
    for name in CHECKS {
        assert!(rest.contains(&format!("PASS  {name}")), "{name}: {rest}");
    }
    assert!(rest.contains("create a new user"), "{rest}");
    assert!(rest.contains("sub = \"cli-user\" (id_token)"), "{rest}");
    assert!(rest.contains("ok: test login passed"), "{rest}");

    // --no-wait --json: the test at once; --id: its result later
    let out = p.cli(&["--json", "oidc", "test-login", "--no-wait"], None);
    assert_eq!(out.code, 0, "{out:?}");
    let created = out.json();
    let id = created["test_id"].as_str().unwrap();
    let out = p.cli(
        &["--json", "oidc", "test-login", "--id", id, "--no-wait"],
        None,
    );
    assert_eq!(out.json()["status"], "pending", "{out:?}");
    let url = created["authorization_url"].as_str().unwrap();
    Browser::new(server).follow_until(&format!("{url}&login_hint=cli-user"), |u| {
        u.contains("/auth/custom_oidc/test-result")
    });
    let out = p.cli(&["--json", "oidc", "test-login", "--id", id], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["status"], "passed");
    assert_eq!(out.json()["claims"]["sub"], "cli-user");

    // a failure: exit 1, the failing check and its hint printed
    let bad = oidc_partner(server, &issuer, "not-registered-at-the-idp", "none", None);
    let out = bad.cli(&["oidc", "test-login"], None);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stdout.contains("FAIL  authorization_response"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("hint: "), "{}", out.stdout);
    assert!(
        out.stdout.contains("SKIP  token_exchange"),
        "{}",
        out.stdout
    );
}

/// The outcome names the pregenerated wallet a verified email would claim,
/// and the test claims nothing; an IdP that releases no email warns.
#[test]
fn a_pregenerated_wallet_is_named_not_claimed_and_no_email_warns() {
    let server = Server::shared();
    let issuer = idp().issuer("main");
    let client = format!("{CLIENT_ID}-none");
    let p = oidc_partner(server, &issuer, &client, "none", None);
    let hint = unique("pre-");
    let email = format!("{hint}@example.test");
    let pre = p.call(
        "POST",
        "/v1/wallets",
        Some(json!({"type": "EVM", "userIdentifier": email, "userIdentifierType": "EMAIL"})),
    );
    assert_eq!(pre.status, 201, "{}", pre.text);
    let id = pre.json["wallet"]["id"].as_str().unwrap().to_string();
    let r = test_login(server, &p, &hint);
    assert_eq!(r["status"], "passed", "{r:#}");
    assert_eq!(r["outcome"]["user"], "new");
    assert_eq!(r["outcome"]["would_claim"], json!([id]), "{r:#}");
    // still unclaimed: a real sign-in claims it
    let (_, me) = login_to_me(&Browser::new(server), &p, &hint);
    let ids: Vec<&str> = me["wallets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&id.as_str()), "{me}");
    let r = test_login(server, &p, &hint);
    assert_eq!(r["outcome"]["user"], "existing");
    assert_eq!(r["outcome"]["would_claim"], json!([]), "{r:#}");

    // only the openid scope: no email at all
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": issuer, "client_id": client, "button_label": "Acme",
                    "token_endpoint_auth_method": "none", "scopes": "openid"}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    let r = test_login(server, &p, "no-email-user");
    assert_eq!(r["status"], "passed", "{r:#}");
    let e = check(&r, "email");
    assert_eq!(e["status"], "warn", "{r:#}");
    assert!(e["detail"].as_str().unwrap().contains("no email"), "{e}");
    assert!(e["hint"].as_str().unwrap().contains("email scope"), "{e}");
    assert!(r["claims"].get("email").is_none(), "{r:#}");
}
