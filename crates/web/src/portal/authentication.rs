//! The Authentication screen of an API key: the Custom OIDC card (SPEC
//! §9), its secret, Verify, Test sign-in, and the allowed return URLs.

use super::*;

/// The screen's routes, under `/portal/projects/{project}/keys/{key}/authentication`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/portal/projects/{project}/keys/{key}/authentication",
            get(authentication),
        )
        .route(
            "/portal/projects/{project}/keys/{key}/authentication/oidc",
            post(save_oidc),
        )
        .route(
            "/portal/projects/{project}/keys/{key}/authentication/secret",
            post(save_secret),
        )
        .route(
            "/portal/projects/{project}/keys/{key}/authentication/secret/clear",
            post(clear_secret),
        )
        .route(
            "/portal/projects/{project}/keys/{key}/authentication/verify",
            post(verify),
        )
        .route(
            "/portal/projects/{project}/keys/{key}/authentication/test-login",
            post(test_login),
        )
        .route(
            "/portal/projects/{project}/keys/{key}/authentication/return-urls",
            post(save_return_urls),
        )
}

#[derive(Template)]
#[template(path = "portal/test_login.html")]
struct TestLoginPage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    url: &'a str,
    test_id: &'a str,
    failed: bool,
    back: &'a str,
}

/// What the Custom OIDC card's fields hold.
#[derive(Debug, Clone, Default)]
struct CardForm {
    issuer: String,
    client_id: String,
    scopes: String,
    method: String,
    label: String,
    enabled: bool,
    /// One per line.
    domains: String,
    require_verified_email: bool,
    allow_sign_up: bool,
}

/// An error next to each field (the API's message), or above the card.
#[derive(Debug, Default)]
struct CardErrors {
    issuer: Option<String>,
    client_id: Option<String>,
    scopes: Option<String>,
    method: Option<String>,
    label: Option<String>,
    enabled: Option<String>,
    domains: Option<String>,
    secret: Option<String>,
    return_urls: Option<String>,
    general: Option<String>,
}

impl CardErrors {
    /// The field an API error belongs to.
    fn from_error(e: &Error) -> Self {
        let d = e.detail();
        let msg = match &d.hint {
            Some(h) => format!("{} ({h})", d.message),
            None => d.message.clone(),
        };
        let mut out = CardErrors::default();
        let slot = match d.code {
            ErrorCode::IssuerInvalid | ErrorCode::IssuerNotHttps => &mut out.issuer,
            ErrorCode::ClientIdInvalid => &mut out.client_id,
            ErrorCode::ScopesInvalid => &mut out.scopes,
            ErrorCode::AuthMethodInvalid => &mut out.method,
            ErrorCode::ButtonLabelInvalid => &mut out.label,
            ErrorCode::ClientSecretRequired => &mut out.enabled,
            ErrorCode::ClientSecretInvalid | ErrorCode::ClientSecretNotAllowed => &mut out.secret,
            ErrorCode::ReturnUrlInvalid => &mut out.return_urls,
            ErrorCode::EmailDomainInvalid => &mut out.domains,
            _ => &mut out.general,
        };
        *slot = Some(msg);
        out
    }

    /// Every refusal of a secret shows at the secret's field.
    fn at_secret(e: &Error) -> Self {
        let mut errors = CardErrors::from_error(e);
        if errors.secret.is_none() {
            errors.secret = errors.general.take().or(errors.enabled.take());
        }
        errors
    }

    /// Above the card: an error that belongs to no field.
    fn general(e: &Error) -> Self {
        CardErrors {
            general: Some(e.detail().message),
            ..CardErrors::default()
        }
    }
}

/// What the screen shows besides the stored values.
struct Card {
    /// The submitted fields, kept after a refusal.
    form: Option<CardForm>,
    errors: CardErrors,
    notice: Option<String>,
    status: StatusCode,
    /// The submitted return URLs, kept after a refusal.
    return_urls: Option<String>,
}

impl Default for Card {
    fn default() -> Self {
        Card {
            form: None,
            errors: CardErrors::default(),
            notice: None,
            status: StatusCode::OK,
            return_urls: None,
        }
    }
}

/// The non-empty lines of a text area, trimmed.
fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

#[derive(Template)]
#[template(path = "portal/authentication.html")]
struct AuthPage<'a> {
    signed_in: Option<&'a str>,
    csrf: &'a str,
    base: String,
    project_name: String,
    key_name: String,
    publishable_key: String,
    form: CardForm,
    methods: &'static [&'static str],
    errors: CardErrors,
    notice: Option<String>,
    configured: bool,
    secret_set_on: Option<String>,
    redirect_uri: String,
    verification: Option<proto::Verification>,
    return_urls: String,
}

#[derive(Deserialize, Default)]
struct Notice {
    saved: Option<String>,
}

struct Screen {
    dev: DeveloperSession,
    auth: keystead_domain::PartnerAuth,
    project_name: String,
    base: String,
}

