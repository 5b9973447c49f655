//! Who is calling: every route but the probes and the docs needs a key or a token (see
//! [`crate::token`]), sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. The middleware puts the [`Caller`] in
//! the request's extensions; handlers take it with `Extension<Caller>`.

use crate::keys::{self, Caller, Role};
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::token;

/// Longest credential looked at: a key is 68 characters, a token about 400; anything much
/// longer is refused before it is hashed or parsed.
const MAX_CREDENTIAL: usize = 1024;

/// Rejects requests without a live key and records the caller for the handlers.
pub async fn require_key(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let secret = credential(request.headers());
    let identified = match identify(&state, secret).await {
        // Failed attempts count against the client's address: guessing keys is slow.
        Err(
            err @ ApiError::Refused {
                code: ErrorCode::Unauthorized,
                ..
            },
        ) => state.rate_limits.take_ip(&request).and(Err(err)),
        other => other,
    };
    let admitted = identified.and_then(|(caller, method)| {
        let limits = state.rate_limits.take_key(&caller.key_id)?;
        Ok((caller, method, limits))
    });
    let (caller, method, limits) = match admitted {
        Ok(admitted) => admitted,
        Err(err) => {
            drain(request).await;
            return Ok(err.closing());
        }
    };
    request.extensions_mut().insert(caller);
    request.extensions_mut().insert(method);
    let mut response = next.run(request).await;
    limits.apply(response.headers_mut());
    Ok(response)
}

/// How much of a refused request's body is read before answering.
pub const DRAIN_BYTES: u64 = 1 << 20;

/// Reads and drops what is left of a refused request's body, up to 1 MiB and 5 s, so that a
/// client still sending a small upload reads the refusal instead of a reset connection
/// (larger ones should send `Expect: 100-continue`, as curl does).
async fn drain(request: Request) {
    let body = axum::body::to_bytes(request.into_body(), DRAIN_BYTES as usize);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), body).await;
}

/// The caller behind the request's key or token.
async fn identify(
    state: &AppState,
    secret: Result<String, ApiError>,
) -> Result<(Caller, Method), ApiError> {
    let secret = secret?;
    if token::looks_like_jwt(&secret) {
        let caller = state.tokens.verify(&secret).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the token is not valid, or has expired",
            )
        })?;
        return Ok((caller, Method::Token));
    }
    let caller = keys::authenticate(&state.db, &secret)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "the key is not valid or was revoked",
            )
        })?;
    Ok((caller, Method::Key))
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// An API key.
    Key,
    /// A token from `POST /v1/auth/token`.
    Token,
}

/// The secret a request carries, from either header (both must agree if both are sent).
fn credential(headers: &HeaderMap) -> Result<String, ApiError> {
    let unauthorized = |why: &str| ApiError::new(ErrorCode::Unauthorized, why);
    let bearer = match headers.get(axum::http::header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| unauthorized("the Authorization header is not ASCII"))?;
            let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
            if !scheme.eq_ignore_ascii_case("bearer") {
                return Err(unauthorized("use Authorization: Bearer <key>"));
            }
            Some(token.trim())
        }
    };
    let api_key = match headers.get("x-api-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| unauthorized("the X-API-Key header is not ASCII"))?
                .trim(),
        ),
    };
    let secret = match (bearer, api_key) {
        (None, None) => {
            return Err(unauthorized(
                "send a key as Authorization: Bearer <key> or X-API-Key: <key>",
            ));
        }
        (Some(a), Some(b)) if a != b => {
            return Err(unauthorized(
                "Authorization and X-API-Key carry different keys",
            ));
        }
        (Some(secret), _) | (None, Some(secret)) => secret,
    };
    if secret.is_empty() {
        return Err(unauthorized("the key is empty"));
    }
    if secret.len() > MAX_CREDENTIAL {
        return Err(unauthorized("the key is not valid or was revoked"));
    }
    Ok(secret.to_string())
}

/// Refuses callers that are not admins.
pub fn require_admin(caller: &Caller) -> Result<(), ApiError> {
    match caller.role {
        Role::Admin => Ok(()),
        Role::User => Err(ApiError::new(
            ErrorCode::Forbidden,
            "this route needs an admin key",
        )),
    }
}
