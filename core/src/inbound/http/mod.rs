//! The HTTP contract (v1) as one axum router. The same router is served by `lambda_http` in the
//! Lambda functions and by a TCP listener in the local runner; each function mounts only its part.

mod error;
mod extract;
mod handlers;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use alert_button_directory::http::finish;
pub use alert_button_directory::http::{ApiError, consulate_routes, lookup_api};
pub use extract::{MAX_BODY_BYTES, parse_json};

use crate::domain::consulate::Directory;
use crate::service::AlertService;

/// Every route of the contract, as (method, path) pairs, for checks against the deployed template.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/v1/consulates"),
    ("GET", "/v1/consulates/nearest"),
    ("POST", "/v1/people"),
    ("PUT", "/v1/people/me/contacts"),
    ("POST", "/v1/alerts"),
    ("GET", "/v1/alerts/{alert_id}"),
    ("POST", "/v1/alerts/{alert_id}/locations"),
    ("POST", "/v1/alerts/{alert_id}/cancel"),
    ("PUT", "/v1/people/me/pins"),
    ("GET", "/v1/consulates/{consulate_id}/alerts"),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"),
    ("POST", "/v1/alerts/{alert_id}/resolve"),
    ("POST", "/v1/checkins"),
    ("GET", "/v1/checkins/{checkin_id}"),
    ("POST", "/v1/checkins/{checkin_id}/confirm"),
    ("POST", "/v1/checkins/{checkin_id}/locations"),
];

/// The routes only consulate staff may call; the deployment puts the JWT authorizer on these.
pub const STAFF_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/consulates/{consulate_id}/alerts"),
    ("POST", "/v1/alerts/{alert_id}/acknowledge"),
    ("POST", "/v1/alerts/{alert_id}/resolve"),
];

/// The person's side (registration, contacts, PINs, alerts) and the consulate staff's.
pub fn person_routes(service: Arc<AlertService>) -> Router {
    Router::new()
        .route("/v1/people", post(handlers::register))
        .route("/v1/people/me/contacts", put(handlers::replace_contacts))
        .route("/v1/alerts", post(handlers::raise_alert))
        .route("/v1/alerts/{alert_id}", get(handlers::get_alert))
        .route(
            "/v1/alerts/{alert_id}/locations",
            post(handlers::add_location),
        )
        .route("/v1/alerts/{alert_id}/cancel", post(handlers::cancel_alert))
        .route("/v1/people/me/pins", put(handlers::set_pins))
        .route(
            "/v1/consulates/{consulate_id}/alerts",
            get(handlers::list_consulate_alerts),
        )
        .route(
            "/v1/alerts/{alert_id}/acknowledge",
            post(handlers::acknowledge_alert),
        )
        .route(
            "/v1/alerts/{alert_id}/resolve",
            post(handlers::resolve_alert),
        )
        .route("/v1/checkins", post(handlers::start_checkin))
        .route("/v1/checkins/{checkin_id}", get(handlers::get_checkin))
        .route(
            "/v1/checkins/{checkin_id}/confirm",
            post(handlers::confirm_checkin),
        )
        .route(
            "/v1/checkins/{checkin_id}/locations",
            post(handlers::checkin_location),
        )
        .with_state(service)
}

/// The alert intake function's API.
pub fn intake_api(service: Arc<AlertService>) -> Router {
    finish(person_routes(service))
}

/// The whole API on one port, as the local runner serves it.
pub fn full_api(service: Arc<AlertService>, directory: Arc<Directory>) -> Router {
    finish(consulate_routes(directory).merge(person_routes(service)))
}