/// The screen of a form post: the developer's key, and the form's CSRF
/// token checked before anything else happens.
async fn posted(
    s: &AppState,
    dev: Dev,
    project: &str,
    key: &str,
    csrf: &str,
) -> Result<Screen, Response> {
    let sc = screen(s, dev, project, key).await?;
    if s.services.portal.csrf_ok(&sc.dev, csrf) {
        Ok(sc)
    } else {
        Err(csrf_refused(&sc.dev))
    }
}

async fn screen(s: &AppState, dev: Dev, project: &str, key: &str) -> Result<Screen, Response> {
    let portal = &s.services.portal;
    let p = portal
        .project(&dev.session, project)
        .await
        .map_err(|e| error_page(Some(&dev.session), &e))?;
    let auth = portal
        .partner(&dev.session, project, key)
        .await
        .map_err(|e| error_page(Some(&dev.session), &e))?;
    Ok(Screen {
        base: format!("/portal/projects/{project}/keys/{key}/authentication"),
        dev: dev.session,
        auth,
        project_name: p.name,
    })
}

/// The card's auth methods, in the order the select lists them.
const METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];

/// Renders the screen from what is stored, with `form`/`errors` when a
/// submission failed (its values stay in the fields).
async fn render_auth(s: &AppState, sc: &Screen, card: Card) -> Response {
    let Card {
        form: submitted,
        errors,
        notice,
        status,
        return_urls,
    } = card;
    let config: &Configuration = &s.services.configuration;
    let stored = match config.get_custom_oidc(&sc.auth).await {
        Ok(c) => Some(c),
        Err(e) if e.code() == ErrorCode::CustomOidcNotConfigured => None,
        Err(e) => return error_page(Some(&sc.dev), &e),
    };
    let partner = &sc.auth.partner;
    let form = submitted.unwrap_or_else(|| match &stored {
        Some(c) => CardForm {
            issuer: c.issuer.clone(),
            client_id: c.client_id.clone(),
            scopes: c.scopes.clone(),
            method: c.token_endpoint_auth_method.clone(),
            label: c.button_label.clone(),
            enabled: c.enabled,
            domains: c.allowed_email_domains.join("\n"),
            require_verified_email: c.require_verified_email,
            allow_sign_up: c.allow_sign_up,
        },
        None => CardForm {
            scopes: keystead_domain::rules::DEFAULT_SCOPES.into(),
            method: "client_secret_basic".into(),
            allow_sign_up: true,
            ..CardForm::default()
        },
    });
    html(
        status,
        AuthPage {
            signed_in: Some(&sc.dev.email),
            csrf: &sc.dev.csrf_token,
            base: sc.base.clone(),
            project_name: sc.project_name.clone(),
            key_name: partner.name.clone(),
            publishable_key: partner.publishable_key.clone(),
            form,
            methods: &METHODS,
            errors,
            notice,
            configured: stored.is_some(),
            secret_set_on: stored
                .as_ref()
                .and_then(|c| c.client_secret_updated_at.clone())
                .map(|d| d.chars().take(10).collect()),
            redirect_uri: s.services.ops.config().redirect_uri(),
            verification: stored.and_then(|c| c.last_verification),
            return_urls: return_urls.unwrap_or_else(|| partner.allowed_return_urls.join("\n")),
        }
        .render(),
    )
}

async fn authentication(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Query(n): Query<Notice>,
) -> Result<Response, Response> {
    let sc = screen(&s, dev, &project, &key).await?;
    let notice = n.saved.map(|what| match what.as_str() {
        "oidc" => "Custom OIDC settings saved.".to_string(),
        "secret" => "Client secret saved. It cannot be shown again.".to_string(),
        "secret-cleared" => "Client secret removed.".to_string(),
        "verify" => "Verification finished; the results are below.".to_string(),
        "urls" => "Allowed return URLs saved.".to_string(),
        _ => "Saved.".to_string(),
    });
    Ok(render_auth(
        &s,
        &sc,
        Card {
            notice,
            ..Card::default()
        },
    )
    .await)
}

fn saved(sc: &Screen, what: &str) -> Response {
    Redirect::to(&format!("{}?saved={what}", sc.base)).into_response()
}

#[derive(Deserialize)]
struct OidcForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    scopes: String,
    #[serde(default)]
    token_endpoint_auth_method: String,
    #[serde(default)]
    button_label: String,
    enabled: Option<String>,
    #[serde(default)]
    allowed_email_domains: String,
    require_verified_email: Option<String>,
    allow_sign_up: Option<String>,
}

