//! ID token validation (SPEC §4) on top of `jsonwebtoken` (aws-lc-rs
//! backend). The library checks the signature, `exp`, `iss` and `aud`; the
//! rules it does not know — the alg allow-list, key fit by `kty`/`crv`/
//! `use`/`alg`, `kid` selection, `iat` not in the future, `azp` with several
//! audiences, `nonce`, a non-empty `sub` — are checked here.

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
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY_SECS as u64;
    v.set_issuer(&[issuer]);
    v.set_audience(&[client_id]);
    v.required_spec_claims = ["exp", "iss", "aud", "sub"]
        .iter()
        .map(|s| s.to_string())
        .collect::<HashSet<_>>();
    v.validate_nbf = true;
    let data = jsonwebtoken::decode::<Value>(token, &dk, &v).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind as K;
        use IdTokenCheck as C;
        match e.kind() {
            K::InvalidSignature => {
                invalid("the ID token's signature does not verify with the IdP's key")
            }
            K::ExpiredSignature => invalid_at(
                C::Times,
                "the ID token has expired (check the clocks of the IdP and keystead)",
            ),
            K::ImmatureSignature => invalid_at(
                C::Times,
                "the ID token is not valid yet (nbf in the future)",
            ),
            K::InvalidIssuer => invalid_at(
                C::Issuer,
                format!("the ID token's iss is not the configured issuer {issuer}"),
            ),
            K::InvalidAudience => invalid_at(
                C::Audience,
                format!("the ID token's aud does not contain the client id {client_id}"),
            ),
            K::MissingRequiredClaim(c) => invalid_at(
                match c.as_str() {
                    "exp" => C::Times,
                    "iss" => C::Issuer,
                    "aud" => C::Audience,
                    _ => C::Subject,
                },
                format!("the ID token has no {c} claim"),
            ),
            K::InvalidClaimFormat(c) => invalid_at(
                match c.as_str() {
                    "exp" | "nbf" | "iat" => C::Times,
                    "iss" => C::Issuer,
                    "aud" => C::Audience,
                    _ => C::Subject,
                },
                format!("the ID token's {c} claim has the wrong type"),
            ),
            K::InvalidAlgorithm => invalid("the ID token's algorithm does not fit the IdP's key"),
            _ => invalid("the ID token could not be validated"),
        }
    })?;
    let claims = data.claims;
    // The rules jsonwebtoken does not know, in the order of `claim_checks`.
    if let Some((check, Err(why))) = claim_checks(&claims, issuer, client_id, nonce, now)
        .into_iter()
        .find(|(_, r)| r.is_err())
    {
        return Err(invalid_at(check, why));
    }
    let sub = claims
        .get("sub")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(IdClaims { sub, claims })
}

/// Each claim rule of SPEC §4 on its own, in the fixed order of the test
/// login's checks (issuer, audience, times, nonce, subject): what was seen
/// when it holds, why not when it does not. `validate_id_token` refuses a
/// token on the first failure; the test login reports them all. Only for
/// a token whose signature verified.
pub fn claim_checks(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: i64,
) -> Vec<(IdTokenCheck, Result<String, String>)> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    let number = |k: &str| claims.get(k).and_then(Value::as_f64).map(|f| f as i64);
    let iss = match text("iss") {
        Some(i) if i == issuer => Ok(format!("iss is {issuer}")),
        Some(_) => Err(format!(
            "the ID token's iss is not the configured issuer {issuer}"
        )),
        None => Err("the ID token has no iss claim".to_string()),
    };
    let auds: Option<Vec<&str>> = match claims.get("aud") {
        Some(Value::String(a)) => Some(vec![a.as_str()]),
        Some(Value::Array(a)) => a.iter().map(Value::as_str).collect(),
        _ => None,
    };
    let aud = match (auds, text("azp")) {
        (None, _) => Err("the ID token has no aud claim (or one of the wrong type)".to_string()),
        (Some(a), _) if !a.contains(&client_id) => Err(format!(
            "the ID token's aud does not contain the client id {client_id}"
        )),
        (Some(_), Some(azp)) if azp != client_id => {
            Err("the ID token's azp is not this client".to_string())
        }
        (Some(a), None) if a.len() > 1 => {
            Err("the ID token has several audiences but no azp naming this client".to_string())
        }
        (Some(_), _) => Ok(format!("aud holds the client id {client_id}")),
    };
    let skew = number("iat").map(|iat| iat - now);
    let clock = |s: i64| {
        format!("the IdP's clock differs from keystead's by {s} s ({LEEWAY_SECS} s allowed)")
    };
    let times = match (number("exp"), number("iat"), skew) {
        (None, _, _) => Err("the ID token has no exp claim".to_string()),
        (_, None, _) | (_, _, None) => Err("the ID token has no iat claim".to_string()),
        (Some(exp), _, Some(s)) if exp + LEEWAY_SECS < now => Err(format!(
            "the ID token has expired ({} s ago); {}",
            now - exp,
            clock(s)
        )),
        (_, _, Some(s)) if s > LEEWAY_SECS => Err(format!(
            "the ID token was issued in the future (iat); {}",
            clock(s)
        )),
        (_, _, Some(s)) => match number("nbf") {
            Some(nbf) if nbf > now + LEEWAY_SECS => Err(format!(
                "the ID token is not valid yet (nbf in the future); {}",
                clock(s)
            )),
            _ => Ok(format!("iat and exp are valid; {}", clock(s))),
        },
    };
    let nonce_check = match text("nonce") {
        Some(n) if keystead_crypto::hashing::constant_time_eq(n.as_bytes(), nonce.as_bytes()) => {
            Ok("the nonce matches this login".to_string())
        }
        Some(_) => Err("the ID token's nonce does not match this login".to_string()),
        None => Err("the ID token has no nonce".to_string()),
    };
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => Ok(format!(
            "the ID token names its subject ({} characters; the value is in the claims)",
            s.chars().count()
        )),
        Some(_) => Err(
            "the ID token's sub is not a valid identifier (a string of 1 to 255 characters)"
                .to_string(),
        ),
        None => Err("the ID token has no sub claim".to_string()),
    };
    vec![
        (IdTokenCheck::Issuer, iss),
        (IdTokenCheck::Audience, aud),
        (IdTokenCheck::Times, times),
        (IdTokenCheck::Nonce, nonce_check),
        (IdTokenCheck::Subject, sub),
    ]
}

/// The claims of a token, without checking anything: only for one whose
/// signature has verified (the test login's report).
pub fn unverified_claims(token: &str) -> Option<Value> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()
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
