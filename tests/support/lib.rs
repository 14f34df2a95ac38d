//! Shared test support: the API in-process over the embedded store, the runner binary as a child
//! process, and reading the local notifier's journal; `aws` has the moto side.

pub mod aws;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::person::{Contact, Language, Registration};
use alert_button_core::local::{JOURNAL_FILE, LocalMode};
use alert_button_core::ports::{Clock, Overdue, PageQuery, SystemClock};
use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

/// How long a test waits for something that should happen in milliseconds (a notification, a
/// server start) before it gives up. Generous: a slow shared machine must not fail a correct test.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A clock a test moves by hand, to see what days or months of use do.
pub struct SettableClock(Mutex<time::OffsetDateTime>);

impl SettableClock {
    pub fn new(at: time::OffsetDateTime) -> Arc<SettableClock> {
        Arc::new(SettableClock(Mutex::new(at)))
    }

    pub fn set(&self, at: time::OffsetDateTime) {
        *self.0.lock().unwrap() = at;
    }
}

impl Clock for SettableClock {
    fn now(&self) -> time::OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Ana's registration, in Spanish, with `contacts`.
pub fn ana(contacts: Vec<Contact>) -> Registration {
    Registration {
        display_name: Some("Ana".into()),
        language: Language::Es,
        contacts,
    }
}

/// A request as a client sends it: a bearer token if given, a JSON body if given.
pub fn json_request(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    match body {
        Some(body) => request
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    }
    .expect("a valid request")
}

/// The whole API in-process on a fresh embedded store, with the outbox relay running.
pub struct LocalApi {
    pub local: LocalMode,
    pub router: Router,
    stop: watch::Sender<bool>,
    relay: Option<tokio::task::JoinHandle<()>>,
    /// The data directory when the API made it itself; removed when the API is dropped.
    scratch: Option<tempfile::TempDir>,
}

/// Downtown Chicago: the Chicago consulate by state, Milwaukee and Indianapolis next.
pub const CHICAGO: (f64, f64) = (41.88, -87.63);
/// Downtown Houston.
pub const HOUSTON: (f64, f64) = (29.76, -95.37);
/// Downtown San Antonio.
pub const SAN_ANTONIO: (f64, f64) = (29.42, -98.49);

/// The PINs a test sets with `LocalApi::set_pins`.
pub const CANCEL_PIN: &str = "2468";
pub const DURESS_PIN: &str = "1357";

impl LocalApi {
    pub fn start(data_dir: &Path) -> LocalApi {
        Self::start_with_clock(data_dir, Arc::new(SystemClock))
    }

    /// As `start`, on a data directory of its own that lives as long as the API.
    pub fn scratch() -> LocalApi {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let mut api = Self::start(dir.path());
        api.scratch = Some(dir);
        api
    }

    /// As `scratch`, with no relay: the store then holds only what the service wrote.
    pub fn scratch_without_relay() -> LocalApi {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let mut api = Self::open(dir.path(), Arc::new(SystemClock), false);
        api.scratch = Some(dir);
        api
    }

    /// As `start`, with the service reading the time from `clock`.
    pub fn start_with_clock(data_dir: &Path, clock: Arc<dyn Clock>) -> LocalApi {
        Self::open(data_dir, clock, true)
    }

    fn open(data_dir: &Path, clock: Arc<dyn Clock>, relay: bool) -> LocalApi {
        let local =
            LocalMode::open_with_clock(data_dir, Arc::new(Directory::bundled()), false, clock)
                .expect("the local mode opens");
        let router = local.router();
        let (stop, stopped) = watch::channel(false);
        let relay = relay.then(|| local.spawn_relay(stopped));
        LocalApi {
            local,
            router,
            stop,
            relay,
            scratch: None,
        }
    }