async fn save_oidc(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Form(f): Form<OidcForm>,
) -> Result<Response, Response> {
    let sc = posted(&s, dev, &project, &key, &f.csrf).await?;
    let enabled = f.enabled.is_some();
    let require_verified_email = f.require_verified_email.is_some();
    let allow_sign_up = f.allow_sign_up.is_some();
    let req = proto::PutCustomOidc {
        issuer: Some(f.issuer.trim().to_string()),
        client_id: Some(f.client_id.trim().to_string()),
        button_label: Some(f.button_label.clone()),
        scopes: Some(f.scopes.clone()),
        token_endpoint_auth_method: Some(f.token_endpoint_auth_method.clone()),
        enabled: Some(enabled),
        allowed_email_domains: Some(lines(&f.allowed_email_domains)),
        require_verified_email: Some(require_verified_email),
        allow_sign_up: Some(allow_sign_up),
    };
    Ok(
        match s
            .services
            .configuration
            .put_custom_oidc(&sc.auth, &req)
            .await
        {
            Ok(_) => saved(&sc, "oidc"),
            Err(e) => {
                let form = CardForm {
                    issuer: f.issuer,
                    client_id: f.client_id,
                    scopes: f.scopes,
                    method: f.token_endpoint_auth_method,
                    label: f.button_label,
                    enabled,
                    domains: f.allowed_email_domains,
                    require_verified_email,
                    allow_sign_up,
                };
                let card = Card {
                    form: Some(form),
                    ..Card::default()
                };
                refused(&s, &sc, &e, CardErrors::from_error, card).await
            }
        },
    )
}

#[derive(Deserialize)]
struct SecretForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    client_secret: String,
}

async fn save_secret(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Form(f): Form<SecretForm>,
) -> Result<Response, Response> {
    let secret = SecretString::from(f.client_secret);
    let sc = posted(&s, dev, &project, &key, &f.csrf).await?;
    Ok(
        match s
            .services
            .configuration
            .set_client_secret(&sc.auth, &secret)
            .await
        {
            Ok(()) => saved(&sc, "secret"),
            Err(e) => refused(&s, &sc, &e, CardErrors::at_secret, Card::default()).await,
        },
    )
}

async fn clear_secret(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Response> {
    let sc = posted(&s, dev, &project, &key, &f.csrf).await?;
    Ok(
        match s.services.configuration.clear_client_secret(&sc.auth).await {
            Ok(()) => saved(&sc, "secret-cleared"),
            Err(e) => refused(&s, &sc, &e, CardErrors::from_error, Card::default()).await,
        },
    )
}

async fn verify(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Response> {
    let sc = posted(&s, dev, &project, &key, &f.csrf).await?;
    let v: &Verify = &s.services.verify;
    Ok(match v.verify_custom_oidc(&sc.auth).await {
        // The result is stored as the last verification and shown there.
        Ok(_) => saved(&sc, "verify"),
        Err(e) => refused(&s, &sc, &e, CardErrors::general, Card::default()).await,
    })
}

/// `Test sign-in`: a test login (SPEC §11) and a link to start it; the
/// browser lands on the result page.
async fn test_login(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, Response> {
    let sc = posted(&s, dev, &project, &key, &f.csrf).await?;
    Ok(
        match s
            .services
            .sign_in
            .create_test_login(&sc.auth.partner.id)
            .await
        {
            // A link, not a redirect: the portal's CSP (`form-action
            // 'self'`) rightly stops a form post from being redirected to
            // the IdP.
            Ok(t) => html(
                StatusCode::OK,
                TestLoginPage {
                    signed_in: Some(sc.dev.email.as_str()),
                    csrf: &sc.dev.csrf_token,
                    failed: t.refused,
                    url: &t.created.authorization_url,
                    test_id: &t.created.test_id,
                    back: &sc.base,
                }
                .render(),
            ),
            Err(e) => refused(&s, &sc, &e, CardErrors::general, Card::default()).await,
        },
    )
}

/// A refusal: the API's answer on the card (where `place` puts it, the
/// submitted values kept in `card`), anything else on the error page,
/// which logs internal failures.
async fn refused(
    s: &AppState,
    sc: &Screen,
    e: &Error,
    place: fn(&Error) -> CardErrors,
    card: Card,
) -> Response {
    if !matches!(e, Error::Api { .. }) {
        return error_page(Some(&sc.dev), e);
    }
    let status = StatusCode::from_u16(e.code().http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    render_auth(
        s,
        sc,
        Card {
            errors: place(e),
            status,
            ..card
        },
    )
    .await
}

#[derive(Deserialize)]
struct UrlsForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    return_urls: String,
}

async fn save_return_urls(
    State(s): State<AppState>,
    dev: Dev,
    Path((project, key)): Path<(String, String)>,
    Form(f): Form<UrlsForm>,
) -> Result<Response, Response> {
    let sc = posted(&s, dev, &project, &key, &f.csrf).await?;
    let req = proto::PatchPartner {
        allowed_return_urls: lines(&f.return_urls),
    };
    Ok(
        match s.services.configuration.patch_partner(&sc.auth, &req).await {
            Ok(_) => saved(&sc, "urls"),
            Err(e) => {
                let card = Card {
                    return_urls: Some(f.return_urls),
                    ..Card::default()
                };
                refused(&s, &sc, &e, CardErrors::from_error, card).await
            }
        },
    )
}
