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
