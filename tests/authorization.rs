//! Who may call what: every route of `http::ROUTES` × every kind of caller, generated from one
//! table, each cell against fresh state. Another person's alert or check-in answers exactly as one
//! that does not exist (so ids cannot be probed); a wrong token of any kind is a 401, never a 2xx or
//! a 5xx; a person token never opens a staff route, nor a staff token a person's.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use alert_button_core::inbound::http::{ROUTES, STAFF_ROUTES};
use alert_button_core::local::STAFF_KEY_FILE;
use alert_button_core::outbound::staff_tokens::{LOCAL_AUDIENCE, LOCAL_ISSUER};
use alert_button_core::service::limits::LOCATIONS_PER_ALERT;
use alert_button_tests::{LocalApi, json_request};
use axum::http::{Method, header};
use http_body_util::BodyExt;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tempfile::TempDir;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;
use uuid::Uuid;

/// Where the owner's alert is raised, and the consulate it is routed to.
const CHICAGO: (f64, f64) = (41.88, -87.63);
const HOME: &str = "mx-cg-chicago";
/// A consulate that is not the alert's.
const ELSEWHERE: &str = "mx-cg-houston";

/// The kinds of caller, in the table's column order. The right caller is the owner on a person's
/// route and the alert's consulate on a staff route; both are asked on every route so that neither
/// side can do the other's part (staff cannot cancel, the person cannot acknowledge).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Caller {
    NoToken,
    /// Every variant in `WRONG_TOKENS`; the cell holds only if all of them answer alike.
    WrongToken,
    /// A valid token of another registered person.
    OtherPerson,
    /// A valid staff token of a consulate that is not the alert's.
    OtherStaff,
    /// The person whose alert and check-in the paths name.
    Owner,
    /// A valid staff token of the alert's consulate.
    HomeStaff,
}

const CALLERS: [Caller; 6] = [
    Caller::NoToken,
    Caller::WrongToken,
    Caller::OtherPerson,
    Caller::OtherStaff,
    Caller::Owner,
    Caller::HomeStaff,
];

impl Caller {
    fn label(self) -> &'static str {
        match self {
            Caller::NoToken => "no token",
            Caller::WrongToken => "wrong token",
            Caller::OtherPerson => "other person",
            Caller::OtherStaff => "other staff",
            Caller::Owner => "owner",
            Caller::HomeStaff => "alert's staff",
        }
    }
}

/// Ways a bearer token can be wrong: malformed, unknown, forged, expired.
const WRONG_TOKENS: [&str; 9] = [
    "empty",
    "garbage",
    "JWT-shaped garbage",
    "unknown person",
    "owner's id, wrong secret",
    "staff claims, another key",
    "staff claims, another token's signature",
    "staff, unsigned (alg none)",
    "staff, expired",
];

/// A valid body for each route, so that a status says who called, not what was sent.
#[derive(Clone, Copy)]
enum Payload {
    Nothing,
    Registration,
    Contacts,
    Alert,
    Location,
    Cancel,
    Pins,
    Acknowledge,
    Resolve,
    CheckIn,
}

impl Payload {
    fn body(self) -> Option<Value> {
        let (lat, lon) = CHICAGO;
        let body = match self {
            Payload::Nothing => return None,
            Payload::Registration => json!({
                "display_name": "Cai", "language": "es",
                "contacts": [{"name": "Luis", "phone": "+13125550100"}]
            }),
            Payload::Contacts => json!({
                "contacts": [{"name": "Kim", "email": "kim@example.org", "language": "en"}]
            }),
            Payload::Alert => json!({
                "client_alert_id": "matrix-press", "location": {"lat": lat, "lon": lon}
            }),
            Payload::Location => json!({"lat": lat + 0.01, "lon": lon - 0.01, "accuracy_m": 10}),
            Payload::Cancel => json!({"reason": "safe"}),
            Payload::Pins => json!({"cancel_pin": "2468", "duress_pin": "1357"}),
            Payload::Acknowledge => json!({"note": "Un abogado va en camino"}),
            Payload::Resolve => json!({"outcome": "safe"}),
            Payload::CheckIn => {
                let deadline = (OffsetDateTime::now_utc() + time::Duration::hours(2))
                    .format(&Rfc3339)
                    .unwrap();
                json!({"deadline": deadline, "location": {"lat": lat, "lon": lon}})
            }
        };
        Some(body)
    }
}

