//! The ES256 key that signs session JWTs (`POST /v1/sessions/jwt`). Made
//! once per deployment, sealed in the database like any other secret (so
//! all instances sign with it and `/.well-known/jwks.json` is the same
//! everywhere), and held in memory only inside aws-lc, which wipes it on
//! drop.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use keystead_crypto::random_token;
use keystead_store::PURPOSE_SESSION_JWT_KEY;
use serde_json::{json, Value};

use keystead_store::{PartnerStore, SecretStore, SettingStore, SignInStore};

use super::Sessions;
use crate::error::{Error, Result};

const KID_SETTING: &str = "session_jwt_kid";

pub struct SessionSigner {
    pub kid: String,
    key: EcdsaKeyPair,
}

impl std::fmt::Debug for SessionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SessionSigner {
    /// A compact JWS over `claims`.
    pub fn sign(&self, claims: &Value) -> Result<String> {
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            B64URL.encode(header.to_string()),
            B64URL.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&SystemRandom::new(), signing_input.as_bytes())
            .map_err(|_| Error::internal("ES256 signing failed"))?;
        Ok(format!("{signing_input}.{}", B64URL.encode(sig.as_ref())))
    }
}

fn public_jwk(kid: &str, key: &EcdsaKeyPair) -> Value {
    // Uncompressed SEC1 point: 0x04 ‖ x ‖ y.
    let point = key.public_key().as_ref();
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": B64URL.encode(&point[1..33]),
        "y": B64URL.encode(&point[33..65]),
    })
}

impl<S: PartnerStore + SignInStore + SecretStore + SettingStore> Sessions<S> {
    pub async fn session_signer(&self) -> Result<&SessionSigner> {
        self.signer
            .get_or_try_init(|| self.load_or_create_signer())
            .await
    }

    async fn load_signer(&self, kid: &str) -> Result<SessionSigner> {
        let sealed = self
            .store
            .secret(kid, PURPOSE_SESSION_JWT_KEY)
            .await?
            .ok_or_else(|| Error::internal("the session signing key's sealed key is missing"))?;
        let pkcs8 =
            keystead_crypto::open(self.keys.as_ref(), kid, PURPOSE_SESSION_JWT_KEY, &sealed)
                .await?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
            .map_err(|_| Error::internal("stored session signing key is not valid PKCS#8"))?;
        Ok(SessionSigner {
            kid: kid.to_string(),
            key,
        })
    }

    async fn load_or_create_signer(&self) -> Result<SessionSigner> {
        if let Some(kid) = self.store.setting(KID_SETTING).await? {
            return self.load_signer(&kid).await;
        }
        let doc =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .map_err(|_| Error::internal("key generation failed"))?;
        let kid = random_token("ks-");
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
            .map_err(|_| Error::internal("generated key is not valid PKCS#8"))?;
        let sealed = keystead_crypto::seal(
            self.keys.as_ref(),
            &kid,
            PURPOSE_SESSION_JWT_KEY,
            doc.as_ref(),
        )
        .await?;
        let jwk = public_jwk(&kid, &key).to_string();
        self.store
            .insert_signing_key(&kid, &jwk, &sealed, self.now())
            .await?;
        if self.store.init_setting(KID_SETTING, &kid).await? {
            return Ok(SessionSigner { kid, key });
        }
        // Another instance made one at the same moment: use theirs, and do
        // not leave ours published in the JWKS.
        if let Err(e) = self.store.delete_signing_key(&kid).await {
            tracing::warn!(error = %e, "could not remove an unused session signing key");
        }
        let winner = self
            .store
            .setting(KID_SETTING)
            .await?
            .ok_or_else(|| Error::internal("session key setting vanished"))?;
        self.load_signer(&winner).await
    }

    /// `/.well-known/jwks.json`
    pub async fn session_jwks(&self) -> Result<keystead_proto::Jwks> {
        self.session_signer().await?;
        let keys = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .filter_map(|(_, jwk)| serde_json::from_str(&jwk).ok())
            .collect();
        Ok(keystead_proto::Jwks { keys })
    }
}
