//! JWT keys and validation. The algorithm is pinned by the configured key (HS256 for a
//! secret; RS256 or EdDSA for a public key), so `alg: none` and key-confusion tokens fail.
//! jsonwebtoken's loose defaults are tightened: leeway ≤ 5 s, `exp` and `sub` required,
//! `nbf` checked, `iss`/`aud` checked when configured.

use std::time::Duration;

use anyhow::{bail, Context};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::Role;
use crate::config::AuthConfig;

/// The claims slashd reads. Fields are optional so a missing one gives a clear refusal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    pub exp: u64,
    #[serde(default)]
    pub iat: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
}

/// RFC 7519 §4.1.3: `aud` is one string or an array of them. jsonwebtoken checks it against
/// the configured audience; this type only has to read both shapes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

pub struct TokenKeys {
    algorithm: Algorithm,
    decoding: DecodingKey,
    /// Only with a local secret: an external identity provider's tokens are not ours to mint.
    encoding: Option<EncodingKey>,
    validation: Validation,
    issuer: Option<String>,
    audience: Option<String>,
    ttl: Duration,
}

/// A freshly minted token.
pub struct Issued {
    pub token: String,
    pub expires_at: u64,
}

impl TokenKeys {
    /// `secret` is the effective HS256 secret (configured or generated); ignored when the
    /// config names a public key.
    pub fn new(config: &AuthConfig, secret: Option<&str>) -> anyhow::Result<TokenKeys> {
        let (algorithm, decoding, encoding) = match (&config.public_key_pem, secret) {
            (Some(pem), _) => {
                let (alg, key) = public_key(pem.as_bytes())?;
                (alg, key, None)
            }
            (None, Some(secret)) => (
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
                Some(EncodingKey::from_secret(secret.as_bytes())),
            ),
            (None, None) => bail!("no JWT key: set auth.jwt_secret or auth.public_key_pem"),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_secs.min(5);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        match &config.issuer {
            Some(iss) => {
                validation.set_issuer(&[iss]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &config.audience {
            Some(aud) => {
                validation.set_audience(&[aud]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        Ok(TokenKeys {
            algorithm,
            decoding,
            encoding,
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: config.token_ttl,
        })
    }

    pub fn can_issue(&self) -> bool {
        self.encoding.is_some()
    }

    pub fn issue(
        &self,
        user_id: &str,
        name: &str,
        role: Role,
        ttl: Option<Duration>,
    ) -> anyhow::Result<Issued> {
        let Some(key) = &self.encoding else {
            bail!("tokens come from the external identity provider (auth.public_key_pem is set)");
        };
        let now = jsonwebtoken::get_current_timestamp();
        let exp = now + ttl.unwrap_or(self.ttl).as_secs().max(1);
        let claims = Claims {
            sub: user_id.to_string(),
            name: Some(name.to_string()),
            role: Some(role.as_str().to_string()),
            exp,
            iat: now,
            iss: self.issuer.clone(),
            aud: self.audience.clone().map(Audience::One),
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, key)
            .context("cannot sign token")?;
        Ok(Issued {
            token,
            expires_at: exp,
        })
    }

    /// Signature, algorithm and time checks. Who the subject is gets checked by the caller.
    pub fn verify(&self, token: &str) -> Result<Claims, String> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| describe(&e))
    }
}

fn public_key(pem: &[u8]) -> anyhow::Result<(Algorithm, DecodingKey)> {
    let text = String::from_utf8_lossy(pem);
    // An Ed25519 SubjectPublicKeyInfo is 44 bytes of DER: far shorter than any RSA key.
    if text.contains("BEGIN RSA PUBLIC KEY") {
        return Ok((Algorithm::RS256, DecodingKey::from_rsa_pem(pem)?));
    }
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    if body.trim().len() <= 64 {
        let key = DecodingKey::from_ed_pem(pem).context("auth.public_key_pem: bad Ed25519 key")?;
        Ok((Algorithm::EdDSA, key))
    } else {
        let key = DecodingKey::from_rsa_pem(pem).context("auth.public_key_pem: bad RSA key")?;
        Ok((Algorithm::RS256, key))
    }
}

fn describe(err: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match err.kind() {
        K::ExpiredSignature => "token has expired".into(),
        K::ImmatureSignature => "token is not valid yet (nbf)".into(),
        K::InvalidIssuer => "token issuer is not accepted".into(),
        K::InvalidAudience => "token audience is not accepted".into(),
        K::InvalidAlgorithm => "token algorithm is not accepted".into(),
        K::InvalidSignature => "token signature is invalid".into(),
        K::MissingRequiredClaim(c) => format!("token lacks the required claim {c:?}"),
        _ => "token is malformed".into(),
    }
}