struct Row {
    method: &'static str,
    /// A template of `ROUTES`: `{alert_id}` and `{checkin_id}` are the owner's, `{consulate_id}`
    /// is the alert's consulate.
    path: &'static str,
    query: &'static str,
    payload: Payload,
    /// The status for each caller, in `CALLERS` order.
    expect: [u16; 6],
}

const fn row(
    method: &'static str,
    path: &'static str,
    query: &'static str,
    payload: Payload,
    expect: [u16; 6],
) -> Row {
    Row {
        method,
        path,
        query,
        payload,
        expect,
    }
}

use Payload as P;

/// THE table. Public routes ignore credentials; "me" routes act on whoever the token names, so
/// another person succeeds on their own account; staff listing another consulate is 403 (the
/// consulate ids are public), while another's alert or check-in is 404 (their ids are not).
#[rustfmt::skip]
const TABLE: &[Row] = &[
                                                                                        // [no token, wrong token, other person, other staff, owner, alert's staff]
    row("GET",  "/healthz",                              "",              P::Nothing,      [200, 200, 200, 200, 200, 200]),
    row("GET",  "/v1/consulates",                        "",              P::Nothing,      [200, 200, 200, 200, 200, 200]),
    row("GET",  "/v1/consulates/nearest",                "?lat=41.88&lon=-87.63&limit=2",
                                                                          P::Nothing,      [200, 200, 200, 200, 200, 200]),
    row("POST", "/v1/people",                            "",              P::Registration, [201, 201, 201, 201, 201, 201]),
    row("PUT",  "/v1/people/me/contacts",                "",              P::Contacts,     [401, 401, 200, 401, 200, 401]),
    row("GET",  "/v1/people/me/contacts",                "",              P::Nothing,      [401, 401, 200, 401, 200, 401]),
    row("PUT",  "/v1/people/me/pins",                    "",              P::Pins,         [401, 401, 200, 401, 200, 401]),
    row("POST", "/v1/alerts",                            "",              P::Alert,        [401, 401, 201, 401, 201, 401]),
    row("GET",  "/v1/alerts/{alert_id}",                 "",              P::Nothing,      [401, 401, 404, 404, 200, 200]),
    row("POST", "/v1/alerts/{alert_id}/locations",       "",              P::Location,     [401, 401, 404, 401, 200, 401]),
    row("POST", "/v1/alerts/{alert_id}/cancel",          "",              P::Cancel,       [401, 401, 404, 401, 200, 401]),
    row("GET",  "/v1/consulates/{consulate_id}/alerts",  "?status=open",  P::Nothing,      [401, 401, 401, 403, 401, 200]),
    row("POST", "/v1/alerts/{alert_id}/acknowledge",     "",              P::Acknowledge,  [401, 401, 401, 404, 401, 200]),
    row("POST", "/v1/alerts/{alert_id}/resolve",         "",              P::Resolve,      [401, 401, 401, 404, 401, 200]),
    row("POST", "/v1/checkins",                          "",              P::CheckIn,      [401, 401, 201, 401, 201, 401]),
    row("GET",  "/v1/checkins/{checkin_id}",             "",              P::Nothing,      [401, 401, 404, 401, 200, 401]),
    row("POST", "/v1/checkins/{checkin_id}/confirm",     "",              P::Nothing,      [401, 401, 404, 401, 200, 401]),
    row("POST", "/v1/checkins/{checkin_id}/locations",   "",              P::Location,     [401, 401, 404, 401, 200, 401]),
];

