//! Fixtures for tests and benchmarks: one person, one alert, one scripted notifier and one HTTP
//! request, instead of a copy of each in every test module. Built for the crate's own tests, and
//! for other crates' with the `testing` feature.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, header};
use time::OffsetDateTime;
use time::macros::datetime;
use uuid::Uuid;

use crate::domain::alert::{Alert, AlertEvent, AlertRequest, Location, Retention};
use crate::domain::channel::{Channel, route};
use crate::domain::checkin::CheckIn;
use crate::domain::consulate::Directory;
use crate::domain::credential;
use crate::domain::districts::Districts;
use crate::domain::notification::{Addressee, Audience, Notification};
use crate::domain::person::{Contact, Language, Person, Registration};
use crate::error::{Error, Result};
use crate::ports::{
    AlertCreator, AlertPage, AlertStore, AlertWriter, CheckInCreator, CheckInStore, CheckInWriter,
    ConsulateQueue, Created, DueCheckIns, Listing, Notifier, Overdue, OverdueAlerts, Page,
    PageQuery, PersonStore, PersonWriter, Recipient, SendError, SendResult, Sent,
};

/// When the fixtures happen, unless a test says otherwise.
pub const NOW: OffsetDateTime = datetime!(2026-11-25 12:00 UTC);

/// Downtown Chicago, served by the consulate `mx-cg-chicago`.
pub const CHICAGO: Location = Location {
    lat: 41.88,
    lon: -87.63,
    accuracy_m: None,
};

/// Ana, who reads Spanish, registered at `NOW` with `contacts`.
pub fn person_with(contacts: Vec<Contact>) -> Person {
    let person_id = Uuid::new_v4();
    let registration = Registration {
        display_name: Some("Ana".into()),
        language: Language::Es,
        contacts,
    };
    Person::registered(
        person_id,
        credential::issue(person_id).1,
        registration,
        NOW,
        0,
    )
}

/// Ana with no contacts.
pub fn person() -> Person {
    person_with(Vec::new())
}

/// A family member texted at `phone`, who reads `language` (the person's when `None`).
pub fn contact(name: &str, phone: &str, language: Option<Language>) -> Contact {
    Contact {
        name: name.into(),
        phone: Some(phone.into()),
        email: None,
        language,
        country: None,
        consent: None,
        preferred_channel: None,
    }
}

/// One contact per entry of `languages`, each with a number of its own.
pub fn contacts(languages: &[Option<Language>]) -> Vec<Contact> {
    languages
        .iter()
        .enumerate()
        .map(|(i, language)| contact(&format!("c{i}"), &format!("+1303555{i:04}"), *language))
        .collect()
}

/// An alert's opening for `audience`, written out in short, for two contacts with phones.
pub fn notification(audience: Audience) -> Notification {
    let alert_id = Uuid::new_v4();
    let phone = |n: u8| Addressee {
        phone: Some(format!("+1312555010{n}")),
        ..Addressee::default()
    };
    Notification {
        notification_id: format!("{alert_id}:1:{}:x", audience.as_str()),
        event: AlertEvent::Opened,
        audience,
        alert_id,
        seq: 1,
        person_id: Uuid::new_v4(),
        consulate_id: "mx-cg-chicago".into(),
        language: Language::Es,
        recipients: 2,
        expires_at: i64::MAX,
        subject: "s".into(),
        sms: "sms".into(),
        text: "text".into(),
        contacts: vec![phone(0), phone(1)],
        facts: Default::default(),
    }
}

/// What the person's phone sends when the button is pressed at `location`.
pub fn request(location: Location) -> AlertRequest {
    AlertRequest {
        client_alert_id: "c-1".into(),
        location,
        note: None,
    }
}

/// The alert `request` opens for `person` at `now`, routed by the bundled directory.
pub fn alert_at(person: &Person, request: AlertRequest, now: OffsetDateTime) -> Alert {
    Alert::open(
        person,
        request,
        &Directory::bundled(),
        &Districts::bundled(),
        now,
        &Retention::default(),
    )
    .expect("the fixture's alert opens")
}

/// The alert `person` opens in Chicago at `NOW`.
pub fn alert(person: &Person) -> Alert {
    alert_at(person, request(CHICAGO), NOW)
}

/// What a person store answers every read with; it takes every write.
pub enum OnFile {
    Found(Box<Person>),
    Nobody,
    /// The store cannot be read.
    Unreadable,
}

