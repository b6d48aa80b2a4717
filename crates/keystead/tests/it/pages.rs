//! The browser side (issue 9): the example app with the browser SDK and the
//! hosted login page, in Debian's chromium driven by playwright-core
//! (tests/browser/flows.mjs), against a keystead whose public URL is where
//! it listens and an oidc-provider that registered that redirect URI.
//! Signatures made in the browser are verified outside it (ethers, in
//! tests/verify). axe-core checks the hosted page; screenshots go to
//! target/screenshots/.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::{json, Value};

use crate::browser::{pkce, put_oidc};
use crate::kit::{
    free_port, http, new_dir, repo_root, start_idp, start_node_server, tls, typed, unique, verify,
    Idp, Partner, Proc, Server, ServerOpts, CLIENT_SECRET,
};

const CHROMIUM: &str = "/usr/bin/chromium";
const BROWSER_CLIENT: &str = "keystead-browser";

/// A keystead reachable at its public URL, its own IdP, and the example
/// app served from another loopback origin.
struct Stage {
    server: Server,
    _idp: Idp,
    issuer: String,
    app_origin: String,
    _app: Proc,
}

fn stage() -> &'static Stage {
    static STAGE: OnceLock<Stage> = OnceLock::new();
    STAGE.get_or_init(|| {
        assert!(
            std::path::Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: ./scripts/test.sh installs Debian's chromium (apt-get install chromium)"
        );
        assert!(
            repo_root().join("tests/browser/node_modules/playwright-core").exists(),
            "tests/browser/node_modules is missing: ./scripts/test.sh runs npm ci there"
        );
        let port = free_port();
        let public_url: &'static str =
            Box::leak(format!("http://127.0.0.1:{port}").into_boxed_str());
        let listen: &'static str = Box::leak(format!("127.0.0.1:{port}").into_boxed_str());
        let t = tls();
        let idp = start_idp(
            &new_dir("browser-idp-"),
            json!({
                "cert": t.cert_pem, "key": t.key_pem,
                "providers": [{
                    "name": "browser",
                    "authMethods": ["client_secret_basic"],
                    "clients": [{
                        "client_id": BROWSER_CLIENT,
                        "client_secret": CLIENT_SECRET,
                        "token_endpoint_auth_method": "client_secret_basic",
                        "redirect_uris": [format!("{public_url}/auth/custom_oidc/callback")],
                        "id_token_signed_response_alg": "RS256",
                    }],
                }],
            }),
        );
        let server = Server::start(ServerOpts {
            public_url_env: false,
            env: vec![
                ("KEYSTEAD_LISTEN", listen),
                ("KEYSTEAD_PUBLIC_URL", public_url),
            ],
            ..Default::default()
        });
        assert_eq!(server.url, public_url, "keystead listens at its public URL");
        let app_dir = repo_root().join("examples/sdk-app");
        let (app, app_port) = start_node_server(
            "tests/browser/static.mjs",
            &[app_dir.to_str().unwrap()],
            "the example app's static server",
        );
        Stage {
            issuer: idp.issuer("browser"),
            _idp: idp,
            server,
            app_origin: format!("http://127.0.0.1:{app_port}"),
            _app: app,
        }
    })
}

/// A partner whose Custom OIDC points at the stage's IdP, enabled, with the
/// example app's pages as return URLs.
fn partner(s: &Stage, label: &str) -> Partner {
    let p = s.server.new_partner();
    let api = p.api();
    let mut cfg = keystead_proto::PutCustomOidc {
        issuer: Some(s.issuer.clone()),
        client_id: Some(BROWSER_CLIENT.into()),
        button_label: Some(label.into()),
        token_endpoint_auth_method: Some("client_secret_basic".into()),
        ..Default::default()
    };
    typed(api.put_custom_oidc(&cfg));
    crate::kit::runtime()
        .block_on(api.set_client_secret(&CLIENT_SECRET.to_string().into()))
        .unwrap();
    cfg.enabled = Some(true);
    typed(api.put_custom_oidc(&cfg));
    typed(api.patch_partner(&keystead_proto::PatchPartner {
        allowed_return_urls: vec![
            format!("{}/index.html", s.app_origin),
            format!("{}/done.html", s.app_origin),
        ],
    }));
    p
}

