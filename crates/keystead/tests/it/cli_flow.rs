//! The partner's first steps through the CLI against a real IdP.

use crate::kit::{check, cli_in, idp, new_dir, Server, ServerOpts, CLIENT_SECRET};

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

// ---- where credentials go (a .keysteadrc in the current directory) ----------

/// A stand-in for a foreign server on loopback: records every request it
/// gets (head and body) and answers each with `status` and `body`.
struct FakeServer {
    url: String,
    addr: std::net::SocketAddr,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl FakeServer {
    fn start(status: u16, body: &'static str) -> FakeServer {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut raw = Vec::new();
                let mut buf = [0u8; 4096];
                // the head, then as much body as content-length says
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    raw.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&raw).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let len = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if raw.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&raw).into_owned());
                let answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        FakeServer {
            url: format!("http://{addr}"),
            addr,
            requests,
            stop,
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
    }
}

/// Runs the CLI in `cwd` with `home` as HOME and no `--server` of its own.
fn run_in(
    cwd: &std::path::Path,
    home: &std::path::Path,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: Option<&str>,
) -> crate::kit::CliOut {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut cmd = Command::new(crate::kit::BIN);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    crate::kit::CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn a_keysteadrc_in_the_current_directory_cannot_redirect_credentials() {
    let server = Server::shared();
    let p = server.new_partner();
    let fake = FakeServer::start(
        200,
        r#"{"partner_id":"prt_fake","project_id":"prj_fake","name":"x","allowed_return_urls":[]}"#,
    );
    // the user logs in to the real server from home
    let home = new_dir("home-");
    let out = cli_in(
        &home,
        &server.url,
        &[],
        &["login"],
        Some(&format!("{}\n", p.secret_key)),
    );
    assert_eq!(out.code, 0, "{out:?}");

    // a cloned repository whose .keysteadrc names a foreign server
    let repo = new_dir("repo-");
    std::fs::write(
        repo.join(".keysteadrc"),
        format!("[profiles.default]\nserver = \"{}\"\n", fake.url),
    )
    .unwrap();
    let refused = |out: &crate::kit::CliOut, what: &str| {
        assert!(
            fake.requests().is_empty(),
            "{what}: the foreign server got {:?}",
            fake.requests()
        );
        assert_eq!(out.code, 2, "{what}: {out:?}");
        assert!(out.stderr.contains("not sending"), "{what}: {}", out.stderr);
        assert!(!out.stdout.contains("prt_fake"), "{what}: {out:?}");
    };
    let out = run_in(&repo, &home, &[], &["oidc", "show"], None);
    refused(&out, "oidc show");
    assert!(
        out.stderr.contains(&server.url) && out.stderr.contains(&fake.url),
        "names both servers: {}",
        out.stderr
    );
    assert!(out.stderr.contains(".keysteadrc"), "{}", out.stderr);
    refused(
        &run_in(&repo, &home, &[], &["wallets", "show", "wal_x"], None),
        "wallets show",
    );
    refused(
        &run_in(
            &repo,
            &home,
            &[],
            &["oidc", "set-secret"],
            Some(CLIENT_SECRET),
        ),
        "oidc set-secret",
    );
    // an explicit --server elsewhere does not take a stored key along either
    refused(
        &run_in(
            &repo,
            &home,
            &[],
            &["--server", &fake.url, "oidc", "show"],
            None,
        ),
        "stored key, --server elsewhere",
    );
    refused(
        &run_in(
            &repo,
            &home,
            &[("KEYSTEAD_SERVER", &fake.url)],
            &["oidc", "show"],
            None,
        ),
        "stored key, KEYSTEAD_SERVER elsewhere",
    );
    // secrets that are not bound to a server: only to a server the user chose
    refused(
        &run_in(
            &repo,
            &home,
            &[("KEYSTEAD_ADMIN_TOKEN", "kat_admin_token_for_the_test")],
            &["admin", "projects", "create", "--name", "X"],
            None,
        ),
        "admin token",
    );
    refused(
        &run_in(
            &repo,
            &home,
            &[("KEYSTEAD_ADMIN_TOKEN", "kat_admin_token_for_the_test")],
            &["admin", "developers", "create", "--email", "a@example.com"],
            Some("a long enough password\n"),
        ),
        "admin developers create",
    );
    refused(
        &run_in(
            &repo,
            &home,
            &[("KEYSTEAD_SECRET_KEY", "sk_from_the_environment")],
            &["oidc", "show"],
            None,
        ),
        "KEYSTEAD_SECRET_KEY",
    );
    refused(
        &run_in(&repo, &home, &[], &["login"], Some("sk_typed_into_login\n")),
        "login",
    );
    // the key is stored with its server
    let creds = std::fs::read_to_string(home.join(".config/keystead/credentials.toml")).unwrap();
    assert!(
        creds.contains(&format!("server = \"{}\"", server.url)),
        "{creds}"
    );

    // the stored key still reaches its own server from there, however spelled
    let spelled = format!("{}/", server.url.replace("http://", "HTTP://"));
    let out = run_in(
        &repo,
        &home,
        &[],
        &["--server", &spelled, "--json", "oidc", "show"],
        None,
    );
    assert_eq!(out.code, 1, "reaches the real server: {out:?}");
    assert!(out.stdout.contains("custom_oidc_not_configured"), "{out:?}");

    // positive control: an explicit --server with an explicit key is the
    // user's choice, and the fake does record it
    let out = run_in(
        &repo,
        &home,
        &[("KEYSTEAD_SECRET_KEY", "sk_chosen_by_the_user")],
        &["--server", &fake.url, "--json", "oidc", "show"],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
    let seen = fake.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("sk_chosen_by_the_user"), "{seen:?}");
    assert!(!seen[0].contains(&p.secret_key));
}

#[test]
fn a_stored_key_without_its_server_is_not_sent() {
    let server = Server::shared();
    let p = server.new_partner();
    let fake = FakeServer::start(200, "{}");
    let home = new_dir("home-");
    // a credentials file from before keys were bound to a server
    let dir = home.join(".config/keystead");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("credentials.toml"),
        format!("[profiles.default]\nsecret_key = \"{}\"\n", p.secret_key),
    )
    .unwrap();
    for server_url in [&server.url, &fake.url] {
        let out = cli_in(&home, server_url, &[], &["oidc", "show"], None);
        assert_eq!(out.code, 2, "{out:?}");
        assert!(out.stderr.contains("keystead login"), "{}", out.stderr);
        assert!(out.stderr.contains("which server"), "{}", out.stderr);
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
    // logging in again binds it
    let out = cli_in(
        &home,
        &server.url,
        &[],
        &["login"],
        Some(&format!("{}\n", p.secret_key)),
    );
    assert_eq!(out.code, 0, "{out:?}");
    let out = cli_in(
        &home,
        &server.url,
        &[],
        &["--json", "return-urls", "set"],
        None,
    );
    assert_eq!(out.code, 0, "{out:?}");
}

// ---- server text on the terminal ----------------------------------------------

#[test]
fn server_text_is_printed_without_control_characters() {
    const ERROR: &str = r#"{"error":{"code":"idp_error","message":"the IdP said \u001b[31mred\u0007\u009b1m\r\nPASS  forged line","hint":"try \u001b]0;title\u0007this"}}"#;
    let fake = FakeServer::start(400, ERROR);
    let key = [("KEYSTEAD_SECRET_KEY", "sk_for_the_fake")];
    let out = crate::kit::cli(&fake.url, &key, &["oidc", "show"], None);
    assert_eq!(out.code, 1, "{out:?}");
    for text in [&out.stdout, &out.stderr] {
        assert!(
            !text
                .chars()
                .any(|c| c == '\u{1b}' || c == '\u{7}' || c == '\u{9b}' || c == '\r'),
            "control characters printed: {text:?}"
        );
    }
    assert!(
        out.stderr.contains("the IdP said [31mred1m"),
        "{:?}",
        out.stderr
    );
    assert!(
        !out.stderr.lines().any(|l| l.starts_with("PASS")),
        "a server newline started a line: {:?}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: try ]0;titlethis"),
        "{:?}",
        out.stderr
    );
    // --json prints the body as it is (JSON escapes, no raw control bytes)
    let out = crate::kit::cli(&fake.url, &key, &["--json", "oidc", "show"], None);
    assert_eq!(out.code, 1);
    let v = out.json();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("the IdP said \u{1b}[31mred\u{7}"),
        "{v}"
    );

    // a successful answer: the Verify details shown by `oidc show`
    const SHOW: &str = r#"{"enabled":false,"issuer":"https://idp.example\u001b[1m","client_id":"c","scopes":"openid","token_endpoint_auth_method":"none","button_label":"Acme\u0007","client_secret_set":false,"client_secret_updated_at":null,"redirect_uri":"http://127.0.0.1:1/auth/custom_oidc/callback","last_verification":{"ok":false,"checked_at":"2025-01-01T00:00:00Z","checks":[{"name":"discovery","status":"fail","detail":"bad \u001b[32mgreen\nPASS  issuer","code":"discovery_failed"}]}}"#;
    let fake = FakeServer::start(200, SHOW);
    let out = crate::kit::cli(&fake.url, &key, &["oidc", "show"], None);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
        "{:?}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("FAIL  discovery  bad [32mgreenPASS  issuer"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("PASS")),
        "{}",
        out.stdout
    );
}
