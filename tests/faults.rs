//! Faults: a burst of alerts while the store and the notifier fail, and a burst while the runner is
//! killed with SIGKILL and restarted. The bar: no acknowledged alert is lost or created twice, and
//! every planned notification is sent exactly once.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use alert_button_core::domain::alert::{Alert, AlertStatus, alert_id_for};
use alert_button_core::domain::consent_request;
use alert_button_core::domain::consulate::Directory;
use alert_button_core::domain::notification::{self, Notification};
use alert_button_core::local::{JOURNAL_FILE, LocalMode, LocalPorts, STORE_FILE};
use alert_button_core::outbound::embedded::EmbeddedStore;
use alert_button_core::ports::{
    ConsulateQueue, Listing, Notifier, PageQuery, PersonWriter, Recipient, SendError, SendResult,
    SystemClock,
};
use alert_button_core::service::limits;
use alert_button_core::testing::{Guard, Guarded, Verdict};
use alert_button_core::{Error, Result};
use alert_button_tests::Runner;
use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::watch;
use uuid::Uuid;

const PEOPLE: usize = 1_000;
const ALERTS_PER_PERSON: usize = 10;
const ALERTS: usize = PEOPLE * ALERTS_PER_PERSON;
/// Requests in flight at once, as many phones pressing together.
const IN_FLIGHT: usize = 48;
/// Registrations per source address; the rest of the hourly limit is room for retried ones (a
/// failed registration still counts, and one whose answer was lost makes an orphan person).
const PEOPLE_PER_SOURCE: usize = 8;
/// One store call, and one send, in this many fails while faults are on.
const STORE_FAULT_ONE_IN: u64 = 20;
const NOTIFIER_FAULT_ONE_IN: u64 = 20;
/// Only against hanging forever: nothing here is a timed assertion.
const GIVE_UP: Duration = Duration::from_secs(900);

const _: () = assert!(ALERTS_PER_PERSON as u32 <= limits::ALERTS_PER_PERSON);
const _: () = assert!(2 * PEOPLE_PER_SOURCE as u32 <= limits::REGISTRATIONS_PER_SOURCE);

// ---------------------------------------------------------------------------------------------
// Fault injection between the domain and its adapters.

/// A switchable, deterministic stream of faults: each call draws from a hash of its number.
struct Faults {
    on: AtomicBool,
    one_in: u64,
    calls: AtomicU64,
    before: AtomicU64,
    after: AtomicU64,
}

enum Fault {
    /// The call fails without reaching the adapter.
    Before,
    /// The adapter did the work, then the answer was lost.
    After,
}

impl Faults {
    fn new(one_in: u64) -> Arc<Faults> {
        Arc::new(Faults {
            on: AtomicBool::new(true),
            one_in,
            calls: AtomicU64::new(0),
            before: AtomicU64::new(0),
            after: AtomicU64::new(0),
        })
    }

    fn roll(&self) -> Option<Fault> {
        if !self.on.load(Ordering::SeqCst) {
            return None;
        }
        let draw = splitmix64(self.calls.fetch_add(1, Ordering::Relaxed));
        if !draw.is_multiple_of(self.one_in) {
            None
        } else if (draw >> 32).is_multiple_of(2) {
            self.before.fetch_add(1, Ordering::Relaxed);
            Some(Fault::Before)
        } else {
            self.after.fetch_add(1, Ordering::Relaxed);
            Some(Fault::After)
        }
    }

    /// Whether both kinds of fault struck at least `times` times.
    fn struck(&self, times: u64) -> bool {
        let (before, after) = self.injected();
        before >= times && after >= times
    }

    fn injected(&self) -> (u64, u64) {
        (
            self.before.load(Ordering::Relaxed),
            self.after.load(Ordering::Relaxed),
        )
    }
}

