//! Cursor pagination, shared by the listings (jobs, audit log): `?limit=` within bounds, and
//! `next_cursor` = the last id of a full page.

use crate::error::{ApiError, ErrorCode};

/// The page size asked for, or `default`; 1 to `max`.
pub fn limit(requested: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    let limit = requested.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("limit must be 1 to {max}"),
        ));
    }
    Ok(limit)
}

/// The cursor of the next page: the last item's id when the page is full, else none.
pub fn next_cursor<T>(items: &[T], limit: u32, id: impl Fn(&T) -> &str) -> Option<String> {
    (items.len() == limit as usize)
        .then(|| items.last().map(|item| id(item).to_string()))
        .flatten()
}
