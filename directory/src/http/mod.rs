//! The public part of the HTTP contract (v1): the consulate directory and the nearest lookup, and
//! what every API of the service shares (health check, JSON fallbacks, no caching, panic answer).

mod error;
mod handlers;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;

pub use error::ApiError;
pub use handlers::{QueryParams, query_params};
pub use views::{ConsulateView, ConsulatesView};

use crate::consulate::Directory;

/// The public, personal-data-free part: the consulate directory and the nearest lookup.
pub fn consulate_routes(directory: Arc<Directory>) -> Router {
    Router::new()
        .route("/v1/consulates", get(handlers::list_consulates))
        .route("/v1/consulates/nearest", get(handlers::nearest_consulates))
        .with_state(directory)
}

/// The consulate lookup function's API.
pub fn lookup_api(directory: Arc<Directory>) -> Router {
    finish(consulate_routes(directory))
}

/// What every API shares: the health check, JSON answers for unknown routes and methods, no
/// caching of personal data, and a last-resort 500 instead of a dropped connection on a panic.
pub fn finish(routes: Router) -> Router {
    routes
        .route("/healthz", get(handlers::healthz))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(CatchPanicLayer::custom(panic_response))
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "an unexpected error occurred",
    )
    .into_response()
}
