//! The browser side (issue 9): the example app with the browser SDK and the
//! hosted login page, in Debian's chromium driven by playwright-core
//! (tests/browser/flows.mjs), against a keystead whose public URL is where
//! it listens and an oidc-provider that registered that redirect URI.
//! Signatures made in the browser are verified outside it (ethers, in
//! tests/verify). axe-core checks the hosted page; screenshots go to
//! target/screenshots/.

use std::process::{Command, Stdio};
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::kit::{
    free_port, http, new_dir, repo_root, start_idp, start_node_server, tls, typed, verify, Idp,
    Partner, Proc, Server, ServerOpts, CLIENT_SECRET,
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

fn unique(prefix: &str) -> String {
    keystead_crypto::random_token(prefix)[..prefix.len() + 10].to_string()
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

fn pkce() -> (String, String) {
    let verifier = unique("verifier-0123456789abcdefghijklmnopqrstuvwxyz-");
    let challenge = B64URL.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
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
    let (verifier, challenge) = pkce();
    let return_to = format!("{}/done.html", s.app_origin);
    let r = run_flow(json!({
        "flow": "hosted", "loginUrl": login_url(s, &p, &challenge, &[]),
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
                code_verifier: verifier,
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
fn the_hosted_login_page_explains_errors_and_a_switched_off_sign_in() {
    let s = stage();
    let p = partner(s, "Sign in with Errors Inc");
    let (_, challenge) = pkce();
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
    let cfg = p.call("GET", "/v1/partner/custom-oidc", None).json;
    let off = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(
            json!({"issuer": cfg["issuer"], "client_id": cfg["client_id"],
                    "button_label": cfg["button_label"], "enabled": false}),
        ),
    );
    assert_eq!(off.status, 200, "{}", off.text);
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
        let (status, headers, text) = crate::kit::runtime().block_on(async {
            let r = reqwest::get(format!("{}{path}", s.server.url))
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers().clone(),
                r.text().await.unwrap(),
            )
        });
        assert_eq!(status, 200, "{path}");
        assert!(text.contains("authenticateWithOAuth"), "{path}");
        // module scripts are fetched in CORS mode from the app's origin
        assert_eq!(headers["access-control-allow-origin"], "*", "{path}");
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
}
