//! The ports: what the domain needs from the outside world, as narrow traits. Each has an AWS
//! adapter and an embedded one for local mode; the concrete pair is chosen once, at start-up.

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::alert::Alert;
use crate::domain::notification::{Audience, Notification};
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
    /// One page of the pending check-ins whose deadline is at or before `deadline`, earliest first.
    async fn checkins_due(
        &self,
        deadline: OffsetDateTime,
        page: PageQuery<'_>,
    ) -> Result<Page<crate::domain::checkin::CheckIn>>;
}

/// Which page of a listing to read: at most `limit` items, after `cursor` (a previous page's
/// `next_cursor`; none for the first page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageQuery<'a> {
    pub limit: usize,
    pub cursor: Option<&'a str>,
}

/// The alerts routed to `consulate_id` in `status`, as staff list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listing<'a> {
    pub consulate_id: &'a str,
    pub status: crate::domain::alert::AlertStatus,
}

/// The open alerts the escalation sweep looks at: `consulate_id`'s, created at or before
/// `created_before`, whose escalation level is below `below_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue<'a> {
    pub consulate_id: &'a str,
    pub created_before: OffsetDateTime,
    pub below_level: u32,
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
    /// The alerts of `listing`, newest first.
    async fn list_by_consulate(
        &self,
        listing: Listing<'_>,
        page: PageQuery<'_>,
    ) -> Result<AlertPage>;
    /// Stores a new alert and its `opened` event atomically, unless an alert with the same id exists.
    async fn create_alert(&self, alert: &Alert) -> Result<Created>;
    /// One page of the `overdue` open (unacknowledged) alerts, oldest first.
    async fn open_alerts_created_before(
        &self,
        overdue: Overdue<'_>,
        page: PageQuery<'_>,
    ) -> Result<Page<Alert>>;
    async fn get_alert(&self, alert_id: Uuid) -> Result<Option<Alert>>;
    /// Stores a changed alert and its new event atomically, if the stored alert still has
    /// `expected_version` history entries; `Error::ConcurrentUpdate` otherwise.
    async fn update_alert(&self, alert: &Alert, expected_version: u32) -> Result<()>;
}

/// Whom one send reaches.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipient {
    /// The notification's whole audience through the notifier's own fan-out: the SNS topic (whose
    /// subscriptions filter on the message attributes), the local journal.
    Audience,
    /// One family phone texted directly.
    Phone(String),
}

impl Recipient {
    /// How the delivery ledger keys this recipient within `notification_id`: `topic`, or a hash
    /// of the number salted with the notification, never the number itself.
    pub fn key(&self, notification_id: &str) -> String {
        use sha2::Digest;
        match self {
            Recipient::Audience => "topic".to_owned(),
            Recipient::Phone(phone) => {
                let digest = sha2::Sha256::new()
                    .chain_update(notification_id.as_bytes())
                    .chain_update(b"\n")
                    .chain_update(phone.as_bytes())
                    .finalize();
                format!("sms:{}", hex::encode(&digest[..16]))
            }
        }
    }

    /// The channel a send to this recipient goes by, as the delivery ledger records it: `topic`
    /// (the notifier's own fan-out to the audience) or `sms`.
    pub fn channel(&self) -> &'static str {
        match self {
            Recipient::Audience => "topic",
            Recipient::Phone(_) => "sms",
        }
    }

    /// For showing who a send was for: `+1•••••0123`.
    pub fn masked(&self) -> String {
        match self {
            Recipient::Audience => "topic".to_owned(),
            Recipient::Phone(phone) => {
                let chars: Vec<char> = phone.chars().collect();
                if chars.len() < 8 {
                    return "•••".to_owned();
                }
                let head: String = chars[..2].iter().collect();
                let tail: String = chars[chars.len() - 4..].iter().collect();
                format!("{head}•••••{tail}")
            }
        }
    }
}

/// Why one send failed. Each carries the provider's error code or kind only: a provider's own
/// message may quote the phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Refused for good (an invalid number, an opted-out or disabled endpoint): no retry can help.
    #[error("refused: {0}")]
    Refused(String),
    /// Worth retrying (throttling, an outage, a timeout).
    #[error("not delivered yet: {0}")]
    Transient(String),
}

/// How one send ended.
pub type SendResult = std::result::Result<Sent, SendError>;

/// What the provider answered a send it accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sent {
    /// The provider's id of the message (SNS's `MessageId`), which its delivery receipts name.
    pub message_id: Option<String>,
}

