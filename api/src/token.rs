//! Short-lived tokens: `POST /v1/auth/token` exchanges a key for a JWT (HS256, signed with
//! `WARBLE_JWT_SECRET`) that is accepted wherever a key is. The algorithm is pinned (a token
//! claiming `none` or RS256 is refused), and `exp`, `nbf`, `iat`, `iss` and `aud` are checked.
//! A token is verified without the database, so revoking its key takes effect for new tokens
//! at once and for issued ones when they expire (`WARBLE_JWT_TTL_SECS`, 15 minutes).

use std::time::Duration;

use crate::keys::{Caller, Role};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// `iss` and `aud` of our tokens.
const ISSUER: &str = "warble";
const AUDIENCE: &str = "warble-api";

/// Clock skew tolerated between API replicas, seconds.
const LEEWAY: u64 = 5;

/// The claims of a token.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// The key the token was exchanged for.
    sub: String,
    role: Role,
    tenant: String,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Issues and verifies tokens.
#[derive(Clone)]
pub struct Tokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Tokens {
    /// Tokens signed with `secret`, valid for `ttl`.
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = LEEWAY;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    /// A token for `caller`, and its lifetime in seconds.
    pub fn issue(&self, caller: &Caller) -> (String, u64) {
        let now = now();
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: caller.key_id.clone(),
            role: caller.role,
            tenant: caller.tenant.clone(),
            iat: now,
            nbf: now,
            exp: now + self.ttl.as_secs(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail");
        (token, self.ttl.as_secs())
    }

    /// The caller a valid token speaks for; `None` for anything else.
    pub fn verify(&self, token: &str) -> Option<Caller> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()?
            .claims;
        // Issued in the future: not one of ours, whatever its signature says.
        if claims.iat > now() + LEEWAY {
            return None;
        }
        Some(Caller {
            key_id: claims.sub,
            role: claims.role,
            tenant: claims.tenant,
        })
    }
}

/// Whether a credential is shaped like a JWT (three base64url parts, a JSON header) rather
/// than a key.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.split('.').count() == 3
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
