//! Properties over generated input. Whatever bytes a client sends, the API answers with a 2xx or a
//! 4xx JSON error that names the problem, never a 5xx; well-formed requests are accepted and read
//! back as sent; the domain's rules (nearest office, credentials, PINs, the alert lifecycle, the
//! directory validator, page cursors) hold for every generated case, not only the examples.
//!
//! The router is driven in-process on a fresh embedded store. Case counts are kept small enough
//! for the whole file to run in seconds in a debug build; each property still fails on a counter-
//! example, and proptest prints the shrunk input.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration as StdDuration;

use alert_button_core::domain::alert::{
    Alert, AlertEvent, AlertRequest, AlertStatus, CancelReason, EscalationPolicy, Location,
    MAX_ESCALATION_LEVEL, MAX_TEXTED_CHANGES_PER_ALERT, Outcome, Retention,
};
use alert_button_core::domain::checkin::{CheckIn, CheckInRequest, CheckInStatus};
use alert_button_core::domain::consulate::{BUNDLED_CSV, COLUMNS, Directory, distance_km};
use alert_button_core::domain::credential::{self, PresentedToken};
use alert_button_core::domain::districts::Districts;
use alert_button_core::domain::geography::GeoPoint;
use alert_button_core::domain::person::{PinsRequest, is_e164};
use alert_button_core::error::Error;
use alert_button_core::local::LocalMode;
use alert_button_core::outbound::cursor::{decode_cursor, encode_cursor};
use alert_button_core::testing;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;
use uuid::Uuid;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs one property with `cases` cases, panicking with the shrunk counterexample on failure.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    if let Err(err) = TestRunner::new(config(cases)).run(&strategy, test) {
        panic!("{err}");
    }
}

static DIRECTORY: LazyLock<Arc<Directory>> = LazyLock::new(|| Arc::new(Directory::bundled()));
static DISTRICTS: LazyLock<Districts> = LazyLock::new(Districts::bundled);

// ---------------------------------------------------------------------------------------------
// The API in-process
// ---------------------------------------------------------------------------------------------

/// The whole API on a fresh embedded store, with a person who has an open alert and a pending
/// check-in, and a staff token for the alert's consulate.
struct Api {
    runtime: tokio::runtime::Runtime,
    router: Router,
    local: LocalMode,
    token: String,
    alert_id: String,
    checkin_id: String,
    staff: String,
    _dir: tempfile::TempDir,
}

struct Reply {
    status: StatusCode,
    json: Value,
    retry_after: bool,
}

/// Every registration gets its own source address: the per-address limit is not under test here.
static NEXT_SOURCE: AtomicU32 = AtomicU32::new(1);

impl Api {
    fn start() -> Api {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = LocalMode::open(dir.path(), DIRECTORY.clone(), false).unwrap();
        let router = local.router();
        let mut api = Api {
            runtime,
            router,
            local,
            token: String::new(),
            alert_id: String::new(),
            checkin_id: String::new(),
            staff: String::new(),
            _dir: dir,
        };
        api.token = api.register();
        let alert = api.call(
            Method::POST,
            "/v1/alerts",
            Some(&api.token),
            json!({"client_alert_id": "setup", "location": {"lat": 41.88, "lon": -87.63}}),
        );
        assert_eq!(alert.status, StatusCode::CREATED, "{}", alert.json);
        api.alert_id = alert.json["alert_id"].as_str().unwrap().to_owned();
        let consulate = alert.json["consulate"]["id"].as_str().unwrap().to_owned();
        let checkin = api.call(
            Method::POST,
            "/v1/checkins",
            Some(&api.token),
            json!({"deadline": deadline_in(120), "location": {"lat": 29.4, "lon": -98.5}}),
        );
        assert_eq!(checkin.status, StatusCode::CREATED, "{}", checkin.json);
        api.checkin_id = checkin.json["checkin_id"].as_str().unwrap().to_owned();
        api.staff = api
            .local
            .staff_tokens
            .issue("staff", &consulate, false, StdDuration::from_secs(3600))
            .unwrap();
        api
    }

    /// A new person with one contact; returns the token.
    fn register(&self) -> String {
        let reply = self.call(
            Method::POST,
            "/v1/people",
            None,
            json!({"display_name": "Ana", "language": "es",
                   "contacts": [{"name": "Luis", "phone": "+13125550100"}]}),
        );
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.json["token"].as_str().unwrap().to_owned()
    }

    fn call(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Reply {
        let bytes = if method == Method::GET {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        self.send(method, path, token, bytes)
    }

    fn send(&self, method: Method, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
        let mut request = testing::json_request(method, path, token, body);
        let source = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed);
        request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from((source.to_be_bytes(), 1))));
        self.runtime.block_on(async {
            let response = self.router.clone().oneshot(request).await.unwrap();
            let status = response.status();
            let is_json = response
                .headers()
                .get(header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let retry_after = response.headers().contains_key(header::RETRY_AFTER);
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                panic!("{status}: not JSON: {:?}", String::from_utf8_lossy(&bytes))
            });
            assert!(is_json, "{status}: the content type is not JSON");
            Reply {
                status,
                json,
                retry_after,
            }
        })
    }
}

/// The error answer every 4xx must be: a code and a message, a field on every 422, and
/// `Retry-After` on every 429.
fn well_formed_error(reply: &Reply) -> Result<(), TestCaseError> {
    prop_assert!(
        reply.status.is_client_error(),
        "{}: {}",
        reply.status,
        reply.json
    );
    let error = &reply.json["error"];
    prop_assert!(
        error["code"].as_str().is_some_and(|c| !c.is_empty()),
        "{}",
        reply.json
    );
    prop_assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        reply.json
    );
    if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
        prop_assert!(
            error["field"].as_str().is_some_and(|f| !f.is_empty()),
            "a 422 must name its field: {}",
            reply.json
        );
    }
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        prop_assert!(reply.retry_after, "a 429 needs Retry-After");
    }
    Ok(())
}

fn expect_invalid(reply: &Reply, field: &str) -> Result<(), TestCaseError> {
    well_formed_error(reply)?;
    prop_assert_eq!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        &reply.json
    );
    prop_assert_eq!(reply.json["error"]["field"].as_str(), Some(field));
    Ok(())
}