/// A person with an open alert and a pending check-in, another person, and staff of the alert's
/// consulate and of another. Every cell gets its own, so no cell's success changes another's.
struct Fixture {
    api: LocalApi,
    _dir: TempDir,
    owner: String,
    other: String,
    alert_id: String,
    checkin_id: String,
    home_staff: String,
    other_staff: String,
    staff_key: Vec<u8>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let api = LocalApi::start(dir.path());
        let (_, owner) = api.register("Ana").await;
        let (_, other) = api.register("Bea").await;
        let (lat, lon) = CHICAGO;
        let alert = api
            .post(
                "/v1/alerts",
                &owner,
                json!({"client_alert_id": "fixture", "location": {"lat": lat, "lon": lon}}),
            )
            .await;
        assert_eq!(alert.status.as_u16(), 201, "{}", alert.json);
        assert_eq!(alert.json["consulate"]["id"], HOME, "the alert's consulate");
        let checkin = api
            .call(
                Method::POST,
                "/v1/checkins",
                Some(&owner),
                Payload::CheckIn.body(),
            )
            .await;
        assert_eq!(checkin.status.as_u16(), 201, "{}", checkin.json);
        let staff = |consulate: &str| {
            api.local
                .staff_tokens
                .issue(
                    "matrix",
                    consulate,
                    false,
                    std::time::Duration::from_secs(600),
                )
                .unwrap()
        };
        let (home_staff, other_staff) = (staff(HOME), staff(ELSEWHERE));
        let key_hex = std::fs::read_to_string(api.local.data_dir.join(STAFF_KEY_FILE)).unwrap();
        Fixture {
            owner,
            other,
            alert_id: alert.json["alert_id"].as_str().unwrap().to_owned(),
            checkin_id: checkin.json["checkin_id"].as_str().unwrap().to_owned(),
            home_staff,
            other_staff,
            staff_key: hex_decode(key_hex.trim()),
            api,
            _dir: dir,
        }
    }

    fn path(&self, row: &Row) -> String {
        let path = row
            .path
            .replace("{alert_id}", &self.alert_id)
            .replace("{checkin_id}", &self.checkin_id)
            .replace("{consulate_id}", HOME);
        format!("{path}{}", row.query)
    }

    /// The `variant`-th credential of `caller`: (label, bearer token).
    fn credential(&self, caller: Caller, variant: usize) -> (&'static str, Option<String>) {
        match caller {
            Caller::NoToken => ("", None),
            Caller::WrongToken => {
                let label = WRONG_TOKENS[variant];
                (label, Some(self.wrong_token(label)))
            }
            Caller::OtherPerson => ("", Some(self.other.clone())),
            Caller::OtherStaff => ("", Some(self.other_staff.clone())),
            Caller::Owner => ("", Some(self.owner.clone())),
            Caller::HomeStaff => ("", Some(self.home_staff.clone())),
        }
    }

    fn wrong_token(&self, label: &str) -> String {
        let now = now_secs();
        match label {
            "empty" => String::new(),
            "garbage" => "not-a-token".into(),
            "JWT-shaped garbage" => "x.y.z".into(),
            "unknown person" => format!("{}.{}", Uuid::new_v4(), "a".repeat(64)),
            "owner's id, wrong secret" => {
                let (id, secret) = self.owner.split_once('.').unwrap();
                let other: String = secret
                    .chars()
                    .map(|c| if c == '0' { '1' } else { '0' })
                    .collect();
                format!("{id}.{other}")
            }
            "staff claims, another key" => sign_staff(b"not the local signing key", now + 600),
            "staff claims, another token's signature" => {
                let (signed, _) = self.home_staff.rsplit_once('.').unwrap();
                let (_, signature) = self.other_staff.rsplit_once('.').unwrap();
                format!("{signed}.{signature}")
            }
            "staff, unsigned (alg none)" => {
                // base64url of {"alg":"none","typ":"JWT"}
                let payload = self.home_staff.split('.').nth(1).unwrap();
                format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.")
            }
            // Well past the verifier's leeway.
            "staff, expired" => sign_staff(&self.staff_key, now - 3600),
            other => unreachable!("no wrong token named {other}"),
        }
    }
}

