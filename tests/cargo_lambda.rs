//! The Lambda functions through the real runtime interface: `cargo lambda watch` serves them against
//! moto, `cargo lambda invoke` sends the API Gateway and DynamoDB stream events kept in
//! `tests/events/`, and plain HTTP reaches them through the function URL emulation.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alert_button_core::inbound::stream_poller::StreamPoller;
use alert_button_tests::PATIENCE;
use alert_button_tests::aws::{Stack, field, moto_url, sms_sent_to};
use serde_json::{Value, json};

/// Building the functions the first time can take minutes on a small machine.
const FIRST_BUILD: Duration = Duration::from_secs(900);

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Watch {
    child: Child,
    port: u16,
    log: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl Watch {
    fn start(table: &str, topic_arn: &str, service_key_secret: &str) -> Watch {
        Watch::start_with(table, topic_arn, service_key_secret, &[])
    }

    /// As `start`, with further variables for the functions.
    fn start_with(
        table: &str,
        topic_arn: &str,
        service_key_secret: &str,
        envs: &[(&str, &str)],
    ) -> Watch {
        let port = free_port();
        // Outside the repository: watch rebuilds whenever files change under it.
        let log_dir = tempfile::tempdir().unwrap();
        let log = log_dir.path().join("watch.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("cargo")
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--invoke-address",
                "127.0.0.1",
            ])
            .args(["--invoke-port", &port.to_string()])
            .current_dir(workspace())
            .env("AWS_ENDPOINT_URL", moto_url())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("ALERT_BUTTON_TABLE", table)
            .env("ALERT_BUTTON_TOPIC_ARN", topic_arn)
            .env("ALERT_BUTTON_FAMILY_SMS", "direct")
            .env("ALERT_BUTTON_SERVICE_KEY_SECRET_ARN", service_key_secret)
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .stdin(Stdio::null())
            .spawn()
            .expect("cargo lambda is installed (tests/run.sh installs it)");
        let mut watch = Watch {
            child,
            port,
            log,
            _log_dir: log_dir,
        };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = watch.child.try_wait() {
                panic!(
                    "cargo lambda watch exited with {status}:\n{}",
                    watch.log_text()
                );
            }
            assert!(
                start.elapsed() < PATIENCE,
                "cargo lambda watch did not start:\n{}",
                watch.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// None of `personal` (phones, addresses) is in the functions' log.
    fn assert_not_logged(&self, personal: &[&str]) {
        let log = self.log_text();
        for value in personal {
            assert!(!log.contains(value), "{value} was logged: {log}");
        }
    }

    /// `cargo lambda invoke FUNCTION --data-file FILE`, returning the function's JSON answer.
    fn invoke(&self, function: &str, data_file: &Path) -> Value {
        let output = Command::new("cargo")
            .args(["lambda", "invoke", "--invoke-address", "127.0.0.1"])
            .args(["--invoke-port", &self.port.to_string()])
            .args(["--output-format", "json", "--data-file"])
            .arg(data_file)
            .arg(function)
            .current_dir(workspace())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "invoking {function} failed: {}\n{}",
            String::from_utf8_lossy(&output.stderr),
            self.log_text()
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "{function} answered: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An event fixture with its `{{NAME}}` placeholders filled in.
fn fixture(name: &str, values: &[(&str, &str)], dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(workspace().join("tests/events").join(name)).unwrap();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// An API Gateway answer: (status, JSON body).
fn http_answer(answer: &Value) -> (u64, Value) {
    let body = answer["body"].as_str().unwrap_or("null");
    (
        answer["statusCode"].as_u64().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_run_an_alert_from_intake_to_sns() {
    let stack = Stack::create().await;
    let family = stack
        .probe_of(json!({"audience": ["family"], "event": ["opened"]}))
        .await;
    let consulate = stack.consulate_probe("mx-cg-los-angeles").await;
    let san_diego = stack.consulate_probe("mx-consul-san-diego").await;
    let watch = Watch::start(&stack.table, &stack.topic_arn, &stack.service_key_secret);
    let events = tempfile::tempdir().unwrap();
    let phone = alert_button_tests::aws::unique_phone();

    // Registration through the runtime interface (the first invoke also builds the function).
    let started = Instant::now();
    let answer = watch.invoke(
        "alert-intake",
        &fixture("apigw-register.json", &[("PHONE", &phone)], events.path()),
    );
    assert!(started.elapsed() < FIRST_BUILD);
    let (status, registered) = http_answer(&answer);
    assert_eq!(status, 201, "{answer}");
    let token = registered["token"].as_str().unwrap().to_owned();

    // The alert through the function URL emulation, as a phone would send it.
    let client = reqwest::Client::builder()
        .timeout(FIRST_BUILD)
        .build()
        .unwrap();
    let response = client
        .post(format!(
            "http://127.0.0.1:{}/lambda-url/alert-intake/v1/alerts",
            watch.port
        ))
        .bearer_auth(&token)
        .json(&json!({"client_alert_id": "url-1", "location": {"lat": 34.05, "lon": -118.25}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let alert: Value = response.json().await.unwrap();
    let alert_id = alert["alert_id"].as_str().unwrap().to_owned();
    assert_eq!(alert["consulate"]["id"], "mx-cg-los-angeles");

    // The same alert again through invoke: 200 and the same alert; then read it back.
    let replay = fixture("apigw-alert.json", &[("TOKEN", &token)], events.path());
    let (status, first) = http_answer(&watch.invoke("alert-intake", &replay));
    assert_eq!(status, 201);
    let (status, again) = http_answer(&watch.invoke("alert-intake", &replay));
    assert_eq!(status, 200);
    assert_eq!(again["alert_id"], first["alert_id"]);
    let get = fixture(
        "apigw-get-alert.json",
        &[("TOKEN", &token), ("ALERT_ID", &alert_id)],
        events.path(),
    );
    let (status, fetched) = http_answer(&watch.invoke("alert-intake", &get));
    assert_eq!(status, 200);
    assert_eq!(fetched["status"], "open");

    // Bad input through Lambda: a 4xx JSON error, not a crash.
    let bad = fixture("apigw-bad-alert.json", &[("TOKEN", &token)], events.path());
    let (status, error) = http_answer(&watch.invoke("alert-intake", &bad));
    assert_eq!(status, 422);
    assert_eq!(error["error"]["field"], "location.lat");

    // The public lookup function.
    let (status, nearest) = http_answer(&watch.invoke(
        "consulate-lookup",
        &workspace().join("tests/events/apigw-nearest.json"),
    ));
    assert_eq!(status, 200);
    assert_eq!(nearest["consulates"][0]["id"], "mx-cg-miami");
    assert_eq!(nearest["consulates"].as_array().unwrap().len(), 2);

    // The table's stream, read back as Lambda would deliver it, into the fan-out function.
    let mut poller = StreamPoller::connect(&stack.config, &stack.table)
        .await
        .unwrap();
    let batches = poller.fetch().await.unwrap();
    let batch = batches.iter().find(|b| b.len > 0).expect("stream records");
    let batch_file = events.path().join("stream-batch.json");
    std::fs::write(&batch_file, batch.json.to_string()).unwrap();
    let response = watch.invoke("notification-fanout", &batch_file);
    assert_eq!(response, json!({"batchItemFailures": []}));

    let family_messages = family.wait_for(4).await;
    let consulate_messages = consulate.wait_for(2).await;
    let alerts = field(&consulate_messages, "alert_id");
    let mut expected = vec![alert_id.as_str(), first["alert_id"].as_str().unwrap()];
    expected.sort_unstable();
    assert_eq!(alerts, expected);
    assert_eq!(family_messages.len(), 4, "two alerts, each in es and en");
    assert_eq!(
        sms_sent_to(&phone).await.len(),
        2,
        "one SMS per alert to the family phone"
    );

    // The stream batch kept in tests/events: a person, an alert and its location update.
    let response = watch.invoke(
        "notification-fanout",
        &workspace().join("tests/events/dynamodb-stream-batch.json"),
    );
    assert_eq!(response, json!({"batchItemFailures": []}));
    let fixture_messages = san_diego.wait_for(2).await;
    let events_seen = field(&fixture_messages, "event");
    assert_eq!(events_seen, ["location_updated", "opened"]);
}

/// Family sends of one alert, each recorded in the table's ledger as accepted by its provider
/// under a message id, as the fan-out records them.
struct Sent {
    ledger: alert_button_core::outbound::dynamodb_ledger::DynamoLedger,
    alert_id: uuid::Uuid,
}

impl Sent {
    /// The `n`th send is shown as `+1 ••• ••• 010n`.
    async fn record(stack: &Stack, message_ids: &[&str]) -> Sent {
        use alert_button_core::ports::{DeliveryLedger, DeliveryState, Settled};
        let sent = Sent {
            ledger: alert_button_core::outbound::dynamodb_ledger::DynamoLedger::new(
                aws_sdk_dynamodb::Client::new(&stack.config),
                &stack.table,
            ),
            alert_id: uuid::Uuid::new_v4(),
        };
        for (n, message_id) in message_ids.iter().enumerate() {
            let masked = format!("+1 ••• ••• 010{n}");
            let delivery = alert_button_tests::family_text(sent.alert_id, &n.to_string(), &masked);
            assert!(sent.ledger.claim(&delivery).await.unwrap());
            // Each due for the contact's next channel in five minutes, as the fan-out records it.
            let due = time::OffsetDateTime::now_utc() + time::Duration::minutes(5);
            let settled = Settled::new(DeliveryState::Sent, Some(message_id));
            let settled = settled.next_channel_at(Some(due));
            sent.ledger.settle(&delivery, settled).await.unwrap();
        }
        sent
    }

    /// Each send's state, by its masked recipient.
    async fn states(&self) -> Vec<(String, &'static str)> {
        use alert_button_core::ports::DeliveryLedger;
        let records = self.ledger.deliveries_of(self.alert_id).await.unwrap();
        let mut states: Vec<_> = records
            .into_iter()
            .map(|r| (r.masked, r.state.as_str()))
            .collect();
        states.sort();
        states
    }

    /// Which sends (by their number) are due for the next channel `minutes` from now.
    async fn due_in(&self, minutes: i64) -> Vec<String> {
        use alert_button_core::ports::{DueSends, PageQuery};
        let at = time::OffsetDateTime::now_utc() + time::Duration::minutes(minutes);
        let page = PageQuery {
            limit: 100,
            cursor: None,
        };
        let due = self.ledger.sends_due(at, page).await.unwrap();
        let mut due: Vec<String> = due
            .items
            .into_iter()
            .filter(|send| send.alert_id == self.alert_id)
            .map(|send| send.recipient)
            .collect();
        due.sort();
        due
    }
}

/// The receipts function's answer: how many receipts did what.
fn counts(delivered: u32, failed: u32, unknown: u32, ignored: u32) -> Value {
    json!({"delivered": delivered, "failed": failed, "unknown": unknown, "ignored": ignored})
}

/// `(masked, state)` of the `n`th send, for comparing with `Sent::states`.
fn shown(states: &[&'static str]) -> Vec<(String, &'static str)> {
    let row = |(n, state): (usize, &&'static str)| (format!("+1 ••• ••• 010{n}"), *state);
    states.iter().enumerate().map(row).collect()
}

/// SNS's SMS delivery-status logs, as a CloudWatch Logs subscription delivers them (the fixtures'
/// `awslogs.data` is gzipped and base64-encoded), move texts the ledger holds as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_turn_sent_texts_into_delivered_or_failed() {
    let stack = Stack::create().await;
    // The message ids SNS gave these texts are those the fixtures' status lines name; the
    // fixtures also carry a receipt for a text the ledger does not hold.
    let sent = Sent::record(
        &stack,
        &[
            "34d9b400-c6dd-5444-820d-fbeb0f1f54cf",
            "1077257a-92f3-5ca3-bc97-6a915b310625",
            "9f1d7c52-0000-5000-8000-000000000000",
        ],
    )
    .await;

    let watch = Watch::start(&stack.table, &stack.topic_arn, &stack.service_key_secret);
    let events = workspace().join("tests/events");
    let receipts = |fixture: &str| {
        let batch = events.join(format!("cloudwatch-logs-sms-{fixture}.json"));
        watch.invoke("delivery-receipts", &batch)
    };
    assert_eq!(receipts("delivered"), counts(1, 0, 1, 0));
    assert_eq!(receipts("failed"), counts(0, 1, 0, 0));
    let expected = shown(&["delivered", "failed", "sent"]);
    assert_eq!(sent.states().await, expected);
    // The delivered text takes no next channel; the failed one's is due at once.
    assert_eq!(sent.due_in(1).await, ["1"]);
    assert_eq!(sent.due_in(6).await, ["1", "2"]);

    // A repeated batch changes nothing, and nothing goes backwards.
    assert_eq!(receipts("delivered"), counts(0, 0, 1, 1));
    assert_eq!(sent.states().await, expected);
    watch.assert_not_logged(&["5550100", "5550101", "5550102"]);
}

/// The channel events topic, as SNS invokes the function with it: WhatsApp statuses from End
/// User Messaging Social (delivered or read, failed) and the SES events of family e-mails
/// (delivery or complaint, bounce or reject) move sends the ledger holds as sent, found by
/// End User Messaging's message id or WhatsApp's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_events_turn_whatsapp_and_email_sends_into_delivered_or_failed() {
    let stack = Stack::create().await;
    let email = |n: u8| format!("0100019a1b2c3d4e-5f6a7b8c-9d0e-4f1a-8b2c-3d4e5f6a7b8{n}-000000");
    let (email1, email2, email4) = (email(1), email(2), email(4));
    let sent = Sent::record(
        &stack,
        &[
            // Delivered, then read: delivered once.
            "6d69f07a-c317-4278-9d5c-6a84078419e1",
            // Failed; recorded under WhatsApp's id.
            "wamid.HBgNNTIxNTUxMjM0NTY3OBUCABEYEjQ2",
            &email1,
            // Bounced.
            &email2,
            // Rejected.
            &email4,
            // No event names it.
            "9f1d7c52-0000-5000-8000-000000000000",
        ],
    )
    .await;

    let watch = Watch::start(&stack.table, &stack.topic_arn, &stack.service_key_secret);
    let events = workspace().join("tests/events");
    let receipts = |fixture: &str| watch.invoke("delivery-receipts", &events.join(fixture));
    // (fixture, what it does the first time, what it does again: nothing moves, backwards least
    // of all). WhatsApp: an inbound message, a repeated read and a `sent` status are ignored, one
    // status names a message the ledger does not hold. SES: a send event and a delay are
    // ignored, a complaint and an identity's delivery notice name messages it does not hold.
    let batches = [
        (
            "sns-whatsapp-status.json",
            counts(1, 1, 1, 3),
            counts(0, 0, 1, 5),
        ),
        (
            "sns-ses-events.json",
            counts(1, 2, 2, 2),
            counts(0, 0, 2, 5),
        ),
    ];
    for (fixture, first, _) in &batches {
        assert_eq!(&receipts(fixture), first, "{fixture}");
    }
    let expected = shown(&[
        "delivered",
        "failed",
        "delivered",
        "failed",
        "failed",
        "sent",
    ]);
    assert_eq!(sent.states().await, expected);

    for (fixture, _, again) in &batches {
        assert_eq!(&receipts(fixture), again, "{fixture} again");
    }
    assert_eq!(sent.states().await, expected);
    watch.assert_not_logged(&["5215512345678", "familia@", "nadie@"]);
}

/// A contact's STOP, as End User Messaging publishes it to the inbound topic, opts that number out
/// in every record that lists it; HELP and other texts change nothing; START opts back in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_texted_stop_opts_the_contact_out() {
    use alert_button_core::domain::alert::Retention;
    use alert_button_core::domain::consent::Consent;
    use alert_button_core::outbound::dynamodb::DynamoStore;
    use alert_button_core::outbound::sns::FamilySms;
    use alert_button_core::ports::PersonWriter;
    use alert_button_core::testing::contact;
    use alert_button_tests::ana;
    use alert_button_tests::aws::unique_phone;

    let stack = Stack::create().await;
    let aws = stack.backend(FamilySms::Direct, Retention::default());
    let (luis, rosa) = (unique_phone(), unique_phone());
    let mut people = Vec::new();
    for _ in 0..2 {
        let registration = ana(vec![
            contact("Luis", &luis, None),
            contact("Rosa", &rosa, None),
        ]);
        let (person, _) = aws
            .services
            .person
            .register(registration, "203.0.113.7")
            .await
            .unwrap();
        people.push(person.person_id);
    }
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&stack.config), &stack.table);
    let statuses = || async {
        let mut all = Vec::new();
        for id in &people {
            let person = store.get_person(*id).await.unwrap().unwrap();
            all.push(
                person
                    .contacts
                    .iter()
                    .map(|c| c.consent.unwrap())
                    .collect::<Vec<_>>(),
            );
        }
        all
    };

    let watch = Watch::start(&stack.table, &stack.topic_arn, &stack.service_key_secret);
    let dir = tempfile::tempdir().unwrap();
    let reply = |keyword: &str, text: &str| {
        fixture(
            "sns-inbound-sms.json",
            &[("PHONE", &luis), ("KEYWORD", keyword), ("TEXT", text)],
            dir.path(),
        )
    };
    for (keyword, text) in [("HELP", "HELP"), ("", "who is this?")] {
        let answer = watch.invoke("sms-replies", &reply(keyword, text));
        assert_eq!(answer["people_changed"], 0, "{text}: {answer}");
    }
    assert!(
        statuses()
            .await
            .iter()
            .flatten()
            .all(|c| *c == Consent::Pending)
    );

    let answer = watch.invoke("sms-replies", &reply("STOP", "Stop"));
    assert_eq!(answer["people_changed"], 2, "{answer}");
    assert_eq!(
        statuses().await,
        vec![vec![Consent::OptedOut, Consent::Pending]; 2],
        "Luis is opted out in both records, Rosa untouched"
    );
    let answer = watch.invoke("sms-replies", &reply("", "START"));
    assert_eq!(answer["people_changed"], 2, "{answer}");
    assert_eq!(
        statuses().await,
        vec![vec![Consent::Confirmed, Consent::Pending]; 2]
    );
    assert!(
        !watch.log_text().contains(&luis[2..]),
        "the replying number is never logged"
    );
}

/// A stand-in for the Cognito user pool: its JWKS served on loopback (the issuer URL), and ID
/// tokens for app client `client-1` signed with the key it publishes.
struct TestPool {
    issuer: String,
    pem: Vec<u8>,
}

impl TestPool {
    async fn start() -> TestPool {
        let (issuer, pem) = alert_button_core::testing::cognito_stand_in().await;
        TestPool { issuer, pem }
    }

    fn id_token(&self, consulate_id: &str) -> String {
        use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let claims = json!({
            "sub": "staff-1",
            "custom:consulate_id": consulate_id,
            "token_use": "id",
            "iss": self.issuer,
            "aud": "client-1",
            "iat": now,
            "exp": now + 600,
        });
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("test-key-1".into());
        encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(&self.pem).unwrap(),
        )
        .unwrap()
    }
}

/// The consulate staff's routes are the staff API function's: it lists and acknowledges an alert
/// raised through intake, and intake no longer serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_routes_are_served_by_the_staff_api_function_only() {
    let stack = Stack::create().await;
    let pool = TestPool::start().await;
    let watch = Watch::start_with(
        &stack.table,
        &stack.topic_arn,
        &stack.service_key_secret,
        &[
            ("ALERT_BUTTON_STAFF_ISSUER", &pool.issuer),
            ("ALERT_BUTTON_STAFF_AUDIENCE", "client-1"),
        ],
    );
    let events = tempfile::tempdir().unwrap();
    let phone = alert_button_tests::aws::unique_phone();
    let (status, registered) = http_answer(&watch.invoke(
        "alert-intake",
        &fixture("apigw-register.json", &[("PHONE", &phone)], events.path()),
    ));
    assert_eq!(status, 201, "{registered}");
    let token = registered["token"].as_str().unwrap();
    let (status, alert) = http_answer(&watch.invoke(
        "alert-intake",
        &fixture("apigw-alert.json", &[("TOKEN", token)], events.path()),
    ));
    assert_eq!(status, 201, "{alert}");
    let alert_id = alert["alert_id"].as_str().unwrap();
    let consulate_id = alert["consulate"]["id"].as_str().unwrap();

    let staff_token = pool.id_token(consulate_id);
    let acknowledge = fixture(
        "apigw-acknowledge.json",
        &[("TOKEN", &staff_token), ("ALERT_ID", alert_id)],
        events.path(),
    );
    // Intake answers a staff path as a route it does not have, and changes nothing.
    let (status, error) = http_answer(&watch.invoke("alert-intake", &acknowledge));
    assert_eq!(status, 404, "{error}");
    let client = reqwest::Client::builder()
        .timeout(FIRST_BUILD)
        .build()
        .unwrap();
    let list = |function: &str, status: &str| {
        client
            .get(format!(
                "http://127.0.0.1:{}/lambda-url/{function}/v1/consulates/{consulate_id}/alerts?status={status}",
                watch.port
            ))
            .bearer_auth(&staff_token)
            .send()
    };
    let listed = list("alert-intake", "open").await.unwrap();
    assert_eq!(listed.status().as_u16(), 404);

    let listed_by_staff_api = |status: &'static str| {
        let sent = list("staff-api", status);
        async move { sent.await.unwrap().json::<Value>().await.unwrap() }
    };
    let open = listed_by_staff_api("open").await;
    let ids: Vec<&str> = open["alerts"]
        .as_array()
        .unwrap_or_else(|| panic!("{open}"))
        .iter()
        .filter_map(|a| a["alert_id"].as_str())
        .collect();
    assert!(ids.contains(&alert_id), "{open}");

    let (status, acknowledged) = http_answer(&watch.invoke("staff-api", &acknowledge));
    assert_eq!(status, 200, "{acknowledged}");
    assert_eq!(acknowledged["status"], "acknowledged");
    let listed = listed_by_staff_api("acknowledged").await;
    assert_eq!(listed["alerts"][0]["alert_id"], alert_id, "{listed}");

    // The person's routes stay with intake: the staff API does not serve them.
    let (status, _) = http_answer(&watch.invoke(
        "staff-api",
        &fixture("apigw-alert.json", &[("TOKEN", token)], events.path()),
    ));
    assert_eq!(status, 404);
}
