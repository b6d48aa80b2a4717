//! The partner's first steps through the CLI against a real IdP.

use serde_json::Value;

use crate::kit::{cli_in, idp, new_dir, Server, ServerOpts, CLIENT_SECRET};

fn check<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {v}"))
}

#[test]
fn login_configure_set_secret_verify_passes() {
    let server = Server::shared();
    let p = server.new_partner();
    let home = new_dir("home-");
    let issuer = idp().issuer("main");

    // login reads the secret key from stdin (not a terminal) and saves the profile
    let out = cli_in(
        &home,
        &server.url,
        &[],
        &["login"],
        Some(&format!("{}\n", p.secret_key)),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let rc = std::fs::read_to_string(home.join(".keysteadrc")).unwrap();
    assert!(rc.contains(&p.partner_id), "{rc}");
    assert!(
        !rc.contains(&p.secret_key),
        ".keysteadrc must not hold the secret key"
    );
    let cred = home.join(".config/keystead/credentials.toml");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cred).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // from here on the CLI uses the saved profile, not the environment
    let run = |args: &[&str], stdin: Option<&str>| cli_in(&home, &server.url, &[], args, stdin);
    let out = run(
        &[
            "oidc",
            "configure",
            "--issuer",
            &issuer,
            "--client-id",
            "keystead-test-client_secret_post",
            "--label",
            "Sign in with Acme",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Sign in with Acme"));

    let out = run(&["oidc", "set-secret"], Some(CLIENT_SECRET));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stdout.contains(CLIENT_SECRET));

    let out = run(&["--json", "oidc", "verify"], None);
    assert_eq!(out.code, 0, "verify should pass: {}", out.stdout);
    let v = out.json();
    assert_eq!(v["ok"], true);
    for name in [
        "discovery",
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "jwks",
        "response_types",
        "id_token_signing_alg",
        "token_endpoint_auth_method",
        "scopes",
        "client_secret",
    ] {
        assert_eq!(check(&v, name)["status"], "pass", "{name}: {v}");
    }

    // human output: one line per check, then the verdict
    let out = run(&["oidc", "verify"], None);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("PASS  discovery"), "{}", out.stdout);

    // show: the config, the secret as "set on", the last verification
    let out = run(&["oidc", "show"], None);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("set on "), "{}", out.stdout);
    assert!(out.stdout.contains("last verification:"), "{}", out.stdout);
    assert!(out.stdout.contains("/auth/custom_oidc/callback"));
    let shown = run(&["--json", "oidc", "show"], None).json();
    assert_eq!(shown["last_verification"]["ok"], true);
    assert_eq!(shown["client_secret_set"], true);
    assert_eq!(
        shown["redirect_uri"],
        format!("{}/auth/custom_oidc/callback", crate::kit::PUBLIC_URL)
    );

    // enable now that the secret is there
    let out = run(
        &[
            "--json",
            "oidc",
            "configure",
            "--issuer",
            &issuer,
            "--client-id",
            "keystead-test-client_secret_post",
            "--label",
            "Sign in with Acme",
            "--enable",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["enabled"], true);

    // return URLs
    let out = run(
        &[
            "--json",
            "return-urls",
            "set",
            "https://app.example.com/cb",
            "myapp://callback",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["allowed_return_urls"][1], "myapp://callback");

    // clear-secret disables; remove deletes
    assert_eq!(run(&["oidc", "clear-secret"], None).code, 0);
    let shown = run(&["--json", "oidc", "show"], None).json();
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["client_secret_set"], false);
    assert_eq!(run(&["oidc", "remove"], None).code, 0);
    let out = run(&["oidc", "show"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("custom_oidc_not_configured"),
        "{}",
        out.stderr
    );
}

#[test]
fn verify_without_loopback_exemption_fails_with_address_not_allowed() {
    let server = Server::start(ServerOpts {
        allow_loopback: false,
        ..Default::default()
    });
    let p = server.new_partner();
    let out = p.cli(
        &[
            "oidc",
            "configure",
            "--issuer",
            &idp().issuer("main"),
            "--client-id",
            "c",
            "--label",
            "Acme",
            "--auth-method",
            "none",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = p.cli(&["--json", "oidc", "verify"], None);
    assert_eq!(out.code, 1, "{out:?}");
    let v = out.json();
    assert_eq!(v["ok"], false);
    let d = check(&v, "discovery");
    assert_eq!(d["status"], "fail");
    assert_eq!(d["code"], "address_not_allowed");
    assert!(
        d["detail"].as_str().unwrap().contains("127.0.0.1"),
        "names the host: {d}"
    );
    let human = p.cli(&["oidc", "verify"], None);
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains("FAIL  discovery"), "{}", human.stdout);
    assert!(human.stdout.contains("[address_not_allowed]"));
}

#[test]
fn trailing_slash_issuer_mismatch_fails_with_a_hint() {
    let server = Server::shared();
    let p = server.new_partner();
    let issuer = idp().issuer("main");
    let with_slash = format!("{issuer}/");
    let out = p.cli(
        &[
            "oidc",
            "configure",
            "--issuer",
            &with_slash,
            "--client-id",
            "c",
            "--label",
            "Acme",
            "--auth-method",
            "none",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = p.cli(&["--json", "oidc", "verify"], None);
    assert_eq!(out.code, 1);
    let v = out.json();
    let c = check(&v, "issuer");
    assert_eq!(c["status"], "fail");
    assert!(
        c["detail"].as_str().unwrap().contains("trailing slash"),
        "{c}"
    );
    assert!(c["hint"].as_str().unwrap().contains(&issuer), "{c}");
    // discovery itself worked: the slash is stripped to build its URL
    assert_eq!(check(&v, "discovery")["status"], "pass");
}

#[test]
fn post_method_against_a_basic_only_idp_fails_and_names_the_fix() {
    let server = Server::shared();
    let p = server.new_partner();
    let issuer = idp().issuer("basic-only");
    let configure = |method: &str| {
        p.cli(
            &[
                "oidc",
                "configure",
                "--issuer",
                &issuer,
                "--client-id",
                "keystead-test-client_secret_basic",
                "--label",
                "Acme",
                "--auth-method",
                method,
            ],
            None,
        )
    };
    assert_eq!(configure("client_secret_post").code, 0);
    assert_eq!(p.cli(&["oidc", "set-secret"], Some(CLIENT_SECRET)).code, 0);
    let out = p.cli(&["--json", "oidc", "verify"], None);
    assert_eq!(out.code, 1, "{}", out.stdout);
    let v = out.json();
    let c = check(&v, "token_endpoint_auth_method");
    assert_eq!(c["status"], "fail");
    assert_eq!(c["code"], "auth_method_invalid");
    assert!(
        c["detail"]
            .as_str()
            .unwrap()
            .contains("client_secret_basic"),
        "{c}"
    );
    assert!(
        c["hint"]
            .as_str()
            .unwrap()
            .contains("--auth-method client_secret_basic"),
        "{c}"
    );

    assert_eq!(configure("client_secret_basic").code, 0);
    let out = p.cli(&["--json", "oidc", "verify"], None);
    assert_eq!(out.code, 0, "{}", out.stdout);
}

#[test]
fn cli_exit_codes_follow_the_spec() {
    let server = Server::shared();
    let p = server.new_partner();
    // usage: unknown flag, missing required flag
    assert_eq!(p.cli(&["oidc", "configure", "--nope"], None).code, 2);
    assert_eq!(
        p.cli(
            &["oidc", "configure", "--issuer", "https://x.example"],
            None
        )
        .code,
        2
    );
    // refused by the server
    let out = p.cli(
        &[
            "oidc",
            "configure",
            "--issuer",
            "http://x.example",
            "--client-id",
            "c",
            "--label",
            "L",
        ],
        None,
    );
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("issuer_not_https"), "{}", out.stderr);
    // --json prints the API's error body as it is
    let out = p.cli(
        &[
            "--json",
            "oidc",
            "configure",
            "--issuer",
            "http://x.example",
            "--client-id",
            "c",
            "--label",
            "L",
        ],
        None,
    );
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["error"]["code"], "issuer_not_https");
    // no secret key at all
    let out = crate::kit::cli(&server.url, &[], &["oidc", "show"], None);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("keystead login"));
    // the secret is never an argument
    assert_eq!(p.cli(&["oidc", "set-secret", "s3cret"], None).code, 2);
}

#[test]
fn admin_cli_creates_project_key_and_developer() {
    let server = Server::shared();
    let env = [("KEYSTEAD_ADMIN_TOKEN", server.admin_token.as_str())];
    let out = crate::kit::cli(
        &server.url,
        &env,
        &["--json", "admin", "projects", "create", "--name", "Acme"],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let project = out.json()["id"].as_str().unwrap().to_string();
    let out = crate::kit::cli(
        &server.url,
        &env,
        &[
            "admin",
            "api-keys",
            "create",
            "--project",
            &project,
            "--name",
            "web",
        ],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("sk_") && out.stdout.contains("shown only this once"));
    let out = crate::kit::cli(
        &server.url,
        &env,
        &[
            "--json",
            "admin",
            "developers",
            "create",
            "--email",
            "dev@example.com",
            "--project",
            &project,
        ],
        Some("a long enough password\n"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.json()["email"], "dev@example.com");
    assert!(!out.stdout.contains("a long enough password"));
    // without the admin token: usage error, nothing sent
    let out = crate::kit::cli(
        &server.url,
        &[],
        &["admin", "projects", "create", "--name", "X"],
        None,
    );
    assert_eq!(out.code, 2);
}

#[test]
fn localhost_names_are_fetched_only_under_an_allow_list() {
    let issuer = format!("https://localhost:{}/main", idp().port);
    let configure = |p: &crate::kit::Partner| {
        let out = p.cli(
            &[
                "oidc",
                "configure",
                "--issuer",
                &issuer,
                "--client-id",
                "c",
                "--label",
                "Acme",
                "--auth-method",
                "none",
            ],
            None,
        );
        assert_eq!(out.code, 0, "{out:?}");
        p.cli(&["--json", "oidc", "verify"], None).json()
    };
    // dev/tests: localhost resolves into the allowed loopback ranges
    let v = configure(&Server::shared().new_partner());
    assert_eq!(check(&v, "discovery")["status"], "pass", "{v}");
    assert_eq!(
        check(&v, "issuer")["status"],
        "fail",
        "the IdP calls itself 127.0.0.1: {v}"
    );
    // production (no allow list): refused without a lookup
    let strict = Server::start(ServerOpts {
        allow_loopback: false,
        ..Default::default()
    });
    let v = configure(&strict.new_partner());
    assert_eq!(check(&v, "discovery")["code"], "address_not_allowed", "{v}");
}