    /// Stops the relay and releases the store, as a process exit would.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(relay) = self.relay.take() {
            relay.await.expect("the relay stops cleanly");
        }
    }

    /// Waits until the relay has delivered every stored change, so that what a read lists as
    /// sent no longer depends on how far the fan-out has got.
    pub async fn idle(&self) {
        let start = std::time::Instant::now();
        while !self
            .local
            .store
            .pending_events(1)
            .await
            .expect("the outbox reads")
            .is_empty()
        {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(30),
                "the relay never caught up"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        self.send(json_request(method, path, token, body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    /// A request without a token.
    pub async fn anonymous(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, None, body).await
    }

    pub async fn send(&self, request: Request<Body>) -> Reply {
        let answer = self.router.clone().oneshot(request).await;
        let (parts, body) = answer.expect("the router is infallible").into_parts();
        let (status, headers) = (parts.status, parts.headers);
        let bytes = body.collect().await.expect("a readable body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "every answer is JSON; got {status} {:?}",
                String::from_utf8_lossy(&bytes)
            )
        });
        Reply {
            status,
            json,
            headers,
        }
    }

    /// Registers a person with one Spanish and one English contact; returns (person_id, token).
    pub async fn register(&self, display_name: &str) -> (String, String) {
        self.register_with(serde_json::json!({
            "display_name": display_name,
            "language": "es",
            "contacts": [
                {"name": "Luis", "phone": "+13125550100"},
                {"name": "Kim", "email": "kim@example.org", "language": "en"}
            ]
        }))
        .await
    }

    /// Registers the person `body` describes; returns (person_id, token).
    pub async fn register_with(&self, body: Value) -> (String, String) {
        let reply = self.anonymous(Method::POST, "/v1/people", Some(body)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        (reply.string("person_id"), reply.string("token"))
    }

    /// Presses the button at `(lat, lon)` as `token`'s holder; returns the new alert's id.
    pub async fn raise(&self, token: &str, client_id: &str, (lat, lon): (f64, f64)) -> String {
        let body =
            serde_json::json!({"client_alert_id": client_id, "location": {"lat": lat, "lon": lon}});
        let reply = self.post("/v1/alerts", token, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json);
        reply.string("alert_id")
    }

    /// Registers `display_name` (as `register`) and presses once at `at`; returns (person_id,
    /// token, alert_id).
    pub async fn register_and_raise(&self, name: &str, at: (f64, f64)) -> (String, String, String) {
        let (person_id, token) = self.register(name).await;
        let alert_id = self.raise(&token, "press-1", at).await;
        (person_id, token, alert_id)
    }

    /// Sets the first PINs: `CANCEL_PIN` and `DURESS_PIN`.
    pub async fn set_pins(&self, token: &str) {
        let body = serde_json::json!({"cancel_pin": CANCEL_PIN, "duress_pin": DURESS_PIN});
        let reply = self.put("/v1/people/me/pins", token, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    }

    /// Acknowledges `alert_id` as the holder of the staff token `staff`, without a note.
    pub async fn acknowledge(&self, alert_id: &str, staff: &str) -> Reply {
        let path = format!("/v1/alerts/{alert_id}/acknowledge");
        self.post(&path, staff, serde_json::json!({})).await
    }

    /// A staff token of one consulate.
    pub fn staff(&self, consulate: &str) -> String {
        self.staff_token(consulate, false)
    }

    /// A staff token of the national desk, seated at `consulate`.
    pub fn national_staff(&self, consulate: &str) -> String {
        self.staff_token(consulate, true)
    }

    fn staff_token(&self, consulate: &str, national: bool) -> String {
        self.local
            .staff_tokens
            .issue("tester", consulate, national, Duration::from_secs(600))
            .expect("a staff token")
    }

    pub fn journal(&self) -> PathBuf {
        self.local.data_dir.join(JOURNAL_FILE)
    }
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub json: Value,
    pub headers: axum::http::HeaderMap,
}

impl Reply {
    /// The string field `name` of the body; panics, showing the body, if there is none.
    pub fn string(&self, name: &str) -> String {
        self.json[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in {}", self.json))
            .to_owned()
    }

    /// The header names, sorted: what a caller can tell two answers apart by, values aside.
    pub fn header_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.headers.keys().map(|k| k.to_string()).collect();
        names.sort();
        names
    }

    /// The body with each of `ids` and every time (`*_at`, `at`, `deadline`) blanked: what must
    /// not differ between two answers that are meant to look alike.
    pub fn normalized(&self, ids: &[&str]) -> String {
        let mut text = self.json.to_string();
        for (i, id) in ids.iter().enumerate() {
            text = text.replace(id, &format!("ID{i}"));
        }
        let mut value: Value = serde_json::from_str(&text).expect("still JSON");
        fn blank_times(value: &mut Value) {
            match value {
                Value::Object(map) => {
                    for (key, v) in map.iter_mut() {
                        if key.ends_with("_at") || key == "at" || key == "deadline" {
                            *v = Value::Null;
                        } else {
                            blank_times(v);
                        }
                    }
                }
                Value::Array(items) => items.iter_mut().for_each(blank_times),
                _ => {}
            }
        }
        blank_times(&mut value);
        value.to_string()
    }
}

/// A problem answer: `status`, and an error that names `field`.
#[track_caller]
pub fn assert_problem(reply: &Reply, status: StatusCode, field: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["error"]["field"], field, "{}", reply.json);
}

/// A problem answer: `status`, and an error of `code`.
#[track_caller]
pub fn assert_code(reply: &Reply, status: StatusCode, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["error"]["code"], code, "{}", reply.json);
}

