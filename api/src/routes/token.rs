//! `POST /v1/auth/token`: a key buys a short-lived token.

use crate::keys::Caller;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Method;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;

/// A token, to send as `Authorization: Bearer <token>` until it expires.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The JWT (HS256).
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// Exchange a key for a short-lived token with the key's role and tenant. Only a key can be
/// exchanged: a token cannot extend itself.
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", operation_id = "createToken",
    responses(
        (status = 200, description = "The token", body = TokenResponse),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 400, description = "`key_required`: a token was sent instead of a key", body = ErrorBody),
    ))]
pub async fn issue(
    axum::extract::State(state): axum::extract::State<AppState>,
    Extension(caller): Extension<Caller>,
    Extension(method): Extension<Method>,
) -> Result<Json<TokenResponse>, ApiError> {
    if method != Method::Key {
        return Err(ApiError::new(
            ErrorCode::KeyRequired,
            "a token cannot be exchanged for another; send a key",
        ));
    }
    let (access_token, expires_in) = state.tokens.issue(&caller);
    Ok(Json(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in,
    }))
}
