//! The HTTP contract (v1) as one axum router. The same router is served by `lambda_http` in the
//! Lambda functions and by a TCP listener in the local runner; each function mounts only its part.

mod error;
mod extract;
mod handlers;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::{MethodFilter, MethodRouter, on};

use alert_button_directory::http::finish;
pub use alert_button_directory::http::{ApiError, consulate_routes, lookup_api};
pub use extract::{MAX_BODY_BYTES, parse_json};

use crate::domain::consulate::Directory;
use crate::service::{PersonService, Services, StaffService};

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

/// What the person's routes are served with: the person's service, and the staff's for the one
/// route staff read too (`GET /v1/alerts/{alert_id}`).
#[derive(Clone)]
pub struct PersonApi {
    pub person: Arc<PersonService>,
    pub staff: Arc<StaffService>,
}

impl From<&Services> for PersonApi {
    fn from(services: &Services) -> Self {
        PersonApi {
            person: services.person.clone(),
            staff: services.staff.clone(),
        }
    }
}

impl FromRef<PersonApi> for Arc<PersonService> {
    fn from_ref(api: &PersonApi) -> Self {
        api.person.clone()
    }
}

/// Serves one route for the method it is given, with the state `S`.
type Mount<S> = fn(MethodFilter) -> MethodRouter<S>;

/// Serves one route for the method it is given, on the service of the route's audience: the
/// staff's routes never see the person's service.
#[derive(Clone, Copy)]
enum Serve {
    Person(Mount<PersonApi>),
    Staff(Mount<Arc<StaffService>>),
}

/// One route of the contract and the handler that serves it.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub audience: Audience,
    /// `None` for the routes the directory crate serves (`consulate_routes`, `finish`).
    handler: Option<Serve>,
}

const fn served(method: Text, path: Text, serve: Serve) -> Route {
    let audience = match serve {
        Serve::Person(_) => Audience::Person,
        Serve::Staff(_) => Audience::Staff,
    };
    Route {
        method,
        path,
        audience,
        handler: Some(serve),
    }
}

/// A method or a path of the table.
type Text = &'static str;

const fn person(method: Text, path: Text, serve: Mount<PersonApi>) -> Route {
    served(method, path, Serve::Person(serve))
}

const fn staff(method: Text, path: Text, serve: Mount<Arc<StaffService>>) -> Route {
    served(method, path, Serve::Staff(serve))
}

const fn public(method: Text, path: Text) -> Route {
    Route {
        method,
        path,
        audience: Audience::Public,
        handler: None,
    }
}

/// Builds `TABLE`, one row a route: who may call it, its method and path and, but for the
/// public routes the directory crate serves, its handler.
macro_rules! routes {
    ($($audience:ident $method:literal $path:literal $(=> $handler:ident)?;)*) => {
        [$(routes!(@row $audience $method $path $(=> $handler)?)),*]
    };
    (@row public $method:literal $path:literal) => {
        public($method, $path)
    };
    (@row $audience:ident $method:literal $path:literal => $handler:ident) => {
        $audience($method, $path, |m| on(m, handlers::$handler))
    };
}

/// The contract, in one place: the router, `ROUTES`, `STAFF_ROUTES` and `alert-button routes`
/// (which the deployment template and the OpenAPI document are checked against) all come from
/// this table, so none of them can list a route the others lack.
pub const TABLE: [Route; 18] = routes! {
    public "GET" "/healthz";
    public "GET" "/v1/consulates";
    public "GET" "/v1/consulates/nearest";
    person "POST" "/v1/people" => register;
    person "PUT" "/v1/people/me/contacts" => replace_contacts;
    person "GET" "/v1/people/me/contacts" => get_contacts;
    person "POST" "/v1/alerts" => raise_alert;
    person "GET" "/v1/alerts/{alert_id}" => get_alert;
    person "POST" "/v1/alerts/{alert_id}/locations" => add_location;
    person "POST" "/v1/alerts/{alert_id}/cancel" => cancel_alert;
    person "PUT" "/v1/people/me/pins" => set_pins;
    staff "GET" "/v1/consulates/{consulate_id}/alerts" => list_consulate_alerts;
    staff "POST" "/v1/alerts/{alert_id}/acknowledge" => acknowledge_alert;
    staff "POST" "/v1/alerts/{alert_id}/resolve" => resolve_alert;
    person "POST" "/v1/checkins" => start_checkin;
    person "GET" "/v1/checkins/{checkin_id}" => get_checkin;
    person "POST" "/v1/checkins/{checkin_id}/confirm" => confirm_checkin;
    person "POST" "/v1/checkins/{checkin_id}/locations" => checkin_location;
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

/// A handler on the person's side, or on the staff's.
type Sides = (Option<Mount<PersonApi>>, Option<Mount<Arc<StaffService>>>);

impl Serve {
    fn sides(self) -> Sides {
        match self {
            Serve::Person(serve) => (Some(serve), None),
            Serve::Staff(serve) => (None, Some(serve)),
        }
    }
}

/// The routes of `TABLE` this crate serves that `pick` keeps: one audience's, on its service.
fn mounted<S: Clone + Send + Sync + 'static>(pick: fn(Serve) -> Option<Mount<S>>) -> Router<S> {
    TABLE
        .iter()
        .filter_map(|route| Some((route, pick(route.handler?)?)))
        .fold(Router::new(), |router, (route, serve)| {
            router.route(route.path, serve(method_filter(route.method)))
        })
}

/// The person's side (registration, contacts, PINs, alerts, check-ins) and the consulate staff's:
/// every route of `TABLE` this crate serves.
pub fn person_routes(services: &Services) -> Router {
    let staff = mounted(|serve| serve.sides().1).with_state(services.staff.clone());
    mounted(|serve| serve.sides().0)
        .with_state(PersonApi::from(services))
        .merge(staff)
}

/// The alert intake function's API: the person's routes only; the staff's are another function's.
pub fn intake_api(api: PersonApi) -> Router {
    finish(mounted(|serve| serve.sides().0).with_state(api))
}

/// The staff API function's: list, acknowledge and resolve, for consulate staff only. It is given
/// the staff's service alone, so nothing it serves can register people or change PINs.
pub fn staff_api(staff: Arc<StaffService>) -> Router {
    finish(mounted(|serve| serve.sides().1).with_state(staff))
}

/// A Lambda function serving `api` on the backend its configuration names, as intake and the
/// staff API do: the connections the first request needs are opened during init
/// (`AwsBackend::start`). `api` takes the
/// services its function uses from those the backend built.
pub async fn run_on_lambda(api: fn(&Services) -> Router) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let config = crate::config::Config::from_env()?;
    let backend = crate::backend::Backend::from_config(&config).await?;
    lambda_http::run(api(&backend.services())).await
}

/// The whole API on one port, as the local runner serves it.
pub fn full_api(services: &Services, directory: Arc<Directory>) -> Router {
    finish(consulate_routes(directory).merge(person_routes(services)))
}