fn splitmix64(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

async fn faulty<T>(
    faults: &Faults,
    fault: fn() -> Error,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    match faults.roll() {
        None => work.await,
        Some(Fault::Before) => Err(fault()),
        Some(Fault::After) => {
            work.await?;
            Err(fault())
        }
    }
}

fn store_fault() -> Error {
    Error::Store("injected fault".into())
}

fn notifier_fault() -> Error {
    Error::Notifier("injected fault".into())
}

/// The store ports fail now and then, as the notifier does.
impl Guard for Faults {
    fn judge(&self, _alert_id: Option<Uuid>) -> Verdict {
        match self.roll() {
            None => Verdict::Pass,
            Some(Fault::Before) => Verdict::FailBefore(store_fault()),
            Some(Fault::After) => Verdict::FailAfter(store_fault()),
        }
    }
}

/// The notifier, failing now and then; an "after" fault is a message sent whose acknowledgement
/// was lost, so the retried change must not send it twice.
struct FaultyNotifier {
    inner: Arc<dyn Notifier>,
    faults: Arc<Faults>,
}

#[async_trait]
impl Notifier for FaultyNotifier {
    fn recipients(&self, notification: &Notification) -> Vec<Recipient> {
        self.inner.recipients(notification)
    }

    fn fallbacks(&self, notification: &Notification, recipient: &Recipient) -> Vec<Recipient> {
        self.inner.fallbacks(notification, recipient)
    }

    async fn send(&self, notification: &Notification, recipient: &Recipient) -> SendResult {
        let work = async {
            self.inner
                .send(notification, recipient)
                .await
                .map_err(|err| Error::Notifier(err.to_string()))
        };
        faulty(&self.faults, notifier_fault, work)
            .await
            .map_err(|err| SendError::Transient(err.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// The clients: people registering from many addresses, then pressing the button in a burst.

/// The server's base URL; it changes when the runner is restarted on a new port.
type Base = Arc<RwLock<String>>;

fn url(base: &Base, path: &str) -> String {
    format!("{}{path}", base.read().unwrap())
}

struct Registered {
    person_id: Uuid,
    token: String,
    /// How many languages the person's contacts speak: one family message each.
    family_languages: usize,
}

/// A mix of households, so that alerts plan different numbers of messages.
fn registration(i: usize) -> (Value, usize) {
    let phone = |n: usize| format!("+1312{:07}", 2_000_000 + i * 3 + n);
    match i % 3 {
        0 => (
            json!({"display_name": format!("P{i}"), "language": "es",
                   "contacts": [{"name": "Luis", "phone": phone(0)}]}),
            1,
        ),
        1 => (
            json!({"display_name": format!("P{i}"), "language": "es",
                   "contacts": [{"name": "Luis", "phone": phone(0)},
                                {"name": "Kim", "email": format!("kim{i}@example.org"), "language": "en"}]}),
            2,
        ),
        _ => (
            json!({"display_name": format!("P{i}"), "language": "en",
                   "contacts": [{"name": "Ann", "phone": phone(0)},
                                {"name": "Bo", "phone": phone(1), "language": "en"},
                                {"name": "Eva", "phone": phone(2), "language": "es"}]}),
            2,
        ),
    }
}

/// Any 127.x.y.z is loopback on Linux: each source address is a distinct caller to the server.
fn source_address(n: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        1 + (n / 250) as u8,
        0,
        1 + (n % 250) as u8,
    ))
}

fn client(source: Option<IpAddr>) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .local_address(source)
        .build()
        .unwrap()
}

/// What the clients saw, beyond their acknowledgements.
#[derive(Default)]
struct Tally {
    acknowledged: AtomicUsize,
    /// 503: a backing service failed and nothing was acknowledged.
    unavailable: AtomicUsize,
    /// Any other 5xx: a bug (a panic answers 500).
    server_errors: AtomicUsize,
    /// No answer at all (refused, reset, cut short).
    connection_errors: AtomicUsize,
}

impl Tally {
    /// Counts a failed attempt; anything but a retryable failure ends the test.
    fn failed(&self, outcome: std::result::Result<(u16, String), reqwest::Error>) {
        match outcome {
            Ok((503, _)) => self.unavailable.fetch_add(1, Ordering::Relaxed),
            Ok((status, body)) if status >= 500 => {
                eprintln!("unexpected {status}: {body}");
                self.server_errors.fetch_add(1, Ordering::Relaxed)
            }
            Ok((status, body)) => panic!("an attempt was refused with {status}: {body}"),
            Err(_) => self.connection_errors.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn summary(&self) -> String {
        format!(
            "{} acknowledged; failed attempts: {} unavailable, {} other 5xx, {} without an answer",
            self.acknowledged.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
            self.server_errors.load(Ordering::Relaxed),
            self.connection_errors.load(Ordering::Relaxed),
        )
    }
}

/// Sends until the answer is a 2xx, as the app does: 5xx and lost answers are retried with the
/// same body. Returns the status, the JSON and how many attempts failed before.
async fn until_acknowledged(
    client: &reqwest::Client,
    base: &Base,
    path: &str,
    token: Option<&str>,
    body: &Value,
    tally: &Tally,
) -> (u16, Value, usize) {
    let start = Instant::now();
    let mut failed = 0;
    loop {
        let mut request = client.post(url(base, path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let outcome = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.text().await?))
        }
        .await;
        match outcome {
            Ok((status @ (200 | 201), text)) => {
                let json = serde_json::from_str(&text).expect("a 2xx answer is JSON");
                return (status, json, failed);
            }
            other => tally.failed(other),
        }
        failed += 1;
        assert!(
            start.elapsed() < GIVE_UP,
            "{path} was never acknowledged after {failed} attempts"
        );
        tokio::time::sleep(Duration::from_millis(10 * failed.min(10) as u64)).await;
    }
}

/// Registers `PEOPLE` people, `PEOPLE_PER_SOURCE` from each source address.
async fn register_everyone(base: &Base, tally: &Arc<Tally>) -> Vec<Registered> {
    let sources = PEOPLE.div_ceil(PEOPLE_PER_SOURCE);
    let mut tasks = tokio::task::JoinSet::new();
    for source in 0..sources {
        let (base, tally) = (base.clone(), tally.clone());
        tasks.spawn(async move {
            let client = client(Some(source_address(source)));
            let mut registered = Vec::new();
            let first = source * PEOPLE_PER_SOURCE;
            for i in first..(first + PEOPLE_PER_SOURCE).min(PEOPLE) {
                let (body, family_languages) = registration(i);
                let (status, reply, _) =
                    until_acknowledged(&client, &base, "/v1/people", None, &body, &tally).await;
                assert_eq!(status, 201, "{reply}");
                registered.push((
                    i,
                    Registered {
                        person_id: reply["person_id"].as_str().unwrap().parse().unwrap(),
                        token: reply["token"].as_str().unwrap().to_owned(),
                        family_languages,
                    },
                ));
            }
            registered
        });
    }
    let mut people: Vec<(usize, Registered)> =
        tasks.join_all().await.into_iter().flatten().collect();
    people.sort_by_key(|(i, _)| *i);
    people.into_iter().map(|(_, person)| person).collect()
}

/// One alert as its client saw it acknowledged.
struct Ack {
    person: usize,
    client_alert_id: String,
    alert_id: Uuid,
    status: u16,
    failed_attempts: usize,
}

/// Every person presses `ALERTS_PER_PERSON` times, each press with its own `client_alert_id`,
/// `IN_FLIGHT` requests at a time; returns every acknowledgement.
async fn burst(base: &Base, people: &Arc<Vec<Registered>>, tally: &Arc<Tally>) -> Vec<Ack> {
    let directory = Arc::new(Directory::bundled());
    let next = Arc::new(AtomicUsize::new(0));
    let client = client(None);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (base, people, tally) = (base.clone(), people.clone(), tally.clone());
        let (next, client, directory) = (next.clone(), client.clone(), directory.clone());
        workers.spawn(async move {
            let mut acks = Vec::new();
            loop {
                let job = next.fetch_add(1, Ordering::Relaxed);
                if job >= ALERTS {
                    return acks;
                }
                // Press k of every person before press k + 1 of any, from all over the directory.
                let (person, press) = (job % PEOPLE, job / PEOPLE);
                let offices = directory.all();
                let office = &offices[(person * 7 + press) % offices.len()];
                let client_alert_id = format!("burst-{person}-{press}");
                let body = json!({
                    "client_alert_id": client_alert_id,
                    "location": {"lat": office.latitude + 0.01 * press as f64,
                                 "lon": office.longitude, "accuracy_m": 20},
                });
                let token = people[person].token.as_str();
                let (status, reply, failed_attempts) =
                    until_acknowledged(&client, &base, "/v1/alerts", Some(token), &body, &tally)
                        .await;
                assert_eq!(reply["status"], "open", "{reply}");
                tally.acknowledged.fetch_add(1, Ordering::SeqCst);
                acks.push(Ack {
                    person,
                    client_alert_id,
                    alert_id: reply["alert_id"].as_str().unwrap().parse().unwrap(),
                    status,
                    failed_attempts,
                });
            }
        });
    }
    workers.join_all().await.into_iter().flatten().collect()
}

/// Waits until the tally counts `count` acknowledged alerts.
async fn acknowledged(tally: &Tally, count: usize) {
    let start = Instant::now();
    while tally.acknowledged.load(Ordering::SeqCst) < count {
        assert!(start.elapsed() < GIVE_UP, "the burst stalled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the relay has delivered (and deleted) every outbox event.
async fn outbox_drained(store: &EmbeddedStore) {
    let start = Instant::now();
    loop {
        match store.pending_events(1).await {
            Ok(pending) if pending.is_empty() => return,
            _ => {}
        }
        assert!(start.elapsed() < GIVE_UP, "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The proof.

/// Every alert in the store, whatever its consulate and status.
async fn stored_alerts(store: &EmbeddedStore, directory: &Directory) -> Vec<Alert> {
    let mut alerts = Vec::new();
    for office in directory.all() {
        for status in [
            AlertStatus::Open,
            AlertStatus::Acknowledged,
            AlertStatus::Resolved,
            AlertStatus::Cancelled,
        ] {
            let mut cursor = None;
            loop {
                let page = store
                    .list_by_consulate(Listing {
                        consulate_id: &office.id,
                        status,
                        page: PageQuery {
                            limit: 100,
                            cursor: cursor.as_deref(),
                        },
                    })
                    .await
                    .unwrap();
                alerts.extend(page.alerts);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
        }
    }
    alerts
}

/// How often each consent request (id, hashed phone) is in the journal.
type Requests = HashMap<(String, String), usize>;

/// The notification ids in the journal with how often each appears, the same of the consent
/// requests, and how many lines did not parse (a line torn by a kill is sent again whole, so it
/// may be there, but is no notification).
fn journal_ids(path: &Path) -> (HashMap<String, usize>, Requests, usize) {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut ids, mut requests, mut torn) = (HashMap::new(), HashMap::new(), 0);
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let line = serde_json::from_str::<Value>(line).unwrap_or_default();
        match (line["notification_id"].as_str(), line["recipient"].as_str()) {
            (Some(id), Some(to)) if id.ends_with(":consent-request") => {
                *requests.entry((id.to_owned(), to.to_owned())).or_insert(0) += 1;
            }
            (Some(id), _) => *ids.entry(id.to_owned()).or_insert(0) += 1,
            (None, _) => torn += 1,
        }
    }
    (ids, requests, torn)
}

/// No acknowledged alert lost, none created twice, every planned notification sent exactly once
/// and nothing else sent.
async fn prove(
    store: &EmbeddedStore,
    people: &[Registered],
    acks: &[Ack],
    journal: &Path,
    torn_lines_allowed: usize,
) {
    let directory = Directory::bundled();
    assert_eq!(acks.len(), ALERTS, "every press was acknowledged");
    let mut by_id: HashMap<Uuid, &Ack> = HashMap::new();
    for ack in acks {
        let person = &people[ack.person];
        assert_eq!(
            ack.alert_id,
            alert_id_for(person.person_id, &ack.client_alert_id)
        );
        // A 200 is an alert that already existed: only an earlier attempt can have created it.
        assert!(
            ack.status == 201 || ack.failed_attempts > 0,
            "{} was answered 200 at the first attempt",
            ack.client_alert_id
        );
        assert!(
            by_id.insert(ack.alert_id, ack).is_none(),
            "two presses, one alert"
        );
    }

    let stored = stored_alerts(store, &directory).await;
    let stored_ids: HashSet<Uuid> = stored.iter().map(|a| a.alert_id).collect();
    assert_eq!(stored_ids.len(), stored.len(), "an alert is stored twice");
    let lost: Vec<_> = by_id.keys().filter(|id| !stored_ids.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged alerts lost: {lost:?}",
        lost.len()
    );
    assert_eq!(
        stored.len(),
        ALERTS,
        "alerts that nobody pressed were stored"
    );

    let mut planned: HashMap<String, Uuid> = HashMap::new();
    let mut per_alert: HashMap<Uuid, usize> = HashMap::new();
    for alert in &stored {
        let ack = by_id[&alert.alert_id];
        let person = &people[ack.person];
        assert_eq!(alert.person_id, person.person_id);
        assert_eq!(alert.client_alert_id, ack.client_alert_id);
        assert_eq!(alert.history.len(), 1, "{:?}", alert.history);
        let record = store.get_person(alert.person_id).await.unwrap().unwrap();
        let plan = notification::plan(alert, &alert.history[0], Some(&record), &directory);
        // One family message per language the contacts speak, one for the consulate.
        assert_eq!(plan.len(), person.family_languages + 1);
        per_alert.insert(alert.alert_id, plan.len());
        for planned_notification in plan {
            planned.insert(planned_notification.notification_id, alert.alert_id);
        }
    }

    let (sent, requests, torn) = journal_ids(journal);
    assert!(
        torn <= torn_lines_allowed,
        "{torn} journal lines are not JSON"
    );
    assert_none("sent more than once", sent.iter().filter(|(_, n)| **n > 1));
    // Every phone contact of every registration asked once (a registration whose answer a fault
    // lost is stored too, and its contacts asked, though its client registered again).
    assert_none(
        "asked more than once",
        requests.iter().filter(|(_, n)| **n > 1),
    );
    for person in people {
        let record = store.get_person(person.person_id).await.unwrap().unwrap();
        let id = consent_request::request_id(person.person_id);
        let asked = requests
            .keys()
            .filter(|(request, _)| *request == id)
            .count();
        let phones = consent_request::phones_to_ask(None, &record).len();
        assert_eq!(asked, phones, "each phone contact asked once");
    }
    assert_none(
        "never sent",
        planned.keys().filter(|id| !sent.contains_key(*id)),
    );
    assert_none(
        "unplanned",
        sent.keys().filter(|id| !planned.contains_key(*id)),
    );
    let mut sent_per_alert: HashMap<Uuid, usize> = HashMap::new();
    for id in sent.keys() {
        *sent_per_alert.entry(planned[id]).or_insert(0) += 1;
    }
    assert_eq!(sent_per_alert, per_alert);
    assert!(store.pending_events(1).await.unwrap().is_empty());
    eprintln!(
        "{} alerts stored once each; {} notifications sent once each; {torn} torn journal lines",
        stored.len(),
        sent.len()
    );
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!(
        "{count} in {:.1} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    )
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_store_and_notifier_faults_loses_nothing_and_notifies_once() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let store_faults = Faults::new(STORE_FAULT_ONE_IN);
    let notifier_faults = Faults::new(NOTIFIER_FAULT_ONE_IN);
    let (faults_for_store, faults_for_notifier) = (store_faults.clone(), notifier_faults.clone());
    let local = LocalMode::open_with(
        dir.path(),
        Arc::new(Directory::bundled()),
        false,
        Arc::new(SystemClock),
        move |ports: LocalPorts| {
            let store = Arc::new(Guarded {
                people: ports.people,
                alerts: ports.alerts,
                checkins: ports.checkins,
                guard: faults_for_store,
            });
            LocalPorts {
                people: store.clone(),
                alerts: store.clone(),
                checkins: store,
                notifier: Arc::new(FaultyNotifier {
                    inner: ports.notifier,
                    faults: faults_for_notifier,
                }),
            }
        },
    )
    .unwrap();
    let (stop, stopped) = watch::channel(false);
    let relay = local.spawn_relay(stopped.clone());
    // Served as the runner serves it: real loopback TCP, the peer address as the caller's source.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base: Base = Arc::new(RwLock::new(format!(
        "http://{}",
        listener.local_addr().unwrap()
    )));
    let app = local
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let mut server_stopped = stopped.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = server_stopped.changed().await;
            })
            .await
    });

    let tally = Arc::new(Tally::default());
    let people = Arc::new(register_everyone(&base, &tally).await);
    let registered = started.elapsed();

    // Faults on for the first half of the burst (and until each kind has struck a few times, which
    // the relay's pauses after a failure can delay), then off: the backlog must drain by itself.
    let recovery = {
        let (tally, store_faults, notifier_faults) =
            (tally.clone(), store_faults.clone(), notifier_faults.clone());
        tokio::spawn(async move {
            acknowledged(&tally, ALERTS / 2).await;
            let start = Instant::now();
            while !(store_faults.struck(3) && notifier_faults.struck(3)) {
                assert!(start.elapsed() < GIVE_UP, "the faults never struck");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            store_faults.on.store(false, Ordering::SeqCst);
            notifier_faults.on.store(false, Ordering::SeqCst);
        })
    };
    let burst_started = Instant::now();
    let acks = burst(&base, &people, &tally).await;
    let burst_time = burst_started.elapsed();
    recovery.await.unwrap();
    outbox_drained(&local.store).await;
    let delivered = burst_started.elapsed();
    let _ = stop.send(true);
    relay.await.unwrap();
    server.await.unwrap().unwrap();

    let (store_before, store_after) = store_faults.injected();
    let (sends_before, sends_after) = notifier_faults.injected();
    eprintln!(
        "faults: {}; store faults {store_before} before + {store_after} after the write, \
         notifier faults {sends_before} before + {sends_after} after the send",
        tally.summary()
    );
    eprintln!(
        "faults: {PEOPLE} people registered in {:.1} s; alerts acknowledged: {}; all notified: {}",
        registered.as_secs_f64(),
        rate(ALERTS, burst_time),
        rate(ALERTS, delivered)
    );
    // The injection must really have fired, or this test proves nothing.
    assert!(store_before > 0 && store_after > 0);
    assert!(sends_before > 0 && sends_after > 0);
    assert!(tally.unavailable.load(Ordering::Relaxed) > 0);
    assert_eq!(tally.server_errors.load(Ordering::Relaxed), 0);

    prove(&local.store, &people, &acks, local.notifier.path(), 0).await;
    eprintln!("faults: done in {:.1} s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_survives_the_runner_killed_and_restarted() {
    const KILLS: usize = 2;
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_string_lossy().into_owned();
    // No escalation during the test: it would add changes the plan does not expect.
    let start_runner = move || {
        Runner::start_with(
            &["--data-dir", &data_dir],
            &[("ALERT_BUTTON_ESCALATE_AFTER_MINUTES", "1440")],
        )
    };
    let runner = tokio::task::spawn_blocking(start_runner.clone())
        .await
        .unwrap();
    let base: Base = Arc::new(RwLock::new(runner.base_url.clone()));
    let stderr = Arc::new(Mutex::new(vec![runner.stderr.clone()]));
    let runner = Arc::new(Mutex::new(Some(runner)));

    let tally = Arc::new(Tally::default());
    let people = Arc::new(register_everyone(&base, &tally).await);

    // SIGKILL at a third and at two thirds of the burst, with requests in flight, then restart on
    // the same data directory (on a new port: the clients follow, as after a redeploy).
    let killer = {
        let (tally, base, runner, stderr) =
            (tally.clone(), base.clone(), runner.clone(), stderr.clone());
        tokio::spawn(async move {
            for kill in 1..=KILLS {
                acknowledged(&tally, ALERTS * kill / (KILLS + 1)).await;
                let old = runner.lock().unwrap().take().unwrap();
                tokio::task::spawn_blocking(move || old.kill())
                    .await
                    .unwrap();
                let new = tokio::task::spawn_blocking(start_runner.clone())
                    .await
                    .unwrap();
                *base.write().unwrap() = new.base_url.clone();
                stderr.lock().unwrap().push(new.stderr.clone());
                *runner.lock().unwrap() = Some(new);
            }
        })
    };
    let burst_started = Instant::now();
    let acks = burst(&base, &people, &tally).await;
    let burst_time = burst_started.elapsed();
    killer.await.unwrap();

    let store = EmbeddedStore::open(&dir.path().join(STORE_FILE)).unwrap();
    outbox_drained(&store).await;
    let delivered = burst_started.elapsed();
    let runner = runner.lock().unwrap().take().unwrap();
    let status = tokio::task::spawn_blocking(move || runner.terminate())
        .await
        .unwrap();
    assert!(status.success(), "{status}");

    eprintln!("runner kills: {}", tally.summary());
    eprintln!(
        "runner kills: {KILLS} kills; alerts acknowledged: {}; all notified: {}",
        rate(ALERTS, burst_time),
        rate(ALERTS, delivered)
    );
    // The kills really cut requests short.
    assert!(tally.connection_errors.load(Ordering::Relaxed) > 0);
    assert_eq!(tally.server_errors.load(Ordering::Relaxed), 0);
    for lines in stderr.lock().unwrap().iter() {
        let lines = lines.lock().unwrap();
        let panics: Vec<_> = lines.iter().filter(|l| l.contains("panicked")).collect();
        assert!(panics.is_empty(), "{panics:?}");
    }

    prove(
        &store,
        &people,
        &acks,
        &dir.path().join(JOURNAL_FILE),
        KILLS,
    )
    .await;
    eprintln!(
        "runner kills: done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Fails, counting and listing them, if there are any `items` (the ids that are `what`).
fn assert_none<T: std::fmt::Debug>(what: &str, items: impl Iterator<Item = T>) {
    let items: Vec<T> = items.collect();
    assert!(items.is_empty(), "{} {what}: {items:?}", items.len());
}