fn deadline_in(minutes: i64) -> String {
    (OffsetDateTime::now_utc() + time::Duration::minutes(minutes))
        .format(&Rfc3339)
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// The JSON routes, each with the body shape it takes.
#[derive(Debug, Clone, Copy)]
enum Route {
    Register,
    Contacts,
    Alert,
    AlertLocation,
    Cancel,
    Pins,
    CheckIn,
    CheckInLocation,
    Acknowledge,
    Resolve,
}

const ROUTES: [Route; 10] = [
    Route::Register,
    Route::Contacts,
    Route::Alert,
    Route::AlertLocation,
    Route::Cancel,
    Route::Pins,
    Route::CheckIn,
    Route::CheckInLocation,
    Route::Acknowledge,
    Route::Resolve,
];

impl Route {
    /// The method, path and bearer token for this route, as `person` (or the API's staff).
    fn request(self, api: &Api, person: &str) -> (Method, String, Option<String>) {
        let (alert, checkin) = (&api.alert_id, &api.checkin_id);
        let path = match self {
            Route::Register => "/v1/people".into(),
            Route::Contacts => "/v1/people/me/contacts".into(),
            Route::Alert => "/v1/alerts".into(),
            Route::AlertLocation => format!("/v1/alerts/{alert}/locations"),
            Route::Cancel => format!("/v1/alerts/{alert}/cancel"),
            Route::Pins => "/v1/people/me/pins".into(),
            Route::CheckIn => "/v1/checkins".into(),
            Route::CheckInLocation => format!("/v1/checkins/{checkin}/locations"),
            Route::Acknowledge => format!("/v1/alerts/{alert}/acknowledge"),
            Route::Resolve => format!("/v1/alerts/{alert}/resolve"),
        };
        let method = match self {
            Route::Contacts | Route::Pins => Method::PUT,
            _ => Method::POST,
        };
        let token = match self {
            Route::Register => None,
            Route::Acknowledge | Route::Resolve => Some(api.staff.clone()),
            _ => Some(person.to_owned()),
        };
        (method, path, token)
    }

    /// A body this route accepts (up to state: a closed alert, a PIN now required).
    fn valid_body(self) -> BoxedStrategy<Value> {
        match self {
            Route::Register => (
                prop::option::of(name()),
                prop_oneof![Just("es"), Just("en")],
                contacts(),
            )
                .prop_map(|(display_name, language, contacts)| {
                    let body = json!({"language": language, "contacts": contacts});
                    with_optional(body, "display_name", display_name)
                })
                .boxed(),
            Route::Contacts => contacts()
                .prop_map(|contacts| json!({ "contacts": contacts }))
                .boxed(),
            Route::Alert => (client_alert_id(), location(), prop::option::of(note()))
                .prop_map(|(id, location, note)| {
                    let body = json!({"client_alert_id": id, "location": location});
                    with_optional(body, "note", note)
                })
                .boxed(),
            Route::AlertLocation | Route::CheckInLocation => location().boxed(),
            Route::Cancel => (
                prop_oneof![Just("safe"), Just("mistake")],
                prop::option::of("[0-9]{4,8}"),
            )
                .prop_map(|(reason, pin)| match pin {
                    Some(pin) => json!({"reason": reason, "pin": pin}),
                    None => json!({ "reason": reason }),
                })
                .boxed(),
            Route::Pins => ("[0-9]{4,8}", "[0-9]{4,8}")
                .prop_filter("distinct PINs", |(a, b)| a != b)
                .prop_map(|(cancel, duress)| json!({"cancel_pin": cancel, "duress_pin": duress}))
                .boxed(),
            Route::CheckIn => (2i64..10_000, location(), prop::option::of(note()))
                .prop_map(|(minutes, location, note)| {
                    let mut body = json!({"deadline": deadline_in(minutes), "location": location});
                    if let Some(note) = note {
                        body["note"] = json!(note);
                    }
                    body
                })
                .boxed(),
            Route::Acknowledge => prop::option::of(note())
                .prop_map(|note| match note {
                    Some(note) => json!({ "note": note }),
                    None => json!({}),
                })
                .boxed(),
            Route::Resolve => (
                prop_oneof![
                    Just("safe"),
                    Just("detained"),
                    Just("unreachable"),
                    Just("no_incident")
                ],
                prop::option::of(note()),
            )
                .prop_map(|(outcome, note)| match note {
                    Some(note) => json!({"outcome": outcome, "note": note}),
                    None => json!({ "outcome": outcome }),
                })
                .boxed(),
        }
    }
}

/// Text a person would type: no control characters, not blank, at most `max` characters.
fn text(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[^\\p{{C}}\\s][^\\p{{C}}]{{0,{}}}", max - 1)).unwrap()
}

fn name() -> impl Strategy<Value = String> {
    text(100)
}

fn note() -> impl Strategy<Value = String> {
    text(500)
}

fn client_alert_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,64}"
}

/// E.164 numbers in the US and Mexican numbering plans: Chicago and Houston lines, and Mexico
/// City and Guadalajara numbers, a mobile sometimes with the `1` once dialled after `+52`.
fn phone() -> impl Strategy<Value = String> {
    prop_oneof!["\\+1(312|713)[2-9][0-9]{6}", "\\+52(155|33)[2-9][0-9]{7}",]
}

fn email() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._%+-]{1,20}@[a-z0-9-]{1,20}(\\.[a-z]{2,6}){1,2}"
}

fn contacts() -> impl Strategy<Value = Vec<Value>> {
    let contact = (
        name(),
        prop::option::of(phone()),
        prop::option::of(email()),
        prop::option::of(prop_oneof![Just("es"), Just("en")]),
    )
        .prop_filter("a way to reach them", |(_, phone, email, _)| {
            phone.is_some() || email.is_some()
        });
    prop::collection::vec(contact, 0..=15).prop_map(|contacts| {
        // Each phone and e-mail once (e-mails compare case-insensitively).
        let (mut phones, mut emails) = (HashSet::new(), HashSet::new());
        contacts
            .into_iter()
            .filter(|(_, phone, email, _)| {
                phone.as_ref().is_none_or(|p| phones.insert(p.clone()))
                    && email
                        .as_ref()
                        .is_none_or(|e| emails.insert(e.to_ascii_lowercase()))
            })
            .map(|(name, phone, email, language)| {
                let mut contact = json!({ "name": name });
                if let Some(phone) = phone {
                    contact["phone"] = json!(phone);
                }
                if let Some(email) = email {
                    contact["email"] = json!(email);
                }
                if let Some(language) = language {
                    contact["language"] = json!(language);
                }
                contact
            })
            .collect()
    })
}

fn location() -> impl Strategy<Value = Value> {
    (
        -90.0..=90.0f64,
        -180.0..=180.0f64,
        prop::option::of(0.0..=100_000.0f64),
    )
        .prop_map(|(lat, lon, accuracy)| match accuracy {
            Some(accuracy) => json!({"lat": lat, "lon": lon, "accuracy_m": accuracy}),
            None => json!({"lat": lat, "lon": lon}),
        })
}

