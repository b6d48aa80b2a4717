//! ID token validation (SPEC §4) on top of `jsonwebtoken` (aws-lc-rs
//! backend), which checks the signature; the alg allow-list, key fit by
//! `kty`/`crv`/`use`/`alg`, `kid` selection and every claim rule (`iss`,
//! `aud`/`azp`, `exp`/`iat`/`nbf` against the injected clock, `nonce`,
//! `sub`) are checked here, each once.

use std::collections::HashSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use keystead_model::SUPPORTED_ALGS;

pub const LEEWAY_SECS: i64 = 60;

/// Algorithms a JWK can verify, by its `kty`/`crv`/`alg`/`use`.
pub fn jwk_algs(key: &Value) -> Vec<&'static str> {
    if key
        .get("use")
        .and_then(Value::as_str)
        .is_some_and(|u| u != "sig")
    {
        return Vec::new();
    }
    let kty = key.get("kty").and_then(Value::as_str).unwrap_or("");
    let crv = key.get("crv").and_then(Value::as_str).unwrap_or("");
    let family: &[&'static str] = match (kty, crv) {
        ("RSA", _) if key.get("n").is_some() && key.get("e").is_some() => {
            &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
        }
        ("EC", "P-256") if key.get("x").is_some() && key.get("y").is_some() => &["ES256"],
        ("EC", "P-384") if key.get("x").is_some() && key.get("y").is_some() => &["ES384"],
        ("OKP", "Ed25519") if key.get("x").is_some() => &["EdDSA"],
        _ => &[],
    };
    match key.get("alg").and_then(Value::as_str) {
        Some(alg) => family.iter().copied().filter(|a| *a == alg).collect(),
        None => family.to_vec(),
    }
}

fn alg_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// The header names a `kid` the JWKS does not have: refetch and retry.
    UnknownKid(String),
    /// Anything else, with the rule it broke; the sentence is safe to show
    /// (no token content).
    Invalid(IdTokenCheck, String),
}

/// The rules an ID token is held to, named as the test login (SPEC §11)
/// reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenCheck {
    /// Well-formed, an accepted algorithm, a key of the JWKS, the signature.
    Signature,
    Issuer,
    /// `aud` and `azp`.
    Audience,
    /// `exp`, `iat`, `nbf`.
    Times,
    Nonce,
    Subject,
}

impl IdTokenCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            IdTokenCheck::Signature => "id_token_signature",
            IdTokenCheck::Issuer => "id_token_issuer",
            IdTokenCheck::Audience => "id_token_audience",
            IdTokenCheck::Times => "id_token_times",
            IdTokenCheck::Nonce => "nonce",
            IdTokenCheck::Subject => "subject",
        }
    }
}

fn invalid(msg: impl Into<String>) -> TokenError {
    TokenError::Invalid(IdTokenCheck::Signature, msg.into())
}

fn invalid_at(check: IdTokenCheck, msg: impl Into<String>) -> TokenError {
    TokenError::Invalid(check, msg.into())
}

/// What keystead keeps from a valid ID token.
#[derive(Debug, Clone)]
pub struct IdClaims {
    pub sub: String,
    pub claims: Value,
}

impl IdClaims {
    /// The email, only when the IdP says it is verified.
    pub fn verified_email(&self) -> Option<String> {
        verified_email(&self.claims)
    }
}

pub fn verified_email(claims: &Value) -> Option<String> {
    let email = claims.get("email")?.as_str()?;
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        // Some IdPs (e.g. older Cognito) send the string form.
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    (verified && !email.is_empty()).then(|| email.to_string())
}

fn decoding_key(jwk: &Value, alg: Algorithm) -> Result<DecodingKey, TokenError> {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str).unwrap_or("");
    let r = match alg {
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_components(s("x"), s("y")),
        Algorithm::EdDSA => DecodingKey::from_ed_components(s("x")),
        _ => DecodingKey::from_rsa_components(s("n"), s("e")),
    };
    r.map_err(|_| invalid("the IdP's signing key in its JWKS is malformed"))
}

