//! The one place where errors become HTTP answers: `{"error":{"code","message","field"?}}`.

pub use alert_button_directory::http::ApiError;
use axum::http::StatusCode;
use tracing::error;

use crate::error::Error;

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid { field, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
                    .with_field(field)
            }
            Error::Unauthenticated => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid `Authorization: Bearer <token>` header is required",
            ),
            Error::Forbidden => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", "you may not do this")
            }
            Error::NotFound(what) => ApiError::not_found(what),
            Error::Conflict { code, message } => ApiError::new(StatusCode::CONFLICT, code, message),
            Error::ConcurrentUpdate => ApiError::new(
                StatusCode::CONFLICT,
                "concurrent_update",
                "the record changed while this request ran; try again",
            ),
            Error::RateLimited { retry_after } => {
                let mut api = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "too many requests; try again later",
                );
                api.retry_after_secs = Some(retry_after.as_secs().max(1));
                api
            }
            Error::Store(detail) | Error::Notifier(detail) => {
                error!(error = %detail, "a backing service failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the service is temporarily unavailable; try again",
                )
            }
        }
    }
}