/// The alerts' notifications journalled so far (a new contact's consent request, on a line of its
/// own, is left out: see `consent_requests_journalled`).
pub fn read_journal(path: &Path) -> Vec<Value> {
    every_line(path)
        .into_iter()
        .filter(|line| !is_consent_request(line))
        .collect()
}

/// The consent requests journalled so far for `person_id`'s contacts, in the order sent.
pub fn consent_requests_journalled(path: &Path, person_id: uuid::Uuid) -> Vec<Value> {
    let id = alert_button_core::domain::consent_request::request_id(person_id);
    every_line(path)
        .into_iter()
        .filter(|line| is_consent_request(line) && line["notification_id"] == id.as_str())
        .collect()
}

fn is_consent_request(line: &Value) -> bool {
    line["seq"] == 0
        && line["notification_id"]
            .as_str()
            .is_some_and(|id| id.ends_with(":consent-request"))
}

fn every_line(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).expect("every journal line is JSON"))
        .collect()
}

/// Waits until the journal satisfies `done`, then returns it; panics after `PATIENCE`.
pub async fn wait_for_journal(path: &Path, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let lines = read_journal(path);
        if done(&lines) {
            return lines;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the journal never reached the expected state: {lines:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Journal lines of one alert change.
pub fn of_change<'a>(lines: &'a [Value], alert_id: &str, seq: u64) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|n| n["alert_id"] == alert_id && n["seq"] == seq)
        .collect()
}

/// The lines of one alert change for `audience`, in journal order.
pub fn to_audience<'a>(
    lines: &'a [Value],
    alert_id: &str,
    seq: u64,
    audience: &str,
) -> Vec<&'a Value> {
    of_change(lines, alert_id, seq)
        .into_iter()
        .filter(|n| n["audience"] == audience)
        .collect()
}

/// Waits until the journal holds at least `count` lines of one alert change; returns it whole.
pub async fn wait_for_change(path: &Path, alert_id: &str, seq: u64, count: usize) -> Vec<Value> {
    wait_for_journal(path, |lines| of_change(lines, alert_id, seq).len() >= count).await
}

/// Waits until a line of one alert change reached `audience`; returns the journal whole.
pub async fn wait_for_audience(
    path: &Path,
    alert_id: &str,
    seq: u64,
    audience: &str,
) -> Vec<Value> {
    wait_for_journal(path, |lines| {
        !to_audience(lines, alert_id, seq, audience).is_empty()
    })
    .await
}

/// Two text fields of each line, as pairs: e.g. (audience, language) to check who was told what.
pub fn field_pairs<'a>(lines: &[&'a Value], first: &str, second: &str) -> Vec<(&'a str, &'a str)> {
    lines
        .iter()
        .map(|line| (text_of(line, first), text_of(line, second)))
        .collect()
}