#[async_trait]
impl PersonWriter for OnFile {
    async fn get_person(&self, _person_id: Uuid) -> Result<Option<Person>> {
        match self {
            OnFile::Found(person) => Ok(Some(Person::clone(person))),
            OnFile::Nobody => Ok(None),
            OnFile::Unreadable => Err(Error::Store("unreachable".into())),
        }
    }

    async fn update_person(&self, _person: &Person, _expected_version: u32) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl PersonStore for OnFile {
    async fn create_person(&self, _person: &Person) -> Result<()> {
        Ok(())
    }

    async fn renew(&self, _person_id: Uuid, _expires_at: i64) -> Result<()> {
        Ok(())
    }
}

/// How one scripted send ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    Sent,
    /// Refused for good.
    Refused,
    /// Failed for now.
    Throttled,
}

/// Sends to each notification's audience and texts each of its phones directly; how each send
/// ends is scripted, and every send is recorded.
pub struct ScriptedNotifier {
    /// How every send to each of these phones ends.
    phones: HashMap<String, SendOutcome>,
    /// How the other sends end, in turn; once these run out, `after`.
    in_turn: Mutex<VecDeque<SendOutcome>>,
    after: SendOutcome,
    /// Every send, in order.
    pub sent: Mutex<Vec<(Audience, Recipient)>>,
}

impl ScriptedNotifier {
    /// Each phone ends as `phones` says; every other send goes out.
    pub fn texting(phones: HashMap<String, SendOutcome>) -> ScriptedNotifier {
        ScriptedNotifier {
            phones,
            in_turn: Mutex::default(),
            after: SendOutcome::Sent,
            sent: Mutex::default(),
        }
    }

    /// Each send ends as the next of `outcomes` says; once they run out, every send fails for now.
    pub fn in_turn(outcomes: impl IntoIterator<Item = SendOutcome>) -> ScriptedNotifier {
        ScriptedNotifier {
            phones: HashMap::new(),
            in_turn: Mutex::new(outcomes.into_iter().collect()),
            after: SendOutcome::Throttled,
            sent: Mutex::default(),
        }
    }

    /// The sends recorded so far, leaving none.
    pub fn take_sent(&self) -> Vec<(Audience, Recipient)> {
        std::mem::take(&mut *self.sent.lock().unwrap())
    }
}

#[async_trait]
impl Notifier for ScriptedNotifier {
    fn recipients(&self, notification: &Notification) -> Vec<Recipient> {
        let reach = route::Reach {
            channels: vec![Channel::Sms],
            subscribed: Vec::new(),
            sms_countries: vec![crate::domain::phone::Country::Us],
        };
        let routes = route::routes(notification, &reach);
        let contacts = routes.into_iter().flatten().map(Recipient::from);
        std::iter::once(Recipient::Audience)
            .chain(contacts)
            .collect()
    }

    async fn send(&self, notification: &Notification, recipient: &Recipient) -> SendResult {
        self.sent
            .lock()
            .unwrap()
            .push((notification.audience, recipient.clone()));
        let own = match recipient {
            Recipient::Contact { address, .. } => self.phones.get(address).copied(),
            Recipient::Audience => None,
        };
        let outcome = own.unwrap_or_else(|| {
            let next = self.in_turn.lock().unwrap().pop_front();
            next.unwrap_or(self.after)
        });
        match outcome {
            SendOutcome::Sent => Ok(Sent::default()),
            SendOutcome::Refused => Err(SendError::Refused("InvalidParameter".into())),
            SendOutcome::Throttled => Err(SendError::Transient("Throttling".into())),
        }
    }
}

/// A JSON request to the API, with the person's bearer token when there is one.
pub fn json_request(
    method: Method,
    path: &str,
    token: Option<&str>,
    body: impl Into<Body>,
) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(body.into()).expect("a valid request")
}

/// How one call through a `Guarded` store goes.
pub enum Verdict {
    /// On to the store.
    Pass,
    /// Fails with this error without reaching the store.
    FailBefore(Error),
    /// The store does the work, then the answer is lost: fails with this error.
    FailAfter(Error),
}

/// What a test decides about, and sees of, the calls a `Guarded` store passes on.
pub trait Guard: Send + Sync {
    /// A call about `alert_id` (`None`: about a person or a check-in, or a query).
    fn judge(&self, alert_id: Option<Uuid>) -> Verdict;