/// Object keys, including the characters that could confuse an error message or a path.
fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[a-z_]{1,12}", "[a-z`. \\[\\]0-9]{0,8}", ".{0,8}",]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every place in a JSON value where a value sits, as a list of object keys and array indexes.
fn slots(value: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(json!(key));
                out.push(prefix.clone());
                slots(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                prefix.push(json!(index));
                out.push(prefix.clone());
                slots(child, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn slot_mut<'a>(value: &'a mut Value, path: &[Value]) -> &'a mut Value {
    path.iter().fold(value, |at, step| match step {
        Value::String(key) => &mut at[key.as_str()],
        Value::Number(index) => &mut at[index.as_u64().unwrap() as usize],
        _ => unreachable!(),
    })
}

/// A body for a route: raw bytes, any JSON, or a valid body with one value replaced.
fn body_for(route: Route) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        (route.valid_body(), json_value(), any::<Index>()).prop_map(|(mut body, value, at)| {
            let mut all = Vec::new();
            slots(&body, &mut Vec::new(), &mut all);
            if !all.is_empty() {
                *slot_mut(&mut body, &all[at.index(all.len())]) = value;
            }
            body.to_string().into_bytes()
        }),
        route.valid_body().prop_map(|v| v.to_string().into_bytes()),
    ]
}

fn any_route_and_body() -> impl Strategy<Value = (Route, Vec<u8>)> {
    prop::sample::select(ROUTES.to_vec()).prop_flat_map(|route| (Just(route), body_for(route)))
}

// ---------------------------------------------------------------------------------------------
// The router: never a 5xx, every 4xx a JSON error naming the problem
// ---------------------------------------------------------------------------------------------

#[test]
fn any_body_on_any_json_route_is_answered_without_a_server_error() {
    let api = Api::start();
    check(300, any_route_and_body(), |(route, body)| {
        let (method, path, token) = route.request(&api, &api.token);
        let reply = api.send(method, &path, token.as_deref(), body);
        if !reply.status.is_success() {
            well_formed_error(&reply)?;
        }
        Ok(())
    });
}

#[test]
fn an_unknown_field_is_rejected_and_named_with_its_path() {
    let api = Api::start();
    let strategy = prop::sample::select(ROUTES.to_vec())
        .prop_flat_map(|route| (Just(route), route.valid_body(), key(), json_value()));
    check(
        120,
        strategy,
        |(route, mut body, unknown, value): (Route, Value, String, Value)| {
            // Extend the top-level object, or the nested location where there is one.
            let (target, field) = match route {
                Route::Alert | Route::CheckIn => {
                    (&mut body["location"], format!("location.{unknown}"))
                }
                // A key that could not name a field names the body instead.
                _ if unknown.is_empty() || unknown == "." => (&mut body, "body".to_owned()),
                _ => (&mut body, unknown.clone()),
            };
            let object = target.as_object_mut().unwrap();
            prop_assume!(!object.contains_key(&unknown) && !known_field(&unknown));
            object.insert(unknown.clone(), value);
            let (method, path, token) = route.request(&api, &api.token);
            let reply = api.call(method, &path, token.as_deref(), body);
            well_formed_error(&reply)?;
            prop_assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY);
            prop_assert_eq!(&reply.json["error"]["code"], "unknown_field");
            prop_assert_eq!(reply.json["error"]["field"].as_str(), Some(field.as_str()));
            Ok(())
        },
    );
}

/// Field names some body of the contract has, at any level.
fn known_field(name: &str) -> bool {
    [
        "display_name",
        "language",
        "contacts",
        "name",
        "phone",
        "email",
        "client_alert_id",
        "location",
        "note",
        "lat",
        "lon",
        "accuracy_m",
        "reason",
        "pin",
        "cancel_pin",
        "duress_pin",
        "deadline",
        "outcome",
    ]
    .contains(&name)
}

#[test]
fn any_query_for_the_nearest_offices_is_answered_without_a_server_error() {
    let api = Api::start();
    let value = prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        (-200.0..200.0f64).prop_map(|v| v.to_string()),
        (0u32..20).prop_map(|v| v.to_string()),
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        ".{0,12}",
    ];
    let name = prop_oneof![
        4 => prop_oneof![Just("lat"), Just("lon"), Just("limit")].prop_map(str::to_owned),
        1 => "[a-z]{0,5}",
    ];
    check(
        200,
        prop::collection::vec((name, value), 0..5),
        |pairs: Vec<(String, String)>| {
            let query = serde_urlencoded::to_string(&pairs).unwrap();
            let reply = api.call(
                Method::GET,
                &format!("/v1/consulates/nearest?{query}"),
                None,
                Value::Null,
            );
            if reply.status != StatusCode::OK {
                well_formed_error(&reply)?;
                if reply.status == StatusCode::UNPROCESSABLE_ENTITY {
                    let field = reply.json["error"]["field"].as_str().unwrap_or("");
                    prop_assert!(["lat", "lon", "limit"].contains(&field), "{}", reply.json);
                }
                return Ok(());
            }
            // Accepted: in-range numbers and a limit of 1 to 10.
            let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v);
            let number = |name: &str| get(name).and_then(|v| v.trim().parse::<f64>().ok());
            let (lat, lon) = (number("lat").unwrap(), number("lon").unwrap());
            prop_assert!(lat.is_finite() && lat.abs() <= 90.0);
            prop_assert!(lon.is_finite() && lon.abs() <= 180.0);
            let limit = get("limit").map_or(1, |v| v.parse::<usize>().unwrap());
            prop_assert_eq!(reply.json["consulates"].as_array().unwrap().len(), limit);
            Ok(())
        },
    );
}

#[test]
fn any_listing_query_is_answered_without_a_server_error() {
    let api = Api::start();
    let consulate = api
        .local
        .staff_tokens
        .issue("staff", "mx-cg-chicago", false, StdDuration::from_secs(600))
        .unwrap();
    let value = prop_oneof![
        prop_oneof![Just("open"), Just("acknowledged"), Just("resolved")].prop_map(String::from),
        (0u32..200).prop_map(|v| v.to_string()),
        (any::<i64>(), any::<u128>())
            .prop_map(|(ms, id)| encode_cursor(ms, &Uuid::from_u128(id).to_string())),
        ".{0,30}",
    ];
    let name = prop_oneof![Just("status"), Just("limit"), Just("cursor"), Just("x")];
    check(
        100,
        prop::collection::vec((name, value), 0..4),
        |pairs: Vec<(&str, String)>| {
            let query = serde_urlencoded::to_string(&pairs).unwrap();
            let reply = api.call(
                Method::GET,
                &format!("/v1/consulates/mx-cg-chicago/alerts?{query}"),
                Some(&consulate),
                Value::Null,
            );
            if reply.status != StatusCode::OK {
                well_formed_error(&reply)?;
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Valid requests are accepted and read back as sent
// ---------------------------------------------------------------------------------------------

/// The contacts as the API keeps them: names trimmed, e-mails trimmed and lower-cased, phones in
/// E.164 with their country.
fn normalised(contacts: &[Value]) -> Vec<Value> {
    contacts
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c["name"] = json!(c["name"].as_str().unwrap().trim());
            if let Some(email) = c["email"].as_str() {
                c["email"] = json!(email.trim().to_ascii_lowercase());
            }
            // The generated numbers are US (+1) or Mexican; a Mexican mobile loses the old `1`.
            if let Some(phone) = c["phone"].as_str() {
                let (phone, country) = match phone.strip_prefix("+521") {
                    Some(national) => (format!("+52{national}"), "MX"),
                    None if phone.starts_with("+52") => (phone.to_owned(), "MX"),
                    None => (phone.to_owned(), "US"),
                };
                c["phone"] = json!(phone);
                c["country"] = json!(country);
                // A number the contact has not answered from yet.
                c["consent"] = json!("pending");
            }
            c
        })
        .collect()
}

#[test]
fn a_valid_registration_is_accepted_and_its_contacts_read_back() {
    let api = Api::start();
    check(24, Route::Register.valid_body(), |registration: Value| {
        let reply = api.call(Method::POST, "/v1/people", None, registration.clone());
        prop_assert_eq!(reply.status, StatusCode::CREATED, "{}", &reply.json);
        let token = reply.json["token"].as_str().unwrap();
        let presented = PresentedToken::parse(token).unwrap();
        prop_assert_eq!(
            presented.person_id.to_string(),
            reply.json["person_id"].as_str().unwrap()
        );
        // The same contacts again: accepted, and answered as the API keeps them.
        let contacts = registration["contacts"].as_array().unwrap();
        let replaced = api.call(
            Method::PUT,
            "/v1/people/me/contacts",
            Some(token),
            json!({ "contacts": contacts }),
        );
        prop_assert_eq!(replaced.status, StatusCode::OK, "{}", &replaced.json);
        // As kept, beside how each is reached (see `route::reached_by`).
        let mut kept = replaced.json["contacts"].as_array().unwrap().clone();
        for contact in &mut kept {
            let contact = contact.as_object_mut().unwrap();
            prop_assert!(contact.remove("reached_by").is_some_and(|r| r.is_array()));
            contact.remove("unreachable_reason");
            // A phone's consent request, and only a phone's.
            let request = contact.remove("consent_request");
            prop_assert_eq!(request.is_some(), contact.contains_key("phone"));
        }
        prop_assert_eq!(&kept, &normalised(contacts));
        Ok(())
    });
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * a.abs().max(1.0),
        _ => a == b,
    }
}

#[test]
fn a_valid_alert_is_accepted_replayed_and_read_back() {
    let api = Api::start();
    check(24, Route::Alert.valid_body(), |request: Value| {
        let token = api.register();
        let created = api.call(Method::POST, "/v1/alerts", Some(&token), request.clone());
        prop_assert_eq!(created.status, StatusCode::CREATED, "{}", &created.json);
        let alert = &created.json;
        prop_assert_eq!(&alert["status"], "open");
        prop_assert_eq!(&alert["client_alert_id"], &request["client_alert_id"]);
        for key in ["lat", "lon", "accuracy_m"] {
            prop_assert!(
                close(&alert["location"][key], &request["location"][key]),
                "{key}: {} vs {}",
                alert["location"],
                request["location"]
            );
        }
        let note = request["note"].as_str().map(str::trim);
        prop_assert_eq!(alert["note"].as_str(), note);
        prop_assert!(alert["consulate"]["id"].as_str().is_some());

        let replay = api.call(Method::POST, "/v1/alerts", Some(&token), request.clone());
        prop_assert_eq!(replay.status, StatusCode::OK);
        prop_assert_eq!(&replay.json["alert_id"], &alert["alert_id"]);
        let id = alert["alert_id"].as_str().unwrap();
        let read = api.call(
            Method::GET,
            &format!("/v1/alerts/{id}"),
            Some(&token),
            Value::Null,
        );
        prop_assert_eq!(read.status, StatusCode::OK);
        prop_assert_eq!(&read.json["location"], &alert["location"]);
        Ok(())
    });
}

#[test]
fn a_valid_location_update_and_check_in_are_accepted_and_read_back() {
    let api = Api::start();
    let strategy = (
        location(),
        Route::CheckIn.valid_body(),
        location(),
        any::<bool>(),
    );
    check(
        16,
        strategy,
        |(update, checkin, checkin_update, alert_first)| {
            let token = api.register();
            let opened = api.call(
                Method::POST,
                "/v1/alerts",
                Some(&token),
                json!({"client_alert_id": "a", "location": {"lat": 34.05, "lon": -118.25}}),
            );
            let id = opened.json["alert_id"].as_str().unwrap();
            let moved = api.call(
                Method::POST,
                &format!("/v1/alerts/{id}/locations"),
                Some(&token),
                update.clone(),
            );
            prop_assert_eq!(moved.status, StatusCode::OK, "{}", &moved.json);
            prop_assert_eq!(moved.json["history"].as_array().unwrap().len(), 2);
            for key in ["lat", "lon", "accuracy_m"] {
                prop_assert!(close(&moved.json["location"][key], &update[key]));
            }

            let started = api.call(Method::POST, "/v1/checkins", Some(&token), checkin.clone());
            prop_assert_eq!(started.status, StatusCode::CREATED, "{}", &started.json);
            prop_assert_eq!(&started.json["status"], "pending");
            let deadline =
                |v: &Value| OffsetDateTime::parse(v.as_str().unwrap(), &Rfc3339).unwrap();
            prop_assert_eq!(
                deadline(&started.json["deadline"]),
                deadline(&checkin["deadline"])
            );
            let checkin_id = started.json["checkin_id"].as_str().unwrap();
            if alert_first {
                let confirmed = api.call(
                    Method::POST,
                    &format!("/v1/checkins/{checkin_id}/confirm"),
                    Some(&token),
                    json!({}),
                );
                prop_assert_eq!(&confirmed.json["status"], "confirmed");
            }
            let updated = api.call(
                Method::POST,
                &format!("/v1/checkins/{checkin_id}/locations"),
                Some(&token),
                checkin_update.clone(),
            );
            if alert_first {
                // A confirmed check-in is closed: no more changes.
                well_formed_error(&updated)?;
                prop_assert_eq!(updated.status, StatusCode::CONFLICT);
            } else {
                prop_assert_eq!(updated.status, StatusCode::OK, "{}", &updated.json);
                prop_assert!(close(
                    &updated.json["location"]["lat"],
                    &checkin_update["lat"]
                ));
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Invalid values are rejected with the field named
// ---------------------------------------------------------------------------------------------

/// A number outside `[-bound, bound]`, as JSON text; the largest overflow `f64` altogether.
fn out_of_range(bound: f64) -> impl Strategy<Value = String> {
    prop_oneof![
        (bound + 1e-6..1e300f64).prop_map(|v| v.to_string()),
        (bound + 1e-6..1e300f64).prop_map(|v| (-v).to_string()),
        Just("1e999".to_owned()),
        Just("-1e400".to_owned()),
    ]
}

/// Strings that are not E.164, by construction rather than by the validator's own test.
fn bad_phone() -> impl Strategy<Value = String> {
    prop_oneof![
        "[1-9][0-9]{7,14}",                     // no plus
        "\\+0[0-9]{7,14}",                      // country code 0
        "\\+[1-9][0-9]{0,6}",                   // too short
        "\\+[1-9][0-9]{15,20}",                 // too long
        "\\+[1-9][0-9]{2,5}[ ()a-z.-][0-9]{4}", // formatting or letters
        Just(String::new()),
    ]
}

fn over_long(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[a-z][a-zñé ]{{{},{}}}[a-z]", max, max + 40)).unwrap()
}

#[test]
fn out_of_range_and_malformed_values_are_rejected_naming_the_field() {
    let api = Api::start();
    // (route, body text, the field the answer must name)
    let location_case = |prefix: &'static str| {
        prop_oneof![
            out_of_range(90.0).prop_map(move |v| (format!(r#"{{"lat":{v},"lon":0}}"#), "lat")),
            out_of_range(180.0).prop_map(move |v| (format!(r#"{{"lat":0,"lon":{v}}}"#), "lon")),
            prop_oneof![
                (-1e300..-1e-9f64).prop_map(|v| v.to_string()),
                (100_000.001..1e300f64).prop_map(|v| v.to_string()),
            ]
            .prop_map(|v| (
                format!(r#"{{"lat":0,"lon":0,"accuracy_m":{v}}}"#),
                "accuracy_m"
            )),
        ]
        .prop_map(move |(location, field)| {
            let field = if prefix.is_empty() {
                field.to_owned()
            } else {
                format!("{prefix}.{field}")
            };
            (location, field)
        })
    };
    let cases = prop_oneof![
        location_case("location").prop_map(|(location, field)| (
            Route::Alert,
            format!(r#"{{"client_alert_id":"x","location":{location}}}"#),
            field
        )),
        location_case("").prop_map(|(location, field)| (Route::AlertLocation, location, field)),
        location_case("").prop_map(|(location, field)| (Route::CheckInLocation, location, field)),
        location_case("location").prop_map(|(location, field)| (
            Route::CheckIn,
            format!(
                r#"{{"deadline":"{}","location":{location}}}"#,
                deadline_in(60)
            ),
            field
        )),
        (bad_phone(), 0usize..3).prop_map(|(phone, index)| {
            let mut contacts: Vec<Value> = (0..3)
                .map(|i| json!({"name": "N", "phone": format!("+1312555010{i}")}))
                .collect();
            contacts[index]["phone"] = json!(phone);
            (
                Route::Contacts,
                json!({ "contacts": contacts }).to_string(),
                format!("contacts[{index}].phone"),
            )
        }),
        over_long(100).prop_map(|name| (
            Route::Register,
            json!({"language": "es", "display_name": name}).to_string(),
            "display_name".to_owned()
        )),
        over_long(100).prop_map(|name| (
            Route::Contacts,
            json!({"contacts": [{"name": name, "phone": "+13125550100"}]}).to_string(),
            "contacts[0].name".to_owned()
        )),
        over_long(500).prop_map(|note| (
            Route::Alert,
            json!({"client_alert_id": "x", "location": {"lat": 1, "lon": 1}, "note": note})
                .to_string(),
            "note".to_owned()
        )),
        over_long(500).prop_map(|note| (
            Route::Acknowledge,
            json!({ "note": note }).to_string(),
            "note".to_owned()
        )),
        prop_oneof![
            over_long(64),
            "[a-z]{0,5}[ /#?é][a-z]{0,5}",
            Just(String::new())
        ]
        .prop_map(|id| (
            Route::Alert,
            json!({"client_alert_id": id, "location": {"lat": 1, "lon": 1}}).to_string(),
            "client_alert_id".to_owned()
        )),
    ];
    check(150, cases, |(route, body, field)| {
        // Limits that count requests before their bodies are checked apply per person: a fresh
        // one for each case, except where the setup person's alert or check-in is the target.
        let person = match route {
            Route::AlertLocation | Route::CheckInLocation => api.token.clone(),
            _ => api.register(),
        };
        let (method, path, token) = route.request(&api, &person);
        let reply = api.send(method, &path, token.as_deref(), body.into_bytes());
        expect_invalid(&reply, &field)
    });
}

// ---------------------------------------------------------------------------------------------
// Nearest consulates
// ---------------------------------------------------------------------------------------------

fn any_point() -> impl Strategy<Value = GeoPoint> {
    prop_oneof![
        // Anywhere on Earth, including the poles and the antimeridian.
        (-90.0..=90.0f64, -180.0..=180.0f64),
        // Where the offices are.
        (15.0..=65.0f64, -170.0..=-60.0f64),
    ]
    .prop_map(|(lat, lon)| GeoPoint { lat, lon })
}

proptest! {
    #![proptest_config(config(400))]

    #[test]
    fn the_nearest_offices_are_the_closest_ones_nearest_first(point in any_point(), limit in 1usize..=12) {
        let all = DIRECTORY.all();
        let nearby = DIRECTORY.nearest(point, limit);
        prop_assert_eq!(nearby.len(), limit.min(all.len()));
        let brute_min = all
            .iter()
            .map(|c| distance_km(point, c.point()))
            .fold(f64::INFINITY, f64::min);
        prop_assert_eq!(nearby[0].distance_km, brute_min);
        for pair in nearby.windows(2) {
            prop_assert!(pair[0].distance_km <= pair[1].distance_km);
        }
        // Nothing left out is nearer than the farthest one returned.
        let farthest = nearby.last().unwrap().distance_km;
        let returned: HashSet<&str> = nearby.iter().map(|n| n.consulate.id.as_str()).collect();
        for office in all.iter().filter(|c| !returned.contains(c.id.as_str())) {
            prop_assert!(distance_km(point, office.point()) >= farthest);
        }
        for n in &nearby {
            prop_assert_eq!(n.distance_km, distance_km(point, n.consulate.point()));
        }
    }
}

#[test]
fn the_nearest_endpoint_answers_nearest_first() {
    let api = Api::start();
    check(60, (any_point(), 1usize..=10), |(point, limit)| {
        let reply = api.call(
            Method::GET,
            &format!(
                "/v1/consulates/nearest?lat={}&lon={}&limit={limit}",
                point.lat, point.lon
            ),
            None,
            Value::Null,
        );
        prop_assert_eq!(reply.status, StatusCode::OK, "{}", &reply.json);
        let offices = reply.json["consulates"].as_array().unwrap();
        prop_assert_eq!(offices.len(), limit);
        let distances: Vec<f64> = offices
            .iter()
            .map(|o| o["distance_km"].as_f64().unwrap())
            .collect();
        prop_assert!(distances.windows(2).all(|d| d[0] <= d[1]), "{distances:?}");
        let brute_min = DIRECTORY
            .all()
            .iter()
            .map(|c| distance_km(point, c.point()))
            .fold(f64::INFINITY, f64::min);
        // Answered in tenths of a kilometre.
        prop_assert!((distances[0] - brute_min).abs() <= 0.05 + 1e-9);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Credentials and PINs
// ---------------------------------------------------------------------------------------------

/// Whether `token` has the shape `<uuid>.<64 hex digits>`, written independently of the parser.
fn token_shape(token: &str) -> bool {
    let Some((id, secret)) = token.split_once('.') else {
        return false;
    };
    Uuid::parse_str(id).is_ok()
        && secret.len() == 64
        && secret.chars().all(|c| c.is_ascii_hexdigit())
}

proptest! {
    #![proptest_config(config(200))]

    #[test]
    fn a_hashed_secret_matches_only_itself(secret in ".{0,40}", other in ".{0,40}") {
        let stored = credential::hash_secret(&secret);
        prop_assert!(credential::secret_matches(&secret, &stored));
        prop_assert_eq!(credential::secret_matches(&other, &stored), other == secret);
    }

    #[test]
    fn an_issued_token_verifies_and_any_change_to_it_does_not(
        id in any::<u128>(),
        at in any::<Index>(),
        replacement in any::<char>(),
    ) {
        let (token, stored) = credential::issue(Uuid::from_u128(id));
        let presented = PresentedToken::parse(&token).unwrap();
        prop_assert_eq!(presented.person_id, Uuid::from_u128(id));
        prop_assert!(presented.matches(&stored));

        // Change one character of the secret part.
        let secret_start = token.find('.').unwrap() + 1;
        let position = secret_start + at.index(token.len() - secret_start);
        let mut changed = token.clone();
        changed.replace_range(position..=position, &replacement.to_string());
        prop_assume!(replacement != token.as_bytes()[position] as char);
        if let Some(presented) = PresentedToken::parse(&changed) {
            prop_assert!(!presented.matches(&stored), "{changed}");
        }
    }

    #[test]
    fn only_well_shaped_tokens_parse(token in prop_oneof![
        ".{0,80}",
        (any::<u128>(), "[0-9a-fA-Fg]{60,68}").prop_map(|(id, s)| format!("{}.{s}", Uuid::from_u128(id))),
    ]) {
        prop_assert_eq!(PresentedToken::parse(&token).is_some(), token_shape(&token));
    }

    #[test]
    fn pins_are_four_to_eight_digits_and_differ(
        cancel in prop_oneof!["[0-9]{0,10}", ".{0,9}"],
        duress in prop_oneof!["[0-9]{0,10}", ".{0,9}"],
    ) {
        let good = |pin: &str| (4..=8).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_digit());
        let result = PinsRequest { cancel_pin: cancel.clone(), duress_pin: duress.clone(), current_pin: None, location: None }.validate();
        let expected_field = if !good(&cancel) {
            Some("cancel_pin")
        } else if !good(&duress) || cancel == duress {
            Some("duress_pin")
        } else {
            None
        };
        match (result, expected_field) {
            (Ok(_), None) => {}
            (Err(Error::Invalid { field, .. }), Some(expected)) => prop_assert_eq!(field, expected),
            (other, expected) => prop_assert!(false, "{other:?}, expected {expected:?}"),
        }
    }
}

#[derive(Debug, Clone)]
enum PinAttempt {
    Cancel,
    Duress,
    Other(String),
    Missing,
}

#[test]
fn only_the_cancel_pin_cancels_and_the_duress_pin_only_seems_to() {
    let api = Api::start();
    let pins = ("[0-9]{4,8}", "[0-9]{4,8}").prop_filter("distinct", |(a, b)| a != b);
    let attempt = prop_oneof![
        Just(PinAttempt::Cancel),
        Just(PinAttempt::Duress),
        "[0-9]{0,9}".prop_map(PinAttempt::Other),
        Just(PinAttempt::Missing),
    ];
    check(
        20,
        (pins, attempt),
        |((cancel_pin, duress_pin), attempt)| {
            let token = api.register();
            let set = api.call(
                Method::PUT,
                "/v1/people/me/pins",
                Some(&token),
                json!({"cancel_pin": cancel_pin, "duress_pin": duress_pin}),
            );
            prop_assert_eq!(set.status, StatusCode::OK, "{}", &set.json);
            let opened = api.call(
                Method::POST,
                "/v1/alerts",
                Some(&token),
                json!({"client_alert_id": "p", "location": {"lat": 41.88, "lon": -87.63}}),
            );
            let id = opened.json["alert_id"].as_str().unwrap().to_owned();
            let consulate = opened.json["consulate"]["id"].as_str().unwrap();
            let pin = match &attempt {
                PinAttempt::Cancel => Some(cancel_pin.clone()),
                PinAttempt::Duress => Some(duress_pin.clone()),
                PinAttempt::Other(pin) => Some(pin.clone()),
                PinAttempt::Missing => None,
            };
            let body = match &pin {
                Some(pin) => json!({"reason": "safe", "pin": pin}),
                None => json!({"reason": "safe"}),
            };
            let reply = api.call(
                Method::POST,
                &format!("/v1/alerts/{id}/cancel"),
                Some(&token),
                body,
            );
            let staff = api
                .local
                .staff_tokens
                .issue("s", consulate, false, StdDuration::from_secs(600))
                .unwrap();
            let seen_by_staff = api.call(
                Method::GET,
                &format!("/v1/alerts/{id}"),
                Some(&staff),
                Value::Null,
            );
            let staff_status = seen_by_staff.json["status"].as_str().unwrap();
            match pin {
                None => {
                    expect_invalid(&reply, "pin")?;
                    prop_assert_eq!(staff_status, "open");
                }
                Some(pin) if pin == cancel_pin => {
                    prop_assert_eq!(reply.status, StatusCode::OK);
                    prop_assert_eq!(&reply.json["status"], "cancelled");
                    prop_assert_eq!(staff_status, "cancelled");
                    prop_assert_eq!(&seen_by_staff.json["duress"], false);
                }
                Some(pin) if pin == duress_pin => {
                    // The person (and whoever holds the phone) sees a plain cancel.
                    prop_assert_eq!(reply.status, StatusCode::OK);
                    prop_assert_eq!(&reply.json["status"], "cancelled");
                    let history = reply.json["history"].as_array().unwrap();
                    prop_assert_eq!(&history.last().unwrap()["event"], "cancelled");
                    prop_assert_eq!(staff_status, "open");
                    prop_assert_eq!(&seen_by_staff.json["duress"], true);
                }
                Some(_) => {
                    well_formed_error(&reply)?;
                    prop_assert_eq!(reply.status, StatusCode::FORBIDDEN);
                    prop_assert_eq!(staff_status, "open");
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The alert lifecycle
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Step {
    Move(Location),
    Cancel(CancelReason),
    CancelUnderDuress(CancelReason),
    SignalDuress,
    Acknowledge(Option<String>),
    Resolve(Outcome),
    Escalate(u32),
}

fn step() -> impl Strategy<Value = Step> {
    let reason = prop_oneof![Just(CancelReason::Safe), Just(CancelReason::Mistake)];
    let outcome = prop_oneof![
        Just(Outcome::Safe),
        Just(Outcome::Detained),
        Just(Outcome::Unreachable),
        Just(Outcome::NoIncident),
    ];
    prop_oneof![
        3 => (24.5..49.0f64, -124.0..-67.0f64).prop_map(|(lat, lon)| Step::Move(Location { lat, lon, accuracy_m: None })),
        1 => reason.clone().prop_map(Step::Cancel),
        1 => reason.prop_map(Step::CancelUnderDuress),
        1 => Just(Step::SignalDuress),
        1 => prop::option::of("[a-z ]{1,20}").prop_map(Step::Acknowledge),
        1 => outcome.prop_map(Step::Resolve),
        2 => (0..=MAX_ESCALATION_LEVEL + 2).prop_map(Step::Escalate),
    ]
}

/// `body` with `key` set to `value` when there is one.
fn with_optional(mut body: Value, key: &str, value: Option<impl serde::Serialize>) -> Value {
    if let Some(value) = value {
        body[key] = json!(value);
    }
    body
}

proptest! {
    #![proptest_config(config(300))]

    /// A model of the lifecycle, checked step by step against the real thing: a closed alert never
    /// reopens, an acknowledged one never returns to open, a refused change changes nothing, and
    /// every accepted change appends exactly one numbered history entry.
    #[test]
    fn the_alert_lifecycle_follows_its_rules(
        lat in 25.0..49.0f64,
        lon in -124.0..-67.0f64,
        steps in prop::collection::vec(step(), 0..25),
    ) {
        let retention = Retention::default();
        let start = OffsetDateTime::now_utc();
        let request = AlertRequest {
            client_alert_id: "c".into(),
            location: Location { lat, lon, accuracy_m: None },
            note: None,
        };
        let mut alert = Alert::open(&testing::person(), request, &DIRECTORY, &DISTRICTS, start, &retention).unwrap();
        for (i, step) in steps.into_iter().enumerate() {
            let now = start + time::Duration::minutes(i as i64 + 1);
            let before = alert.clone();
            let (status, duress, level) = (before.status, before.duress, before.escalation_level);
            let duress_cancelled = before.history.iter().any(|e| e.event() == AlertEvent::DuressCancelled);
            let person_may = status.is_active() && !duress_cancelled;
            let (allowed, result, event) = match &step {
                Step::Move(location) => (person_may, alert.update_location(*location, now, &retention), AlertEvent::LocationUpdated),
                Step::Cancel(reason) => (person_may, alert.cancel(*reason, now, &retention), AlertEvent::Cancelled),
                Step::CancelUnderDuress(reason) => (person_may, alert.cancel_under_duress(*reason, now, &retention), AlertEvent::DuressCancelled),
                Step::SignalDuress => {
                    let result = alert.signal_duress(now, &retention);
                    if matches!(result, Ok(false)) {
                        // Already known to responders: nothing is recorded twice.
                        prop_assert!(duress);
                        prop_assert_eq!(&alert, &before);
                        continue;
                    }
                    (status.is_active(), result.map(|_| ()), AlertEvent::DuressSignalled)
                }
                Step::Acknowledge(note) => (status == AlertStatus::Open, alert.acknowledge(note.clone(), now, &retention), AlertEvent::Acknowledged),
                Step::Resolve(outcome) => (status.is_active(), alert.resolve(*outcome, None, now, &retention), AlertEvent::Resolved),
                Step::Escalate(to) => (status == AlertStatus::Open && *to == level + 1 && *to <= MAX_ESCALATION_LEVEL, alert.escalate(*to, &DIRECTORY, now, &retention), AlertEvent::Escalated),
            };
            prop_assert_eq!(result.is_ok(), allowed, "{:?} on {:?} (duress {})", step, status, duress);
            if result.is_err() {
                prop_assert!(matches!(result, Err(Error::Conflict { .. })), "{:?}", result);
                prop_assert_eq!(&alert, &before, "a refused change must change nothing");
                continue;
            }
            let expected_status = match &step {
                Step::Cancel(_) => AlertStatus::Cancelled,
                Step::Acknowledge(_) => AlertStatus::Acknowledged,
                Step::Resolve(_) => AlertStatus::Resolved,
                _ => status,
            };
            prop_assert_eq!(alert.status, expected_status);
            prop_assert_eq!(alert.history.len(), before.history.len() + 1);
            let entry = alert.latest_entry();
            prop_assert_eq!(entry.event(), event);
            prop_assert_eq!(entry.seq as usize, alert.history.len());
            prop_assert_eq!(entry.at, now);
            prop_assert_eq!(alert.updated_at, now);
            let keep = if alert.status.is_active() && !alert.duress { retention.active_alert } else { retention.closed_alert };
            prop_assert_eq!(alert.expires_at, (now + keep).unix_timestamp());
            prop_assert_eq!(alert.duress, duress || matches!(step, Step::CancelUnderDuress(_) | Step::SignalDuress));
            // History is the audit trail: what was there stays as it was.
            prop_assert_eq!(&alert.history[..before.history.len()], &before.history[..]);
        }
        for (i, entry) in alert.history.iter().enumerate() {
            prop_assert_eq!(entry.seq as usize, i + 1);
        }
        // However the steps go, the family is texted a bounded number of times.
        let texted = alert.history.iter().filter(|e| e.event().is_texted()).count();
        prop_assert!(texted <= MAX_TEXTED_CHANGES_PER_ALERT, "{} texted changes", texted);
        let seen = alert.as_seen_by_person();
        if alert.duress {
            let hidden = [AlertEvent::DuressCancelled, AlertEvent::DuressSignalled];
            prop_assert!(seen.history.iter().all(|e| !hidden.contains(&e.event())));
            prop_assert!(!seen.duress);
            for (i, entry) in seen.history.iter().enumerate() {
                prop_assert_eq!(entry.seq as usize, i + 1);
            }
            if alert.history.iter().any(|e| e.event() == AlertEvent::DuressCancelled) {
                prop_assert_eq!(seen.status, AlertStatus::Cancelled);
                prop_assert_eq!(seen.latest_entry().event(), AlertEvent::Cancelled);
            }
        } else {
            prop_assert_eq!(&seen, &alert);
        }
        // Escalation is due only for an open alert, one level at a time, up to the policy's cap.
        let policy = EscalationPolicy::default();
        let due = alert.escalation_due(start + time::Duration::days(1), &policy);
        let expected = (alert.status == AlertStatus::Open && alert.escalation_level < policy.max_level)
            .then_some(alert.escalation_level + 1);
        prop_assert_eq!(due, expected);
    }

    #[test]
    fn a_check_in_starts_only_with_a_deadline_one_minute_to_seven_days_ahead(
        lead_s in -86_400i64..(8 * 86_400),
        lat in -90.0..=90.0f64,
        lon in -180.0..=180.0f64,
        note in prop::option::of(text(500)),
    ) {
        let now = OffsetDateTime::now_utc();
        let request = CheckInRequest {
            deadline: now + time::Duration::seconds(lead_s),
            location: Location { lat, lon, accuracy_m: None },
            note: note.clone(),
        };
        let result = CheckIn::start(Uuid::nil(), request, now, &Retention::default());
        let in_range = (60..=7 * 86_400).contains(&lead_s);
        prop_assert_eq!(result.is_ok(), in_range, "{:?}", result.as_ref().err());
        if let Err(err) = &result {
            prop_assert!(matches!(err, Error::Invalid { field, .. } if field == "deadline"), "{:?}", err);
            return Ok(());
        }
        let mut checkin = result.unwrap();
        prop_assert_eq!(checkin.note.as_deref(), note.as_deref().map(str::trim));
        prop_assert!(!checkin.is_overdue(now));
        prop_assert!(checkin.is_overdue(checkin.deadline));
        // The alert a missed check-in would raise is itself valid.
        prop_assert!(checkin.alert_request().validate().is_ok());
        checkin.confirm(now).unwrap();
        prop_assert_eq!(checkin.status, CheckInStatus::Confirmed);
        prop_assert!(checkin.confirm(now).is_err());
        let moved = checkin.update_location(Location { lat: 0.0, lon: 0.0, accuracy_m: None }, now);
        prop_assert!(moved.is_err(), "a confirmed check-in moved");
        prop_assert!(!checkin.is_overdue(checkin.deadline + time::Duration::days(1)));
    }
}

// ---------------------------------------------------------------------------------------------
// The directory validator
// ---------------------------------------------------------------------------------------------

fn bundled_rows() -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(BUNDLED_CSV.as_bytes())
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

fn to_csv(rows: &[Vec<String>]) -> String {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    for row in rows {
        writer.write_record(row).unwrap();
    }
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

/// A value that makes `column` invalid on its own.
fn corruption() -> impl Strategy<Value = (&'static str, String)> {
    prop_oneof![
        prop_oneof![Just("MX-X"), Just("mx-"), Just("mx-a b"), Just("consul-x")]
            .prop_map(|v| ("id", v.to_owned())),
        Just(("name", String::new())),
        Just(("city", String::new())),
        prop_oneof![Just("XX"), Just("ca"), Just("")].prop_map(|v| ("state", v.to_owned())),
        bad_phone()
            .prop_filter("not empty", |p| !p.is_empty())
            .prop_map(|v| ("phone", v)),
        out_of_range(90.0).prop_map(|v| ("latitude", v)),
        prop_oneof![Just("north"), Just("NaN"), Just("inf")]
            .prop_map(|v| ("latitude", v.to_owned())),
        out_of_range(180.0).prop_map(|v| ("longitude", v)),
        prop_oneof![Just("gps"), Just("Office"), Just("")]
            .prop_map(|v| ("coordinates", v.to_owned())),
        Just(("jurisdiction_states", "ZZ".to_owned())),
        prop_oneof![Just("email"), Just("sources")].prop_map(|v| ("verified_fields", v.to_owned())),
        Just(("sources", String::new())),
        (0usize..COLUMNS.len()).prop_map(|c| (COLUMNS[c], " padded".to_owned())),
    ]
}

proptest! {
    #![proptest_config(config(150))]

    #[test]
    fn any_subset_of_the_bundled_offices_is_a_valid_directory(
        picked in prop::sample::subsequence((1..bundled_rows().len()).collect::<Vec<_>>(), 1..20),
    ) {
        let rows = bundled_rows();
        let mut chosen = vec![rows[0].clone()];
        chosen.extend(picked.iter().map(|&i| rows[i].clone()));
        let directory = Directory::from_csv(&to_csv(&chosen)).map_err(|p| TestCaseError::fail(format!("{p:?}")))?;
        let ids: Vec<&str> = directory.all().iter().map(|c| c.id.as_str()).collect();
        let expected: Vec<&str> = picked.iter().map(|&i| rows[i][0].as_str()).collect();
        prop_assert_eq!(ids, expected);
    }

    #[test]
    fn a_bad_field_is_reported_on_its_line_under_its_name(
        picked in prop::sample::subsequence((1..bundled_rows().len()).collect::<Vec<_>>(), 1..10),
        at in any::<Index>(),
        (column, value) in corruption(),
    ) {
        let rows = bundled_rows();
        let mut chosen = vec![rows[0].clone()];
        chosen.extend(picked.iter().map(|&i| rows[i].clone()));
        let row = 1 + at.index(picked.len());
        let index = COLUMNS.iter().position(|c| *c == column).unwrap();
        prop_assume!(chosen[row][index] != value);
        chosen[row][index] = value;
        let problems = match Directory::from_csv(&to_csv(&chosen)) {
            Ok(_) => return Err(TestCaseError::fail(format!("accepted a bad {column}"))),
            Err(problems) => problems,
        };
        let line = row as u64 + 1;
        prop_assert!(problems.iter().all(|p| p.line == line), "{problems:?}");
        prop_assert!(
            problems.iter().any(|p| p.message.starts_with(&format!("{column}:"))),
            "{column}: {problems:?}"
        );
        prop_assert!(problems.windows(2).all(|p| p[0].line <= p[1].line));
    }

    #[test]
    fn any_text_is_either_a_directory_or_problems_with_lines(text in prop_oneof![
        ".{0,200}",
        (0usize..4).prop_map(|n| to_csv(&bundled_rows()[..n])),
        prop::collection::vec(prop::collection::vec("[a-z0-9;,\" .+-]{0,6}", 0..14), 0..4)
            .prop_map(|rows| {
                let mut all = vec![COLUMNS.iter().map(|c| c.to_string()).collect::<Vec<_>>()];
                all.extend(rows);
                to_csv(&all)
            }),
    ]) {
        match Directory::from_csv(&text) {
            Ok(directory) => prop_assert!(!directory.all().is_empty()),
            Err(problems) => {
                prop_assert!(!problems.is_empty());
                let lines = text.lines().count().max(1) as u64 + 1;
                for problem in &problems {
                    prop_assert!((1..=lines).contains(&problem.line), "{problem:?} in {lines} lines");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Page cursors and JSON parsing
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(300))]

    #[test]
    fn a_cursor_decodes_to_what_it_encodes(ms in any::<i64>(), id in any::<u128>()) {
        let id = Uuid::from_u128(id).to_string();
        prop_assert_eq!(decode_cursor(&encode_cursor(ms, &id)).unwrap(), (ms, id));
    }

    #[test]
    fn any_other_cursor_is_an_invalid_cursor(cursor in prop_oneof![
        ".{0,40}",
        "[A-Za-z0-9_-]{0,80}",
        (".{0,12}", ".{0,40}").prop_map(|(a, b)| encode_cursor_text(&format!("{a}|{b}"))),
    ]) {
        match decode_cursor(&cursor) {
            // Only what a page could have carried: a number and an alert id.
            Ok((ms, id)) => prop_assert_eq!(decode_cursor(&encode_cursor(ms, &id)).unwrap(), (ms, id.clone())),
            Err(Error::Invalid { field, .. }) => prop_assert_eq!(field, "cursor"),
            Err(other) => prop_assert!(false, "{other:?}"),
        }
    }

    /// Malformed JSON is a 400, well-formed JSON of the wrong shape a 422 naming a field.
    #[test]
    fn the_strict_parser_classifies_every_failure(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        json_value().prop_map(|v| v.to_string().into_bytes()),
        Route::Alert.valid_body().prop_map(|v| v.to_string().into_bytes()),
    ]) {
        let is_json = serde_json::from_slice::<Value>(&body).is_ok();
        match alert_button_core::inbound::http::parse_json::<AlertRequest>(&body) {
            Ok(_) => prop_assert!(is_json),
            Err(err) => {
                prop_assert!(err.status.is_client_error());
                if is_json {
                    prop_assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{:?}", err);
                    prop_assert!(err.field.as_deref().is_some_and(|f| !f.is_empty()), "{:?}", err);
                } else {
                    prop_assert_eq!(err.status, StatusCode::BAD_REQUEST, "{:?}", err);
                }
            }
        }
    }
}

fn encode_cursor_text(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// The generators themselves: a valid body must be valid by the domain's own rules, or the
/// properties above would test less than they claim.
#[test]
fn generated_valid_bodies_are_valid() {
    check(100, Route::Register.valid_body(), |body| {
        let registration: alert_button_core::domain::person::Registration =
            serde_json::from_value(body).unwrap();
        let contacts = registration.contacts.clone();
        prop_assert!(registration.validate().is_ok());
        for contact in contacts {
            if let Some(phone) = contact.phone {
                prop_assert!(is_e164(&phone));
            }
        }
        Ok(())
    });
}

/// Found by the property above: valid JSON whose array holds more elements than the value it
/// fills is reported by serde_json as trailing characters, yet it is a shape error, not bad JSON.
#[test]
fn an_array_longer_than_its_value_is_a_shape_error() {
    let err = alert_button_core::inbound::http::parse_json::<AlertRequest>(br#"["",[0,0,0,null]]"#)
        .unwrap_err();
    assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY, "{err:?}");
    assert!(
        err.field.as_deref().is_some_and(|f| !f.is_empty()),
        "{err:?}"
    );
}
