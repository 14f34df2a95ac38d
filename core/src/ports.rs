//! The ports: what the domain needs from the outside world, as narrow traits. Each has an AWS
//! adapter and an embedded one for local mode; the concrete pair is chosen once, at start-up.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::alert::Alert;
use crate::domain::notification::Notification;
use crate::domain::person::Person;
use crate::error::Result;

#[async_trait]
pub trait PersonStore: Send + Sync {
    /// Stores a new person; `Error::Conflict` if one with the same id exists.
    async fn create_person(&self, person: &Person) -> Result<()>;
    /// Replaces the person's record if the stored one still has `expected_version` (a record
    /// without a version has version 0); `Error::ConcurrentUpdate` otherwise, or if it is gone.
    async fn update_person(&self, person: &Person, expected_version: u32) -> Result<()>;
    async fn get_person(&self, person_id: Uuid) -> Result<Option<Person>>;
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

#[async_trait]
pub trait CheckInStore: Send + Sync {
    /// Stores a new check-in; `Error::Conflict` if one with the same id exists.
    async fn create_checkin(&self, checkin: &crate::domain::checkin::CheckIn) -> Result<()>;
    /// Replaces a check-in as `PersonStore::update_person` replaces a person.
    async fn update_checkin(
        &self,
        checkin: &crate::domain::checkin::CheckIn,
        expected_version: u32,
    ) -> Result<()>;
    async fn get_checkin(
        &self,
        checkin_id: Uuid,
    ) -> Result<Option<crate::domain::checkin::CheckIn>>;
    /// One page of the pending check-ins whose deadline is at or before `deadline`, earliest
    /// first: at most `limit`, after `cursor` (a previous page's `next_cursor`).
    async fn checkins_due(
        &self,
        deadline: OffsetDateTime,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<crate::domain::checkin::CheckIn>>;
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

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Alerts routed to `consulate_id` in `status`, newest first, at most `limit`.
    async fn list_by_consulate(
        &self,
        consulate_id: &str,
        status: crate::domain::alert::AlertStatus,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<AlertPage>;
    /// Stores a new alert and its `opened` event atomically, unless an alert with the same id exists.
    async fn create_alert(&self, alert: &Alert) -> Result<Created>;
    /// One page of the open (unacknowledged) alerts of `consulate_id` created at or before
    /// `created_before` whose escalation level is below `below_level`, oldest first: at most
    /// `limit`, after `cursor` (a previous page's `next_cursor`).
    async fn open_alerts_created_before(
        &self,
        consulate_id: &str,
        created_before: OffsetDateTime,
        below_level: u32,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<Page<Alert>>;
    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>>;
    /// Stores a changed alert and its new event atomically, if the stored alert still has
    /// `expected_version` history entries; `Error::ConcurrentUpdate` otherwise.
    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()>;
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one notification to its audience. Must tolerate a redelivery of the same
    /// `notification_id` (the fan-out retries a whole event after a partial failure).
    async fn send(&self, notification: &Notification) -> Result<()>;
}

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
    /// Counts one hit for `key` in the window `now` falls in; `Error::RateLimited` (with the time
    /// to the next window) once `limit` hits were counted there.
    async fn hit(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<()>;

    /// Whether `key` is already at `limit` in `now`'s window, without counting a hit.
    async fn check(
        &self,
        key: &str,
        limit: u32,
        window: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<()>;
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