/// The text of `line`'s `field` (`sms`, `text`, …); panics if there is none.
pub fn text_of<'a>(line: &'a Value, field: &str) -> &'a str {
    line[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {line}"))
}

/// A text to the family of alert `alert_id`'s opening, to `recipient` shown as `masked`, as the
/// delivery ledger holds it.
pub fn family_text(
    alert_id: uuid::Uuid,
    recipient: &str,
    masked: &str,
) -> alert_button_core::ports::Delivery {
    alert_button_core::ports::Delivery {
        alert_id,
        notification_id: format!("{alert_id}:1:family:es"),
        seq: 1,
        audience: alert_button_core::domain::notification::Audience::Family,
        channel: "sms".into(),
        recipient: recipient.into(),
        masked: masked.into(),
        expires_at: 1_900_000_000,
    }
}

/// Runs `command` to a successful end and returns its standard output; shows both outputs if it
/// fails.
#[track_caller]
pub fn stdout_of(command: &mut Command) -> String {
    let output = command.output().expect("the command runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{:?} failed: {stdout}{stderr}",
        output.status
    );
    stdout
}

/// `alert-button` with `args`, ready to run.
pub fn alert_button(args: &[&str]) -> Command {
    let mut command = Command::new(binary("alert-button"));
    command.args(args);
    command
}

/// Every item of a paged listing: `page(cursor)` answers one page's items and the next cursor.
pub async fn all_pages<T, F, Fut>(mut page: F) -> Vec<T>
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = (Vec<T>, Option<String>)>,
{
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let (items, next) = page(cursor.take()).await;
        all.extend(items);
        match next {
            Some(next) => cursor = Some(next),
            None => return all,
        }
    }
}

/// The path of a workspace binary, built (incrementally) on first use so that a plain
/// `cargo test` works without a separate build step.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<(String, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, path)) = built.iter().find(|(n, _)| n == name) {
        return path.clone();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    // Cargo hands a test process variables of its own (the package's, a library path); passed on to
    // a nested build they change build-script fingerprints and force a rebuild.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let set_for_tests = (key.starts_with("CARGO_")
            && !key.starts_with("CARGO_HOME")
            && !key.starts_with("CARGO_TARGET_DIR")
            && !key.starts_with("CARGO_BUILD"))
            || key == "LD_LIBRARY_PATH"
            || key == "OUT_DIR"
            || key.starts_with("RUST_TEST");
        if set_for_tests {
            command.env_remove(key.as_ref());
        }
    }
    let output = command
        .args([
            "build",
            "--workspace",
            "--bin",
            name,
            "--message-format=json",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "building {name} failed");
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|m| m["executable"].as_str().map(PathBuf::from))
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .unwrap_or_else(|| panic!("cargo did not report the {name} executable"));
    built.push((name.to_owned(), path.clone()));
    path
}

/// `alert-button serve` as a child process on a free loopback port.
pub struct Runner {
    child: Child,
    /// An HTTP client that gives up after `PATIENCE`.
    pub client: reqwest::Client,
    pub base_url: String,
    pub stdout: Arc<Mutex<Vec<String>>>,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// Directories that live as long as the runner.
    scratch: Vec<tempfile::TempDir>,
}

impl Runner {
    pub fn start(data_dir: &Path) -> Runner {
        let data_dir = data_dir.to_string_lossy().into_owned();
        Runner::start_with(&["--data-dir", &data_dir], &[])
    }

