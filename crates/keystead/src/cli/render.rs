//! Output: safe printing of server text, and the human-readable views.

use super::*;

/// Writes a line to stdout; a closed pipe (`keystead … | head`) ends the
/// output quietly instead of panicking like `println!`.
pub(super) fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        std::process::exit(0);
    }
}

/// The server's answer with every control character (`char::is_control`:
/// ESC, BEL, CR, newline, C1 controls such as CSI, ...) removed from its
/// strings and keys, for printing to a terminal: text the server (or the
/// partner's IdP behind it) chose can neither send escape sequences nor
/// start a line of its own; the CLI's own newlines are added afterwards.
pub(super) fn clean(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(clean_str(s)),
        Value::Array(a) => Value::Array(a.iter().map(clean).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (clean_str(k), clean(v))).collect())
        }
        other => other.clone(),
    }
}

pub(super) fn clean_str(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).collect()
}

/// An id in a URL path (a space is `%20`, not the form encoding's `+`).
pub(super) fn path_segment(id: &str) -> String {
    keystead_client::segment(id)
}

pub(super) fn render_wallet(w: &Value) -> String {
    table(&[
        ("id", s(w, "id")),
        ("type", s(w, "type")),
        ("status", s(w, "status")),
        ("address", s(w, "address")),
        ("public key", s(w, "publicKey")),
        (
            "identifier",
            format!(
                "{} ({})",
                s(w, "userIdentifier"),
                s(w, "userIdentifierType")
            ),
        ),
        ("created", s(w, "createdAt")),
    ])
}

pub(super) fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// The strings of an array field (missing or wrong type: none).
pub(super) fn strings(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub(super) fn table(rows: &[(&str, String)]) -> String {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn render_partner(v: &Value) -> String {
    let urls = strings(v, "allowed_return_urls");
    let mut out = table(&[
        ("partner_id", s(v, "partner_id")),
        ("project_id", s(v, "project_id")),
        ("name", s(v, "name")),
    ]);
    out.push_str("\nallowed return URLs:");
    if urls.is_empty() {
        out.push_str(" (none)");
    }
    for u in urls {
        out.push_str(&format!("\n  {u}"));
    }
    out
}

pub(super) fn render_oidc(v: &Value) -> String {
    let secret = if v["client_secret_set"].as_bool() == Some(true) {
        format!("set on {}", s(v, "client_secret_updated_at"))
    } else {
        "not set".into()
    };
    let mut out = table(&[
        ("enabled", s(v, "enabled")),
        ("issuer", s(v, "issuer")),
        ("client_id", s(v, "client_id")),
        ("scopes", s(v, "scopes")),
        ("auth method", s(v, "token_endpoint_auth_method")),
        ("button label", s(v, "button_label")),
        ("client secret", secret),
        ("redirect URI", s(v, "redirect_uri")),
        ("email domains", {
            let d = strings(v, "allowed_email_domains");
            if d.is_empty() {
                "any".to_string()
            } else {
                d.join(", ")
            }
        }),
        (
            "verified email",
            if v["require_verified_email"].as_bool() == Some(true) {
                "required".to_string()
            } else {
                "not required".to_string()
            },
        ),
        (
            "sign-up",
            if v["allow_sign_up"].as_bool() == Some(false) {
                "closed (existing users only)".to_string()
            } else {
                "open".to_string()
            },
        ),
    ]);
    match v.get("last_verification") {
        Some(lv) if lv.is_object() => {
            out.push_str("\n\nlast verification:\n");
            out.push_str(&render_verification(lv));
        }
        _ => out.push_str("\n\nlast verification: never (run `keystead oidc verify`)"),
    }
    out
}

pub(super) fn render_verification(v: &Value) -> String {
    let Ok(ver) = serde_json::from_value::<proto::Verification>(v.clone()) else {
        return v.to_string();
    };
    let mut out = render_checks(&ver.checks);
    out.push_str(&format!(
        "{} at {}",
        if ver.ok {
            "ok: no check failed"
        } else {
            "NOT OK: at least one check failed"
        },
        ver.checked_at
    ));
    out
}

/// The result of a test login: every check, then what a real sign-in
/// would have done.
pub(super) fn render_test_login(v: &Value) -> String {
    let Ok(t) = serde_json::from_value::<proto::TestLogin>(v.clone()) else {
        return v.to_string();
    };
    if t.status == "pending" || t.status == "expired" {
        return format!("test login {}: {}", t.test_id, t.status);
    }
    let mut out = render_checks(&t.checks);
    if let Some(o) = &t.outcome {
        out.push_str(&format!(
            "\nA real sign-in would: {}",
            match (o.user.as_str(), &o.user_id) {
                ("existing", Some(id)) => format!("sign in the existing user {id}"),
                _ => "create a new user with a new EVM wallet".to_string(),
            }
        ));
        for w in &o.wallets {
            out.push_str(&format!("\n  wallet {} {}", w.kind, w.address));
        }
        if !o.would_claim.is_empty() {
            out.push_str(&format!(
                "\n  and claim the pregenerated wallets {}",
                o.would_claim.join(", ")
            ));
        }
        out.push('\n');
    }
    if let Some(obj) = t.claims.as_object().filter(|o| !o.is_empty()) {
        out.push_str("\nclaims (source):\n");
        for (k, val) in obj {
            out.push_str(&format!(
                "  {k} = {val} ({})\n",
                t.claim_sources.get(k).map_or("?", String::as_str)
            ));
        }
    }
    out.push_str(&format!(
        "{}: test login {}{}",
        if t.status == "passed" { "ok" } else { "NOT OK" },
        t.status,
        t.finished_at
            .as_deref()
            .map(|f| format!(" at {f}"))
            .unwrap_or_default()
    ));
    out
}

/// Checks as `oidc verify` prints them: status, name, detail, hint.
fn render_checks(checks: &[proto::Check]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let status = match c.status {
            CheckStatus::Pass => "PASS",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Skip => "SKIP",
        };
        out.push_str(&format!("{status}  {:<width$}  {}", c.name, c.detail));
        if let Some(code) = c.code {
            out.push_str(&format!(" [{code}]"));
        }
        if let Some(h) = &c.hint {
            out.push_str(&format!("\n      {:<width$}  hint: {h}", ""));
        }
        out.push('\n');
    }
    out
}
