//! `keystead oidc …`: the Custom OIDC configuration, its secret, Verify
//! and the test login.

use super::*;

pub(super) async fn oidc(ctx: &Context, cmd: &OidcCmd) -> CliResult {
    const PATH: &str = "/v1/partner/custom-oidc";
    match cmd {
        OidcCmd::Show => {
            let v = ctx.partner(Method::GET, PATH, None).await?;
            ctx.print(&v, render_oidc);
        }
        OidcCmd::Configure(a) => {
            let body = wire(&proto::PutCustomOidc {
                issuer: Some(a.issuer.clone()),
                client_id: Some(a.client_id.clone()),
                button_label: Some(a.label.clone()),
                scopes: a.scopes.clone(),
                token_endpoint_auth_method: a.auth_method.clone(),
                enabled: if a.enable {
                    Some(true)
                } else if a.disable {
                    Some(false)
                } else {
                    None
                },
                allowed_email_domains: if a.any_email_domain {
                    Some(Vec::new())
                } else if a.allowed_email_domains.is_empty() {
                    None
                } else {
                    Some(a.allowed_email_domains.clone())
                },
                require_verified_email: flag(a.require_verified_email, a.no_require_verified_email),
                allow_sign_up: flag(a.allow_sign_up, a.no_sign_up),
            })?;
            let v = ctx.partner(Method::PUT, PATH, Some(&body)).await?;
            ctx.print(&v, |v| format!("Saved.\n{}", render_oidc(v)));
        }
        OidcCmd::SetSecret => {
            // Which key, and whether this server may have secrets, is
            // settled before the secret is asked for.
            let key = ctx.secret_key()?;
            ctx.check_server_trusted("the client secret")?;
            let secret = read_secret("Client secret: ")?;
            let body = serde_json::json!({ "client_secret": secret.expose_secret() });
            let (_, v) = ctx
                .call(
                    Method::PUT,
                    "/v1/partner/custom-oidc/client-secret",
                    &key,
                    Some(&body),
                )
                .await?;
            ctx.print(&v, |_| {
                "Client secret stored. It cannot be shown again.".into()
            });
        }
        OidcCmd::ClearSecret => {
            let v = ctx
                .partner(
                    Method::DELETE,
                    "/v1/partner/custom-oidc/client-secret",
                    None,
                )
                .await?;
            ctx.print(&v, |_| "Client secret removed.".into());
        }
        OidcCmd::Verify => {
            let v = ctx
                .partner(Method::POST, "/v1/partner/custom-oidc/verify", None)
                .await?;
            ctx.print(&v, render_verification);
            if v.get("ok").and_then(Value::as_bool) != Some(true) {
                return Err(failed(ctx, "verification failed"));
            }
        }
        OidcCmd::TestLogin { no_wait, id } => test_login(ctx, *no_wait, id.as_deref()).await?,
        OidcCmd::Remove => {
            let v = ctx.partner(Method::DELETE, PATH, None).await?;
            ctx.print(&v, |_| {
                "Custom OIDC configuration and its secret removed.".into()
            });
        }
    }
    Ok(())
}

/// `keystead oidc test-login`: create a test login (or take `id`), show
/// its URL, wait for the browser to come back, print every check.
async fn test_login(ctx: &Context, no_wait: bool, id: Option<&str>) -> CliResult {
    let (id, url) = match id {
        Some(id) => (id.to_string(), None),
        None => {
            let created = ctx
                .partner(
                    Method::POST,
                    "/v1/partner/custom-oidc/test-logins",
                    Some(&serde_json::json!({})),
                )
                .await?;
            let url = s(&created, "authorization_url");
            let id = s(&created, "test_id");
            if no_wait {
                ctx.print(&created, |_| {
                    format!(
                        "Open this URL in a browser and sign in at your IdP (it expires at {}):\n\n  {url}\n\n\
                         Nothing is written: no user, wallet or session. For the result:\n  keystead oidc test-login --id {id}",
                        s(&created, "expires_at")
                    )
                });
                return Ok(());
            }
            (id, Some(url))
        }
    };
    let path = format!("/v1/partner/custom-oidc/test-logins/{}", path_segment(&id));
    let spinner = std::io::stderr().is_terminal();
    let frames = ['|', '/', '-', '\\'];
    let mut tick = 0usize;
    let v = loop {
        let v = ctx.partner(Method::GET, &path, None).await?;
        if s(&v, "status") != "pending" || no_wait {
            break v;
        }
        // the URL, once the test is seen pending (a test the IdP refused
        // before anyone signed in has its result already); to stderr with
        // --json, so stdout is one JSON value
        if let (0, Some(url)) = (tick, &url) {
            let say = format!(
                "Open this URL in a browser and sign in at your IdP:\n\n  {url}\n\nNothing is written: no user, wallet or session."
            );
            if ctx.json {
                eprintln!("{say}");
            } else {
                out(&say);
            }
        }
        if spinner {
            eprint!(
                "\r{} waiting for the sign-in at the IdP…",
                frames[tick % frames.len()]
            );
        } else if tick == 0 {
            eprintln!("waiting for the sign-in at the IdP…");
        }
        tick += 1;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    if spinner && tick > 0 {
        eprint!("\r{}\r", " ".repeat(40));
    }
    ctx.print(&v, render_test_login);
    match s(&v, "status").as_str() {
        // `--no-wait` on a test nobody finished yet: nothing failed
        "passed" | "pending" => Ok(()),
        status => Err(failed(ctx, format!("test login {status}"))),
    }
}