    /// `serve` with more arguments and environment variables.
    pub fn start_with(args: &[&str], envs: &[(&str, &str)]) -> Runner {
        let mut child = Command::new(binary("alert-button"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the runner starts");
        let stdout = collect_lines(child.stdout.take().unwrap());
        let stderr = collect_lines(child.stderr.take().unwrap());
        let start = Instant::now();
        let base_url = loop {
            let announced = stdout.lock().unwrap().iter().find_map(|line| {
                line.strip_prefix("Alert Button listening on ")
                    .map(str::to_owned)
            });
            if let Some(url) = announced {
                break url;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the runner exited with {status}: {:?}",
                    stderr.lock().unwrap()
                );
            }
            assert!(start.elapsed() < PATIENCE, "the runner did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        let client = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .expect("an HTTP client");
        Runner {
            child,
            client,
            base_url,
            stdout,
            stderr,
            scratch: Vec::new(),
        }
    }

    /// Keeps `dir` until the runner is gone.
    pub fn keeping(mut self, dir: tempfile::TempDir) -> Runner {
        self.scratch.push(dir);
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `method` on `path` over TCP, with a bearer token and a JSON body if given: (status, body).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the runner answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    /// Registers the person `body` describes; returns their token.
    pub async fn register_with(&self, body: Value) -> String {
        let (status, registered) = self.post("/v1/people", None, body).await;
        assert_eq!(status, 201, "{registered}");
        registered["token"].as_str().expect("a token").to_owned()
    }

    /// Presses the button as `token`'s holder; returns (status, the alert).
    pub async fn press(
        &self,
        token: &str,
        client_id: &str,
        (lat, lon): (f64, f64),
    ) -> (u16, Value) {
        let body =
            serde_json::json!({"client_alert_id": client_id, "location": {"lat": lat, "lon": lon}});
        self.post("/v1/alerts", Some(token), body).await
    }

    /// SIGKILL: no chance to flush or shut down cleanly.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                start.elapsed() < PATIENCE,
                "the runner did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect_lines(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// The overdue-alert query of `store` in pages of one: alerts at or above the level asked are
/// left out, every other one is returned once. Alerts are stored for `person` at each level.
pub async fn overdue_query_leaves_out_the_last_level(
    store: &dyn alert_button_core::ports::AlertStore,
    person: &alert_button_core::domain::person::Person,
) {
    use alert_button_core::domain::alert::{
        Alert, AlertRequest, Location, MAX_ESCALATION_LEVEL, Retention,
    };
    use alert_button_core::domain::districts::Districts;

    let directory = Directory::bundled();
    let districts = Districts::bundled();
    let retention = Retention::default();
    let opened = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut by_level = Vec::new();
    for level in 0..=MAX_ESCALATION_LEVEL {
        for copy in 0..2 {
            let request = AlertRequest {
                client_alert_id: format!("level-{level}-{copy}-{}", uuid::Uuid::new_v4()),
                location: Location {
                    lat: 41.88,
                    lon: -87.63,
                    accuracy_m: None,
                },
                note: None,
            };
            let mut alert =
                Alert::open(person, request, &directory, &districts, opened, &retention).unwrap();
            store.create_alert(&alert).await.unwrap();
            for next in 1..=level {
                let version = alert.version();
                alert
                    .escalate(next, &directory, opened, &retention)
                    .unwrap();
                store.update_alert(&alert, version).await.unwrap();
            }
            by_level.push((level, alert.alert_id, alert.consulate_id));
        }
    }
    for below_level in [1, MAX_ESCALATION_LEVEL] {
        let consulate = &by_level[0].2;
        let mut read = all_pages(|cursor| async move {
            let now = time::OffsetDateTime::now_utc();
            let page = store
                .open_alerts_created_before(Overdue {
                    consulate_id: consulate,
                    created_before: now,
                    below_level,
                    page: PageQuery {
                        limit: 1,
                        cursor: cursor.as_deref(),
                    },
                })
                .await
                .unwrap();
            assert!(page.items.len() <= 1);
            let ids: Vec<uuid::Uuid> = page.items.iter().map(|a| a.alert_id).collect();
            (ids, page.next_cursor)
        })
        .await;
        let mut expected: Vec<uuid::Uuid> = by_level
            .iter()
            .filter(|(level, ..)| *level < below_level)
            .map(|(_, id, _)| *id)
            .collect();
        expected.sort();
        read.sort();
        assert_eq!(read, expected, "below level {below_level}");
    }
}
