//! Expiry rules under an injected clock: the login code's 60 s and the
//! session's lifetime are checked by moving a `ManualClock`, not by waiting.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use keystead_crypto::hashing::token_hash;
use keystead_crypto::local::LocalKeyProvider;
use keystead_crypto::KeyProvider;
use keystead_domain::{Clock, DomainConfig, ManualClock, Services, Sessions};
use keystead_net::{Outbound, OutboundConfig};
use keystead_proto::ErrorCode;
use keystead_store::{
    FinishLogin, LoginStateRow, PartnerStore, SignInStore, Store, WalletRow, PURPOSE_WALLET_KEY,
};
use sha2::{Digest, Sha256};

const VERIFIER: &str = "a-verifier-of-the-app-0123456789abcdefghijklmnop";
const T0: i64 = 1_900_000_000;

struct World {
    sessions: Arc<Sessions>,
    sign_in: Arc<keystead_domain::SignIn>,
    store: Store,
    keys: Arc<dyn KeyProvider>,
    clock: ManualClock,
    partner: String,
    _dir: tempfile::TempDir,
}

async fn world(session_ttl: i64) -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("k.db").display()))
        .await
        .unwrap();
    let keys: Arc<dyn KeyProvider> =
        Arc::new(LocalKeyProvider::open_or_create(&dir.path().join("master.key")).unwrap());
    let outbound = Outbound::new(&OutboundConfig::default()).unwrap();
    let clock = ManualClock::at(T0);
    let services = Services::with_clock(
        store.clone(),
        keys.clone(),
        outbound,
        DomainConfig::new("http://127.0.0.1:1".parse().unwrap()),
        Arc::new(clock.clone()),
    );
    store.insert_project("prj_1", "p").await.unwrap();
    store
        .insert_partner(
            "ptn_1",
            "prj_1",
            "p",
            "pk_1",
            &token_hash("sk_1"),
            session_ttl,
        )
        .await
        .unwrap();
    World {
        sessions: services.sessions,
        sign_in: services.sign_in,
        store,
        keys,
        clock,
        partner: "ptn_1".into(),
        _dir: dir,
    }
}

