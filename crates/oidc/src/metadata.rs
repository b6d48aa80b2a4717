//! The partner IdP's metadata as keystead reads it: discovery reduced to
//! the fields keystead uses ([`Discovery`]) and, once checked, the
//! [`ProviderMetadata`] that both Verify and sign-in rely on; the JWKS
//! reduced to usable public signing keys ([`Jwks`]).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use crate::error::{Kind, OidcError, Result};
use crate::jose::jwk_algs;

/// Real IdPs publish a handful of keys; more than this is not a JWKS we keep.
const MAX_JWKS_KEYS: usize = 64;
/// Longest key parameter kept (`n` of a 16384-bit RSA key is 2731 chars).
const MAX_KEY_PARAM: usize = 4096;
/// Entries of a `*_supported` list kept, and their length.
const MAX_LIST: usize = 200;
const MAX_LIST_ITEM: usize = 200;

/// The fields of an OpenID Provider's discovery document that keystead
/// reads (OpenID Connect Discovery 1.0 §3), and nothing else. Lists keep
/// only their string entries, as the rules ask about membership.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Discovery {
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub response_types_supported: Option<Vec<String>>,
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
    pub scopes_supported: Option<Vec<String>>,
    pub authorization_response_iss_parameter_supported: Option<bool>,
}

impl Discovery {
    /// Reads the known fields of a JSON object; `None` if it is not one.
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Option<Self> {
        let obj = v.as_object()?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_string);
        let list = |k: &str| {
            obj.get(k).and_then(Value::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .filter(|s| s.len() <= MAX_LIST_ITEM)
                    .take(MAX_LIST)
                    .map(str::to_string)
                    .collect()
            })
        };
        Some(Discovery {
            issuer: s("issuer"),
            authorization_endpoint: s("authorization_endpoint"),
            token_endpoint: s("token_endpoint"),
            jwks_uri: s("jwks_uri"),
            userinfo_endpoint: s("userinfo_endpoint"),
            response_types_supported: list("response_types_supported"),
            id_token_signing_alg_values_supported: list("id_token_signing_alg_values_supported"),
            token_endpoint_auth_methods_supported: list("token_endpoint_auth_methods_supported"),
            code_challenge_methods_supported: list("code_challenge_methods_supported"),
            scopes_supported: list("scopes_supported"),
            authorization_response_iss_parameter_supported: obj
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool),
        })
    }

    /// What sign-in needs, checked: the issuer equals `issuer` exactly and
    /// the endpoints are https URLs.
    pub fn checked(&self, issuer: &str) -> Result<ProviderMetadata> {
        let claimed = self.issuer.as_deref().unwrap_or("");
        if claimed != issuer {
            return Err(OidcError::with_hint(
                Kind::Discovery,
                format!(
                    "the IdP's discovery document names issuer {:?}, not the configured {issuer:?}",
                    crate::printable(claimed, 200)
                ),
                "run `keystead oidc verify` for details",
            ));
        }
        let required = |v: &Option<String>, key: &str| {
            endpoint(v.as_deref(), key)?.ok_or_else(|| {
                OidcError::new(
                    Kind::Discovery,
                    format!("the IdP's discovery document has no {key}"),
                )
            })
        };
        Ok(ProviderMetadata {
            issuer: claimed.to_string(),
            authorization_endpoint: required(
                &self.authorization_endpoint,
                "authorization_endpoint",
            )?,
            token_endpoint: required(&self.token_endpoint, "token_endpoint")?,
            jwks_uri: required(&self.jwks_uri, "jwks_uri")?,
            userinfo_endpoint: endpoint(self.userinfo_endpoint.as_deref(), "userinfo_endpoint")?,
            iss_param_supported: self
                .authorization_response_iss_parameter_supported
                .unwrap_or(false),
        })
    }
}

fn endpoint(raw: Option<&str>, key: &str) -> Result<Option<Url>> {
    let Some(raw) = raw else { return Ok(None) };
    match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" => Ok(Some(u)),
        _ => Err(OidcError::new(
            Kind::Discovery,
            format!("the IdP's {key} is not an https URL"),
        )),
    }
}

/// Discovery as sign-in uses it: checked, typed, small.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub userinfo_endpoint: Option<Url>,
    /// RFC 9207: the IdP promises `iss` on every authorization response.
    pub iss_param_supported: bool,
}

/// The parameters of an authorization request (authorization code flow,
/// PKCE S256, nonce): one builder for a sign-in, a test login and the
/// test login's probe, so the probe asks exactly what a sign-in asks.
pub struct AuthorizationRequest<'a> {
    pub client_id: &'a str,
    pub redirect_uri: &'a str,
    pub scopes: &'a str,
    pub state: &'a str,
    pub nonce: &'a str,
    /// `BASE64URL(SHA256(verifier))`.
    pub code_challenge: &'a str,
    pub login_hint: Option<&'a str>,
}

