//! The HTTP contract (v1) as one axum router. The same router is served by `lambda_http` in the
//! Lambda functions and by a TCP listener in the local runner; each function mounts only its part.

mod error;
mod extract;
mod handlers;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{MethodFilter, MethodRouter, on};

use alert_button_directory::http::finish;
pub use alert_button_directory::http::{ApiError, consulate_routes, lookup_api};
pub use extract::{MAX_BODY_BYTES, parse_json};

use crate::domain::consulate::Directory;
use crate::service::AlertService;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Anyone: health and the consulate lookup, which the directory crate serves.
    Public,
    /// A registered person; `GET /v1/alerts/{alert_id}` also answers staff.
    Person,
    /// Consulate staff only; the deployment puts the JWT authorizer on these.
    Staff,
}

/// Serves one route for the method it is given.
type Serve = fn(MethodFilter) -> MethodRouter<Arc<AlertService>>;

/// One route of the contract and the handler that serves it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub audience: Audience,
    /// `None` for the routes the directory crate serves (`consulate_routes`, `finish`).
    handler: Option<Serve>,
}

const fn route(
    method: &'static str,
    path: &'static str,
    audience: Audience,
    handler: Serve,
) -> Route {
    Route {
        method,
        path,
        audience,
        handler: Some(handler),
    }
}

const fn public(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        audience: Audience::Public,
        handler: None,
    }
}

/// The contract, in one place: the router, `ROUTES`, `STAFF_ROUTES` and `alert-button routes`
/// (which the deployment template and the OpenAPI document are checked against) all come from
/// this table, so none of them can list a route the others lack.
pub const TABLE: [Route; 17] = {
    use Audience::{Person, Staff};
    [
        public("GET", "/healthz"),
        public("GET", "/v1/consulates"),
        public("GET", "/v1/consulates/nearest"),
        route("POST", "/v1/people", Person, |m| on(m, handlers::register)),
        route("PUT", "/v1/people/me/contacts", Person, |m| {
            on(m, handlers::replace_contacts)
        }),
        route("POST", "/v1/alerts", Person, |m| {
            on(m, handlers::raise_alert)
        }),
        route("GET", "/v1/alerts/{alert_id}", Person, |m| {
            on(m, handlers::get_alert)
        }),
        route("POST", "/v1/alerts/{alert_id}/locations", Person, |m| {
            on(m, handlers::add_location)
        }),
        route("POST", "/v1/alerts/{alert_id}/cancel", Person, |m| {
            on(m, handlers::cancel_alert)
        }),
        route("PUT", "/v1/people/me/pins", Person, |m| {
            on(m, handlers::set_pins)
        }),
        route("GET", "/v1/consulates/{consulate_id}/alerts", Staff, |m| {
            on(m, handlers::list_consulate_alerts)
        }),
        route("POST", "/v1/alerts/{alert_id}/acknowledge", Staff, |m| {
            on(m, handlers::acknowledge_alert)
        }),
        route("POST", "/v1/alerts/{alert_id}/resolve", Staff, |m| {
            on(m, handlers::resolve_alert)
        }),
        route("POST", "/v1/checkins", Person, |m| {
            on(m, handlers::start_checkin)
        }),
        route("GET", "/v1/checkins/{checkin_id}", Person, |m| {
            on(m, handlers::get_checkin)
        }),
        route("POST", "/v1/checkins/{checkin_id}/confirm", Person, |m| {
            on(m, handlers::confirm_checkin)
        }),
        route("POST", "/v1/checkins/{checkin_id}/locations", Person, |m| {
            on(m, handlers::checkin_location)
        }),
    ]
};

const fn pairs<const N: usize, const M: usize>(
    table: &[Route; N],
    staff_only: bool,
) -> [(&'static str, &'static str); M] {
    let mut out = [("", ""); M];
    let (mut i, mut n) = (0, 0);
    while i < N {
        if !staff_only || matches!(table[i].audience, Audience::Staff) {
            out[n] = (table[i].method, table[i].path);
            n += 1;
        }
        i += 1;
    }
    out
}

const fn staff_count(table: &[Route]) -> usize {
    let (mut i, mut n) = (0, 0);
    while i < table.len() {
        if matches!(table[i].audience, Audience::Staff) {
            n += 1;
        }
        i += 1;
    }
    n
}

const ROUTE_PAIRS: [(&str, &str); TABLE.len()] = pairs(&TABLE, false);
const STAFF_PAIRS: [(&str, &str); staff_count(&TABLE)] = pairs(&TABLE, true);

/// Every route of the contract, as (method, path) pairs, for checks against the deployed template.
pub const ROUTES: &[(&str, &str)] = &ROUTE_PAIRS;

/// The routes only consulate staff may call; the deployment puts the JWT authorizer on these.
pub const STAFF_ROUTES: &[(&str, &str)] = &STAFF_PAIRS;

fn method_filter(method: &str) -> MethodFilter {
    match method {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PUT" => MethodFilter::PUT,
        "DELETE" => MethodFilter::DELETE,
        other => panic!("the route table names an unknown method {other}"),
    }
}

/// The routes of `TABLE` this crate serves whose audience `wanted` accepts.
fn routes(service: Arc<AlertService>, wanted: impl Fn(Audience) -> bool) -> Router {
    TABLE
        .iter()
        .filter(|route| wanted(route.audience))
        .filter_map(|route| Some((route, route.handler?)))
        .fold(Router::new(), |router, (route, handler)| {
            router.route(route.path, handler(method_filter(route.method)))
        })
        .with_state(service)
}

/// The person's side (registration, contacts, PINs, alerts, check-ins) and the consulate staff's:
/// every route of `TABLE` this crate serves.
pub fn person_routes(service: Arc<AlertService>) -> Router {
    routes(service, |_| true)
}

/// The alert intake function's API: the person's routes only; the staff's are another function's.
pub fn intake_api(service: Arc<AlertService>) -> Router {
    finish(routes(service, |audience| audience == Audience::Person))
}

/// The staff API function's: list, acknowledge and resolve, for consulate staff only.
pub fn staff_api(service: Arc<AlertService>) -> Router {
    finish(routes(service, |audience| audience == Audience::Staff))
}

/// A Lambda function serving `api` on the backend its configuration names, as intake and the
/// staff API do: the connections the first request needs are opened during init.
pub async fn run_on_lambda(api: fn(Arc<AlertService>) -> Router) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let config = crate::config::Config::from_env()?;
    let backend = crate::backend::Backend::from_config(&config).await?;
    backend.warm().await;
    lambda_http::run(api(backend.alert_service())).await
}

/// The whole API on one port, as the local runner serves it.
pub fn full_api(service: Arc<AlertService>, directory: Arc<Directory>) -> Router {
    finish(consulate_routes(directory).merge(person_routes(service)))
}
