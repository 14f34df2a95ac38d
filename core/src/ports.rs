//! The ports: what the domain needs from the outside world, as narrow traits. Each has an AWS
//! adapter and an embedded one for local mode; the concrete pair is chosen once, at start-up.
//! The stores are split by role (writer, creator, listings), so that each service holds
//! only the roles its actor uses; `AlertStore`, `CheckInStore` and `PersonStore` name them all.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::alert::Alert;
use crate::domain::checkin::CheckIn;
use crate::domain::person::Person;
use crate::error::Result;

/// Reads and changes a person's record: all the scheduler may do to one (it records the alert a
/// missed check-in raised).
#[async_trait]
pub trait PersonWriter: Send + Sync {
    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>>;
    /// Replaces the person's record if the stored one still has `expected_version` (a record
    /// without a version has version 0); `Error::ConcurrentUpdate` otherwise, or if it is gone.
    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()>;
}

/// Every person store: registration and renewal besides reads and changes.
#[async_trait]
pub trait PersonStore: PersonWriter {
    /// Stores a new person; `Error::Conflict` if one with the same id exists.
    async fn create_person(&self, person: &Person) -> Result<()>;
    /// Moves the stored person's `expires_at`, and nothing else; an error if there is no such person.
    async fn renew(&self, person_id: Uuid, expires_at: i64) -> Result<()>;
}

/// The outcome of an idempotent create.
#[derive(Debug, Clone, PartialEq)]
pub enum Created {
    New,
    /// An alert with the same id was already stored: this is it, unchanged.
    Existing(Box<Alert>),
}

/// Reads and changes a check-in (confirmed, moved, claimed, missed).
#[async_trait]
pub trait CheckInWriter: Send + Sync {
    async fn get_checkin(&self, checkin_id: Uuid) -> Result<Option<CheckIn>>;
    /// Replaces a check-in as `PersonWriter::update_person` replaces a person.
    async fn update_checkin(&self, checkin: &CheckIn, expected_version: u32) -> Result<()>;
}

/// Starts check-ins: the person's alone.
#[async_trait]
pub trait CheckInCreator: Send + Sync {
    /// Stores a new check-in; `Error::Conflict` if one with the same id exists.
    async fn create_checkin(&self, checkin: &CheckIn) -> Result<()>;
}

/// The check-ins whose deadline passed: the scheduler's alone.
#[async_trait]
pub trait DueCheckIns: Send + Sync {
    /// One page of the pending check-ins whose deadline is at or before `deadline`, earliest first.
    async fn checkins_due(
        &self,
        deadline: OffsetDateTime,
        page: PageQuery<'_>,
    ) -> Result<Page<CheckIn>>;
}

/// Every check-in store: all the roles above, which adapters implement one by one.
pub trait CheckInStore: CheckInWriter + CheckInCreator + DueCheckIns {}

impl<T: CheckInWriter + CheckInCreator + DueCheckIns + ?Sized> CheckInStore for T {}

/// Which page of a listing to read: at most `limit` items, after `cursor` (a previous page's
/// `next_cursor`; none for the first page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery<'a> {
    pub limit: usize,
    pub cursor: Option<&'a str>,
}

/// One `page` of the alerts routed to `consulate_id` in `status`, as staff list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    pub consulate_id: &'a str,
    pub status: crate::domain::alert::AlertStatus,
    pub page: PageQuery<'a>,
}

/// One `page` of the open alerts the escalation sweep looks at: `consulate_id`'s, created at
/// or before `created_before`, whose escalation level is below `below_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue<'a> {
    pub consulate_id: &'a str,
    pub created_before: OffsetDateTime,
    pub below_level: u32,
    pub page: PageQuery<'a>,
}

/// One page of the scheduled sweep's work, so its memory stays bounded however much is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// May be short, even empty, before the last page.
    pub items: Vec<T>,
    /// Opaque; pass it back to get the next page. Absent on the last page.
    pub next_cursor: Option<String>,
}

/// One page of a consulate's alerts, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    /// Opaque; pass it back to get the next page. Absent on the last page.
    pub next_cursor: Option<String>,
}

/// Reads and changes alerts: what the person, staff and the scheduler all do.
#[async_trait]
pub trait AlertWriter: Send + Sync {
    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>>;
    /// Stores a changed alert and its new event atomically, if the stored alert still has
    /// `expected_version` history entries; `Error::ConcurrentUpdate` otherwise.
    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()>;
}

/// Opens alerts: for a press, a duress PIN or a missed check-in; never staff's to do.
#[async_trait]
pub trait AlertCreator: Send + Sync {
    /// Stores a new alert and its `opened` event atomically, unless an alert with the same id exists.
    /// A new alert is also made its person's `last_alert_id` in the same write, the record's
    /// version bumped, so that a press costs one commit; a person with no record still has the
    /// alert stored.
    async fn create_alert(&self, alert: &Alert) -> Result<Created>;
}