/// A finished sign-in of `sub` at the clock's now: its login code.
async fn signed_in(w: &World, sub: &str, code: &str) {
    let now = w.clock.now();
    let state = format!("state-{code}");
    let challenge = B64URL.encode(Sha256::digest(VERIFIER.as_bytes()));
    w.store
        .insert_login_state(&LoginStateRow {
            state_hash: token_hash(&state),
            partner_id: w.partner.clone(),
            browser_hash: "b".into(),
            issuer: "https://idp.test".into(),
            return_to: "https://app.test/done".into(),
            app_state: None,
            app_code_challenge: challenge.clone(),
            nonce: "n".into(),
            pkce_verifier: "v".into(),
            created_at: now,
            expires_at: now + 600,
            error_to: None,
            test_id: None,
        })
        .await
        .unwrap();
    let known = w
        .store
        .find_identity(&w.partner, "https://idp.test", sub)
        .await
        .unwrap();
    let wallet_id = format!("wal_{code}");
    let sealed = keystead_crypto::seal(w.keys.as_ref(), &wallet_id, PURPOSE_WALLET_KEY, &[7; 32])
        .await
        .unwrap();
    let wallet = WalletRow {
        id: wallet_id,
        partner_id: w.partner.clone(),
        user_id: Some(format!("usr_{sub}")),
        kind: keystead_store::WalletType::Evm,
        address: format!("0x{code}"),
        public_key: "04".into(),
        user_identifier: None,
        user_identifier_type: None,
        status: "READY".into(),
        created_at: now,
    };
    let user = format!("usr_{sub}");
    let identity = format!("idn_{sub}");
    w.store
        .finish_login(&FinishLogin {
            state_hash: &token_hash(&state),
            now,
            partner_id: &w.partner,
            issuer: "https://idp.test",
            sub,
            email: None,
            new_user: known.is_none().then_some((
                user.as_str(),
                identity.as_str(),
                &wallet,
                &sealed,
            )),
            code_hash: &token_hash(code),
            code_challenge: &challenge,
            code_ttl: 60,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn a_login_code_works_for_60_seconds() {
    let w = world(3600).await;
    signed_in(&w, "alice", "klc_early").await;
    signed_in(&w, "alice", "klc_late").await;
    w.clock.advance(59);
    let ok = w
        .sessions
        .create_session("pk_1", "klc_early", VERIFIER)
        .await;
    assert!(ok.is_ok(), "a 59 s old code is redeemed: {ok:?}");
    w.clock.advance(2); // 61 s
    let late = w
        .sessions
        .create_session("pk_1", "klc_late", VERIFIER)
        .await
        .unwrap_err();
    assert_eq!(late.code(), ErrorCode::LoginCodeInvalid);
}

#[tokio::test]
async fn a_session_ends_at_its_lifetime() {
    let w = world(600).await;
    signed_in(&w, "bob", "klc_bob").await;
    let s = w
        .sessions
        .create_session("pk_1", "klc_bob", VERIFIER)
        .await
        .unwrap();
    let token = s.session_token.clone();
    w.clock.advance(599);
    assert!(w.sessions.authenticate_session(&token).await.is_ok());
    w.clock.advance(1); // 600 s: expired
    let gone = w.sessions.authenticate_session(&token).await.unwrap_err();
    assert_eq!(gone.code(), ErrorCode::Unauthorized);
}

/// A sign-in's state lives 10 minutes (SPEC §4): the callback one second
/// before finds it, one second after does not. The IdP's metadata comes
/// from the shared cache row, so nothing leaves the process.
#[tokio::test]
async fn a_login_state_expires_after_ten_minutes() {
    use keystead_domain::login::{CallbackParams, StartParams, STATE_TTL_SECS};
    use keystead_store::{CachedDoc, DocCacheStore, OidcConfigStore};
    assert_eq!(STATE_TTL_SECS, 600);
    let w = world(3600).await;
    let issuer = "https://idp.example.com";
    let cfg = keystead_store::CustomOidcRow {
        partner_id: w.partner.clone(),
        issuer: issuer.into(),
        client_id: "c".into(),
        scopes: "openid".into(),
        auth_method: keystead_model::AuthMethod::None,
        button_label: "Acme".into(),
        enabled: true,
        client_secret_updated_at: None,
        last_verification: None,
        created_at: 0,
        updated_at: 0,
        allowed_email_domains: Vec::new(),
        require_verified_email: false,
        allow_sign_up: true,
    };
    w.store.upsert_custom_oidc(&cfg).await.unwrap();
    w.store
        .set_allowed_return_urls(&w.partner, &["https://app.example.com/done".into()])
        .await
        .unwrap();
    let doc = serde_json::json!({
        "issuer": issuer,
        "authorization_endpoint": "https://idp.example.com/auth",
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
    });
    w.store
        .put_cached_doc(
            "https://idp.example.com/.well-known/openid-configuration",
            &CachedDoc {
                body: doc.to_string(),
                fetched_at: T0,
                expires_at: T0 + 100_000,
            },
        )
        .await
        .unwrap();
    let challenge = B64URL.encode(Sha256::digest(VERIFIER.as_bytes()));
    let start = |state: &str| StartParams {
        api_key: "pk_1".into(),
        return_to: "https://app.example.com/done".into(),
        code_challenge: challenge.clone(),
        code_challenge_method: "S256".into(),
        state: Some(state.into()),
        login_hint: None,
        via_login_page: false,
    };
    // the IdP answers with an error: past the state check, the browser goes
    // back to the app; with an expired state, nowhere
    let callback = |location: &str| {
        let url = url::Url::parse(location).unwrap();
        let state = url
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        CallbackParams {
            state: Some(state),
            error: Some("access_denied".into()),
            ..CallbackParams::default()
        }
    };
    for (age, trusted) in [(STATE_TTL_SECS - 1, true), (STATE_TTL_SECS + 1, false)] {
        let started = w.sign_in.start_login(&start("app")).await.unwrap();
        w.clock.advance(age);
        let failure = w
            .sign_in
            .finish_login(&callback(&started.location), Some(&started.browser_id))
            .await
            .unwrap_err();
        assert_eq!(
            failure.back_to.is_some(),
            trusted,
            "after {age} s: {failure:?}"
        );
        let code = failure.error.code();
        if trusted {
            assert_eq!(code, ErrorCode::IdpError);
        } else {
            assert_eq!(code, ErrorCode::StateInvalid);
        }
    }
}
