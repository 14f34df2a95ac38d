//! The library's one error type. Each variant says what went wrong in the caller's terms; the HTTP layer
//! maps them to statuses in one place (`http::error`).

use std::time::Duration;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A field of the request is present and well-formed JSON but not acceptable.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },

    /// No credential, or one that does not match any person.
    #[error("a valid bearer token is required")]
    Unauthenticated,

    /// The caller is known but may not do this.
    #[error("not allowed")]
    Forbidden,

    /// Also answered when the thing exists but belongs to someone else, so that ids cannot be probed.
    #[error("{0} not found")]
    NotFound(&'static str),

    /// The request is valid but the alert's state does not allow it (e.g. a location for a closed alert).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },

    #[error("too many requests")]
    RateLimited { retry_after: Duration },

    /// A write raced with another write of the same item; the caller may re-read and retry.
    #[error("the item changed concurrently")]
    ConcurrentUpdate,

    /// The store could not be reached or failed; nothing was acknowledged.
    #[error("store unavailable: {0}")]
    Store(String),

    /// The notifier could not deliver; the change stays pending and is retried.
    #[error("notifier unavailable: {0}")]
    Notifier(String),
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn store(err: impl std::fmt::Display) -> Self {
        Error::Store(err.to_string())
    }
}