/// Runs one flow of tests/browser/flows.mjs.
fn run_flow(job: Value) -> Value {
    let mut job = job;
    job["chromium"] = json!(CHROMIUM);
    job["screenshots"] = json!(repo_root().join("target/screenshots"));
    let mut child = Command::new("node")
        .arg(repo_root().join("tests/browser/flows.mjs"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(job.to_string().as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let result: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
        panic!(
            "flows.mjs printed no result: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(result["ok"], true, "browser flow failed: {:#}", result);
    result
}

#[test]
fn the_example_app_signs_in_with_the_sdk_and_signs_a_message() {
    let s = stage();
    let p = partner(s, "Continue with Acme ID");
    let login = unique("sdk-");
    let app_url = format!(
        "{}/index.html?apiKey={}&keystead={}",
        s.app_origin, p.publishable_key, s.server.url
    );
    let r = run_flow(json!({
        "flow": "sdk", "appUrl": app_url, "appOrigin": s.app_origin, "login": login,
    }));
    assert_eq!(r["label"], "Continue with Acme ID", "{r:#}");
    let unstarted = r["unstartedError"].as_str().unwrap();
    assert!(unstarted.contains("state_invalid"), "{unstarted}");
    assert!(
        !r["unstartedUrl"].as_str().unwrap().contains("forged"),
        "{r:#}"
    );
    let address = r["address"].as_str().unwrap();
    assert!(address.starts_with("0x") && address.len() == 42, "{r:#}");
    assert_eq!(r["error"], "", "{r:#}");
    // the login code and state are gone from the address bar
    let after = r["urlAfterLogin"].as_str().unwrap();
    assert!(
        !after.contains("login_code") && !after.contains("state="),
        "{after}"
    );
    // no token ever in a URL the browser requested
    for u in r["requests"].as_array().unwrap() {
        assert!(!u.as_str().unwrap().contains("kst_"), "token in a URL: {u}");
    }
    // the PKCE verifier was kept for this tab only and used up
    let keys: Vec<&str> = r["sessionStorageKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(!keys.contains(&"keystead.pending"), "{keys:?}");
    // the signature is checked outside the browser, by ethers
    let checked = verify(json!([{
        "kind": "evm-personal", "message": r["message"], "signature": r["signature"], "address": address,
    }]));
    assert_eq!(checked[0]["ok"], true, "{checked:?}");
}

fn login_url(s: &Stage, p: &Partner, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&format!("{}/login", s.server.url)).unwrap();
    u.query_pairs_mut()
        .append_pair("api_key", &p.publishable_key)
        .append_pair("return_to", &format!("{}/done.html", s.app_origin))
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "app-state-1");
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

#[test]
fn the_hosted_login_page_signs_in_an_app_without_the_sdk() {
    let s = stage();
    let p = partner(s, "Sign in with Hosted Co");
    let pk = pkce();
    let return_to = format!("{}/done.html", s.app_origin);
    let r = run_flow(json!({
        "flow": "hosted", "loginUrl": login_url(s, &p, &pk.challenge, &[]),
        "returnTo": return_to, "login": unique("hosted-"),
    }));
    assert_eq!(r["violations"], json!([]), "axe: {r:#}");
    assert_eq!(r["overflow"], false, "the page scrolls sideways at 375 px");
    assert_eq!(
        r["focused"], "Sign in with Hosted Co",
        "keyboard focus order"
    );
    let csp = r["csp"].as_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    for name in ["hosted-login-desktop.png", "hosted-login-375.png"] {
        assert!(
            repo_root().join("target/screenshots").join(name).exists(),
            "{name}"
        );
    }
    // the app's backend trades the code with the verifier it kept
    let back = url::Url::parse(r["returnedTo"].as_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(q.get("state").map(String::as_str), Some("app-state-1"));
    let session = typed(
        keystead_client::Client::new(s.server.url.clone(), reqwest::Client::new()).create_session(
            &keystead_proto::CreateSession {
                api_key: p.publishable_key.clone(),
                login_code: q["login_code"].clone(),
                code_verifier: pk.verifier,
            },
        ),
    );
    let user = s.server.api(&session.session_token);
    let evm = &session.wallets[0];
    assert_eq!(evm.kind, "EVM");
    let signed = typed(user.sign_message(&evm.id, "hosted hello"));
    let keystead_proto::Signed::Signature { signature } = signed else {
        panic!("{signed:?}")
    };
    let checked = verify(json!([{
        "kind": "evm-personal", "message": "hosted hello", "signature": signature, "address": evm.address,
    }]));
    assert_eq!(checked[0]["ok"], true, "{checked:?}");
}

#[test]
fn an_idp_refusal_comes_back_to_the_hosted_page_in_words_with_try_again() {
    let s = stage();
    let p = partner(s, "Sign in with Deny Co");
    let login_url = login_url(s, &p, &pkce().challenge, &[]);
    let r = run_flow(json!({
        "flow": "hosted-deny", "loginUrl": login_url, "label": "Sign in with Deny Co",
    }));
    let landed = r["landedOn"].as_str().unwrap();
    assert!(
        landed.starts_with(&format!("{}/login?", s.server.url)),
        "{r:#}"
    );
    assert!(landed.contains("error=idp_error"), "{landed}");
    assert!(landed.contains("state=app-state-1"), "{landed}");
    let alert = r["alert"].as_str().unwrap();
    assert!(
        alert.contains("Your sign-in provider reported a problem"),
        "{alert}"
    );
    assert!(alert.contains("access_denied"), "{alert}");
    assert!(alert.contains("Try again"), "{alert}");
    assert!(
        !r["afterRetry"].as_str().unwrap().contains("error="),
        "{r:#}"
    );
    assert_eq!(r["alertAfterRetry"], 0);
    assert_eq!(r["violations"], json!([]), "axe on the error state: {r:#}");
}

#[test]
fn the_hosted_login_page_explains_errors_and_a_switched_off_sign_in() {
    let s = stage();
    let p = partner(s, "Sign in with Errors Inc");
    let challenge = pkce().challenge;
    let page = http(
        "GET",
        &login_url(
            s,
            &p,
            &challenge,
            &[
                ("error", "idp_error"),
                ("error_description", "<b>denied</b>"),
            ],
        ),
        None,
        None,
    );
    assert_eq!(page.status, 200);
    assert!(page.text.contains("role=\"alert\""), "{}", page.text);
    assert!(
        page.text
            .contains("Your sign-in provider reported a problem. (&lt;b&gt;denied&lt;/b&gt;)"),
        "{}",
        page.text
    );
    assert!(page.text.contains(">Try again</a>"));
    assert!(!page.text.contains("<script"), "no script on the page");

    // a return URL the app did not allow: no button, the reason instead
    let bad = http(
        "GET",
        &login_url(s, &p, &challenge, &[]).replace("done.html", "elsewhere.html"),
        None,
        None,
    );
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(
        bad.text.contains("return_to is not one of this app"),
        "{}",
        bad.text
    );

    // switched off: a sentence, not a dead button
    put_oidc(&p, json!({"enabled": false}));
    let page = http("GET", &login_url(s, &p, &challenge, &[]), None, None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("switched off"), "{}", page.text);
    assert!(
        !page.text.contains("/auth/custom_oidc/start"),
        "{}",
        page.text
    );
}

#[test]
fn the_sdk_module_and_its_types_are_served_for_other_origins() {
    let s = stage();
    for (path, kind) in [
        ("/sdk/keystead.js", "text/javascript"),
        ("/sdk/keystead.d.ts", "application/typescript"),
    ] {
        let r = http("GET", &format!("{}{path}", s.server.url), None, None);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.text.contains("authenticateWithOAuth"), "{path}");
        // module scripts are fetched in CORS mode from the app's origin
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        assert!(
            r.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
    }
}

/// A project with a developer who belongs to it: `(project_id, email, password)`.
fn developer(s: &Stage, project: &str) -> (String, String, String) {
    let p = s.server.admin(
        "POST",
        "/v1/admin/projects",
        Some(json!({ "name": project })),
    );
    assert_eq!(p.status, 201, "{}", p.text);
    let project_id = p.json["id"].as_str().unwrap().to_string();
    let email = format!("{}@{}.test", unique("dev-"), project.to_lowercase());
    let password = unique("a-long-password-");
    let d = s.server.admin(
        "POST",
        "/v1/admin/developers",
        Some(json!({ "email": email, "password": password, "project_ids": [project_id] })),
    );
    assert_eq!(d.status, 201, "{}", d.text);
    (project_id, email, password)
}

/// A request to the portal as a browser would send it (cookie, no
/// redirects followed); `form` makes it a form post.
fn portal_request(url: &str, cookie: &str, form: Option<&str>) -> crate::kit::Resp {
    crate::kit::runtime().block_on(async {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let req = match form {
            Some(body) => client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_string()),
            None => client.get(url),
        };
        let r = req.header("cookie", cookie).send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        crate::kit::Resp {
            status,
            headers,
            json: Value::Null,
            text,
        }
    })
}

fn portal_post(url: &str, cookie: &str, body: &str) -> crate::kit::Resp {
    portal_request(url, cookie, Some(body))
}

fn portal_get(url: &str, cookie: &str) -> crate::kit::Resp {
    portal_request(url, cookie, None)
}

#[test]
fn a_developer_configures_custom_oidc_in_the_portal_and_verifies_it() {
    let s = stage();
    let (_, email, password) = developer(s, "Portalco");
    let secret = CLIENT_SECRET;
    let r = run_flow(json!({
        "flow": "portal", "server": s.server.url, "email": email, "password": password,
        "issuer": s.issuer, "clientId": BROWSER_CLIENT, "clientSecret": secret,
        "label": "Sign in with Portalco",
        "returnUrls": [format!("{}/index.html", s.app_origin)],
        "testLogin": "portal-tester",
    }));
    // the field error is the API's message, next to the field, and the
    // other fields keep what was typed
    let issuer_error = r["issuerError"].as_str().unwrap();
    assert!(issuer_error.contains("https"), "{issuer_error}");
    assert_eq!(r["keptClientId"], BROWSER_CLIENT);
    // the secret: never shown again, in no page and no response
    assert!(
        r["secretState"].as_str().unwrap().starts_with("set on 20"),
        "{r:#}"
    );
    assert_eq!(r["secretFieldValue"], "");
    assert_eq!(r["secretInPage"], false);
    assert_eq!(r["secretInResponses"], false);
    // Verify: every check listed, every check passes
    let checks = r["checks"].as_array().unwrap();
    assert!(checks.len() >= 5, "{checks:?}");
    for c in checks {
        assert_eq!(c["status"], "pass", "{c}");
    }
    assert_eq!(
        r["redirectUri"],
        format!("{}/auth/custom_oidc/callback", s.server.url)
    );
    assert_eq!(r["violations"], json!([]), "axe: {r:#}");
    assert_eq!(r["noJsNotice"], "Custom OIDC settings saved.", "{r:#}");
    // Test sign-in: the IdP's form, then the result page with every check
    assert_eq!(r["testResultHeading"], "Test sign-in: passed", "{r:#}");
    let lines = r["testResultChecks"].as_array().unwrap();
    assert_eq!(lines.len(), 14, "{r:#}");
    assert!(
        lines
            .iter()
            .all(|l| l.as_str().unwrap().starts_with("pass")),
        "{r:#}"
    );
    assert!(r["testResultUrl"]
        .as_str()
        .unwrap()
        .contains("/auth/custom_oidc/test-result?test_id=tst_"));
    assert_eq!(r["testResultViolations"], json!([]), "axe: {r:#}");
    assert!(repo_root()
        .join("target/screenshots/portal-custom-oidc.png")
        .exists());

    // what the portal saved is what the CLI prints, and the reverse
    let p = Partner {
        server: s.server.url.clone(),
        project_id: String::new(),
        partner_id: String::new(),
        secret_key: r["secretKey"].as_str().unwrap().to_string(),
        publishable_key: r["publishableKey"].as_str().unwrap().to_string(),
    };
    let shown = p.cli(&["--json", "oidc", "show"], None);
    assert_eq!(shown.code, 0, "{shown:?}");
    let shown = shown.json();
    assert_eq!(shown["issuer"], s.issuer.as_str());
    assert_eq!(shown["button_label"], "Sign in with Portalco (no JS)");
    assert_eq!(shown["enabled"], true);
    assert_eq!(shown["client_secret_set"], true);
    assert_eq!(shown["last_verification"]["ok"], true);
    let set = p.cli(
        &[
            "oidc",
            "configure",
            "--issuer",
            &s.issuer,
            "--client-id",
            BROWSER_CLIENT,
            "--label",
            "Renamed by the CLI",
        ],
        None,
    );
    assert_eq!(set.code, 0, "{set:?}");
    let cookie_value = r["cookie"]["value"].as_str().unwrap();
    let cookie = format!("{}={cookie_value}", r["cookie"]["name"].as_str().unwrap());
    let auth_url = r["authUrl"].as_str().unwrap();
    let page = portal_get(auth_url, &cookie);
    assert_eq!(page.status, 200);
    assert!(
        page.text.contains("value=\"Renamed by the CLI\""),
        "{}",
        page.text
    );
    assert!(!page.text.contains(secret));

    // a form without its CSRF token changes nothing
    let refused = portal_post(
        &format!("{auth_url}/oidc"),
        &cookie,
        "issuer=https%3A%2F%2Fevil.example&client_id=x&button_label=Evil&scopes=openid&token_endpoint_auth_method=none",
    );
    assert_eq!(refused.status, 403, "{}", refused.text);
    let wrong = portal_post(
        &format!("{auth_url}/oidc"),
        &cookie,
        "csrf=not-the-token&issuer=https%3A%2F%2Fevil.example&client_id=x&button_label=Evil&scopes=openid&token_endpoint_auth_method=none",
    );
    assert_eq!(wrong.status, 403, "{}", wrong.text);
    let after = p.cli(&["--json", "oidc", "show"], None).json();
    assert_eq!(after["button_label"], "Renamed by the CLI");

    // another project's pages are not found, and so are unknown ones
    let other = s.server.new_partner();
    let foreign = auth_url.replace(
        auth_url
            .split("/projects/")
            .nth(1)
            .unwrap()
            .split('/')
            .next()
            .unwrap(),
        &other.project_id,
    );
    let foreign = format!(
        "{}/keys/{}/authentication",
        foreign.split("/keys/").next().unwrap(),
        other.partner_id
    );
    assert_eq!(portal_get(&foreign, &cookie).status, 404, "{foreign}");
    let own_project_foreign_key = format!(
        "{}/keys/{}/authentication",
        auth_url.split("/keys/").next().unwrap(),
        other.partner_id
    );
    assert_eq!(portal_get(&own_project_foreign_key, &cookie).status, 404);
    let post_foreign = portal_post(
        &format!("{foreign}/secret"),
        &cookie,
        &format!("csrf={}&client_secret=stolen", r["csrf"].as_str().unwrap()),
    );
    assert_eq!(post_foreign.status, 404);

    // signed out: the cookie opens nothing any more
    let out = portal_post(
        &format!("{}/portal/logout", s.server.url),
        &cookie,
        &format!("csrf={}", r["csrf"].as_str().unwrap()),
    );
    assert_eq!(out.status, 303);
    let gone = portal_get(auth_url, &cookie);
    assert_eq!(gone.status, 303, "back to the sign-in page");
}

#[test]
fn portal_sign_in_gives_one_answer_for_wrong_email_and_password_and_needs_its_token() {
    let s = stage();
    let (_, email, _) = developer(s, "Signinco");
    let get = http("GET", &format!("{}/portal/login", s.server.url), None, None);
    let set_cookie = get.header("set-cookie").unwrap().to_string();
    let csrf_cookie = set_cookie.split(';').next().unwrap().to_string();
    let csrf = csrf_cookie.split_once('=').unwrap().1.to_string();
    let url = format!("{}/portal/login", s.server.url);
    let wrong_password = portal_post(
        &url,
        &csrf_cookie,
        &format!("csrf={csrf}&email={email}&password=wrong-password-123"),
    );
    let wrong_email = portal_post(
        &url,
        &csrf_cookie,
        &format!("csrf={csrf}&email=nobody%40nowhere.test&password=wrong-password-123"),
    );
    assert_eq!(wrong_password.status, 401);
    assert_eq!(wrong_email.status, 401);
    let msg = |t: &str| {
        t.split("role=\"alert\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(msg(&wrong_password.text), msg(&wrong_email.text));
    let no_token = portal_post(
        &url,
        "",
        &format!("email={email}&password=wrong-password-123"),
    );
    assert_eq!(no_token.status, 403);
    // attempts per email are limited: a burst, then 429
    let statuses: Vec<u16> = (0..8)
        .map(|_| {
            portal_post(
                &url,
                &csrf_cookie,
                &format!("csrf={csrf}&email={email}&password=wrong-password-123"),
            )
            .status
        })
        .collect();
    assert!(statuses.contains(&429), "{statuses:?}");
}