    /// Each page of overdue alerts the store returned.
    fn overdue_page(&self, _page: &Page<Alert>) {}

    /// The call `judge` was asked about has ended, whatever its verdict.
    fn finished(&self) {}
}

/// The store ports in front of the real ones, every call judged by `guard` first: how a test
/// injects faults between the service and its store, or watches what the service asks of it.
pub struct Guarded<G: ?Sized> {
    pub people: Arc<dyn PersonStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub checkins: Arc<dyn CheckInStore>,
    pub guard: Arc<G>,
}

impl<G: Guard + ?Sized> Guarded<G> {
    async fn run<T>(
        &self,
        alert_id: Option<Uuid>,
        work: impl Future<Output = Result<T>> + Send,
    ) -> Result<T> {
        let result = match self.guard.judge(alert_id) {
            Verdict::Pass => work.await,
            Verdict::FailBefore(err) => Err(err),
            Verdict::FailAfter(err) => work.await.and(Err(err)),
        };
        self.guard.finished();
        result
    }
}

#[async_trait]
impl<G: Guard + ?Sized> PersonWriter for Guarded<G> {
    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>> {
        self.run(None, self.people.get_person(person_id)).await
    }

    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()> {
        let work = self.people.update_person(person, expected_version);
        self.run(None, work).await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> PersonStore for Guarded<G> {
    async fn create_person(&self, person: &Person) -> Result<()> {
        self.run(None, self.people.create_person(person)).await
    }

    async fn renew(&self, person_id: Uuid, expires_at: i64) -> Result<()> {
        self.run(None, self.people.renew(person_id, expires_at))
            .await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> AlertWriter for Guarded<G> {
    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>> {
        self.run(Some(alert_id), self.alerts.get_alert(alert_id))
            .await
    }

    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()> {
        let work = self.alerts.update_alert(alert, expected_version);
        self.run(Some(alert.alert_id), work).await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> AlertCreator for Guarded<G> {
    async fn create_alert(&self, alert: &Alert) -> Result<Created> {
        let work = self.alerts.create_alert(alert);
        self.run(Some(alert.alert_id), work).await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> ConsulateQueue for Guarded<G> {
    async fn list_by_consulate(&self, listing: Listing<'_>) -> Result<AlertPage> {
        let work = self.alerts.list_by_consulate(listing);
        self.run(None, work).await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> OverdueAlerts for Guarded<G> {
    async fn open_alerts_created_before(&self, overdue: Overdue<'_>) -> Result<Page<Alert>> {
        let work = self.alerts.open_alerts_created_before(overdue);
        let page = self.run(None, work).await?;
        self.guard.overdue_page(&page);
        Ok(page)
    }
}

#[async_trait]
impl<G: Guard + ?Sized> CheckInWriter for Guarded<G> {
    async fn get_checkin(&self, checkin_id: Uuid) -> Result<Option<CheckIn>> {
        self.run(None, self.checkins.get_checkin(checkin_id)).await
    }

    async fn update_checkin(&self, checkin: &CheckIn, expected_version: u32) -> Result<()> {
        let work = self.checkins.update_checkin(checkin, expected_version);
        self.run(None, work).await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> CheckInCreator for Guarded<G> {
    async fn create_checkin(&self, checkin: &CheckIn) -> Result<()> {
        self.run(None, self.checkins.create_checkin(checkin)).await
    }
}

#[async_trait]
impl<G: Guard + ?Sized> DueCheckIns for Guarded<G> {
    async fn checkins_due(
        &self,
        deadline: OffsetDateTime,
        page: PageQuery<'_>,
    ) -> Result<Page<CheckIn>> {
        self.run(None, self.checkins.checkins_due(deadline, page))
            .await
    }
}

/// A stand-in for a Cognito user pool: the test JWKS served on loopback. Answers its issuer URL and
/// the PEM of the RSA key the JWKS publishes, to sign ID tokens with.
pub async fn cognito_stand_in() -> (String, Vec<u8>) {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let jwks = std::fs::read_to_string(fixtures.join("staff-test-jwks.json")).unwrap();
    let pem = std::fs::read(fixtures.join("staff-test-rsa.pem")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/.well-known/jwks.json",
        axum::routing::get(move || {
            let jwks = jwks.clone();
            async move { ([("content-type", "application/json")], jwks) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    (issuer, pem)
}
