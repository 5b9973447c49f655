//! JSON request bodies. serde's derived structs also accept a JSON array, field by field
//! (`[null, 5]`); a body that is not what the spec says is refused instead.

use axum::Json;
use axum::extract::{FromRequest, Request};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorCode};

/// A body that must be a JSON object shaped as `T`; anything else is 400 `invalid_body`.
pub struct JsonObject<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonObject<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<Value>::from_request(request, state).await?;
        let invalid = |message: String| ApiError::new(ErrorCode::InvalidBody, message);
        if !value.is_object() {
            return Err(invalid("the body must be a JSON object".into()));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| invalid(e.to_string()))
    }
}

/// For `#[serde(deserialize_with)]`: an optional field that must be `null` or an object.
pub fn optional_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Option::<Map<String, Value>>::deserialize(deserializer)? {
        None => Ok(None),
        Some(map) => serde_json::from_value(Value::Object(map))
            .map(Some)
            .map_err(D::Error::custom),
    }
}
