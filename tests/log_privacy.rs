//! Logs are read by operators, shipped to log stores and kept: they must never carry what could find
//! or identify a person. These tests run the whole flow against the `alert-button` binary, at debug
//! level, on the embedded store and on an AWS API (moto), and search every line it logged for the
//! coordinates, phones, e-mail addresses, names, tokens and PINs the flow used.

use alert_button_tests::aws::Stack;
use alert_button_tests::{Runner, alert_button, stdout_of};
use reqwest::Method;
use serde_json::{Value, json};

/// Values chosen so that none can occur by chance in a log line (no round numbers, no ports).
const LAT: f64 = 41.878_113_6;
const LON: f64 = -87.629_798_2;
const MOVED_LAT: f64 = 41.913_472_9;
const MOVED_LON: f64 = -87.671_395_3;
const CHECKIN_LAT: f64 = 41.852_246_1;
const CHECKIN_LON: f64 = -87.692_013_7;
const FAMILY_PHONE: &str = "+13125550147";
const FAMILY_EMAIL: &str = "quintanilla.familia@example.org";
const DISPLAY_NAME: &str = "Marisol Quintanilla";
const CONTACT_NAME: &str = "Evaristo Quintanilla";
const CANCEL_PIN: &str = "582931";
const DURESS_PIN: &str = "704186";

/// What the flow sent or received that must stay out of the logs.
struct Secrets {
    needles: Vec<String>,
    /// PINs are short digit runs: they count only where no other digit touches them.
    pins: Vec<String>,
}

impl Secrets {
    fn new() -> Secrets {
        let mut needles: Vec<String> = [LAT, LON, MOVED_LAT, MOVED_LON, CHECKIN_LAT, CHECKIN_LON]
            .iter()
            // Four decimals place a person within about ten metres.
            .map(|c| format!("{:.4}", c.abs()))
            .collect();
        needles.extend(
            [
                "3125550147",
                "312-555-0147",
                "(312) 555-0147",
                "312 555 0147",
                FAMILY_EMAIL,
                "quintanilla.familia",
                "Quintanilla",
            ]
            .map(str::to_owned),
        );
        Secrets {
            needles,
            pins: vec![CANCEL_PIN.into(), DURESS_PIN.into()],
        }
    }

    fn token(&mut self, token: &str) {
        // A person token is `<person id>.<secret>`; the id may be logged, the secret never.
        let secret = token.rsplit('.').next().unwrap_or(token);
        self.needles.push(secret[..secret.len().min(24)].to_owned());
        self.needles.push(token.to_owned());
    }

    fn leaks<'a>(&self, lines: &'a [String]) -> Vec<(&'a str, String)> {
        let mut found = Vec::new();
        for line in lines {
            for needle in &self.needles {
                if line.contains(needle.as_str()) {
                    found.push((line.as_str(), needle.clone()));
                }
            }
            for pin in &self.pins {
                if contains_digits_alone(line, pin) {
                    found.push((line.as_str(), pin.clone()));
                }
            }
        }
        found
    }
}

fn contains_digits_alone(line: &str, digits: &str) -> bool {
    line.match_indices(digits).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + digits.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

struct Flow<'a> {
    runner: &'a Runner,
}

impl Flow<'_> {
    /// `method` on `path`, which must succeed; returns the answer's body.
    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Value) -> Value {
        let body = Some(body).filter(|body| !body.is_null());
        let (status, json) = self.runner.request(method.clone(), path, token, body).await;
        assert!(status < 300, "{method} {path}: {status} {json}");
        json
    }

    /// As `call`, for a request that must be refused with `status`.
    async fn refused(
        &self,
        status: u16,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) {
        let body = Some(body).filter(|body| !body.is_null());
        let (got, json) = self.runner.request(method.clone(), path, token, body).await;
        assert_eq!(got, status, "{method} {path}: {json}");
    }

    /// The person's side: registration, PINs, an alert that moves, a duress cancel, a check-in that
    /// moves, and bad requests carrying personal data. Returns the alert id and its consulate's.
    async fn person_side(&self, secrets: &mut Secrets) -> (String, String) {
        let person = json!({
            "display_name": DISPLAY_NAME,
            "language": "es",
            "contacts": [{"name": CONTACT_NAME, "phone": FAMILY_PHONE, "email": FAMILY_EMAIL}]
        });
        let token = self.runner.register_with(person).await;
        secrets.token(&token);
        let token = Some(token.as_str());
        let pins = json!({"cancel_pin": CANCEL_PIN, "duress_pin": DURESS_PIN});
        self.call(Method::PUT, "/v1/people/me/pins", token, pins)
            .await;
        let press = json!({"client_alert_id": "privacy-1", "location": {"lat": LAT, "lon": LON, "accuracy_m": 12}});
        let alert = self.call(Method::POST, "/v1/alerts", token, press).await;
        let alert_id = alert["alert_id"].as_str().unwrap().to_owned();
        let consulate_id = alert["consulate"]["id"].as_str().unwrap().to_owned();
        let moved = json!({"lat": MOVED_LAT, "lon": MOVED_LON});
        let locations = format!("/v1/alerts/{alert_id}/locations");
        self.call(Method::POST, &locations, token, moved.clone())
            .await;
        // Wrong PIN, then the duress PIN: the first is refused, the second only looks like a cancel.
        let cancel = format!("/v1/alerts/{alert_id}/cancel");
        let wrong = json!({"reason": "safe", "pin": "111111"});
        self.refused(403, Method::POST, &cancel, token, wrong).await;
        let duress = json!({"reason": "safe", "pin": DURESS_PIN});
        self.call(Method::POST, &cancel, token, duress).await;

        let deadline = (time::OffsetDateTime::now_utc() + time::Duration::hours(4))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let start = json!({"deadline": deadline, "location": {"lat": CHECKIN_LAT, "lon": CHECKIN_LON}, "note": "cita en ICE"});
        let checkin = self.call(Method::POST, "/v1/checkins", token, start).await;
        let checkin_id = checkin["checkin_id"].as_str().unwrap().to_owned();
        let checkin_path = |rest: &str| format!("/v1/checkins/{checkin_id}/{rest}");
        self.call(Method::POST, &checkin_path("locations"), token, moved)
            .await;
        // The duress PIN: the check-in's alert is raised at once, and logged no differently.
        let confirm = json!({"pin": DURESS_PIN});
        self.call(Method::POST, &checkin_path("confirm"), token, confirm)
            .await;

        // Rejected input that carries personal data: the error names the field, the log does not
        // repeat the value.
        let contacts = json!({"contacts": [{"name": CONTACT_NAME, "phone": "312-555-0147"}]});
        self.refused(422, Method::PUT, "/v1/people/me/contacts", token, contacts)
            .await;
        let press =
            json!({"client_alert_id": "privacy-2", "location": {"lat": LAT + 90.0, "lon": LON}});
        self.refused(422, Method::POST, "/v1/alerts", token, press)
            .await;
        let forged = format!("{alert_id}.{}", "5f3e9a".repeat(8));
        secrets.token(&forged);
        let alert_path = format!("/v1/alerts/{alert_id}");
        self.refused(401, Method::GET, &alert_path, Some(&forged), Value::Null)
            .await;
        (alert_id, consulate_id)
    }
}