fn variants(caller: Caller) -> usize {
    if caller == Caller::WrongToken {
        WRONG_TOKENS.len()
    } else {
        1
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A staff token for the alert's consulate with the local claims, signed with `key`.
fn sign_staff(key: &[u8], exp: u64) -> String {
    let claims = json!({
        "sub": "forger",
        "custom:consulate_id": HOME,
        "token_use": "id",
        "iss": LOCAL_ISSUER,
        "aud": LOCAL_AUDIENCE,
        "exp": exp,
        "iat": exp.saturating_sub(600),
    });
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(key),
    )
    .unwrap()
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

struct Answer {
    status: u16,
    json: Option<Value>,
    raw: String,
    www_authenticate: Option<String>,
}

/// A location update on `path` as the holder of `token`.
async fn post_location(fixture: &Fixture, path: &str, token: &str) -> Answer {
    send(
        &fixture.api,
        "POST",
        path,
        Some(token),
        Payload::Location.body(),
    )
    .await
}

/// `row`'s request, with its payload, on `path`.
async fn send_row(fixture: &Fixture, row: &Row, path: &str, token: Option<&str>) -> Answer {
    send(&fixture.api, row.method, path, token, row.payload.body()).await
}

async fn send(
    api: &LocalApi,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let request = json_request(method, path, token, body);
    let response = api.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        json: serde_json::from_slice(&bytes).ok(),
        raw: String::from_utf8_lossy(&bytes).into_owned(),
        www_authenticate,
    }
}

/// What is wrong with an answer besides its status: every answer is JSON, an error has the code
/// its status implies, and a 401 says how to authenticate.
fn body_problems(answer: &Answer) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(json) = &answer.json else {
        problems.push(format!("the body is not JSON: {:?}", answer.raw));
        return problems;
    };
    if answer.status >= 400 {
        let code = json["error"]["code"].as_str().unwrap_or("");
        let expected = match answer.status {
            401 => Some("unauthorized"),
            403 => Some("forbidden"),
            404 => Some("not_found"),
            _ => None,
        };
        if code.is_empty() || expected.is_some_and(|e| e != code) {
            problems.push(format!(
                "error code {code:?}, expected {expected:?}: {json}"
            ));
        }
    }
    if answer.status == 401 && answer.www_authenticate.as_deref() != Some("Bearer") {
        problems.push(format!(
            "401 without `WWW-Authenticate: Bearer` ({:?})",
            answer.www_authenticate
        ));
    }
    problems
}

struct Outcome {
    variant: &'static str,
    status: u16,
    problems: Vec<String>,
}

/// One cell, on a fresh fixture. The wrong-token variants share it: each is refused before any
/// state is read, and one that is not is reported as such whatever it changed.
async fn run_cell(row: &'static Row, caller: Caller) -> Vec<Outcome> {
    let fixture = Fixture::new().await;
    let mut outcomes = Vec::new();
    for variant in 0..variants(caller) {
        let (label, token) = fixture.credential(caller, variant);
        let path = fixture.path(row);
        let answer = send_row(&fixture, row, &path, token.as_deref()).await;
        let mut problems = body_problems(&answer);
        // "Not yours" must be indistinguishable from "no such id".
        let names_an_id = row.path.contains("{alert_id}") || row.path.contains("{checkin_id}");
        if answer.status == 404 && names_an_id {
            let unknown = Uuid::new_v4().to_string();
            let probe_path = path
                .replace(&fixture.alert_id, &unknown)
                .replace(&fixture.checkin_id, &unknown);
            let probe = send_row(&fixture, row, &probe_path, token.as_deref()).await;
            if (probe.status, &probe.json) != (answer.status, &answer.json) {
                problems.push(format!(
                    "differs from an unknown id: {} {} vs {} {}",
                    answer.status, answer.raw, probe.status, probe.raw
                ));
            }
        }
        outcomes.push(Outcome {
            variant: label,
            status: answer.status,
            problems,
        });
    }
    fixture.api.stop().await;
    outcomes
}

fn route_name(row: &Row) -> String {
    format!("{:<5}{}", row.method, row.path)
}