/// The audience, and if `texts_family`, each family phone of a change worth a text: whom a
/// notifier that texts family phones itself sends to.
pub fn audience_and_texted(notification: &Notification, texts_family: bool) -> Vec<Recipient> {
    let mut recipients = vec![Recipient::Audience];
    let texted = notification.audience == Audience::Family && notification.event.is_texted();
    if texts_family && texted {
        recipients.extend(notification.phones.iter().cloned().map(Recipient::Phone));
    }
    recipients
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Whom `notification` goes to. The fan-out sends to, records and retries each on its own.
    fn recipients(&self, _notification: &Notification) -> Vec<Recipient> {
        vec![Recipient::Audience]
    }

    /// Delivers `notification` to one of its recipients.
    async fn send(
        &self,
        notification: &Notification,
        recipient: &Recipient,
    ) -> std::result::Result<Sent, SendError>;
}

/// Where a send stands, as the delivery ledger records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// About to be handed to the provider, or handed over with no answer recorded (a crash).
    Queued,
    Sent,
    /// Refused for good; never sent again.
    FailedPermanent,
    /// Failed for now; the change is retried and this send with it.
    FailedTransient,
    /// The provider's receipt says it reached the recipient.
    Delivered,
    /// The provider accepted it, then its receipt said it could not reach the recipient.
    Failed,
    /// Not sent: the contact opted out of texts (replied STOP).
    OptedOut,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Queued => "queued",
            DeliveryState::Sent => "sent",
            DeliveryState::FailedPermanent => "failed_permanent",
            DeliveryState::FailedTransient => "failed_transient",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
            DeliveryState::OptedOut => "opted_out",
        }
    }

    pub fn parse(value: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Queued,
            DeliveryState::Sent,
            DeliveryState::FailedPermanent,
            DeliveryState::FailedTransient,
            DeliveryState::Delivered,
            DeliveryState::Failed,
            DeliveryState::OptedOut,
        ]
        .into_iter()
        .find(|state| state.as_str() == value)
    }

    /// Whether a retry leaves this send alone.
    pub fn is_settled(self) -> bool {
        !matches!(self, DeliveryState::Queued | DeliveryState::FailedTransient)
    }

    /// The state a receipt moves this send to: only a send the provider accepted takes one, and
    /// a later receipt never overrides an earlier one.
    pub fn after_receipt(self, delivered: bool) -> Option<DeliveryState> {
        match (self, delivered) {
            (DeliveryState::Sent, true) => Some(DeliveryState::Delivered),
            (DeliveryState::Sent, false) => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// One send of one notification to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub alert_id: Uuid,
    pub notification_id: String,
    /// The alert change (history entry) the notification is about.
    pub seq: u32,
    pub audience: Audience,
    /// `Recipient::channel`.
    pub channel: String,
    /// `Recipient::key`: never an address.
    pub recipient: String,
    /// `Recipient::masked`, for showing later.
    pub masked: String,
    /// Unix seconds; the record goes with the alert it belongs to.
    pub expires_at: i64,
}

impl Delivery {
    pub fn new(notification: &Notification, recipient: &Recipient) -> Delivery {
        Delivery {
            alert_id: notification.alert_id,
            notification_id: notification.notification_id.clone(),
            seq: notification.seq,
            audience: notification.audience,
            channel: recipient.channel().to_owned(),
            recipient: recipient.key(&notification.notification_id),
            masked: recipient.masked(),
            expires_at: notification.expires_at,
        }
    }
}

/// How one send ended: its state, with the provider's message id when it was accepted, so that
/// its receipt finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settled<'a> {
    pub state: DeliveryState,
    pub message_id: Option<&'a str>,
}

impl<'a> Settled<'a> {
    pub fn new(state: DeliveryState, message_id: Option<&'a str>) -> Self {
        Settled { state, message_id }
    }
}

/// Every send, recorded before and after the provider call, so that a retried change reaches
/// only the recipients it has not reached yet.
#[async_trait]
pub trait DeliveryLedger: Send + Sync {
    /// Records `delivery` as queued. `false` when an earlier attempt settled it (sent, or refused
    /// for good): it must not be sent again. One left queued or failed for now is claimed again.
    async fn claim(&self, delivery: &Delivery) -> Result<bool>;
    /// Records how the send ended.
    async fn settle(&self, delivery: &Delivery, settled: Settled<'_>) -> Result<()>;
    /// Every send of the alert's notifications as recorded now, in the order they were first
    /// claimed (notification by notification).
    async fn deliveries_of(&self, alert_id: Uuid) -> Result<Vec<DeliveryRecord>>;
}

/// The audience a ledger record names (`Audience::as_str`).
pub fn audience_named(name: &str) -> Option<Audience> {
    [Audience::Family, Audience::Consulate, Audience::Escalation]
        .into_iter()
        .find(|audience| audience.as_str() == name)
}

/// One send as the ledger holds it: what the person and the consulate are shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub notification_id: String,
    pub seq: u32,
    pub audience: Audience,
    pub channel: String,
    /// `Recipient::masked`.
    pub masked: String,
    pub state: DeliveryState,
    /// When the state last changed.
    pub at: OffsetDateTime,
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