fn assert_no_leaks(runner: &Runner, secrets: &Secrets, alert_id: &str) {
    let lines = runner.stderr.lock().unwrap().clone();
    // The flow was logged (so an empty or silenced log cannot pass), by id.
    assert!(
        lines.iter().any(|line| line.contains(alert_id)),
        "the alert's id appears in no log line: {lines:#?}"
    );
    let mut leaks = secrets.leaks(&lines);
    // What the runner prints is a log too.
    let printed = runner.stdout.lock().unwrap().clone();
    leaks.extend(secrets.leaks(&printed));
    assert!(
        leaks.is_empty(),
        "{} personal values in the logs:\n{}",
        leaks.len(),
        leaks
            .iter()
            .map(|(line, needle)| format!("  `{needle}` in: {line}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_secret_finder_finds_what_it_looks_for() {
    let mut secrets = Secrets::new();
    secrets.token("6a1c.deadbeefdeadbeefdeadbeefdeadbeef");
    let lines = [
        "alert raised lat=41.8781136".to_owned(),
        "to +13125550147".to_owned(),
        "pin 582931 given".to_owned(),
        "listening on 127.0.0.1:5829310".to_owned(),
        "auth deadbeefdeadbeefdeadbeef".to_owned(),
        "alert_id=6a1c status=open".to_owned(),
    ];
    let found: Vec<&str> = secrets.leaks(&lines).iter().map(|(l, _)| *l).collect();
    assert_eq!(
        found,
        [
            "alert raised lat=41.8781136",
            "to +13125550147",
            "pin 582931 given",
            "auth deadbeefdeadbeefdeadbeef"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_runner_logs_no_personal_data() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_string_lossy().into_owned();
    let runner = Runner::start_with(&["--data-dir", &data_dir], &[("RUST_LOG", "trace")]);
    let flow = Flow { runner: &runner };
    let mut secrets = Secrets::new();
    let (alert_id, consulate) = flow.person_side(&mut secrets).await;

    // The consulate's side: list, acknowledge and resolve with notes, as the office the alert went to.
    let mint = [
        "staff-token",
        "--consulate",
        &consulate,
        "--data-dir",
        &data_dir,
    ];
    let staff = stdout_of(&mut alert_button(&mint)).trim().to_owned();
    secrets.token(&staff);
    let staff = Some(staff.as_str());
    let listing = format!("/v1/consulates/{consulate}/alerts?status=open");
    flow.call(Method::GET, &listing, staff, Value::Null).await;
    let note = json!({"note": "Un abogado va en camino"});
    let acknowledge = format!("/v1/alerts/{alert_id}/acknowledge");
    flow.call(Method::POST, &acknowledge, staff, note).await;
    let outcome = json!({"outcome": "safe", "note": "Liberada"});
    let resolve = format!("/v1/alerts/{alert_id}/resolve");
    flow.call(Method::POST, &resolve, staff, outcome).await;
    // Let the relay deliver every change before the logs are read.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_no_leaks(&runner, &secrets, &alert_id);
    runner.terminate();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_on_aws_logs_no_personal_data() {
    let stack = Stack::create().await;
    let runner = stack.runner(&[("RUST_LOG", "trace")]);
    let flow = Flow { runner: &runner };
    let mut secrets = Secrets::new();
    let (alert_id, _) = flow.person_side(&mut secrets).await;
    // The stream reader fans out the changes (SMS to the family included) before the logs are read.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while alert_button_tests::aws::sms_sent_to(FAMILY_PHONE)
        .await
        .is_empty()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the family was never texted"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_no_leaks(&runner, &secrets, &alert_id);
    runner.terminate();
}