/// A consulate's alerts, as its staff list them.
#[async_trait]
pub trait ConsulateQueue: Send + Sync {
    /// The alerts of `listing`, newest first.
    async fn list_by_consulate(&self, listing: Listing<'_>) -> Result<AlertPage>;
}

/// The alerts nobody acknowledged in time, as the scheduler escalates them.
#[async_trait]
pub trait OverdueAlerts: Send + Sync {
    /// One page of the `overdue` open (unacknowledged) alerts, oldest first.
    async fn open_alerts_created_before(&self, overdue: Overdue<'_>) -> Result<Page<Alert>>;
}

/// Every alert store: all the roles above, which adapters implement one by one.
pub trait AlertStore: AlertWriter + AlertCreator + ConsulateQueue + OverdueAlerts {}

impl<T: AlertWriter + AlertCreator + ConsulateQueue + OverdueAlerts + ?Sized> AlertStore for T {}

mod delivery;

pub use delivery::*;

/// The family's standing subscriptions to an alert's notifications (SNS subscriptions with the
/// person's filter policy in AWS). Local mode needs none: its notifier addresses contacts itself.
#[async_trait]
pub trait FamilySubscriptions: Send + Sync {
    /// Subscribes every contact of `person`; returns handles to keep with the person. On error,
    /// nothing stays subscribed.
    async fn subscribe(&self, person: &Person) -> Result<Vec<String>>;
    async fn unsubscribe(&self, subscriptions: &[String]) -> Result<()>;
}

/// For adapters whose notifier reaches contacts without subscriptions.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSubscriptions;

#[async_trait]
impl FamilySubscriptions for NoSubscriptions {
    async fn subscribe(&self, _person: &Person) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn unsubscribe(&self, _subscriptions: &[String]) -> Result<()> {
        Ok(())
    }
}

/// A member of a consulate's staff, as their verified credential names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// Who, for the audit trail (the identity provider's subject).
    pub subject: String,
    pub consulate_id: String,
    /// The Embassy's national desk sees every consulate's alerts.
    pub national: bool,
}

impl StaffMember {
    pub fn serves(&self, consulate_id: &str) -> bool {
        self.national || self.consulate_id == consulate_id
    }
}

/// Checks a staff bearer token (a JWT) and says whose it is.
#[async_trait]
pub trait StaffVerifier: Send + Sync {
    async fn verify(&self, token: &str) -> Result<StaffMember>;
}

/// Counts requests per key in fixed windows, against floods and SMS pumping.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts `hit`; `Error::RateLimited` (with the time to the next window) once its limit of
    /// hits were counted in its window.
    async fn hit(&self, hit: Hit<'_>) -> Result<()>;

    /// Whether `hit`'s key is already at its limit in its window, without counting it.
    async fn check(&self, hit: Hit<'_>) -> Result<()>;
}

/// One request counted against `key`'s `limit` in the fixed `window` that `now` falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit<'a> {
    pub key: &'a str,
    pub limit: u32,
    pub window: std::time::Duration,
    pub now: OffsetDateTime,
}

impl<'a> Hit<'a> {
    pub fn new(key: &'a str, limit: u32, window: std::time::Duration, now: OffsetDateTime) -> Self {
        Hit {
            key,
            limit,
            window,
            now,
        }
    }

    /// The start of the hit's window, and how long until the next one.
    pub fn window_start(&self) -> (i64, std::time::Duration) {
        window_of(self.now, self.window)
    }
}

/// The start of `now`'s fixed window, and how long until the next one.
pub fn window_of(now: OffsetDateTime, window: std::time::Duration) -> (i64, std::time::Duration) {
    let length = window.as_secs().max(1) as i64;
    let now = now.unix_timestamp();
    let start = now - now.rem_euclid(length);
    (
        start,
        std::time::Duration::from_secs((start + length - now) as u64),
    )
}

/// Time, as a port, so that expiry and (later) escalation can be tested without waiting.
pub trait Clock: Send + Sync {
    fn now(&self) -> OffsetDateTime;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Milliseconds are plenty for an audit trail and keep timestamps short.
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_millisecond(now.millisecond()).unwrap_or(now)
    }
}

/// Which people list a phone among their contacts, for replies texted to the origination
/// number. It may name a person who has since dropped the number: callers check the record.
#[async_trait]
pub trait PeopleByPhone: Send + Sync {
    async fn people_with_phone(&self, phone: &str) -> Result<Vec<Uuid>>;
}