/// Validates `token` against `jwks` for this issuer, client and nonce.
pub fn validate_id_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Result<IdClaims, TokenError> {
    // The header decoder only knows real algorithms: "none" fails here.
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| invalid("the ID token is malformed or uses an unsupported algorithm (alg none is never accepted)"))?;
    let alg = header.alg;
    // One list of accepted names (rules::SUPPORTED_ALGS) for Verify and
    // for tokens; HS* and `none` are not in it.
    if !SUPPORTED_ALGS.contains(&alg_name(alg)) {
        return Err(invalid(format!(
            "the ID token is signed with {}, which keystead never accepts; use an asymmetric algorithm such as RS256 or ES256",
            alg_name(alg)
        )));
    }
    let name = alg_name(alg);
    let keys: &[Value] = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let fitting: Vec<&Value> = keys
        .iter()
        .filter(|k| jwk_algs(k).contains(&name))
        .collect();
    let key =
        match &header.kid {
            Some(kid) => {
                let with_kid: Vec<&&Value> = fitting
                    .iter()
                    .filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
                    .collect();
                match with_kid.as_slice() {
                    [one] => **one,
                    [] => return Err(TokenError::UnknownKid(kid.clone())),
                    _ => return Err(invalid("the IdP's JWKS has several keys with the same kid")),
                }
            }
            None => match fitting.as_slice() {
                [one] => *one,
                // Maybe the IdP rotated to a new key: refetch, like a new kid.
                [] => return Err(TokenError::UnknownKid(String::new())),
                _ => return Err(invalid(
                    "the ID token has no kid and the IdP's JWKS has several keys for its algorithm",
                )),
            },
        };
    let dk = decoding_key(key, alg)?;
    // jsonwebtoken checks the signature only; every claim rule is checked
    // once, below, against the injected clock.
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.required_spec_claims = HashSet::new();
    let data = jsonwebtoken::decode::<Value>(token, &dk, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        match e.kind() {
            K::InvalidSignature => {
                invalid("the ID token's signature does not verify with the IdP's key")
            }
            K::InvalidAlgorithm => invalid("the ID token's algorithm does not fit the IdP's key"),
            _ => invalid("the ID token could not be validated"),
        }
    })?;
    let claims = data.claims;
    let rules = Rules {
        claims: &claims,
        issuer,
        client_id,
        nonce,
        now,
    };
    rules
        .iss()
        .map_err(|m| invalid_at(IdTokenCheck::Issuer, m))?;
    rules
        .aud()
        .map_err(|m| invalid_at(IdTokenCheck::Audience, m))?;
    rules
        .times()
        .map_err(|m| invalid_at(IdTokenCheck::Times, m))?;
    rules
        .nonce()
        .map_err(|m| invalid_at(IdTokenCheck::Nonce, m))?;
    let sub = rules
        .sub()
        .map_err(|m| invalid_at(IdTokenCheck::Subject, m))?
        .to_string();
    Ok(IdClaims { sub, claims })
}

/// The claim rules of SPEC §4, each on its own; an error is the sentence
/// saying what is wrong. Only for a token whose signature verified.
struct Rules<'a> {
    claims: &'a Value,
    issuer: &'a str,
    client_id: &'a str,
    nonce: &'a str,
    now: i64,
}

impl Rules<'_> {
    fn text(&self, k: &str) -> Option<&str> {
        self.claims.get(k).and_then(Value::as_str)
    }

    fn number(&self, k: &str) -> Option<i64> {
        self.claims.get(k).and_then(Value::as_f64).map(|f| f as i64)
    }

    fn iss(&self) -> Result<(), String> {
        match self.text("iss") {
            Some(i) if i == self.issuer => Ok(()),
            Some(_) => Err(format!(
                "the ID token's iss is not the configured issuer {}",
                self.issuer
            )),
            None => Err("the ID token has no iss claim".to_string()),
        }
    }

    fn aud(&self) -> Result<(), String> {
        let auds: Option<Vec<&str>> = match self.claims.get("aud") {
            Some(Value::String(a)) => Some(vec![a.as_str()]),
            Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
            _ => None,
        };
        match (auds, self.text("azp")) {
            (None, _) => Err("the ID token has no aud claim (or one of the wrong type)".into()),
            (Some(a), _) if !a.contains(&self.client_id) => Err(format!(
                "the ID token's aud does not contain the client id {}",
                self.client_id
            )),
            (Some(_), Some(azp)) if azp != self.client_id => {
                Err("the ID token's azp is not this client".into())
            }
            (Some(a), None) if a.len() > 1 => {
                Err("the ID token has several audiences but no azp naming this client".into())
            }
            (Some(_), _) => Ok(()),
        }
    }

    /// The IdP's clock against keystead's (`iat` − now), when the times hold.
    fn times(&self) -> Result<i64, String> {
        let clock = |s: i64| {
            format!("the IdP's clock differs from keystead's by {s} s ({LEEWAY_SECS} s allowed)")
        };
        let (Some(exp), Some(iat)) = (self.number("exp"), self.number("iat")) else {
            return Err(if self.number("exp").is_none() {
                "the ID token has no exp claim".into()
            } else {
                "the ID token has no iat claim".into()
            });
        };
        let skew = iat - self.now;
        if exp + LEEWAY_SECS < self.now {
            return Err(format!(
                "the ID token has expired ({} s ago); {}",
                self.now - exp,
                clock(skew)
            ));
        }
        if skew > LEEWAY_SECS {
            return Err(format!(
                "the ID token was issued in the future (iat); {}",
                clock(skew)
            ));
        }
        match self.number("nbf") {
            Some(nbf) if nbf > self.now + LEEWAY_SECS => Err(format!(
                "the ID token is not valid yet (nbf in the future); {}",
                clock(skew)
            )),
            _ => Ok(skew),
        }
    }

    fn nonce(&self) -> Result<(), String> {
        match self.text("nonce") {
            Some(n)
                if keystead_crypto::hashing::constant_time_eq(
                    n.as_bytes(),
                    self.nonce.as_bytes(),
                ) =>
            {
                Ok(())
            }
            Some(_) => Err("the ID token's nonce does not match this login".into()),
            None => Err("the ID token has no nonce".into()),
        }
    }

    fn sub(&self) -> Result<&str, String> {
        match self.claims.get("sub") {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(s),
            Some(_) => Err(
                "the ID token's sub is not a valid identifier (a string of 1 to 255 characters)"
                    .into(),
            ),
            None => Err("the ID token has no sub claim".into()),
        }
    }
}

