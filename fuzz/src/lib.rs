//! What every fuzz target checks besides "no panic": a refused input is a client error, in the
//! shape the API answers with, that names a field whenever it is a 422.

use alert_button_core::error::Error;
use alert_button_core::inbound::http::{ApiError, MAX_BODY_BYTES, parse_json};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// Parses `data` with the router's strict JSON parser, then runs the domain's validation on it.
pub fn check_body<T: DeserializeOwned>(data: &[u8], validate: impl FnOnce(T) -> Result<(), Error>) {
    // The router refuses larger bodies before parsing them.
    if data.len() > MAX_BODY_BYTES {
        return;
    }
    let error = match parse_json::<T>(data) {
        Ok(value) => match validate(value) {
            Ok(()) => return,
            Err(err) => ApiError::from(err),
        },
        Err(err) => err,
    };
    assert_client_error(&error);
}

pub fn assert_client_error(error: &ApiError) {
    assert!(error.status.is_client_error(), "{error:?}");
    assert!(
        !error.code.is_empty() && !error.message.is_empty(),
        "{error:?}"
    );
    if error.status == StatusCode::UNPROCESSABLE_ENTITY {
        assert!(
            error.field.as_deref().is_some_and(|f| !f.is_empty()),
            "a 422 must name its field: {error:?}"
        );
    }
}