fn assert_table_covers_the_routes() {
    let mut seen = BTreeSet::new();
    for row in TABLE {
        assert!(
            seen.insert((row.method, row.path)),
            "two rows for {}",
            route_name(row)
        );
    }
    let routes: BTreeSet<(&str, &str)> = ROUTES.iter().copied().collect();
    let missing: Vec<_> = routes.difference(&seen).collect();
    let extra: Vec<_> = seen.difference(&routes).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "the table must cover exactly http::ROUTES; rows missing for {missing:?}, rows for no route {extra:?}"
    );
    // The table agrees with the staff routes' declaration: person tokens never open them.
    for row in TABLE {
        if STAFF_ROUTES.contains(&(row.method, row.path)) {
            let [_, _, other_person, _, owner, home_staff] = row.expect;
            assert!(
                other_person == 401 && owner == 401 && (200..300).contains(&home_staff),
                "{} is a staff route",
                route_name(row)
            );
        }
    }
}

#[test]
fn the_table_covers_exactly_the_routes() {
    assert_table_covers_the_routes();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_route_answers_every_caller_as_the_table_says() {
    assert_table_covers_the_routes();
    // One task per row; the cells of a row run one after another, each on fresh state.
    let tasks: Vec<_> = TABLE
        .iter()
        .map(|row| {
            tokio::spawn(async move {
                let mut cells = Vec::new();
                for caller in CALLERS {
                    cells.push(run_cell(row, caller).await);
                }
                cells
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("a row's task completes"));
    }

    let mut matrix = format!("{:<46}", "route");
    for caller in CALLERS {
        let _ = write!(matrix, "{:>15}", caller.label());
    }
    matrix.push('\n');
    let mut differences = String::new();
    for (row, cells) in TABLE.iter().zip(&results) {
        let _ = write!(matrix, "{:<46}", route_name(row));
        for ((caller, expected), outcomes) in CALLERS.iter().zip(row.expect).zip(cells) {
            let mut cell_ok = true;
            for outcome in outcomes {
                if outcome.status != expected || !outcome.problems.is_empty() {
                    cell_ok = false;
                    let variant = if outcome.variant.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", outcome.variant)
                    };
                    let _ = writeln!(
                        differences,
                        "  {} × {}{variant}: got {}, expected {expected}{}",
                        route_name(row),
                        caller.label(),
                        outcome.status,
                        outcome
                            .problems
                            .iter()
                            .map(|p| format!("; {p}"))
                            .collect::<String>()
                    );
                }
            }
            let shown = if cell_ok {
                expected.to_string()
            } else {
                let got: BTreeSet<u16> = outcomes.iter().map(|o| o.status).collect();
                let got: Vec<String> = got.iter().map(u16::to_string).collect();
                format!("✗{}≠{expected}", got.join("/"))
            };
            let _ = write!(matrix, "{shown:>15}");
        }
        matrix.push('\n');
    }
    println!("{matrix}");
    assert!(
        differences.is_empty(),
        "the authorization matrix differs (✗got≠expected):\n{matrix}\ndifferences:\n{differences}"
    );
}

/// Forged and expired staff tokens above are refused for the right reason only if the helper signs
/// what the service accepts with the right key and a future expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forging_helper_signs_valid_tokens_with_the_right_key() {
    let fixture = Fixture::new().await;
    let token = sign_staff(&fixture.staff_key, now_secs() + 600);
    let path = format!("/v1/consulates/{HOME}/alerts");
    let answer = send(&fixture.api, "GET", &path, Some(&token), None).await;
    assert_eq!(answer.status, 200, "{}", answer.raw);
    fixture.api.stop().await;
}

/// Calls on another person's alert have no effect at all, including on the owner's rate limits:
/// otherwise anyone who learns an alert id could silence its location updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_persons_calls_cost_the_owner_nothing() {
    let fixture = Fixture::new().await;
    let path = format!("/v1/alerts/{}/locations", fixture.alert_id);
    for attempt in 0..=LOCATIONS_PER_ALERT {
        let answer = post_location(&fixture, &path, &fixture.other).await;
        // Past the limit the caller is slowed down, on its own account only.
        assert!(
            [404, 429].contains(&answer.status),
            "attempt {attempt}: {}",
            answer.raw
        );
    }
    let owner = post_location(&fixture, &path, &fixture.owner).await;
    assert_eq!(owner.status, 200, "{}", owner.raw);
    fixture.api.stop().await;
}
