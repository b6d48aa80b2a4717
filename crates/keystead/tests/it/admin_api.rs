//! Operator routes, health and the OpenAPI document.

use serde_json::json;

use crate::kit::{http, Server};

#[test]
fn admin_routes_need_the_admin_token() {
    let s = Server::shared();
    let r = http(
        "POST",
        &format!("{}/v1/admin/projects", s.url),
        None,
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "unauthorized");
    let r = http(
        "POST",
        &format!("{}/v1/admin/projects", s.url),
        Some("kat_wrong"),
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401);
    // a partner's secret key is not an admin token
    let p = s.new_partner();
    let r = http(
        "POST",
        &format!("{}/v1/admin/projects", s.url),
        Some(&p.secret_key),
        Some(json!({"name": "x"})),
    );
    assert_eq!(r.status, 401);
}

#[test]
fn api_key_secret_is_shown_once_and_stored_hashed() {
    let s = Server::start(Default::default());
    let p = s.new_partner();
    assert!(p.secret_key.starts_with("sk_"));
    assert!(p.publishable_key.starts_with("pk_"));
    let me = p.call("GET", "/v1/partner", None);
    assert_eq!(me.status, 200);
    assert!(!me.text.contains(&p.secret_key));
    let hits = crate::kit::files_containing(&s.data_dir, p.secret_key.as_bytes());
    assert!(hits.is_empty(), "secret key stored in clear: {hits:?}");
    let token_hits =
        crate::kit::files_containing(s.data_dir.parent().unwrap(), s.admin_token.as_bytes());
    // the admin token is only in its own 0600 file
    assert_eq!(
        token_hits,
        vec![s.data_dir.join("admin-token")],
        "{token_hits:?}"
    );
}

#[test]
fn admin_input_errors_are_specific() {
    let s = Server::shared();
    let r = s.admin(
        "POST",
        "/v1/admin/projects/prj_nope/api-keys",
        Some(json!({"name": "web"})),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
    let r = s.admin("POST", "/v1/admin/projects", Some(json!({"name": ""})));
    assert_eq!(r.code(), "invalid_request");
    let r = s.admin(
        "POST",
        "/v1/admin/developers",
        Some(json!({"email": "a@example.com", "password": "short", "project_ids": []})),
    );
    assert_eq!(r.code(), "invalid_request");
    let r = s.admin("POST", "/v1/admin/developers", Some(json!({"email": "b@example.com", "password": "long enough password", "project_ids": ["prj_nope"]})));
    assert_eq!(r.code(), "not_found");
    let r = s.admin("POST", "/v1/admin/developers", Some(json!({"email": "b@example.com", "password": "long enough password", "project_ids": []})));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(!r.text.contains("long enough password"));
    let r = s.admin("POST", "/v1/admin/developers", Some(json!({"email": "B@example.com", "password": "long enough password", "project_ids": []})));
    assert_eq!(r.status, 409);
}

#[test]
fn health_ready_openapi_and_unknown_routes() {
    let s = Server::shared();
    assert_eq!(
        http("GET", &format!("{}/healthz", s.url), None, None).json["status"],
        "ok"
    );
    assert_eq!(
        http("GET", &format!("{}/readyz", s.url), None, None).json["status"],
        "ready"
    );
    let doc = http("GET", &format!("{}/openapi.json", s.url), None, None).json;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/v1/admin/projects",
        "/v1/admin/projects/{id}/api-keys",
        "/v1/admin/developers",
        "/v1/partner",
        "/v1/partner/custom-oidc",
        "/v1/partner/custom-oidc/client-secret",
        "/v1/partner/custom-oidc/verify",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/metrics",
        "/v1/sdk/config",
        "/auth/custom_oidc/start",
        "/auth/custom_oidc/callback",
        "/v1/sessions",
        "/v1/me",
        "/v1/sessions/jwt",
        "/v1/sessions/current",
        "/.well-known/jwks.json",
        "/v1/wallets",
        "/v1/wallets/{id}",
        "/v1/wallets/{id}/sign-message",
        "/v1/wallets/{id}/sign-typed-data",
        "/v1/wallets/{id}/sign-transaction",
        "/v1/wallets/{id}/sign-raw",
        "/v1/me/wallets",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "{path} missing from openapi.json"
        );
    }
    let r = http("GET", &format!("{}/v1/nope", s.url), None, None);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "not_found");
}