/// Each claim rule on its own, in the fixed order of the test login's
/// checks (issuer, audience, times, nonce, subject): what was seen when it
/// holds, why not when it does not. `validate_id_token` refuses a token on
/// the first failure; the test login reports them all.
pub fn claim_checks(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Vec<(IdTokenCheck, Result<String, String>)> {
    let r = Rules {
        claims,
        issuer,
        client_id,
        nonce,
        now,
    };
    vec![
        (IdTokenCheck::Issuer, r.iss().map(|()| format!("iss is {issuer}"))),
        (
            IdTokenCheck::Audience,
            r.aud().map(|()| format!("aud holds the client id {client_id}")),
        ),
        (
            IdTokenCheck::Times,
            r.times().map(|skew| {
                format!("iat and exp are valid; the IdP's clock differs from keystead's by {skew} s ({LEEWAY_SECS} s allowed)")
            }),
        ),
        (
            IdTokenCheck::Nonce,
            r.nonce().map(|()| "the nonce matches this login".to_string()),
        ),
        (
            IdTokenCheck::Subject,
            r.sub().map(|s| {
                format!(
                    "the ID token names its subject ({} characters; the value is in the claims)",
                    s.chars().count()
                )
            }),
        ),
    ]
}

/// The claims of a token, without checking anything: only for one whose
/// signature has verified (the test login's report).
pub fn unverified_claims(token: &str) -> Option<Value> {
    jsonwebtoken::dangerous::insecure_decode::<Value>(token)
        .ok()
        .map(|t| t.claims)
        .filter(Value::is_object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn jwk_usability() {
        assert_eq!(
            jwk_algs(&json!({"kty":"EC","crv":"P-256","x":"a","y":"b"})),
            vec!["ES256"]
        );
        assert_eq!(
            jwk_algs(&json!({"kty":"RSA","n":"a","e":"AQAB","alg":"PS256"})),
            vec!["PS256"]
        );
        assert!(jwk_algs(&json!({"kty":"RSA","n":"a","e":"AQAB","use":"enc"})).is_empty());
        assert!(jwk_algs(&json!({"kty":"oct","k":"abc"})).is_empty());
        assert!(jwk_algs(&json!({"kty":"RSA","n":"a","e":"AQAB","alg":"HS256"})).is_empty());
        assert_eq!(
            jwk_algs(&json!({"kty":"OKP","crv":"Ed25519","x":"a"})),
            vec!["EdDSA"]
        );
    }

    #[test]
    fn unsigned_and_symmetric_tokens_are_refused_before_any_key_lookup() {
        // {"alg":"none"} . {"sub":"x"} .
        let none = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.";
        assert!(matches!(
            validate_id_token(none, &json!({"keys": []}), "i", "c", "n", 0),
            Err(TokenError::Invalid(..))
        ));
        // {"alg":"HS256"} . {"sub":"x"} . sig
        let hs = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        match validate_id_token(hs, &json!({"keys": []}), "i", "c", "n", 0) {
            Err(TokenError::Invalid(_, m)) => assert!(m.contains("HS256"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn email_only_when_verified() {
        assert_eq!(
            verified_email(&json!({"email":"a@x","email_verified":true})).as_deref(),
            Some("a@x")
        );
        assert_eq!(
            verified_email(&json!({"email":"a@x","email_verified":"true"})).as_deref(),
            Some("a@x")
        );
        assert_eq!(
            verified_email(&json!({"email":"a@x","email_verified":false})),
            None
        );
        assert_eq!(verified_email(&json!({"email":"a@x"})), None);
    }
}