impl ProviderMetadata {
    /// The authorization endpoint with `req`'s parameters.
    pub fn authorization_url(&self, req: &AuthorizationRequest<'_>) -> Url {
        let mut url = self.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", req.client_id)
                .append_pair("redirect_uri", req.redirect_uri)
                .append_pair("scope", req.scopes)
                .append_pair("state", req.state)
                .append_pair("nonce", req.nonce)
                .append_pair("code_challenge", req.code_challenge)
                .append_pair("code_challenge_method", "S256");
            if let Some(h) = req.login_hint {
                q.append_pair("login_hint", h);
            }
        }
        url
    }

    /// The cached form: the discovery field names, so rows written by
    /// earlier versions (whole documents) read the same way.
    pub(crate) fn to_doc(&self) -> Discovery {
        Discovery {
            issuer: Some(self.issuer.clone()),
            authorization_endpoint: Some(self.authorization_endpoint.to_string()),
            token_endpoint: Some(self.token_endpoint.to_string()),
            jwks_uri: Some(self.jwks_uri.to_string()),
            userinfo_endpoint: self.userinfo_endpoint.as_ref().map(Url::to_string),
            authorization_response_iss_parameter_supported: Some(self.iss_param_supported),
            ..Discovery::default()
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.issuer.len()
            + self.authorization_endpoint.as_str().len()
            + self.token_endpoint.as_str().len()
            + self.jwks_uri.as_str().len()
            + self
                .userinfo_endpoint
                .as_ref()
                .map_or(0, |u| u.as_str().len())
            + 256
    }
}

/// A JWKS reduced to the public signing keys keystead can use, with only
/// the members the verifier reads. `usable` counts them.
#[derive(Debug, Clone)]
pub struct Jwks {
    pub keys: Value,
    pub total: usize,
    pub usable: usize,
    pub(crate) bytes: usize,
}

const JWK_MEMBERS: &[&str] = &["kty", "kid", "use", "alg", "crv", "n", "e", "x", "y"];

impl Jwks {
    pub fn from_json(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        Self::from_value(&v)
    }

    pub fn from_value(v: &Value) -> Option<Self> {
        let all = v.get("keys")?.as_array()?;
        let mut bytes = 64;
        let keys: Vec<Value> = all
            .iter()
            .filter(|k| !jwk_algs(k).is_empty())
            .filter_map(|k| {
                let mut out = Map::new();
                for m in JWK_MEMBERS {
                    match k.get(*m) {
                        Some(Value::String(s)) if s.len() <= MAX_KEY_PARAM => {
                            bytes += m.len() + s.len() + 16;
                            out.insert((*m).to_string(), Value::String(s.clone()));
                        }
                        None => {}
                        // A member keystead reads with an odd type or size:
                        // not a key to trust.
                        Some(_) => return None,
                    }
                }
                Some(Value::Object(out))
            })
            .take(MAX_JWKS_KEYS)
            .collect();
        Some(Jwks {
            total: all.len(),
            usable: keys.len(),
            keys: serde_json::json!({ "keys": keys }),
            bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_keeps_only_the_fields_keystead_reads() {
        let padding = "x".repeat(100_000);
        let doc = serde_json::json!({
            "issuer": "https://idp.example.com",
            "authorization_endpoint": "https://idp.example.com/auth",
            "token_endpoint": "https://idp.example.com/token",
            "jwks_uri": "https://idp.example.com/jwks",
            "response_types_supported": ["code", 7, "id_token"],
            "x_padding": padding,
            "claims_supported": vec!["a"; 1000],
        });
        let d = Discovery::from_value(&doc).unwrap();
        assert_eq!(
            d.response_types_supported,
            Some(vec!["code".to_string(), "id_token".to_string()])
        );
        let kept =
            serde_json::to_string(&d.checked("https://idp.example.com").unwrap().to_doc()).unwrap();
        assert!(kept.len() < 1024, "{}", kept.len());
    }

    #[test]
    fn discovery_issuer_must_match_exactly() {
        let d = Discovery {
            issuer: Some("https://idp.example.com/".into()),
            authorization_endpoint: Some("https://idp.example.com/a".into()),
            token_endpoint: Some("https://idp.example.com/t".into()),
            jwks_uri: Some("https://idp.example.com/j".into()),
            ..Discovery::default()
        };
        assert!(d.checked("https://idp.example.com/").is_ok());
        let e = d.checked("https://idp.example.com").unwrap_err();
        assert_eq!(e.kind, Kind::Discovery);
        let mut http = d.clone();
        http.token_endpoint = Some("http://idp.example.com/t".into());
        assert!(http.checked("https://idp.example.com/").is_err());
    }

    #[test]
    fn jwks_keeps_usable_signing_keys_and_their_public_members_only() {
        let jwks = serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB", "d": "private!", "x5c": ["big"]},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kty": "oct", "k": "secret"},
            {"kty": "EC", "crv": "P-256", "x": "x".repeat(5000), "y": "y"},
        ]});
        let j = Jwks::from_value(&jwks).unwrap();
        assert_eq!((j.total, j.usable), (4, 1));
        assert_eq!(
            j.keys,
            serde_json::json!({"keys": [{"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB"}]})
        );
        assert!(Jwks::from_value(&serde_json::json!({"nokeys": 1})).is_none());
    }
}