#[test]
fn first_start_prints_where_the_admin_token_is() {
    let s = Server::start(Default::default());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_dir.join("admin-token"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let mode = std::fs::metadata(s.data_dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn postgres_backend_serves_the_same_api() {
    let db = crate::kit::postgres_db();
    let s = Server::start(crate::kit::ServerOpts {
        database_url: Some(db),
        ..Default::default()
    });
    let p = s.new_partner();
    let r = p.call("PUT", "/v1/partner/custom-oidc", Some(json!({
        "issuer": crate::kit::idp().issuer("main"), "client_id": "keystead-test-client_secret_post", "button_label": "Acme",
    })));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        p.call(
            "PUT",
            "/v1/partner/custom-oidc/client-secret",
            Some(json!({"client_secret": crate::kit::CLIENT_SECRET}))
        )
        .status,
        204
    );
    let v = p.call("POST", "/v1/partner/custom-oidc/verify", None);
    assert_eq!(v.json["ok"], true, "{}", v.text);
    let g = p.call("GET", "/v1/partner/custom-oidc", None);
    assert_eq!(g.json["last_verification"]["ok"], true);
    assert_eq!(g.json["client_secret_set"], true);
}

#[test]
fn keystead_toml_is_read_and_the_environment_wins() {
    let s = Server::start(crate::kit::ServerOpts {
        public_url_env: false,
        toml: Some(
            "public_url = \"https://auth.from-toml.example\"\n[wallets]\nrate_limit_per_second = 0.01\nrate_limit_burst = 50\n",
        ),
        env: vec![("KEYSTEAD_WALLETS__RATE_LIMIT_BURST", "1")],
        ..Default::default()
    });
    let p = s.new_partner();
    let r = p.call(
        "PUT",
        "/v1/partner/custom-oidc",
        Some(json!({
            "issuer": "https://idp.example.com", "client_id": "c", "button_label": "Acme",
        })),
    );
    assert_eq!(
        r.json["redirect_uri"], "https://auth.from-toml.example/auth/custom_oidc/callback",
        "public_url from keystead.toml"
    );
    // burst 1 from the environment beats 50 from the file
    assert_eq!(p.call("GET", "/v1/wallets/wal_x", None).status, 404);
    assert_eq!(p.call("GET", "/v1/wallets/wal_x", None).status, 429);
}

/// `keystead admin reset-token` against a server's data directory, with the
/// server's environment (no KEYSTEAD_ADMIN_TOKEN or server URL needed).
fn reset_token(s: &Server) -> crate::kit::CliOut {
    let out = std::process::Command::new(crate::kit::BIN)
        .args(["admin", "reset-token"])
        .current_dir(s.data_dir.parent().unwrap())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYSTEAD_DATA_DIR", &s.data_dir)
        .output()
        .unwrap();
    crate::kit::CliOut {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn reset_token_replaces_the_admin_token_and_prints_only_where_it_is() {
    let s = Server::start(Default::default());
    let old = s.admin_token.clone();
    assert!(old.starts_with("kat_"), "{old:?}");
    let create = |token: &str| {
        http(
            "POST",
            &format!("{}/v1/admin/projects", s.url),
            Some(token),
            Some(json!({"name": "x"})),
        )
        .status
    };
    assert_eq!(create(&old), 201);

    let out = reset_token(&s);
    assert_eq!(out.code, 0, "{out:?}");
    let file = s.data_dir.join("admin-token");
    assert!(out.stdout.contains(&file.display().to_string()), "{out:?}");
    let new = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(new.starts_with("kat_") && new != old, "{new:?}");
    assert!(
        !out.stdout.contains(&new) && !out.stderr.contains(&new),
        "the token itself is never printed"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // the running server takes the new token at once, and only it
    assert_eq!(create(&old), 401);
    assert_eq!(create(&new), 201);

    // a restart keeps the reset token (nothing is made again)
    let s = s.restart();
    assert_eq!(s.admin_token, new);
    assert!(s.stdout_line.contains("keystead listening"));
    assert_eq!(
        s.admin("POST", "/v1/admin/projects", Some(json!({"name": "y"})))
            .status,
        201
    );

    // a reset that cannot write the file changes nothing
    let s_dir = s.data_dir.clone();
    std::fs::remove_file(s_dir.join("admin-token")).unwrap();
    std::fs::create_dir(s_dir.join("admin-token")).unwrap();
    let out = reset_token(&s);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("admin-token"), "{out:?}");
    assert_eq!(
        s.admin("POST", "/v1/admin/projects", Some(json!({"name": "z"})))
            .status,
        201
    );
}

#[test]
fn a_first_start_that_cannot_write_the_admin_token_stores_none() {
    let dir = crate::kit::new_dir("server-");
    let data_dir = dir.join("data");
    // something in the way of the file (tests run as root, so no chmod trick)
    std::fs::create_dir_all(data_dir.join("admin-token")).unwrap();
    let out = std::process::Command::new(crate::kit::BIN)
        .args(["serve", "--stop-on-stdin-eof"])
        .current_dir(&dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("KEYSTEAD_LISTEN", "127.0.0.1:0")
        .env("KEYSTEAD_DATA_DIR", &data_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(!stdout.contains("keystead listening"), "{stdout}");
    assert!(stderr.contains("admin-token"), "names the file: {stderr}");

    // obstacle gone: the next start writes a token that works, which it
    // could not if the first start had stored one
    std::fs::remove_dir(data_dir.join("admin-token")).unwrap();
    let s = Server::start(crate::kit::ServerOpts {
        dir: Some(dir),
        ..Default::default()
    });
    assert!(s.admin_token.starts_with("kat_"), "{:?}", s.admin_token);
    let r = s.admin("POST", "/v1/admin/projects", Some(json!({"name": "x"})));
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn an_admin_token_file_without_a_stored_hash_is_adopted() {
    // a start interrupted between writing the file and storing its hash (or
    // a second instance sharing the data directory): the file's token is
    // the one stored, so the file always works
    let dir = crate::kit::new_dir("server-");
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let token = "kat_written_before_an_interrupted_start_0123456789";
    std::fs::write(data_dir.join("admin-token"), format!("{token}\n")).unwrap();
    let s = Server::start(crate::kit::ServerOpts {
        dir: Some(dir),
        ..Default::default()
    });
    assert_eq!(s.admin_token, token);
    let r = s.admin("POST", "/v1/admin/projects", Some(json!({"name": "x"})));
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn every_file_in_the_data_directory_is_private() {
    let s = Server::start(Default::default());
    // a write, so the write-ahead log exists
    s.new_partner();
    use std::os::unix::fs::PermissionsExt;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&s.data_dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(mode & 0o077, 0, "{name} is {:o}", mode & 0o777);
        names.push(name);
    }
    for f in [
        "keystead.db",
        "keystead.db-wal",
        "keystead.db-shm",
        "master.key",
        "admin-token",
    ] {
        assert!(names.iter().any(|n| n == f), "{f} missing from {names:?}");
    }
    let dir = std::fs::metadata(&s.data_dir).unwrap().permissions().mode();
    assert_eq!(dir & 0o077, 0, "data directory is {:o}", dir & 0o777);
}
